"""A client made of nothing but msgpack + msgpack_numpy (no hdf5_async)
can talk to the server: requests packed with default=msgpack_numpy.encode,
replies unpacked with object_hook=msgpack_numpy.decode."""

import socket
import struct

import msgpack
import msgpack_numpy
import numpy as np
import pytest

from h5a_util import IO_TIMEOUT


class MNClient:
    def __init__(self, srv):
        self.sock = socket.create_connection(srv.address, timeout=IO_TIMEOUT)
        self.unpacker = msgpack.Unpacker(object_hook=msgpack_numpy.decode, raw=False)
        self.next_id = 0

    def close(self):
        self.sock.close()

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "server closed the connection"
            buf += chunk
        return buf

    def send(self, op, **kw):
        self.next_id += 1
        body = msgpack.packb(dict(id=self.next_id, op=op, **kw), default=msgpack_numpy.encode, use_bin_type=True)
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        return self.next_id

    def recv(self):
        (n,) = struct.unpack(">I", self._recv_exact(4))
        return msgpack.unpackb(self._recv_exact(n), object_hook=msgpack_numpy.decode, raw=False)

    def call(self, op, **kw):
        rid = self.send(op, **kw)
        reply = self.recv()
        assert reply["id"] == rid
        return reply


VALUES = [
    np.arange(10.0),
    np.arange(12, dtype=">i4").reshape(3, 4),
    np.array([True, False]),
    np.array([1 + 2j, 3 - 4j], dtype="c8"),
    np.array([b"ab", b"cde"]),
    np.linspace(0, 1, 5, dtype="f2"),
    np.zeros(3, [("a", "<i4"), ("b", "<f8", (2,)), ("c", [("x", "u1")])]),
    np.arange(24, dtype="u2").reshape(2, 3, 4),
]


@pytest.fixture
def mn(server):
    c = MNClient(server)
    yield c
    c.close()


@pytest.mark.parametrize("value", VALUES, ids=lambda v: "%s%s" % (v.dtype.str, v.shape))
def test_arrays_round_trip(mn, value):
    r = mn.call("write", path="/v", data=value)
    assert r == {"id": r["id"], "ok": True, "result": {"shape": list(value.shape)}}
    r = mn.call("read", path="/v")
    assert r["ok"] is True
    got = r["result"]
    assert isinstance(got, np.ndarray)
    assert got.dtype == value.dtype and got.shape == value.shape
    assert got.tobytes() == value.tobytes()


def test_scalars_and_plain_values(mn):
    for value in (np.float32(1.5), np.int16(-3), np.uint64(2**64 - 1), np.complex128(1 - 2j), np.bool_(True)):
        mn.call("write", path="/s", data=value)
        got = mn.call("read", path="/s")["result"]
        assert isinstance(got, np.generic) and got.dtype == value.dtype and got == value
    mn.call("write", path="/p", data=1 + 2j)  # msgpack_numpy's own complex form
    got = mn.call("read", path="/p")["result"]
    assert got.dtype == np.complex128 and got == 1 + 2j
    mn.call("write", path="/i", data=5)
    got = mn.call("read", path="/i")["result"]
    assert got.dtype == np.int64 and got == 5
    mn.call("write", path="/f", data=0.25)
    assert mn.call("read", path="/f")["result"] == 0.25
    mn.call("write", path="/str", data="héllo")
    assert mn.call("read", path="/str")["result"] == "héllo"
    mn.call("write", path="/bin", data=b"bytes")
    assert mn.call("read", path="/bin")["result"] == b"bytes"
    mn.call("write", path="/strs", data=["a", "b"])
    assert mn.call("read", path="/strs")["result"] == ["a", "b"]
    mn.call("write", path="/nested", data=[[1, 2], [3, 4]])
    got = mn.call("read", path="/nested")["result"]
    assert got.dtype == np.int64 and got.tolist() == [[1, 2], [3, 4]]


def test_append_insert_errors(mn):
    r = mn.call("append", path="/a", data=np.zeros((2, 3)))
    assert r["result"] == {"shape": [2, 3]}
    r = mn.call("insert", path="/a", index=1, data=np.ones(3))
    assert r["result"] == {"shape": [3, 3]}
    got = mn.call("read", path="/a")["result"]
    assert got.tolist() == [[0, 0, 0], [1, 1, 1], [0, 0, 0]]
    r = mn.call("append", path="/a", data=np.ones(4))
    assert r["ok"] is False and r["error"]["code"] == "SHAPE_MISMATCH"
    r = mn.call("read", path="/nothing")
    assert r == {"id": r["id"], "ok": False, "error": r["error"]}
    assert r["error"]["code"] == "NOT_FOUND"


def test_pipelined_raw(mn):
    ids = [mn.send("append", path="/p", data=np.array([i])) for i in range(100)]
    replies = [mn.recv() for _ in ids]
    assert [r["id"] for r in replies] == ids
    assert [r["result"]["shape"] for r in replies] == [[i + 1] for i in range(100)]
    got = mn.call("read", path="/p")["result"]
    assert got.tolist() == list(range(100))
