"""Who gets in: tokens with roles and path prefixes (auth_file, SIGHUP
reload), TLS (with and without client certificates), protected mode.

The server is the real one; certificates come from a throwaway CA made with
the `openssl` command; a client on another host is a network namespace the
test makes (and removes) with a veth pair, since every 127.x address is
loopback. h5py confirms that every refused request changed nothing."""

import hashlib
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

import h5py
import msgpack
import numpy as np
import pytest

import h5a_util
from h5a_util import assert_error, assert_ok

WAIT = h5a_util.IO_TIMEOUT


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def write_tokens(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class Conn:
    """A blocking framed connection, plaintext or TLS."""

    def __init__(self, srv, ctx=None, host="127.0.0.1", server_hostname="localhost"):
        s = socket.create_connection((host, srv.port), timeout=WAIT)
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname=server_hostname)
        s.settimeout(WAIT)
        self.sock = s
        self.next_id = 0

    def close(self):
        self.sock.close()

    def _exact(self, n):
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if not k:
                raise EOFError("closed after %d of %d bytes" % (got, n))
            got += k
        return bytes(buf)

    def send(self, obj):
        p = msgpack.packb(obj, use_bin_type=True)
        self.sock.sendall(struct.pack(">I", len(p)) + p)

    def recv(self):
        (n,) = struct.unpack(">I", self._exact(4))
        return msgpack.unpackb(self._exact(n), raw=False, strict_map_key=False)

    def call(self, op, **kw):
        self.next_id += 1
        req = {"id": self.next_id, "op": op}
        req.update(kw)
        self.send(req)
        return self.recv()

    def ok(self, op, **kw):
        return assert_ok(self.call(op, **kw))

    def err(self, code, op, **kw):
        r = self.call(op, **kw)
        assert_error(r, code)
        return r["error"]["message"]

    def closed_by_peer(self):
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return True


TOKENS = {"reader": "r-" + "1" * 40, "writer": "w-" + "2" * 40, "admin": "a-" + "3" * 40,
          "scoped": "s-" + "4" * 40}


@pytest.fixture
def tokens_file(tmp_path):
    return write_tokens(tmp_path / "tokens", [
        "# name role sha256 [prefixes]",
        "reader read %s" % sha(TOKENS["reader"]),
        "writer write %s   # a comment after the fields" % sha(TOKENS["writer"]),
        "",
        "admin admin %s /" % sha(TOKENS["admin"]),
        "scoped write %s /runs/a /shared" % sha(TOKENS["scoped"]),
    ])


@pytest.fixture
def authed(start_server, tokens_file):
    return start_server(server_opts={"auth_file": tokens_file})


def login(srv, name, **kw):
    c = Conn(srv, **kw)
    assert c.ok("auth", token=TOKENS[name]) == {"name": name, "role": {
        "reader": "read", "writer": "write", "admin": "admin", "scoped": "write"}[name]}
    return c


# --------------------------------------------------------------------------
# tokens
# --------------------------------------------------------------------------

def test_every_request_needs_a_token(authed):
    c = Conn(authed)
    for op, kw in [("ping", {}), ("read", {"path": "/x"}), ("create_group", {"path": "/g"}),
                   ("append", {"path": "/d", "data": [1, 2]})]:
        msg = c.err("UNAUTHENTICATED", op, **kw)
        assert "auth" in msg
    # the connection stays usable: authenticate, then work
    assert c.ok("auth", token=TOKENS["writer"]) == {"name": "writer", "role": "write"}
    assert c.ok("ping") == "pong"
    authed.stop()
    with h5a_util.h5open(authed.file) as f:
        assert list(f) == []


def test_three_bad_tokens_close_the_connection_and_are_logged_without_the_token(authed):
    c = Conn(authed)
    secret = "not-a-token-" + "x" * 20
    for i in range(3):
        msg = c.err("UNAUTHENTICATED", "auth", token=secret)
    assert "closing" in msg
    assert c.closed_by_peer()
    other = login(authed, "reader")  # nobody else is affected
    assert other.ok("ping") == "pong"
    authed.stop()
    log = authed.stderr()
    assert log.count("failed authentication from 127.0.0.1:") == 3
    assert secret not in log


