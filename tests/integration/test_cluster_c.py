"""[cluster] and the C clients, blocking and asynchronous (issue 14): with
follow_wrong_node each sends a request on to the node a WRONG_NODE reply
names (the asynchronous one with pipelines in flight: every callback once,
each file's requests in order), over plaintext, with a token and over TLS;
without it the owner is surfaced (hdf5a_wrong_node); nodes whose lists
disagree give a clear error instead of a loop; an owner that is down gives
the connect's error; with cluster_nodes both go to the file's owner before
sending. The C side is tests/client/cluster_follow.c ($H5A_CLUSTER_FOLLOW,
built by make); h5py checks what landed in the files."""

import hashlib
import os
import subprocess

import h5py
import numpy as np
import pytest

from hdf5_async import cluster as hcluster
from test_cluster import TIMEOUT, Cluster, free_ports

PROG = os.path.abspath(os.environ.get("H5A_CLUSTER_FOLLOW") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "tests", "client", "cluster_follow"))


def run_prog(*args, token=None, ca=None):
    assert os.path.exists(PROG), "%s is not built (make)" % PROG
    env = dict(os.environ)
    env.pop("H5A_TOKEN", None)
    env.pop("H5A_TLS_CA", None)
    if token:
        env["H5A_TOKEN"] = token
    if ca:
        env["H5A_TLS_CA"] = ca
    return subprocess.run([PROG] + list(args), capture_output=True, text=True, timeout=120,
                          env=env)


class AuthCluster(Cluster):
    """The same three nodes, each with an auth_file: a token is needed."""
    TOKEN = "w-" + "7" * 40

    def start(self, i, gen=0):
        tokens = self.tmp / "tokens"
        tokens.write_text("writer write %s\n" % hashlib.sha256(self.TOKEN.encode()).hexdigest())
        return self.start_server(
            server_opts={"data_root": str(self.root), "hdf5_file_path": "default.h5",
                         "auth_file": str(tokens)},
            workdir=self.tmp / ("node%d-%d" % (i, gen)), extra_config=self.extra,
            extra_args=["--node", str(i), "--port", self.nodes[i].rpartition(":")[2]])


class TLSCluster(AuthCluster):
    """The same with TLS too: following makes a new TLS session per node."""

    def __init__(self, start_server, tmp_path):
        from test_auth_tls import _make_ca_and_cert
        (tmp_path / "certs").mkdir()
        self.ca, self.cert, self.key = _make_ca_and_cert(tmp_path / "certs")
        super().__init__(start_server, tmp_path)

    def start(self, i, gen=0):
        tokens = self.tmp / "tokens"
        tokens.write_text("writer write %s\n" % hashlib.sha256(self.TOKEN.encode()).hexdigest())
        return self.start_server(
            server_opts={"data_root": str(self.root), "hdf5_file_path": "default.h5",
                         "auth_file": str(tokens), "tls_cert_file": self.cert,
                         "tls_key_file": self.key},
            workdir=self.tmp / ("node%d-%d" % (i, gen)), extra_config=self.extra,
            extra_args=["--node", str(i), "--port", self.nodes[i].rpartition(":")[2]])


@pytest.mark.parametrize("mode", ["three", "athree", "cthree"])  # blocking, async, async+cluster_nodes
@pytest.mark.parametrize("auth", [None, "token", "tls"])
def test_c_client_follows_wrong_node(start_server, tmp_path, auth, mode):
    cl = {None: Cluster, "token": AuthCluster, "tls": TLSCluster}[auth](start_server, tmp_path)
    r = run_prog(mode, *cl.nodes, token=AuthCluster.TOKEN if auth else None,
                 ca=cl.ca if auth == "tls" else None)
    assert r.returncode == 0, r.stdout + r.stderr
    placed = dict(line.split() for line in r.stdout.splitlines())
    assert len(placed) == 3
    for s in cl.servers:
        s.stop()
    for i, (fname, node) in enumerate(sorted(placed.items(), key=lambda x: cl.nodes.index(x[1]))):
        assert hcluster.owner(cl.nodes, fname) == cl.nodes.index(node) == i
        with h5py.File(cl.root / fname, "r") as f:  # the append refused by node 0 is not there
            np.testing.assert_array_equal(f["rows"][...], [10 * i, 10 * i + 1, 10 * i + 2,
                                                           10 * i + 5, 10 * i + 6, 10 * i + 7])
            if mode != "three":  # the interleaved pipelines: each file's values in order
                if i > 0:  # redirected by node 0, then the context was freed: never re-sent
                    assert "gone" not in f
                for rec in range(2):
                    np.testing.assert_array_equal(f["seq%d" % rec][...], np.arange(1000 + i, 1030, 3))


