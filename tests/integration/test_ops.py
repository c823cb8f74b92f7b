"""Every operation through the Python client, its results, its errors, and
the file h5py sees afterwards."""

import h5py
import numpy as np
import pytest

from h5a_util import h5open, session, snapshot

import hdf5_async as h5a


# ----------------------------------------------------------------- ping


def test_ping(server):
    assert session(server, lambda c: c.ping()) == "pong"


# ---------------------------------------------------------- create_group


def test_create_group_with_parents(server):
    async def body(c):
        assert await c.create_group("/a/b/c") is None
        assert await c.create_group("/a/b/c") is None  # exists: no-op
        assert await c.create_group("/a") is None
        assert await c.create_group("/") is None
        await c.write("/a/b/c/x", np.arange(3))
        await c.create_group("/a/b/c")  # still a no-op with content
        np.testing.assert_array_equal(await c.read("/a/b/c/x"), np.arange(3))

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert isinstance(f["/a"], h5py.Group)
        assert isinstance(f["/a/b/c"], h5py.Group)
        np.testing.assert_array_equal(f["/a/b/c/x"][()], np.arange(3))


def test_create_group_errors(server):
    async def body(c):
        await c.write("/d", np.arange(3))
        with pytest.raises(h5a.ExistsError) as ei:
            await c.create_group("/d")
        assert ei.value.code == "EXISTS"
        with pytest.raises(h5a.NotAGroupError) as ei:
            await c.create_group("/d/sub")
        assert ei.value.code == "NOT_A_GROUP"
        with pytest.raises(h5a.NotAGroupError):
            await c.create_group("/d/sub/deeper")
        with pytest.raises(h5a.BadPathError):
            await c.create_group("relative")

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert list(f.keys()) == ["d"]
        np.testing.assert_array_equal(f["d"][()], np.arange(3))


# ------------------------------------------------------------ write/read


def test_write_read_creates_parents(server):
    async def body(c):
        assert await c.write("/x/y/z", np.arange(6).reshape(2, 3)) == (2, 3)
        out = await c.read("/x/y/z")
        np.testing.assert_array_equal(out, np.arange(6).reshape(2, 3))
        assert out.flags.writeable
        out[0, 0] = 42  # our copy, not the server's
        np.testing.assert_array_equal(await c.read("/x/y/z"), np.arange(6).reshape(2, 3))

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert isinstance(f["/x/y"], h5py.Group)
        np.testing.assert_array_equal(f["/x/y/z"][()], np.arange(6).reshape(2, 3))


def test_write_replaces_different_shape_and_type(server):
    async def body(c):
        await c.write("/d", np.arange(10))
        assert await c.write("/d", np.ones((2, 2), dtype="f4")) == (2, 2)
        out = await c.read("/d")
        assert out.dtype == np.float32 and out.shape == (2, 2)
        assert await c.write("/d", "now a string") == ()
        assert await c.read("/d") == "now a string"

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert f["d"].asstr()[()] == "now a string"


def test_write_same_shape_in_place_keeps_layout(server):
    async def body(c):
        await c.write("/d", np.zeros(1000), compression="gzip", compression_opts=7)
        await c.write("/d", np.arange(1000.0))  # same shape and type: in place
        await c.update("/d", np.arange(1000.0) * 2)

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        ds = f["d"]
        assert ds.compression == "gzip" and ds.compression_opts == 7
        np.testing.assert_array_equal(ds[()], np.arange(1000.0) * 2)


def test_update_is_write(server):
    async def body(c):
        assert await c.update("/u", np.arange(4)) == (4,)
        assert await c.update("/u", [1.5, 2.5]) == (2,)
        return await c.read("/u")

    out = session(server, body)
    np.testing.assert_array_equal(out, [1.5, 2.5])


