"""panal.Client: one database, through a client process or a TCP session."""
from __future__ import annotations

import html
from typing import Any, Iterable, Mapping

import msgpack

from . import _core
from .errors import error_class

_MISSING = object()


def _key(key: str | bytes) -> bytes:
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise TypeError(f"a key is str or bytes, not {type(key).__name__}")


def _pack(value: Any) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True)
    except TypeError as e:
        raise TypeError(f"panal stores what msgpack carries (bytes, str, int, float, bool, None, list, dict): {e}") from None


def _unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


class Client:
    """The operations of one database.

    Keys are str (stored as UTF-8) or bytes; values are anything msgpack
    carries and come back as the same Python types (tuples come back as
    lists). Errors are subclasses of panal.Error. A client may be shared by
    threads; calls release the GIL, and Ctrl-C interrupts a waiting call.
    """

    def __init__(self, raw: _core.RawClient, db: str, node=None):
        self._raw = raw
        self.db = db
        self._node = node  # the embedded Node it came from: its view of the cluster

    def get(self, key: str | bytes, default: Any = None) -> Any:
        """The value of `key`, or `default` if it has none."""
        raw = self._raw.get(_key(key))
        return default if raw is None else _unpack(raw)

    def set(self, key: str | bytes, value: Any) -> None:
        """Stores `value` under `key`; returns once the key's data process has it."""
        self._raw.set(_key(key), _pack(value))

    def remove(self, key: str | bytes) -> bool:
        """Removes `key`; True if it had a value."""
        return self._raw.remove(_key(key))

    def exists(self, key: str | bytes) -> bool:
        """True if `key` has a value."""
        return self._raw.exists(_key(key))

    def unsafe_set(self, key: str | bytes, value: Any) -> None:
        """Stores without waiting for an acknowledgement (errors are not reported);
        later calls on this client are ordered after it."""
        self._raw.unsafe_set(_key(key), _pack(value))

    def mget(self, keys: Iterable[str | bytes], default: Any = None) -> list:
        """The values of `keys`, in order (`default` for the missing), fetched in parallel."""
        keys = keys if isinstance(keys, list) else list(keys)
        # The values come back as one msgpack array, unpacked in one call
        # (not one call per value); str and bytes keys go to C++ as they are.
        try:
            blob, missing = self._raw.mget_packed(keys)
        except TypeError:  # other key types: _key says what is wrong, or converts
            blob, missing = self._raw.mget_packed([_key(k) for k in keys])
        out = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        if default is not None:
            for i in missing:
                out[i] = default
        return out

    def mset(self, items: Mapping[str | bytes, Any] | Iterable[tuple]) -> None:
        """Stores many keys at once, in parallel."""
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        keys = [k for k, _ in pairs]
        # All values packed in one call; C++ cuts the array into the values.
        try:
            packed = msgpack.packb([v for _, v in pairs], use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            for _, v in pairs:
                _pack(v)  # raises the error that names the value msgpack cannot carry
            raise
        try:
            self._raw.mset_packed(keys, packed)
        except TypeError:
            self._raw.mset_packed([_key(k) for k in keys], packed)

    def pipeline(self) -> "Pipeline":
        """Collects get / set / remove / exists calls and sends them together
        on execute() (or at the end of a `with` block): one round of the
        client for all of them. Calls on different keys run in parallel, on
        the same key in the order made."""
        return Pipeline(self)

    def set_timeout(self, seconds: float) -> None:
        """How long each call may wait (default 5 s), retries included."""
        self._raw.set_timeout(float(seconds))

    def close(self) -> None:
        """Closes a TCP session (a no-op for a client process)."""
        self._raw.close()

    def sessions(self) -> list[str]:
        """The nodes a TCP client has a session with: the home node (the
        first address that answered) first, then those opened to route
        requests to their slot's primary. A session whose node closed it (a
        node that died) is left out at once. Empty for a client process."""
        return list(self._raw.sessions())

    def __getitem__(self, key):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value):
        self.set(key, value)

    def __delitem__(self, key):
        if not self.remove(key):
            raise KeyError(key)

    def __contains__(self, key):
        return self.exists(key)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        text = f"<panal.Client {self._raw.describe()}>"
        if self._node is not None and self._node.running:
            text += "\n" + repr(self._node)
        return text

    def _repr_html_(self):
        head = f"<b>panal.Client</b> {html.escape(self._raw.describe())}"
        if self._node is not None and self._node.running:
            return head + "<br>" + self._node._repr_html_()
        return head


