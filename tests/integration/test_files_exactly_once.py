"""Many files (issue 14) together with exactly-once and batches (issue 13):
each file's engine has its own exactly-once table, committed in that file's
log and snapshotted to FILE.dedup beside it; a client's seq stream spanning
files leaves each table a subsequence with gaps; a batch applies to its own
file only (an op naming another is refused with its index), rolls back that
file's engine, and goes to its file's node in a [cluster] (WRONG_NODE).
h5py is the oracle for what each file holds."""

import os

import h5py
import msgpack
import msgpack_numpy
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, run
from hdf5_async import HDF5Client
from hdf5_async.errors import BadRequestError

from test_cluster import Cluster
from test_files import start_root

TIMEOUT = 30


def pack(req):
    body = msgpack.packb(req, default=msgpack_numpy.encode, use_bin_type=True)
    return len(body).to_bytes(4, "big") + body


def burst(conn, reqs):
    conn.send_raw(b"".join(pack(r) for r in reqs))
    return [conn.recv(object_hook=msgpack_numpy.decode) for _ in reqs]


def call(conn, req):
    return burst(conn, [req])[0]


def app(i, seq, file, cid="multi", path="/a"):
    return {"id": i, "op": "append", "path": path, "data": np.full((1, 2), seq, dtype="<i8"),
            "client_id": cid, "seq": seq, "file": file}


def rows(path, name="/a"):
    with h5py.File(path, "r") as f:
        return f[name][:, 0].tolist() if name in f else []


# one client's seq stream over two files: each file sees every other seq
STREAM = [(s, "one.h5" if s % 2 else "sub/two.h5") for s in range(1, 9)]


@pytest.mark.parametrize("stop", ["kill", "stop"])
def test_seq_stream_over_two_files_applied_once_in_each(start_server, tmp_path, stop):
    srv, root = start_root(start_server, tmp_path, durability="fsync")
    with RawConn(srv) as c:
        first = burst(c, [app(i, s, f) for i, (s, f) in enumerate(STREAM)])
    assert all(r["ok"] for r in first), first
    if stop == "kill":
        srv.kill()  # kill -9: the tables come back from each file's log
    else:
        srv.stop()  # checkpoints: the tables live on in FILE.dedup, one per file
        assert os.path.exists(root / "one.h5.dedup") and os.path.exists(root / "sub/two.h5.dedup")
    srv = start_server(server_opts={"data_root": str(root), "hdf5_file_path": "default.h5",
                                    "durability": "fsync"}, workdir=srv.workdir)
    with RawConn(srv) as c:
        # everything again, in another order, and one new seq per file
        again = burst(c, [app(10 + i, s, f) for i, (s, f) in enumerate(reversed(STREAM))] +
                      [app(30, 9, "one.h5"), app(31, 10, "sub/two.h5")])
        # a seq applied to one file is new to the other (each file its own table)
        other = burst(c, [app(40, 1, "sub/two.h5", path="/b")])
        listed = assert_ok(c.call({"id": 41, "op": "list_files"}))
    assert [r["result"] for r in again[:8]] == [r["result"] for r in reversed(first)]
    assert [r["result"]["shape"][0] for r in again[8:]] == [5, 5]
    assert other[0]["ok"]
    assert [f["name"] for f in listed["files"]] == ["one.h5", "sub/two.h5"]  # no .dedup
    srv.stop()
    assert rows(root / "one.h5") == [1, 3, 5, 7, 9]
    assert rows(root / "sub/two.h5") == [2, 4, 6, 8, 10]
    assert rows(root / "sub/two.h5", "/b") == [1]


def test_dedup_names_are_the_servers_own(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)
    with RawConn(srv) as c:
        for n in ("x.h5.dedup", "x.h5.dedup.tmp"):
            assert_error(c.call({"id": 1, "op": "create_group", "path": "/g", "file": n}),
                         "BAD_REQUEST")
        # a file never written with client_id keeps nothing beside it
        assert_ok(c.call({"id": 2, "op": "create_group", "path": "/g", "file": "plain.h5"}))
    srv.stop()
    assert sorted(os.listdir(root)) == ["plain.h5"]


