"""The `panal` command line (also `python -m panal`).

  panal node --name n1@127.0.0.1:7001 --cookie-file PATH [--server DB] [--data DB] [--join NODE]
             [--tls-cert PEM --tls-key PEM [--tls-ca PEM]]
  panal status --node n1@127.0.0.1:7001 --cookie-file PATH [--json | --watch [--interval S]]
  panal wait-settled DB --node n1@127.0.0.1:7001 --cookie-file PATH [--timeout S]
  panal top --node n1@127.0.0.1:7001 --cookie-file PATH [--interval S] [--limit N]
  panal stop-data DB --node n1@127.0.0.1:7001 [--count N] --cookie-file PATH
  panal get KEY --db DB [--node ADDR] [--token T] [--tls-ca PEM | --tls]
  panal set KEY VALUE --db DB [--node ADDR] [--token T] [--json] [--tls-ca PEM | --tls]
  panal remove KEY --db DB [--node ADDR] [--token T] [--tls-ca PEM | --tls]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading

from . import __version__, set_log_level
from .client import connect
from .errors import ConnectionLost, Error
from .node import Node


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2
        self.exit(2, f"panal: error: {message} (see: panal --help)\n")


def _default_cookie_file():
    return os.path.join(os.path.expanduser("~"), ".panal.cookie")


def _address(node: str) -> str:
    return node.split("@", 1)[1] if "@" in node else node


def _run_on_jemalloc(argv) -> None:
    """Re-executes this command with jemalloc preloaded (a node's allocations
    are a third of its CPU on glibc's malloc: docs/benchmarks.md), unless
    PANAL_MALLOC=system, it already runs on it, or it is not installed."""
    if os.environ.get("PANAL_MALLOC", "jemalloc") != "jemalloc" or "jemalloc" in os.environ.get("LD_PRELOAD", ""):
        return
    import ctypes.util
    lib = ctypes.util.find_library("jemalloc")
    if not lib:
        return
    env = {**os.environ, "LD_PRELOAD": " ".join(filter(None, [os.environ.get("LD_PRELOAD"), lib]))}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "panal", *argv], env)


def cmd_node(args) -> int:
    if "PANAL_LOG" not in os.environ:
        set_log_level("info")  # a node in the foreground tells what it does
    node = Node(args.name, cookie_file=args.cookie_file, threads=args.threads, spin=args.spin_us * 1e-6,
                max_sessions=args.max_sessions, max_send_queue=args.max_send_queue_mb << 20,
                tls_cert=args.tls_cert, tls_key=args.tls_key, tls_ca=args.tls_ca, http=args.http)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if args.join:
            node.connect(args.join)
            print(f"panal: {node.name} joined {args.join}; nodes: {', '.join(node.nodes())}", flush=True)
        for db in args.server or []:
            node.start_server(db, replicas=args.replicas, write_acks=args.write_acks)
            print(f"panal: server of {db} started on {node.name}", flush=True)
        for db in args.data or []:
            node.start_data(db, count=args.count)
            print(f"panal: {args.count} data process(es) of {db} started on {node.name}", flush=True)
        if node.http_url:
            print(f"panal: metrics at {node.http_url}/metrics, live page at {node.http_url}/", flush=True)
        print(f"panal: node {node.name} up (SIGTERM or Ctrl-C stops it)", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        node.stop()
        print(f"panal: node {args.name} stopped", flush=True)
    return 0


def _settle(node, timeout=5.0):
    """Waits until the node's view (peers, their groups) stops changing: the
    mesh and the registry sync follow a connect by a few milliseconds."""
    import time
    deadline = time.monotonic() + timeout
    last, still = None, 0
    while time.monotonic() < deadline and still < 3:
        view = (tuple(sorted(node.nodes())),
                tuple((db, tuple(sorted(map(len, node.groups(db).values())))) for db in node.databases()))
        still = still + 1 if view == last else 0
        last = view
        time.sleep(0.1)


def _node_name(args) -> str:
    """args.node as a node name: given as host:port, the node says its name
    (in the WELCOME that refuses a client hello for no database)."""
    if "@" in args.node:
        return args.node
    from . import _core
    try:
        return _core.node_at(args.node, 5.0, bool(args.tls_cert or args.tls_ca), args.tls_ca)
    except Error as e:
        raise ConnectionLost(f"cannot learn the name of the node at {args.node} ({e}); "
                             f"give it as name@host:port") from None


def _visitor(args) -> Node:
    """A short-lived node of our own, joined to the cluster of args.node."""
    args.node = _node_name(args)
    host = _address(args.node).rsplit(":", 1)[0]
    with socket.socket() as s:  # a free port
        s.bind((host, 0))
        port = s.getsockname()[1]
    me = Node(f"status-{os.getpid()}@{host}:{port}", cookie_file=args.cookie_file, tls_cert=args.tls_cert,
              tls_key=args.tls_key, tls_ca=args.tls_ca)
    try:
        me.connect(args.node)
        _settle(me)
    except BaseException:
        me.stop()
        raise
    return me


class _Progress:
    """A progress bar on a terminal (redrawn in place), plain lines when piped
    (one per tenth of the way, so a log stays short)."""

    def __init__(self, label: str, out=None):
        self.label, self.out = label, out or sys.stdout
        self.tty = self.out.isatty()
        self.shown = -1

    def update(self, done: float, total: float, detail: str = "") -> None:
        frac = 0.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        if self.tty:
            bar = "#" * int(frac * 30)
            self.out.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}% {detail}\x1b[K")
            self.out.flush()
        elif int(frac * 10) > self.shown:
            self.shown = int(frac * 10)
            print(f"{self.label}: {frac * 100:.0f}% {detail}", file=self.out, flush=True)

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def cmd_stop_data(args) -> int:
    with _visitor(args) as me:
        target = args.node if "@" in args.node else next(
            (n for n in me.nodes() if _address(n) == args.node), args.node)
        print(f"panal: draining {args.count} data process(es) of {args.db} on {target}...", flush=True)
        # The drain runs in a thread; meanwhile the slots the node's data
        # processes still hold show how far it is.
        outcome: list[BaseException | None] = []

        def drain():
            try:
                me.stop_data(args.db, [target], count=args.count, timeout=args.timeout)
                outcome.append(None)
            except BaseException as e:  # handed to the main thread
                outcome.append(e)

        worker = threading.Thread(target=drain, daemon=True)
        worker.start()
        # Progress: the slots the draining processes still hold, against
        # the most each held (a stopped one holds none).
        most: dict[str, int] = {}
        progress = _Progress(f"panal: draining {args.db} on {target}")
        while worker.is_alive():
            held = {s["pid"]: s["slots_held"] for s in me.stats(args.db)
                    if s["node"] == target and s["state"] == "draining"}
            for pid, n in held.items():
                most[pid] = max(most.get(pid, 0), n)
            if most:
                left = sum(held.get(pid, 0) for pid in most)
                total = sum(most.values())
                progress.update(total - left, total, f"({left} slot(s) still to move)")
            worker.join(0.25)
        if not outcome or outcome[0] is None:
            progress.update(1, 1, "(done)")
        progress.finish()
        if outcome and outcome[0] is not None:
            raise outcome[0]
        print(f"panal: drained and stopped; their slots moved to the other data processes", flush=True)
    return 0


def _status_text(me) -> str:
    lines = [f"nodes: {', '.join(sorted(n for n in me.nodes() if not n.startswith('status-')))}"]
    dbs = me.databases()
    if not dbs:
        lines.append("no databases")
    for db in dbs:
        groups, master = me.groups(db), me.master(db)
        lines.append(f"database {db}: master {master}")
        lines.append(f"  servers: {len(groups['server'])}, data processes: {len(groups['data'])}, "
                     f"clients: {len(groups['client'])}")
        m = me.slot_map(db)
        if m:
            lines.append(f"  map: epoch {m['epoch']}, {m['slots']} slots, replicas {m['replicas']}, "
                         f"write_acks {m['write_acks']}, {m['moving']} slot(s) moving")
        for s in me.stats(db):
            line = (f"  data {s['pid']} (#{s['index']}): {s['state']}, {s['keys']} keys, {s['memory']} bytes, "
                    f"slots {s['slots_primary']} primary / {s['slots_held']} held / {s['slots_filling']} filling, "
                    f"moved in {s['keys_in']} keys ({s['bytes_in']} bytes), out {s['keys_out']} keys")
            if s['rate'] > 0:
                line += f", {s['rate'] / 1e6:.1f} MB/s"
            lines.append(line)
    for n in sorted(me.nodes()):
        if n.startswith("status-"):
            continue
        lines.append(f"supervision tree of {n}:")
        for line in me.supervision(n)[1:]:
            lines.append("  " + line)
    return "\n".join(lines)


def _status_json(me) -> dict:
    """The cluster's nodes, trees, databases and every node's metrics."""
    view = me.view()
    nodes = [n for n in view["nodes"] if not n["name"].startswith("status-")]
    return {"nodes": nodes, "databases": view["databases"],
            "metrics": {n["name"]: me.metrics(n["name"]) for n in nodes if "error" not in n}}


def _repeat(args, render) -> None:
    """Prints render() every args.interval seconds, args.count times (0: until
    Ctrl-C): redrawn in place on a terminal, one block after another when piped."""
    import time
    shown = 0
    while True:
        text = render()
        if sys.stdout.isatty():
            sys.stdout.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            print(f"--- {time.strftime('%H:%M:%S')}\n{text}")
        sys.stdout.flush()
        shown += 1
        if args.count and shown >= args.count:
            return
        time.sleep(args.interval)


def cmd_status(args) -> int:
    with _visitor(args) as me:
        if args.json:
            print(json.dumps(_status_json(me), indent=1))
        elif args.watch:
            _repeat(args, lambda: _status_text(me))
        else:
            print(_status_text(me))
    return 0


def cmd_wait_settled(args) -> int:
    """Waits until every data process of the database serves and no slot
    moves (after a restart, a join or a drain), with a progress bar."""
    import time
    with _visitor(args) as me:
        if args.db not in me.databases():
            print(f"panal: no server of database {args.db!r} runs in this cluster", file=sys.stderr)
            return 1
        progress = _Progress(f"panal: waiting for {args.db} to settle")
        most, calm = 0, 0
        deadline = time.monotonic() + args.timeout
        while True:
            m = me.slot_map(args.db)
            stats = me.stats(args.db)
            members = set(me.groups(args.db)["data"])
            moving = m["moving"] if m else None
            # Settled: every member of the data group answered, serves, holds
            # the map's epoch, and the map has them all and moves nothing;
            # twice in a row (a process that just restarted may not have
            # rejoined its group yet).
            serving = (bool(stats) and {s["pid"] for s in stats} == members == {x["pid"] for x in (m["members"] if m else [])}
                       and all(s["state"] == "serving" and s["epoch"] == m["epoch"] for s in stats))
            calm = calm + 1 if m is not None and moving == 0 and serving else 0
            if calm >= 2:
                progress.update(1, 1, "(settled)")
                progress.finish()
                print(f"panal: {args.db} is settled: epoch {m['epoch']}, {len(stats)} data processes serving",
                      flush=True)
                return 0
            if moving is not None:
                most = max(most, moving)
                progress.update(most - moving, max(most, 1), f"({moving} slot(s) moving)")
            if time.monotonic() > deadline:
                progress.finish()
                states = ", ".join(sorted({s["state"] for s in stats})) or "no data process"
                print(f"panal: {args.db} did not settle within {args.timeout:g} s "
                      f"({moving} slot(s) moving; {states})", file=sys.stderr)
                return 1
            time.sleep(0.2)


def _roles(me) -> dict[str, str]:
    """pid -> "db/server" etc., for the processes of every database."""
    out = {}
    for db in me.databases():
        for role, pids in me.groups(db).items():
            for p in pids:
                out[p] = f"{db}/{role}"
    return out


def cmd_top(args) -> int:
    """The busiest processes of every node: longest mailboxes, then most
    messages per second (Erlang observer's process list)."""
    import time
    with _visitor(args) as me:
        nodes = sorted(n for n in me.nodes() if not n.startswith("status-"))
        before = {n: {} for n in nodes}
        at = time.monotonic()

        def render():
            nonlocal before, at
            time.sleep(max(0.0, args.interval - (time.monotonic() - at)))
            now, errors = {}, []
            for n in nodes:
                try:
                    now[n] = me.processes(n)
                except Error as e:  # it left, or does not answer: say so, go on
                    errors.append(f"{n}: {type(e).__name__}")
                    now[n] = []
            dt = max(time.monotonic() - at, 1e-6)
            roles = _roles(me)
            rows = []
            for n, procs in now.items():
                for p in procs:
                    rate = (p["received"] - before[n].get(p["pid"], p["received"])) / dt
                    rows.append((p["mailbox"], rate, n, p))
            before = {n: {p["pid"]: p["received"] for p in procs} for n, procs in now.items()}
            if errors:
                rows.append((0, 0.0, "", {"pid": "", "name": "; ".join(errors)}))
            at = time.monotonic()
            rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
            lines = [f"{'pid':<44}{'name or role':<28}{'mailbox':>9}{'msgs/s':>10}"]
            for mailbox, rate, n, p in rows[:args.limit]:
                what = p["name"] or roles.get(p["pid"], "")
                lines.append(f"{p['pid']:<44}{what:<28}{mailbox:>9}{rate:>10.0f}")
            return "\n".join(lines)

        _repeat(args, render)
    return 0


def _client(args):
    return connect(args.node, db=args.db, token=args.token, timeout=args.timeout, tls=args.tls, tls_ca=args.tls_ca)


def cmd_get(args) -> int:
    with _client(args) as c:
        value = c.get(args.key, default=None)
        if value is None and not c.exists(args.key):
            print(f"panal: {args.key!r} has no value", file=sys.stderr)
            return 1
        print(json.dumps(value, default=repr) if not isinstance(value, str) else value)
    return 0


def cmd_set(args) -> int:
    value = args.value
    if args.json:
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            print(f"panal: error: the value is not JSON: {e}", file=sys.stderr)
            return 2
    with _client(args) as c:
        c.set(args.key, value)
    return 0


def cmd_remove(args) -> int:
    with _client(args) as c:
        if not c.remove(args.key):
            print(f"panal: {args.key!r} had no value", file=sys.stderr)
            return 1
    return 0


def _tls_node_args(p) -> None:
    p.add_argument("--tls-cert", metavar="PEM", default=None,
                   help="TLS on this node's port (nodes and clients alike): its certificate; needs --tls-key")
    p.add_argument("--tls-key", metavar="PEM", default=None, help="the certificate's private key")
    p.add_argument("--tls-ca", metavar="PEM", default=None,
                   help="the CA that the certificates of the nodes it dials must chain to")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="panal", description="panal: an in-memory, partitioned key-value store.",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="exit status: 0 done; 1 it failed (the error's class and message on stderr), or get/remove\n"
                       "found no value; 2 bad arguments (one line on stderr); 130 interrupted (Ctrl-C).\n"
                       "A node stops cleanly on SIGTERM or Ctrl-C and exits 0.")
    p.add_argument("--version", action="version", version=f"panal {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    n = sub.add_parser("node", help="run a node in the foreground until SIGTERM or Ctrl-C")
    n.add_argument("--name", required=True, help="name@host:port, where the node listens")
    n.add_argument("--cookie-file", default=_default_cookie_file(),
                   help="the cluster's shared secret, readable only by you (default: ~/.panal.cookie)")
    n.add_argument("--server", action="append", metavar="DB", help="start a server of DB here (repeatable)")
    n.add_argument("--data", action="append", metavar="DB", help="start data processes of DB here (repeatable)")
    n.add_argument("--count", type=int, default=1, help="data processes per --data (default 1)")
    n.add_argument("--join", metavar="NODE", help="a node of the cluster to join")
    n.add_argument("--replicas", type=int, default=3, help="with --server: copies of each slot (default 3)")
    n.add_argument("--write-acks", type=int, default=0,
                   help="with --server: copies a write needs before it is acknowledged (default: a majority)")
    n.add_argument("--threads", type=int, default=None, help="scheduler threads (default: one per CPU)")
    n.add_argument("--spin-us", type=float, default=50.0,
                   help="microseconds an idle scheduler thread polls before it sleeps (default 50; 0 saves CPU)")
    n.add_argument("--max-sessions", type=int, default=1024,
                   help="TCP client sessions open at once on this node (default 1024; more are refused)")
    n.add_argument("--max-send-queue-mb", type=int, default=256,
                   help="MiB queued for one peer node before it is taken as not reading and disconnected "
                        "(default 256)")
    n.add_argument("--http", metavar="HOST:PORT", default=None,
                   help="serve /metrics (Prometheus) and the live page there; unauthenticated, so keep it on "
                        "loopback or a network only operators reach")
    _tls_node_args(n)
    n.set_defaults(run=cmd_node)

    s = sub.add_parser("status", help="nodes, databases, masters, keys and memory of a cluster")
    s.add_argument("--node", default="n1@127.0.0.1:7001", help="a node of the cluster (name@host:port or host:port)")
    s.add_argument("--cookie-file", default=_default_cookie_file())
    shown = s.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print it as JSON, with every node's metrics")
    shown.add_argument("--watch", action="store_true", help="refresh it every --interval seconds (Ctrl-C stops)")
    s.add_argument("--interval", type=float, default=2.0, help="with --watch: seconds between refreshes (default 2)")
    s.add_argument("--count", type=int, default=0, help="with --watch: stop after this many refreshes (0: never)")
    _tls_node_args(s)
    s.set_defaults(run=cmd_status)

    t = sub.add_parser("top", help="the busiest processes of every node (mailbox length, messages per second)")
    t.add_argument("--node", default="n1@127.0.0.1:7001", help="a node of the cluster (name@host:port or host:port)")
    t.add_argument("--cookie-file", default=_default_cookie_file())
    t.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    t.add_argument("--count", type=int, default=0, help="stop after this many refreshes (0: never)")
    t.add_argument("--limit", type=int, default=20, help="processes shown (default 20)")
    _tls_node_args(t)
    t.set_defaults(run=cmd_top)

    w = sub.add_parser("wait-settled", help="wait until a database's data processes all serve and no slot moves")
    w.add_argument("db")
    w.add_argument("--node", default="n1@127.0.0.1:7001", help="a node of the cluster (name@host:port or host:port)")
    w.add_argument("--timeout", type=float, default=600.0, help="seconds before giving up (exit 1; default 600)")
    w.add_argument("--cookie-file", default=_default_cookie_file())
    _tls_node_args(w)
    w.set_defaults(run=cmd_wait_settled)

    d = sub.add_parser("stop-data", help="drain data processes of a database on a node, then stop them")
    d.add_argument("db")
    d.add_argument("--node", required=True, help="the node they run on (name@host:port or host:port)")
    d.add_argument("--count", type=int, default=1, help="how many (default 1; the highest-numbered first)")
    d.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the drain (default 600)")
    d.add_argument("--cookie-file", default=_default_cookie_file())
    _tls_node_args(d)
    d.set_defaults(run=cmd_stop_data)

    for name, run, help_ in (("get", cmd_get, "print a key's value"), ("set", cmd_set, "store a value"),
                             ("remove", cmd_remove, "remove a key")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("key")
        if name == "set":
            c.add_argument("value")
            c.add_argument("--json", action="store_true", help="parse VALUE as JSON (default: a string)")
        c.add_argument("--db", required=True)
        c.add_argument("--node", default="127.0.0.1:7001", help="host:port of any node (default 127.0.0.1:7001)")
        c.add_argument("--token", default=None, help="the database's client key")
        c.add_argument("--timeout", type=float, default=5.0)
        c.add_argument("--tls-ca", metavar="PEM", default=None,
                       help="for nodes that use TLS: the CA file their certificate must chain to")
        c.add_argument("--tls", action="store_true", help="TLS without checking the node's certificate")
        c.set_defaults(run=run)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    if args.command == "node":
        _run_on_jemalloc(argv)
    try:
        return args.run(args)
    except Error as e:
        print(f"panal: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