def test_write_errors(server):
    async def body(c):
        await c.create_group("/g")
        await c.write("/d", 1)
        with pytest.raises(h5a.NotADatasetError):
            await c.write("/g", np.arange(3))
        with pytest.raises(h5a.NotAGroupError):
            await c.write("/d/x", np.arange(3))
        with pytest.raises(h5a.NotADatasetError):
            await c.update("/g", 1)
        with pytest.raises(h5a.UnsupportedTypeError):
            await c.write("/t", np.array(["2020-01-01"], dtype="M8[D]"))
        with pytest.raises(h5a.UnsupportedTypeError):
            await c.write("/t", np.array([1], dtype="m8[s]"))

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert sorted(f.keys()) == ["d", "g"]
        assert len(f["g"]) == 0


def test_read_errors(server):
    async def body(c):
        await c.create_group("/g")
        with pytest.raises(h5a.NotFoundError) as ei:
            await c.read("/missing")
        assert ei.value.code == "NOT_FOUND" and ei.value.message
        with pytest.raises(h5a.NotFoundError):
            await c.read("/g/missing/deeper")
        with pytest.raises(h5a.NotADatasetError):
            await c.read("/g")
        with pytest.raises(h5a.NotADatasetError):
            await c.read("/")

    session(server, body)


def test_read_unsupported_type_written_by_h5py(start_server):
    def pre(path):
        with h5py.File(path, "w") as f:
            f.create_dataset("vlen_ints", (2,), dtype=h5py.vlen_dtype(np.int32))
            f.create_dataset("ok", data=np.arange(3))
            f.create_group("g")
            f["ref"] = f["g"].ref

    srv = start_server(precreate=pre)

    async def body(c):
        with pytest.raises(h5a.UnsupportedTypeError):
            await c.read("/vlen_ints")
        with pytest.raises(h5a.UnsupportedTypeError):
            await c.read("/ref")
        np.testing.assert_array_equal(await c.read("/ok"), np.arange(3))

    session(srv, body)


# ---------------------------------------------------------------- delete


def test_delete(server):
    async def body(c):
        await c.write("/g/sub/a", np.arange(3))
        await c.write("/g/b", 1.0)
        await c.write("/keep", np.arange(2))
        assert await c.delete("/g/b") is None
        with pytest.raises(h5a.NotFoundError):
            await c.read("/g/b")
        assert await c.delete("/g") is None  # recursive
        with pytest.raises(h5a.NotFoundError):
            await c.read("/g/sub/a")
        with pytest.raises(h5a.NotFoundError):
            await c.delete("/g")
        with pytest.raises(h5a.NotFoundError):
            await c.delete("/never/was")
        with pytest.raises(h5a.BadPathError):
            await c.delete("/")
        # the name can be used again
        await c.write("/g", np.arange(4))
        np.testing.assert_array_equal(await c.read("/g"), np.arange(4))

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert sorted(f.keys()) == ["g", "keep"]
        np.testing.assert_array_equal(f["g"][()], np.arange(4))


def test_delete_then_rewrite_does_not_grow_without_end(server):
    import os

    block = np.random.default_rng(0).random(200_000)  # 1.6 MB

    async def body(c):
        for _ in range(15):
            await c.write("/big", block)
            await c.delete("/big")
        await c.write("/big", block)

    session(server, body)
    server.stop()
    # 16 writes of 1.6 MB: a file that reuses freed space stays far below 16x
    assert os.path.getsize(server.file) < 8 * block.nbytes
    with h5open(server.file) as f:
        np.testing.assert_array_equal(f["big"][()], block)


# ---------------------------------------------------------------- append


def test_append_creates_chunked_resizable(server):
    async def body(c):
        assert await c.append("/rows", np.arange(10.0)) == (10,)
        # one row of a 2-D dataset: shape (trailing) appends one row
        assert await c.append("/m", np.arange(4, dtype="i4")) == (4,)
        assert await c.append("/two", np.ones((1, 8))) == (1, 8)
        assert await c.append("/two", np.arange(8.0)) == (2, 8)
        assert await c.append("/two", np.zeros((3, 8))) == (5, 8)
        assert await c.append("/scalar_start", 5) == (1,)
        assert await c.append("/scalar_start", 6) == (2,)
        assert await c.append("/scalar_start", [7, 8]) == (4,)
        return await c.read("/two"), await c.read("/scalar_start")

    two, sc = session(server, body)
    np.testing.assert_array_equal(two, np.vstack([np.ones(8), np.arange(8.0), np.zeros((3, 8))]))
    np.testing.assert_array_equal(sc, [5, 6, 7, 8])
    server.stop()
    with h5open(server.file) as f:
        for name in ("rows", "two", "scalar_start"):
            ds = f[name]
            assert ds.chunks is not None, name
            assert ds.maxshape[0] is None, name
            assert ds.chunks[0] > 1, (name, ds.chunks)
        assert f["two"].maxshape == (None, 8)
        assert f["two"].chunks[1:] == (8,)