_GET, _SET, _REMOVE, _EXISTS = 1, 2, 3, 4


class Pipeline:
    """Mixed operations sent together (Client.pipeline()).

    >>> with db.pipeline() as p:
    ...     _ = p.set("a", 1).get("a").remove("b").exists("a")   # calls chain
    >>> p.results
    [None, 1, False, True]

    execute() returns one result per call, in order: get its value (or the
    default given to get), set None, remove and exists a bool. A call that
    failed raises its exception from execute() (the first such, after every
    call has run), unless raise_on_error=False, which puts the exception in
    its place in the list instead. A pipeline can be reused after execute().
    """

    def __init__(self, client: "Client"):
        self._client = client
        self._ops: list[tuple[int, bytes, bytes]] = []
        self._defaults: list[Any] = []
        self.results: list | None = None

    def get(self, key: str | bytes, default: Any = None) -> "Pipeline":
        self._ops.append((_GET, _key(key), b""))
        self._defaults.append(default)
        return self

    def set(self, key: str | bytes, value: Any) -> "Pipeline":
        self._ops.append((_SET, _key(key), _pack(value)))
        self._defaults.append(None)
        return self

    def remove(self, key: str | bytes) -> "Pipeline":
        self._ops.append((_REMOVE, _key(key), b""))
        self._defaults.append(None)
        return self

    def exists(self, key: str | bytes) -> "Pipeline":
        self._ops.append((_EXISTS, _key(key), b""))
        self._defaults.append(None)
        return self

    def __len__(self) -> int:
        return len(self._ops)

    def execute(self, raise_on_error: bool = True) -> list:
        ops, defaults = self._ops, self._defaults
        self._ops, self._defaults = [], []
        out: list = []
        first_error = None
        for (kind, _, _), default, (code, message, found, value) in zip(ops, defaults, self._client._raw.batch(ops)):
            if code != 0:
                e = error_class(code)(message)
                first_error = first_error or e
                out.append(e)
            elif kind == _GET:
                out.append(_unpack(value) if found else default)
            elif kind == _SET:
                out.append(None)
            else:
                out.append(bool(found))
        self.results = out
        if raise_on_error and first_error is not None:
            raise first_error
        return out

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, exc_type, *rest) -> bool:
        if exc_type is None and self._ops:
            self.execute()
        return False


def connect(addresses: str | Iterable[str], db: str, token: str | None = None, timeout: float = 5.0,
            tls: bool = False, tls_ca: str | None = None, route: bool = True, spin: float = 50e-6) -> Client:
    """A client of database `db` over TCP, without a local node.

    `addresses`: "host:port" of one or more nodes (a node name works too);
    they are tried in order, and a lost connection fails over to the next.
    `token`: the database's client key, if it has one.
    `tls_ca`: for nodes that use TLS, the CA file their certificates must
    chain to (an untrusted node raises `Unauthorized`). `tls=True` without a
    CA encrypts but does not check the node: use it only for experiments.
    `route`: send each request straight to the node of its key's primary
    (the client learns the slot map from the first node and opens a session
    on each node it needs); False sends everything through the first node,
    which forwards (one hop more). Answers are the same either way.
    `spin` (seconds, at most 0.01): a call first reads its connection
    without blocking for up to this long, then blocks. A node on the same
    machine usually answers before a blocked thread would have woken (one
    call at a time ran 2.4x faster here); it costs this process's CPU, not
    the node's, and stops by itself while answers take longer. 0: never.
    """
    if isinstance(addresses, str):
        addresses = [addresses]
    return Client(_core.connect_tcp(list(addresses), db, token, float(timeout), bool(tls or tls_ca), tls_ca, bool(route),
                                   float(spin)), db)
