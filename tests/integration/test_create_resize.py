"""create_dataset and resize, with h5py as the oracle: the same call made
through h5py on another file must give the same dataset (shape, type,
layout, chunks, filters, fill value, contents)."""

import asyncio

import h5py
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, session, type_signature

import hdf5_async as h5a

HAVE_LZ4 = h5py.h5z.filter_avail(32004)
HAVE_BZIP2 = h5py.h5z.filter_avail(307)
HAVE_BITSHUFFLE = h5py.h5z.filter_avail(32008)
PLUGIN_REASON = "needs Debian's hdf5-filter-plugin (scripts/install-deps.sh installs it)"

STRUCT = np.dtype([("a", "<i4"), ("b", "<f8", (2,))])

# (name, our kwargs, h5py kwargs when they differ)
CASES = [
    ("plain", dict(shape=(10, 5)), None),
    ("i4", dict(shape=(100,), dtype="<i4"), None),
    ("auto_chunks", dict(shape=(100, 20), dtype="<f8", chunks=True), None),
    ("given_chunks", dict(shape=(100, 20), dtype="<f8", chunks=(10, 5)), None),
    ("unlimited", dict(shape=(0, 3), dtype="<f4", maxshape=(None, 3)), None),
    ("all_unlimited", dict(shape=(4, 4), dtype="<u2", maxshape=(None, None)), None),
    ("bounded", dict(shape=(10,), dtype="<f8", maxshape=(50,)), None),
    ("gzip", dict(shape=(1000, 1000), dtype="<f8", compression="gzip"), None),
    ("gzip9_shuffle", dict(shape=(300,), dtype=">i4", compression="gzip",
                           compression_opts=9, shuffle=True), None),
    ("shuffle_only", dict(shape=(300,), dtype="<i8", shuffle=True), None),
    ("lzf", dict(shape=(64, 64), dtype="<f4", compression="lzf"), None),
    ("empty_gzip", dict(shape=(0,), dtype="<f8", compression="gzip"), None),
    ("empty_fixed_3d", dict(shape=(3, 0, 2), dtype="<f8", chunks=True), None),
    ("fill_i2", dict(shape=(7,), dtype="<i2", fillvalue=-1), None),
    ("fill_f4", dict(shape=(3, 3), dtype="<f4", fillvalue=1.5), None),
    ("fill_convert", dict(shape=(4,), dtype="<f8", fillvalue=np.int16(3)), None),
    ("fill_struct", dict(shape=(5,), dtype=STRUCT,
                         fillvalue=np.array((7, (1.0, 2.0)), STRUCT)[()]), None),
    ("fill_S", dict(shape=(3,), dtype="S4", fillvalue=np.bytes_(b"ab")), None),
    ("scalar", dict(shape=(), dtype="<f8", fillvalue=3.0), None),
    ("bool", dict(shape=(6,), dtype="?"), None),
    ("complex", dict(shape=(2, 2), dtype="<c16", fillvalue=np.complex128(1 + 2j)), None),
    ("vlen_str", dict(shape=(4,), dtype=str), dict(shape=(4,), dtype=h5py.string_dtype())),
    ("vlen_bytes", dict(shape=(4,), dtype=bytes),
     dict(shape=(4,), dtype=h5py.string_dtype("ascii"))),
    ("vlen_str_h5py_dtype", dict(shape=(2,), dtype=h5py.string_dtype()), None),
    ("contiguous_explicit", dict(shape=(5,), dtype="<i1", chunks=False),
     dict(shape=(5,), dtype="<i1")),  # (h5py 3.7 refuses chunks=False)
]
if HAVE_LZ4:
    CASES.append(("lz4", dict(shape=(500,), dtype="<f8", compression="lz4"),
                  dict(shape=(500,), dtype="<f8", compression=32004, compression_opts=(0,))))
