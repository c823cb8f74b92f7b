"""gzip / lzf / none, the server default, and the scalar rules."""

import h5py
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, h5open, session, snapshot

import hdf5_async as h5a

DATA = np.tile(np.arange(1000.0), 20)  # compressible


def test_explicit_compressions(server):
    async def body(c):
        await c.write("/gz", DATA, compression="gzip")
        await c.write("/gz9", DATA, compression="gzip", compression_opts=9)
        await c.write("/gz0", DATA, compression="gzip", compression_opts=0)
        await c.write("/lzf", DATA, compression="lzf")
        await c.write("/none", DATA, compression="none")
        await c.write("/default", DATA)  # use_compression = false
        await c.write("/gz2d", DATA.reshape(100, 200), compression="gzip", compression_opts=1)
        await c.write("/lzf_struct", np.zeros(500, [("a", "<i4"), ("b", "<f8", (3,))]), compression="lzf")
        await c.write("/lzf_str", ["x"] * 100, compression="lzf")
        # reads decompress transparently
        for p in ("/gz", "/gz9", "/gz0", "/lzf", "/none", "/default"):
            np.testing.assert_array_equal(await c.read(p), DATA)
        np.testing.assert_array_equal(await c.read("/gz2d"), DATA.reshape(100, 200))
        assert (await c.read("/lzf_str")).tolist() == ["x"] * 100

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert f["gz"].compression == "gzip" and f["gz"].compression_opts == 4
        assert f["gz9"].compression == "gzip" and f["gz9"].compression_opts == 9
        assert f["gz0"].compression == "gzip" and f["gz0"].compression_opts == 0
        assert f["gz2d"].compression == "gzip" and f["gz2d"].compression_opts == 1
        assert f["lzf"].compression == "lzf"
        assert f["lzf_struct"].compression == "lzf"
        assert f["lzf_str"].compression == "lzf"
        assert f["none"].compression is None
        assert f["default"].compression is None
        for name in ("gz", "gz9", "gz0", "lzf", "none", "default"):
            np.testing.assert_array_equal(f[name][()], DATA)  # h5py decompresses ours
        assert f["lzf_str"].asstr()[()].tolist() == ["x"] * 100
        # compression actually happened
        assert f["gz9"].id.get_storage_size() < DATA.nbytes / 2
        assert f["lzf"].id.get_storage_size() < DATA.nbytes / 2


def test_h5py_compressed_datasets_readable(start_server):
    rng = np.random.default_rng(1)
    vals = {
        "lzf": np.tile(np.arange(300, dtype="<i4"), 10),
        "gzip": rng.random((64, 32)),
        "gzip_shuffle": np.tile(np.arange(100, dtype=">f4"), 7),
        "lzf_struct": np.zeros(100, [("x", "<f8"), ("y", "<u2")]),
    }

    def pre(path):
        with h5py.File(path, "w") as f:
            f.create_dataset("lzf", data=vals["lzf"], compression="lzf")
            f.create_dataset("gzip", data=vals["gzip"], compression="gzip", compression_opts=6)
            f.create_dataset("gzip_shuffle", data=vals["gzip_shuffle"], compression="gzip", shuffle=True)
            f.create_dataset("lzf_struct", data=vals["lzf_struct"], compression="lzf")
            f.create_dataset("lzf_grow", data=np.arange(10.0), compression="lzf", maxshape=(None,), chunks=(4,))

    srv = start_server(precreate=pre)

    async def body(c):
        for name, v in vals.items():
            got = await c.read("/" + name)
            assert got.dtype == v.dtype and got.shape == v.shape
            assert got.tobytes() == v.tobytes(), name
        # and they can grow through the server, staying lzf
        assert await c.append("/lzf_grow", np.arange(10.0, 15.0)) == (15,)
        assert await c.insert("/lzf_grow", 0, np.array([-1.0])) == (16,)
        return await c.read("/lzf_grow")

    out = session(srv, body)
    np.testing.assert_array_equal(out, np.concatenate([[-1.0], np.arange(15.0)]))
    srv.stop()
    with h5open(srv.file) as f:
        assert f["lzf_grow"].compression == "lzf"
        np.testing.assert_array_equal(f["lzf_grow"][()], out)


def test_use_compression_default(start_server):
    srv = start_server(server_opts={"use_compression": "true"})

    async def body(c):
        await c.write("/d", DATA)
        await c.write("/off", DATA, compression="none")
        await c.write("/lzf", DATA, compression="lzf")
        await c.write("/scalar", 3.5)  # default silently skipped for scalars
        await c.write("/str", "text")
        await c.append("/grow", DATA[:10])
        await c.write("/empty", np.zeros(0))
        assert await c.read("/scalar") == 3.5
        assert await c.read("/str") == "text"

    session(srv, body)
    srv.stop()
    with h5open(srv.file) as f:
        assert f["d"].compression == "gzip" and f["d"].compression_opts == 4
        assert f["off"].compression is None
        assert f["lzf"].compression == "lzf"
        assert f["scalar"].compression is None and f["scalar"][()] == 3.5
        assert f["str"].compression is None
        assert f["grow"].compression == "gzip"
        np.testing.assert_array_equal(f["d"][()], DATA)


