"""Encoding of values and requests, decoding of replies (no I/O here).

Values travel the way ``msgpack_numpy`` writes them (see docs/protocol.md),
but this module needs only ``numpy`` and ``msgpack``:

* ``numpy.ndarray`` -> ``{b"nd": True, b"type": dtype.str | dtype.descr,
  b"kind": b"" | b"V", b"shape": [...], b"data": <C-order bytes>}``
* numpy bool / number scalars -> ``{b"nd": False, b"type": ..., b"data": ...}``
* ``str`` -> MessagePack str (HDF5 variable-length UTF-8 string),
  ``bytes`` -> MessagePack bin (variable-length ASCII string),
  ``bool``/``int``/``float`` -> plain MessagePack, ``complex`` -> a complex128
  numpy scalar.
* NumPy unicode (``U<n>``) arrays have no HDF5 type; they are sent as nested
  lists of ``str`` and stored as variable-length UTF-8 strings (what h5py
  stores for Python ``str``).  Object arrays whose elements are all ``str``
  (or all ``bytes``) are sent the same way -- that is what ``read`` returns
  for string datasets, so a value read can be written back.
* ``list``/``tuple`` whose leaves are all ``str`` (or all ``bytes``) are
  sent as nested lists of str (bin): variable-length strings, as h5py stores
  them; other lists go through ``numpy.asarray``.

Frames are a 4-byte big-endian length followed by one MessagePack map.
"""

import operator
import struct

import msgpack
import numpy as np

__all__ = [
    "encode_value",
    "decode_value",
    "encode_request",
    "decode_reply",
    "dtype_from_wire",
    "selection_arg",
    "dtype_arg",
    "shape_arg",
    "dtype_from_description",
    "FRAME_HEADER",
    "MAX_FRAME",
]

FRAME_HEADER = struct.Struct(">I")
MAX_FRAME = 0xFFFFFFFF  # what a 4-byte length can say; servers may allow less

_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack


# --------------------------------------------------------------------------
# values -> wire
# --------------------------------------------------------------------------


class _RawArray:
    """An ndarray to be sent: header (the map without the element bytes)
    plus a memoryview of the element bytes, sent after it without a copy."""

    __slots__ = ("header", "payload")

    def __init__(self, header, payload):
        self.header = header
        self.payload = payload


class _Packed:
    """A value already in MessagePack form."""

    __slots__ = ("packed",)

    def __init__(self, packed):
        self.packed = packed


def _bin_header(n):
    if n < 0x100:
        return b"\xc4" + bytes((n,))
    if n < 0x10000:
        return b"\xc5" + struct.pack(">H", n)
    if n <= 0xFFFFFFFF:
        return b"\xc6" + struct.pack(">I", n)
    raise OverflowError("array of %d bytes cannot be sent (MessagePack bin limit is 4 GiB)" % n)


def _map_header(n):
    if n < 16:
        return bytes([0x80 | n])
    if n < 0x10000:
        return b"\xde" + struct.pack(">H", n)
    return b"\xdf" + struct.pack(">I", n)


def _array_bytes(arr):
    """The C-order element bytes of arr as a flat memoryview (no copy when
    arr is already C-contiguous)."""
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    if arr.dtype.itemsize == 0 or arr.size == 0:
        return memoryview(b"")
    return memoryview(arr.reshape(-1).view(np.uint8))


def _wire_type(dt):
    """msgpack-numpy's (type, kind) for a dtype."""
    if dt.names is not None:
        return [list(d) for d in dt.descr], b"V"
    return dt.str, b""


def _string_list(arr):
    """Strings travel as nested lists, and an empty list means float64 (0,)
    on the wire: refuse rather than store the wrong type and shape."""
    if arr.size == 0:
        raise ValueError(
            "empty string arrays cannot be sent: strings travel as nested lists, "
            "which cannot say the type or shape of an empty array"
        )
    return arr.tolist()


# An array's header up to its shape is the same for every array of one
# dtype: packed once per plain dtype (its .str says it all; structured ones,
# whose equality does not cover every detail of their descr, are packed
# each time; the cache is dropped if it ever grows big).
_ND_HEAD = _map_header(5) + _packb(b"nd") + _packb(True) + _packb(b"type")
_SHAPE_KEY = _packb(b"shape")
_DATA_KEY = _packb(b"data")
_type_heads = {}


