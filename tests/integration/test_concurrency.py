"""Pipelining on one client, many clients at once, ordering guarantees."""

import asyncio

import h5py
import numpy as np

from h5a_util import IO_TIMEOUT, h5open, run, session

import hdf5_async as h5a
from hdf5_async import HDF5Client

TASKS = 50
APPENDS = 20
WIDTH = 4


def _row(task, i):
    return np.full(WIDTH, task * 1000 + i, dtype="<i8")


def test_many_tasks_share_one_client(server):
    async def worker(c, t):
        shapes = []
        for i in range(APPENDS):
            shapes.append(await c.append("/own/t%d" % t, _row(t, i)[None, :]))
            await c.append("/shared", _row(t, i)[None, :])
            if i % 5 == 4:
                got = await c.read("/own/t%d" % t)  # sees all of its own appends
                assert got.shape == (i + 1, WIDTH)
                np.testing.assert_array_equal(got[-1], _row(t, i))
        assert shapes == [(i + 1, WIDTH) for i in range(APPENDS)]
        return await c.read("/own/t%d" % t)

    async def body(c):
        outs = await asyncio.gather(*(worker(c, t) for t in range(TASKS)))
        return outs, await c.read("/shared")

    outs, shared = session(server, body)
    for t, out in enumerate(outs):
        np.testing.assert_array_equal(out, np.stack([_row(t, i) for i in range(APPENDS)]))
    assert shared.shape == (TASKS * APPENDS, WIDTH)
    # every row arrived exactly once, and each task's rows in its own order
    keys = shared[:, 0].tolist()
    assert sorted(keys) == sorted(t * 1000 + i for t in range(TASKS) for i in range(APPENDS))
    for t in range(TASKS):
        mine = [k for k in keys if k // 1000 == t]
        assert mine == [t * 1000 + i for i in range(APPENDS)]
    server.stop()
    with h5open(server.file) as f:
        assert f["shared"].shape == (TASKS * APPENDS, WIDTH)
        assert len(f["own"]) == TASKS


def test_many_clients_concurrently(server):
    clients, per = 8, 6

    async def one_client(n):
        async with HDF5Client(server.host, server.port, timeout=IO_TIMEOUT) as c:
            async def worker(t):
                for i in range(10):
                    await c.append("/all", np.array([n * 10000 + t * 100 + i]))
                await c.write("/c%d/t%d" % (n, t), np.arange(t + 1))
                return await c.read("/c%d/t%d" % (n, t))

            return await asyncio.gather(*(worker(t) for t in range(per)))

    async def body():
        return await asyncio.gather(*(one_client(n) for n in range(clients)))

    results = run(body())
    for n in range(clients):
        for t in range(per):
            np.testing.assert_array_equal(results[n][t], np.arange(t + 1))
    server.stop()
    with h5open(server.file) as f:
        vals = f["all"][()].tolist()
        assert sorted(vals) == sorted(n * 10000 + t * 100 + i
                                      for n in range(clients) for t in range(per) for i in range(10))
        for n in range(clients):
            for t in range(per):
                seq = [v for v in vals if v // 100 == n * 100 + t]
                assert seq == sorted(seq)  # one task's appends stay in order


def test_pipelined_write_then_read_is_ordered(server):
    """Calls issued without awaiting in between are applied in issue order."""
    async def body(c):
        results = await asyncio.gather(
            c.write("/x", np.arange(3)),
            c.read("/x"),
            c.write("/x", np.arange(5)),
            c.read("/x"),
            c.append("/x", np.array([5])),
            c.read("/x"),
            c.delete("/x"),
            c.read("/x"),
            return_exceptions=True,
        )
        return results

    r = session(server, body)
    assert r[0] == (3,)
    np.testing.assert_array_equal(r[1], np.arange(3))
    assert r[2] == (5,)
    np.testing.assert_array_equal(r[3], np.arange(5))
    assert r[4] == (6,)
    np.testing.assert_array_equal(r[5], np.arange(6))
    assert r[6] is None
    assert isinstance(r[7], h5a.NotFoundError)


def test_errors_do_not_disturb_other_pipelined_calls(server):
    async def body(c):
        calls = []
        for i in range(200):
            if i % 3 == 0:
                calls.append(c.read("/missing%d" % i))
            elif i % 3 == 1:
                calls.append(c.write("/ok%d" % i, i))
            else:
                calls.append(c.read("relative"))
        return await asyncio.gather(*calls, return_exceptions=True)

    r = session(server, body)
    for i, x in enumerate(r):
        if i % 3 == 0:
            assert isinstance(x, h5a.NotFoundError)
        elif i % 3 == 1:
            assert x == ()
        else:
            assert isinstance(x, h5a.BadPathError)


def test_large_arrays_pipelined(server):
    big = [np.random.default_rng(i).random((256, 1024)) for i in range(6)]  # 2 MiB each

    async def body(c):
        await asyncio.gather(*(c.write("/big%d" % i, a) for i, a in enumerate(big)))
        return await asyncio.gather(*(c.read("/big%d" % i) for i in range(len(big))))

    outs = session(server, body)
    for a, b in zip(big, outs):
        np.testing.assert_array_equal(a, b)


def test_one_client_many_connections_cycle(server):
    async def body():
        for i in range(20):
            async with HDF5Client(server.host, server.port, timeout=IO_TIMEOUT) as c:
                await c.append("/cycle", np.array([i]))
        async with HDF5Client(server.host, server.port, timeout=IO_TIMEOUT) as c:
            return await c.read("/cycle")

    out = run(body())
    assert out.tolist() == list(range(20))


def test_connection_drop_fails_pending_calls(start_server):
    srv = start_server()

    async def body():
        c = HDF5Client(srv.host, srv.port, timeout=IO_TIMEOUT)
        await c.connect()
        await c.ping()
        srv.kill()  # the server dies under the client
        results = await asyncio.gather(*(c.ping() for _ in range(10)), return_exceptions=True)
        await c.close()
        return results

    results = run(body())
    assert all(isinstance(r, h5a.ConnectionClosedError) for r in results), results
