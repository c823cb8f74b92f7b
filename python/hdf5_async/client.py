"""The asyncio client."""

import asyncio
import collections
import itertools
import logging

from . import codec, ops
from .config import load_settings
from .errors import ConnectionClosedError, HDF5AsyncError, error_from_reply

__all__ = ["HDF5Client"]

log = logging.getLogger("hdf5_async")


def _enable_debug_logging():
    log.setLevel(logging.DEBUG)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        log.addHandler(handler)


class _FrameProtocol(asyncio.Protocol):
    """Splits the byte stream into frames and hands each payload over as
    soon as it is complete.

    A Protocol rather than asyncio streams: a StreamReader that has seen a
    connection error raises it before handing out data it already holds, so
    replies that arrived just before a reset (a server closing while
    requests are still in flight) would be lost."""

    def __init__(self, on_payload, on_lost):
        self._on_payload = on_payload
        self._on_lost = on_lost
        self._buf = bytearray()
        self.transport = None
        self._paused = False
        self._drain_waiter = None
        self.lost = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buf = self._buf
        buf += data
        while len(buf) >= 4:
            size = int.from_bytes(buf[:4], "big")
            if len(buf) < 4 + size:
                break
            # decode straight from the buffer (no copy of a big payload);
            # the decoded objects do not refer to it
            mv = memoryview(buf)
            payload = mv[4:4 + size]
            try:
                self._on_payload(payload)
            except Exception as e:  # undecodable reply: the stream is lost
                self._on_lost(e)
                self.transport.abort()
                return
            finally:
                payload.release()
                mv.release()
            del buf[:4 + size]

    def eof_received(self):
        return False  # close our side too

    def connection_lost(self, exc):
        self.lost = True
        self._on_lost(exc)
        self._wake(exc or ConnectionResetError("connection closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self):
        self._paused = True

    def resume_writing(self):
        self._paused = False
        self._wake(None)

    def _wake(self, exc):
        w, self._drain_waiter = self._drain_waiter, None
        if w is not None and not w.done():
            if exc is None:
                w.set_result(None)
            else:
                w.set_exception(exc)

    async def drain(self):
        if self.lost:
            raise ConnectionResetError("connection lost")
        if not self._paused:
            return
        self._drain_waiter = asyncio.get_running_loop().create_future()
        await self._drain_waiter


class HDF5Client:
    """An asyncio client of one hdf5-async server.

    ``HDF5Client()`` reads host and port from ``./config.ini`` (the [client]
    section if it has them, else [server]; 0.0.0.0 means 127.0.0.1), falling
    back to 127.0.0.1:8888. ``timeout`` (seconds) bounds connect() and each
    call; None waits forever. ``durability`` ("none", "flush" or "fsync")
    is what an ok reply to this client's changes promises unless a call
    says otherwise; None leaves it to the server's ``durability`` key (see
    docs/durability.md).

    One client may be shared by any number of tasks: requests are pipelined
    on the one connection and each call gets its own reply.
    """

    def __init__(self, host=None, port=None, config=None, *, timeout=None, durability=None):
        settings = load_settings(host, port, config)
        self.durability = _durability_arg(durability)
        self.host = settings.host
        self.port = settings.port
        self.debug = settings.debug
        self.timeout = timeout
        if self.debug:
            _enable_debug_logging()
        self._transport = None
        self._protocol = None
        self._write_lock = None
        # id -> future, in the order the requests were sent: replies come
        # back in that order, so a reply whose id the server could not read
        # (id nil) belongs to the oldest one.
        self._pending = collections.OrderedDict()
        self._ids = itertools.count(1)
        self._closed_exc = None

    def __repr__(self):
        state = "connected" if self.connected else "not connected"
        return "<HDF5Client %s:%s %s>" % (self.host, self.port, state)

    @property
    def connected(self):
        return self._transport is not None and self._closed_exc is None

    # ---------------------------------------------------------------- life

    async def connect(self):
        """Open the connection (a no-op when already connected)."""
        if self.connected:
            return
        log.debug("connecting to %s:%s", self.host, self.port)
        loop = asyncio.get_running_loop()
        self._closed_exc = None
        self._pending = collections.OrderedDict()
        coro = loop.create_connection(
            lambda: _FrameProtocol(self._on_payload, self._on_lost), self.host, self.port
        )
        if self.timeout is not None:
            coro = asyncio.wait_for(coro, self.timeout)
        transport, protocol = await coro
        self._transport, self._protocol = transport, protocol
        self._write_lock = asyncio.Lock()
        log.debug("connected to %s:%s", self.host, self.port)

    async def close(self):
        """Close the connection; calls still pending raise
        ConnectionClosedError. Safe to call more than once."""
        transport, protocol = self._transport, self._protocol
        if transport is None:
            return
        self._transport = None
        self._fail_pending(ConnectionClosedError("connection closed by the client"))
        transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(protocol.closed), 5)
        except asyncio.TimeoutError:
            transport.abort()
        log.debug("closed connection to %s:%s", self.host, self.port)

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    # ---------------------------------------------------------------- I/O

    def _fail_pending(self, exc):
        if self._closed_exc is None:
            self._closed_exc = exc
        pending, self._pending = self._pending, collections.OrderedDict()
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionClosedError(exc.message))

    def _on_lost(self, exc):
        if isinstance(exc, ConnectionClosedError):
            err = exc
        elif exc is None:
            err = ConnectionClosedError("connection closed by the server")
        elif isinstance(exc, (ConnectionError, OSError)):
            err = ConnectionClosedError("connection lost: %s" % exc)
        else:
            err = ConnectionClosedError("undecodable reply from server: %s" % exc)
        self._fail_pending(err)

    def _on_payload(self, payload):
        self._dispatch(codec.decode_reply(payload))

    def _dispatch(self, reply):
        if not isinstance(reply, dict):
            raise ValueError("reply is not a map: %r" % (reply,))
        req_id = reply.get("id")
        if req_id is None:
            # The server could not read a request's id: replies are in
            # request order, so it is the oldest request still waiting.
            if not self._pending:
                log.debug("unmatched reply with nil id: %r", reply)
                return
            req_id = next(iter(self._pending))
        fut = self._pending.pop(req_id, None)
        if fut is None:
            log.debug("reply for unknown id %r dropped", req_id)
            return
        if reply.get("ok") is True:
            log.debug("reply id=%s ok", req_id)
            if not fut.done():
                fut.set_result(reply.get("result"))
        else:
            exc = error_from_reply(reply.get("error"))
            log.debug("reply id=%s error %s: %s", req_id, exc.code, exc.message)
            if not fut.done():
                fut.set_exception(exc)

    def _check_open(self):
        if self._closed_exc is not None:
            raise ConnectionClosedError(self._closed_exc.message)
        if self._transport is None:
            raise ConnectionClosedError("not connected: call connect() first")

    async def _call(self, op, path=None, durability=None, **args):
        self._check_open()
        durability = _durability_arg(durability)
        if durability is None and ops.changes(op):
            durability = self.durability
        if durability is not None:
            args["durability"] = durability
        if path is not None and not isinstance(path, str):
            raise TypeError("path must be a str, not %s" % type(path).__name__)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        # a reply may land after its caller gave up (timeout, cancel): mark
        # the exception retrieved so asyncio does not log it
        fut.add_done_callback(_consume)
        async with self._write_lock:
            self._check_open()
            req_id = next(self._ids)
            # encode before registering: a TypeError leaves nothing behind
            pieces = codec.encode_request(req_id, op, path, **args)
            self._pending[req_id] = fut
            log.debug("request id=%s op=%s path=%s", req_id, op, path)
            transport, protocol = self._transport, self._protocol
            # A transport that hit an error is closing and will report
            # connection_lost in a moment, failing this call with the rest:
            # writing to it would only make asyncio log warnings.
            if not transport.is_closing():
                for piece in pieces:  # synchronous: frames never interleave
                    transport.write(piece)
                try:
                    await protocol.drain()
                except (ConnectionError, OSError):
                    pass  # connection_lost fails the pending calls, this one too
        if self.timeout is not None:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        return await fut

    # ---------------------------------------------------------------- API

    async def ping(self):
        """Round trip to the server; returns "pong"."""
        return await self._call("ping")

    async def sync(self, durability="fsync"):
        """Make every operation the server has applied so far durable:
        "fsync" (default) = on disk, survives a machine crash; "flush" =
        survives the server process dying. A barrier: returns once done."""
        if durability not in ("flush", "fsync"):
            raise ValueError('sync() takes durability "flush" or "fsync", not %r' % (durability,))
        await self._call("ping", durability=durability)

    async def create_group(self, path, *, durability=None):
        """Create the group at path and any missing parents (no-op if it
        exists)."""
        await self._call("create_group", path, durability=durability)

    async def write(self, path, data, compression=None, compression_opts=None, *, durability=None):
        """Write data (scalar, list or numpy array) to the dataset at path,
        replacing what is there. compression: None = the server's default,
        "gzip" (compression_opts = level 0..9), "lzf" or "none". Returns the
        dataset's shape. A numpy array's bytes are sent without a copy: do
        not change the array until the call returns.

        durability (every call that changes the file takes it): what the
        returned ok promises -- "none" (applied, visible to every later
        request), "flush" (survives the server process dying) or "fsync"
        (on disk: survives the machine dying); None = the client's default,
        else the server's (see docs/durability.md)."""
        res = await self._call(
            "write",
            path,
            data=data,
            compression=compression,
            compression_opts=compression_opts,
            durability=durability,
        )
        return _shape(res)

    async def update(self, path, data, compression=None, compression_opts=None, *, durability=None):
        """Alias of write()."""
        res = await self._call(
            "update",
            path,
            data=data,
            compression=compression,
            compression_opts=compression_opts,
            durability=durability,
        )
        return _shape(res)

    async def read(self, path, selection=None):
        """Read the dataset at path: a numpy array, a numpy scalar for
        scalar datasets, str/bytes for variable-length string scalars and a
        numpy object array of str/bytes for variable-length string arrays.

        ``selection`` reads only part of it, with NumPy's basic indexing:
        ``await client.read(path, np.s_[10:20, ::2])`` is ``dataset[10:20,
        ::2]``, ``np.s_[5]`` drops axis 0, ``np.s_[..., 0]`` takes the last
        axis' first element. Ints (negative count from the end; out of range
        raises OutOfRangeError), slices (bounds clamped as NumPy does; the
        step must be positive, else BadRequestError), one Ellipsis, and
        tuples of them. The result has NumPy's shape, and only the selected
        elements are read and sent. None/np.newaxis, lists, arrays and
        booleans raise IndexError before anything is sent."""
        sel = None if selection is None else codec.selection_arg(selection)
        res = await self._call("read", path, selection=sel)
        if isinstance(res, list):
            return codec.strings_to_array(res)
        return codec.decode_value(res)

    async def write_slice(self, path, selection, data, *, durability=None):
        """Write data into a selection of the existing dataset at path:
        ``await client.write_slice(path, np.s_[0:10, 2], data)`` is
        ``dataset[0:10, 2] = data``. The selection is read()'s. data must
        have the selection's shape (ShapeMismatchError otherwise), except a
        single value (a scalar), which is written to every selected element.
        Numbers are converted to the dataset's type as HDF5 converts them;
        other types must match (TypeMismatchError). The dataset must exist
        (NotFoundError) and never changes shape or type. Returns the
        dataset's shape."""
        if selection is None:
            raise TypeError("write_slice needs a selection (use write() for whole datasets)")
        res = await self._call(
            "write_slice",
            path,
            selection=codec.selection_arg(selection),
            data=data,
            durability=durability,
        )
        return _shape(res)

    async def create_dataset(
        self,
        path,
        shape,
        dtype="f4",
        *,
        chunks=None,
        maxshape=None,
        fillvalue=None,
        compression=None,
        compression_opts=None,
        shuffle=False,
        exist_ok=False,
        durability=None,
    ):
        """Create an empty dataset (parents too) as h5py's create_dataset
        does, without writing data: reads give the fill value.

        shape: int or tuple. dtype: anything numpy.dtype takes (default
        "f4", as in h5py), or str / bytes (or h5py.string_dtype()) for
        variable-length strings. maxshape: a tuple with None for unlimited
        axes (makes the dataset resizable). chunks: None (chunked only
        when maxshape, compression or shuffle need it, with h5py's guess),
        True (h5py's guess), False (contiguous) or a tuple. fillvalue: a
        single value. compression: "gzip" (compression_opts 0..9), "lzf",
        "lz4" (opts: block bytes), "bzip2" (opts: block size 1..9),
        "bitshuffle", "none", or None for the server's default; the last
        three names of plugins need the server's hdf5-filter-plugin.
        shuffle: HDF5's byte shuffle before the compressor. exist_ok: an
        existing dataset of the same shape and dtype is fine (h5py's
        require_dataset), else ExistsError. Returns the shape."""
        res = await self._call(
            "create_dataset",
            path,
            shape=codec.shape_arg(shape),
            dtype=codec.dtype_arg(dtype),
            # (identity: 1 == True, and chunks=1 means a chunk of one)
            chunks=chunks if chunks is None or chunks is True or chunks is False
            else codec.shape_arg(chunks, "chunks"),
            maxshape=None if maxshape is None else codec.shape_arg(maxshape, "maxshape", True),
            fillvalue=fillvalue,
            compression=compression,
            compression_opts=compression_opts,
            shuffle=True if shuffle else None,
            exist_ok=True if exist_ok else None,
            durability=durability,
        )
        return _shape(res)

    async def resize(self, path, shape, axis=None, *, durability=None):
        """Resize a chunked dataset within its maxshape, as h5py's
        Dataset.resize: ``resize(path, (20, 3))``, or ``resize(path, 20,
        axis=0)`` for one axis (the others stay as they are on the server,
        whatever other clients did). Shrinking drops what falls outside.
        OutOfRangeError past maxshape or for a dataset that is not chunked.
        Returns the new shape."""
        if axis is None:
            res = await self._call("resize", path, shape=codec.shape_arg(shape), durability=durability)
        else:
            if isinstance(shape, (tuple, list)):
                raise TypeError("with axis, shape is that axis' new size: an int")
            size = codec.shape_arg(shape)[0]
            res = await self._call(
                "resize", path, shape=size, axis=codec.index_arg(axis), durability=durability
            )
        return _shape(res)

    async def append(self, path, data, compression=None, compression_opts=None, *, durability=None):
        """Append rows along axis 0 (creating a resizable dataset if
        missing; compression applies only then). Returns the new shape."""
        res = await self._call(
            "append",
            path,
            data=data,
            compression=compression,
            compression_opts=compression_opts,
            durability=durability,
        )
        return _shape(res)

    async def insert(
        self, path, index, data, compression=None, compression_opts=None, *, durability=None
    ):
        """Insert rows before row `index` (negative counts from the end) of
        an existing dataset. Returns the new shape."""
        index = codec.index_arg(index)
        res = await self._call(
            "insert",
            path,
            index=index,
            data=data,
            compression=compression,
            compression_opts=compression_opts,
            durability=durability,
        )
        return _shape(res)

    async def delete(self, path, *, durability=None):
        """Delete the group (recursively) or dataset at path, or the link
        at path when it is a soft or external link (dangling or not)."""
        await self._call("delete", path, durability=durability)

    # ------------------------------------------------------ attributes

    async def set_attr(self, path, name, value, *, durability=None):
        """Set attribute `name` of the group or dataset at path to value
        (anything write() takes; stored as h5py stores the same value in
        ``obj.attrs[name]``), replacing an attribute of that name."""
        if not isinstance(name, str):
            raise TypeError("attribute name must be a str, not %s" % type(name).__name__)
        await self._call("set_attr", path, name=name, data=value, durability=durability)

    async def get_attr(self, path, name):
        """The value of attribute `name` of the object at path, as read()
        returns values (numpy array or scalar, str/bytes, object array of
        strings)."""
        res = await self._call("get_attr", path, name=name)
        if isinstance(res, list):
            return codec.strings_to_array(res)
        return codec.decode_value(res)

    async def list_attrs(self, path):
        """The attributes of the object at path, in name order: a list of
        dicts ``{"name", "shape", "maxshape", "dtype"}`` (see info() for
        shape and dtype)."""
        res = await self._call("list_attrs", path)
        return [_describe(a) for a in res]

    async def attrs(self, path):
        """Every attribute of the object at path as a dict name -> value
        (one list_attrs, then the get_attr calls pipelined)."""
        names = [a["name"] for a in await self.list_attrs(path)]
        values = await asyncio.gather(*(self.get_attr(path, n) for n in names))
        return dict(zip(names, values))

    async def delete_attr(self, path, name, *, durability=None):
        """Delete attribute `name` of the object at path."""
        await self._call("delete_attr", path, name=name, durability=durability)

    # ------------------------------------------------ listing, inspection

    async def list(self, path="/"):
        """The members of the group at path, in name order: a list of dicts
        with "name" and "kind" ("group", "dataset", "datatype", "soft_link",
        "external_link", "user_link"); datasets also have "shape",
        "maxshape" and "dtype", soft links "target", external links "file"
        and "target". Fetched a page at a time (the server's default
        page size) until complete."""
        out = []
        after = None
        while True:
            res = await self._call("list", path, after=after)
            out.extend(_describe(e) for e in res["entries"])
            after = res["next"]
            if after is None:
                return out

    async def walk(self, path="/", max_depth=None, page_size=None):
        """Every link below the group at path, depth first, members in name
        order, each group's contents right after it (as ``h5ls -r``): an
        async iterator of dicts like list()'s with "path" (absolute)
        instead of "name". Soft and external links are listed, not
        followed. max_depth=1 gives the group's own members only. Pages of
        page_size entries (None: the server's default) are fetched as the
        iteration goes, so a huge file never has to fit in one reply."""
        after = None
        while True:
            res = await self._call("walk", path, after=after, max_depth=max_depth, limit=page_size)
            for e in res["entries"]:
                yield _describe(e)
            after = res["next"]
            if after is None:
                return

    async def info(self, path):
        """What the object at path is. A dataset: a dict with "kind":
        "dataset", "shape" and "maxshape" (tuples as h5py gives them: None
        for an unlimited axis; both None for an empty dataset), "dtype" (a
        numpy dtype; variable-length strings are h5py's
        ``string_dtype``-style object dtypes, with metadata {"vlen": str}
        or {"vlen": bytes}; None when the type has no numpy equivalent),
        "hdf5_class", "layout", "chunks" (tuple or None), "compression"
        ("gzip", "lzf", "szip", the plugins "lz4", "bzip2", "bitshuffle" as
        create_dataset() names them, or None), "compression_opts" (gzip
        level, bzip2 block size, lz4 block bytes; else None),
        "shuffle", "fletcher32", "filters" (every filter: id, name,
        cd_values), "fillvalue", "storage_size" (bytes allocated in the
        file) and "nattrs". A group: "kind": "group", "members", "nattrs".
        Links in the path are followed."""
        return _describe(await self._call("info", path))

    async def exists(self, path):
        """True when path leads to an object (links followed): False for a
        missing path, a dangling link, or a path through a dataset -- as
        h5py's ``path in file``."""
        return bool(await self._call("exists", path))

    # ------------------------------------------------------------ links

    async def create_link(self, path, target, *, durability=None):
        """Create a soft link at path pointing at target (absolute, or
        relative to the link's group; it need not exist), creating missing
        parent groups."""
        await self._call("create_link", path, target=target, durability=durability)

    async def move(self, path, dest, *, durability=None):
        """Move (rename) the object or link at path to dest, creating
        missing parent groups of dest. dest must not exist."""
        await self._call("move", path, dest=dest, durability=durability)


_DURABILITY = ("none", "flush", "fsync")


def _durability_arg(value):
    if value is None or value in _DURABILITY:
        return value
    raise ValueError("durability must be None, %s; not %r" % (", ".join(map(repr, _DURABILITY)), value))


def _consume(fut):
    if not fut.cancelled():
        fut.exception()


_SHAPE_KEYS = ("shape", "maxshape", "chunks")


def _describe(m):
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


def _shape(res):
    if isinstance(res, dict) and "shape" in res:
        return tuple(int(d) for d in res["shape"])
    raise HDF5AsyncError("unexpected result from server: %r" % (res,), code="INTERNAL")

