"""The Python client on its own: value encoding/decoding, framing, config
resolution and request/reply matching against fake in-process servers.
Needs no hdf5-async server."""

import asyncio
import logging
import os
import struct

import msgpack
import msgpack_numpy
import numpy as np
import pytest

import h5a_util
from h5a_util import run

import hdf5_async
from hdf5_async import HDF5Client, codec
from hdf5_async.config import load_settings


def frame_payload(pieces):
    data = b"".join(bytes(p) for p in pieces)
    (n,) = struct.unpack(">I", data[:4])
    assert n == len(data) - 4
    return data[4:]


def sent_request(**kw):
    return msgpack.unpackb(frame_payload(codec.encode_request(1, "write", "/x", **kw)), raw=False)


def sent_data(value):
    return sent_request(data=value)["data"]


def via_msgpack_numpy(value):
    """What msgpack_numpy makes of the value our client sends."""
    payload = frame_payload(codec.encode_request(1, "write", "/x", data=value))
    return msgpack.unpackb(payload, object_hook=msgpack_numpy.decode, raw=False)["data"]


def reply_value(obj):
    """Pack obj as the server would (msgpack_numpy form, bin keys) and
    decode it with the client's decoder."""
    packed = msgpack.packb(obj, default=msgpack_numpy.encode, use_bin_type=True)
    return codec.decode_value(codec.decode_reply(packed))


STRUCT_ALIGNED = np.dtype(
    [("a", "i1"), ("b", "<f8", (2,)), ("c", [("x", "<u2"), ("y", ">f4", (2, 2))]), ("d", "S3")],
    align=True,
)

ARRAYS = [
    np.arange(5),
    np.arange(12, dtype=">i4").reshape(3, 4),
    np.array([True, False]),
    np.arange(4, dtype="u1"),
    np.arange(4, dtype=">u8"),
    np.linspace(0, 1, 7, dtype="<f2"),
    np.linspace(0, 1, 7, dtype=">f4"),
    np.array([1 + 2j, 3 - 4j], dtype="c8"),
    np.array([1 + 2j, 3 - 4j], dtype=">c16"),
    np.array([b"ab", b"c"], dtype="S2"),
    np.zeros((2, 0, 3)),
    np.array(5.0),
    np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (3,))]),
]


