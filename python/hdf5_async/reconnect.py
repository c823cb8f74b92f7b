"""Surviving a lost connection, and batches: the parts of HDF5Client that
exist for exactly-once delivery (docs/protocol.md, "Exactly-once requests"
and "batch").

``Reconnecting`` is mixed into HDF5Client: after the connection is lost, a
task connects again with backoff, authenticates, and sends again every
request that had no reply, in order, with its original client_id and seq
(the server applies each at most once); meanwhile new requests are only
registered and leave after them. ``Batch`` queues ops for one ``batch``
request. Kept apart from client.py so that the plain client reads as before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, List, Optional

from . import codec
from .errors import ConnectionClosedError, HDF5AsyncError
from .protocol import SMALL_SEND, FrameProtocol

__all__ = ["Reconnecting", "Batch"]

log = logging.getLogger("hdf5_async")

_FIRST_DELAY = 0.05
_MAX_DELAY = 1.0


class Reconnecting:
    """The reconnect loop of HDF5Client (which provides the attributes),
    and its batch()."""

    def batch(self, *, file: Optional[str] = None) -> "Batch":
        """``async with client.batch() as b:`` queues ops (``b.append(...)``,
        ``b.write(...)``, ...; the client's methods with the same arguments)
        and sends them on exit as one ``batch`` request: applied in order,
        all or nothing (the failing op's error is raised, with ``.index``,
        and nothing of the batch is applied). The results, one per op, are
        then on ``b.results``. Nothing is sent when the block raises.

        A batch applies to one file: ``file`` (default: the client's
        ``file``), and goes to that file's node; an op naming another file
        is refused (BAD_REQUEST with its ``.index``): atomicity across files,
        each with its own log, is not possible."""
        return Batch(self, file)

    def _start_reconnect(self, exc: Optional[BaseException]) -> None:
        log.debug("connection to %s:%s lost (%s): reconnecting", self.host, self.port, exc)
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect_loop(exc))

    async def _reconnect_loop(self, why: Optional[BaseException]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        delay = _FIRST_DELAY
        last: Any = why
        try:
            while not self._user_closed:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    transport, protocol = await asyncio.wait_for(
                        loop.create_connection(
                            lambda: FrameProtocol(self._on_reply, self._on_lost),
                            self.host, self.port, ssl=self._ssl,
                            server_hostname=self.host if self._ssl is not None else None),
                        left)
                except (OSError, asyncio.TimeoutError) as e:
                    last = e
                    await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
                    delay = min(delay * 2, _MAX_DELAY)
                    continue
                self._transport, self._protocol = transport, protocol
                try:
                    await self._resume(protocol, deadline)
                except (OSError, ConnectionError, HDF5AsyncError, asyncio.TimeoutError) as e:
                    last = e
                if protocol.lost:  # the new connection died too: again
                    await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
                    delay = min(delay * 2, _MAX_DELAY)
                    continue
                log.debug("reconnected to %s:%s", self.host, self.port)
                self._reconnecting = None
                return
        except asyncio.CancelledError:
            return
        self._reconnecting = None
        if not self._user_closed:
            self._fail_pending(ConnectionClosedError(
                "connection to %s:%s lost and not regained within %gs (last: %s)"
                % (self.host, self.port, self.reconnect_timeout, last)))
            transport = self._transport
            self._transport = None
            if transport is not None:
                transport.abort()

    async def _resume(self, protocol: FrameProtocol, deadline: float) -> None:
        """On a new connection: authenticate, then send again what had no
        reply, in order (new ids, the same client_id and seq)."""
        loop = asyncio.get_running_loop()
        if self._token is not None:
            fut = loop.create_future()
            pieces = codec.encode_request(0, "auth", None, token=self._token)
            self._register("auth", None, pieces, fut)
            protocol.send_small(pieces)
            self.identity = await asyncio.wait_for(fut, max(0.1, deadline - loop.time()))
        written = set()
        while True:
            todo = [(k, v) for k, v in self._sent.items() if k not in written]
            if not todo:
                return
            for old_id, (op, path, pieces, fut) in todo:
                self._sent.pop(old_id, None)
                self._pending.pop(old_id, None)
                if fut.done():  # its caller gave up (timeout, cancel)
                    continue
                self._register(op, path, pieces, fut)
                written.add(next(reversed(self._sent)))
                if protocol.lost:
                    continue  # registered: the next connection sends it
                if 4 + int.from_bytes(pieces[0], "big") > SMALL_SEND:
                    await protocol.send(pieces)
                else:
                    protocol.send_small(pieces)
            if protocol.lost:
                return


class Batch:
    """Ops queued for one ``batch`` request (HDF5Client.batch())."""

    def __init__(self, client: Any, file: Optional[str] = None) -> None:
        self._client = client
        self._file = file
        self._ops: List[bytes] = []
        #: the results, one per op, once the batch was applied
        self.results: Optional[List[Any]] = None

    async def __aenter__(self) -> "Batch":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None or not self._ops:
            return
        ops = self._ops
        self._ops = []
        packed = codec._Packed(_array_header(len(ops)) + b"".join(ops))
        kw = {} if self._file is None else {"file": self._file}
        res = await self._client._call("batch", None, ops=packed, **kw)
        self.results = [codec.decode_value(r) for r in res]

    def __len__(self) -> int:
        return len(self._ops)

    def add(self, op: str, path: Optional[str] = None, **args: Any) -> None:
        """Queue any op by name, with its request keys (None = absent)."""
        if self._client.read_only and codec_changes(op):
            from .errors import ReadOnlyError

            raise ReadOnlyError("%s: the client is read-only" % op)
        self._ops.append(codec.encode_sub_request(op, path, **args))

    # the client's methods, queued
    def create_group(self, path: str) -> None:
        self.add("create_group", path)

    def write(self, path: str, data: Any, compression: Optional[str] = None,
              compression_opts: Optional[int] = None) -> None:
        self.add("write", path, data=data, compression=compression,
                 compression_opts=compression_opts)

    def append(self, path: str, data: Any, compression: Optional[str] = None,
               compression_opts: Optional[int] = None) -> None:
        self.add("append", path, data=data, compression=compression,
                 compression_opts=compression_opts)

    def insert(self, path: str, index: int, data: Any) -> None:
        self.add("insert", path, index=int(index), data=data)

    def delete(self, path: str) -> None:
        self.add("delete", path)

    def resize(self, path: str, shape: Any, axis: Optional[int] = None) -> None:
        self.add("resize", path, shape=shape if axis is not None else list(shape), axis=axis)

    def set_attr(self, path: str, name: str, value: Any) -> None:
        self.add("set_attr", path, name=name, data=value)

    def delete_attr(self, path: str, name: str) -> None:
        self.add("delete_attr", path, name=name)

    def move(self, path: str, dest: str) -> None:
        self.add("move", path, dest=dest)

    def create_link(self, path: str, target: str) -> None:
        self.add("create_link", path, target=target)

    def read(self, path: str) -> None:
        self.add("read", path)


def codec_changes(op: str) -> bool:
    from . import ops

    return ops.changes(op)


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")

