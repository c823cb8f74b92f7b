"""What a reply's result becomes for the caller of HDF5Client: shapes as
tuples, listings and info with numpy dtypes, read values as numpy arrays.
Kept apart from client.py so that the client holds the calls and their
policies; each function here is a call's ``post`` (see inflight.py), run
when its reply is decoded."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from . import codec
from .errors import BadReplyError

Shape = Tuple[int, ...]


_SHAPE_KEYS = ("shape", "maxshape", "chunks")


def describe(m: Dict[str, Any]) -> Dict[str, Any]:
    """A listing or info map from the wire with Python values: tuples for
    shapes, numpy dtypes, decoded fill values."""
    out = {}
    for k, v in m.items():
        if k in _SHAPE_KEYS and v is not None:
            v = tuple(v)
        elif k == "dtype":
            v = codec.dtype_from_description(v)
        elif k == "fillvalue":
            v = codec.decode_value(v)
        elif k == "filters":
            v = [dict(f, cd_values=tuple(f["cd_values"])) for f in v]
        out[k] = v
    return out


def none(res: Any) -> None:
    return None


def describe_all(res: Any) -> List[Dict[str, Any]]:
    return [describe(a) for a in res]


def files(res: Any) -> List[Dict[str, Any]]:
    return [dict(f) for f in res["files"]]


def value(res: Any) -> Any:
    """A read or get_attr result as the caller gets it."""
    if isinstance(res, list):
        return codec.strings_to_array(res)
    return codec.decode_value(res)


def shape(res: Any) -> Shape:
    if isinstance(res, dict) and isinstance(res.get("shape"), list):
        return tuple(int(d) for d in res["shape"])
    raise BadReplyError("unexpected result from the server: %r" % (res,))
