"""Server limits and backpressure: max_connections, idle_timeout,
max_reply_queue + slow_client_timeout, max_nesting, max_elements (max_chunks
and max_op_bytes: test_work_limits.py), and the
validation of every limit key.

No timing assertions: a test waits for something to happen within a
generous bound (h5a_util.IO_TIMEOUT) and checks that other clients are
unaffected, never that something happened quickly or late enough."""

import re
import select
import socket
import struct
import subprocess
import time

import msgpack
import numpy as np
import pytest

import h5a_util
from h5a_util import RawConn, assert_error, assert_ok

WAIT = h5a_util.IO_TIMEOUT


def pk(obj):
    return msgpack.packb(obj, use_bin_type=True)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def ping(conn, rid=1):
    assert assert_ok(conn.call({"id": rid, "op": "ping"}), rid) == "pong"


def closed_by_peer(conn):
    """Read until the server ends the connection; True on EOF or reset.
    Fails (timeout) if it stays open for WAIT seconds."""
    try:
        return conn.is_closed_by_peer()
    except socket.timeout:
        raise AssertionError("connection still open after %ss" % WAIT)


def readable(sock, timeout):
    return bool(select.select([sock], [], [], timeout)[0])


def wait_for_stderr(srv, pattern, timeout=WAIT, while_waiting=None):
    """Poll the server's stderr until `pattern` (a regex) appears. Calls
    while_waiting() between polls (to keep other clients busy)."""
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while True:
        m = rx.search(srv.stderr())
        if m:
            return m
        if time.monotonic() > deadline:
            raise AssertionError("%r not in server stderr after %ss:\n%s"
                                 % (pattern, timeout, srv.stderr()[-4000:]))
        if while_waiting:
            while_waiting()
        time.sleep(0.05)


# --------------------------------------------------------------------------
# max_connections
# --------------------------------------------------------------------------


def test_max_connections_refuses_the_next_one_with_a_reply(start_server):
    srv = start_server(server_opts={"max_connections": 3})
    conns = [RawConn(srv) for _ in range(3)]
    try:
        for i, c in enumerate(conns):
            ping(c, i)  # each is registered before the next connects
        # the 4th: one error reply, id nil, then EOF (not a reset that
        # could lose the reply)
        with RawConn(srv) as extra:
            r = extra.recv()
            assert_error(r, "TOO_LARGE", None)
            assert "max_connections" in r["error"]["message"], r
            assert "3 connections" in r["error"]["message"], r
            assert closed_by_peer(extra)
        # one that sends a request before reading still gets the reply
        with RawConn(srv) as extra:
            extra.send({"id": 9, "op": "ping"})
            assert_error(extra.recv(), "TOO_LARGE", None)
            assert closed_by_peer(extra)
        # the first three are unaffected
        for i, c in enumerate(conns):
            ping(c, 10 + i)
        # a freed slot is reused (the server notices the close soon, not at
        # once: retry within a generous bound)
        conns.pop().close()
        deadline = time.monotonic() + WAIT
        while True:
            with RawConn(srv) as c:
                r = c.call({"id": 20, "op": "ping"})
                if r["ok"]:
                    ping(c, 21)
                    break
                assert_error(r, "TOO_LARGE", None)
            assert time.monotonic() < deadline, "slot never freed"
            time.sleep(0.05)
        for c in conns:
            ping(c, 30)
    finally:
        for c in conns:
            c.close()
    srv.stop()
    assert "refused" in srv.stderr() and "max_connections = 3" in srv.stderr()


def test_max_connections_python_client_sees_too_large(start_server):
    from hdf5_async import HDF5Client
    from hdf5_async.errors import HDF5AsyncError

    srv = start_server(server_opts={"max_connections": 1})
    with RawConn(srv) as first:
        ping(first)

        async def go():
            async with HDF5Client(srv.host, srv.port, timeout=WAIT) as c:
                await c.ping()

        with pytest.raises(HDF5AsyncError) as ei:
            h5a_util.run(go())
        # the refusal; or, when it arrived before the ping was sent (no call
        # to pin it on), the closed connection
        assert ei.value.code in ("TOO_LARGE", "CONNECTION_CLOSED"), ei.value
        ping(first, 2)
    srv.stop()