class TestEncode:
    @pytest.mark.parametrize("arr", ARRAYS, ids=lambda a: "%s%s" % (a.dtype.str, a.shape))
    def test_arrays_decode_with_msgpack_numpy(self, arr):
        m = sent_data(arr)
        assert list(m.keys()) == [b"nd", b"type", b"kind", b"shape", b"data"]
        assert m[b"nd"] is True
        assert m[b"shape"] == list(arr.shape)
        assert len(m[b"data"]) == arr.nbytes
        back = via_msgpack_numpy(arr)
        assert back.dtype == arr.dtype and back.shape == arr.shape
        assert back.tobytes() == arr.tobytes()

    def test_type_string_and_kind(self):
        m = sent_data(np.zeros(2, ">i2"))
        assert m[b"type"] == ">i2" and m[b"kind"] == b""
        m = sent_data(np.zeros(2, "V4"))
        assert m[b"type"] == "|V4" and m[b"kind"] == b""

    def test_structured_descr_with_padding(self):
        arr = np.zeros(2, STRUCT_ALIGNED)
        m = sent_data(arr)
        assert m[b"kind"] == b"V"
        assert m[b"type"] == msgpack.unpackb(msgpack.packb(STRUCT_ALIGNED.descr))
        assert codec.dtype_from_wire(m[b"type"]) == STRUCT_ALIGNED
        assert len(m[b"data"]) == arr.nbytes

    def test_non_contiguous_made_contiguous(self):
        arr = np.arange(12).reshape(3, 4).T
        back = via_msgpack_numpy(arr)
        np.testing.assert_array_equal(back, arr)
        sliced = np.arange(20)[::3]
        np.testing.assert_array_equal(via_msgpack_numpy(sliced), sliced)

    def test_numpy_scalars(self):
        for v in (np.float32(1.5), np.int16(-3), np.uint64(2**64 - 1), np.bool_(True), np.complex64(1j)):
            m = sent_data(v)
            assert m == {b"nd": False, b"type": v.dtype.str, b"data": v.tobytes()}
            back = via_msgpack_numpy(v)
            assert type(back) is type(v) and back == v

    def test_plain_values(self):
        assert sent_data(3) == 3
        assert sent_data(-(2**63)) == -(2**63)
        assert sent_data(2**64 - 1) == 2**64 - 1
        assert sent_data(1.25) == 1.25
        assert sent_data(True) is True
        assert sent_data("héllo") == "héllo"
        assert sent_data(b"abc") == b"abc"
        assert sent_data(bytearray(b"abc")) == b"abc"
        assert sent_data(np.str_("x")) == "x"

    def test_numpy_bytes_and_void_scalars_are_0d_arrays(self):
        m = sent_data(np.bytes_(b"fixed"))
        assert m[b"nd"] is True and m[b"type"] == "|S5" and m[b"shape"] == [] and m[b"data"] == b"fixed"
        m = sent_data(np.void(b"\x01\x02"))
        assert m[b"type"] == "|V2" and m[b"kind"] == b"" and m[b"shape"] == []
        st = np.zeros((), [("a", "<i4")])[()]
        m = sent_data(st)
        assert m[b"kind"] == b"V" and m[b"type"] == [["a", "<i4"]] and m[b"shape"] == []

    def test_big_int_refused(self):
        with pytest.raises(OverflowError):
            codec.encode_request(1, "write", "/x", data=2**64)

    def test_complex(self):
        m = sent_data(1 + 2j)
        assert m == {b"nd": False, b"type": "<c16", b"data": np.complex128(1 + 2j).tobytes()}

    def test_unicode_arrays_become_string_lists(self):
        assert sent_data(np.array(["a", "bé"])) == ["a", "bé"]
        assert sent_data(np.array([["a", "b"], ["c", "d"]])) == [["a", "b"], ["c", "d"]]
        assert sent_data(np.array("solo")) == "solo"

    def test_object_arrays_of_strings(self):
        assert sent_data(np.array(["a", "b"], dtype=object)) == ["a", "b"]
        assert sent_data(np.array([b"a", b"b"], dtype=object)) == [b"a", b"b"]
        with pytest.raises(TypeError):
            codec.encode_request(1, "write", "/x", data=np.array(["a", 1], dtype=object))

    def test_lists(self):
        assert via_msgpack_numpy([1, 2, 3]).dtype == np.int64
        assert via_msgpack_numpy([1, 2.5]).dtype == np.float64
        assert via_msgpack_numpy([True, False]).dtype == np.bool_
        assert via_msgpack_numpy([1j, 2]).dtype == np.complex128
        assert sent_data([b"ab", b"c"]) == [b"ab", b"c"]
        assert sent_data([[b"a"], [b"b"]]) == [[b"a"], [b"b"]]
        assert via_msgpack_numpy([np.bytes_(b"ab"), np.bytes_(b"c")]).dtype == np.dtype("S2")
        assert sent_data(("x", "y")) == ["x", "y"]
        assert via_msgpack_numpy((1, 2)).dtype == np.int64
        assert sent_data(["x", "yz"]) == ["x", "yz"]
        assert sent_data([["x"], ["y"]]) == [["x"], ["y"]]
        empty = via_msgpack_numpy([])
        assert empty.dtype == np.float64 and empty.shape == (0,)

    @pytest.mark.parametrize(
        "value",
        [None, {"a": 1}, {1, 2}, object(), [1, [2, 3]], [1, None], ["a", None], [["a"], ["b", "c"]],
         [["a"], "b"], [b"a", [b"b"]]],
        ids=["None", "dict", "set", "object", "ragged", "list-None", "list-str-None", "ragged-str",
             "ragged-str2", "ragged-bytes"],
    )
    def test_unsupported_values_raise_type_error(self, value):
        with pytest.raises(TypeError):
            codec.encode_request(1, "write", "/x", data=value)

    def test_request_shape(self):
        req = msgpack.unpackb(
            frame_payload(codec.encode_request(7, "append", "/a/b", data=np.zeros(2), compression="gzip",
                                               compression_opts=5)),
            raw=False,
        )
        assert list(req.keys())[:3] == ["id", "op", "path"]
        assert req["id"] == 7 and req["op"] == "append" and req["path"] == "/a/b"
        assert req["compression"] == "gzip" and req["compression_opts"] == 5
        assert list(req.keys())[-1] == "data"

    def test_none_arguments_left_out(self):
        req = sent_request(data=1, compression=None, compression_opts=None)
        assert set(req) == {"id", "op", "path", "data"}

    def test_ping_has_no_path(self):
        req = msgpack.unpackb(frame_payload(codec.encode_request(1, "ping")), raw=False)
        assert req == {"id": 1, "op": "ping"}

    def test_array_bytes_not_copied(self):
        arr = np.arange(100000, dtype="f8")
        pieces = codec.encode_request(1, "write", "/x", data=arr)
        assert isinstance(pieces[-1], memoryview)
        assert np.shares_memory(np.frombuffer(pieces[-1], dtype="u1"), arr)

    def test_index_arg(self):
        assert codec.index_arg(np.int64(3)) == 3
        assert codec.index_arg(-1) == -1
        for bad in (1.0, "1", True, None):
            with pytest.raises(TypeError):
                codec.index_arg(bad)


