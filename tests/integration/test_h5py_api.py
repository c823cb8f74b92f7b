"""hdf5_async.File against h5py: every scenario runs twice, once on
h5py.File with a local file (the oracle) and once on hdf5_async.File
through a real server, and both runs must observe the same things: values,
dtypes, shapes, attributes, keys, and the exception types h5py raises
(ours are subclasses that also carry a code)."""

import numpy as np
import pytest

import h5py
import hdf5_async
from h5a_util import IO_TIMEOUT

SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


class Raised:
    def __init__(self, exc):
        self.exc = exc

    def __repr__(self):
        return "Raised(%s: %s)" % (type(self.exc).__name__, self.exc)


def norm(v):
    """An observation as plain, comparable Python values."""
    if isinstance(v, (h5py.Dataset, hdf5_async.Dataset)):
        return ("dataset", v.name, v.shape, norm_dtype(v.dtype))
    if isinstance(v, (h5py.Group, hdf5_async.Group)):
        return ("group", v.name)
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "O":
            return ("array", "O", v.shape, [norm(x) for x in v.ravel()])
        return ("array", norm_dtype(v.dtype), v.shape, v.tobytes())
    if isinstance(v, np.generic):
        return ("scalar", norm_dtype(v.dtype), v.tobytes())
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [norm(x) for x in v])
    if isinstance(v, dict):
        return ("dict", sorted((k, norm(x)) for k, x in v.items()))
    if isinstance(v, type):
        return ("class", v.__name__)
    if isinstance(v, (h5py.SoftLink, hdf5_async.SoftLink)):
        return ("softlink", v.path)
    if isinstance(v, (h5py.HardLink, hdf5_async.HardLink)):
        return ("hardlink",)
    return (type(v).__name__, v)


def norm_dtype(dt):
    vlen = h5py.check_string_dtype(dt)
    if vlen is not None and vlen.length is None:
        return ("vlen", vlen.encoding)
    if dt.names is None:
        return dt.str if dt.subdtype is None else (norm_dtype(dt.subdtype[0]), dt.subdtype[1])
    return [(n, norm_dtype(dt.fields[n][0]), dt.fields[n][1]) for n in dt.names], dt.itemsize


class Recorder:
    def __init__(self):
        self.obs = []

    def __call__(self, label, fn):
        try:
            v = fn()
        except Exception as e:  # noqa: BLE001 -- the exception is the observation
            self.obs.append((label, Raised(e)))
            return None
        self.obs.append((label, norm(v)))
        return v


def compare(oracle, ours):
    """Every difference, listed (not just the first)."""
    assert [l for l, _ in ours] == [l for l, _ in oracle]
    diffs = []
    for (label, want), (_, got) in zip(oracle, ours):
        if isinstance(want, Raised):
            if not isinstance(got, Raised):
                diffs.append("%s: h5py raised %r, hdf5_async gave %r" % (label, want, got))
            elif not isinstance(got.exc, type(want.exc)):
                diffs.append("%s: h5py raised %r, hdf5_async %r" % (label, want, got))
            elif not (isinstance(got.exc, hdf5_async.HDF5AsyncError) and got.exc.code):
                diffs.append("%s: %r carries no code" % (label, got))
        elif isinstance(got, Raised):
            diffs.append("%s: hdf5_async raised %r, h5py gave %r" % (label, got, want))
        elif got != want:
            diffs.append("%s: h5py %r, hdf5_async %r" % (label, want, got))
    assert not diffs, "\n".join(diffs)


def _run_both(fn, tmp_path, srv):
    oracle = Recorder()
    path = tmp_path / "oracle.h5"
    with h5py.File(path, "w") as f:
        fn(f, oracle, h5py, lambda mode: h5py.File(path, mode))
    ours = Recorder()
    server = "%s:%d" % srv.address

    def opener(mode):
        return hdf5_async.File(server=server, mode=mode, timeout=IO_TIMEOUT)

    with opener("a") as f:
        fn(f, ours, hdf5_async, opener)
    return oracle.obs, ours.obs


@pytest.mark.parametrize("fn", SCENARIOS, ids=lambda f: f.__name__)
def test_same_as_h5py(fn, tmp_path, server):
    oracle, ours = _run_both(fn, tmp_path, server)
    assert oracle, "the scenario observed nothing"
    compare(oracle, ours)


# ---------------------------------------------------------------- scenarios


