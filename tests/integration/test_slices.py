"""Partial reads (read with a selection) and write_slice, with NumPy and
h5py as the oracles: every selection is compared with the same indexing of
the same data."""

import asyncio
import random

import h5py
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, h5open, session

import hdf5_async as h5a


def random_selection(rng, shape, allow_out_of_range=True):
    """A random NumPy basic-indexing tuple for shape: ints (sometimes out
    of range), slices with bounds inside, outside and negative, positive
    steps, an Ellipsis now and then, fewer items than axes now and then."""
    nd = len(shape)
    nitems = rng.randint(0, nd)
    items = []
    for ax in range(nitems):
        n = shape[ax]
        r = rng.random()
        if r < 0.3 and (n > 0 or allow_out_of_range):
            lo, hi = (-n - 2, n + 1) if allow_out_of_range else (-n, n - 1)
            items.append(rng.randint(lo, hi))
        else:
            def bound():
                return None if rng.random() < 0.3 else rng.randint(-n - 3, n + 3)
            step = rng.choice([None, 1, 1, 2, 3, 7, 1 << 40])
            items.append(slice(bound(), bound(), step))
    if nd and rng.random() < 0.25:
        # (in range only: an ellipsis moves the items after it to other axes)
        items.insert(rng.randint(0, len(items)) if allow_out_of_range else len(items), Ellipsis)
    return tuple(items)


def numpy_result(arr, sel):
    try:
        return arr[sel], None
    except IndexError as e:
        return None, e


SHAPES = [(0,), (1,), (7,), (13, 5), (4, 0, 3), (6, 7, 8), (3, 4, 5, 6), (2, 1, 3, 1, 2)]


@pytest.mark.parametrize("chunked", [False, True])
def test_random_selections_match_numpy(server, chunked):
    rng = random.Random(5 + chunked)
    arrays = {}
    for i, shape in enumerate(SHAPES):
        n = int(np.prod(shape))
        arrays["/d%d" % i] = (np.arange(n, dtype="<i4") * 3 - 7).reshape(shape)

    async def body(c):
        for path, arr in arrays.items():
            if chunked:
                await c.create_dataset(path, arr.shape, arr.dtype, chunks=True,
                                       maxshape=(None,) * arr.ndim)
                await c.write_slice(path, (), arr)
            else:
                await c.write(path, arr)
        cases = []
        for path, arr in arrays.items():
            for _ in range(60):
                cases.append((path, random_selection(rng, arr.shape)))
        # pipelined: all reads in flight at once
        results = await asyncio.gather(
            *(c.read(p, s) for p, s in cases), return_exceptions=True
        )
        checked = errors = 0
        for (path, sel), got in zip(cases, results):
            want, err = numpy_result(arrays[path], sel)
            if err is not None:
                assert isinstance(got, h5a.OutOfRangeError), (path, sel, got)
                assert "out of range" in got.message
                errors += 1
                continue
            assert not isinstance(got, Exception), (path, sel, got)
            assert np.shape(got) == np.shape(want), (path, sel)
            assert np.asarray(got).dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=repr((path, sel)))
            checked += 1
        assert checked > 300 and errors > 10
        return checked

    session(server, body)


def test_selection_forms(server):
    a = np.arange(2 * 3 * 4 * 5, dtype="<f8").reshape(2, 3, 4, 5)

    async def body(c):
        await c.write("/a", a)
        for sel in [
            np.s_[1], np.s_[-1], np.s_[:, 2], np.s_[..., 1], np.s_[1, ..., 2], np.s_[...],
            np.s_[()], np.s_[0, 0, 0, 0], np.s_[-2, -3, -4, -5], np.s_[::2, 1:, :-1, ::3],
            np.s_[5:1], np.s_[100:], np.s_[-100:], np.s_[1, ...], np.s_[..., 0, 0, 0, 0],
            np.s_[np.int64(1), np.uint8(2)], np.s_[: 1 << 70], np.s_[-(1 << 70):],
        ]:
            got = await c.read("/a", sel)
            want = a[sel]
            assert np.shape(got) == np.shape(want), sel
            np.testing.assert_array_equal(got, want)
        # an all-index selection gives a numpy scalar, as h5py does
        v = await c.read("/a", (1, 2, 3, 4))
        assert isinstance(v, np.float64) and v == a[1, 2, 3, 4]
        # selection=None and () are the whole dataset
        np.testing.assert_array_equal(await c.read("/a", None), a)
        # keyword form
        np.testing.assert_array_equal(await c.read("/a", selection=np.s_[1, 1]), a[1, 1])

    session(server, body)


