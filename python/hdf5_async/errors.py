"""Exceptions raised by the hdf5-async client.

Every error reply from the server becomes an instance of the subclass of
:class:`HDF5AsyncError` named after its stable code (``NOT_FOUND`` ->
:class:`NotFoundError`, ...).  All of them carry ``.code`` (the wire string)
and ``.message`` (the server's human readable text; do not parse it).
"""

__all__ = [
    "HDF5AsyncError",
    "ConnectionClosedError",
    "BadRequestError",
    "BadPathError",
    "UnknownOpError",
    "ProtocolError",
    "TooLargeError",
    "NotFoundError",
    "ExistsError",
    "NotAGroupError",
    "NotADatasetError",
    "TypeMismatchError",
    "ShapeMismatchError",
    "OutOfRangeError",
    "UnsupportedTypeError",
    "HDF5Error",
    "ShuttingDownError",
    "InternalError",
    "ERROR_CLASSES",
    "error_from_reply",
]


class HDF5AsyncError(Exception):
    """Base class of every error the client raises for a server reply."""

    code = "INTERNAL"

    def __init__(self, message="", code=None):
        if code is not None:
            self.code = code
        self.message = message
        super().__init__(message)

    def __str__(self):
        return "%s: %s" % (self.code, self.message)

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self.message)


class ConnectionClosedError(HDF5AsyncError, ConnectionError):
    """The connection is not open, or dropped while a call was pending."""

    code = "CONNECTION_CLOSED"


class BadRequestError(HDF5AsyncError):
    """Malformed request, or a missing / ill-typed argument."""

    code = "BAD_REQUEST"


class BadPathError(HDF5AsyncError):
    """Path empty, relative, with empty/'.'/'..' components, or root misuse."""

    code = "BAD_PATH"


class UnknownOpError(HDF5AsyncError):
    code = "UNKNOWN_OP"


class ProtocolError(HDF5AsyncError):
    """The frame or its MessagePack could not be read."""

    code = "PROTOCOL_ERROR"


class TooLargeError(HDF5AsyncError):
    """Frame or message over a limit (max_message_size, nesting, elements)."""

    code = "TOO_LARGE"


class NotFoundError(HDF5AsyncError):
    code = "NOT_FOUND"


class ExistsError(HDF5AsyncError):
    code = "EXISTS"


class NotAGroupError(HDF5AsyncError):
    code = "NOT_A_GROUP"


class NotADatasetError(HDF5AsyncError):
    code = "NOT_A_DATASET"


class TypeMismatchError(HDF5AsyncError):
    code = "TYPE_MISMATCH"


class ShapeMismatchError(HDF5AsyncError):
    code = "SHAPE_MISMATCH"


class OutOfRangeError(HDF5AsyncError):
    code = "OUT_OF_RANGE"


class UnsupportedTypeError(HDF5AsyncError):
    code = "UNSUPPORTED_TYPE"


class HDF5Error(HDF5AsyncError):
    """libhdf5 failed; the message carries its error stack."""

    code = "HDF5_ERROR"


class ShuttingDownError(HDF5AsyncError):
    code = "SHUTTING_DOWN"


class InternalError(HDF5AsyncError):
    code = "INTERNAL"


ERROR_CLASSES = {
    cls.code: cls
    for cls in (
        BadRequestError,
        BadPathError,
        UnknownOpError,
        ProtocolError,
        TooLargeError,
        NotFoundError,
        ExistsError,
        NotAGroupError,
        NotADatasetError,
        TypeMismatchError,
        ShapeMismatchError,
        OutOfRangeError,
        UnsupportedTypeError,
        HDF5Error,
        ShuttingDownError,
        InternalError,
    )
}


def error_from_reply(error):
    """Build the exception for a reply's ``error`` map ({"code", "message"}).

    An unknown code (from a newer server) gives a plain HDF5AsyncError that
    still carries the code.
    """
    code = "INTERNAL"
    message = ""
    if isinstance(error, dict):
        code = error.get("code", code)
        message = error.get("message", message)
        if isinstance(code, bytes):
            code = code.decode("utf-8", "replace")
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
    else:
        message = "malformed error reply: %r" % (error,)
    code = str(code)
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        return HDF5AsyncError(str(message), code=code)
    return cls(str(message))