@scenario
def datasets_basic(f, rec, lib, reopen):
    f["a/b"] = np.arange(20.0).reshape(4, 5)
    d = rec("getitem", lambda: f["a/b"])
    for label, sel in [("all", ()), ("ellipsis", Ellipsis), ("int", 1), ("neg", -1),
                       ("slice", np.s_[1:3]), ("step", np.s_[::2, 1::2]), ("2d int", np.s_[2, 3]),
                       ("ell+int", np.s_[..., 0]), ("int+ell", np.s_[0, ...]), ("empty", np.s_[3:1]),
                       ("clamped", np.s_[2:100]), ("neg start", np.s_[-3:, :2])]:
        rec("read " + label, lambda sel=sel: d[sel])
    rec("shape", lambda: d.shape)
    rec("dtype", lambda: d.dtype)
    rec("ndim size len", lambda: (d.ndim, d.size, len(d), d.len()))
    rec("name", lambda: d.name)
    rec("props", lambda: (d.chunks, d.maxshape, d.compression, d.compression_opts, d.shuffle,
                          d.fletcher32, d.scaleoffset))
    rec("fillvalue", lambda: d.fillvalue)
    rec("asarray", lambda: np.asarray(d))
    rec("iter", lambda: [row for row in d])
    rec("parent", lambda: d.parent.name)
    f["i"] = [1, 2, 3]
    f["fl"] = 2.5
    f["bo"] = np.array([True, False])
    f["c"] = np.array([1 + 2j, 3 - 1j], dtype="c8")
    f["u8"] = np.arange(4, dtype=">u2")
    for n in ("i", "fl", "bo", "c", "u8"):
        rec("value " + n, lambda n=n: f[n][()])
        rec("dtype " + n, lambda n=n: f[n].dtype)


@scenario
def selection_errors(f, rec, lib, reopen):
    f["x"] = np.arange(10.0)
    d = f["x"]
    rec("oob", lambda: d[10])
    rec("neg oob", lambda: d[-11])
    rec("neg step", lambda: d[::-1])
    rec("too many", lambda: d[1, 2])
    rec("newaxis", lambda: d[np.newaxis])
    rec("float", lambda: d[1.5])
    rec("field of plain", lambda: d["a"])
    rec("fancy", lambda: d[[1, 3, 4, 8]])
    rec("fancy np", lambda: d[np.array([0, 9])])
    rec("mask", lambda: d[np.arange(10) > 6])
    rec("unsorted", lambda: d[[3, 1]])
    f["m"] = np.arange(24).reshape(4, 6)
    rec("fancy 2d axis1", lambda: f["m"][1:3, [0, 2, 3]])
    rec("fancy 2d axis0", lambda: f["m"][[0, 3], 1:4])


@scenario
def writes(f, rec, lib, reopen):
    d = f.create_dataset("w", (4, 3), dtype="i4")
    rec("fresh", lambda: d[()])
    d[0] = [1, 2, 3]
    d[1:3] = 7
    d[3, 1] = 9.7
    d[..., 2] = [10, 11, 12, 13]
    rec("after", lambda: d[()])
    rec("bad broadcast", lambda: d.__setitem__(np.s_[0:2], np.ones(3)))
    rec("broadcast row", lambda: d.__setitem__(np.s_[0:2], np.array([5, 6, 7], "i4")))
    rec("after broadcast", lambda: d[()])
    rec("str into int", lambda: d.__setitem__(0, "abc"))
    rec("oob write", lambda: d.__setitem__(9, 1))
    f["s0"] = 5
    f["s0"][()] = 6
    rec("scalar", lambda: (f["s0"][()], f["s0"][...], f["s0"].shape))
    rec("scalar [0]", lambda: f["s0"][0])
    rec("scalar len", lambda: len(f["s0"]))
    f["whole"] = np.zeros(5)
    f["whole"][...] = np.arange(5.0)
    rec("whole", lambda: f["whole"][()])


@scenario
def groups(f, rec, lib, reopen):
    g = rec("create", lambda: f.create_group("g"))
    rec("create nested", lambda: f.create_group("n1/n2/n3"))
    rec("create existing", lambda: f.create_group("g"))
    g["sub"] = 1
    f["ds"] = np.zeros(2)
    rec("create over ds", lambda: f.create_group("ds"))
    rec("require existing", lambda: f.require_group("g").name)
    rec("require new", lambda: f.require_group("r/q").name)
    rec("require over ds", lambda: f.require_group("ds"))
    rec("missing", lambda: f["nope"])
    rec("missing nested", lambda: f["g/nope/x"])
    rec("through ds", lambda: f["ds/y"])
    rec("keys", lambda: list(f.keys()))
    rec("iter", lambda: list(f))
    rec("len", lambda: (len(f), len(g)))
    rec("in", lambda: ("g" in f, "g/sub" in f, "nope" in f, "ds/y" in f, "nope/x" in f))
    rec("values", lambda: [v.name for v in f.values()])
    rec("items", lambda: [(k, v.name) for k, v in f.items()])
    rec("double slash", lambda: f["g//sub"].name)
    rec("trailing slash", lambda: f["g/"].name)
    rec("dot", lambda: f["./ds"].name)
    rec("empty name", lambda: f[""])
    rec("int key", lambda: f[1])
    rec("get", lambda: (f.get("g").name, f.get("nope"), f.get("nope", 3)))
    rec("getclass", lambda: (f.get("g", getclass=True), f.get("ds", getclass=True)))
    rec("group parent", lambda: f["g"].parent.name)


