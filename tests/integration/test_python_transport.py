"""The Python client's transport and its h5py-style API in the places that
break first: replies cut into pieces, a connection dropped mid-reply,
arrays over 256 MiB both ways, Jupyter (a loop already running), many
threads, AsyncFile, timeouts, replies the client cannot read."""

import asyncio
import socket
import struct
import threading

import msgpack
import numpy as np
import pytest

import hdf5_async
from h5a_util import IO_TIMEOUT, run
from hdf5_async import HDF5Client, protocol

# --------------------------------------------------- frames cut at every byte


def _reply(req_id, result):
    body = msgpack.packb({"id": req_id, "ok": True, "result": _wire(result)}, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


def _wire(v):
    if isinstance(v, np.ndarray):
        return {b"nd": True, b"type": v.dtype.str, b"kind": b"", b"shape": list(v.shape),
                b"data": v.tobytes()}
    return v


class _FakeTransport:
    def abort(self):
        self.aborted = True

    def is_closing(self):
        return False


def _feed(stream, cuts):
    """Run FrameProtocol over stream delivered in pieces ending at cuts, the
    way asyncio does (get_buffer, copy into it, buffer_updated)."""
    got, lost = [], []

    async def go():
        p = protocol.FrameProtocol(got.append, lost.append)
        p.connection_made(_FakeTransport())
        pos = 0
        for end in list(cuts) + [len(stream)]:
            while pos < end:
                buf = p.get_buffer(-1)
                n = min(len(buf), end - pos)
                buf[:n] = stream[pos:pos + n]
                p.buffer_updated(n)
                pos += n

    asyncio.run(go())
    assert not lost, lost
    return got


def test_frames_split_at_every_byte():
    small = _reply(1, "pong") + _reply(2, {"shape": [3]}) + _reply(3, np.arange(5, dtype="<i2"))
    for cut in range(1, len(small)):
        got = _feed(small, [cut])
        assert [g[0] for g in got] == [1, 2, 3]
    got = _feed(small, range(1, len(small)))  # one byte at a time
    assert got[0] == (1, True, "pong") and got[1] == (2, True, {"shape": [3]})


def test_big_frame_split_anywhere_is_zero_copy_and_aligned():
    arr = np.random.default_rng(1).random(100_000)  # 800 kB: over BIG_FRAME
    stream = _reply(7, "first") + _reply(8, arr) + _reply(9, "after")
    head = len(_reply(7, "first"))
    for cuts in ([head + 1], [head + 4, head + 5], [head + 100], range(1, len(stream), 997),
                 range(head, head + 8000)):
        got = _feed(stream, cuts)
        assert [g[0] for g in got] == [7, 8, 9]
        out = got[1][2]
        assert isinstance(out, np.ndarray) and out.dtype == arr.dtype
        assert out.tobytes() == arr.tobytes()
        assert out.flags.writeable and out.flags.aligned
        assert out.ctypes.data % 64 == 0  # placed, not copied, when the frame's start arrived whole
        assert got[2][2] == "after"


# ------------------------------------------------------------- a TCP proxy


class Proxy:
    """Between the client and the real server: client->server bytes pass
    as they come; server->client bytes go out in the given piece sizes
    (TCP_NODELAY: each its own segment), and with cut_after the proxy
    closes both sides after that many reply bytes."""

    def __init__(self, srv, pieces=(1, 2, 3, 5, 7, 11, 13, 4093), cut_after=None):
        self.srv = srv
        self.pieces = pieces
        self.cut_after = cut_after
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        try:
            c, _ = self.lsock.accept()
        except OSError:
            return
        s = socket.create_connection(self.srv.address)
        for x in (c, s):
            x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conns = (c, s)
        up = threading.Thread(target=self._pump, args=(c, s, None), daemon=True)
        down = threading.Thread(target=self._pump, args=(s, c, self.pieces), daemon=True)
        up.start()
        down.start()
        self.threads += [up, down]

    def _pump(self, src, dst, pieces):
        sent = 0
        i = 0
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                pos = 0
                while pos < len(data):
                    n = len(data) - pos if pieces is None else pieces[i % len(pieces)]
                    i += 1
                    part = data[pos:pos + n]
                    if self.cut_after is not None and pieces is not None and sent + len(part) >= self.cut_after:
                        dst.sendall(part[:self.cut_after - sent])
                        raise ConnectionAbortedError
                    dst.sendall(part)
                    sent += len(part)
                    pos += len(part)
        except OSError:
            pass
        finally:
            for x in self.conns:
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.lsock.close()
        for x in getattr(self, "conns", ()):
            x.close()
        for t in self.threads:
            t.join(IO_TIMEOUT)


def test_reply_split_across_many_segments(server):
    arr = np.arange(300_000, dtype="<f8")  # 2.4 MB, 8 pieces per ~4 kB
    proxy = Proxy(server)

    async def go():
        async with HDF5Client("127.0.0.1", proxy.port, timeout=IO_TIMEOUT) as c:
            await c.write("/a", arr)
            out = await c.read("/a")
            small = await asyncio.gather(*(c.read("/a", np.s_[i]) for i in range(50)))
            return out, small

    try:
        out, small = run(go())
    finally:
        proxy.close()
    assert out.tobytes() == arr.tobytes()
    assert [float(x) for x in small] == list(range(50))


@pytest.mark.parametrize("cut", [3, 40, 70_000, 1_000_000])
def test_connection_dropped_mid_reply_raises(server, cut):
    arr = np.arange(250_000, dtype="<f8")
    run(_write(server, "/a", arr))
    proxy = Proxy(server, pieces=(65536,), cut_after=cut)

    async def go():
        async with HDF5Client("127.0.0.1", proxy.port, timeout=IO_TIMEOUT) as c:
            with pytest.raises(hdf5_async.ConnectionClosedError):
                await c.read("/a")
            with pytest.raises(hdf5_async.ConnectionClosedError):
                await c.read("/a")  # and the client stays closed

    try:
        run(go())
    finally:
        proxy.close()


def test_connection_dropped_mid_reply_through_file(server):
    run(_write(server, "/a", np.arange(250_000, dtype="<f8")))
    proxy = Proxy(server, pieces=(65536,), cut_after=500_000)
    try:
        with hdf5_async.File(server="127.0.0.1:%d" % proxy.port, timeout=IO_TIMEOUT) as f:
            ds = f["a"]
            with pytest.raises(ConnectionError):
                ds[()]
    finally:
        proxy.close()


async def _write(srv, path, arr):
    async with HDF5Client(srv.host, srv.port, timeout=IO_TIMEOUT) as c:
        await c.write(path, arr)


# ----------------------------------------------------------- large arrays


def test_256_mib_both_ways_byte_exact(server):
    n = (256 << 20) // 8 + 3  # just over 256 MiB, not a round number
    arr = np.random.default_rng(7).integers(0, 2**63, size=n, dtype="<u8")
    addr = "%s:%d" % server.address
    with hdf5_async.File(server=addr, timeout=IO_TIMEOUT * 4) as f:
        f["big"] = arr
        back = f["big"][()]
        assert back.dtype == arr.dtype and back.shape == arr.shape
        assert np.array_equal(back, arr)
        part = f["big"][n - 10:]
        assert np.array_equal(part, arr[n - 10:])
        del back
        f["big"][1000:2000] = np.arange(1000, dtype="<u8")
        arr[1000:2000] = np.arange(1000, dtype="<u8")
        assert np.array_equal(f["big"][()], arr)


# ---------------------------------------------------- Jupyter, threads, async


def test_file_inside_a_running_loop(server):
    """A notebook cell runs in a thread whose loop is running: File must
    not need that loop."""
    addr = "%s:%d" % server.address

    async def cell():
        with hdf5_async.File(server=addr, timeout=IO_TIMEOUT) as f:
            f["nb/x"] = np.arange(4)
            await asyncio.sleep(0)  # the notebook's loop keeps running
            return f["nb/x"][1:3], list(f["nb"].keys())

    out, keys = asyncio.run(cell())
    assert out.tolist() == [1, 2] and keys == ["x"]


def test_file_from_many_threads(server):
    addr = "%s:%d" % server.address
    errors = []
    with hdf5_async.File(server=addr, timeout=IO_TIMEOUT) as f:
        ds = f.create_dataset("t", (8, 100), dtype="i4")

        def work(i):
            try:
                for j in range(100):
                    ds[i, j] = i * 1000 + j
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        want = np.arange(8)[:, None] * 1000 + np.arange(100)[None, :]
        assert np.array_equal(f["t"][()], want)


def test_file_called_from_its_own_loop_thread_refuses(server):
    addr = "%s:%d" % server.address
    with hdf5_async.File(server=addr, timeout=IO_TIMEOUT) as f:
        f["x"] = 1
        loop = hdf5_async.h5._LoopThread.loop()
        fut = asyncio.run_coroutine_threadsafe(_call_sync(lambda: f["x"][()]), loop)
        with pytest.raises(RuntimeError, match="AsyncFile"):
            fut.result(IO_TIMEOUT)


async def _call_sync(fn):
    return fn()


def test_async_file(server):
    addr = "%s:%d" % server.address

    async def go():
        async with hdf5_async.AsyncFile(server=addr, timeout=IO_TIMEOUT) as f:
            ds = await f.create_dataset("g/d", data=np.arange(10.0), maxshape=(None,))
            assert ds.shape == (10,) and ds.dtype == np.float64 and len(ds) == 10
            assert (await ds[2:4]).tolist() == [2.0, 3.0]
            await ds.write(np.s_[0], 7)
            assert await ds.append(np.ones(2)) == (12,)
            await ds.attrs.set("u", "m")
            assert await ds.attrs["u"] == "m"
            g = await f["g"]
            assert isinstance(g, hdf5_async.AsyncGroup) and await g.contains("d")
            assert [n async for n in f] == ["g"]
            assert await f.keys() == ["g"]
            with pytest.raises(KeyError):
                await f["nope"]
            seen = []
            await f.visititems(lambda n, o: seen.append((n, type(o).__name__)))
            assert seen == [("g", "AsyncGroup"), ("g/d", "AsyncDataset")]
            await f.delete("g")
            assert not await f.contains("g")
        f2 = await hdf5_async.AsyncFile(server=addr, mode="r", timeout=IO_TIMEOUT)
        with pytest.raises(PermissionError):
            await f2.client.create_group("/x")
        with pytest.raises(ValueError):
            await f2.create_group("x")
        await f2.close()

    run(go())


def test_file_arguments(server):
    for bad in ("/abs.h5", ""):
        with pytest.raises(ValueError, match="name must be a file under the server's data_root"):
            hdf5_async.File(bad, server="%s:%d" % server.address)
    for mode in ("w", "w-", "x"):
        with pytest.raises(ValueError, match="shared"):
            hdf5_async.File(mode=mode, server="%s:%d" % server.address)
    with pytest.raises(ValueError, match="Invalid mode"):
        hdf5_async.File(mode="q", server="%s:%d" % server.address)
    with hdf5_async.File(server="%s:%d" % server.address) as f:
        assert f.mode == "r+" and f.name == "/" and f.file is f and bool(f)
    assert not f


def test_unsupported_h5py_features_say_so(server):
    with hdf5_async.File(server="%s:%d" % server.address, timeout=IO_TIMEOUT) as f:
        f["x"] = np.arange(5)
        ds = f["x"]
        for what in (lambda: ds.dims, lambda: ds.ref, lambda: ds.regionref, lambda: f.id,
                     lambda: f.copy("x", "y"), lambda: ds.__setitem__([0, 1], 3),
                     lambda: f.create_dataset("y", (2,), fletcher32=True),
                     lambda: f.create_dataset("y", (2,), scaleoffset=2),
                     lambda: f.create_dataset(None, (2,)),
                     lambda: f.__setitem__("h", ds), lambda: f.create_dataset("e", dtype="f4"),
                     lambda: f.create_group("t", track_order=True)):
            with pytest.raises(NotImplementedError, match="not supported"):
                what()
        assert "y" not in f and "h" not in f  # nothing was sent


# ------------------------------------------------- timeouts, bad replies


async def _server(handler):
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def test_timeout_is_package_error_and_asyncio_timeout():
    async def silent(reader, writer):
        await reader.read()  # never answers

    async def go():
        srv, port = await _server(silent)
        async with srv:
            async with HDF5Client("127.0.0.1", port, timeout=0.2) as c:
                with pytest.raises(asyncio.TimeoutError) as ei:
                    await c.ping()
                assert isinstance(ei.value, hdf5_async.TimedOutError) and ei.value.code == "TIMEOUT"

    run(go())


def test_undecodable_and_malformed_replies_are_bad_reply_not_internal():
    async def bad(reader, writer):
        n = struct.unpack(">I", await reader.readexactly(4))[0]
        req = msgpack.unpackb(await reader.readexactly(n))
        body = msgpack.packb({"id": req["id"], "ok": False, "error": "not a map"})
        writer.write(struct.pack(">I", len(body)) + body)
        n = struct.unpack(">I", await reader.readexactly(4))[0]
        req = msgpack.unpackb(await reader.readexactly(n))
        body = msgpack.packb({"id": req["id"], "ok": True, "result": {"no": "shape"}})
        writer.write(struct.pack(">I", len(body)) + body)
        await reader.readexactly(4)
        writer.write(struct.pack(">I", 3) + b"\xc1\xc1\xc1")  # never valid MessagePack
        await writer.drain()
        await reader.read()

    async def go():
        srv, port = await _server(bad)
        async with srv:
            async with HDF5Client("127.0.0.1", port, timeout=IO_TIMEOUT) as c:
                with pytest.raises(hdf5_async.BadReplyError):
                    await c.ping()
                with pytest.raises(hdf5_async.BadReplyError):
                    await c.write("/x", 1)
                with pytest.raises(hdf5_async.ConnectionClosedError, match="undecodable"):
                    await c.ping()

    run(go())


def test_timeout_while_sending_a_large_request():
    """A server that stops reading: the client's timeout also bounds
    sending, and the connection, cut inside a frame, is closed."""
    gate = asyncio.Event()

    async def stalled(reader, writer):
        await gate.wait()  # reads nothing: the socket buffers fill up
        writer.close()

    async def go():
        srv, port = await _server(stalled)
        async with srv:
            async with HDF5Client("127.0.0.1", port, timeout=0.5) as c:
                with pytest.raises(hdf5_async.TimedOutError):
                    await c.write("/big", np.zeros(64 << 20, dtype=np.uint8))
                with pytest.raises(hdf5_async.ConnectionClosedError):
                    await c.ping()
            gate.set()

    run(go())
