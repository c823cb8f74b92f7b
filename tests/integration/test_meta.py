"""Attributes, listing and inspection, links: every such operation through
the Python client, with h5py as the oracle -- files h5py made must be fully
inspectable through the server, and what the server writes must be what
h5py would have written."""

import asyncio
import os
import shutil

import h5py
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, h5open, session, type_signature

import hdf5_async as h5a


# ------------------------------------------------------------ fixtures


STRUCT = np.dtype([("a", "<i4"), ("b", "<f8", (2,))])


def make_rich_file(path):
    """Groups, attributes of every kind h5py makes, soft / external /
    dangling links, chunked and compressed datasets, a named datatype, an
    empty dataset, a hard link back to an ancestor."""
    with h5py.File(path, "w") as f:
        g = f.create_group("g")
        g.attrs["units"] = "metres"  # vlen UTF-8
        g.attrs["raw"] = b"bytes"  # vlen ASCII
        g.attrs["fixed"] = np.bytes_("fixed")  # S5
        g.attrs["int"] = 42
        g.attrs["float"] = 2.5
        g.attrs["flag"] = True  # h5py's enum
        g.attrs["cplx"] = 1 + 2j
        g.attrs["arr"] = np.arange(6, dtype="<i2").reshape(2, 3)
        g.attrs["big_endian"] = np.arange(3, dtype=">f4")
        g.attrs["strs"] = ["a", "bc"]
        g.attrs["struct"] = np.array([(1, (2.0, 3.0))], dtype=STRUCT)
        g.attrs["empty_arr"] = np.zeros(0)
        g.attrs["nothing"] = h5py.Empty("i4")
        x = f.create_dataset(
            "g/x",
            data=np.arange(100.0),
            chunks=(10,),
            maxshape=(None,),
            compression="gzip",
            compression_opts=7,
            shuffle=True,
            fletcher32=True,
            fillvalue=-1.5,
        )
        x.attrs["note"] = "chunked"
        f.create_dataset("g/lzf", data=np.arange(1000, dtype="i4").reshape(100, 10), compression="lzf")
        f.create_dataset("g/sub/deep", data=np.array([b"a", b"bc"]))
        f.create_dataset("g/sub/vstr", data=["x", "yy"], dtype=h5py.string_dtype())
        f.create_dataset("scalar", data=3.25)
        f.create_dataset("empty", data=h5py.Empty("f4"))
        f.create_dataset("compact", data=np.arange(4), dtype="u1")
        f.create_dataset("structs", data=np.zeros(3, dtype=STRUCT))
        f.create_dataset("vlen_ints", (2,), dtype=h5py.vlen_dtype(np.int32))
        f["named_t"] = np.dtype("<u2")
        f["soft"] = h5py.SoftLink("/g/x")
        f["rel"] = h5py.SoftLink("g")  # relative to the root
        f["dangling"] = h5py.SoftLink("/nowhere")
        f["ext"] = h5py.ExternalLink("other.h5", "/y")
        f["g/sub/loop"] = f["g"]  # a hard link to an ancestor
        f.attrs["root_attr"] = np.float32(1.5)


def h5py_walk(path, start="/"):
    """(path, kind) of every link below start in the order h5ls -r shows
    them: depth first, name order, links not followed, groups entered once
    per path unless that would loop."""
    out = []

    def rec(grp, prefix, stack):
        for name in sorted(grp.keys(), key=lambda s: s.encode()):
            full = prefix.rstrip("/") + "/" + name
            link = grp.get(name, getlink=True)
            if isinstance(link, h5py.SoftLink):
                out.append((full, "soft_link"))
                continue
            if isinstance(link, h5py.ExternalLink):
                out.append((full, "external_link"))
                continue
            obj = grp[name]
            if isinstance(obj, h5py.Group):
                out.append((full, "group"))
                addr = h5py.h5o.get_info(obj.id).addr
                if addr not in stack:
                    rec(obj, full, stack + [addr])
            elif isinstance(obj, h5py.Dataset):
                out.append((full, "dataset"))
            else:
                out.append((full, "datatype"))

    with h5py.File(path, "r") as f:
        root = f[start]
        rec(root, start, [h5py.h5o.get_info(root.id).addr])
    return out


