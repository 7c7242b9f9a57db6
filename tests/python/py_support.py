"""Helpers for the Python tests: free ports, node names, output of processes."""
import socket
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_name(tag):
    return f"{tag}@127.0.0.1:{free_port()}"


def wait_for_line(proc, text, timeout=20):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not seen; output so far: {''.join(seen)}")


PANAL = [sys.executable, "-m", "panal"]