# --------------------------------------------------------------------------
# idle_timeout
# --------------------------------------------------------------------------


# idle_timeout 3, not 1: a CI machine under load may stall this process for
# a second, and the connections that must stay alive would then look idle.


def test_idle_connection_closed_active_one_kept(start_server):
    srv = start_server(server_opts={"idle_timeout": 3})
    idle = RawConn(srv)  # never sends anything
    after = RawConn(srv)  # idle after one answered request
    active = RawConn(srv)
    try:
        ping(after)
        ping(active)
        rid = 100
        gone = set()
        deadline = time.monotonic() + WAIT
        while len(gone) < 2:
            assert time.monotonic() < deadline, "idle connections not closed after %ss" % WAIT
            for name, c in (("idle", idle), ("after", after)):
                if name not in gone and readable(c.sock, 0.05):
                    assert closed_by_peer(c)
                    gone.add(name)
            rid += 1
            ping(active, rid)  # keeps it busy far more often than 3 s
        ping(active, rid + 1)
    finally:
        for c in (idle, after, active):
            c.close()
    srv.stop()


def test_stalled_half_frame_closed_moving_one_kept(start_server):
    """A frame whose sender stopped half-way is idle like any other
    connection; one still arriving, however slowly, is not cut."""
    srv = start_server(server_opts={"idle_timeout": 3})
    data = np.arange(40_000, dtype="<f8")  # 320 KB: a frame of its own buffer
    payload = pk({"id": 7, "op": "write", "path": "/slow", "data": {
        "nd": True, "type": "<f8", "kind": "", "shape": [len(data)], "data": data.tobytes()}})
    raw = frame(payload)
    stalled = RawConn(srv)
    moving = RawConn(srv)
    try:
        stalled.send_raw(raw[: len(raw) // 2])
        # the moving one sends a piece at least every 0.1 s for several
        # idle_timeouts, while the stalled one is cut
        pieces = [raw[i:i + 8192] for i in range(0, len(raw), 8192)]
        stalled_gone = False
        deadline = time.monotonic() + WAIT
        for p in pieces:
            moving.send_raw(p)
            if stalled_gone:
                time.sleep(0.1)
            elif readable(stalled.sock, 0.1):
                assert closed_by_peer(stalled)
                stalled_gone = True
        assert assert_ok(moving.recv(), 7) == {"shape": [len(data)]}
        if not stalled_gone:
            assert readable(stalled.sock, max(0.0, deadline - time.monotonic()))
            assert closed_by_peer(stalled)
        r = moving.call({"id": 8, "op": "read", "path": "/slow"})
        assert assert_ok(r, 8)[b"data"] == data.tobytes()
    finally:
        stalled.close()
        moving.close()
    srv.stop()


# --------------------------------------------------------------------------
# max_reply_queue and slow_client_timeout
# --------------------------------------------------------------------------


def test_client_not_reading_is_paused_then_dropped(start_server):
    srv = start_server(server_opts={
        "max_reply_queue": "4M", "slow_client_timeout": 1, "debug": "true"})
    big = np.arange(1 << 17, dtype="<f8")  # 1 MiB
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "write", "path": "/big", "data": {
            "nd": True, "type": "<f8", "kind": "", "shape": [len(big)], "data": big.tobytes()}}))
    n = 64  # 64 MiB of replies: far more than the socket buffers hold
    slow = RawConn(srv)
    other = RawConn(srv)
    try:
        port = slow.sock.getsockname()[1]
        slow.send_raw(b"".join(frame(pk({"id": i, "op": "read", "path": "/big"}))
                               for i in range(n)))
        rid = [1000]

        def other_works():
            rid[0] += 1
            r = other.call({"id": rid[0], "op": "read", "path": "/big"})
            assert assert_ok(r, rid[0])[b"data"] == big.tobytes()

        m = wait_for_stderr(srv, r"conn (\d+) 127\.0\.0\.1:%d paused" % port,
                            while_waiting=other_works)
        serial = m.group(1)
        wait_for_stderr(srv, r"dropped conn %s 127\.0\.0\.1:%d: \d+ bytes of replies unread"
                        % (serial, port), while_waiting=other_works)
        # what the kernel had buffered arrives, then the end: not all replies
        got = 0
        try:
            while True:
                slow.recv_payload()
                got += 1
        except (EOFError, ConnectionResetError):
            pass
        assert got < n, got
        other_works()
    finally:
        slow.close()
        other.close()
    srv.stop()


