"""Every kind of bad input, sent over a raw socket.

For each: the documented error comes back (with the documented id), the
connection closes only where documented, a second client connected
alongside keeps working, and the file is unchanged afterwards."""

import struct

import h5py
import msgpack
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, snapshot

MAX_SMALL = 64 * 1024


def pk(obj):
    return msgpack.packb(obj, use_bin_type=True)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def nd(type_, shape, data, kind=b""):
    return {b"nd": True, b"type": type_, b"kind": kind, b"shape": shape, b"data": data}


def nested(depth):
    v = 1
    for _ in range(depth):
        v = [v]
    return v


def precreate(path):
    with h5py.File(path, "w") as f:
        f["existing"] = np.arange(10.0)
        f.create_dataset("grow", data=np.arange(4), maxshape=(None,), chunks=(16,))
        f["g/inner"] = np.array([b"abc"])
        f["s"] = "a string"


# (id, frame bytes, code, reply id, connection closes, server options)
CASES = []


def case(name, raw, code, rid=None, closes=False, opts=None):
    CASES.append(pytest.param(raw, code, rid, closes, opts, id=name))


def req(name, obj, code, rid="same"):
    if rid == "same":
        rid = obj.get("id") if isinstance(obj, dict) else None
    case(name, frame(pk(obj)), code, rid)


# -- framing
case("oversized-frame", struct.pack(">I", MAX_SMALL + 1), "TOO_LARGE", None, True,
     {"max_message_size": "64K"})
case("oversized-frame-4G", struct.pack(">I", 0xFFFFFFFF), "TOO_LARGE", None, True)
case("oversized-frame-default-1G", struct.pack(">I", (1 << 30) + 1), "TOO_LARGE", None, True)
case("zero-length-frame", b"\x00\x00\x00\x00", "PROTOCOL_ERROR", None, True)
# -- MessagePack
case("garbage-byte", frame(b"\xc1"), "PROTOCOL_ERROR")
case("garbage-bytes", frame(b"\xc1\xff\x00garbage"), "PROTOCOL_ERROR")
case("truncated-map", frame(b"\x82\xa2id"), "PROTOCOL_ERROR")
case("truncated-str", frame(pk({"id": 1, "op": "ping"})[:-2]), "PROTOCOL_ERROR")
case("truncated-bin-length", frame(b"\x83\xa2id\x01\xa2op\xa4ping\xa4data\xc6\xff\xff\xff\xff"), "PROTOCOL_ERROR")
case("huge-array-header", frame(b"\xdd\xff\xff\xff\xff"), "PROTOCOL_ERROR")
case("trailing-bytes", frame(pk({"id": 1, "op": "ping"}) + b"\x00"), "PROTOCOL_ERROR")
case("two-values", frame(pk({"id": 1, "op": "ping"}) * 2), "PROTOCOL_ERROR")
case("deep-nesting", frame(pk({"id": 1, "op": "write", "path": "/deep", "data": nested(40)})), "PROTOCOL_ERROR")
case("deep-nesting-maps", frame(b"\x81\xa1a" * 40 + b"\x01"), "PROTOCOL_ERROR")
case("too-many-elements",
     frame(pk({"id": 1, "op": "write", "path": "/big", "data": [0] * (4 * 1024 * 1024 + 1)})), "TOO_LARGE")
# -- envelope
req("not-a-map-array", [1, 2, 3], "BAD_REQUEST", None)
req("not-a-map-str", "ping", "BAD_REQUEST", None)
req("not-a-map-nil", None, "BAD_REQUEST", None)
req("not-a-map-int", 7, "BAD_REQUEST", None)
req("missing-id", {"op": "ping"}, "BAD_REQUEST", None)
req("id-negative", {"id": -1, "op": "ping"}, "BAD_REQUEST", None)
req("id-str", {"id": "1", "op": "ping"}, "BAD_REQUEST", None)
req("id-float", {"id": 1.0, "op": "ping"}, "BAD_REQUEST", None)
req("id-nil", {"id": None, "op": "ping"}, "BAD_REQUEST", None)
req("id-bool", {"id": True, "op": "ping"}, "BAD_REQUEST", None)
req("op-missing", {"id": 3}, "BAD_REQUEST")
req("op-int", {"id": 3, "op": 5}, "BAD_REQUEST")
req("op-nil", {"id": 3, "op": None}, "BAD_REQUEST")
req("op-array", {"id": 3, "op": ["ping"]}, "BAD_REQUEST")
req("unknown-op", {"id": 4, "op": "frobnicate", "path": "/existing"}, "UNKNOWN_OP")
req("unknown-op-case", {"id": 4, "op": "PING"}, "UNKNOWN_OP")
req("unknown-op-empty", {"id": 4, "op": ""}, "UNKNOWN_OP")
# -- arguments
for op in ("create_group", "write", "update", "read", "append", "insert", "delete"):
    base = {"id": 5, "op": op}
    if op in ("write", "update", "append", "insert"):
        base["data"] = [1.0]
    if op == "insert":
        base["index"] = 0
    req("%s-missing-path" % op, dict(base), "BAD_REQUEST")
    req("%s-path-int" % op, dict(base, path=5), "BAD_REQUEST")
    req("%s-path-nil" % op, dict(base, path=None), "BAD_REQUEST")
    req("%s-path-array" % op, dict(base, path=["/a"]), "BAD_REQUEST")
    for i, p in enumerate(["", "a", "a/b", "//", "//a", "/a//b", "/a/", "/.", "/..", "/a/./b", "/a/../b",
                           "/existing/", "/g/../existing"]):
        req("%s-bad-path-%d" % (op, i), dict(base, path=p), "BAD_PATH")