def test_selection_errors(server):
    async def body(c):
        await c.write("/a", np.arange(12).reshape(3, 4))
        await c.write("/s", 5)
        await c.create_group("/g")
        with pytest.raises(h5a.OutOfRangeError) as ei:
            await c.read("/a", np.s_[3])
        assert "index 3 is out of range for axis 0" in ei.value.message
        with pytest.raises(h5a.OutOfRangeError):
            await c.read("/a", np.s_[0, -5])
        with pytest.raises(h5a.ShapeMismatchError) as ei:
            await c.read("/a", np.s_[0, 0, 0])
        assert "indexes 3 axes" in ei.value.message
        with pytest.raises(h5a.ShapeMismatchError):
            await c.read("/s", np.s_[0])
        assert await c.read("/s", ()) == 5
        assert await c.read("/s", ...) == 5
        with pytest.raises(h5a.BadRequestError) as ei:
            await c.read("/a", np.s_[::-1])
        assert "step -1 is not supported" in ei.value.message
        with pytest.raises(h5a.BadRequestError):
            await c.read("/a", np.s_[:, ::0])
        with pytest.raises(h5a.NotFoundError):
            await c.read("/nope", np.s_[0])
        with pytest.raises(h5a.NotADatasetError):
            await c.read("/g", np.s_[0])
        # refused before sending: not basic indexing
        for bad, text in [
            (np.s_[None, 0], "newaxis"),  # (None alone means: no selection)
            (np.s_[[0, 1]], "fancy"),
            (np.s_[np.array([0])], "fancy"),
            (np.s_[True], "boolean"),
            (np.s_[1.5], "integers"),
            (np.s_[..., ...], "single ellipsis"),
            (np.s_[0:1.5], "integers"),
            ("x", "integers"),
        ]:
            with pytest.raises(IndexError, match=text):
                await c.read("/a", bad)
        assert await c.ping() == "pong"

    session(server, body)


def test_selection_wire_errors(server):
    with RawConn(server) as rc:
        assert_ok(rc.call({"id": 1, "op": "write", "path": "/a", "data": [[1, 2], [3, 4]]}))
        r = rc.call({"id": 2, "op": "read", "path": "/a", "selection": [1, [None, None, None]]})
        assert assert_ok(r)[b"shape"] == [2]
        r = rc.call({"id": 3, "op": "read", "path": "/a", "selection": ["...", 1]})
        assert assert_ok(r)[b"shape"] == [2]
        r = rc.call({"id": 4, "op": "read", "path": "/a", "selection": None})
        assert assert_ok(r)[b"shape"] == [2, 2]
        for i, (sel, text) in enumerate([
            (5, "must be a list"),
            ([1.0], "must be an integer"),
            ([[1, 2]], "of other length"),
            ([[1, 2, 0]], "step 0 is not supported"),
            ([[None, None, -2]], "steps must be positive"),
            ([[None, "a", None]], "must be integers or nil"),
            (["...", "..."], "only one"),
            (["..", 1], "not a str"),
            ([0] * 34, "at most 32"),
            ([None], "not a nil"),
        ]):
            r = rc.call({"id": 10 + i, "op": "read", "path": "/a", "selection": sel})
            assert_error(r, "BAD_REQUEST", 10 + i)
            assert text in r["error"]["message"], (sel, r)
        # a too-long selection with an ellipsis is still too long for the dataset
        r = rc.call({"id": 50, "op": "read", "path": "/a", "selection": [0] * 32 + ["..."]})
        assert_error(r, "SHAPE_MISMATCH", 50)
        # uint64 bounds past int64 are clamped as NumPy clamps them
        r = rc.call({"id": 51, "op": "read", "path": "/a",
                     "selection": [[(1 << 64) - 1, None, None]]})
        assert assert_ok(r)[b"shape"] == [0, 2]
        r = rc.call({"id": 52, "op": "read", "path": "/a", "selection": [(1 << 64) - 1]})
        assert_error(r, "OUT_OF_RANGE", 52)
        r = rc.call({"id": 53, "op": "write_slice", "path": "/a", "data": 1})
        assert_error(r, "BAD_REQUEST", 53)
        assert "needs a 'selection'" in r["error"]["message"]
        r = rc.call({"id": 54, "op": "write_slice", "path": "/a", "selection": [0]})
        assert_error(r, "BAD_REQUEST", 54)
        r = rc.call({"id": 55, "op": "append", "path": "/a", "selection": [0], "data": [1, 2]})
        assert_error(r, "BAD_REQUEST", 55)
        assert "takes no argument 'selection'" in r["error"]["message"]


