"""The store across real node processes on 127.0.0.1: every operation and
error, failover, restarts, spread and movement of keys, the client protocol."""
import socket
import struct
import time

from cluster_support import client_frame, eventually, read_client_frames, settled
from test_cluster import mesh


def ok(answer):
    assert answer.startswith("ok"), answer
    return answer


def address(n):
    return n.name.split("@")[1]


def test_every_operation_through_a_client_process_and_over_tcp(cluster):
    a, b, c = cluster(3)
    mesh([a, b, c])
    ok(a.cmd("server db"))
    ok(a.cmd(f"data db 2 {b.name} {c.name}"))
    ok(c.cmd("client c1 db"))  # a client process on c
    assert c.cmd("get k") == "none"
    ok(c.cmd("set k hello world"))
    assert c.cmd("get k") == "value hello world"
    assert c.cmd("exists k") == "yes"
    ok(c.cmd("uset u fire and forget"))
    assert c.cmd("get u") == "value fire and forget", "later calls are ordered after unsafe_set"
    # The same data over TCP from another node's session.
    ok(b.cmd(f"rconnect {address(a)} db"))
    assert b.cmd("rget k") == "value hello world"
    ok(b.cmd("rset k2 v2"))
    assert c.cmd("get k2") == "value v2"
    assert b.cmd("rdel k") == "removed"
    assert b.cmd("rdel k") == "absent"
    assert b.cmd("rexists k") == "no"
    ok(b.cmd("ruset r1 x"))
    assert b.cmd("rget r1") == "value x"
    ok(b.cmd("fill m 500"))
    assert b.cmd("check m 500") == "check 500"


def test_limits_are_refused_with_their_error_and_store_nothing(cluster):
    a, = cluster(1)
    ok(a.cmd("server db max_key=8 max_value=16 max_keys=3"))
    ok(a.cmd("data db 1"))
    ok(a.cmd(f"rconnect {address(a)} db"))
    assert a.cmd("rset 123456789 v").startswith("error key_too_large")
    assert a.cmd("rset k " + "x" * 17).startswith("error value_too_large")
    assert a.cmd("rexists k") == "no"
    for k in "abc":
        ok(a.cmd(f"rset {k} 1"))
    assert a.cmd("rset d 1").startswith("error too_many_keys")
    assert a.cmd("rexists d") == "no"


def test_memory_limit_per_data_process(cluster):
    a, = cluster(1)
    ok(a.cmd("server db max_memory=200000"))
    ok(a.cmd("data db 1"))
    ok(a.cmd(f"rconnect {address(a)} db"))
    answer = a.cmd("fill big 5000")
    assert answer.startswith("error out_of_memory"), answer


def test_no_data_no_master_unknown_db(cluster):
    a, = cluster(1)
    assert a.cmd(f"rconnect {address(a)} nothing").startswith("error unknown_db")
    ok(a.cmd("server empty"))
    ok(a.cmd(f"rconnect {address(a)} empty"))
    assert a.cmd("rset k v").startswith("error no_data")


def test_a_wrong_token_is_refused_before_any_data(cluster):
    a, = cluster(1)
    ok(a.cmd("server db ckey=s3cret"))
    ok(a.cmd("data db 1"))
    assert a.cmd(f"rconnect {address(a)} db wrong").startswith("error unauthorized")
    assert a.cmd(f"rconnect {address(a)} db").startswith("error unauthorized")
    ok(a.cmd(f"rconnect {address(a)} db s3cret"))
    ok(a.cmd("rset k v"))


def test_master_failover_is_invisible_but_for_latency(cluster):
    a, b, c = cluster(3)
    mesh([a, b, c])
    ok(a.cmd("server db"))
    ok(b.cmd("server db"))  # younger: takes over when a's server dies
    ok(a.cmd(f"data db 1 {b.name} {c.name}"))
    ok(c.cmd(f"rconnect {address(c)} db"))
    first = a.cmd("master db")
    assert first == b.cmd("master db") == c.cmd("master db")
    for i in range(300):
        if i == 100:
            ok(a.cmd("kill_master db"))
        assert c.cmd(f"rset k{i} {i}") == "ok", i
    assert c.cmd("check k 300") == "check 300"
    # The old master was restarted (as the youngest); b's server leads now.
    assert eventually(lambda: a.cmd("groups db").split()[1] == "2")
    new = a.cmd("master db")
    assert new != first and new == c.cmd("master db")


