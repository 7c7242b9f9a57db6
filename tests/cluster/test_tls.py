"""TLS on a node's port: nodes and clients over TLS 1.3, certificates the
test makes with openssl, and peers that speak the other way refused."""
import socket
import ssl

import pytest

import panal
from cluster_support import eventually, make_certs, settled, tls_args
from test_cluster import mesh


@pytest.fixture
def certs(tmp_path):
    return make_certs(tmp_path / "certs")


def test_a_tls_cluster_serves_its_clients_and_speaks_nothing_else(cluster, certs, tmp_path):
    a, b = cluster(2, args=tls_args(certs))
    mesh([a, b])
    assert a.cmd("server db").startswith("ok")
    assert a.cmd(f"data db 1 {a.name} {b.name}").startswith("ok")
    assert eventually(lambda: settled([a, b], 2), timeout=20)
    assert "listening (TLS)" in a.logged()
    # The C++ client (TLS, the node's certificate checked against the CA)...
    assert b.cmd(f"rconnect {a.address} db").startswith("ok")
    assert b.cmd("rset k1 v1").startswith("ok")
    # ...and the Python one.
    with panal.connect(a.address, "db", tls_ca=certs["ca"]) as c:
        assert c.exists("k1")
        c.set("k2", {"over": "tls"})
        assert c.get("k2") == {"over": "tls"}
    assert b.cmd("rexists k2") == "yes"
    # What is on the port is TLS 1.3 with the certificate the CA signed, as
    # an independent TLS client (Python's ssl) sees it.
    ctx = ssl.create_default_context(cafile=certs["ca"])
    with socket.create_connection(("127.0.0.1", int(a.address.split(":")[1])), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.3"
            assert ("IP Address", "127.0.0.1") in tls.getpeercert()["subjectAltName"]

    # A plaintext client is refused, with a line in the node's log that says why.
    with pytest.raises(panal.ConnectionLost, match="require TLS"):
        panal.connect(a.address, "db", timeout=2)
    assert eventually(lambda: "refused a plaintext connection from 127.0.0.1: this node accepts only TLS"
                      in a.logged()), a.logged()
    # A client that trusts another CA does not talk to it.
    other = make_certs(tmp_path / "other", name="other")
    with pytest.raises(panal.Unauthorized, match="not trusted"):
        panal.connect(a.address, "db", tls_ca=other["ca"], timeout=2)

    # A node without TLS cannot join, either way round; each side says why.
    plain, = cluster(1)
    assert not plain.cmd(f"connect {a.name}").startswith("ok")
    assert a.cmd(f"connect {plain.name}") != "ok"
    assert eventually(lambda: "refused a TLS connection from 127.0.0.1: this node does not use TLS"
                      in plain.logged()), plain.logged()
    assert a.nodes() == [b.name] and plain.nodes() == []


def test_a_node_whose_certificate_the_ca_did_not_sign_is_not_dialled(cluster, certs, tmp_path):
    other = make_certs(tmp_path / "other", name="other")
    a, = cluster(1, args=tls_args(certs))
    # The intruder holds the cookie but a certificate of another CA: the
    # node that checks certificates does not complete the connection.
    intruder, = cluster(1, args=tls_args(other, ca=False))
    assert a.cmd(f"connect {intruder.name}") != "ok"
    assert eventually(lambda: "TLS with " + intruder.name + " failed" in a.logged()), a.logged()
    # Nor does it let the intruder in when the intruder dials; it tells it why.
    answer = intruder.cmd(f"connect {a.name}")
    assert answer.startswith("error bad_argument") and "certificate from this cluster's CA" in answer, answer
    assert eventually(lambda: f"refused {intruder.name} from 127.0.0.1: no certificate that the CA file trusts"
                      in a.logged()), a.logged()
    assert a.nodes() == [] and intruder.nodes() == []


def test_tls_from_python_and_the_command_line(certs, tmp_path):
    from cluster_support import free_port
    name = f"py@127.0.0.1:{free_port()}"
    with pytest.raises(panal.BadArgument, match="missing.pem"):
        panal.Node(name, cookie="c", tls_cert=str(tmp_path / "missing.pem"), tls_key=certs["key"])
    with pytest.raises(panal.BadArgument, match="both a certificate file and a key file"):
        panal.Node(name, cookie="c", tls_cert=certs["cert"])
    with pytest.raises(panal.BadArgument, match="TLS is for a node's port"):
        panal.Node(tls_cert=certs["cert"], tls_key=certs["key"])
    with panal.Node(name, cookie="c", tls_cert=certs["cert"], tls_key=certs["key"], tls_ca=certs["ca"]) as n:
        n.start_server("db")
        n.start_data("db", count=1)
        address = name.split("@")[1]
        with panal.connect(address, "db", tls_ca=certs["ca"]) as c:
            c.set("k", [1, 2, 3])
            assert c.get("k") == [1, 2, 3]
        import subprocess, sys
        cli = [sys.executable, "-m", "panal"]
        r = subprocess.run([*cli, "get", "k", "--db", "db", "--node", address, "--tls-ca", certs["ca"]],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() == "[1, 2, 3]", r
        r = subprocess.run([*cli, "get", "k", "--db", "db", "--node", address, "--timeout", "2"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "ConnectionLost" in r.stderr and "require TLS" in r.stderr, r
        # status joins the cluster with a node of its own, over TLS too; by host:port.
        cookie = tmp_path / "cookie"
        cookie.write_text("c")
        cookie.chmod(0o600)
        r = subprocess.run([*cli, "status", "--node", address, "--cookie-file", str(cookie), "--tls-cert",
                            certs["cert"], "--tls-key", certs["key"], "--tls-ca", certs["ca"]],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "database db: master <" in r.stdout, r


def test_over_tls_a_proof_not_bound_to_the_tls_session_is_refused(cluster, certs):
    # A peer that holds the cookie but proves over the transcript alone, as
    # a relay that ends TLS on both sides would have to (its two TLS
    # sessions have different channel bindings), is refused by a TLS node;
    # the same proof over plain TCP to a plain node is accepted.
    from test_cluster import authenticated_peer, cookie_handshake
    a, = cluster(1, args=tls_args(certs, ca=False))
    plain, = cluster(1)
    authenticated_peer(plain).close()
    host, port = a.address.rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host) as s:
        answer, _ = cookie_handshake(s, a)
    assert answer == [3, "wrong cookie"], answer
    assert eventually(lambda: "refused connection from intruder@127.0.0.1:1: wrong cookie" in a.logged()), a.logged()
    assert a.nodes() == []
