"""The panal command line against a running cluster, and the examples."""
import signal
import subprocess
import sys
from pathlib import Path

from py_support import PANAL, free_port, node_name, wait_for_line

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args, timeout=30):
    return subprocess.run([*PANAL, *args], capture_output=True, text=True, timeout=timeout)


def test_cli_against_a_running_cluster(processes, cookie_file):
    n1, n2 = node_name("n1"), node_name("n2")
    first = processes(*PANAL, "node", "--name", n1, "--cookie-file", cookie_file, "--server", "db",
                      "--http", "127.0.0.1:0")
    page = wait_for_line(first, "live page at ")[-1]
    metrics_url = page.split("metrics at ", 1)[1].split()[0].rstrip(",")
    wait_for_line(first, " up ")
    second = processes(*PANAL, "node", "--name", n2, "--cookie-file", cookie_file, "--join", n1,
                       "--data", "db", "--count", "2")
    wait_for_line(second, " up ")
    address = n2.split("@")[1]
    # A node runs on jemalloc (the same pid: the command re-executed itself with it preloaded).
    assert "libjemalloc" in Path(f"/proc/{second.pid}/maps").read_text()
    assert run("set", "greeting", "hello", "--db", "db", "--node", address).returncode == 0
    got = run("get", "greeting", "--db", "db", "--node", address)
    assert got.returncode == 0 and got.stdout.strip() == "hello"
    assert run("set", "doc", '{"a": [1, 2]}', "--json", "--db", "db", "--node", address).returncode == 0
    assert run("get", "doc", "--db", "db", "--node", address).stdout.strip() == '{"a": [1, 2]}'
    status = run("status", "--node", n1, "--cookie-file", cookie_file)
    assert status.returncode == 0, status.stderr
    assert "database db: master <" in status.stdout and "data processes: 2" in status.stdout
    assert n2 in status.stdout
    assert f"supervision tree of {n2}:" in status.stdout and "db:db (supervisor)" in status.stdout
    assert "restarts 0" in status.stdout
    assert "map: epoch " in status.stdout and "): serving, " in status.stdout, status.stdout
    # --node takes host:port too (the node tells its name).
    by_address = run("status", "--node", n1.split("@")[1], "--cookie-file", cookie_file)
    assert by_address.returncode == 0 and "database db: master <" in by_address.stdout, by_address.stderr
    # No node there: one line that says to give the name.
    nobody = run("status", "--node", f"127.0.0.1:{free_port()}", "--cookie-file", cookie_file)
    assert nobody.returncode == 1 and "cannot learn the name of the node at 127.0.0.1:" in nobody.stderr, nobody
    assert "give it as name@host:port" in nobody.stderr and len(nobody.stderr.strip().splitlines()) == 1, nobody
    # Drain one of n2's two data processes: its slots move to the other, nothing is lost.
    for i in range(50):
        assert run("set", f"k{i}", str(i), "--db", "db", "--node", address).returncode == 0
    drained = run("stop-data", "db", "--node", n2, "--cookie-file", cookie_file, timeout=120)
    assert drained.returncode == 0, drained.stdout + drained.stderr
    assert "drained and stopped" in drained.stdout
    # Piped, the progress is plain lines; the last says it is done. (This
    # drain is too short to be sure of a line before the end.)
    assert "panal: draining db on " in drained.stdout and ": 100% (done)" in drained.stdout, drained.stdout
    # n1 served its metrics all along; they count what n1's sessions answered.
    import urllib.request
    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        assert b"panal_child_restarts_total{supervisor=\"node\",child=\"http\"} 0" in r.read()
    after = run("status", "--node", n1, "--cookie-file", cookie_file)
    assert "data processes: 1" in after.stdout, after.stdout
    for i in (0, 17, 49):
        assert run("get", f"k{i}", "--db", "db", "--node", address).stdout.strip() == str(i)
    last = run("stop-data", "db", "--node", n2, "--cookie-file", cookie_file, timeout=60)
    assert last.returncode == 1 and "without a data process" in last.stderr, last.stderr
    assert run("remove", "greeting", "--db", "db", "--node", address).returncode == 0
    missing = run("get", "greeting", "--db", "db", "--node", address)
    assert missing.returncode == 1 and "has no value" in missing.stderr
    unknown = run("get", "x", "--db", "nope", "--node", address)
    assert unknown.returncode == 1 and "UnknownDatabase" in unknown.stderr
    # SIGTERM stops a node cleanly.
    second.send_signal(signal.SIGTERM)
    out, _ = second.communicate(timeout=15)
    assert second.returncode == 0 and "stopped" in out


