"""Helpers for the Python tests: free ports, cookie files, node processes."""
import os
import socket
import subprocess
import sys
import time

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_name(tag):
    return f"{tag}@127.0.0.1:{free_port()}"


@pytest.fixture
def cookie_file(tmp_path):
    path = tmp_path / "cookie"
    path.write_text("test-cookie\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def processes():
    """Starts OS processes and makes sure none is left behind."""
    started = []

    def start(*args, **kw):
        p = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


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
