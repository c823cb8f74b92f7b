"""Limits on the work one request may cause in HDF5 (max_chunks,
max_op_bytes, the path depth): each request whose cost would follow an
extent, a chunk count or a depth the client chose is refused before HDF5 is
called, the file is left exactly as it was (h5py checks), and another
client is answered all along.

The first case is the fuzz finding that froze the server: a resize to 2^63
rows and back made HDF5 walk 2^62 chunk positions on the storage thread."""

import numpy as np
import pytest

import h5a_util
from h5a_util import RawConn, assert_error, assert_ok


def arr(a):
    a = np.ascontiguousarray(a)
    return {"nd": True, "type": a.dtype.str, "kind": "", "shape": list(a.shape), "data": a.tobytes()}


def scalar(v, t="<f8"):
    return {"nd": False, "type": t, "data": np.array(v, dtype=t).tobytes()}


class Client:
    def __init__(self, srv):
        self.conn = RawConn(srv)
        self.next_id = 0

    def call(self, op, **kw):
        self.next_id += 1
        req = {"id": self.next_id, "op": op}
        req.update(kw)
        return self.conn.call(req)

    def ok(self, op, **kw):
        return assert_ok(self.call(op, **kw))

    def err(self, code, op, **kw):
        reply = self.call(op, **kw)
        assert_error(reply, code)
        return reply["error"]["message"]

    def close(self):
        self.conn.close()


@pytest.fixture
def pair(start_server):
    """A server (with the limits given by the test) and two clients: one
    that misbehaves, one that checks it is still served."""
    made = []

    def make(**server_opts):
        srv = start_server(server_opts=server_opts or None)
        a, b = Client(srv), Client(srv)
        made.extend([a, b])
        return srv, a, b

    yield make
    for c in made:
        c.close()


def test_resize_to_a_huge_extent_is_refused_and_the_server_stays_responsive(pair):
    srv, a, b = pair()
    a.ok("create_dataset", path="/c", shape=[2, 3], dtype="<i4", maxshape=[None, 5],
         fillvalue=scalar(-1, "<i4"), compression="lzf")
    a.ok("append", path="/c", data=arr(np.zeros((1, 3), "<i4")))
    msg = a.err("OUT_OF_RANGE", "resize", path="/c", shape=[2**63, 5])
    assert "max_chunks" in msg and "'/c'" in msg
    assert a.ok("info", path="/c")["shape"] == [3, 3]
    assert a.ok("resize", path="/c", shape=1, axis=0) == {"shape": [1, 3]}
    assert b.ok("ping") == "pong"
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        assert f["c"].shape == (1, 3)
        assert f["c"].maxshape == (None, 5)


def test_max_chunks_bounds_resize_both_ways(pair):
    srv, a, b = pair(max_chunks=1000)
    a.ok("create_dataset", path="/d", shape=[10, 10], dtype="<f4", maxshape=[None, None], chunks=[10, 10])
    # 100 x 10 chunk positions: exactly the limit
    assert a.ok("resize", path="/d", shape=[1000, 100]) == {"shape": [1000, 100]}
    msg = a.err("OUT_OF_RANGE", "resize", path="/d", shape=[1001, 100])
    assert "1010 chunk positions" in msg and "max_chunks (1000)" in msg
    assert a.ok("info", path="/d")["shape"] == [1000, 100]
    # a shrink from within the limit is fine (it visits the old extent's)
    assert a.ok("resize", path="/d", shape=[10, 10]) == {"shape": [10, 10]}
    assert b.ok("ping") == "pong"
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        assert f["d"].shape == (10, 10)


def test_max_chunks_counts_a_fixed_maxshape_at_creation(pair):
    srv, a, b = pair()
    # HDF5 makes a fixed-size chunk index for all of maxshape: 2^40 entries
    # (it fails past 2^32, at the flush after the write was acknowledged)
    msg = a.err("OUT_OF_RANGE", "create_dataset", path="/fa", shape=[10], maxshape=[2**40],
                dtype="<f8", chunks=[1])
    assert "maxshape" in msg
    assert a.ok("exists", path="/fa") is False
    # the same with unlimited axis 0 is fine: the index grows with the shape
    a.ok("create_dataset", path="/ea", shape=[10], maxshape=[None], dtype="<f8", chunks=[1])
    assert b.ok("ping") == "pong"


