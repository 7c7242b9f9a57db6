"""The linearizability checker (linearizability.py) on hand-made histories,
on simulated linearizable registers, and against a brute-force reference."""
from __future__ import annotations

import itertools
import random
import time

import pytest

from linearizability import STRATEGIES, Op, Result, check


def op(client: int, kind: str, value: object, start: float, end: float | None,
       key: str = "k", ok: bool = True) -> Op:
    return Op(client=client, kind=kind, key=key, value=value, start=start, end=end, ok=ok)


def verdict(history: list[Op], **kw) -> Result:
    """`check` with each search strategy: they must agree."""
    results = [check(history, strategy=s, **kw) for s in STRATEGIES]
    assert len({r.ok for r in results}) == 1, [r.explanation for r in results]
    return results[0]


def assert_valid(history: list[Op], **kw) -> None:
    result = verdict(history, **kw)
    assert result.ok, result.explanation
    assert result.key is None and not result.explanation


def assert_rejected(history: list[Op], key: str = "k", **kw) -> str:
    result = verdict(history, **kw)
    assert not result.ok, "an unlinearizable history passed"
    assert result.key == key
    assert result.explanation and "search limit" not in result.explanation
    return result.explanation


# Hand-made histories ---------------------------------------------------------

def test_sequential_history_is_valid():
    history = [
        op(1, "get", None, 0, 1),
        op(1, "set", "a", 2, 3),
        op(2, "get", "a", 4, 5),
        op(2, "remove", True, 6, 7),
        op(1, "remove", False, 8, 9),
        op(1, "get", None, 10, 11),
        op(2, "set", "b", 12, 13),
        op(1, "get", "b", 14, 15),
    ]
    assert_valid(history)
    assert check(history).checked_ops == len(history)


def test_initial_value_is_honoured():
    assert_valid([op(1, "get", "x", 0, 1)], initial="x")
    assert_rejected([op(1, "get", None, 0, 1)], initial="x")


@pytest.mark.parametrize("reads", [("a", "b"), ("b", "a"), ("a", "a"), ("b", "b")])
def test_overlapping_writes_may_take_effect_in_either_order(reads):
    during, after = reads
    history = [
        op(1, "set", "a", 0, 10),
        op(2, "set", "b", 1, 9),
        op(3, "get", during, 2, 3),  # may see the first write to take effect
        op(3, "get", after, 11, 12),  # sees whichever took effect last
    ]
    assert_valid(history)


def test_reads_after_overlapping_writes_agree_on_one_order():
    history = [
        op(1, "set", "a", 0, 10),
        op(2, "set", "b", 1, 9),
        op(3, "get", "a", 11, 12),
        op(4, "get", "b", 13, 14),  # no write after 10: the value cannot change
    ]
    assert_rejected(history)


def test_stale_read_after_completed_write_is_rejected():
    history = [
        op(1, "set", "a", 0, 1),
        op(1, "set", "b", 2, 3),
        op(2, "get", "a", 4, 5),
    ]
    explanation = assert_rejected(history)
    assert "#2" in explanation and "'b'" in explanation  # names the read and what was there


def test_read_of_a_value_never_written_is_rejected():
    explanation = assert_rejected([op(1, "set", "a", 0, 1), op(2, "get", "z", 0.5, 2)])
    assert "nothing wrote the value #1 read" in explanation


def test_value_flickering_back_is_rejected():
    history = [
        op(1, "set", "a", 0, 1),
        op(1, "set", "b", 2, 3),
        op(2, "get", "b", 4, 5),
        op(2, "get", "a", 6, 7),
    ]
    assert_rejected(history)


def test_remove_finding_an_absent_key_is_rejected():
    assert_rejected([op(1, "get", None, 0, 1), op(1, "remove", True, 2, 3)])
    assert_rejected([op(1, "set", "a", 0, 1), op(1, "remove", True, 2, 3),
                     op(2, "remove", True, 4, 5)])


def test_remove_missing_a_present_key_is_rejected():
    assert_rejected([op(1, "set", "a", 0, 1), op(1, "remove", False, 2, 3)])


def test_indeterminate_write_that_appears_later_is_valid():
    history = [
        op(1, "set", "a", 0, 1),
        op(2, "set", "x", 2, None),  # timed out
        op(1, "get", "a", 3, 4),
        op(1, "get", "x", 50, 51),  # it took effect long after its client gave up
        op(3, "get", "x", 60, 61),
    ]
    assert_valid(history)


