"""get --slice, put --slice, create and resize through the CLI, checked
against numpy on the same data and, after the server stops, with h5py."""

import h5py
import numpy as np
import pytest

from test_cli import EXIT_SERVER, EXIT_USAGE, assert_same, fails, ok, run, save

A = np.arange(4 * 5 * 6, dtype="<i4").reshape(4, 5, 6)

# (what is typed after --slice, numpy's index of the same)
SLICES = [
    ("1:3, ::2", np.s_[1:3, ::2]),
    ("[1:3, ::2]", np.s_[1:3, ::2]),
    ("-1", np.s_[-1]),
    ("-1,", np.s_[-1]),
    ("..., 0", np.s_[..., 0]),
    ("0, ..., -2", np.s_[0, ..., -2]),
    (":", np.s_[:]),
    ("", np.s_[()]),
    ("()", np.s_[()]),
    ("100:", np.s_[100:]),
    ("-100:2", np.s_[-100:2]),
    (" 1 : 4 : 2 , 2 ", np.s_[1:4:2, 2]),
    ("1, 2, 3", np.s_[1, 2, 3]),
    ("::3, 1::2, :-1", np.s_[::3, 1::2, :-1]),
]


@pytest.mark.parametrize("text, index", SLICES)
def test_get_slice_matches_numpy(shared_server, tmp_path, text, index):
    ok(run(["put", "/slices/a", save(tmp_path, A)], shared_server))
    out = tmp_path / "out.npy"
    ok(run(["get", "/slices/a", "--slice", text, "-o", out], shared_server))
    want = np.asarray(A[index])
    assert_same(np.load(out), want)
    # printing uses the same reply
    printed = ok(run(["get", "/slices/a", "--slice=" + text], shared_server)).stdout
    if want.ndim == 0:
        assert printed == "%d\n" % want
    else:
        assert printed.startswith("array(") and "dtype=int32" in printed


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("x", "not an index, a slice"),
        ("1.5", "not an index"),
        ("1:2:3:4", "at most two ':'"),
        ("1,,2", "an empty item"),
        ("1:a", "'a' is not an integer"),
        (",".join(["0"] * 34), "more than 33 items"),
    ],
)
def test_bad_slice_is_a_usage_error(text, pattern):
    # refused before connecting: no server is needed
    r = run(["--port", "1", "get", "/a", "--slice", text])
    fails(r, EXIT_USAGE, pattern)


def test_slice_errors_from_the_server(shared_server, tmp_path):
    ok(run(["put", "/slices/e", save(tmp_path, A)], shared_server))
    fails(run(["get", "/slices/e", "--slice", "::-1"], shared_server), EXIT_SERVER,
          "BAD_REQUEST: .*step -1 is not supported")
    fails(run(["get", "/slices/e", "--slice", "4"], shared_server), EXIT_SERVER,
          "OUT_OF_RANGE: index 4 is out of range for axis 0")
    fails(run(["get", "/slices/e", "--slice", "0,0,0,0"], shared_server), EXIT_SERVER,
          "SHAPE_MISMATCH")


def test_put_slice(server, tmp_path):
    base = np.zeros((6, 4), "<f8")
    ok(run(["put", "/w", save(tmp_path, base)], server))
    block = np.arange(6, dtype="<i2").reshape(3, 2)  # converted to f8 by HDF5
    r = ok(run(["put", "/w", save(tmp_path, block, "b.npy"), "--slice", "1:4, 2:"], server))
    assert r.stdout == ""
    one = np.array(7.5)  # 0-d: broadcast
    ok(run(["put", "/w", save(tmp_path, one, "o.npy"), "--slice", "-1"], server))
    fails(run(["put", "/w", save(tmp_path, block, "b.npy"), "--slice", "0"], server),
          EXIT_SERVER, "SHAPE_MISMATCH")
    fails(run(["put", "/nope", save(tmp_path, block, "b.npy"), "--slice", "0"], server),
          EXIT_SERVER, "NOT_FOUND")
    fails(run(["put", "/w", save(tmp_path, block, "b.npy"), "--slice", "0", "--compression",
               "gzip"]), EXIT_USAGE, "takes no --compression")
    server.stop()
    want = base.copy()
    want[1:4, 2:] = block
    want[-1] = 7.5
    with h5py.File(server.file, "r") as f:
        assert_same(f["w"][()], want)


