"""The HTTP port with a data root (issues 12 and 14): h5grove's `file` names
any file under data_root, with the binary port's name checks (an escape is
h5grove's 404 "File not found!"), a missing file is 404 "File not found",
token prefixes apply per file (/FILE/path), and with [cluster] a file
another node owns is 421 naming that node. The files are made by h5py (the
oracle) or written through the binary port."""

import hashlib
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request

import h5py
import numpy as np

from h5a_util import IO_TIMEOUT, RawConn, assert_ok
from hdf5_async import cluster as hcluster


def get(port, url, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, url), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def api(port, ep, file, path="/", token=None, **params):
    q = {"file": file, "path": path}
    q.update(params)
    return get(port, "/api/%s/?%s" % (ep, urllib.parse.urlencode(q)), token)


def jget(port, ep, file, path="/", token=None, **params):
    st, body = api(port, ep, file, path, token, **params)
    return st, json.loads(body)


def make_files(root):
    with h5py.File(root / "a.h5", "w") as f:
        f["x"] = np.arange(5, dtype="<i4")
        f["x"].attrs["units"] = "m"
        f.create_group("g")
    (root / "sub").mkdir()
    with h5py.File(root / "sub" / "b.h5", "w") as f:
        f["y"] = np.array([[1.5, 2.5], [3.5, 4.5]])
        f.attrs["title"] = "bee"


def start_root(start_server, tmp_path, **opts):
    root = tmp_path / "root"
    root.mkdir()
    make_files(root)
    server_opts = {"data_root": str(root), "hdf5_file_path": "default.h5"}
    server_opts.update(opts.pop("server_opts", {}))
    srv = start_server(server_opts=server_opts, workdir=tmp_path / "w", http=True, **opts)
    return srv, root


def test_two_files_meta_data_attr_paths(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)
    p = srv.http_port
    st, h = json.loads(get(p, "/health")[1]), None
    assert st["file"] == "default.h5"  # what the viewer passes as file=

    st, m = jget(p, "meta", "a.h5")
    assert st == 200 and sorted(c["name"] for c in m["children"]) == ["g", "x"]
    st, m = jget(p, "meta", "a.h5", "/x")
    assert st == 200 and m["kind"] == "dataset" and m["shape"] == [5]
    st, d = jget(p, "data", "a.h5", "/x")
    assert st == 200 and d == [0, 1, 2, 3, 4]
    st, body = api(p, "data", "a.h5", "/x", format="bin", selection="1:3")
    assert st == 200 and np.frombuffer(body, "<i4").tolist() == [1, 2]
    st, a = jget(p, "attr", "a.h5", "/x")
    assert st == 200 and a == {"units": "m"}
    st, ps = jget(p, "paths", "a.h5")
    assert st == 200 and sorted(ps) == ["/", "/g", "/x"]

    st, m = jget(p, "meta", "sub/b.h5", "/y")
    assert st == 200 and m["shape"] == [2, 2]
    st, d = jget(p, "data", "sub/b.h5", "/y")
    assert st == 200 and d == [[1.5, 2.5], [3.5, 4.5]]
    st, a = jget(p, "attr", "sub/b.h5")
    assert st == 200 and a == {"title": "bee"}
    st, ps = jget(p, "paths", "sub/b.h5")
    assert st == 200 and sorted(ps) == ["/", "/y"]
    # a path of one file is not looked for in the other
    st, e = jget(p, "meta", "sub/b.h5", "/x")
    assert st == 404 and "not a valid path" in e["message"] and "sub/b.h5" in e["message"]

    # the default file: missing until the first change, then served by its name
    st, e = jget(p, "meta", "default.h5")
    assert st == 404 and "File not found" in e["message"]
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "append", "path": "/d", "data": [7, 8]}))
        assert_ok(c.call({"id": 2, "op": "append", "path": "/n", "data": [9], "file": "new/c.h5"}))
    assert jget(p, "data", "default.h5", "/d") == (200, [7, 8])
    assert jget(p, "data", "new/c.h5", "/n") == (200, [9])
    srv.stop()
    with h5py.File(root / "new" / "c.h5", "r") as f:  # the oracle agrees
        assert f["n"][:].tolist() == [9]