def make_rich_file_and_copy(path):
    make_rich_file(path)
    shutil.copyfile(path, ref(path))


def ref(path):
    """The untouched copy of a precreated file: h5py reads it while the
    server holds (and locks) the original."""
    return str(path) + ".ref.h5"


@pytest.fixture
def rich(start_server):
    return start_server(precreate=make_rich_file_and_copy)


async def walk_all(c, path="/", **kw):
    return [e async for e in c.walk(path, **kw)]


# --------------------------------------------- h5py files, inspected


def test_list_h5py_file(rich):
    res = session(rich, lambda c: c.list("/"))
    by = {e["name"]: e for e in res}
    assert [e["name"] for e in res] == sorted(by)  # name order
    with h5open(ref(rich.file)) as f:
        assert sorted(by) == sorted(f.keys())
    assert by["g"] == {"name": "g", "kind": "group"}
    assert by["soft"] == {"name": "soft", "kind": "soft_link", "target": "/g/x"}
    assert by["rel"] == {"name": "rel", "kind": "soft_link", "target": "g"}
    assert by["dangling"]["kind"] == "soft_link"
    assert by["ext"] == {"name": "ext", "kind": "external_link", "file": "other.h5", "target": "/y"}
    assert by["named_t"] == {"name": "named_t", "kind": "datatype", "dtype": np.dtype("<u2")}
    assert by["scalar"] == {"name": "scalar", "kind": "dataset", "shape": (), "maxshape": (),
                            "dtype": np.dtype("<f8")}
    assert by["empty"]["shape"] is None and by["empty"]["maxshape"] is None
    assert by["structs"]["dtype"] == STRUCT
    assert by["vlen_ints"]["dtype"] is None  # no numpy equivalent


def test_walk_matches_h5py(rich):
    entries = session(rich, walk_all)
    assert [(e["path"], e["kind"]) for e in entries] == h5py_walk(ref(rich.file))
    by = {e["path"]: e for e in entries}
    # the hard link back to /g is listed, not entered again
    assert by["/g/sub/loop"]["kind"] == "group"
    assert not any(p.startswith("/g/sub/loop/") for p in by)
    with h5open(ref(rich.file)) as f:
        for p, e in by.items():
            if e["kind"] == "dataset" and e["dtype"] is not None:
                ds = f[p]
                assert e["shape"] == ds.shape and e["maxshape"] == ds.maxshape, p
                assert e["dtype"] == ds.dtype, p
    vstr = by["/g/sub/vstr"]["dtype"]
    assert h5py.check_string_dtype(vstr).encoding == "utf-8"


def test_walk_below_a_group_and_through_a_soft_link(rich):
    async def body(c):
        return await walk_all(c, "/g"), await walk_all(c, "/rel")

    under_g, under_rel = session(rich, body)
    assert [(e["path"], e["kind"]) for e in under_g] == h5py_walk(ref(rich.file), "/g")
    # the walked path is kept as given, links in it followed
    assert [e["path"] for e in under_rel] == [e["path"].replace("/g", "/rel", 1) for e in under_g]


def test_walk_paging_and_depth(rich):
    async def body(c):
        full = await walk_all(c)
        for size in (1, 2, 3, 7):
            assert await walk_all(c, page_size=size) == full, size
        shallow = await walk_all(c, max_depth=1)
        two = await walk_all(c, max_depth=2)
        return full, shallow, two, await c.list("/")

    full, shallow, two, listing = session(rich, body)
    assert [e["path"] for e in shallow] == ["/" + e["name"] for e in listing]
    assert [e["path"] for e in two] == [e["path"] for e in full if e["path"].count("/") <= 2]


