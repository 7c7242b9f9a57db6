"""Per-key linearizability checker for histories of the store's set/get/remove.

Each key is an independent register (linearizability is compositional: a
history is linearizable iff every key's sub-history is), checked on its own.

The search is Wing & Gong's as improved by Lowe ("Testing for
linearizability", 2017) and used by Porcupine: call and return events go in
one time-ordered doubly linked list; the search linearizes the earliest
pending call the model accepts (lifting it and its return out of the list),
and backtracks when it reaches the return of an op not yet linearized.
Configurations (linearized ops, register state) already explored are cached.
A breadth-first search over the same configurations, level by level, runs in
turns with it: it can prove a failure far quicker when optional ops abound.

Indeterminate ops (the client saw an error or a timeout) may have taken
effect at any time after their invocation, or never: they are optional, with
no return, and the search succeeds once every determinate op is linearized.
Reads among them are dropped (they change nothing and returned nothing we
know). Sound reductions keep optional ops and long-running writes from
blowing up the search; see `_prepare` and `_search`. Ops whose times are
equal are taken to overlap, so clock granularity never fails a valid history.

A failure is explained by the shortest prefix of the key's history that
cannot be linearized, and the ops around the op that ends it.

Only the Python standard library is used.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace
from typing import Hashable, Iterable, Optional

KINDS = ("set", "get", "remove")
DEFAULT_MAX_STATES = 5_000_000
STRATEGIES = ("auto", "dfs", "levels")
_PAUSE = 4096  # search steps between turns when two searches share the work
INF = math.inf

# Model step codes: a determinate remove checks its 'found'; an optional one
# returns anything, so it needs its own code.
_SET, _GET, _REMOVE, _REMOVE_ANY = range(4)


@dataclass
class Op:
    """One client operation as recorded by a test harness.

    `value` is the value written (set), the value read (get, None = absent) or
    the bool `found` that remove returned. An op with `end is None` or
    `ok=False` is indeterminate: it may have taken effect at any time after
    `start`, or never. Ops of one client are expected not to overlap in time
    (the checker does not rely on it). Values must be hashable.
    """

    client: int
    kind: str
    key: Hashable
    value: object
    start: float
    end: Optional[float]
    ok: bool = True

    @property
    def determinate(self) -> bool:
        return self.ok and self.end is not None


@dataclass
class Result:
    """Outcome of `check`.

    `key` and `explanation` describe the first failing key (in order of first
    appearance in the history); `failed_keys` lists every failing key.
    `states_explored` counts search steps (model steps tried, and cached
    configurations compared), summed over keys.
    """

    ok: bool
    key: Optional[Hashable] = None
    explanation: str = ""
    checked_ops: int = 0
    failed_keys: list[Hashable] = field(default_factory=list)
    states_explored: int = 0

    def __bool__(self) -> bool:
        return self.ok


@dataclass
class _Prepared:
    """An op reduced to what the search needs (values interned to ints)."""

    index: int  # position in the list given to check(), for explanations
    code: int
    arg: int  # value id for set/get (0 = absent), found (0/1) for remove
    start: float
    end: float  # INF for optional ops
    optional: bool
    then_read: bool = False  # a set whose value only it writes, and which is read


def check(ops: Iterable[Op], initial: object = None,
          max_states: int = DEFAULT_MAX_STATES, *, strategy: str = "auto") -> Result:
    """Checks that `ops` is linearizable, key by key.

    `initial` is every key's value before the history (None = absent).
    `max_states` bounds the search steps per key; exceeding it fails the
    check with "search limit exceeded", since an unfinished search proves
    nothing. Explaining a failure (finding its shortest failing prefix) may
    take up to as many steps again.

    `strategy` is for tests: "dfs" or "levels" runs only that search (see
    `_run`); both give the same verdicts.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}")
    ops = list(ops)
    by_key: dict = {}
    for i, op in enumerate(ops):
        _validate(i, op)
        by_key.setdefault(op.key, []).append(i)
    result = Result(ok=True, checked_ops=len(ops))
    for key, indices in by_key.items():
        ok, explanation, explored = _check_key(ops, key, indices, initial, max_states, strategy)
        result.states_explored += explored
        if not ok:
            if result.ok:
                result.ok, result.key, result.explanation = False, key, explanation
            result.failed_keys.append(key)
    if len(result.failed_keys) > 1:
        others = ", ".join(repr(k) for k in result.failed_keys[1:])
        result.explanation += f"\n(other failing keys: {others})"
    return result


