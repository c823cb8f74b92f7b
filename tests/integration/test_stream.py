"""Streamed reads: a read of 8 MiB or more of a whole dataset leaves with
its header at once and its data as the storage thread reads it, slab by
slab (src/server/conn_stream.c, engine_slice.c). What must hold: the bytes
are exact whatever the layout; replies pipelined
behind a streamed one come after it, in order; a client that goes away in
the middle harms nobody; and a read that fails half way never hands the
client partial data -- its connection is closed instead. The server's
debug log says which replies were streamed, so each test knows the path
it meant to test was taken. Plaintext connections only: over TLS a reply
leaves whole (docs/design.md)."""

import socket
import ssl
import struct

import h5py
import msgpack
import numpy as np
import pytest

import h5a_util
from h5a_util import RawConn, assert_ok
from test_auth_tls import _make_ca_and_cert

MiB = 1 << 20
STREAMED = "(streamed: data follows as it is read)"


def pk(obj):
    return msgpack.packb(obj, use_bin_type=True)


def frame(obj):
    p = pk(obj)
    return struct.pack(">I", len(p)) + p


def wire(a):
    return {"nd": True, "type": a.dtype.str, "kind": "", "shape": list(a.shape),
            "data": a.tobytes()}


def decoded(reply):
    """The msgpack-numpy array of an ok reply (its keys and type are bin)."""
    r = {k.decode() if isinstance(k, bytes) else k: v for k, v in assert_ok(reply).items()}
    t = r["type"].decode() if isinstance(r["type"], bytes) else r["type"]
    return np.frombuffer(r["data"], dtype=t).reshape(r["shape"])


def recv_exact(sock, n):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError("closed after %d of %d bytes" % (got, n))
        got += k
    return bytes(buf)


def recv_reply(sock):
    n = struct.unpack(">I", recv_exact(sock, 4))[0]
    return msgpack.unpackb(recv_exact(sock, n), raw=False)


def streamed_count(srv):
    return srv.stderr().count(STREAMED)


def test_layouts_read_back_exact(start_server):
    """1-D, 2-D contiguous, and chunked with chunk rows that do not divide
    a slab (and a last chunk row cut short): every byte as written, and
    each read was streamed."""
    srv = start_server(server_opts={"debug": "true"})
    rng = np.random.default_rng(7)
    one = rng.standard_normal(3 * MiB // 2)  # 12 MiB of f8
    two = rng.integers(0, 1 << 30, size=(5001, 700), dtype="<i4")  # ~13.4 MiB
    chunked = rng.standard_normal((6666, 513)).astype("<f4")  # ~13 MiB, chunks of 97 rows
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "write", "path": "/one", "data": wire(one)}))
        assert_ok(c.call({"id": 2, "op": "write", "path": "/two", "data": wire(two)}))
        assert_ok(c.call({"id": 3, "op": "create_dataset", "path": "/chunked",
                          "shape": list(chunked.shape), "dtype": "<f4",
                          "chunks": [97, 513]}))
        assert_ok(c.call({"id": 4, "op": "write_slice", "path": "/chunked", "selection": ["..."],
                          "data": wire(chunked)}))
        before = streamed_count(srv)
        assert np.array_equal(decoded(c.call({"id": 5, "op": "read", "path": "/one"})), one)
        assert np.array_equal(decoded(c.call({"id": 6, "op": "read", "path": "/two"})), two)
        assert np.array_equal(decoded(c.call({"id": 7, "op": "read", "path": "/chunked"})),
                              chunked)
        h5a_util.wait_until(lambda: streamed_count(srv) - before == 3)
    srv.stop()
    with h5py.File(srv.file, "r") as f:  # and the file agrees (the oracle)
        assert np.array_equal(f["one"][()], one)
        assert np.array_equal(f["chunked"][()], chunked)


def test_small_reads_are_not_streamed(start_server):
    srv = start_server(server_opts={"debug": "true"})
    a = np.arange(MiB // 8, dtype="<f8")  # 1 MiB
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "write", "path": "/small", "data": wire(a)}))
        assert np.array_equal(decoded(c.call({"id": 2, "op": "read", "path": "/small"})), a)
        assert np.array_equal(
            decoded(c.call({"id": 3, "op": "read", "path": "/small",
                            "selection": [[1, 5, None]]})), a[1:5])
    srv.stop()
    assert streamed_count(srv) == 0


def test_replies_behind_a_streamed_one_keep_their_order(start_server):
    """Streamed reads, pings, small reads and a write pipelined in one send:
    every reply in request order, each big one exact."""
    srv = start_server(server_opts={"debug": "true"})
    big = np.arange(2 * MiB, dtype="<f8")  # 16 MiB
    small = np.arange(10, dtype="<i8")
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 0, "op": "write", "path": "/big", "data": wire(big)}))
        assert_ok(c.call({"id": 0, "op": "write", "path": "/small", "data": wire(small)}))
    reqs = []
    for i in range(1, 31):
        k = i % 5
        if k == 0:
            reqs.append({"id": i, "op": "read", "path": "/big"})
        elif k == 1:
            reqs.append({"id": i, "op": "ping"})
        elif k == 2:
            reqs.append({"id": i, "op": "read", "path": "/small"})
        elif k == 3:
            reqs.append({"id": i, "op": "append", "path": "/log", "data": [float(i)]})
        else:
            reqs.append({"id": i, "op": "exists", "path": "/big"})
    s = socket.create_connection(srv.address, timeout=h5a_util.IO_TIMEOUT)
    s.sendall(b"".join(frame(r) for r in reqs))
    for r in reqs:
        rep = recv_reply(s)
        assert rep["id"] == r["id"], (rep["id"], r["id"])
        if r["op"] == "read":
            want = big if r["path"] == "/big" else small
            assert np.array_equal(decoded(rep), want)
        else:
            assert_ok(rep)
    s.close()
    srv.stop()
    assert streamed_count(srv) >= 1


