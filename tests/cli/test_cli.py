"""The hdf5-async command-line tool against the real server.

Arrays are made and checked with numpy; after each server stops (cleanly,
so the file is flushed) the HDF5 file is opened with h5py to check what
really landed there.
"""

import atexit
import io
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time

import h5py
import numpy as np
import pytest
from numpy.core.arrayprint import dtype_short_repr

from conftest import CLI, SANITIZER_MARKERS, TIMEOUT

EXIT_OK, EXIT_SERVER, EXIT_USAGE, EXIT_CONN, EXIT_FILE = 0, 1, 2, 3, 4
SUBCOMMANDS = ["ping", "mkgroup", "put", "append", "get", "rm", "create", "resize", "ls", "tree",
               "info", "attr", "ln", "mv", "compact", "ls-files", "batch", "token"]
# what needs no server, and so takes no options: its usage line says so
LOCAL_COMMANDS = ["token"]


def usage_line(sub):
    return "Usage: hdf5-async %s%s" % ("" if sub in LOCAL_COMMANDS else "[OPTIONS] ", sub)


def run(args, srv=None, cwd=None, input=None, text=True, env=None):
    """Run the CLI; with srv, point it at that server with flags. The cwd
    defaults to a directory with no config.ini, so nothing leaks in."""
    cmd = [CLI]
    if srv is not None:
        cmd += ["--host", srv.host, "--port", str(srv.port)]
    cmd += [str(a) for a in args]
    r = subprocess.run(
        cmd,
        cwd=cwd or _empty_dir(),
        input=input,
        capture_output=True,
        text=text,
        timeout=TIMEOUT,
        env=env,
    )
    # under SANITIZE=1 a report must fail the test even where a non-zero
    # exit status is expected
    err = r.stderr if text else r.stderr.decode("utf-8", "replace")
    assert not any(m in err for m in SANITIZER_MARKERS), err
    return r


_EMPTY = []


def _empty_dir():
    if not _EMPTY:
        d = tempfile.mkdtemp(prefix="h5a-cli-cwd-")
        atexit.register(shutil.rmtree, d, True)
        _EMPTY.append(d)
    return _EMPTY[0]


def ok(r):
    assert r.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout, r.stderr)
    return r


def fails(r, code, pattern=None):
    assert r.returncode == code, "exit %d (wanted %d)\nstdout: %s\nstderr: %s" % (
        r.returncode,
        code,
        r.stdout,
        r.stderr,
    )
    assert r.stderr.startswith("hdf5-async: "), r.stderr
    if pattern:
        assert re.search(pattern, r.stderr), r.stderr
    return r


def save(tmp_path, arr, name="in.npy"):
    p = tmp_path / name
    np.save(p, arr)
    return p


def assert_same(got, want):
    """Same dtype, shape and bits (NaNs included); structured arrays field
    by field, so padding bytes do not matter."""
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.names:
        for name in want.dtype.names:
            assert_same(got[name], want[name])
    else:
        assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes()


def numpy_repr(a):
    """What `get` prints for an array: numpy's repr with the shape and the
    dtype always given (numpy omits them for some types), and the byte
    order of non-native dtypes shown (numpy 1.24 hides it)."""
    body = np.array2string(a, separator=", ", prefix="array(", suffix=",", threshold=1000)
    s = "array(" + body + ","
    if a.dtype.names is None and not a.dtype.isnative:
        dname = "'%s'" % a.dtype.str
    else:
        dname = dtype_short_repr(a.dtype)
    tail = "shape=%r, dtype=%s)" % (a.shape, dname)
    last = len(s) - (s.rfind("\n") + 1)
    return s + ("\n      " if last + len(tail) + 1 > 75 else " ") + tail


# --------------------------------------------------------------------------
# help and usage
# --------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_main_help(flag):
    r = ok(run([flag]))
    assert r.stdout.startswith("Usage: hdf5-async")
    assert r.stderr == ""
    for sub in SUBCOMMANDS:
        assert "\n  %s" % sub in r.stdout
    for code in range(5):
        assert re.search(r"^  %d  \S" % code, r.stdout, re.M), code
    assert "[client]" in r.stdout and "127.0.0.1" in r.stdout


