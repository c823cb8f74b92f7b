"""The CLI's .npy reader (src/cli/npy.c), through `hdf5-async put`.

Broken files must fail with exit status 4 and a message naming the file
and the problem, before anything is sent; unusual but valid headers
(quoting, whitespace, versions 2.0 and 3.0, Python 2 style) must be read
the way numpy reads them.
"""

import io
import struct

import numpy as np
import pytest

from test_cli import EXIT_FILE, assert_same, fails, ok, run

MAGIC = b"\x93NUMPY"


def npy(header, data=b"", version=(1, 0), hlen=None, pad=True):
    """A .npy file from a header text (str or bytes) and raw data."""
    if isinstance(header, str):
        header = header.encode("utf-8" if version[0] >= 3 else "latin-1")
    lenfmt = "<H" if version[0] == 1 else "<I"
    prefix = len(MAGIC) + 2 + struct.calcsize(lenfmt)
    if pad:
        header += b" " * ((64 - (prefix + len(header) + 1) % 64) % 64) + b"\n"
    n = len(header) if hlen is None else hlen
    return MAGIC + bytes(version) + struct.pack(lenfmt, n) + header + data


F8_HEADER = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
F8_DATA = np.array([1.5, -2.0]).tobytes()

CORRUPT = {
    "empty file": (b"", "not a .npy file"),
    "not npy": (b"PK\x03\x04 this is a zip file", r"not a \.npy file \(no \\x93NUMPY magic\)"),
    "magic only": (MAGIC + b"\x01", "file too short"),
    "version 4.0": (npy(F8_HEADER, F8_DATA, version=(4, 0)), r"unsupported \.npy format version 4\.0"),
    "version 1.1": (npy(F8_HEADER, F8_DATA, version=(1, 1)), r"format version 1\.1"),
    "version 0.0": (npy(F8_HEADER, F8_DATA, version=(0, 0)), r"format version 0\.0"),
    "header length past EOF": (npy(F8_HEADER, b"", hlen=60000, pad=False),
                               "header length 60000 runs past the end of the file"),
    "v2 header length huge": (npy(F8_HEADER, F8_DATA, version=(2, 0), hlen=0xFFFFFFFF, pad=False),
                              "header length 4294967295 is larger than"),
    "truncated v2 length": (MAGIC + b"\x02\x00\x10", r"truncated \.npy header|too short"),
    "header not a dict": (npy("[1, 2, 3]"), "not a dict"),
    "header not python": (npy("descr=<f8 shape=2"), "corrupt .npy header: unexpected character"),
    "unterminated dict": (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,)"),
                          r"unterminated '\{'"),
    "unterminated string": (npy("{'descr': '<f8, 'fortran_order': False, 'shape': (2,)}"),
                            "expected ',' or '}'|unterminated string"),
    "missing colon": (npy("{'descr' '<f8', 'fortran_order': False, 'shape': (2,)}"),
                      "expected ':' after a dict key"),
    "text after dict": (npy(F8_HEADER + " 42", F8_DATA), "unexpected text after the value"),
    "missing shape": (npy("{'descr': '<f8', 'fortran_order': False}"), "missing 'shape'"),
    "missing descr": (npy("{'fortran_order': False, 'shape': (2,)}", F8_DATA), "missing 'descr'"),
    "missing fortran_order": (npy("{'descr': '<f8', 'shape': (2,)}", F8_DATA),
                              "missing 'fortran_order'"),
    "extra key": (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", F8_DATA),
                  "unexpected key 'x'"),
    "duplicate key": (npy("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, "
                          "'shape': (2,)}", F8_DATA), "key 'descr' twice"),
    "non-string key": (npy("{1: '<f8', 'fortran_order': False, 'shape': (2,)}"),
                       r"unexpected key \(not a string\)"),
    "fortran_order not bool": (npy("{'descr': '<f8', 'fortran_order': 'no', 'shape': (2,)}",
                                   F8_DATA), "fortran_order is not True or False"),
    "shape not tuple": (npy("{'descr': '<f8', 'fortran_order': False, 'shape': 2}", F8_DATA),
                        "shape is not a tuple"),
    "negative dim": (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}"),
                     "shape entry 0 is not a non-negative integer"),
    "float dim": (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2.0,)}"),
                  "expected an integer, found a float"),
    "string dim": (npy("{'descr': '<f8', 'fortran_order': False, 'shape': ('2',)}"),
                   "shape entry 0 is not a non-negative integer"),
    "dim beyond 64 bits": (npy("{'descr': '<f8', 'fortran_order': False, "
                               "'shape': (100000000000000000000,)}"), "integer too large"),
    "shape product overflow": (npy("{'descr': '<f8', 'fortran_order': False, "
                                   "'shape': (4294967296, 4294967296)}"), "shape product overflows"),
    "byte size overflow": (npy("{'descr': '<f8', 'fortran_order': False, "
                               "'shape': (4611686018427387904,)}"), "array size overflows"),
    "33 dims": (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (%s)}" % ("1, " * 33)),
                "33 dimensions, more than 32"),
    "unknown descr": (npy("{'descr': '<x9', 'fortran_order': False, 'shape': (2,)}"),
                      "unsupported dtype '<x9'"),
    "odd int size": (npy("{'descr': '<i3', 'fortran_order': False, 'shape': (2,)}"),
                     "unsupported dtype '<i3'"),
    "zero-size descr": (npy("{'descr': '|S0', 'fortran_order': False, 'shape': (2,)}"),
                        "has size 0"),
    "descr not a type": (npy("{'descr': 8, 'fortran_order': False, 'shape': (2,)}"),
                         "descr must be a string or a list of fields"),
    "object array": (npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}", b"\x80\x04"),
                     r"objects \('O'\)"),
    "object field": (npy("{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, "
                         "'shape': (1,)}", bytes(12)), r"objects \('O'\)"),
    "empty struct": (npy("{'descr': [], 'fortran_order': False, 'shape': (2,)}"),
                     "structured dtype with no fields"),
    "bad field": (npy("{'descr': [('a',)], 'fortran_order': False, 'shape': (2,)}"),
                  r"field 0 of the structured dtype is not \(name, format\[, shape\]\)"),
    "duplicate field": (npy("{'descr': [('a', '<i4'), ('a', '<f8')], 'fortran_order': False, "
                            "'shape': (1,)}", bytes(12)), "duplicate field name 'a'"),
    "bad subarray shape": (npy("{'descr': [('a', '<i4', (-1,))], 'fortran_order': False, "
                               "'shape': (1,)}"), "bad subarray shape"),
    "nesting too deep": (npy("{'descr': %s'<f8'%s, 'fortran_order': False, 'shape': (1,)}"
                             % ("[('a', " * 100, ")]" * 100)), "nesting deeper than"),
    "NUL in header": (npy("{'descr': '<f8',\0 'fortran_order': False, 'shape': (2,)}", F8_DATA),
                      "contains a NUL byte"),
    "bad escape": (npy("{'descr': '<f\\q8', 'fortran_order': False, 'shape': (2,)}"),
                   r"unknown escape '\\q'"),
    "invalid UTF-8 in v3": (npy(b"{'descr': [('\xff', '<f8')], 'fortran_order': False, "
                                b"'shape': (2,)}", F8_DATA, version=(3, 0)), "invalid UTF-8"),
    "truncated data": (npy(F8_HEADER, F8_DATA[:11]),
                       r"declares 2 elements of 8 bytes \(16 bytes of data\) but the file holds "
                       r"11 bytes of data \(truncated file\?\)"),
    "trailing bytes": (npy(F8_HEADER, F8_DATA + b"junk"), "the file holds 20 bytes of data"),
    "huge declared shape": (npy("{'descr': '<f8', 'fortran_order': False, "
                                "'shape': (1000000000000,)}", F8_DATA), "declares 1000000000000"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_npy_exit_4(shared_server, tmp_path, case):
    content, pattern = CORRUPT[case]
    path = tmp_path / "broken.npy"
    path.write_bytes(content)
    r = fails(run(["put", "/never", path], shared_server), 4, pattern)
    assert "broken.npy" in r.stderr
    assert r.stderr.count("\n") == 1  # one clear line
    assert EXIT_FILE == 4


def test_corrupt_files_send_nothing(shared_server, tmp_path):
    path = tmp_path / "broken.npy"
    path.write_bytes(CORRUPT["truncated data"][0])
    fails(run(["put", "/not_there", path], shared_server), EXIT_FILE)
    fails(run(["get", "/not_there"], shared_server), 1, "NOT_FOUND")


def test_corrupt_stdin_exit_4(shared_server):
    r = run(["put", "/never", "-"], shared_server, input=npy(F8_HEADER, F8_DATA[:5]), text=False)
    assert r.returncode == EXIT_FILE
    assert r.stderr.startswith(b"hdf5-async: <stdin>: truncated .npy data")
    r = run(["put", "/never", "-"], shared_server, input=npy(F8_HEADER, F8_DATA + b"x"), text=False)
    assert r.returncode == EXIT_FILE and b"unexpected bytes after the array data" in r.stderr


WANT_F8 = np.array([1.5, -2.0])

VALID = {
    "double quotes": (npy('{"descr": "<f8", "fortran_order": False, "shape": (2,)}', F8_DATA), WANT_F8),
    "no trailing comma, spaces and newlines": (
        npy("{ 'descr' :'<f8' ,\n 'fortran_order':False,\t'shape':( 2 , ) }", F8_DATA), WANT_F8),
    "keys reordered": (npy("{'shape': (2,), 'fortran_order': False, 'descr': '<f8'}", F8_DATA), WANT_F8),
    "trailing comma in shape of two": (
        npy("{'descr': '<i1', 'fortran_order': False, 'shape': (2, 2,), }", bytes([1, 2, 3, 4])),
        np.array([[1, 2], [3, 4]], dtype="i1")),
    "python 2 longs": (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2L,)}", F8_DATA), WANT_F8),
    "unicode prefix": (npy("{u'descr': u'<f8', u'fortran_order': False, u'shape': (2,)}", F8_DATA),
                       WANT_F8),
    "header not aligned": (npy(F8_HEADER + "\n", F8_DATA, pad=False), WANT_F8),
    "version 2.0": (npy(F8_HEADER, F8_DATA, version=(2, 0)), WANT_F8),
    "version 3.0 utf-8 field": (
        npy("{'descr': [('größe', '<f8')], 'fortran_order': False, 'shape': (2,)}", F8_DATA,
            version=(3, 0)), np.array([(1.5,), (-2.0,)], dtype=[("größe", "<f8")])),
    "version 1.0 latin-1 field": (
        npy("{'descr': [('\xe9t\xe9', '<f8')], 'fortran_order': False, 'shape': (2,)}", F8_DATA),
        np.array([(1.5,), (-2.0,)], dtype=[("été", "<f8")])),
    "escaped field name": (
        npy("{'descr': [('a\\'b\\x41', '<f8')], 'fortran_order': False, 'shape': (2,)}", F8_DATA),
        np.array([(1.5,), (-2.0,)], dtype=[("a'bA", "<f8")])),
    "titled field": (
        npy("{'descr': [(('a title', 'x'), '<f8')], 'fortran_order': False, 'shape': (2,)}", F8_DATA),
        np.array([(1.5,), (-2.0,)], dtype=[("x", "<f8")])),
    "native byte order": (npy("{'descr': '=f8', 'fortran_order': False, 'shape': (2,)}", F8_DATA),
                          WANT_F8),
    "shape as list": (npy("{'descr': '<f8', 'fortran_order': False, 'shape': [2]}", F8_DATA), WANT_F8),
    "empty with huge other dim": (
        npy("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4611686018427387904)}"),
        None),
}