class TestDecode:
    @pytest.mark.parametrize("arr", ARRAYS, ids=lambda a: "%s%s" % (a.dtype.str, a.shape))
    def test_msgpack_numpy_arrays(self, arr):
        back = reply_value(arr)
        assert isinstance(back, np.ndarray)
        assert back.dtype == arr.dtype and back.shape == arr.shape
        assert back.tobytes() == arr.tobytes()
        assert back.flags.writeable
        if back.size:
            back.reshape(-1)[0] = back.reshape(-1)[-1]  # writable for real

    def test_aligned_struct_round_trip_exact(self):
        arr = np.zeros(3, STRUCT_ALIGNED)
        arr["a"] = [1, 2, 3]
        arr["c"]["y"] = 2.5
        back = reply_value(arr)
        assert back.dtype == STRUCT_ALIGNED
        assert back.dtype.names == STRUCT_ALIGNED.names  # no f1-style padding fields
        assert back.dtype.itemsize == STRUCT_ALIGNED.itemsize
        assert back.tobytes() == arr.tobytes()

    def test_scalars(self):
        for v in (np.float64(2.5), np.int8(-1), np.bool_(True), np.complex128(1 - 1j), np.uint16(7)):
            # as the server sends them (msgpack_numpy would pack float64 as a float)
            back = codec.decode_value({b"nd": False, b"type": v.dtype.str, b"data": v.tobytes()})
            assert type(back) is type(v) and back == v

    def test_struct_scalar(self):
        dt = np.dtype([("a", "<i4"), ("b", "<f8")])
        m = {b"nd": False, b"type": [["a", "<i4"], ["b", "<f8"]], b"data": np.zeros((), dt).tobytes()}
        back = codec.decode_value(m)
        assert isinstance(back, np.void) and back.dtype == dt

    def test_str_keys_accepted(self):
        m = {"nd": True, "type": "<i2", "kind": "", "shape": [2], "data": b"\x01\x00\x02\x00"}
        np.testing.assert_array_equal(codec.decode_value(m), np.array([1, 2], "i2"))

    def test_byte_count_checked(self):
        with pytest.raises(ValueError):
            codec.decode_value({b"nd": True, b"type": "<f8", b"kind": b"", b"shape": [2], b"data": b"x"})

    def test_complex_form(self):
        assert reply_value(1 + 2j) == 1 + 2j

    def test_string_lists_to_object_arrays(self):
        a = codec.strings_to_array([["a", "b", "c"], ["d", "e", "f"]])
        assert a.dtype == object and a.shape == (2, 3) and a[1, 2] == "f"
        b = codec.strings_to_array([b"x", b"y"])
        assert b.dtype == object and b.tolist() == [b"x", b"y"]
        e = codec.strings_to_array([])
        assert e.dtype == object and e.shape == (0,)
        e2 = codec.strings_to_array([[], []])
        assert e2.shape == (2, 0)

    def test_nested_descr_with_subarray(self):
        descr = [["p", [["x", "<f4"], ["", "|V4"], ["y", "<f8"]]], ["q", "<i2", [2, 3]]]
        dt = codec.dtype_from_wire(descr)
        assert dt.names == ("p", "q")
        assert dt["p"].names == ("x", "y") and dt["p"].fields["y"][1] == 8
        assert dt["q"].shape == (2, 3)


