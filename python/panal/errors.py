"""panal's exceptions: one class per error code of the C++ core.

Every error a call can meet is a subclass of :class:`panal.Error`, so
``except panal.Error`` catches them all; the specific classes say what went
wrong. The numeric ``code`` matches ``panal::errc`` in src/util/error.h.
"""


class Error(Exception):
    """Base class of every panal error."""

    code = -1


class Timeout(Error):
    """No answer came in time. The operation may or may not have happened."""

    code = 1


class NoProcess(Error):
    """The process asked does not exist, or died before it answered."""

    code = 2


class NameTaken(Error):
    """Another live process holds that registered name."""

    code = 3


class NotRunning(Error):
    """The runtime or node was stopped; create a new one to go on."""

    code = 4


class BadArgument(Error, ValueError):
    """An argument was invalid; the message says which and why."""

    code = 5


class NotFound(Error, LookupError):
    """Nothing by that name or id exists."""

    code = 6


class AlreadyExists(Error):
    """Something with that name or id exists already."""

    code = 7


class StartFailed(Error):
    """A process or child could not be started; the message says why."""

    code = 8


class Malformed(Error):
    """Bytes from the network were not a valid frame or message; that connection was closed."""

    code = 9


class Unauthorized(Error):
    """A wrong cookie, token or key: the other side refused this one."""

    code = 10


class ConnectionLost(Error):
    """The node or server went away; a retry may reach another one."""

    code = 11


class KeyTooLarge(Error, ValueError):
    """The key is longer than the database allows (max_key_bytes); nothing was stored."""

    code = 20


class ValueTooLarge(Error, ValueError):
    """The value is larger than the database allows (max_value_bytes); nothing was stored."""

    code = 21


class TooManyKeys(Error):
    """The database holds its maximum number of keys (max_keys); remove some, or raise the limit."""

    code = 22


class OutOfMemory(Error):
    """The data process that owns this key is at its memory limit (max_memory); nothing was stored."""

    code = 23


class NoMaster(Error):
    """No server of the database is alive right now; start one (start_server) or retry."""

    code = 24


class NoDataNodes(Error):
    """The database has no live data process; start one (start_data) or retry."""

    code = 25


class UnknownDatabase(Error, LookupError):
    """No server of that database runs in the cluster: check the name, or start_server it."""

    code = 26


class Moved(Error):
    """The key's slot is moving to another data process (or the map changed); retry.

    Clients retry this themselves until their timeout; you see it only if the
    slot stayed unavailable that long."""

    code = 27


class Unavailable(Error):
    """A write reached too few holders of its slot (some failed). It may have
    been stored: retried by the client with the same write id, it is never
    applied twice."""

    code = 28


_BY_CODE = {cls.code: cls for cls in (Timeout, NoProcess, NameTaken, NotRunning, BadArgument, NotFound,
                                      AlreadyExists, StartFailed, Malformed, Unauthorized, ConnectionLost,
                                      KeyTooLarge, ValueTooLarge, TooManyKeys, OutOfMemory, NoMaster, NoDataNodes,
                                      UnknownDatabase, Moved, Unavailable)}


def error_class(code: int) -> type:
    """The exception class for an error code (panal.Error for unknown codes)."""
    return _BY_CODE.get(code, Error)