def _type_head(dt):
    plain = dt.names is None
    head = _type_heads.get(dt) if plain else None
    if head is None:
        wire_type, wire_kind = _wire_type(dt)
        head = _ND_HEAD + _packb(wire_type) + _packb(b"kind") + _packb(wire_kind) + _SHAPE_KEY
        if plain:
            if len(_type_heads) >= 256:
                _type_heads.clear()
            _type_heads[dt] = head
    return head


def _encode_ndarray(arr):
    arr = np.asarray(arr)
    dt = arr.dtype
    kind = dt.kind
    if kind == "U":
        return _string_list(arr)
    if kind == "O":
        if arr.size == 0:
            _string_list(arr)
        return _encode_object_array(arr)
    payload = _array_bytes(arr)
    header = b"".join((_type_head(dt), _packb(list(arr.shape)), _DATA_KEY,
                       _bin_header(payload.nbytes)))
    return _RawArray(header, payload)


def _encode_object_array(arr):
    flat = arr.reshape(-1)
    if all(isinstance(x, str) for x in flat):
        return _strings_tolist(arr, str)
    if all(isinstance(x, bytes) for x in flat):
        return _strings_tolist(arr, bytes)
    raise TypeError(
        "object arrays can only be sent when every element is str or every "
        "element is bytes (got %s)" % sorted({type(x).__name__ for x in flat})
    )


def _strings_tolist(arr, typ):
    if arr.ndim == 0:
        return typ(arr[()])
    if arr.ndim == 1:
        return [typ(x) for x in arr]
    return [_strings_tolist(sub, typ) for sub in arr]


def _item_type(data):
    """The one type of every leaf of nested lists/tuples, else None (the
    rule h5py uses to decide on variable-length strings)."""
    if isinstance(data, (list, tuple)):
        types = {_item_type(e) for e in data}
        return types.pop() if len(types) == 1 else None
    return type(data)


def _rectangular(data, typ):
    """Nested lists of exactly `typ` leaves, checked to be rectangular."""

    def shape_of(d):
        shape = []
        while isinstance(d, (list, tuple)):
            shape.append(len(d))
            if not d:
                break
            d = d[0]
        return shape

    shape = shape_of(data)

    def build(d, depth):
        if depth == len(shape):
            if isinstance(d, (list, tuple)):
                raise TypeError("cannot send this list: it is ragged")
            return typ(d)
        if not isinstance(d, (list, tuple)) or len(d) != shape[depth]:
            raise TypeError("cannot send this list: it is ragged")
        return [build(x, depth + 1) for x in d]

    return build(data, 0)


def _numpy_scalar(x):
    dt = x.dtype
    data = np.asarray(x).reshape(1).view(np.uint8).tobytes()
    return {b"nd": False, b"type": dt.str, b"data": data}


def encode_value(value):
    """Turn a user value into something msgpack can pack (or a _RawArray).

    Raises TypeError for values that have no wire form.
    """
    if type(value) is np.ndarray:  # the common case first
        return _encode_ndarray(value)
    # bool before int (bool is an int); numpy str_/bytes_ are str/bytes.
    if isinstance(value, (bool, np.bool_)):
        if isinstance(value, np.bool_):
            return _numpy_scalar(value)
        return value
    if isinstance(value, np.ndarray):
        return _encode_ndarray(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)) and not isinstance(value, np.generic):
        return bytes(value)
    if isinstance(value, np.number):
        return _numpy_scalar(value)
    if isinstance(value, np.generic):
        # np.bytes_ (fixed-length, as h5py stores it), np.void (opaque or
        # structured scalar), datetime64 (refused by the server): a 0-d array
        return _encode_ndarray(np.asarray(value))
    if isinstance(value, int):
        if not (-(1 << 63) <= value < (1 << 64)):
            raise OverflowError("int %d does not fit in 64 bits" % value)
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, complex):
        return _numpy_scalar(np.complex128(value))
    if isinstance(value, (list, tuple)):
        item = _item_type(value)
        if item is str or item is bytes:
            # h5py stores lists of str / bytes as variable-length strings
            return _rectangular(value, item)
        try:
            arr = np.asarray(value)
        except (ValueError, OverflowError) as e:
            raise TypeError("cannot send this list: %s" % e) from None
        if arr.dtype.kind == "O":
            raise TypeError(
                "cannot send this list: it is ragged, mixes strings with other "
                "values, or holds values with no array type"
            )
        if arr.dtype.kind == "U":
            return _string_list(arr)
        return _encode_ndarray(arr)
    raise TypeError("cannot send a value of type %s" % type(value).__name__)


