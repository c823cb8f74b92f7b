"""Helpers shared by the integration tests: starting the real server,
talking to it over a raw socket, and snapshotting HDF5 files with h5py."""

import asyncio
import glob
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import h5py
import msgpack
import numpy as np

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON_DIR = os.path.join(REPO_ROOT, "python")
if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)

# Generous bounds so a hung server fails a test instead of hanging the
# suite; they are never used to wait for something to "probably" happen.
# `make test VALGRIND=1` runs the server many times slower and sets
# H5A_TEST_TIMEOUT_SCALE to stretch them.
TIMEOUT_SCALE = float(os.environ.get("H5A_TEST_TIMEOUT_SCALE") or 1)
START_TIMEOUT = 60.0 * TIMEOUT_SCALE
STOP_TIMEOUT = 60.0 * TIMEOUT_SCALE
IO_TIMEOUT = 60.0 * TIMEOUT_SCALE

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def valgrind_report(pid):
    """Under `make test VALGRIND=1`, the valgrind log of process pid
    (tests/valgrind.sh names it after the pid), else ""."""
    logdir = os.environ.get("H5A_VALGRIND_LOGDIR")
    if not logdir:
        return ""
    logs = sorted(glob.glob(os.path.join(logdir, "vg.%d.*.log" % pid)))
    if not logs:
        return ""
    with open(logs[-1], errors="replace") as f:
        return "\nvalgrind log %s:\n%s" % (logs[-1], f.read()[-8000:])


def server_binary():
    path = os.environ.get("H5A_SERVER") or os.path.join(REPO_ROOT, "build", "hdf5-async-server")
    return os.path.abspath(path)


def write_config(path, server=None, client=None, raw=None):
    """Write a config.ini. server/client are dicts of key -> value; raw, if
    given, is written verbatim instead."""
    with open(path, "w") as f:
        if raw is not None:
            f.write(raw)
            return path
        f.write("[server]\n")
        for k, v in (server or {}).items():
            f.write("%s = %s\n" % (k, v))
        f.write("\n[client]\n")
        f.write("# This section is for client-specific settings if any were needed.\n")
        for k, v in (client or {}).items():
            f.write("%s = %s\n" % (k, v))
    return path


class ServerError(AssertionError):
    pass


class Server:
    """A running hdf5-async-server process."""

    def __init__(self, proc, host, port, file, config, stderr_path, workdir):
        self.proc = proc
        self.host = host
        self.port = port
        self.file = file
        self.config = config
        self.stderr_path = stderr_path
        self.workdir = workdir
        self.returncode = None
        self.killed = False
        self.signalled = False
        self._stdout_rest = []

    def __repr__(self):
        return "<Server %s:%s pid=%s file=%s>" % (self.host, self.port, self.proc.pid, self.file)

    @property
    def address(self):
        return (self.host, self.port)

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, check=True):
        """Signal the server, wait for it, and (check=True) assert a clean
        exit: code 0 and no sanitizer report. Returns the exit code."""
        if self.killed:
            return self.returncode
        if self.returncode is None:
            if self.proc.poll() is None and not self.signalled:
                self.signal(sig)
            try:
                self.returncode = self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise ServerError(
                    "server did not exit within %ss of %s\nstderr:\n%s"
                    % (STOP_TIMEOUT, sig, self.stderr()[-4000:])
                )
        if check:
            self.check_clean()
        return self.returncode

    def signal(self, sig=signal.SIGTERM):
        """Send one shutdown signal; stop() then only waits (a second
        signal is not the graceful path)."""
        self.signalled = True
        self.proc.send_signal(sig)

    def check_clean(self):
        err = self.stderr()
        for marker in SANITIZER_MARKERS:
            if marker in err:
                raise ServerError("sanitizer report in server stderr:\n%s" % err[-8000:])
        if self.returncode != 0:
            raise ServerError(
                "server exited with %s, expected 0\nstderr:\n%s%s"
                % (self.returncode, err[-4000:], valgrind_report(self.proc.pid))
            )

    def kill(self):
        """SIGKILL (for tests of a server dying); stop() then checks nothing."""
        if self.proc.poll() is None:
            self.killed = True
            self.proc.kill()
            self.returncode = self.proc.wait()