def test_info_dataset_matches_h5py(rich):
    paths = ["/g/x", "/g/lzf", "/g/sub/deep", "/g/sub/vstr", "/scalar", "/compact", "/structs", "/soft"]

    async def body(c):
        return {p: await c.info(p) for p in paths}

    infos = session(rich, body)
    with h5open(ref(rich.file)) as f:
        for p, i in infos.items():
            ds = f[p]
            assert i["kind"] == "dataset"
            assert i["shape"] == ds.shape, p
            assert i["maxshape"] == ds.maxshape, p
            assert i["dtype"] == ds.dtype, p
            assert i["chunks"] == ds.chunks, p
            assert i["compression"] == ds.compression, p
            assert i["compression_opts"] == ds.compression_opts, p
            assert i["shuffle"] == ds.shuffle, p
            assert i["fletcher32"] == ds.fletcher32, p
            assert i["storage_size"] == ds.id.get_storage_size(), p
            assert i["nattrs"] == len(ds.attrs), p
            assert i["layout"] == {0: "compact", 1: "contiguous", 2: "chunked"}[
                ds.id.get_create_plist().get_layout()], p
            if h5py.check_vlen_dtype(ds.dtype) is None:
                assert i["fillvalue"] == ds.fillvalue, p
                assert np.asarray(i["fillvalue"]).dtype == np.asarray(ds.fillvalue).dtype, p
            else:
                assert i["fillvalue"] is None  # (h5py itself crashes reading it)
    x = infos["/g/x"]
    assert x["layout"] == "chunked" and x["fillvalue"] == -1.5
    assert [f["name"] for f in x["filters"]] == ["shuffle", "deflate", "fletcher32"]
    assert x["filters"][1]["id"] == 1 and x["filters"][1]["cd_values"] == (7,)
    assert infos["/g/lzf"]["filters"][0]["id"] == 32000
    assert infos["/scalar"]["chunks"] is None and infos["/scalar"]["layout"] == "contiguous"
    assert infos["/g/sub/vstr"]["hdf5_class"] == "string"


def test_info_group_datatype_empty_and_unsupported(rich):
    async def body(c):
        return [await c.info(p) for p in ("/", "/g", "/rel", "/named_t", "/empty", "/vlen_ints")]

    root, g, rel, named, empty, vlen = session(rich, body)
    with h5open(ref(rich.file)) as f:
        # "attrs" (each with its h5grove type descriptor) is checked in
        # tests/integration/test_http_h5grove.py
        assert [a["name"] for a in root.pop("attrs")] == sorted(f.attrs)
        assert [a["name"] for a in g.pop("attrs")] == sorted(f["g"].attrs)
        assert root == {"kind": "group", "members": len(f), "nattrs": len(f.attrs)}
        assert g == {"kind": "group", "members": len(f["g"]), "nattrs": len(f["g"].attrs)}
    rel.pop("attrs")
    assert rel == g
    assert named.pop("attrs") == []
    assert named.pop("type") == {"class": 0, "dtype": "<u2", "size": 2, "order": 0, "sign": 0}
    assert named == {"kind": "datatype", "dtype": np.dtype("<u2"), "hdf5_class": "integer", "nattrs": 0}
    assert empty["shape"] is None and empty["maxshape"] is None and empty["dtype"] == np.dtype("<f4")
    assert vlen["dtype"] is None and vlen["hdf5_class"] == "vlen" and vlen["fillvalue"] is None


def test_info_and_list_errors(rich):
    async def body(c):
        for call, exc in [
            (c.info("/nope"), h5a.NotFoundError),
            (c.info("/g/x/below"), h5a.NotAGroupError),
            (c.info("/dangling"), h5a.NotFoundError),
            (c.info("/ext"), h5a.BadPathError),
            (c.list("/g/x"), h5a.NotAGroupError),
            (c.list("/nope"), h5a.NotFoundError),
            (c.list("/dangling"), h5a.NotFoundError),
            (walk_all(c, "/scalar"), h5a.NotAGroupError),
        ]:
            with pytest.raises(exc) as ei:
                await call
            assert ei.value.message
        with pytest.raises(h5a.NotFoundError) as ei:
            await c.info("/dangling")
        assert "soft link to '/nowhere'" in ei.value.message
        with pytest.raises(h5a.BadPathError) as ei:
            await c.info("/ext")
        # the link is named, not where it points on the server's machine
        assert "external link" in ei.value.message and "other.h5" not in ei.value.message

    session(rich, body)


def test_exists_like_h5py_in(rich):
    """h5py's `in` asks whether the last link is there (parents followed):
    dangling soft links and unopenable external links exist."""
    paths = ["/", "/g", "/g/x", "/soft", "/rel/x", "/dangling", "/ext", "/nope", "/g/x/below",
             "/nope/deeper", "/g/sub/loop/sub/deep", "/named_t"]

    async def body(c):
        return [await c.exists(p) for p in paths]

    got = session(rich, body)
    with h5open(ref(rich.file)) as f:
        want = [p in f for p in paths]
    assert got == want
    assert got == [True] * 7 + [False] * 3 + [True] * 2


