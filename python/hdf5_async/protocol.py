"""The connection's byte stream: frames in, frames out (asyncio, no policy).

Replies are read with an :class:`asyncio.BufferedProtocol`: the kernel copies
received bytes straight into our buffers. Small frames (up to
``BIG_FRAME``) collect in one reused staging buffer and are decoded from it
with msgpack. A larger frame gets a buffer of its own, allocated once its
header has arrived and filled by the socket directly; an array in it (a
``read`` result) becomes a numpy array *on that buffer* (``np.frombuffer``):
no copy between the socket and the array the caller gets. The buffer is
placed so that the array's first element is 64-byte aligned, as numpy's own
allocations are.

Requests go out as the pieces :func:`codec.encode_request` makes (header,
then the caller's array as a memoryview); see :meth:`FrameProtocol.send`.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
from typing import Any, Callable, List, Optional, Tuple

import msgpack
import numpy as np

from . import codec
from .errors import BadReplyError

__all__ = ["FrameProtocol", "Reply", "BIG_FRAME", "decode_frame"]

#: frames larger than this get a buffer of their own (and zero-copy arrays)
BIG_FRAME = 64 * 1024
_STAGING = 4 * BIG_FRAME
#: bytes of a big frame's start needed to place its array's data aligned
_PREFIX = 4096
_ALIGN = 64
# Python 3.12+ sends a writelines() list with sendmsg, without joining it
_WRITELINES_ZERO_COPY = sys.version_info >= (3, 12)
#: requests up to this size are corked (see send_small), larger ones sent at once
SMALL_SEND = 256 * 1024
#: small frames queued up to this many bytes are written without waiting for the loop turn's end
_FLUSH_AT = 64 * 1024

#: (id, ok, result-or-error): a decoded reply
Reply = Tuple[Any, bool, Any]


class FrameProtocol(asyncio.BufferedProtocol):
    """Splits the byte stream into frames; hands each decoded reply to
    ``on_reply`` and any failure to ``on_lost`` (once).

    A protocol rather than asyncio streams: a StreamReader that has seen a
    connection error raises it before handing out data it already holds, so
    replies that arrived just before a reset (a server closing while
    requests are still in flight) would be lost."""

    def __init__(
        self,
        on_reply: Callable[[Reply], None],
        on_lost: Callable[[Optional[BaseException]], None],
    ) -> None:
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._stage = bytearray(_STAGING)
        self._smv = memoryview(self._stage)
        self._start = 0  # first byte not yet consumed
        self._end = 0  # end of received bytes
        self._big: Optional[np.ndarray] = None  # the big frame being received
        self._big_at = 0  # where its payload starts in _big
        self._big_size = 0
        self._big_fill = 0
        self.transport: Optional[asyncio.BaseTransport] = None
        self._paused = False
        self._drain_waiter: Optional[asyncio.Future] = None
        self._out: List[Any] = []  # small frames waiting for the end of this loop turn
        self._out_bytes = 0
        self._flush_scheduled = False
        self.lost = False
        self.closed = asyncio.get_running_loop().create_future()

    # ---------------------------------------------------------- receiving

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        big = self._big
        if big is not None:
            at = self._big_at + self._big_fill
            return memoryview(big)[at:self._big_at + self._big_size]
        if self._end == len(self._stage):
            self._compact()
        return self._smv[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        try:
            if self._big is not None:
                self._big_fill += nbytes
                if self._big_fill == self._big_size:
                    self._finish_big()
                return
            self._end += nbytes
            self._parse_stage()
        except Exception as e:  # an undecodable reply: the stream is lost
            self._abort(e)

    def _abort(self, exc: BaseException) -> None:
        if not isinstance(exc, BadReplyError):
            exc = BadReplyError("undecodable reply from the server: %s: %s" % (type(exc).__name__, exc))
        self._on_lost(exc)
        if self.transport is not None:
            self.transport.abort()

    def _compact(self) -> None:
        n = self._end - self._start
        if self._start:
            self._stage[:n] = self._smv[self._start:self._end]
        self._start, self._end = 0, n

    def _parse_stage(self) -> None:
        smv = self._smv
        while True:
            start, avail = self._start, self._end - self._start
            if avail < 4:
                break
            size = int.from_bytes(smv[start:start + 4], "big")
            if size == 0:
                raise BadReplyError("zero-length frame")
            if size <= BIG_FRAME:
                if avail < 4 + size:
                    if start + 4 + size > len(self._stage):
                        self._compact()
                    break
                self._start = start + 4 + size
                self._on_reply(decode_frame(smv[start + 4:start + 4 + size], None))
                continue
            have = min(avail - 4, size)
            if have < _PREFIX:
                # wait for the frame's start: it says where the array data lies
                if start + 4 + _PREFIX > len(self._stage):
                    self._compact()
                break
            self._start_big(smv[start + 4:start + 4 + have], size)
            self._start = start + 4 + have
            if self._big is not None:
                break  # the rest goes straight into the big buffer
        if self._start == self._end:
            self._start = self._end = 0

    def _start_big(self, first: memoryview, size: int) -> None:
        data_at = _array_data_offset(first)
        buf = np.empty(size + _ALIGN, dtype=np.uint8)
        addr = buf.ctypes.data
        at = (-(addr + (data_at or 0))) % _ALIGN if data_at is not None else 0
        buf[at:at + len(first)] = np.frombuffer(first, dtype=np.uint8)
        self._big, self._big_at, self._big_size, self._big_fill = buf, at, size, len(first)
        if self._big_fill == size:
            self._finish_big()

    def _finish_big(self) -> None:
        buf, at, size = self._big, self._big_at, self._big_size
        self._big = None
        assert buf is not None
        self._on_reply(decode_frame(memoryview(buf)[at:at + size], buf))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost = True
        self._big = None
        self._on_lost(exc)
        self._wake(exc or ConnectionResetError("connection closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    # ---------------------------------------------------------- sending

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake(None)

    def _wake(self, exc: Optional[BaseException]) -> None:
        w, self._drain_waiter = self._drain_waiter, None
        if w is not None and not w.done():
            if exc is None:
                w.set_result(None)
            else:
                w.set_exception(exc)

    async def drain(self) -> None:
        if self.lost:
            raise ConnectionResetError("connection lost")
        if not self._paused:
            return
        self._drain_waiter = asyncio.get_running_loop().create_future()
        await self._drain_waiter

    def send_small(self, pieces: List[Any]) -> bool:
        """Queue a small frame: the frames queued in one turn of the loop
        leave in one write (many pipelined requests, one system call), or
        as soon as _FLUSH_AT bytes are queued (so that the server starts on
        the first requests of a long burst, e.g. an asyncio.gather of
        thousands, while the rest are being encoded).
        True when the transport asks the writer to wait (then drain())."""
        self._out.extend(pieces)
        self._out_bytes += 4 + int.from_bytes(pieces[0], "big")
        if self._out_bytes >= _FLUSH_AT:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return self._paused

    async def send(self, pieces: List[Any]) -> None:
        """Write one large frame's pieces, in order, and wait until the
        transport can take more. The array is not joined or copied into new
        bytes: Python 3.12+ ``writelines`` sends the list with sendmsg;
        before that, over plain TCP, the pieces go to the socket with
        ``os.writev`` whenever the transport has nothing queued (what the
        socket cannot take yet waits for it, 64 KiB at a time through the
        transport)."""
        transport = self.transport
        assert isinstance(transport, asyncio.WriteTransport)
        self._flush()
        if _WRITELINES_ZERO_COPY:
            transport.writelines(pieces)
        elif self._fd is not None:
            await self._writev(transport, [memoryview(p).cast("B") for p in pieces])
        else:
            transport.write(b"".join(pieces[:-1]))
            transport.write(pieces[-1])
        await self.drain()

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        self._out_bytes = 0
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]

    @property
    def _fd(self) -> Optional[int]:
        t = self.transport
        if t is None or t.get_extra_info("sslcontext") is not None or not hasattr(os, "writev"):
            return None
        sock = t.get_extra_info("socket")
        return sock.fileno() if sock is not None else None

    async def _writev(self, transport: asyncio.WriteTransport, views: List[memoryview]) -> None:
        fd = self._fd
        assert fd is not None
        transport.set_write_buffer_limits(high=0)  # pause until it is all sent
        try:
            while views:
                if self.lost:
                    raise ConnectionResetError("connection lost")
                n = 0
                if transport.get_write_buffer_size() == 0:
                    try:
                        n = os.writev(fd, views[:_IOV_MAX])
                    except (BlockingIOError, InterruptedError):
                        n = 0
                    except OSError as e:  # the peer is gone: so is the connection
                        self._on_lost(e)
                        transport.abort()
                        raise
                    _advance(views, n)
                if n == 0 and views:
                    # the socket is full: let the transport wait for room
                    head = views[0]
                    k = min(len(head), 65536)
                    transport.write(head[:k])
                    _advance(views, k)
                    await self.drain()
        finally:
            if not self.lost:
                transport.set_write_buffer_limits()


_IOV_MAX = 512


def _advance(views: List[memoryview], n: int) -> None:
    """Drop the first n bytes from a list of byte views."""
    while n and views:
        if n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        else:
            views[0] = views[0][n:]
            n = 0


# ------------------------------------------------------------------ decoding

_unpackb = msgpack.unpackb


def decode_frame(payload: memoryview, owner: Optional[np.ndarray]) -> Reply:
    """One reply frame -> (id, ok, result or error map). ``owner`` is the
    buffer the payload lives in when nothing else will write to it (a big
    frame's own buffer): an array result is then made on it without a copy.
    Without an owner (the reused staging buffer) everything is copied out."""
    if owner is None:
        reply = _unpackb(payload, raw=False, strict_map_key=False, use_list=True)
        if not isinstance(reply, dict):
            raise BadReplyError("reply is not a map: %r" % (reply,))
        ok = reply.get("ok")
        return reply.get("id"), ok is True, reply.get("result" if ok is True else "error")
    return _decode_big(payload)


class _Reader:
    """A minimal MessagePack reader over a buffer, for the few small values
    around a big payload (the reply map's keys, id, ok, an array's type and
    shape). Bins come back as (offset, length) when ``lazy_bin``."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: memoryview, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def _take(self, n: int) -> memoryview:
        p = self.pos
        if p + n > len(self.buf):
            raise BadReplyError("truncated MessagePack in reply")
        self.pos = p + n
        return self.buf[p:p + n]

    def _uint(self, n: int) -> int:
        return int.from_bytes(self._take(n), "big")

    def head(self) -> Tuple[str, int]:
        """(kind, n): 'map'/'array' with their length, 'bin'/'str' with their
        byte length; other kinds are decoded by value()."""
        b = self.buf[self.pos]
        if 0x80 <= b <= 0x8F:
            self.pos += 1
            return "map", b & 0x0F
        if 0x90 <= b <= 0x9F:
            self.pos += 1
            return "array", b & 0x0F
        if 0xA0 <= b <= 0xBF:
            self.pos += 1
            return "str", b & 0x1F
        sizes = {0xC4: ("bin", 1), 0xC5: ("bin", 2), 0xC6: ("bin", 4), 0xD9: ("str", 1),
                 0xDA: ("str", 2), 0xDB: ("str", 4), 0xDC: ("array", 2), 0xDD: ("array", 4),
                 0xDE: ("map", 2), 0xDF: ("map", 4)}
        if b in sizes:
            kind, width = sizes[b]
            self.pos += 1
            return kind, self._uint(width)
        return "scalar", 0

    def key(self) -> str:
        kind, n = self.head()
        if kind not in ("str", "bin"):
            raise BadReplyError("map key of kind %s in reply" % kind)
        return bytes(self._take(n)).decode("utf-8", "replace")

    def value(self) -> Any:
        b = self.buf[self.pos]
        if b <= 0x7F:
            self.pos += 1
            return b
        if b >= 0xE0:
            self.pos += 1
            return b - 0x100
        if b == 0xC0:
            self.pos += 1
            return None
        if b in (0xC2, 0xC3):
            self.pos += 1
            return b == 0xC3
        ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h",
                0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
        if b in ints:
            self.pos += 1
            fmt = ints[b]
            return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]
        kind, n = self.head()
        if kind == "str":
            return bytes(self._take(n)).decode("utf-8")
        if kind == "bin":
            return bytes(self._take(n))
        if kind == "array":
            return [self.value() for _ in range(n)]
        if kind == "map":
            return {self.value(): self.value() for _ in range(n)}
        raise BadReplyError("unexpected MessagePack byte 0x%02x in reply" % b)


