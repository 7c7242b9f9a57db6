"""Fixtures of the cluster tests (helpers: cluster_support.py)."""
import pytest

from cluster_support import BINARY, Node


@pytest.fixture
def cluster(tmp_path):
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: build first (make build)")
    nodes = []

    def start(count, **kw):
        new = [Node(f"n{len(nodes) + i}", log_dir=tmp_path, **kw) for i in range(count)]
        nodes.extend(new)
        return new

    yield start
    for n in nodes:
        if n.proc.poll() is None:
            n.proc.kill()
            n.proc.wait()
        n.log.close()