# ----------------------------------------------------------- attributes


ATTR_NAMES = ["units", "raw", "fixed", "int", "float", "flag", "cplx", "arr", "big_endian",
              "strs", "struct", "empty_arr"]


def test_get_attr_of_h5py_attributes(rich):
    async def body(c):
        return {n: await c.get_attr("/g", n) for n in ATTR_NAMES}

    got = session(rich, body)
    with h5open(ref(rich.file)) as f:
        for n in ATTR_NAMES:
            want = f["g"].attrs[n]
            v = got[n]
            if n == "raw":
                # h5py hands every variable-length string attribute back as
                # str; reads give ASCII ones as bytes, as for datasets
                assert v == want.encode() and type(v) is bytes
            elif isinstance(want, np.ndarray) and want.dtype.kind == "O":
                assert v.dtype == object and v.tolist() == want.tolist(), n
            elif isinstance(want, np.ndarray) or isinstance(want, np.generic):
                assert np.asarray(v).dtype == np.asarray(want).dtype, n
                assert np.asarray(v).shape == np.asarray(want).shape, n
                assert np.asarray(v).tobytes() == np.asarray(want).tobytes(), n
            else:
                assert v == want and type(v) is type(want), n
    assert got["units"] == "metres" and got["raw"] == b"bytes"
    assert got["flag"] == True and np.asarray(got["flag"]).dtype == np.bool_  # noqa: E712


def test_list_attrs_of_h5py_object(rich):
    got = session(rich, lambda c: c.list_attrs("/g"))
    with h5open(ref(rich.file)) as f:
        attrs = f["g"].attrs
        assert [a["name"] for a in got] == sorted(attrs.keys(), key=str.encode)
        for a in got:
            aid = attrs.get_id(a["name"])
            assert a["shape"] == aid.shape, a
            if a["name"] == "nothing":
                assert a["shape"] is None
            assert a["dtype"] == aid.dtype, a
    units = next(a for a in got if a["name"] == "units")
    assert h5py.check_string_dtype(units["dtype"]).encoding == "utf-8"
    raw = next(a for a in got if a["name"] == "raw")
    assert h5py.check_string_dtype(raw["dtype"]).encoding == "ascii"


# values the server stores; h5py stores the same ones for comparison
ATTR_VALUES = {
    "str": "héllo",
    "bytes": b"raw",
    "int": 7,
    "bigint": 2**63,
    "float": 0.5,
    "bool": True,
    "complex": 1 - 1j,
    "list": [1, 2, 3],
    "float_list": [1.0, 2.5],
    "str_list": ["a", "bc"],
    "bytes_list": [b"a", b"bc"],
    "nested": [[1, 2], [3, 4]],
    "np_i2": np.arange(4, dtype="<i2"),
    "np_be": np.arange(3, dtype=">u4"),
    "np_f16": np.float16(1.5),
    "np_S": np.bytes_("fix"),
    "np_S_arr": np.array([b"ab", b"c"]),
    "np_c8": np.array([1 + 2j], dtype="<c8"),
    "np_bool_arr": np.array([True, False]),
    "np_struct": np.zeros(2, dtype=STRUCT),
    "np_struct_scalar": np.zeros(1, dtype=STRUCT)[0],
    "empty": np.zeros(0),
    "empty_2d": np.zeros((0, 3), dtype="i4"),
    "np_V": np.array([b"\x01\x02"], dtype="V2"),
}