def test_indeterminate_write_that_never_appears_is_valid():
    history = [
        op(1, "set", "a", 0, 1),
        op(2, "set", "x", 2, 3, ok=False),  # failed
        op(3, "set", "y", 2, None),  # timed out
        op(1, "get", "a", 4, 5),
        op(1, "remove", True, 6, 7),
        op(1, "get", None, 8, 9),
    ]
    assert_valid(history)


def test_indeterminate_write_may_be_what_a_remove_found():
    history = [
        op(1, "remove", False, 0, 1),
        op(2, "set", "x", 2, None),
        op(1, "remove", True, 3, 4),
        op(1, "get", None, 5, 6),
    ]
    assert_valid(history)
    assert_rejected(history[:1] + history[2:])  # found something nobody wrote


def test_indeterminate_write_seen_then_gone_is_rejected():
    history = [
        op(1, "set", "a", 0, 1),
        op(2, "set", "x", 2, None),
        op(1, "get", "x", 3, 4),
        op(1, "get", "a", 5, 6),  # no write of a since, so x cannot be undone
    ]
    assert_rejected(history)


def test_indeterminate_write_of_a_repeated_value_may_explain_a_read():
    history = [
        op(1, "set", "a", 0, 1),
        op(1, "set", "b", 2, 3),
        op(2, "set", "a", 2.5, None),  # a second, indeterminate write of a
        op(1, "get", "a", 4, 5),
    ]
    assert_valid(history)
    history[2] = op(2, "set", "a", 1.2, 1.8)  # completed before b: a is stale now
    assert_rejected(history)


def test_indeterminate_remove_is_optional():
    base = [op(1, "set", "a", 0, 1), op(2, "remove", None, 2, None), op(1, "get", "a", 3, 4)]
    assert_valid(base)  # never happened
    assert_valid(base[:2] + [op(1, "get", None, 3, 4)])  # happened
    assert_valid(base[:2] + [op(1, "remove", False, 3, 4)])
    assert_rejected(base[:2] + [op(1, "get", None, 3, 4), op(1, "get", "a", 5, 6)])


def test_indeterminate_get_is_ignored():
    assert_valid([op(1, "set", "a", 0, 1), op(2, "get", "zzz", 2, None)])


def test_only_the_bad_key_is_named():
    history = [
        op(1, "set", "a", 0, 1, key="good"),
        op(2, "set", "a", 0, 1, key="bad"),
        op(1, "set", "b", 2, 3, key="bad"),
        op(2, "get", "a", 2, 3, key="good"),
        op(3, "get", "a", 4, 5, key="bad"),
        op(3, "get", "a", 6, 7, key="other"),
    ]
    result = verdict(history)
    assert not result.ok
    assert result.key == "bad" and result.failed_keys == ["bad", "other"]
    assert "'bad'" in result.explanation
    assert result.checked_ops == len(history)


def test_a_search_over_the_limit_is_never_a_pass():
    history = simulate(random.Random(5), n_ops=300, keys=["k"], clients=6)
    assert_valid(history)
    for strategy in STRATEGIES:
        result = check(history, max_states=50, strategy=strategy)
        assert not result.ok and result.key == "k"
        assert "search limit exceeded" in result.explanation


@pytest.mark.parametrize("bad", [
    op(1, "unsafe_set", "a", 0, 1),
    op(1, "set", None, 0, 1),
    op(1, "get", "a", 2, 1),
    op(1, "remove", "yes", 0, 1),
])
def test_malformed_ops_are_refused(bad):
    with pytest.raises(ValueError):
        check([bad])


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError):
        check([], strategy="bfs")


# Simulated linearizable registers --------------------------------------------

