"""Metrics, the HTTP listener, the live page and the observing CLI, against
real panal_test_node processes on 127.0.0.1."""
import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from browser import Browser
from cluster_support import ROOT, eventually, settled
from test_cluster import mesh

HTTP = ("--http", "127.0.0.1:0")
ARTIFACTS = Path(os.environ.get("PANAL_ARTIFACTS", ROOT / "build" / "artifacts"))


def url(node, path="/metrics"):
    return f"http://127.0.0.1:{node.cmd('httpport')}{path}"


def scrape(node):
    """{(name, frozenset(labels)): value} of a node's /metrics, read by prometheus_client's parser."""
    with urllib.request.urlopen(url(node), timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples, metric, **labels):
    return samples.get((metric, frozenset(labels.items())))


def values(samples, metric, **labels):
    """Every sample of `metric` whose labels include `labels`: {labels: value}."""
    want = set(labels.items())
    return {repr(sorted(k[1])): v for k, v in samples.items() if k[0] == metric and want <= k[1]}


def two_nodes(cluster):
    a, b = cluster(2, args=HTTP)
    mesh([a, b])
    assert a.cmd("server db").startswith("ok")
    assert eventually(lambda: b.cmd("master db") == a.cmd("master db") != "master none")
    assert a.cmd(f"data db 1 {a.name} {b.name}").startswith("ok")
    assert eventually(lambda: settled([a, b], 2), timeout=20)
    return a, b


def test_metrics_over_http_count_what_the_clients_did(cluster):
    a, b = two_nodes(cluster)
    assert a.cmd("rroute off") == "ok"  # every request through a's session: a counts them all
    assert a.cmd(f"rconnect {a.address} db").startswith("ok")
    for i in range(20):
        assert a.cmd(f"rset k{i} v{i}") == "ok"
    for i in range(15):
        assert a.cmd(f"rget k{i}") == f"value v{i}"
    for i in range(3):
        assert a.cmd(f"rdel k{i}") == "removed"
    assert a.cmd("rset " + "x" * 2000 + " v").startswith("error key_too_large")

    m = scrape(a)
    assert value(m, "panal_requests_total", op="set", code="ok") == 20
    assert value(m, "panal_requests_total", op="get", code="ok") == 15
    assert value(m, "panal_requests_total", op="remove", code="ok") == 3
    assert value(m, "panal_requests_total", op="set", code="key_too_large") == 1
    # The histogram: cumulative buckets ending in +Inf, equal to the count.
    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in m.items()
                      if k[0] == "panal_request_duration_seconds_bucket" and dict(k[1])["op"] == "get"))
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == 15 and buckets[-1][0] == float("inf")
    assert value(m, "panal_request_duration_seconds_count", op="get") == 15
    assert 0 < value(m, "panal_request_duration_seconds_sum", op="get") < 15
    p99 = value(m, "panal_request_duration_quantile_seconds", op="get", quantile="0.99")
    assert 0 < p99 <= 1.0
    # Keys: the primaries of the two nodes hold the 17 live keys between them.
    mb = scrape(b)
    primary = sum(values(m, "panal_data_keys_primary", db="db").values()) + \
        sum(values(mb, "panal_data_keys_primary", db="db").values())
    assert primary == 17
    serving = values(m, "panal_data_state", state="serving")
    assert len(serving) == 1 and all(v == 1 for v in serving.values())
    assert value(m, "panal_connected_nodes") == 1 and value(m, "panal_client_sessions") == 1
    threads = values(m, "panal_scheduler_busy_seconds_total")
    assert len(threads) == 2 and all(v > 0 for v in threads.values())
    idle = values(m, "panal_scheduler_idle_seconds_total")
    assert len(idle) == 2 and all(v > 0 for v in idle.values())
    assert value(m, "panal_info", node=a.name, version=value_of_version(m)) == 1

    # A restart is counted under its supervisor's path.
    assert value(m, "panal_child_restarts_total", supervisor="node/db:db/data", child="data1") == 0
    assert a.cmd("kill_data db 1") == "ok 1"
    assert eventually(lambda: value(scrape(a), "panal_child_restarts_total", supervisor="node/db:db/data",
                                    child="data1") == 1)

    # A process that does not read: its mailbox is among the longest.
    assert a.cmd("sleeper stuck").startswith("ok")
    assert a.cmd("stuff stuck 25") == "ok"
    assert eventually(lambda: any(v == 25 for v in values(scrape(a), "panal_mailbox_messages", name="stuck").values()))


def value_of_version(samples):
    return next(dict(k[1])["version"] for k in samples if k[0] == "panal_info")


