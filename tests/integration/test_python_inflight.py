"""HDF5Client's fast call path (python/hdf5_async/inflight.py), against fake
servers that answer exactly as each test needs: a hot method called on the
client's loop returns its reply future at once (no Task per call), yet it
still behaves as the coroutine it replaced -- create_task and
run_coroutine_threadsafe take it, bad arguments raise at await, a read-only
client sends nothing -- and the connection's one timer fails exactly the
calls that got no reply, also after the timeout was changed mid-flight."""

import asyncio
import struct
import threading

import msgpack
import numpy as np
import pytest

from h5a_util import run

import hdf5_async
from hdf5_async import HDF5Client


async def _read_frame(reader):
    (n,) = struct.unpack(">I", await reader.readexactly(4))
    return msgpack.unpackb(await reader.readexactly(n), raw=False, strict_map_key=False)


def _frame(obj):
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


async def _fake_server(answer, seen=None):
    """A server that reads requests forever and writes answer(req) for each
    (None: no reply). seen, a list, collects the requests."""

    async def handler(reader, writer):
        try:
            while True:
                req = await _read_frame(reader)
                if seen is not None:
                    seen.append(req)
                out = answer(req)
                if out is not None:
                    writer.write(_frame(dict(out, id=req["id"])))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _pong(req):
    if req["op"] == "ping":
        return {"ok": True, "result": "pong"}
    if req["op"] == "append":
        return {"ok": True, "result": {"shape": [7, 16]}}
    return {"ok": False, "error": {"code": "NOT_FOUND", "message": "no " + str(req.get("path"))}}


def test_a_fast_call_is_a_future_a_task_can_run_and_gather_takes():
    async def main():
        server, port = await _fake_server(_pong)
        async with server:
            async with HDF5Client("127.0.0.1", port, timeout=30) as c:
                aw = c.ping()
                assert asyncio.isfuture(aw)
                assert await aw == "pong"
                assert await asyncio.create_task(c.ping()) == "pong"
                assert await asyncio.wait_for(c.ping(), 30) == "pong"
                row = np.zeros((1, 16))
                shapes = await asyncio.gather(*(c.append("/a", row) for _ in range(500)))
                assert shapes == [(7, 16)] * 500
                with pytest.raises(hdf5_async.NotFoundError):
                    await c.read("/missing")
                # answered calls leave the connection's timer queue
                assert len(c._deadlines._q) == 0

    run(main())


def test_from_another_thread_a_call_is_the_coroutine_it_was():
    async def main():
        server, port = await _fake_server(_pong)
        async with server:
            async with HDF5Client("127.0.0.1", port, timeout=30) as c:
                loop = asyncio.get_running_loop()
                out = {}

                def other_thread():
                    aw = c.ping()  # no running loop in this thread
                    out["coroutine"] = asyncio.iscoroutine(aw) and not asyncio.isfuture(aw)
                    out["result"] = asyncio.run_coroutine_threadsafe(aw, loop).result(30)

                t = threading.Thread(target=other_thread)
                t.start()
                while t.is_alive():
                    await asyncio.sleep(0.01)
                assert out == {"coroutine": True, "result": "pong"}

    run(main())


def test_bad_arguments_raise_at_await_and_send_nothing():
    seen = []

    async def main():
        server, port = await _fake_server(_pong, seen)
        async with server:
            async with HDF5Client("127.0.0.1", port, timeout=30) as c:
                aw = c.read("/x", [1, 2])  # fancy indexing: refused, but at await
                with pytest.raises(IndexError):
                    await aw
                aw = c.set_attr("/x", 3, 1)
                with pytest.raises(TypeError):
                    await aw
                with pytest.raises(TypeError):
                    await c.write("/x", object())
                with pytest.raises(ValueError):
                    await c.append("/x", [1.0], durability="sometimes")
                with pytest.raises(TypeError):
                    await c.info(b"/x")
                assert await c.ping() == "pong"
            async with HDF5Client("127.0.0.1", port, timeout=30, read_only=True) as r:
                with pytest.raises(hdf5_async.ReadOnlyError):
                    await r.append("/x", np.zeros((1, 16)))
                with pytest.raises(hdf5_async.ReadOnlyError):
                    await r.delete("/x")
                assert await r.ping() == "pong"
        assert [q["op"] for q in seen] == ["ping", "ping"]

    run(main())