def simulate(rng: random.Random, n_ops: int, keys: list[str], clients: int,
             p_indeterminate: float = 0.0, values: list[str] | None = None) -> list[Op]:
    """A history of a linearizable register: each op takes effect at a random
    point inside its interval. Indeterminate ops take effect (or not) at a
    random point after their start. Set values are unique unless `values`."""
    clock = [rng.uniform(0, 1) for _ in range(clients)]
    effects: list[tuple[float, Op]] = []
    history: list[Op] = []
    for n in range(n_ops):
        c = min(range(clients), key=clock.__getitem__)  # the client that is free first
        start = clock[c]
        end = start + rng.expovariate(1.0)
        kind = rng.choices(["set", "get", "remove"], weights=[4, 5, 1])[0]
        value = None
        if kind == "set":
            value = rng.choice(values) if values else f"v{n}"
        o = Op(client=c, kind=kind, key=rng.choice(keys), value=value, start=start, end=end)
        if rng.random() < p_indeterminate:
            o.end, o.ok = None, rng.random() < 0.5
            if rng.random() < 0.5:  # took effect, maybe long after the client gave up
                effects.append((start + rng.expovariate(0.1), o))
        else:
            effects.append((rng.uniform(start, end), o))
        history.append(o)
        clock[c] = end + rng.expovariate(5.0)
    store: dict[str, object] = {}
    for _, o in sorted(effects, key=lambda x: x[0]):
        if o.kind == "set":
            store[o.key] = o.value
        elif o.kind == "get":
            o.value = store.get(o.key)
        else:
            o.value = store.pop(o.key, None) is not None
    for o in history:
        if o.kind == "remove" and not o.determinate and rng.random() < 0.5:
            o.value = None  # whatever an indeterminate op carries must not matter
    return history


def make_stale(history: list[Op], before: int | None = None) -> Op:
    """Turns the last completed read (before index `before`) that can be made
    so into one of a value that was overwritten, for sure, before the read
    started; returns the read."""
    sets = [o for o in history if o.kind == "set" and o.determinate]
    for read in reversed(history[:before]):
        if read.kind != "get" or not read.determinate:
            continue
        for old in sets:
            if old.key != read.key or old.end >= read.start or old.value == read.value:
                continue
            if any(s.key == read.key and s.start > old.end and s.end < read.start
                   and s.value != old.value for s in sets):
                read.value = old.value
                return read
    raise AssertionError("no read to make stale")


def assert_culprit(result: Result, index: int) -> None:
    """The explanation names op #index as ending the shortest failing prefix."""
    assert not result.ok
    culprit = result.explanation.splitlines()[2]
    assert culprit.strip().startswith(f"#{index} "), result.explanation


def test_simulated_linearizable_history_passes_and_a_stale_read_fails():
    history = simulate(random.Random(1), n_ops=2000, keys=["a", "b", "c"], clients=6,
                       p_indeterminate=0.02)
    assert_valid(history)
    read = make_stale(history)
    result = verdict(history)
    assert result.key == read.key
    # The history is valid up to the stale read, so that read ends the
    # shortest failing prefix.
    assert_culprit(result, history.index(read))


@pytest.mark.parametrize("seed", range(5))
def test_simulated_histories_with_many_indeterminate_ops_pass(seed):
    history = simulate(random.Random(seed), n_ops=1000, keys=["a", "b"], clients=8,
                       p_indeterminate=0.1)
    assert_valid(history)


@pytest.mark.parametrize("seed", range(3))
def test_simulated_histories_with_repeated_values_pass(seed):
    history = simulate(random.Random(seed), n_ops=1000, keys=["a", "b"], clients=6,
                       p_indeterminate=0.1, values=["x", "y", "z"])
    assert_valid(history)


def test_performance_5000_ops_5_keys_6_clients():
    history = simulate(random.Random(7), n_ops=5000, keys=[f"k{i}" for i in range(5)],
                       clients=6, p_indeterminate=0.02)
    began = time.monotonic()
    result = check(history)
    took = time.monotonic() - began
    assert result.ok, result.explanation
    assert result.checked_ops == 5000
    assert took < 5, f"took {took:.2f} s"
    make_stale(history)
    began = time.monotonic()
    assert not check(history).ok
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("n_ops, keys, clients, p_indeterminate", [
    (20000, 10, 8, 0.05),
    (4000, 1, 8, 0.2),  # everyone on one key, many timeouts
])
def test_performance_larger_histories(n_ops, keys, clients, p_indeterminate):
    history = simulate(random.Random(11), n_ops=n_ops, keys=[f"k{i}" for i in range(keys)],
                       clients=clients, p_indeterminate=p_indeterminate)
    for expect_ok in (True, False):
        began = time.monotonic()
        result = check(history)
        took = time.monotonic() - began
        assert result.ok == expect_ok, result.explanation
        assert "search limit" not in result.explanation
        assert took < 5, f"took {took:.2f} s"
        make_stale(history)


