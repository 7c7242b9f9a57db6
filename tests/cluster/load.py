"""Load for the fault tests: writers that log what was acknowledged, and
register clients that record a history for the linearizability checker.

Every loop is bounded in count and in time; clients only talk to nodes the
test started on 127.0.0.1.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter

import panal

from linearizability import Op


class Writer(threading.Thread):
    """Writes unique keys `prefix:N` (value N) one at a time until stopped,
    `limit` writes, or `seconds`; logs each acknowledged write and when."""

    def __init__(self, addresses, db, prefix, stop: threading.Event, limit=200_000, seconds=120.0, timeout=10.0,
                 route=True):
        super().__init__(daemon=True)
        self.addresses, self.db, self.prefix, self.stop = list(addresses), db, prefix, stop
        self.route = route
        self.limit, self.seconds, self.timeout = limit, seconds, timeout
        self.acked: dict[str, int] = {}
        self.ack_times: list[float] = []
        self.unknown: set[str] = set()  # the client gave up: stored or not
        self.errors: Counter = Counter()
        self.sessions_seen: set[str] = set()  # nodes the client had a session with (routing)

    def run(self):
        client = panal.connect(self.addresses, db=self.db, timeout=self.timeout, route=self.route)
        deadline = time.monotonic() + self.seconds
        for i in range(self.limit):
            if self.stop.is_set() or time.monotonic() > deadline:
                break
            key = f"{self.prefix}:{i}"
            try:
                client.set(key, i)
                self.acked[key] = i
                self.ack_times.append(time.monotonic())
                if i % 50 == 0:
                    self.sessions_seen.update(client.sessions())
            except panal.Error as e:
                self.unknown.add(key)
                self.errors[type(e).__name__] += 1
        client.close()


def run_writers(addresses, db, count, stop, tag="w", **kw):
    ws = [Writer(addresses[i % len(addresses):] + addresses[:i % len(addresses)], db, f"{tag}{i}", stop, **kw)
          for i in range(count)]
    for w in ws:
        w.start()
    return ws


def lost_writes(addresses, db, writers, timeout=20.0):
    """Reads back every acknowledged key; returns those that do not hold their acknowledged value."""
    client = panal.connect(addresses, db=db, timeout=timeout)
    acked = {}
    for w in writers:
        acked.update(w.acked)
    keys = sorted(acked)
    lost = []
    for n in range(0, len(keys), 500):
        chunk = keys[n:n + 500]
        values = client.mget(chunk)
        lost += [k for k, v in zip(chunk, values) if v != acked[k]]
    client.close()
    return lost, len(keys)


def longest_gap(writers, after):
    """The longest time, over writers, between `after` and an acknowledgement,
    or between two acknowledgements, after `after`."""
    worst = 0.0
    for w in writers:
        last = after
        for t in w.ack_times:
            if t < after:
                continue
            worst = max(worst, t - last)
            last = t
    return worst


class Register(threading.Thread):
    """Random get / set / remove on a few keys, with unique values, recorded
    as a history. After an operation whose outcome is unknown the client
    takes a new identity (its old operation may still land)."""

    def __init__(self, n, addresses, db, keys, stop, history, lock, limit=3000, seconds=60.0, timeout=3.0):
        super().__init__(daemon=True)
        self.n, self.addresses, self.db, self.keys = n, list(addresses), db, keys
        self.stop, self.history, self.lock = stop, history, lock
        self.limit, self.seconds, self.timeout = limit, seconds, timeout
        self.rng = random.Random(n)
        self.done = 0
        self.failed = Counter()

    def run(self):
        client = panal.connect(self.addresses, db=self.db, timeout=self.timeout)
        ident = self.n * 1_000_000
        deadline = time.monotonic() + self.seconds
        for i in range(self.limit):
            if self.stop.is_set() or time.monotonic() > deadline:
                break
            key = self.rng.choice(self.keys)
            r = self.rng.random()
            kind = "get" if r < 0.5 else "set" if r < 0.9 else "remove"
            value = f"{self.n}-{i}" if kind == "set" else None
            start = time.monotonic()
            try:
                if kind == "get":
                    value = client.get(key)
                elif kind == "set":
                    client.set(key, value)
                else:
                    value = client.remove(key)
                op = Op(ident, kind, key, value, start, time.monotonic())
                self.done += 1
            except panal.Error as e:
                self.failed[type(e).__name__] += 1
                op = Op(ident, kind, key, value if kind == "set" else None, start, None, ok=False)
                ident += 1
            with self.lock:
                self.history.append(op)
        client.close()


def run_registers(addresses, db, count, keys, stop, **kw):
    history, lock = [], threading.Lock()
    rs = [Register(i, addresses[i % len(addresses):] + addresses[:i % len(addresses)], db, keys, stop, history,
                   lock, **kw) for i in range(count)]
    for r in rs:
        r.start()
    return rs, history