def test_a_crashed_data_process_is_restarted_and_rejoins(cluster):
    a, b = cluster(2)
    mesh([a, b])
    ok(a.cmd("server db"))
    ok(a.cmd(f"data db 2 {b.name}"))
    assert eventually(lambda: a.cmd("groups db") == "groups 1 2 0")
    before = set(a.cmd("data_pids db").split()[1:])
    assert b.cmd("kill_data db 1") == "ok 1"
    # Rejoined: two data processes again, one of them new.
    assert eventually(lambda: (lambda now: len(now) == 2 and now != before)(set(a.cmd("data_pids db").split()[1:])))
    ok(a.cmd(f"rconnect {address(a)} db"))
    ok(a.cmd("fill z 100"))
    assert a.cmd("check z 100") == "check 100"


def test_ten_thousand_keys_spread_within_ten_percent_over_five_data_processes(cluster):
    nodes = cluster(3)
    mesh(nodes)
    ok(nodes[0].cmd("server db"))
    ok(nodes[0].cmd(f"data db 2 {nodes[0].name} {nodes[1].name}"))
    ok(nodes[0].cmd(f"data db 1 {nodes[2].name}"))
    ok(nodes[0].cmd(f"rconnect {address(nodes[0])} db"))
    ok(nodes[0].cmd("fill key: 10000"))
    counts = [int(x) for x in nodes[0].cmd("stats db").split()[1:]]
    print("keys per data process:", counts)
    assert len(counts) == 5 and sum(counts) == 10000
    assert all(1800 <= n <= 2200 for n in counts), counts


def test_adding_a_data_process_moves_about_one_nth_of_the_keys_and_loses_none(cluster):
    a, = cluster(1)
    ok(a.cmd("server db"))
    ok(a.cmd("data db 4"))
    ok(a.cmd(f"rconnect {address(a)} db"))
    ok(a.cmd("fill key: 10000"))
    assert eventually(lambda: settled([a], 4))
    before = int(a.cmd("moved db").split()[1])
    ok(a.cmd("data db 1"))
    assert eventually(lambda: settled([a], 5), timeout=20)
    # The slots that moved were handed off before they switched: nothing is missing.
    assert a.cmd("check key: 10000") == "check 10000"
    primaries = [int(x) for x in a.cmd("stats db").split()[1:]]
    print("keys per data process as primary after adding a 5th:", primaries)
    assert len(primaries) == 5 and sum(primaries) == 10000
    assert all(1600 <= k <= 2400 for k in primaries), primaries
    # The newcomer filled its share of the copies (3 of every key): about 3/5 of 10,000.
    moved = int(a.cmd("moved db").split()[1]) - before
    print(f"keys copied to the newcomer: {moved} (3/5 of 10,000 = 6,000)")
    assert 0.8 * 6000 <= moved <= 1.6 * 6000, moved


def test_malformed_client_frames_close_that_connection_only(cluster):
    a, = cluster(1)
    ok(a.cmd("server db"))
    ok(a.cmd("data db 1"))
    ok(a.cmd(f"rconnect {address(a)} db"))
    host, port = address(a).rsplit(":", 1)

    def frame(payload):
        return struct.pack(">I", len(payload)) + payload

    # CLIENT_HELLO [64, 3, "db", nil, 0]: the node welcomes it (WELCOME
    # [65, ok, ...]), so the bad frame after it reaches a session. (A hello
    # the node refuses closes the connection before anything after it is read.)
    hello = frame(bytes([0x95, 0x40, 0x03, 0xa2]) + b"db" + bytes([0xc0, 0x00]))
    welcomed = bytes([0x96, 0x41, 0x00])
    attacks = [
        (hello + frame(b"\xdd\xff\xff\xff\xff"), True),   # a huge array in a session
        (hello + frame(bytes([0x98, 0x42, 0x01, 0x09, 0xc4, 0x01, 0x6b, 0xc0, 0x00, 0x00, 0xc2])), True),  # op 9
        (hello + b"\x7f\xff\xff\xff", True),            # a 2 GiB request
        (frame(bytes([0x95, 0x40, 0x03, 0xa2]) + b"db"), False),   # a truncated hello
    ]
    for payload, in_session in attacks:
        # Each is closed by the node at once. A session has no timer to
        # close it for us: a node that kept it open fails here (timeout).
        started = time.monotonic()
        got = b""
        with socket.create_connection((host, int(port)), timeout=15) as s:
            try:
                s.sendall(payload)
                while chunk := s.recv(4096):
                    got += chunk
            except ConnectionError:
                pass
        assert time.monotonic() - started < 4, payload
        assert (welcomed in got) == in_session, (payload, got)
    ok(a.cmd("rset still working"))
    assert a.cmd("rget still") == "value working"


