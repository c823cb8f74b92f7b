"""Exceptions raised by the hdf5-async client.

Every error reply from the server becomes an instance of the subclass of
:class:`HDF5AsyncError` named after its stable code (``NOT_FOUND`` ->
:class:`NotFoundError`, ...).  All of them carry ``.code`` (the wire string,
or one of the client's own codes ``CONNECTION_CLOSED``, ``TIMEOUT``,
``BAD_REPLY``, ``READ_ONLY``, ``UNSUPPORTED``) and ``.message`` (human readable; do not parse
it).

Each class also derives from the built-in exception an h5py user expects
for that condition (``NotFoundError`` is a ``KeyError``, ``ExistsError`` a
``ValueError``, ``PermissionDeniedError`` a ``PermissionError``, ...), so
``except KeyError:`` works as it does with h5py. Where h5py raises another
built-in type for the same condition in a particular call (``f[name] = x``
on an existing name raises ``OSError``, not ``ValueError``), the h5py-style
API (:mod:`hdf5_async.h5`) raises :func:`flavoured` instances: still the
code's class, also that built-in type.

A class is declared once, below; declaring it registers its code.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Tuple, Type

__all__: List[str] = ["HDF5AsyncError", "ERROR_CLASSES", "error_from_reply", "flavoured"]

#: code -> class, for every code a reply may carry (filled as classes are declared)
ERROR_CLASSES: Dict[str, Type["HDF5AsyncError"]] = {}


class HDF5AsyncError(Exception):
    """Base class of every error the client raises for a server reply or a
    failed connection."""

    code: str = "INTERNAL"
    #: False for the client's own codes: no server reply carries them
    wire: bool = True

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.__dict__.get("_flavour_of") is not None:
            return  # a flavoured() twin: same code, already registered
        __all__.append(cls.__name__)
        if cls.wire:
            ERROR_CLASSES[cls.code] = cls

    def __init__(self, message: str = "", code: Optional[str] = None) -> None:
        if code is not None:
            self.code = code
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return "%s: %s" % (self.code, self.message)

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self.message)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (type(self).__dict__.get("_flavour_of") or type(self),
                           _flavour_base(type(self)), self.message, self.code))


# ---------------------------------------------------------- client's own codes


class ConnectionClosedError(HDF5AsyncError, ConnectionError):
    """The connection is not open, or dropped while a call was pending (a
    call whose reply was cut off raises this, never partial data)."""

    code = "CONNECTION_CLOSED"
    wire = False


class TimedOutError(HDF5AsyncError, asyncio.TimeoutError):
    """connect() or a call took longer than the client's ``timeout``. Also an
    ``asyncio.TimeoutError`` (the built-in ``TimeoutError`` from Python
    3.11). The request may still be applied: only the wait was given up."""

    code = "TIMEOUT"
    wire = False


class BadReplyError(HDF5AsyncError):
    """The client could not make sense of a reply (not the server's
    ``INTERNAL``): a bug or a version mismatch between client and server."""

    code = "BAD_REPLY"
    wire = False


class ReadOnlyError(HDF5AsyncError, PermissionError):
    """A change asked of a client opened read-only (``File(mode="r")``,
    ``HDF5Client(read_only=True)``): refused before anything is sent."""

    code = "READ_ONLY"
    wire = False


class UnsupportedError(HDF5AsyncError, NotImplementedError):
    """An h5py feature hdf5_async does not offer (yet): references, dimension
    scales, hard and external link creation, fancy-index writes, ... (see
    docs/from-h5py.md). Raised before anything is sent, never a wrong
    answer."""

    code = "UNSUPPORTED"
    wire = False


# ---------------------------------------------------------- server's codes


class BadRequestError(HDF5AsyncError, ValueError):
    """Malformed request, or a missing / ill-typed argument."""

    code = "BAD_REQUEST"


class BadPathError(HDF5AsyncError, ValueError):
    """Path empty, relative, with empty/'.'/'..' components, or root misuse."""

    code = "BAD_PATH"


class UnknownOpError(HDF5AsyncError):
    """The server does not know the operation (an older server)."""

    code = "UNKNOWN_OP"


class ProtocolError(HDF5AsyncError):
    """The frame or its MessagePack could not be read by the server."""

    code = "PROTOCOL_ERROR"


class TooLargeError(HDF5AsyncError):
    """Frame or message over a limit (max_message_size, nesting, elements,
    max_op_bytes)."""

    code = "TOO_LARGE"


class NotFoundError(HDF5AsyncError, KeyError):
    """No object (or attribute) at the path."""

    code = "NOT_FOUND"


class ExistsError(HDF5AsyncError, ValueError):
    """The name is taken."""

    code = "EXISTS"


class NotAGroupError(HDF5AsyncError, TypeError):
    """A dataset stands where a group is needed."""

    code = "NOT_A_GROUP"


class NotADatasetError(HDF5AsyncError, TypeError):
    """A group stands where a dataset is needed."""

    code = "NOT_A_DATASET"


class TypeMismatchError(HDF5AsyncError, TypeError):
    """Data whose type cannot go into the dataset."""

    code = "TYPE_MISMATCH"


class ShapeMismatchError(HDF5AsyncError, ValueError):
    """Data or selection of the wrong shape."""

    code = "SHAPE_MISMATCH"


class OutOfRangeError(HDF5AsyncError, IndexError):
    """An index, a size or a shape outside what the dataset allows."""

    code = "OUT_OF_RANGE"


class UnsupportedTypeError(HDF5AsyncError, TypeError):
    """A dtype with no HDF5 mapping, or an HDF5 type with no numpy one."""

    code = "UNSUPPORTED_TYPE"


class HDF5Error(HDF5AsyncError, OSError):
    """libhdf5 failed; the message carries its error stack."""

    code = "HDF5_ERROR"


class ShuttingDownError(HDF5AsyncError):
    """The server is stopping and takes no new work."""

    code = "SHUTTING_DOWN"


class InternalError(HDF5AsyncError):
    """The server ran out of memory or hit a bug."""

    code = "INTERNAL"


class UnauthenticatedError(HDF5AsyncError, PermissionError):
    """No token, or a bad one (the server closes the connection after three
    bad ones); nothing was applied."""

    code = "UNAUTHENTICATED"


class PermissionDeniedError(HDF5AsyncError, PermissionError):
    """The token's role or path prefixes forbid the operation; nothing was
    applied."""

    code = "PERMISSION_DENIED"


class NoSpaceError(HDF5AsyncError, OSError):
    """The server's disk is full: the change was not applied (reads still
    work; changes work again once space returns)."""

    code = "NO_SPACE"


class SeqTooOldError(HDF5AsyncError, RuntimeError):
    """A request resent with the same client_id and seq is older than the
    server's window for that client: it may have been applied once, and it
    was not applied again (its result is no longer known)."""

    code = "SEQ_TOO_OLD"


class WrongNodeError(HDF5AsyncError, ConnectionError):
    """[cluster]: another node owns the file; nothing was applied. ``node``
    is the owner's "HOST:PORT" (the client follows it by itself)."""

    code = "WRONG_NODE"

    @property
    def node(self) -> Optional[str]:
        return getattr(self, "_node", None)


