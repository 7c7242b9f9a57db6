"""Replication, handoff and recovery across real node processes on 127.0.0.1:
every test makes a failure happen (SIGKILL, SIGSTOP, killed processes, a
partition, a skewed clock, data processes added and drained) under load and
checks what was acknowledged. docs/store.md, "Replication and failures",
says what each one promises."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from cluster_support import eventually, settled
from linearizability import check
from load import longest_gap, lost_writes, run_registers, run_writers
from test_cluster import mesh

DOWN_S = 1.0  # the test nodes' down_after (cluster_support: --down-ms 1000)


def ok(answer):
    assert answer.startswith("ok"), answer
    return answer


def start_db(nodes, data_per_node=1, servers=2, opts="replicas=3 write_acks=2"):
    mesh(nodes)
    for n in nodes[:servers]:  # the first is the oldest: the master
        ok(n.cmd(f"server db {opts}"))
    for n in nodes:
        ok(n.cmd(f"data db {data_per_node}"))
    assert eventually(lambda: settled(nodes, data_per_node * len(nodes)), timeout=20), \
        [n.cmd("slots db") for n in nodes] + [nodes[0].cmd("states db")]


def acked(writers):
    return sum(len(w.acked) for w in writers)


def finish(stop, threads):
    stop.set()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a load thread did not stop"


def test_sigkill_of_a_node_loses_no_acknowledged_write(cluster):
    a, b, c = cluster(3)
    start_db([a, b, c])  # a holds the master and a data process
    stop = threading.Event()
    survivors = [b.address, c.address]
    ws = run_writers(survivors, "db", 4, stop)
    assert eventually(lambda: acked(ws) >= 400, timeout=20)
    killed_at = time.monotonic()
    a.signal(signal.SIGKILL)
    a.proc.wait()
    before = acked(ws)
    assert eventually(lambda: acked(ws) >= before + 400, timeout=30), "writes did not resume"
    finish(stop, ws)
    lost, total = lost_writes(survivors, "db", ws)
    print(f"{total} acknowledged writes, {len(lost)} lost; errors {sum((w.errors for w in ws), start=__import__('collections').Counter())}")
    assert lost == [], lost[:10]
    # Every writer went on within 2 s of the node being declared down.
    gap = longest_gap(ws, killed_at)
    print(f"longest pause of a writer after the kill: {gap:.2f} s (down after {DOWN_S} s)")
    assert gap <= DOWN_S + 2.0, gap
    assert eventually(lambda: settled([b, c], 2), timeout=20)


def test_ten_data_process_kills_lose_nothing_and_move_no_slot(cluster):
    nodes = cluster(3)
    start_db(nodes, data_per_node=2)
    owners = nodes[0].cmd("slots db").split()[3:]
    stop = threading.Event()
    addresses = [n.address for n in nodes]
    ws = run_writers(addresses, "db", 4, stop)
    for i in range(10):
        target = nodes[i % 3]
        before = acked(ws)
        assert target.cmd("kill_data db 1") == "ok 1"
        assert eventually(lambda: settled(nodes, 6), timeout=20), f"kill {i}: not back to serving"
        assert eventually(lambda: acked(ws) >= before + 50, timeout=20), f"kill {i}: writes stopped"
    finish(stop, ws)
    lost, total = lost_writes(addresses, "db", ws)
    print(f"{total} acknowledged writes over 10 kills, {len(lost)} lost")
    for k in lost[:5]:
        print(k, nodes[0].cmd(f"locate db {k}"))
    assert lost == [], lost[:10]
    assert nodes[0].cmd("slots db").split()[3:] == owners, "a restart must not move any slot"
    assert int(nodes[0].cmd("moved db").split()[1]) > 0, "restarted processes refilled their slots"


def test_a_new_primary_copies_only_the_slots_its_holders_disagree_on(cluster):
    # Holders that agree on a slot (equal digests) send nothing: the slots of
    # a killed data process are served again after one round trip per source,
    # not after a copy of every entry (reads of them failed meanwhile).
    nodes = cluster(3)
    start_db(nodes)
    ok(nodes[1].cmd(f"rconnect {nodes[1].address} db"))
    ok(nodes[1].cmd("fill k 20000 v"))
    assert eventually(lambda: settled(nodes, 3), timeout=20)
    assert nodes[2].cmd("kill_data db 1") == "ok 1"
    assert eventually(lambda: settled(nodes, 3), timeout=30), nodes[0].cmd("states db")
    _, _, _, agreed, copied = nodes[0].cmd("moved db").split()
    agreed, copied = int(agreed), int(copied)
    print(f"slots synced by agreement {agreed}, by copy {copied}")
    # Each of the dead primary's slots (about a third of 16,384) has two
    # sources: the surviving replica agrees; the restarted (empty) one does not.
    assert agreed >= 16384 // 4, (agreed, copied)
    assert copied <= agreed + 100, (agreed, copied)
    assert nodes[1].cmd("check k 20000 v") == "check 20000"


def test_a_paused_node_comes_back_without_losing_or_reordering_anything(cluster):
    a, b, c = cluster(3)
    start_db([a, b, c])  # a holds the master and a data process
    stop = threading.Event()
    ws = run_writers([b.address, c.address], "db", 3, stop)
    # Register clients on every node, the paused one included: what a node
    # answers right after it wakes up is what this test is about.
    rs, history = run_registers([a.address, b.address, c.address], "db", 6, [f"r{k}" for k in range(5)], stop,
                                limit=100_000, seconds=90)
    assert eventually(lambda: acked(ws) >= 300, timeout=20)
    a.signal(signal.SIGSTOP)
    time.sleep(10)  # the pause itself (past the 1 s down detection)
    during = acked(ws)
    a.signal(signal.SIGCONT)
    assert eventually(lambda: settled([a, b, c], 3), timeout=30), [n.cmd("slots db") for n in (a, b, c)]
    resumed = acked(ws)
    assert eventually(lambda: acked(ws) >= resumed + 300, timeout=20)
    finish(stop, ws + rs)
    lost, total = lost_writes([b.address, c.address], "db", ws)
    print(f"{total} acknowledged writes, {during} before the node woke up, {len(lost)} lost")
    assert lost == [], lost[:10]
    result = check(history)
    print(f"{len(history)} register operations, {sum(r.done for r in rs)} completed; linearizable: {result.ok}")
    assert result.ok, result.explanation


def test_adding_and_draining_data_processes_under_load(cluster):
    a, b, c = cluster(3)
    start_db([a, b, c])
    stop = threading.Event()
    addresses = [a.address, b.address, c.address]
    ws = run_writers(addresses, "db", 4, stop, timeout=15.0)
    assert eventually(lambda: acked(ws) >= 300, timeout=20)
    ok(a.cmd("data db 1"))
    ok(b.cmd("data db 1"))
    assert eventually(lambda: settled([a, b, c], 5), timeout=30)
    mid = acked(ws)
    assert eventually(lambda: acked(ws) >= mid + 200, timeout=20)
    ok(c.cmd("stop_data db 1"))  # graceful: its slots move first
    ok(a.cmd("stop_data db 1"))
    assert eventually(lambda: settled([a, b, c], 3), timeout=30)
    done = acked(ws)
    assert eventually(lambda: acked(ws) >= done + 200, timeout=20)
    finish(stop, ws)
    errors = sum((w.errors for w in ws), start=__import__("collections").Counter())
    lost, total = lost_writes(addresses, "db", ws)
    print(f"{total} acknowledged writes while 2 data processes were added and 2 drained; errors {dict(errors)}")
    assert lost == [], lost[:10]
    assert not errors, "every request is answered while slots move (clients retry moved ones)"
    keys = [int(x) for x in a.cmd("stats db").split()[1:]]
    assert len(keys) == 3 and sum(keys) == total
    mean = total / 3
    assert all(abs(k - mean) <= 0.1 * mean for k in keys), keys
    assert a.cmd("stop_data db 9").startswith("error"), "cannot drain more than run there"


def test_draining_the_last_data_process_is_refused(cluster):
    a, = cluster(1)
    start_db([a], servers=1)
    answer = a.cmd("stop_data db 1")
    assert answer.startswith("error") and "without a data process" in answer, answer
    assert a.cmd("states db") == "states serving"


FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def test_a_failover_to_nodes_whose_clocks_run_behind_keeps_every_write(cluster):
    assert FAKETIME.exists(), "libfaketime is missing (scripts/install-deps.sh installs it)"
    behind = {"LD_PRELOAD": str(FAKETIME), "FAKETIME": "-5m", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
              "FAKETIME_NO_CACHE": "1"}
    a, = cluster(1)
    b, c = cluster(2, env=behind)  # five minutes behind a
    start_db([a, b, c], servers=3)
    ok(b.cmd(f"rconnect {b.address},{c.address} db"))
    ok(b.cmd("fill k: 2000 first"))  # primaries on a stamp a third of these with a's clock, 5 minutes ahead
    assert b.cmd("check k: 2000 first") == "check 2000"
    a.signal(signal.SIGKILL)  # a's slots fail over to b and c, whose clocks are behind
    a.proc.wait()
    assert eventually(lambda: settled([b, c], 2), timeout=20)
    # Overwrite every key: the new primaries must not keep the "newer" old values.
    assert b.cmd("fill k: 2000 second") == "ok"
    assert b.cmd("check k: 2000 second") == "check 2000", "writes after the failover must all be visible"
    assert b.cmd("rdel k:7") == "removed"
    assert b.cmd("rget k:7") == "none", "and so must removals"


def test_linearizable_while_masters_and_data_processes_are_killed(cluster):
    nodes = cluster(3)
    start_db(nodes, servers=3)
    addresses = [n.address for n in nodes]
    stop = threading.Event()
    rs, history = run_registers(addresses, "db", 6, [f"k{i}" for i in range(5)], stop, limit=100_000, seconds=90)
    assert eventually(lambda: sum(r.done for r in rs) >= 300, timeout=20)
    faults = 0
    for round_ in range(2):
        for n in nodes:
            if n.cmd("kill_master db") == "ok":
                faults += 1
                break
        assert eventually(lambda: settled(nodes, 3), timeout=20)
        before = sum(r.done for r in rs)
        assert eventually(lambda: sum(r.done for r in rs) >= before + 200, timeout=20)
        assert nodes[round_].cmd("kill_data db 1") == "ok 1"
        faults += 1
        assert eventually(lambda: settled(nodes, 3), timeout=20)
        before = sum(r.done for r in rs)
        assert eventually(lambda: sum(r.done for r in rs) >= before + 200, timeout=20)
    finish(stop, rs)
    result = check(history)
    print(f"{len(history)} operations on 5 keys by 6 clients through {faults} kills; linearizable: {result.ok}")
    assert faults == 4
    assert result.ok, result.explanation


def test_a_partition_keeps_the_majoritys_writes_and_heals_to_one_master(cluster):
    a, b, c = cluster(3)
    start_db([a, b, c], servers=3)  # a: the master
    assert {n.cmd("master db") for n in (a, b, c)} == {a.cmd("master db")}
    stop = threading.Event()
    majority = run_writers([b.address, c.address], "db", 3, stop, tag="maj", timeout=3.0)
    # Clients on a's side of the cut: they reach only a (not routed to b or c).
    minority = run_writers([a.address], "db", 2, stop, tag="min", timeout=3.0, route=False)
    rs, history = run_registers([b.address, a.address, c.address], "db", 4, [f"p{i}" for i in range(4)], stop,
                                limit=100_000, seconds=90)
    assert eventually(lambda: acked(majority) >= 200 and acked(minority) >= 100, timeout=20)
    cut = time.monotonic()
    ok(a.cmd(f"partition {b.name} {c.name}"))  # a (the master, one of three nodes) is cut off
    assert eventually(lambda: b.nodes() == [c.name], timeout=10)
    # The majority side goes on with a master of its own.
    before = acked(majority)
    assert eventually(lambda: acked(majority) >= before + 300, timeout=20), "the majority side must keep writing"
    assert b.cmd("master db") != a.cmd("master db"), "each side has its own master during the partition"
    time.sleep(4)  # the partition lasts a while
    heal = time.monotonic()
    ok(a.cmd("heal"))
    assert eventually(lambda: len({n.cmd("master db") for n in (a, b, c)}) == 1, timeout=20), "one master after"
    assert eventually(lambda: settled([a, b, c], 3), timeout=30)
    finish(stop, majority + minority + rs)
    # The minority acknowledged nothing once its lease (1 s) ran out.
    late = [t for w in minority for t in w.ack_times if cut + DOWN_S + 0.5 < t < heal]
    assert late == [], f"{len(late)} writes acknowledged by the cut-off side after its lease ran out"
    lost, total = lost_writes([b.address, c.address], "db", majority + minority)
    print(f"{total} acknowledged writes across a partition, {len(lost)} lost")
    assert lost == [], lost[:10]
    result = check(history)
    assert result.ok, result.explanation


def test_nodes_find_each_other_again_after_any_partition(cluster):
    a, b, c = cluster(3, forget_ms=500)  # dialled less often after 0.5 s apart
    start_db([a, b, c], servers=3)
    ok(a.cmd(f"partition {b.name} {c.name}"))
    assert eventually(lambda: a.nodes() == [] and b.nodes() == [c.name], timeout=10)
    time.sleep(3)  # well past forget_after
    ok(a.cmd("heal"))
    assert eventually(lambda: len(a.nodes()) == 2, timeout=20), "a lost node is dialled again, however long"
    assert eventually(lambda: len({n.cmd("master db") for n in (a, b, c)}) == 1, timeout=20)
    assert eventually(lambda: settled([a, b, c], 3), timeout=30)
