"""Op "batch": several requests applied in order, all or nothing. A failing
op at any position leaves the file byte for byte as it was (h5dump and the
file's bytes as the oracle), kill -9 during a stream of batches leaves each
batch whole or absent, and batches from one connection interleave with
single requests from others without anything coming between their ops."""

import os
import subprocess
import threading

import h5py
import msgpack
import msgpack_numpy
import numpy as np
import pytest

import h5a_util
from h5a_util import RawConn, assert_error, assert_ok


def pack(req):
    body = msgpack.packb(req, default=msgpack_numpy.encode, use_bin_type=True)
    return len(body).to_bytes(4, "big") + body


def call(conn, req):
    conn.send_raw(pack(req))
    return conn.recv(object_hook=msgpack_numpy.decode)


def h5dump(path):
    return subprocess.run(["h5dump", path], capture_output=True, check=True).stdout


def setup_ops():
    return [
        {"op": "create_group", "path": "/g"},
        {"op": "write", "path": "/g/w", "data": np.arange(10, dtype="<i4")},
        {"op": "append", "path": "/a", "data": np.ones((3, 2), dtype="<f8")},
        {"op": "set_attr", "path": "/g", "name": "n", "data": 7},
    ]


def good_ops():
    """Eight ops of many kinds that all succeed on the setup's file."""
    return [
        {"op": "append", "path": "/a", "data": np.full((2, 2), 5.0)},
        {"op": "create_group", "path": "/g/h"},
        {"op": "write", "path": "/g/new", "data": np.arange(4)},
        {"op": "set_attr", "path": "/g/w", "name": "u", "data": "x"},
        {"op": "write_slice", "path": "/g/w", "selection": [[0, 3, 1]],
         "data": np.array([9, 9, 9], dtype="<i4")},
        {"op": "insert", "path": "/a", "index": 0, "data": np.zeros((1, 2))},
        {"op": "move", "path": "/g/new", "dest": "/g/moved"},
        {"op": "delete", "path": "/g/h"},
    ]


def bad_op():
    return {"op": "append", "path": "/a", "data": np.ones((1, 3))}  # wrong row shape


def test_batch_results_in_order(server):
    with RawConn(server) as c:
        r = call(c, {"id": 1, "op": "batch", "ops": setup_ops() + [
            {"op": "read", "path": "/g/w"}, {"op": "exists", "path": "/g"},
            {"op": "get_attr", "path": "/g", "name": "n"}, {"op": "ping"}]})
    assert_ok(r, 1)
    res = r["result"]
    assert len(res) == 8
    np.testing.assert_array_equal(res[4], np.arange(10))
    assert res[5] is True and res[6] == 7 and res[7] == "pong"
    assert res[2] == {"shape": [3, 2]}
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert f["/a"].shape == (3, 2) and f["/g"].attrs["n"] == 7


@pytest.mark.parametrize("pos", range(9))
def test_failing_op_at_every_position_changes_nothing(start_server, pos):
    srv = start_server()
    with RawConn(srv) as c:
        assert_ok(call(c, {"id": 1, "op": "batch", "ops": setup_ops()}))
    srv.stop()
    before_bytes = open(srv.file, "rb").read()
    before_dump = h5dump(srv.file)
    srv = start_server(workdir=srv.workdir)
    ops = good_ops()
    ops.insert(pos, bad_op())
    with RawConn(srv) as c:
        r = call(c, {"id": 2, "op": "batch", "ops": ops})
        assert_error(r, "SHAPE_MISMATCH", 2)
        assert r["error"]["index"] == pos
        assert "batch op %d (append)" % pos in r["error"]["message"]
        # the server goes on: the same batch without the bad op applies
        before_read = call(c, {"id": 3, "op": "read", "path": "/a"})
        np.testing.assert_array_equal(before_read["result"], np.ones((3, 2)))
    srv.stop()
    assert h5dump(srv.file) == before_dump
    assert open(srv.file, "rb").read() == before_bytes


def test_failing_batch_after_changes_in_the_same_session(start_server):
    """Changes before the batch (uncommitted when it starts) stay; the
    batch's go."""
    srv = start_server(server_opts={"durability": "none"})
    with RawConn(srv) as c:
        for i, op in enumerate(setup_ops()):
            op["id"] = i
            assert_ok(call(c, op))
        ops = good_ops()
        ops.append(bad_op())
        assert_error(call(c, {"id": 9, "op": "batch", "ops": ops}), "SHAPE_MISMATCH")
        # later requests see the state before the batch, and change it
        assert_ok(call(c, {"id": 10, "op": "append", "path": "/a", "data": np.zeros((1, 2))}))
    srv.stop()
    ref = start_server()
    with RawConn(ref) as c:
        for i, op in enumerate(setup_ops()):
            op["id"] = i
            assert_ok(call(c, op))
        assert_ok(call(c, {"id": 10, "op": "append", "path": "/a", "data": np.zeros((1, 2))}))
    ref.stop()
    assert h5a_util.snapshot(srv.file) == h5a_util.snapshot(ref.file)
    assert h5dump(srv.file).replace(srv.file.encode(), b"F") == \
        h5dump(ref.file).replace(ref.file.encode(), b"F")