def test_set_attr_is_what_h5py_stores(server, tmp_path):
    async def body(c):
        await c.create_group("/g")
        await c.write("/d", np.arange(3))
        for n, v in ATTR_VALUES.items():
            assert await c.set_attr("/g", n, v) is None
            await c.set_attr("/d", n, v)
        return {n: await c.get_attr("/g", n) for n in ATTR_VALUES}

    back = session(server, body)
    ref = str(tmp_path / "ref.h5")
    with h5py.File(ref, "w") as r:
        for n, v in ATTR_VALUES.items():
            r.attrs[n] = v
    server.stop()
    with h5open(server.file) as f, h5open(ref) as r:
        for obj in (f["g"], f["d"]):
            assert sorted(obj.attrs.keys()) == sorted(ATTR_VALUES)
            for n in ATTR_VALUES:
                mine, theirs = obj.attrs.get_id(n), r.attrs.get_id(n)
                assert type_signature(mine.get_type()) == type_signature(theirs.get_type()), n
                assert mine.shape == theirs.shape, n
                a, b = obj.attrs[n], r.attrs[n]
                if isinstance(b, np.ndarray) and b.dtype.kind == "O":
                    assert a.tolist() == b.tolist(), n
                else:
                    assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), n
                    assert type(a) is type(b), n
    # and the server reads back what it wrote
    for n, v in ATTR_VALUES.items():
        got = back[n]
        if isinstance(v, (str, bytes)):
            assert got == v
        elif isinstance(v, list) and isinstance(v[0], (str, bytes)):
            assert got.tolist() == v
        else:
            assert np.asarray(got).tobytes() == np.asarray(v).tobytes(), n
            assert np.asarray(got).shape == np.asarray(v).shape, n


def test_set_attr_replaces_and_delete_attr(server):
    async def body(c):
        await c.write("/d", np.arange(3))
        await c.set_attr("/d", "a", np.arange(10))
        await c.set_attr("/d", "a", "now a string")  # another type and shape
        await c.set_attr("/d", "a", "again")  # same type: replaced too
        await c.set_attr("/", "root", 1)
        assert [x["name"] for x in await c.list_attrs("/d")] == ["a"]
        assert await c.get_attr("/d", "a") == "again"
        assert await c.delete_attr("/d", "a") is None
        assert await c.list_attrs("/d") == []
        with pytest.raises(h5a.NotFoundError):
            await c.delete_attr("/d", "a")
        with pytest.raises(h5a.NotFoundError):
            await c.get_attr("/d", "a")
        # the dataset itself is untouched
        np.testing.assert_array_equal(await c.read("/d"), np.arange(3))

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert list(f["d"].attrs) == []
        assert f.attrs["root"] == 1


def test_attr_errors_change_nothing(server):
    async def body(c):
        await c.write("/d", np.arange(3))
        await c.set_attr("/d", "keep", 1)
        for call, exc in [
            (c.set_attr("/nope", "a", 1), h5a.NotFoundError),
            (c.set_attr("/d/x", "a", 1), h5a.NotAGroupError),
            (c.get_attr("/nope", "a"), h5a.NotFoundError),
            (c.list_attrs("/nope"), h5a.NotFoundError),
            (c.delete_attr("/nope", "a"), h5a.NotFoundError),
            (c.set_attr("/d", "", 1), h5a.BadRequestError),
            (c.set_attr("/d", "keep", np.array([0], dtype="M8[s]")), h5a.UnsupportedTypeError),
            (c.set_attr("rel", "a", 1), h5a.BadPathError),
        ]:
            with pytest.raises(exc):
                await call
        with pytest.raises(TypeError):
            await c.set_attr("/d", 5, 1)
        assert await c.get_attr("/d", "keep") == 1

    session(server, body)


def test_attr_on_soft_link_reaches_the_target(server):
    async def body(c):
        await c.write("/d", np.arange(3))
        await c.create_link("/l", "/d")
        await c.set_attr("/l", "via", "link")
        return await c.get_attr("/d", "via")

    assert session(server, body) == "link"


# ---------------------------------------------------------------- links


def test_create_link(server):
    async def body(c):
        await c.write("/data/x", np.arange(4))
        assert await c.create_link("/links/abs", "/data/x") is None  # parents made
        await c.create_link("/data/rel", "x")  # relative to /data
        await c.create_link("/dangling", "/not/yet")
        np.testing.assert_array_equal(await c.read("/links/abs"), np.arange(4))
        np.testing.assert_array_equal(await c.read("/data/rel"), np.arange(4))
        assert await c.exists("/dangling")  # the name is taken ...
        with pytest.raises(h5a.NotFoundError):
            await c.info("/dangling")  # ... by a link to nothing
        await c.write("/not/yet", 5)
        assert (await c.info("/dangling"))["shape"] == ()
        for call, exc in [
            (c.create_link("/data/x", "/elsewhere"), h5a.ExistsError),
            (c.create_link("/dangling", "/x"), h5a.ExistsError),
            (c.create_link("/data/x/below", "/x"), h5a.NotAGroupError),
            (c.create_link("/", "/x"), h5a.BadPathError),
            (c.create_link("/bad", "a//b"), h5a.BadPathError),
            (c.create_link("/bad", ""), h5a.BadRequestError),
        ]:
            with pytest.raises(exc):
                await call
        return await c.list("/data")

    listing = session(server, body)
    assert listing[0] == {"name": "rel", "kind": "soft_link", "target": "x"}
    server.stop()
    with h5open(server.file) as f:
        assert f.get("links/abs", getlink=True).path == "/data/x"
        assert f.get("data/rel", getlink=True).path == "x"
        assert f["dangling"][()] == 5
        assert "bad" not in f


