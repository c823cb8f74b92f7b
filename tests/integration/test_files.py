"""Many files on one server (issue 14): data_root, a request's `file`,
files opened on demand and closed when over max_open_files, their own logs
and crash recovery, list_files, escapes refused, token prefixes per file.
h5py is the oracle for what each file holds."""

import asyncio
import hashlib
import os
import random

import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, h5open, run
from hdf5_async import HDF5Client
from hdf5_async.errors import BadRequestError, NotFoundError

TIMEOUT = 30


def start_root(start_server, tmp_path, name="root", **opts):
    root = tmp_path / name
    root.mkdir(exist_ok=True)
    server_opts = {"data_root": str(root), "hdf5_file_path": "default.h5"}
    server_opts.update(opts)
    return start_server(server_opts=server_opts, workdir=tmp_path / ("w-" + name)), root


def tree(path):
    """Every name under path (folders too), relative."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, n), path))
    return out


def test_starting_creates_no_file_and_the_first_change_does(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "ping"}))
        assert tree(root) == set()
        # reads of a missing file: NOT_FOUND, and still nothing on disk
        for i, (op, kw) in enumerate([("read", {"path": "/x"}), ("exists", {"path": "/x"}),
                                      ("list", {"path": "/"}), ("info", {"path": "/"}),
                                      ("delete", {"path": "/x"}), ("move", {"path": "/x", "dest": "/y"})]):
            for f in (None, "run_0001.h5", "2026/run_0002.h5"):
                req = {"id": 10 + i, "op": op}
                req.update(kw)
                if f:
                    req["file"] = f
                assert_error(c.call(req), "NOT_FOUND")
        assert tree(root) == set()
        r = assert_ok(c.call({"id": 2, "op": "list_files"}))
        assert r == {"files": [], "truncated": False}
        # the first change creates the file, parent folders too
        assert_ok(c.call({"id": 3, "op": "create_group", "path": "/g", "file": "2026/05/run.h5"}))
        assert_ok(c.call({"id": 4, "op": "create_group", "path": "/d"}))  # the default file
        assert_ok(c.call({"id": 5, "op": "exists", "path": "/g", "file": "2026/05/run.h5"}))
        assert_error(c.call({"id": 6, "op": "exists", "path": "/g", "file": "other.h5"}), "NOT_FOUND")
        r = assert_ok(c.call({"id": 7, "op": "list_files"}))
        assert [f["name"] for f in r["files"]] == ["2026/05/run.h5", "default.h5"]
        assert all(f["size"] > 0 for f in r["files"])
    srv.stop()
    with h5open(root / "2026/05/run.h5") as f:
        assert list(f) == ["g"]
    with h5open(root / "default.h5") as f:
        assert list(f) == ["d"]
    assert not (root / "default.h5.wal").exists()


def test_a_failed_first_request_creates_nothing(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)
    with RawConn(srv) as c:
        # chunks larger than the shape: refused by the engine, after the file was opened
        bad = {"id": 1, "op": "create_dataset", "path": "/d", "shape": [4], "dtype": "<f8",
               "chunks": [0], "file": "new/deeper/x.h5"}
        r = c.call(bad)
        assert not r["ok"]
        assert tree(root) == set()
        bad = {"id": 2, "op": "set_attr", "path": "/nope", "name": "a", "data": 1, "file": "y.h5"}
        assert not c.call(bad)["ok"]
        assert tree(root) == set()


ESCAPES = ["../outside.h5", "a/../../outside.h5", "/etc/passwd", "/tmp/x.h5", "", ".", "..",
           "a/", "a//b.h5", "./a.h5", "a/./b.h5", "a\x00b.h5", "x.h5.wal", "x.h5.wal.damaged",
           "x.h5.compact", "a" * 1100]


def test_escapes_are_refused_and_create_nothing(start_server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.h5").write_bytes(b"")
    srv, root = start_root(start_server, tmp_path)
    # symlinks that lead out of the root: a folder and a file
    os.symlink(outside, root / "link_dir")
    os.symlink(outside / "victim.h5", root / "link_file.h5")
    os.mkdir(root / "real")
    os.symlink(outside, root / "real" / "deeper")
    os.mkfifo(root / "fifo.h5")
    before_root, before_out = tree(root), tree(outside)
    names = ESCAPES + ["link_dir/x.h5", "link_dir/victim.h5", "link_file.h5",
                       "real/deeper/x.h5", "real/deeper/new/x.h5", "fifo.h5", "real"]
    with RawConn(srv) as c:
        for i, name in enumerate(names):
            for op, kw in [("append", {"path": "/x", "data": [1, 2, 3]}),
                           ("create_group", {"path": "/g"}), ("read", {"path": "/x"}),
                           ("compact", {})]:
                req = {"id": i, "op": op, "file": name}
                req.update(kw)
                assert_error(c.call(req), "BAD_REQUEST")
        # not a string
        for v in (1, None, [b"a"], b"run.h5"):
            assert_error(c.call({"id": 99, "op": "append", "path": "/x", "data": [1], "file": v}),
                             "BAD_REQUEST")
        # the connection is still fine
        assert_ok(c.call({"id": 100, "op": "ping"}))
    assert tree(root) == before_root
    assert tree(outside) == before_out
    assert (outside / "victim.h5").stat().st_size == 0


def test_file_without_data_root_is_refused(server):
    with RawConn(server) as c:
        assert_error(c.call({"id": 1, "op": "create_group", "path": "/g", "file": "a.h5"}),
                     "BAD_REQUEST")
        r = assert_ok(c.call({"id": 2, "op": "list_files"}))
        assert [f["name"] for f in r["files"]] == [server.file]
        assert_ok(c.call({"id": 3, "op": "create_group", "path": "/g"}))


def test_more_files_than_max_open_files(start_server, tmp_path):
    """Eight files through a table of three: each close is durable, each
    reopen sees everything, in order."""
    srv, root = start_root(start_server, tmp_path, max_open_files="3")
    names = ["f%d.h5" % i for i in range(8)]

    async def go():
        clients = {n: HDF5Client(srv.host, srv.port, file=n, timeout=TIMEOUT) for n in names}
        for c in clients.values():
            await c.connect()
        for rnd in range(6):
            order = names[:] if rnd % 2 == 0 else names[::-1]
            await asyncio.gather(*(clients[n].append("/x", np.array([rnd * 100 + i]))
                                   for i, n in enumerate(order)))
        got = {n: (await clients[n].read("/x")).tolist() for n in names}
        for c in clients.values():
            await c.close()
        return got

    got = run(go())
    for n in names:
        assert len(got[n]) == 6
    srv.stop()
    for n in names:
        with h5open(root / n) as f:
            assert f["x"][:].tolist() == got[n]
        assert not (root / (n + ".wal")).exists()


def test_fifty_files_concurrent_clients_kill_9_and_restart(start_server, tmp_path):
    """Concurrent clients append to 50 files (more than max_open_files, so
    files close and reopen under load); the server is killed with SIGKILL
    while appends are in flight. After a restart every file opens with h5py
    and holds every acknowledged row, each row once and in order."""
    srv, root = start_root(start_server, tmp_path, max_open_files="16")
    names = ["run_%04d.h5" % i if i % 3 else "2026/%02d/run_%04d.h5" % (i % 7, i)
             for i in range(50)]
    acked = {n: [] for n in names}
    nclients = 10

    async def writer(k, stop):
        rng = random.Random(k)
        c = HDF5Client(srv.host, srv.port, timeout=TIMEOUT, durability="flush")
        await c.connect()
        seq = 0
        try:
            while not stop.is_set():
                n = rng.choice(names)
                c.file = n
                value = k * 1_000_000 + seq
                seq += 1
                try:
                    await c.append("/rows", np.array([value], dtype="<i8"))
                except Exception:
                    return
                acked[n].append(value)
        finally:
            try:
                await c.close()
            except Exception:
                pass

    async def go():
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(writer(k, stop)) for k in range(nclients)]
        # until every file has rows, then a few more, then the kill
        while sum(1 for n in names if len(acked[n]) >= 2) < len(names):
            await asyncio.sleep(0.01)
            if all(t.done() for t in tasks):
                break
        srv.kill()
        stop.set()
        await asyncio.gather(*tasks)

    run(go(), timeout=240)
    assert all(acked[n] for n in names), "every file got acknowledged rows before the kill"
    srv2 = start_server(server_opts={"data_root": str(root), "hdf5_file_path": "default.h5"},
                        workdir=tmp_path / "w-again")
    # the restart replayed every log left behind: h5py sees the rows now,
    # before any request opened the files again
    for n in names:
        assert not os.path.exists(str(root / n) + ".wal"), n
        with h5open(root / n) as f:
            rows = f["rows"][:].tolist()
        # every acknowledged row, in each client's order (a row appended
        # but not acknowledged may be there too)
        assert set(acked[n]) <= set(rows), n
        assert len(rows) == len(set(rows)), n
        for k in range(nclients):
            mine = [v for v in rows if v // 1_000_000 == k]
            assert mine == sorted(mine)
    # and the server serves them
    with RawConn(srv2) as c:
        r = assert_ok(c.call({"id": 1, "op": "list_files"}))
        assert sorted(f["name"] for f in r["files"]) == sorted(names)
        r = assert_ok(c.call({"id": 2, "op": "append", "path": "/rows", "data": [7],
                              "file": names[0]}))
    srv2.stop()


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def test_token_prefixes_name_files(start_server, tmp_path):
    toks = tmp_path / "tokens"
    toks.write_text("a write %s /a.h5/entry /2026\nd write %s /default.h5\n"
                    % (sha("tok-a" * 8), sha("tok-d" * 8)))
    srv, root = start_root(start_server, tmp_path, auth_file=str(toks))
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "auth", "token": "tok-a" * 8}))
        assert_ok(c.call({"id": 2, "op": "create_group", "path": "/entry", "file": "a.h5"}))
        assert_ok(c.call({"id": 3, "op": "append", "path": "/entry/x", "data": [1], "file": "a.h5"}))
        assert_ok(c.call({"id": 4, "op": "append", "path": "/x", "data": [1], "file": "2026/b.h5"}))
        assert_error(c.call({"id": 5, "op": "append", "path": "/other", "data": [1], "file": "a.h5"}),
                     "PERMISSION_DENIED")
        assert_error(c.call({"id": 6, "op": "append", "path": "/entry", "data": [1], "file": "b.h5"}),
                     "PERMISSION_DENIED")
        assert_error(c.call({"id": 7, "op": "append", "path": "/entry", "data": [1]}),
                     "PERMISSION_DENIED")  # the default file, default.h5
        assert_error(c.call({"id": 8, "op": "move", "path": "/entry/x", "dest": "/y",
                             "file": "a.h5"}), "PERMISSION_DENIED")
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "auth", "token": "tok-d" * 8}))
        assert_ok(c.call({"id": 2, "op": "append", "path": "/x", "data": [1]}))
        assert_ok(c.call({"id": 3, "op": "append", "path": "/x", "data": [1], "file": "default.h5"}))
        assert_error(c.call({"id": 4, "op": "read", "path": "/entry", "file": "a.h5"}),
                     "PERMISSION_DENIED")
    assert not (root / "b.h5").exists()
    srv.stop()
    with h5open(root / "default.h5") as f:
        assert f["x"][:].tolist() == [1, 1]


def test_python_client_file_argument(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)

    async def go():
        async with HDF5Client(srv.host, srv.port, file="p/q.h5", timeout=TIMEOUT) as c:
            await c.append("/x", np.arange(4))
            with pytest.raises(NotFoundError):
                c.file = "missing.h5"
                await c.read("/x")
            with pytest.raises(BadRequestError):
                c.file = "../escape.h5"
                await c.append("/x", np.arange(4))
            c.file = "p/q.h5"
            return (await c.read("/x")).tolist()

    assert run(go()) == [0, 1, 2, 3]
    srv.stop()
    with h5open(root / "p/q.h5") as f:
        assert f["x"][:].tolist() == [0, 1, 2, 3]


def test_h5py_style_file_by_name(start_server, tmp_path):
    import hdf5_async

    srv, root = start_root(start_server, tmp_path)
    addr = "%s:%d" % srv.address
    with hdf5_async.File("runs/r1.h5", server=addr) as f:
        f["entry/data"] = np.arange(5.0)
        f["entry"].attrs["n"] = 5
        assert f.filename.endswith("/runs/r1.h5")
    with hdf5_async.File("runs/r2.h5", "a", server=addr) as f:
        f.create_dataset("x", data=np.ones(3))
    with hdf5_async.File(server=addr) as f:  # the default file: not created so far
        with pytest.raises(NotFoundError, match="no file 'default.h5'"):
            f["entry"]
    with hdf5_async.File("runs/r1.h5", "r", server=addr) as f:
        assert f["entry/data"][...].tolist() == [0, 1, 2, 3, 4]
        with pytest.raises(Exception):
            f["y"] = 1  # read-only
    srv.stop()
    with h5open(root / "runs/r1.h5") as f:
        assert f["entry/data"][...].tolist() == [0, 1, 2, 3, 4]
        assert f["entry"].attrs["n"] == 5
    with h5open(root / "runs/r2.h5") as f:
        assert f["x"][...].tolist() == [1, 1, 1]
    assert not (root / "default.h5").exists()


def closed_idle(root, name, seen):
    """The server closed root/name: its log is gone, and then its lock (h5py
    opens it; what it holds goes to seen)."""
    if (root / (name + ".wal")).exists():
        return False
    try:
        with h5open(root / name) as f:
            seen.append(f["x"][:].tolist())
        return True
    except BlockingIOError:
        return False


def test_an_idle_file_is_closed(start_server, tmp_path):
    """A file nobody used for a while (file_idle_close, default 10 s) is
    committed and closed: its log is gone and other readers (h5py) can open
    it while the server runs; the next request opens it again. A server
    with file_idle_close = 0 keeps its file open: written before the other,
    it is still open (log, lock) when the other one's default closed it."""
    from h5a_util import wait_until

    never, never_root = start_root(start_server, tmp_path, "never", file_idle_close="0")
    srv, root = start_root(start_server, tmp_path)
    with RawConn(never) as n:
        assert_ok(n.call({"id": 1, "op": "append", "path": "/x", "data": [7], "file": "kept.h5"}))
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "append", "path": "/x", "data": [1, 2], "file": "idle.h5"}))
        assert (root / "idle.h5.wal").exists()  # open, with its log
        seen = []
        wait_until(lambda: closed_idle(root, "idle.h5", seen), timeout=60)
        assert seen == [[1, 2]]
        # idle longer than that, and still open
        assert (never_root / "kept.h5.wal").exists()
        with pytest.raises(BlockingIOError):
            h5open(never_root / "kept.h5")
        assert_ok(c.call({"id": 2, "op": "append", "path": "/x", "data": [3], "file": "idle.h5"}))
        r = assert_ok(c.call({"id": 3, "op": "read", "path": "/x", "file": "idle.h5"}))
    srv.stop()
    with h5open(root / "idle.h5") as f:
        assert f["x"][:].tolist() == [1, 2, 3]
    never.stop()  # closed at stop
    with h5open(never_root / "kept.h5") as f:
        assert f["x"][:].tolist() == [7]


def test_file_idle_close_setting(start_server, tmp_path):
    """file_idle_close = 1: the file is closed after a second unused (the
    poll below only bounds the wait); bad values stop the server."""
    from h5a_util import ServerError, wait_until

    srv, root = start_root(start_server, tmp_path, file_idle_close="1")
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "append", "path": "/x", "data": [5, 6], "file": "a.h5"}))
        seen = []
        wait_until(lambda: closed_idle(root, "a.h5", seen), timeout=60)
        assert seen == [[5, 6]]
    for bad in ("-1", "ten", "31536001"):
        with pytest.raises(ServerError, match="file_idle_close"):
            start_root(start_server, tmp_path, "bad", file_idle_close=bad)
