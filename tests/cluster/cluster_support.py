"""Helpers for the cluster tests: real panal_test_node OS processes on 127.0.0.1.

Every node is started on a free port and killed at the end of its test, so
parallel runs do not collide and nothing is left behind.
"""
import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PANAL_BUILD_DIR", ROOT / "build" / "release"))
BINARY = BUILD / "panal_test_node"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, tag, cookie="secret", tick_ms=100, down_ms=1000, log_dir=None, forget_ms=60000, env=None,
                 args=()):
        self.name = f"{tag}@127.0.0.1:{free_port()}"
        self.address = self.name.split("@")[1]
        self.log_path = Path(log_dir) / f"{tag}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(BINARY), "--name", self.name, "--cookie", cookie, "--tick-ms", str(tick_ms),
             "--down-ms", str(down_ms), "--forget-ms", str(forget_ms), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1,
            env={**os.environ, **(env or {})})
        assert self.read_line(10).startswith("ready"), "node did not start"

    def read_line(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"{self.name} did not answer in {timeout} s")
        return self.proc.stdout.readline().strip()

    def cmd(self, line, timeout=30):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read_line(timeout)

    def nodes(self):
        return self.cmd("nodes").split()[1:]

    def members(self, group):
        _, count, digest = self.cmd(f"members {group}").split()
        return int(count), digest

    def logged(self):
        self.log.flush()
        return self.log_path.read_text()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.cmd("quit", timeout=10)
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def eventually(check, timeout=10.0, interval=0.05):
    """Polls `check` until it returns a truthy value or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)




def settled(nodes, data_count, db="db"):
    """Every node holds the same map of `db`, nothing is moving, and all
    `data_count` data processes serve."""
    maps = {n.cmd(f"slots {db}") for n in nodes}
    if len(maps) != 1:
        return False
    parts = maps.pop().split()
    if parts[1] == "none" or parts[2] != "0":
        return False
    states = nodes[0].cmd(f"states {db}").split()[1:]
    return len(states) == data_count and set(states) == {"serving"}


def make_certs(directory, name="panal-test"):
    """A CA and a certificate for 127.0.0.1 signed by it (openssl, P-256),
    in `directory`. Returns {"ca", "cert", "key"} paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert, ext = (d / f"{name}-{x}" for x in
                                       ("ca.key", "ca.pem", "node.key", "node.csr", "node.pem", "ext.cnf"))
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", f"/CN={name} CA")
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert),
        "-days", "2", "-extfile", str(ext))
    return {"ca": str(ca), "cert": str(cert), "key": str(key)}


def tls_args(certs, ca=True):
    """panal_test_node arguments for TLS with `certs` (make_certs)."""
    return ["--tls-cert", certs["cert"], "--tls-key", certs["key"], *(["--tls-ca", certs["ca"]] if ca else [])]


def client_frame(obj):
    """One frame of the client protocol (protocol.md): a 4-byte length, then msgpack."""
    import msgpack
    import struct
    payload = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(payload)) + payload


def read_client_frames(s, count):
    """The next `count` frames from socket `s`, decoded; fails if it closes first."""
    import msgpack
    import struct
    buf, out = b"", []
    while len(out) < count:
        chunk = s.recv(1 << 20)
        assert chunk, f"connection closed after {len(out)} answers"
        buf += chunk
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
            n = struct.unpack(">I", buf[:4])[0]
            out.append(msgpack.unpackb(buf[4:4 + n], raw=False))
            buf = buf[4 + n:]
    return out
