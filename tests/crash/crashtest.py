#!/usr/bin/python3
"""Crash test of hdf5-async-server: kill -9 at random moments under a mixed
load, restart on the same file, check that every acknowledged operation is
there (docs/durability.md).

    /usr/bin/python3 tests/crash/crashtest.py [--rounds 200] [--seed S]
    make crashtest [CRASH_ROUNDS=200] [CRASH_SEED=S]      make crashtest-smoke

The promise under test: whenever the server dies, starting it again brings
the file back, by itself (no h5clear), to a consistent state -- the state
after some prefix of the order in which the server applied operations --
that holds every operation acknowledged under `flush` or `fsync` (a process
crash keeps both), and everything a commit covered.

One HDF5 file lives for the whole run, so it accumulates history (deleted,
replaced and converted datasets, old groups, many recoveries). Each round:

  1. load: CLIENTS asyncio connections (some wait for each reply, some
     pipeline 4-16 requests) run a mixed load: appends to per-client streams
     (rows of 32 B .. 32 KiB, up to 2 MiB per request), whole writes (in
     place when shape and type stay, replacing otherwise; several dtypes,
     scalars, 2-4 MiB "big" writes, gzip/lzf/none), insert and append into
     small datasets (some made by `write`, so the server converts them),
     create_group and delete of what the client owns, appends from every
     client to shared logs, whole writes from every client to shared
     datasets, reads (checked against the model), ping barriers. Every
     request names a random durability or none (the server's default,
     itself random per server start).
  2. kill -9 of the server: after a random delay (log-uniform 3 ms ..
     --max-delay), right after the reply to a 4-12 MiB write, a few ms
     after sending one (mid-transfer or mid-apply), a few ms after the load
     went quiet (the 2 ms idle commit window), or during a clean shutdown
     (SIGTERM, then SIGKILL 0-30 ms later).
  3. restart on the same file; in some rounds the restart is itself killed
     1-3 times at a random moment of its startup/recovery first (and in a
     few, the start of the cleanly closed file in step 5). The server must
     print "listening": that is a check.
  4. check, through the server: every path the model knows is read (groups
     answer NOT_A_DATASET), and the model decides whether that state is
     allowed (below).
  5. in most rounds (always every --check-every rounds and at the end):
     SIGTERM, exit 0, no FILE.wal left; then h5py opens the file, reads every
     object, finds no object the model does not know, and sees exactly what
     the server returned. Every --check-every rounds also `h5dump -H` and
     `h5stat` must succeed. Otherwise the recovered server carries the next
     round's load (a crash of a file that was recovered but never closed).

The model (the oracle)
----------------------
Each client owns a namespace (/cN; client 0 also owns the shared groups of
rounds before this one, which it deletes). The server applies each
connection's requests in the order sent, so the state of a client's
namespace after a crash must be the state after a prefix of the client's
requests. The model replays each request's effect when it is sent (every
request is built to succeed) and records, per path, the state key (absent,
group, or dtype + shape + SHA-1 of the bytes) after each request. A
recovered path's key then allows a set of prefixes; the client's recovered
prefix m is in the intersection over all its paths. Contents name the
request that wrote them (round, client, request index), so no two requests
write the same bytes and m is (almost always) unique.

Required: with t() a logical clock of sends and replies (one event loop, so
"reply of A before send of B" is a fact, and then the server applied A
before B), for every request B acknowledged ok at an effective level of
flush or fsync (or a ping barrier):
  * B and all earlier requests of its connection must be in the file;
  * every request of any client whose reply came before B was sent must be
    in the file (a commit covers everything applied before it, "none" ops
    included; docs/durability.md).
So each client needs m >= req. Requests acknowledged under "none" only
may be missing, but only as a suffix (no holes, no torn rows, no garbage).

Across clients the recovered state must be a prefix of the server's order:
if request A (surely applied) was sent after request B's reply came, B must
be applied too.

Shared logs (/shared/rR/logJ, rows [client, request, row, nrows, round,
check]): every row must be intact, each request's rows contiguous and
complete (an append is atomic), each client's requests in the log exactly
the ones of its prefix, in order, and a request acknowledged before another
was sent must come first. Shared writes (/shared/wJ): the value must be one
that was written, whole (not torn), by a request within its client's
prefix, and not one that a surely-applied later write (sent after its reply,
or later on the same connection) replaced. Paths no request touched must be
unchanged.

Then the model takes the recovered state as the next round's starting point.

Output: one line per round, then totals (rounds, kills, requests sent and
acknowledged per durability level, restart/recovery times) and PASS/FAIL.
Exit status 0 on PASS, 1 on any failure, 2 on a harness error. A failure
names its round and the seed: `make crashtest CRASH_SEED=S CRASH_ROUNDS=R+1`
(or --seed S --rounds R+1) replays the same plan: the same requests, kill
modes and delays, server settings; the exact kill instant relative to the
requests depends on timing, so a race may need a few runs to reproduce.
On failure the work directory is kept: the file, per-round server stderr
logs, and failed-rRRRR/ with a copy of the file and FILE.wal as the kill
left them (before the restart that failed the check).
"""

import argparse
import asyncio
import bisect
import collections
import hashlib
import math
import os
import random
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "python"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from hdf5_async import codec  # noqa: E402
import h5a_util  # noqa: E402  (write_config, SANITIZER_MARKERS)

# ------------------------------------------------------------------ settings

START_TIMEOUT = 60.0  # a start or recovery that takes longer is a failure
STOP_TIMEOUT = 60.0
SAFETY = 30.0  # a load phase still going this long after its kill time: hang
KEEP_BYTES = 1 << 20  # the model keeps arrays up to this size (inserts need them)
STRUCT = np.dtype([("a", "<i4"), ("b", "<f8"), ("c", "<i2", (3,))])
# per-client streams: row width (None: 1-D float64) and the size at which the
# client deletes the stream and starts it again
STREAMS = {0: (4, 1_600_000), 1: (64, 2_000_000), 2: (4096, 1_600_000), 3: (None, 800_000)}
N_LOGS = 2  # shared append logs per round: /shared/rR/logJ
LOG_W = 6
N_SWRITES = 2  # shared whole-write datasets /shared/wJ (int64, SW_LEN)
SW_LEN = 2048
MAX_GROUPS = 8
LEVELS = ("none", "flush", "fsync")
# what a request's "durability" is: None = not sent (the server's default).
# Per round, one profile for every client (fsyncs stall the one storage
# thread, so "light" rounds get many more requests in before the kill).
LEVEL_PROFILES = {
    "mixed": (((None, 40), ("none", 20), ("flush", 25), ("fsync", 15)), ("flush", "fsync")),
    "light": (((None, 50), ("none", 35), ("flush", 14), ("fsync", 1)), ("flush",)),
    "strict": (((None, 30), ("none", 5), ("flush", 35), ("fsync", 30)), ("flush", "fsync")),
}
PROFILE_WEIGHTS = (("mixed", 45), ("light", 35), ("strict", 20))
LEVEL_WEIGHTS = LEVEL_PROFILES["mixed"][0]
KINDS = (
    ("stream", 30), ("write", 14), ("scalar", 3), ("big", 2), ("ins", 8), ("conv", 5),
    ("group", 5), ("gwrite", 5), ("delete", 4), ("sappend", 12), ("swrite", 5),
    ("read", 5), ("sync", 2),
)
KILL_MODES = (("timer", 55), ("big_ack", 12), ("big_send", 10), ("quiesce", 13), ("term", 10))

# state keys: what the model compares
ABSENT = None
GROUP = ("G",)


def dkey(dt):
    dt = np.dtype(dt)
    return dt.str if dt.names is None else repr(dt.descr)


def array_key(a):
    a = np.asarray(a)  # (not ascontiguousarray: it makes 0-d arrays 1-d)
    return ("D", dkey(a.dtype), tuple(a.shape), hashlib.sha1(a.tobytes()).hexdigest())


def key_desc(key, arr=None):
    if key is ABSENT:
        return "absent"
    if key == GROUP:
        return "group"
    if key[0] == "ERR":
        return "unreadable (%s)" % (key[1],)
    s = "%s%s sha1 %s" % (key[1] if len(key[1]) < 20 else "struct", list(key[2]), key[3][:10])
    if arr is not None:
        s += " " + summary(arr)
    return s


