"""make bench, cluster rows (issue 14): appends to 8 files spread over 1
node against the same 8 files over 3 nodes ([cluster], one data root),
from 8 client processes, one file each.

Usage: bench_cluster.py --server BUILD/hdf5-async-server [--quick]

On one machine the three servers share its cores and its disk, so the
ratio says more about the mechanism (each node's one storage thread works
for its own files) than about a real cluster, where each node brings its own
CPU, network and file-system client: see docs/scaling.md. Figures are the
best of a few repetitions, for reading, never asserted.
"""

import argparse
import asyncio
import multiprocessing as mp
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from hdf5_async import HDF5Client  # noqa: E402
from hdf5_async import cluster  # noqa: E402

ROW = 16  # float64 values per appended row, as bench.c
FILES = ["run_%04d.h5" % i for i in range(8)]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start(binary, cfg, workdir, node):
    args = [os.path.abspath(binary), "--config", cfg]
    if node is not None:
        args += ["--node", str(node)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=workdir)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = b""
    deadline = time.monotonic() + 60
    while not line.endswith(b"\n"):
        if not sel.select(max(0.0, deadline - time.monotonic())):
            proc.kill()
            sys.exit("bench_cluster: a server printed nothing in 60 s")
        chunk = os.read(proc.stdout.fileno(), 256)
        if not chunk:
            sys.exit("bench_cluster: a server exited at start")
        line += chunk
    return proc, int(line.decode().strip().rsplit(":", 1)[1])


def writer(cfg, file, n, window, q, go_evt):
    async def go():
        rows = np.arange(ROW, dtype="<f8").reshape(1, ROW)
        async with HDF5Client(config=cfg, durability="none", file=file) as c:
            await c.append("/x", rows)  # the file made, the connection up
            q.put("ready")
            go_evt.wait()
            t0 = time.perf_counter()
            left = n
            while left:
                k = min(window, left)
                await asyncio.gather(*(c.append("/x", rows) for _ in range(k)))
                left -= k
            await c.sync("flush")
            return time.perf_counter() - t0

    q.put(asyncio.run(go()))


def run_once(cfg, n, window):
    ctx = mp.get_context("fork")
    qs = [ctx.Queue() for _ in FILES]
    go_evt = ctx.Event()
    procs = [ctx.Process(target=writer, args=(cfg, f, n, window, q, go_evt))
             for f, q in zip(FILES, qs)]
    for p in procs:
        p.start()
    for q in qs:
        assert q.get(timeout=60) == "ready"
    t0 = time.perf_counter()
    go_evt.set()
    for q in qs:
        q.get(timeout=600)
    took = time.perf_counter() - t0
    for p in procs:
        p.join()
    return len(FILES) * n / took


def measure(binary, nnodes, n, window, reps, workdir):
    root = os.path.join(workdir, "root%d" % nnodes)
    os.makedirs(root)
    cfg = os.path.join(workdir, "c%d.ini" % nnodes)
    ports = free_ports(nnodes)
    nodes = ["127.0.0.1:%d" % p for p in ports]
    with open(cfg, "w") as f:
        f.write("[server]\nhost = 127.0.0.1\ndata_root = %s\n" % root)
        if nnodes > 1:
            f.write("[cluster]\nnodes = %s\n" % ", ".join(nodes))
        else:
            f.write("port = %d\n" % ports[0])
    procs = [start(binary, cfg, workdir, i if nnodes > 1 else None)[0] for i in range(nnodes)]
    try:
        spread = sorted(cluster.owner(nodes, f) for f in FILES) if nnodes > 1 else [0] * 8
        best = max(run_once(cfg, n, window) for _ in range(reps))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    return best, [spread.count(i) for i in range(nnodes)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(HERE, "..", "build", "hdf5-async-server"))
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n, reps = (2000, 1) if a.quick else (10000, 3)
    workdir = tempfile.mkdtemp(prefix="h5a-bench-cluster-")
    try:
        one, _ = measure(a.server, 1, n, 64, reps, workdir)
        three, spread = measure(a.server, 3, n, 64, reps, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("cluster: appends of one %d-float row, 8 files, 8 client processes (os.cpu_count()=%d)"
          % (ROW, os.cpu_count() or 0))
    print("  %-34s %12s" % ("", "rows/s"))
    print("  %-34s %12.0f" % ("8 files on 1 node", one))
    print("  %-34s %12.0f   files per node %s" % ("8 files on 3 nodes ([cluster])", three, spread))
    print("  %-34s %12.2f" % ("ratio 3 nodes / 1 node", three / one))


if __name__ == "__main__":
    main()
