"""create_virtual (issue 14): virtual datasets over files under the data
root, stacked or concatenated, and the unlimited printf-style mapping that
keeps picking up new files. h5py reads the master file after the server
stopped (as a user would once the writers are done)."""

import os

import h5py
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, run
from hdf5_async import HDF5Client
from hdf5_async.errors import HDF5AsyncError

TIMEOUT = 30


def start_root(start_server, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    srv = start_server(server_opts={"data_root": str(root), "hdf5_file_path": "default.h5"},
                       workdir=tmp_path / "w")
    return srv, root


def block(k, rows=4):
    return (np.arange(rows * 3, dtype="<i4").reshape(rows, 3) + 1000 * k)


def test_stack_and_concat_read_by_h5py(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)
    files = ["run_0.h5", "run_1.h5", "sub/run_2.h5", "sub/deeper/run_3.h5"]

    async def go():
        async with HDF5Client(srv.host, srv.port, timeout=TIMEOUT) as c:
            for k, f in enumerate(files):
                await c.write("/entry/data", block(k), file=f)
                await c.append("/entry/grow", block(k, rows=k + 1), file=f)
            await c.write("/local", block(9), file="master.h5")
            shapes = {}
            shapes["stack"] = await c.create_virtual(
                "/stack", [(f, "/entry/data") for f in files], "stack", file="master.h5")
            shapes["concat"] = await c.create_virtual(
                "/concat", [{"file": f, "path": "/entry/grow"} for f in files], "concat",
                file="master.h5")
            # a source in the master file itself, and one next to it
            shapes["mixed"] = await c.create_virtual(
                "/g/mixed", [(None, "/local"), ("run_0.h5", "/entry/data")], "concat",
                file="master.h5")
            # a master in a folder: its sources' names are relative to it
            shapes["nested"] = await c.create_virtual(
                "/v", [(f, "/entry/data") for f in files], "stack", file="vds/m.h5")
            info = await c.info("/stack", file="master.h5")
            calls = [lambda: c.read("/stack", file="master.h5"),
                     lambda: c.append("/concat", block(0), file="master.h5"),
                     lambda: c.write_slice("/stack", np.s_[0], 7, file="master.h5"),
                     lambda: c.write("/stack", np.zeros((4, 4, 3), "<i4"), file="master.h5")]
            for call in calls:
                with pytest.raises(HDF5AsyncError) as ei:
                    await call()
                assert ei.value.code == "UNSUPPORTED_TYPE", ei.value
            return shapes, info

    shapes, info = run(go())
    assert shapes == {"stack": (4, 4, 3), "concat": (10, 3), "mixed": (8, 3), "nested": (4, 4, 3)}
    assert info["layout"] == "virtual"
    srv.stop()
    cwd = os.getcwd()
    os.chdir(str(tmp_path))  # h5py finds the sources next to the master, wherever it runs
    try:
        with h5py.File(root / "master.h5", "r") as f:
            assert f["stack"].is_virtual
            np.testing.assert_array_equal(f["stack"][...], np.stack([block(k) for k in range(4)]))
            np.testing.assert_array_equal(
                f["concat"][...], np.concatenate([block(k, rows=k + 1) for k in range(4)]))
            np.testing.assert_array_equal(f["g/mixed"][...], np.concatenate([block(9), block(0)]))
            srcs = sorted(s.file_name for s in f["stack"].virtual_sources())
            assert srcs == sorted(files)
        with h5py.File(root / "vds/m.h5", "r") as f:
            np.testing.assert_array_equal(f["v"][...], np.stack([block(k) for k in range(4)]))
            assert sorted(s.file_name for s in f["v"].virtual_sources()) == sorted(
                "../" + n for n in files)
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("layout", ["stack", "concat"])
def test_unlimited_mapping_picks_up_new_files(start_server, tmp_path, layout):
    srv, root = start_root(start_server, tmp_path)

    async def write(ks):
        async with HDF5Client(srv.host, srv.port, timeout=TIMEOUT) as c:
            for k in ks:
                await c.write("/data", block(k), file="scan/run_%d.h5" % k)

    async def create():
        async with HDF5Client(srv.host, srv.port, timeout=TIMEOUT) as c:
            return await c.create_virtual("/all", [("scan/run_%b.h5", "/data")], layout,
                                          file="master.h5")

    run(write([0, 1]))
    assert run(create()) == ((0, 4, 3) if layout == "stack" else (0, 3))
    srv.stop()

    def read():
        with h5py.File(root / "master.h5", "r") as f:
            return f["all"][...]

    expect = (np.stack if layout == "stack" else np.concatenate)
    np.testing.assert_array_equal(read(), expect([block(0), block(1)]))
    # a file written later appears in the same virtual dataset
    srv2 = start_server(server_opts={"data_root": str(root), "hdf5_file_path": "default.h5"},
                        workdir=tmp_path / "w2")
    srv = srv2
    run(write([2]))
    srv2.stop()
    np.testing.assert_array_equal(read(), expect([block(0), block(1), block(2)]))


def test_bad_virtual_requests_change_nothing(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "write", "path": "/d", "data": [1, 2, 3], "file": "a.h5"}))
        assert_ok(c.call({"id": 2, "op": "write", "path": "/d", "data": [1.5, 2.5, 3.5],
                          "file": "b.h5"}))
        assert_ok(c.call({"id": 3, "op": "write", "path": "/d", "data": [1, 2], "file": "c.h5"}))
        src = lambda f: {"file": f, "path": "/d"}  # noqa: E731
        cases = [
            ({"sources": [src("a.h5"), src("b.h5")], "layout": "stack"}, "TYPE_MISMATCH"),
            ({"sources": [src("a.h5"), src("c.h5")], "layout": "stack"}, "SHAPE_MISMATCH"),
            ({"sources": [src("a.h5"), src("missing.h5")], "layout": "stack"}, "NOT_FOUND"),
            ({"sources": [{"file": "a.h5", "path": "/nope"}], "layout": "stack"}, "NOT_FOUND"),
            ({"sources": [src("../a.h5")], "layout": "stack"}, "BAD_REQUEST"),
            ({"sources": [src("/abs/a.h5")], "layout": "stack"}, "BAD_REQUEST"),
            ({"sources": [src("a.h5")], "layout": "diagonal"}, "BAD_REQUEST"),
            ({"sources": [], "layout": "stack"}, "BAD_REQUEST"),
            ({"sources": [src("x_%d.h5")], "layout": "stack"}, "BAD_REQUEST"),
            ({"sources": [src("x_%b.h5"), src("a.h5")], "layout": "stack"}, "BAD_REQUEST"),
            ({"sources": [{"file": "a.h5", "path": "/d", "extra": 1}], "layout": "stack"},
             "BAD_REQUEST"),
            ({"sources": [src("a.h5")]}, "BAD_REQUEST"),
        ]
        for i, (args, code) in enumerate(cases):
            req = {"id": 10 + i, "op": "create_virtual", "path": "/v", "file": "master.h5"}
            req.update(args)
            assert_error(c.call(req), code)
        assert not (root / "master.h5").exists()
        # an existing path: EXISTS, and the file keeps what it had
        assert_ok(c.call({"id": 50, "op": "create_virtual", "path": "/v", "file": "a.h5",
                          "sources": [{"path": "/d"}], "layout": "concat"}))
        assert_error(c.call({"id": 51, "op": "create_virtual", "path": "/v", "file": "a.h5",
                             "sources": [{"path": "/d"}], "layout": "concat"}), "EXISTS")
    srv.stop()
    with h5py.File(root / "a.h5", "r") as f:
        assert f["v"][...].tolist() == [1, 2, 3]
