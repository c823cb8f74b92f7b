#!/usr/bin/python3
"""Soak test of hdf5-async-server: many connections under a mixed load for a
long time, with misbehaving clients alongside, then an exact check of the file.

    /usr/bin/python3 tests/soak/soak.py --seconds 300 --conns 400
    make soak [SOAK_SECONDS=300] [SOAK_CONNS=400]      make soak-smoke

The server is $H5A_SERVER (default build/hdf5-async-server), started like the
integration tests start it (tests/integration/h5a_util.py: port 0, temp
file, wait for "listening"), with short idle/slow-client limits so that the
misbehaving clients are dealt with many times during the run.

Good clients (--conns connections, held for the whole run; every 4th one
pipelines up to --window requests) each:
  * append rows (writer id, request id, row-in-batch) to four shared datasets
    (int64 gzip, float64 lzf, a compound, an int32 one fed int64 rows), and
    rows to a log dataset of their own, which they also insert into, read,
    and now and then replace by a shorter `write` (so the next append/insert
    converts it back to a resizable dataset);
  * write/update (in place or replacing: several dtypes and shapes,
    compressions), read, and delete a dataset of their own; create groups
    holding a small dataset and delete them; ping; every 8th also writes and
    reads a 128-768 KB dataset;
  * send requests that must fail with a given code (NOT_FOUND, OUT_OF_RANGE,
    SHAPE_MISMATCH, TYPE_MISMATCH, EXISTS, NOT_A_GROUP, NOT_A_DATASET,
    BAD_PATH, UNKNOWN_OP), and must change nothing.
  * put a `durability` level (none/flush/fsync) on 8% of requests, and
    "fsync" on a tenth of the pings (a barrier).
Each connection keeps a model of what it owns, updated when a request is
sent (requests on one connection apply in order): every reply must come, in
order, with the request's id, ok or exactly the expected error, and every
read must equal the model. A shared-dataset append's reply gives the new
length L: its n rows must end up at rows [L-n, L), which, with the row
count, pins the whole content (and so each writer's order) exactly. A
reader task reads the shared datasets during the run and checks every batch
acknowledged before the read is there, in its place.

Bad clients loop alongside: garbage payloads, non-map and id-less requests,
oversized and zero length prefixes, half a frame then stall, idle
connections, clients that pipeline reads and never read the replies, frames
sent a byte at a time, and connections dropped (FIN or RST) in the middle of
a frame or with replies in flight. Each must get what docs/protocol.md
section 8 promises (an error reply with id nil, the connection kept or
closed; EOF after idle_timeout; a "dropped conn" log line for the
non-reader). None of them may change the file (everything they would write
is under /bad, which must not exist at the end).

The server's RSS (/proc/PID/status VmRSS) is sampled every few seconds.
Memory rule (asserted): with T the load duration, B = the highest RSS in
[0.2 T, 0.5 T] (the first half, after warm-up) and P = the highest RSS in
the last quarter [0.75 T, T], require P <= 1.25 * B + 16 MiB, and the
second half's least-squares slope times T/2 (its rise) at most
0.05 * B + 24 MiB. A leak grows
with traffic, so its peak keeps rising through the second half; the HDF5
caches, the write-ahead log's pages, the allocator's arenas (bounded by
allocator_cache while busy) and the recycled buffers reach their level
within the first half, and the allowance keeps allocator noise and one
extra large frame from failing the run. It is a statement
about memory, not about time: nothing in the soak asserts how fast anything
happened.

At the end every client closes, the server's open descriptors must come back
to their count before the load, SIGTERM must make it exit 0 with no sanitizer
report, and the file (opened with h5py) must contain exactly what the
acknowledged operations imply: the same set of objects, each dataset with
the expected dtype, shape and bytes.

Exit status 0 on PASS, 1 on FAIL.
"""

import argparse
import asyncio
import collections
import os
import random
import re
import resource
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import h5a_util  # noqa: E402  (also puts python/ on sys.path)

import h5py  # noqa: E402
import msgpack  # noqa: E402
import numpy as np  # noqa: E402
from hdf5_async import codec  # noqa: E402

MiB = 1 << 20
REPLY_GUARD = 120.0  # seconds without the oldest reply = lost (a hang guard, not a timing check)
BAD_GUARD = 60.0  # hang guard for the bad clients' expected outcome

_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack

REC_DT = np.dtype([("w", "<i4"), ("s", "<i8"), ("k", "<u2")])
W_REC_DT = np.dtype([("a", "<i4"), ("b", "<f8", (2,))])
SHARED = {
    # name: (creation dtype, compression, compression_opts, wire dtype of appended rows)
    "i8": ("<i8", "gzip", 1, "<i8"),
    "f8": ("<f8", "lzf", None, "<f8"),
    "rec": (REC_DT, "none", None, REC_DT),
    "i4": ("<i4", None, None, "<i8"),  # int64 rows converted by HDF5 into int32
}
SHARED_NAMES = list(SHARED)
RO_PATH = "/soak/ro/big256k"
RO_DATA = np.arange(32768, dtype="<f8")  # 256 KiB


def frame(obj):
    body = _packb(obj)
    return struct.pack(">I", len(body)) + body


def wire(arr, nd=True):
    """An ndarray (or 0-d) as the msgpack-numpy map."""
    arr = np.asarray(arr)
    if not arr.flags.c_contiguous:
        arr = arr.copy()  # (np.ascontiguousarray would make a 0-d array 1-d)
    dt = arr.dtype
    typ = dt.descr if dt.names else dt.str
    if not nd:
        return {"nd": False, "type": typ, "data": arr.tobytes()}
    return {"nd": True, "type": typ, "kind": "V" if dt.names else "", "shape": list(arr.shape),
            "data": arr.tobytes()}


def same_array(got, exp):
    """None when `got` (a decoded read result) equals ndarray `exp` exactly."""
    if isinstance(exp, list):  # variable-length strings
        if got != exp:
            return "strings differ: got %r, expected %r" % (got, exp)
        return None
    try:
        g = np.asarray(codec.decode_value(got))
    except Exception as e:  # noqa: BLE001
        return "undecodable read result %r: %s" % (str(got)[:200], e)
    if g.dtype != exp.dtype or g.shape != exp.shape:
        return "got dtype %s shape %s, expected %s %s" % (g.dtype, g.shape, exp.dtype, exp.shape)
    if g.tobytes() != exp.tobytes():
        return "same dtype/shape %s %s but different bytes" % (exp.dtype, exp.shape)
    return None


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# --------------------------------------------------------------------------
# shared datasets: the model and its check
# --------------------------------------------------------------------------


