"""The storage thread applies runs of appends together (one H5Dset_extent and
one H5Dwrite per dataset, appends to different datasets gathered across the
run). These tests send whole bursts in one sendall so that they arrive in
one batch, and check that the result is exactly what one-by-one application
in arrival order gives: same rows in the same order, same replies, same
errors."""

import msgpack
import msgpack_numpy
import numpy as np

import h5a_util


def burst(conn, requests):
    """Send all requests in one write, then read one reply per request."""
    frames = bytearray()
    for req in requests:
        body = msgpack.packb(req, default=msgpack_numpy.encode, use_bin_type=True)
        frames += len(body).to_bytes(4, "big") + body
    conn.send_raw(bytes(frames))
    return [conn.recv() for _ in requests]


def row(v, width=4):
    return np.full((1, width), v, dtype="<f8")


def test_interleaved_appends_to_many_datasets_keep_order(server):
    n_dsets, rounds = 8, 50
    reqs = []
    for i in range(rounds):
        for d in range(n_dsets):
            reqs.append({"id": len(reqs), "op": "append", "path": "/b/d%d" % d,
                         "data": row(i * 100 + d)})
    with h5a_util.RawConn(server) as c:
        replies = burst(c, reqs)
    for k, rep in enumerate(replies):
        h5a_util.assert_ok(rep, k)
        # the k-th request is round k // n_dsets of its dataset
        assert rep["result"]["shape"] == [k // n_dsets + 1, 4]
    server.stop()
    with h5a_util.h5open(server.file) as f:
        for d in range(n_dsets):
            col = f["/b/d%d" % d][:, 0]
            assert col.tolist() == [i * 100 + d for i in range(rounds)]


def test_nested_paths_created_in_one_burst_behave_as_in_order(server):
    reqs = [
        {"id": 0, "op": "append", "path": "/n/x", "data": row(1)},  # makes group /n
        {"id": 1, "op": "append", "path": "/n", "data": row(2)},  # /n is a group
        {"id": 2, "op": "append", "path": "/m", "data": row(3)},  # makes dataset /m
        {"id": 3, "op": "append", "path": "/m/y", "data": row(4)},  # /m is a dataset
        {"id": 4, "op": "append", "path": "/m-z", "data": row(5)},
    ]
    with h5a_util.RawConn(server) as c:
        replies = burst(c, reqs)
    h5a_util.assert_ok(replies[0], 0)
    h5a_util.assert_error(replies[1], "NOT_A_DATASET", 1)
    h5a_util.assert_ok(replies[2], 2)
    h5a_util.assert_error(replies[3], "NOT_A_GROUP", 3)
    h5a_util.assert_ok(replies[4], 4)
    server.stop()
    with h5a_util.h5open(server.file) as f:
        assert f["/n/x"][:, 0].tolist() == [1]
        assert f["/m"][:, 0].tolist() == [3]
        assert "y" not in f["/n"]


def test_a_bad_append_inside_a_run_fails_alone(server):
    reqs = [{"id": i, "op": "append", "path": "/t", "data": row(i)} for i in range(5)]
    reqs.append({"id": 5, "op": "append", "path": "/t", "data": np.array([[b"abc"] * 4])})
    reqs.append({"id": 6, "op": "append", "path": "/t", "data": np.ones((1, 3))})
    reqs += [{"id": i, "op": "append", "path": "/t", "data": row(i)} for i in range(7, 10)]
    with h5a_util.RawConn(server) as c:
        replies = burst(c, reqs)
    for i in list(range(5)) + [7, 8, 9]:
        h5a_util.assert_ok(replies[i], i)
    h5a_util.assert_error(replies[5], "TYPE_MISMATCH", 5)
    h5a_util.assert_error(replies[6], "SHAPE_MISMATCH", 6)
    assert [r["result"]["shape"][0] for r in replies[7:]] == [6, 7, 8]
    server.stop()
    with h5a_util.h5open(server.file) as f:
        assert f["/t"][:, 0].tolist() == [0, 1, 2, 3, 4, 7, 8, 9]


def test_a_read_between_appends_sees_exactly_the_earlier_ones(server):
    reqs = [{"id": i, "op": "append", "path": "/r", "data": row(i)} for i in range(3)]
    reqs.append({"id": 3, "op": "read", "path": "/r"})
    reqs += [{"id": i, "op": "append", "path": "/r", "data": row(i)} for i in range(4, 6)]
    with h5a_util.RawConn(server) as c:
        frames = bytearray()
        for req in reqs:
            body = msgpack.packb(req, default=msgpack_numpy.encode, use_bin_type=True)
            frames += len(body).to_bytes(4, "big") + body
        c.send_raw(bytes(frames))
        replies = [msgpack.unpackb(c.recv_payload(), object_hook=msgpack_numpy.decode)
                   for _ in reqs]
    assert [r["id"] for r in replies] == list(range(6))
    assert replies[3]["result"][:, 0].tolist() == [0, 1, 2]
    assert replies[5]["result"]["shape"] == [5, 4]


def test_mixed_dtypes_to_one_new_dataset_follow_arrival_order(server):
    # the first append creates the dataset as int64; a float row converts
    reqs = [
        {"id": 0, "op": "append", "path": "/mix", "data": np.array([[1, 2]], dtype="<i8")},
        {"id": 1, "op": "append", "path": "/mix", "data": np.array([[3.5, 4.5]])},
        {"id": 2, "op": "append", "path": "/mix", "data": np.array([[5, 6]], dtype="<i8")},
    ]
    with h5a_util.RawConn(server) as c:
        replies = burst(c, reqs)
    for i, rep in enumerate(replies):
        h5a_util.assert_ok(rep, i)
    server.stop()
    with h5a_util.h5open(server.file) as f:
        assert f["/mix"].dtype == np.dtype("<i8")
        assert f["/mix"][:].tolist() == [[1, 2], [3, 4], [5, 6]]


def test_a_client_that_resets_with_replies_pending_harms_nobody(server):
    """The server must survive writing to a reset connection (EPIPE, not a
    fatal SIGPIPE) and keep serving the others."""
    import socket
    import struct

    ping = msgpack.packb({"id": 1, "op": "ping"})
    frames = (struct.pack(">I", len(ping)) + ping) * 5000
    for linger in (False, True, False, True):
        s = socket.create_connection(server.address)
        s.sendall(frames)
        s.recv(1)
        # close (unread replies make it a reset; or an explicit one) while
        # thousands of replies are still owed
        if linger:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    with h5a_util.RawConn(server) as c:
        h5a_util.assert_ok(c.call({"id": 9, "op": "ping"}), 9)
    assert server.proc.poll() is None