# The request id is written as a uint64 at a fixed place (right after the
# map header and the key "id") so that set_request_id can fill it in once
# the request's turn to be sent has come.
_ID_AT = 1 + 3  # map header (fixmap or map16: see below), then "id" as fixstr


def set_request_id(pieces, req_id):
    """Write req_id into a frame encode_request made (pieces[1] holds it)."""
    body = pieces[1]
    assert body[_ID_AT] == 0xCF, "not a frame of encode_request"
    _U64.pack_into(body, _ID_AT + 1, req_id)


#: array bytes up to this size are copied into the request's body (one
#: piece, as small requests are joined anyway); larger ones are sent from
#: the caller's array
_INLINE = 16 * 1024
_U64 = struct.Struct(">Q")
_ID_HEAD = _packb("id") + b"\xcf"
_OP_KEY = _packb("op")
_PATH_KEY = _packb("path")
_packed_strs = {}


def _packed_str(key):
    """A key or op name, packed once (the few names the protocol has)."""
    p = _packed_strs.get(key)
    if p is None:
        p = _packb(key)
        if len(_packed_strs) < 1024:
            _packed_strs[key] = p
    return p


def encode_request(req_id, op, path=None, **args):
    """Encode one request as a list of bytes-like pieces forming a complete
    frame (length prefix included). Array element bytes are not copied when
    they are larger than a few KiB: they are then a memoryview of the
    caller's array, the last piece, so send before mutating it.

    Arguments whose value is None are left out ("server default"), except
    data, which must be a value (None raises TypeError). data and fillvalue
    are values (encode_value); the others are sent as they are.
    """
    # the id goes right after the map header (see set_request_id)
    head = [b"", _ID_HEAD, _U64.pack(req_id), _OP_KEY, _packed_str(op)]
    n = 2
    if path is not None:
        head.append(_PATH_KEY)
        head.append(_packb(path))
        n += 1
    raw = None
    for key, val in args.items():
        if val is None and key != "data":
            continue
        if key == "data" or key == "fillvalue":
            val = encode_value(val)
            if type(val) is _RawArray:
                if key == "data":
                    raw = val
                    continue  # goes last, so its bytes can follow the header
                packed = val.header + bytes(val.payload)  # small: copy
            else:
                packed = _packb(val)
        elif type(val) is _Packed:
            packed = val.packed
        else:
            packed = _packb(val)
        head.append(_packed_str(key))
        head.append(packed)
        n += 1
    if raw is not None:
        n += 1
        head.append(_packed_str("data"))
        head.append(raw.header)
        nbytes = raw.payload.nbytes
        if nbytes <= _INLINE:
            if nbytes:
                head.append(raw.payload)
            raw = None
    head[0] = bytes((0x80 | n,)) if n < 16 else _map_header(n)
    body = bytearray().join(head)
    size = len(body)
    if raw is not None:
        size += raw.payload.nbytes
    if size > MAX_FRAME:
        from .errors import TooLargeError

        raise TooLargeError("request of %d bytes does not fit in one frame (4 GiB limit)" % size)
    if raw is not None:
        return [FRAME_HEADER.pack(size), body, raw.payload]
    return [FRAME_HEADER.pack(size), body]


def encode_sub_request(op, path=None, **args):
    """One op of a batch: the map encode_request makes, without its id, as
    MessagePack bytes (array bytes copied: a batch is sent whole)."""
    pieces = encode_request(0, op, path, **args)
    body = b"".join(bytes(p) for p in pieces[1:])
    idlen = len(_packb("id")) + 9  # "id", then 0xcf and 8 bytes
    if body[0] & 0xF0 == 0x80:
        n, rest = body[0] & 0x0F, body[1 + idlen:]
    else:  # 0xde: a map of 16 or more keys
        n, rest = int.from_bytes(body[1:3], "big"), body[3 + idlen:]
    return (bytes([0x80 | (n - 1)]) if n - 1 < 16 else _map_header(n - 1)) + rest