if HAVE_BZIP2:
    CASES.append(("bzip2", dict(shape=(500,), dtype="<i4", compression="bzip2", compression_opts=5),
                  dict(shape=(500,), dtype="<i4", compression=307, compression_opts=(5,))))


def _filters(ds):
    return {k: (tuple(v) if isinstance(v, (tuple, list)) else v) for k, v in ds._filters.items()}


def _describe(ds):
    data = ds[()]
    if ds.dtype.kind == "O":
        data = np.asarray(data, dtype=object).tolist()
    elif isinstance(data, np.ndarray):
        data = data.tobytes()
    else:
        data = repr(data)
    return dict(
        shape=ds.shape,
        type=type_signature(ds.id.get_type()),
        maxshape=ds.maxshape,
        chunks=ds.chunks,
        filters=_filters(ds),
        # (h5py 3.7's fillvalue crashes on variable-length strings)
        fill=None if ds.dtype.kind == "O" else repr(ds.fillvalue),
        data=data,
    )


def test_create_dataset_matches_h5py(server, tmp_path):
    async def body(c):
        for name, kw, _ in CASES:
            kw = dict(kw)
            shape = kw.pop("shape")
            got = await c.create_dataset("/" + name, shape, **kw)
            assert got == shape, name

    session(server, body)
    oracle = str(tmp_path / "oracle.h5")
    with h5py.File(oracle, "w", libver=("v110", "latest")) as f:
        for name, kw, hkw in CASES:
            kw = dict(hkw or kw)
            if kw.get("dtype") in (str, bytes):
                kw["dtype"] = h5py.string_dtype("utf-8" if kw["dtype"] is str else "ascii")
            f.create_dataset(name, **kw)
    server.stop()
    with h5py.File(server.file, "r") as got, h5py.File(oracle, "r") as want:
        for name, _, _ in CASES:
            assert _describe(got[name]) == _describe(want[name]), name


def test_create_dataset_then_fill_in(server):
    async def body(c):
        await c.create_dataset("/m", (4, 6), "<i4", fillvalue=-1, chunks=(2, 3))
        np.testing.assert_array_equal(await c.read("/m"), np.full((4, 6), -1))
        await c.write_slice("/m", np.s_[1:3, 2:5], np.arange(6).reshape(2, 3))
        want = np.full((4, 6), -1)
        want[1:3, 2:5] = np.arange(6).reshape(2, 3)
        np.testing.assert_array_equal(await c.read("/m"), want)
        # a dataset made by create_dataset with maxshape takes appends
        await c.create_dataset("/log", (0, 3), "<f8", maxshape=(None, 3))
        assert await c.append("/log", np.ones((2, 3))) == (2, 3)
        # a bounded one grows in place while it fits, and is rebuilt past it
        await c.create_dataset("/b", (2,), "<f8", maxshape=(4,), compression="gzip")
        assert await c.append("/b", [1.0, 2.0]) == (4,)
        assert await c.append("/b", [3.0]) == (5,)
        np.testing.assert_array_equal(await c.read("/b"), [0, 0, 1, 2, 3])
        return True

    assert session(server, body)
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert f["b"].compression == "gzip" and f["b"].maxshape == (None,)


