"""panal: an in-memory, partitioned key-value store built as an Erlang/OTP-style
supervision tree, with its C++ runtime usable from Python.

>>> import panal
>>> rt = panal.Runtime(threads=2)
>>> seconds = rt.ping_pong(10_000)
>>> rt.stop()
"""
from ._core import Runtime, __version__, set_log_level
from .errors import (AlreadyExists, BadArgument, ConnectionLost, Error, KeyTooLarge, Malformed, NameTaken,
                     NoDataNodes, NoMaster, NoProcess, NotFound, NotRunning, OutOfMemory, StartFailed, Timeout,
                     TooManyKeys, Unauthorized, UnknownDatabase, ValueTooLarge)


def _runtime_enter(self):
    return self


def _runtime_exit(self, *exc):
    self.stop()
    return False


def _runtime_repr(self):
    state = "running" if self.running else "stopped"
    return f"<panal.Runtime {self.node} {state}, {self.threads} threads, {self.process_count} processes>"


# Sugar kept in Python: `with panal.Runtime() as rt:` stops it on the way out.
Runtime.__enter__ = _runtime_enter
Runtime.__exit__ = _runtime_exit
Runtime.__repr__ = _runtime_repr

__all__ = [
    "Runtime", "set_log_level", "__version__",
    "Error", "Timeout", "NoProcess", "NameTaken", "NotRunning", "BadArgument", "NotFound", "AlreadyExists",
    "StartFailed", "Malformed", "Unauthorized", "ConnectionLost", "KeyTooLarge", "ValueTooLarge", "TooManyKeys",
    "OutOfMemory", "NoMaster", "NoDataNodes", "UnknownDatabase",
]