# --------------------------------------------------------------------------
# wire -> values
# --------------------------------------------------------------------------


def _s(x):
    return x.decode("utf-8") if isinstance(x, (bytes, bytearray)) else x


def dtype_from_wire(t):
    """A numpy dtype from msgpack-numpy's "type" value: a type string, or a
    descr list ([[name, format], [name, format, shape], ...], formats nested).
    Entries named "" are padding: they move the offset but make no field, so
    an aligned struct comes back with the same offsets and itemsize."""
    if isinstance(t, (str, bytes, bytearray)):
        return np.dtype(_s(t))
    if not isinstance(t, (list, tuple)):
        raise ValueError("bad dtype description: %r" % (t,))
    names, formats, offsets = [], [], []
    offset = 0
    for entry in t:
        if not isinstance(entry, (list, tuple)) or len(entry) not in (2, 3):
            raise ValueError("bad dtype description entry: %r" % (entry,))
        name = entry[0]
        if isinstance(name, (list, tuple)):  # (title, name)
            name = name[1]
        name = _s(name)
        base = dtype_from_wire(entry[1])
        if len(entry) == 3:
            shape = tuple(int(d) for d in entry[2])
            ftype = np.dtype((base, shape))
        else:
            ftype = base
        if name != "":
            names.append(name)
            formats.append(ftype)
            offsets.append(offset)
        offset += ftype.itemsize
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": offset})


def dtype_from_description(t):
    """The dtype of a listing or info reply: a type string or descr list as
    in values, "str" / "bytes" for variable-length strings (an object dtype
    carrying {"vlen": str} / {"vlen": bytes}, what h5py.string_dtype()
    makes, so h5py.check_string_dtype understands it), None for types with
    no numpy equivalent."""
    if t is None:
        return None
    if t == "str":
        return np.dtype("O", metadata={"vlen": str})
    if t == "bytes":
        return np.dtype("O", metadata={"vlen": bytes})
    return dtype_from_wire(t)


def _get(m, key):
    """m[key] with key as str or bytes."""
    if key in m:
        return m[key]
    bkey = key.encode()
    if bkey in m:
        return m[bkey]
    raise KeyError(key)


def _has(m, key):
    return key in m or key.encode() in m


def _decode_map(m):
    if _has(m, "nd"):
        nd = _get(m, "nd")
        dt = dtype_from_wire(_get(m, "type"))
        data = _get(m, "data")
        if isinstance(data, str):
            data = data.encode("latin-1")
        if nd is True:
            shape = tuple(int(d) for d in _get(m, "shape"))
            count = 1
            for d in shape:
                count *= d
            if len(data) != count * dt.itemsize:
                raise ValueError(
                    "array data has %d bytes, expected %d" % (len(data), count * dt.itemsize)
                )
            if count == 0 or dt.itemsize == 0:
                return np.zeros(shape, dtype=dt)
            # bytearray: one copy, and the array is writable
            return np.frombuffer(bytearray(data), dtype=dt, count=count).reshape(shape)
        if len(data) != dt.itemsize:
            raise ValueError("scalar data has %d bytes, expected %d" % (len(data), dt.itemsize))
        return np.frombuffer(bytearray(data), dtype=dt, count=1)[0]
    if _has(m, "complex"):
        return complex(_s(_get(m, "data")))
    return {_s(k): decode_value(v) for k, v in m.items()}


def decode_value(v):
    """Turn an unpacked reply value into the user's value: msgpack-numpy maps
    become numpy arrays / scalars; everything else is returned as is (lists
    element by element)."""
    if isinstance(v, dict):
        return _decode_map(v)
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    return v


def strings_to_array(v):
    """Nested lists of str/bytes (a variable-length string dataset) as a
    numpy object array of the same shape."""
    shape = []
    probe = v
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    out = np.empty(tuple(shape), dtype=object)
    if out.size:
        out[...] = _fill(v, len(shape))
    return out


def _fill(v, depth):
    # np.array(..., dtype=object) would also do, but it guesses the depth of
    # nesting; build it explicitly so strings are always leaves.
    arr = np.empty(len(v), dtype=object)
    if depth == 1:
        for i, x in enumerate(v):
            arr[i] = x
        return arr
    return np.stack([_fill(x, depth - 1) for x in v])


