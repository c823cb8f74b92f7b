"""The HTTP port besides the h5grove API: /metrics (validated by promtool
and scraped by a real Prometheus), /health, access (tokens, protected
mode), and what it does with bad requests (400, 405, 413, 414, 431)."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from h5a_util import IO_TIMEOUT, RawConn, start_server


def get(port, url, headers=None, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, url), headers=headers or {},
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def raw(port, data):
    """Send bytes, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b


@pytest.fixture
def srv(tmp_path):
    s = start_server(tmp_path, http=True)
    yield s
    if s.proc.poll() is None:
        s.stop()


def append(srv, n):
    with RawConn(srv) as c:
        for i in range(n):
            r = c.call({"id": i, "op": "append", "path": "/log/x",
                        "data": {"nd": True, "type": "<f8", "kind": "", "shape": [1],
                                 "data": np.float64(i).tobytes()}})
            assert r["ok"], r


def metric(text, name, labels=""):
    for line in text.splitlines():
        if line.startswith(name + ("{" + labels if labels else "")) and not line.startswith("#"):
            if labels or line.split(" ")[0] == name or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_text_and_promtool(srv):
    append(srv, 25)
    st, _, _ = get(srv.http_port, "/api/data?file=data.h5&path=/log/x&format=bin")
    assert st == 200
    st, h, body = get(srv.http_port, "/metrics")
    assert st == 200 and h["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert metric(text, "hdf5_async_requests_total", 'op="append",code="OK"') == 25
    assert metric(text, "hdf5_async_requests_total", 'op="read",code="OK"') >= 1
    assert metric(text, "hdf5_async_request_queue_wait_seconds_count", 'op="append"') == 25
    assert metric(text, "hdf5_async_request_apply_seconds_count", 'op="append"') == 25
    assert metric(text, "hdf5_async_connections", 'port="http"') >= 1
    assert metric(text, "hdf5_async_received_bytes_total", 'port="main"') > 0
    assert metric(text, "hdf5_async_sent_bytes_total", 'port="http"') > 0
    assert metric(text, "hdf5_async_file_bytes") > 0
    assert metric(text, "hdf5_async_queue_depth") == 0
    assert metric(text, "hdf5_async_commits_total", 'level="flush"') >= 1  # durability flush
    for name in ("hdf5_async_storage_busy_seconds_total", "hdf5_async_wal_bytes",
                 "hdf5_async_auth_failures_total", "hdf5_async_fsync_seconds_count"):
        assert metric(text, name) is not None, name
    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (Debian's prometheus package)")
    p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), p


def test_scraped_by_prometheus(srv, tmp_path):
    if not shutil.which("prometheus"):
        pytest.skip("prometheus is not installed (Debian's prometheus package)")
    append(srv, 7)
    with socket.socket() as s:  # a free port for Prometheus' own web API
        s.bind(("127.0.0.1", 0))
        pport = s.getsockname()[1]
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: hdf5-async\n"
                   "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % srv.http_port)
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen(["prometheus", "--config.file=%s" % cfg,
                             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % pport],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        value = None
        q = urllib.request.quote('hdf5_async_requests_total{op="append",code="OK"}')
        while time.monotonic() < deadline and value is None:
            assert prom.poll() is None, open(tmp_path / "prometheus.log").read()[-3000:]
            try:
                st, _, body = get(pport, "/api/v1/query?query=" + q)
            except (urllib.error.URLError, ConnectionError):
                st = None
            if st == 200:
                res = json.loads(body)["data"]["result"]
                if res:
                    value = float(res[0]["value"][1])
            if value is None:
                time.sleep(0.2)  # waiting for Prometheus' first scrape, no assertion on time
        assert value == 7, open(tmp_path / "prometheus.log").read()[-3000:]
        st, _, body = get(pport, "/api/v1/targets")
        t = json.loads(body)["data"]["activeTargets"]
        assert t and t[0]["health"] == "up", t
    finally:
        prom.terminate()
        prom.wait(timeout=60)
        log.close()


def test_health(srv):
    st, _, body = get(srv.http_port, "/health")
    assert st == 200 and json.loads(body) == {"status": "ok", "file": "data.h5"}


def test_bad_requests(srv):
    p = srv.http_port
    assert raw(p, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(p, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 414 ")
    assert raw(p, b"GET / HTTP/1.1\r\nX: " + b"b" * 20000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
    assert raw(p, b"GET /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").startswith(
        b"HTTP/1.1 413 ")
    st, _, _ = get(p, "/health", method="POST")
    assert st == 405
    # keep-alive and pipelining: two requests in one write, two answers in order
    out = raw(p, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /api/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.endswith(b"ok"), out
    # the server still serves
    assert get(p, "/health")[0] == 200


def test_tokens(tmp_path):
    tok = "s3cret-token-for-http"
    h = hashlib.sha256(tok.encode()).hexdigest()
    (tmp_path / "tokens").write_text("viewer read %s /runs\n" % h)
    s = start_server(tmp_path, http=True, server_opts={"auth_file": str(tmp_path / "tokens")})
    try:
        p = s.http_port
        st, hd, body = get(p, "/api/meta?file=data.h5&path=/runs")
        assert st == 401 and "Bearer" in hd["WWW-Authenticate"], body
        st, _, _ = get(p, "/api/meta?file=data.h5&path=/runs", {"Authorization": "Bearer nope"})
        assert st == 401
        auth = {"Authorization": "Bearer " + tok}
        st, _, body = get(p, "/api/meta?file=data.h5&path=/", auth)
        assert st == 403 and "Permission denied" in json.loads(body)["message"]  # outside /runs
        st, _, body = get(p, "/api/meta?file=data.h5&path=/runs", auth)
        assert st == 404, body  # allowed, and not there
        assert get(p, "/metrics", auth)[0] == 200
        assert get(p, "/metrics")[0] == 401
        assert get(p, "/health")[0] == 200  # load balancers need no token
        st, _, body = get(p, "/metrics", auth)
        assert metric(body.decode(), "hdf5_async_auth_failures_total") == 1
    finally:
        s.stop()


def test_cors(tmp_path):
    s = start_server(tmp_path, http=True, server_opts={"http_cors_origin": "https://example.org"})
    try:
        st, h, _ = get(s.http_port, "/api/meta?file=data.h5&path=/")
        assert st == 200 and h["Access-Control-Allow-Origin"] == "https://example.org"
        st, h, _ = get(s.http_port, "/api/meta", method="OPTIONS")
        assert st == 204 and "Authorization" in h["Access-Control-Allow-Headers"]
    finally:
        s.stop()


def test_viewer_page_served(srv):
    st, h, body = get(srv.http_port, "/")
    assert st == 200 and h["Content-Type"].startswith("text/html")
    if b"app.js" in body:  # the bundle was built
        st, h, js = get(srv.http_port, "/app.js")
        assert st == 200 and len(js) > 100000
    else:
        assert b"make viewer" in body


def test_slow_browsers_never_stall_writers(tmp_path):
    """Browsers that ask for a large /api/data and never read a byte of it
    (bin: the read buffer itself; json: generated as the socket drains)
    hold their responses, but HTTP responses may hold only half of
    max_buffered_bytes: past it /api/data answers 503 (Retry-After), so the
    server never goes over its budget because of them, and a writer's large
    appends (frames over 64 KiB, which wait while the server is over budget)
    go on. slow_client_timeout 0: nothing rescues a stalled writer here, so
    without the bound the writer below waits forever (IO timeout)."""
    s = start_server(tmp_path, http=True,
                     server_opts={"max_buffered_bytes": "16M", "slow_client_timeout": 0})
    browsers = []
    try:
        big = np.arange(6 * 1024 * 1024 // 8, dtype="<f8")  # 6 MiB
        with RawConn(s) as c:
            r = c.call({"id": 1, "op": "write", "path": "/big",
                        "data": {"nd": True, "type": "<f8", "kind": "", "shape": [big.size],
                                 "data": big.tobytes()}})
            assert r["ok"], r
        for fmt in ("bin", "json", "bin", "json"):
            b = socket.socket()
            b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no kernel autotuning
            b.connect(("127.0.0.1", s.http_port))
            b.sendall(b"GET /api/data?file=data.h5&path=/big&format=%s HTTP/1.1\r\n"
                      b"Host: x\r\n\r\n" % fmt.encode())
            browsers.append(b)
        # every browser's read is answered before the writer starts
        with RawConn(s) as c:
            for i in range(len(browsers)):
                r = c.call({"id": 100 + i, "op": "ping"})
                assert r["ok"], r
        row = np.arange(2 * 1024 * 1024 // 8, dtype="<f8")  # 2 MiB frames
        with RawConn(s) as w:
            for i in range(20):
                r = w.call({"id": i, "op": "append", "path": "/log/big_rows",
                            "data": {"nd": True, "type": "<f8", "kind": "", "shape": [1, row.size],
                                     "data": row.tobytes()}})
                assert r["ok"], r
        # what the browsers got: 200 (its body stalled) or 503 at once
        statuses = []
        for b in browsers:
            b.settimeout(IO_TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = b.recv(4096)
                assert chunk, head
                head += chunk
            statuses.append(int(head.split(b" ")[1]))
            if statuses[-1] == 503:
                assert b"Retry-After: " in head and b"max_buffered_bytes" in head, head
        assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    finally:
        for b in browsers:
            b.close()
    # the stalled responses let go: the whole dataset can be read again
    for fmt in ("bin", "json"):
        st, _, body = get(s.http_port, "/api/data?file=data.h5&path=/big&format=" + fmt)
        assert st == 200, body[:300]
        got = np.frombuffer(body, "<f8") if fmt == "bin" else np.array(json.loads(body))
        assert np.array_equal(got, big)
    s.stop()
    import h5py
    with h5py.File(s.file, "r") as f:
        assert f["/log/big_rows"].shape == (20, row.size)


def test_max_connections_counts_both_ports(tmp_path):
    """max_connections is one limit over both ports: with 2 allowed, one
    main-port client and one kept-alive browser fill it; a third, on either
    port, is told why (HTTP 503 / TOO_LARGE) and closed; once the browser
    leaves, a new one is served."""
    s = start_server(tmp_path, http=True, server_opts={"max_connections": 2})
    try:
        with RawConn(s) as c:
            assert c.call({"id": 1, "op": "ping"})["ok"]
            b = socket.create_connection(("127.0.0.1", s.http_port), timeout=IO_TIMEOUT)
            b.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b.recv(4096).startswith(b"HTTP/1.1 200 ")  # kept alive
            out = raw(s.http_port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 503 ") and b"max_connections" in out, out
            with RawConn(s) as d:
                r = d.recv()
                assert r["error"]["code"] == "TOO_LARGE" and d.is_closed_by_peer(), r
            b.close()
            # the browser's close is seen; then a new browser is served
            deadline = time.monotonic() + IO_TIMEOUT
            while True:
                out = raw(s.http_port, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
                if out.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
                    break
            assert out.startswith(b"HTTP/1.1 200 "), out
            assert c.call({"id": 2, "op": "ping"})["ok"]
    finally:
        s.stop()


def test_metrics_follow_the_load(srv):
    """Each metric moves with what it counts: an error code is its own
    series, fsync commits feed the fsync histogram, a queued request shows
    in the storage thread's busy time, open connections per port."""
    def scrape():
        st, _, body = get(srv.http_port, "/metrics")
        assert st == 200
        return body.decode()

    before = scrape()
    with RawConn(srv) as c:
        r = c.call({"id": 1, "op": "read", "path": "/missing"})
        assert not r["ok"] and r["error"]["code"] == "NOT_FOUND", r
        for i in range(3):
            r = c.call({"id": 2 + i, "op": "append", "path": "/log/f", "durability": "fsync",
                        "data": {"nd": True, "type": "<f8", "kind": "", "shape": [1],
                                 "data": np.float64(i).tobytes()}})
            assert r["ok"], r
        during = scrape()
        assert metric(during, "hdf5_async_connections", 'port="main"') == 1
    assert metric(during, "hdf5_async_requests_total", 'op="read",code="NOT_FOUND"') == 1
    assert metric(during, "hdf5_async_request_apply_seconds_count", 'op="read"') >= 1
    assert (metric(during, "hdf5_async_fsync_seconds_count")
            >= metric(before, "hdf5_async_fsync_seconds_count") + 1)
    assert (metric(during, "hdf5_async_commits_total", 'level="fsync"')
            >= metric(before, "hdf5_async_commits_total", 'level="fsync"') + 1)
    assert (metric(during, "hdf5_async_storage_busy_seconds_total")
            > metric(before, "hdf5_async_storage_busy_seconds_total"))
    assert metric(during, "hdf5_async_wal_bytes") > 0
    assert (metric(during, "hdf5_async_http_requests_total", 'endpoint="metrics",status="200"')
            >= 1)
    deadline = time.monotonic() + IO_TIMEOUT  # the close is seen in a later turn of the loop
    while metric(scrape(), "hdf5_async_connections", 'port="main"') != 0:
        assert time.monotonic() < deadline


def test_https_with_the_main_ports_certificate(tmp_path):
    """With tls_cert_file the HTTP port speaks HTTPS with the same
    certificate (TLS 1.2+); a large /api/data goes through TLS intact; plain
    HTTP to it is told (400) and closed."""
    import ssl
    d = tmp_path / "pki"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=ca")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "san.ext")
    s = start_server(tmp_path / "srv", http=True, server_opts={
        "tls_cert_file": d / "srv.pem", "tls_key_file": d / "srv.key"})
    try:
        ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
        big = np.arange(300000, dtype="<f8")
        conn = socket.create_connection(("127.0.0.1", s.port), timeout=IO_TIMEOUT)
        with ctx.wrap_socket(conn, server_hostname="127.0.0.1") as t:
            from msgpack import packb, unpackb
            import struct
            p = packb({"id": 1, "op": "write", "path": "/big",
                       "data": {"nd": True, "type": "<f8", "kind": "", "shape": [big.size],
                                "data": big.tobytes()}}, use_bin_type=True)
            t.sendall(struct.pack(">I", len(p)) + p)
            buf = b""
            while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                chunk = t.recv(65536)
                assert chunk, buf
                buf += chunk
            assert unpackb(buf[4:])["ok"]
        for url, check in [("/health", lambda b: json.loads(b)["status"] == "ok"),
                           ("/api/data?file=data.h5&path=/big&format=bin",
                            lambda b: np.array_equal(np.frombuffer(b, "<f8"), big)),
                           ("/api/data?file=data.h5&path=/big",
                            lambda b: np.array_equal(np.array(json.loads(b)), big))]:
            with urllib.request.urlopen("https://127.0.0.1:%d%s" % (s.http_port, url),
                                        context=ctx, timeout=IO_TIMEOUT) as r:
                assert r.status == 200 and check(r.read()), url
        out = raw(s.http_port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 400 ") and b"HTTPS" in out, out
    finally:
        s.stop()


def test_500_is_json(srv):
    # h5grove: get_list_of_paths raises TypeError ("... is not a group") on a
    # dataset, an uncaught exception: 500 (docs/_static/api.yaml: errors as
    # {"message"}); h5web shows the message
    append(srv, 1)
    st, h, body = get(srv.http_port, "/api/paths?file=data.h5&path=/log/x")
    assert st == 500 and h["Content-Type"] == "application/json", body
    assert json.loads(body) == {"message": "/log/x is not a group"}


def test_viewer_build_without_npm(tmp_path):
    """Where npm is missing (or the registry unreachable) the viewer's build
    still succeeds, with one page that says how to build the viewer: the
    server then serves that page at /."""
    from h5a_util import REPO_ROOT
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("mkdir", "rm", "cat", "touch", "dirname"):  # all it needs, but npm
        os.symlink(shutil.which(tool), bindir / tool)
    out = tmp_path / "viewer"
    p = subprocess.run(["/bin/sh", os.path.join(REPO_ROOT, "scripts", "viewer-build.sh"),
                        str(out)], env={"PATH": str(bindir)}, capture_output=True, timeout=60)
    assert p.returncode == 0, p
    assert b"npm is not installed" in p.stderr
    page = (out / "index.html").read_text()
    assert "make viewer" in page and "npm is not installed" in page
    assert sorted(os.listdir(out)) == [".stamp", "index.html"]


def test_unread_response_dropped_after_slow_client_timeout(tmp_path):
    """A browser that takes none of a large response's bytes for
    slow_client_timeout seconds is dropped, as a client of the main port
    would be: what it held is let go (buffered bytes back to 0) and the
    server goes on serving."""
    s = start_server(tmp_path, http=True, server_opts={"slow_client_timeout": 1})
    try:
        big = np.arange(4 * 1024 * 1024 // 8, dtype="<f8")
        with RawConn(s) as c:
            r = c.call({"id": 1, "op": "write", "path": "/big",
                        "data": {"nd": True, "type": "<f8", "kind": "", "shape": [big.size],
                                 "data": big.tobytes()}})
            assert r["ok"], r
        b = socket.socket()
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        b.connect(("127.0.0.1", s.http_port))
        b.sendall(b"GET /api/data?file=data.h5&path=/big&format=bin HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + IO_TIMEOUT  # waiting for the sweep, no assertion on time
        while "dropped http" not in s.stderr():
            assert time.monotonic() < deadline, s.stderr()[-2000:]
            time.sleep(0.1)
        assert "slow_client_timeout" in s.stderr()
        while True:
            st, _, body = get(s.http_port, "/metrics")
            if metric(body.decode(), "hdf5_async_buffered_bytes") == 0:
                break
            assert time.monotonic() < deadline
        b.close()
        st, _, body = get(s.http_port, "/api/data?file=data.h5&path=/big&format=bin")
        assert st == 200 and body == big.tobytes()
    finally:
        s.stop()
