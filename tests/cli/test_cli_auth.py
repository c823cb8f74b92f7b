"""The CLI with tokens and TLS: `hdf5-async token`, --token-file,
$HDF5_ASYNC_TOKEN, --tls, --tls-ca and config.ini's [client] token_file
and tls_ca_file, against the real server with an auth_file and/or TLS.

Certificates come from a throwaway CA made here with the `openssl`
command. Every CLI run gets an environment without HDF5_ASYNC_TOKEN unless
a test sets it, so the caller's environment cannot leak in."""

import hashlib
import os
import re
import subprocess

import h5py
import numpy as np
import pytest

from conftest import TIMEOUT
from test_cli import EXIT_CONN, EXIT_SERVER, EXIT_USAGE, fails, ok, run, save

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 bytes, base64url, no padding


def env(**extra):
    e = {k: v for k, v in os.environ.items() if k != "HDF5_ASYNC_TOKEN"}
    e.update(extra)
    return e


def cli(args, srv=None, **kw):
    kw.setdefault("env", env())
    return run(args, srv, **kw)


def make_token(name, role, *prefixes):
    """`hdf5-async token`: (token, line for the tokens file, stdout)."""
    r = ok(cli(["token", name, role, *prefixes]))
    assert r.stderr == ""
    data = [l for l in r.stdout.splitlines() if l and not l.startswith("#")]
    assert len(data) == 2, r.stdout
    return data[0], data[1], r.stdout


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def tokens():
    """name -> (token, line): a writer, a reader, a writer scoped to /runs."""
    return {n: make_token(n, role, *p)[:2] for n, role, p in
            [("writer", "write", ()), ("reader", "read", ()), ("scoped", "write", ("/runs",))]}


@pytest.fixture
def auth_file(tmp_path, tokens):
    return write(tmp_path / "tokens", "".join(line + "\n" for _, line in tokens.values()))


@pytest.fixture
def token_files(tmp_path, tokens):
    """name -> a file holding that token, as one would keep it."""
    return {n: write(tmp_path / ("%s.tok" % n), tok + "\n") for n, (tok, _) in tokens.items()}


@pytest.fixture
def authed(start_server, auth_file):
    return start_server(server_opts={"auth_file": auth_file})


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=TIMEOUT)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for localhost / 127.0.0.1 signed by it,
    and a second, unrelated CA."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "other_ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                "-subj", "/CN=%s" % ca, cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost", cwd=d)
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    return d


def tls_opts(pki, **extra):
    opts = {"tls_cert_file": pki / "srv.pem", "tls_key_file": pki / "srv.key"}
    opts.update(extra)
    return opts


def names_in(srv):
    """Every path in the server's file (once the server has stopped)."""
    found = []
    with h5py.File(srv.file, "r") as f:
        f.visit(found.append)
    return sorted(found)


# --------------------------------------------------------------------------
# hdf5-async token
# --------------------------------------------------------------------------


def test_token_prints_a_new_token_and_its_line():
    tok, line, out = make_token("alice", "write", "/runs", "/shared")
    assert TOKEN_RE.match(tok), tok
    name, role, digest, *prefixes = line.split(" ")
    assert (name, role, prefixes) == ("alice", "write", ["/runs", "/shared"])
    assert digest == hashlib.sha256(tok.encode()).hexdigest()
    # the output says where the line goes and that the token is not kept
    assert "auth_file" in out and "only this once" in out
    assert out.index(tok) < out.index(line)
    # a new one each time; no prefix: none on the line (the whole file)
    tok2, line2, _ = make_token("alice", "read")
    assert tok2 != tok and TOKEN_RE.match(tok2)
    assert line2 == "alice read %s" % hashlib.sha256(tok2.encode()).hexdigest()


def test_token_needs_no_server_nor_config(tmp_path):
    # nothing listens on port 1, and the config file is broken: neither is read
    (tmp_path / "config.ini").write_text("[client]\nport = nope\n")
    ok(cli(["--port", "1", "token", "bob", "admin"], cwd=tmp_path))
    ok(cli(["token", "bob", "admin", "--config", tmp_path / "missing.ini"]))