def test_append_one_row_first_gives_big_chunks(server):
    async def body(c):
        await c.append("/r", np.zeros((1, 3), dtype="f8"))
        await c.append("/wide", np.zeros((1, 100000), dtype="f8"))

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        ds = f["r"]
        assert ds.shape == (1, 3) and ds.maxshape == (None, 3)
        assert ds.chunks[0] > 1
        chunk_bytes = np.prod(ds.chunks) * ds.dtype.itemsize
        assert 16 * 1024 <= chunk_bytes <= 4 * 1024 * 1024, ds.chunks
        wide = f["wide"]
        assert wide.maxshape == (None, 100000)


def test_append_to_write_created_dataset(server):
    async def body(c):
        await c.write("/w", np.arange(6).reshape(3, 2))
        assert await c.append("/w", np.array([[6, 7]])) == (4, 2)
        assert await c.append("/w", np.array([8, 9])) == (5, 2)
        return await c.read("/w")

    out = session(server, body)
    np.testing.assert_array_equal(out, np.arange(10).reshape(5, 2))
    server.stop()
    with h5open(server.file) as f:
        assert f["w"].maxshape == (None, 2)
        np.testing.assert_array_equal(f["w"][()], np.arange(10).reshape(5, 2))


def test_append_numeric_conversion(server):
    async def body(c):
        await c.append("/f", np.array([1.5, 2.5]))
        assert await c.append("/f", np.array([3, 4], dtype="i2")) == (4,)
        await c.append("/i", np.array([1, 2], dtype="i4"))
        assert await c.append("/i", np.array([3.0, 4.0])) == (4,)
        assert await c.append("/i", [5]) == (5,)
        return await c.read("/f"), await c.read("/i")

    f, i = session(server, body)
    assert f.dtype == np.float64 and f.tolist() == [1.5, 2.5, 3, 4]
    assert i.dtype == np.int32 and i.tolist() == [1, 2, 3, 4, 5]


def test_append_strings(server):
    async def body(c):
        await c.append("/s", ["a", "b"])
        assert await c.append("/s", "c") == (3,)
        await c.append("/fixed", np.array([b"ab", b"cd"]))
        assert await c.append("/fixed", np.array([b"ef"])) == (3,)
        return await c.read("/s"), await c.read("/fixed")

    s, fixed = session(server, body)
    assert s.tolist() == ["a", "b", "c"]
    assert fixed.dtype == np.dtype("S2") and fixed.tolist() == [b"ab", b"cd", b"ef"]


def test_append_structured(server):
    dt = np.dtype([("t", "<f8"), ("v", "<i4", (2,))])

    async def body(c):
        a = np.zeros(2, dt)
        a["t"] = [1, 2]
        await c.append("/st", a)
        b = np.zeros((), dt)
        b["t"] = 3
        assert await c.append("/st", b) == (3,)
        return await c.read("/st")

    out = session(server, body)
    assert out.dtype == dt and out["t"].tolist() == [1, 2, 3]