@pytest.mark.parametrize("case", sorted(VALID))
def test_unusual_but_valid_headers(server, tmp_path, case):
    content, want = VALID[case]
    path = tmp_path / "odd.npy"
    path.write_bytes(content)
    r = run(["put", "/odd", path], server)
    if want is None:
        # readable, but the server has its own limits on dims
        assert r.returncode in (0, 1), r.stderr
        return
    ok(r)
    out = tmp_path / "out.npy"
    ok(run(["get", "/odd", "-o", out], server))
    assert_same(np.load(out), want)


@pytest.mark.filterwarnings("ignore:Stored array in format 3.0")
@pytest.mark.parametrize(
    "field, version, saved_version",
    [("ünï", (1, 0), 1), ("ünï", (2, 0), 1), ("ünï", (3, 0), 1), ("Ωμέγα", (3, 0), 3)],
)
def test_versions_written_by_numpy(server, tmp_path, field, version, saved_version):
    arr = np.array([(1, b"x")], dtype=[(field, "<i4"), ("b", "S1")])
    src = tmp_path / "v.npy"
    with open(src, "wb") as f:
        np.lib.format.write_array(f, arr, version=version)
    assert src.read_bytes()[6] == version[0]
    ok(run(["put", "/v", src], server))
    out = tmp_path / "out.npy"
    ok(run(["get", "/v", "-o", out], server))
    assert_same(np.load(out), arr)
    # the version numpy picks for this header: Latin-1 fits 1.0, else 3.0
    ref = io.BytesIO()
    np.save(ref, arr)
    assert out.read_bytes() == ref.getvalue()
    assert out.read_bytes()[6] == saved_version


def test_unicode_with_nul_inside_refused(shared_server, tmp_path):
    src = tmp_path / "nul.npy"
    np.save(src, np.array(["a\0b"]))
    fails(run(["put", "/nul", src], shared_server), EXIT_FILE, "NUL character inside the string")


def test_empty_unicode_array_refused(shared_server, tmp_path):
    """Strings travel as nested lists; an empty list would be stored as
    float64 of shape (0,), so the tool refuses rather than change the type."""
    src = tmp_path / "empty_u.npy"
    np.save(src, np.zeros((0, 2), dtype="<U3"))
    fails(run(["put", "/eu", src], shared_server), EXIT_FILE, "empty unicode")
