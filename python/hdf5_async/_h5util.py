"""Helpers of the h5py-shaped API (hdf5_async.h5 and hdf5_async.h5async):
h5py's small link types and string_dtype, h5py's exception types, name
resolution, selections and value conversions. No I/O here."""

from __future__ import annotations

import contextlib
import operator
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from .errors import (
    BadPathError,
    BadRequestError,
    HDF5AsyncError,
    NotFoundError,
    OutOfRangeError,
    ShapeMismatchError,
    UnsupportedError,
    flavoured,
)

__all__ = ["SoftLink", "ExternalLink", "HardLink", "string_dtype"]


# --------------------------------------------------------------- small types


class SoftLink:
    """A soft link, as h5py's: ``f["alias"] = SoftLink("/data/x")``."""

    def __init__(self, path: str) -> None:
        self.path = str(path)

    def __repr__(self) -> str:
        return '<SoftLink to "%s">' % self.path


class ExternalLink:
    """An external link (read only: ``get(name, getlink=True)`` returns one;
    creating one is not supported)."""

    def __init__(self, filename: str, path: str) -> None:
        self.filename = str(filename)
        self.path = str(path)

    def __repr__(self) -> str:
        return '<ExternalLink to "%s" in file "%s">' % (self.path, self.filename)


class HardLink:
    """What ``get(name, getlink=True)`` returns for an ordinary member."""

    def __repr__(self) -> str:
        return "<HardLink>"


def string_dtype(encoding: str = "utf-8", length: Optional[int] = None) -> np.dtype:
    """h5py's ``string_dtype``: variable-length strings (``length=None``) as
    an object dtype carrying {"vlen": str} (utf-8) or {"vlen": bytes}
    (ascii); a length gives fixed-length ``S<length>``."""
    if encoding not in ("utf-8", "ascii"):
        raise ValueError("encoding must be 'utf-8' or 'ascii', not %r" % (encoding,))
    if length is not None:
        return np.dtype("S%d" % length)
    return np.dtype("O", metadata={"vlen": str if encoding == "utf-8" else bytes})


# ----------------------------------------------------------------- errors


@contextlib.contextmanager
def _h5py_errors(**builtins: type) -> Iterator[None]:
    """Inside, an error whose code is a keyword here is re-raised as that
    built-in type too (h5py's for this call), keeping its class and code."""
    try:
        yield
    except HDF5AsyncError as e:
        base = builtins.get(e.code)
        if base is None:
            raise
        raise flavoured(e, base) from e.__cause__


def _err(cls: type, builtin: type, message: str) -> HDF5AsyncError:
    """An error found before sending: h5py's built-in type, with the code
    the server would have answered."""
    return flavoured(cls(message), builtin)


def _unsupported(what: str) -> UnsupportedError:
    return UnsupportedError("%s is not supported by hdf5_async (see docs/from-h5py.md)" % what)


# ------------------------------------------------------------------ paths


