"""Thousands of connections at once: all served, none starved, and one that
stalls halfway through a frame holds up nobody."""

import asyncio
import resource
import struct

import msgpack
import pytest

import h5a_util

N_CONN = 2000


def _raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need and hard >= need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need


def _frame(obj):
    body = msgpack.packb(obj)
    return struct.pack(">I", len(body)) + body


async def _read_reply(reader):
    (n,) = struct.unpack(">I", await reader.readexactly(4))
    return msgpack.unpackb(await reader.readexactly(n))


def test_thousands_of_connections_at_once(server):
    if not _raise_fd_limit(N_CONN + 200):
        pytest.skip("open-files limit too low for %d connections" % N_CONN)

    async def main():
        conns = []
        for _ in range(N_CONN):
            conns.append(await asyncio.open_connection(server.host, server.port))
        # one connection is stuck in the middle of a frame the whole time
        stalled_r, stalled_w = await asyncio.open_connection(server.host, server.port)
        stalled_w.write(struct.pack(">I", 1000) + b"\x85")
        await stalled_w.drain()
        # every connection appends its own row while all are open
        for i, (_, w) in enumerate(conns):
            w.write(_frame({"id": i, "op": "append", "path": "/many", "data": [i]}))
        for i, (r, _) in enumerate(conns):
            rep = await _read_reply(r)
            assert rep["id"] == i and rep["ok"] is True, rep
        # and each can still talk afterwards
        for i, (r, w) in enumerate(conns):
            w.write(_frame({"id": i, "op": "ping"}))
        for r, _ in conns:
            assert (await _read_reply(r))["result"] == "pong"
        for _, w in conns + [(stalled_r, stalled_w)]:
            w.close()

    h5a_util.run(main())
    server.stop()
    with h5a_util.h5open(server.file) as f:
        assert sorted(f["/many"][:].tolist()) == list(range(N_CONN))