def test_the_lines_it_prints_let_their_tokens_in(authed, token_files):
    ok(cli(["--token-file", token_files["writer"], "mkgroup", "/w"], authed))
    ok(cli(["--token-file", token_files["scoped"], "mkgroup", "/runs/1"], authed))
    r = ok(cli(["--token-file", token_files["reader"], "ls", "/"], authed))
    assert "runs" in r.stdout and "w" in r.stdout.split()
    authed.stop()
    assert names_in(authed) == ["runs", "runs/1", "w"]


LONG = "/" + "p" * 125  # 64 of these do not fit on one 8190-byte line


@pytest.mark.parametrize("args, pattern", [
    (["", "read"], "NAME '' must be 1 to 64 characters"),
    (["a b", "read"], "NAME 'a b' must be"),
    (["x" * 65, "read"], "must be 1 to 64 characters"),
    (["caf\u00e9", "read"], "NAME"),
    (["a/b", "read"], "NAME"),
    (["#x", "read"], "NAME"),
    (["bob", "Read"], "ROLE 'Read' must be read, write or admin"),
    (["bob", "owner"], "ROLE 'owner'"),
    (["bob", ""], "ROLE ''"),
    (["bob", "read", "runs"], "PREFIX 'runs': .*relative"),
    (["bob", "read", "/runs/"], "PREFIX '/runs/': .*empty component"),
    (["bob", "read", "/a//b"], "empty component"),
    (["bob", "read", "/a/../b"], "'\\.' or '\\.\\.' component"),
    (["bob", "read", "/a/."], "'\\.' or '\\.\\.' component"),
    (["bob", "read", ""], "PREFIX '': path is empty"),
    (["bob", "read", "/ok", "/my runs"], "PREFIX '/my runs' holds a blank"),
    (["bob", "read", "/tab\there"], "holds a blank"),
    (["bob", "read", "/x" * 257], "more than 256 levels"),
    (["bob", "read"] + ["/p%d" % i for i in range(65)], "65 PREFIXes: .* at most 64"),
    (["bob", "read"] + [LONG] * 64, "at most 8190"),
])
def test_token_refuses_what_the_server_would(start_server, tmp_path, args, pattern):
    r = fails(cli(["token", *args]), EXIT_USAGE, pattern)
    assert "--help" in r.stderr
    assert r.stdout == ""  # no token shown for a line that cannot be used
    if args[0].startswith("#") or "" in args[2:]:
        # what the file cannot say: the server would take the line for a
        # comment (its token would never work), or see no empty field
        return
    # the server refuses the same line, written by hand, at start
    name, role, *prefixes = args
    p = write(tmp_path / "tokens", " ".join([name, role, "0" * 64] + prefixes) + "\n")
    with pytest.raises(RuntimeError, match="exited before listening") as e:
        start_server(server_opts={"auth_file": p})
    assert "%s:1: " % p in str(e.value)


def test_token_takes_what_the_server_takes(start_server, tmp_path):
    """The edges: a 64-character NAME of every allowed kind, 64 PREFIXes, a
    PREFIX 256 levels deep, "/" as a PREFIX."""
    name = "Az09_.@-" * 8
    deep = "/d" * 256
    t1, l1, _ = make_token(name, "admin", deep, *["/p%d" % i for i in range(63)])
    t2, l2, _ = make_token("root", "write", "/")
    f = write(tmp_path / "tokens", l1 + "\n" + l2 + "\n")
    srv = start_server(server_opts={"auth_file": f})
    ok(cli(["mkgroup", "/p7/x"], srv, env=env(HDF5_ASYNC_TOKEN=t1)))
    ok(cli(["mkgroup", "/y"], srv, env=env(HDF5_ASYNC_TOKEN=t2)))


# --------------------------------------------------------------------------
# where the token comes from
# --------------------------------------------------------------------------


def test_no_token(authed):
    r = fails(cli(["ping"], authed), EXIT_SERVER, r"^hdf5-async: UNAUTHENTICATED: .*auth")
    assert "no token given: --token-file, $HDF5_ASYNC_TOKEN or the config's [client] " \
        "token_file" in r.stderr
    assert r.stdout == "" and r.stderr.count("\n") == 1