# ---------------------------------------------------------------- helpers

_FLAVOURS: Dict[Tuple[type, type], type] = {}


def _flavour_base(cls: type) -> Optional[type]:
    return cls.__dict__.get("_flavour_base")


def flavoured(exc: HDF5AsyncError, builtin: Type[BaseException]) -> HDF5AsyncError:
    """``exc`` as an instance of its own class that is also a ``builtin``
    (for example a NotFoundError that is also an OSError), with the same
    code, message, cause and traceback. ``exc`` itself when it already is
    one."""
    if isinstance(exc, builtin):
        return exc
    cls = type(exc)
    key = (cls, builtin)
    twin = _FLAVOURS.get(key)
    if twin is None:
        twin = type(cls.__name__, (cls, builtin),
                    {"_flavour_of": cls, "_flavour_base": builtin, "__module__": cls.__module__,
                     "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})
        _FLAVOURS[key] = twin
    out = twin(exc.message, code=exc.code)
    out.__cause__ = exc.__cause__
    out.__context__ = exc.__context__
    return out.with_traceback(exc.__traceback__)


def _rebuild(cls: Type[HDF5AsyncError], builtin: Optional[type], message: str, code: str) -> Any:
    exc = cls(message, code=code)
    return flavoured(exc, builtin) if builtin is not None else exc


def _text(x: Any) -> Any:
    return x.decode("utf-8", "replace") if isinstance(x, (bytes, bytearray)) else x


def error_from_reply(error: Any) -> HDF5AsyncError:
    """Build the exception for a reply's ``error`` map ({"code", "message"}).

    An unknown code (from a newer server) gives a plain HDF5AsyncError that
    still carries the code; an error that is not such a map is a
    BadReplyError (the client's fault or a version mismatch, not the
    server's INTERNAL)."""
    if not isinstance(error, dict) or not isinstance(_text(error.get("code")), str):
        return BadReplyError("malformed error in reply: %r" % (error,))
    code = _text(error["code"])
    message = str(_text(error.get("message", "")))
    cls = ERROR_CLASSES.get(code)
    exc = HDF5AsyncError(message, code=code) if cls is None else cls(message)
    node = _text(error.get("node"))
    if isinstance(node, str):
        exc._node = node  # type: ignore[attr-defined]  # WRONG_NODE: the owner's address
    if isinstance(error.get("index"), int):
        exc.index = error["index"]  # type: ignore[attr-defined]  # the failing op of a batch
    return exc