for op in ("write", "update", "append", "insert"):
    base = {"id": 6, "op": op, "path": "/existing" if op == "insert" else "/new"}
    if op == "insert":
        base["index"] = 0
    req("%s-missing-data" % op, dict(base), "BAD_REQUEST")
    req("%s-data-nil" % op, dict(base, data=None), "BAD_REQUEST")
    req("%s-data-map" % op, dict(base, data={"foo": 1}), "BAD_REQUEST")
    req("%s-data-ext" % op, dict(base, data=msgpack.ExtType(5, b"xx")), "BAD_REQUEST")
    req("%s-ragged" % op, dict(base, data=[[1.0, 2.0], [3.0]]), "BAD_REQUEST")
    req("%s-mixed-list" % op, dict(base, data=[1.0, "a"]), "BAD_REQUEST")
    req("%s-list-with-nil" % op, dict(base, data=[1.0, None]), "BAD_REQUEST")
    req("%s-str-and-bin" % op, dict(base, data=["a", b"b"]), "BAD_REQUEST")
    req("%s-int-both-ranges" % op, dict(base, data=[-1, 2**64 - 1]), "BAD_REQUEST")
    req("%s-bytes-short" % op, dict(base, data=nd("<f8", [3], b"\x00" * 16)), "BAD_REQUEST")
    req("%s-bytes-long" % op, dict(base, data=nd("<f8", [1], b"\x00" * 16)), "BAD_REQUEST")
    req("%s-bytes-2d" % op, dict(base, data=nd("<i4", [2, 3], b"\x00" * 20)), "BAD_REQUEST")
    req("%s-scalar-bytes" % op, dict(base, data={b"nd": False, b"type": "<f8", b"data": b"\x00" * 4}), "BAD_REQUEST")
    req("%s-nd-no-data" % op, dict(base, data={b"nd": True, b"type": "<f8", b"kind": b"", b"shape": [1]}),
        "BAD_REQUEST")
    req("%s-nd-no-shape" % op, dict(base, data={b"nd": True, b"type": "<f8", b"kind": b"", b"data": b"\x00" * 8}),
        "BAD_REQUEST")
    req("%s-nd-no-type" % op, dict(base, data={b"nd": True, b"kind": b"", b"shape": [1], b"data": b"\x00" * 8}),
        "BAD_REQUEST")
    req("%s-shape-negative" % op, dict(base, data=nd("<f8", [-1], b"")), "BAD_REQUEST")
    req("%s-shape-str" % op, dict(base, data=nd("<f8", "1", b"\x00" * 8)), "BAD_REQUEST")
    req("%s-type-garbage" % op, dict(base, data=nd("<x9", [1], b"\x00" * 8)), "BAD_REQUEST")
    req("%s-type-int" % op, dict(base, data=nd(8, [1], b"\x00" * 8)), "BAD_REQUEST")
    req("%s-descr-garbage" % op, dict(base, data=nd([["a"]], [1], b"\x00" * 8, b"V")), "BAD_REQUEST")
    req("%s-rank-33" % op, dict(base, data=nd("<f8", [1] * 33, b"\x00" * 8)), "TOO_LARGE")
    req("%s-type-U" % op, dict(base, data=nd("<U4", [1], b"\x00" * 16)), "UNSUPPORTED_TYPE")
    req("%s-type-O" % op, dict(base, data=nd("|O", [1], b"\x00" * 8)), "UNSUPPORTED_TYPE")
    req("%s-type-M" % op, dict(base, data=nd("<M8[s]", [1], b"\x00" * 8)), "UNSUPPORTED_TYPE")
    req("%s-type-m" % op, dict(base, data=nd("<m8[s]", [1], b"\x00" * 8)), "UNSUPPORTED_TYPE")
    req("%s-field-U" % op, dict(base, data=nd([["a", "<U2"]], [1], b"\x00" * 8, b"V")), "UNSUPPORTED_TYPE")