def test_delete_removes_links_not_targets(server):
    async def body(c):
        await c.write("/d", np.arange(3))
        await c.create_link("/l", "/d")
        await c.create_link("/dangling", "/nowhere")
        await c.delete("/dangling")  # a dangling link can be deleted
        await c.delete("/l")
        with pytest.raises(h5a.NotFoundError):
            await c.delete("/l")
        return [e["name"] for e in await c.list("/")]

    assert session(server, body) == ["d"]


def test_move(server):
    async def body(c):
        await c.write("/a/x", np.arange(3))
        await c.set_attr("/a/x", "kept", "yes")
        await c.create_link("/a/l", "/a/x")
        assert await c.move("/a/x", "/b/c/y") is None  # parents made
        assert not await c.exists("/a/x")
        # the soft link keeps its target text, which now leads nowhere
        with pytest.raises(h5a.NotFoundError):
            await c.read("/a/l")
        await c.move("/a/l", "/b/l")  # moves the link itself
        await c.move("/b", "/renamed")  # a whole group
        np.testing.assert_array_equal(await c.read("/renamed/c/y"), np.arange(3))
        assert await c.get_attr("/renamed/c/y", "kept") == "yes"
        await c.write("/other", 1)
        for call, exc in [
            (c.move("/nope", "/z"), h5a.NotFoundError),
            (c.move("/renamed", "/other"), h5a.ExistsError),
            (c.move("/renamed", "/renamed/inside"), h5a.BadRequestError),
            (c.move("/", "/z"), h5a.BadPathError),
            (c.move("/other", "/"), h5a.BadPathError),
            (c.move("/renamed", "/other/below"), h5a.NotAGroupError),
            (c.move("/renamed", "z"), h5a.BadPathError),
        ]:
            with pytest.raises(exc):
                await call

    session(server, body)
    server.stop()
    with h5open(server.file) as f:
        assert sorted(f.keys()) == ["a", "other", "renamed"]
        assert list(f["a"].keys()) == []
        assert f.get("renamed/l", getlink=True).path == "/a/x"
        np.testing.assert_array_equal(f["renamed/c/y"][()], np.arange(3))


def test_move_forgets_cached_dataset_handles(server):
    """Appends cache the open dataset by path: after a move, the old path
    must not reach the moved dataset through that cache."""

    async def body(c):
        assert await c.append("/a/x", np.arange(3.0)) == (3,)
        assert await c.append("/a/x", np.arange(3.0)) == (6,)  # now cached
        await c.move("/a/x", "/b/x")
        with pytest.raises(h5a.NotFoundError):
            await c.read("/a/x")
        assert await c.append("/a/x", np.ones(2)) == (2,)  # a new dataset
        assert await c.append("/b/x", np.ones(1)) == (7,)
        await c.move("/a", "/c")  # the parent moves: the cached /a/x goes too
        assert await c.append("/a/x", np.zeros(1)) == (1,)
        return await c.read("/b/x"), await c.read("/c/x"), await c.read("/a/x")

    b, cx, a = session(server, body)
    np.testing.assert_array_equal(b, np.r_[np.arange(3.0), np.arange(3.0), 1.0])
    np.testing.assert_array_equal(cx, np.ones(2))
    np.testing.assert_array_equal(a, np.zeros(1))