def test_selection_types(server):
    """Selections of every kind of element type: structs, strings,
    big-endian, bool, complex."""
    st = np.array([(i, i * 0.5, b"x%d" % i) for i in range(10)],
                  dtype=[("a", "<i4"), ("b", ">f8"), ("c", "S3")])
    vals = {
        "/st": st,
        "/be": np.arange(20, dtype=">u2").reshape(4, 5),
        "/b": np.arange(12).reshape(3, 4) % 3 == 0,
        "/c": (np.arange(6) + 1j * np.arange(6)).astype("<c8"),
        "/S": np.array([b"ab", b"cd", b"ef"]),
    }

    async def body(c):
        for p, v in vals.items():
            await c.write(p, v)
        await c.write("/vs", ["a", "bb", "ccc", "dddd"])
        for p, v in vals.items():
            for sel in (np.s_[1:], np.s_[::2], np.s_[-1], np.s_[...]):
                got = await c.read(p, sel)
                want = v[sel]
                assert np.asarray(got).dtype == want.dtype, (p, sel)
                assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), (p, sel)
        assert (await c.read("/vs", np.s_[1::2])).tolist() == ["bb", "dddd"]
        assert await c.read("/vs", np.s_[2]) == "ccc"

    session(server, body)


def test_write_slice_random_matches_numpy(server):
    rng = random.Random(11)
    nrng = np.random.default_rng(11)
    shapes = [(9,), (6, 7), (4, 5, 6), (3, 0, 2)]

    async def body(c):
        expect = {}
        for i, shape in enumerate(shapes):
            p = "/w%d" % i
            expect[p] = np.zeros(shape, "<f8")
            if i % 2:
                await c.create_dataset(p, shape, "<f8", chunks=True)
            else:
                await c.write(p, expect[p])
        for _ in range(300):
            p = "/w%d" % rng.randrange(len(shapes))
            arr = expect[p]
            sel = random_selection(rng, arr.shape, allow_out_of_range=False)
            target = arr[sel]
            shape = np.shape(target)
            if rng.random() < 0.2:
                data = float(nrng.integers(0, 1000))  # broadcast scalar
            else:
                data = nrng.integers(0, 1000, size=shape).astype(rng.choice(["<f8", "<i4", ">f4"]))
            assert await c.write_slice(p, sel, data) == arr.shape
            arr[sel] = data
        for p, arr in expect.items():
            np.testing.assert_array_equal(await c.read(p), arr)
        return expect

    expect = session(server, body)
    server.stop()
    with h5open(server.file) as f:
        for p, arr in expect.items():
            np.testing.assert_array_equal(f[p][()], arr)