def test_append_compression_only_at_creation(server):
    async def body(c):
        await c.append("/a", DATA[:100], compression="lzf")
        await c.append("/a", DATA[:100], compression="gzip")
        await c.append("/a", DATA[:100])
        await c.append("/g", DATA[:100], compression="gzip", compression_opts=8)
        await c.append("/n", DATA[:100], compression="none")
        await c.write("/w", DATA[:100], compression="gzip")
        await c.append("/w", DATA[:100])  # converted to resizable, contents kept

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert f["a"].compression == "lzf" and f["a"].shape == (300,)
        assert f["g"].compression == "gzip" and f["g"].compression_opts == 8
        assert f["n"].compression is None and f["n"].chunks is not None
        assert f["w"].shape == (200,) and f["w"].maxshape == (None,)
        np.testing.assert_array_equal(f["w"][()], np.concatenate([DATA[:100], DATA[:100]]))


@pytest.mark.parametrize(
    "args",
    [
        {"compression": "zstd"},
        {"compression": "GZIP_PLEASE"},
        {"compression": ""},
        {"compression": "gzip", "compression_opts": 10},
        {"compression": "gzip", "compression_opts": -1},
        {"compression": "gzip", "compression_opts": "9"},
        {"compression": "gzip", "compression_opts": 4.0},
        {"compression": "lzf", "compression_opts": 4},
        {"compression": "none", "compression_opts": 1},
        {"compression": 1},
        {"compression": True},
        {"compression": ["gzip"]},
    ],
    ids=lambda a: repr(a).replace(" ", ""),
)
@pytest.mark.parametrize("op", ["write", "update", "append", "insert"])
def test_bad_compression_args(start_server, args, op):
    before = {}

    def pre(path):
        with h5py.File(path, "w") as f:
            f["d"] = np.arange(5.0)
        before.update(snapshot(path))

    srv = start_server(precreate=pre)
    with RawConn(srv) as conn:
        req = {"id": 5, "op": op, "path": "/d" if op == "insert" else "/new",
               "data": [1.0, 2.0]}
        if op == "insert":
            req["index"] = 0
        req.update(args)
        assert_error(conn.call(req), "BAD_REQUEST", 5)
        assert assert_ok(conn.call({"id": 6, "op": "ping"}), 6) == "pong"
    srv.stop()
    assert snapshot(srv.file) == before


def test_scalar_compression_rules(server):
    async def body(c):
        for comp in ("gzip", "lzf"):
            with pytest.raises(h5a.BadRequestError):
                await c.write("/s", 1.0, compression=comp)
            with pytest.raises(h5a.BadRequestError):
                await c.write("/s", np.float32(1), compression=comp)
            with pytest.raises(h5a.BadRequestError):
                await c.write("/s", "str", compression=comp)
        with pytest.raises(h5a.BadRequestError):
            await c.write("/s", 1.0, compression="gzip", compression_opts=5)
        # "none" is not a compression: fine on a scalar
        assert await c.write("/s", 2.0, compression="none") == ()
        assert await c.read("/s") == 2.0
        # a 1-element array is not a scalar
        assert await c.write("/a", np.array([1.0]), compression="gzip") == (1,)

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert sorted(f.keys()) == ["a", "s"]
        assert f["s"][()] == 2.0
        assert f["a"].compression == "gzip"


def test_write_same_shape_other_compression_replaces(server):
    async def body(c):
        await c.write("/d", DATA, compression="gzip")
        await c.write("/d", DATA * 2, compression="lzf")  # asked for lzf: gets lzf
        await c.write("/e", DATA, compression="lzf")
        await c.write("/e", DATA * 3, compression="lzf")  # same: in place
        await c.write("/f", DATA, compression="gzip", compression_opts=2)
        await c.write("/f", DATA, compression="gzip", compression_opts=6)

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert f["d"].compression == "lzf"
        np.testing.assert_array_equal(f["d"][()], DATA * 2)
        assert f["e"].compression == "lzf"
        np.testing.assert_array_equal(f["e"][()], DATA * 3)
        assert f["f"].compression == "gzip" and f["f"].compression_opts == 6


def test_level_without_compression_applies_to_gzip_default(start_server):
    srv = start_server(server_opts={"use_compression": "true"})

    async def body(c):
        await c.write("/d", DATA, compression_opts=9)

    session(srv, body)
    srv.stop()
    with h5open(srv.file) as f:
        assert f["d"].compression == "gzip" and f["d"].compression_opts == 9
