"""Text and HTML renderings of a node's view (Node.view()), for watch() and
the command line. Rates come from two views: the later one and the one
before it."""
from __future__ import annotations

import html


def _rates(now: dict, before: dict | None) -> dict[str, float]:
    if not before:
        return {op: 0.0 for op in now["requests"]}
    dt = max(now["time"] - before["time"], 1e-9)
    return {op: max(0.0, (r["count"] - before["requests"][op]["count"]) / dt) for op, r in now["requests"].items()}


def _us(v: float) -> str:
    return f"{v / 1000:.1f} ms" if v >= 1000 else f"{v:.0f} µs"


def _restarts(view: dict) -> list[tuple[str, str, int]]:
    out = []
    for n in view["nodes"]:
        path: list[str] = []
        for c in n.get("tree", []):
            del path[c["depth"] - 1:]
            path.append(c["id"])
            if c["restarts"]:
                out.append((n["name"], "/".join(path), c["restarts"]))
    return out


def _rate(d: dict) -> str:
    return f" ({d['rate'] / 1e6:.1f} MB/s)" if d["rate"] > 0 else ""


def watch_text(now: dict, before: dict | None) -> str:
    rates = _rates(now, before)
    lines = [f"panal: {now['node']}"]
    lines.append(f"  {'op':<11}{'per s':>10}{'total':>10}{'errors':>8}{'p50':>10}{'p99':>10}")
    for op, r in now["requests"].items():
        lines.append(f"  {op:<11}{rates[op]:>10.0f}{r['count']:>10}{r['errors']:>8}{_us(r['p50_us']):>10}"
                     f"{_us(r['p99_us']):>10}")
    for db in now["databases"]:
        m = db.get("map") or {}
        lines.append(f"  database {db['name']}: master {db['master']}, epoch {m.get('epoch')}, "
                     f"{m.get('moving', 0)} slot(s) moving")
        for d in db["data"]:
            lines.append(f"    data {d['pid']}: {d['state']}, {d['keys']} keys, slots "
                         f"{d['slots_primary']}/{d['slots_held']}/{d['slots_filling']}, moved in {d['keys_in']} keys"
                         + (f" at {d['rate'] / 1e6:.1f} MB/s" if d["rate"] > 0 else ""))
    for node, path, n in _restarts(now):
        lines.append(f"  restarted: {node} {path} ×{n}")
    return "\n".join(lines)


def watch_html(now: dict, before: dict | None) -> str:
    e = html.escape
    rates = _rates(now, before)
    rows = "".join(f"<tr><td>{e(op)}</td><td>{rates[op]:.0f}</td><td>{r['count']}</td><td>{r['errors']}</td>"
                   f"<td>{_us(r['p50_us'])}</td><td>{_us(r['p99_us'])}</td></tr>" for op, r in now["requests"].items())
    out = [f"<b>panal</b> {e(now['node'])}<table><tr><th>op</th><th>per s</th><th>total</th><th>errors</th>"
           f"<th>p50</th><th>p99</th></tr>{rows}</table>"]
    for db in now["databases"]:
        m = db.get("map") or {}
        data = "".join(f"<tr><td>{e(d['pid'])}</td><td>{e(d['state'])}</td><td>{d['keys']}</td>"
                       f"<td>{d['slots_primary']}/{d['slots_held']}/{d['slots_filling']}</td>"
                       f"<td>{d['keys_in']}{_rate(d)}</td></tr>"
                       for d in db["data"])
        out.append(f"<p>database <b>{e(db['name'])}</b>: master {e(str(db['master']))}, epoch {m.get('epoch')}, "
                   f"{m.get('moving', 0)} slot(s) moving</p><table><tr><th>data</th><th>state</th><th>keys</th>"
                   f"<th>slots p/h/f</th><th>moved in</th></tr>{data}</table>")
    restarts = "".join(f"<li>{e(node)} {e(path)} ×{n}</li>" for node, path, n in _restarts(now))
    if restarts:
        out.append(f"<p>restarts:</p><ul>{restarts}</ul>")
    return "".join(out)