def test_create_dataset_errors(server):
    async def body(c):
        await c.create_dataset("/d", (3,), "<f8")
        await c.create_group("/g")
        with pytest.raises(h5a.ExistsError) as ei:
            await c.create_dataset("/d", (3,), "<f8")
        assert "exist_ok" in ei.value.message
        assert await c.create_dataset("/d", (3,), "<f8", exist_ok=True) == (3,)
        with pytest.raises(h5a.ExistsError) as ei:
            await c.create_dataset("/d", (4,), "<f8", exist_ok=True)
        assert "shape (3,), not (4,)" in ei.value.message
        with pytest.raises(h5a.ExistsError) as ei:
            await c.create_dataset("/d", (3,), "<i8", exist_ok=True)
        assert "another dtype" in ei.value.message
        # chunks=1 is a chunk of one element (1 == True in Python)
        await c.create_dataset("/one", 5, "<i2", chunks=1)
        with pytest.raises(h5a.ExistsError) as ei:
            await c.create_dataset("/g", (3,), exist_ok=True)
        assert "group" in ei.value.message
        with pytest.raises(h5a.NotAGroupError):
            await c.create_dataset("/d/x", (3,))
        with pytest.raises(h5a.BadPathError):
            await c.create_dataset("/", (3,))
        bad = [
            (dict(maxshape=(2,)), "smaller than the shape"),
            (dict(maxshape=(3, 3)), "'maxshape' has 2 entries"),
            (dict(chunks=(4,)), "do not fit maxshape"),
            (dict(chunks=(0,)), "chunk size of 0"),
            (dict(chunks=(1, 1)), "'chunks' has 2 entries"),
            (dict(chunks=False, maxshape=(None,)), "chunks=false"),
            (dict(chunks=False, compression="gzip"), "chunks=false"),
            (dict(compression="zstd"), "unknown compression"),
            (dict(compression="gzip", compression_opts=10), "gzip level"),
            (dict(compression="lzf", compression_opts=1), "takes no"),
            (dict(fillvalue=[1, 2]), "single value"),
        ]
        for kw, text in bad:
            with pytest.raises(h5a.BadRequestError) as ei:
                await c.create_dataset("/new", (3,), "<f8", **kw)
            assert text in ei.value.message, (kw, ei.value.message)
        with pytest.raises(h5a.BadRequestError) as ei:
            await c.create_dataset("/new", (), "<f8", chunks=True)
        assert "scalar" in ei.value.message
        with pytest.raises(h5a.BadRequestError):
            await c.create_dataset("/new", (), "<f8", compression="gzip")
        with pytest.raises(h5a.BadRequestError):
            await c.create_dataset("/new", (2 ** 20, 2 ** 20), "<f8", chunks=(2 ** 20, 2 ** 10))
        with pytest.raises(h5a.TypeMismatchError) as ei:
            await c.create_dataset("/new", (3,), "<f8", fillvalue="text")
        assert "fillvalue" in ei.value.message
        with pytest.raises(TypeError):
            await c.create_dataset("/new", (3,), "U5")
        with pytest.raises(TypeError):
            await c.create_dataset("/new", (3,), object)
        with pytest.raises(ValueError):
            await c.create_dataset("/new", (-1,))
        return await c.read("/d")

    np.testing.assert_array_equal(session(server, body), np.zeros(3))
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert sorted(f.keys()) == ["d", "g", "one"]
        assert f["one"].chunks == (1,)


def test_create_dataset_wire(server):
    with RawConn(server) as rc:
        r = rc.call({"id": 1, "op": "create_dataset", "path": "/a", "shape": [2, 2],
                     "dtype": [["x", "<i4"], ["y", "<f8"]], "fillvalue": None, "chunks": None})
        assert assert_ok(r) == {"shape": [2, 2]}
        r = rc.call({"id": 2, "op": "create_dataset", "path": "/s", "shape": [], "dtype": "|S3",
                     "fillvalue": {"nd": False, "type": "|S3", "data": b"abc"}})
        assert_ok(r)
        for i, (req, code, text) in enumerate([
            ({"shape": [2]}, "BAD_REQUEST", "needs a 'dtype'"),
            ({"dtype": "<f8"}, "BAD_REQUEST", "needs a 'shape'"),
            ({"shape": 3, "dtype": "<f8"}, "BAD_REQUEST", "must be a list"),
            ({"shape": [-1], "dtype": "<f8"}, "BAD_REQUEST", "non-negative"),
            ({"shape": [None], "dtype": "<f8"}, "BAD_REQUEST", "non-negative"),
            ({"shape": [1] * 33, "dtype": "<f8"}, "TOO_LARGE", "at most 32"),
            ({"shape": [2], "dtype": "<U3"}, "UNSUPPORTED_TYPE", ""),
            ({"shape": [2], "dtype": "<f8", "maxshape": [1.5]}, "BAD_REQUEST", "or nil"),
            ({"shape": [2], "dtype": "<f8", "chunks": "auto"}, "BAD_REQUEST", "list of sizes"),
            ({"shape": [2], "dtype": "<f8", "shuffle": 1}, "BAD_REQUEST", "true or false"),
            ({"shape": [2], "dtype": "<f8", "exist_ok": "yes"}, "BAD_REQUEST", "true or false"),
            ({"shape": [2], "dtype": "<f8", "axis": 0}, "BAD_REQUEST", "takes no argument 'axis'"),
            ({"shape": [2], "dtype": "<f8", "data": [1, 2]}, "BAD_REQUEST", "takes no argument"),
        ]):
            req = dict(req, id=10 + i, op="create_dataset", path="/n%d" % i)
            r = rc.call(req)
            assert_error(r, code, 10 + i)
            assert text in r["error"]["message"], (req, r)


