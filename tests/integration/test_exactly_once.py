"""Exactly-once requests (client_id + seq): a repeat gets the first result
and is not applied again, also after kill -9 and restart, after a clean
restart (the table's snapshot), and when the repeat arrives in the same
burst as the original; a seq below the window gets SEQ_TOO_OLD; the table
stays bounded (dedup_max_clients)."""

import os
import re
import signal

import h5py
import msgpack
import msgpack_numpy
import numpy as np
import pytest

import h5a_util
from h5a_util import RawConn, assert_error, assert_ok


def pack(req):
    body = msgpack.packb(req, default=msgpack_numpy.encode, use_bin_type=True)
    return len(body).to_bytes(4, "big") + body


def burst(conn, reqs):
    conn.send_raw(b"".join(pack(r) for r in reqs))
    return [conn.recv(object_hook=msgpack_numpy.decode) for _ in reqs]


def app(i, cid, seq, path="/a", **kw):
    r = {"id": i, "op": "append", "path": path, "data": np.full((1, 2), seq, dtype="<i8"),
         "client_id": cid, "seq": seq}
    r.update(kw)
    return r


def rows(path, name="/a"):
    with h5py.File(path, "r") as f:
        return f[name][:, 0].tolist() if name in f else []


def test_repeat_gets_first_result_and_is_not_applied(server):
    with RawConn(server) as c:
        r1 = burst(c, [app(1, "c1", 1), app(2, "c1", 2)])
        r2 = burst(c, [app(3, "c1", 2), app(4, "c1", 1), app(5, "c1", 3)])
    assert [r["result"]["shape"] for r in r1] == [[1, 2], [2, 2]]
    # repeats answer with the first result, under their own id
    assert r2[0] == {"id": 3, "ok": True, "result": {"shape": [2, 2]}}
    assert r2[1] == {"id": 4, "ok": True, "result": {"shape": [1, 2]}}
    assert r2[2]["result"]["shape"] == [3, 2]
    server.stop()
    assert rows(server.file) == [1, 2, 3]


def test_repeat_in_the_same_burst_applied_once(server):
    """The storage thread gathers appends of one burst into one write: a
    repeat right behind its original must still see it."""
    reqs = [app(i, "b", s) for i, s in enumerate([1, 2, 2, 3, 1, 3, 4])]
    with RawConn(server) as c:
        reps = burst(c, reqs)
    for r in reps:
        assert_ok(r)
    assert [r["result"]["shape"][0] for r in reps] == [1, 2, 2, 3, 1, 3, 4]
    server.stop()
    assert rows(server.file) == [1, 2, 3, 4]


def test_clients_are_apart_and_reads_are_not_remembered(server):
    with RawConn(server) as c:
        burst(c, [app(1, "x", 1), app(2, "y", 1)])
        r = burst(c, [app(3, "x", 1), app(4, "y", 1), app(5, "z", 1)])
        assert [x["result"]["shape"][0] for x in r] == [1, 2, 3]
        rd = c.call({"id": 6, "op": "read", "path": "/a", "client_id": "x", "seq": 2},
                    object_hook=msgpack_numpy.decode)
        assert_ok(rd)
        # seq 2 was a read: not remembered, so an append with seq 2 is new
        r = burst(c, [app(7, "x", 2)])
        assert r[0]["result"]["shape"][0] == 4


def test_failed_request_is_not_remembered(server):
    with RawConn(server) as c:
        burst(c, [app(1, "f", 1)])
        bad = app(2, "f", 2)
        bad["data"] = np.ones((1, 3))
        assert_error(burst(c, [bad])[0], "SHAPE_MISMATCH")
        # the resend of a failed request is applied (it never was)
        assert burst(c, [app(3, "f", 2)])[0]["result"]["shape"][0] == 2


