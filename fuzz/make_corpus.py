#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets: fuzz/corpus/decode/ (one
request payload per file, no length prefix) and fuzz/corpus/engine/ (a flags
byte -- bit 0 server default compression, bit 1 group appends, bit 2 flush
after each request, bit 3 read-before/after oracle -- then request payloads
separated by C1 C1 C1 C1; an empty payload reopens the file, see
fuzz/fuzz_engine.c).

Run with Debian's /usr/bin/python3 (msgpack, msgpack_numpy, numpy):

    /usr/bin/python3 fuzz/make_corpus.py

Files are named after what they hold, so running it again rewrites the same
files; hand-added regression inputs (fuzz/corpus/*/regress-*) are left alone.
"""
import os
import sys

import msgpack
import msgpack_numpy
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"\xc1\xc1\xc1\xc1"


def pack(obj):
    return msgpack.packb(obj, default=msgpack_numpy.encode, use_bin_type=True)


# ---- values: every dtype the protocol maps, and the plain forms ----

def typed_arrays():
    """name -> numpy array (small)."""
    v = {}
    v["b1"] = np.array([True, False, True])
    for code in ["i1", "<i2", ">i2", "<i4", ">i4", "<i8", ">i8",
                 "u1", "<u2", ">u2", "<u4", ">u4", "<u8", ">u8"]:
        v[code.replace("<", "le_").replace(">", "be_")] = np.arange(1, 5, dtype=code)
    for code in ["<f2", ">f2", "<f4", ">f4", "<f8", ">f8"]:
        v[code.replace("<", "le_").replace(">", "be_")] = np.array([0.5, -1.0, np.inf, np.nan], dtype=code)
    for code in ["<c8", ">c8", "<c16", ">c16"]:
        v[code.replace("<", "le_").replace(">", "be_")] = np.array([1 + 2j, -3.5j], dtype=code)
    v["S5"] = np.array([b"ab", b"hello", b""], dtype="S5")
    v["V4"] = np.array([b"\x01\x02\x03\x04", b"\xff\x00\xff\x00"], dtype="V4")
    v["struct"] = np.array([(1, 2.5), (-3, 4.0)], dtype=[("a", "<i4"), ("b", "<f8")])
    v["struct_aligned"] = np.array([(1, (2.0, 3.0))], dtype=np.dtype([("a", "i1"), ("b", "<f8", (2,))], align=True))
    v["struct_nested"] = np.array([((1, 2), True)], dtype=[("p", [("x", "<i2"), ("y", ">i2")]), ("ok", "?")])
    v["struct_complex_like"] = np.array([(1.0, 2.0)], dtype=[("r", "<f8"), ("i", "<f8")])
    v["struct_subarray2d"] = np.zeros(2, dtype=[("m", "<f4", (2, 3)), ("s", "S3")])
    v["i4_2d"] = np.arange(6, dtype="<i4").reshape(2, 3)
    v["f8_3d"] = np.arange(8, dtype="<f8").reshape(2, 2, 2)
    v["empty_f8"] = np.zeros((0,), dtype="<f8")
    v["empty_2d"] = np.zeros((0, 3), dtype="<i2")
    v["zero_d"] = np.array(7, dtype="<i4")  # 0-d array: msgpack-numpy writes nd: true, shape []
    return v


def plain_values():
    return {
        "bool": True,
        "int": 42,
        "negint": -5,
        "bigint": 2**64 - 1,
        "float": 1.25,
        "str": "héllo",
        "bin": b"bytes",
        "list_int": [1, 2, 3],
        "list_mixed_num": [True, 2, 3.5],
        "list_2d": [[1, 2], [3, 4]],
        "list_str": ["a", "bc", ""],
        "list_str_2d": [["a", "b"], ["c", "d"]],
        "list_bin": [b"x", b"yz"],
        "list_empty": [],
        "np_scalar_f8": np.float64(2.5),
        "np_scalar_u2": np.uint16(7),
        "np_scalar_b1": np.bool_(True),
        "complex": 1 + 2j,
    }


def numpy_map_strkeys(a):
    """The msgpack-numpy form with str keys (the server takes str or bin)."""
    return {"nd": True, "type": a.dtype.str if a.dtype.names is None else a.dtype.descr,
            "kind": "", "shape": list(a.shape), "data": a.tobytes()}


def req(rid, op, **kw):
    d = {"id": rid, "op": op}
    d.update(kw)
    return d


def decode_seeds():
    s = {}
    s["ping"] = req(1, "ping")
    s["create_group"] = req(2, "create_group", path="/g/h")
    s["read"] = req(3, "read", path="/g/x")
    s["delete"] = req(4, "delete", path="/g")
    for name, a in typed_arrays().items():
        s["write_" + name] = req(10, "write", path="/d/" + name, data=a)
    for name, v in plain_values().items():
        s["write_plain_" + name] = req(11, "write", path="/p/" + name, data=v)
    i4 = np.arange(4, dtype="<i4")
    s["write_strkeys"] = req(12, "write", path="/s", data=numpy_map_strkeys(i4))
    s["write_scalar_form"] = req(13, "write", path="/sc",
                                 data={"nd": False, "type": "<f8", "data": np.float64(1).tobytes()})
    s["write_descr_scalar"] = req(13, "write", path="/sc2",
                                  data={"nd": False, "type": [["a", "<i4"], ["", "|V4"]],
                                        "data": b"\x01\0\0\0\0\0\0\0"})
    s["write_void_descr"] = req(13, "write", path="/v",
                                data={"nd": True, "type": [["", "|V3"]], "kind": "V", "shape": [1],
                                      "data": b"abc"})
    s["update"] = req(14, "update", path="/d/x", data=i4)
    s["write_gzip"] = req(15, "write", path="/c/gz", data=i4, compression="gzip", compression_opts=9)
    s["write_lzf"] = req(16, "write", path="/c/lzf", data=i4, compression="lzf")
    s["write_none"] = req(17, "write", path="/c/no", data=i4, compression="none")
    s["append"] = req(18, "append", path="/a", data=i4)
    s["append_gzip"] = req(19, "append", path="/a2", data=i4.reshape(2, 2), compression="gzip")
    s["insert"] = req(20, "insert", path="/a", index=-1, data=i4[:1])
    s["insert_big_index"] = req(21, "insert", path="/a", index=2**63 + 5, data=i4[:1])
    s["read_selection"] = req(22, "read", path="/d/x", selection=[1, [None, -1, 2], "..."])
    s["write_slice"] = req(23, "write_slice", path="/d/x", selection=[[0, 2, None]], data=i4[:2])
    s["create_dataset"] = req(24, "create_dataset", path="/cd", shape=[0, 3], dtype="<f4",
                              maxshape=[None, 3], chunks=[4, 3], fillvalue=1.5,
                              compression="gzip", compression_opts=2, shuffle=True,
                              exist_ok=True)
    s["create_dataset_str"] = req(25, "create_dataset", path="/cs", shape=[2], dtype="str",
                                  chunks=True)
    s["resize"] = req(26, "resize", path="/cd", shape=[5, 3])
    s["resize_axis"] = req(27, "resize", path="/cd", shape=7, axis=-2)
    s["err_sel_step"] = req(40, "read", path="/d/x", selection=[[None, None, 0]])
    s["err_sel_item"] = req(41, "read", path="/d/x", selection=[1.5])
    s["err_create_no_dtype"] = req(42, "create_dataset", path="/e", shape=[1])
    # errors the parser must report
    s["err_unknown_op"] = req(30, "frobnicate", path="/x")
    s["err_bad_path"] = req(31, "read", path="/a/../b")
    s["err_no_id"] = {"op": "ping"}
    s["err_not_map"] = [1, 2, 3]
    s["err_extra_arg"] = req(32, "ping", path="/x")
    s["err_unicode"] = req(33, "write", path="/u", data={"nd": True, "type": "<U3", "kind": "",
                                                        "shape": [1], "data": b"a\0\0\0" * 3})
    s["err_object"] = req(34, "write", path="/o", data={"nd": True, "type": "|O", "kind": "O",
                                                       "shape": [1], "data": b"x"})
    s["err_bytes_count"] = req(35, "write", path="/b", data={"nd": True, "type": "<i4", "kind": "",
                                                            "shape": [3], "data": b"\0" * 8})
    s["err_bad_comp"] = req(36, "write", path="/b", data=1, compression="zstd")
    s["err_ragged"] = req(37, "write", path="/r", data=[[1, 2], [3]])
    s["err_nil_data"] = req(38, "write", path="/n", data=None)
    s["err_dup_field"] = req(39, "write", path="/f", data={"nd": True, "type": [["a", "<i4"], ["a", "<i4"]],
                                                          "kind": "V", "shape": [1], "data": b"\0" * 8})
    return {k: pack(v) for k, v in s.items()}


def engine_seeds():
    i4 = np.arange(4, dtype="<i4")
    seqs = {}

    def add(name, flags, reqs):
        seqs[name] = (flags, [b"" if r is None else pack(r) for r in reqs])

    add("basic", 0, [
        req(1, "ping"), req(2, "create_group", path="/g"),
        req(3, "write", path="/g/x", data=i4), req(4, "read", path="/g/x"),
        req(5, "append", path="/g/x", data=i4), req(6, "insert", path="/g/x", index=0, data=i4[:2]),
        req(7, "read", path="/g/x"), req(8, "delete", path="/g/x"), req(9, "read", path="/g/x"),
        req(10, "delete", path="/g"),
    ])
    add("meta", 0, [
        req(1, "append", path="/g/x", data=i4), req(2, "set_attr", path="/g/x", name="a", data=i4),
        req(3, "set_attr", path="/g", name="s", data="text"), req(4, "get_attr", path="/g/x", name="a"),
        req(5, "list_attrs", path="/g/x"), req(6, "create_link", path="/l", target="/g/x"),
        req(7, "create_link", path="/d", target="nowhere"), req(8, "list", path="/", limit=2),
        req(9, "walk", path="/", after="/g", max_depth=3), req(10, "info", path="/l"),
        req(11, "exists", path="/d"), req(12, "move", path="/g", dest="/h/g"),
        req(13, "append", path="/g/x", data=i4), req(14, "delete_attr", path="/h/g/x", name="a"),
        req(15, "info", path="/h"), req(16, "delete", path="/d"),
    ])
    for i, (name, a) in enumerate(typed_arrays().items()):
        rows = a if a.ndim else a.reshape(1)
        add("dtype_" + name, 8, [
            req(1, "write", path="/t", data=a), req(2, "read", path="/t"),
            req(3, "append", path="/t", data=rows), req(4, "insert", path="/t", index=-1, data=rows[:1]),
            req(5, "read", path="/t"), req(6, "append", path="/new", data=rows), req(7, "read", path="/new"),
        ])
    for name, v in plain_values().items():
        add("plain_" + name, 0, [
            req(1, "write", path="/p", data=v), req(2, "read", path="/p"),
            req(3, "append", path="/q", data=v), req(4, "append", path="/q", data=v),
            req(5, "read", path="/q"),
        ])
    add("append_group", 2, [req(i, "append", path="/s", data=np.arange(i, i + 2, dtype="<f8"))
                            for i in range(1, 7)] + [req(9, "read", path="/s")])
    add("append_group_rows", 2, [req(1, "append", path="/m", data=np.zeros((2, 3), "<i2"))] +
        [req(i, "append", path="/m", data=np.full(3, i, "<i2")) for i in range(2, 6)] +
        [req(7, "append", path="/m", data=np.full(4, 9, "<i2")), req(8, "read", path="/m")])
    add("compression_default", 1 | 4, [
        req(1, "write", path="/c", data=np.arange(100, dtype="<f4")),
        req(2, "write", path="/c", data=np.arange(100, dtype="<f4"), compression="lzf"),
        req(3, "append", path="/c", data=np.arange(3, dtype="<f4")),
        req(4, "write", path="/sc", data=3.5),
        None, req(5, "read", path="/c"), req(6, "read", path="/sc"),
    ])
    add("compression_explicit", 0, [
        req(1, "write", path="/z/gz", data=i4, compression="gzip", compression_opts=1),
        req(2, "write", path="/z/gz", data=i4, compression="gzip", compression_opts=1),
        req(3, "write", path="/z/gz", data=i4, compression="gzip", compression_opts=9),
        req(4, "write", path="/z/lzf", data=i4, compression="lzf"),
        req(5, "insert", path="/z/lzf", index=1, data=i4[:1]),
        req(6, "write", path="/z/s", data=1, compression="gzip"),
        req(7, "read", path="/z/gz"), req(8, "read", path="/z/lzf"),
    ])
    add("strings", 0, [
        req(1, "write", path="/s", data=["a", "bb", "ccc"]), req(2, "append", path="/s", data=["d"]),
        req(3, "insert", path="/s", index=0, data="z"), req(4, "read", path="/s"),
        req(5, "write", path="/b", data=[b"x", b"y"]), req(6, "append", path="/b", data=b"z"),
        req(7, "read", path="/b"), req(8, "write", path="/one", data="solo"), req(9, "read", path="/one"),
    ])
    add("reopen", 0, [
        req(1, "append", path="/r", data=i4), None, req(2, "append", path="/r", data=i4),
        None, req(3, "read", path="/r"), req(4, "delete", path="/r"), None, req(5, "read", path="/r"),
    ])
    add("errors", 0, [
        req(1, "write", path="/d", data=i4), req(2, "create_group", path="/d"),
        req(3, "create_group", path="/d/e"), req(4, "write", path="/d/e/f", data=1),
        req(5, "create_group", path="/g"), req(6, "write", path="/g", data=1),
        req(7, "read", path="/g"), req(8, "delete", path="/"), req(9, "write", path="/", data=1),
        req(10, "append", path="/d", data=np.zeros((1, 2), "<i4")),
        req(11, "append", path="/d", data=np.array([b"ab"], "S2")),
        req(12, "insert", path="/d", index=99, data=i4), req(13, "insert", path="/nope", index=0, data=i4),
        req(14, "write", path="/sc", data=5), req(15, "append", path="/sc", data=5),
        req(16, "read", path="/nope"), req(17, "delete", path="/nope"),
    ])
    add("type_convert", 0, [
        req(1, "write", path="/n", data=np.arange(3, dtype="<f8")),
        req(2, "append", path="/n", data=np.arange(3, dtype=">i2")),
        req(3, "insert", path="/n", index=1, data=np.array([7], dtype="u1")), req(4, "read", path="/n"),
    ])
    f8 = np.arange(24, dtype="<f8").reshape(4, 6)
    add("slices", 0, [
        req(1, "write", path="/x", data=f8), req(2, "read", path="/x", selection=[1]),
        req(3, "read", path="/x", selection=[[None, None, 2], [-3, None, None]]),
        req(4, "read", path="/x", selection=["...", 0]),
        req(5, "write_slice", path="/x", selection=[[1, 3, None], 2], data=np.array([7, 8], "<i2")),
        req(6, "write_slice", path="/x", selection=[-1], data=0.5),
        req(7, "read", path="/x", selection=[[100, None, None]]), req(8, "read", path="/x", selection=[9]),
        req(9, "write_slice", path="/x", selection=[0], data=[1, 2]),
        req(10, "write_slice", path="/x", selection=[0], data="no"), req(11, "read", path="/x"),
    ])
    add("create_resize", 0, [
        req(1, "create_dataset", path="/g/c", shape=[2, 3], dtype="<i4", maxshape=[None, 5],
            fillvalue=-1, compression="lzf"),
        req(2, "append", path="/g/c", data=np.ones((1, 3), "<i4")),
        req(3, "resize", path="/g/c", shape=[6, 5]), req(4, "resize", path="/g/c", shape=1, axis=0),
        req(5, "resize", path="/g/c", shape=[6, 6]), req(6, "read", path="/g/c"),
        req(7, "create_dataset", path="/g/c", shape=[1, 5], dtype="<i4", exist_ok=True),
        req(8, "create_dataset", path="/g/s", shape=[], dtype="|S3", fillvalue=b"abc"),
        req(9, "resize", path="/g/s", shape=[]), req(10, "create_dataset", path="/g/t", shape=[3],
                                                   dtype=[["a", "<i2"], ["b", "<f8"]], chunks=[2]),
        req(11, "write_slice", path="/g/t", selection=[1], data=np.zeros((), [("a", "<i2"), ("b", "<f8")])),
        req(12, "read", path="/g/t"), req(13, "create_dataset", path="/g/u", shape=[3], dtype="<f8",
                                          chunks=False, maxshape=[None]),
    ])
    # the same sequences with the read-before/after oracle (flag bit 3)
    for name in ["slices", "create_resize", "basic", "strings", "type_convert", "errors", "append_group", "append_group_rows",
                 "compression_explicit", "reopen"]:
        flags, frames = seqs[name]
        seqs[name + "_checked"] = (flags | 8, frames)
    return seqs


def main():
    dec = os.path.join(HERE, "corpus", "decode")
    eng = os.path.join(HERE, "corpus", "engine")
    os.makedirs(dec, exist_ok=True)
    os.makedirs(eng, exist_ok=True)
    n = 0
    for name, body in sorted(decode_seeds().items()):
        assert SEP not in body, name
        with open(os.path.join(dec, "seed-" + name), "wb") as f:
            f.write(body)
        n += 1
    for name, (flags, frames) in sorted(engine_seeds().items()):
        for fr in frames:
            assert SEP not in fr, name
        with open(os.path.join(eng, "seed-" + name), "wb") as f:
            f.write(bytes([flags]) + SEP.join(frames))
        n += 1
    print(f"wrote {n} seed files", file=sys.stderr)


if __name__ == "__main__":
    main()