@scenario
def create_dataset_options(f, rec, lib, reopen):
    opts = [
        ("plain", dict(shape=(10,), dtype="f8")),
        ("default dtype", dict(shape=(3, 2))),
        ("chunks", dict(shape=(100, 4), dtype="i2", chunks=(10, 4))),
        ("maxshape", dict(shape=(5,), dtype="u1", maxshape=(None,))),
        ("gzip", dict(shape=(50,), dtype="f4", compression="gzip", compression_opts=6)),
        ("gzip int", dict(shape=(50,), dtype="f4", compression=3)),
        ("lzf", dict(shape=(50,), dtype="f4", compression="lzf", shuffle=True)),
        ("fill", dict(shape=(4,), dtype="i4", fillvalue=-1)),
        ("data", dict(data=np.arange(6).reshape(2, 3))),
        ("data dtype", dict(data=[1, 2, 3], dtype="f4")),
        ("data shape", dict(shape=(3, 2), data=np.arange(6.0))),
        ("data bad shape", dict(shape=(4,), data=np.arange(6.0))),
        ("nothing", dict()),
        ("list data", dict(data=[[1.5, 2], [3, 4]])),
    ]
    for label, kw in opts:
        ds = rec("create " + label, lambda kw=kw, label=label: f.create_dataset(label, **kw))
        if ds is not None:
            rec("props " + label, lambda ds=ds: (ds.shape, ds.chunks, ds.maxshape, ds.compression,
                                                  ds.compression_opts, ds.shuffle, ds.fillvalue))
            rec("values " + label, lambda ds=ds: ds[()])
    rec("create existing", lambda: f.create_dataset("plain", (3,)))
    rec("setitem existing", lambda: f.__setitem__("plain", [1]))
    rec("require ok", lambda: f.require_dataset("plain", (10,), "f8").name)
    rec("require castable", lambda: f.require_dataset("plain", (10,), "f4").name)
    rec("require exact", lambda: f.require_dataset("plain", (10,), "f4", exact=True))
    rec("require shape", lambda: f.require_dataset("plain", (5,), "f8"))
    rec("require dtype", lambda: f.require_dataset("plain", (10,), "c16"))
    rec("require new", lambda: f.require_dataset("rnew", (2,), "i8").shape)
    f.create_group("grp")
    rec("require over group", lambda: f.require_dataset("grp", (2,), "i8"))


@scenario
def strings(f, rec, lib, reopen):
    f["s"] = "hello"
    f["sl"] = ["a", "bb", "ccc"]
    f["b"] = b"raw"
    f["fixed"] = np.array([b"ab", b"c"])
    f.create_dataset("sd", (2,), dtype=lib.string_dtype())
    for n in ("s", "sl", "b", "fixed", "sd"):
        rec("read " + n, lambda n=n: f[n][()])
        rec("dtype " + n, lambda n=n: f[n].dtype)
    rec("one", lambda: f["sl"][1])
    rec("asstr", lambda: f["sl"].asstr()[()])
    rec("asstr scalar", lambda: f["s"].asstr()[()])
    rec("asstr fixed", lambda: f["fixed"].asstr()[()])
    rec("ellipsis", lambda: f["s"][...])
    f["sd"][0] = "x"
    rec("sd after", lambda: f["sd"][()])


