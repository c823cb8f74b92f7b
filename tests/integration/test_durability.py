"""Durability levels and crash recovery through the real server
(docs/durability.md). The many-round random version is `make crashtest`;
these are the cases each run of the suite must keep true."""

import os
import signal

import h5py
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, run, start_server as _start


def _restart(srv, start_server):
    """A new server on the same file (same workdir, fresh config)."""
    return start_server(workdir=srv.workdir)


def _wal(srv):
    return srv.file + ".wal"


# ---------------------------------------------------------------- the key


@pytest.mark.parametrize("level", ["none", "flush", "fsync"])
def test_every_op_takes_durability(server, level):
    with RawConn(server) as c:
        reqs = [
            {"op": "ping"},
            {"op": "create_group", "path": "/g"},
            {"op": "write", "path": "/g/w", "data": [1, 2, 3]},
            {"op": "append", "path": "/g/a", "data": [[1.0, 2.0]]},
            {"op": "insert", "path": "/g/a", "index": 0, "data": [[0.0, 0.0]]},
            {"op": "update", "path": "/g/w", "data": [4, 5, 6]},
            {"op": "read", "path": "/g/w"},
            {"op": "delete", "path": "/g/a"},
        ]
        for i, r in enumerate(reqs, 1):
            r = dict(r, id=i, durability=level)
            assert_ok(c.call(r), i)


@pytest.mark.parametrize("bad", ["FSYNC", "sync", "", 1, None, True, ["fsync"]])
def test_bad_durability_is_bad_request_and_changes_nothing(server, bad):
    with RawConn(server) as c:
        r = c.call({"id": 1, "op": "write", "path": "/x", "data": [1], "durability": bad})
        assert_error(r, "BAD_REQUEST", 1)
        assert "durability" in r["error"]["message"]
        assert_error(c.call({"id": 2, "op": "read", "path": "/x"}), "NOT_FOUND", 2)


def test_config_key_validated(tmp_path):
    with pytest.raises(Exception) as e:
        _start(tmp_path / "s", server_opts={"durability": "always"})
    assert "durability" in str(e.value)


def test_python_client_durability_arguments(server, client_factory):
    async def go():
        async with client_factory(server, durability="fsync") as c:
            await c.write("/a", np.arange(3))
            await c.append("/b", np.ones((1, 2)), durability="none")
            await c.sync()
            await c.sync("flush")
            with pytest.raises(ValueError):
                await c.sync("none")
            with pytest.raises(ValueError):
                await c.write("/a", [1], durability="sometimes")
        with pytest.raises(ValueError):
            client_factory(server, durability="yes")

    run(go())


# ------------------------------------------------------------- recovery


def _kill_and_restart(srv, start_server):
    srv.kill()
    return _restart(srv, start_server)


@pytest.mark.parametrize("level", ["flush", "fsync"])
def test_acknowledged_ops_survive_kill_9(start_server, client_factory, level):
    """Every op acknowledged under flush/fsync is in the file after SIGKILL,
    and the restarted server opens the file without h5clear."""
    srv = start_server(server_opts={"durability": level})
    expect_rows = []

    async def load(s):
        async with client_factory(s) as c:
            await c.create_group("/g/h")
            await c.write("/g/w", np.arange(1000, dtype="<i4"))
            await c.write("/g/w", np.arange(1000, dtype="<i4")[::-1].copy())  # in place
            for i in range(50):
                row = np.full((1, 4), i, dtype="<f8")
                await c.append("/g/a", row)
                expect_rows.append(row[0])
            await c.insert("/g/a", 0, np.full((1, 4), -1.0))
            expect_rows.insert(0, np.full(4, -1.0))
            await c.write("/gone", [1, 2])
            await c.delete("/gone")

    run(load(srv))
    srv2 = _kill_and_restart(srv, start_server)

    async def check(s):
        async with client_factory(s) as c:
            np.testing.assert_array_equal(await c.read("/g/w"), np.arange(1000)[::-1])
            np.testing.assert_array_equal(await c.read("/g/a"), np.array(expect_rows))
            # the file takes more writes after recovery
            await c.append("/g/a", np.zeros((1, 4)))

    run(check(srv2))
    srv2.stop()
    assert not os.path.exists(_wal(srv2)), "a clean stop leaves no log behind"
    with h5py.File(srv2.file, "r") as f:
        assert f["/g/a"].shape == (len(expect_rows) + 1, 4)
        assert "h" in f["/g"] and "gone" not in f