def summary(a):
    """Who wrote this, for messages: stream rows start with (round, client,
    request, row); most other values start with the writer's tag."""
    a = np.asarray(a)
    try:
        if a.ndim == 0 or a.size == 0:
            return "value %r%s" % (a.tolist(), writer(a.reshape(-1)[0]) if a.size else "")
        if a.dtype.names:
            return "first a=%r" % (a.reshape(-1)[0]["a"],)  # (an int32 tag: truncated)
        if a.ndim == 2:
            return "rows[0]=%s%s rows[-1]=%s%s" % (a[0, :6].tolist(), writer(a[0, 0]),
                                                 a[-1, :6].tolist(), writer(a[-1, 0]))
        return "first=%s%s" % (a.reshape(-1)[:4].tolist(), writer(a.reshape(-1)[0]))
    except Exception:  # diagnostics only
        return ""


def writer(v):
    """' (by rR cC#I)' when v (int64 or float64) looks like a request's tag."""
    if np.asarray(v).dtype.itemsize != 8:
        return ""
    try:
        t = int(v)
    except (TypeError, ValueError, OverflowError):
        return ""
    if not (1 << 20) <= t < (1 << 46) or float(v) != t:
        return ""
    rnd, cid, idx = untag(t)
    return " (by r%d c%d#%d)" % (rnd, cid, idx)


# ------------------------------------------------------- deterministic values

M64 = (1 << 64) - 1


def tag_of(rnd, cid, idx):
    """Every request's identity, in the bytes it writes."""
    return ((rnd * 64 + cid) << 20) | idx


def untag(tag):
    return (tag >> 26, (tag >> 20) & 63, tag & 0xFFFFF)


def mix(tag, n):
    """n pseudo-random int64 determined by tag."""
    base = (tag * 0x9E3779B97F4A7C15) & M64
    i = np.arange(n, dtype=np.uint64)
    x = np.uint64(base) + i * np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(32)
    return x.view(np.int64)


def make_array(dtype, shape, tag):
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) if shape else 1
    m = mix(tag, n)
    if dtype == STRUCT:
        a = np.zeros(n, STRUCT)
        a["a"] = (m >> 40).astype("<i4")
        a["a"][0] = tag & 0x7FFFFFFF
        a["b"] = (m >> 11).astype("<f8")
        a["c"] = (m[:, None] >> np.array([3, 19, 37])) & 0x7FFF
    elif dtype == np.dtype("<i8"):
        a = m.copy()
        a[0] = tag
    elif dtype == np.dtype("<i4"):
        a = (m >> 33).astype("<i4")
        a[0] = tag & 0x7FFFFFFF
    elif dtype == np.dtype("<f8"):
        a = (m >> 11).astype("<f8")
        a[0] = float(tag)
    else:
        raise ValueError(dtype)
    return a.reshape(shape)


def stream_rows(rnd, cid, idx, nrows, width):
    rows = np.empty((nrows, width), "<i8")
    rows[:, 0] = rnd
    rows[:, 1] = cid
    rows[:, 2] = idx
    rows[:, 3] = np.arange(nrows)
    if width > 4:
        rows[:, 4:] = mix(tag_of(rnd, cid, idx), nrows * (width - 4)).reshape(nrows, width - 4)
    return rows


def log_rows(rnd, cid, idx, nrows):
    rows = np.empty((nrows, LOG_W), "<i8")
    rows[:, 0] = cid
    rows[:, 1] = idx
    rows[:, 2] = np.arange(nrows)
    rows[:, 3] = nrows
    rows[:, 4] = rnd
    rows[:, 5] = mix(tag_of(rnd, cid, idx) ^ 0x5A5A, nrows)
    return rows


def swrite_value(rnd, cid, idx):
    a = mix(tag_of(rnd, cid, idx) ^ 0x3C3C, SW_LEN)
    a[:3] = (rnd, cid, idx)
    return a


# ------------------------------------------------------------------- the model


class DS:
    """A dataset as the model knows it: dtype, shape, a running SHA-1 of its
    C-order bytes, and the array itself while it is small (inserts need it)."""

    __slots__ = ("dtype", "shape", "h", "arr", "nbytes")

    def __init__(self, arr):
        arr = np.asarray(arr)
        self.dtype = arr.dtype
        self.shape = tuple(arr.shape)
        self.h = hashlib.sha1(arr.tobytes())
        self.nbytes = arr.nbytes
        self.arr = arr.copy() if arr.nbytes <= KEEP_BYTES else None

    def key(self):
        return ("D", dkey(self.dtype), self.shape, self.h.copy().hexdigest())

    def append(self, rows):
        rows = np.asarray(rows, dtype=self.dtype)
        self.h.update(rows.tobytes())
        self.shape = (self.shape[0] + rows.shape[0],) + self.shape[1:]
        self.nbytes += rows.nbytes
        if self.arr is not None:
            self.arr = np.concatenate([self.arr, rows]) if self.nbytes <= KEEP_BYTES else None

    def insert(self, index, rows):
        self.__init__(np.concatenate([self.arr[:index], np.asarray(rows, self.dtype), self.arr[index:]]))


class Op:
    """One request: what was sent, when, what came back, and its effect on
    the sending client's namespace (path, key after it)."""

    __slots__ = (
        "cid", "idx", "kind", "opname", "path", "args", "mutating", "level_req", "level_eff",
        "req_id", "send_t", "reply_t", "ok", "result", "error", "fut", "effects", "expect_shape",
        "expect_key", "log", "nrows", "swrite", "kill_on_ack", "kill_after", "nbytes",
    )

    def __init__(self, cid, idx, kind, opname, path, args):
        self.cid, self.idx, self.kind, self.opname, self.path, self.args = cid, idx, kind, opname, path, args
        self.mutating = opname not in ("read", "ping")
        self.level_req = self.level_eff = None
        self.req_id = self.send_t = self.reply_t = self.ok = self.result = self.error = self.fut = None
        self.effects = []
        self.expect_shape = self.expect_key = self.log = None
        self.nrows = 0
        self.swrite = False
        self.kill_on_ack = False
        self.kill_after = None
        d = args.get("data")
        self.nbytes = d.nbytes if isinstance(d, np.ndarray) else 8 if d is not None else 0

    def desc(self):
        lvl = ""
        if self.mutating or self.kind == "sync":
            lvl = " durability=%s%s" % (self.level_req or "(default)", "->" + self.level_eff if not self.level_req else "")
        extra = ""
        if "index" in self.args:
            extra += " index=%d" % self.args["index"]
        d = self.args.get("data")
        if isinstance(d, np.ndarray):
            extra += " data=%s%s" % (dkey(d.dtype) if d.dtype.names is None else "struct", list(d.shape))
        if "compression" in self.args:
            extra += " compression=%s" % self.args["compression"]
        if self.send_t is None:
            st = "not sent"
        elif self.reply_t is None:
            st = "sent t=%d, no reply" % self.send_t
        else:
            st = "sent t=%d, %s t=%d" % (
                self.send_t, "ok" if self.ok else "error %s" % (self.error or {}).get("code"), self.reply_t)
        return "c%d#%d %s %s%s%s [%s]" % (self.cid, self.idx, self.opname, self.path or "", extra, lvl, st)


def weighted(rng, pairs):
    r = rng.random() * sum(w for _, w in pairs)
    for v, w in pairs:
        r -= w
        if r < 0:
            return v
    return pairs[-1][0]


