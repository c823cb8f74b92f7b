"""Every supported type, checked against h5py as the oracle.

For each value: write it through the server, read it back through the
server, then (server stopped) open the file with h5py and compare with a
reference file in which h5py itself wrote the same value: same HDF5 type
(H5Tequal), dtype, shape and values. Then the reverse: a server opened on
h5py's reference file must read every value back the same way.
"""

import shutil

import h5py
import numpy as np
import pytest

import h5a_util
from h5a_util import run

from hdf5_async import HDF5Client
from hdf5_async.codec import _item_type


def _struct(dt, n=3):
    a = np.zeros(n, dt)  # padding bytes stay zero
    rng = np.random.default_rng(len(dt.descr))
    for name in dt.names:
        _fill_field(a[name], rng)
    return a


def _fill_field(arr, rng):
    dt = arr.dtype
    if dt.names:
        for name in dt.names:
            _fill_field(arr[name], rng)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        arr[...] = rng.integers(max(info.min, -1000), min(info.max, 1000), size=arr.shape)
    elif dt.kind == "f":
        arr[...] = rng.random(arr.shape).astype(dt) * 100
    elif dt.kind == "c":
        arr[...] = rng.random(arr.shape) + 1j * rng.random(arr.shape)
    elif dt.kind == "b":
        arr[...] = rng.random(arr.shape) > 0.5
    elif dt.kind == "S":
        arr[...] = b"xy"
    elif dt.kind == "V":
        arr[...] = np.void(b"\x01" * dt.itemsize)


NESTED = np.dtype([("id", "<u4"), ("pos", [("x", "<f4"), ("y", "<f4")]), ("tag", "S4")])
SUBARRAY = np.dtype([("m", "<f8", (2, 3)), ("k", "<i2", (4,))])
ALIGNED = np.dtype([("a", "i1"), ("b", "<f8"), ("c", "<i2"), ("d", [("e", "u1"), ("f", "<i8")])], align=True)
BIG_ENDIAN_STRUCT = np.dtype([("a", ">i4"), ("b", ">f8", (2,)), ("c", ">c8")])
DEEP = np.dtype([("l1", [("l2", [("l3", "<i4", (2,)), ("z", "|b1")]), ("w", "<u2")])])