def _validate(i: int, op: Op) -> None:
    if op.kind not in KINDS:
        raise ValueError(f"op #{i}: kind {op.kind!r} is not modelled (only {', '.join(KINDS)})")
    if not math.isfinite(op.start):
        raise ValueError(f"op #{i}: start must be finite")
    if op.end is not None and op.end < op.start:
        raise ValueError(f"op #{i}: ends ({op.end}) before it starts ({op.start})")
    if op.kind == "set" and op.value is None:
        raise ValueError(f"op #{i}: set of None (absent is not a value)")
    if op.kind == "remove" and op.determinate and not isinstance(op.value, bool):
        raise ValueError(f"op #{i}: a completed remove records a bool 'found', got {op.value!r}")


_UNREAD = 1  # value id standing for every value that no completed get returned


def _check_key(ops: list[Op], key: Hashable, indices: list[int], initial: object,
               max_states: int, strategy: str) -> tuple[bool, str, int]:
    outcome, explored, after, by = _run(ops, indices, initial, max_states, strategy)
    if outcome == "ok":
        return True, "", explored
    if outcome == "limit":
        return False, (f"key {key!r}: search limit exceeded ({max_states} states explored); "
                       "linearizability unknown, so not a pass"), explored
    end, exact, spent = _shortest_failing_prefix(ops, indices, initial, after, by,
                                                 max_states, strategy)
    return False, _explain(ops, key, indices, end, exact), explored + spent


def _run(ops: list[Op], indices: list[int], initial: object, max_states: int,
         strategy: str) -> tuple:
    """Prepares and searches one key's history.

    Returns (outcome, steps, after, by): outcome is "ok", "fail" or "limit";
    on "fail", the shortest failing cut of the history (see
    `_shortest_failing_prefix`) ends at or after time `after` and at or
    before time `by` (None: the last completion).

    The depth-first search is the quickest to find a linearization. Proving
    there is none means visiting every configuration, and when optional ops
    make the depth-first search visit some several times (see `_search`), the
    level-by-level search, which does not, can be far quicker. "auto" runs
    both in turns and takes the first verdict (they always agree), so it
    costs at most twice the better one.
    """
    # Values no completed get returned are told apart by nothing (a remove
    # only sees presence), so they share one id: fewer distinct states to cache.
    ids: dict = {}  # value -> id; 0 is "absent"
    for i in indices:
        if ops[i].kind == "get" and ops[i].determinate and ops[i].value is not None:
            ids.setdefault(ops[i].value, len(ids) + 2)

    def intern(v: object) -> int:
        return 0 if v is None else ids.get(v, _UNREAD)

    init = intern(initial)
    prepared = _prepare(ops, indices, intern, init)
    impossible = _impossible(prepared, init)
    if impossible is not None:
        return ("fail", 0, -INF, impossible)
    kinds = {"dfs": [_search], "levels": [_search_levels],
             "auto": [_search, _search_levels]}[strategy]
    searches = [search(prepared, init, len(ids) + 2, max_states) for search in kinds]
    spent = [0] * len(searches)
    while True:
        for n, search in enumerate(searches):
            try:
                spent[n] = next(search)
            except StopIteration as done:
                outcome, spent[n], after = done.value
                if outcome != "limit":
                    return outcome, sum(spent), after, None
            if sum(spent) > max_states:
                return "limit", sum(spent), None, None