def test_append_errors_change_nothing(start_server):
    before = {}

    def pre(path):
        with h5py.File(path, "w") as f:
            f.create_dataset("m", data=np.arange(6.0).reshape(3, 2), maxshape=(None, 2), chunks=(4, 2))
            f["fixed"] = np.arange(4).reshape(2, 2)
            f["scalar"] = 3.0
            f["strs"] = np.array([b"ab"])
            f.create_dataset("st", data=np.zeros(2, [("a", "i4")]), maxshape=(None,))
            f.create_group("g")
        before.update(snapshot(path))  # the server holds the file once started

    srv = start_server(precreate=pre)

    async def body(c):
        with pytest.raises(h5a.ShapeMismatchError):
            await c.append("/m", np.zeros((2, 3)))
        with pytest.raises(h5a.ShapeMismatchError):
            await c.append("/m", np.zeros(3))
        with pytest.raises(h5a.ShapeMismatchError):
            await c.append("/m", np.zeros((1, 1, 2)))
        with pytest.raises(h5a.ShapeMismatchError):
            await c.append("/m", 1.0)
        with pytest.raises(h5a.ShapeMismatchError):
            await c.append("/fixed", np.zeros((1, 3), dtype=np.int64))
        with pytest.raises(h5a.ShapeMismatchError):
            await c.append("/scalar", 1.0)
        with pytest.raises(h5a.TypeMismatchError):
            await c.append("/m", np.array([["a", "b"]]))
        with pytest.raises(h5a.TypeMismatchError):
            await c.append("/m", np.array([[b"a", b"b"]]))
        with pytest.raises(h5a.TypeMismatchError):
            await c.append("/strs", np.array([1]))
        with pytest.raises(h5a.TypeMismatchError):
            await c.append("/strs", np.array([b"abc"]))  # S3 into S2
        with pytest.raises(h5a.TypeMismatchError):
            await c.append("/st", np.zeros(1, [("b", "i4")]))
        with pytest.raises(h5a.TypeMismatchError):
            await c.append("/m", np.zeros((1, 2), dtype="c16"))
        with pytest.raises(h5a.NotADatasetError):
            await c.append("/g", np.arange(3))
        with pytest.raises(h5a.NotAGroupError):
            await c.append("/fixed/x", np.arange(3))
        with pytest.raises(h5a.UnsupportedTypeError):
            await c.append("/m", np.zeros((1, 2), dtype="M8[s]"))

    session(srv, body)
    srv.stop()
    assert snapshot(srv.file) == before


# ---------------------------------------------------------------- insert


@pytest.mark.parametrize(
    "index,expected",
    [
        (0, [100, 0, 1, 2, 3, 4]),
        (2, [0, 1, 100, 2, 3, 4]),
        (5, [0, 1, 2, 3, 4, 100]),
        (-1, [0, 1, 2, 3, 100, 4]),
        (-5, [100, 0, 1, 2, 3, 4]),
    ],
    ids=["at0", "middle", "end", "neg1", "neg_len"],
)
@pytest.mark.parametrize("resizable", [True, False], ids=["append-made", "write-made"])
def test_insert_positions(server, index, expected, resizable):
    async def body(c):
        if resizable:
            await c.append("/d", np.arange(5))
        else:
            await c.write("/d", np.arange(5))
        assert await c.insert("/d", index, np.array([100])) == (6,)
        return await c.read("/d")

    out = session(server, body)
    assert out.tolist() == expected
    server.stop()
    with h5open(server.file) as f:
        assert f["d"][()].tolist() == expected
        assert f["d"].maxshape == (None,)


def test_insert_rows_2d(server):
    async def body(c):
        await c.append("/m", np.arange(8).reshape(4, 2))
        assert await c.insert("/m", 1, np.array([[-1, -1], [-2, -2]])) == (6, 2)
        assert await c.insert("/m", -1, np.array([9, 9])) == (7, 2)  # one row
        return await c.read("/m")

    out = session(server, body)
    assert out.tolist() == [[0, 1], [-1, -1], [-2, -2], [2, 3], [4, 5], [9, 9], [6, 7]]


def test_insert_large_resizable(server):
    base = np.arange(300_000, dtype="i8")

    async def body(c):
        for k in range(3):
            await c.append("/big", base[k * 100_000:(k + 1) * 100_000])
        await c.insert("/big", 150_000, np.array([-7, -8]))
        return await c.read("/big")

    out = session(server, body)
    expected = np.concatenate([base[:150_000], [-7, -8], base[150_000:]])
    np.testing.assert_array_equal(out, expected)