@pytest.mark.parametrize("sub", SUBCOMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_subcommand_help(sub, flag):
    r = ok(run([sub, flag]))
    assert r.stdout.startswith(usage_line(sub)), r.stdout
    assert "Exit status" in r.stdout
    assert r.stderr == ""
    # --help wins over anything else on the line, even bad arguments
    r2 = ok(run([sub, "--bogus", "x", "y", "z", flag]))
    assert r2.stdout == r.stdout
    assert ok(run(["help", sub])).stdout == r.stdout


def test_version():
    assert re.match(r"^hdf5-async \d+\.\d+\.\d+\n$", ok(run(["--version"])).stdout)


@pytest.mark.parametrize(
    "args, pattern",
    [
        ([], "no command"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["--bogus", "ping"], "unknown option"),
        (["ping", "--bogus"], "unknown option '--bogus'"),
        (["ping", "extra"], "unexpected argument 'extra'"),
        (["get"], "missing PATH"),
        (["put", "/x"], "missing FILE.npy"),
        (["append"], "missing PATH"),
        (["rm", "/a", "/b"], "unexpected argument '/b'"),
        (["mkgroup"], "missing PATH"),
        (["--port", "0", "ping"], "not a port number"),
        (["--port", "65536", "ping"], "not a port number"),
        (["--port", "http", "ping"], "not a port number"),
        (["--port"], "needs a value"),
        (["--timeout", "-5", "ping"], "--timeout"),
        (["--timeout", "soon", "ping"], "--timeout"),
        (["put", "/x", "a.npy", "--compression", "zstd"], "not one of gzip, lzf, none"),
        (["put", "/x", "a.npy", "--level", "10"], "gzip level 0..9"),
        (["put", "/x", "a.npy", "--compression", "lzf", "--level", "3"], "--level applies only"),
        (["get", "/x", "-o"], "needs a value"),
        (["get", "/x", "--compression", "gzip"], "unknown option"),
    ],
)
def test_usage_errors(args, pattern):
    r = run(args)
    fails(r, EXIT_USAGE, pattern)
    assert "--help" in r.stderr  # points at the help
    assert r.stdout == ""


# --------------------------------------------------------------------------
# ping, mkgroup, rm
# --------------------------------------------------------------------------


def test_ping(shared_server):
    r = ok(run(["ping"], shared_server))
    assert re.match(r"^pong \d+\.\d{3} ms\n$", r.stdout), r.stdout
    assert r.stderr == ""


def test_global_options_after_the_command_and_equals_forms(shared_server):
    s = shared_server
    ok(run(["ping", "--host", s.host, "--port", str(s.port)]))
    ok(run(["--host=%s" % s.host, "--port=%d" % s.port, "ping", "--timeout=5000"]))


def test_mkgroup_and_rm(server):
    ok(run(["mkgroup", "/a/b/c"], server))
    ok(run(["mkgroup", "/a/b"], server))  # an existing group is fine
    ok(run(["mkgroup", "/gone/x"], server))
    r = ok(run(["rm", "/gone"], server))
    assert r.stdout == "" and r.stderr == ""
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert isinstance(f["/a/b/c"], h5py.Group)
        assert "gone" not in f


def test_durability_option(server, tmp_path):
    src = tmp_path / "a.npy"
    np.save(src, np.arange(4))
    for level in ("none", "flush", "fsync"):
        ok(run(["--durability", level, "put", "/d/" + level, src], server))
        ok(run(["append", "/rows", src, "--durability=" + level], server))
    r = ok(run(["ping", "--durability", "fsync"], server))
    assert r.stdout.startswith("pong ")
    fails(run(["--durability", "always", "ping"], server), EXIT_USAGE,
          "--durability: 'always' is not one of none, flush, fsync")
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert sorted(f["/d"]) == ["flush", "fsync", "none"]
        assert f["/rows"].shape == (12,)


# --------------------------------------------------------------------------
# put / get round trips
# --------------------------------------------------------------------------

PADDED = np.dtype([("a", "i1"), ("b", "<f8", (2,))], align=True)
NESTED = np.dtype([("a", "<i2"), ("b", "<f4", (2, 3)), ("c", [("x", "u1"), ("y", ">i4")])])


def _cases():
    rng = np.random.RandomState(7)
    c = {
        "int8": np.array([-128, 0, 127], dtype="i1"),
        "uint8": np.arange(10, dtype="u1"),
        "int16": np.arange(-5, 5, dtype="<i2"),
        "int32_be": np.arange(12, dtype=">i4").reshape(3, 4),
        "int64": np.array([np.iinfo("i8").min, 0, np.iinfo("i8").max], dtype="<i8"),
        "uint64_be": np.array([0, 2**64 - 1], dtype=">u8"),
        "float16": np.array([0.5, -1.25, 65504], dtype="<f2"),
        "float32": rng.rand(4, 5).astype("<f4"),
        "float64_be": rng.rand(6).astype(">f8"),
        "float_special": np.array([np.nan, np.inf, -np.inf, -0.0]),
        "complex64": (rng.rand(3) + 1j * rng.rand(3)).astype("<c8"),
        "complex128_be": np.array([1 + 2j, -3.5 - 1j], dtype=">c16"),
        "bool": np.array([[True, False], [False, True]]),
        "bytes": np.array([b"ab", b"", b"xyz"], dtype="S3"),
        "void": np.array([b"\x01\x02\x03\x04", b"\xff\x00\xfe\x01"], dtype="V4"),
        "struct": np.array([(1, 2.5, b"ab"), (-2, 3.0, b"c")],
                           dtype=[("a", "<i4"), ("b", ">f8"), ("c", "S2")]),
        "struct_nested_subarray": np.zeros(3, dtype=NESTED),
        "struct_padded": np.array([(1, [2.0, 3.0]), (4, [5.0, 6.0])], dtype=PADDED),
        "scalar_f8": np.array(3.5),
        "scalar_i4": np.array(-7, dtype="<i4"),
        "scalar_bool": np.array(True),
        "scalar_struct": np.array((1, 2.5), dtype=[("a", "<i4"), ("b", "<f8")]),
        "scalar_bytes": np.array(b"hello", dtype="S5"),
        "fortran_2d": np.asfortranarray(np.arange(12, dtype="<i4").reshape(3, 4)),
        "fortran_3d": np.asfortranarray(rng.rand(2, 3, 4)),
        "fortran_struct": np.asfortranarray(
            np.array([[(1, 2.0), (3, 4.0)], [(5, 6.0), (7, 8.0)], [(9, 1.0), (2, 3.0)]],
                     dtype=[("a", "<i8"), ("b", "<f4")])),
        "empty_1d": np.zeros(0, dtype="<f8"),
        "empty_2d": np.zeros((0, 3), dtype="<i2"),
        "empty_inner": np.zeros((3, 0), dtype="<u4"),
        "rank5": np.arange(32, dtype="<i8").reshape(2, 2, 2, 2, 2),
        "big_5mib": rng.rand(700, 1000),
    }
    nested = c["struct_nested_subarray"]
    nested["a"] = [1, -2, 3]
    nested["b"] = rng.rand(3, 2, 3)
    nested["c"]["x"] = [7, 8, 9]
    nested["c"]["y"] = [-1, 2**31 - 1, 0]
    return c


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_put_get_roundtrip(server, tmp_path, name):
    arr = CASES[name]
    src = save(tmp_path, arr)
    r = ok(run(["put", "/d/" + name, src], server))
    assert r.stdout == "" and r.stderr == ""  # no progress bar: stderr is no terminal
    out = tmp_path / "out.npy"
    ok(run(["get", "/d/" + name, "-o", out], server))
    back = np.load(out)
    # what numpy itself reads back from the file we sent
    want = np.load(src)
    assert_same(back, np.ascontiguousarray(want) if want.ndim else want)
    assert back.flags.c_contiguous
    server.stop()
    with h5py.File(server.file, "r") as f:
        ds = f["/d/" + name]
        assert ds.shape == arr.shape
        assert ds.dtype == want.dtype
        assert_same(ds[()] if arr.ndim else np.array(ds[()], dtype=ds.dtype), want)


def test_saved_npy_matches_numpy_layout(server, tmp_path):
    """Our .npy files are what np.save writes: version 1.0, header padded
    to 64 bytes and ending in a newline."""
    for name, arr in [("a", np.arange(6, dtype="<i4").reshape(2, 3)), ("s", CASES["struct"]),
                      ("z", np.array(1.5))]:
        ok(run(["put", "/" + name, save(tmp_path, arr)], server))
        out = tmp_path / (name + ".out.npy")
        ok(run(["get", "/" + name, "-o", out], server))
        mine = out.read_bytes()
        ref = io.BytesIO()
        np.save(ref, arr)
        assert mine == ref.getvalue()
        hlen = int.from_bytes(mine[8:10], "little")
        assert mine[:8] == b"\x93NUMPY\x01\x00"
        assert (10 + hlen) % 64 == 0 and mine[10 + hlen - 1:10 + hlen] == b"\n"


def test_get_to_existing_file_replaces_it_and_leaves_no_temp(server, tmp_path):
    ok(run(["put", "/x", save(tmp_path, np.arange(3))], server))
    (tmp_path / "w").mkdir()
    out = tmp_path / "w" / "out.npy"
    out.write_bytes(b"old contents")
    os.chmod(out, 0o640)
    ok(run(["get", "/x", "-o", out], server))
    assert_same(np.load(out), np.arange(3))
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["out.npy"]


def test_unicode_arrays_become_variable_length_strings(server, tmp_path):
    arr = np.array([["héllo", "wörld"], ["", "ascii"]])
    ok(run(["put", "/u", save(tmp_path, arr)], server))
    ok(run(["put", "/u_scalar", save(tmp_path, np.array("ünïcode"), "s.npy")], server))
    r = ok(run(["get", "/u"], server))
    assert r.stdout == numpy_repr(np.array(arr.tolist(), dtype=object)) + "\n"
    assert ok(run(["get", "/u_scalar"], server)).stdout == "ünïcode\n"
    out = tmp_path / "out.npy"
    ok(run(["get", "/u", "-o", out], server))
    back = np.load(out)
    assert back.dtype == np.dtype("<U5") and back.tolist() == arr.tolist()
    server.stop()
    with h5py.File(server.file, "r") as f:
        ds = f["/u"]
        assert h5py.check_string_dtype(ds.dtype).encoding == "utf-8"
        assert ds.asstr()[()].tolist() == arr.tolist()
        assert f["/u_scalar"].asstr()[()] == "ünïcode"


def test_stdin_and_stdout(server, tmp_path):
    arr = np.arange(10, dtype="<u2")
    buf = io.BytesIO()
    np.save(buf, arr)
    ok(run(["put", "/p", "-"], server, input=buf.getvalue(), text=False))
    r = ok(run(["get", "/p", "-o", "-"], server, text=False))
    assert_same(np.load(io.BytesIO(r.stdout)), arr)


def test_big_array_summary_without_output(server, tmp_path):
    ok(run(["put", "/big", save(tmp_path, CASES["big_5mib"])], server))
    r = ok(run(["get", "/big"], server))
    assert r.stdout == "shape (700, 1000), dtype float64, 700000 elements, 5600000 bytes\n"
    assert "-o FILE.npy" in r.stderr and "hdf5-async get /big" in r.stderr


def test_progress_line_on_a_terminal(server, tmp_path):
    """Transfers over 4 MiB report on stderr when it is a terminal."""
    import pty

    src = save(tmp_path, CASES["big_5mib"])
    for args, label in [(["put", "/big", src], b"put /big"), (["get", "/big", "-o", tmp_path / "o.npy"], b"get /big")]:
        master, slave = pty.openpty()
        p = subprocess.Popen([CLI, "--host", server.host, "--port", str(server.port)] + [str(a) for a in args],
                             stdout=subprocess.PIPE, stderr=slave, cwd=_empty_dir())
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + TIMEOUT
        try:
            while time.monotonic() < deadline:
                if not select.select([master], [], [], deadline - time.monotonic())[0]:
                    continue
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every writer of the terminal is gone
                    break
                if not chunk:
                    break
                seen += chunk
        finally:
            os.close(master)
            if p.poll() is None and time.monotonic() >= deadline:
                p.kill()
        assert p.wait(timeout=TIMEOUT) == 0
        p.stdout.close()
        assert re.search(label + rb": 5\.3 MiB in \d+\.\d s \(.*/s\)", seen), seen


# --------------------------------------------------------------------------
# printing
# --------------------------------------------------------------------------

REPR_CASES = {
    "ints": np.arange(12, dtype="<i4").reshape(3, 4),
    "long_row": np.arange(100),
    "floats_wrap": np.linspace(0, 1, 30),
    "floats_mixed": np.array([0.1, 1.0, 2.5, -3.25]),
    "floats_exp": np.array([1e-5, 1.0, 1e5]),
    "floats_big": np.array([1.5e10, 2.0]),
    "floats_special": np.array([np.nan, np.inf, -np.inf, 0.5]),
    "float32": np.array([0.1, 0.2, 1 / 3], dtype="<f4"),
    "float16": np.array([0.1, 65504, 1e-3], dtype="<f2"),
    "float_be": np.array([1.5, -2.25], dtype=">f8"),
    "rank3": np.arange(24).reshape(2, 3, 4),
    "rank3_floats": np.random.RandomState(0).rand(2, 3, 12),
    "bools": np.array([True, False, True]),
    "complex": np.array([1 + 2j, 3.5 - 1e-3j, -1j]),
    "bytes": np.array([b"ab", b"c\x00d", b"it's"], dtype="S4"),
    "void": np.array([b"\x01\x02", b"'\""], dtype="V2"),
    "struct": CASES["struct"],
    "struct_nested": CASES["struct_nested_subarray"],
    "struct_padded": CASES["struct_padded"],
    "int_extremes": np.array([np.iinfo("i8").min, np.iinfo("i8").max]),
    "uint_max": np.array([0, 2**64 - 1], dtype="<u8"),
    "int_be": np.arange(5, dtype=">i2"),
    "empty": np.zeros((0, 3)),
    "empty_inner": np.zeros((3, 0), dtype="<i2"),
    "thousand": np.arange(1000, dtype="<i2").reshape(10, 100),
}


@pytest.mark.parametrize("name", sorted(REPR_CASES))
def test_get_prints_like_numpy_repr(shared_server, tmp_path, name):
    src = save(tmp_path, REPR_CASES[name])
    ok(run(["put", "/repr/" + name, src], shared_server))
    r = ok(run(["get", "/repr/" + name], shared_server))
    assert r.stderr == ""
    assert r.stdout == numpy_repr(np.load(src)) + "\n"


@pytest.mark.parametrize(
    "arr, text",
    [
        (np.array(42), "42"),
        (np.array(-7, dtype=">i2"), "-7"),
        (np.array(3.5), "3.5"),
        (np.array(3.0), "3.0"),
        (np.array(1e20), "1e+20"),
        (np.array(1.5e-7), "1.5e-07"),
        (np.array(0.1, dtype="<f4"), "0.1"),
        (np.array(np.nan), "nan"),
        (np.array(True), "True"),
        (np.array(1 + 2j), "(1+2j)"),
        (np.array(2.5j), "2.5j"),
        (np.array(b"plain bytes"), "plain bytes"),
        (np.array("plain text"), "plain text"),
        (np.array((1, 2.5), dtype=[("a", "<i4"), ("b", "<f8")]), "(1, 2.5)"),
    ],
)
def test_get_prints_scalars_plainly(shared_server, tmp_path, arr, text):
    ok(run(["put", "/scalar", save(tmp_path, arr)], shared_server))
    assert ok(run(["get", "/scalar"], shared_server)).stdout == text + "\n"


def _h5py_made(path):
    with h5py.File(path, "w") as f:
        f["vstr"] = "héllo"
        f["vbytes"] = b"raw bytes"
        f.create_dataset("vstr_arr", data=np.array(["a", "bcd", ""], dtype=object),
                         dtype=h5py.string_dtype("utf-8"))
        f.create_dataset("vbytes_arr", data=np.array([b"xy", b"z"], dtype=object),
                         dtype=h5py.string_dtype("ascii"))
        f["be"] = np.arange(4, dtype=">i4")


def test_get_datasets_made_by_h5py(start_server, tmp_path):
    srv = start_server(precreate=_h5py_made)
    assert ok(run(["get", "/vstr"], srv)).stdout == "héllo\n"
    assert ok(run(["get", "/vbytes"], srv)).stdout == "raw bytes\n"
    assert ok(run(["get", "/vstr_arr"], srv)).stdout == numpy_repr(
        np.array(["a", "bcd", ""], dtype=object)) + "\n"
    assert ok(run(["get", "/vbytes_arr"], srv)).stdout == numpy_repr(
        np.array([b"xy", b"z"], dtype=object)) + "\n"
    assert ok(run(["get", "/be"], srv)).stdout == numpy_repr(np.arange(4, dtype=">i4")) + "\n"
    # variable-length strings saved as fixed-width numpy arrays
    for path, want in [("/vstr_arr", np.array(["a", "bcd", ""], dtype="<U3")),
                       ("/vbytes_arr", np.array([b"xy", b"z"], dtype="S2")),
                       ("/vstr", np.array("héllo", dtype="<U5"))]:
        out = tmp_path / "out.npy"
        ok(run(["get", path, "-o", out], srv))
        assert_same(np.load(out), want)


# --------------------------------------------------------------------------
# append and compression
# --------------------------------------------------------------------------


def test_append(server, tmp_path):
    rows = np.arange(12, dtype="<f8").reshape(4, 3)
    assert ok(run(["append", "/grow", save(tmp_path, rows)], server)).stdout == "4\n"
    one = save(tmp_path, np.array([9.0, 9.5, 10.0]), "row.npy")
    assert ok(run(["append", "/grow", one], server)).stdout == "5\n"
    ints = save(tmp_path, np.ones((2, 3), dtype="<i4"), "ints.npy")
    assert ok(run(["append", "/grow", ints, "--compression", "gzip"], server)).stdout == "7\n"
    server.stop()
    with h5py.File(server.file, "r") as f:
        ds = f["/grow"]
        assert ds.maxshape == (None, 3)
        want = np.vstack([rows, [[9.0, 9.5, 10.0]], np.ones((2, 3))])
        assert_same(ds[()], want)


@pytest.mark.parametrize(
    "opts, compression, level",
    [
        (["--compression", "gzip"], "gzip", 4),
        (["--compression", "gzip", "--level", "9"], "gzip", 9),
        (["--level", "1"], "gzip", 1),
        (["--compression", "lzf"], "lzf", None),
        (["--compression", "none"], None, None),
        ([], None, None),  # the server default (use_compression = false)
    ],
)
def test_put_compression(server, tmp_path, opts, compression, level):
    arr = np.arange(5000, dtype="<i4").reshape(50, 100)
    ok(run(["put", "/c", save(tmp_path, arr)] + opts, server))
    ok(run(["append", "/a", save(tmp_path, arr)] + opts, server))
    server.stop()
    with h5py.File(server.file, "r") as f:
        for name in ("c", "a"):
            assert f[name].compression == compression
            assert f[name].compression_opts == level
            assert_same(f[name][()], arr)


# --------------------------------------------------------------------------
# exit codes
# --------------------------------------------------------------------------


def test_server_errors_exit_1(shared_server, tmp_path):
    s = shared_server
    fails(run(["get", "/nope"], s), EXIT_SERVER, r"^hdf5-async: NOT_FOUND: \S.*\n$")
    fails(run(["rm", "/nope"], s), EXIT_SERVER, "^hdf5-async: NOT_FOUND: ")
    fails(run(["rm", "/"], s), EXIT_SERVER, "^hdf5-async: BAD_PATH: ")
    f = save(tmp_path, np.arange(6).reshape(2, 3))
    fails(run(["put", "relative/path", f], s), EXIT_SERVER, "^hdf5-async: BAD_PATH: ")
    ok(run(["put", "/ds", f], s))
    fails(run(["mkgroup", "/ds"], s), EXIT_SERVER, "^hdf5-async: EXISTS: ")
    fails(run(["mkgroup", "/ds/sub"], s), EXIT_SERVER, "^hdf5-async: NOT_A_GROUP: ")
    wrong = save(tmp_path, np.arange(8).reshape(2, 4), "wrong.npy")
    fails(run(["append", "/ds", wrong], s), EXIT_SERVER, "^hdf5-async: SHAPE_MISMATCH: ")
    dt = save(tmp_path, np.array(["2020-01-01"], dtype="M8[D]"), "dt.npy")
    fails(run(["put", "/dt", dt], s), EXIT_SERVER, "^hdf5-async: UNSUPPORTED_TYPE: ")
    scalar = save(tmp_path, np.array(1.0), "scalar.npy")
    fails(run(["put", "/sc", scalar, "--compression", "gzip"], s), EXIT_SERVER,
          "^hdf5-async: BAD_REQUEST: ")
    ok(run(["mkgroup", "/grp"], s))
    fails(run(["get", "/grp"], s), EXIT_SERVER, "^hdf5-async: NOT_A_DATASET: ")


def _free_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


@pytest.mark.parametrize("sub", [["ping"], ["get", "/x"], ["rm", "/x"], ["mkgroup", "/g"]])
def test_no_server_exit_3(sub):
    port = _free_port()
    r = run(["--port", str(port)] + sub)
    fails(r, EXIT_CONN, "cannot connect to 127.0.0.1:%d" % port)


def test_put_no_server_exit_3(tmp_path):
    port = _free_port()
    fails(run(["--port", port, "put", "/x", save(tmp_path, np.arange(3))]), EXIT_CONN,
          "cannot connect")


def test_timeout_exit_3():
    """A peer that accepts (the kernel does) but never answers."""
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        sk.listen(4)
        r = run(["--port", sk.getsockname()[1], "--timeout", "300", "ping"])
    fails(r, EXIT_CONN, "^hdf5-async: TIMEOUT")


def test_local_file_errors_exit_4(shared_server, tmp_path):
    s = shared_server
    fails(run(["put", "/x", tmp_path / "missing.npy"], s), EXIT_FILE,
          "missing.npy: No such file or directory")
    fails(run(["put", "/x", tmp_path], s), EXIT_FILE, "is a directory")
    ok(run(["put", "/x", save(tmp_path, np.arange(3))], s))
    fails(run(["get", "/x", "-o", tmp_path / "no" / "such" / "dir.npy"], s), EXIT_FILE,
          "dir.npy: cannot create")
    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'\n")
    fails(run(["append", "/x", bad], s), EXIT_FILE, "corrupt.npy")
    objs = save(tmp_path, np.array([1, "a", None], dtype=object), "obj.npy")
    fails(run(["put", "/x", objs], s), EXIT_FILE, r"obj\.npy: .*objects \('O'\)")


# --------------------------------------------------------------------------
# config.ini
# --------------------------------------------------------------------------


def _config(tmp_path, text, name="config.ini"):
    d = tmp_path / "cwd"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(text)
    return d


def test_config_client_section(shared_server, tmp_path):
    cwd = _config(tmp_path, "[server]\nhost = 0.0.0.0\nport = 1\n\n[client]\nhost = %s\nport = %d\n"
                  % (shared_server.host, shared_server.port))
    ok(run(["ping"], cwd=cwd))


def test_config_server_section_and_wildcard_host(shared_server, tmp_path):
    # the repository's own layout: listen address in [server], empty [client]
    cwd = _config(tmp_path, "[server]\nhost = 0.0.0.0\nport = %d\nhdf5_file_path = x.h5\n\n"
                  "[client]\n# nothing here\n" % shared_server.port)
    ok(run(["ping"], cwd=cwd))


@pytest.mark.parametrize("host", ["", "::", "0.0.0.0", "127.0.0.1"])
def test_config_per_key_rule(shared_server, tmp_path, host):
    # host from [client], port from [server]: each key falls back on its own
    cwd = _config(tmp_path, "[server]\nhost = 10.255.255.1\nport = %d ; inline comment\n"
                  "[client]\nhost = %s\n" % (shared_server.port, host))
    ok(run(["ping"], cwd=cwd))


def test_config_inline_comments(shared_server, tmp_path):
    # '#' and ';' after whitespace start a comment, as in the server and the
    # Python client; a long one is skipped to the end of its line
    cwd = _config(tmp_path, "[server]  # listen side\nhost = 0.0.0.0 # all\nport = 1 ; unused\n"
                  "[client]\nhost = %s\t# here\nport = %d # local %s\ncolour = blue\n"
                  % (shared_server.host, shared_server.port, "x" * 500))
    ok(run(["ping"], cwd=cwd))


def test_flags_override_config(shared_server, tmp_path):
    cwd = _config(tmp_path, "[client]\nhost = 10.255.255.1\nport = 1\n")
    ok(run(["--host", "127.0.0.1", "--port", shared_server.port, "ping"], cwd=cwd))
    # only --port given: the host still comes from the file
    cwd2 = _config(tmp_path / "b", "[client]\nhost = 127.0.0.1\nport = 1\n")
    ok(run(["--port", shared_server.port, "ping"], cwd=cwd2))


def test_explicit_config_file(shared_server, tmp_path):
    cfg = tmp_path / "other.ini"
    cfg.write_text("[client]\nport = %d\n" % shared_server.port)
    ok(run(["--config", cfg, "ping"]))
    ok(run(["ping", "--config", cfg]))


def test_default_target_without_config(tmp_path):
    """No flags, no config.ini: 127.0.0.1:8888 (whatever answers there)."""
    r = run(["--timeout", "2000", "ping"], cwd=_config(tmp_path, "", name="unrelated.txt"))
    if r.returncode != 0:
        fails(r, EXIT_CONN, "127.0.0.1:8888")


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("[client]\nport = eighty\n", r"config.ini:2: \[client\] port: 'eighty' is not a port"),
        ("[server]\nport = 0\n", r"\[server\] port: '0' is not a port"),
        ("[client]\nport = 70000\n", "is not a port"),
        ("[client\nport = 1\n", "config.ini:1: syntax error"),
        ("just words\n", "syntax error"),
    ],
)
def test_bad_config_exit_2(tmp_path, text, pattern):
    fails(run(["ping"], cwd=_config(tmp_path, text)), EXIT_USAGE, pattern)