for bad_index in ("0", 1.5, None, True, [0]):
    req("insert-index-%r" % (bad_index,),
        {"id": 7, "op": "insert", "path": "/existing", "index": bad_index, "data": [1.0]}, "BAD_REQUEST")
req("insert-missing-index", {"id": 7, "op": "insert", "path": "/existing", "data": [1.0]}, "BAD_REQUEST")
req("delete-root", {"id": 8, "op": "delete", "path": "/"}, "BAD_PATH")
for op in ("write", "update", "append"):
    req("%s-root" % op, {"id": 8, "op": op, "path": "/", "data": [1]}, "BAD_PATH")
req("insert-root", {"id": 8, "op": "insert", "path": "/", "index": 0, "data": [1]}, "BAD_PATH")
req("read-root", {"id": 8, "op": "read", "path": "/"}, "NOT_A_DATASET")
# arguments an op does not take are refused, not ignored
req("misspelt-arg", {"id": 9, "op": "write", "path": "/new", "data": [1], "compresion": "gzip"}, "BAD_REQUEST")
req("ping-with-path", {"id": 9, "op": "ping", "path": "/x"}, "BAD_REQUEST")
req("read-with-data", {"id": 9, "op": "read", "path": "/existing", "data": [1]}, "BAD_REQUEST")
req("append-with-index", {"id": 9, "op": "append", "path": "/grow", "index": 0, "data": [1]}, "BAD_REQUEST")
req("delete-with-compression", {"id": 9, "op": "delete", "path": "/existing", "compression": "gzip"}, "BAD_REQUEST")
case("int-key", frame(pk({"id": 9, "op": "ping", 5: 1})), "BAD_REQUEST", 9)
req("index-above-int64", {"id": 9, "op": "insert", "path": "/grow", "index": 2**63, "data": [1]}, "OUT_OF_RANGE")


@pytest.mark.parametrize("raw,code,rid,closes,opts", CASES)
def test_bad_input(start_server, raw, code, rid, closes, opts):
    before = {}

    def pre(path):
        precreate(path)
        before.update(snapshot(path))

    srv = start_server(precreate=pre, server_opts=opts)
    with RawConn(srv) as other, RawConn(srv) as conn:
        assert_ok(other.call({"id": 1, "op": "ping"}), 1)
        conn.send_raw(raw)
        reply = conn.recv()
        assert_error(reply, code, rid)
        if closes:
            assert conn.is_closed_by_peer()
        else:
            # the same connection is still usable, framing intact
            assert assert_ok(conn.call({"id": 99, "op": "ping"}), 99) == "pong"
            r = assert_ok(conn.call({"id": 100, "op": "read", "path": "/existing"}), 100)
            assert r[b"shape"] == [10]
        # a client alongside was never disturbed
        assert assert_ok(other.call({"id": 2, "op": "ping"}), 2) == "pong"
        r = other.call({"id": 3, "op": "read", "path": "/grow"}, )
        assert assert_ok(r, 3)[b"shape"] == [4]
    srv.stop()
    assert snapshot(srv.file) == before


def test_bad_frames_between_good_ones_pipelined(start_server):
    """Replies come back in order, bad frames in the middle included."""
    srv = start_server(precreate=precreate)
    with RawConn(srv) as conn:
        data = b"".join([
            frame(pk({"id": 1, "op": "ping"})),
            frame(b"\xc1"),
            frame(pk({"id": 2, "op": "read", "path": "/nope"})),
            frame(pk([1])),
            frame(pk({"id": 3, "op": "write", "path": "/w", "data": [1, 2, 3]})),
            frame(pk({"id": 4, "op": "bogus"})),
            frame(pk({"id": 5, "op": "read", "path": "/w"})),
        ])
        conn.send_raw(data)
        assert assert_ok(conn.recv(), 1) == "pong"
        assert_error(conn.recv(), "PROTOCOL_ERROR", None)
        assert_error(conn.recv(), "NOT_FOUND", 2)
        assert_error(conn.recv(), "BAD_REQUEST", None)
        assert assert_ok(conn.recv(), 3) == {"shape": [3]}
        assert_error(conn.recv(), "UNKNOWN_OP", 4)
        r = assert_ok(conn.recv(), 5)
        assert r[b"shape"] == [3] and r[b"type"] == "<i8"
    srv.stop()