def _read_ready_line(proc, timeout, nlines=1):
    """Read the server's stdout until the first newline (the first nlines
    newlines), without sleeping."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while buf.count(b"\n") < nlines:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerError("server printed no ready line within %ss" % timeout)
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break  # EOF: the server exited
            buf += chunk
    finally:
        sel.close()
    line, _, rest = buf.partition(b"\n")
    return line.decode("utf-8", "replace"), rest


def start_server(
    workdir,
    server_opts=None,
    precreate=None,
    extra_args=(),
    file_name="data.h5",
    env=None,
    client_opts=None,
    http=False,
    extra_config=None,
):
    """Start the real server on 127.0.0.1, port 0, with a fresh config.ini and
    HDF5 file under workdir. precreate(path) may make the HDF5 file first
    (with h5py). Returns a Server once it printed `listening on HOST:PORT`
    (with http: also `http listening on HOST:PORT`, its port in
    srv.http_port; the HTTP port is then port 0)."""
    binary = server_binary()
    if not os.path.exists(binary):
        raise ServerError("server binary %s does not exist (set H5A_SERVER or run make)" % binary)
    workdir = str(workdir)
    os.makedirs(workdir, exist_ok=True)
    h5file = os.path.join(workdir, file_name)
    if precreate is not None:
        precreate(h5file)
    opts = {"host": "127.0.0.1", "port": 0, "hdf5_file_path": h5file}
    opts.update(server_opts or {})
    # port 0 may or may not be accepted in the file; --port 0 always is
    file_opts = {k: v for k, v in opts.items() if k != "port"}
    config = write_config(os.path.join(workdir, "config.ini"), server=file_opts, client=client_opts)
    if extra_config:  # more sections ([cluster])
        with open(config, "a") as f:
            f.write("\n" + extra_config)
    stderr_path = os.path.join(workdir, "server.stderr")
    args = [binary, "--config", config, "--host", "127.0.0.1", "--port", str(opts["port"])]
    if http:
        args += ["--http-port", "0"]
    args += list(extra_args)
    penv = dict(os.environ)
    penv.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    penv.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if env:
        penv.update(env)
    with open(stderr_path, "wb") as errf:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errf,
            cwd=workdir,
            env=penv,
        )
    try:
        line, rest = _read_ready_line(proc, START_TIMEOUT, 2 if http else 1)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    prefix = "listening on "
    if not line.startswith(prefix):
        proc.kill()
        proc.wait()
        with open(stderr_path, errors="replace") as f:
            err = f.read()
        raise ServerError("unexpected first stdout line %r\nstderr:\n%s" % (line, err[-4000:]))
    hostport = line[len(prefix):].strip()
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    srv = Server(proc, host, int(port), h5file, config, stderr_path, workdir)
    srv.http_port = None
    if http:
        hline, _, rest = rest.partition(b"\n")
        hline = hline.decode("utf-8", "replace")
        if not hline.startswith("http listening on "):
            proc.kill()
            proc.wait()
            raise ServerError("unexpected second stdout line %r" % hline)
        srv.http_port = int(hline.rpartition(":")[2])
    srv._stdout_rest.append(rest)

    def drain():  # keep the pipe from filling if the server logs to stdout
        try:
            while True:
                chunk = proc.stdout.read(65536)
                if not chunk:
                    break
                srv._stdout_rest.append(chunk)
        except (OSError, ValueError):
            pass

    threading.Thread(target=drain, daemon=True).start()
    return srv


# --------------------------------------------------------------------------
# raw protocol access
# --------------------------------------------------------------------------


class RawConn:
    """A blocking socket speaking frames, for sending arbitrary bytes."""

    def __init__(self, server, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(server.address, timeout=timeout)
        self.sock.settimeout(timeout)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def send(self, obj, **packkw):
        packkw.setdefault("use_bin_type", True)
        self.send_frame(msgpack.packb(obj, **packkw))

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_payload(self):
        (n,) = struct.unpack(">I", self._recv_exact(4))
        return self._recv_exact(n)

    def recv(self, **unpackkw):
        unpackkw.setdefault("raw", False)
        unpackkw.setdefault("strict_map_key", False)
        return msgpack.unpackb(self.recv_payload(), **unpackkw)

    def call(self, obj, **unpackkw):
        self.send(obj)
        return self.recv(**unpackkw)

    def is_closed_by_peer(self):
        """True when the server closed the connection (EOF or reset)."""
        try:
            data = self.sock.recv(1)
        except (ConnectionResetError, BrokenPipeError):
            return True
        if data == b"":
            return True
        raise AssertionError("unexpected extra bytes from server: %r" % data)


def assert_error(reply, code, req_id="any"):
    assert isinstance(reply, dict), reply
    assert reply.get("ok") is False, reply
    assert list(reply.keys()) == ["id", "ok", "error"], reply
    err = reply["error"]
    assert err["code"] == code, reply
    assert isinstance(err["message"], str) and err["message"], reply
    if req_id != "any":
        assert reply["id"] == req_id, reply


def assert_ok(reply, req_id="any"):
    assert isinstance(reply, dict), reply
    assert reply.get("ok") is True, reply
    assert list(reply.keys()) == ["id", "ok", "result"], reply
    if req_id != "any":
        assert reply["id"] == req_id, reply
    return reply["result"]


# --------------------------------------------------------------------------
# HDF5 snapshots
# --------------------------------------------------------------------------


def snapshot(path):
    """Everything observable about a file's objects, comparable with ==."""
    out = {}

    def visit(name, obj):
        attrs = tuple(sorted((k, repr(v)) for k, v in obj.attrs.items()))
        if isinstance(obj, h5py.Group):
            out[name] = ("group", attrs)
        else:
            data = obj[()]
            if isinstance(data, np.ndarray):
                if data.dtype.kind == "O":
                    data = ("obj", data.shape, data.tolist())
                else:
                    data = (data.dtype.str, data.shape, data.tobytes())
            else:
                data = repr(data)
            out[name] = (
                "dataset",
                obj.dtype.str if obj.dtype.names is None else repr(obj.dtype.descr),
                obj.shape,
                obj.maxshape,
                obj.chunks,
                obj.compression,
                obj.compression_opts,
                data,
                attrs,
            )

    with h5py.File(path, "r") as f:
        out["/"] = ("group", tuple(sorted((k, repr(v)) for k, v in f.attrs.items())))
        f.visititems(visit)
    return out