def test_clients_leaving_mid_stream_harm_nobody(start_server):
    """Clients that send a large read and reset the connection after a few
    bytes of the reply, or at once: the server keeps serving others exactly
    and exits clean (the sanitizer build checks no reply was freed while
    the storage thread still filled it)."""
    srv = start_server(server_opts={"debug": "true"})
    big = np.arange(3 * MiB, dtype="<f8")  # 24 MiB
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "write", "path": "/big", "data": wire(big)}))
    for i in range(12):
        s = socket.create_connection(srv.address, timeout=h5a_util.IO_TIMEOUT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(frame({"id": i, "op": "read", "path": "/big"}))
        if i % 3:
            recv_exact(s, 1 + 1000 * i)  # some of the reply, then gone
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        with RawConn(srv) as c:  # another client, at once, is served exactly
            assert np.array_equal(decoded(c.call({"id": 99, "op": "read", "path": "/big"})),
                                  big)
    srv.stop()
    assert streamed_count(srv) >= 12


def _corrupt_last_chunk(path):
    """A gzip'd dataset whose last chunk's bytes are garbage: HDF5 can read
    every chunk but that one."""
    with h5py.File(path, "w") as f:
        d = f.create_dataset("bad", data=np.arange(4 * MiB // 8 * 4, dtype="<f8").reshape(-1, 64),
                             chunks=(256, 64), compression="gzip")
        n = d.id.get_num_chunks()
        info = d.id.get_chunk_info(n - 1)
        offset, size = info.byte_offset, info.size
        f.create_dataset("good", data=np.arange(10, dtype="<i8"))
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\x55" * size)


def test_a_read_that_fails_half_way_closes_instead_of_lying(start_server):
    """The failing slab comes after the header and earlier slabs were sent:
    the client gets the connection closed before the frame is whole, never
    a frame with wrong data; the server logs why and serves on."""
    srv = start_server(server_opts={"debug": "true"}, precreate=_corrupt_last_chunk)
    s = socket.create_connection(srv.address, timeout=h5a_util.IO_TIMEOUT)
    s.sendall(frame({"id": 1, "op": "read", "path": "/bad"}))
    n = struct.unpack(">I", recv_exact(s, 4))[0]
    assert n > 16 * MiB  # the whole reply's length was promised ...
    with pytest.raises(ConnectionError):
        recv_exact(s, n)  # ... and not delivered
    s.close()
    with RawConn(srv) as c:
        assert decoded(c.call({"id": 2, "op": "read", "path": "/good"})).tolist() == list(range(10))
    log = srv.stderr()
    assert "cannot read rows" in log and "'/bad'" in log, log[-2000:]
    assert "the file could not be read while a reply was being sent" in log
    srv.stop()


def test_tls_large_reads_leave_whole_exact_and_in_order(start_server, tmp_path):
    """Over TLS large replies are not streamed (docs/design.md says why):
    still exact, in order, and a client leaving half way harms nobody."""
    ca, cert, key = _make_ca_and_cert(tmp_path)
    srv = start_server(server_opts={"debug": "true", "tls_cert_file": cert, "tls_key_file": key})
    ctx = ssl.create_default_context(cafile=ca)
    big = np.arange(2 * MiB, dtype="<f8") * 0.5  # 16 MiB
    raw = socket.create_connection(srv.address, timeout=h5a_util.IO_TIMEOUT)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(frame({"id": 1, "op": "write", "path": "/big", "data": wire(big)}))
    assert_ok(recv_reply(s))
    reqs = [{"id": i, "op": "read" if i % 2 else "ping", "path": "/big"} for i in range(2, 12)]
    s.sendall(b"".join(frame(r) for r in reqs))
    for r in reqs:
        rep = recv_reply(s)
        assert rep["id"] == r["id"]
        if r["op"] == "read":
            assert np.array_equal(decoded(rep), big)
    s.sendall(frame({"id": 50, "op": "read", "path": "/big"}))
    recv_exact(s, 100000)
    s.close()
    raw2 = socket.create_connection(srv.address, timeout=h5a_util.IO_TIMEOUT)
    s2 = ctx.wrap_socket(raw2, server_hostname="127.0.0.1")
    s2.sendall(frame({"id": 60, "op": "read", "path": "/big"}))
    assert np.array_equal(decoded(recv_reply(s2)), big)
    s2.close()
    srv.stop()
    log = srv.stderr()
    assert log.count("op=read path=/big") >= 6 and streamed_count(srv) == 0


def test_exactly_once_reads_stream_too(start_server):
    """A read carrying client_id/seq streams (the exactly-once table keeps
    changes only), and the changes around it keep their exactly-once
    answers."""
    srv = start_server(server_opts={"debug": "true"})
    big = np.arange(MiB + 5, dtype="<f8")  # just over 8 MiB
    cid = "stream-test"
    with RawConn(srv) as c:
        w = {"id": 1, "op": "write", "path": "/big", "data": wire(big), "client_id": cid, "seq": 1}
        assert_ok(c.call(w))
        before = streamed_count(srv)
        r = c.call({"id": 2, "op": "read", "path": "/big", "client_id": cid, "seq": 2})
        assert np.array_equal(decoded(r), big)
        h5a_util.wait_until(lambda: streamed_count(srv) - before == 1)
        a = {"id": 3, "op": "append", "path": "/log", "data": [1.0], "client_id": cid, "seq": 3}
        first = assert_ok(c.call(a))
        assert assert_ok(c.call(dict(a, id=4))) == first  # a resend: answered, not applied
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        assert f["log"].shape == (1,)