def test_batch_applies_to_its_own_file(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)
    row = np.zeros((1, 2), dtype="<i8")
    with RawConn(srv) as c:
        assert_ok(call(c, {"id": 1, "op": "append", "path": "/a", "data": row, "file": "a.h5"}))
        assert_ok(call(c, {"id": 2, "op": "append", "path": "/a", "data": row, "file": "b.h5"}))
        # an op naming another file: refused with its index, nothing applied
        r = call(c, {"id": 3, "op": "batch", "file": "a.h5", "ops": [
            {"op": "append", "path": "/a", "data": row},
            {"op": "append", "path": "/a", "data": row, "file": "b.h5"}]})
        assert_error(r, "BAD_REQUEST")
        assert r["error"]["index"] == 1 and "b.h5" in r["error"]["message"]
        # the batch's own file named again is fine
        r = assert_ok(call(c, {"id": 4, "op": "batch", "file": "a.h5", "ops": [
            {"op": "append", "path": "/a", "data": row, "file": "a.h5"},
            {"op": "create_group", "path": "/g"}]}))
        assert r[0]["shape"] == [2, 2]
        # no file on the batch: its ops may not name one either
        r = call(c, {"id": 5, "op": "batch", "ops": [
            {"op": "create_group", "path": "/h", "file": "a.h5"}]})
        assert_error(r, "BAD_REQUEST")
        assert r["error"]["index"] == 0
        # a failing batch rolls back its own file's engine; the other file is untouched
        r = call(c, {"id": 6, "op": "batch", "file": "b.h5", "ops": [
            {"op": "append", "path": "/a", "data": row},
            {"op": "create_group", "path": "/gb"},
            {"op": "append", "path": "/a", "data": np.zeros((1, 3), dtype="<i8")}]})
        assert_error(r, "SHAPE_MISMATCH")
        assert r["error"]["index"] == 2
        # both files still served after the rollback
        assert assert_ok(call(c, {"id": 7, "op": "append", "path": "/a", "data": row,
                                 "file": "b.h5"}))["shape"] == [2, 2]
        assert assert_ok(call(c, {"id": 8, "op": "exists", "path": "/g",
                                 "file": "a.h5"})) is True
        # a failing batch for a new file creates nothing
        r = call(c, {"id": 9, "op": "batch", "file": "new/c.h5", "ops": [
            {"op": "create_group", "path": "/x"}, {"op": "delete", "path": "/nope"}]})
        assert_error(r, "NOT_FOUND")
        # list_files may not go in a batch (it is about no one file)
        r = call(c, {"id": 10, "op": "batch", "file": "a.h5", "ops": [{"op": "list_files"}]})
        assert_error(r, "BAD_REQUEST")
        # create_virtual may: it writes only the batch's file, and rolls back with it
        r = call(c, {"id": 11, "op": "batch", "file": "v.h5", "ops": [
            {"op": "create_virtual", "path": "/v", "layout": "stack",
             "sources": [{"file": "a.h5", "path": "/a"}, {"file": "b.h5", "path": "/a"}]},
            {"op": "delete", "path": "/nope"}]})
        assert_error(r, "NOT_FOUND")
        assert_ok(call(c, {"id": 12, "op": "batch", "file": "a.h5", "ops": [
            {"op": "create_virtual", "path": "/v", "layout": "concat",
             "sources": [{"path": "/a"}]}]}))
    srv.stop()
    assert sorted(os.listdir(root)) == ["a.h5", "b.h5"]
    assert rows(root / "a.h5") == [0, 0]
    assert rows(root / "b.h5") == [0, 0]
    with h5py.File(root / "b.h5", "r") as f:
        assert "gb" not in f
    with h5py.File(root / "a.h5", "r") as f:
        assert "g" in f and f["v"].shape == (2, 2)


def test_batch_with_seq_in_two_files_after_kill(start_server, tmp_path):
    """Batches carry client_id/seq too: each remembered in its file's table."""
    srv, root = start_root(start_server, tmp_path, durability="fsync")
    row = np.ones((1, 2), dtype="<i8")

    def b(i, seq, file):
        return {"id": i, "op": "batch", "file": file, "client_id": "bk", "seq": seq,
                "ops": [{"op": "append", "path": "/a", "data": row * seq}] * 2}

    with RawConn(srv) as c:
        first = burst(c, [b(1, 1, "p.h5"), b(2, 2, "q.h5"), b(3, 3, "p.h5")])
    srv.kill()
    srv = start_server(server_opts={"data_root": str(root), "hdf5_file_path": "default.h5"},
                       workdir=srv.workdir)
    with RawConn(srv) as c:
        again = burst(c, [b(1, 1, "p.h5"), b(2, 2, "q.h5"), b(3, 3, "p.h5")])
    assert [r["result"] for r in again] == [r["result"] for r in first]
    srv.stop()
    assert rows(root / "p.h5") == [1, 1, 3, 3]
    assert rows(root / "q.h5") == [2, 2]


def test_python_batch_file_and_reconnect(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)

    async def go():
        async with HDF5Client(port=srv.port, timeout=TIMEOUT, file="main.h5",
                              reconnect=True) as c:
            await c.append("/a", np.zeros((1, 2), dtype="<i8"))
            async with c.batch(file="other.h5") as b:
                b.append("/a", np.ones((1, 2), dtype="<i8"))
                b.create_group("/g")
            assert b.results[0]["shape"] == (1, 2) or list(b.results[0]["shape"]) == [1, 2]
            async with c.batch() as b2:  # the client's file
                b2.append("/a", np.ones((1, 2), dtype="<i8"))
            with pytest.raises(BadRequestError) as e:
                async with c.batch() as b3:
                    b3.add("create_group", "/x", file="other.h5")
            assert e.value.index == 0

    run(go())
    srv.stop()
    assert rows(root / "main.h5") == [0, 1]
    assert rows(root / "other.h5") == [1]


def test_batch_goes_to_its_files_node(start_server, tmp_path):
    from hdf5_async import cluster as hcluster

    cl = Cluster(start_server, tmp_path)
    name = "f1.h5"
    owner = hcluster.owner(cl.nodes, name)
    other = (owner + 1) % 3
    with RawConn(cl.servers[other]) as c:
        r = c.call({"id": 1, "op": "batch", "file": name,
                    "ops": [{"op": "create_group", "path": "/g"}]})
    assert_error(r, "WRONG_NODE")
    assert r["error"]["node"] == cl.nodes[owner]

    async def go():
        async with cl.client(file=name) as c:
            async with c.batch() as b:
                b.create_group("/g")
            assert await c.exists("/g")

    run(go())
    for s in cl.servers:
        s.stop()
    with h5py.File(cl.root / name, "r") as f:
        assert "g" in f