def test_a_reply_that_makes_no_sense_fails_its_call_only():
    def answer(req):
        if req["op"] == "append":
            return {"ok": True, "result": "not a shape"}
        return _pong(req)

    async def main():
        server, port = await _fake_server(answer)
        async with server:
            async with HDF5Client("127.0.0.1", port, timeout=30) as c:
                results = await asyncio.gather(c.append("/a", np.zeros((1, 2))), c.ping(),
                                               return_exceptions=True)
                assert isinstance(results[0], hdf5_async.BadReplyError)
                assert results[1] == "pong"

    run(main())


def test_the_one_timer_fails_exactly_the_calls_without_a_reply():
    def answer(req):
        if req["op"] == "ping":
            return _pong(req)
        return None  # reads are never answered

    async def main():
        server, port = await _fake_server(answer)
        async with server:
            async with HDF5Client("127.0.0.1", port, timeout=0.3) as c:
                calls = []
                for i in range(40):
                    calls.append(c.read("/r%d" % i) if i % 2 else c.ping())
                results = await asyncio.gather(*calls, return_exceptions=True)
                for i, r in enumerate(results):
                    if i % 2:
                        assert isinstance(r, hdf5_async.TimedOutError), (i, r)
                        assert "read /r%d took more than 0.3s" % i in str(r)
                    else:
                        assert r == "pong"
                # a call given up by its caller: its late reply is dropped
                aw = c.ping()
                aw.cancel()
                assert await c.ping() == "pong"

    run(main())


def test_a_shorter_timeout_set_mid_flight_is_kept():
    async def main():
        server, port = await _fake_server(lambda req: None)  # never answers
        async with server:
            async with HDF5Client("127.0.0.1", port, timeout=3600) as c:
                # (asyncio.wait takes tasks, not coroutines: nor a fast call's future)
                slow = asyncio.create_task(c.read("/slow"))
                await asyncio.sleep(0)
                c.timeout = 0.2
                quick = asyncio.create_task(c.read("/quick"))
                done, _ = await asyncio.wait({slow, quick}, timeout=60,
                                               return_when=asyncio.FIRST_COMPLETED)
                # the later call's deadline is earlier: it must not wait behind the first
                assert done == {quick}
                with pytest.raises(hdf5_async.TimedOutError):
                    quick.result()
                assert not slow.done()
                slow.cancel()

    run(main())


def test_calls_out_when_the_connection_drops_all_fail():
    async def main():
        count = {"n": 0}

        def answer(req):
            count["n"] += 1
            return None

        server, port = await _fake_server(answer)
        async with server:
            c = HDF5Client("127.0.0.1", port, timeout=30)
            await c.connect()
            calls = [c.append("/a", np.zeros((1, 4))) for _ in range(100)]
            while count["n"] < 100:
                await asyncio.sleep(0.01)
            c._transport.abort()  # the connection is gone with every call out
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, hdf5_async.ConnectionClosedError) for r in results), results
            assert len(c._deadlines._q) == 0
            await c.close()

    run(main())


@pytest.mark.parametrize("timeout", [None, 30])
def test_requests_leave_in_the_order_the_calls_were_made(timeout):
    """Fast calls, calls that fall back to coroutines (a frame over 256 KiB
    waits for the connection's write lock) and async methods (list) mixed
    in one gather: the server sees them in the order they were made."""
    seen = []

    def answer(req):
        op = req["op"]
        if op == "list":
            return {"ok": True, "result": {"entries": [], "next": None}}
        if op in ("append", "write", "resize", "create_dataset"):
            return {"ok": True, "result": {"shape": [1]}}
        return {"ok": True, "result": None}

    async def main():
        server, port = await _fake_server(answer, seen)
        async with server:
            async with HDF5Client("127.0.0.1", port, timeout=timeout) as c:
                big = np.zeros(1 << 16)  # 512 KiB: sent under the write lock
                calls = [c.append("/a", np.zeros(1)), c.write("/big1", big),
                         c.append("/b", np.zeros(1)), c.list("/"), c.move("/x", "/y"),
                         c.write("/big2", big), c.write("/big3", big), c.delete("/z"),
                         c.resize("/a", 5), c.create_group("/g")]
                await asyncio.gather(*calls)
                # and again once everything is out: fast again, in order
                await asyncio.gather(c.append("/c", np.zeros(1)), c.delete("/c"))
        names = [(q["op"], q.get("path")) for q in seen]
        assert names == [("append", "/a"), ("write", "/big1"), ("append", "/b"), ("list", "/"),
                         ("move", "/x"), ("write", "/big2"), ("write", "/big3"),
                         ("delete", "/z"), ("resize", "/a"), ("create_group", "/g"),
                         ("append", "/c"), ("delete", "/c")]

    run(main())