def test_token_file_and_environment(authed, tokens, token_files, tmp_path):
    w, rd = token_files["writer"], token_files["reader"]
    # a writer may, a reader may not: which token was used shows
    ok(cli(["--token-file", w, "mkgroup", "/a"], authed))
    ok(cli(["mkgroup", "/b", "--token-file=" + w], authed))
    fails(cli(["--token-file", rd, "mkgroup", "/c"], authed), EXIT_SERVER, "PERMISSION_DENIED")
    ok(cli(["mkgroup", "/d"], authed, env=env(HDF5_ASYNC_TOKEN=tokens["writer"][0])))
    # --token-file wins over the environment
    fails(cli(["--token-file", rd, "mkgroup", "/e"], authed,
              env=env(HDF5_ASYNC_TOKEN=tokens["writer"][0])), EXIT_SERVER, "PERMISSION_DENIED")
    ok(cli(["--token-file", w, "mkgroup", "/f"], authed,
           env=env(HDF5_ASYNC_TOKEN=tokens["reader"][0])))
    # blanks around the token, a CRLF, a second line: the first line, trimmed
    crlf = write(tmp_path / "crlf.tok", "  %s \r\nsecond line\n" % tokens["writer"][0])
    ok(cli(["--token-file", crlf, "mkgroup", "/g"], authed))
    nonl = write(tmp_path / "nonl.tok", tokens["writer"][0])
    ok(cli(["--token-file", nonl, "mkgroup", "/h"], authed))
    # an empty variable is no token
    fails(cli(["ping"], authed, env=env(HDF5_ASYNC_TOKEN=" ")), EXIT_SERVER, "UNAUTHENTICATED")
    authed.stop()
    assert names_in(authed) == ["a", "b", "d", "f", "g", "h"]


def test_a_refused_token_says_where_it_came_from(authed, tmp_path):
    bad = write(tmp_path / "bad.tok", "not-a-token\n")
    r = fails(cli(["--token-file", bad, "ping"], authed), EXIT_SERVER,
              r"^hdf5-async: UNAUTHENTICATED: .*refused the token")
    assert "--token-file %s" % bad in r.stderr
    assert "not-a-token" not in r.stderr  # the token itself is never printed
    r = fails(cli(["ping"], authed, env=env(HDF5_ASYNC_TOKEN="nope")), EXIT_SERVER,
              "UNAUTHENTICATED.*HDF5_ASYNC_TOKEN")
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("content, pattern", [
    (None, r"--token-file: cannot read \S*missing.tok: No such file"),
    ("", r"--token-file: \S*missing.tok is empty"),
    ("\n\ntoken-on-line-3\n", "is empty"),
    ("  \t\r\n", "is empty"),
    ("a\0b\n", "NUL byte"),
    ("x" * 5000 + "\n", "not a token"),
])
def test_bad_token_files(tmp_path, content, pattern):
    p = tmp_path / "missing.tok"
    if content is not None:
        p.write_text(content)
    # before connecting: nothing listens on port 1
    r = fails(cli(["--port", "1", "--token-file", p, "ping"]), EXIT_USAGE, pattern)
    assert r.stdout == ""
    fails(cli(["--port", "1", "--token-file", tmp_path, "ping"]), EXIT_USAGE, "cannot read")
    fails(cli(["--token-file", "", "ping"]), EXIT_USAGE, "--token-file: empty file name")


def test_environment_token_too_long():
    fails(cli(["--port", "1", "ping"], env=env(HDF5_ASYNC_TOKEN="x" * 4097)), EXIT_USAGE,
          "HDF5_ASYNC_TOKEN is over 4096 bytes")


# --------------------------------------------------------------------------
# roles and prefixes: PERMISSION_DENIED
# --------------------------------------------------------------------------


def test_a_read_token_is_refused_a_write(authed, token_files, tmp_path):
    w, rd, sc = token_files["writer"], token_files["reader"], token_files["scoped"]
    ok(cli(["--token-file", w, "put", "/x", save(tmp_path, np.arange(4))], authed))
    before = ok(cli(["--token-file", rd, "get", "/x"], authed)).stdout
    for args in (["mkgroup", "/g"], ["put", "/x", save(tmp_path, np.zeros(4, int))],
                 ["rm", "/x"], ["attr", "set", "/x", "a", "1"], ["mv", "/x", "/y"]):
        r = fails(cli(["--token-file", rd, *args], authed), EXIT_SERVER,
                  r"^hdf5-async: PERMISSION_DENIED: token 'reader' has the read role")
        assert r.stdout == ""
    # a prefix is a rule too
    fails(cli(["--token-file", sc, "mkgroup", "/elsewhere"], authed), EXIT_SERVER,
          r"PERMISSION_DENIED: token 'scoped' may not touch .*/elsewhere")
    fails(cli(["--token-file", sc, "mv", "/runs", "/x2"], authed), EXIT_SERVER,
          "PERMISSION_DENIED")
    assert ok(cli(["--token-file", rd, "get", "/x"], authed)).stdout == before
    authed.stop()
    assert names_in(authed) == ["x"]
    with h5py.File(authed.file, "r") as f:
        assert f["x"][()].tolist() == [0, 1, 2, 3] and not f["x"].attrs


