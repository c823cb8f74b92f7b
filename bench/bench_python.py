"""make bench, Python rows: hdf5_async through the real server against h5py
on a local file, side by side in one run, on the same disk.

Usage: bench_python.py --server BUILD/hdf5-async-server [--quick]

Both sides do the same work with the same arrays; the server side asks for
durability "none" (h5py does not flush either). Figures are the best of
several repetitions, for reading, never asserted: the machine is noisy.
"""

import argparse
import asyncio
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import hdf5_async  # noqa: E402
from hdf5_async import HDF5Client  # noqa: E402

MIB = 1 << 20
ROW = 16  # float64 values per appended row, as bench.c


def start_server(binary, workdir):
    cfg = os.path.join(workdir, "config.ini")
    with open(cfg, "w") as f:
        f.write("[server]\nhost = 127.0.0.1\nhdf5_file_path = %s\n" % os.path.join(workdir, "server.h5"))
    proc = subprocess.Popen([binary, "--config", cfg, "--port", "0"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=workdir)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = b""
    deadline = time.monotonic() + 60
    while not line.endswith(b"\n"):
        if not sel.select(max(0.0, deadline - time.monotonic())):
            proc.kill()
            sys.exit("bench_python: the server printed nothing in 60 s")
        chunk = os.read(proc.stdout.fileno(), 256)
        if not chunk:
            sys.exit("bench_python: the server exited at start")
        line += chunk
    text = line.decode().strip()
    if not text.startswith("listening on "):
        sys.exit("bench_python: unexpected server output %r" % text)
    return proc, "127.0.0.1:%s" % text.rsplit(":", 1)[1]


def best(fn, reps):
    """Shortest of reps timed runs of fn(i)."""
    out = float("inf")
    for i in range(reps):
        t = time.perf_counter()
        fn(i)
        out = min(out, time.perf_counter() - t)
    return out


def row(name, unit, local, server, goal=""):
    ratio = server / local
    print("%-52s %12.1f %12.1f %-7s %7.2fx  %s" % (name, local, server, unit, ratio, goal), flush=True)
    return ratio


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(HERE, "..", "build", "hdf5-async-server"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dir")
    args = ap.parse_args()
    reps = 2 if args.quick else 5
    rows = 2000 if args.quick else 20000
    workdir = args.dir or tempfile.mkdtemp(prefix="hdf5-async-bench-py.")
    proc, server = start_server(os.path.abspath(args.server), workdir)
    try:
        run(server, workdir, reps, rows)
    finally:
        proc.terminate()
        proc.wait()
        if not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)


def run(server, workdir, reps, nrows):
    big = np.arange(64 * MIB // 8, dtype="<f8") * 0.5
    mb = big.nbytes / 1e6
    print("\nPython (hdf5_async.File / HDF5Client through the server vs h5py on a local file; "
          "files in %s)" % workdir)
    print("%-52s %12s %12s %-7s %8s  %s" % ("workload", "h5py local", "hdf5_async", "unit", "ratio",
                                           "goal"))
    local = h5py.File(os.path.join(workdir, "h5py.h5"), "w")
    remote = hdf5_async.File(server=server, timeout=600)
    remote.client.durability = "none"
    try:
        # a new dataset per repetition: f[name] = array, the everyday write
        t_l = best(lambda i: local.__setitem__("new%d" % i, big), reps)
        t_r = best(lambda i: remote.__setitem__("new%d" % i, big), reps)
        row("write 64 MiB f8 as a new dataset (f[name] = a)", "MB/s", mb / t_l, mb / t_r, ">= 0.8x")
        # the same dataset rewritten in place: ds[...] = a
        dl, dr = local["new0"], remote["new0"]
        t_l = best(lambda i: dl.__setitem__(Ellipsis, big), reps)
        t_r = best(lambda i: dr.__setitem__(Ellipsis, big), reps)
        row("rewrite 64 MiB f8 in place (ds[...] = a)", "MB/s", mb / t_l, mb / t_r)
        t_l = best(lambda i: dl[()], reps)
        t_r = best(lambda i: dr[()], reps)
        back = dr[()]
        assert back.tobytes() == big.tobytes(), "read back differs"
        row("read 64 MiB f8 (ds[()])", "MB/s", mb / t_l, mb / t_r, ">= 0.5x")
        # 1-row appends: h5py's resize-and-write per row, against one
        # client's appends in flight together (asyncio.gather)
        rowdata = np.arange(ROW, dtype="<f8").reshape(1, ROW)
        ds = local.create_dataset("rows", (0, ROW), maxshape=(None, ROW), dtype="<f8")

        def h5py_rows(_):
            for _ in range(nrows):
                n = ds.shape[0]
                ds.resize(n + 1, axis=0)
                ds[n] = rowdata[0]

        t_l = best(h5py_rows, 1)
        t_r = best(lambda i: asyncio.run(_appends(server, rowdata, nrows, "/rows%d" % i)), 1)
        row("append 1x16 f8, asyncio.gather, 1 client", "rows/s", nrows / t_l, nrows / t_r, ">= 1.0x")
        n = remote["rows0"].shape[0]
        assert n == nrows, "appended %d rows of %d" % (n, nrows)
    finally:
        local.close()
        remote.close()


async def _appends(server, rowdata, n, path):
    host, port = server.rsplit(":", 1)
    async with HDF5Client(host, int(port), durability="none", timeout=600) as c:
        await asyncio.gather(*(c.append(path, rowdata) for _ in range(n)))


if __name__ == "__main__":
    main()
