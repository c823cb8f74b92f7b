"""The h5grove contract of the HTTP port (/api/meta, /api/data, /api/attr,
/api/paths): responses for a file made by h5py with every type the server
supports, compared with what h5grove (silx-kit/h5grove, version 4) would
answer for the same file.

h5grove is not installed here, so its answers are computed by `expected_*`
below, which follow its code line by line on the same file opened with
h5py (the server is stopped first, so h5py can open it):
  - src/h5grove/content.py: EntityContent.metadata (kind, name),
    ResolvedEntityContent.metadata (attributes: attr_metadata sorted by
    name), DatasetContent.metadata (chunks, filters, shape, type),
    GroupContent.metadata (children at depth 1, each resolved with
    LinkResolution.ONLY_VALID), SoftLinkContent / ExternalLinkContent
    (target_path, target_file), get_list_of_paths (links.visit);
  - src/h5grove/utils.py: get_type_metadata, stringify_dtype, get_filters
    (None without filters), parse_slice, convert (dtype=safe:
    _sanitize_dtype), parse_link_resolution_arg, the messages of
    PathError / LinkError ("is not a valid path", "Cannot resolve");
  - src/h5grove/encoders.py: encode (json through orjson: numpy values by
    tolist(), bytes decoded, complex as [re, im], h5py.Empty as null, NaN
    as null; bin = tobytes(); npy = np.save);
  - docs/_static/api.yaml: the parameters and 403/404/422/500.
Hard-coded expectations are copied from h5grove's own tests
(src/tests/base_test.py), named after them; the case list follows h5web's
packages/app/src/providers/h5grove/h5grove-api.test.ts (each child of the
root: its metadata and its value as H5GroveApi.getValue fetches it).

Deliberate differences, each tested: external links are never followed
(the server's rule, docs/security.md), so they stay external_link where
h5grove would resolve a valid one; a malformed selection or an index out
of range is 422 where h5grove raises (500); csv and tiff are 422
(optional in the issue)."""

import io
import json
import math
import os
import urllib.error
import urllib.request

import h5py
import numpy as np
import pytest

from h5a_util import start_server

# ---------------------------------------------------------------------------
# the file