# --------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------


def test_tls_with_a_ca_file(start_server, pki, tmp_path):
    srv = start_server(server_opts=tls_opts(pki))
    ca = pki / "ca.pem"
    assert ok(cli(["--tls-ca", ca, "ping"], srv)).stdout.startswith("pong")
    ok(cli(["--tls", "--tls-ca=%s" % ca, "ping"], srv))
    ok(cli(["ping", "--tls-ca", ca, "--host", "localhost", "--port", srv.port]))
    a = np.random.default_rng(3).random((300, 500))  # over 1 MiB: many TLS records
    ok(cli(["--tls-ca", ca, "put", "/a", save(tmp_path, a)], srv))
    ok(cli(["--tls-ca", ca, "get", "/a", "-o", tmp_path / "out.npy"], srv))
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), a)


def test_tls_and_tokens(start_server, pki, auth_file, token_files):
    srv = start_server(server_opts=tls_opts(pki, auth_file=auth_file))
    ca = pki / "ca.pem"
    ok(cli(["--tls-ca", ca, "--token-file", token_files["writer"], "mkgroup", "/g"], srv))
    fails(cli(["--tls-ca", ca, "--token-file", token_files["reader"], "rm", "/g"], srv),
          EXIT_SERVER, "PERMISSION_DENIED")
    fails(cli(["--tls-ca", ca, "ls"], srv), EXIT_SERVER, "UNAUTHENTICATED")


def test_tls_refuses_a_server_it_cannot_verify(start_server, pki):
    srv = start_server(server_opts=tls_opts(pki))
    # the system's CAs did not sign it, nor did the other CA
    r = fails(cli(["--tls", "ping"], srv), EXIT_CONN,
              r"^hdf5-async: cannot connect to 127\.0\.0\.1:\d+: TLS: .*certificate")
    assert r.stderr.count("\n") == 1
    fails(cli(["--tls-ca", pki / "other_ca.pem", "ping"], srv), EXIT_CONN,
          r"TLS: .*certificate was refused: .*(unable to get local issuer|self.signed)")


def test_tls_to_a_plaintext_server(server, pki):
    r = fails(cli(["--tls-ca", pki / "ca.pem", "--timeout", "30000", "ping"], server), EXIT_CONN,
              r"^hdf5-async: cannot connect to 127\.0\.0\.1:\d+: ")
    assert "TLS" in r.stderr and r.stderr.count("\n") == 1
    assert ok(cli(["ping"], server)).stdout.startswith("pong")  # the server is fine


def test_plaintext_to_a_tls_server(start_server, pki, auth_file, token_files):
    srv = start_server(server_opts=tls_opts(pki))
    r = fails(cli(["--timeout", "30000", "ping"], srv), EXIT_SERVER,
              r"^hdf5-async: PROTOCOL_ERROR: this port speaks TLS")
    assert r.stderr.count("\n") == 1
    srv2 = start_server(server_opts=tls_opts(pki, auth_file=auth_file))
    fails(cli(["--timeout", "30000", "--token-file", token_files["writer"], "ping"], srv2),
          EXIT_SERVER, r"^hdf5-async: PROTOCOL_ERROR: this port speaks TLS")


@pytest.mark.parametrize("ca, pattern, code", [
    ("missing.pem", r"--tls-ca: cannot read \S*missing.pem: No such file", EXIT_USAGE),
    ("notpem.pem", r"^hdf5-async: --tls-ca \S*notpem.pem: cannot load the CA", EXIT_USAGE),
])
def test_bad_ca_files(tmp_path, ca, pattern, code):
    (tmp_path / "notpem.pem").write_text("not a certificate\n")
    fails(cli(["--port", "1", "--tls-ca", tmp_path / ca, "ping"]), code, pattern)