def test_restart_after_kill_with_nothing_committed(start_server, client_factory):
    """durability none and a kill within the 2 ms before the idle commit:
    whatever survives, the file opens and is a state some commit made."""
    srv = start_server(server_opts={"durability": "none"})

    async def load(s):
        async with client_factory(s) as c:
            await c.write("/base", np.arange(10))
            await c.sync()
            for i in range(200):
                await c.append("/rows", np.full((1, 2), i))

    run(load(srv))
    srv2 = _kill_and_restart(srv, start_server)

    async def check(s):
        async with client_factory(s) as c:
            np.testing.assert_array_equal(await c.read("/base"), np.arange(10))
            try:
                rows = await c.read("/rows")
            except Exception as e:  # not committed at all: fine
                assert getattr(e, "code", None) == "NOT_FOUND", e
                return
            # a prefix of what was appended, in order
            assert rows.shape[1] == 2
            np.testing.assert_array_equal(rows[:, 0], np.arange(len(rows)))

    run(check(srv2))


def test_sync_barrier_makes_none_writes_durable(start_server, client_factory):
    srv = start_server(server_opts={"durability": "none"})

    async def load(s):
        async with client_factory(s) as c:
            for i in range(20):
                await c.append("/r", np.array([[i]]))
            await c.sync("flush")

    run(load(srv))
    srv2 = _kill_and_restart(srv, start_server)

    async def check(s):
        async with client_factory(s) as c:
            rows = await c.read("/r")
            np.testing.assert_array_equal(rows[:, 0], np.arange(20))

    run(check(srv2))


def test_second_server_on_same_file_refuses(start_server):
    srv = start_server()
    with pytest.raises(Exception) as e:
        start_server(workdir=srv.workdir)
    assert "in use" in str(e.value) or "lock" in str(e.value), str(e.value)


def test_pipelined_fsync_appends_from_many_connections(start_server, client_factory):
    """Group commit: many fsync appends in flight at once all come back ok
    and in order, and all survive a kill."""
    srv = start_server(server_opts={"durability": "fsync"})
    import asyncio

    async def writer(s, k):
        async with client_factory(s) as c:
            await asyncio.gather(*(c.append("/w%d" % k, np.array([[k, i]])) for i in range(40)))

    async def load(s):
        await asyncio.gather(*(writer(s, k) for k in range(8)))

    run(load(srv))
    srv2 = _kill_and_restart(srv, start_server)
    srv2.stop()
    with h5py.File(srv2.file, "r") as f:
        for k in range(8):
            d = f["/w%d" % k][()]
            assert sorted(d[:, 1].tolist()) == list(range(40))
            assert (d[:, 0] == k).all()


def test_recovery_is_logged_and_the_log_removed_on_clean_stop(start_server, client_factory):
    srv = start_server()

    async def load(s):
        async with client_factory(s) as c:
            await c.write("/x", np.arange(5), durability="flush")

    run(load(srv))
    assert os.path.exists(_wal(srv)), "the log exists while the server runs"
    srv2 = _kill_and_restart(srv, start_server)
    assert "recovered after a process crash" in srv2.stderr()
    srv2.stop()
    assert not os.path.exists(_wal(srv2))
    with h5py.File(srv2.file, "r") as f:
        np.testing.assert_array_equal(f["/x"][()], np.arange(5))