def _cases():
    c = []

    def add(name, value, ref=None):
        c.append(pytest.param((name, value, ref), id=name))

    for order in "<>":
        for kind, sizes in (("i", (1, 2, 4, 8)), ("u", (1, 2, 4, 8)), ("f", (2, 4, 8)), ("c", (8, 16))):
            for size in sizes:
                if size == 1 and order == ">":
                    continue  # no byte order for single bytes
                dt = np.dtype("%s%s%d" % (order, kind, size))
                if kind in "iu":
                    info = np.iinfo(dt)
                    arr = np.array([info.min, 0, 1, info.max], dtype=dt)
                elif kind == "f":
                    arr = np.array([-1.5, 0.0, 2.25, np.finfo(dt).max], dtype=dt)
                else:
                    arr = np.array([1 + 2j, -3.5j, 0], dtype=dt)
                add("array-%s" % dt.str, arr)
                add("scalar-%s" % dt.str, arr[1 if kind == "c" else -1])  # numpy scalar
                add("0d-%s" % dt.str, np.array(arr[0], dtype=dt))  # 0-d array
    add("array-b1", np.array([True, False, True]))
    add("scalar-b1", np.bool_(True))
    add("2d-b1", np.array([[True, False], [False, False]]))
    add("array-S1", np.array([b"a", b"b"], dtype="S1"))
    add("array-S5", np.array([b"hello", b"hi", b""], dtype="S5"))
    add("2d-S3", np.array([[b"abc", b"d"], [b"ef", b"ghi"]], dtype="S3"))
    add("scalar-S5", np.bytes_(b"fixed"))
    add("scalar-V2", np.void(b"\x01\x02"))
    add("0d-S4", np.array(b"four", dtype="S4"))
    add("array-V4", np.array([np.void(b"\x00\x01\x02\x03"), np.void(b"\xff\xfe\xfd\xfc")], dtype="V4"))
    add("3d-i4", np.arange(24, dtype="<i4").reshape(2, 3, 4))
    add("empty-f8", np.zeros((0,), dtype="f8"))
    add("empty-2d-i2", np.zeros((0, 3), dtype="<i2"))
    add("struct-plain", _struct(np.dtype([("a", "<i4"), ("b", "<f8")])))
    add("struct-nested", _struct(NESTED))
    add("struct-subarray", _struct(SUBARRAY))
    add("struct-aligned", _struct(ALIGNED))
    add("struct-bigendian", _struct(BIG_ENDIAN_STRUCT))
    add("struct-deep", _struct(DEEP))
    add("struct-2d", _struct(NESTED, 6).reshape(2, 3))
    add("struct-scalar", _struct(NESTED, 1)[0])
    add("struct-0d", _struct(SUBARRAY, 1).reshape(()))
    # Python values
    add("py-int", 42)
    add("py-negint", -(2**63))
    add("py-bigint", 2**64 - 1)
    add("py-float", 2.5)
    add("py-bool", True)
    add("py-complex", 1.5 - 2j)
    add("py-str", "héllo wörld")
    add("py-str-empty", "")
    add("py-bytes", b"ascii bytes")
    add("list-int", [1, 2, 3])
    add("list-float", [1.0, 2.5])
    add("list-mixed", [1, 2.5, True])
    add("list-bool", [True, False])
    add("list-complex", [1j, 2])
    add("list-nested", [[1, 2, 3], [4, 5, 6]])
    add("list-empty", [])
    add("tuple-int", (7, 8))
    add("list-str", ["a", "bé", "ccc"])
    add("list-str-2d", [["a", "b"], ["c", "d"]])
    add("list-bytes", [b"ab", b"c"])
    add("list-bytes-2d", [[b"ab", b"c"], [b"", b"d"]])
    add("list-np-bytes", [np.bytes_(b"ab"), np.bytes_(b"c")])
    add("U-array", np.array(["x", "yz", "ünï"]), "vlen")
    add("U-2d", np.array([["x", "y"], ["z", "w"]]), "vlen")
    add("object-str", np.array(["p", "q"], dtype=object), "vlen")
    return c


CASES = _cases()


def _ref_value(value, ref):
    """What to hand h5py so it writes what our server should write."""
    if ref == "vlen":
        return np.array(np.asarray(value).tolist(), dtype=h5py.string_dtype())
    if ref is not None:
        return np.array(value, dtype=ref)[()]
    if isinstance(value, tuple):
        return np.asarray(value)
    return value


def _expected_read(value, ref):
    if isinstance(value, (str, bytes)) and not isinstance(value, np.generic):
        return value
    if ref == "vlen" or (isinstance(value, (list, tuple)) and _item_type(value) in (str, bytes)):
        return np.array(np.asarray(value).tolist(), dtype=object)
    if isinstance(value, np.generic):
        return value
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, int):
        return np.asarray(value)[()]
    if isinstance(value, float):
        return np.float64(value)
    if isinstance(value, complex):
        return np.complex128(value)
    arr = np.asarray(value)
    if arr.ndim == 0:
        return arr[()]
    return arr


def assert_same(got, exp, what=""):
    """Exact equality of dtype, shape (or type for scalars) and values."""
    if isinstance(exp, np.ndarray):
        assert isinstance(got, np.ndarray), "%s: got %r" % (what, got)
        assert got.dtype == exp.dtype, "%s: dtype %r != %r" % (what, got.dtype, exp.dtype)
        assert got.shape == exp.shape, "%s: shape %r != %r" % (what, got.shape, exp.shape)
        if exp.dtype.names:
            for n in exp.dtype.names:
                assert_same(got[n], exp[n], "%s.%s" % (what, n))
        elif exp.dtype.kind == "O":
            assert got.tolist() == exp.tolist(), what
        else:
            assert got.tobytes() == exp.tobytes(), "%s: %r != %r" % (what, got, exp)
    elif isinstance(exp, np.generic):
        # np.uint64 and np.ulonglong are distinct types of one dtype
        assert isinstance(got, np.generic), "%s: not a numpy scalar: %r" % (what, got)
        assert got.dtype == exp.dtype, "%s: dtype %r != %r" % (what, got.dtype, exp.dtype)
        if exp.dtype.names:
            for n in exp.dtype.names:
                assert_same(np.asarray(got[n]), np.asarray(exp[n]), "%s.%s" % (what, n))
        else:
            assert np.asarray(got).tobytes() == np.asarray(exp).tobytes(), "%s: %r != %r" % (what, got, exp)
    else:
        assert type(got) is type(exp) and got == exp, "%s: %r != %r" % (what, got, exp)