def _shortest_failing_prefix(ops: list[Op], indices: list[int], initial: object,
                             after: float, by: Optional[float], budget: int,
                             strategy: str) -> tuple[float, bool, int]:
    """Finds the earliest completion time T such that the history cut at T
    fails: ops completed by T count, ops still running at T may or may not
    have taken effect (with any result), later ops are left out. Cutting
    later only adds constraints, so failure is monotonic in T; T is known to
    lie in [after, by].

    Gallops up from `after`, then bisects. Returns (T, whether T is surely
    the earliest, steps): when the budget runs out, T is the earliest
    failing cut found so far.
    """
    ends = sorted({ops[i].end for i in indices if ops[i].determinate})
    spent = 0

    def fails(at: int) -> Optional[bool]:
        nonlocal spent
        cut, kept = list(ops), []
        for i in indices:
            op = ops[i]
            if op.start <= ends[at]:
                kept.append(i)
                if op.determinate and op.end > ends[at]:
                    cut[i] = replace(op, end=None)
        outcome, explored, _, _ = _run(cut, kept, initial, budget - spent, strategy)
        spent += explored
        return None if outcome == "limit" else outcome == "fail"

    lo = bisect.bisect_left(ends, after)
    hi = len(ends) - 1 if by is None else bisect.bisect_left(ends, by)  # the cut at hi fails
    step = 1
    while lo < hi:
        probe = min(lo + step - 1, hi - 1) if step else (lo + hi) // 2
        verdict = fails(probe)
        if verdict is None:
            return ends[hi], False, spent
        if verdict:
            hi, step = probe, 0  # bracketed: bisect from now on
        else:
            lo, step = probe + 1, step * 2
    return ends[hi], True, spent


def _prepare(ops: list[Op], indices: list[int], intern, init: int) -> list[_Prepared]:
    """Turns a key's ops into `_Prepared`, dropping or bounding optional ones.

    Reductions (all sound: they keep exactly the same verdicts):
    * an indeterminate get is dropped: it changes nothing and read nothing known;
    * an optional set(v) is dropped when no completed get that ends after its
      start read v and no completed remove that ends after its start found
      something: once linearized, v would be visible to nothing;
    * an optional remove is dropped likewise when nothing ending after its
      start read absent or found nothing;
    * an optional set(v) that is v's only writer (v not the initial value) and
      that a completed get read becomes mandatory, returning by the earliest
      such read (ending after its start): that read needs it.
    It also marks such only writers of a read value (`then_read`).
    Without these, every optional write would stay pending to the end and
    multiply the configurations the search may visit.
    """
    out: list[_Prepared] = []
    read_ends: dict[int, list[float]] = {}  # value id -> sorted ends of completed gets of it
    found_end = {True: -INF, False: -INF}  # latest end of a completed remove per result
    writers: dict[int, int] = {}
    optional: list[tuple[int, Op]] = []
    for i in indices:
        op = ops[i]
        if op.kind == "set":
            vid = intern(op.value)
            writers[vid] = writers.get(vid, 0) + 1
        if not op.determinate:
            if op.kind != "get":
                optional.append((i, op))
            continue
        if op.kind == "set":
            out.append(_Prepared(i, _SET, intern(op.value), op.start, op.end, False))
        elif op.kind == "get":
            vid = intern(op.value)
            read_ends.setdefault(vid, []).append(op.end)
            out.append(_Prepared(i, _GET, vid, op.start, op.end, False))
        else:
            found_end[op.value] = max(found_end[op.value], op.end)
            out.append(_Prepared(i, _REMOVE, int(op.value), op.start, op.end, False))
    for ends in read_ends.values():
        ends.sort()
    for i, op in optional:
        if op.kind == "remove":
            ends = read_ends.get(0, [])
            if (ends and ends[-1] >= op.start) or found_end[False] >= op.start:
                out.append(_Prepared(i, _REMOVE_ANY, 0, op.start, INF, True))
            continue
        vid = intern(op.value)
        ends = read_ends.get(vid, [])
        at = bisect.bisect_left(ends, op.start)  # first read ending at/after the start
        if at < len(ends) and writers[vid] == 1 and vid != init:
            out.append(_Prepared(i, _SET, vid, op.start, ends[at], False))
        elif at < len(ends) or found_end[True] >= op.start:
            out.append(_Prepared(i, _SET, vid, op.start, INF, True))
    for p in out:
        # The only write of a value that is read: in a linearization nothing
        # but a read of it can come right after it, or no later read could
        # see it. The search uses that to cut wrong placements at once.
        if p.code == _SET and not p.optional and p.arg != _UNREAD and p.arg != init \
                and writers[p.arg] == 1:
            p.then_read = True
    return out


