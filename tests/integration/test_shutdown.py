"""SIGTERM / SIGINT: requests already received are answered, the file is
flushed and closed, the exit code is 0."""

import asyncio
import signal
import socket
import struct

import h5py
import msgpack
import numpy as np
import pytest

from h5a_util import IO_TIMEOUT, RawConn, assert_ok, run

import hdf5_async as h5a
from hdf5_async import HDF5Client


def pk(obj):
    return msgpack.packb(obj, use_bin_type=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_idle_shutdown(start_server, sig):
    srv = start_server()
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "write", "path": "/a", "data": [1, 2, 3]}), 1)
    assert srv.stop(sig) == 0
    with h5py.File(srv.file, "r") as f:
        assert f["a"][()].tolist() == [1, 2, 3]
    with pytest.raises(OSError):
        socket.create_connection(srv.address, timeout=IO_TIMEOUT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_with_requests_in_flight_raw(start_server, sig):
    """Many requests sent at once, signal after the first reply: every reply
    that comes is in order, the ones applied form a prefix (ok ... ok, then
    only SHUTTING_DOWN), then the connection closes; the file holds exactly
    the acknowledged appends."""
    srv = start_server()
    n = 400
    with RawConn(srv) as conn:
        conn.send_raw(b"".join(
            struct.pack(">I", len(p)) + p
            for p in (pk({"id": i, "op": "append", "path": "/log", "data": [[i, i]]}) for i in range(n))
        ))
        first = conn.recv()
        assert_ok(first, 0)
        srv.signal(sig)
        replies = [first]
        while True:
            try:
                replies.append(conn.recv())
            except (EOFError, ConnectionResetError):
                break
        ids = [r["id"] for r in replies]
        assert ids == list(range(len(ids))), "replies out of order or missing in the middle"
        oks = [r for r in replies if r["ok"]]
        rest = replies[len(oks):]
        assert replies[: len(oks)] == oks, "an ok after a refusal"
        for r in rest:
            assert r["error"]["code"] == "SHUTTING_DOWN", r
        for i, r in enumerate(oks):
            assert r["result"] == {"shape": [i + 1, 2]}
    assert srv.stop() == 0
    with h5py.File(srv.file, "r") as f:
        log = f["log"][()]
    assert log.shape == (len(oks), 2)
    np.testing.assert_array_equal(log[:, 0], np.arange(len(oks)))


def test_shutdown_with_client_tasks_in_flight(start_server):
    srv = start_server()
    outcomes = []

    async def worker(c, t, started):
        for i in range(100):
            try:
                shape = await c.append("/t%d" % t, np.array([i]))
            except (h5a.ShuttingDownError, h5a.ConnectionClosedError) as e:
                outcomes.append((t, i, type(e)))
                return
            outcomes.append((t, i, shape))
            started.set()

    async def body():
        c = HDF5Client(srv.host, srv.port, timeout=IO_TIMEOUT)
        await c.connect()
        started = asyncio.Event()
        tasks = [asyncio.ensure_future(worker(c, t, started)) for t in range(20)]
        await started.wait()
        srv.signal(signal.SIGTERM)
        await asyncio.gather(*tasks)
        await c.close()

    run(body())
    assert srv.stop() == 0
    ok = {}
    for t, i, res in outcomes:
        if isinstance(res, tuple):
            assert res == (i + 1,)
            ok[t] = i + 1
    assert ok, "no append succeeded before the signal"
    with h5py.File(srv.file, "r") as f:
        for t in range(20):
            name = "t%d" % t
            mine = [o for o in outcomes if o[0] == t]
            # a refused or unanswered append must not have been applied: the
            # server answers every request it received before exiting
            if t in ok:
                assert f[name][()].tolist() == list(range(ok[t])), mine
            else:
                assert name not in f, (mine, f[name][()].tolist())


def test_new_requests_after_signal_refused_or_closed(start_server):
    """A connection opened before the signal: what it sends afterwards gets
    SHUTTING_DOWN or sees the connection close, never a hang."""
    srv = start_server()
    with RawConn(srv) as conn:
        assert_ok(conn.call({"id": 1, "op": "ping"}), 1)
        srv.signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=IO_TIMEOUT) == 0
        try:
            conn.send({"id": 2, "op": "write", "path": "/late", "data": 1})
            reply = conn.recv()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            reply = None
        if reply is not None:
            assert reply["error"]["code"] == "SHUTTING_DOWN"
    srv.returncode = srv.proc.returncode
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        assert "late" not in f


def test_shutdown_answers_applied_requests_even_with_unread_input(start_server):
    """The client keeps more requests in flight than the server has read
    (the server stops reading while its replies back up: 1 MiB reads), then
    SIGTERM. Every request the server applied must be answered before the
    connection closes: closing a socket with unread input makes the kernel
    send RST and drop replies still queued, so the server has to close
    gracefully. Checked over a few rounds (the loss depends on timing)."""
    import threading

    big = {b"nd": True, b"type": "<f8", b"kind": b"", b"shape": [131072], b"data": b"\0" * (8 * 131072)}
    rounds = []
    for _ in range(5):
        srv = start_server()
        with RawConn(srv) as conn:
            assert_ok(conn.call({"id": 0, "op": "write", "path": "/big", "data": big}), 0)
            frames = []
            for i in range(200):
                row = {b"nd": True, b"type": "<f8", b"kind": b"", b"shape": [1, 8192],
                       b"data": np.full(8192, i, "<f8").tobytes()}
                for rid, req in ((2 * i + 1, {"op": "read", "path": "/big"}),
                                 (2 * i + 2, {"op": "append", "path": "/log", "data": row})):
                    p = pk(dict(req, id=rid))
                    frames.append(struct.pack(">I", len(p)) + p)
            blob = b"".join(frames)  # 13 MB: more than the server takes in at once

            def send():
                try:
                    conn.sock.sendall(blob)
                except OSError:
                    pass  # the server closed: fine

            sender = threading.Thread(target=send)
            sender.start()
            replies = [conn.recv()]
            srv.signal(signal.SIGTERM)
            while True:
                try:
                    replies.append(conn.recv())
                except (EOFError, ConnectionResetError):
                    break
            sender.join(IO_TIMEOUT)
        assert srv.stop() == 0
        assert [r["id"] for r in replies] == list(range(1, len(replies) + 1))
        oks = [r for r in replies if r["ok"]]
        assert replies[: len(oks)] == oks, "an ok after a refusal"
        assert all(r["error"]["code"] == "SHUTTING_DOWN" for r in replies[len(oks):])
        answered = sum(1 for r in oks if r["id"] % 2 == 0)
        with h5py.File(srv.file, "r") as f:
            applied = len(f["log"]) if "log" in f else 0
        rounds.append((applied, answered))
    assert all(applied == answered for applied, answered in rounds), (
        "appends applied but never answered, (applied, answered) per round: %r" % rounds)