def test_missing_files_and_escapes_are_404_and_create_nothing(start_server, tmp_path):
    srv, root = start_root(start_server, tmp_path)
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = [1]
    os.symlink(outside, root / "link.h5")
    os.symlink(tmp_path, root / "linkdir")
    before = sorted(os.listdir(root))
    p = srv.http_port
    for name in ["nope.h5", "sub/nope.h5", "nodir/x.h5"]:
        for ep in ["meta", "data", "attr", "paths"]:
            st, e = jget(p, ep, name)
            assert st == 404 and e["message"].startswith("File not found"), (name, ep, e)
    for name in ["../outside.h5", "/etc/passwd", str(outside), "sub/../a.h5", "./a.h5",
                 "sub//b.h5", "sub/", "a.h5.wal", "a.h5.dedup", "link.h5",
                 "linkdir/outside.h5"]:
        for ep in ["meta", "data"]:
            st, e = jget(p, ep, name, "/secret" if "outside" in name or "link" in name else "/")
            assert st == 404 and e["message"].startswith("File not found"), (name, ep, e)
    st, e = get(p, "/api/meta/?file=a%00.h5&path=/")  # a NUL: the query is refused whole
    assert st == 400
    st, e = jget(p, "meta", "")
    assert st == 404 and e["message"].startswith("File not found")
    st, e = get(p, "/api/meta/?path=/")
    assert st == 422 and "file" in json.loads(e)["message"]
    assert sorted(os.listdir(root)) == before


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def test_token_prefixes_apply_per_file(start_server, tmp_path):
    toks = tmp_path / "tokens"
    toks.write_text("a read %s /a.h5\nx read %s /sub/b.h5/y\n" % (sha("tok-a" * 8), sha("tok-x" * 8)))
    srv, root = start_root(start_server, tmp_path, server_opts={"auth_file": str(toks)})
    p = srv.http_port
    ta, tx = "tok-a" * 8, "tok-x" * 8
    assert jget(p, "data", "a.h5", "/x", ta) == (200, [0, 1, 2, 3, 4])
    assert jget(p, "meta", "a.h5", "/", ta)[0] == 200
    for ep in ["meta", "data", "attr", "paths"]:
        st, e = jget(p, ep, "sub/b.h5", "/y", ta)
        assert st == 403 and "Permission denied" in e["message"], (ep, e)
        st, e = jget(p, ep, "default.h5", "/", ta)
        assert st == 403, (ep, e)
    # a prefix inside a file: that dataset only
    assert jget(p, "data", "sub/b.h5", "/y", tx) == (200, [[1.5, 2.5], [3.5, 4.5]])
    assert jget(p, "data", "a.h5", "/x", tx)[0] == 403
    assert jget(p, "attr", "sub/b.h5", "/", tx)[0] == 403
    assert jget(p, "data", "a.h5", "/x")[0] == 401  # no token


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_cluster_other_nodes_file_is_421_naming_the_owner(start_server, tmp_path):
    nodes = ["127.0.0.1:%d" % free_port(), "127.0.0.1:1"]  # node 1 never runs
    names = ["f%d.h5" % i for i in range(40)]
    mine = [n for n in names if hcluster.owner(nodes, n) == 0]
    theirs = [n for n in names if hcluster.owner(nodes, n) == 1]
    assert mine and theirs
    root = tmp_path / "root"
    root.mkdir()
    for n in mine[:1] + theirs[:1]:  # both exist on the shared root
        with h5py.File(root / n, "w") as f:
            f["v"] = [n.encode()]
    toks = tmp_path / "tokens"
    toks.write_text("all read %s /\none read %s /%s\n" % (sha("tok-l" * 8), sha("tok-1" * 8), mine[0]))
    srv = start_server(server_opts={"data_root": str(root), "hdf5_file_path": mine[1],
                                    "auth_file": str(toks)},
                       workdir=tmp_path / "w", http=True,
                       extra_config="[cluster]\nnodes = %s\n" % ", ".join(nodes),
                       extra_args=["--node", "0", "--port", nodes[0].rpartition(":")[2]])
    p, t = srv.http_port, "tok-l" * 8
    assert jget(p, "data", mine[0], "/v", t) == (200, [mine[0]])
    for ep in ["meta", "data", "attr", "paths"]:
        st, e = jget(p, ep, theirs[0], "/v", t)
        assert st == 421 and "127.0.0.1:1" in e["message"] and "node 1" in e["message"], (ep, e)
        st, e = jget(p, ep, theirs[1], "/", t)  # missing and not ours: still the owner's
        assert st == 421, (ep, e)
        # the access check comes first, as on the binary port: no owner told
        st, e = jget(p, ep, theirs[0], "/v", "tok-1" * 8)
        assert st == 403 and "127.0.0.1:1" not in e["message"], (ep, e)
    assert jget(p, "data", mine[0], "/v", "tok-1" * 8) == (200, [mine[0]])
    st, e = jget(p, "meta", mine[2], "/", t)
    assert st == 404 and e["message"].startswith("File not found")


def test_without_data_root_only_the_served_file(start_server, tmp_path):
    srv = start_server(http=True, workdir=tmp_path / "w")
    with RawConn(srv) as c:
        assert_ok(c.call({"id": 1, "op": "append", "path": "/d", "data": [1]}))
    p = srv.http_port
    assert jget(p, "data", "data.h5", "/d") == (200, [1])
    for name in ["other.h5", "../data.h5", "w/data.h5"]:
        st, e = jget(p, "data", name, "/d")
        assert st == 404 and "serves 'data.h5' only" in e["message"], (name, e)