def _h5py_value(ds):
    """A dataset's value as h5py gives it, vlen strings decoded as stored."""
    t = ds.id.get_type()
    if isinstance(t, h5py.h5t.TypeStringID) and t.is_variable_str():
        if t.get_cset() == h5py.h5t.CSET_UTF8:
            v = ds.asstr()[()]
        else:
            v = ds[()]
        return v
    return ds[()]


def _ds_name(name):
    return "/cases/" + name


@pytest.fixture(scope="module")
def dtype_run(tmp_path_factory):
    """Write every case through one server, read them back; then open a
    second server on h5py's reference file and read everything from it."""
    work = tmp_path_factory.mktemp("dtypes")
    srv = h5a_util.start_server(work / "ours")
    results = {}
    values = {p.values[0][0]: p.values[0] for p in CASES}

    async def write_all():
        async with HDF5Client(srv.host, srv.port, timeout=h5a_util.IO_TIMEOUT) as c:
            for name, (_, value, ref) in values.items():
                r = {}
                try:
                    r["shape"] = await c.write(_ds_name(name), value)
                    r["read"] = await c.read(_ds_name(name))
                except Exception as e:  # recorded, asserted per case
                    r["error"] = e
                results[name] = r

    try:
        run(write_all())
    finally:
        srv.stop()

    ref_path = str(work / "ref.h5")
    with h5py.File(ref_path, "w") as f:
        for name, (_, value, ref) in values.items():
            f.create_dataset(_ds_name(name), data=_ref_value(value, ref))

    # the reverse direction: the server reads what h5py wrote
    srv2 = h5a_util.start_server(work / "theirs", precreate=lambda p: shutil.copy(ref_path, p))

    async def read_all():
        async with HDF5Client(srv2.host, srv2.port, timeout=h5a_util.IO_TIMEOUT) as c:
            for name in values:
                try:
                    results[name]["read_ref"] = await c.read(_ds_name(name))
                except Exception as e:
                    results[name]["read_ref_error"] = e

    try:
        run(read_all())
    finally:
        srv2.stop()
    return {"ours": srv.file, "ref": ref_path, "results": results}


@pytest.mark.parametrize("case", CASES)
def test_round_trip_through_server(dtype_run, case):
    name, value, ref = case
    r = dtype_run["results"][name]
    assert "error" not in r, "write/read failed: %r" % (r.get("error"),)
    exp = _expected_read(value, ref)
    exp_shape = np.shape(exp) if not isinstance(exp, (str, bytes)) else ()
    assert r["shape"] == exp_shape
    assert_same(r["read"], exp, name)


@pytest.mark.parametrize("case", CASES)
def test_file_matches_what_h5py_writes(dtype_run, case):
    name, value, ref = case
    with h5py.File(dtype_run["ours"], "r") as ours, h5py.File(dtype_run["ref"], "r") as theirs:
        assert _ds_name(name) in ours, "dataset missing (write failed?)"
        o, t = ours[_ds_name(name)], theirs[_ds_name(name)]
        ot, tt = o.id.get_type(), t.id.get_type()
        assert ot == tt, "HDF5 type differs: ours %r (%s) vs h5py %r (%s)" % (
            ot, ot.get_class(), tt, tt.get_class())
        assert h5a_util.type_signature(ot) == h5a_util.type_signature(tt)
        assert o.dtype == t.dtype
        assert o.shape == t.shape
        ov, tv = _h5py_value(o), _h5py_value(t)
        if isinstance(tv, np.ndarray) or isinstance(tv, np.generic):
            assert_same(ov, tv, name)
        else:
            assert type(ov) is type(tv) and ov == tv