def test_bad_arguments_give_one_line_and_exit_code_2():
    for args in (["get"], ["frobnicate"], ["set", "k", "--db", "db"], ["node"]):
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("panal: error:")
    assert run("--help").returncode == 0 and "status" in run("--help").stdout
    assert "exit status: 0 done; 1 it failed" in run("--help").stdout
    # A missing cookie file says what to do about it.
    r = run("node", "--name", node_name("n"), "--cookie-file", "/nonexistent/panal.cookie")
    assert r.returncode == 1 and "chmod 600 /nonexistent/panal.cookie" in r.stderr, r.stderr
    assert "--cookie-file" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "panal"
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("panal ")


def test_quickstart_runs_to_the_end():
    r = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "caught: ValueTooLarge" in r.stdout


def test_cluster_example_runs_to_the_end_and_leaves_no_process():
    r = subprocess.run([sys.executable, str(EXAMPLES / "cluster.py")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "10,000 keys over 5 data processes (as primary)" in r.stdout
    counts = [int(x) for x in r.stdout.split("data processes (as primary): ")[1].split(";")[0].split("/")]
    assert sum(counts) == 10000 and all(1800 <= c <= 2200 for c in counts), counts
    assert "30000 copies in all" in r.stdout
    assert "the new master is <n2@" in r.stdout
    assert "all 10,000 keys read back: True" in r.stdout, "a data process's restart loses nothing"
    assert "a TCP client homed on n3 read them too: True - sessions with n3, n1, n2" in r.stdout, \
        "a routing client talks to every node that holds primaries"
    assert "all node processes stopped: True" in r.stdout
    names = [w for w in r.stdout.split() if w.startswith("n1@127.0.0.1:")]
    leftover = subprocess.run(["pgrep", "-f", names[0].rstrip(",")], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "a node process was left behind"


def test_the_notebook_runs_to_the_end():
    nbformat = __import__("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(str(EXAMPLES / "notebook.ipynb"), as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="panal").execute()
    html = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "text/html" in o.get("data", {})]
    assert html and "<table" in html[0]["data"]["text/html"], "the node shows itself as an HTML table"
    texts = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "] 10001 copies: 30003\n" in texts, "the spread cell prints the keys per data process and their sum"
    assert "every key still there" in texts, "a killed data process refills its slots"
    assert "sets: 10002\n" in texts, "the metrics count the sets of the cells above (1 + 10,000 + 1)"
    assert "restarts of data processes: 1\n" in texts, "the metrics count the killed data process's restart"
    watched = [o["data"]["text/html"] for c in nb.cells if "node.watch(" in "".join(c.source)
               for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert watched and "<th>per s</th>" in watched[-1], "watch() shows a table of rates"
    assert any("<iframe src=\"http://127.0.0.1:" in h["data"]["text/html"] for h in html), \
        "a node with an HTTP listener shows its live page"


def test_the_readme_python_example_runs():
    import re

    from py_support import free_port

    readme = (EXAMPLES.parent / "README.md").read_text()
    code = re.search(r"## Python\n\n```python\n(.*?)```", readme, re.S).group(1)
    code = code.replace("127.0.0.1:7001", f"127.0.0.1:{free_port()}")  # a free port, not the documented one
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "'msgpack value'" in r.stdout and "True 0" in r.stdout


def test_the_runtime_demo_runs_to_the_end():
    r = subprocess.run([sys.executable, str(EXAMPLES / "runtime_demo.py")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "round trips one thread" in r.stdout and "NotRunning" in r.stdout