def test_reading_client_is_paused_and_resumed(start_server):
    """Over max_reply_queue but reading: paused and resumed, every reply
    arrives, nothing is dropped. (slow_client_timeout is far above the
    time this takes, so a noisy machine cannot make it drop the client.)"""
    srv = start_server(server_opts={"max_reply_queue": "1M", "slow_client_timeout": 10})
    big = np.arange(1 << 16, dtype="<f8")  # 512 KiB
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "write", "path": "/big", "data": {
            "nd": True, "type": "<f8", "kind": "", "shape": [len(big)], "data": big.tobytes()}}))
        n = 40
        c.send_raw(b"".join(frame(pk({"id": i, "op": "read", "path": "/big"}))
                            for i in range(n)))
        for i in range(n):
            assert assert_ok(c.recv(), i)[b"data"] == big.tobytes()
        ping(c, 99)
    srv.stop()
    assert "dropped" not in srv.stderr()


def test_pending_request_limits_still_answer_everything(start_server):
    """Tiny pending limits pause reading often; every request is answered,
    in order."""
    srv = start_server(server_opts={"max_pending_requests": 2, "max_pending_bytes": "1K"})
    with RawConn(srv) as c:
        n = 2000
        c.send_raw(b"".join(frame(pk({"id": i, "op": "append", "path": "/log", "data": [i]}))
                            for i in range(n)))
        for i in range(n):
            assert assert_ok(c.recv(), i) == {"shape": [i + 1]}
    srv.stop()


# --------------------------------------------------------------------------
# max_nesting and max_elements
# --------------------------------------------------------------------------


def deep_write(depth):
    """A write whose data is `depth` nested one-element arrays: the
    request nests depth + 1 containers (its map counts). Built by hand:
    msgpack-python will not pack more than 511 levels."""
    head = b"\x84" + b"".join(pk(x) for x in ("id", 5, "op", "write", "path", "/deep", "data"))
    return head + b"\x91" * depth + b"\x01"


def test_max_nesting(start_server):
    srv = start_server(server_opts={"max_nesting": 4})
    with RawConn(srv) as c:
        c.send_frame(deep_write(3))  # 4 levels: allowed
        assert assert_ok(c.recv(), 5) == {"shape": [1, 1, 1]}
        c.send_frame(deep_write(4))  # 5 levels
        r = c.recv()
        assert_error(r, "PROTOCOL_ERROR", None)
        assert "nesting deeper than 4" in r["error"]["message"], r
        ping(c)  # the connection stays
    srv.stop()


def test_max_nesting_1000(start_server):
    srv = start_server(server_opts={"max_nesting": 1000})
    with RawConn(srv) as c:
        c.send_frame(deep_write(999))  # decodes; rank 999 is over the array limit
        assert_error(c.recv(), "TOO_LARGE", 5)
        c.send_frame(deep_write(1000))
        assert_error(c.recv(), "PROTOCOL_ERROR", None)
        ping(c)
    srv.stop()