def test_roles(authed):
    w = login(authed, "writer")
    w.ok("append", path="/d", data=[1, 2, 3])
    w.ok("set_attr", path="/d", name="a", data=1)
    r = login(authed, "reader")
    assert r.ok("read", path="/d")
    assert r.ok("get_attr", path="/d", name="a")[b"data"] == np.int64(1).tobytes()
    assert r.ok("exists", path="/d") is True
    for op, kw in [("append", {"path": "/d", "data": [4]}), ("delete", {"path": "/d"}),
                   ("create_group", {"path": "/g"}), ("set_attr", {"path": "/d", "name": "b", "data": 2}),
                   ("move", {"path": "/d", "dest": "/e"}), ("resize", {"path": "/d", "shape": [1]}),
                   ("ping", {"durability": "fsync"})][:-1]:
        msg = r.err("PERMISSION_DENIED", op, **kw)
        assert "read role" in msg and op in msg
    # a barrier changes nothing: a reader may ask for one
    assert r.ok("ping", durability="fsync") == "pong"
    a = login(authed, "admin")
    a.ok("delete", path="/d")
    authed.stop()
    with h5a_util.h5open(authed.file) as f:
        assert list(f) == []


def test_prefixes_bound_path_dest_and_link_target(authed):
    a = login(authed, "admin")
    a.ok("append", path="/secret/data", data=[42])
    a.ok("create_group", path="/runs/b")
    s = login(authed, "scoped")
    s.ok("append", path="/runs/a/x", data=[1.0, 2.0])
    s.ok("create_group", path="/shared/g")
    s.ok("create_link", path="/runs/a/rel", target="x")  # relative: /runs/a/x
    s.ok("create_link", path="/shared/abs", target="/runs/a/x")
    s.ok("move", path="/shared/g", dest="/runs/a/g")
    denied = [
        ("read", {"path": "/secret/data"}),
        ("list", {"path": "/"}),
        ("exists", {"path": "/runs"}),
        ("append", {"path": "/runs/ab", "data": [1]}),  # a sibling with the prefix's letters
        ("delete", {"path": "/runs/b"}),
        ("move", {"path": "/runs/a/x", "dest": "/secret/x"}),
        ("move", {"path": "/secret/data", "dest": "/runs/a/stolen"}),
        ("create_link", {"path": "/runs/a/l", "target": "/secret/data"}),
        ("create_link", {"path": "/runs/a/l", "target": "/runs"}),
    ]
    for op, kw in denied:
        msg = s.err("PERMISSION_DENIED", op, **kw)
        assert "scoped" in msg and "/runs/a, /shared" in msg, msg
    authed.stop()
    with h5a_util.h5open(authed.file) as f:
        assert f["secret/data"][()].tolist() == [42]
        assert "runs/b" in f and "runs/ab" not in f
        assert f["runs/a/x"][()].tolist() == [1.0, 2.0]
        assert "runs/a/g" in f and "shared/g" not in f
        assert f["runs/a/rel"][()].tolist() == [1.0, 2.0]
        assert sorted(f["shared"]) == ["abs"]


def test_sighup_reloads_the_tokens(authed, tokens_file, tmp_path):
    w = login(authed, "writer")
    r = login(authed, "reader")
    # the writer loses its token, the reader becomes a writer, a new one appears
    new = "n-" + "5" * 40
    write_tokens(tmp_path / "tokens", [
        "reader write %s" % sha(TOKENS["reader"]),
        "newbie read %s" % sha(new),
    ])
    authed.proc.send_signal(signal.SIGHUP)
    wait_log(authed, r"SIGHUP: reloaded .* \(2 tokens\)")
    msg = w.err("UNAUTHENTICATED", "ping")
    assert "removed" in msg
    r.ok("create_group", path="/by_reader")
    n = Conn(authed)
    assert n.ok("auth", token=new) == {"name": "newbie", "role": "read"}
    # a bad file keeps the table in force, and says why
    (tmp_path / "tokens").write_text("reader superuser %s\n" % sha(TOKENS["reader"]))
    authed.proc.send_signal(signal.SIGHUP)
    m = wait_log(authed, r"SIGHUP: keeping the old tokens: (.*)")
    assert "tokens:1:" in m.group(1) and "superuser" in m.group(1)
    r.ok("create_group", path="/still_writer")


def wait_log(srv, pattern):
    rx = re.compile(pattern)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        m = rx.search(srv.stderr())
        if m:
            return m
        time.sleep(0.05)  # polling a log file: no event to wait on
    raise AssertionError("no %r in the server's log:\n%s" % (pattern, srv.stderr()[-3000:]))