def _impossible(ops: list[_Prepared], init: int) -> Optional[float]:
    """The earliest completion of a mandatory op that no state reachable by
    then allows (a read of a value nobody wrote, say), or None. Such an op
    fails every search, but only after it has visited every configuration
    before it: this finds it at once."""
    first_write: dict[int, float] = {}  # value id -> earliest start of a set of it
    first_remove, first_set = INF, INF
    for p in ops:
        if p.code == _SET:
            first_write[p.arg] = min(first_write.get(p.arg, INF), p.start)
            first_set = min(first_set, p.start)
        elif p.code in (_REMOVE, _REMOVE_ANY):
            first_remove = min(first_remove, p.start)
    worst = None
    for p in ops:
        if p.optional:
            continue
        if p.code == _GET:
            made = first_remove if p.arg == 0 else first_write.get(p.arg, INF)
            possible = p.arg == init or made <= p.end
        elif p.code == _REMOVE and p.arg:
            possible = init != 0 or first_set <= p.end
        else:
            continue
        if not possible and (worst is None or p.end < worst):
            worst = p.end
    return worst


def _search(ops: list[_Prepared], init: int, n_values: int, max_states: int) -> tuple:
    """Lowe's just-in-time linearization search over one key, iteratively.

    A generator: it yields its step count now and then so that `_run` can
    interleave it with `_search_levels`, and returns ("ok" | "fail" |
    "limit", steps, furthest). Steps count model steps tried and
    used-vectors compared. On "fail", `furthest` is the latest return time
    the search got stuck at. It got every op that completed before then
    linearized, so every cut of the history (see `_shortest_failing_prefix`)
    before then is linearizable.

    Optional ops never return, so they stay out of the event list; the search
    only turns to them when stuck, and only in a canonical way, which keeps
    them from multiplying configurations:
    * right before a completed get or remove that needs it: an optional write
      followed by nothing, by another write, or by an op whose result it does
      not change can be dropped from any linearization;
    * optional ops with the same effect are interchangeable, so only the
      earliest-started one not yet used may be used, and a configuration is
      pruned when one with the same mandatory ops and state but as many or
      more unused optional ops of every kind has failed already.
    A `then_read` set likewise may only be followed by a read.
    """
    mandatory = [i for i, p in enumerate(ops) if not p.optional]
    # Positions 1..len(events) in time order; 0 is the head of the list of
    # mandatory entries, `tail` its sentinel. On a tie a call sorts before a
    # return: the ops are taken as overlapping, so clock granularity never
    # fails a valid history.
    events = sorted([(p.start, 0, i) for i, p in enumerate(ops)]
                    + [(ops[i].end, 1, i) for i in mandatory])
    tail = len(events) + 1
    nxt = [tail] * (tail + 1)
    prv = [0] * (tail + 1)
    op_of = [-1] * (tail + 1)
    is_call = [False] * (tail + 1)
    match = [0] * (tail + 1)
    call_entry = [0] * len(ops)
    bit = [0] * len(ops)  # mask bit of a mandatory op: its rank in return order
    classes: dict[tuple[int, int], int] = {}  # effect of an optional op -> its class
    starts: list[list[int]] = []  # per class, the call positions of its ops in order
    effect: list[int] = []  # per class, the state it leaves
    last, returned = 0, 0
    for e, (_, is_return, i) in enumerate(events, 1):
        p = ops[i]
        if p.optional:
            k = classes.setdefault((p.code, p.arg), len(classes))
            if k == len(starts):
                starts.append([])
                effect.append(p.arg if p.code == _SET else 0)
            starts[k].append(e)
            continue
        op_of[e] = i
        nxt[last], prv[e], last = e, last, e
        if is_return:
            match[e], match[call_entry[i]] = call_entry[i], e
            bit[i], returned = returned, returned + 1
        else:
            is_call[e] = True
            call_entry[i] = e
    nxt[last], prv[tail] = tail, last
    code = [p.code for p in ops]
    arg = [p.arg for p in ops]
    follow = [int(p.then_read) for p in ops]  # `observe` after the op
    n_classes = len(classes)
    used = [0] * n_classes  # optional ops used per class: always its first ones
    stride = len(mandatory) + 1

    # The mask of linearized mandatory ops is kept as `base` (bits below it
    # all set: ops long done) and `rel` (the bits from `base` up), so that it
    # and the cache key stay small integers.
    base, rel = 0, 0
    state = init
    # What may come next: 0 anything; 1 a completed get (after an optional op
    # that changed the value, or a `then_read` set); 2 a completed get or
    # remove (after an optional op that changed presence).
    observe = 0
    ut: tuple = ()  # tuple(used), the part of a configuration dominance compares
    stack: list[tuple] = []  # (entry, class or -1, state, observe, base, rel) before each step
    # configuration (mandatory ops done, state, observe) -> the used-vector,
    # or list of them, it was explored with
    seen: dict[int, object] = {}
    explored = furthest = 0
    pause = min(_PAUSE, max_states)  # when to yield, to let another search run
    e, k_from = nxt[0], 0
    while nxt[0] != tail:
        if is_call[e]:
            i = op_of[e]
            c = code[i]
            if observe and (c == _SET or (c == _REMOVE and observe == 1)):
                e = nxt[e]
                continue
            explored += 1
            if explored > pause:
                if explored > max_states:
                    return ("limit", explored, None)
                yield explored
                pause = min(pause + _PAUSE, max_states)
            if c == _GET:
                ok, new = state == arg[i], state
            elif c == _SET:
                ok, new = True, arg[i]
            else:
                ok, new = (state != 0) == arg[i], 0
            if ok:
                r = rel | (1 << (bit[i] - base))
                low = (r ^ (r + 1)).bit_length() - 1  # trailing ones, now done with
                r >>= low
                config = ((r * n_values + new) * stride + base + low) * 3 + follow[i]
                old = seen.get(config)
                if old is None:
                    seen[config], fresh = ut, True
                elif n_classes:
                    fresh, work = _dominance(seen, config, old, ut)
                    explored += work
                else:
                    fresh = False
                if fresh:
                    stack.append((e, -1, state, observe, base, rel))
                    state, observe, base, rel = new, follow[i], base + low, r
                    r = match[e]  # lift the call and its return out of the list
                    nxt[prv[e]], prv[nxt[e]] = nxt[e], prv[e]
                    nxt[prv[r]], prv[nxt[r]] = nxt[r], prv[r]
                    e, k_from = nxt[0], 0
                    continue
            e = nxt[e]
            continue
        # `e` is the earliest return left: no mandatory op can be linearized
        # before it any more; try an optional op that has started by then.
        stepped = False
        for k in range(k_from, n_classes if not observe else 0):
            u, new = used[k], effect[k]
            if u < len(starts[k]) and starts[k][u] < e and new != state:
                explored += 1
                if explored > max_states:
                    return ("limit", explored, None)
                used[k] += 1
                obs = 2 if (new != 0) != (state != 0) else 1
                config = ((rel * n_values + new) * stride + base) * 3 + obs
                old = seen.get(config)
                if old is None:
                    seen[config], fresh = tuple(used), True
                else:
                    fresh, work = _dominance(seen, config, old, tuple(used))
                    explored += work
                if fresh:
                    stack.append((e, k, state, observe, base, rel))
                    state, observe, ut = new, obs, tuple(used)
                    stepped = True
                    break
                used[k] -= 1
        if stepped:
            e, k_from = nxt[0], 0
            continue
        furthest = max(furthest, e)
        if not stack:
            return ("fail", explored, events[furthest - 1][0])
        e, k, state, observe, base, rel = stack.pop()
        if k >= 0:
            used[k] -= 1
            ut = tuple(used)
            k_from = k + 1  # back at the same return: try the next classes
        else:
            r = match[e]  # unlift, in the reverse order of the lift
            nxt[prv[r]] = prv[nxt[r]] = r
            nxt[prv[e]] = prv[nxt[e]] = e
            e, k_from = nxt[e], 0
    return ("ok", explored, None)


