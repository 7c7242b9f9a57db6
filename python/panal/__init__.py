"""panal: an in-memory, partitioned key-value store built as an Erlang/OTP-style
supervision tree, with Python on top.

>>> import panal
>>> with panal.Node() as node:
...     node.start_server("mydb"); node.start_data("mydb", count=2)
...     db = node.start_client("c1", "mydb")
...     db["k"] = {"any": "msgpack value"}
...     db["k"]
{'any': 'msgpack value'}
"""
from ._core import Runtime, __version__, set_log_level
from .client import Client, Pipeline, connect
from .errors import (AlreadyExists, BadArgument, ConnectionLost, Error, KeyTooLarge, Malformed, Moved, NameTaken,
                     NoDataNodes, NoMaster, NoProcess, NotFound, NotRunning, OutOfMemory, StartFailed, Timeout,
                     TooManyKeys, Unauthorized, Unavailable, UnknownDatabase, ValueTooLarge)
from . import metrics
from .node import Node


def _runtime_enter(self):
    return self


def _runtime_exit(self, *exc):
    self.stop()
    return False


def _runtime_repr(self):
    state = "running" if self.running else "stopped"
    return f"<panal.Runtime {self.node} {state}, {self.threads} threads, {self.process_count} processes>"


import os as _os

# A library should be quiet: warnings and errors only, unless PANAL_LOG says otherwise.
if "PANAL_LOG" not in _os.environ:
    set_log_level("warn")

# Sugar kept in Python: `with panal.Runtime() as rt:` stops it on the way out.
Runtime.__enter__ = _runtime_enter
Runtime.__exit__ = _runtime_exit
Runtime.__repr__ = _runtime_repr

__all__ = [
    "Node", "Client", "connect", "Runtime", "set_log_level", "__version__",
    "Error", "Timeout", "NoProcess", "NameTaken", "NotRunning", "BadArgument", "NotFound", "AlreadyExists",
    "StartFailed", "Malformed", "Unauthorized", "ConnectionLost", "KeyTooLarge", "ValueTooLarge", "TooManyKeys",
    "OutOfMemory", "NoMaster", "NoDataNodes", "UnknownDatabase", "Moved", "Unavailable",
]
