"""The served file and its log as the operator may leave them (issue 16,
items 2, 3 and 8): a log that is not this file's, a log that is a symlink
or has a damaged header, the file deleted or replaced while served, and a
second server on a file that is in use. docs/durability.md, "Files the
server keeps", says what the server does in each case."""

import os
import shutil
import subprocess

import h5py
import numpy as np
import pytest

import h5a_util
from h5a_util import session, snapshot


def run_expect_failure(workdir, file_path, extra=()):
    """Start a server on file_path that must refuse to start; its stderr."""
    cfg = h5a_util.write_config(
        os.path.join(str(workdir), "refused.ini"),
        server={"host": "127.0.0.1", "hdf5_file_path": file_path},
    )
    proc = subprocess.run(
        [h5a_util.server_binary(), "--config", cfg, "--port", "0"] + list(extra),
        cwd=str(workdir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=h5a_util.START_TIMEOUT,
    )
    assert proc.returncode != 0, "server started: stdout=%r stderr=%r" % (proc.stdout, proc.stderr)
    assert "listening on" not in proc.stdout
    for marker in h5a_util.SANITIZER_MARKERS:
        assert marker not in proc.stderr, proc.stderr
    return proc.stderr


def write_fsync(srv, items):
    async def go(c):
        for path, value in items:
            await c.write(path, value, durability="fsync")

    session(srv, go)


def crashed_log(start_server, workdir, n=20):
    """A server on workdir/data.h5 that committed n datasets and was
    killed: returns the path of the log it left."""
    srv = start_server(workdir=workdir)
    write_fsync(srv, [("/crashed/d%d" % i, np.arange(100) + i) for i in range(n)])
    srv.kill()
    log = srv.file + ".wal"
    assert os.path.getsize(log) > 4096
    return log


def six_datasets(path):
    with h5py.File(path, "w") as f:
        for i in range(6):
            f["keep%d" % i] = np.arange(1000) * i


# ---- item 2: the log is this file's, a regular file, with a sound header ----


@pytest.mark.parametrize("made_by", ["h5py", "server"])
def test_log_of_another_file_is_not_replayed(start_server, tmp_path, made_by):
    """A log left by a crash, next to another file of the same name: the
    server refuses to start, says what to do, and leaves both alone (the
    other file made by h5py has no id: its first page tells it apart)."""
    log = crashed_log(start_server, tmp_path / "a")
    other = tmp_path / "b" / "data.h5"
    os.makedirs(other.parent)
    if made_by == "h5py":
        six_datasets(str(other))
    else:
        srv = start_server(workdir=tmp_path / "b")
        write_fsync(srv, [("/keep%d" % i, np.arange(1000) * i) for i in range(6)])
        srv.stop()
    before = snapshot(str(other))
    shutil.copy(log, str(other) + ".wal")
    err = run_expect_failure(tmp_path / "b", str(other))
    assert "is not the log of" in err, err
    assert "move the log away" in err, err
    assert snapshot(str(other)) == before
    assert os.path.exists(str(other) + ".wal")  # kept: it holds someone's commits


def test_log_symlink_is_not_followed(start_server, tmp_path):
    srv = start_server()
    write_fsync(srv, [("/x", np.arange(10))])
    srv.stop()
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious" * 1000)
    os.symlink(str(victim), srv.file + ".wal")
    err = run_expect_failure(srv.workdir, srv.file)
    assert "symbolic link" in err, err
    assert victim.read_bytes() == b"precious" * 1000
    with h5py.File(srv.file, "r") as f:
        assert f["x"][()].tolist() == list(range(10))


@pytest.mark.parametrize("damage", ["cut", "cut_records", "flipped"])
def test_damaged_log_header_refuses_unless_discarded(start_server, tmp_path, damage):
    """A log whose header is cut or corrupted, or that was cut before the
    records its header points to (the first generation of a new file ends
    past 4 KiB), may hold commits that cannot be replayed: the server
    refuses until told to discard it."""
    work = tmp_path / "w"
    log = crashed_log(start_server, work)
    data = os.path.join(str(work), "data.h5")
    if damage.startswith("cut"):
        with open(log, "r+b") as f:
            f.truncate(300 if damage == "cut" else 2000)
    else:
        with open(log, "r+b") as f:
            f.seek(20)
            b = f.read(1)
            f.seek(20)
            f.write(bytes([b[0] ^ 0x10]))
    err = run_expect_failure(work, data)
    assert "damaged" in err and "wal_discard_damaged" in err, err
    srv = start_server(workdir=work, server_opts={"wal_discard_damaged": "yes"})
    assert "discarded" in srv.stderr()
    assert os.path.exists(log + ".damaged")

    async def go(c):
        return await c.exists("/crashed")

    session(srv, go)  # serves the file as of its last checkpoint
    srv.stop()


def test_empty_log_is_not_damage(start_server, tmp_path):
    """A log of 0 bytes (a crash before its header was written) holds
    nothing: the server starts."""
    srv = start_server()
    write_fsync(srv, [("/x", np.arange(5))])
    srv.stop()
    open(srv.file + ".wal", "wb").close()
    srv2 = start_server(workdir=srv.workdir)
    session(srv2, lambda c: c.read("/x"))
    srv2.stop()


# ---- item 3: the file deleted or replaced while served ----


def fsync_writes_refused(srv, n):
    """n fsync writes: how many were acknowledged, and the first error."""
    from hdf5_async import HDF5Error

    async def go(c):
        acked, first = 0, None
        for i in range(n):
            try:
                await c.write("/after%d" % i, np.arange(10), durability="fsync")
                acked += 1
            except HDF5Error as e:
                first = first or e
        return acked, first

    return session(srv, go)


def test_deleted_file_stops_acknowledging(start_server, tmp_path):
    srv = start_server()
    write_fsync(srv, [("/before", np.arange(10))])
    os.unlink(srv.file)
    acked, first = fsync_writes_refused(srv, 10)
    assert acked == 0
    assert "deleted or replaced" in str(first), first

    async def later(c):
        from hdf5_async import HDF5Error

        with pytest.raises(HDF5Error, match="deleted or replaced"):
            await c.write("/none", np.arange(3), durability="none")
        return (await c.read("/before")).tolist()

    assert session(srv, later) == list(range(10))
    # a second server on the path refuses: the first still holds it
    err = run_expect_failure(srv.workdir, srv.file)
    assert "locked by another process" in err, err
    assert not os.path.exists(srv.file)  # and it left nothing behind
    srv.stop()


def test_replaced_file_is_refused_and_never_gets_the_old_log(start_server, tmp_path):
    srv = start_server()
    write_fsync(srv, [("/old%d" % i, np.arange(100) + i) for i in range(8)])
    new = os.path.join(srv.workdir, "new.h5")
    with h5py.File(new, "w") as f:
        for i in range(4):
            f["new%d" % i] = np.arange(50) * i
    before = snapshot(new)
    os.rename(new, srv.file)
    acked, first = fsync_writes_refused(srv, 5)
    assert acked == 0 and "deleted or replaced" in str(first), first
    err = run_expect_failure(srv.workdir, srv.file)
    assert "locked by another process (pid %d" % srv.proc.pid in err, err
    srv.kill()
    # the killed server's log is still next to the new file: not replayed
    err = run_expect_failure(srv.workdir, srv.file)
    assert "is not the log of" in err, err
    assert snapshot(srv.file) == before


# ---- item 8: who holds the lock ----


def test_second_server_names_the_lock_holder(start_server):
    srv = start_server()
    err = run_expect_failure(srv.workdir, srv.file)
    assert "locked by another process (pid %d" % srv.proc.pid in err, err
    session(srv, lambda c: c.ping())
    srv.stop()