def test_default_compression_applies(start_server):
    srv = start_server(server_opts={"use_compression": "true"})

    async def body(c):
        await c.create_dataset("/x", (1000,), "<f8")
        await c.create_dataset("/none", (1000,), "<f8", compression="none")
        await c.create_dataset("/contig", (1000,), "<f8", chunks=False)
        await c.create_dataset("/scalar", (), "<f8")

    session(srv, body)
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        assert f["x"].compression == "gzip" and f["x"].compression_opts == 4
        assert f["x"].chunks is not None
        assert f["none"].compression is None and f["none"].chunks is None
        assert f["contig"].compression is None and f["contig"].chunks is None
        assert f["scalar"].shape == ()


@pytest.mark.skipif(not (HAVE_LZ4 and HAVE_BZIP2), reason=PLUGIN_REASON)
def test_plugin_compression_roundtrip(server):
    data = np.tile(np.arange(500.0), 40)

    async def body(c):
        await c.write("/lz4", data, compression="lz4")
        await c.write("/bz", data, compression="bzip2")
        await c.write("/bz1", data, compression="bzip2", compression_opts=1)
        await c.append("/alz4", data[:100], compression="lz4")
        await c.append("/alz4", data[100:])
        for p in ("/lz4", "/bz", "/bz1", "/alz4"):
            np.testing.assert_array_equal(await c.read(p), data)
        with pytest.raises(h5a.BadRequestError):
            await c.write("/x", data, compression="bzip2", compression_opts=0)
        with pytest.raises(h5a.BadRequestError):
            await c.write("/x", data, compression="lz4", compression_opts=-1)

    session(server, body)
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert set(f["lz4"]._filters) == {"32004"}
        assert f["bz"]._filters == {"307": (9,)} and f["bz1"]._filters == {"307": (1,)}
        assert set(f["alz4"]._filters) == {"32004"} and f["alz4"].maxshape == (None,)
        for p in ("lz4", "bz", "bz1", "alz4"):
            np.testing.assert_array_equal(f[p][()], data)  # h5py reads ours
            assert f[p].id.get_storage_size() < data.nbytes / 2


@pytest.mark.skipif(not (HAVE_LZ4 and HAVE_BZIP2), reason=PLUGIN_REASON)
def test_h5py_plugin_datasets_readable_and_kept(start_server):
    data = np.arange(2000, dtype="<i4").reshape(40, 50)

    def pre(path):
        with h5py.File(path, "w") as f:
            f.create_dataset("lz4", data=data, compression=32004, chunks=(8, 10))
            f.create_dataset("bz", data=data, compression=307, compression_opts=(3,), chunks=(8, 10))

    srv = start_server(precreate=pre)

    async def body(c):
        for p in ("/lz4", "/bz"):
            np.testing.assert_array_equal(await c.read(p), data)
            np.testing.assert_array_equal(await c.read(p, np.s_[5:30:3, -7]), data[5:30:3, -7])
            await c.write_slice(p, np.s_[0], np.zeros(50, "<i4"))
        # a write-made conversion to resizable keeps the plugin
        await c.append("/bz", np.ones((1, 50), "<i4"))

    session(srv, body)
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        assert f["bz"]._filters == {"307": (3,)} and f["bz"].shape == (41, 50)
        assert f["lz4"][0].sum() == 0 and f["bz"][40].sum() == 50