def test_write_slice_rules(server):
    async def body(c):
        await c.write("/a", np.zeros((4, 3), "<i2"))
        await c.write("/s", ["a", "b", "c"])
        await c.write("/sc", 1.5)
        await c.create_group("/g")
        # numbers convert as HDF5 converts them
        await c.write_slice("/a", np.s_[0], np.array([1.9, -2.0, 300.0]))
        await c.write_slice("/a", np.s_[1, 1:], [7, 8])
        await c.write_slice("/a", np.s_[2:, ::2], 5)  # one value, broadcast
        await c.write_slice("/a", np.s_[:0], np.zeros((0, 3)))  # nothing selected
        np.testing.assert_array_equal(
            await c.read("/a"), [[1, -2, 300], [0, 7, 8], [5, 0, 5], [5, 0, 5]]
        )
        await c.write_slice("/s", np.s_[1:], ["xx", "yyy"])
        await c.write_slice("/s", np.s_[0], "z")
        assert (await c.read("/s")).tolist() == ["z", "xx", "yyy"]
        assert await c.write_slice("/sc", (), 2.5) == ()
        assert await c.read("/sc") == 2.5
        with pytest.raises(h5a.ShapeMismatchError) as ei:
            await c.write_slice("/a", np.s_[0], [1, 2])
        assert "(2,)" in ei.value.message and "(3,)" in ei.value.message
        with pytest.raises(h5a.ShapeMismatchError):
            await c.write_slice("/a", np.s_[0:2], [[1, 2, 3]])  # no broadcasting of rows
        with pytest.raises(h5a.TypeMismatchError):
            await c.write_slice("/a", np.s_[0], ["a", "b", "c"])
        with pytest.raises(h5a.TypeMismatchError):
            await c.write_slice("/s", np.s_[0], 5)
        with pytest.raises(h5a.TypeMismatchError):
            await c.write_slice("/s", np.s_[0], b"bytes")  # ASCII into UTF-8
        with pytest.raises(h5a.NotFoundError) as ei:
            await c.write_slice("/nope", np.s_[0], 1)
        assert "create_dataset" in ei.value.message
        with pytest.raises(h5a.NotADatasetError):
            await c.write_slice("/g", np.s_[0], 1)
        with pytest.raises(h5a.OutOfRangeError):
            await c.write_slice("/a", np.s_[4], [1, 2, 3])
        with pytest.raises(h5a.BadRequestError):
            await c.write_slice("/a", np.s_[::-1], np.zeros((4, 3)))
        with pytest.raises(TypeError):
            await c.write_slice("/a", None, 1)
        np.testing.assert_array_equal(
            await c.read("/a"), [[1, -2, 300], [0, 7, 8], [5, 0, 5], [5, 0, 5]]
        )

    session(server, body)


def _h5py_datasets(path):
    """Chunked, compressed and resizable datasets as h5py makes them."""
    rng = np.random.default_rng(3)
    vals = {
        "gz": rng.random((50, 40)),
        "gz_shuffle": np.arange(3000, dtype=">i4").reshape(30, 100),
        "lzf3d": rng.integers(0, 100, (10, 12, 14)).astype("<u2"),
        "grow": np.arange(100.0),
        "fletcher": np.arange(64, dtype="<f4").reshape(8, 8),
        "struct": np.zeros(40, [("x", "<f8"), ("y", "<i2", (2,))]),
        "strs": np.array(["s%d" % i for i in range(25)], dtype=object),
        "tiny_chunks": np.arange(35, dtype="<i8").reshape(5, 7),
    }
    vals["struct"]["x"] = np.arange(40)
    vals["struct"]["y"] = np.arange(80).reshape(40, 2)
    with h5py.File(path, "w") as f:
        f.create_dataset("gz", data=vals["gz"], chunks=(7, 9), compression="gzip", compression_opts=5)
        f.create_dataset("gz_shuffle", data=vals["gz_shuffle"], compression="gzip", shuffle=True)
        f.create_dataset("lzf3d", data=vals["lzf3d"], compression="lzf", chunks=(3, 4, 5))
        f.create_dataset("grow", data=vals["grow"], maxshape=(None,), chunks=(16,))
        f.create_dataset("fletcher", data=vals["fletcher"], fletcher32=True, chunks=(3, 3))
        f.create_dataset("struct", data=vals["struct"], chunks=(6,), compression="gzip")
        f.create_dataset("strs", data=vals["strs"], dtype=h5py.string_dtype(), chunks=(4,))
        f.create_dataset("tiny_chunks", data=vals["tiny_chunks"], chunks=(1, 1))
    return vals