def test_oversized_frame_after_good_requests(start_server):
    """Requests before a too-large frame are all answered first."""
    srv = start_server(precreate=precreate, server_opts={"max_message_size": "64K"})
    with RawConn(srv) as conn:
        conn.send_raw(frame(pk({"id": 1, "op": "write", "path": "/a", "data": [1]}))
                      + frame(pk({"id": 2, "op": "ping"}))
                      + struct.pack(">I", MAX_SMALL + 1))
        assert assert_ok(conn.recv(), 1) == {"shape": [1]}
        assert assert_ok(conn.recv(), 2) == "pong"
        assert_error(conn.recv(), "TOO_LARGE", None)
        assert conn.is_closed_by_peer()
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        assert f["a"][()].tolist() == [1]


def _request_of_size(size):
    """A write of a bin (variable-length ASCII) padded to exactly `size`
    bytes of payload."""
    base = {"id": 1, "op": "write", "path": "/exact", "data": b""}
    overhead = len(pk(base))
    for pad in range(size - overhead - 8, size - overhead + 1):
        payload = pk(dict(base, data=b"x" * pad))
        if len(payload) == size:
            return payload
    raise AssertionError("no padding gives %d bytes" % size)


def test_frame_size_limit_is_inclusive(start_server):
    srv = start_server(server_opts={"max_message_size": "64K"})
    with RawConn(srv) as conn:
        exact = _request_of_size(MAX_SMALL)
        conn.send_frame(exact)
        assert assert_ok(conn.recv(), 1) == {"shape": []}
        assert assert_ok(conn.call({"id": 2, "op": "ping"}), 2) == "pong"
    with RawConn(srv) as conn:
        conn.send_raw(struct.pack(">I", MAX_SMALL + 1))
        assert_error(conn.recv(), "TOO_LARGE", None)
        assert conn.is_closed_by_peer()
    srv.stop()


@pytest.mark.parametrize("size", ["1024", "2K", "3M", "1G", "4096K"])
def test_max_message_size_suffixes_accepted(start_server, size):
    srv = start_server(server_opts={"max_message_size": size})
    with RawConn(srv) as conn:
        assert assert_ok(conn.call({"id": 1, "op": "ping"}), 1) == "pong"
    srv.stop()


def test_bin_keys_and_str_array_keys_accepted(start_server):
    srv = start_server(precreate=precreate)
    with RawConn(srv) as conn:
        assert assert_ok(conn.call({b"id": 1, b"op": "ping"}), 1) == "pong"
        r = conn.call({b"id": 2, b"op": "write", b"path": "/k",
                       b"data": {"nd": True, "type": "<i2", "kind": "", "shape": [2], "data": b"\x01\x00\x02\x00"}})
        assert assert_ok(r, 2) == {"shape": [2]}
        r = assert_ok(conn.call({"id": 3, "op": "read", "path": "/k"}), 3)
        assert r == {b"nd": True, b"type": "<i2", b"kind": b"", b"shape": [2], b"data": b"\x01\x00\x02\x00"}
    srv.stop()


def test_large_ids_echoed(start_server):
    srv = start_server()
    with RawConn(srv) as conn:
        for rid in (0, 2**32, 2**63 - 1, 2**64 - 1):
            assert assert_ok(conn.call({"id": rid, "op": "ping"}), rid) == "pong"
    srv.stop()


def test_client_disconnect_mid_frame(start_server):
    srv = start_server(precreate=precreate)
    with RawConn(srv) as conn:
        payload = pk({"id": 1, "op": "write", "path": "/half", "data": list(range(100))})
        conn.send_raw(struct.pack(">I", len(payload)) + payload[: len(payload) // 2])
    with RawConn(srv) as conn:  # the server is fine
        assert assert_ok(conn.call({"id": 2, "op": "ping"}), 2) == "pong"
        assert_error(conn.call({"id": 3, "op": "read", "path": "/half"}), "NOT_FOUND", 3)
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        assert "half" not in f


def test_oversized_frame_with_body_still_gets_reply(start_server):
    """A client that sends the whole oversized frame (not just its header)
    still reads the TOO_LARGE reply before the connection closes."""
    srv = start_server(server_opts={"max_message_size": "64K"})
    for _ in range(10):
        with RawConn(srv) as conn:
            try:
                conn.send_raw(struct.pack(">I", 200_000) + b"\x00" * 200_000)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may close before taking it all
            assert_error(conn.recv(), "TOO_LARGE", None)
            assert conn.is_closed_by_peer()
    with RawConn(srv) as conn:
        assert assert_ok(conn.call({"id": 1, "op": "ping"}), 1) == "pong"
    srv.stop()
