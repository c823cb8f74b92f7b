"""The Python client's side of authentication and TLS (issue 10's
interface: HDF5Client(token=, ssl=), File(token=, ssl=), the auth op, the
UNAUTHENTICATED and PERMISSION_DENIED codes).

Two kinds of tests: against a small fake server written here (the client's
behaviour, whatever the real server does), and against the real server,
which skip with the reason while the server has no auth (it answers `auth`
with UNKNOWN_OP) or no TLS (no `tls_cert_file` key)."""

import asyncio
import hashlib
import os
import ssl
import struct
import subprocess

import msgpack
import pytest

import h5a_util
import hdf5_async
from h5a_util import IO_TIMEOUT, run
from hdf5_async import HDF5Client
from hdf5_async.config import load_settings, resolve_token

TOKEN = "s3cret-token-for-tests"


# ------------------------------------------------------------ token sources


class TestTokenSources:
    def test_order_arg_env_file(self, tmp_path, monkeypatch):
        (tmp_path / "tok").write_text("from-file\n")
        cfg = tmp_path / "c.ini"
        cfg.write_text("[client]\ntoken_file = tok\n")  # relative to the config file
        s = load_settings(config=str(cfg))
        monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)
        assert resolve_token(None, s) == "from-file"
        monkeypatch.setenv("HDF5_ASYNC_TOKEN", "from-env")
        assert resolve_token(None, s) == "from-env"
        assert resolve_token("from-arg", s) == "from-arg"
        monkeypatch.setenv("HDF5_ASYNC_TOKEN", "")
        assert resolve_token(None, s) == "from-file"

    def test_no_token(self, tmp_path, monkeypatch):
        monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)
        cfg = tmp_path / "c.ini"
        cfg.write_text("[client]\nport = 9\n")
        assert resolve_token(None, load_settings(config=str(cfg))) is None

    def test_bad_token_file(self, tmp_path, monkeypatch):
        monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)
        cfg = tmp_path / "c.ini"
        cfg.write_text("[client]\ntoken_file = missing\n")
        with pytest.raises(ValueError, match="token_file"):
            HDF5Client(config=str(cfg))
        (tmp_path / "empty").write_text("\n")
        cfg.write_text("[client]\ntoken_file = empty\n")
        with pytest.raises(ValueError, match="empty"):
            HDF5Client(config=str(cfg))

    def test_ssl_argument(self, tmp_path):
        assert HDF5Client("h", 1, ssl=None)._ssl is None
        assert HDF5Client("h", 1, ssl=False)._ssl is None
        ctx = ssl.create_default_context()
        assert HDF5Client("h", 1, ssl=ctx)._ssl is ctx
        assert HDF5Client("h", 1, ssl=True)._ssl.verify_mode == ssl.CERT_REQUIRED
        with pytest.raises(FileNotFoundError):
            HDF5Client("h", 1, ssl=str(tmp_path / "nope.pem"))
        with pytest.raises(TypeError):
            HDF5Client("h", 1, ssl=3)


# --------------------------------------------------------- a fake server


def _frame(obj):
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


async def _read(reader):
    n = struct.unpack(">I", await reader.readexactly(4))[0]
    return msgpack.unpackb(await reader.readexactly(n), raw=False)


def _fake(seen, deny_ops=()):
    """A server that wants `auth` with TOKEN first (UNAUTHENTICATED for
    anything else, closing after 3 bad tokens), then answers ping and
    refuses deny_ops with PERMISSION_DENIED."""

    async def handler(reader, writer):
        authed, bad = False, 0
        try:
            while True:
                req = await _read(reader)
                seen.append(req)
                if req["op"] == "auth":
                    if req.get("token") == TOKEN:
                        authed = True
                        writer.write(_frame({"id": req["id"], "ok": True,
                                             "result": {"name": "alice", "role": "write"}}))
                    else:
                        bad += 1
                        writer.write(_frame({"id": req["id"], "ok": False, "error": {
                            "code": "UNAUTHENTICATED", "message": "bad token"}}))
                        if bad == 3:
                            await writer.drain()
                            break
                elif not authed:
                    writer.write(_frame({"id": req["id"], "ok": False, "error": {
                        "code": "UNAUTHENTICATED", "message": "authenticate first"}}))
                elif req["op"] in deny_ops:
                    writer.write(_frame({"id": req["id"], "ok": False, "error": {
                        "code": "PERMISSION_DENIED", "message": "role read"}}))
                else:
                    writer.write(_frame({"id": req["id"], "ok": True, "result": "pong"}))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    return handler


