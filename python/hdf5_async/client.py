"""The asyncio client."""

import asyncio
import collections
import itertools
import logging

from . import codec
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


class HDF5Client:
    """An asyncio client of one hdf5-async server.

    ``HDF5Client()`` reads host and port from ``./config.ini`` (the [client]
    section if it has them, else [server]; 0.0.0.0 means 127.0.0.1), falling
    back to 127.0.0.1:8888. ``timeout`` (seconds) bounds connect() and each
    call; None waits forever.

    One client may be shared by any number of tasks: requests are pipelined
    on the one connection and each call gets its own reply.
    """

    def __init__(self, host=None, port=None, config=None, *, timeout=None):
        settings = load_settings(host, port, config)
        self.host = settings.host
        self.port = settings.port
        self.debug = settings.debug
        self.timeout = timeout
        if self.debug:
            _enable_debug_logging()
        self._reader = None
        self._writer = None
        self._reader_task = None
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
        return self._writer is not None and self._closed_exc is None

    # ---------------------------------------------------------------- life

    async def connect(self):
        """Open the connection (a no-op when already connected)."""
        if self.connected:
            return
        log.debug("connecting to %s:%s", self.host, self.port)
        coro = asyncio.open_connection(self.host, self.port)
        if self.timeout is not None:
            coro = asyncio.wait_for(coro, self.timeout)
        reader, writer = await coro
        self._reader, self._writer = reader, writer
        self._closed_exc = None
        self._pending = collections.OrderedDict()
        self._write_lock = asyncio.Lock()
        self._reader_task = asyncio.ensure_future(self._read_loop(reader))
        log.debug("connected to %s:%s", self.host, self.port)

    async def close(self):
        """Close the connection; calls still pending raise
        ConnectionClosedError. Safe to call more than once."""
        writer, task = self._writer, self._reader_task
        if writer is None:
            return
        self._writer = None
        self._reader_task = None
        self._fail_pending(ConnectionClosedError("connection closed by the client"))
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
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

    async def _read_loop(self, reader):
        try:
            while True:
                head = await reader.readexactly(4)
                (size,) = codec.FRAME_HEADER.unpack(head)
                payload = await reader.readexactly(size)
                try:
                    reply = codec.decode_reply(payload)
                except Exception as e:  # the server sent garbage: give up
                    raise ConnectionClosedError("undecodable reply from server: %s" % e) from e
                self._dispatch(reply)
        except asyncio.CancelledError:
            raise
        except asyncio.IncompleteReadError:
            self._fail_pending(ConnectionClosedError("connection closed by the server"))
        except ConnectionClosedError as e:
            self._fail_pending(e)
        except (ConnectionError, OSError) as e:
            self._fail_pending(ConnectionClosedError("connection lost: %s" % e))
        except Exception as e:  # a bug: still never leave a caller hanging
            log.exception("reader failed")
            self._fail_pending(ConnectionClosedError("reader failed: %r" % e))

    def _dispatch(self, reply):
        if not isinstance(reply, dict):
            raise ConnectionClosedError("reply is not a map: %r" % (reply,))
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

    async def _call(self, op, path=None, **args):
        if self._writer is None or self._closed_exc is not None:
            raise ConnectionClosedError(
                self._closed_exc.message if self._closed_exc else "not connected: call connect() first"
            )
        if path is not None and not isinstance(path, str):
            raise TypeError("path must be a str, not %s" % type(path).__name__)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        # a reply may land after its caller gave up (timeout, cancel): mark
        # the exception retrieved so asyncio does not log it
        fut.add_done_callback(_consume)
        async with self._write_lock:
            if self._closed_exc is not None or self._writer is None:
                raise ConnectionClosedError(
                    self._closed_exc.message if self._closed_exc else "connection closed"
                )
            req_id = next(self._ids)
            # encode before registering: a TypeError leaves nothing behind
            pieces = codec.encode_request(req_id, op, path, **args)
            self._pending[req_id] = fut
            log.debug("request id=%s op=%s path=%s", req_id, op, path)
            try:
                self._writer.writelines(pieces)
                await self._writer.drain()
            except (ConnectionError, OSError) as e:
                self._fail_pending(ConnectionClosedError("connection lost: %s" % e))
        if self.timeout is not None:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        return await fut

    # ---------------------------------------------------------------- API

    async def ping(self):
        """Round trip to the server; returns "pong"."""
        return await self._call("ping")

    async def create_group(self, path):
        """Create the group at path and any missing parents (no-op if it
        exists)."""
        await self._call("create_group", path)

    async def write(self, path, data, compression=None, compression_opts=None):
        """Write data (scalar, list or numpy array) to the dataset at path,
        replacing what is there. compression: None = the server's default,
        "gzip" (compression_opts = level 0..9), "lzf" or "none". Returns the
        dataset's shape."""
        res = await self._call(
            "write", path, data=data, compression=compression, compression_opts=compression_opts
        )
        return _shape(res)

    async def update(self, path, data, compression=None, compression_opts=None):
        """Alias of write()."""
        res = await self._call(
            "update", path, data=data, compression=compression, compression_opts=compression_opts
        )
        return _shape(res)

    async def read(self, path):
        """Read the whole dataset at path: a numpy array, a numpy scalar for
        scalar datasets, str/bytes for variable-length string scalars and a
        numpy object array of str/bytes for variable-length string arrays."""
        res = await self._call("read", path)
        if isinstance(res, list):
            return codec.strings_to_array(res)
        return codec.decode_value(res)

    async def append(self, path, data, compression=None, compression_opts=None):
        """Append rows along axis 0 (creating a resizable dataset if
        missing; compression applies only then). Returns the new shape."""
        res = await self._call(
            "append", path, data=data, compression=compression, compression_opts=compression_opts
        )
        return _shape(res)

    async def insert(self, path, index, data, compression=None, compression_opts=None):
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
        )
        return _shape(res)

    async def delete(self, path):
        """Delete the group (recursively) or dataset at path."""
        await self._call("delete", path)


def _consume(fut):
    if not fut.cancelled():
        fut.exception()


def _shape(res):
    if isinstance(res, dict) and "shape" in res:
        return tuple(int(d) for d in res["shape"])
    raise HDF5AsyncError("unexpected result from server: %r" % (res,), code="INTERNAL")