def test_empty_file_is_taken_as_new(start_server, client_factory):
    """What a crash right after creating a file can leave: 0 bytes."""
    srv = start_server(precreate=lambda p: open(p, "wb").close())

    async def use(s):
        async with client_factory(s) as c:
            await c.write("/x", [1, 2])

    run(use(srv))
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        assert list(f["/x"][()]) == [1, 2]


def test_not_an_hdf5_file_is_refused(tmp_path):
    def junk(p):
        with open(p, "wb") as f:
            f.write(b"not hdf5 at all" * 100)

    with pytest.raises(Exception) as e:
        _start(tmp_path / "s", precreate=junk)
    assert "cannot open HDF5 file" in str(e.value)


# ------------------------------------- the ops of partial I/O, attributes, links


async def _prepare(c):
    """What the ops below act on."""
    await c.create_group("/g")
    await c.write("/g/w", np.zeros(10, dtype="<i4"))
    await c.create_dataset("/g/r", (2,), "<f8", maxshape=(None,))
    await c.set_attr("/g", "old", 1)
    await c.write("/src", np.arange(3))


@pytest.mark.parametrize("level", ["none", "flush", "fsync"])
def test_every_new_op_takes_durability(server, level):
    """The key is accepted by every op issue5 added, reads and listings
    included (on them, flush/fsync make the reply a barrier)."""
    with RawConn(server) as c:
        reqs = [
            {"op": "create_dataset", "path": "/g/d", "shape": [4, 2], "dtype": "<f8",
             "maxshape": [None, 2]},
            {"op": "write_slice", "path": "/g/d", "selection": [[0, 2, None]], "data": 1.5},
            {"op": "read", "path": "/g/d", "selection": [0]},
            {"op": "resize", "path": "/g/d", "shape": [6, 2]},
            {"op": "resize", "path": "/g/d", "shape": 8, "axis": 0},
            {"op": "set_attr", "path": "/g", "name": "a", "data": 3},
            {"op": "get_attr", "path": "/g", "name": "a"},
            {"op": "list_attrs", "path": "/g"},
            {"op": "delete_attr", "path": "/g", "name": "a"},
            {"op": "list", "path": "/"},
            {"op": "walk", "path": "/"},
            {"op": "info", "path": "/g/d"},
            {"op": "exists", "path": "/g/d"},
            {"op": "create_link", "path": "/l", "target": "/g/d"},
            {"op": "move", "path": "/l", "dest": "/m/l"},
        ]
        for i, r in enumerate(reqs, 1):
            assert_ok(c.call(dict(r, id=i, durability=level)), i)
        bad = c.call({"id": 99, "op": "set_attr", "path": "/g", "name": "b", "data": 1,
                      "durability": "always"})
        assert_error(bad, "BAD_REQUEST", 99)
        assert_error(c.call({"id": 100, "op": "get_attr", "path": "/g", "name": "b"}),
                     "NOT_FOUND", 100)


async def _do_write_slice(c, **kw):
    await c.write_slice("/g/w", np.s_[2:5], np.array([7, 8, 9], dtype="<i4"), **kw)


async def _check_write_slice(c):
    np.testing.assert_array_equal(await c.read("/g/w"), [0, 0, 7, 8, 9, 0, 0, 0, 0, 0])


async def _do_create_dataset(c, **kw):
    await c.create_dataset("/g/new/d", (4, 3), "<i2", fillvalue=5, **kw)


async def _check_create_dataset(c):
    np.testing.assert_array_equal(await c.read("/g/new/d"), np.full((4, 3), 5, dtype="<i2"))


async def _do_resize(c, **kw):
    await c.resize("/g/r", (7,), **kw)


async def _check_resize(c):
    assert (await c.info("/g/r"))["shape"] == (7,)


async def _do_set_attr(c, **kw):
    await c.set_attr("/g", "k", np.arange(4, dtype="<i8"), **kw)