async def _serve(handler, ssl_ctx=None):
    srv = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_ctx)
    return srv, srv.sockets[0].getsockname()[1]


class TestAgainstFakeServer:
    def test_token_sent_first_and_identity_kept(self, monkeypatch):
        monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)
        seen = []

        async def go():
            srv, port = await _serve(_fake(seen))
            async with srv:
                async with HDF5Client("127.0.0.1", port, token=TOKEN, timeout=IO_TIMEOUT,
                                      durability="fsync") as c:
                    assert c.identity == {"name": "alice", "role": "write"}
                    assert await c.ping() == "pong"

        run(go())
        assert seen[0] == {"id": seen[0]["id"], "op": "auth", "token": TOKEN}  # no durability
        assert seen[1]["op"] == "ping"

    def test_env_token(self, monkeypatch):
        monkeypatch.setenv("HDF5_ASYNC_TOKEN", TOKEN)
        seen = []

        async def go():
            srv, port = await _serve(_fake(seen))
            async with srv:
                async with HDF5Client("127.0.0.1", port, timeout=IO_TIMEOUT) as c:
                    await c.ping()

        run(go())
        assert seen[0]["token"] == TOKEN

    def test_bad_token_raises_unauthenticated(self, monkeypatch):
        monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)

        async def go():
            srv, port = await _serve(_fake([]))
            async with srv:
                c = HDF5Client("127.0.0.1", port, token="wrong", timeout=IO_TIMEOUT)
                with pytest.raises(hdf5_async.UnauthenticatedError) as ei:
                    await c.connect()
                assert isinstance(ei.value, PermissionError) and ei.value.code == "UNAUTHENTICATED"
                assert not c.connected
                # no token: the server's refusal of the first request
                async with HDF5Client("127.0.0.1", port, timeout=IO_TIMEOUT) as c2:
                    with pytest.raises(hdf5_async.UnauthenticatedError):
                        await c2.ping()

        run(go())

    def test_permission_denied(self, monkeypatch):
        monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)

        async def go():
            srv, port = await _serve(_fake([], deny_ops=("create_group",)))
            async with srv:
                async with HDF5Client("127.0.0.1", port, token=TOKEN, timeout=IO_TIMEOUT) as c:
                    with pytest.raises(PermissionError) as ei:
                        await c.create_group("/g")
                    assert isinstance(ei.value, hdf5_async.PermissionDeniedError)
                    assert ei.value.code == "PERMISSION_DENIED"
                    assert await c.ping() == "pong"  # the connection stays usable

        run(go())

    def test_tls_with_ca_file_and_file_api(self, tmp_path, monkeypatch):
        monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)
        ca, cert, key = _make_ca_and_cert(tmp_path)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        seen = []

        async def go():
            srv, port = await _serve(_fake(seen), server_ctx)
            async with srv:
                async with HDF5Client("127.0.0.1", port, token=TOKEN, ssl=ca,
                                      timeout=IO_TIMEOUT) as c:
                    assert await c.ping() == "pong"
                    assert c._transport.get_extra_info("ssl_object") is not None
                # the system's CAs do not know the test CA
                c = HDF5Client("127.0.0.1", port, token=TOKEN, ssl=True, timeout=IO_TIMEOUT)
                with pytest.raises(ssl.SSLCertVerificationError):
                    await c.connect()
                # File(token=, ssl=) passes them through
                f = await hdf5_async.AsyncFile(server="127.0.0.1:%d" % port, token=TOKEN, ssl=ca,
                                               timeout=IO_TIMEOUT)
                assert f.client.identity["name"] == "alice"
                await f.close()

        run(go())
        assert [r["op"] for r in seen[:2]] == ["auth", "ping"]


def _make_ca_and_cert(d):
    """A throwaway CA and a server certificate for 127.0.0.1 it signed."""
    d = str(d)
    ca_key, ca, key, csr, cert = (os.path.join(d, n) for n in
                                  ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\n")

    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=hdf5-async test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1")
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext)
    return ca, cert, key


# ----------------------------------------------------------- the real server