class Client:
    """One connection's load generator and the model of what it owns. Ops
    are built (and their effect applied to the model) just before sending;
    requests on one connection are applied in order, so the model's state is
    the server's state of this namespace once the op is applied."""

    def __init__(self, cid, rnd, seed, objs, default_level, depth, profile="mixed"):
        self.cid = cid
        self.round = rnd
        self.rng = random.Random("%s/client%d/round%d" % (seed, cid, rnd))
        self.root = "/c%d" % cid
        self.objs = objs  # path -> "G" | DS
        self.default = default_level
        self.depth = depth
        self.level_weights, self.sync_levels = LEVEL_PROFILES[profile]
        self.ops = []
        self.hist = collections.defaultdict(list)  # path -> [(op idx, key after it)]
        self.proj = collections.defaultdict(list)  # shared log -> [my op idx in it]
        self.todo = collections.deque()  # ops to send first (janitor deletes, reset)
        self.inject = None  # a big write the kill plan asks for
        self.big_left = 1 if self.rng.random() < 0.15 else 0
        self.large_left = 3
        self.conn = None

    # ---- model helpers
    def _mine(self, p):
        return p == self.root or p.startswith(self.root + "/") or p.startswith("/shared/r")

    def _parents(self, path, eff):
        p = ""
        for part in path.split("/")[1:-1]:
            p += "/" + part
            if not self._mine(p):
                continue
            if p not in self.objs:
                self.objs[p] = "G"
                eff.append((p, GROUP))

    def _set(self, path, ds, eff):
        self._parents(path, eff)
        self.objs[path] = ds
        eff.append((path, ds.key()))

    def _delete(self, path, eff):
        for p in [p for p in self.objs if p == path or p.startswith(path + "/")]:
            del self.objs[p]
            eff.append((p, ABSENT))

    def sent(self, op):
        self.ops.append(op)
        for p, k in op.effects:
            self.hist[p].append((op.idx, k))

    def tag(self, idx):
        return tag_of(self.round, self.cid, idx)

    def _op(self, idx, kind, opname, path, args, eff=(), level="random"):
        op = Op(self.cid, idx, kind, opname, path, args)
        op.effects = list(eff)
        if op.mutating or kind == "sync":
            op.level_req = weighted(self.rng, self.level_weights) if level == "random" else level
            op.level_eff = op.level_req or self.default
            if op.level_req:
                args["durability"] = op.level_req
        return op

    def _ds(self, path):
        o = self.objs.get(path)
        return o if isinstance(o, DS) else None

    # ---- the next request
    def next_op(self):
        idx = len(self.ops)
        if idx >= 0xFFFFF:
            return None
        if self.inject is not None:
            plan, self.inject = self.inject, None
            return self.gen_big(idx, injected=plan)
        if self.todo:
            return self.todo.popleft()(idx)
        for _ in range(10):
            kind = weighted(self.rng, KINDS)
            op = getattr(self, "gen_" + kind)(idx)
            if op is not None:
                return op
        return self.gen_stream(idx)

    def del_op(self, idx, path, kind="delete"):
        eff = []
        self._delete(path, eff)
        return self._op(idx, kind, "delete", path, {}, eff)

    def gen_stream(self, idx):
        rng = self.rng
        k = rng.randrange(4)
        path = "%s/s%d" % (self.root, k)
        width, limit = STREAMS[k]
        ds = self._ds(path)
        if path in self.objs and (
            ds is None or ds.nbytes > limit
            or ds.dtype != np.dtype("<f8" if width is None else "<i8")
            or ds.shape[1:] != (() if width is None else (width,))
        ):
            return self.del_op(idx, path, "rotate")
        if width is None:
            n = rng.randint(1, 200)
            data = make_array("<f8", (n,), self.tag(idx))
        else:
            if k == 2:
                n = rng.randint(1, 4)
                if self.large_left and rng.random() < 0.1:
                    self.large_left -= 1
                    n = rng.randint(16, 64)
            else:
                n = rng.randint(1, 20 if k == 1 else 50)
            data = stream_rows(self.round, self.cid, idx, n, width)
        args = {"data": data}
        eff = []
        if ds is None:
            comp = rng.choice([None, None, "gzip", "lzf", "none"])
            if comp:
                args["compression"] = comp
            ds = DS(data)
            self._set(path, ds, eff)
        else:
            ds.append(data)
            eff.append((path, ds.key()))
        op = self._op(idx, "append", "append", path, args, eff)
        op.expect_shape = ds.shape
        return op

    def _write(self, idx, kind, path, data, compression=None):
        args = {"data": data}
        if compression:
            args["compression"] = compression
        eff = []
        self._set(path, DS(data), eff)
        opname = "update" if self.rng.random() < 0.2 else "write"
        op = self._op(idx, kind, opname, path, args, eff)
        op.expect_shape = tuple(np.shape(data))
        return op

    def gen_write(self, idx):
        rng = self.rng
        path = "%s/w%d" % (self.root, rng.randrange(4))
        ds = self._ds(path)
        if ds is not None and ds.shape and rng.random() < 0.6 and ds.dtype in (
                np.dtype("<i8"), np.dtype("<f8"), np.dtype("<i4"), STRUCT):
            dtype, shape = ds.dtype, ds.shape  # in place
        else:
            dtype = rng.choice(["<i8", "<f8", "<i4", STRUCT])
            if rng.random() < 0.7:
                shape = (int(10 ** rng.uniform(0, 3.7)),)
            else:
                shape = (rng.randint(1, 60), rng.randint(1, 60))
        comp = rng.choice(["gzip", "lzf", "none"]) if rng.random() < 0.25 else None
        return self._write(idx, "write", path, make_array(dtype, shape, self.tag(idx)), comp)

    def gen_scalar(self, idx):
        t = self.tag(idx)
        v = np.int64(t) if self.rng.random() < 0.5 else np.float64(t)
        return self._write(idx, "scalar", self.root + "/scalar", v)

    def gen_big(self, idx, injected=None):
        rng = self.rng
        if injected is None:
            if self.big_left <= 0:
                return None
            self.big_left -= 1
            n = rng.choice([262144, 393216, 524288])  # 2-4 MiB
        else:
            n = rng.choice([1 << 19, 1 << 20, 3 << 19])  # 4-12 MiB
        path = self.root + "/big"
        ds = self._ds(path)
        if ds is not None and ds.dtype == np.dtype("<f8") and len(ds.shape) == 1 and rng.random() < 0.5:
            n = ds.shape[0]  # in place
        data = make_array("<f8", (n,), self.tag(idx))
        comp = rng.choice([None, None, None, "gzip", "lzf"])
        op = self._write(idx, "big", path, data, comp)
        if injected is not None:
            mode, level, after = injected
            op.level_req = level
            op.level_eff = level or self.default
            op.args.pop("durability", None)
            if level:
                op.args["durability"] = level
            op.kill_on_ack = mode == "big_ack"
            op.kill_after = after if mode == "big_send" else None
        return op

    def gen_ins(self, idx):
        rng = self.rng
        path = self.root + "/ins"
        ds = self._ds(path)
        rows = mix(self.tag(idx), 3 * rng.randint(1, 5)).reshape(-1, 3)
        rows[:, 0] = self.tag(idx)
        if path in self.objs and (ds is None or ds.arr is None or ds.shape[0] > 3000
                                  or ds.dtype != np.dtype("<i8") or ds.shape[1:] != (3,)):
            return self.del_op(idx, path, "rotate")
        if ds is None or rng.random() < 0.3:
            return self._append(idx, "ins", path, ds, rows)
        n = ds.shape[0]
        index = rng.randint(-n, n)
        return self._insert(idx, "ins", path, ds, index, rows)

    def _append(self, idx, kind, path, ds, rows, args_extra=None):
        args = {"data": rows}
        args.update(args_extra or {})
        eff = []
        if ds is None:
            ds = DS(rows)
            self._set(path, ds, eff)
        else:
            ds.append(rows)
            eff.append((path, ds.key()))
        op = self._op(idx, kind, "append", path, args, eff)
        op.expect_shape = ds.shape
        return op

    def _insert(self, idx, kind, path, ds, index, rows, args_extra=None):
        n = ds.shape[0]
        ds.insert(index + n if index < 0 else index, rows)
        args = {"index": index, "data": rows}
        args.update(args_extra or {})
        op = self._op(idx, kind, "insert", path, args, [(path, ds.key())])
        op.expect_shape = ds.shape
        return op

    def gen_conv(self, idx):
        """A dataset made by `write` (contiguous, not resizable), then
        appended to / inserted into: the server converts it."""
        rng = self.rng
        path = self.root + "/conv"
        ds = self._ds(path)
        if (ds is None or ds.arr is None or ds.shape[0] > 2000 or ds.dtype != np.dtype("<i8")
                or ds.shape[1:] != (5,) or rng.random() < 0.3):
            data = mix(self.tag(idx), 5 * rng.randint(1, 50)).reshape(-1, 5)
            data[:, 0] = self.tag(idx)
            return self._write(idx, "conv", path, data)
        rows = mix(self.tag(idx), 5 * rng.randint(1, 5)).reshape(-1, 5)
        rows[:, 0] = self.tag(idx)
        extra = {"compression": rng.choice(["gzip", "lzf"])} if rng.random() < 0.3 else None
        if rng.random() < 0.5:
            return self._append(idx, "conv", path, ds, rows, extra)
        n = ds.shape[0]
        return self._insert(idx, "conv", path, ds, rng.randint(-n, n), rows, extra)

    def _groups(self):
        pre = self.root + "/g"
        return [p for p, o in self.objs.items() if o == "G" and p.startswith(pre) and "/" not in p[len(pre):]]

    def gen_group(self, idx):
        groups = self._groups()
        if len(groups) >= MAX_GROUPS:
            return self.del_op(idx, self.rng.choice(sorted(groups)))
        path = "%s/g%d_%d" % (self.root, self.round, idx)
        if self.rng.random() < 0.3:
            path += "/sub/deeper"
        eff = []
        self._parents(path + "/x", eff)
        return self._op(idx, "group", "create_group", path, {}, eff)

    def gen_gwrite(self, idx):
        groups = sorted(p for p, o in self.objs.items() if o == "G" and p.startswith(self.root + "/g"))
        if not groups:
            return self.gen_group(idx)
        path = "%s/d%d_%d" % (self.rng.choice(groups), self.round, idx)
        dtype = self.rng.choice(["<i8", "<f8", STRUCT])
        return self._write(idx, "gwrite", path, make_array(dtype, (self.rng.randint(1, 100),), self.tag(idx)))

    def gen_delete(self, idx):
        cands = self._groups() + [
            p for p in ("%s/%s" % (self.root, n) for n in ("w0", "w1", "w2", "w3", "scalar", "big", "conv"))
            if p in self.objs
        ]
        if not cands:
            return None
        return self.del_op(idx, self.rng.choice(sorted(cands)))

    def gen_sappend(self, idx):
        rng = self.rng
        path = "/shared/r%d/log%d" % (self.round, rng.randrange(N_LOGS))
        n = rng.randint(1, 8)
        args = {"data": log_rows(self.round, self.cid, idx, n)}
        comp = rng.choice([None, None, "gzip", "lzf"])
        if comp:
            args["compression"] = comp
        self.proj[path].append(idx)
        op = self._op(idx, "sappend", "append", path, args, [("#log:" + path, tuple(self.proj[path]))])
        op.log = path
        op.nrows = n
        return op

    def gen_swrite(self, idx):
        path = "/shared/w%d" % self.rng.randrange(N_SWRITES)
        op = self._op(idx, "swrite", "write", path, {"data": swrite_value(self.round, self.cid, idx)})
        op.swrite = True
        op.expect_shape = (SW_LEN,)
        return op

    def gen_read(self, idx):
        cands = sorted(p for p, o in self.objs.items()
                       if isinstance(o, DS) and o.nbytes <= 256 * 1024 and self._mine(p) and p.startswith(self.root))
        if not cands:
            return None
        path = self.rng.choice(cands)
        op = self._op(idx, "read", "read", path, {})
        op.expect_key = self.objs[path].key()
        return op

    def gen_sync(self, idx):
        return self._op(idx, "sync", "ping", None, {}, level=self.rng.choice(self.sync_levels))


