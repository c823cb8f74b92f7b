"""The asyncio client."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import secrets
import ssl as _ssl
import weakref
from typing import (
    Any,
    Awaitable,
    AsyncIterator,
    Dict,
    List,
    Optional,
    OrderedDict,
    Sequence,
    Tuple,
    Union,
)

from . import codec, ops, results
from .cluster import Routing
from .config import load_settings, resolve_token
from .errors import (
    BadReplyError,
    ConnectionClosedError,
    HDF5AsyncError,
    ReadOnlyError,
    TimedOutError,
    UnknownOpError,
)
from .inflight import Deadlines, InFlight, fast, fresh as _fresh, ordered
from .protocol import SMALL_SEND, FrameProtocol
from .reconnect import Reconnecting

__all__ = ["HDF5Client"]

# No handler is installed here: records go wherever the application's
# logging configuration sends them (nowhere below WARNING by default).
log = logging.getLogger("hdf5_async")

Shape = Tuple[int, ...]
SSLArg = Union[None, bool, str, "os.PathLike[str]", _ssl.SSLContext]


class HDF5Client(Reconnecting, Routing, InFlight):
    """An asyncio client of one hdf5-async server.

    ``HDF5Client()`` reads host and port from ``./config.ini`` (the [client]
    section if it has them, else [server]; 0.0.0.0 means 127.0.0.1), falling
    back to 127.0.0.1:8888. ``timeout`` (seconds) bounds connect() and each
    call (TimedOutError, also an asyncio.TimeoutError); None waits forever.
    ``durability`` ("none", "flush" or "fsync") is what an ok reply to this
    client's changes promises unless a call says otherwise; None leaves it
    to the server's ``durability`` key (see docs/durability.md).

    ``token`` authenticates the connection (the protocol's ``auth``, sent
    first on connect): when None, $HDF5_ASYNC_TOKEN, else the file named by
    the config's [client] ``token_file``, else none is sent. ``ssl``: an
    ``ssl.SSLContext``, True (verify the server against the system's CAs) or
    the path of a CA file (PEM) to verify it with; None or False: plain TCP.
    ``read_only=True`` refuses every call that would change the file
    (ReadOnlyError) before anything is sent.

    ``reconnect=True`` makes the client survive a lost connection (a server
    restart, a network drop): every request carries the client's random
    ``client_id`` and a ``seq``, and after a loss the client connects again
    (backing off), authenticates, and sends again, in order and with the
    same ``client_id``/``seq``, every request that had no reply; the server
    applies each at most once (docs/protocol.md, "Exactly-once requests").
    A caller sees only a delay, unless the connection cannot be regained
    within ``reconnect_timeout`` seconds: the pending calls then raise
    ConnectionClosedError. ``timeout`` still bounds each call.

    One client may be shared by any number of tasks of its event loop:
    requests are pipelined on the one connection and each call gets its own
    reply.
    """

    def __init__(
        self,
        host: Optional[str] = None,
        port: Optional[Union[int, str]] = None,
        config: Optional[Union[str, "os.PathLike[str]"]] = None,
        *,
        timeout: Optional[float] = None,
        durability: Optional[str] = None,
        token: Optional[str] = None,
        ssl: SSLArg = None,
        read_only: bool = False,
        file: Optional[str] = None,
        reconnect: bool = False,
        reconnect_timeout: float = 60.0,
    ) -> None:
        settings = load_settings(host, port, config)
        #: the file under the server's data_root every call is for (None:
        #: the server's default file); each call may name another (file=)
        self.file: Optional[str] = file
        #: [cluster] nodes from the config: each call goes to its file's owner
        self.nodes: List[str] = list(settings.nodes)
        # other nodes' connections, by "HOST:PORT" (made on first use)
        self._peers: Dict[str, "HDF5Client"] = {}
        self._peer_kw = dict(timeout=timeout, durability=durability, token=token, ssl=ssl,
                             read_only=read_only, reconnect=reconnect,
                             reconnect_timeout=reconnect_timeout)
        self.durability = _durability_arg(durability)
        self.host: str = settings.host
        self.port: int = settings.port
        self.debug: bool = settings.debug
        self.timeout = timeout
        self.read_only = bool(read_only)
        self._token = resolve_token(token, settings)
        self._ssl = _ssl_context(ssl)
        #: the server's answer to ``auth`` ({"name", "role"}), when a token was sent
        self.identity: Optional[Dict[str, Any]] = None
        if self.debug:
            log.setLevel(logging.DEBUG)
        self._transport: Optional[asyncio.Transport] = None
        self._protocol: Optional[FrameProtocol] = None
        # the loop connect() ran on, and its one timer over calls in flight
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._deadlines: Optional[Deadlines] = None
        # tickets of calls made as coroutines not yet started (inflight.later)
        self._unstarted: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._write_lock: Optional[asyncio.Lock] = None
        self._queued = 0  # requests waiting for _write_lock (see _exchange)
        # id -> future, in the order the requests were sent: replies come
        # back in that order, so a reply whose id the server could not read
        # (id nil) belongs to the oldest one.
        self._pending: OrderedDict[int, asyncio.Future] = collections.OrderedDict()
        self._ids = itertools.count(1)
        self._closed_exc: Optional[HDF5AsyncError] = None
        self._unasked: Optional[HDF5AsyncError] = None
        #: exactly-once: this client's id (random), sent with every request
        #: when ``reconnect`` is on, with a seq counting up from 1
        self.reconnect = bool(reconnect)
        self.reconnect_timeout = float(reconnect_timeout)
        self.client_id: Optional[str] = secrets.token_hex(16) if self.reconnect else None
        self._seqs = itertools.count(1)
        # id -> (op, path, pieces, future): what is sent again after a reconnect
        self._sent: OrderedDict[int, Tuple[str, Optional[str], List[Any], asyncio.Future]] = \
            collections.OrderedDict()
        self._reconnecting: Optional["asyncio.Task[None]"] = None
        self._user_closed = False

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return "<HDF5Client %s:%s %s>" % (self.host, self.port, state)

    @property
    def connected(self) -> bool:
        return self._transport is not None and self._closed_exc is None

    # ---------------------------------------------------------------- life

    async def connect(self) -> None:
        """Open the connection (a no-op when already connected), and
        authenticate when the client has a token."""
        if self.connected:
            return
        log.debug("connecting to %s:%s", self.host, self.port)
        loop = asyncio.get_running_loop()
        self._closed_exc = self._unasked = None
        self._pending = collections.OrderedDict()
        self._sent = collections.OrderedDict()
        self._user_closed = False
        coro = loop.create_connection(
            lambda: FrameProtocol(self._on_reply, self._on_lost),
            self.host,
            self.port,
            ssl=self._ssl,
            server_hostname=self.host if self._ssl is not None else None,
        )
        transport, protocol = await self._bounded(coro, "connecting to %s:%s" % (self.host, self.port))
        self._transport, self._protocol = transport, protocol
        self._write_lock = asyncio.Lock()
        self._loop = loop
        self._deadlines = Deadlines(loop)
        log.debug("connected to %s:%s", self.host, self.port)
        if self._token is not None:
            try:
                await self._authenticate(self._token)
            except BaseException:
                await self.close()
                raise

    async def _authenticate(self, token: str) -> None:
        try:
            res = await self._request("auth", None, {"token": token})
        except UnknownOpError:
            raise UnknownOpError(
                "the server at %s:%s does not support authentication (it answered auth "
                "with UNKNOWN_OP): connect without a token, or upgrade the server"
                % (self.host, self.port)
            ) from None
        if not isinstance(res, dict):
            raise BadReplyError("unexpected result of auth: %r" % (res,))
        self.identity = res
        log.debug("authenticated as %r", res.get("name"))

    async def close(self) -> None:
        """Close the connection; calls still pending raise
        ConnectionClosedError. Safe to call more than once."""
        self._user_closed = True
        task, self._reconnecting = self._reconnecting, None
        if task is not None:
            task.cancel()
        peers, self._peers = list(self._peers.values()), {}
        for peer in peers:  # [cluster]: the other nodes' connections
            await peer.close()
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            self._fail_pending(ConnectionClosedError("connection closed by the client"))
            return
        self._transport = None
        self._fail_pending(ConnectionClosedError("connection closed by the client"))
        protocol._flush()  # what was asked before close() still leaves
        transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(protocol.closed), 5)
        except asyncio.TimeoutError:
            transport.abort()
        log.debug("closed connection to %s:%s", self.host, self.port)

    async def __aenter__(self) -> "HDF5Client":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ---------------------------------------------------------------- I/O

    async def _bounded(self, aw: Any, what: str) -> Any:
        if self.timeout is None:
            return await aw
        try:
            return await asyncio.wait_for(aw, self.timeout)
        except asyncio.TimeoutError:
            raise TimedOutError("%s took more than %gs" % (what, self.timeout)) from None

    def _on_lost(self, exc: Optional[BaseException]) -> None:
        if self._reconnecting is not None:
            return  # a new connection that failed: the reconnect loop sees it
        if self.reconnect and not self._user_closed and self._unasked is None and \
                self._transport is not None:
            self._start_reconnect(exc)
            return
        if isinstance(exc, HDF5AsyncError):
            err = exc
        elif exc is None:
            err = ConnectionClosedError("connection closed by the server")
        elif isinstance(exc, (ConnectionError, OSError)):
            err = ConnectionClosedError("connection lost: %s" % exc)
        else:
            err = ConnectionClosedError("connection lost: %s: %s" % (type(exc).__name__, exc))
        if isinstance(err, BadReplyError):  # the client gave up on the stream
            err = ConnectionClosedError("connection aborted: %s" % err.message)
        elif self._unasked is not None:
            err = self._unasked
        self._fail_pending(err)

    def _check_open(self) -> None:
        if self._closed_exc is not None:
            raise _fresh(self._closed_exc)
        if self._transport is None:
            raise ConnectionClosedError("not connected: call connect() first")

    async def _call(self, op: str, path: Optional[str] = None, durability: Optional[str] = None,
                    _local: bool = False, **args: Any) -> Any:
        """One operation, with the client's policies: read-only clients
        refuse changes, and changes carry the client's durability."""
        _changes_file(op)  # KeyError for an unknown op, before anything else
        file = args.pop("file", None)
        if file is None:
            file = self.file
        if file is not None:
            args["file"] = file
        if file is not None and not _local:
            return await self._routed(op, path, durability, file, args)
        self._policy(op, durability, args)
        return await self._request(op, path, args)

    def _policy(self, op: str, durability: Optional[str], args: Dict[str, Any]) -> None:
        """The client's policies on one call's args: a read-only client
        refuses changes, changes carry the client's durability, and with
        reconnect every request its client_id and next seq."""
        changes = _changes_file(op)
        if changes and self.read_only:
            raise ReadOnlyError("%s: the client is read-only (opened with mode 'r')" % op)
        if durability is not None:
            durability = _durability_arg(durability)
        elif changes:
            durability = self.durability
        if durability is not None:
            args["durability"] = durability
        if self.client_id is not None:
            args["client_id"] = self.client_id
            args["seq"] = next(self._seqs)

    async def _request(self, op: str, path: Optional[str], args: Dict[str, Any]) -> Any:
        """Send one request and wait for its reply's result."""
        self._check_open()
        return await self._exchange(op, path, self._encode(op, path, args))

    async def _exchange(self, op: str, path: Optional[str], pieces: List[Any]) -> Any:
        """Send one encoded request and wait for its reply's result."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        small = 4 + int.from_bytes(pieces[0], "big") <= SMALL_SEND
        lock = self._write_lock
        assert lock is not None
        if small and not lock.locked() and not self._queued:
            self._send_small(op, path, pieces, fut)  # no wait: frames cannot interleave
            if self._protocol is not None and self._protocol._paused:
                await self._drain()
        else:
            # queued for the lock: until this one has it (the timeout's
            # wait_for starts _send_locked as a task of its own, later),
            # no later small request may go past it
            self._queued += 1
            try:
                await self._bounded(self._send_locked(op, path, pieces, fut, small),
                                    "sending %s %s" % (op, path or ""))
            finally:
                self._queued -= 1
        if self.timeout is not None and self._deadlines is not None:
            self._deadlines.watch(fut, self.timeout, op, path)
        return await fut

    async def _send_locked(self, op: str, path: Optional[str], pieces: List[Any],
                           fut: "asyncio.Future[Any]", small: bool) -> None:
        assert self._write_lock is not None
        async with self._write_lock:  # a large frame is being written: wait for it
            self._check_open()
            if small:
                self._send_small(op, path, pieces, fut)
                await self._drain()
                return
            try:
                await self._send_large(op, path, pieces, fut)
            except asyncio.CancelledError:
                # given up half-way (timeout, cancel): the stream is cut
                # inside a frame, so the connection cannot go on
                fut.cancel()  # its caller is gone: nobody will read its error
                if self._transport is not None:
                    self._on_lost(ConnectionClosedError("a request was abandoned while being sent"))
                    self._transport.abort()
                raise

    def _send_small(self, op: str, path: Optional[str], pieces: List[Any],
                    fut: "asyncio.Future[Any]") -> None:
        self._register(op, path, pieces, fut)
        if self._reconnecting is not None:
            return  # sent, in its turn, once the connection is back
        transport, protocol = self._transport, self._protocol
        assert transport is not None and protocol is not None
        # A transport that hit an error is closing and will report
        # connection_lost in a moment, failing this call with the rest:
        # writing to it would only make asyncio log warnings.
        if not transport.is_closing():
            protocol.send_small(pieces)

    async def _send_large(self, op: str, path: Optional[str], pieces: List[Any],
                          fut: "asyncio.Future[Any]") -> None:
        self._register(op, path, pieces, fut)
        if self._reconnecting is not None:
            return  # sent, in its turn, once the connection is back
        transport, protocol = self._transport, self._protocol
        assert transport is not None and protocol is not None
        if not transport.is_closing():
            try:
                await protocol.send(pieces)
            except (ConnectionError, OSError):
                pass  # connection_lost fails the pending calls, this one too

    async def _drain(self) -> None:
        protocol = self._protocol
        if protocol is not None:
            try:
                await protocol.drain()
            except (ConnectionError, OSError):
                pass  # connection_lost fails the pending calls

    # ---------------------------------------------------------------- API

    @fast
    def ping(self) -> Awaitable[str]:
        """Round trip to the server; returns "pong"."""
        return "ping", None, None, None, {}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def sync(self, durability: str = "fsync") -> Awaitable[None]:
        """Make every operation the server has applied so far durable:
        "fsync" (default) = on disk, survives a machine crash; "flush" =
        survives the server process dying. A barrier: returns once done."""
        if durability not in ("flush", "fsync"):
            raise ValueError('sync() takes durability "flush" or "fsync", not %r' % (durability,))
        return "ping", None, durability, results.none, {}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def compact(
        self, *, durability: Optional[str] = None, file: Optional[str] = None
    ) -> Awaitable[Dict[str, int]]:
        """Copy everything live into a fresh file put in the served file's
        place (the online h5repack: space freed by deletes and rewrites
        comes back to the disk). Needs the admin role when the server has
        tokens; the server does nothing else meanwhile. Returns the file's
        size before and after: {"before": bytes, "after": bytes}."""
        return "compact", None, durability, None, {"file": file}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def create_group(
        self, path: str, *, durability: Optional[str] = None, file: Optional[str] = None
    ) -> Awaitable[None]:
        """Create the group at path and any missing parents (no-op if it
        exists)."""
        return "create_group", path, durability, results.none, {"file": file}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def write(
        self,
        path: str,
        data: Any,
        compression: Optional[str] = None,
        compression_opts: Optional[int] = None,
        *,
        durability: Optional[str] = None,
        file: Optional[str] = None,
    ) -> Awaitable[Shape]:
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
        return "write", path, durability, results.shape, {  # type: ignore[return-value]  # (see inflight.fast)
            "data": data, "compression": compression, "compression_opts": compression_opts,
            "file": file}

    #: the protocol's "update" is another name of "write"
    update = write

    @fast
    def read(
        self, path: str, selection: Any = None, *, file: Optional[str] = None
    ) -> Awaitable[Any]:
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
        return "read", path, None, results.value, {"selection": sel, "file": file}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def write_slice(
        self, path: str, selection: Any, data: Any, *, durability: Optional[str] = None, file: Optional[str] = None
    ) -> Awaitable[Shape]:
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
        return "write_slice", path, durability, results.shape, {  # type: ignore[return-value]  # (see inflight.fast)
            "selection": codec.selection_arg(selection), "data": data, "file": file}

    @fast
    def create_dataset(
        self,
        path: str,
        shape: Union[int, Sequence[int]],
        dtype: Any = "f4",
        *,
        chunks: Union[None, bool, int, Sequence[int]] = None,
        maxshape: Union[None, int, Sequence[Optional[int]]] = None,
        fillvalue: Any = None,
        compression: Optional[str] = None,
        compression_opts: Optional[int] = None,
        shuffle: bool = False,
        exist_ok: bool = False,
        durability: Optional[str] = None,
        file: Optional[str] = None,
    ) -> Awaitable[Shape]:
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
        return "create_dataset", path, durability, results.shape, dict(  # type: ignore[return-value]  # (see inflight.fast)
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
            file=file,
        )

    @fast
    def resize(
        self,
        path: str,
        shape: Union[int, Sequence[int]],
        axis: Optional[int] = None,
        *,
        durability: Optional[str] = None,
        file: Optional[str] = None,
    ) -> Awaitable[Shape]:
        """Resize a chunked dataset within its maxshape, as h5py's
        Dataset.resize: ``resize(path, (20, 3))``, or ``resize(path, 20,
        axis=0)`` for one axis (the others stay as they are on the server,
        whatever other clients did). Shrinking drops what falls outside.
        OutOfRangeError past maxshape or for a dataset that is not chunked.
        Returns the new shape."""
        if axis is None:
            return "resize", path, durability, results.shape, {"shape": codec.shape_arg(shape), "file": file}  # type: ignore[return-value]  # (see inflight.fast)
        if isinstance(shape, (tuple, list)):
            raise TypeError("with axis, shape is that axis' new size: an int")
        size = codec.shape_arg(shape)[0]
        return "resize", path, durability, results.shape, {  # type: ignore[return-value]  # (see inflight.fast)
            "shape": size, "axis": codec.index_arg(axis), "file": file}

    @fast
    def append(
        self,
        path: str,
        data: Any,
        compression: Optional[str] = None,
        compression_opts: Optional[int] = None,
        *,
        durability: Optional[str] = None,
        file: Optional[str] = None,
    ) -> Awaitable[Shape]:
        """Append rows along axis 0 (creating a resizable dataset if
        missing; compression applies only then). Returns the new shape."""
        return "append", path, durability, results.shape, {  # type: ignore[return-value]  # (see inflight.fast)
            "data": data, "compression": compression, "compression_opts": compression_opts,
            "file": file}

    @fast
    def insert(
        self,
        path: str,
        index: int,
        data: Any,
        compression: Optional[str] = None,
        compression_opts: Optional[int] = None,
        *,
        durability: Optional[str] = None,
        file: Optional[str] = None,
    ) -> Awaitable[Shape]:
        """Insert rows before row `index` (negative counts from the end) of
        an existing dataset. Returns the new shape."""
        index = codec.index_arg(index)
        return "insert", path, durability, results.shape, {  # type: ignore[return-value]  # (see inflight.fast)
            "index": index, "data": data, "compression": compression,
            "compression_opts": compression_opts, "file": file}

    @fast
    def delete(
        self, path: str, *, durability: Optional[str] = None, file: Optional[str] = None
    ) -> Awaitable[None]:
        """Delete the group (recursively) or dataset at path, or the link
        at path when it is a soft or external link (dangling or not)."""
        return "delete", path, durability, results.none, {"file": file}  # type: ignore[return-value]  # (see inflight.fast)

    # ------------------------------------------------------ attributes

    @fast
    def set_attr(
        self, path: str, name: str, value: Any, *, durability: Optional[str] = None, file: Optional[str] = None
    ) -> Awaitable[None]:
        """Set attribute `name` of the group or dataset at path to value
        (anything write() takes; stored as h5py stores the same value in
        ``obj.attrs[name]``), replacing an attribute of that name."""
        if not isinstance(name, str):
            raise TypeError("attribute name must be a str, not %s" % type(name).__name__)
        return "set_attr", path, durability, results.none, {"name": name, "data": value, "file": file}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def get_attr(
        self, path: str, name: str, *, file: Optional[str] = None
    ) -> Awaitable[Any]:
        """The value of attribute `name` of the object at path, as read()
        returns values (numpy array or scalar, str/bytes, object array of
        strings)."""
        return "get_attr", path, None, results.value, {"name": name, "file": file}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def list_attrs(
        self, path: str, *, file: Optional[str] = None
    ) -> Awaitable[List[Dict[str, Any]]]:
        """The attributes of the object at path, in name order: a list of
        dicts ``{"name", "shape", "maxshape", "dtype"}`` (see info() for
        shape and dtype)."""
        return "list_attrs", path, None, results.describe_all, {"file": file}  # type: ignore[return-value]  # (see inflight.fast)

    @ordered
    async def attrs(
        self, path: str, *, file: Optional[str] = None
    ) -> Dict[str, Any]:
        """Every attribute of the object at path as a dict name -> value
        (one list_attrs, then the get_attr calls pipelined)."""
        names = [a["name"] for a in await self.list_attrs(path, file=file)]
        values = await asyncio.gather(*(self.get_attr(path, n) for n in names))
        return dict(zip(names, values))

    @fast
    def delete_attr(
        self, path: str, name: str, *, durability: Optional[str] = None, file: Optional[str] = None
    ) -> Awaitable[None]:
        """Delete attribute `name` of the object at path."""
        return "delete_attr", path, durability, results.none, {"name": name, "file": file}  # type: ignore[return-value]  # (see inflight.fast)

    # ------------------------------------------------ listing, inspection

    @ordered
    async def list(
        self, path: str = "/", *, file: Optional[str] = None
    ) -> List[Dict[str, Any]]:
        """The members of the group at path, in name order: a list of dicts
        with "name" and "kind" ("group", "dataset", "datatype", "soft_link",
        "external_link", "user_link"); datasets also have "shape",
        "maxshape" and "dtype", soft links "target", external links "file"
        and "target". Fetched a page at a time (the server's default
        page size) until complete."""
        out = []
        after = None
        while True:
            res = await self._call("list", path, after=after, file=file)
            out.extend(results.describe(e) for e in res["entries"])
            after = res["next"]
            if after is None:
                return out

    async def walk(
        self, path: str = "/", max_depth: Optional[int] = None, page_size: Optional[int] = None, *, file: Optional[str] = None
    ) -> AsyncIterator[Dict[str, Any]]:
        """Every link below the group at path, depth first, members in name
        order, each group's contents right after it (as ``h5ls -r``): an
        async iterator of dicts like list()'s with "path" (absolute)
        instead of "name". Soft and external links are listed, not
        followed. max_depth=1 gives the group's own members only. Pages of
        page_size entries (None: the server's default) are fetched as the
        iteration goes, so a huge file never has to fit in one reply."""
        after = None
        while True:
            res = await self._call(
                "walk", path, after=after, max_depth=max_depth, limit=page_size, file=file
            )
            for e in res["entries"]:
                yield results.describe(e)
            after = res["next"]
            if after is None:
                return

    @fast
    def info(
        self, path: str, *, file: Optional[str] = None
    ) -> Awaitable[Dict[str, Any]]:
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
        return "info", path, None, results.describe, {"file": file}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def exists(
        self, path: str, *, file: Optional[str] = None
    ) -> Awaitable[bool]:
        """True when path leads to an object (links followed): False for a
        missing path, a dangling link, or a path through a dataset -- as
        h5py's ``path in file``."""
        return "exists", path, None, bool, {"file": file}  # type: ignore[return-value]  # (see inflight.fast)

    # ------------------------------------------------------------ links

    @fast
    def create_link(
        self, path: str, target: str, *, durability: Optional[str] = None, file: Optional[str] = None
    ) -> Awaitable[None]:
        """Create a soft link at path pointing at target (absolute, or
        relative to the link's group; it need not exist), creating missing
        parent groups."""
        return "create_link", path, durability, results.none, {"target": target, "file": file}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def move(
        self, path: str, dest: str, *, durability: Optional[str] = None, file: Optional[str] = None
    ) -> Awaitable[None]:
        """Move (rename) the object or link at path to dest, creating
        missing parent groups of dest. dest must not exist."""
        return "move", path, durability, results.none, {"dest": dest, "file": file}  # type: ignore[return-value]  # (see inflight.fast)

    # ------------------------------------------------ many files (data_root)

    @fast
    def list_files(self) -> Awaitable[List[Dict[str, Any]]]:
        """The files under the server's data_root: a list of {"name", "size"}
        in name order (a server without data_root lists its one file)."""
        return "list_files", None, None, results.files, {}  # type: ignore[return-value]  # (see inflight.fast)

    @fast
    def create_virtual(
        self,
        path: str,
        sources: Sequence[Any],
        layout: str = "stack",
        *,
        durability: Optional[str] = None,
        file: Optional[str] = None,
    ) -> Awaitable[Shape]:
        """A virtual dataset at path over datasets of files under the same
        data_root. sources: (file, path) pairs or {"file", "path"} dicts
        (file None: this call's file); layout "stack" (a new first axis, one
        slot per source) or "concat" (along axis 0). One source whose file
        holds "%b" (e.g. "run_%b.h5") makes an unlimited dataset over the
        files with 0, 1, 2, ... in its place, as many as exist when it is
        read. Returns the shape."""
        srcs = []
        for src in sources:
            if isinstance(src, dict):
                srcs.append({k: v for k, v in src.items() if v is not None})
            else:
                f, p = src
                srcs.append({"path": p} if f is None else {"file": f, "path": p})
        return "create_virtual", path, durability, results.shape, {  # type: ignore[return-value]  # (see inflight.fast)
            "sources": srcs, "layout": layout, "file": file}


_DURABILITY = ("none", "flush", "fsync")


def _changes_file(op: str) -> bool:
    """Whether op may change the file (ops.py, the op list): it then carries
    the client's durability, and a read-only client refuses it."""
    return ops.changes(op)


def _durability_arg(value: Optional[str]) -> Optional[str]:
    if value is None or value in _DURABILITY:
        return value
    raise ValueError("durability must be None, %s; not %r" % (", ".join(map(repr, _DURABILITY)), value))


def _ssl_context(value: SSLArg) -> Optional[_ssl.SSLContext]:
    """HDF5Client's ssl argument -> the context to connect with (None: plain
    TCP). True: the system's CAs; a path: that CA file (PEM); both verify the
    server's certificate and host name."""
    if value is None or value is False:
        return None
    if isinstance(value, _ssl.SSLContext):
        return value
    if value is True:
        return _ssl.create_default_context()
    if isinstance(value, (str, os.PathLike)):
        return _ssl.create_default_context(cafile=os.fspath(value))
    raise TypeError("ssl must be None, a bool, a CA file path or an ssl.SSLContext, not %s"
                    % type(value).__name__)