def test_create_and_resize(server, tmp_path):
    r = ok(run(["create", "/c/grow", "--shape", "0,3", "--dtype", "int16", "--maxshape",
                "None,3", "--fill", "-1", "--compression", "gzip", "--level", "7",
                "--shuffle"], server))
    assert r.stdout == ""
    ok(run(["create", "/c/plain", "--shape", "5"], server))  # f4, as in h5py
    ok(run(["create", "/c/chunked", "--shape", "(100, 10)", "--dtype", "f8", "--chunks",
            "auto"], server))
    ok(run(["create", "/c/given", "--shape", "100,10", "--dtype", "<u2", "--chunks", "10,5"],
           server))
    ok(run(["create", "/c/contig", "--shape", "3", "--chunks", "none"], server))
    ok(run(["create", "/c/words", "--shape", "2", "--dtype", "str", "--fill", "hi"], server))
    ok(run(["create", "/c/scalar", "--shape", "()", "--dtype", "float64", "--fill", "2.5"],
           server))
    ok(run(["create", "/c/flag", "--shape", "2", "--dtype", "bool", "--fill", "true"], server))
    ok(run(["create", "/c/fixed", "--shape", "2", "--dtype", "S4"], server))
    assert ok(run(["get", "/c/scalar"], server)).stdout == "2.5\n"
    fails(run(["create", "/c/plain", "--shape", "5"], server), EXIT_SERVER, "EXISTS")
    ok(run(["create", "/c/plain", "--shape", "5", "--exist-ok"], server))
    fails(run(["create", "/c/x", "--shape", "5", "--dtype", "U3"], server), EXIT_SERVER,
          "UNSUPPORTED_TYPE")
    fails(run(["create", "/c/x", "--shape", "5", "--chunks", "none", "--maxshape", "9"],
              server), EXIT_SERVER, "chunks=false")

    assert ok(run(["resize", "/c/grow", "4,3"], server)).stdout == "(4, 3)\n"
    assert ok(run(["resize", "/c/grow", "6", "--axis", "0"], server)).stdout == "(6, 3)\n"
    assert ok(run(["resize", "/c/grow", "2", "--axis=-2"], server)).stdout == "(2, 3)\n"
    fails(run(["resize", "/c/grow", "2,4"], server), EXIT_SERVER, "OUT_OF_RANGE")
    fails(run(["resize", "/c/plain", "9"], server), EXIT_SERVER, "not chunked")
    fails(run(["resize", "/c/grow", "2,3", "--axis", "0"], server), EXIT_USAGE, "one size")
    server.stop()
    with h5py.File(server.file, "r") as f:
        g = f["c/grow"]
        assert g.shape == (2, 3) and g.maxshape == (None, 3) and g.dtype == np.int16
        assert g.compression == "gzip" and g.compression_opts == 7 and g.shuffle
        assert g.fillvalue == -1 and (g[()] == -1).all()
        assert f["c/plain"].dtype == np.float32 and f["c/plain"].chunks is None
        assert f["c/chunked"].chunks is not None
        assert f["c/given"].chunks == (10, 5) and f["c/given"].dtype == np.dtype("<u2")
        assert f["c/contig"].chunks is None
        assert f["c/words"].asstr()[()].tolist() == ["hi", "hi"]
        assert f["c/scalar"][()] == 2.5
        assert f["c/flag"][()].tolist() == [True, True]
        assert f["c/fixed"].dtype == np.dtype("S4")


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["create", "/x"], "missing --shape"),
        (["create", "/x", "--shape", "a,b"], "'a' is not a size"),
        (["create", "/x", "--shape", "-1"], "not a size"),
        (["create", "/x", "--shape", "3", "--maxshape", "3,3"], "--maxshape has 2 entries"),
        (["create", "/x", "--shape", "3", "--maxshape", "x"], "or None"),
        (["create", "/x", "--shape", "3", "--chunks", "1,1"], "--chunks has 2 entries"),
        (["create", "/x", "--shape", "3", "--chunks", "big"], "or auto, none"),
        (["create", "/x", "--shape", "3", "--compression", "bzip2", "--level", "0"],
         "bzip2 block size"),
        (["create", "/x", "--shape", "3", "--compression", "lzf", "--level", "1"],
         "applies only"),
        (["resize", "/x"], "missing SHAPE"),
        (["resize", "/x", "3", "--axis", "q"], "not an axis"),
        (["resize", "/x", "3,x"], "not a size"),
    ],
)
def test_create_resize_usage_errors(shared_server, args, pattern):
    fails(run(args, shared_server), EXIT_USAGE, pattern)


@pytest.mark.skipif(not (h5py.h5z.filter_avail(32004) and h5py.h5z.filter_avail(307)),
                    reason="needs Debian's hdf5-filter-plugin")
def test_plugin_compressions(server, tmp_path):
    arr = np.tile(np.arange(100.0), 50)
    ok(run(["put", "/lz4", save(tmp_path, arr), "--compression", "lz4"], server))
    ok(run(["put", "/bz", save(tmp_path, arr), "--compression", "bzip2", "--level", "3"],
           server))
    ok(run(["create", "/cz", "--shape", "10", "--compression", "lz4"], server))
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert set(f["lz4"]._filters) == {"32004"}
        assert f["bz"]._filters == {"307": (3,)}
        assert set(f["cz"]._filters) == {"32004"}
        assert_same(f["lz4"][()], arr)
        assert_same(f["bz"][()], arr)
