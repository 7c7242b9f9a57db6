"""A TCP client that sends each request to the node of its slot's primary
(ROUTE_MAP, docs/protocol.md 11.9), against real panal_test_node processes
on 127.0.0.1. Requests are counted by the node whose session received them
(panal_requests_total), which is how the tests see where each one went."""
import signal
import threading

from cluster_support import eventually, settled
from load import lost_writes, run_writers
from test_cluster import mesh
from test_observability import scrape, two_nodes, value

KEYS = 200


def ok(answer):
    assert answer.startswith("ok"), answer
    return answer


def primary_node(node, key):
    """The node name of `key`'s primary, from `locate` (pid:role:...)."""
    for entry in node.cmd(f"locate db {key}").split()[1:]:
        pid, rest = entry.split(">:", 1)
        if rest.startswith("primary:"):
            return pid.lstrip("<").rsplit(".", 2)[0]
    raise AssertionError(f"no primary for {key}")


def served(node, op):
    return value(scrape(node), "panal_requests_total", op=op, code="ok") or 0


def test_a_routed_client_sends_each_request_to_its_primarys_node(cluster):
    a, b = two_nodes(cluster)  # a data process on each; every slot held by both, primaries split
    ok(a.cmd(f"rconnect {a.address} db"))
    for i in range(KEYS):
        assert a.cmd(f"rset k{i} v{i}") == "ok"
    for i in range(KEYS):
        assert a.cmd(f"rget k{i}") == f"value v{i}"
    # The client opened a session on b (home on a) ...
    assert a.cmd("rsessions").split()[1:] == [a.name, b.name]
    # ... and each node received exactly the requests of the keys whose primary it holds.
    on_b = sum(primary_node(a, f"k{i}") == b.name for i in range(KEYS))
    assert 0 < on_b < KEYS
    for op in ("set", "get"):
        assert (served(a, op), served(b, op)) == (KEYS - on_b, on_b), op


def test_without_routing_every_request_goes_through_the_home_node(cluster):
    a, b = two_nodes(cluster)
    ok(a.cmd("rroute off"))
    ok(a.cmd(f"rconnect {a.address} db"))
    for i in range(50):
        assert a.cmd(f"rset k{i} v{i}") == "ok"
        assert a.cmd(f"rget k{i}") == f"value v{i}"
    assert a.cmd("rsessions").split()[1:] == [a.name]
    assert (served(a, "set"), served(b, "set")) == (50, 0)


def three_nodes(cluster):
    nodes = cluster(3)
    mesh(nodes)
    for n in nodes[:2]:  # the first is the oldest: the master
        ok(n.cmd("server db replicas=3 write_acks=2"))
    for n in nodes:
        ok(n.cmd("data db 1"))
    assert eventually(lambda: settled(nodes, 3), timeout=20)
    return nodes


def test_a_routed_client_reads_everything_after_a_routed_nodes_death(cluster):
    # The session on c dies with c; c's slots go home (a forwards, then the
    # map moves them) and redials of c fail: a hop, never a lost answer.
    # (Three nodes: serving needs a majority of the members' nodes.)
    a, b, c = three_nodes(cluster)
    ok(a.cmd(f"rconnect {a.address} db"))
    for i in range(KEYS):
        assert a.cmd(f"rset k{i} v{i}") == "ok"
    assert a.cmd("rsessions").split()[1:] == [a.name] + sorted([b.name, c.name])
    c.signal(signal.SIGKILL)
    c.proc.wait()
    # The session on c is gone from the list at once (its socket says so), before any call.
    assert a.cmd("rsessions").split()[1:] == [a.name, b.name]
    # c's slots are unavailable until their new primary serves them (c's
    # lease runs out first): a call may time out meanwhile, and is repeated.
    for i in range(KEYS):
        assert eventually(lambda: a.cmd(f"rget k{i}") == f"value v{i}", timeout=20), a.cmd(f"rget k{i}")
    assert a.cmd("rsessions").split()[1:] == [a.name, b.name]


def test_routed_clients_lose_no_acknowledged_write_when_a_primarys_node_is_killed(cluster):
    a, b, c = three_nodes(cluster)
    stop = threading.Event()
    survivors = [b.address, c.address]
    ws = run_writers(survivors, "db", 4, stop, seconds=60)
    # Every writer routes some of its keys to a, whose sessions die with it.
    assert eventually(lambda: all(a.name in w.sessions_seen for w in ws), timeout=20), \
        [w.sessions_seen for w in ws]
    before = sum(len(w.acked) for w in ws)
    a.signal(signal.SIGKILL)
    a.proc.wait()
    assert eventually(lambda: sum(len(w.acked) for w in ws) >= before + 400, timeout=30), "writes did not resume"
    stop.set()
    for w in ws:
        w.join(timeout=60)
        assert not w.is_alive()
    lost, total = lost_writes(survivors, "db", ws)
    print(f"{total} acknowledged writes through routed clients, {len(lost)} lost")
    assert lost == [], lost[:10]


def test_batches_between_nodes_stay_below_a_frame(cluster):
    # Without routing, a's session sends b's requests over the distribution
    # link, batched. Eight values of the largest size (8 MiB) in one batch
    # would pass the 64 MiB frame limit, and such a frame is dropped: the
    # batches are cut by size, so these calls are answered, not timed out.
    import panal
    a, b = two_nodes(cluster)
    on_b = [k for k in (f"big{i}" for i in range(200)) if primary_node(a, k) == b.name][:8]
    assert len(on_b) == 8
    value = b"x" * ((8 << 20) - 16)  # with its msgpack header: just below the 8 MiB limit
    with panal.connect(a.address, db="db", route=False, timeout=20) as c:
        c.mset({k: value for k in on_b})
        assert c.mget(on_b) == [value] * 8