@pytest.mark.parametrize("lines,why", [
    (["alice read abc"], "64 lowercase hex"),
    (["alice read %s" % ("A" * 64)], "64 lowercase hex"),
    (["alice root %s" % sha("x")], "must be read, write or admin"),
    (["alice read %s" % sha("x"), "alice write %s" % sha("y")], "used twice"),
    (["alice read %s" % sha("x"), "bob write %s" % sha("x")], "same token hash"),
    (["alice read %s relative/path" % sha("x")], "relative"),
    (["alice read"], "expected NAME ROLE SHA256HEX"),
    (["al ice"], "expected NAME ROLE SHA256HEX"),
    (["al!ce read %s" % sha("x")], "must be 1 to 64 characters"),
])
def test_a_bad_tokens_file_stops_the_server(tmp_path, lines, why):
    path = write_tokens(tmp_path / "tok", ["# first line"] + lines)
    cfg = tmp_path / "c.ini"
    cfg.write_text("[server]\nhost = 127.0.0.1\nport = 0\nauth_file = %s\nhdf5_file_path = %s\n"
                   % (path, tmp_path / "d.h5"))
    p = subprocess.run([h5a_util.server_binary(), "--config", str(cfg)], capture_output=True,
                       text=True, timeout=h5a_util.START_TIMEOUT, stdin=subprocess.DEVNULL)
    assert p.returncode == 2, p
    assert "listening" not in p.stdout
    line = len(lines) + 1 if why in ("used twice", "same token hash") else 2
    assert "%s:%d:" % (path, line) in p.stderr and why in p.stderr, p.stderr
    assert not (tmp_path / "d.h5").exists()


def test_missing_tokens_file_stops_the_server(tmp_path):
    cfg = tmp_path / "c.ini"
    cfg.write_text("[server]\nhost = 127.0.0.1\nauth_file = %s/nope\n" % tmp_path)
    p = subprocess.run([h5a_util.server_binary(), "--config", str(cfg), "--port", "0"],
                       capture_output=True, text=True, timeout=h5a_util.START_TIMEOUT)
    assert p.returncode == 2 and "cannot open the tokens file" in p.stderr, p


def test_auth_without_auth_file_needs_no_token(server):
    c = Conn(server)
    assert c.ok("auth", token="anything") == {"name": None, "role": "admin"}
    assert c.ok("ping") == "pong"


# --------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for localhost / 127.0.0.1, client
    certificates for CN=writer and CN=stranger, and a second, unrelated CA."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "other_ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                "-subj", "/CN=%s" % ca, cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn, ext in [("srv", "localhost", True), ("writer", "writer", False),
                          ("stranger", "stranger", False)]:
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn,
                cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                *(["-extfile", "san.ext"] if ext else []), cwd=d)
    return d


def tls_opts(pki, **extra):
    opts = {"tls_cert_file": pki / "srv.pem", "tls_key_file": pki / "srv.key"}
    opts.update(extra)
    return opts


def client_ctx(pki, cert=None, ca="ca.pem"):
    ctx = ssl.create_default_context(cafile=str(pki / ca))
    if cert:
        ctx.load_cert_chain(str(pki / (cert + ".pem")), str(pki / (cert + ".key")))
    return ctx


def test_tls_round_trip_large_arrays(start_server, pki):
    srv = start_server(server_opts=tls_opts(pki))
    c = Conn(srv, client_ctx(pki))
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    a = np.random.default_rng(1).random((2048, 4096))  # 64 MiB
    c.ok("write", path="/big", data={"nd": True, "type": "<f8", "kind": "", "shape": list(a.shape),
                                     "data": a.tobytes()})
    r = c.ok("read", path="/big")
    got = np.frombuffer(r[b"data"], "<f8").reshape(r[b"shape"])
    np.testing.assert_array_equal(got, a)
    # pipelined small requests through the same session
    for i in range(200):
        c.send({"id": 1000 + i, "op": "append", "path": "/rows", "data": [float(i)]})
    assert [c.recv()["result"]["shape"] for _ in range(200)] == [[i + 1] for i in range(200)]
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        np.testing.assert_array_equal(f["big"][()], a)


def test_tls_refuses_a_client_that_does_not_trust_it(start_server, pki):
    srv = start_server(server_opts=tls_opts(pki))
    with pytest.raises(ssl.SSLCertVerificationError):
        Conn(srv, client_ctx(pki, ca="other_ca.pem"))
    assert Conn(srv, client_ctx(pki)).ok("ping") == "pong"


def test_plaintext_client_on_a_tls_port_is_told(start_server, pki):
    srv = start_server(server_opts=tls_opts(pki))
    c = Conn(srv)
    c.send({"id": 1, "op": "ping"})
    r = c.recv()
    assert r["id"] is None and r["error"]["code"] == "PROTOCOL_ERROR"
    assert "speaks TLS" in r["error"]["message"]
    assert c.closed_by_peer()


