"""What the benchmark scripts share: free ports, waiting for an idle machine,
a redis-server pinned to CPU 1, a panal_test_node pinned to a CPU."""
import contextlib
import ctypes.util
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_times():
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def wait_idle(limit=60):
    """Waits (at most `limit` s) until the machine is idle: under 10% of all
    CPUs busy over half a second. (The 1-minute load average, used before,
    stays high for minutes after a run: it made each wait hit the limit.)"""
    deadline = time.monotonic() + limit
    busy = 1.0
    while time.monotonic() < deadline:
        t0, i0 = _cpu_times()
        time.sleep(0.5)
        t1, i1 = _cpu_times()
        busy = 1 - (i1 - i0) / max(t1 - t0, 1)
        if busy < 0.10:
            return
    print(f"warning: machine not idle ({busy:.0%} busy)", file=sys.stderr)


@contextlib.contextmanager
def redis_server():
    """A redis-server on a free port, pinned to CPU 1, persistence off; yields the port."""
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "1", "redis-server", "--port", str(port), "--save", "",
                               "--appendonly", "no", "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        yield port
    finally:
        server.kill()
        server.wait()


def node_env(malloc=None):
    """The environment of a panal node in a benchmark: on jemalloc, as `panal
    node` runs (docs/benchmarks.md, "Allocator"), or on glibc's malloc with
    malloc="system"; by default as PANAL_MALLOC says (jemalloc unless set)."""
    env = dict(os.environ)
    malloc = malloc or env.get("PANAL_MALLOC", "jemalloc")
    lib = ctypes.util.find_library("jemalloc")
    if malloc == "jemalloc" and lib and "jemalloc" not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = " ".join(filter(None, [env.get("LD_PRELOAD"), lib]))
    return env


class TestNode:
    """A panal_test_node (one scheduler thread) pinned to `cpu`, driven by
    its line commands (tests/cluster/test_node.cc)."""

    def __init__(self, binary, cpu, tag, *args):
        self.name = f"{tag}@127.0.0.1:{free_port()}"
        self.address = self.name.split("@")[1]
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), str(binary), "--name", self.name, "--cookie", "bench", "--threads", "1",
             *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
            env=node_env())
        assert self.proc.stdout.readline().startswith("ready")

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self):
        try:
            self.cmd("quit")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