def test_appends_stop_at_max_chunks_each_with_its_own_answer(pair):
    srv, a, b = pair(max_chunks=4)
    a.ok("create_dataset", path="/g", shape=[0, 2], dtype="<i8", maxshape=[None, 2], chunks=[1, 2])
    # pipelined, so the storage thread may take them as one group
    for i in range(6):
        a.conn.send({"id": 100 + i, "op": "append", "path": "/g", "data": arr(np.full((1, 2), i, "<i8"))})
    replies = [a.conn.recv() for _ in range(6)]
    assert [r["id"] for r in replies] == list(range(100, 106))
    for i, r in enumerate(replies[:4]):
        assert assert_ok(r) == {"shape": [i + 1, 2]}
    for r in replies[4:]:
        assert r["ok"] is False and r["error"]["code"] == "OUT_OF_RANGE", r
    # an insert is refused the same way
    a.err("OUT_OF_RANGE", "insert", path="/g", index=0, data=arr(np.zeros((1, 2), "<i8")))
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        np.testing.assert_array_equal(f["g"][:], np.repeat(np.arange(4), 2).reshape(4, 2))


def test_contiguous_datasets_are_allocated_whole_so_they_are_bounded(pair):
    srv, a, b = pair(max_op_bytes="1M")
    # 2^62 bytes of contiguous space once made the file impossible to
    # checkpoint, close or reopen (ftruncate: File too large)
    msg = a.err("TOO_LARGE", "create_dataset", path="/big", shape=[2**59], dtype="<f8", chunks=False)
    assert "contiguous" in msg and "max_op_bytes" in msg
    msg = a.err("TOO_LARGE", "create_dataset", path="/fill", shape=[2**17 + 1], dtype="<f8",
                chunks=False, fillvalue=scalar(1.5))
    assert "fills" in msg
    a.ok("create_dataset", path="/ok", shape=[2**17], dtype="<f8", chunks=False, fillvalue=scalar(1.5))
    a.ok("write_slice", path="/ok", selection=[3], data=scalar(2.0))
    # chunked, the same shapes are fine: only written chunks are allocated
    a.ok("create_dataset", path="/big", shape=[2**40], dtype="<f8", chunks=[2**16])
    a.ok("write_slice", path="/big", selection=[2**39], data=scalar(7.0))
    assert b.ok("ping", durability="fsync") == "pong"
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        assert sorted(f) == ["big", "ok"]
        assert f["ok"][3] == 2.0 and f["ok"][4] == 1.5
        assert f["big"][2**39] == 7.0


def test_a_chunk_is_at_most_max_op_bytes(pair):
    srv, a, b = pair(max_op_bytes="1M")
    msg = a.err("TOO_LARGE", "create_dataset", path="/k", shape=[4, 2**16], dtype="<f8", chunks=[4, 2**16])
    assert "chunk" in msg and "max_op_bytes" in msg
    a.ok("create_dataset", path="/k", shape=[2, 2**16], dtype="<f8", chunks=[2, 2**16])


def test_insert_moves_at_most_max_op_bytes(pair):
    srv, a, b = pair(max_op_bytes="64K")
    rows = np.arange(2 * 8192, dtype="<f8").reshape(-1, 2)  # 128 KiB
    a.ok("append", path="/t", data=arr(rows))
    msg = a.err("TOO_LARGE", "insert", path="/t", index=0, data=arr(np.zeros((1, 2))))
    assert "moves the 8192 rows" in msg
    # near the end the tail is small
    assert a.ok("insert", path="/t", index=8000, data=arr(np.full((1, 2), -1.0))) == {"shape": [8193, 2]}
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        want = np.insert(rows, 8000, [-1.0, -1.0], axis=0)
        np.testing.assert_array_equal(f["t"][:], want)


def test_growing_a_write_made_dataset_copies_at_most_max_op_bytes(pair):
    srv, a, b = pair(max_op_bytes="64K")
    big = np.arange(16384, dtype="<f8")  # 128 KiB, contiguous (made by write)
    a.ok("write", path="/w", data=arr(big))
    msg = a.err("TOO_LARGE", "append", path="/w", data=arr(np.zeros(1)))
    assert "made by write" in msg
    small = np.arange(100, dtype="<f8")
    a.ok("write", path="/s", data=arr(small))
    assert a.ok("append", path="/s", data=arr(np.zeros(1))) == {"shape": [101]}
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        np.testing.assert_array_equal(f["w"][:], big)
        assert f["w"].chunks is None
        assert f["s"].shape == (101,) and f["s"].maxshape == (None,)


