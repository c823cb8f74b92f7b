"""The crash matrix: a Python client with reconnect=True appends, pipelined,
while the server is kill -9'd and restarted on the same port several times
(durability flush, then fsync), or while a proxy between them drops every
connection (the server lives on). Afterwards the dataset holds every row
exactly once, in order. Also: past reconnect_timeout the pending calls fail
with ConnectionClosedError; batches from Python (client.batch())."""

import asyncio
import socket
import threading

import h5py
import numpy as np
import pytest

import h5a_util
from h5a_util import run

ROWS = 3000
WINDOW = 64  # appends in flight at once
KILLS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Progress:
    """Rows acknowledged so far; another thread may wait for a count (it
    then kills or cuts while the window's requests are in flight)."""

    def __init__(self):
        self.n = 0
        self.cond = threading.Condition()

    def add(self):
        with self.cond:
            self.n += 1
            self.cond.notify_all()

    def wait(self, k):
        with self.cond:
            self.cond.wait_for(lambda: self.n >= k, timeout=h5a_util.IO_TIMEOUT * 4)


async def appender(port, progress, level, n=ROWS, **kw):
    """Appends rows [i, -i] in order, WINDOW in flight at any moment."""
    from hdf5_async import HDF5Client

    async with HDF5Client("127.0.0.1", port, timeout=h5a_util.IO_TIMEOUT * 4, reconnect=True,
                          reconnect_timeout=h5a_util.IO_TIMEOUT, durability=level, **kw) as c:
        sem = asyncio.Semaphore(WINDOW)

        async def one(i):
            async with sem:  # FIFO: the requests leave in order
                await c.append("/d", np.array([[i, -i]], dtype="<i8"))
            progress.add()

        await asyncio.gather(*[one(i) for i in range(n)])


def check_rows(path, n=ROWS):
    with h5py.File(path, "r") as f:
        d = f["/d"][:]
    assert d[:, 0].tolist() == list(range(n)), "rows lost, doubled or out of order"
    assert (d[:, 1] == -d[:, 0]).all()


@pytest.mark.parametrize("level", ["flush", "fsync"])
def test_kill_9_and_restart_on_the_same_port(start_server, level):
    port = free_port()
    opts = {"port": port, "durability": level}
    srv = start_server(server_opts=opts)
    workdir = srv.workdir
    servers = [srv]
    progress = Progress()

    def killer():
        for k in range(KILLS):
            progress.wait((k + 1) * ROWS // (KILLS + 2))
            servers[-1].kill()
            servers.append(start_server(workdir=workdir, server_opts=opts))

    async def go():
        t = threading.Thread(target=killer)
        t.start()
        try:
            await appender(port, progress, level)
        finally:
            await asyncio.get_running_loop().run_in_executor(None, t.join)

    run(go())
    servers[-1].stop()
    check_rows(servers[-1].file)
    assert any("recovered after a process crash" in open(s.stderr_path).read()
               for s in servers[1:])


class DroppingProxy:
    """Forwards 127.0.0.1:port to the server; drop() aborts every
    connection it carries (the server sees a lost client, the client a
    lost server)."""

    def __init__(self, target_port):
        self.target = target_port
        self.pairs = []
        self.drops = 0

    async def start(self):
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            cw.close()
            return
        self.pairs.append((cw, sw))

        async def pump(r, w):
            try:
                while True:
                    b = await r.read(65536)
                    if not b:
                        break
                    w.write(b)
                    await w.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                w.transport.abort()

        await asyncio.gather(pump(cr, sw), pump(sr, cw))

    def drop(self):
        self.drops += 1
        for cw, sw in self.pairs:
            cw.transport.abort()
            sw.transport.abort()
        self.pairs = []


def test_lost_connections_without_a_crash(server):
    progress = Progress()

    async def go():
        proxy = DroppingProxy(server.port)
        await proxy.start()
        loop = asyncio.get_running_loop()

        def dropper():
            for k in range(KILLS * 2):
                progress.wait((k + 1) * ROWS // (KILLS * 2 + 2))
                loop.call_soon_threadsafe(proxy.drop)

        t = threading.Thread(target=dropper)
        t.start()
        try:
            await appender(proxy.port, progress, "none")
        finally:
            await loop.run_in_executor(None, t.join)
        proxy.server.close()
        assert proxy.drops == KILLS * 2

    run(go())
    server.stop()
    check_rows(server.file)


def test_gives_up_after_reconnect_timeout(start_server):
    from hdf5_async import ConnectionClosedError, HDF5Client

    srv = start_server()

    async def go():
        async with HDF5Client(srv.host, srv.port, reconnect=True, reconnect_timeout=0.5,
                              timeout=h5a_util.IO_TIMEOUT) as c:
            await c.append("/d", np.zeros((1, 2)))
            srv.kill()
            with pytest.raises(ConnectionClosedError, match="not regained within"):
                await c.append("/d", np.zeros((1, 2)))

    run(go())


def test_without_reconnect_a_restart_fails_the_call(start_server):
    from hdf5_async import ConnectionClosedError, HDF5Client

    srv = start_server()

    async def go():
        async with HDF5Client(srv.host, srv.port, timeout=h5a_util.IO_TIMEOUT) as c:
            assert c.client_id is None
            await c.ping()
            srv.kill()
            with pytest.raises(ConnectionClosedError):
                for _ in range(1000):  # the loss may be noticed a call later
                    await c.ping()

    run(go())


def test_python_batch(server):
    from hdf5_async import HDF5Client, ShapeMismatchError

    async def go():
        async with HDF5Client(server.host, server.port, reconnect=True,
                              timeout=h5a_util.IO_TIMEOUT) as c:
            async with c.batch() as b:
                b.append("/x", np.ones((2, 3)))
                b.set_attr("/x", "unit", "m")
                b.create_group("/g")
                b.read("/x")
            assert len(b.results) == 4
            assert b.results[0] == {"shape": [2, 3]}
            np.testing.assert_array_equal(b.results[3], np.ones((2, 3)))
            with pytest.raises(ShapeMismatchError) as ei:
                async with c.batch() as b2:
                    b2.append("/x", np.ones((1, 3)))
                    b2.append("/x", np.ones((1, 4)))
            assert ei.value.index == 1
            assert b2.results is None
            with pytest.raises(RuntimeError):
                async with c.batch() as b3:
                    b3.append("/x", np.ones((1, 3)))
                    raise RuntimeError("nothing is sent")
            assert (await c.read("/x")).shape == (2, 3)

    run(go())