def make_file(path):
    with h5py.File(path, "w") as f:
        f.attrs["NX_class"] = "NXroot"
        f.attrs["default"] = "entry"
        f.attrs["int_attr"] = 5
        f.attrs["float_attr"] = 2.5
        f.attrs["arr_attr"] = np.array([8, 9])
        f.attrs["bytes_attr"] = np.bytes_(b"fixed")
        f.attrs["vlen_bytes_attr"] = b"ascii"
        f.attrs["empty_attr"] = h5py.Empty("f4")
        f.attrs["bool_attr"] = True
        f.attrs["complex_attr"] = 1 + 2j
        f.attrs["str_list_attr"] = ["a", "bc"]
        e = f.create_group("entry")
        e.attrs["NX_class"] = "NXentry"
        for name, dt in [("int8", "|i1"), ("int16", "<i2"), ("int32", "<i4"), ("int64", "<i8"),
                         ("uint8", "|u1"), ("uint16", "<u2"), ("uint32", "<u4"),
                         ("uint64", "<u8"), ("float16", "<f2"), ("float32", "<f4"),
                         ("float64", "<f8"), ("int32_BE", ">i4"), ("float64_BE", ">f8"),
                         ("complex64", "<c8"), ("complex128", "<c16"), ("bool", "|b1")]:
            a = (np.arange(6) - 2).reshape(2, 3)
            if dt == "|b1":
                a = a > 0
            elif dt[1] == "u":
                a = np.abs(a)
            elif dt[1] == "c":
                a = a + 1j * a[::-1]
            f["%s_2D" % name] = a.astype(dt)
            f["%s_scalar" % name] = a.astype(dt).flat[1]
        f["float32_special"] = np.array([np.nan, np.inf, -np.inf, 0.1, 1e-7, 3e38], "<f4")
        f["float64_special"] = np.array([np.nan, 0.1, 1 / 3, -0.0, 1e300], "<f8")
        f["fixed_str"] = np.array([b"abc", b"de"], "S5")
        f["fixed_str_scalar"] = np.bytes_(b"hello")
        f["vlen_str"] = np.array(["caf\u00e9", "b"], dtype=h5py.string_dtype())
        f["vlen_str_scalar"] = "I am not numeric"
        f["vlen_ascii"] = np.array([b"x", b"yz"], dtype=h5py.string_dtype("ascii"))
        f["compound"] = np.array([(b"Rex", 9, 81.0), (b"Fido", 3, 27.0)],
                                 dtype=[("name", "S10"), ("age", "<i4"), ("weight", "<f4")])
        f["nested"] = np.zeros(2, dtype=[("a", "<i2"), ("b", [("x", "<f4"), ("y", "<u1", (2,))])])
        f["opaque"] = np.array([b"\x01\x02\x03"], "V3")
        f["enum"] = np.array([1, 5], "u1").astype(h5py.enum_dtype({"A": 1, "B": 5}, basetype="u1"))
        f["empty"] = h5py.Empty("<f4")
        f["zero_len"] = np.zeros((0, 3))
        f.create_dataset("gzip", data=np.arange(100.0).reshape(10, 10), compression="gzip",
                         shuffle=True, chunks=(5, 5))
        f.create_dataset("lzf", data=np.arange(10), compression="lzf")
        f.create_dataset("growing", data=np.arange(4.0), maxshape=(None,), chunks=(2,))
        f["entry/image"] = np.arange(64.0).reshape(8, 8)
        f["entry/image"].attrs["units"] = "counts"
        f["entry/data/signal"] = np.arange(3)
        f["entry/data"].attrs["signal"] = "signal"
        f["committed_type"] = np.dtype("<f8")
        f["soft"] = h5py.SoftLink("/entry/image")
        f["soft_group"] = h5py.SoftLink("/entry")
        f["dangling"] = h5py.SoftLink("not_an_entity")
        f["ext"] = h5py.ExternalLink("source.h5", "/data")
        f["linked/to_image"] = h5py.SoftLink("/entry/image")
        f["linked/relative"] = h5py.SoftLink("to_image")  # relative to its group: dangling
        f["linked_ok/to_image"] = h5py.SoftLink("/entry/image")
        f["linked_ok/sub/to_entry"] = h5py.SoftLink("/entry")
    with h5py.File(os.path.join(os.path.dirname(path), "source.h5"), "w") as s:
        s["data"] = np.arange(10, dtype="<f8")


# ---------------------------------------------------------------------------
# h5grove's answers, computed from the file (see the module docstring)


def stringify_dtype(dtype):  # utils.stringify_dtype
    if dtype.fields is None:
        return dtype.str
    return {k: stringify_dtype(v[0]) for k, v in dtype.fields.items()}


def type_metadata(t):  # utils.get_type_metadata
    base = {"class": t.get_class(), "dtype": stringify_dtype(t.dtype), "size": t.get_size()}
    if isinstance(t, h5py.h5t.TypeIntegerID):
        return {**base, "order": t.get_order(), "sign": t.get_sign()}
    if isinstance(t, h5py.h5t.TypeFloatID):
        return {**base, "order": t.get_order()}
    if isinstance(t, h5py.h5t.TypeStringID):
        return {**base, "cset": t.get_cset(), "strpad": t.get_strpad(),
                "vlen": t.is_variable_str()}
    if isinstance(t, h5py.h5t.TypeBitfieldID):
        return {**base, "order": t.get_order()}
    if isinstance(t, h5py.h5t.TypeOpaqueID):
        return {**base, "tag": t.get_tag().decode()}
    if isinstance(t, h5py.h5t.TypeCompoundID):
        return {**base, "members": [
            {"name": t.get_member_name(i).decode("utf-8"), **type_metadata(t.get_member_type(i))}
            for i in range(t.get_nmembers())]}
    if isinstance(t, h5py.h5t.TypeEnumID):
        return {**base, "members": {t.get_member_name(i).decode("utf-8"): t.get_member_value(i)
                                    for i in range(t.get_nmembers())},
                "base": type_metadata(t.get_super())}
    if isinstance(t, h5py.h5t.TypeVlenID):
        return {**base, "base": type_metadata(t.get_super())}
    if isinstance(t, h5py.h5t.TypeArrayID):
        return {**base, "dims": list(t.get_array_dims()), "base": type_metadata(t.get_super())}
    return base