def test_insert_compression(server):
    async def body(c):
        await c.write("/w", np.arange(100.0))
        await c.insert("/w", 0, np.array([1.0]), compression="gzip", compression_opts=3)
        await c.append("/a", np.arange(100.0), compression="lzf")
        await c.insert("/a", 0, np.array([1.0]), compression="gzip")  # ignored: in place

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        w = f["w"]
        assert w.compression == "gzip" and w.compression_opts == 3
        assert w.maxshape == (None,) and w.chunks is not None
        assert w.shape == (101,) and w[0] == 1.0 and w[1] == 0.0
        assert f["a"].compression == "lzf"
        assert f["a"].shape == (101,)


def test_insert_errors_change_nothing(start_server):
    before = {}

    def pre(path):
        with h5py.File(path, "w") as f:
            f.create_dataset("m", data=np.arange(6.0).reshape(3, 2), maxshape=(None, 2), chunks=(4, 2))
            f["fixed"] = np.arange(5)
            f["scalar"] = 1
            f.create_group("g")
        before.update(snapshot(path))  # the server holds the file once started

    srv = start_server(precreate=pre)

    async def body(c):
        with pytest.raises(h5a.OutOfRangeError):
            await c.insert("/m", 4, np.zeros(2))
        with pytest.raises(h5a.OutOfRangeError):
            await c.insert("/m", -4, np.zeros(2))
        with pytest.raises(h5a.OutOfRangeError):
            await c.insert("/fixed", 6, np.array([1]))
        with pytest.raises(h5a.OutOfRangeError):
            await c.insert("/fixed", -(2**62), np.array([1]))
        with pytest.raises(h5a.NotFoundError):
            await c.insert("/missing", 0, np.array([1]))
        with pytest.raises(h5a.NotADatasetError):
            await c.insert("/g", 0, np.array([1]))
        with pytest.raises(h5a.ShapeMismatchError):
            await c.insert("/m", 0, np.zeros((1, 3)))
        with pytest.raises(h5a.ShapeMismatchError):
            await c.insert("/scalar", 0, 1)
        with pytest.raises(h5a.TypeMismatchError):
            await c.insert("/fixed", 0, ["x"])
        with pytest.raises(h5a.TypeMismatchError):
            await c.insert("/m", 1, np.array([[b"a", b"b"]]))

    session(srv, body)
    srv.stop()
    assert snapshot(srv.file) == before


# ----------------------------------------------------- paths via client


BAD_PATHS = ["", "a", "a/b", "//", "//a", "/a//b", "/a/", "/.", "/..", "/a/./b", "/a/../b", "/a/."]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_every_op(server, path):
    async def body(c):
        calls = [
            c.create_group(path),
            c.write(path, 1),
            c.update(path, 1),
            c.read(path),
            c.append(path, 1),
            c.insert(path, 0, 1),
            c.delete(path),
        ]
        for call in calls:
            with pytest.raises(h5a.BadPathError) as ei:
                await call
            assert ei.value.code == "BAD_PATH"

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert len(f) == 0


def test_unusual_but_valid_names(server):
    names = ["/with space", "/ünïcode", "/a.b", "/...", "/a-b_c"]

    async def body(c):
        for i, n in enumerate(names):
            await c.write(n, i)
        return [await c.read(n) for n in names]

    out = session(server, body)
    assert [int(x) for x in out] == list(range(len(names)))


def test_hdf5_error_on_corrupt_chunk(start_server):
    """libhdf5 failures surface as HDF5_ERROR with its message; the server
    and the rest of the file are fine."""
    before = {}

    def pre(path):
        with h5py.File(path, "w") as f:
            ds = f.create_dataset("bad", shape=(8,), dtype="<f8", chunks=(8,), compression="gzip")
            ds.id.write_direct_chunk((0,), b"this is not deflate data", filter_mask=0)
            f["good"] = np.arange(3)
        with h5py.File(path, "r") as f:
            before["good"] = f["good"][()].tolist()

    srv = start_server(precreate=pre)

    async def body(c):
        with pytest.raises(h5a.HDF5Error) as ei:
            await c.read("/bad")
        assert ei.value.code == "HDF5_ERROR" and ei.value.message
        assert (await c.read("/good")).tolist() == before["good"]
        assert await c.ping() == "pong"

    session(srv, body)