# ---------------------------------------------------------------- the network


class Conn(asyncio.Protocol):
    """One connection: sends Ops, matches replies in order, stamps both
    with the harness's logical clock."""

    def __init__(self, harness, label):
        self.h = harness
        self.label = label
        self.transport = None
        self.buf = bytearray()
        self.pending = collections.deque()
        self.closed = False
        self.next_id = 1
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        while len(self.buf) >= 4:
            n = int.from_bytes(self.buf[:4], "big")
            if len(self.buf) < 4 + n:
                return
            payload = bytes(self.buf[4:4 + n])
            del self.buf[:4 + n]
            self._reply(payload)

    def _reply(self, payload):
        t = self.h.tick()
        try:
            rep = codec.decode_reply(payload)
        except Exception as e:
            self.h.fail("protocol", "%s: undecodable reply (%s)" % (self.label, e))
            return
        if not self.pending:
            self.h.fail("protocol", "%s: reply with no request pending: %r" % (self.label, rep)[:500])
            return
        op = self.pending.popleft()
        if not isinstance(rep, dict) or rep.get("id") != op.req_id:
            self.h.fail("protocol", "%s: reply %r out of order, expected id %s" % (self.label, str(rep)[:200], op.req_id))
        op.reply_t = t
        op.ok = isinstance(rep, dict) and rep.get("ok") is True
        if op.ok:
            op.result = rep.get("result")
        else:
            op.error = rep.get("error") if isinstance(rep, dict) else {"code": "?", "message": repr(rep)}
            # a request the stopping server held back (its connection's
            # replies were not read) is answered SHUTTING_DOWN: not run, no
            # promise -- for the model, a request without a reply
            if op.error.get("code") == "SHUTTING_DOWN":
                op.ok = None
        if not op.fut.done():
            op.fut.set_result(op)
        if op.kill_on_ack:
            self.h.kill("reply to a big write")

    def connection_lost(self, exc):
        self.closed = True
        while self.pending:
            op = self.pending.popleft()
            if not op.fut.done():
                op.fut.set_result(op)
        if not self.done.done():
            self.done.set_result(None)

    def send(self, op):
        if self.closed or self.transport.is_closing():
            return False
        op.req_id = self.next_id
        self.next_id += 1
        args = {k: v for k, v in op.args.items()}
        pieces = codec.encode_request(op.req_id, op.opname, op.path, **args)
        op.fut = asyncio.get_running_loop().create_future()
        op.send_t = self.h.tick()
        self.transport.writelines(pieces)
        self.pending.append(op)
        return True


# ------------------------------------------------------------------ the server


class StartError(Exception):
    pass