# --------------------------------------------------------------------------
# config.ini: [client] token_file and tls_ca_file
# --------------------------------------------------------------------------


def test_config_token_file_and_tls_ca_file(start_server, pki, auth_file, tokens, tmp_path):
    srv = start_server(server_opts=tls_opts(pki, auth_file=auth_file))
    d = tmp_path / "etc"
    d.mkdir()
    write(d / "writer.tok", tokens["writer"][0] + "\n")
    write(d / "ca.pem", (pki / "ca.pem").read_text())
    write(d / "client.ini", "[client]\nhost = 127.0.0.1\nport = %d\ntoken_file = writer.tok\n"
          "tls_ca_file = ca.pem   # relative to this file\n" % srv.port)
    # relative to the config file's directory, wherever the CLI runs
    ok(cli(["--config", d / "client.ini", "mkgroup", "/c1"]))
    ok(cli(["--config", "etc/client.ini", "mkgroup", "/c2"], cwd=tmp_path))
    # ./config.ini too
    write(d / "config.ini", (d / "client.ini").read_text())
    ok(cli(["mkgroup", "/c3"], cwd=d))
    # the environment and --token-file win over token_file
    fails(cli(["mkgroup", "/c4"], cwd=d, env=env(HDF5_ASYNC_TOKEN=tokens["reader"][0])),
          EXIT_SERVER, "PERMISSION_DENIED")
    rd = write(tmp_path / "reader.tok", tokens["reader"][0])
    fails(cli(["--token-file", rd, "mkgroup", "/c5"], cwd=d), EXIT_SERVER, "PERMISSION_DENIED")
    # --tls-ca wins over tls_ca_file
    fails(cli(["--tls-ca", pki / "other_ca.pem", "ping"], cwd=d), EXIT_CONN, "TLS")
    # an absolute path is taken as it is; an empty value is unset
    write(d / "abs.ini", "[client]\nport = %d\ntoken_file = %s\ntls_ca_file = %s\n"
          % (srv.port, d / "writer.tok", pki / "ca.pem"))
    ok(cli(["--config", d / "abs.ini", "mkgroup", "/c6"], cwd=tmp_path))
    write(d / "empty.ini", "[client]\nport = %d\ntoken_file =\ntls_ca_file =\n" % srv.port)
    fails(cli(["--config", d / "empty.ini", "ping"]), EXIT_SERVER, "PROTOCOL_ERROR.*TLS")
    srv.stop()
    assert names_in(srv) == ["c1", "c2", "c3", "c6"]


def test_config_keys_that_name_missing_files(tmp_path):
    write(tmp_path / "a.ini", "[client]\nport = 1\ntoken_file = nope.tok\n")
    fails(cli(["--config", tmp_path / "a.ini", "ping"]), EXIT_USAGE,
          r"a\.ini \[client\] token_file: cannot read \S*nope\.tok: No such file")
    write(tmp_path / "b.ini", "[client]\nport = 1\ntls_ca_file = nope.pem\n")
    fails(cli(["--config", tmp_path / "b.ini", "ping"]), EXIT_USAGE,
          r"b\.ini \[client\] tls_ca_file: cannot read \S*nope\.pem")
    # [server] has no say in these
    write(tmp_path / "c.ini", "[server]\nport = 1\ntoken_file = nope.tok\ntls_ca_file = x\n")
    fails(cli(["--config", tmp_path / "c.ini", "ping"]), EXIT_CONN, "cannot connect")
    # a CA file OpenSSL cannot read
    write(tmp_path / "notpem.pem", "not a certificate\n")
    write(tmp_path / "e.ini", "[client]\nport = 1\ntls_ca_file = notpem.pem\n")
    fails(cli(["--config", tmp_path / "e.ini", "ping"]), EXIT_USAGE,
          r"e\.ini \[client\] tls_ca_file \S*notpem\.pem: cannot load the CA")
    # a token file in the config that is empty
    write(tmp_path / "empty.tok", "\n")
    write(tmp_path / "d.ini", "[client]\nport = 1\ntoken_file = empty.tok\n")
    fails(cli(["--config", tmp_path / "d.ini", "ping"]), EXIT_USAGE, "empty.tok is empty")