def test_pipelined_appends_and_moves_keep_order(server):
    """Runs of plain appends are batched; a move between them must split
    the run, so every request sees exactly the earlier ones."""

    async def body(c):
        calls = [c.append("/a", np.array([i])) for i in range(3)]
        calls.append(c.move("/a", "/b"))
        calls += [c.append("/a", np.array([10 + i])) for i in range(2)]
        calls.append(c.set_attr("/a", "n", 2))
        calls.append(c.append("/b", np.array([99])))
        calls.append(c.exists("/a"))
        res = await asyncio.gather(*calls)
        return res, await c.read("/a"), await c.read("/b")

    res, a, b = session(server, body)
    assert res == [(1,), (2,), (3,), None, (1,), (2,), None, (4,), True]
    np.testing.assert_array_equal(a, [10, 11])
    np.testing.assert_array_equal(b, [0, 1, 2, 99])


# ------------------------------------------------------- listing, pages


def test_list_pages_many_members(server):
    names = ["m%04d" % i for i in range(250)]

    async def body(c):
        await asyncio.gather(*(c.write("/big/" + n, i) for i, n in enumerate(names)))
        full = await c.list("/big")
        pages = []
        after = None
        while True:
            res = await c._call("list", "/big", limit=100, after=after)
            pages.append(len(res["entries"]))
            after = res["next"]
            if after is None:
                break
        walked = await walk_all(c, "/big", page_size=64)
        return full, pages, walked

    full, pages, walked = session(server, body)
    assert [e["name"] for e in full] == names
    assert pages == [100, 100, 50]
    assert [e["path"] for e in walked] == ["/big/" + n for n in names]


def test_walk_page_continues_after_a_deleted_cursor(server):
    """The cursor is a path, not a position: entries removed or added
    before it do not make the next page skip or repeat anything."""

    async def body(c):
        for p in ("/a/1", "/a/2", "/b/1", "/b/2", "/c"):
            await c.write(p, 0)
        first = await c._call("walk", "/", limit=3)
        assert [e["path"] for e in first["entries"]] == ["/a", "/a/1", "/a/2"]
        assert first["next"] == "/a/2"
        await c.delete("/a")
        await c.write("/0", 0)  # sorts before the cursor: not seen
        rest = await c._call("walk", "/", after=first["next"])
        return [e["path"] for e in rest["entries"]], rest["next"]

    paths, nxt = session(server, body)
    assert paths == ["/b", "/b/1", "/b/2", "/c"] and nxt is None


def test_listing_raw_arguments(server):
    with RawConn(server) as conn:
        assert_ok(conn.call({"id": 1, "op": "create_group", "path": "/g"}))
        res = assert_ok(conn.call({"id": 2, "op": "list", "path": "/"}))
        assert res == {"entries": [{"name": "g", "kind": "group"}], "next": None}
        res = assert_ok(conn.call({"id": 3, "op": "walk", "path": "/", "limit": None,
                                   "after": None, "max_depth": None}))
        assert res["entries"] == [{"path": "/g", "kind": "group"}]
        assert assert_ok(conn.call({"id": 4, "op": "exists", "path": "/g"})) is True
        for req, code in [
            ({"op": "list", "path": "/", "limit": 0}, "BAD_REQUEST"),
            ({"op": "list", "path": "/", "limit": -1}, "BAD_REQUEST"),
            ({"op": "list", "path": "/", "limit": "10"}, "BAD_REQUEST"),
            ({"op": "list", "path": "/", "after": "a/b"}, "BAD_REQUEST"),
            ({"op": "list", "path": "/", "after": 3}, "BAD_REQUEST"),
            ({"op": "list", "path": "/", "max_depth": 2}, "BAD_REQUEST"),
            ({"op": "walk", "path": "/g", "after": "/h/x"}, "BAD_REQUEST"),
            ({"op": "walk", "path": "/g", "after": "/g"}, "BAD_REQUEST"),
            ({"op": "walk", "path": "/", "after": "/"}, "BAD_REQUEST"),
            ({"op": "walk", "path": "/", "after": "rel"}, "BAD_PATH"),
            ({"op": "walk", "path": "/", "max_depth": 0}, "BAD_REQUEST"),
            ({"op": "info", "path": "/", "name": "x"}, "BAD_REQUEST"),
            ({"op": "get_attr", "path": "/"}, "BAD_REQUEST"),
            ({"op": "get_attr", "path": "/", "name": b"bin"}, "BAD_REQUEST"),
            ({"op": "get_attr", "path": "/", "name": "a\0b"}, "BAD_REQUEST"),
            ({"op": "set_attr", "path": "/", "name": "a"}, "BAD_REQUEST"),
            ({"op": "set_attr", "path": "/", "name": "a", "data": None}, "BAD_REQUEST"),
            ({"op": "create_link", "path": "/l"}, "BAD_REQUEST"),
            ({"op": "create_link", "path": "/l", "target": "/a/../b"}, "BAD_PATH"),
            ({"op": "move", "path": "/g"}, "BAD_REQUEST"),
            ({"op": "move", "path": "/g", "dest": "/h", "target": "/x"}, "BAD_REQUEST"),
            ({"op": "move", "path": "/g", "dest": "h"}, "BAD_PATH"),
            ({"op": "exists"}, "BAD_REQUEST"),
        ]:
            req["id"] = 9
            assert_error(conn.call(req), code, 9)
        # the unknown-op message names the new ops too
        reply = conn.call({"id": 10, "op": "lsattr", "path": "/"})
        assert_error(reply, "UNKNOWN_OP", 10)
        assert "list_attrs" in reply["error"]["message"] and "move" in reply["error"]["message"]
    server.stop()
    with h5open(server.file) as f:
        assert list(f.keys()) == ["g"] and len(f["g"]) == 0


