"""The Python API: every public function and error, values, threads, Ctrl-C."""
import os
import signal
import socket
import threading
import time

import pytest

import panal
from py_support import free_port, node_name


def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def ctrl_c():
    # Ctrl-C as in an interactive Python: a test run started in the
    # background by a non-interactive shell inherits SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler.
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.fixture
def node():
    with panal.Node(threads=2) as n:
        n.start_server("db")
        n.start_data("db", count=2)
        yield n


@pytest.fixture
def db(node):
    return node.start_client("c1", "db")


VALUES = [b"\x00bytes\xff", "str ü", 0, -1, 2**63 - 1, -(2**63), 3.25, True, False, None, [1, "two", None],
          {"a": {"b": [1.5, b"x"]}, "n": 1}, {1: "int keys"}, [], {}]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:20] for v in VALUES])
def test_values_round_trip_as_the_same_python_types(db, value):
    db.set("k", value)
    got = db.get("k")
    assert got == value and type(got) is type(value)


def test_keys_are_str_or_bytes(db):
    db.set("é", 1)
    assert db.get("é".encode("utf-8")) == 1
    db.set(b"\x00\xff", 2)
    assert db[b"\x00\xff"] == 2
    with pytest.raises(TypeError):
        db.set(5, 1)


def test_every_operation(db):
    assert db.get("missing") is None and db.get("missing", default=7) == 7
    db.set("k", 1)
    assert db.exists("k") and "k" in db
    db["k"] = 2
    assert db["k"] == 2
    with pytest.raises(KeyError):
        db["missing"]
    assert db.remove("k") is True and db.remove("k") is False
    db["d"] = 1
    del db["d"]
    with pytest.raises(KeyError):
        del db["d"]
    db.unsafe_set("u", [1, 2])
    assert db.get("u") == [1, 2], "later calls are ordered after unsafe_set"
    db.mset({"a": 1, "b": "two"})
    db.mset([("c", 3.0)])
    assert db.mget(["a", "b", "nope", "c"], default="-") == [1, "two", "-", 3.0]
    with db as same:
        assert same is db
    assert "client process" in repr(db) and "panal.Client" in db._repr_html_()
    assert "<table" in db._repr_html_() and "master" in repr(db), "an embedded client shows its node's cluster"


def test_limits_raise_their_exception_and_store_nothing():
    with panal.Node(threads=2) as n:
        n.start_server("tight", max_key_bytes=8, max_value_bytes=32, max_keys=2)
        n.start_data("tight")
        db = n.start_client("c", "tight")
        with pytest.raises(panal.KeyTooLarge):
            db.set("k" * 9, 1)
        with pytest.raises(panal.ValueTooLarge):
            db.set("k", "x" * 40)
        assert "k" not in db
        db["a"], db["b"] = 1, 2
        with pytest.raises(panal.TooManyKeys) as info:
            db["c"] = 3
        assert "limit" in str(info.value)
        assert "c" not in db
        with pytest.raises(panal.BadArgument):
            db.set("", 1)
    with panal.Node(threads=1) as n:
        n.start_server("small", max_memory=100_000)
        n.start_data("small")
        db = n.start_client("c", "small")
        with pytest.raises(panal.OutOfMemory):
            for i in range(1000):
                db.set(f"k{i}", b"x" * 1000)


def test_no_data_and_no_master_are_retried_then_raised():
    with panal.Node(threads=2) as n:
        n.start_server("nodata")
        db = n.start_client("c", "nodata")
        db.set_timeout(0.3)
        with pytest.raises(panal.NoDataNodes):
            db.set("k", 1)
        other = n.start_client("c2", "nobody")
        other.set_timeout(0.3)
        with pytest.raises(panal.NoMaster):
            other.get("k")