async def _check_set_attr(c):
    np.testing.assert_array_equal(await c.get_attr("/g", "k"), np.arange(4))


async def _do_delete_attr(c, **kw):
    await c.delete_attr("/g", "old", **kw)


async def _check_delete_attr(c):
    assert await c.list_attrs("/g") == []


async def _do_create_link(c, **kw):
    await c.create_link("/links/l", "/src", **kw)


async def _check_create_link(c):
    np.testing.assert_array_equal(await c.read("/links/l"), np.arange(3))
    assert (await c.list("/links"))[0]["kind"] == "soft_link"


async def _do_move(c, **kw):
    await c.move("/src", "/a/dst", **kw)


async def _check_move(c):
    np.testing.assert_array_equal(await c.read("/a/dst"), np.arange(3))
    assert not await c.exists("/src")


_NEW_CHANGES = {
    "write_slice": (_do_write_slice, _check_write_slice),
    "create_dataset": (_do_create_dataset, _check_create_dataset),
    "resize": (_do_resize, _check_resize),
    "set_attr": (_do_set_attr, _check_set_attr),
    "delete_attr": (_do_delete_attr, _check_delete_attr),
    "create_link": (_do_create_link, _check_create_link),
    "move": (_do_move, _check_move),
}


@pytest.mark.parametrize("level", ["flush", "fsync"])
@pytest.mark.parametrize("op", sorted(_NEW_CHANGES))
def test_new_change_acknowledged_durable_survives_kill_9(start_server, client_factory, op, level):
    """The server runs with durability none, so only the op's own level can
    commit it: its ok under flush/fsync must mean it survives SIGKILL (the
    engine marks the file changed for it, or the commit has nothing to do)."""
    do, check = _NEW_CHANGES[op]
    srv = start_server(server_opts={"durability": "none"})

    async def load(s):
        async with client_factory(s) as c:
            await _prepare(c)
            await c.sync("fsync")  # the starting state is committed
            await do(c, durability=level)

    run(load(srv))
    srv2 = _kill_and_restart(srv, start_server)
    assert "recovered after a process crash" in srv2.stderr()

    async def verify(s):
        async with client_factory(s) as c:
            await check(c)

    run(verify(srv2))


def test_python_client_default_goes_with_changes_only(server, client_factory, monkeypatch):
    """HDF5Client(durability=...) is sent with every op that changes the
    file and never with the ones that only look; a call's own level wins."""
    from hdf5_async import codec

    sent = []
    real = codec.encode_request

    def spy(req_id, op, path, **args):
        sent.append((op, args.get("durability")))
        return real(req_id, op, path, **args)

    monkeypatch.setattr(codec, "encode_request", spy)

    async def go():
        async with client_factory(server, durability="fsync") as c:
            await c.ping()
            await c.create_group("/g")
            await c.write("/g/w", np.zeros(4))
            await c.update("/g/w", np.zeros(4))
            await c.append("/g/a", np.zeros((1, 2)))
            await c.insert("/g/a", 0, np.zeros((1, 2)))
            await c.read("/g/w")
            await c.read("/g/w", np.s_[1:3])
            await c.write_slice("/g/w", np.s_[0], 1.0)
            await c.create_dataset("/g/d", (3,), maxshape=(None,))
            await c.resize("/g/d", (5,))
            await c.resize("/g/d", 6, axis=0)
            await c.set_attr("/g", "x", 1)
            await c.get_attr("/g", "x")
            await c.list_attrs("/g")
            await c.attrs("/g")
            await c.delete_attr("/g", "x")
            await c.list("/")
            async for _ in c.walk("/"):
                pass
            await c.info("/g/d")
            await c.exists("/g/d")
            await c.create_link("/l", "/g/d")
            await c.move("/l", "/m")
            await c.delete("/m")
            await c.sync("flush")
            # per call: keyword-only, and it wins over the client's default
            await c.set_attr("/g", "y", 2, durability="none")
            await c.resize("/g/d", 2, axis=0, durability="flush")
            await c.info("/g/d")  # reads never get the default
            with pytest.raises(TypeError):
                await c.move("/g/d", "/g/e", "flush")

    run(go())
    # update() is write(): it sends "write"
    changes = {"create_group", "write", "append", "insert", "write_slice",
               "create_dataset", "resize", "set_attr", "delete_attr", "create_link", "move",
               "delete"}
    looks = {"ping", "read", "get_attr", "list_attrs", "list", "walk", "info", "exists"}
    assert {op for op, _ in sent} == changes | looks
    tail = sent[-4:]
    assert tail == [("ping", "flush"), ("set_attr", "none"), ("resize", "flush"), ("info", None)]
    for op, dur in sent[:-4]:
        assert dur == ("fsync" if op in changes else None), (op, dur)