def _rss_mib(node):
    with open(f"/proc/{node.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_client_that_pipelines_without_reading_cannot_grow_the_node(cluster):
    # The probe of the security review: 1,000 GETs of a 1 MiB value (16 KB
    # sent), never reading the answers, made a node hold over 1 GiB.
    a, = cluster(1)
    ok(a.cmd("server db"))
    ok(a.cmd("data db 1"))
    host, port = address(a).rsplit(":", 1)
    frame, read_frames = client_frame, read_client_frames

    big = b"x" * (1 << 20)
    hello = frame([64, 2, "db", None, 0])
    assert eventually(lambda: settled([a], 1), timeout=20)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(hello + frame([66, 1, 2, b"big", big, 0, 0, False]))
        welcome, answer = read_frames(s, 2)
        assert welcome[1] == 0 and answer[2] == 0, (welcome, answer)

    base = _rss_mib(a)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(hello + b"".join(frame([66, 100 + i, 1, b"big", None, 0, 0, False]) for i in range(1000)))
        # The node works through what it may while nobody reads: another
        # client is served meanwhile, and its memory stays near where it was.
        peak = base
        for _ in range(40):
            assert a.cmd(f"rconnect {address(a)} db").startswith("ok")
            ok(a.cmd("rset probe alive"))
            peak = max(peak, _rss_mib(a))
        print(f"node RSS {base:.0f} MiB before, at most {peak:.0f} MiB while 1,000 GETs of 1 MiB were not read")
        assert peak - base < 64, (base, peak)
        # Nothing was lost: reading now, every answer comes, complete.
        answers = read_frames(s, 1001)[1:]
        assert [x[1] for x in answers] == list(range(100, 1100))
        assert all(x[2] == 0 and x[4] and len(x[5]) == len(big) for x in answers)


def test_a_client_that_shuts_its_sending_side_gets_its_answers_and_the_session_ends(cluster):
    # The kernel hands a session the client's end of stream (FIN) with the
    # bytes before it, and no readiness event follows it: a read that took
    # both once left the session waiting for ever, open on a closed client.
    a, = cluster(1)
    ok(a.cmd("server db"))
    ok(a.cmd("data db 1"))
    assert eventually(lambda: settled([a], 1), timeout=20)
    host, port = address(a).rsplit(":", 1)
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=15) as s:
            s.sendall(client_frame([64, 2, "db", None, 0]))
            assert read_client_frames(s, 1)[0][1] == 0  # welcomed
            s.sendall(client_frame([66, 1, 2, b"k", b"v", 0, 0, False]) + client_frame([66, 2, 1, b"k", None, 0, 0, False]))
            s.shutdown(socket.SHUT_WR)
            set_answer, get_answer = read_client_frames(s, 2)
            assert set_answer[1:3] == [1, 0] and get_answer[1:3] == [2, 0] and get_answer[5] == b"v", (set_answer, get_answer)
            assert s.recv(1) == b"", "the session answered, then must close"  # a timeout raises: the session stayed