def test_walk_depth_limit(server):
    # paths stop at 256 levels, but moving a deep group under another
    # makes a deeper tree: /a/d0/.../d199/b/e0/.../e149, 352 levels
    deep = "/a/" + "/".join("d%d" % i for i in range(200))

    async def body(c):
        await c.create_group(deep)
        await c.create_group("/b/" + "/".join("e%d" % i for i in range(150)))
        await c.move("/b", deep + "/b")
        with pytest.raises(h5a.TooLargeError):
            await walk_all(c)
        return await walk_all(c, max_depth=100)

    assert len(session(server, body)) == 100


def test_server_files_inspectable_after_restart(start_server, tmp_path):
    """What the server made (links, attributes, moved datasets) is what
    h5py sees, and a new server sees it too."""
    workdir = tmp_path / "w"
    srv = start_server(workdir=workdir)

    async def body(c):
        await c.append("/runs/r1/e", np.arange(5.0), compression="gzip")
        await c.set_attr("/runs/r1", "operator", "ada")
        await c.create_link("/latest", "/runs/r1")
        await c.move("/runs/r1/e", "/runs/r1/energy")
        return await walk_all(c), await c.info("/latest/energy")

    before, info = session(srv, body)
    srv.stop()
    assert [(e["path"], e["kind"]) for e in before] == h5py_walk(srv.file)
    with h5open(srv.file) as f:
        ds = f["runs/r1/energy"]
        assert info["chunks"] == ds.chunks and info["compression"] == "gzip"
        assert info["maxshape"] == (None,) == ds.maxshape
        assert f["runs/r1"].attrs["operator"] == "ada"
    srv2 = start_server(workdir=workdir)
    assert session(srv2, walk_all) == before
    assert os.path.exists(srv.file)


def test_append_conversion_keeps_attributes(server):
    """append/insert rebuild a write-made dataset as a resizable one: its
    attributes move over with it."""

    async def body(c):
        await c.write("/d", np.arange(3))
        await c.write("/e", np.arange(3))
        for p in ("/d", "/e"):
            await c.set_attr(p, "s", "text")
            await c.set_attr(p, "arr", np.arange(4.0))
            await c.set_attr(p, "strs", ["a", "bc"])
            await c.set_attr(p, "st", np.zeros(2, dtype=STRUCT))
        assert await c.append("/d", np.arange(2)) == (5,)
        assert await c.insert("/e", 0, np.arange(2)) == (5,)
        return await c.attrs("/d"), await c.attrs("/e")

    d, e = session(server, body)
    for a in (d, e):
        assert a["s"] == "text" and a["strs"].tolist() == ["a", "bc"]
        np.testing.assert_array_equal(a["arr"], np.arange(4.0))
        assert a["st"].dtype == STRUCT
    server.stop()
    with h5open(server.file) as f:
        assert f["d"].maxshape == (None,) and sorted(f["d"].attrs) == ["arr", "s", "st", "strs"]