def test_tcp_client_and_its_errors(cookie_file):
    with panal.Node(node_name("n1"), cookie_file=cookie_file, threads=2) as n:
        n.start_server("db", ckey="token")
        n.start_data("db", count=2)
        address = n.name.split("@")[1]
        with panal.connect(address, db="db", token="token") as c:
            c["k"] = {"via": "tcp"}
            assert c["k"] == {"via": "tcp"}
            assert n.start_client("c", "db")["k"] == {"via": "tcp"}
            assert "TCP session" in repr(c)
        for spin in (0, 0.01):  # never, and the longest spin: the same answers
            with panal.connect(address, db="db", token="token", spin=spin) as c:
                c.set("spun", spin)
                assert c.get("spun") == spin
                assert c.mget(["spun", "k"]) == [spin, {"via": "tcp"}]
        for bad in (-1e-6, 0.02, float("nan")):
            with pytest.raises(ValueError):
                panal.connect(address, db="db", token="token", spin=bad)
        with pytest.raises(panal.Unauthorized):
            panal.connect(address, db="db", token="wrong")
        with pytest.raises(panal.UnknownDatabase):
            panal.connect(address, db="nope", token="token")
    with pytest.raises(panal.ConnectionLost):
        panal.connect(f"127.0.0.1:{free_port()}", db="db", timeout=1)


def black_hole():
    """A loopback address whose SYNs are dropped: a listener with a full
    backlog that never accepts."""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):  # fill the accept queue (its length is backlog + 1)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(listener.getsockname())
        fillers.append(s)
    import select
    probe = socket.socket()
    probe.setblocking(False)
    probe.connect_ex(listener.getsockname())
    fillers.append(probe)
    _, writable, _ = select.select([], [probe], [], 1.0)
    assert not writable, "the listener still completes connections: not a black hole"
    return listener, fillers


def test_a_black_holed_address_first_in_the_list_costs_one_dial_timeout(cookie_file):
    listener, fillers = black_hole()
    try:
        hole = "%s:%d" % listener.getsockname()
        with panal.Node(node_name("n1"), cookie_file=cookie_file, threads=2) as n:
            n.start_server("db")
            n.start_data("db", count=1)
            good = n.name.split("@")[1]
            result = {}

            def use():
                try:
                    with panal.connect([hole, good], db="db", timeout=5) as c:
                        for i in range(15):
                            c[f"k{i}"] = i
                        result["values"] = [c[f"k{i}"] for i in range(15)]
                except panal.Error as e:
                    result["error"] = e

            t = threading.Thread(target=use)
            t.start()
            t.join(timeout=20)  # 15 calls; the old dial waited minutes on the first address
            assert not t.is_alive(), "the client hung on the black-holed address"
            assert result.get("values") == list(range(15)), result
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_wrong_key_guesses_from_one_address_are_slowed(cookie_file):
    # 30 guesses at once: after the first wrong key, attempts from this
    # address take turns (one per 250 ms) for at most 2 s; the others are
    # refused without reaching the master.
    with panal.Node(node_name("n1"), cookie_file=cookie_file, threads=2) as n:
        n.start_server("db", ckey="token")
        n.start_data("db", count=1)
        address = n.name.split("@")[1]
        with pytest.raises(panal.Unauthorized):
            panal.connect(address, db="db", token="first-guess")
        answers = []

        def guess(i):
            try:
                panal.connect(address, db="db", token=f"guess{i}", timeout=10).close()
                answers.append("in")
            except panal.Unauthorized as e:
                answers.append("slowed" if "too many failed" in str(e) else "wrong")

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive()
        print({a: answers.count(a) for a in set(answers)})
        assert "in" not in answers
        assert answers.count("wrong") <= 10, answers  # 2 s of turns, 250 ms each
        assert answers.count("slowed") >= 20, answers
        # The right key still gets in once its turn comes.
        deadline = time.monotonic() + 10
        while True:
            try:
                with panal.connect(address, db="db", token="token") as c:
                    c["k"] = 1
                break
            except panal.Unauthorized:
                assert time.monotonic() < deadline, "the right key never got in"
                time.sleep(0.1)


def test_failover_is_invisible_but_for_latency(cookie_file):
    with panal.Node(node_name("a"), cookie_file=cookie_file, threads=2) as a, \
            panal.Node(node_name("b"), cookie_file=cookie_file, threads=2) as b:
        b.connect(a.name)
        a.start_server("db")
        b.start_server("db")
        a.start_data("db", [a.name, b.name])
        db = b.start_client("c", "db")
        old = a.master("db")
        for i in range(200):
            if i == 50:
                assert a.kill("db/server") == old
            db[f"k{i}"] = i
        assert db.mget([f"k{i}" for i in range(200)]) == list(range(200))
        assert a.master("db") != old