def _array_data_offset(first: memoryview) -> Optional[int]:
    """Where the element bytes of a reply's array start, from the frame's
    first bytes; None when the frame holds no array or is cut too short."""
    try:
        r = _Reader(first)
        kind, n = r.head()
        if kind != "map":
            return None
        for _ in range(n):
            if r.key() != "result":
                r.value()
                continue
            return _array_map(r, lazy=True)
    except (BadReplyError, IndexError, UnicodeDecodeError, struct.error):
        return None
    return None


def _array_map(r: _Reader, lazy: bool) -> Any:
    """At an array map (msgpack-numpy's form, ``data`` last as the server
    writes it): with lazy, the offset of the element bytes; else the parsed
    fields with data as (offset, length). None when it is not such a map."""
    save = r.pos
    kind, n = r.head()
    if kind != "map" or n == 0:
        r.pos = save
        return None
    fields = {}
    for i in range(n):
        k = r.key()
        if i == 0 and k != "nd":
            r.pos = save
            return None
        if k == "data":
            kind, size = r.head()
            if kind == "str":
                kind = "bin"  # protocol.md: a str is accepted, its bytes used
            if kind != "bin":
                raise BadReplyError("array data of kind %s" % kind)
            if lazy:
                return r.pos
            fields["data"] = (r.pos, size)
            r._take(size)
        else:
            fields[k] = r.value()
    return None if lazy else fields