def _join(base: str, name: Any) -> str:
    """h5py's name resolution: absolute names from the root, others from the
    group; '' is an error, '//' and '.' components and a trailing '/' are
    ignored as HDF5 ignores them. '..' is refused (KeyError: HDF5 has no
    parent links)."""
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    if not isinstance(name, str):
        raise _err(BadPathError, TypeError, "Accessing a group is done with bytes or str, not %s" % type(name))
    if name == "":
        raise BadPathError("Name parameter cannot be an empty string")
    full = name if name.startswith("/") else base.rstrip("/") + "/" + name
    parts = [p for p in full.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise NotFoundError("'..' in %r: HDF5 paths have no parent component" % name)
    return "/" + "/".join(parts)


def _parent(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[1] if path != "/" else ""


# ------------------------------------------------------------- selections


def _as_tuple(sel: Any) -> Tuple[Any, ...]:
    return sel if isinstance(sel, tuple) else (sel,)


def _split_fields(sel: Tuple[Any, ...]) -> Tuple[List[str], Tuple[Any, ...]]:
    names = [s for s in sel if isinstance(s, str)]
    rest = tuple(s for s in sel if not isinstance(s, str))
    return names, rest


def _is_int(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return False
    try:
        operator.index(x)
        return True
    except TypeError:
        return False


def _check_simple(sel: Tuple[Any, ...]) -> Optional[int]:
    """Validate a selection as h5py does; the position of its one fancy
    (list / array) item, or None."""
    fancy = None
    for i, s in enumerate(sel):
        if s is Ellipsis or isinstance(s, slice) or _is_int(s):
            continue
        if s is None:
            raise _err(BadRequestError, TypeError, "Simple selection can't process None (numpy.newaxis)")
        if isinstance(s, (list, np.ndarray)):
            if fancy is not None:
                raise _err(BadRequestError, TypeError,
                           "Only one indexing vector or array is currently allowed for fancy indexing")
            fancy = i
            continue
        raise _err(BadRequestError, TypeError, "Simple selection can't process %r" % (s,))
    return fancy


def _axis_of(sel: Tuple[Any, ...], pos: int, rank: int) -> int:
    """The dataset axis that item pos of sel indexes."""
    if Ellipsis in sel[:pos]:
        return rank - (len(sel) - pos)
    return pos


def _fancy_runs(idx: Any, length: int) -> Tuple[List[slice], int]:
    """A fancy index along an axis of `length` -> consecutive runs as slices
    (h5py's rules: increasing, no repeats; a boolean mask must cover the
    axis) and the number of elements."""
    arr = np.asarray(idx)
    if arr.dtype == np.bool_:
        if arr.shape != (length,):
            raise _err(ShapeMismatchError, TypeError, "Boolean indexing array has incompatible shape")
        arr = np.nonzero(arr)[0]
    elif arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise _err(BadRequestError, TypeError,
                   "Selection vectors must be one-dimensional lists of integers or booleans")
    arr = arr.astype(np.int64)
    arr = np.where(arr < 0, arr + length, arr)
    if arr.size and (arr.min() < 0 or arr.max() >= length):
        raise OutOfRangeError("Index (%d) out of range for (0-%d)" % (int(arr.max()), length - 1))
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        raise _err(BadRequestError, TypeError, "Indexing elements must be in increasing order")
    runs: List[slice] = []
    if arr.size:
        cuts = np.nonzero(np.diff(arr) != 1)[0] + 1
        for chunk in np.split(arr, cuts):
            runs.append(slice(int(chunk[0]), int(chunk[-1]) + 1))
    return runs, int(arr.size)


def _sel_shape(sel: Tuple[Any, ...], shape: Tuple[int, ...]) -> Optional[Tuple[int, ...]]:
    """NumPy's result shape of basic indexing sel on shape; None when sel is
    not valid for it (the server then says why)."""
    if sel.count(Ellipsis) > 1:
        return None
    n_idx = len(sel) - sel.count(Ellipsis)
    if n_idx > len(shape):
        return None
    if Ellipsis in sel:
        i = sel.index(Ellipsis)
        sel = sel[:i] + (slice(None),) * (len(shape) - n_idx) + sel[i + 1:]
    else:
        sel = sel + (slice(None),) * (len(shape) - len(sel))
    out = []
    for s, n in zip(sel, shape):
        if isinstance(s, slice):
            if s.step is not None and s.step <= 0:
                return None
            out.append(len(range(*s.indices(n))))
        elif not -n <= operator.index(s) < n:
            return None
    return tuple(out)


# ---------------------------------------------------------------- values


def _bytes_strings(v: Any) -> Any:
    """h5py gives variable-length strings of a dataset as bytes."""
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, np.ndarray) and v.dtype == object:
        out = np.empty(v.shape, dtype=object)
        out.ravel()[:] = [x.encode("utf-8") if isinstance(x, str) else x for x in v.ravel()]
        return out
    return v


def _str_strings(v: Any, encoding: str = "utf-8", errors: str = "strict") -> Any:
    """... and of an attribute (or through ``asstr()``) as str."""
    if isinstance(v, bytes):
        return v.decode(encoding, errors)
    if isinstance(v, np.ndarray) and v.dtype == object:
        out = np.empty(v.shape, dtype=object)
        out.ravel()[:] = [x.decode(encoding, errors) if isinstance(x, bytes) else x for x in v.ravel()]
        return out
    return v


def _is_vlen(dt: Optional[np.dtype]) -> bool:
    return dt is not None and dt.kind == "O"


def _guess_dtype(data: Any) -> Any:
    """The dtype h5py gives a new dataset made from data."""
    if isinstance(data, np.ndarray):
        if data.dtype.kind == "U":
            return str
        if data.dtype.kind == "O":
            flat = data.ravel()
            if flat.size and all(isinstance(x, bytes) for x in flat):
                return bytes
            return str
        return data.dtype
    if isinstance(data, str):
        return str
    if isinstance(data, bytes):
        return bytes
    if isinstance(data, np.generic):
        return data.dtype
    if isinstance(data, (list, tuple)):
        leaves = list(_leaves(data))
        if leaves and all(isinstance(x, str) for x in leaves):
            return str
        if leaves and all(isinstance(x, bytes) for x in leaves):
            return bytes
    return np.asarray(data).dtype


def _leaves(x: Any) -> Iterator[Any]:
    if isinstance(x, (list, tuple)):
        for e in x:
            yield from _leaves(e)
    else:
        yield x


def _shape_of(data: Any) -> Tuple[int, ...]:
    if isinstance(data, (str, bytes)):
        return ()
    if isinstance(data, (list, tuple)):
        shape = []
        d: Any = data
        while isinstance(d, (list, tuple)):
            shape.append(len(d))
            if not d:
                break
            d = d[0]
        return tuple(shape)
    return tuple(np.shape(data))
