"""Fixtures for the hdf5-async integration tests.

The server under test is $H5A_SERVER (default build/hdf5-async-server under
the repository root). Each test that asks for `server` gets its own process
on a free port with its own HDF5 file; teardown stops it with SIGTERM and
fails the test unless it exits 0 with no sanitizer report.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h5a_util  # noqa: E402


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(server_opts=None, precreate=None, ...) -> Server.
    Every server it started is stopped and checked at teardown."""
    started = []
    counter = [0]

    def start(**kw):
        counter[0] += 1
        workdir = kw.pop("workdir", None) or tmp_path / ("srv%d" % counter[0])
        srv = h5a_util.start_server(workdir, **kw)
        started.append(srv)
        return srv

    yield start
    errors = []
    for srv in started:
        try:
            srv.stop()
        except Exception as e:  # report every server, not just the first
            errors.append("%r: %s" % (srv, e))
        finally:
            if srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait()
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def server(start_server):
    """A fresh server with an empty HDF5 file and default settings."""
    return start_server()


@pytest.fixture
def client_factory():
    """Makes HDF5Client objects for a server (not connected)."""
    from hdf5_async import HDF5Client

    def make(srv, **kw):
        kw.setdefault("timeout", h5a_util.IO_TIMEOUT)
        return HDF5Client(srv.host, srv.port, **kw)

    return make