class TestErrors:
    def test_every_code_has_a_class(self):
        # the one list of codes: src/proto/errors.h's H5A_ERROR_LIST
        import re
        with open(os.path.join(h5a_util.REPO_ROOT, "src", "proto", "errors.h")) as f:
            text = f.read()
        block = text[text.index("#define H5A_ERROR_LIST(X)"):text.index("enum {")]
        codes = re.findall(r"X\((\w+)\)", block)
        assert "NOT_FOUND" in codes and "NO_SPACE" in codes
        # issue 13's code landed first, issue 14's after it, both last
        assert codes[-3:] == ["NO_SPACE", "SEQ_TOO_OLD", "WRONG_NODE"]
        assert sorted(hdf5_async.ERROR_CLASSES) == sorted(codes)
        for code in codes:
            exc = hdf5_async.errors.error_from_reply({"code": code, "message": "m"})
            assert isinstance(exc, hdf5_async.HDF5AsyncError)
            assert exc.code == code and exc.message == "m"
            assert type(exc).__name__.endswith("Error")
            assert getattr(hdf5_async, type(exc).__name__) is type(exc)

    def test_unknown_code(self):
        exc = hdf5_async.errors.error_from_reply({"code": "NEW_THING", "message": "m"})
        assert type(exc) is hdf5_async.HDF5AsyncError and exc.code == "NEW_THING"

    def test_connection_closed_is_both(self):
        assert issubclass(hdf5_async.ConnectionClosedError, hdf5_async.HDF5AsyncError)
        assert issubclass(hdf5_async.ConnectionClosedError, ConnectionError)

    def test_h5py_builtin_bases(self):
        """h5py users catch built-in exceptions; each code derives from the
        one h5py raises for that condition."""
        expect = {
            "NOT_FOUND": KeyError, "EXISTS": ValueError, "OUT_OF_RANGE": IndexError,
            "TYPE_MISMATCH": TypeError, "UNSUPPORTED_TYPE": TypeError, "BAD_REQUEST": ValueError,
            "HDF5_ERROR": OSError, "PERMISSION_DENIED": PermissionError,
            "UNAUTHENTICATED": PermissionError,
        }
        for code, base in expect.items():
            assert issubclass(hdf5_async.ERROR_CLASSES[code], base), code
        assert issubclass(hdf5_async.TimedOutError, asyncio.TimeoutError)

    def test_client_codes_are_not_server_codes(self):
        for cls in (hdf5_async.ConnectionClosedError, hdf5_async.TimedOutError,
                    hdf5_async.BadReplyError, hdf5_async.ReadOnlyError,
                    hdf5_async.UnsupportedError):
            assert cls.code not in hdf5_async.ERROR_CLASSES
        exc = hdf5_async.errors.error_from_reply("garbage")
        assert type(exc) is hdf5_async.BadReplyError and exc.code == "BAD_REPLY"

    def test_each_class_declared_once(self):
        """errors.py is the one list: the package exports exactly its classes."""
        import inspect

        classes = {n for n, c in vars(hdf5_async.errors).items()
                   if inspect.isclass(c) and issubclass(c, hdf5_async.HDF5AsyncError)}
        assert classes <= set(hdf5_async.__all__)
        assert classes == {n for n in hdf5_async.errors.__all__ if n[0].isupper() and n.endswith("Error")}
        src = open(hdf5_async.__file__).read()
        assert "Error," not in src  # __init__ names none of them

    def test_flavoured_keeps_code_and_class(self):
        import pickle

        exc = hdf5_async.NotFoundError("gone")
        f = hdf5_async.errors.flavoured(exc, OSError)
        assert isinstance(f, hdf5_async.NotFoundError) and isinstance(f, OSError)
        assert isinstance(f, KeyError) and f.code == "NOT_FOUND" and str(f) == "NOT_FOUND: gone"
        assert type(f).__name__ == "NotFoundError"
        assert hdf5_async.errors.flavoured(exc, KeyError) is exc
        g = pickle.loads(pickle.dumps(f))
        assert type(g) is type(f) and g.message == "gone"