def jsonable(v):
    """What orjson (encoders.orjson_encode with orjson_default) writes, as
    json.loads reads it back."""
    if isinstance(v, h5py.Empty):
        return None
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode()
    if isinstance(v, str):
        return v
    if isinstance(v, np.void) and v.dtype.fields is None:
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, (complex, np.complexfloating)):
        return [jsonable(v.real), jsonable(v.imag)]
    if isinstance(v, np.floating):
        f = float(v)
        if math.isnan(f) or math.isinf(f):
            return None
        if v.dtype.itemsize == 4:  # orjson: the shortest repr of the float32
            return float(repr(np.float32(v)).replace("np.float32(", "").rstrip(")"))
        return f
    if isinstance(v, float):
        return None if (math.isnan(v) or math.isinf(v)) else v
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, np.ndarray):
        if v.dtype.fields is None and v.dtype.kind not in "SOVUc" and v.dtype.itemsize != 2:
            return [jsonable(x) for x in v] if v.ndim == 1 else [jsonable(x) for x in v]
        return [jsonable(x) for x in v]
    if isinstance(v, (tuple, list, np.void)):
        return [jsonable(x) for x in (v.tolist() if isinstance(v, np.void) else v)]
    raise TypeError(type(v))


def attr_metadata(obj, name):  # utils.attr_metadata
    aid = obj.attrs.get_id(name)
    return {"name": name, "shape": list(aid.shape) if aid.shape is not None else None,
            "type": type_metadata(aid.get_type())}


def entity(f, path, resolve="only_valid", depth=1):  # content.create_content + metadata()
    name = path.split("/")[-1]
    if path != "/":
        link = f.get(path, getlink=True)
        if isinstance(link, h5py.ExternalLink):  # never followed here (see docstring)
            if resolve == "all":
                return 404
            return {"kind": "external_link", "name": name, "target_file": link.filename,
                    "target_path": link.path}
        if isinstance(link, h5py.SoftLink):
            try:
                f[path]
            except KeyError:
                if resolve == "all":
                    return 404
                return {"kind": "soft_link", "name": name, "target_path": link.path}
            if resolve == "none":
                return {"kind": "soft_link", "name": name, "target_path": link.path}
    obj = f[path]
    attrs = [attr_metadata(obj, n) for n in sorted(obj.attrs.keys())]
    if isinstance(obj, h5py.Dataset):
        filters = obj.id.get_create_plist()
        n = filters.get_nfilters()
        return {"attributes": attrs, "chunks": list(obj.chunks) if obj.chunks else None,
                "filters": [{"id": filters.get_filter(i)[0], "name": filters.get_filter(i)[3].decode()}
                            for i in range(n)] if n > 0 else None,
                "kind": "dataset", "name": name,
                "shape": list(obj.shape) if obj.shape is not None else None,
                "type": type_metadata(obj.id.get_type())}
    if isinstance(obj, h5py.Datatype):
        return {"attributes": attrs, "kind": "datatype", "name": name,
                "type": type_metadata(obj.id)}
    md = {"attributes": attrs, "kind": "group", "name": name}
    if depth > 0:
        md["children"] = [entity(f, (path.rstrip("/") + "/" + k), "only_valid", depth - 1)
                          for k in obj.keys()]
    return md


def expected_data(f, path, selection=None, flatten=False):  # DatasetContent.data + encode json
    ds = f[path]
    if selection is None:
        v = ds[()]
    else:
        parts = []
        for m in selection.split(","):
            if ":" not in m:
                parts.append(int(m))
            else:
                p = m.split(":")
                if len(p) == 2:
                    parts.append(slice(int(p[0]) if p[0] else 0, int(p[1]) if p[1] else None))
                else:
                    parts.append(slice(*(int(x) if x else None for x in p)))
        v = ds[tuple(parts)]
    if flatten and isinstance(v, np.ndarray):
        v = np.ravel(v)
    return jsonable(v)


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("h5grove")
    srv = start_server(d, precreate=make_file, http=True)
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


@pytest.fixture(scope="module")
def ref(served, tmp_path_factory):
    """The answers, from the file as h5py sees it. The server holds the
    file's lock, so h5py reads a copy made the same way."""
    d = tmp_path_factory.mktemp("ref")
    p = os.path.join(str(d), "data.h5")
    make_file(p)
    f = h5py.File(p, "r")
    yield f
    f.close()