def test_h5py_chunked_datasets_fully_usable(start_server, tmp_path):
    """Files made by h5py: selections read what h5py reads, write_slice and
    resize do what they do in h5py (the same operations on a copy of the
    file through h5py are the oracle)."""
    vals = {}
    srv = start_server(precreate=lambda p: vals.update(_h5py_datasets(p)))
    oracle = str(tmp_path / "oracle.h5")
    _h5py_datasets(oracle)
    rng = random.Random(7)
    ops = []
    for name, v in vals.items():
        for _ in range(20):
            ops.append(("read", name, random_selection(rng, v.shape, allow_out_of_range=False)))
    writes = [
        ("gz", np.s_[3:20:4, 5], np.arange(5.0)),
        ("gz_shuffle", np.s_[-1], np.full(100, -1, ">i4")),
        ("lzf3d", np.s_[1, 2:9:3, ::5], np.ones((3, 3), "<u2")),
        ("grow", np.s_[90:], np.zeros(10)),
        ("fletcher", np.s_[..., 0], np.arange(8, dtype="<f4")),
        ("tiny_chunks", np.s_[1:4, 2:5], 9),
    ]
    resizes = [("grow", (250,)), ("grow", (40,)), ("grow", (60,))]

    async def body(c):
        for op, name, sel in ops:
            got = await c.read("/" + name, sel)
            want = vals[name][sel]
            if vals[name].dtype == object:
                assert np.asarray(got, dtype=object).tolist() == np.asarray(want).tolist()
            else:
                assert np.asarray(got).dtype == want.dtype
                assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), (name, sel)
        for name, sel, data in writes:
            await c.write_slice("/" + name, sel, data)
        for name, shape in resizes:
            assert await c.resize("/" + name, shape) == shape
        await c.write_slice("/strs", np.s_[::5], ["new"] * 5)
        await c.append("/grow", np.arange(5.0))  # still appendable

    session(srv, body)
    with h5py.File(oracle, "a") as f:
        for name, sel, data in writes:
            f[name][sel] = data
        for name, shape in resizes:
            f[name].resize(shape)
        f["strs"][::5] = ["new"] * 5
        n = f["grow"].shape[0]
        f["grow"].resize((n + 5,))
        f["grow"][n:] = np.arange(5.0)
    srv.stop()
    with h5py.File(srv.file, "r") as got, h5py.File(oracle, "r") as want:
        for name in vals:
            g, w = got[name], want[name]
            assert g.shape == w.shape and g.dtype == w.dtype, name
            assert g.chunks == w.chunks and g.compression == w.compression, name
            if w.dtype == object:
                assert g.asstr()[()].tolist() == w.asstr()[()].tolist()
            else:
                assert g[()].tobytes() == w[()].tobytes(), name


def test_few_rows_of_a_huge_dataset(server):
    """A dataset far larger than any reply (8 TB of float64, chunks never
    written): reading a few rows reads only them."""

    async def body(c):
        # resizable: its chunk index then grows with what is written (a
        # fixed-size dataset's would be allocated whole, 8 bytes a chunk)
        await c.create_dataset("/huge", (10 ** 12,), "<f8", chunks=(1 << 16,), fillvalue=-1.0,
                               maxshape=(None,))
        with pytest.raises(h5a.TooLargeError) as ei:
            await c.read("/huge")
        assert "selection" in ei.value.message
        await c.write_slice("/huge", np.s_[5 * 10 ** 11: 5 * 10 ** 11 + 3], [1.0, 2.0, 3.0])
        got = await c.read("/huge", np.s_[5 * 10 ** 11 - 1: 5 * 10 ** 11 + 4])
        np.testing.assert_array_equal(got, [-1, 1, 2, 3, -1])
        got = await c.read("/huge", np.s_[:: 10 ** 11])
        np.testing.assert_array_equal(got, [-1] * 5 + [1] + [-1] * 4)
        with pytest.raises(h5a.TooLargeError):
            await c.read("/huge", np.s_[::2])

    session(server, body)
    server.stop()
    import os
    assert os.path.getsize(server.file) < 10 * 1024 * 1024