def test_missing_explicit_config_exit_2(tmp_path):
    fails(run(["--config", tmp_path / "nope.ini", "ping"]), EXIT_USAGE,
          "nope.ini: No such file or directory")


def test_file_option_and_ls_files(start_server, tmp_path):
    """--file works on a file under the server's data_root; ls-files lists them."""
    root = tmp_path / "root"
    root.mkdir()
    srv = start_server(workdir=tmp_path / "w", server_opts={"data_root": str(root)})
    ok(run(["--file", "runs/a.h5", "mkgroup", "/g"], srv))
    ok(run(["mkgroup", "/h", "--file", "b.h5"], srv))
    fails(run(["--file", "missing.h5", "ls", "/"], srv), EXIT_SERVER, "NOT_FOUND")
    fails(run(["--file", "../out.h5", "mkgroup", "/g"], srv), EXIT_SERVER, "BAD_REQUEST")
    fails(run(["--file", "", "ping"], srv), EXIT_USAGE)
    r = ok(run(["ls-files"], srv))
    lines = [ln.split() for ln in r.stdout.splitlines()]
    assert [ln[0] for ln in lines] == ["b.h5", "runs/a.h5"]
    assert all(int(ln[1]) > 0 for ln in lines)
    r = ok(run(["--file", "runs/a.h5", "ls", "/"], srv))
    assert "g" in r.stdout
    srv.stop()
    with h5py.File(root / "runs/a.h5", "r") as f:
        assert list(f) == ["g"]
    with h5py.File(root / "b.h5", "r") as f:
        assert list(f) == ["h"]
    assert not (root / "out.h5").exists() and not (tmp_path / "out.h5").exists()