def test_node_api_and_views(cookie_file):
    with panal.Node(node_name("v"), cookie_file=cookie_file) as n:
        assert n.running and n.nodes() == []
        servers = n.start_server("db")
        data = n.start_data("db", count=3)
        assert len(servers) == 1 and len(data) == 3
        assert n.master("db") == servers[0]
        assert n.databases() == ["db"]
        assert n.groups("db")["data"] and len(n.groups("db")["data"]) == 3
        c = n.start_client("c", "db")
        c.mset({f"k{i}": i for i in range(100)})
        stats = n.stats("db")
        assert sum(s["keys_primary"] for s in stats) == 100, "each key counts once, at its primary"
        assert sum(s["keys"] for s in stats) == 300, "three copies (replicas=3)"
        assert {s["state"] for s in stats} == {"serving"}
        html = n._repr_html_()
        assert "<table" in html and "(master)" in html
        assert "1 server(s)" in repr(n)
        victim = n.kill("db/data")
        assert victim in data
        assert wait_until(lambda: any("restarts 1" in l for l in n.supervision()))
        tree = n.supervision()
        assert tree[0].startswith("node <") and any(l.strip().startswith("db:db (supervisor)") for l in tree)
        assert n.master("nobody") is None
        with pytest.raises(panal.NotFound):
            n.kill("nope/data")
        # The node's own processes, by name: the registry's scope comes back
        # (listed under the root) and the database carries on.
        scope = next(l for l in n.supervision() if l.strip().startswith("pg "))
        assert n.kill("pg") in scope
        assert wait_until(lambda: any(l.strip().startswith("pg ") and "restarts 1" in l for l in n.supervision()))
        c.set("after-pg", 1)
        assert c.get("after-pg") == 1 and len(n.groups("db")["data"]) == 3
        with pytest.raises(panal.AlreadyExists):
            n.start_server("db")
    assert not n.running and "stopped" in repr(n)
    with pytest.raises(panal.NotRunning):
        n.start_server("db")


def test_start_stop_and_start_again():
    for _ in range(3):
        with panal.Node(threads=1) as n:
            n.start_server("db")
            n.start_data("db")
            n.start_client("c", "db")["k"] = 1


def test_a_distributed_node_needs_a_cookie_and_a_private_cookie_file(tmp_path):
    with pytest.raises(panal.BadArgument):
        panal.Node(node_name("x"))
    loose = tmp_path / "loose"
    loose.write_text("secret")
    loose.chmod(0o644)
    with pytest.raises(panal.Unauthorized) as info:
        panal.Node(node_name("x"), cookie_file=str(loose))
    assert "chmod 600" in str(info.value)


def test_a_value_over_the_frame_limit_raises_value_too_large_at_once(cookie_file):
    with panal.Node(node_name("n1"), cookie_file=cookie_file, threads=2) as n:
        n.start_server("db", max_value_bytes=(60 << 20) - 2048)  # the most a database allows
        n.start_data("db", count=1)
        with panal.connect(n.name.split("@")[1], db="db", timeout=5) as c:
            with pytest.raises(panal.ValueTooLarge) as info:
                c.set("big", b"x" * (70 << 20))
            assert "does not fit in a frame" in str(info.value)
            c["small"] = 1  # the session was not lost
            assert c["small"] == 1


def test_a_wrong_cookie_raises_unauthorized(tmp_path, cookie_file):
    other = tmp_path / "other"
    other.write_text("not-the-cookie")
    other.chmod(0o600)
    with panal.Node(node_name("good"), cookie_file=cookie_file) as good, \
            panal.Node(node_name("bad"), cookie_file=str(other)) as bad:
        with pytest.raises(panal.Unauthorized) as info:
            bad.connect(good.name)
        assert "wrong cookie" in str(info.value)
        assert bad.nodes() == []


def test_threads_share_a_client(db):
    errors = []

    def work(t):
        try:
            for i in range(200):
                db[f"t{t}:{i}"] = i
                assert db[f"t{t}:{i}"] == i
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_ctrl_c_interrupts_a_blocking_call(ctrl_c):
    with panal.Node(threads=1) as n:
        n.start_server("stuck")  # no data process: calls retry until the timeout
        db = n.start_client("c", "stuck")
        db.set_timeout(30)
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            db.set("k", 1)
        assert time.monotonic() - t0 < 5, "Ctrl-C must not wait for the 30 s timeout"
        timer.join()