class SharedModel:
    """One shared dataset: row 0 is the setup marker (-1, 0, 0); every
    acknowledged append is (end L, n rows, writer, request id)."""

    def __init__(self, name):
        self.name = name
        self.L, self.n, self.w, self.s = [1], [1], [-1], [0]  # the marker as a batch
        self.sent_rows = 1  # rows of every append sent so far (marker included)
        self.indoubt_rows = 0  # rows of appends sent on connections that were lost

    def ack(self, L, n, w, s):
        self.L.append(L)
        self.n.append(n)
        self.w.append(w)
        self.s.append(s)

    def verify(self, w, s, k, upto=None, final=False):
        """Check rows (arrays w, s, k) against the first `upto` acked batches.
        Returns a list of problems."""
        upto = len(self.L) if upto is None else upto
        L = np.asarray(self.L[:upto], dtype=np.int64)
        n = np.asarray(self.n[:upto], dtype=np.int64)
        bw = np.asarray(self.w[:upto], dtype=np.int64)
        bs = np.asarray(self.s[:upto], dtype=np.int64)
        nrows = len(w)
        acked_rows = int(n.sum())
        errs = []
        if L.size and int(L.max()) > nrows:
            errs.append("%s: %d rows, but an append was acknowledged with length %d"
                        % (self.name, nrows, int(L.max())))
            return errs
        total = acked_rows
        start = np.repeat(L - n, n)
        within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        pos = start + within
        exp_w, exp_s = np.repeat(bw, n), np.repeat(bs, n)
        exp_k = within.copy()
        exp_k[:1] = 0  # the marker's k
        bad = (w[pos] != exp_w) | (s[pos] != exp_s) | (k[pos] != exp_k)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            p = int(pos[i])
            errs.append("%s: %d acknowledged rows not where their append's reply put them; "
                        "first at row %d: got (%d, %d, %d), expected (%d, %d, %d)"
                        % (self.name, int(bad.sum()), p, w[p], s[p], k[p],
                           exp_w[i], exp_s[i], exp_k[i]))
        if len(np.unique(pos)) != total:
            errs.append("%s: two acknowledged appends claim the same rows" % self.name)
        if final:
            lo, hi = acked_rows, acked_rows + self.indoubt_rows
            if not lo <= nrows <= hi:
                errs.append("%s: %d rows, expected %d (acknowledged)%s"
                            % (self.name, nrows, lo, " to %d" % hi if hi != lo else ""))
        elif nrows > self.sent_rows:
            errs.append("%s: %d rows, more than the %d ever sent" % (self.name, nrows, self.sent_rows))
        return errs


def shared_columns(arr):
    """(w, s, k) int64 columns of a shared dataset's rows."""
    if arr.dtype.names:
        return (arr["w"].astype(np.int64), arr["s"].astype(np.int64), arr["k"].astype(np.int64))
    a = arr.astype(np.int64)
    return a[:, 0], a[:, 1], a[:, 2]


def shared_rows(name, cid, seq, n):
    wdt = SHARED[name][3]
    if isinstance(wdt, np.dtype) and wdt.names:
        a = np.zeros(n, dtype=wdt)
        a["w"], a["s"], a["k"] = cid, seq, np.arange(n)
        return a
    a = np.empty((n, 3), dtype=wdt)
    a[:, 0], a[:, 1], a[:, 2] = cid, seq, np.arange(n)
    return a


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------


class Stats:
    def __init__(self):
        self.requests = collections.Counter()  # wire op -> requests sent
        self.durability = collections.Counter()  # level asked for (good clients)
        self.replies = 0
        self.ok = 0
        self.expected_err = collections.Counter()
        self.unexpected_err = collections.Counter()
        self.failures = []
        self.nfail = 0
        self.lat_max = 0.0
        self.lat_over_1s = 0
        self.bad_served = collections.Counter()
        self.bad_failed = collections.Counter()
        self.bad_notes = collections.defaultdict(list)  # kind -> seconds until closed
        self.shared_reads = 0
        self.rows_read_back = 0
        self.exactly_once = 0  # requests sent with client_id and seq

    def fail(self, msg):
        self.nfail += 1
        if len(self.failures) < 60:
            self.failures.append(msg)


# --------------------------------------------------------------------------
# good clients
# --------------------------------------------------------------------------


class Pending:
    __slots__ = ("rid", "op", "expect", "check", "t0")

    def __init__(self, rid, op, expect, check, t0):
        self.rid, self.op, self.expect, self.check, self.t0 = rid, op, expect, check, t0


