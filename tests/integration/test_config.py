"""Server configuration: bad files make it exit non-zero naming file, line
and key; good files (the seed's layout included) start it."""

import os
import re
import subprocess

import h5py
import numpy as np
import pytest

import h5a_util
from h5a_util import RawConn, assert_ok, session


def run_server_expect_failure(args, cwd, timeout=h5a_util.START_TIMEOUT):
    proc = subprocess.run(
        [h5a_util.server_binary()] + args,
        cwd=str(cwd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode != 0, "server accepted it: stdout=%r stderr=%r" % (proc.stdout, proc.stderr)
    assert "listening on" not in proc.stdout
    for marker in h5a_util.SANITIZER_MARKERS:
        assert marker not in proc.stderr, proc.stderr
    return proc


GOOD_LINES = [
    "[server]",
    "host = 127.0.0.1",
    "port = 0",
    "hdf5_file_path = data.h5",
    "use_compression = false",
    "debug = false",
    "serialization_format = messagepack",
]


@pytest.mark.parametrize(
    "key,line",
    [
        ("colour", "colour = blue"),
        ("hdf5_file", "hdf5_file = x.h5"),
        ("port", "port = abc"),
        ("port", "port = 70000"),
        ("port", "port = -1"),
        ("port", "port = 80x"),
        ("serialization_format", "serialization_format = json"),
        ("use_compression", "use_compression = maybe"),
        ("debug", "debug = 2"),
        ("max_message_size", "max_message_size = 12X"),
        ("max_message_size", "max_message_size = 0"),
        ("max_message_size", "max_message_size = 5G"),
        ("max_message_size", "max_message_size = -5"),
        ("max_message_size", "max_message_size = lots"),
    ],
)
def test_bad_config_exits_naming_file_line_key(tmp_path, key, line):
    lines = list(GOOD_LINES)
    lines.insert(3, line)  # line 4 of the file
    cfg = tmp_path / "bad.ini"
    cfg.write_text("\n".join(lines) + "\n\n[client]\n# comment\n")
    proc = run_server_expect_failure(["--config", str(cfg)], tmp_path)
    err = proc.stderr
    assert "bad.ini" in err, err
    assert re.search(r"\b4\b", err), "line number 4 not in: %r" % err
    assert key in err, err
    assert not (tmp_path / "data.h5").exists()  # nothing was opened


def test_bad_value_on_later_line(tmp_path):
    cfg = tmp_path / "config.ini"
    cfg.write_text("# comment\n\n[server]\nhost = 127.0.0.1\n\n\n\nport = nope\n")
    proc = run_server_expect_failure(["--config", str(cfg)], tmp_path)
    assert "config.ini" in proc.stderr and re.search(r"\b8\b", proc.stderr) and "port" in proc.stderr


def test_missing_config_file(tmp_path):
    proc = run_server_expect_failure(["--config", str(tmp_path / "nope.ini")], tmp_path)
    assert "nope.ini" in proc.stderr


@pytest.mark.parametrize("args", [["--bogus"], ["--port", "notaport"], ["--port", "70000"], ["--port"]])
def test_bad_command_line(tmp_path, args):
    run_server_expect_failure(args + ["--file", str(tmp_path / "x.h5")], tmp_path)


def test_client_section_is_not_the_servers(start_server):
    # [client] belongs to clients: the server must not judge its keys
    srv = start_server(client_opts={"host": "127.0.0.1", "port": "1", "colour": "blue", "timeout": "x"})
    with RawConn(srv) as c:
        assert assert_ok(c.call({"id": 1, "op": "ping"})) == "pong"


def test_seed_config_layout_starts(tmp_path):
    """The seed's config.ini verbatim (port changed to 0)."""
    cfg = tmp_path / "config.ini"
    cfg.write_text(
        "[server]\nhost = 0.0.0.0\nport = 0\nhdf5_file_path = data.h5\nuse_compression = false\n"
        "debug = false\nserialization_format = messagepack\n\n[client]\n"
        "# This section is for client-specific settings if any were needed.\n"
        "# Currently, the client reads the [server] section for connection info.\n"
    )
    srv = _start_with_config(tmp_path, cfg, ["--host", "127.0.0.1"])
    try:
        assert session(srv, lambda c: c.write("/x", [1, 2])) == (2,)
    finally:
        srv.stop()
    # hdf5_file_path is relative to the working directory
    with h5py.File(str(tmp_path / "data.h5"), "r") as f:
        assert f["x"][()].tolist() == [1, 2]


def test_command_line_overrides_file(tmp_path):
    cfg = tmp_path / "config.ini"
    cfg.write_text("[server]\nhost = 127.0.0.1\nport = 1\nhdf5_file_path = from_config.h5\n")
    other = tmp_path / "from_flag.h5"
    srv = _start_with_config(tmp_path, cfg, ["--port", "0", "--file", str(other), "--debug"])
    try:
        session(srv, lambda c: c.write("/y", 1))
    finally:
        srv.stop()
    assert other.exists() and not (tmp_path / "from_config.h5").exists()


def test_use_compression_spellings(tmp_path):
    for i, spelling in enumerate(["true", "yes", "1", "on", "True"]):
        d = tmp_path / ("s%d" % i)
        d.mkdir()
        srv = h5a_util.start_server(d, server_opts={"use_compression": spelling})
        try:
            session(srv, lambda c: c.write("/d", np.arange(100.0)))
        finally:
            srv.stop()
        with h5py.File(srv.file, "r") as f:
            assert f["d"].compression == "gzip", spelling


def _start_with_config(workdir, cfg, extra):
    """Start with a given config file (start_server writes its own)."""
    stderr_path = os.path.join(str(workdir), "server.stderr")
    with open(stderr_path, "wb") as errf:
        proc = subprocess.Popen(
            [h5a_util.server_binary(), "--config", str(cfg)] + extra,
            cwd=str(workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errf,
        )
    line, _ = h5a_util._read_ready_line(proc, h5a_util.START_TIMEOUT)
    assert line.startswith("listening on "), line
    host, _, port = line[len("listening on "):].rpartition(":")
    return h5a_util.Server(proc, "127.0.0.1", int(port), None, str(cfg), stderr_path, str(workdir))


# `port = 8891 # local`: '#' and ';' after whitespace start a comment, in the
# server (src/common/ini_lines.c) as in the Python client (configparser).
COMMENTED = (
    "# the seed's layout, annotated\n"
    "[server]  # what the server reads\n"
    "host = 127.0.0.1   # loopback only\n"
    "port = 0 ; any free port\n"
    "hdf5_file_path = run#3.h5 # no space before that '#': part of the name\n"
    "use_compression = true\t# a tab counts as whitespace\n"
    "max_message_size = 64K # " + "long " * 100 + "\n"
    "\n"
    "[client]\n"
    "host = 0.0.0.0 ; as the server's\n"
    "port = 8891 # local\n"
)


def test_inline_comments_in_server_config(tmp_path):
    cfg = tmp_path / "config.ini"
    cfg.write_text(COMMENTED)
    srv = _start_with_config(tmp_path, cfg, [])
    try:
        session(srv, lambda c: c.write("/d", np.arange(100.0)))
        with RawConn(srv) as c:  # 64K, not the 1G default: the comment is not part of it
            c.send_frame(b"\x00" * (64 * 1024 + 1))
            assert c.recv()["error"]["code"] == "TOO_LARGE"
    finally:
        srv.stop()
    with h5py.File(str(tmp_path / "run#3.h5"), "r") as f:
        assert f["d"].compression == "gzip"


def test_line_after_a_long_commented_line_is_numbered_right(tmp_path):
    # the comment is longer than inih's line buffer: the rest of its line
    # must be skipped, not read as the next line
    cfg = tmp_path / "config.ini"
    cfg.write_text("[server]\nport = 0 # " + "x" * 500 + "\ncolour = blue\n")
    proc = run_server_expect_failure(["--config", str(cfg)], tmp_path)
    assert "config.ini:3:" in proc.stderr and "colour" in proc.stderr, proc.stderr


def test_inline_comments_in_python_client_config(tmp_path):
    from hdf5_async.config import load_settings

    cfg = tmp_path / "config.ini"
    cfg.write_text(COMMENTED.replace("port = 0 ;", "port = 1 ;"))  # port 0 is the server's
    s = load_settings(config=str(cfg))
    assert (s.host, s.port) == ("127.0.0.1", 8891)