@pytest.mark.skipif(HAVE_BITSHUFFLE, reason="the bitshuffle plugin is installed")
def test_missing_plugin_is_a_clear_error(server):
    async def body(c):
        with pytest.raises(h5a.BadRequestError) as ei:
            await c.create_dataset("/x", (10,), "<f8", compression="bitshuffle")
        assert "not available" in ei.value.message and "32008" in ei.value.message
        with pytest.raises(h5a.BadRequestError):
            await c.write("/x", np.arange(10.0), compression="bitshuffle")
        with pytest.raises(h5a.BadRequestError):
            await c.create_dataset("/x", (10,), compression="bitshuffle", compression_opts=1)

    session(server, body)


@pytest.mark.skipif(not HAVE_BITSHUFFLE, reason="needs the bitshuffle HDF5 plugin")
def test_bitshuffle_roundtrip(server):
    data = np.arange(5000, dtype="<u4")

    async def body(c):
        await c.write("/bs", data, compression="bitshuffle")
        np.testing.assert_array_equal(await c.read("/bs"), data)

    session(server, body)
    server.stop()
    with h5py.File(server.file, "r") as f:
        np.testing.assert_array_equal(f["bs"][()], data)


# ------------------------------------------------------------------ resize


def test_resize_matches_h5py(server, tmp_path):
    """The same sequence of writes and resizes in h5py and through the
    server gives the same dataset, fill values where data was dropped."""
    steps = [
        ("resize", (20, 8)), ("write", np.s_[15:, 5:], 2.0), ("resize", (12, 6)),
        ("resize", (30, 10)), ("write", np.s_[::7, ::3], 3.0), ("resize", (5, 10)),
        ("resize", (0, 0)), ("resize", (9, 9)),
    ]
    base = np.arange(80, dtype="<f8").reshape(10, 8)
    kw = dict(maxshape=(None, 10), chunks=(4, 3), fillvalue=-5.0, compression="gzip")

    async def body(c):
        await c.create_dataset("/r", base.shape, base.dtype, **kw)
        await c.write_slice("/r", (), base)
        for st in steps:
            if st[0] == "resize":
                assert await c.resize("/r", st[1]) == st[1]
            else:
                await c.write_slice("/r", st[1], st[2])
        return await c.read("/r")

    got = session(server, body)
    oracle = str(tmp_path / "o.h5")
    with h5py.File(oracle, "w") as f:
        ds = f.create_dataset("r", base.shape, base.dtype, **kw)
        ds[()] = base
        for st in steps:
            if st[0] == "resize":
                ds.resize(st[1])
            else:
                ds[st[1]] = st[2]
        want = ds[()]
    np.testing.assert_array_equal(got, want)
    server.stop()
    with h5py.File(server.file, "r") as f:
        np.testing.assert_array_equal(f["r"][()], want)