def test_a_client_speaks_version_2_to_a_node_that_refuses_3():
    # A node not yet upgraded (played here by a socket) refuses version 3:
    # the client says 2 on a new connection and routes nothing (a version 2
    # node knows no ROUTE_REQUEST); requests work as before.
    import struct
    import msgpack
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(10)
    port = srv.getsockname()[1]
    seen, kinds = [], []

    def frame(obj):
        b = msgpack.packb(obj, use_bin_type=True)
        return struct.pack(">I", len(b)) + b

    def read_frame(conn, buf):
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = conn.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        n = struct.unpack(">I", buf[:4])[0]
        return msgpack.unpackb(buf[4:4 + n], raw=False), buf[4 + n:]

    def serve():
        for _ in range(2):
            conn, _ = srv.accept()
            with conn:
                hello, buf = read_frame(conn, b"")
                seen.append(hello[1])
                name = f"old@127.0.0.1:{port}"
                if hello[1] != 2:
                    conn.sendall(frame([65, 5, "unsupported client protocol version", name, 0, 0]))
                    continue
                conn.sendall(frame([65, 0, "", name, 1024, 1 << 20]))
                try:
                    while True:
                        req, buf = read_frame(conn, buf)
                        kinds.append(req[0])
                        if req[0] == 66:
                            conn.sendall(frame([67, req[1], 0, "", True, msgpack.packb("old")]))
                except EOFError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with panal.connect(f"127.0.0.1:{port}", db="db", timeout=5) as c:
        assert c.get("k") == "old"
        assert c.sessions() == [f"old@127.0.0.1:{port}"]
    t.join(timeout=10)
    srv.close()
    assert seen == [3, 2]
    assert kinds == [66], kinds  # one REQUEST; no ROUTE_REQUEST (68)


def test_ctrl_c_interrupts_a_tcp_call(cookie_file, ctrl_c):
    # A TCP client's call runs on the calling thread (no helper thread) and
    # checks for Ctrl-C while it waits: here it would retry for 30 s.
    with panal.Node(node_name("n1"), cookie_file=cookie_file, threads=1) as n:
        n.start_server("stuck")  # no data process: every call is retried until the timeout
        with panal.connect(n.name.split("@")[1], db="stuck") as db:
            db.set_timeout(30)
            for call in (lambda: db.set("k", 1), lambda: db.mget(["a", "b"]), lambda: db.pipeline().get("a").execute()):
                timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
                timer.start()
                t0 = time.monotonic()
                with pytest.raises(KeyboardInterrupt):
                    call()
                assert time.monotonic() - t0 < 5, "Ctrl-C must not wait for the 30 s timeout"
                timer.join()
            db.set_timeout(0.2)
            with pytest.raises(panal.NoDataNodes):  # the client still works after an interrupt
                db.get("k")


def test_metrics_view_processes_and_watch_of_a_node():
    import io
    import socket
    import urllib.request

    with panal.Node(threads=2, http="127.0.0.1:0") as node:
        node.start_server("obs")
        node.start_data("obs", count=2)
        db = node.start_client("c1", "obs")
        db.mset({f"k{i}": i for i in range(50)})
        assert db.get("k7") == 7
        with pytest.raises(panal.KeyTooLarge):
            db.set("x" * 5000, 1)

        m = node.metrics()
        assert panal.metrics.total(m["panal_requests_total"], op="set", code="ok") == 50
        assert panal.metrics.total(m["panal_requests_total"], op="set", code="key_too_large") == 1
        assert panal.metrics.total(m["panal_requests_total"], op="get", code="ok") == 1
        assert panal.metrics.total(m["panal_data_keys_primary"], db="obs") == 50
        text = node.metrics(text=True)
        assert text.startswith("# HELP panal_info")
        # The same text over HTTP.
        with urllib.request.urlopen(node.http_url + "/metrics", timeout=10) as r:
            assert b'panal_requests_total{op="set",code="ok"} 50' in r.read()

        view = node.view()
        sets = view["requests"]["set"]  # (early attempts met no map yet: errors, retried)
        assert view["node"] == node.name and sets["count"] - sets["errors"] == 50
        (obs,) = view["databases"]
        assert obs["master"] == node.master("obs") and len(obs["data"]) == 2
        assert len(obs["map"]["cells"]) == 256 and set(obs["map"]["cells"]) == {0, 1}
        tree = view["nodes"][0]["tree"]
        assert [c["id"] for c in tree if c["depth"] == 3 and c["id"].startswith("data")] == ["data1", "data2"]

        procs = node.processes()
        named = {p["name"]: p for p in procs if p["name"]}
        assert "panal_client:obs:c1" in named and named["panal_client:obs:c1"]["received"] >= 52

        out = io.StringIO()
        node.watch(seconds=0.3, every=0.1, out=out)
        assert out.getvalue().count("panal: " + node.name) >= 2 and "data " in out.getvalue()

        # The port is taken: a second node cannot serve on it.
        port = int(node.http_url.rsplit(":", 1)[1])
        with pytest.raises(panal.BadArgument, match="cannot serve HTTP"):
            panal.Node(http=f"127.0.0.1:{port}")
    with pytest.raises(panal.BadArgument, match="host:port"):
        panal.Node(http="nonsense")
    with panal.Node() as plain:
        assert plain.http_url is None