class Good(asyncio.Protocol):
    LOG_CAP = 1200  # rows: past this the log is replaced by a shorter write

    def __init__(self, soak, cid, window):
        self.soak, self.cid, self.window = soak, cid, window
        self.stats = soak.stats
        self.rng = random.Random(soak.seed * 100003 + cid)
        self.nrng = np.random.default_rng(soak.seed * 100003 + cid)
        self.transport = None
        self.buf = bytearray()
        self.pending = collections.deque()
        self.next_rid = 0
        self.waiter = None
        self.lost = None
        self.broken = False  # stopped after an unexpected reply: model not trusted
        self.base = "/soak/c%d" % cid
        self.client_id = "soak-%d-%d" % (soak.seed, cid)  # exactly-once: this conn's id
        self.seq = 0
        self.area = False  # has anything been created under base
        self.log = None  # ndarray (n, 3) int64, or None when there is no log yet
        self.w = None  # what /w holds (ndarray or list of str), None when absent
        self.w_spec = None
        self.big = None
        self.tmp = False
        self.groups = {}  # j -> ndarray of tmp/g{j}/d
        self.next_group = 0
        self.last_len = {}  # shared name -> length of its last append reply
        self.sent_batches = collections.defaultdict(int)  # shared name -> rows sent but unacked
        self.has_big = cid % 8 == 0
        kinds = [("append_shared", 30), ("append_log", 12), ("insert_log", 6), ("read_log", 8),
                 ("write_w", 8), ("read_w", 5), ("delete_w", 1), ("group_create", 4),
                 ("group_delete", 3), ("tmp_delete", 0.3), ("ping", 8), ("expected_error", 3),
                 ("read_ro", 0.4)]
        if self.has_big:
            kinds += [("big_write", 1.5), ("big_read", 1)]
        self.kinds = [k for k, _ in kinds]
        self.cum = list(np.cumsum([w for _, w in kinds]))

    # ---- protocol callbacks

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buf = self.buf
        buf += data
        pos, end = 0, len(buf)
        got = False
        while end - pos >= 4:
            n = int.from_bytes(buf[pos:pos + 4], "big")
            if end - pos - 4 < n:
                break
            payload = bytes(buf[pos + 4:pos + 4 + n])
            pos += 4 + n
            self.on_reply(payload)
            got = True
        if pos:
            del buf[:pos]
        if got:
            self.wake()

    def connection_lost(self, exc):
        self.lost = exc or EOFError("EOF")
        self.wake()

    def wake(self):
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result(None)

    # ---- requests and replies

    DURABILITY = ("none", "none", "none", "flush", "flush", "fsync")

    def send(self, req, expect=None, check=None):
        rid = self.next_rid
        self.next_rid += 1
        req["id"] = rid
        # exactly-once: a third of the requests carry client_id and seq --
        # mostly a client_id never seen before (the table grows until
        # dedup_max_clients, then forgets the oldest: its memory must stay
        # flat), else this connection's own with the next seq
        if expect is None and self.rng.random() < 0.3:
            if self.rng.random() < 0.8:
                req["client_id"], req["seq"] = "soak-%016x" % self.rng.getrandbits(64), 1
            else:
                self.seq += 1
                req["client_id"], req["seq"] = self.client_id, self.seq
            self.stats.exactly_once += 1
        if "durability" not in req and self.rng.random() < 0.08:
            req["durability"] = self.rng.choice(self.DURABILITY)
        self.stats.durability[req.get("durability", "default")] += 1
        self.transport.write(frame(req))
        self.pending.append(Pending(rid, req["op"], expect, check, time.monotonic()))
        self.stats.requests[req["op"]] += 1
        return rid

    def fail(self, msg):
        self.stats.fail("conn %d: %s" % (self.cid, msg))
        self.broken = True

    def on_reply(self, payload):
        st = self.stats
        st.replies += 1
        try:
            rep = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as e:  # noqa: BLE001
            self.fail("undecodable reply: %s" % e)
            return
        if not self.pending:
            self.fail("reply with no request pending: %r" % (str(rep)[:200],))
            return
        p = self.pending.popleft()
        dt = time.monotonic() - p.t0
        if dt > st.lat_max:
            st.lat_max = dt
        if dt > 1.0:
            st.lat_over_1s += 1
        if not isinstance(rep, dict) or rep.get("id") != p.rid:
            self.fail("reply out of order: expected id %d (%s), got %r"
                      % (p.rid, p.op, str(rep)[:200]))
            return
        if rep.get("ok") is True:
            if list(rep) != ["id", "ok", "result"]:
                self.fail("malformed ok reply %r" % (str(rep)[:200],))
            elif p.expect is not None:
                st.unexpected_err["ok instead of " + p.expect] += 1
                self.fail("%s id %d: ok, expected %s" % (p.op, p.rid, p.expect))
            else:
                st.ok += 1
                if p.check is not None:
                    err = p.check(rep["result"])
                    if err:
                        self.fail("%s id %d: %s" % (p.op, p.rid, err))
            return
        err = rep.get("error") or {}
        code = err.get("code")
        if list(rep) != ["id", "ok", "error"] or not isinstance(err.get("message"), str):
            self.fail("malformed error reply %r" % (str(rep)[:200],))
        elif code == p.expect:
            st.expected_err[code] += 1
        else:
            st.unexpected_err[code] += 1
            self.fail("%s id %d: %s %s (expected %s)"
                      % (p.op, p.rid, code, err.get("message", "")[:300], p.expect or "ok"))

    # ---- the load

    async def run(self):
        loop = asyncio.get_running_loop()
        soak = self.soak
        try:
            while self.lost is None:
                if loop.time() < soak.stop_at and not self.broken:
                    while len(self.pending) < self.window and loop.time() < soak.stop_at:
                        self.next_op()
                elif not self.pending:
                    break
                if not await self.wait_reply():
                    break
        except Exception as e:  # noqa: BLE001 (a bug in the soak itself)
            self.fail("soak client error: %r" % e)
            raise
        finally:
            if self.lost is not None and (self.pending or not soak.stopping_ok):
                self.fail("connection lost (%s) with %d replies missing"
                          % (self.lost, len(self.pending)))
            if self.pending:
                soak.lost_conns += 1
                for name, n in self.sent_batches.items():
                    soak.shared[name].indoubt_rows += n
            self.transport.close()

    async def wait_reply(self):
        """False when the oldest reply did not come within REPLY_GUARD."""
        if not self.pending:
            return True
        oldest = self.pending[0]
        self.waiter = asyncio.get_running_loop().create_future()
        left = REPLY_GUARD - (time.monotonic() - oldest.t0)
        try:
            await asyncio.wait_for(self.waiter, max(left, 0.01))
        except asyncio.TimeoutError:
            if self.pending and self.pending[0] is oldest:
                self.fail("no reply to %s id %d within %.0f s" % (oldest.op, oldest.rid, REPLY_GUARD))
                return False
        return True

    def path(self, rel):
        return self.base + rel

    def next_op(self):
        kind = self.kinds[np.searchsorted(self.cum, self.rng.random() * self.cum[-1], side="right")]
        getattr(self, "op_" + kind)()

    # -- shared appends

    def op_append_shared(self):
        r = self.rng
        name = r.choice(SHARED_NAMES)
        n = r.choice((1, 1, 2, 3, 4, 5, 8)) if r.random() > 0.02 else 64
        rid = self.next_rid
        rows = shared_rows(name, self.cid, rid, n)
        if n == 1 and r.random() < 0.5:  # one row given with one axis fewer
            # (a 0-d compound row may also come as the {"nd": false} scalar form)
            data = wire(rows[0], nd=name != "rec" or r.random() < 0.5)
        else:
            data = wire(rows)
        model = self.soak.shared[name]
        model.sent_rows += n
        self.sent_batches[name] += n
        trail = [] if name == "rec" else [3]

        def check(res, name=name, n=n, rid=rid, model=model, trail=trail):
            self.sent_batches[name] -= n
            shape = res.get("shape") if isinstance(res, dict) else None
            if not shape or shape[1:] != trail:
                return "append to shared %s: result %r" % (name, res)
            L = shape[0]
            prev = self.last_len.get(name, 0)
            if L < prev + n:
                return "append to shared %s: length %d after this connection's previous %d " \
                       "(+%d rows): not in order" % (name, L, prev, n)
            self.last_len[name] = L
            model.ack(L, n, self.cid, rid)
            return None

        self.send({"op": "append", "path": "/soak/shared/" + name, "data": data}, check=check)

    # -- the log

    def log_rows(self, rid, n, tag):
        a = np.empty((n, 3), dtype=np.int64)
        a[:, 0], a[:, 1], a[:, 2] = self.cid, rid, tag + np.arange(n)
        return a

    def shape_check(self, shape):
        shape = list(shape)

        def check(res):
            if res != {"shape": shape}:
                return "result %r, expected shape %r" % (res, shape)
            return None
        return check

    def op_append_log(self):
        r = self.rng
        if self.log is not None and len(self.log) > self.LOG_CAP:
            return self.reset_log()
        n = r.choice((1, 1, 2, 3, 7))
        rid = self.next_rid
        rows = self.log_rows(rid, n, 0)
        # the first append makes the dataset: (n, 3) int64; later ones may
        # give one row with one axis fewer, or other integer types
        if self.log is None:
            data = wire(rows)
        elif n == 1 and r.random() < 0.3:
            data = wire(rows[0])
        elif r.random() < 0.15:
            data = wire(rows.astype("<i4"))  # converted by HDF5
        elif r.random() < 0.05:
            data = wire(rows.astype(">i8"))
        else:
            data = wire(rows)
        self.log = rows if self.log is None else np.concatenate([self.log, rows])
        self.area = True
        req = {"op": "append", "path": self.path("/log"), "data": data}
        if r.random() < 0.1:
            req["compression"] = r.choice(("gzip", "lzf", "none"))  # used only on creation
        self.send(req, check=self.shape_check(self.log.shape))

    def reset_log(self):
        r = self.rng
        keep = r.randint(1, 150)
        self.log = self.log[-keep:].copy()
        req = {"op": r.choice(("write", "update")), "path": self.path("/log"), "data": wire(self.log)}
        c = r.choice((None, None, "gzip", "lzf", "none"))
        if c is not None:
            req["compression"] = c
            if c == "gzip" and r.random() < 0.5:
                req["compression_opts"] = r.randint(0, 9)
        self.send(req, check=self.shape_check(self.log.shape))

    def op_insert_log(self):
        r = self.rng
        if self.log is None:
            return self.op_append_log()
        ln = len(self.log)
        idx = r.randint(-ln, ln)
        at = idx + ln if idx < 0 else idx
        n = r.choice((1, 1, 2, 4))
        rows = self.log_rows(self.next_rid, n, 100)
        self.log = np.concatenate([self.log[:at], rows, self.log[at:]])
        self.send({"op": "insert", "path": self.path("/log"), "index": idx, "data": wire(rows)},
                  check=self.shape_check(self.log.shape))

    def read_check(self, exp):
        st = self.stats

        def check(res):
            err = same_array(res, exp)
            if err is None:
                st.rows_read_back += 1
            return err
        return check

    def op_read_log(self):
        if self.log is None:
            self.send({"op": "read", "path": self.path("/log")}, expect="NOT_FOUND")
        else:
            self.send({"op": "read", "path": self.path("/log")}, check=self.read_check(self.log))

    # -- /w: whole-dataset writes

    W_SPECS = [("<f8", (16,)), ("<f8", (4, 4)), ("<i4", (100,)), ("|u1", (3, 5, 2)),
               (">i8", (7,)), ("<f4", ()), ("|b1", (10,)), ("rec", (5,)), ("|S8", (6,)),
               ("<c16", (4,)), ("str", (5,)), ("<i2", (0,)), ("<f2", (8,))]

    def make_w(self, spec):
        typ, shape = spec
        g = self.nrng
        size = int(np.prod(shape)) if shape else 1
        if typ == "str":
            return ["s%d-%d" % (self.cid, int(x)) for x in g.integers(0, 1 << 30, size)]
        if typ == "rec":
            a = np.zeros(shape, dtype=W_REC_DT)
            a["a"] = g.integers(-1000, 1000, shape)
            a["b"] = g.standard_normal(shape + (2,))
            return a
        dt = np.dtype(typ)
        if dt.kind == "f":
            return g.standard_normal(shape).astype(dt)
        if dt.kind == "c":
            return (g.standard_normal(shape) + 1j * g.standard_normal(shape)).astype(dt)
        if dt.kind == "b":
            return g.integers(0, 2, shape).astype(bool)
        if dt.kind == "S":
            return np.array([b"w%d" % int(x) for x in g.integers(0, 1 << 20, size)],
                            dtype=dt).reshape(shape)
        info = np.iinfo(dt)
        return g.integers(info.min, info.max, shape, dtype=dt.newbyteorder("=")).astype(dt)

    def op_write_w(self):
        r = self.rng
        if self.w_spec is not None and r.random() < 0.4:
            spec = self.w_spec  # same shape and type: written in place
        else:
            spec = r.choice(self.W_SPECS)
        val = self.make_w(spec)
        req = {"op": r.choice(("write", "write", "update")), "path": self.path("/w"),
               "data": val if isinstance(val, list) else wire(val)}
        if spec[1] != () and spec[0] != "str" and r.random() < 0.3:
            req["compression"] = r.choice(("gzip", "lzf", "none"))
        self.w, self.w_spec, self.area = val, spec, True
        self.send(req, check=self.shape_check(spec[1]))

    def op_read_w(self):
        if self.w is None:
            self.send({"op": "read", "path": self.path("/w")}, expect="NOT_FOUND")
        else:
            self.send({"op": "read", "path": self.path("/w")}, check=self.read_check(self.w))

    def op_delete_w(self):
        if self.w is None:
            self.send({"op": "delete", "path": self.path("/w")}, expect="NOT_FOUND")
        else:
            self.w = self.w_spec = None
            self.send({"op": "delete", "path": self.path("/w")}, check=self.none_check)

    @staticmethod
    def none_check(res):
        return None if res is None else "result %r, expected nil" % (res,)

    # -- groups

    def op_group_create(self):
        if len(self.groups) >= 6:
            return self.op_group_delete()
        j = self.next_group
        self.next_group += 1
        g = "/tmp/g%d" % j
        d = np.array([self.cid, j, self.next_rid], dtype="<i8")
        self.send({"op": "create_group", "path": self.path(g)}, check=self.none_check)
        self.send({"op": "write", "path": self.path(g + "/d"), "data": wire(d)},
                  check=self.shape_check((3,)))
        self.groups[j] = d
        self.tmp = self.area = True

    def op_group_delete(self):
        r = self.rng
        if not self.groups or r.random() < 0.1:
            j = self.next_group + 1000  # never made
            self.send({"op": "delete", "path": self.path("/tmp/g%d" % j)}, expect="NOT_FOUND")
            return
        j = r.choice(sorted(self.groups))
        del self.groups[j]
        self.send({"op": "delete", "path": self.path("/tmp/g%d" % j)}, check=self.none_check)

    def op_tmp_delete(self):
        if not self.tmp:
            self.send({"op": "delete", "path": self.path("/tmp")}, expect="NOT_FOUND")
            return
        self.tmp = False
        self.groups.clear()
        self.send({"op": "delete", "path": self.path("/tmp")}, check=self.none_check)

    # -- the rest

    def op_ping(self):
        req = {"op": "ping"}
        if self.rng.random() < 0.1:
            req["durability"] = "fsync"  # a barrier: everything applied so far is on disk
        self.send(req, check=lambda res: None if res == "pong" else "ping: %r" % (res,))

    def op_read_ro(self):
        self.send({"op": "read", "path": RO_PATH}, check=self.read_check(RO_DATA))

    def op_big_write(self):
        n = self.rng.randint(16384, 98304)
        a = np.arange(n, dtype="<f8") + self.next_rid
        self.big, self.area = a, True
        req = {"op": "write", "path": self.path("/big"), "data": wire(a)}
        if self.rng.random() < 0.2:
            req["compression"] = "lzf"
        self.send(req, check=self.shape_check((n,)))

    def op_big_read(self):
        if self.big is None:
            return self.op_big_write()
        self.send({"op": "read", "path": self.path("/big")}, check=self.read_check(self.big))

    def op_expected_error(self):
        r = self.rng
        choices = ["nope", "bad_path", "unknown_op"]
        if self.log is not None:
            choices += ["out_of_range", "shape_mismatch", "type_mismatch", "exists"]
        if self.w is not None:
            choices.append("not_a_group")
        if self.tmp:
            choices.append("not_a_dataset")
        c = r.choice(choices)
        P = self.path
        if c == "nope":
            self.send({"op": r.choice(("read", "delete")), "path": P("/nope")}, expect="NOT_FOUND")
        elif c == "bad_path":
            self.send({"op": "write", "path": P("//x/./y"), "data": [1, 2]}, expect="BAD_PATH")
        elif c == "unknown_op":
            self.send({"op": "frobnicate", "path": P("/log")}, expect="UNKNOWN_OP")
        elif c == "out_of_range":
            ln = len(self.log)
            idx = r.choice((ln + 1 + r.randint(0, 5), -ln - 1 - r.randint(0, 5)))
            self.send({"op": "insert", "path": P("/log"), "index": idx,
                       "data": wire(self.log_rows(0, 1, 0))}, expect="OUT_OF_RANGE")
        elif c == "shape_mismatch":
            self.send({"op": "append", "path": P("/log"), "data": wire(np.zeros((2, 4), "<i8"))},
                      expect="SHAPE_MISMATCH")
        elif c == "type_mismatch":
            self.send({"op": "append", "path": P("/log"), "data": ["a", "b", "c"]},
                      expect="TYPE_MISMATCH")
        elif c == "exists":
            self.send({"op": "create_group", "path": P("/log")}, expect="EXISTS")
        elif c == "not_a_group":
            self.send({"op": "write", "path": P("/w/x"), "data": [1]}, expect="NOT_A_GROUP")
        elif c == "not_a_dataset":
            self.send({"op": "read", "path": P("/tmp")}, expect="NOT_A_DATASET")

    # ---- the final check

    def expected_objects(self):
        """path -> expected value (None for groups)."""
        out = {}
        if not self.area:
            return out
        out[self.base] = None
        if self.log is not None:
            out[self.path("/log")] = self.log
        if self.w is not None:
            out[self.path("/w")] = self.w
        if self.big is not None:
            out[self.path("/big")] = self.big
        if self.tmp:
            out[self.path("/tmp")] = None
            for j, d in self.groups.items():
                out[self.path("/tmp/g%d" % j)] = None
                out[self.path("/tmp/g%d/d" % j)] = d
        return out