@scenario
def attributes(f, rec, lib, reopen):
    f["d"] = np.arange(3)
    for obj in (f, f["d"]):
        a = obj.attrs
        a["s"] = "text"
        a["b"] = b"bytes"
        a["i"] = 42
        a["f"] = 1.5
        a["arr"] = np.arange(4, dtype="i2")
        a["sl"] = ["u", "v"]
        a["bool"] = True
        a.create("made", [1, 2, 3, 4], shape=(2, 2), dtype="f4")
        for k in ("s", "b", "i", "f", "arr", "sl", "bool", "made"):
            rec("get " + k, lambda k=k: a[k])
        rec("keys", lambda: sorted(a.keys()))
        rec("len", lambda: len(a))
        rec("in", lambda: ("s" in a, "zz" in a))
        rec("items", lambda: dict(a.items()))
        rec("get default", lambda: (a.get("zz"), a.get("zz", 7), a.get("i")))
        rec("missing", lambda: a["zz"])
        rec("del missing", lambda: a.__delitem__("zz"))
        a.modify("i", 43)
        del a["f"]
        rec("after del", lambda: (sorted(a), a["i"]))


@scenario
def resize_and_delete(f, rec, lib, reopen):
    d = f.create_dataset("r", (0, 3), maxshape=(None, 3), dtype="i4")
    d.resize(4, axis=0)
    rec("shape", lambda: d.shape)
    d.resize((6, 3))
    rec("shape2", lambda: (d.shape, d[()]))
    rec("beyond", lambda: d.resize((6, 4)))
    rec("bad axis", lambda: d.resize(3, axis=2))
    f["fixed"] = np.zeros(3)
    rec("not chunked", lambda: f["fixed"].resize((5,)))
    d.resize(2, axis=0)
    rec("shrunk", lambda: (d.shape, len(d)))
    del f["fixed"]
    rec("deleted", lambda: ("fixed" in f, f.get("fixed")))
    rec("del missing", lambda: f.__delitem__("fixed"))
    f.create_group("g/h")
    f["g/h/x"] = 1
    del f["g"]
    rec("group deleted", lambda: list(f.keys()))


@scenario
def links_and_visit(f, rec, lib, reopen):
    f["x"] = np.arange(3)
    f["g/y"] = 2.0
    f["g/sub/z"] = "z"
    f["soft"] = lib.SoftLink("/" if False else f["x"].name)
    f["dangle"] = lib.SoftLink("nowhere")
    rec("read via link", lambda: f["soft"][()])
    rec("link name", lambda: f["soft"].name)
    rec("in", lambda: ("soft" in f, "dangle" in f))
    rec("dangle get", lambda: f["dangle"])
    rec("getlink", lambda: (f.get("soft", getlink=True).path, f.get("x", getlink=True),
                            f.get("dangle", getlink=True, getclass=True)))
    rec("keys", lambda: list(f.keys()))
    seen = []
    f.visit(seen.append)
    rec("visit", lambda: seen)
    items = []
    f.visititems(lambda n, o: items.append((n, norm(o)[0])))
    rec("visititems", lambda: items)
    rec("visit stops", lambda: f.visit(lambda n: n if n.endswith("sub") else None))
    rec("group visit", lambda: (lambda acc: (f["g"].visit(acc.append), acc)[1])([]))
    f.move("g/y", "moved/y")
    rec("moved", lambda: (sorted(f.keys()), f["moved/y"][()]))
    rec("move onto existing", lambda: f.move("x", "moved/y"))


@scenario
def compound(f, rec, lib, reopen):
    dt = np.dtype([("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")])
    arr = np.zeros(4, dtype=dt)
    arr["a"] = [1, 2, 3, 4]
    arr["b"] = np.arange(8.0).reshape(4, 2)
    arr["c"] = [b"x", b"yy", b"zzz", b""]
    f["cmp"] = arr
    d = f["cmp"]
    rec("dtype", lambda: d.dtype)
    rec("all", lambda: d[()])
    rec("field", lambda: d["a"])
    rec("field+sel", lambda: d["b", 1:3])
    rec("fields", lambda: d[["a", "c"]] if False else d["a", "c"])
    rec("bad field", lambda: d["zz"])
    rec("one", lambda: d[2])


@scenario
def read_only(f, rec, lib, reopen):
    f["x"] = np.arange(5)
    f.create_dataset("r", (2,), maxshape=(None,), dtype="i4")
    f.attrs["a"] = 1
    f.close()
    with reopen("r") as r:
        rec("mode", lambda: r.mode)
        rec("read", lambda: r["x"][()])
        rec("create_group", lambda: r.create_group("q"))
        rec("create_dataset", lambda: r.create_dataset("q", (1,)))
        rec("write", lambda: r["x"].__setitem__(0, 1))
        rec("setitem", lambda: r.__setitem__("q", 1))
        rec("del", lambda: r.__delitem__("x"))
        rec("attr", lambda: r.attrs.__setitem__("q", 1))
        rec("resize", lambda: r["r"].resize((3,)))
        rec("unchanged", lambda: (r["x"][()], list(r.keys()), r.attrs["a"]))