def test_a_session_whose_answers_pile_up_past_the_limit_is_closed(cluster):
    # The window opens over many small answers; then 300 GETs of a 1 MiB
    # value, never read: the answers in flight pass max_output_bytes (64 MiB)
    # and the node closes that session (others are served throughout).
    a, = cluster(1)
    ok(a.cmd("server db"))
    ok(a.cmd("data db 1"))
    assert eventually(lambda: settled([a], 1), timeout=20)
    ok(a.cmd(f"rconnect {address(a)} db"))
    host, port = address(a).rsplit(":", 1)
    frame, read_frames = client_frame, read_client_frames

    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(frame([64, 2, "db", None, 0]) + frame([66, 1, 2, b"big", b"x" * (1 << 20), 0, 0, False]) +
                  frame([66, 2, 2, b"small", b"s", 0, 0, False]))
        read_frames(s, 3)
        for round in range(4):  # 2,000 small answers, read: the window opens to its maximum
            s.sendall(b"".join(frame([66, 10 + round * 500 + i, 1, b"small", None, 0, 0, False]) for i in range(500)))
            read_frames(s, 500)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"".join(frame([66, 5000 + i, 1, b"big", None, 0, 0, False]) for i in range(300)))
        assert eventually(lambda: "bytes of answers it does not read" in a.logged(), timeout=30), a.logged()[-2000:]
        ok(a.cmd("rset other served"))
        received = 0
        while True:  # what was written before the close, then the end
            try:
                chunk = s.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += len(chunk)
        print(f"{received / 2**20:.1f} MiB read before the session was closed")
        assert received < 300 * (1 << 20)


def test_sessions_beyond_the_nodes_limit_are_refused_and_the_rest_served(cluster):
    import msgpack

    a, = cluster(1, args=("--max-sessions", "20"))
    ok(a.cmd("server db"))
    ok(a.cmd("data db 1"))
    assert eventually(lambda: settled([a], 1), timeout=20)
    host, port = address(a).rsplit(":", 1)
    payload = msgpack.packb([64, 2, "db", None, 0], use_bin_type=True)
    hello = struct.pack(">I", len(payload)) + payload

    def welcome(s):
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            assert chunk, "closed without a WELCOME"
            head += chunk
        body = b""
        while len(body) < struct.unpack(">I", head)[0]:
            body += s.recv(4096)
        return msgpack.unpackb(body, raw=False)

    sockets = []
    try:
        codes = []
        for _ in range(25):
            s = socket.create_connection((host, int(port)), timeout=10)
            sockets.append(s)
            s.sendall(hello)
            codes.append(welcome(s)[1])
        assert codes[:20] == [0] * 20, codes
        assert codes[20:] == [28] * 5, codes  # unavailable: retryable
        for s in sockets[20:]:
            assert s.recv(1) == b"", "a refused session is closed"
        # Closing sessions makes room again.
        for s in sockets[:10]:
            s.close()
        assert eventually(lambda: a.cmd(f"rconnect {address(a)} db").startswith("ok"), timeout=10)
        ok(a.cmd("rset room again"))
    finally:
        for s in sockets:
            s.close()


def test_half_open_connections_cannot_lock_clients_or_nodes_out(cluster):
    # A slowloris: 100 connections that send two bytes of a frame header and
    # wait, each replaced as soon as the node closes it (at most 200 new ones
    # a second, for at most 20 s). Clients and a new node still get in: a
    # new connection evicts the oldest handshake of the busiest address.
    import select
    import threading
    import time
    a, b, c = cluster(3)
    ok(a.cmd("server db"))
    ok(a.cmd("data db 1"))
    ok(b.cmd(f"rconnect {address(a)} db"))
    ok(b.cmd("rset k v"))
    host, port = address(a).split(":")
    stop = threading.Event()
    opened = [0]
    before = int(a.cmd("peak_mb").split()[1])

    def slowloris():
        held = []
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline and opened[0] < 4000:
            if held:
                readable, _, _ = select.select(held, [], [], 0)
                for s in readable:
                    try:
                        gone = s.recv(64) == b""
                    except OSError:
                        gone = True
                    if gone:
                        held.remove(s)
                        s.close()
            if len(held) < 100:
                try:
                    s = socket.create_connection((host, int(port)), timeout=2)
                    s.sendall(b"\x00\x00")
                    held.append(s)
                    opened[0] += 1
                except OSError:
                    pass
            time.sleep(0.005)
        for s in held:
            s.close()

    attacker = threading.Thread(target=slowloris)
    attacker.start()
    try:
        assert eventually(lambda: opened[0] >= 100, timeout=10)
        for i in range(10):
            answer = b.cmd(f"rconnect {address(a)} db")
            assert answer.startswith("ok"), (i, answer)
            assert b.cmd("rget k") == "value v", i
        assert c.cmd(f"connect {a.name}").startswith("ok"), "a node still joins"
        assert stop.is_set() is False, "the attack ran throughout"
    finally:
        stop.set()
        attacker.join(timeout=30)
    grown = int(a.cmd("peak_mb").split()[1]) - before
    print(f"{opened[0]} half-open connections opened; the node's peak memory grew {grown} MiB")
    assert grown < 64, grown