def test_max_elements(start_server):
    # {"id","op","path","data": [k ints]} is 1 + 4 keys + 3 values + 1 list + k values
    srv = start_server(server_opts={"max_elements": 100})
    with RawConn(srv) as c:
        ok = {"id": 1, "op": "write", "path": "/e", "data": list(range(91))}
        assert assert_ok(c.call(ok), 1) == {"shape": [91]}
        r = c.call({"id": 2, "op": "write", "path": "/e", "data": list(range(92))})
        assert_error(r, "TOO_LARGE", None)
        assert "more than 100" in r["error"]["message"], r
        ping(c)
    srv.stop()


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

LIMIT_KEYS_OK = {
    "max_connections": 7,
    "idle_timeout": 3600,
    "max_pending_bytes": "128M",
    "max_pending_requests": 1000,
    "max_reply_queue": "32M",
    "slow_client_timeout": 30,
    "max_nesting": 100,
    "max_elements": 1000000,
    "max_chunks": 5000,
    "max_op_bytes": "2M",
}


def test_limit_keys_accepted_and_logged(start_server):
    srv = start_server(server_opts=dict(LIMIT_KEYS_OK, debug="true"))
    with RawConn(srv) as c:
        ping(c)
    srv.stop()
    err = srv.stderr()
    for k, v in [("max_connections", 7), ("idle_timeout", 3600),
                 ("max_pending_bytes", 128 << 20), ("max_pending_requests", 1000),
                 ("max_reply_queue", 32 << 20), ("slow_client_timeout", 30),
                 ("max_nesting", 100), ("max_elements", 1000000),
                 ("max_chunks", 5000), ("max_op_bytes", 2 << 20)]:
        assert "%s=%d" % (k, v) in err, (k, err[:2000])


def test_zero_timeouts_accepted(start_server):
    srv = start_server(server_opts={"idle_timeout": 0, "slow_client_timeout": 0})
    with RawConn(srv) as c:
        ping(c)
    srv.stop()


@pytest.mark.parametrize(
    "key,value",
    [
        ("max_connections", "0"),
        ("max_connections", "-1"),
        ("max_connections", "16777217"),
        ("max_connections", "10K"),
        ("max_connections", "many"),
        ("idle_timeout", "-1"),
        ("idle_timeout", "1.5"),
        ("idle_timeout", "10s"),
        ("idle_timeout", "31536001"),
        ("max_pending_bytes", "0"),
        ("max_pending_bytes", "100"),
        ("max_pending_bytes", "12X"),
        ("max_pending_requests", "0"),
        ("max_pending_requests", "1e3"),
        ("max_pending_requests", "4294967296"),
        ("max_reply_queue", "0"),
        ("max_reply_queue", "lots"),
        ("slow_client_timeout", "-5"),
        ("slow_client_timeout", "soon"),
        ("max_nesting", "0"),
        ("max_nesting", "1001"),
        ("max_elements", "0"),
        ("max_elements", "4294967296"),
        ("max_elements", "4M"),
        ("max_chunks", "0"),
        ("max_chunks", "4294967296"),
        ("max_chunks", "lots"),
        ("max_op_bytes", "100"),
        ("max_op_bytes", "1X"),
    ],
)
def test_bad_limit_value_exits_naming_file_line_key(tmp_path, key, value):
    cfg = tmp_path / "limits.ini"
    cfg.write_text("[server]\nhost = 127.0.0.1\nport = 0\n%s = %s\nhdf5_file_path = data.h5\n"
                   % (key, value))
    proc = subprocess.run(
        [h5a_util.server_binary(), "--config", str(cfg)],
        cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=h5a_util.START_TIMEOUT)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "listening on" not in proc.stdout
    for marker in h5a_util.SANITIZER_MARKERS:
        assert marker not in proc.stderr, proc.stderr
    assert "limits.ini:4:" in proc.stderr, proc.stderr
    assert key in proc.stderr and value in proc.stderr, proc.stderr
    assert not (tmp_path / "data.h5").exists()
