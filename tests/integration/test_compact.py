"""compact: the online repack. A file that churned across restarts grows
(HDF5 reuses freed space only while the file is open); compact gives the
space back and keeps everything as it was: values, types, layouts and
filters, attributes (the root's too), soft, external and hard links. Only
the admin role may run it. The server serves on, from the new file."""

import os
import subprocess

import h5py
import numpy as np

import h5a_util
from h5a_util import RawConn, assert_error, assert_ok


def arr(a):
    a = np.ascontiguousarray(a)
    return {"nd": True, "type": a.dtype.str, "kind": "", "shape": list(a.shape), "data": a.tobytes()}


def churn(srv, rounds):
    with RawConn(srv) as c:
        for i in range(rounds):
            assert_ok(c.call({"id": 1, "op": "write", "path": "/tmp%d" % i,
                              "data": arr(np.ones(2 ** 17))}))
        for i in range(rounds):
            assert_ok(c.call({"id": 2, "op": "delete", "path": "/tmp%d" % i}))


def test_compact_gives_space_back_and_keeps_everything(start_server, tmp_path):
    def make(path):
        with h5py.File(path, "w") as f:
            f["keep/a"] = np.arange(1000.0)
            f["keep/a"].attrs["units"] = "m"
            f.attrs["root_attr"] = "here"
            f.create_dataset("z", data=np.arange(10000), chunks=(1000,), compression="gzip",
                             maxshape=(None,))
            f["soft"] = h5py.SoftLink("/keep/a")
            f["hard"] = f["keep/a"]
            f["ext"] = h5py.ExternalLink("elsewhere.h5", "/x")
            f["strs"] = np.array([b"x", b"yy"], dtype="S2")

    workdir = tmp_path / "w"
    srv = start_server(workdir=workdir, precreate=make)
    churn(srv, 16)  # 16 MiB written and freed
    srv.stop()
    before_snapshot = h5a_util.snapshot(srv.file)
    srv = start_server(workdir=workdir)  # a restart: the free space is forgotten
    churn(srv, 4)
    size_before = os.path.getsize(srv.file)
    with RawConn(srv) as c:
        res = assert_ok(c.call({"id": 1, "op": "compact"}))
        assert res["before"] == size_before and res["after"] < size_before / 4, res
        # served on, from the new file
        assert_ok(c.call({"id": 2, "op": "append", "path": "/z", "data": arr(np.arange(3))}))
        got = assert_ok(c.call({"id": 3, "op": "read", "path": "/keep/a"}))
        assert np.frombuffer(got[b"data"], "<f8").tolist() == list(np.arange(1000.0))
    srv.stop()
    assert not os.path.exists(srv.file + ".compact") and not os.path.exists(srv.file + ".wal")
    with h5py.File(srv.file, "r") as f:
        assert f.attrs["root_attr"] == "here" and f["keep/a"].attrs["units"] == "m"
        assert f["z"].compression == "gzip" and f["z"].chunks == (1000,)
        assert f["z"].shape == (10003,)
        assert f.get("soft", getlink=True).path == "/keep/a"
        assert f["hard"].id == f["keep/a"].id  # one object, two links
        el = f.get("ext", getlink=True)
        assert (el.filename, el.path) == ("elsewhere.h5", "/x")
        assert f["strs"].dtype == np.dtype("S2")
    after = h5a_util.snapshot(srv.file)
    after.pop("z")  # three rows longer: appended after the compact
    before_snapshot.pop("z")
    assert after == before_snapshot
    # HDF5's own tools read it
    subprocess.run(["h5dump", "-H", srv.file], check=True, capture_output=True)


def test_compact_needs_the_admin_role(start_server, tmp_path):
    import hashlib
    tok = tmp_path / "tokens"
    tok.write_text("w write %s\nroot admin %s\n" % (hashlib.sha256(b"wtok").hexdigest(),
                                                   hashlib.sha256(b"atok").hexdigest()))
    srv = start_server(server_opts={"auth_file": tok})
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "auth", "token": "wtok"}))
        assert_ok(c.call({"id": 2, "op": "append", "path": "/d", "data": [1.0]}))
        r = c.call({"id": 3, "op": "compact"})
        assert_error(r, "PERMISSION_DENIED")
        assert "admin" in r["error"]["message"]
        assert_ok(c.call({"id": 4, "op": "auth", "token": "atok"}))
        assert_ok(c.call({"id": 5, "op": "compact"}))
        assert_ok(c.call({"id": 6, "op": "append", "path": "/d", "data": [2.0]}))
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        assert f["d"][()].tolist() == [1.0, 2.0]


def test_compact_is_not_allowed_in_a_batch_and_takes_no_arguments(server):
    with RawConn(server) as c:
        assert_error(c.call({"id": 1, "op": "compact", "path": "/"}), "BAD_REQUEST")


def test_kill_during_compact_leaves_old_or_new_never_a_mix(start_server, tmp_path):
    """kill -9 at several moments of a compact: the path always holds a whole
    file with the same contents (old and new files hold the same objects)."""
    import random
    import signal
    import socket
    import struct

    import msgpack

    workdir = tmp_path / "w"
    srv = start_server(workdir=workdir)
    with RawConn(srv) as c:
        for i in range(8):
            assert_ok(c.call({"id": 1, "op": "write", "path": "/d%d" % i,
                              "data": arr(np.full(2 ** 19, float(i)))}))  # 4 MiB each
        assert_ok(c.call({"id": 2, "op": "ping", "durability": "fsync"}))
    srv.stop()
    want = h5a_util.snapshot(srv.file)
    rng = random.Random(7)
    for rnd in range(6):
        srv = start_server(workdir=workdir)
        churn(srv, 2)
        s = socket.create_connection(srv.address)
        p = msgpack.packb({"id": 1, "op": "compact"}, use_bin_type=True)
        s.sendall(struct.pack(">I", len(p)) + p)
        # somewhere in the copy, the swap, or after it
        import time
        time.sleep(rng.uniform(0, 0.15))  # a kill moment, not a wait for a result
        srv.kill()
        s.close()
        srv = start_server(workdir=workdir)  # recovery, if any, then serving
        srv.stop()
        assert h5a_util.snapshot(srv.file) == want, "round %d" % rnd
    # a copy cut short is left as FILE.compact; the next compact replaces it
    srv = start_server(workdir=workdir)
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "compact"}))
    srv.stop()
    assert not os.path.exists(srv.file + ".compact")
    assert h5a_util.snapshot(srv.file) == want