def _search_levels(ops: list[_Prepared], init: int, n_values: int, max_states: int) -> tuple:
    """The same search as `_search`, over the same configurations and with the
    same canonical use of optional ops, but breadth-first: level n holds the
    configurations with n mandatory ops linearized. Every configuration that
    leads to one at level n is at a lower level, or at level n with no
    constraint on what comes next, so each is expanded once, with the final
    set of its least used-vectors. A generator like `_search`.
    """
    mandatory = [i for i, p in enumerate(ops) if not p.optional]
    events = sorted([(p.start, 0, i) for i, p in enumerate(ops)]
                    + [(ops[i].end, 1, i) for i in mandatory])
    call_at: dict[int, int] = {}  # mandatory op -> position of its call
    by_bit: list[int] = []  # mandatory ops in return order: bit b of the mask is by_bit[b]
    return_at: list[int] = []  # position of the return of by_bit[b]
    classes: dict[tuple[int, int], int] = {}
    starts: list[list[int]] = []
    effect: list[int] = []
    for e, (_, is_return, i) in enumerate(events, 1):
        p = ops[i]
        if p.optional:
            k = classes.setdefault((p.code, p.arg), len(classes))
            if k == len(starts):
                starts.append([])
                effect.append(p.arg if p.code == _SET else 0)
            starts[k].append(e)
        elif is_return:
            by_bit.append(i)
            return_at.append(e)
        else:
            call_at[i] = e
    m, n_classes = len(by_bit), len(classes)
    # window[b]: the ops (as bits, in call order) that may be linearized next
    # when bits below b are set and b is not: those called before b returns.
    bit_of = {i: b for b, i in enumerate(by_bit)}
    by_call = sorted(by_bit, key=call_at.__getitem__)
    window: list[list[int]] = []
    active: set[int] = set()
    called = 0
    for b in range(m):
        while called < m and call_at[by_call[called]] < return_at[b]:
            active.add(bit_of[by_call[called]])
            called += 1
        active.discard(b - 1)
        window.append(sorted(active, key=lambda j: call_at[by_bit[j]]))
    code = [ops[i].code for i in by_bit]
    arg = [ops[i].arg for i in by_bit]
    follow = [int(ops[i].then_read) for i in by_bit]

    explored = furthest = 0
    pause = min(_PAUSE, max_states)  # when to yield, to let another search run
    # (base, rel, state, observe) as in `_search` -> list of least used-vectors
    level: dict[tuple, list[tuple]] = {(0, 0, init, 0): [(0,) * n_classes]}
    for _ in range(m):
        # Optional steps stay on this level; only configurations with no
        # constraint on what comes next may take one.
        added: dict[tuple, list[tuple]] = {}
        for (base, rel, state, observe), vectors in level.items():
            if observe:
                continue
            for k in range(n_classes):
                new = effect[k]
                if new == state:
                    continue
                then = 2 if (new != 0) != (state != 0) else 1
                target = level.get((base, rel, new, then))
                if target is None:
                    target = added.setdefault((base, rel, new, then), [])
                for v in vectors:
                    explored += 1
                    if v[k] < len(starts[k]) and starts[k][v[k]] < return_at[base]:
                        explored += _pareto_add(target, v[:k] + (v[k] + 1,) + v[k + 1:])
        level.update((key, v) for key, v in added.items() if v)
        following: dict[tuple, list[tuple]] = {}
        for (base, rel, state, observe), vectors in level.items():
            furthest = max(furthest, return_at[base])
            for j in window[base]:
                if (rel >> (j - base)) & 1:
                    continue
                c = code[j]
                if observe and (c == _SET or (c == _REMOVE and observe == 1)):
                    continue
                explored += 1
                if explored > pause:
                    if explored > max_states:
                        return ("limit", explored, None)
                    yield explored
                    pause = min(pause + _PAUSE, max_states)
                if c == _GET:
                    if state != arg[j]:
                        continue
                    new = state
                elif c == _SET:
                    new = arg[j]
                elif (state != 0) == arg[j]:
                    new = 0
                else:
                    continue
                r = rel | (1 << (j - base))
                low = (r ^ (r + 1)).bit_length() - 1
                key = (base + low, r >> low, new, follow[j])
                target = following.get(key)
                if target is None:
                    following[key] = list(vectors)
                elif n_classes:
                    for v in vectors:
                        explored += _pareto_add(target, v)
        if not following:
            return ("fail", explored, events[furthest - 1][0])
        level = following
    return ("ok", explored, None)


