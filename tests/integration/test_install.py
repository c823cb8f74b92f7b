"""`make install PREFIX=DIR` as a new user runs it: the README's C example,
built with `pkg-config hdf5async` from that prefix, runs without ldconfig
or LD_LIBRARY_PATH against the server installed in DIR/bin, and the
installed CLI reads what it wrote.

`make test` sets $H5A_MAKE (make with this build's BUILD/SANITIZE/VALGRIND)
and $H5A_SANFLAGS (the sanitizer flags the library was built with, which
the program must be linked with too)."""

import os
import re
import shlex
import subprocess

import h5a_util


def _readme_c_example(port):
    """The README's first C example, the program a new user tries first."""
    with open(os.path.join(h5a_util.REPO_ROOT, "README.md"), encoding="utf-8") as f:
        source = re.search(r"^```c\n(.*?)^```$", f.read(), re.M | re.S).group(1)
    assert "8888" in source
    return source.replace("8888", str(port))


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
    monkeypatch.setenv("H5A_SERVER", str(prefix / "bin" / "hdf5-async-server"))
    srv = start_server()
    (tmp_path / "app.c").write_text(_readme_c_example(srv.port))
    cc = os.environ.get("CC") or "cc"
    sanflags = shlex.split(os.environ.get("H5A_SANFLAGS", ""))
    _run([cc] + sanflags + [str(tmp_path / "app.c"), "-o", str(tmp_path / "app")] + flags, env=env)
    for _ in range(2):  # a second run finds /runs/x and overwrites it
        assert _run([str(tmp_path / "app")], env=env) == "<f8 3\n"
    out = _run([str(prefix / "bin" / "hdf5-async"), "--port", str(srv.port), "get", "/runs/x"],
               env=env)
    assert "1., 2., 3." in out, out