def test_broadcast_and_strided_selections_are_bounded(pair):
    srv, a, b = pair(max_op_bytes="1M")
    a.ok("create_dataset", path="/s", shape=[2**20], dtype="<f8", chunks=[1024], compression="gzip")
    # one value over 8 MiB of elements
    msg = a.err("TOO_LARGE", "write_slice", path="/s", selection=[[0, None, None]], data=scalar(1.0))
    assert "repeats it" in msg
    # 1024 elements, one in each of 1024 chunks of 8 KiB: 8 MiB touched
    msg = a.err("TOO_LARGE", "write_slice", path="/s", selection=[[0, None, 1024]],
                data=arr(np.ones(1024)))
    assert "touches 1024 chunks" in msg and "max_op_bytes" in msg
    msg = a.err("TOO_LARGE", "read", path="/s", selection=[[0, None, 1024]])
    assert "touches 1024 chunks" in msg
    # in parts it works: 64 chunks (512 KiB) each
    for k in range(16):
        a.ok("write_slice", path="/s", selection=[[k * 2**16, (k + 1) * 2**16, 1024]],
             data=arr(np.ones(64)))
    # a whole read of 1024 small chunks costs more than the 8 MiB it gives
    # (each chunk at least 16 KiB of work): refused here, fine in parts
    msg = a.err("TOO_LARGE", "read", path="/s")
    assert "1024 chunks" in msg
    assert a.call("read", path="/s", selection=[[0, 2**17, None]])["ok"] is True
    assert b.ok("ping") == "pong"
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        got = f["s"][:]
        want = np.zeros(2**20)
        want[::1024] = 1.0
        np.testing.assert_array_equal(got, want)


def test_path_depth_is_bounded(pair):
    srv, a, b = pair()
    deep = "/" + "/".join("g%d" % i for i in range(256))
    a.ok("create_group", path=deep)
    assert a.ok("exists", path=deep) is True
    too_deep = deep + "/x"
    for op, kw in [("exists", {"path": too_deep}),
                   ("create_group", {"path": too_deep}),
                   ("append", {"path": too_deep, "data": [1]}),
                   ("move", {"path": "/g0", "dest": "/y" + deep}),
                   ("create_link", {"path": "/l", "target": too_deep})]:
        msg = a.err("TOO_LARGE", op, **kw)
        assert "256 levels" in msg, msg
    assert b.ok("ping") == "pong"
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        assert list(f) == ["g0"]
        assert deep.lstrip("/") in f


def test_append_of_no_rows_to_a_new_path_still_creates_it(pair):
    # regression of this file's change (fuzz_engine: regress-append-empty-new):
    # an append that made a dataset but wrote no rows answered HDF5_ERROR
    srv, a, b = pair()
    assert a.ok("append", path="/new", data=arr(np.zeros(0))) == {"shape": [0]}
    assert a.ok("append", path="/new", data=arr(np.ones(2))) == {"shape": [2]}
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        assert f["new"].maxshape == (None,)
        np.testing.assert_array_equal(f["new"][:], [1.0, 1.0])


def test_many_small_chunks_cost_at_least_16_KiB_each(pair):
    """The fuzzer's slow input: one value to every 128th element of
    64-element chunks made HDF5 allocate and write 32768 chunks for 256 KiB
    of data. Each touched chunk counts as at least 16 KiB of work."""
    srv, a, b = pair(max_op_bytes="64M")
    a.ok("create_dataset", path="/s", shape=[2**22], maxshape=[None], dtype="<f8", chunks=[64])
    msg = a.err("TOO_LARGE", "write_slice", path="/s", selection=[[0, None, 128]], data=scalar(0.0))
    assert "32768 chunks of 512 bytes" in msg
    # the same bytes along the chunks are fine
    a.ok("write_slice", path="/s", selection=[[0, 32768, None]], data=scalar(1.0))
    # appends of many rows into tiny chunks too
    a.ok("create_dataset", path="/t", shape=[0], maxshape=[None], dtype="<f8", chunks=[1])
    msg = a.err("TOO_LARGE", "append", path="/t", data=arr(np.zeros(8192)))
    assert "appending 8192 rows" in msg
    a.ok("append", path="/t", data=arr(np.zeros(16)))
    assert b.ok("ping") == "pong"