def _pareto_add(vectors: list[tuple], used: tuple) -> int:
    """Adds `used` to a list of least used-vectors unless one there is no
    greater in any class, dropping those it beats. Returns vectors compared."""
    for o in vectors:
        if all(a <= b for a, b in zip(o, used)):
            return len(vectors)
    n = len(vectors)
    vectors[:] = [o for o in vectors if not all(a >= b for a, b in zip(o, used))]
    vectors.append(used)
    return n


def _dominance(seen: dict, config: int, old: object, used: tuple) -> tuple[bool, int]:
    """For a configuration seen before with the used-vector(s) `old`: whether
    it is worth exploring again with `used`. It is not if some vector it was
    seen with used no more optional ops in any class: it failed then with at
    least as many ops to spare (a seen configuration is never an ancestor of
    one with the same key, as the mandatory ops or `observe` differ).
    Records `used` if fresh, keeping only vectors no other one beats.
    Returns (fresh, vectors compared)."""
    olds = old if isinstance(old, list) else [old]
    for o in olds:
        if all(a <= b for a, b in zip(o, used)):
            return False, len(olds)
    kept = [o for o in olds if not all(a >= b for a, b in zip(o, used))]
    kept.append(used)
    seen[config] = kept
    return True, len(olds)


def _describe(ops: list[Op], i: int) -> str:
    op = ops[i]
    if not op.determinate:
        what = f"{op.kind} {op.value!r}" if op.kind == "set" else op.kind
        return f"#{i} client {op.client}: {what} [{op.start}, indeterminate]"
    what = {"set": f"set {op.value!r}", "get": f"get -> {op.value!r}",
            "remove": f"remove -> found={op.value}"}[op.kind]
    return f"#{i} client {op.client}: {what} [{op.start}, {op.end}]"