def test_python_changing_methods_take_keyword_only_durability():
    import inspect

    from hdf5_async import HDF5Client

    for name in ("create_group", "write", "update", "append", "insert", "delete",
                 "write_slice", "create_dataset", "resize", "set_attr", "delete_attr",
                 "create_link", "move"):
        p = inspect.signature(getattr(HDF5Client, name)).parameters["durability"]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None, name


# ------------------------------------------------------ in-place rewrites


REWRITE_N = 1 << 18  # 2 MiB of f8: past the 1 MiB at which a write is logged as it is made


def _version(v):
    """Rewrite number v: every element says which rewrite it belongs to."""
    return v * 1e7 + np.arange(REWRITE_N, dtype="<f8")


def _rewrite_request(rid, v, durability):
    return {"id": rid, "op": "write", "path": "/big", "durability": durability,
            "data": {"nd": True, "type": "<f8", "kind": "", "shape": [REWRITE_N],
                     "data": _version(v).tobytes()}}


def _write_version(c, rid, v, durability):
    return c.call(_rewrite_request(rid, v, durability))


def _which_version(a):
    """The one rewrite a holds, or fail on a mix of two."""
    v = int(a[0] // 1e7)
    np.testing.assert_array_equal(a, _version(v), err_msg="a mix of rewrites, not rewrite %d" % v)
    return v


def test_rewrites_in_place_do_not_grow_the_file(start_server):
    """300 rewrites of a 2 MiB dataset with new values leave the file the
    size one write made it (the log takes them, and is gone at the stop)."""
    srv = start_server()
    with RawConn(srv) as c:
        assert_ok(_write_version(c, 1, 0, "none"))
    srv.stop()
    size = os.path.getsize(srv.file)
    srv2 = _restart(srv, start_server)
    with RawConn(srv2) as c:
        for v in range(1, 301):
            assert_ok(_write_version(c, v + 1, v, "none"))
    srv2.stop()
    assert os.path.getsize(srv2.file) == size
    assert not os.path.exists(_wal(srv2))
    with h5py.File(srv2.file, "r") as f:
        assert _which_version(f["/big"][()]) == 300


def test_rewrite_in_place_is_all_or_nothing_after_kill_9(start_server):
    """Rewrites acknowledged under flush, then one more sent and the server
    killed while it arrives or is applied: after the restart the dataset is
    the last acknowledged rewrite or the one in flight, never a mix."""
    srv = start_server()
    with RawConn(srv) as c:
        for v in range(20):
            assert_ok(_write_version(c, v + 1, v, "flush"))
        c.send(_rewrite_request(99, 20, "flush"))
        srv.kill()
    srv2 = _restart(srv, start_server)
    with RawConn(srv2) as c:
        r = assert_ok(c.call({"id": 1, "op": "read", "path": "/big"}))
        got = np.frombuffer(r[b"data"], dtype="<f8")  # msgpack-numpy keys are bin
    assert _which_version(got) in (19, 20)
    srv2.stop()
    with h5py.File(srv2.file, "r") as f:
        assert _which_version(f["/big"][()]) in (19, 20)