def _server_has_auth(srv):
    with h5a_util.RawConn(srv) as c:
        r = c.call({"id": 1, "op": "auth", "token": "x"})
    return not (r.get("ok") is False and r["error"]["code"] == "UNKNOWN_OP")


@pytest.fixture
def auth_server(start_server, tmp_path):
    probe = start_server()
    if not _server_has_auth(probe):
        pytest.skip("the server has no authentication yet: it answers auth with UNKNOWN_OP "
                    "(issue 10); these tests run once it does")
    probe.stop()
    tokens = tmp_path / "tokens"
    lines = []
    for name, role, prefix in (("alice", "write", "/"), ("rita", "read", "/"),
                               ("pat", "write", "/pat")):
        secret = "%s-%s" % (TOKEN, name)
        lines.append("%s %s %s %s" % (name, role, hashlib.sha256(secret.encode()).hexdigest(), prefix))
    tokens.write_text("\n".join(lines) + "\n")
    return start_server(server_opts={"auth_file": str(tokens)})


def _tok(name):
    return "%s-%s" % (TOKEN, name)


def test_real_server_auth(auth_server, monkeypatch):
    monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)
    srv = auth_server

    async def go():
        async with HDF5Client(srv.host, srv.port, token=_tok("alice"), timeout=IO_TIMEOUT) as c:
            assert c.identity["name"] == "alice" and c.identity["role"] == "write"
            await c.write("/pat/x", [1, 2])
        c = HDF5Client(srv.host, srv.port, token="nope", timeout=IO_TIMEOUT)
        with pytest.raises(hdf5_async.UnauthenticatedError):
            await c.connect()
        async with HDF5Client(srv.host, srv.port, token=_tok("rita"), timeout=IO_TIMEOUT) as c:
            assert (await c.read("/pat/x")).tolist() == [1, 2]
            with pytest.raises(hdf5_async.PermissionDeniedError):
                await c.write("/pat/x", [3])
        async with HDF5Client(srv.host, srv.port, token=_tok("pat"), timeout=IO_TIMEOUT) as c:
            await c.write("/pat/y", 1)
            with pytest.raises(PermissionError):
                await c.write("/elsewhere", 1)

    run(go())
    with hdf5_async.File(server="%s:%d" % srv.address, token=_tok("rita"), mode="r",
                         timeout=IO_TIMEOUT) as f:
        assert sorted(f["pat"].keys()) == ["x", "y"]
    import h5py

    srv.stop()
    with h5py.File(srv.file, "r") as f:  # refused requests changed nothing
        assert sorted(f.keys()) == ["pat"] and f["pat/x"][()].tolist() == [1, 2]


def test_real_server_tls(start_server, tmp_path, monkeypatch):
    monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)
    ca, cert, key = _make_ca_and_cert(tmp_path)
    try:
        srv = start_server(server_opts={"tls_cert_file": cert, "tls_key_file": key})
    except h5a_util.ServerError as e:
        if "unknown key" in str(e) or "tls_cert_file" in str(e):
            pytest.skip("the server has no TLS yet: it does not know the tls_cert_file key "
                        "(issue 10); this test runs once it does")
        raise

    async def go():
        async with HDF5Client(srv.host, srv.port, ssl=ca, timeout=IO_TIMEOUT) as c:
            await c.write("/t", [1.5])
            assert (await c.read("/t")).tolist() == [1.5]

    run(go())
    with hdf5_async.File(server="%s:%d" % srv.address, ssl=ca, timeout=IO_TIMEOUT) as f:
        assert f["t"][()].tolist() == [1.5]


def test_unasked_refusal_is_what_calls_raise(monkeypatch):
    """Protected mode (and max_connections) answer a new connection with one
    error of id nil, then close: calls made after it raise that error."""
    monkeypatch.delenv("HDF5_ASYNC_TOKEN", raising=False)

    async def refuse(reader, writer):
        writer.write(_frame({"id": None, "ok": False, "error": {
            "code": "UNAUTHENTICATED", "message": "protected mode: configure a token"}}))
        await writer.drain()
        writer.close()

    async def go():
        srv, port = await _serve(refuse)
        async with srv:
            c = HDF5Client("127.0.0.1", port, timeout=IO_TIMEOUT)
            await c.connect()
            await c._protocol.closed  # the server has spoken and closed
            with pytest.raises(hdf5_async.UnauthenticatedError, match="protected mode"):
                await c.ping()
            await c.close()

    run(go())