@pytest.mark.parametrize("over_tcp", [False, True])
def test_a_pipeline_runs_mixed_calls_in_order_per_key(over_tcp):
    name = node_name("pipe") if over_tcp else "nonode@nohost"
    with panal.Node(name, cookie="c" if over_tcp else None) as node:
        node.start_server("pipe")
        node.start_data("pipe", count=2)
        db = panal.connect(name.split("@")[1], db="pipe") if over_tcp else node.start_client("c1", "pipe")
        with db:
            with db.pipeline() as p:
                p.set("a", 1).get("a").set("a", {"n": 2}).get("a").remove("gone").exists("a").get("nope", "d")
                p.remove("a").exists("a").get("a")
                assert len(p) == 10
            assert p.results == [None, 1, None, {"n": 2}, False, True, "d", True, False, None]
            # Many keys at once, each read after its write.
            p = db.pipeline()
            for i in range(300):
                p.set(f"k{i}", [i, str(i)]).get(f"k{i}")
            out = p.execute()
            assert out[1::2] == [[i, str(i)] for i in range(300)] and out[0::2] == [None] * 300
            assert db.mget([f"k{i}" for i in (0, 150, 299)]) == [[0, "0"], [150, "150"], [299, "299"]]
            # A failed call: the others still run; execute raises the first error,
            # or returns it in place.
            p = db.pipeline().set("x" * 5000, 1).set("after", 1).get("after")
            with pytest.raises(panal.KeyTooLarge):
                p.execute()
            assert isinstance(p.results[0], panal.KeyTooLarge) and p.results[1:] == [None, 1]
            p.set("y" * 5000, 1).get("after")
            out = p.execute(raise_on_error=False)
            assert isinstance(out[0], panal.KeyTooLarge) and out[1] == 1
            # Nothing queued: nothing sent; an error inside the block: nothing sent.
            assert db.pipeline().execute() == []
            with pytest.raises(ZeroDivisionError):
                with db.pipeline() as p:
                    p.set("never", 1)
                    1 / 0
            assert db.get("never") is None


def test_mget_and_mset_carry_every_value_and_key_type_in_batches_of_any_size(db):
    values = [None, True, 0, -1, 2**63 - 1, 1.5, "", "s", b"", b"\x00b", [], [1, [2]], {}, {"a": {"b": None}}]
    keys = [f"t{i}" for i in range(len(values))]
    db.mset(zip(keys, values))  # any iterable of pairs
    assert db.mget(keys) == values
    # A stored None and a missing key differ once a default is given.
    assert db.mget(iter(["t0", "missing"]), default="d") == [None, "d"]
    # str, bytes, bytearray and memoryview keys name the same key.
    db.mset([(b"bk", 1), (bytearray(b"ba"), 2), (memoryview(b"mv"), 3)])
    assert db.mget(["bk", b"ba", bytearray(b"mv")]) == [1, 2, 3]
    # Sizes across the msgpack array headers (fixarray, array 16).
    for n in (0, 1, 15, 16, 70_000 // 100):
        batch = {f"n{n}:{i}": i for i in range(n)}
        db.mset(batch)
        assert db.mget(list(batch)) == list(batch.values())
    # A value msgpack cannot carry: TypeError, and nothing of the batch is stored.
    with pytest.raises(TypeError, match="msgpack carries"):
        db.mset({"ok1": 1, "bad": object()})
    assert db.mget(["ok1", "bad"]) == [None, None]
    with pytest.raises(TypeError, match="a key is str or bytes"):
        db.mget(["fine", 7])
