"""`make install PREFIX=DIR` as a new user runs it: a program built with
`pkg-config hdf5async` from that prefix runs without ldconfig or
LD_LIBRARY_PATH, against the server installed in DIR/bin, and the installed
CLI reads what it wrote.

`make test` sets $H5A_MAKE (make with this build's BUILD/SANITIZE/VALGRIND)
and $H5A_SANFLAGS (the sanitizer flags the library was built with, which
the program must be linked with too)."""

import os
import shlex
import subprocess

import h5a_util

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <hdf5_async.h>

int main(int argc, char **argv)
{
    char err[256];
    hdf5a_client *c = hdf5a_connect("127.0.0.1", atoi(argv[1]), 60000, err, sizeof err);
    if (!c) { fprintf(stderr, "%s\n", err); return 1; }
    double v[3] = {1, 2, 3};
    uint64_t shape[1] = {3};
    hdf5a_array a = {"<f8", 1, shape, v, sizeof v}, *r = NULL;
    int rc = hdf5a_write(c, "/installed/x", &a, NULL);
    if (rc == 0) rc = hdf5a_read(c, "/installed/x", &r);
    if (rc) fprintf(stderr, "%s: %s\n", hdf5a_strerror(rc), hdf5a_errstr(c));
    else printf("%s %g\n", r->dtype, ((const double *)r->data)[2]);
    hdf5a_array_free(r);
    hdf5a_close(c);
    return rc != 0;
}
"""


def _run(args, **kw):
    proc = subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=h5a_util.IO_TIMEOUT * 10, **kw
    )
    assert proc.returncode == 0, "%s failed (%d):\nstdout:\n%s\nstderr:\n%s" % (
        args, proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc.stdout


def test_install_then_build_with_pkg_config(tmp_path, start_server, monkeypatch):
    prefix = tmp_path / "prefix"
    make = shlex.split(os.environ.get("H5A_MAKE") or "make -C %s" % h5a_util.REPO_ROOT)
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # the outer make's jobserver is not ours
        env.pop(k, None)
    _run(make + ["--no-print-directory", "install", "PREFIX=%s" % prefix], env=env)
    for f in ("bin/hdf5-async-server", "bin/hdf5-async", "include/hdf5_async.h",
              "include/hdf5_async/adapters/poll.h", "lib/libhdf5async.so.0",
              "lib/libhdf5async.a", "lib/pkgconfig/hdf5async.pc"):
        assert (prefix / f).exists(), f

    # a new user's shell: nothing points at the prefix but PKG_CONFIG_PATH
    env.pop("LD_LIBRARY_PATH", None)
    env["PKG_CONFIG_PATH"] = str(prefix / "lib" / "pkgconfig")
    flags = shlex.split(_run(["pkg-config", "--cflags", "--libs", "hdf5async"], env=env))
    (tmp_path / "app.c").write_text(PROGRAM)
    cc = os.environ.get("CC") or "cc"
    sanflags = shlex.split(os.environ.get("H5A_SANFLAGS", ""))
    _run([cc] + sanflags + [str(tmp_path / "app.c"), "-o", str(tmp_path / "app")] + flags, env=env)

    monkeypatch.setenv("H5A_SERVER", str(prefix / "bin" / "hdf5-async-server"))
    srv = start_server()
    assert _run([str(tmp_path / "app"), str(srv.port)], env=env) == "<f8 3\n"
    out = _run([str(prefix / "bin" / "hdf5-async"), "--port", str(srv.port), "get", "/installed/x"],
               env=env)
    assert "1., 2., 3." in out, out
