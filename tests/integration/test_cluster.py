"""[cluster] (issue 14): three servers on one machine share one data root;
each file belongs to exactly one node by rendezvous hashing; the others
answer WRONG_NODE naming the owner; the Python client routes by itself and
follows WRONG_NODE; a virtual dataset over files of all three nodes reads
with h5py; a node restarted while the others keep serving."""

import os
import socket
from collections import Counter

import h5py
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, run
from hdf5_async import HDF5Client
from hdf5_async import cluster as hcluster
from hdf5_async.errors import WrongNodeError

TIMEOUT = 30
NFILES = 100


def free_ports(n):
    """Ports the OS hands out now (bound, read, closed): a server must know
    its own address in the node list before it starts."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    def __init__(self, start_server, tmp_path):
        self.start_server = start_server
        self.tmp = tmp_path
        self.root = tmp_path / "root"
        self.root.mkdir()
        self.nodes = ["127.0.0.1:%d" % p for p in free_ports(3)]
        self.extra = "[cluster]\nnodes = %s\n" % ", ".join(self.nodes)
        self.config = tmp_path / "cluster.ini"  # what clients read
        self.config.write_text("[server]\nhost = 127.0.0.1\n\n" + self.extra)
        self.servers = [self.start(i) for i in range(3)]
        self.generation = 0

    def start(self, i, gen=0):
        return self.start_server(
            server_opts={"data_root": str(self.root), "hdf5_file_path": "default.h5"},
            workdir=self.tmp / ("node%d-%d" % (i, gen)), extra_config=self.extra,
            extra_args=["--node", str(i), "--port", self.nodes[i].rpartition(":")[2]])

    def client(self, **kw):
        return HDF5Client(config=str(self.config), timeout=TIMEOUT, **kw)


def names():
    return ["scan_%03d/run_%04d.h5" % (i // 10, i) for i in range(NFILES)]


def test_hash_matches_the_documented_function():
    # fixed values: any client in any language must compute these (the C
    # library's hdf5a_cluster_owner is checked against the same in test_client)
    assert hcluster.weight("10.0.0.1:8888", "run_0001.h5") == 0xDFEF28EFED5BC4B9
    nodes = ["a:1", "b:2", "c:3"]
    assert [hcluster.owner(nodes, "f%d.h5" % i) for i in range(10)] == [0, 0, 2, 0, 1, 0, 1, 2, 0, 2]
    owners = Counter(hcluster.owner(nodes, "f%d.h5" % i) for i in range(3000))
    assert set(owners) == {0, 1, 2} and min(owners.values()) > 900  # about a third each
    # removing a node moves only that node's files
    before = {f: nodes[hcluster.owner(nodes, f)] for f in ("f%d.h5" % i for i in range(300))}
    after = {f: ["a:1", "c:3"][hcluster.owner(["a:1", "c:3"], f)] for f in before}
    assert all(after[f] == before[f] for f in before if before[f] != "b:2")


def test_three_nodes(start_server, tmp_path):
    cl = Cluster(start_server, tmp_path)
    files = names()
    owner = {f: hcluster.owner(cl.nodes, f) for f in files}
    spread = Counter(owner.values())
    print("100 files over 3 nodes:", dict(sorted(spread.items())))
    assert set(spread) == {0, 1, 2}

    # every file written through the routing client: each lands on its owner
    async def write_all():
        async with cl.client() as c:
            for k, f in enumerate(files):
                await c.write("/data", np.full((4, 3), k, dtype="<i4"), file=f)
            return sorted(x["name"] for x in await c.list_files())

    listed = run(write_all(), timeout=240)
    assert listed == sorted(files + [])  # list_files: every file under the shared root

    # every file has exactly one owner: the others answer WRONG_NODE, naming it
    for i, srv in enumerate(cl.servers):
        with RawConn(srv) as conn:
            for k, f in enumerate(files[:30]):
                r = conn.call({"id": k, "op": "read", "path": "/data", "file": f})
                if owner[f] == i:
                    assert_ok(r)
                else:
                    assert_error(r, "WRONG_NODE")
                    assert r["error"]["node"] == cl.nodes[owner[f]]
            # a change to another node's file applies nothing
            other = next(f for f in files if owner[f] != i)
            assert_error(conn.call({"id": 99, "op": "create_group", "path": "/nope", "file": other}),
                         "WRONG_NODE")
            new = next("new_%d.h5" % k for k in range(100)
                       if hcluster.owner(cl.nodes, "new_%d.h5" % k) != i)
            assert_error(conn.call({"id": 98, "op": "append", "path": "/x", "data": [1],
                                    "file": new}), "WRONG_NODE")
            assert not (cl.root / new).exists()

    # a client that knows no node list follows WRONG_NODE by itself
    async def follow():
        async with HDF5Client(cl.servers[0].host, cl.servers[0].port, timeout=TIMEOUT) as c:
            f = next(f for f in files if owner[f] == 2)
            await c.append("/rows", np.arange(3), file=f)
            return (await c.read("/rows", file=f)).tolist()

    assert run(follow()) == [0, 1, 2]

    # a node restarted while the others keep serving
    victim = 1
    cl.servers[victim].stop()

    async def others_serve():
        async with cl.client() as c:
            got = []
            for f in files:
                if owner[f] == victim:
                    continue
                got.append(int((await c.read("/data", file=f))[0, 0]))
            with pytest.raises(Exception):
                await c.read("/data", file=next(f for f in files if owner[f] == victim))
            return got

    assert len(run(others_serve())) == NFILES - spread[victim]
    cl.servers[victim] = cl.start(victim, gen=1)

    async def all_serve():
        async with cl.client() as c:
            return [int((await c.read("/data", file=f))[0, 0]) for f in files]

    assert run(all_serve()) == list(range(NFILES))

    # the writers stop: their nodes close the files, and a virtual dataset
    # over files of all three nodes is made on one node and read with h5py
    for i in range(3):
        cl.servers[i].stop()
    cl.servers = [cl.start(i, gen=2) for i in range(3)]
    picked = [next(f for f in files if owner[f] == i) for i in range(3)] + files[40:43]

    async def master():
        async with cl.client() as c:
            return await c.create_virtual("/all", [(f, "/data") for f in picked], "stack",
                                          file="master.h5")

    assert run(master()) == (len(picked), 4, 3)
    for s in cl.servers:
        s.stop()
    with h5py.File(cl.root / "master.h5", "r") as f:
        got = f["all"][...]
    expect = np.stack([np.full((4, 3), files.index(p), dtype="<i4") for p in picked])
    np.testing.assert_array_equal(got, expect)
    # each file is a whole HDF5 file holding what its owner acknowledged
    for k, fname in enumerate(files):
        with h5py.File(cl.root / fname, "r") as f:
            assert int(f["data"][0, 0]) == k
        assert not os.path.exists(str(cl.root / fname) + ".wal")


def test_cli_goes_to_the_owner(start_server, tmp_path):
    """The CLI with the shared config and --file connects to the file's
    owner; without the node list, the owner answers and the others refuse."""
    import subprocess

    cli = os.path.abspath(os.environ.get("H5A_CLI") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "hdf5-async"))
    cl = Cluster(start_server, tmp_path)
    files = ["cli_%d.h5" % i for i in range(9)]
    for f in files:
        r = subprocess.run([cli, "--config", str(cl.config), "--file", f, "mkgroup", "/g"],
                           capture_output=True, text=True, timeout=TIMEOUT, cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
    r = subprocess.run([cli, "--config", str(cl.config), "ls-files"], capture_output=True,
                       text=True, timeout=TIMEOUT, cwd=str(tmp_path))
    assert sorted(ln.split()[0] for ln in r.stdout.splitlines()) == sorted(files)
    # straight to a node that does not own it: the CLI follows WRONG_NODE
    # (the C library's follow_wrong_node) to the owner
    f = files[0]
    o = hcluster.owner(cl.nodes, f)
    wrong = cl.servers[(o + 1) % 3]
    r = subprocess.run([cli, "--host", wrong.host, "--port", str(wrong.port), "--file", f,
                        "mkgroup", "/followed"],
                       capture_output=True, text=True, timeout=TIMEOUT, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    for s in cl.servers:
        s.stop()
    for k, fname in enumerate(files):
        with h5py.File(cl.root / fname, "r") as h:
            assert list(h) == (["followed", "g"] if k == 0 else ["g"])
