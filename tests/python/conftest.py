"""Fixtures of the Python tests (helpers: py_support.py)."""
import subprocess

import pytest


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
