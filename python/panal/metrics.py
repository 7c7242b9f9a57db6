"""Reading a node's metrics (the Prometheus text format) into Python values."""
from __future__ import annotations

import re

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


_ESCAPE = re.compile(r'\\(.)')


def _unescape(v: str) -> str:
    # One pass: an escaped backslash followed by "n" stays a backslash and an n.
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse(text: str) -> dict[str, list[dict]]:
    """{sample name: [{label: value, ..., "value": float}, ...]}, in the order
    of the text. Histogram series keep their suffixes (_bucket, _sum,
    _count). A list of dicts goes straight into pandas.DataFrame."""
    out: dict[str, list[dict]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"not a metrics line: {line!r}")
        name, labels, value = m.groups()
        row = {k: _unescape(v) for k, v in _LABEL.findall(labels or "")}
        row["value"] = float(value)
        out.setdefault(name, []).append(row)
    return out


def total(samples: list[dict], **labels) -> float:
    """The sum of the samples whose labels match `labels` (e.g. op="get")."""
    return sum(s["value"] for s in samples if all(s.get(k) == v for k, v in labels.items()))