def get(srv, url, headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (srv.http_port, url),
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_json(srv, url):
    st, h, body = get(srv, url)
    assert st == 200, (url, st, body[:500])
    assert h["Content-Type"].startswith("application/json"), h
    return json.loads(body)


def q(**kw):
    return urllib.parse.urlencode(dict(file="data.h5", **kw))


import urllib.parse  # noqa: E402

ROOT_CHILDREN = None


# ---------------------------------------------------------------------------
# /api/meta


def test_meta_root_matches_h5grove(served, ref):
    got = get_json(served, "/api/meta?" + q(path="/"))
    want = entity(ref, "/")
    assert got == want


@pytest.mark.parametrize("path", [
    "/entry", "/entry/image", "/entry/data", "/gzip", "/lzf", "/growing", "/compound", "/nested",
    "/opaque", "/enum", "/empty", "/zero_len", "/fixed_str", "/vlen_str", "/vlen_ascii",
    "/vlen_str_scalar", "/committed_type", "/bool_2D", "/complex64_2D", "/int32_BE_scalar",
    "/float16_2D", "/soft", "/soft_group", "/dangling", "/ext"])
@pytest.mark.parametrize("resolve", [None, "none", "only_valid", "all"])
def test_meta_matches_h5grove(served, ref, path, resolve):
    kw = {"path": path}
    if resolve:
        kw["resolve_links"] = resolve
    st, _, body = get(served, "/api/meta?" + q(**kw))
    want = entity(ref, path, resolve or "only_valid")
    if want == 404:
        assert st == 404 and "Cannot resolve" in json.loads(body)["message"]
        return
    assert st == 200, body
    assert json.loads(body) == want


def test_meta_on_chunked_compressed_dataset(served):
    # h5grove src/tests/base_test.py test_meta_on_chunked_compressed_dataset
    assert get_json(served, "/api/meta?" + q(path="/gzip")) == {
        "attributes": [], "chunks": [5, 5],
        "filters": [{"id": 2, "name": "shuffle"}, {"id": 1, "name": "deflate"}],
        "kind": "dataset", "name": "gzip", "shape": [10, 10],
        "type": {"class": 1, "dtype": "<f8", "size": 8, "order": 0}}


def test_meta_on_compound_dataset(served):
    # base_test.py test_meta_on_compound_dataset
    got = get_json(served, "/api/meta?" + q(path="/compound"))
    assert got["type"] == {
        "class": 6, "dtype": {"age": "<i4", "name": "|S10", "weight": "<f4"}, "size": 18,
        "members": [
            {"name": "name", "class": 3, "dtype": "|S10", "size": 10, "cset": 0, "strpad": 1,
             "vlen": False},
            {"name": "age", "class": 0, "dtype": "<i4", "size": 4, "order": 0, "sign": 1},
            {"name": "weight", "class": 1, "dtype": "<f4", "size": 4, "order": 0}]}
    assert got["chunks"] is None and got["filters"] is None and got["shape"] == [2]


def test_meta_on_datatype(served):
    # base_test.py test_meta_on_datatype
    assert get_json(served, "/api/meta?" + q(path="/committed_type")) == {
        "attributes": [], "kind": "datatype", "name": "committed_type",
        "type": {"class": 1, "dtype": "<f8", "size": 8, "order": 0}}


def test_meta_on_broken_soft_link(served):
    # base_test.py test_meta_on_broken_soft_link
    for resolve in ("none", "only_valid"):
        assert get_json(served, "/api/meta?" + q(path="dangling", resolve_links=resolve)) == {
            "kind": "soft_link", "name": "dangling", "target_path": "not_an_entity"}
    st, _, body = get(served, "/api/meta?" + q(path="dangling", resolve_links="all"))
    assert st == 404 and "Cannot resolve" in json.loads(body)["message"]


def test_meta_external_link_is_never_followed(served):
    # h5grove would resolve a valid external link (base_test.py
    # test_meta_on_valid_ext_link); this server never opens another file
    got = get_json(served, "/api/meta?" + q(path="/ext"))
    assert got == {"kind": "external_link", "name": "ext", "target_file": "source.h5",
                   "target_path": "/data"}


# ---------------------------------------------------------------------------
# /api/data


def data_paths(ref):
    return [k for k in ref.keys() if isinstance(ref.get(k, getlink=True), h5py.HardLink)
            and isinstance(ref[k], h5py.Dataset)]


def test_data_json_matches_h5grove_for_every_dataset(served, ref):
    # h5web's h5grove-api.test.ts: every child of the root and its value
    for name in data_paths(ref):
        path = "/" + name
        if ref[path].shape is None:  # h5py.Empty: null
            assert get_json(served, "/api/data?" + q(path=path)) is None, path
            continue
        if ref[path].dtype.kind == "V" and ref[path].dtype.fields is None:
            continue  # opaque: h5web reads it as bin (below)
        assert get_json(served, "/api/data?" + q(path=path)) == expected_data(ref, path), path
        assert get_json(served, "/api/data?" + q(path=path, flatten="true")) == \
            expected_data(ref, path, flatten=True), path


@pytest.mark.parametrize("sel", ["1", "1,:", "0:1", "::2", "-1", "1, 1:3", " 0 , ::2"])
def test_data_selection(served, ref, sel):
    got = get_json(served, "/api/data?" + q(path="/int32_2D", selection=sel))
    assert got == expected_data(ref, "/int32_2D", sel.replace(" ", ""))


def test_data_on_slice_with_flatten(served, ref):
    # base_test.py test_data_on_slice_with_format_and_flatten
    got = get_json(served, "/api/data?" + q(path="/entry/image", selection="5,0", flatten="true"))
    assert got == ref["entry/image"][5, 0]
    st, _, body = get(served, "/api/data?" + q(path="/entry/image", selection="5,0", format="npy",
                                               flatten="true"))
    assert np.load(io.BytesIO(body)) == ref["entry/image"][5, 0]


def safe_dtype(dt):  # utils._sanitize_dtype
    if dt.kind == "f" and dt.itemsize < 4:
        return np.dtype("<f4")
    if dt.byteorder in "=>":
        return dt.newbyteorder("<")
    return dt


@pytest.mark.parametrize("fmt", ["bin", "npy"])
@pytest.mark.parametrize("safe", [False, True])
def test_data_binary_matches_h5grove(served, ref, fmt, safe):
    for name in data_paths(ref):
        path = "/" + name
        ds = ref[path]
        if ds.shape is None or ds.dtype.kind in "OS" or h5py.check_string_dtype(ds.dtype):
            continue
        numeric = ds.dtype.kind in "biufc"
        kw = {"path": path, "format": fmt}
        if safe:
            kw["dtype"] = "safe"
        st, h, body = get(served, "/api/data?" + q(**kw))
        if (safe or fmt == "npy") and not numeric:
            assert st == 422, (path, st)
            continue
        assert st == 200, (path, st, body[:300])
        want = np.asarray(ds[()])
        if safe:
            want = want.astype(safe_dtype(want.dtype))
        if fmt == "bin":  # encoders.bin_encode: tobytes()
            assert h["Content-Type"] == "application/octet-stream"
            assert body == want.tobytes(), path
        else:  # encoders.npy_encode: np.save
            got = np.load(io.BytesIO(body))
            assert got.dtype == want.dtype and got.shape == want.shape, path
            assert got.tobytes() == want.tobytes(), path
            assert h["Content-Disposition"] == 'attachment; filename="data.npy"'


def test_data_on_opaque(served):
    # base_test.py test_data_on_opaque (format=bin)
    st, h, body = get(served, "/api/data?" + q(path="/opaque", format="bin"))
    assert st == 200 and body == b"\x01\x02\x03"


def test_422s(served):
    # base_test.py test_422_on_dtype_safe_with_non_numeric_data,
    # test_422_on_format_incompatible_with_non_numeric_data, test_422_on_invalid_query_arg
    for url in ["/api/data?" + q(path="/vlen_str_scalar", dtype="safe"),
                "/api/data?" + q(path="/vlen_str_scalar", format="npy"),
                "/api/data?" + q(path="/int32_2D", format="foo"),
                "/api/data?" + q(path="/int32_2D", dtype="foo"),
                "/api/meta?" + q(path="/int32_2D", resolve_links="maybe"),
                # 500 in h5grove (an uncaught exception), 422 here
                "/api/data?" + q(path="/int32_2D", selection="1:2:3:4"),
                "/api/data?" + q(path="/int32_2D", selection="x"),
                "/api/data?" + q(path="/int32_2D", selection="7")]:
        st, h, body = get(served, url)
        assert st == 422, (url, st, body)
        assert isinstance(json.loads(body)["message"], str)


def test_404s(served):
    # base_test.py test_404_on_non_existing_path, test_404_on_non_existing_file
    for ep in ("attr", "data", "meta", "paths"):
        st, _, body = get(served, "/api/%s?%s" % (ep, q(path="not_a_path")))
        assert st == 404 and "is not a valid path" in json.loads(body)["message"], (ep, body)
        st, _, body = get(served, "/api/%s?file=not_a_file.h5&path=/" % ep)
        assert st == 404 and "File not found" in json.loads(body)["message"], (ep, body)


# ---------------------------------------------------------------------------
# /api/attr, /api/paths


def test_attr_matches_h5grove(served, ref):
    # base_test.py test_attr_on_root; ResolvedEntityContent.attributes
    for path in ("/", "/entry", "/entry/image", "/soft", "/int8_2D"):
        got = get_json(served, "/api/attr?" + q(path=path))
        assert got == {k: jsonable(v) for k, v in ref[path].attrs.items()}, path
    got = get_json(served, "/api/attr?" + q(path="/") + "&attr_keys=NX_class&attr_keys=default")
    assert got == {"NX_class": "NXroot", "default": "entry"}


def test_paths_matches_h5grove(served, ref):
    # content.get_list_of_paths (links.visit), base_test.py test_paths
    for base in (None, "/entry", "/entry/data"):
        names = [base or "/"]
        g = ref[base or "/"]
        g.id.links.visit(lambda n: names.append(((base or "").rstrip("/") + "/" + n.decode())))
        url = "/api/paths?" + (q(path=base) if base else q())
        assert get_json(served, url) == names, base


def expected_paths(f, base, resolve):  # content.get_list_of_paths
    names = [base]
    bad = []

    def visit(n):
        path = base.rstrip("/") + "/" + n.decode()  # utils.hdf_path_join
        link = f.get(path, getlink=True)
        # create_content(f, path, resolve) -> utils.get_entity_from_file:
        # with LinkResolution.ALL a link that cannot be resolved raises
        # LinkError (404); external links are never followed here
        if resolve == "all" and isinstance(link, h5py.ExternalLink):
            bad.append(path)
        elif resolve == "all" and isinstance(link, h5py.SoftLink):
            try:
                f[path]
            except KeyError:
                bad.append(path)
        names.append(path)

    g = f[base]  # kept: visiting the links of a group object already freed fails
    g.id.links.visit(visit)
    return 404 if bad else names


@pytest.mark.parametrize("base", ["/", "/entry", "/linked", "/linked_ok"])
@pytest.mark.parametrize("resolve", ["none", "only_valid", "all", "true", "false"])
def test_paths_resolve_links(served, ref, base, resolve):
    # resolve_links on /paths: get_list_of_paths parses it like /meta
    # (parse_link_resolution_arg; "true"/"false" = all/none) and makes the
    # content of every path with it
    norm = {"true": "all", "false": "none"}.get(resolve, resolve)
    want = expected_paths(ref, base, norm)
    st, _, body = get(served, "/api/paths?" + q(path=base, resolve_links=resolve))
    if want == 404:
        assert st == 404 and "Cannot resolve" in json.loads(body)["message"], (st, body)
    else:
        assert st == 200 and json.loads(body) == want, body
    st, _, body = get(served, "/api/paths?" + q(path=base, resolve_links="maybe"))
    assert st == 422 and "not a valid value for link resolution" in json.loads(body)["message"]


def test_trailing_slashes_and_api_root(served):
    assert get_json(served, "/api/meta/?" + q(path="/entry/image"))["name"] == "image"
    st, _, body = get(served, "/api/")
    assert st == 200 and body == b"ok"


def test_value_seen_live(served):
    """A write through the main port is in the next /api/data: the file as
    it stands between two operations."""
    from h5a_util import RawConn
    import msgpack_numpy  # noqa: F401
    with RawConn(served) as c:
        r = c.call({"id": 1, "op": "append", "path": "/growing",
                    "data": {"nd": True, "type": "<f8", "kind": "", "shape": [2],
                             "data": np.array([4.0, 5.0]).tobytes()}})
        assert r["ok"], r
    assert get_json(served, "/api/data?" + q(path="/growing")) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert get_json(served, "/api/meta?" + q(path="/growing"))["shape"] == [6]
