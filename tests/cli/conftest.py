"""Fixtures for the hdf5-async command-line tool tests.

The tool under test is $H5A_CLI (default build/hdf5-async), the server
$H5A_SERVER (default build/hdf5-async-server). Each server runs on
127.0.0.1, port 0, with its own HDF5 file; it is ready once it printed
"listening on HOST:PORT" (read from its stdout, no sleeping).
"""

import glob
import os
import selectors
import signal
import subprocess
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.path.abspath(os.environ.get("H5A_CLI") or os.path.join(REPO, "build", "hdf5-async"))
SERVER_BIN = os.path.abspath(
    os.environ.get("H5A_SERVER") or os.path.join(REPO, "build", "hdf5-async-server")
)

# Bounds so that a hang fails a test instead of the whole run; nothing
# waits for something to "probably" have happened. `make test VALGRIND=1`
# runs the server and the CLI many times slower and scales them.
TIMEOUT = 60.0 * float(os.environ.get("H5A_TEST_TIMEOUT_SCALE") or 1)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def valgrind_report(pid):
    """Under `make test VALGRIND=1`, the valgrind log of process pid
    (tests/valgrind.sh names it after the pid), else ""."""
    logdir = os.environ.get("H5A_VALGRIND_LOGDIR")
    logs = sorted(glob.glob(os.path.join(logdir, "vg.%d.*.log" % pid))) if logdir else []
    if not logs:
        return ""
    with open(logs[-1], errors="replace") as f:
        return "\nvalgrind log %s:\n%s" % (logs[-1], f.read()[-8000:])


class Server:
    def __init__(self, workdir, precreate=None, server_opts=None):
        if not os.path.exists(SERVER_BIN):
            raise RuntimeError("server binary %s missing (set H5A_SERVER or run make)" % SERVER_BIN)
        os.makedirs(workdir, exist_ok=True)
        self.workdir = str(workdir)
        self.file = os.path.join(self.workdir, "data.h5")
        if precreate is not None:
            precreate(self.file)
        config = os.path.join(self.workdir, "server.ini")
        with open(config, "w") as f:
            f.write("[server]\nhost = 127.0.0.1\nhdf5_file_path = %s\n" % self.file)
            for k, v in (server_opts or {}).items():
                f.write("%s = %s\n" % (k, v))
        self.stderr_path = os.path.join(self.workdir, "server.stderr")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [SERVER_BIN, "--config", config, "--host", "127.0.0.1", "--port", "0"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=self.workdir,
                env=env,
            )
        try:
            line = self._ready_line()
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        if not line.startswith("listening on "):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("unexpected server output %r: %s" % (line, self.stderr()))
        host, _, port = line[len("listening on "):].strip().rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.returncode = None

    def _ready_line(self):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + TIMEOUT
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("server printed no ready line: %s" % self.stderr())
                if not sel.select(left):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError("server exited before listening: %s" % self.stderr())
                buf += chunk
        finally:
            sel.close()
        return buf.split(b"\n", 1)[0].decode()

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def kill(self):
        """SIGKILL: a crash, nothing flushed or closed."""
        if self.returncode is not None:
            return
        self.proc.kill()
        self.returncode = self.proc.wait()
        self.proc.stdout.close()

    def stop(self):
        """SIGTERM, wait, and require a clean exit (status 0, no sanitizer
        report), so the file is flushed and closed for h5py."""
        if self.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            raise AssertionError("server did not stop: %s" % self.stderr())
        self.proc.stdout.close()
        err = self.stderr()
        assert not any(m in err for m in SANITIZER_MARKERS), err
        assert self.returncode == 0, "server exited %s: %s%s" % (
            self.returncode, err, valgrind_report(self.proc.pid))


@pytest.fixture
def start_server(tmp_path):
    started = []

    def start(workdir=None, **kw):
        """workdir: another server's, to restart on its file."""
        srv = Server(workdir or tmp_path / ("srv%d" % len(started)), **kw)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        try:
            srv.stop()
        finally:
            if srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait()


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for tests that only fail or read: faster than one each."""
    srv = Server(tmp_path_factory.mktemp("shared"))
    yield srv
    try:
        srv.stop()
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