def test_tls_client_on_a_plaintext_port_is_closed(server, pki):
    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError, OSError)):
        Conn(server, client_ctx(pki)).call("ping")
    wait_log(server, r"TLS ClientHello on a plaintext port")
    assert Conn(server).call("ping")["result"] == "pong"


def test_a_handshake_that_never_finishes_is_closed(start_server, pki):
    srv = start_server(server_opts=tls_opts(pki, tls_handshake_timeout=1))
    stalled = socket.create_connection(srv.address, timeout=WAIT)
    stalled.sendall(b"\x16\x03\x01\x00\x05")  # a record header, then nothing
    other = Conn(srv, client_ctx(pki))
    assert other.ok("ping") == "pong"
    assert stalled.recv(1) == b""  # closed by the server
    wait_log(srv, r"TLS handshake not done after 1 s")
    assert other.ok("ping") == "pong"


def test_client_certificates(start_server, pki, tokens_file):
    srv = start_server(server_opts=tls_opts(pki, tls_ca_file=pki / "ca.pem",
                                            tls_client_auth="require", auth_file=tokens_file))
    # no certificate: the handshake fails
    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError, OSError)):
        Conn(srv, client_ctx(pki)).call("ping")
    # CN=writer names a token: authenticated without sending one
    c = Conn(srv, client_ctx(pki, cert="writer"))
    c.ok("create_group", path="/by_cert")
    # CN=stranger names none: a token is still needed
    s = Conn(srv, client_ctx(pki, cert="stranger"))
    s.err("UNAUTHENTICATED", "ping")
    assert s.ok("auth", token=TOKENS["reader"])["name"] == "reader"
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        assert list(f) == ["by_cert"]


@pytest.mark.parametrize("opts,why", [
    ({"tls_cert_file": "X"}, "tls_key_file is not"),
    ({"tls_key_file": "X"}, "tls_cert_file is not"),
    ({"tls_ca_file": "X"}, "TLS is not"),
    ({"tls_client_auth": "require"}, "TLS is not"),
    ({"tls_client_auth": "maybe"}, "no, optional or require"),
])
def test_tls_key_errors(tmp_path, opts, why):
    cfg = tmp_path / "c.ini"
    cfg.write_text("[server]\nhost = 127.0.0.1\n" + "".join("%s = %s\n" % kv for kv in opts.items()))
    p = subprocess.run([h5a_util.server_binary(), "--config", str(cfg), "--port", "0"],
                       capture_output=True, text=True, timeout=h5a_util.START_TIMEOUT)
    assert p.returncode == 2 and why in p.stderr, p


def test_unreadable_certificate_stops_the_server(tmp_path, pki):
    cfg = tmp_path / "c.ini"
    cfg.write_text("[server]\nhost = 127.0.0.1\ntls_cert_file = %s\ntls_key_file = %s\n"
                   % (pki / "srv.pem", pki / "writer.key"))
    p = subprocess.run([h5a_util.server_binary(), "--config", str(cfg), "--port", "0"],
                       capture_output=True, text=True, timeout=h5a_util.START_TIMEOUT)
    assert p.returncode == 2 and "tls_key_file" in p.stderr and "mismatch" in p.stderr, p


# --------------------------------------------------------------------------
# protected mode: a client that is not on loopback, from a network namespace
# --------------------------------------------------------------------------

@pytest.fixture
def netns():
    """A network namespace with a veth pair: the host side is 10.231.N.1,
    the namespace's 10.231.N.2. Skipped where the machine forbids it."""
    n = os.getpid() % 200 + 1
    ns, host_if, ns_if = "h5a-t%d" % n, "h5ah%d" % n, "h5an%d" % n
    cmds = [["ip", "netns", "add", ns],
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
            ["ip", "link", "set", ns_if, "netns", ns],
            ["ip", "addr", "add", "10.231.%d.1/24" % n, "dev", host_if],
            ["ip", "link", "set", host_if, "up"],
            ["ip", "netns", "exec", ns, "ip", "addr", "add", "10.231.%d.2/24" % n, "dev", ns_if],
            ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"]]
    try:
        for c in cmds:
            p = subprocess.run(c, capture_output=True, text=True)
            if p.returncode:
                pytest.skip("cannot make a network namespace here (%s: %s)"
                            % (" ".join(c), p.stderr.strip()))
        yield ns, "10.231.%d.1" % n
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


REMOTE = r"""
import socket, struct, sys, msgpack
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
def call(o):
    p = msgpack.packb(o, use_bin_type=True); s.sendall(struct.pack(">I", len(p)) + p)
    h = b""
    while len(h) < 4:
        k = s.recv(4 - len(h))
        if not k: return "EOF"
        h += k
    n = struct.unpack(">I", h)[0]; b = b""
    while len(b) < n: b += s.recv(n - len(b))
    return msgpack.unpackb(b, raw=False)
for a in sys.argv[3:]:
    print(repr(call(eval(a))))
"""


def remote(ns, host, port, *reqs):
    p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", REMOTE, host, str(port)]
                       + [repr(r) for r in reqs], capture_output=True, text=True, timeout=WAIT)
    assert p.returncode == 0, p
    return [eval(line) for line in p.stdout.splitlines()]