# --------------------------------------------------------------------------
# bad clients
# --------------------------------------------------------------------------


async def read_frame(reader):
    (n,) = struct.unpack(">I", await reader.readexactly(4))
    return msgpack.unpackb(await reader.readexactly(n), raw=False, strict_map_key=False)


def is_error(rep, code, rid=None):
    return (isinstance(rep, dict) and list(rep) == ["id", "ok", "error"] and rep["ok"] is False
            and rep["id"] == rid and rep["error"].get("code") == code
            and isinstance(rep["error"].get("message"), str) and rep["error"]["message"])


async def expect_eof(reader, guard):
    """Wait for the server to end the connection. Returns None on EOF or
    reset, else a description of what came instead."""
    try:
        data = await asyncio.wait_for(reader.read(65536), guard)
    except (ConnectionResetError, BrokenPipeError):
        return None
    except asyncio.TimeoutError:
        return "still open after %.0f s" % guard
    if data:
        return "unexpected %d bytes: %r" % (len(data), data[:60])
    return None


def abort_rst(writer):
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class BadClients:
    QUICK = ["garbage", "not_a_map", "no_id", "oversized", "oversized_body", "zero_length",
             "midframe_fin", "midframe_rst", "pipeline_rst"]
    SLOW = ["idle", "half_frame_stall", "never_read", "dribble"]

    def __init__(self, soak):
        self.soak = soak
        self.st = soak.stats
        self.srv = soak.srv
        self.n = 0
        self.drop_port_rx = re.compile(r"dropped conn \d+ 127\.0\.0\.1:(\d+):")

    async def connect(self, rcvbuf=None):
        loop = asyncio.get_running_loop()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(s, self.srv.address), BAD_GUARD)
        except BaseException:
            s.close()
            raise
        return await asyncio.open_connection(sock=s, limit=1 << 22)

    async def ping_ok(self, reader, writer, rid=77):
        writer.write(frame({"id": rid, "op": "ping"}))
        rep = await asyncio.wait_for(read_frame(reader), BAD_GUARD)
        if rep != {"id": rid, "ok": True, "result": "pong"}:
            return "ping after the error: %r" % (rep,)
        return None

    def bad_write_frame(self, size=2000):
        self.n += 1
        data = np.zeros(size // 8, dtype="<f8")
        return frame({"id": self.n, "op": "write", "path": "/bad/w%d" % self.n, "data": wire(data)})

    async def one(self, kind):
        reader, writer = await self.connect(rcvbuf=16384 if kind == "never_read" else None)
        try:
            err = await getattr(self, "k_" + kind)(reader, writer)
        finally:
            writer.transport.abort()
        return err

    async def k_garbage(self, r, w):
        body = b"\xc1" + os.urandom(random.randint(0, 300))  # 0xc1 is never valid MessagePack
        w.write(struct.pack(">I", len(body)) + body)
        rep = await asyncio.wait_for(read_frame(r), BAD_GUARD)
        if not is_error(rep, "PROTOCOL_ERROR"):
            return "garbage: %r" % (rep,)
        return await self.ping_ok(r, w)

    async def k_not_a_map(self, r, w):
        w.write(frame([1, "two", 3.0]))
        rep = await asyncio.wait_for(read_frame(r), BAD_GUARD)
        if not is_error(rep, "BAD_REQUEST"):
            return "not a map: %r" % (rep,)
        return await self.ping_ok(r, w)

    async def k_no_id(self, r, w):
        w.write(frame({"op": "write", "path": "/bad/noid", "data": [1, 2, 3]}))
        rep = await asyncio.wait_for(read_frame(r), BAD_GUARD)
        if not is_error(rep, "BAD_REQUEST"):
            return "no id: %r" % (rep,)
        return await self.ping_ok(r, w)

    async def k_oversized(self, r, w):
        w.write(struct.pack(">I", 0xFFFFFFFF))  # the largest length a prefix can say
        return await self._too_large(r)

    async def k_oversized_body(self, r, w):
        # one byte over the limit, then body bytes the server must not read
        w.write(struct.pack(">I", self.soak.max_message + 1) + os.urandom(4096))
        return await self._too_large(r)

    async def _too_large(self, r):
        try:
            rep = await asyncio.wait_for(read_frame(r), BAD_GUARD)
        except (ConnectionResetError, asyncio.IncompleteReadError) as e:
            return "oversized: no TOO_LARGE reply (%r)" % e
        if not is_error(rep, "TOO_LARGE"):
            return "oversized: %r" % (rep,)
        e = await expect_eof(r, BAD_GUARD)
        return e and "oversized: after the reply " + e

    async def k_zero_length(self, r, w):
        w.write(b"\0\0\0\0")
        rep = await asyncio.wait_for(read_frame(r), BAD_GUARD)
        if not is_error(rep, "PROTOCOL_ERROR"):
            return "zero length: %r" % (rep,)
        e = await expect_eof(r, BAD_GUARD)
        return e and "zero length: after the reply " + e

    async def k_midframe_fin(self, r, w):
        f = self.bad_write_frame(random.randint(100, 8000))
        w.write(f[:random.randint(1, len(f) - 1)])
        await w.drain()
        w.close()
        return None

    async def k_midframe_rst(self, r, w):
        f = self.bad_write_frame(random.randint(100, 200000))
        w.write(f[:random.randint(1, len(f) - 1)])
        await w.drain()
        abort_rst(w)
        return None

    async def k_pipeline_rst(self, r, w):
        reqs = [frame({"id": i, "op": "ping"}) for i in range(50)]
        reqs += [frame({"id": 50 + i, "op": "read", "path": RO_PATH}) for i in range(4)]
        w.write(b"".join(reqs))
        await w.drain()
        await asyncio.sleep(random.random() * 0.01)
        abort_rst(w)
        return None

    async def k_idle(self, r, w):
        t0 = time.monotonic()
        e = await expect_eof(r, self.soak.idle_timeout + BAD_GUARD)
        self.st.bad_notes["idle"].append(time.monotonic() - t0)
        return e and "idle connection: " + e

    async def k_half_frame_stall(self, r, w):
        f = self.bad_write_frame(random.randint(1000, 100000))
        w.write(f[:len(f) // 2])
        await w.drain()
        t0 = time.monotonic()
        e = await expect_eof(r, self.soak.idle_timeout + BAD_GUARD)
        self.st.bad_notes["half_frame_stall"].append(time.monotonic() - t0)
        return e and "half frame: " + e

    async def k_dribble(self, r, w):
        rid = random.randint(0, 1 << 40)
        f = frame({"id": rid, "op": "read", "path": RO_PATH})
        for i in range(len(f)):
            w.write(f[i:i + 1])
            await w.drain()
            await asyncio.sleep(0.05)
        rep = await asyncio.wait_for(read_frame(r), BAD_GUARD)
        if not (isinstance(rep, dict) and rep.get("id") == rid and rep.get("ok") is True):
            return "dribbled read: %r" % (str(rep)[:200],)
        return same_array(rep["result"], RO_DATA)

    async def k_never_read(self, r, w):
        port = w.get_extra_info("sockname")[1]
        # asyncio would otherwise keep reading into the StreamReader's buffer
        w.transport.pause_reading()
        # 32 reads = 8 MiB of replies: more than the socket buffers (the
        # server's send buffer grows to 4 MiB, ours is held at 16 KiB) plus
        # max_reply_queue (1 MiB). All are executed before the server pauses
        # the connection (docs/protocol.md 9a): the server holds ~8 MiB of
        # replies for each such client until it drops it.
        n = 32
        # Only a drop logged after this connection was made is its own: over
        # a long run the kernel gives the same local port to a later client,
        # and an earlier client's line would make this one stop waiting and
        # then (not dropped at all) receive every reply -- what the 30-minute
        # soak saw 4 times ("all 32 replies arrived although it was dropped").
        mark = len(self.soak.stderr_tail())
        w.write(b"".join(frame({"id": i, "op": "read", "path": RO_PATH}) for i in range(n)))
        t0 = time.monotonic()
        deadline = t0 + self.soak.slow_timeout + BAD_GUARD
        while True:
            ports = {int(m.group(1))
                     for m in self.drop_port_rx.finditer(self.soak.stderr_tail()[mark:])}
            if port in ports:
                break
            if time.monotonic() > deadline:
                return "never-read client on port %d not dropped after %.0f s" % (port, deadline - t0)
            await asyncio.sleep(0.25)
        self.st.bad_notes["never_read"].append(time.monotonic() - t0)
        w.transport.resume_reading()
        got = 0
        try:
            while True:
                rep = await asyncio.wait_for(read_frame(r), BAD_GUARD)
                if not (isinstance(rep, dict) and rep.get("id") == got and rep.get("ok") is True):
                    return "never-read: reply %d is %r" % (got, str(rep)[:200])
                got += 1
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
            pass
        except asyncio.TimeoutError:
            return "never-read: connection still open after it was logged as dropped"
        if got >= n:
            return "never-read: all %d replies arrived although it was dropped" % n
        return None

    async def loop(self, kinds, pause):
        soak = self.soak
        loop = asyncio.get_running_loop()
        rng = random.Random()
        while loop.time() < soak.stop_at:
            kind = rng.choice(kinds)
            try:
                err = await self.one(kind)
            except Exception as e:  # noqa: BLE001
                err = "%s: %r" % (kind, e)
            self.st.bad_served[kind] += 1
            if err:
                self.st.bad_failed[kind] += 1
                self.st.fail("bad client %s: %s" % (kind, err))
            await asyncio.sleep(pause)


# --------------------------------------------------------------------------
# the soak
# --------------------------------------------------------------------------


class RssSampler(threading.Thread):
    def __init__(self, pid, every):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples = []  # (t, rss bytes, fds)
        self.t0 = time.monotonic()
        self.stop_ev = threading.Event()

    def sample(self):
        rss = None
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) * 1024
            fds = len(os.listdir("/proc/%d/fd" % self.pid))
        except (FileNotFoundError, ProcessLookupError):
            return None
        s = (time.monotonic() - self.t0, rss, fds)
        self.samples.append(s)
        # the server's own account of its memory (heap in use, what the
        # allocator keeps free, HDF5's caches, the log's pages) into its log
        try:
            os.kill(self.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        return s

    def run(self):
        while not self.stop_ev.wait(self.every):
            self.sample()


MEM_REPORT_RX = re.compile(r"memory: heap in use ([0-9.]+) MiB, kept free by the allocator ([0-9.]+) MiB")


def vm_hwm(pid):
    """The kernel's high-water mark of the process's RSS (bytes)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return None


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Soak:
    def __init__(self, args, srv):
        self.args = args
        self.srv = srv
        self.seed = args.seed
        self.stats = Stats()
        self.shared = {name: SharedModel(name) for name in SHARED}
        self.idle_timeout = args.idle_timeout
        self.slow_timeout = args.slow_timeout
        self.max_message = 16 * MiB
        self.stop_at = float("inf")
        self.stopping_ok = False
        self.lost_conns = 0
        self.conns = []
        self._err_off = 0
        self._err_tail = ""

    def stderr_tail(self):
        """The server's stderr since the start (read incrementally)."""
        try:
            with open(self.srv.stderr_path, "r", errors="replace") as f:
                f.seek(self._err_off)
                chunk = f.read()
                self._err_off = f.tell()
        except FileNotFoundError:
            chunk = ""
        self._err_tail += chunk
        return self._err_tail

    def setup(self):
        with h5a_util.RawConn(self.srv) as c:
            rid = 0
            for name, (dt, comp, opts, _) in SHARED.items():
                marker = shared_rows(name, -1, 0, 1).astype(dt)
                req = {"id": rid, "op": "append", "path": "/soak/shared/" + name, "data": wire(marker)}
                if comp is not None:
                    req["compression"] = comp
                if opts is not None:
                    req["compression_opts"] = opts
                h5a_util.assert_ok(c.call(req), rid)
                rid += 1
            h5a_util.assert_ok(c.call({"id": rid, "op": "write", "path": RO_PATH, "data": wire(RO_DATA)}))

    async def shared_reader(self):
        """Reads the shared datasets during the run: every batch acknowledged
        before the read must be there, where its reply said."""
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection(self.srv.host, self.srv.port, limit=1 << 26)
        rid = 0
        try:
            while loop.time() < self.stop_at:
                await asyncio.sleep(min(3.0, max(0.0, self.stop_at - loop.time())))
                name = SHARED_NAMES[rid % len(SHARED_NAMES)]
                upto = len(self.shared[name].L)
                writer.write(frame({"id": rid, "op": "read", "path": "/soak/shared/" + name}))
                self.stats.requests["read"] += 1
                rep = await asyncio.wait_for(read_frame(reader), REPLY_GUARD)
                self.stats.replies += 1
                if not (isinstance(rep, dict) and rep.get("id") == rid and rep.get("ok") is True):
                    self.stats.fail("shared reader: %r" % (str(rep)[:300],))
                    return
                self.stats.ok += 1
                arr = np.asarray(codec.decode_value(rep["result"]))
                for e in self.shared[name].verify(*shared_columns(arr), upto=upto):
                    self.stats.fail("shared reader (during the run): " + e)
                self.stats.shared_reads += 1
                rid += 1
        except Exception as e:  # noqa: BLE001
            self.stats.fail("shared reader: %r" % e)
        finally:
            writer.close()

    async def progress(self, t_start):
        loop = asyncio.get_running_loop()
        last = 0
        while loop.time() < self.stop_at:
            await asyncio.sleep(min(self.args.progress, max(0.01, self.stop_at - loop.time())))
            st = self.stats
            s = self.sampler.samples[-1] if self.sampler.samples else (0, 0, 0)
            n = sum(st.requests.values())
            print("  t=%5.0fs  requests %9d (%6.0f/s)  replies %9d  failures %d  bad clients %d  "
                  "RSS %.1f MiB  fds %d"
                  % (loop.time() - t_start, n, (n - last) / self.args.progress, st.replies,
                     st.nfail, sum(st.bad_served.values()), (s[1] or 0) / MiB, s[2]), flush=True)
            last = n

    async def main(self):
        args = self.args
        loop = asyncio.get_running_loop()
        # connect every good client first: the load starts when all are open
        for cid in range(args.conns):
            window = args.window if cid % 4 == 3 else 1
            g = Good(self, cid, window)
            await loop.create_connection(lambda g=g: g, self.srv.host, self.srv.port)
            self.conns.append(g)
        t_start = loop.time()
        self.sampler.t0 = time.monotonic()
        self.sampler.samples = []  # the memory rule looks at the load only
        self.stop_at = t_start + args.seconds
        bad = BadClients(self)
        tasks = [asyncio.ensure_future(g.run()) for g in self.conns]
        side = [asyncio.ensure_future(self.shared_reader()),
                asyncio.ensure_future(self.progress(t_start))]
        if not args.no_bad:
            side += [asyncio.ensure_future(bad.loop(BadClients.QUICK, 0.02)) for _ in range(2)]
            side += [asyncio.ensure_future(bad.loop(BadClients.SLOW, 0.1)) for _ in range(6)]
        await asyncio.gather(*tasks, return_exceptions=True)
        self.load_seconds = loop.time() - t_start
        self.load_t1 = time.monotonic() - self.sampler.t0
        self.stopping_ok = True
        await asyncio.gather(*side, return_exceptions=True)
        # let every transport finish closing
        await asyncio.sleep(0.2)


def memory_verdict(samples, T):
    """(ok, text) for the rule in the module docstring."""
    load = [(t, r) for t, r, _ in samples if r is not None and t <= T]
    warm = [r for t, r in load if 0.2 * T <= t <= 0.5 * T]
    last = [r for t, r in load if t >= 0.75 * T]
    if not warm or not last:
        return False, "too few RSS samples (%d) to judge" % len(load)
    B, P = max(warm), max(last)
    limit = 1.25 * B + 16 * MiB
    second = [(t, r) for t, r in load if t >= 0.5 * T]
    slope = 0.0
    if len(second) >= 3:
        ts = np.array([t for t, _ in second])
        rs = np.array([r for _, r in second], dtype=float)
        slope = float(np.polyfit(ts, rs, 1)[0])
    rise = slope * 0.5 * T
    rise_limit = 0.05 * B + 24 * MiB
    text = ("warm level B (max RSS in 20-50%% of the run) %.1f MiB; last-quarter peak P %.1f MiB; "
            "limit 1.25*B+16 MiB = %.1f MiB; second-half slope %+.1f KiB/s, a rise of %+.1f MiB "
            "over the second half (limit 0.05*B+24 MiB = %.1f MiB)"
            % (B / MiB, P / MiB, limit / MiB, slope / 1024, rise / MiB, rise_limit / MiB))
    return P <= limit and rise <= rise_limit, text


def check_file(path, soak):
    """Compare the file with the model. Returns (problems, counts)."""
    errs = []
    expected = {"/soak": None, "/soak/shared": None, "/soak/ro": None, RO_PATH: RO_DATA}
    for name in SHARED:
        expected["/soak/shared/" + name] = "shared"
    skipped = set()
    for g in soak.conns:
        objs = g.expected_objects()
        if g.broken or g.pending:
            skipped.add(g.base)  # its model is not trustworthy; its area is not compared
            continue
        expected.update(objs)
    found = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            found["/" + name] = obj
        f.visititems(visit)
        if "/bad" in found or any(p.startswith("/bad/") for p in found):
            errs.append("/bad exists: a bad client's request was applied")
        got_paths = {p for p in found if not any(p == s or p.startswith(s + "/") for s in skipped)}
        missing = sorted(set(expected) - got_paths)
        extra = sorted(got_paths - set(expected))
        if missing:
            errs.append("%d objects missing, e.g. %s" % (len(missing), missing[:5]))
        if extra:
            errs.append("%d unexpected objects, e.g. %s" % (len(extra), extra[:5]))
        ndatasets = ngroups = 0
        for p, exp in sorted(expected.items()):
            obj = found.get(p)
            if obj is None:
                continue
            if exp is None:
                ngroups += 1
                if not isinstance(obj, h5py.Group):
                    errs.append("%s: expected a group, found %r" % (p, obj))
                continue
            if not isinstance(obj, h5py.Dataset):
                errs.append("%s: expected a dataset, found %r" % (p, obj))
                continue
            ndatasets += 1
            if isinstance(exp, str):  # a shared dataset
                name = p.rsplit("/", 1)[1]
                dt = np.dtype(SHARED[name][0])
                if obj.dtype != dt:
                    errs.append("%s: dtype %s, expected %s" % (p, obj.dtype, dt))
                if obj.maxshape[0] is not None:
                    errs.append("%s: not resizable (maxshape %r)" % (p, obj.maxshape))
                comp = SHARED[name][1]
                if (comp if comp in ("gzip", "lzf") else None) != obj.compression:
                    errs.append("%s: compression %r, expected %r" % (p, obj.compression, comp))
                errs += soak.shared[name].verify(*shared_columns(obj[()]), final=True)
                continue
            if isinstance(exp, list):
                v = obj[()]
                got = [x.decode() if isinstance(x, bytes) else x for x in v.tolist()]
                if got != exp:
                    errs.append("%s: strings %r, expected %r" % (p, got[:3], exp[:3]))
                continue
            v = obj[()]
            v = np.asarray(v)
            if v.dtype != exp.dtype or v.shape != exp.shape or v.tobytes() != exp.tobytes():
                errs.append("%s: dtype %s shape %s, expected %s %s%s"
                            % (p, v.dtype, v.shape, exp.dtype, exp.shape,
                               " (bytes differ)" if v.shape == exp.shape else ""))
    return errs, {"datasets": ndatasets, "groups": ngroups, "skipped_areas": len(skipped)}


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=300, help="duration of the load (default 300)")
    ap.add_argument("--conns", type=int, default=400, help="good connections (default 400)")
    ap.add_argument("--window", type=int, default=16,
                    help="requests in flight on each pipelining connection (every 4th; default 16)")
    ap.add_argument("--idle-timeout", type=int, default=10, help="server idle_timeout (default 10)")
    ap.add_argument("--slow-timeout", type=int, default=5,
                    help="server slow_client_timeout (default 5)")
    ap.add_argument("--sample", type=float, default=None,
                    help="seconds between RSS samples (default: min(3, seconds/40))")
    ap.add_argument("--progress", type=float, default=30, help="seconds between progress lines")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-bad", action="store_true", help="no bad clients")
    ap.add_argument("--workdir", help="keep the server's directory here (default: a temp dir, removed on PASS)")
    args = ap.parse_args()

    have = raise_fd_limit(args.conns + 1000)
    if have < args.conns + 100:
        print("open-files limit %d too low for %d connections" % (have, args.conns))
        return 2
    binary = h5a_util.server_binary()
    tmp = args.workdir or tempfile.mkdtemp(prefix="h5a-soak-")
    server_opts = {"idle_timeout": args.idle_timeout, "slow_client_timeout": args.slow_timeout,
                   "max_reply_queue": "1M", "max_message_size": "16M",
                   # the exactly-once table reaches its bound during the warm-up
                   "dedup_max_clients": 20000}
    print("soak: %s, %d connections, %.0f s, seed %d, dir %s" % (binary, args.conns, args.seconds,
                                                                  args.seed, tmp), flush=True)
    srv = h5a_util.start_server(tmp, server_opts=server_opts)
    soak = Soak(args, srv)
    fails = []
    mem_ok, mem_text = False, "not measured"
    fd_base = fd_count(srv.proc.pid)
    sampler = RssSampler(srv.proc.pid, args.sample or max(0.25, min(3.0, args.seconds / 40)))
    soak.sampler = sampler
    first = sampler.sample()
    sampler.start()
    fd_end = None
    hwm = None
    check_counts = {}
    t_wall = time.monotonic()
    try:
        soak.setup()
        h5a_util.run(soak.main(), timeout=args.seconds + 600)
        sampler.stop_ev.set()
        sampler.join()
        mem_ok, mem_text = memory_verdict(sampler.samples, soak.load_t1)
        if not mem_ok:
            fails.append("memory not flat: " + mem_text)
        # every client is gone: the server's descriptors come back to where they were
        deadline = time.monotonic() + 60
        while True:
            fd_end = fd_count(srv.proc.pid)
            if fd_end <= fd_base or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if fd_end > fd_base:
            fails.append("server holds %d descriptors after every client closed, %d before the load"
                         % (fd_end, fd_base))
        with h5a_util.RawConn(srv) as c:  # still answering
            h5a_util.assert_ok(c.call({"id": 1, "op": "ping"}), 1)
        last = sampler.sample()
        hwm = vm_hwm(srv.proc.pid)
        srv.stop()  # SIGTERM; exit 0 and no sanitizer report, or it raises
        if os.path.exists(srv.file + ".wal"):
            fails.append("%s.wal still exists after a clean shutdown" % srv.file)
        t_check = time.monotonic()
        ferrs, check_counts = check_file(srv.file, soak)
        check_counts["seconds"] = time.monotonic() - t_check
        fails += ["file: " + e for e in ferrs]
    except Exception as e:  # noqa: BLE001
        fails.append("soak aborted: %r" % e)
        last = sampler.samples[-1] if sampler.samples else None
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()

    st = soak.stats
    drops = len(re.findall(r"dropped conn", srv.stderr()))
    if st.nfail:
        fails.insert(0, "%d failures during the load" % st.nfail)
    # -------- summary
    rss = [r for _, r, _ in sampler.samples if r is not None]
    print()
    print("==== soak summary ====")
    print("server         %s (pid %d), file %s" % (binary, srv.proc.pid, srv.file))
    print("duration       %.1f s of load (%.1f s in all)" % (getattr(soak, "load_seconds", 0),
                                                             time.monotonic() - t_wall))
    print("connections    %d good (%d pipelining, window %d), %d lost"
          % (args.conns, len([g for g in soak.conns if g.window > 1]), args.window, soak.lost_conns))
    total = sum(st.requests.values())
    print("requests       %d (%.0f/s): %s" % (total, total / max(getattr(soak, "load_seconds", 1), 1e-9),
                                           ", ".join("%s %d" % kv for kv in st.requests.most_common())))
    print("exactly-once   %d requests with client_id and seq (most of them a new client_id; "
          "the server keeps at most 20000)" % st.exactly_once)
    print("durability     %s (the level asked for; 'default' = none given: the server's key)"
          % ", ".join("%s %d" % kv for kv in st.durability.most_common()))
    print("replies        %d: ok %d, expected errors %d, unexpected errors %d; missing %d"
          % (st.replies, st.ok, sum(st.expected_err.values()), sum(st.unexpected_err.values()),
             total - st.replies))
    print("expected errs  %s" % (", ".join("%s %d" % kv for kv in sorted(st.expected_err.items())) or "-"))
    print("unexpected     %s" % (", ".join("%s %d" % kv for kv in sorted(st.unexpected_err.items())) or "none"))
    print("latency        max %.3f s, %d replies over 1 s (informational)" % (st.lat_max, st.lat_over_1s))
    print("verified       %d reads equal to the model, %d shared-dataset reads during the run"
          % (st.rows_read_back, st.shared_reads))
    print("bad clients    %d served: %s" % (sum(st.bad_served.values()),
                                           ", ".join("%s %d" % kv for kv in sorted(st.bad_served.items())) or "-"))
    if st.bad_failed:
        print("bad failed     %s" % ", ".join("%s %d" % kv for kv in sorted(st.bad_failed.items())))
    for kind, ts in sorted(st.bad_notes.items()):
        print("  %-17s closed after %.1f-%.1f s (median %.1f)" % (kind, min(ts), max(ts), pct(ts, 0.5)))
    print("server log     %d 'dropped conn' lines (never-read clients served: %d)"
          % (drops, st.bad_served.get("never_read", 0)))
    if rss:
        print("RSS            first %.1f MiB, peak %.1f MiB, last %.1f MiB (%d samples, every %.2g s); "
              "VmHWM %s" % ((first[1] if first else rss[0]) / MiB, max(rss) / MiB,
                            ((last[1] if last else rss[-1]) or rss[-1]) / MiB, len(rss),
                            sampler.every, "%.1f MiB" % (hwm / MiB) if hwm else "?"))
    T = getattr(soak, "load_t1", None)
    if T and rss:
        line = []
        for i in range(11):
            near = min(sampler.samples, key=lambda x, t=i * T / 10: abs(x[0] - t))
            line.append("%.0f" % ((near[1] or 0) / MiB))
        print("RSS by tenth   %s MiB (at 0%%, 10%%, ... 100%% of the load)" % " ".join(line))
    reports = MEM_REPORT_RX.findall(srv.stderr())
    if reports:
        def tenths(k):
            return " ".join("%.0f" % float(reports[min(len(reports) - 1, i * (len(reports) - 1) // 10)][k])
                            for i in range(11))
        print("heap by tenth  %s MiB in use (the server's SIGUSR1 report)" % tenths(0))
        print("free by tenth  %s MiB kept free by the allocator" % tenths(1))
        last_line = [l for l in srv.stderr().splitlines() if "hdf5-async-server: memory: " in l]
        if last_line:
            print("last report    %s" % last_line[-1].split("memory: ", 1)[1])
    print("memory         %s: %s" % ("flat" if mem_ok else "NOT FLAT", mem_text))
    print("descriptors    %d before the load, %s after every client closed" % (fd_base, fd_end))
    if check_counts:
        print("file check     %d datasets and %d groups compared (%d connection areas skipped) in %.1f s"
              % (check_counts["datasets"], check_counts["groups"], check_counts["skipped_areas"],
                 check_counts["seconds"]))
    if fails:
        print("failures:")
        for f in fails:
            print("  - " + f)
        for f in st.failures[:40]:
            print("    * " + f)
        print("stderr tail of the server:\n" + srv.stderr()[-3000:])
        print("FAIL (files kept in %s)" % tmp)
        return 1
    print("PASS")
    if not args.workdir:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