class TestConfig:
    def test_defaults_without_file(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        s = load_settings()
        assert (s.host, s.port, s.debug) == ("127.0.0.1", 8888, False)

    def test_server_section_and_wildcard(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "config.ini").write_text(
            "[server]\nhost = 0.0.0.0\nport = 9999\n\n[client]\n# comment only\n"
        )
        s = load_settings()
        assert (s.host, s.port) == ("127.0.0.1", 9999)

    def test_client_section_wins(self, tmp_path):
        p = tmp_path / "c.ini"
        p.write_text("[server]\nhost = 0.0.0.0\nport = 1\n[client]\nhost = example.invalid\nport = 2\n")
        s = load_settings(config=str(p))
        assert (s.host, s.port) == ("example.invalid", 2)

    def test_client_section_partial(self, tmp_path):
        p = tmp_path / "c.ini"
        p.write_text("[server]\nhost = 10.1.2.3\nport = 4444\n[client]\nport = 5555\n")
        s = load_settings(config=str(p))
        assert (s.host, s.port) == ("10.1.2.3", 5555)

    @pytest.mark.parametrize("host", ["::", "", "0.0.0.0"])
    def test_wildcards(self, tmp_path, host):
        p = tmp_path / "c.ini"
        p.write_text("[server]\nhost = %s\n" % host)
        assert load_settings(config=str(p)).host == "127.0.0.1"

    def test_explicit_host_port_skip_default_file(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "config.ini").write_text("[server]\nport = not-a-port\ndebug = true\n")
        s = load_settings("h", 5)
        assert (s.host, s.port, s.debug) == ("h", 5, False)
        with pytest.raises(ValueError):
            load_settings()

    def test_explicit_args_win(self, tmp_path):
        p = tmp_path / "c.ini"
        p.write_text("[server]\nhost = h\nport = 1\n")
        s = load_settings("other", 77, str(p))
        assert (s.host, s.port) == ("other", 77)

    def test_debug_enables_logging(self, tmp_path):
        p = tmp_path / "c.ini"
        p.write_text("[server]\ndebug = true\n")
        assert load_settings(config=str(p)).debug
        c = HDF5Client(config=str(p))
        lg = logging.getLogger("hdf5_async")
        assert c.debug and lg.isEnabledFor(logging.DEBUG)
        assert lg.handlers == []  # the application decides where records go
        lg.setLevel(logging.NOTSET)

    def test_bad_port(self, tmp_path):
        p = tmp_path / "c.ini"
        p.write_text("[server]\nport = lots\n")
        with pytest.raises(ValueError, match="port"):
            load_settings(config=str(p))

    def test_missing_explicit_file(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            load_settings(config=str(tmp_path / "nope.ini"))


# --------------------------------------------------------------------------
# against fake servers
# --------------------------------------------------------------------------


async def _read_frame(reader):
    (n,) = struct.unpack(">I", await reader.readexactly(4))
    return msgpack.unpackb(await reader.readexactly(n), raw=False, strict_map_key=False)


def _frame(obj):
    body = msgpack.packb(obj, use_bin_type=True, default=msgpack_numpy.encode)
    return struct.pack(">I", len(body)) + body


async def _fake_server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port


class TestFakeServer:
    def test_replies_matched_by_id_not_order(self):
        async def handler(reader, writer):
            reqs = [await _read_frame(reader) for _ in range(10)]
            for req in reversed(reqs):  # a server that answered out of order
                writer.write(_frame({"id": req["id"], "ok": True, "result": req["path"]}))
            await writer.drain()
            writer.close()

        async def main():
            server, port = await _fake_server(handler)
            async with server:
                async with HDF5Client("127.0.0.1", port, timeout=30) as c:
                    results = await asyncio.gather(*(c._call("read", "/p%d" % i) for i in range(10)))
            assert results == ["/p%d" % i for i in range(10)]

        run(main())

    def test_nil_id_goes_to_oldest_pending(self):
        async def handler(reader, writer):
            await _read_frame(reader)
            await _read_frame(reader)
            writer.write(_frame({"id": None, "ok": False, "error": {"code": "TOO_LARGE", "message": "big"}}))
            await writer.drain()
            writer.close()

        async def main():
            server, port = await _fake_server(handler)
            async with server:
                c = HDF5Client("127.0.0.1", port, timeout=30)
                await c.connect()
                t1 = asyncio.ensure_future(c.ping())
                await asyncio.sleep(0)
                t2 = asyncio.ensure_future(c.ping())
                with pytest.raises(hdf5_async.TooLargeError):
                    await t1
                with pytest.raises(hdf5_async.ConnectionClosedError):
                    await t2
                await c.close()

        run(main())

    def test_drop_fails_every_pending_call(self):
        async def handler(reader, writer):
            for _ in range(5):
                await _read_frame(reader)
            writer.close()

        async def main():
            server, port = await _fake_server(handler)
            async with server:
                c = HDF5Client("127.0.0.1", port, timeout=30)
                await c.connect()
                results = await asyncio.gather(*(c.ping() for _ in range(5)), return_exceptions=True)
                assert all(isinstance(r, hdf5_async.ConnectionClosedError) for r in results), results
                with pytest.raises(hdf5_async.ConnectionClosedError):
                    await c.ping()
                await c.close()
                await c.close()  # idempotent

        run(main())

    def test_close_fails_pending(self):
        async def handler(reader, writer):
            await _read_frame(reader)
            await reader.read()  # never answers

        async def main():
            server, port = await _fake_server(handler)
            async with server:
                c = HDF5Client("127.0.0.1", port, timeout=30)
                await c.connect()
                t = asyncio.ensure_future(c.ping())
                await asyncio.sleep(0)
                await c.close()
                with pytest.raises(hdf5_async.ConnectionClosedError):
                    await t

        run(main())

    def test_errors_and_values(self):
        async def handler(reader, writer):
            while True:
                try:
                    req = await _read_frame(reader)
                except asyncio.IncompleteReadError:
                    break
                if req["op"] == "read" and req["path"] == "/arr":
                    rep = {"id": req["id"], "ok": True, "result": np.arange(3, dtype=">i2")}
                elif req["op"] == "read" and req["path"] == "/s":
                    rep = {"id": req["id"], "ok": True, "result": [["a", "b"], ["c", "d"]]}
                elif req["op"] == "read" and req["path"] == "/scalar":
                    rep = {"id": req["id"], "ok": True, "result": np.float32(2)}
                elif req["op"] in ("write", "update", "append", "insert"):
                    rep = {"id": req["id"], "ok": True, "result": {"shape": [4, 2]}}
                elif req["op"] in ("create_group", "delete"):
                    rep = {"id": req["id"], "ok": True, "result": None}
                else:
                    rep = {"id": req["id"], "ok": False,
                           "error": {"code": "NOT_FOUND", "message": "%s: nothing" % req["path"]}}
                writer.write(_frame(rep))
                await writer.drain()

        async def main():
            server, port = await _fake_server(handler)
            async with server:
                async with HDF5Client("127.0.0.1", port, timeout=30) as c:
                    a = await c.read("/arr")
                    assert a.dtype == np.dtype(">i2") and a.tolist() == [0, 1, 2]
                    s = await c.read("/s")
                    assert s.dtype == object and s.shape == (2, 2) and s[1, 0] == "c"
                    x = await c.read("/scalar")
                    assert type(x) is np.float32 and x == 2
                    assert await c.write("/w", [1, 2]) == (4, 2)
                    assert await c.update("/w", [1, 2]) == (4, 2)
                    assert await c.append("/w", [1, 2]) == (4, 2)
                    assert await c.insert("/w", 0, [1, 2]) == (4, 2)
                    assert await c.create_group("/g") is None
                    assert await c.delete("/g") is None
                    with pytest.raises(hdf5_async.NotFoundError) as ei:
                        await c.read("/missing")
                    assert ei.value.code == "NOT_FOUND" and "/missing" in ei.value.message
                    with pytest.raises(TypeError):
                        await c.write("/w", object())
                    with pytest.raises(TypeError):
                        await c.read(5)
                    with pytest.raises(TypeError):
                        await c.insert("/w", 1.5, [1])
                    # the connection is still fine after client-side refusals
                    assert (await c.read("/arr")).tolist() == [0, 1, 2]

        run(main())

    def test_timeout_then_still_usable(self):
        async def handler(reader, writer):
            await _read_frame(reader)  # never answered
            req = await _read_frame(reader)
            writer.write(_frame({"id": req["id"], "ok": True, "result": "pong"}))
            await writer.drain()
            await reader.read()

        async def main():
            server, port = await _fake_server(handler)
            async with server:
                async with HDF5Client("127.0.0.1", port, timeout=0.2) as c:
                    with pytest.raises(asyncio.TimeoutError):
                        await c.ping()
                    c.timeout = 30
                    assert await c.ping() == "pong"

        run(main())

    def test_not_connected(self):
        async def main():
            c = HDF5Client("127.0.0.1", 1)
            with pytest.raises(hdf5_async.ConnectionClosedError):
                await c.ping()
            await c.close()

        run(main())


def test_package_imports_without_msgpack_numpy():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['msgpack_numpy'] = None\n"
        "import hdf5_async; from hdf5_async import HDF5Client, NotFoundError\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(hdf5_async.__file__)))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_empty_string_arrays_are_refused_before_sending():
    for value in (np.array([], dtype="U3"), np.zeros((0, 2), dtype="U1"),
                  np.array([], dtype=object)):
        with pytest.raises(ValueError, match="empty string arrays"):
            codec.encode_value(value)