def test_protected_mode_refuses_remote_clients_without_auth_file(start_server, netns):
    ns, host_ip = netns
    srv = start_server(extra_args=["--host", "0.0.0.0"])
    assert "protected mode serves only clients on this machine" in srv.stderr()
    (first, then) = remote(ns, host_ip, srv.port, {"id": 1, "op": "create_group", "path": "/x"},
                           {"id": 2, "op": "ping"})
    assert first["id"] is None and first["error"]["code"] == "UNAUTHENTICATED"
    assert "protected mode" in first["error"]["message"] and "auth_file" in first["error"]["message"]
    assert then == "EOF"
    assert Conn(srv).ok("ping") == "pong"  # loopback is served
    srv.stop()
    with h5a_util.h5open(srv.file) as f:
        assert list(f) == []


def test_remote_clients_with_auth_file_or_protected_mode_off(start_server, netns, tokens_file):
    ns, host_ip = netns
    srv = start_server(extra_args=["--host", "0.0.0.0"], server_opts={"auth_file": tokens_file})
    r = remote(ns, host_ip, srv.port, {"id": 1, "op": "ping"},
               {"id": 2, "op": "auth", "token": TOKENS["writer"]},
               {"id": 3, "op": "create_group", "path": "/remote"})
    assert r[0]["error"]["code"] == "UNAUTHENTICATED" and r[0]["id"] == 1
    assert r[1]["result"] == {"name": "writer", "role": "write"}
    assert r[2]["ok"] is True
    open_srv = start_server(extra_args=["--host", "0.0.0.0"], server_opts={"protected_mode": "no"})
    assert "WARNING" in open_srv.stderr() and "anyone who can reach" in open_srv.stderr()
    assert remote(ns, host_ip, open_srv.port, {"id": 1, "op": "ping"})[0]["result"] == "pong"


# --------------------------------------------------------------------------
# external links: listed, never followed
# --------------------------------------------------------------------------

def test_external_links_are_listed_never_followed(start_server, tmp_path):
    """A link in the served file that names another HDF5 file on the server's
    disk must not let a client read, write or delete there (nor make the
    server create a log beside it); the error names the link, not the file."""
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["payroll"] = np.arange(5)

    def make(path):
        with h5py.File(path, "w") as f:
            f["ext"] = h5py.ExternalLink(str(secret), "/")
            f["soft"] = h5py.SoftLink("/ext/payroll")
            f["local"] = np.arange(2)

    before = secret.read_bytes()
    srv = start_server(precreate=make)
    c = Conn(srv)
    for op, kw in [("read", {"path": "/ext/payroll"}), ("read", {"path": "/soft"}),
                   ("info", {"path": "/ext"}), ("info", {"path": "/ext/payroll"}),
                   ("list", {"path": "/ext"}), ("exists", {"path": "/ext/payroll"}),
                   ("get_attr", {"path": "/ext/payroll", "name": "x"}),
                   ("write", {"path": "/ext/pwned", "data": [1]}),
                   ("append", {"path": "/ext/payroll", "data": [9]}),
                   ("create_group", {"path": "/ext/g"}), ("delete", {"path": "/ext/payroll"}),
                   ("set_attr", {"path": "/ext", "name": "a", "data": 1}),
                   ("move", {"path": "/ext/payroll", "dest": "/stolen"})]:
        msg = c.err("BAD_PATH", op, **kw)
        assert "external link" in msg and str(secret) not in msg and "secret.h5" not in msg, (op, msg)
    # listed, with where it points
    entries = c.ok("list", path="/")["entries"]
    ext = [e for e in entries if e["name"] == "ext"][0]
    assert ext["kind"] == "external_link" and ext["target"] == "/"
    assert c.ok("exists", path="/ext") is True  # the link itself is there
    c.ok("delete", path="/ext")  # the link goes, not what it names
    srv.stop()
    assert secret.read_bytes() == before
    assert not (tmp_path / "secret.h5.wal").exists()
    with h5py.File(secret, "r") as f:
        assert list(f) == ["payroll"] and f["payroll"][()].tolist() == [0, 1, 2, 3, 4]