def decode_reply(payload):
    """Unpack one frame's payload into the reply map (str keys; values not
    yet turned into numpy: see decode_value)."""
    return msgpack.unpackb(payload, raw=False, strict_map_key=False, use_list=True)


def index_arg(index):
    """Validate an insert index (int-like, not bool)."""
    if isinstance(index, (bool, np.bool_)):
        raise TypeError("index must be an int, not bool")
    try:
        return int(operator.index(index))
    except TypeError:
        raise TypeError("index must be an int, not %s" % type(index).__name__) from None


# --------------------------------------------------------------------------
# arguments of read/write_slice, create_dataset and resize
# --------------------------------------------------------------------------

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def _clamp64(i):
    # beyond 64 bits a slice bound means the same as the largest one (NumPy
    # clamps it to the axis), and an index is out of range either way
    return min(max(i, _I64_MIN), _I64_MAX)


def _sel_int(x, what):
    if isinstance(x, (bool, np.bool_)):
        raise IndexError(
            "boolean %s are not supported: only NumPy basic indexing (integers, "
            "slices and ...) is" % what
        )
    try:
        return _clamp64(int(operator.index(x)))
    except TypeError:
        raise IndexError(
            "%s must be integers, not %s" % (what, type(x).__name__)
        ) from None


def selection_arg(selection):
    """NumPy basic indexing (what ``np.s_[...]`` makes: an int, a slice,
    Ellipsis or a tuple of them) -> the wire's selection list: ints,
    [start, stop, step] lists with None for defaults, and "..." for the
    ellipsis, which the server expands (only it knows the rank). Anything
    basic indexing does not cover -- None/np.newaxis, lists, arrays and
    booleans (fancy indexing), floats -- raises IndexError before anything
    is sent."""
    items = selection if isinstance(selection, tuple) else (selection,)
    out = []
    ellipsis = False
    for item in items:
        if item is Ellipsis:
            if ellipsis:
                raise IndexError("a selection can only have a single ellipsis ('...')")
            ellipsis = True
            out.append("...")
        elif isinstance(item, slice):
            out.append(
                [None if b is None else _sel_int(b, "slice bounds and steps")
                 for b in (item.start, item.stop, item.step)]
            )
        elif item is None:
            raise IndexError(
                "numpy.newaxis (None) is not supported in a selection: add the axis to "
                "the result instead (result[np.newaxis])"
            )
        elif isinstance(item, (list, tuple, np.ndarray)):
            raise IndexError(
                "fancy indexing (lists or arrays of indexes or booleans) is not supported: "
                "a selection takes integers, slices and ... (NumPy basic indexing)"
            )
        else:
            out.append(_sel_int(item, "selection items (other than slices and ...)"))
    return out


def shape_arg(shape, what="shape", nil_ok=False):
    """An int or a sequence of ints (None entries when nil_ok) -> list."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    try:
        seq = list(shape)
    except TypeError:
        raise TypeError("%s must be an int or a sequence of ints" % what) from None
    out = []
    for d in seq:
        if d is None and nil_ok:
            out.append(None)
            continue
        if isinstance(d, (bool, np.bool_)):
            raise TypeError("%s entries must be ints, not bool" % what)
        try:
            v = int(operator.index(d))
        except TypeError:
            raise TypeError(
                "%s entries must be ints%s, not %s"
                % (what, " or None" if nil_ok else "", type(d).__name__)
            ) from None
        if v < 0:
            raise ValueError("%s entries must not be negative (got %d)" % (what, v))
        out.append(v)
    return out


def dtype_arg(dtype):
    """create_dataset's dtype -> the wire's: a type string, a descr list, or
    "str" / "bytes" for variable-length strings (Python's str and bytes,
    or h5py.string_dtype())."""
    if dtype is str:
        return "str"
    if dtype is bytes:
        return "bytes"
    dt = np.dtype(dtype)
    vlen = (dt.metadata or {}).get("vlen")
    if dt.kind == "O" and vlen in (str, bytes):
        return "str" if vlen is str else "bytes"
    if dt.kind == "U":
        raise TypeError(
            "NumPy unicode (U) dtypes have no HDF5 type: use dtype=str for "
            "variable-length UTF-8 strings"
        )
    if dt.kind == "O":
        raise TypeError("object dtypes have no HDF5 type (use str or bytes for strings)")
    return _wire_type(dt)[0]