@pytest.mark.parametrize("clients", [4, 8])
def test_performance_stale_read_amid_many_timeouts(clients):
    # Proving a read in the middle stale means ruling out every way to
    # linearize what comes before it; with many optional ops that is where the
    # depth-first search alone can take many times longer than the
    # level-by-level one.
    history = simulate(random.Random(0), n_ops=4000, keys=["k"], clients=clients,
                       p_indeterminate=0.2)
    read = make_stale(history, before=2000)
    began = time.monotonic()
    result = check(history)
    took = time.monotonic() - began
    assert_culprit(result, history.index(read))
    assert took < 5, f"took {took:.2f} s"


# Against a brute-force reference ---------------------------------------------

def brute_force(history: list[Op], initial: object = None) -> bool:
    """Tries every subset of the optional ops in every order that respects
    real time; only for a handful of ops."""
    required = [o for o in history if o.determinate]
    optional = [o for o in history if not o.determinate and o.kind != "get"]

    def before(a: Op, b: Op) -> bool:  # a must be linearized before b
        return a.determinate and a.end < b.start

    def legal(order: tuple[Op, ...]) -> bool:
        state = initial
        for o in order:
            if o.kind == "set":
                state = o.value
            elif o.kind == "get":
                if state != o.value:
                    return False
            else:
                if o.determinate and (state is not None) != o.value:
                    return False
                state = None
        return True

    for r in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, r):
            ops = required + list(chosen)
            for order in itertools.permutations(ops):
                if all(not before(order[j], order[i])
                       for i in range(len(order)) for j in range(i + 1, len(order))) \
                        and legal(order):
                    return True
    return False


def random_small_history(rng: random.Random) -> list[Op]:
    """Few ops, integer times (so ties), random results, values either unique
    or repeated, some ops indeterminate: about half are linearizable."""
    history: list[Op] = []
    clock = [0] * rng.randint(1, 4)
    unique = rng.random() < 0.5
    determinate = rng.choice([0.5, 0.75, 1.0])
    written = ["a"]
    for n in range(rng.randint(1, 7)):
        c = rng.randrange(len(clock))
        start = clock[c] + rng.randint(0, 2)
        end = start + rng.randint(0, 3)
        kind = rng.choice(["set", "set", "get", "get", "remove"])
        if kind == "set":
            value = f"w{n}" if unique else rng.choice("abc")
            written.append(value)
        elif kind == "get":
            value = rng.choice([None] + written[-3:])
        else:
            value = rng.random() < 0.5
        if rng.random() < determinate:
            history.append(Op(c, kind, "k", value, start, end))
        else:  # either way of saying "indeterminate"
            history.append(Op(c, kind, "k", value, start, None) if rng.random() < 0.5
                           else Op(c, kind, "k", value, start, end, ok=False))
        clock[c] = end + rng.randint(0, 1)
    return history


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_agrees_with_brute_force_on_random_small_histories(strategy):
    rng = random.Random(42)
    verdicts = {True: 0, False: 0}
    for n in range(2000):
        history = random_small_history(rng)
        initial = rng.choice([None, "a"])
        expected = brute_force(history, initial)
        result = check(history, initial=initial, strategy=strategy)
        assert result.ok == expected, (n, initial, history, result.explanation)
        verdicts[expected] += 1
    assert min(verdicts.values()) > 700, verdicts  # both verdicts well covered


def test_both_searches_agree_on_random_larger_histories():
    # Too large for the brute force; the two searches explore in different
    # orders, so agreeing (down to the op ending the shortest failing prefix)
    # is a check of both.
    rng = random.Random(3)
    verdicts = {True: 0, False: 0}
    for n in range(300):
        history = simulate(random.Random(n), n_ops=rng.randint(10, 150), keys=["k"],
                           clients=rng.randint(2, 6), p_indeterminate=rng.choice([0.1, 0.3]),
                           values=rng.choice([None, ["a", "b"], ["a", "b", "c"]]))
        for o in rng.sample(history, rng.randint(0, 2)):  # break it, maybe
            if o.kind == "get":
                o.value = rng.choice([None, "a", "b", "v3"])
            elif o.kind == "remove" and o.determinate:
                o.value = not o.value
        dfs, levels = (check(history, strategy=s) for s in ("dfs", "levels"))
        assert dfs.ok == levels.ok, (n, dfs.explanation, levels.explanation)
        assert dfs.explanation.splitlines()[:3] == levels.explanation.splitlines()[:3]
        verdicts[dfs.ok] += 1
    assert min(verdicts.values()) > 50, verdicts