def run(coro, timeout=IO_TIMEOUT * 4):
    """asyncio.run with a bound so a hang fails instead of blocking CI."""

    async def guarded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


def session(srv, fn, **client_kw):
    """Run `await fn(client)` with a connected HDF5Client; return its result."""
    from hdf5_async import HDF5Client

    client_kw.setdefault("timeout", IO_TIMEOUT)

    async def go():
        async with HDF5Client(srv.host, srv.port, **client_kw) as c:
            return await fn(c)

    return run(go())


def h5open(path):
    return h5py.File(path, "r")


def type_signature(t):
    """Every property of an HDF5 datatype that h5py's TypeID == (H5Tequal)
    might not compare (H5Tequal ignores cset and padding of variable-length
    strings), as a nested tuple."""
    from h5py import h5t

    cls = t.get_class()
    if isinstance(t, h5t.TypeStringID):
        vl = t.is_variable_str()
        return ("string", vl, None if vl else t.get_size(), t.get_cset(), t.get_strpad())
    if isinstance(t, h5t.TypeEnumID):
        members = tuple((t.get_member_name(i), t.get_member_value(i)) for i in range(t.get_nmembers()))
        return ("enum", type_signature(t.get_super()), members)
    if isinstance(t, h5t.TypeIntegerID):
        return ("int", t.get_size(), t.get_order(), t.get_sign())
    if isinstance(t, h5t.TypeFloatID):
        return ("float", t.get_size(), t.get_order(), t.get_fields(), t.get_ebias(), t.get_norm(), t.get_inpad())
    if isinstance(t, h5t.TypeCompoundID):
        members = tuple(
            (t.get_member_name(i), t.get_member_offset(i), type_signature(t.get_member_type(i)))
            for i in range(t.get_nmembers())
        )
        return ("compound", t.get_size(), members)
    if isinstance(t, h5t.TypeArrayID):
        return ("array", t.get_array_dims(), type_signature(t.get_super()))
    if isinstance(t, h5t.TypeOpaqueID):
        return ("opaque", t.get_size(), t.get_tag())
    if isinstance(t, h5t.TypeVlenID):
        return ("vlen", type_signature(t.get_super()))
    return ("class", cls, t.get_size())


def wait_until(cond, timeout=IO_TIMEOUT, every=0.05):
    """Poll cond() until it is true (a state with no event to wait on, such
    as the server noticing free disk space once a second); fails after
    timeout. Not a timing assertion: only an upper bound on waiting."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %ss" % timeout)
        time.sleep(every)