def _explain(ops: list[Op], key: Hashable, indices: list[int], end: float, exact: bool) -> str:
    """Names the op(s) completing at the end of the shortest failing prefix,
    and the ops around them."""
    culprits = [i for i in indices if ops[i].determinate and ops[i].end == end]
    start = min(ops[i].start for i in culprits)
    overlapping = [i for i in indices if i not in culprits and ops[i].determinate
                   and ops[i].start <= end and ops[i].end >= start]
    in_doubt = [i for i in indices if not ops[i].determinate and ops[i].kind != "get"
                and ops[i].start <= end]
    before = sorted((i for i in indices if ops[i].determinate and ops[i].end < start),
                    key=lambda i: ops[i].end)[-5:]
    which = "The shortest" if exact else "The shortest found (search budget ran out)"
    lines = [f"key {key!r}: not linearizable. {which} failing prefix of its history",
             "ends with the completion of:"]
    lines += [f"    {_describe(ops, i)}" for i in culprits]
    lines.append("  (ops completed by then count; ops running then may or may not have"
                 " taken effect)")
    for c in culprits:
        if ops[c].kind == "get" and ops[c].value is not None:
            writers = [i for i in indices if ops[i].kind == "set" and ops[i].value == ops[c].value]
            if not writers:
                lines.append(f"  nothing wrote the value #{c} read")
            else:
                lines.append(f"  writes of the value #{c} read:")
                lines += [f"    {_describe(ops, i)}" for i in writers[:3]]
    sections = [("ops overlapping it:", overlapping),
                ("last ops completed before it started:", before),
                ("indeterminate writes started by then (latest):", in_doubt[-5:])]
    for title, shown in sections:
        if shown:
            lines.append("  " + title)
            lines += [f"    {_describe(ops, i)}" for i in shown[:10]]
    return "\n".join(lines)