def _decode_big(payload: memoryview) -> Reply:
    r = _Reader(payload)
    kind, n = r.head()
    if kind != "map":
        raise BadReplyError("reply is not a map")
    req_id: Any = None
    ok: Any = None
    body: Any = None
    for i in range(n):
        k = r.key()
        if k in ("result", "error"):
            at = r.pos
            fields = _array_map(r, lazy=False) if k == "result" else None
            if fields is not None:
                body = _array_from_fields(payload, fields)
            elif i == n - 1:
                body = _unpackb(payload[at:], raw=False, strict_map_key=False, use_list=True)
                r.pos = len(payload)
            else:
                body = r.value()
        elif k == "id":
            req_id = r.value()
        elif k == "ok":
            ok = r.value()
        else:
            r.value()
    if r.pos != len(payload):
        raise BadReplyError("%d bytes after the reply map" % (len(payload) - r.pos))
    return req_id, ok is True, body


def _array_from_fields(payload: memoryview, f: dict) -> Any:
    """An msgpack-numpy map's fields -> a numpy array or scalar made on the
    frame's buffer (the caller owns it from now on)."""
    try:
        dt = codec.dtype_from_wire(f["type"])
        at, size = f["data"]
        nd = f["nd"]
    except KeyError as e:
        raise BadReplyError("array in reply lacks %s" % e) from None
    except (TypeError, ValueError) as e:
        raise BadReplyError("bad dtype in reply: %s" % e) from None
    if nd is True:
        shape = tuple(int(d) for d in f.get("shape", ()))
        count = 1
        for d in shape:
            count *= d
        if size != count * dt.itemsize:
            raise BadReplyError("array data has %d bytes, expected %d" % (size, count * dt.itemsize))
        if count == 0 or dt.itemsize == 0:
            return np.zeros(shape, dtype=dt)
        arr = np.frombuffer(payload[at:at + size], dtype=dt).reshape(shape)
        if not arr.flags.aligned:  # only when the frame's start came cut short
            arr = arr.copy()
        return arr
    if size != dt.itemsize:
        raise BadReplyError("scalar data has %d bytes, expected %d" % (size, dt.itemsize))
    return np.frombuffer(payload[at:at + size], dtype=dt, count=1)[0]