def raw_request(port, data, read=True, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_the_http_listener_is_bounded_and_answers_bad_requests_plainly(cluster):
    a, = cluster(1, args=HTTP)
    port = int(a.cmd("httpport"))
    assert raw_request(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert raw_request(port, b"GET /nothing HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert raw_request(port, b"nonsense\r\n\r\n").startswith(b"HTTP/1.1 400")
    # A head that never ends is cut at 8 KiB.
    assert raw_request(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000).startswith(b"HTTP/1.1 431")
    # HEAD: the headers only.
    head = raw_request(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")

    # 40 connections that send nothing: 32 are held (each at most 5 s), the
    # others are closed at once. (One of the requests above may still hold
    # its slot for a moment, while its process reads our FIN: 8 or 9.)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    try:
        time.sleep(1.0)  # (not an ordering: the closed ones are closed by now, the held ones for 4 s more)
        closed, _, _ = select.select(idle, [], [], 0)
        assert all(s.recv(1) == b"" for s in closed)  # closed unread
        held = [s for s in idle if s not in closed]
        assert len(held) in (31, 32), len(held)
        # The held ones are closed by the server's read timeout, not by us.
        started = time.monotonic()
        for s in held:
            s.settimeout(15)
            assert s.recv(1) == b""
        assert time.monotonic() - started < 12
    finally:
        for s in idle:
            s.close()
    # And it serves again; the node itself never stopped serving.
    assert b"panal_requests_total" in raw_request(port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert a.cmd("nodes") == "nodes"

    # Event streams: 4 at once, each sends the view at once and then every
    # second; a fifth is refused, and scrapes still get through.
    streams = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    try:
        for s in streams:
            s.sendall(b"GET /events HTTP/1.1\r\n\r\n")
            got = b""
            while got.count(b"data: ") < 2:  # the first view, then the next a second later
                chunk = s.recv(65536)
                assert chunk, got
                got += chunk
            assert got.startswith(b"HTTP/1.1 200") and b"text/event-stream" in got
        assert raw_request(port, b"GET /events HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
        assert b"panal_requests_total" in raw_request(port, b"GET /metrics HTTP/1.0\r\n\r\n")
    finally:
        for s in streams:
            s.close()


def test_the_live_page_shows_a_killed_process_come_back(cluster):
    a, b = two_nodes(cluster)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data_path = "db:db/data/data1"
    with Browser() as page:
        page.open(url(a, "/"))
        page.wait_for("Number(document.getElementById('updates').textContent) >= 1")
        # Both nodes' trees, the master, the data processes serving.
        nodes = page.eval("[...document.querySelectorAll('.card.node')].map(e => e.dataset.node)")
        assert sorted(nodes) == sorted([a.name, b.name])
        master = a.cmd("master db").split()[1]
        assert page.eval("document.querySelector('.db[data-db=\"db\"] .pid').textContent") == master
        assert page.wait_for("document.querySelectorAll('.db tr.data[data-state=\"serving\"]').length == 2")
        sel = f"document.querySelector('.card.node[data-node=\"{a.name}\"] li[data-path=\"{data_path}\"]')"
        old_pid = page.eval(f"{sel}.dataset.pid")
        assert old_pid and page.eval(f"{sel}.dataset.restarts") == "0"

        assert a.cmd("kill_data db 1") == "ok 1"
        # The page, live, shows the new process and the restart.
        new_pid = page.wait_for(f"{sel} && {sel}.dataset.restarts == '1' && {sel}.dataset.pid")
        assert new_pid != old_pid
        event = page.wait_for("[...document.querySelectorAll('#events li')].map(e => e.textContent).join('\\n')")
        # old → new, or old → not running → new if the page looked in between.
        assert f"{data_path}: {old_pid} → " in event and f" → {new_pid}" in event, event
        page.wait_for("document.querySelectorAll('.db tr.data[data-state=\"serving\"]').length == 2", timeout=30)
        page.screenshot(ARTIFACTS / "live_page.png")
    assert (ARTIFACTS / "live_page.png").stat().st_size > 10000


def panal_cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "panal", *args], capture_output=True, text=True, timeout=timeout)


def cookie_file(tmp_path):
    f = tmp_path / "cookie"
    f.write_text("secret")
    f.chmod(0o600)
    return str(f)


def test_status_json_watch_and_top_from_the_command_line(cluster, tmp_path):
    a, b = two_nodes(cluster)
    assert a.cmd("rroute off") == "ok"  # every request through a's session: a counts them all
    assert a.cmd(f"rconnect {a.address} db").startswith("ok")
    for i in range(10):
        assert a.cmd(f"rset k{i} v{i}") == "ok"
    assert b.cmd("sleeper stuck").startswith("ok") and b.cmd("stuff stuck 40") == "ok"
    cookie = cookie_file(tmp_path)

    r = panal_cli("status", "--node", a.address, "--cookie-file", cookie, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert sorted(n["name"] for n in doc["nodes"]) == sorted([a.name, b.name])
    (db,) = doc["databases"]
    assert db["name"] == "db" and db["master"] == a.cmd("master db").split()[1]
    assert sum(d["keys_primary"] for d in db["data"]) == 10
    sets = [s for s in doc["metrics"][a.name]["panal_requests_total"] if s["op"] == "set" and s["code"] == "ok"]
    assert sets[0]["value"] == 10

    r = panal_cli("status", "--node", a.name, "--cookie-file", cookie, "--watch", "--interval", "0.2",
                  "--count", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("--- ") == 2 and r.stdout.count("database db: master") == 2

    r = panal_cli("top", "--node", a.address, "--cookie-file", cookie, "--interval", "0.3", "--count", "1",
                  "--limit", "5")
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()[2:]
    # The process with the longest mailbox comes first.
    assert "stuck" in rows[0] and rows[0].split()[-2] == "40", r.stdout

    # A killed data process refills its slots; wait-settled returns once all serve again.
    assert a.cmd("kill_data db 1") == "ok 1"
    r = panal_cli("wait-settled", "db", "--node", a.address, "--cookie-file", cookie, "--timeout", "60")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ": 100% " in r.stdout and "db is settled" in r.stdout, r.stdout
    assert settled([a, b], 2)
    # A database without data processes never settles: exit 1 at the timeout, saying why.
    assert a.cmd("server empty").startswith("ok")
    r = panal_cli("wait-settled", "empty", "--node", a.address, "--cookie-file", cookie, "--timeout", "1")
    assert r.returncode == 1 and "did not settle within 1 s" in r.stderr and "no data process" in r.stderr, r.stderr
    r = panal_cli("wait-settled", "nodb", "--node", a.address, "--cookie-file", cookie, "--timeout", "1")
    assert r.returncode == 1 and "no server of database 'nodb'" in r.stderr, r.stderr