def test_seq_below_the_window(start_server):
    srv = start_server(server_opts={"dedup_window": 4})
    with RawConn(srv) as c:
        burst(c, [app(i, "w", i) for i in range(1, 11)])
        r = burst(c, [app(20, "w", 6), app(21, "w", 7), app(22, "w", 10), app(23, "w", 11)])
    assert_error(r[0], "SEQ_TOO_OLD")
    assert "not applied again" in r[0]["error"]["message"]
    assert r[1]["result"]["shape"][0] == 7 and r[2]["result"]["shape"][0] == 10 and r[3]["result"]["shape"][0] == 11
    srv.stop()
    assert rows(srv.file) == list(range(1, 12))


@pytest.mark.parametrize("bad,why", [
    ({"client_id": "c"}, "go together"),
    ({"seq": 1}, "go together"),
    ({"client_id": "", "seq": 1}, "1 to 64"),
    ({"client_id": "x" * 65, "seq": 1}, "1 to 64"),
    ({"client_id": 5, "seq": 1}, "1 to 64"),
    ({"client_id": "c", "seq": -1}, "unsigned"),
])
def test_bad_client_id_or_seq(server, bad, why):
    req = {"id": 1, "op": "append", "path": "/a", "data": np.ones((1, 2))}
    req.update(bad)
    with RawConn(server) as c:
        r = burst(c, [req])[0]
    assert_error(r, "BAD_REQUEST")
    assert why in r["error"]["message"]
    server.stop()
    assert rows(server.file) == []


@pytest.mark.parametrize("level", ["flush", "fsync"])
def test_table_survives_kill_9(start_server, level):
    srv = start_server(server_opts={"durability": level})
    with RawConn(srv) as c:
        first = burst(c, [app(i, "k", i) for i in range(1, 6)])
    srv.kill()
    srv2 = start_server(workdir=srv.workdir, server_opts={"durability": level})
    with RawConn(srv2) as c:
        again = burst(c, [app(i, "k", i) for i in range(1, 7)])
    assert [r["result"] for r in again[:5]] == [r["result"] for r in first]
    assert again[5]["result"]["shape"][0] == 6
    srv2.stop()
    assert rows(srv2.file) == [1, 2, 3, 4, 5, 6]


def test_table_survives_clean_restart_and_checkpoints(start_server):
    """A clean stop checkpoints (the log is removed): the table lives on in
    FILE.dedup. Several restarts, kills in between."""
    srv = start_server()
    with RawConn(srv) as c:
        burst(c, [app(i, "s", i) for i in range(1, 4)])
    srv.stop()
    assert os.path.exists(srv.file + ".dedup")
    srv = start_server(workdir=srv.workdir)
    with RawConn(srv) as c:
        r = burst(c, [app(i, "s", i) for i in range(1, 5)])
        c.call({"id": 9, "op": "ping", "durability": "fsync"})
    assert [x["result"]["shape"][0] for x in r] == [1, 2, 3, 4]
    srv.kill()
    srv = start_server(workdir=srv.workdir)
    with RawConn(srv) as c:
        r = burst(c, [app(i, "s", i) for i in range(1, 6)])
    assert [x["result"]["shape"][0] for x in r] == [1, 2, 3, 4, 5]
    srv.stop()
    assert rows(srv.file) == [1, 2, 3, 4, 5]


def test_new_file_forgets_an_earlier_files_table(start_server, tmp_path):
    srv = start_server()
    with RawConn(srv) as c:
        burst(c, [app(1, "n", 1)])
    srv.stop()
    os.unlink(srv.file)
    srv = start_server(workdir=srv.workdir)
    with RawConn(srv) as c:
        r = burst(c, [app(1, "n", 1)])
    assert r[0]["result"]["shape"][0] == 1
    srv.stop()
    assert rows(srv.file) == [1]