def test_ten_thousand_idle_connections_and_a_slowloris_leave_clients_served(cluster):
    # 10,000 connections that never send a byte (from 127.0.0.2) and 200
    # that send half a frame header and wait, replaced as they are closed
    # (from 127.0.0.3), while a client writes and reads on its session and
    # opens new ones. Every answer comes; the node holds no more than its
    # handshake slots of them; its memory stays bounded.
    import select
    import threading
    import time
    a, b = cluster(2)
    ok(a.cmd("server db"))
    ok(a.cmd("data db 1"))
    assert eventually(lambda: settled([a], 1), timeout=20)
    ok(b.cmd(f"rconnect {address(a)} db"))
    host, port = address(a).split(":")
    before = int(a.cmd("peak_mb").split()[1])
    stop = threading.Event()
    idle, slow = [], []
    counts = {"idle": 0, "slow": 0}

    def dial(source):
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(2)
        s.connect((host, int(port)))
        return s

    def idle_flood():
        deadline = time.monotonic() + 60
        while not stop.is_set() and counts["idle"] < 10_000 and time.monotonic() < deadline:
            try:
                idle.append(dial("127.0.0.2"))
                counts["idle"] += 1
            except OSError:
                counts["idle_failed"] = counts.get("idle_failed", 0) + 1
                time.sleep(0.01)

    def slowloris():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and counts["slow"] < 20_000:
            if slow:  # poll, not select: the descriptors pass 1024
                p = select.poll()
                for s in slow:
                    p.register(s, select.POLLIN)
                closed = {fd for fd, _ in p.poll(0)}
                for s in [s for s in slow if s.fileno() in closed]:
                    slow.remove(s)
                    s.close()
            while len(slow) < 200 and not stop.is_set():
                try:
                    s = dial("127.0.0.3")
                    s.sendall(b"\x00\x00")
                    slow.append(s)
                    counts["slow"] += 1
                except OSError:
                    break
            time.sleep(0.01)

    attackers = [threading.Thread(target=idle_flood), threading.Thread(target=slowloris)]
    for t in attackers:
        t.start()
    answered = 0
    try:
        assert eventually(lambda: counts["slow"] >= 200, timeout=20)
        i = 0
        while attackers[0].is_alive():  # the flood ends by count or after 60 s
            ok(b.cmd(f"rset k{i} v{i}"))
            assert b.cmd(f"rget k{i}") == f"value v{i}", i
            answered += 2
            if i % 25 == 0:
                ok(b.cmd(f"rconnect {address(a)} db"))  # and new sessions open
            i += 1
            time.sleep(0.002)  # paced: the attackers share this interpreter
        assert counts["idle"] == 10_000, counts
    finally:
        stop.set()
        for t in attackers:
            t.join(timeout=60)
    # The node kept at most its handshake slots (2 x 64) of the idle ones.
    still_open = 0
    for s in idle:
        s.setblocking(False)
        try:
            still_open += s.recv(1) != b""
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
    for s in idle + slow:
        s.close()
    grown = int(a.cmd("peak_mb").split()[1]) - before
    print(f"{counts} connections; {answered} answers meanwhile; {still_open} idle ones still open; "
          f"the node's peak memory grew {grown} MiB")
    assert answered > 0
    assert still_open <= 128, still_open
    assert grown < 64, grown
