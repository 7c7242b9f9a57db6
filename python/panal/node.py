"""panal.Node: a node of a panal cluster, embedded in this Python process."""
from __future__ import annotations

import html
import json
from typing import Iterable

from . import _core
from . import metrics as _metrics
from .client import Client


def _nodes(nodes: str | Iterable[str] | None) -> list[str]:
    if nodes is None:
        return []
    if isinstance(nodes, str):
        return [nodes]
    return list(nodes)


class Node:
    """A node running in background threads of this Python process.

    name: "name@host:port" to join a cluster (it listens there), or the
    default "nonode@nohost" for a node on its own. A distributed node needs
    the cluster's cookie (cookie=... or cookie_file=..., a file only its
    owner can read). Use it as a context manager, or call stop(); a new Node
    can be started afterwards in the same interpreter. `spin` (seconds): how
    long at most an idle scheduler thread polls before it sleeps (lower
    latency under load and between nodes for some CPU; it stops polling
    where that does not pay, e.g. one client's lone requests; 0: sleep at once). `max_sessions`: TCP
    client sessions open at once on this node (more are refused with
    `Unavailable`). `max_send_queue`: bytes queued for one peer node and not
    yet written; past it the peer is taken as not reading and the connection
    is closed (then redialled). `tls_cert`, `tls_key` (PEM files): TLS 1.3 on
    the node's port for nodes and clients alike (a plaintext peer is
    refused); `tls_ca`: the CA that the nodes this one dials must present a
    certificate from (without it, the cookie handshake, bound to the TLS
    session, is what authenticates them). `http` ("host:port", port 0: any
    free one): serve the node's metrics (/metrics, Prometheus text) and its
    live page there; off by default, and unauthenticated: keep it on
    loopback or a network only operators reach (docs/operations.md).
    """

    def __init__(self, name: str = "nonode@nohost", cookie: str | None = None, cookie_file: str | None = None,
                 threads: int | None = None, tick: float = 1.0, down_after: float = 4.0, spin: float = 50e-6,
                 max_sessions: int = 1024, max_send_queue: int = 256 << 20, tls_cert: str | None = None,
                 tls_key: str | None = None, tls_ca: str | None = None, http: str | None = None):
        self._raw = _core.RawNode(name, cookie, cookie_file, threads, float(tick), float(down_after), float(spin),
                                  int(max_sessions), int(max_send_queue), tls_cert, tls_key, tls_ca, http)
        self._http_host = http.rsplit(":", 1)[0] if http else None

    @property
    def name(self) -> str:
        return self._raw.name

    @property
    def running(self) -> bool:
        return self._raw.running

    def connect(self, node: str) -> None:
        """Joins the cluster `node` belongs to (the full mesh follows)."""
        self._raw.connect(node)

    def nodes(self) -> list[str]:
        """The connected nodes (this one not included)."""
        return self._raw.nodes()

    def start_server(self, db: str, nodes: str | Iterable[str] | None = None, *, max_key_bytes: int = 1024,
                     max_value_bytes: int = 8 << 20, max_keys: int = 0, max_memory: int = 0,
                     ckey: str | None = None, slots: int = 16384, replicas: int = 3, write_acks: int = 0,
                     lease: float = 0.0) -> list[str]:
        """Starts a server of `db` on each of `nodes` (default: this node); the
        oldest server is the master. The limits (0: unlimited) and the client
        key hold for the database. Each slot is held by `replicas` data
        processes (fewer while there are fewer); a write is acknowledged once
        `write_acks` of them hold it (0: a majority of `replicas`). `lease`
        (seconds; 0: the node's down_after) is how long a primary may serve
        without hearing from the master. Returns the new pids."""
        return self._raw.start_server(db, _nodes(nodes), max_key_bytes, max_value_bytes, max_keys, max_memory, ckey,
                                      slots, int(replicas), int(write_acks), float(lease))

    def start_data(self, db: str, nodes: str | Iterable[str] | None = None, count: int = 1) -> list[str]:
        """Starts `count` data processes of `db` on each of `nodes` (default: this node).
        Each fills the slots it is given from their current holders before it serves them."""
        return self._raw.start_data(db, _nodes(nodes), int(count))

    def stop_data(self, db: str, nodes: str | Iterable[str] | None = None, count: int = 1,
                  timeout: float = 600.0) -> None:
        """Gracefully removes `count` data processes of `db` on each of `nodes`
        (default: this node; the highest-numbered first): their slots move to
        the other data processes, then they stop. Nothing is lost and requests
        are answered meanwhile. Refused if no data process would be left."""
        self._raw.stop_data(db, _nodes(nodes), int(count), float(timeout))

    def slot_map(self, db: str) -> dict | None:
        """The slot map of `db` as this node holds it: epoch, master, replicas,
        write_acks, slots, moving (slots not settled), members, owners_digest."""
        return self._raw.slot_map(db)

    def start_client(self, name: str, db: str, nodes: str | Iterable[str] | None = None) -> Client:
        """Starts a client process `name` of `db` (on `nodes`, default this node)
        and returns a Client that talks through the first."""
        return Client(self._raw.start_client(name, db, _nodes(nodes)), db, node=self)

    def groups(self, db: str) -> dict:
        """{"server": [pid, ...], "data": [...], "client": [...]} as this node sees them."""
        return self._raw.groups(db)

    def master(self, db: str) -> str | None:
        """The pid of the master server of `db`, or None."""
        return self._raw.master(db)

    def databases(self) -> list[str]:
        """Databases with a live server in the cluster."""
        return self._raw.databases()

    def locate(self, db: str, key: str | bytes) -> list[dict]:
        """Where `key` is: for every live data process of `db`, its role for the
        key's slot (primary, replica, filling, none), whether it holds an entry,
        the value (msgpack bytes; None for a tombstone) and its version
        (epoch, hlc). For experiments: watch a key move, fail over and refill."""
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        return self._raw.locate(db, raw)

    def stats(self, db: str) -> list[dict]:
        """Every live data process of `db`: keys, memory (bytes), entries,
        tombstones, state (serving / filling / syncing / draining / waiting),
        slots (primary, held, filling), keys and bytes moved in and out by
        fills and syncs, and the transfer rate (bytes/s, last second)."""
        return self._raw.stats(db)

    def supervision(self, node: str | None = None) -> list[str]:
        """The supervision tree of `node` (default: this one), a line per
        child: id, pid and how often its supervisor restarted it."""
        return self._raw.supervision(node or "")

    def metrics(self, node: str | None = None, *, text: bool = False) -> dict[str, list[dict]] | str:
        """The metrics of `node` (default: this one), as
        {name: [{label: value, ..., "value": float}]} (see
        panal.metrics.parse), or the Prometheus text with text=True.
        docs/operations.md says what each one means."""
        raw = self._raw.metrics(node or "")
        return raw if text else _metrics.parse(raw)

    def processes(self, node: str | None = None) -> list[dict]:
        """Every live process of `node` (default: this one): pid, registered
        name, mailbox (messages waiting) and received (messages, ever)."""
        return self._raw.processes(node or "")

    def view(self) -> dict:
        """The cluster as this node sees it (what the live page shows): nodes
        with their supervision trees, databases with master, map (epoch,
        members, `cells`: the primary of 256 sampled slots) and data
        processes, and this node's request counts and latency quantiles."""
        return json.loads(self._raw.view_json())

    def watch(self, seconds: float = 30.0, every: float = 1.0, *, out=None) -> None:
        """Shows request rates, latencies, data processes and restarts as
        they change, every `every` seconds for `seconds` (in Jupyter one
        display updated in place; elsewhere a block of lines per refresh, to
        `out` or stdout). Stops early on KeyboardInterrupt."""
        import sys
        import time
        from . import views
        handle = None
        try:
            from IPython import get_ipython
            if get_ipython() is not None and out is None:
                from IPython.display import HTML, display
                handle = display(HTML("<i>panal: watching…</i>"), display_id=True)
        except ImportError:
            pass
        before = None
        deadline = time.monotonic() + seconds
        try:
            while True:
                now = self.view()
                if handle is not None:
                    from IPython.display import HTML
                    handle.update(HTML(views.watch_html(now, before)))
                else:
                    print(views.watch_text(now, before), file=out or sys.stdout, flush=True)
                before = now
                if time.monotonic() + every > deadline:
                    break
                time.sleep(every)
        except KeyboardInterrupt:
            pass

    @property
    def http_url(self) -> str | None:
        """The base URL of this node's HTTP listener, or None without one."""
        port = self._raw.http_port
        if not port:
            return None
        host = self._http_host or "127.0.0.1"
        if host in ("0.0.0.0", "::", ""):  # listening everywhere: this machine's loopback reaches it
            host = "127.0.0.1"
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def kill(self, pid_or_role: str) -> str:
        """Crashes a process, for experiments: a pid, "db/server" (the master),
        "db/data" (a data process), or one of the node's own processes: "dist"
        (the distribution controller), "listener" (the port's acceptor), "pg"
        (the group registry's scope), "status". Its supervisor restarts it.
        Returns the pid."""
        return self._raw.kill(pid_or_role)

    def stop(self) -> None:
        """Stops every process of this node and its threads. Idempotent."""
        self._raw.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _view(self):
        """The cluster as this node sees it: (nodes, [(db, master, groups, stats)])."""
        dbs = [(db, self.master(db), self.groups(db), self.stats(db)) for db in self.databases()]
        return [self.name] + self.nodes(), dbs

    def __repr__(self):
        if not self.running:
            return "<panal.Node stopped>"
        nodes, dbs = self._view()
        lines = [f"<panal.Node {self.name}: {len(nodes)} node(s)"]
        for db, master, groups, stats in dbs:
            keys = ", ".join(f"{s['keys']} {s['state']}" for s in stats)
            lines.append(f"  {db}: master {master}, {len(groups['server'])} server(s), "
                         f"{len(groups['data'])} data ({keys}), {len(groups['client'])} client(s)")
        return "\n".join(lines) + ">"

    def _repr_html_(self):
        if not self.running:
            return "<b>panal.Node</b> (stopped)"
        if self.http_url:  # the live page itself
            return (f'<iframe src="{html.escape(self.http_url)}/" width="100%" height="640" '
                    f'style="border:1px solid #ddd"></iframe>')
        nodes, dbs = self._view()
        e = html.escape
        rows = "".join(f"<li>{e(n)}</li>" for n in nodes)
        out = [f"<b>panal.Node</b> {e(self.name)}<br>nodes:<ul>{rows}</ul>"]
        for db, master, groups, stats in dbs:
            out.append(f"<table><caption>database <b>{e(db)}</b> — master {e(str(master))}</caption>"
                       "<tr><th>role</th><th>pid</th><th>state</th><th>keys</th><th>memory (bytes)</th>"
                       "<th>slots (primary/held/filling)</th><th>moved in (keys, MB/s)</th></tr>")
            by_pid = {s["pid"]: s for s in stats}
            for role in ("server", "data", "client"):
                for p in groups[role]:
                    s = by_pid.get(p, {})
                    mark = " (master)" if p == master else ""
                    slots = f"{s['slots_primary']}/{s['slots_held']}/{s['slots_filling']}" if s else ""
                    moved = f"{s['keys_in']}, {s['rate'] / 1e6:.1f}" if s else ""
                    out.append(f"<tr><td>{role}{mark}</td><td>{e(p)}</td><td>{e(s.get('state', ''))}</td>"
                               f"<td>{s.get('keys', '')}</td><td>{s.get('memory', '')}</td><td>{slots}</td>"
                               f"<td>{moved}</td></tr>")
            out.append("</table>")
        return "".join(out)