@pytest.mark.parametrize("mode", ["loop", "aloop"])
def test_c_client_refuses_a_redirection_loop(start_server, tmp_path, mode):
    # two nodes whose lists name node 0 differently: for some files each
    # says the other owns it
    root = tmp_path / "root"
    root.mkdir()
    px, py = free_ports(2)
    lists = [["127.0.0.1:%d" % px, "127.0.0.1:%d" % py], ["localhost:%d" % px, "127.0.0.1:%d" % py]]
    servers = [start_server(
        server_opts={"data_root": str(root), "hdf5_file_path": "default.h5"},
        workdir=tmp_path / ("n%d" % i), extra_config="[cluster]\nnodes = %s\n" % ", ".join(lists[i]),
        extra_args=["--node", str(i), "--port", str((px, py)[i])]) for i in range(2)]
    f = next("loop_%d.h5" % k for k in range(1000)
             if hcluster.owner(lists[0], "loop_%d.h5" % k) == 1
             and hcluster.owner(lists[1], "loop_%d.h5" % k) == 0)
    r = run_prog(mode, "127.0.0.1:%d" % px, f)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "127.0.0.1:%d -> 127.0.0.1:%d -> localhost:%d -> 127.0.0.1:%d" % (px, py, px, py) \
        in r.stderr, r.stderr
    for s in servers:
        s.stop()
    assert not (root / f).exists()  # nothing applied anywhere


@pytest.mark.parametrize("mode", ["dead", "adead"])
def test_c_client_owner_down(start_server, tmp_path, mode):
    # node 0 is up, node 1 (the owner of the file) is not: the connect's
    # error, the owner named, the client back on node 0, nothing applied
    root = tmp_path / "root"
    root.mkdir()
    px, pdead = free_ports(2)
    nodes = ["127.0.0.1:%d" % px, "127.0.0.1:%d" % pdead]
    srv = start_server(
        server_opts={"data_root": str(root), "hdf5_file_path": "default.h5"},
        workdir=tmp_path / "n0", extra_config="[cluster]\nnodes = %s\n" % ", ".join(nodes),
        extra_args=["--node", "0", "--port", str(px)])
    f = next("dead_%d.h5" % k for k in range(1000) if hcluster.owner(nodes, "dead_%d.h5" % k) == 1)
    r = run_prog(mode, nodes[0], f, nodes[1])
    assert r.returncode == 0, r.stdout + r.stderr
    srv.stop()
    assert not (root / f).exists()


def test_c_client_cluster_nodes_goes_to_the_owner_first(start_server, tmp_path):
    # cluster_nodes (both C clients): the client computes the owner from its
    # list and moves there before sending. To see that it did, the two nodes
    # have separate roots and lists that both claim the file: node 0 would
    # apply it had it been sent there.
    px, py = free_ports(2)
    lists = [["127.0.0.1:%d" % px, "127.0.0.1:%d" % py], ["localhost:%d" % px, "127.0.0.1:%d" % py]]
    roots = [tmp_path / "r0", tmp_path / "r1"]
    servers = []
    for i in range(2):
        roots[i].mkdir()
        servers.append(start_server(
            server_opts={"data_root": str(roots[i]), "hdf5_file_path": "default.h5"},
            workdir=tmp_path / ("n%d" % i),
            extra_config="[cluster]\nnodes = %s\n" % ", ".join(lists[i]),
            extra_args=["--node", str(i), "--port", str((px, py)[i])]))
    f = next("both_%d.h5" % k for k in range(1000)
             if hcluster.owner(lists[0], "both_%d.h5" % k) == 0
             and hcluster.owner(lists[1], "both_%d.h5" % k) == 1)
    r = run_prog("nodes", "127.0.0.1:%d" % px, ", ".join(lists[1]), f)
    assert r.returncode == 0, r.stdout + r.stderr
    for s in servers:
        s.stop()
    assert not (roots[0] / f).exists()
    with h5py.File(roots[1] / f, "r") as h:  # the blocking append, then the async one
        np.testing.assert_array_equal(h["rows"][...], [1, 2, 3, 4, 5, 6])
