"""A full disk: reads and pings keep working, changes get NO_SPACE and
change nothing, service resumes by itself when space returns, and a stop
while full is clean (once: SIGSEGV at exit). The disk is a small tmpfs the
test mounts and unmounts (skipped where mounting is not allowed)."""

import os
import signal
import subprocess

import numpy as np
import pytest

import h5a_util
from h5a_util import RawConn, assert_error, assert_ok


def arr(a):
    a = np.ascontiguousarray(a)
    return {"nd": True, "type": a.dtype.str, "kind": "", "shape": list(a.shape), "data": a.tobytes()}


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode:
        pytest.skip("cannot mount a tmpfs here (%s)" % p.stderr.strip())

    def resize(mib):
        subprocess.run(["mount", "-o", "remount,size=%dm" % mib, str(mnt)], check=True)

    try:
        yield mnt, resize
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(c):
    """Write 2 MiB datasets until the disk is full; returns their names."""
    made = []
    for i in range(64):
        r = c.call({"id": 100 + i, "op": "write", "path": "/big%d" % i, "data": arr(np.ones(2 ** 18))})
        if not r["ok"]:
            assert_error(r, "NO_SPACE")
            return made
        made.append("big%d" % i)
    raise AssertionError("the disk never filled")


def on_disk(start_server, tmp_path, mnt, name="srv"):
    """A server whose HDF5 file (and log) is on the small disk; its config
    and stderr stay off it (a full disk would swallow the log lines)."""
    srv = start_server(workdir=tmp_path / name, server_opts={"hdf5_file_path": mnt / "data.h5"})
    srv.file = str(mnt / "data.h5")
    return srv


def test_full_disk_refuses_changes_and_keeps_reads(start_server, small_disk, tmp_path):
    mnt, resize = small_disk
    srv = on_disk(start_server, tmp_path, mnt)
    c = RawConn(srv)
    assert_ok(c.call({"id": 1, "op": "write", "path": "/small", "data": arr(np.arange(10.0))}))
    made = fill(c)
    # reads and pings go on (a read waits for no commit)
    r = assert_ok(c.call({"id": 2, "op": "read", "path": "/small"}))
    assert np.frombuffer(r[b"data"], "<f8").tolist() == list(range(10))
    assert assert_ok(c.call({"id": 3, "op": "ping"})) == "pong"
    assert assert_ok(c.call({"id": 4, "op": "exists", "path": "/" + made[0]})) is True
    # every change: NO_SPACE, nothing applied
    for op, kw in [("append", {"path": "/small2", "data": [1.0]}),
                   ("create_group", {"path": "/g"}), ("delete", {"path": "/small"}),
                   ("set_attr", {"path": "/small", "name": "a", "data": 1}),
                   ("write_slice", {"path": "/small", "selection": [0], "data": 5.0})]:
        r = c.call(dict({"id": 5, "op": op}, **kw))
        assert_error(r, "NO_SPACE")
        assert "not applied" in r["error"]["message"] or "nothing was applied" in r["error"]["message"]
    assert assert_ok(c.call({"id": 6, "op": "exists", "path": "/g"})) is False
    assert "is full" in srv.stderr()
    # room again: changes are accepted again, by themselves
    resize(64)
    h5a_util.wait_until(lambda: c.call({"id": 7, "op": "create_group", "path": "/g"})["ok"])
    assert "has room again" in srv.stderr()
    assert assert_ok(c.call({"id": 8, "op": "ping", "durability": "fsync"})) == "pong"
    c.close()
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        assert "g" in f and "small2" not in f
        assert f["small"][()].tolist() == list(range(10))
        assert all(name in f for name in made)


def test_stop_while_full_is_clean_and_restart_recovers(start_server, small_disk, tmp_path):
    mnt, resize = small_disk
    srv = on_disk(start_server, tmp_path, mnt)
    c = RawConn(srv)
    assert_ok(c.call({"id": 1, "op": "write", "path": "/small", "data": arr(np.arange(4.0)),
                      "durability": "fsync"}))
    made = fill(c)
    c.close()
    assert srv.stop() == 0  # once SIGSEGV at exit, after main returned
    err = srv.stderr()
    assert "closing" in err or "is full" in err
    resize(64)
    srv2 = on_disk(start_server, tmp_path, mnt, "srv2")
    with RawConn(srv2) as c2:
        r = assert_ok(c2.call({"id": 1, "op": "read", "path": "/small"}))
        assert np.frombuffer(r[b"data"], "<f8").tolist() == [0.0, 1.0, 2.0, 3.0]
    srv2.stop()
    with h5a_util.h5open(srv2.file) as f:
        # every write acknowledged (default durability: flush) is there
        assert all(name in f for name in made)