def test_resize_axis_and_errors(server):
    async def body(c):
        await c.create_dataset("/r", (4, 3), "<i4", maxshape=(10, None))
        assert await c.resize("/r", 7, axis=0) == (7, 3)
        assert await c.resize("/r", 100, axis=-1) == (7, 100)
        assert await c.resize("/r", (4, 3)) == (4, 3)
        with pytest.raises(h5a.OutOfRangeError) as ei:
            await c.resize("/r", (11, 3))
        assert "maxshape" in ei.value.message
        with pytest.raises(h5a.OutOfRangeError):
            await c.resize("/r", 5, axis=2)
        with pytest.raises(h5a.ShapeMismatchError):
            await c.resize("/r", (4,))
        await c.write("/w", np.arange(3))
        with pytest.raises(h5a.OutOfRangeError) as ei:
            await c.resize("/w", (5,))
        assert "not chunked" in ei.value.message
        assert await c.resize("/w", (3,)) == (3,)  # no change is fine
        await c.create_dataset("/fixed_chunked", (4,), chunks=(2,))
        with pytest.raises(h5a.OutOfRangeError):
            await c.resize("/fixed_chunked", (5,))
        assert await c.resize("/fixed_chunked", (2,)) == (2,)  # shrinking within maxshape
        await c.write("/sc", 1.0)
        assert await c.resize("/sc", ()) == ()
        with pytest.raises(h5a.OutOfRangeError):
            await c.resize("/sc", 1, axis=0)
        with pytest.raises(h5a.NotFoundError):
            await c.resize("/nope", (1,))
        await c.create_group("/g")
        with pytest.raises(h5a.NotADatasetError):
            await c.resize("/g", (1,))
        with pytest.raises(TypeError):
            await c.resize("/r", (1, 2), axis=0)
        return await c.read("/r")

    assert session(server, body).shape == (4, 3)
    with RawConn(server) as rc:
        r = rc.call({"id": 1, "op": "resize", "path": "/r", "shape": [1, 2], "axis": 0})
        assert_error(r, "BAD_REQUEST", 1)
        r = rc.call({"id": 2, "op": "resize", "path": "/r", "shape": [1, 2], "dtype": "<f8"})
        assert_error(r, "BAD_REQUEST", 2)
        r = rc.call({"id": 3, "op": "resize", "path": "/r", "shape": 2, "axis": "0"})
        assert_error(r, "BAD_REQUEST", 3)
        r = rc.call({"id": 4, "op": "resize", "path": "/r", "shape": 5, "axis": 1})
        assert assert_ok(r) == {"shape": [4, 5]}


def test_resize_and_appends_keep_order(server):
    """Pipelined appends, resizes, slice writes and reads from several
    connections: each connection's operations apply in its order, so a
    resize between appends is never folded into the batched appends."""

    async def body(c):
        await c.create_dataset("/q", (0, 2), "<i8", maxshape=(None, 2))
        futs = []
        for i in range(50):
            futs.append(c.append("/q", np.full((1, 2), i)))
            if i % 10 == 9:
                futs.append(c.resize("/q", 3, axis=0))  # keeps the first 3 rows
                futs.append(c.write_slice("/q", np.s_[-1], [i, -i]))
                futs.append(c.read("/q", np.s_[-1]))
        res = await asyncio.gather(*futs)
        reads = [r for r in res if isinstance(r, np.ndarray) and r.shape == (2,)]
        assert [r.tolist() for r in reads] == [[i, -i] for i in range(9, 50, 10)]
        return await c.read("/q")

    out = session(server, body)
    # after the last resize: rows 0, 1, then [49, -49]
    np.testing.assert_array_equal(out, [[0, 0], [1, 1], [49, -49]])


def test_resize_seen_by_cached_handles(server):
    """The server keeps datasets open between requests; a resize through
    one path is seen by the next read, append and write_slice."""

    async def body(c):
        await c.append("/c", np.arange(10))
        np.testing.assert_array_equal(await c.read("/c"), np.arange(10))
        assert await c.resize("/c", (4,)) == (4,)
        np.testing.assert_array_equal(await c.read("/c"), np.arange(4))
        assert await c.append("/c", [100]) == (5,)
        assert await c.resize("/c", (7,)) == (7,)
        await c.write_slice("/c", np.s_[5:], [5, 6])
        return await c.read("/c")

    np.testing.assert_array_equal(session(server, body), [0, 1, 2, 3, 100, 5, 6])