@pytest.mark.parametrize("op,code", [
    ({"op": "compact"}, "BAD_REQUEST"),
    ({"op": "auth", "token": "x"}, "BAD_REQUEST"),
    ({"op": "batch", "ops": [{"op": "ping"}]}, "BAD_REQUEST"),
    ({"op": "nosuch"}, "UNKNOWN_OP"),
    ({"op": "append", "path": "/a", "data": np.ones((1, 2)), "id": 5}, "BAD_REQUEST"),
    ({"op": "append", "path": "/a", "data": np.ones((1, 2)), "durability": "fsync"},
     "BAD_REQUEST"),
    ({"op": "append", "path": "relative", "data": np.ones((1, 2))}, "BAD_PATH"),
    (5, "BAD_REQUEST"),
])
def test_refused_before_anything_is_applied(server, op, code):
    with RawConn(server) as c:
        r = call(c, {"id": 1, "op": "batch",
                     "ops": [{"op": "append", "path": "/a", "data": np.ones((1, 2))}, op]})
        assert_error(r, code, 1)
        assert r["error"]["index"] == 1
        if isinstance(op, dict) and op["op"] in ("compact", "auth", "batch"):
            assert "op '%s' may not go in a batch" % op["op"] in r["error"]["message"]
        assert_error(call(c, {"id": 2, "op": "batch", "ops": []}), "BAD_REQUEST")
        assert_error(call(c, {"id": 3, "op": "batch"}), "BAD_REQUEST")
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert "a" not in f


def test_batch_is_remembered_by_client_id(server):
    with RawConn(server) as c:
        b = {"id": 1, "op": "batch", "client_id": "bb", "seq": 1,
             "ops": [{"op": "append", "path": "/a", "data": np.ones((1, 2))}] * 3}
        r1 = call(c, b)
        b["id"] = 2
        r2 = call(c, b)
    assert r1["result"] == r2["result"] == [{"shape": [1, 2]}, {"shape": [2, 2]},
                                            {"shape": [3, 2]}]
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert f["/a"].shape == (3, 2)


def test_batches_interleaved_with_other_connections(server):
    """Each batch appends k rows [b, 0..k-1] to /x; other connections
    append single rows [-1, j] meanwhile. Every batch's rows are contiguous
    in the dataset, and every row is there once."""
    nb, k, ns = 40, 5, 200
    errors = []

    def batches():
        try:
            with RawConn(server) as c:
                reqs = [{"id": b, "op": "batch", "ops": [
                    {"op": "append", "path": "/x",
                     "data": np.array([[b, j]], dtype="<i8")} for j in range(k)]}
                    for b in range(nb)]
                c.send_raw(b"".join(pack(r) for r in reqs))
                for b in range(nb):
                    assert_ok(c.recv(object_hook=msgpack_numpy.decode), b)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def singles(t):
        try:
            with RawConn(server) as c:
                reqs = [{"id": j, "op": "append", "path": "/x",
                         "data": np.array([[-1 - t, j]], dtype="<i8")} for j in range(ns)]
                c.send_raw(b"".join(pack(r) for r in reqs))
                for j in range(ns):
                    assert_ok(c.recv(object_hook=msgpack_numpy.decode), j)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=batches)] + [threading.Thread(target=singles, args=(t,))
                                               for t in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    server.stop()
    with h5py.File(server.file, "r") as f:
        x = f["/x"][:]
    assert len(x) == nb * k + 2 * ns
    for b in range(nb):
        at = np.nonzero((x[:, 0] == b))[0]
        assert len(at) == k and (np.diff(at) == 1).all(), "batch %d split" % b
        assert x[at, 1].tolist() == list(range(k))
    for t in range(2):
        assert x[x[:, 0] == -1 - t, 1].tolist() == list(range(ns))


@pytest.mark.parametrize("level", ["flush", "none"])
def test_kill_9_during_a_stream_of_batches(start_server, level):
    """Batches of 7 appends (each one row [b, j]) to /s and a write to
    /last, streamed; kill -9 while they run; after the restart every batch
    is all there or not at all, a prefix of the stream, and every
    acknowledged one (at flush) is there."""
    srv = start_server(server_opts={"durability": level})
    nb, k = 400, 7
    acked = []
    with RawConn(srv) as c:
        reqs = [{"id": b, "op": "batch", "ops": [
            {"op": "append", "path": "/s", "data": np.array([[b, j]], dtype="<i8")}
            for j in range(k)] + [{"op": "write", "path": "/last", "data": np.array([b])}]}
            for b in range(nb)]
        c.send_raw(b"".join(pack(r) for r in reqs))
        for b in range(nb // 4):
            assert_ok(c.recv(object_hook=msgpack_numpy.decode), b)
            acked.append(b)
        srv.kill()
    srv = start_server(workdir=srv.workdir)
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        s = f["/s"][:] if "s" in f else np.zeros((0, 2), dtype="<i8")
        last = int(f["/last"][0]) if "last" in f else -1
    n = len(s) // k
    assert len(s) == n * k, "a batch was cut: %d rows" % len(s)
    for b in range(n):
        assert s[b * k:(b + 1) * k].tolist() == [[b, j] for j in range(k)]
    assert last == n - 1
    if level == "flush":
        assert n >= len(acked)


def test_grouped_appends_in_a_batch(server):
    """Runs of appends to one dataset in a batch are written as one; a
    failure after such a run still takes the run back."""
    row = {"op": "append", "path": "/a", "data": np.ones((2, 2), dtype="<f8")}
    with RawConn(server) as c:
        assert_ok(call(c, {"id": 1, "op": "append", "path": "/a", "data": np.zeros((1, 2))}))
        r = call(c, {"id": 2, "op": "batch", "ops": [row] * 50})
        assert [x["shape"][0] for x in r["result"]] == list(range(3, 103, 2))
        r = call(c, {"id": 3, "op": "batch", "ops": [row] * 5 + [bad_op()] + [row] * 5})
        assert_error(r, "SHAPE_MISMATCH", 3)
        assert r["error"]["index"] == 5
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert f["/a"].shape == (101, 2)
