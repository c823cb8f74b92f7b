"""Variable-length strings keep their character set: HDF5's H5Tequal does not
compare it, so the server must (found by the engine fuzzer)."""

import h5a_util


def test_str_over_bytes_replaces_the_dataset_and_reads_back_as_str(server):
    with h5a_util.RawConn(server) as c:
        h5a_util.assert_ok(c.call({"id": 1, "op": "write", "path": "/s", "data": b"raw"}), 1)
        h5a_util.assert_ok(c.call({"id": 2, "op": "write", "path": "/s", "data": "text"}), 2)
        assert h5a_util.assert_ok(c.call({"id": 3, "op": "read", "path": "/s"}), 3) == "text"
        h5a_util.assert_ok(c.call({"id": 4, "op": "write", "path": "/l", "data": ["a", "b"]}), 4)
        h5a_util.assert_ok(c.call({"id": 5, "op": "write", "path": "/l", "data": [b"c", b"d"]}), 5)
        assert h5a_util.assert_ok(c.call({"id": 6, "op": "read", "path": "/l"}), 6) == [b"c", b"d"]
    server.stop()
    with h5a_util.h5open(server.file) as f:
        assert f["/s"].id.get_type().get_cset() == 1  # UTF-8
        assert f["/l"].id.get_type().get_cset() == 0  # ASCII


def test_appending_the_other_character_set_is_a_type_mismatch(server):
    with h5a_util.RawConn(server) as c:
        h5a_util.assert_ok(c.call({"id": 1, "op": "append", "path": "/a", "data": ["x"]}), 1)
        h5a_util.assert_error(
            c.call({"id": 2, "op": "append", "path": "/a", "data": [b"y"]}), "TYPE_MISMATCH", 2)
        h5a_util.assert_ok(c.call({"id": 3, "op": "append", "path": "/a", "data": ["z"]}), 3)
        assert h5a_util.assert_ok(c.call({"id": 4, "op": "read", "path": "/a"}), 4) == ["x", "z"]