def test_table_bounded_by_max_clients(start_server):
    """100k client_ids, at most dedup_max_clients kept: memory stays
    bounded (the soak test measures RSS); the oldest clients are forgotten
    first."""
    srv = start_server(server_opts={"dedup_max_clients": 1000})
    n = 100000
    with RawConn(srv) as c:
        step = 5000
        for base in range(0, n, step):
            reps = burst(c, [{"id": i, "op": "create_group", "path": "/g",
                              "client_id": "cid-%d" % i, "seq": 1}
                             if i == 0 else
                             {"id": i, "op": "set_attr", "path": "/", "name": "a",
                              "data": i, "client_id": "cid-%d" % i, "seq": 1}
                             for i in range(base, base + step)])
            for r in reps:
                assert_ok(r)
        # the newest is remembered, the oldest forgotten (applied again)
        r = burst(c, [{"id": 1, "op": "set_attr", "path": "/", "name": "a", "data": -1,
                       "client_id": "cid-%d" % (n - 1), "seq": 1}])
        assert_ok(r[0])
        stats = open("/proc/%d/status" % srv.proc.pid).read()
        # the memory report (SIGUSR1) counts the table: at most 1000 clients
        srv.proc.send_signal(signal.SIGUSR1)
        report = []
        for i in range(100000):  # printed between two rounds of the storage thread
            c.call({"id": 2, "op": "ping"})
            report = [ln for ln in open(srv.stderr_path).read().splitlines()
                      if "exactly-once table" in ln]
            if report:
                break
    assert report, "no memory report"
    clients = int(re.search(r"exactly-once table [0-9.]+ MiB \((\d+) clients", report[-1]).group(1))
    assert 0 < clients <= 1000
    rss = int([l for l in stats.splitlines() if l.startswith("VmRSS")][0].split()[1])
    print("server RSS after 100k client_ids (dedup_max_clients 1000): %d KiB" % rss)
    sanitized = os.environ.get("H5A_SANFLAGS") or "asan" in h5a_util.server_binary()
    if not sanitized:  # ASan's quarantine keeps freed memory resident
        assert rss < 200 * 1024, "RSS %d KiB with 100k client_ids" % rss
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        assert f.attrs["a"] == n - 1  # the repeat was not applied


def test_table_bounded_by_bytes(start_server):
    """dedup_max_bytes: past it the least recently used clients go."""
    srv = start_server(server_opts={"dedup_max_bytes": "1M"})
    with RawConn(srv) as c:
        for k in range(8):
            for base in range(1, 4001, 1000):
                for r in burst(c, [app(i, "big%d" % k, i) for i in range(base, base + 1000)]):
                    assert_ok(r)
        srv.proc.send_signal(signal.SIGUSR1)
        report = []
        for i in range(100000):
            c.call({"id": 2, "op": "ping"})
            report = [ln for ln in open(srv.stderr_path).read().splitlines()
                      if "exactly-once table" in ln]
            if report:
                break
        m = re.search(r"exactly-once table ([0-9.]+) MiB \((\d+) clients", report[-1])
        assert float(m.group(1)) <= 1.1 and 0 < int(m.group(2)) < 8
        # the newest client is remembered, the oldest forgotten: applied again
        assert burst(c, [app(1, "big7", 4000)])[0]["result"]["shape"][0] == 32000
        assert burst(c, [app(1, "big0", 4000)])[0]["result"]["shape"][0] == 32001


def test_table_survives_compact_and_a_kill_after_it(start_server):
    srv = start_server()
    with RawConn(srv) as c:
        burst(c, [app(i, "cp", i) for i in range(1, 4)])
        assert_ok(c.call({"id": 9, "op": "compact"}))
        r = burst(c, [app(i, "cp", i) for i in range(1, 5)])
        assert [x["result"]["shape"][0] for x in r] == [1, 2, 3, 4]
    srv.kill()
    srv = start_server(workdir=srv.workdir)
    with RawConn(srv) as c:
        r = burst(c, [app(i, "cp", i) for i in range(1, 6)])
    assert [x["result"]["shape"][0] for x in r] == [1, 2, 3, 4, 5]
    srv.stop()
    assert rows(srv.file) == [1, 2, 3, 4, 5]
