"""ls, tree, info, attr, ln and mv of the command-line tool, on files made
by h5py and checked with h5py after the server stops."""

import h5py
import numpy as np
import pytest

from test_cli import EXIT_SERVER, EXIT_USAGE, fails, ok, run


def make_file(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("g")
        g.attrs["units"] = "metres"
        g.attrs["n"] = 3
        f.create_dataset("g/x", data=np.arange(10.0), chunks=(5,), maxshape=(None,),
                         compression="gzip", compression_opts=6, shuffle=True, fillvalue=-1.0)
        f["g/sub/deep"] = np.array([b"a", b"bc"])
        f["scalar"] = 5
        f.create_dataset("empty", data=h5py.Empty("f4"))
        f["soft"] = h5py.SoftLink("/g/x")
        f["ext"] = h5py.ExternalLink("other.h5", "/y")
        f["t"] = np.dtype("<i4")
        f["vs"] = np.array(["a", "b"], dtype=h5py.string_dtype())


def lines(r):
    return [ln.split() for ln in r.stdout.splitlines()]


def test_ls(start_server):
    srv = start_server(precreate=make_file)
    out = ok(run(["ls"], srv)).stdout.splitlines()
    assert [ln.split()[0] for ln in out] == ["empty", "ext", "g", "scalar", "soft", "t", "vs"]
    by = {ln.split()[0]: ln for ln in out}
    assert by["g"].split()[1:] == ["Group"]
    assert by["scalar"].split()[1:] == ["Dataset", "{SCALAR}", "int64"]
    assert by["empty"].split()[1:] == ["Dataset", "{NULL}", "float32"]
    assert by["soft"].split()[1:] == ["Soft", "Link", "{/g/x}"]
    assert by["ext"].split()[1:] == ["External", "Link", "{other.h5//y}"]
    assert by["t"].split()[1:] == ["Type", "int32"]
    assert "str (variable length)" in by["vs"]
    # names padded to one column, as h5ls does
    assert len({ln.index(ln.split()[1]) for ln in out}) == 1
    assert lines(ok(run(["ls", "/g"], srv))) == [
        ["sub", "Group"],
        ["x", "Dataset", "{10/Inf}", "float64"],
    ]
    # a dataset lists as itself; links in the path are followed
    assert lines(ok(run(["ls", "/g/x"], srv))) == [["x", "Dataset", "{10/Inf}", "float64"]]
    assert lines(ok(run(["ls", "/soft"], srv))) == [["soft", "Dataset", "{10/Inf}", "float64"]]
    fails(run(["ls", "/nope"], srv), EXIT_SERVER, "NOT_FOUND")


def test_ls_recursive_and_tree(start_server):
    srv = start_server(precreate=make_file)
    paths = [ln.split()[0] for ln in ok(run(["ls", "-r"], srv)).stdout.splitlines()]
    assert paths == ["/empty", "/ext", "/g", "/g/sub", "/g/sub/deep", "/g/x", "/scalar", "/soft",
                     "/t", "/vs"]
    assert [ln.split()[0] for ln in ok(run(["ls", "--recursive", "/g"], srv)).stdout.splitlines()] \
        == ["/g/sub", "/g/sub/deep", "/g/x"]
    tree = ok(run(["tree", "/g"], srv)).stdout
    assert tree == "/g\n  sub/\n    deep  (2,) '|S2'\n  x  (10,) float64\n"
    full = ok(run(["tree"], srv)).stdout.splitlines()
    assert full[0] == "/" and "  soft -> /g/x" in full and "  ext -> other.h5:/y" in full
    fails(run(["tree", "/scalar"], srv), EXIT_SERVER, "NOT_A_GROUP")


def test_ls_many_members_pages(server):
    for i in range(3):
        ok(run(["mkgroup", "/many/g%d" % i], server))
    # more than one page would need 10000 members; check the order instead
    assert [ln.split()[0] for ln in ok(run(["ls", "/many"], server)).stdout.splitlines()] == \
        ["g0", "g1", "g2"]


def test_info(start_server):
    srv = start_server(precreate=make_file)
    out = ok(run(["info", "/g/x"], srv)).stdout
    assert out.splitlines()[0] == "/g/x: dataset"
    props = {ln[:15].strip(): ln[15:] for ln in out.splitlines()[1:]}
    assert props["shape"] == "(10,)" and props["maxshape"] == "(None,)"
    assert props["dtype"] == "float64" and props["hdf5 class"] == "float"
    assert props["layout"] == "chunked" and props["chunks"] == "(5,)"
    assert props["compression"] == "gzip (level 6), shuffle"
    assert props["filters"] == "shuffle (2) [8], deflate (1) [6]"
    assert props["fill value"] == "-1.0"
    assert props["storage"].endswith(" bytes") and props["attributes"] == "0"
    g = ok(run(["info", "/g"], srv)).stdout
    assert g == "/g: group\n  members      2\n  attributes   2\n"
    t = ok(run(["info", "/t"], srv)).stdout
    assert "dtype        int32" in t
    s = ok(run(["info", "/scalar"], srv)).stdout
    assert "shape        ()" in s and "chunks       None" in s and "fill value   0" in s
    fails(run(["info", "/nope"], srv), EXIT_SERVER, "NOT_FOUND")
    fails(run(["info"], srv), EXIT_USAGE, "missing PATH")


def test_attr(server):
    ok(run(["mkgroup", "/g"], server))
    assert ok(run(["attr", "set", "/g", "pi", "3.25"], server)).stdout == ""
    ok(run(["attr", "set", "/g", "n", "42"], server))
    ok(run(["attr", "set", "/g", "flag", "true"], server))
    ok(run(["attr", "set", "/g", "list", "[1, 2, 3]"], server))
    ok(run(["attr", "set", "/g", "floats", "[1, 2.5]"], server))
    ok(run(["attr", "set", "/g", "text", "hello world"], server))
    ok(run(["attr", "set", "/g", "numtext", "42", "--string"], server))
    ok(run(["attr", "set", "/", "root", "x"], server))
    assert ok(run(["attr", "get", "/g", "pi"], server)).stdout == "3.25\n"
    assert ok(run(["attr", "get", "/g", "list"], server)).stdout == \
        "array([1, 2, 3], shape=(3,), dtype=int64)\n"
    assert ok(run(["attr", "get", "/g", "text"], server)).stdout == "hello world\n"
    ls = lines(ok(run(["attr", "ls", "/g"], server)))
    assert [x[0] for x in ls] == ["flag", "floats", "list", "n", "numtext", "pi", "text"]
    assert ls[0] == ["flag", "Attribute", "{SCALAR}", "bool"]
    assert ls[2] == ["list", "Attribute", "{3}", "int64"]
    ok(run(["attr", "set", "/g", "n", "replaced"], server))
    ok(run(["attr", "rm", "/g", "pi"], server))
    fails(run(["attr", "get", "/g", "pi"], server), EXIT_SERVER, "NOT_FOUND")
    fails(run(["attr", "rm", "/g", "pi"], server), EXIT_SERVER, "NOT_FOUND")
    fails(run(["attr", "set", "/nope", "a", "1"], server), EXIT_SERVER, "NOT_FOUND")
    fails(run(["attr", "set", "/g", "bad", "[1, a]"], server), EXIT_USAGE, "numbers only")
    fails(run(["attr", "frob", "/g"], server), EXIT_USAGE, "unknown attr subcommand")
    fails(run(["attr", "get", "/g"], server), EXIT_USAGE, "missing NAME")
    fails(run(["attr", "set", "/g", "a"], server), EXIT_USAGE, "missing VALUE")
    fails(run(["attr", "rm", "/g", "a", "b"], server), EXIT_USAGE, "unexpected argument 'b'")
    fails(run(["attr", "ls", "/g", "-o", "x.npy"], server), EXIT_USAGE, "-o applies only")
    server.stop()
    with h5py.File(server.file, "r") as f:
        a = f["g"].attrs
        assert a["n"] == "replaced" and a["flag"] == True  # noqa: E712
        assert a["list"].dtype == np.int64 and a["list"].tolist() == [1, 2, 3]
        assert a["floats"].dtype == np.float64 and a["numtext"] == "42"
        assert "pi" not in a and f.attrs["root"] == "x"


def test_attr_npy_in_and_out(server, tmp_path):
    arr = np.arange(6, dtype=">i2").reshape(2, 3)
    src = tmp_path / "in.npy"
    np.save(src, arr)
    ok(run(["mkgroup", "/g"], server))
    ok(run(["attr", "set", "/g", "m", "--npy", src], server))
    out = tmp_path / "out.npy"
    ok(run(["attr", "get", "/g", "m", "-o", out], server))
    back = np.load(out)
    assert back.dtype == arr.dtype and (back == arr).all()
    fails(run(["attr", "set", "/g", "m", "1", "--npy", src], server), EXIT_USAGE)
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert f["g"].attrs["m"].dtype == np.dtype(">i2")


def test_ln_and_mv(server):
    ok(run(["mkgroup", "/a"], server))
    ok(run(["attr", "set", "/a", "k", "1"], server))
    assert ok(run(["ln", "-s", "/a", "/links/to_a"], server)).stdout == ""
    ok(run(["ln", "-s", "nowhere", "/dangling"], server))
    fails(run(["ln", "/a", "/l2"], server), EXIT_USAGE, "give -s")
    fails(run(["ln", "-s", "/a", "/links/to_a"], server), EXIT_SERVER, "EXISTS")
    assert ok(run(["mv", "/a", "/b/c"], server)).stdout == ""
    fails(run(["mv", "/a", "/z"], server), EXIT_SERVER, "NOT_FOUND")
    fails(run(["mv", "/b", "/dangling"], server), EXIT_SERVER, "EXISTS")
    fails(run(["mv", "/b"], server), EXIT_USAGE, "missing DEST")
    ok(run(["rm", "/dangling"], server))  # a link is removed as a link
    assert lines(ok(run(["ls", "/links"], server))) == [["to_a", "Soft", "Link", "{/a}"]]
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert sorted(f) == ["b", "links"]
        assert f["b/c"].attrs["k"] == 1
        assert f.get("links/to_a", getlink=True).path == "/a"


def test_created_datasets_in_ls_and_info(server):
    """create/resize/put --slice (the data commands) seen by ls/info/mv."""
    ok(run(["create", "/c/t", "--shape", "0,3", "--dtype", "i4", "--maxshape", "None,3",
            "--chunks", "8,3", "--fill", "-1", "--compression", "gzip", "--level", "2",
            "--shuffle"], server))
    assert ok(run(["resize", "/c/t", "20", "--axis", "0"], server)).stdout == "(20, 3)\n"
    assert lines(ok(run(["ls", "/c"], server))) == [["t", "Dataset", "{20/Inf,", "3}", "int32"]]
    props = {ln[:15].strip(): ln[15:]
             for ln in ok(run(["info", "/c/t"], server)).stdout.splitlines()[1:]}
    assert props["shape"] == "(20, 3)" and props["maxshape"] == "(None, 3)"
    assert props["chunks"] == "(8, 3)" and props["compression"] == "gzip (level 2), shuffle"
    assert props["fill value"] == "-1"
    ok(run(["mv", "/c/t", "/d/t"], server))
    fails(run(["resize", "/c/t", "5,3"], server), EXIT_SERVER, "NOT_FOUND")
    assert ok(run(["get", "/d/t", "--slice", "0, 1:"], server)).stdout.split() == \
        ["array([-1,", "-1],", "shape=(2,),", "dtype=int32)"]


@pytest.mark.skipif(not (h5py.h5z.filter_avail(32004) and h5py.h5z.filter_avail(307)),
                    reason="needs Debian's hdf5-filter-plugin")
def test_info_names_plugin_compressions(server):
    ok(run(["create", "/lz", "--shape", "100", "--compression", "lz4"], server))
    ok(run(["create", "/lzb", "--shape", "100", "--compression", "lz4", "--level", "65536"],
           server))
    ok(run(["create", "/bz", "--shape", "100", "--compression", "bzip2", "--level", "3"], server))

    def compression(path):
        out = ok(run(["info", path], server)).stdout
        return {ln[:15].strip(): ln[15:] for ln in out.splitlines()[1:]}["compression"]

    assert compression("/lz") == "lz4 (default block size)"
    assert compression("/lzb") == "lz4 (block size 65536 bytes)"
    assert compression("/bz") == "bzip2 (block size 3)"


def test_durability_option_on_new_commands(start_server, tmp_path):
    """--durability reaches the commands that change the file (create,
    resize, put --slice, attr set/rm, ln, mv): with the server at none, only
    it can have made their effects survive a SIGKILL."""
    srv = start_server(server_opts={"durability": "none"})
    rows = tmp_path / "rows.npy"
    np.save(rows, np.array([7, 8], dtype="<i4"))
    ok(run(["--durability", "fsync", "create", "/g/d", "--shape", "4", "--dtype", "i4",
            "--maxshape", "None"], srv))
    ok(run(["resize", "/g/d", "6", "--durability", "flush"], srv))
    ok(run(["--durability=flush", "put", "/g/d", rows, "--slice", "1:3"], srv))
    ok(run(["--durability", "flush", "attr", "set", "/g", "k", "5"], srv))
    ok(run(["--durability", "flush", "attr", "set", "/g", "gone", "1"], srv))
    ok(run(["--durability", "fsync", "attr", "rm", "/g", "gone"], srv))
    ok(run(["--durability", "flush", "ln", "-s", "/g/d", "/l"], srv))
    ok(run(["--durability", "fsync", "mv", "/l", "/links/l"], srv))
    # reads take the option too (it only makes them wait for a commit)
    ok(run(["--durability", "fsync", "ls", "-r", "/"], srv))
    ok(run(["--durability", "fsync", "info", "/g/d"], srv))
    srv.kill()
    srv2 = start_server(workdir=srv.workdir)
    srv2.stop()
    with h5py.File(srv2.file, "r") as f:
        assert list(f["/g/d"][()]) == [0, 7, 8, 0, 0, 0]
        assert f["/g"].attrs["k"] == 5 and "gone" not in f["/g"].attrs
        assert f["/links"].get("l", getlink=True).path == "/g/d" and "l" not in f