@pytest.mark.parametrize("case", CASES)
def test_server_reads_what_h5py_wrote(dtype_run, case):
    name, value, ref = case
    r = dtype_run["results"][name]
    assert "read_ref_error" not in r, "read of h5py's dataset failed: %r" % (r.get("read_ref_error"),)
    assert_same(r["read_ref"], _expected_read(value, ref), name)


def test_scalars_come_back_as_scalars(server):
    async def body(c):
        out = {}
        for name, v in [("f", 1.5), ("i", 7), ("b", False), ("np", np.float32(2)), ("s", "x"), ("y", b"y")]:
            await c.write("/" + name, v)
            out[name] = await c.read("/" + name)
        return out

    out = h5a_util.session(server, body)
    assert type(out["f"]) is np.float64 and out["f"] == 1.5
    assert type(out["i"]) is np.int64 and out["i"] == 7
    assert type(out["b"]) is np.bool_ and not out["b"]
    assert type(out["np"]) is np.float32 and out["np"] == 2
    assert out["s"] == "x" and type(out["s"]) is str
    assert out["y"] == b"y" and type(out["y"]) is bytes


def test_big_endian_stored_big_endian(server):
    async def body(c):
        await c.write("/be", np.arange(4, dtype=">i4"))
        await c.write("/le", np.arange(4, dtype="<i4"))
        await c.write("/bef", np.arange(4, dtype=">f8"))

    h5a_util.session(server, body)
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert f["be"].id.get_type().get_order() == h5py.h5t.ORDER_BE
        assert f["le"].id.get_type().get_order() == h5py.h5t.ORDER_LE
        assert f["bef"].id.get_type().get_order() == h5py.h5t.ORDER_BE
        assert f["be"].dtype == np.dtype(">i4")
        assert f["be"][()].tolist() == [0, 1, 2, 3]


def test_vlen_strings(server):
    async def body(c):
        await c.write("/u", "ünïcödé ✓")
        await c.write("/a", b"plain ascii")
        await c.write("/ul", ["α", "β", "γ"])
        await c.write("/u2", np.array([["a", "bb"], ["ccc", ""]]))
        await c.append("/grow", ["one"])
        await c.append("/grow", ["two", "three"])
        return [await c.read(p) for p in ("/u", "/a", "/ul", "/u2", "/grow")]

    u, a, ul, u2, grow = h5a_util.session(server, body)
    assert u == "ünïcödé ✓" and type(u) is str
    assert a == b"plain ascii" and type(a) is bytes
    assert ul.dtype == object and ul.tolist() == ["α", "β", "γ"]
    assert u2.shape == (2, 2) and u2.tolist() == [["a", "bb"], ["ccc", ""]]
    assert grow.tolist() == ["one", "two", "three"]
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert f["u"].id.get_type().get_cset() == h5py.h5t.CSET_UTF8
        assert f["a"].id.get_type().get_cset() == h5py.h5t.CSET_ASCII
        assert f["u"].asstr()[()] == "ünïcödé ✓"
        assert f["a"][()] == b"plain ascii"
        assert f["ul"].asstr()[()].tolist() == ["α", "β", "γ"]
        assert f["grow"].maxshape == (None,)


def test_read_written_value_back_as_write(server):
    """What read returns can be written again unchanged."""
    async def body(c):
        await c.write("/s", ["a", "b"])
        s = await c.read("/s")
        await c.write("/s2", s)
        st = np.zeros(2, ALIGNED)
        await c.write("/st", st)
        st_back = await c.read("/st")
        await c.write("/st2", st_back)
        return await c.read("/s2"), await c.read("/st2")

    s2, st2 = h5a_util.session(server, body)
    assert s2.tolist() == ["a", "b"]
    assert st2.dtype == ALIGNED