class ServerProc:
    def __init__(self, h, durability, use_compression, label):
        self.h = h
        self.durability = durability
        self.use_compression = use_compression
        config = os.path.join(h.workdir, "config.ini")
        h5a_util.write_config(config, server={
            "host": "127.0.0.1",
            "hdf5_file_path": h.file,
            "durability": durability,
            "use_compression": "true" if use_compression else "false",
        })
        log = open(h.log_path, "ab")
        log.write(("---- %s: durability=%s use_compression=%s\n" % (label, durability, use_compression)).encode())
        log.flush()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [h.binary, "--config", config, "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, cwd=h.workdir)
        log.close()
        self.buf = b""
        self.port = None
        self.ready_time = None
        self.host = "127.0.0.1"

    @property
    def pid(self):
        return self.proc.pid

    def poll_ready(self, timeout):
        """True once 'listening on' was printed; False if not within timeout;
        StartError if the server exited or printed something else."""
        if self.port is not None:
            return True
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left < 0 or not sel.select(max(left, 0)):
                    if left <= 0:
                        return False
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait()
                    raise StartError("server exited with status %s before listening" % self.proc.returncode)
                self.buf += chunk
        line = self.buf.split(b"\n", 1)[0].decode("utf-8", "replace")
        self.ready_time = time.monotonic()
        m = re.match(r"listening on (.*):(\d+)$", line.strip())
        if not m:
            raise StartError("unexpected first line on stdout: %r" % line)
        self.port = int(m.group(2))
        threading.Thread(target=self._drain, daemon=True).start()
        return True

    def _drain(self):
        try:
            while self.proc.stdout.read(65536):
                pass
        except (OSError, ValueError):
            pass

    def wait_ready(self):
        try:
            if not self.poll_ready(START_TIMEOUT):
                raise StartError("no 'listening' line within %.0f s" % START_TIMEOUT)
        except StartError:
            self.kill()
            raise

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """SIGTERM and wait: the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


# ----------------------------------------------------------------- the harness


class Abort(Exception):
    pass


class Harness:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.binary = os.path.abspath(args.server)
        self.workdir = args.workdir
        self.file = os.path.join(self.workdir, "data.h5")
        self.wal = self.file + ".wal"
        self.logdir = os.path.join(self.workdir, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.log_path = os.path.join(self.logdir, "start.log")
        self.clock = 0
        self.round = -1
        self.failures = []  # (round, category, message)
        self.round_failures = []
        self.baseline_keys = {}  # path -> key: the state the last check found
        self.baseline_arrs = {}  # path -> array (datasets)
        self.reset_clients = set()
        self.srv = None
        self.killed = False
        self.kill_t = None
        self.kill_reason = None
        self.loop = None
        self.stop_sending = False
        # --kill-signal TERM: the oracle's self-test (graceful stops: every
        # acknowledged request must be there, whatever its level)
        self.selftest = args.kill_signal == "TERM"
        self.termed = self.selftest
        # statistics
        self.st = collections.Counter()
        self.sent_by_level = collections.Counter()
        self.acked_by_level = collections.Counter()
        self.kinds = collections.Counter()
        self.modes = collections.Counter()
        self.recovery_times = []
        self.clean_start_times = []
        self.wal_sizes = []
        self.stderr_lines = collections.Counter()
        self.recovery_ms = [20.0]
        self.start_ms = [20.0]

    # ---- bookkeeping
    def tick(self):
        self.clock += 1
        return self.clock

    def fail(self, category, message):
        self.round_failures.append((self.round, category, message))
        print("  FAIL [round %d, %s] %s" % (self.round, category, message), flush=True)

    def kill(self, reason):
        if self.killed:
            return
        self.killed = True
        self.kill_t = self.tick()
        self.kill_reason = reason
        rc = self.srv.proc.poll()
        if rc is None:
            self.srv.proc.send_signal(signal.SIGTERM if self.selftest else signal.SIGKILL)
        elif not self.termed:
            self.fail("died", "the server exited by itself (status %s) before it was killed" % rc)

    def term_then_kill(self, after):
        if self.killed:
            return
        if self.selftest:
            return self.kill("SIGTERM")
        self.termed = True
        if self.srv.proc.poll() is None:
            self.srv.proc.send_signal(signal.SIGTERM)
        self.loop.call_later(after, self.kill, "SIGKILL %.1f ms after SIGTERM" % (after * 1e3))

    # ---- one round
    def plan(self, r):
        ctl = random.Random("%s/plan/%d" % (self.seed, r))
        a = self.args
        p = {"mode": weighted(ctl, KILL_MODES), "profile": weighted(ctl, PROFILE_WEIGHTS)}
        p["delay"] = math.exp(ctl.uniform(math.log(0.003), math.log(a.max_delay)))
        p["big_level"] = weighted(ctl, LEVEL_WEIGHTS)
        p["big_after"] = ctl.uniform(0, 0.03)
        p["quiet"] = ctl.uniform(0, 0.004) if ctl.random() < 0.6 else ctl.uniform(0, 0.05)
        p["term_after"] = ctl.uniform(0, 0.03)
        p["recovery_kills"] = 0 if ctl.random() < 0.75 or a.kill_signal == "TERM" else ctl.randint(1, 3)
        p["recovery_kill_frac"] = [ctl.uniform(0, 1.3) for _ in range(3)]
        # and sometimes the start of a cleanly closed file
        p["start_kills"] = 0 if ctl.random() < 0.9 or a.kill_signal == "TERM" else ctl.randint(1, 2)
        p["depths"] = [ctl.choice([1, 1, 4, 16]) for _ in range(a.clients)]
        last = r == a.rounds - 1
        p["structural"] = last or r % a.check_every == a.check_every - 1
        p["clean_stop"] = p["structural"] or ctl.random() < 0.7
        p["restart_durability"] = ctl.choice(LEVELS)
        p["restart_compression"] = ctl.random() < 0.25
        p["next_durability"] = ctl.choice(LEVELS)
        p["next_compression"] = ctl.random() < 0.25
        return p

    def make_clients(self, r, plan):
        clients = []
        for c in range(self.args.clients):
            root = "/c%d" % c
            objs = {}
            for path, key in self.baseline_keys.items():
                mine = path == root or path.startswith(root + "/")
                if c == 0 and path.startswith("/shared/r"):
                    mine = True  # old rounds' shared logs: client 0 deletes them
                if mine:
                    objs[path] = "G" if key == GROUP else DS(self.baseline_arrs[path])
            cl = Client(c, r, self.seed, objs, self.srv.durability, plan["depths"][c], plan["profile"])
            if c in self.reset_clients and root in objs:
                cl.todo.append(lambda idx, cl=cl, root=root: cl.del_op(idx, root, "reset"))
            if c == 0:
                for path in sorted(objs):
                    m = re.match(r"^/shared/r(\d+)$", path)
                    if m and int(m.group(1)) <= r - 2:
                        cl.todo.append(lambda idx, cl=cl, path=path: cl.del_op(idx, path, "janitor"))
            clients.append(cl)
        self.reset_clients = set()
        return clients

    async def client_loop(self, cl):
        conn = cl.conn
        inflight = collections.deque()
        n = 0
        while not conn.closed and not self.stop_sending:
            op = cl.next_op()
            if op is None:
                break
            if not conn.send(op):
                break
            cl.sent(op)
            if op.kill_after is not None:
                self.loop.call_later(op.kill_after, self.kill, "%.1f ms after sending a big write" % (op.kill_after * 1e3))
            inflight.append(op)
            while inflight and (len(inflight) >= cl.depth or inflight[0].fut.done()):
                o = inflight.popleft()
                await o.fut
                self.check_reply(o)
            n += 1
            if n % 8 == 0:
                await asyncio.sleep(0)
        while inflight:
            o = inflight.popleft()
            await o.fut
            self.check_reply(o)

    def check_reply(self, op):
        if op.ok is None:
            return
        if not op.ok:
            err = op.error or {}
            self.fail("reply", "%s: unexpected error %s: %s" % (op.desc(), err.get("code"), str(err.get("message"))[:300]))
            return
        res = op.result
        if op.opname == "read":
            try:
                got = array_key(codec.decode_value(res))
            except Exception as e:
                got = ("ERR", str(e))
            if got != op.expect_key:
                self.fail("read", "%s during the load returned %s, the model says %s"
                          % (op.desc(), key_desc(got), key_desc(op.expect_key)))
        elif op.opname == "ping":
            if res != "pong":
                self.fail("reply", "%s: result %r" % (op.desc(), res))
        elif op.opname in ("write", "update", "append", "insert"):
            shape = tuple(res.get("shape", ())) if isinstance(res, dict) else None
            if op.kind == "sappend":
                good = shape is not None and len(shape) == 2 and shape[1] == LOG_W and shape[0] >= op.nrows
            else:
                good = shape == op.expect_shape
            if not good:
                self.fail("reply", "%s: result %r, expected shape %s" % (op.desc(), res, op.expect_shape))

    async def load(self, r, clients, plan):
        self.loop = asyncio.get_running_loop()
        self.killed = False
        self.kill_t = None
        self.kill_reason = None
        self.stop_sending = False
        self.termed = self.selftest
        srv = self.srv
        for cl in clients:
            _, cl.conn = await self.loop.create_connection(
                lambda cl=cl: Conn(self, "client %d" % cl.cid), srv.host, srv.port)
        mode, delay = plan["mode"], plan["delay"]
        t_start = self.tick()
        tasks = [self.loop.create_task(self.client_loop(cl)) for cl in clients]
        if mode == "timer":
            self.loop.call_later(delay, self.kill, "timer %.1f ms" % (delay * 1e3))
        elif mode in ("big_ack", "big_send"):
            def inject():
                clients[0].inject = (mode, plan["big_level"], plan["big_after"])
            self.loop.call_later(delay, inject)
        elif mode == "quiesce":
            self.loop.call_later(delay, lambda: setattr(self, "stop_sending", True))
        elif mode == "term":
            self.loop.call_later(delay, self.term_then_kill, plan["term_after"])
        safety = self.loop.call_later(delay + SAFETY, self.kill, "SAFETY")
        try:
            done, _ = await asyncio.wait(tasks, timeout=delay + 2 * SAFETY)
            for t in tasks:
                if not t.done():
                    raise Abort("a client of round %d is stuck after the server was killed" % r)
                if t.exception() is not None:
                    raise t.exception()
            if mode == "quiesce" and not self.killed:
                await asyncio.sleep(plan["quiet"])
                self.kill("%.1f ms after the load went quiet" % (plan["quiet"] * 1e3))
            # the load can end before the planned kill (a SIGTERM closes
            # the connections): the kill still comes when planned
            while not self.killed:
                await asyncio.sleep(0.001)
            for cl in clients:
                await asyncio.wait_for(asyncio.shield(cl.conn.done), SAFETY)
        finally:
            safety.cancel()
            if not self.killed:
                self.kill("end of load")
            for cl in clients:
                if cl.conn is not None and not cl.conn.closed:
                    cl.conn.transport.abort()
        if self.kill_reason == "SAFETY":
            self.fail("hang", "the load did not end within %.0f s of its planned kill (%s): no reply"
                      % (SAFETY, mode))
        return t_start

    async def read_all(self, srv, paths):
        """Every path through the server: path -> (key, array or None)."""
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: Conn(self, "checker"), srv.host, srv.port)
        out = {}
        paths = sorted(paths)
        ops = []
        window = collections.deque()
        for p in paths:
            op = Op(-1, len(ops), "vread", "read", p, {})
            if not conn.send(op):
                raise Abort("the checker's connection closed")
            ops.append(op)
            window.append(op)
            if len(window) >= 16:
                await window.popleft().fut
        for op in window:
            await op.fut
        conn.transport.close()
        for op in ops:
            if op.ok:
                try:
                    v = np.asarray(codec.decode_value(op.result))
                    out[op.path] = (array_key(v), v)
                except Exception as e:
                    out[op.path] = (("ERR", "undecodable: %s" % e), None)
            elif op.ok is False:
                code = (op.error or {}).get("code")
                if code == "NOT_A_DATASET":
                    out[op.path] = (GROUP, None)
                elif code in ("NOT_FOUND", "NOT_A_GROUP"):
                    out[op.path] = (ABSENT, None)
                else:
                    out[op.path] = (("ERR", "%s: %s" % (code, (op.error or {}).get("message"))), None)
            else:
                raise Abort("the server closed the checker's connection (is it dead?)")
        return out

    # ---- the oracle
    def required(self, clients):
        """Per client: how many of its first requests must be in the file,
        and why (docs/durability.md: flush/fsync acks and the commits that
        cover everything applied before them)."""
        reply_ts = {cl.cid: [op.reply_t for op in cl.ops if op.reply_t is not None] for cl in clients}
        req = {cl.cid: 0 for cl in clients}
        why = {cl.cid: None for cl in clients}
        for cl in clients:
            for b in cl.ops:
                if not b.ok or not (b.kind == "sync" or (b.mutating and b.level_eff != "none")
                                    or (self.selftest and b.mutating)):
                    continue
                if b.idx + 1 > req[cl.cid]:
                    req[cl.cid] = b.idx + 1
                    why[cl.cid] = "acknowledged under %s" % b.level_eff
                for d in clients:
                    if d is cl:
                        continue
                    j = bisect.bisect_left(reply_ts[d.cid], b.send_t)
                    if j > req[d.cid]:
                        req[d.cid] = j
                        why[d.cid] = "its reply came before %s was sent, whose ok (%s) promises a commit covering it" % (
                            b.desc(), b.level_eff)
        return req, why, reply_ts

    def parse_log(self, r, path, view, clients):
        """A shared log's rows as requests in order: [(cid, idx)]."""
        key, arr = view.get(path, (ABSENT, None))
        if key is ABSENT:
            return []
        if key[0] != "D" or arr is None or arr.dtype != np.dtype("<i8") or arr.ndim != 2 or arr.shape[1] != LOG_W:
            self.fail("shared", "%s is %s, not int64 rows of %d" % (path, key_desc(key, arr), LOG_W))
            return []
        out, seen, i = [], set(), 0
        while i < len(arr):
            cid, idx, k, n, rnd = (int(x) for x in arr[i, :5])
            ok = rnd == r and 0 <= cid < len(clients) and k == 0 and 1 <= n <= 8 and i + n <= len(arr)
            op = clients[cid].ops[idx] if ok and 0 <= idx < len(clients[cid].ops) else None
            ok = ok and op is not None and op.log == path and op.nrows == n and (cid, idx) not in seen
            ok = ok and np.array_equal(arr[i:i + n], log_rows(r, cid, idx, n))
            if not ok:
                self.fail("shared", "%s row %d: torn, duplicated or unknown rows %s (not the %s rows of a request)"
                          % (path, i, arr[i:i + 3].tolist(), "first" if k == 0 else "expected"))
                return out
            seen.add((cid, idx))
            out.append((cid, idx))
            i += n
        # ops acknowledged before another was sent were applied before it
        latest_send, latest = 0, None
        for cid, idx in out:
            op = clients[cid].ops[idx]
            if op.reply_t is not None and latest_send > op.reply_t:
                self.fail("order", "%s: %s comes after %s, which was sent after its reply"
                          % (path, op.desc(), latest.desc()))
            if op.send_t > latest_send:
                latest_send, latest = op.send_t, op
        return out

    @staticmethod
    def allowed(n, base, entries, obs):
        """Prefixes m (0..n: requests 0..m-1 applied) after which the path's
        key is obs."""
        mask = np.zeros(n + 1, bool)
        prev, start = base, 0
        for i, key in entries:
            if prev == obs:
                mask[start:i + 1] = True
            prev, start = key, i + 1
        if prev == obs:
            mask[start:] = True
        return mask

    @staticmethod
    def key_at(base, entries, m):
        k = base
        for i, key in entries:
            if i < m:
                k = key
        return k

    @staticmethod
    def ranges(mask):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return "none"
        out, s, prev = [], idx[0], idx[0]
        for v in idx[1:]:
            if v != prev + 1:
                out.append((s, prev))
                s = v
            prev = v
        out.append((s, prev))
        return ",".join("%d" % a if a == b else "%d-%d" % (a, b) for a, b in out[:8]) + (",..." if len(out) > 8 else "")

    def analyze(self, r, clients, view):
        """Check the recovered state (view: path -> (key, array)) against
        the model. Returns (required, present) request counts."""
        arrs = {p: a for p, (k, a) in view.items()}

        def obs(p):
            return view[p][0] if p in view else ABSENT

        for p, (k, a) in sorted(view.items()):
            if k is not ABSENT and k[0] == "ERR":
                self.fail("read", "the server cannot read %s after recovery: %s" % (p, k[1]))

        # shared logs -> each client's projection
        proj = {}
        logs_present = False
        for j in range(N_LOGS):
            path = "/shared/r%d/log%d" % (r, j)
            order = self.parse_log(r, path, view, clients)
            logs_present |= obs(path) is not ABSENT
            per = collections.defaultdict(list)
            for cid, idx in order:
                per[cid].append(idx)
            proj[path] = {c: tuple(v) for c, v in per.items()}
        g = "/shared/r%d" % r
        if (obs(g) == GROUP) != logs_present:
            self.fail("shared", "%s is %s but its logs are %s" % (g, key_desc(obs(g)), "present" if logs_present else "absent"))

        req, why, reply_ts = self.required(clients)
        rng = {}
        total_req = total_kept = 0
        for cl in clients:
            n = len(cl.ops)
            mask = np.ones(n + 1, bool)
            per = {}
            for p, entries in cl.hist.items():
                if p.startswith("#log:"):
                    o, base = proj[p[5:]].get(cl.cid, ()), ()
                else:
                    o, base = obs(p), self.baseline_keys.get(p)
                a = self.allowed(n, base, entries, o)
                per[p] = (a, o, base, entries)
                mask &= a
            ok_m = np.flatnonzero(mask)
            total_req += req[cl.cid]
            if len(ok_m) == 0:
                counts = sum(a.astype(int) for a, _, _, _ in per.values()) if per else np.zeros(n + 1, int)
                best = int(np.flatnonzero(counts == counts.max())[-1])
                lines = []
                for p, (a, o, base, entries) in sorted(per.items()):
                    if not a[best]:
                        lines.append("      %s: found %s; after request %d it would be %s; found state fits prefixes %s"
                                     % (p, key_desc(o, arrs.get(p)) if not p.startswith("#") else o,
                                        best - 1, key_desc(self.key_at(base, entries, best)) if not p.startswith("#")
                                        else self.key_at(base, entries, best), self.ranges(a)))
                self.fail("prefix", "client %d (%d requests sent): the recovered state is the state after no prefix "
                          "of its requests (torn or garbage data?); closest: first %d, paths that differ:\n%s"
                          % (cl.cid, n, best, "\n".join(lines[:12])))
                self.reset_clients.add(cl.cid)
                rng[cl.cid] = None
                continue
            m_max = int(ok_m[-1])
            if m_max < req[cl.cid]:
                lost = [op for op in cl.ops[m_max:req[cl.cid]] if op.mutating][:5]
                lines = []
                for p, (a, o, base, entries) in sorted(per.items()):
                    if not a[req[cl.cid]]:
                        lines.append("      %s: found %s, expected %s" % (
                            p, key_desc(o, arrs.get(p)) if not p.startswith("#") else o,
                            key_desc(self.key_at(base, entries, req[cl.cid])) if not p.startswith("#")
                            else self.key_at(base, entries, req[cl.cid])))
                self.fail("lost", "client %d: the file holds its first %d requests (at most), but its first %d must "
                          "survive (request %d %s); first lost:\n%s\n    paths:\n%s"
                          % (cl.cid, m_max, req[cl.cid], req[cl.cid] - 1, why[cl.cid],
                             "\n".join("      " + op.desc() for op in lost), "\n".join(lines[:12])))
                rng[cl.cid] = (int(ok_m[0]), m_max)
                total_kept += m_max
                continue
            ok_m = ok_m[ok_m >= req[cl.cid]]
            rng[cl.cid] = (int(ok_m[0]), int(ok_m[-1]))
            total_kept += int(ok_m[-1])

        # the recovered state is a prefix of the server's order
        for cl in clients:
            if not rng[cl.cid] or rng[cl.cid][0] == 0:
                continue
            a = cl.ops[rng[cl.cid][0] - 1]  # surely applied
            for d in clients:
                if d is cl or not rng[d.cid]:
                    continue
                j = bisect.bisect_left(reply_ts[d.cid], a.send_t)
                if j > rng[d.cid][1]:
                    self.fail("order", "%s is in the file, but %s, whose reply came before it was sent, is not"
                              % (a.desc(), d.ops[j - 1].desc()))

        # shared whole writes
        for j in range(N_SWRITES):
            path = "/shared/w%d" % j
            writes = [op for cl in clients for op in cl.ops if op.swrite and op.path == path]
            sure = [op for op in writes if rng[op.cid] and op.idx < rng[op.cid][0]]
            k, arr = view.get(path, (ABSENT, None))
            base = self.baseline_keys.get(path)
            if k is ABSENT:
                if base is not ABSENT:
                    self.fail("shared", "%s disappeared" % path)
                if sure:
                    self.fail("lost", "%s is absent although %s is applied" % (path, sure[-1].desc()))
                continue
            if k[0] != "D" or arr is None or arr.shape != (SW_LEN,) or arr.dtype != np.dtype("<i8"):
                self.fail("shared", "%s is %s" % (path, key_desc(k, arr)))
                continue
            wr, wc, wi = (int(x) for x in arr[:3])
            if not (0 <= wc < len(clients) and 0 <= wi < 0xFFFFF and 0 <= wr <= r
                    and np.array_equal(arr, swrite_value(wr, wc, wi))):
                self.fail("shared", "%s holds a value no request wrote (torn or garbage): %s" % (path, summary(arr)))
                continue
            if wr < r:
                if k != base:
                    self.fail("shared", "%s holds an older value (round %d) than the last check found" % (path, wr))
                elif sure:
                    self.fail("lost", "%s holds round %d's value although %s is applied" % (path, wr, sure[-1].desc()))
                continue
            w = clients[wc].ops[wi] if wi < len(clients[wc].ops) else None
            if w is None or not w.swrite or w.path != path:
                self.fail("shared", "%s holds the value of c%d#%d, which was never written to it" % (path, wc, wi))
                continue
            if rng[wc] and w.idx >= rng[wc][1]:
                self.fail("order", "%s holds the value of %s, which is beyond client %d's recovered prefix (%d)"
                          % (path, w.desc(), wc, rng[wc][1]))
            for x in sure:
                if x is w:
                    continue
                if (x.cid == w.cid and x.idx > w.idx) or (w.reply_t is not None and x.send_t > w.reply_t):
                    self.fail("lost", "%s holds the value of %s, but %s was applied after it" % (path, w.desc(), x.desc()))
                    break

        # "/shared" and paths no request touched
        touched = set()
        for cl in clients:
            touched.update(p for p in cl.hist if not p.startswith("#"))
        shared_now = {"/shared", "/shared/r%d" % r} | {"/shared/r%d/log%d" % (r, j) for j in range(N_LOGS)} \
            | {"/shared/w%d" % j for j in range(N_SWRITES)}
        for p in sorted(set(self.baseline_keys) | set(view)):
            if p in touched or p in shared_now:
                continue
            if obs(p) != self.baseline_keys.get(p):
                self.fail("untouched", "%s was %s, no request touched it, now %s"
                          % (p, key_desc(self.baseline_keys.get(p)), key_desc(obs(p), arrs.get(p))))
        any_shared = any(obs(p) is not ABSENT for p in shared_now if p != "/shared") or any(
            p.startswith("/shared/") and k is not ABSENT for p, (k, _) in view.items())
        if (self.baseline_keys.get("/shared") == GROUP or any_shared) and obs("/shared") != GROUP:
            self.fail("shared", "/shared is %s" % key_desc(obs("/shared")))
        return total_req, total_kept

    def known_paths(self, r, clients):
        paths = set(self.baseline_keys)
        for cl in clients:
            paths.update(p for p in cl.hist if not p.startswith("#"))
            paths.update(cl.objs)
        paths.update({"/shared", "/shared/r%d" % r})
        paths.update("/shared/r%d/log%d" % (r, j) for j in range(N_LOGS))
        paths.update("/shared/w%d" % j for j in range(N_SWRITES))
        return paths

    def h5py_check(self, known, view):
        seen = {}
        try:
            with h5py.File(self.file, "r") as f:
                def visit(name, obj):
                    p = "/" + name
                    if isinstance(obj, h5py.Group):
                        seen[p] = (GROUP, None)
                    else:
                        try:
                            a = np.asarray(obj[()])
                            seen[p] = (array_key(a), a)
                        except Exception as e:
                            seen[p] = (("ERR", "h5py cannot read it: %s" % e), None)
                f.visititems(visit)
        except Exception as e:
            self.fail("h5py", "h5py cannot open or walk the file: %s" % e)
            return False
        for p in sorted(seen):
            if p not in known:
                self.fail("h5py", "unexpected object %s (%s)" % (p, key_desc(*seen[p])))
        for p in sorted(known):
            a = seen.get(p, (ABSENT, None))
            b = view.get(p, (ABSENT, None))
            if a[0] != b[0]:
                self.fail("h5py", "%s: h5py sees %s, the server returned %s" % (p, key_desc(*a), key_desc(*b)))
        return True

    def structural_check(self):
        for cmd in (["h5dump", "-H", self.file], ["h5stat", self.file]):
            if not shutil.which(cmd[0]):
                continue
            p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
            err = p.stderr.decode("utf-8", "replace")
            if p.returncode != 0 or "error" in err.lower():
                self.fail("structure", "`%s` exited %d: %s" % (" ".join(cmd[:-1]), p.returncode, err[-1500:]))
        self.st["structural checks"] += 1

    def scan_stderr(self):
        try:
            with open(self.log_path, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return
        for line in text.splitlines():
            if line.startswith("---- "):
                continue
            if any(m in line for m in h5a_util.SANITIZER_MARKERS) or "commit failed" in line \
                    or "free-space" in line:
                self.fail("stderr", "server stderr: %s" % line[:500])
            self.stderr_lines[re.sub(r"\d+", "N", line)[:160]] += 1

    def killed_starts(self, n, plan, times_ms):
        """Start the server n times and kill -9 each at a random moment of
        its startup (recovery): uniform in 0..1.3x the recent median start
        time + 2 ms. Returns a note per kill ("*": it was listening)."""
        notes = []
        median = statistics.median(times_ms[-20:]) / 1e3
        for i in range(n):
            s = self.start(plan["restart_durability"], plan["restart_compression"], "start (to be killed)")
            delay = plan["recovery_kill_frac"][i] * (median + 0.002)
            try:
                ready = s.poll_ready(delay)
            except StartError as e:
                self.fail("start", "a start that was to be killed failed by itself: %s" % e)
                self.scan_stderr()
                raise Abort("the server does not start")
            s.kill()
            self.st["kills during recovery"] += 1
            self.st["  ...after it was listening" if ready else "  ...before it was listening"] += 1
            notes.append("%.1fms%s" % (delay * 1e3, "*" if ready else ""))
        return notes

    def start(self, durability, compression, label):
        self.srv = ServerProc(self, durability, compression, label)
        return self.srv

    def run_round(self, r):
        args = self.args
        self.round = r
        self.round_failures = []
        self.log_path = os.path.join(self.logdir, "round-%04d.log" % r)
        plan = self.plan(r)
        srv = self.srv
        clients = self.make_clients(r, plan)

        # 1-2: load, kill -9
        asyncio.run(self.load(r, clients, plan))
        srv.proc.wait()
        kills = 1
        self.modes[plan["mode"]] += 1
        wal = os.path.getsize(self.wal) if os.path.exists(self.wal) else 0
        self.wal_sizes.append(wal)
        crash_dir = os.path.join(self.workdir, "crash-state")
        if args.save_crash_state and os.path.getsize(self.file) <= args.save_crash_state * 1e6:
            shutil.rmtree(crash_dir, ignore_errors=True)
            os.makedirs(crash_dir)
            for p in (self.file, self.wal):
                if os.path.exists(p):
                    shutil.copy2(p, crash_dir)

        # statistics of the load
        sent = acked = after_kill = 0
        for cl in clients:
            for op in cl.ops:
                self.kinds[op.kind] += 1
                if op.mutating:
                    sent += 1
                    self.sent_by_level[op.level_eff] += 1
                    if op.ok:
                        acked += 1
                        self.acked_by_level[op.level_eff] += 1
                elif op.kind in ("sync", "read"):
                    self.sent_by_level[op.kind] += 1
                    if op.ok:
                        self.acked_by_level[op.kind] += 1
                if op.ok and self.kill_t is not None and op.reply_t > self.kill_t:
                    after_kill += 1
        self.st["replies after the kill"] += after_kill

        # 3: restart, maybe killing it during its recovery first
        rk_notes = self.killed_starts(plan["recovery_kills"], plan, self.recovery_ms)
        kills += len(rk_notes)
        s = self.start(plan["restart_durability"], plan["restart_compression"], "recovery")
        try:
            s.wait_ready()
        except StartError as e:
            self.fail("start", "the server does not start after the crash: %s" % e)
            self.scan_stderr()
            raise Abort("the server does not start")
        rec = s.ready_time - s.t0
        self.recovery_times.append(rec)
        self.recovery_ms.append(rec * 1e3)

        # 4: check through the server
        known = self.known_paths(r, clients)
        view = asyncio.run(self.read_all(s, known))
        need, have = self.analyze(r, clients, view)
        self.baseline_keys = {p: k for p, (k, a) in view.items() if k is not ABSENT and k[0] != "ERR"}
        self.baseline_arrs = {p: a for p, (k, a) in view.items() if k is not ABSENT and k[0] == "D"}

        # 5: clean stop, h5py, structure
        note = "continues"
        start_notes = ""
        if plan["clean_stop"]:
            rc = s.stop()
            if rc != 0:
                self.fail("stop", "SIGTERM: exit status %s, expected 0" % rc)
            if os.path.exists(self.wal):
                self.fail("stop", "%s is still there after a clean stop" % self.wal)
            self.h5py_check(known, view)
            note = "h5py"
            if plan["structural"]:
                self.structural_check()
                note = "h5py+h5dump"
            self.st["h5py checks"] += 1
            self.srv = None
            if r < args.rounds - 1:
                sk = self.killed_starts(plan["start_kills"], plan, self.start_ms)
                kills += len(sk)
                if sk:
                    start_notes = " (next start killed at %s)" % ",".join(sk)
                t = self.start(plan["next_durability"], plan["next_compression"], "clean start")
                try:
                    t.wait_ready()
                except StartError as e:
                    self.fail("start", "the server does not start on the cleanly closed file%s: %s"
                              % (" (killed while starting)" if sk else "", e))
                    self.scan_stderr()
                    raise Abort("the server does not start")
                (self.recovery_times if sk else self.clean_start_times).append(t.ready_time - t.t0)
                self.start_ms.append((t.ready_time - t.t0) * 1e3)
        else:
            self.srv = s
        self.scan_stderr()
        self.st["kills"] += kills

        fsize = os.path.getsize(self.file)
        lv = collections.Counter(op.level_eff for cl in clients for op in cl.ops if op.mutating)
        print("round %3d %-5s %-6s %-8s %5.0fms  sent %5d ok %5d (none %d flush %d fsync %d) must %5d kept %5d"
              " | restart %5.1f ms%s | wal %s file %s | %s%s"
              % (r, srv.durability, plan["profile"], plan["mode"], plan["delay"] * 1e3, sent, acked, lv["none"], lv["flush"],
                 lv["fsync"], need, have, rec * 1e3,
                 " (killed while recovering at %s)" % ",".join(rk_notes) if rk_notes else "",
                 mb(wal), mb(fsize), note + start_notes, "" if not self.round_failures else "  FAIL x%d" % len(self.round_failures)),
              flush=True)
        if self.round_failures:
            keep = os.path.join(self.workdir, "failed-r%04d" % r)
            if os.path.isdir(crash_dir):
                shutil.copytree(crash_dir, keep, dirs_exist_ok=True)
            self.failures.extend(self.round_failures)

    def run(self):
        a = self.args
        self.round = -1
        self.log_path = os.path.join(self.logdir, "round-0000.log")
        s = self.start(random.Random("%s/first" % self.seed).choice(LEVELS), False, "first start (new file)")
        try:
            s.wait_ready()
        except StartError as e:
            raise Abort("the server does not start on a new file: %s" % e)
        for r in range(a.rounds):
            self.run_round(r)
            if self.failures and (a.fail_fast or len(self.failures) >= a.max_failures):
                print("stopping after %d failures" % len(self.failures))
                break
        if self.srv is not None:  # the last round always stops cleanly; defensive
            self.srv.stop()
        return self.round + 1


def mb(n):
    return "%.1fM" % (n / 1e6) if n >= 1e5 else "%dK" % (n // 1000)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    ap.add_argument("--server", default=os.environ.get("H5A_SERVER") or os.path.join(REPO, "build", "hdf5-async-server"))
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--max-delay", type=float, default=1.5, help="longest load before the kill, seconds")
    ap.add_argument("--check-every", type=int, default=10, help="h5dump/h5stat every N rounds")
    ap.add_argument("--workdir", default=None, help="default: a new temporary directory (kept on failure)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory on success too")
    ap.add_argument("--fail-fast", action="store_true", help="stop at the first failing round")
    ap.add_argument("--max-failures", type=int, default=20)
    ap.add_argument("--save-crash-state", type=float, default=256, metavar="MB",
                    help="copy the file and its log as each kill left them (kept for failing rounds) "
                         "while the file is at most MB megabytes; 0: never")
    ap.add_argument("--kill-signal", choices=["KILL", "TERM"], default="KILL",
                    help="TERM: self-test of the oracle with graceful stops instead of kill -9, where "
                         "every acknowledged request must survive")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    if not os.path.exists(args.server):
        print("crashtest: no server binary at %s (run make, or pass --server)" % args.server, file=sys.stderr)
        return 2
    made = args.workdir is None
    if made:
        args.workdir = tempfile.mkdtemp(prefix="h5a-crash-")
    os.makedirs(args.workdir, exist_ok=True)
    if os.path.exists(os.path.join(args.workdir, "data.h5")):
        print("crashtest: %s already holds data.h5; give an empty --workdir" % args.workdir, file=sys.stderr)
        return 2
    print("crashtest: seed %d, %d rounds, %d clients, kill within %.2f s, server %s, work dir %s"
          % (args.seed, args.rounds, args.clients, args.max_delay, args.server, args.workdir), flush=True)
    h = Harness(args)
    t0 = time.monotonic()
    status = 0
    try:
        rounds = h.run()
    except Abort as e:
        rounds = h.round + 1
        h.failures.extend(x for x in h.round_failures if x not in h.failures)
        if not h.failures:
            h.failures.append((h.round, "abort", str(e)))
        print("ABORTED in round %d: %s" % (h.round, e), flush=True)
    except BaseException:
        traceback.print_exc()
        rounds = h.round + 1
        status = 2
    finally:
        if h.srv is not None and h.srv.proc.poll() is None:
            h.srv.kill()
    elapsed = time.monotonic() - t0

    # ---- summary
    print("\n==== crashtest summary (seed %d) ====" % args.seed)
    print("rounds run: %d of %d in %.0f s (%.2f s/round); kills: %d under load (+%d while starting/recovering: %d before, %d after"
          " 'listening')" % (rounds, args.rounds, elapsed, elapsed / max(rounds, 1), h.st["kills"] - h.st["kills during recovery"],
                             h.st["kills during recovery"], h.st["  ...before it was listening"],
                             h.st["  ...after it was listening"]))
    print("kill moments: " + ", ".join("%s %d" % kv for kv in sorted(h.modes.items())))
    print("requests (effective durability): " + ", ".join(
        "%s %d sent / %d ok" % (k, h.sent_by_level[k], h.acked_by_level[k])
        for k in ("none", "flush", "fsync", "sync", "read")))
    print("  by kind: " + ", ".join("%s %d" % kv for kv in sorted(h.kinds.items())))
    print("  ok replies that arrived after the kill signal: %d" % h.st["replies after the kill"])
    if h.recovery_times:
        rt = [x * 1e3 for x in h.recovery_times]
        print("restart after crash to 'listening': min %.1f, median %.1f, p95 %.1f, max %.1f ms (%d restarts)"
              % (min(rt), statistics.median(rt), pct(rt, 0.95), max(rt), len(rt)))
    if h.clean_start_times:
        ct = [x * 1e3 for x in h.clean_start_times]
        print("start of a cleanly closed file: median %.1f, max %.1f ms" % (statistics.median(ct), max(ct)))
    if h.wal_sizes:
        print("FILE.wal at the kill: median %s, max %s; file now %s"
              % (mb(statistics.median(h.wal_sizes)), mb(max(h.wal_sizes)),
                 mb(os.path.getsize(h.file)) if os.path.exists(h.file) else "?"))
    print("checks: %d through the server, %d with h5py, %d with h5dump/h5stat"
          % (len(h.recovery_times), h.st["h5py checks"], h.st["structural checks"]))
    if h.stderr_lines:
        print("server stderr lines (digits as N):")
        for line, n in h.stderr_lines.most_common(8):
            print("  %5d  %s" % (n, line))
    if h.failures:
        bad_rounds = sorted({f[0] for f in h.failures})
        print("FAILURES: %d in rounds %s" % (len(h.failures), bad_rounds))
        for rr, cat, msg in h.failures[:30]:
            print("  round %d [%s] %s" % (rr, cat, msg.split("\n")[0][:300]))
        print("reproduce: make crashtest CRASH_SEED=%d CRASH_ROUNDS=%d   (or: %s --seed %d --rounds %d)"
              % (args.seed, bad_rounds[0] + 1, os.path.relpath(__file__, REPO), args.seed, bad_rounds[0] + 1))
        print("work dir kept: %s" % args.workdir)
        status = status or 1
    elif status == 0 and made and not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    print("FAIL" if status else "PASS")
    return status


if __name__ == "__main__":
    sys.exit(main())
