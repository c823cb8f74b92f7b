"""The progress bar of put and get on a terminal: a pseudo-terminal of a
given width, every redraw of the bar parsed from what the CLI wrote."""

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
import unicodedata

import numpy as np
import pytest

from conftest import CLI, SANITIZER_MARKERS, TIMEOUT
from test_cli import _empty_dir, save

# over PROGRESS_MIN_BYTES (4 MiB): 5.3 MiB
BIG = np.arange(700 * 1000, dtype="<f8").reshape(700, 1000)
LONG = "/" + "/".join("experiment_%02d_with_a_rather_long_name" % i for i in range(4)) + "/dataset"

BAR = re.compile(
    r"^(?P<verb>put|get|append) (?P<path>.*?)"
    r"(?:  \[(?P<bar>[#.]+)\])? +(?P<pct>\d+)%"
    r"(?P<bytes>  \d+\.\d/\d+\.\d MiB)?(?:  \d+(?:\.\d)? (?:B|KiB|MiB|GiB|TiB)/s)?$"
)


def on_terminal(args, srv, cols, env=None):
    """Runs the CLI with stderr on a pseudo-terminal cols wide (0: a
    terminal that does not know its size); returns what it wrote there."""
    master, slave = pty.openpty()
    if cols:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    p = subprocess.Popen([CLI, "--host", srv.host, "--port", str(srv.port)] + [str(a) for a in args],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                         cwd=_empty_dir(), env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], deadline - time.monotonic())[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
        if p.poll() is None and time.monotonic() >= deadline:
            p.kill()
    assert p.wait(timeout=TIMEOUT) == 0, seen
    p.stdout.close()
    text = seen.decode("utf-8")
    assert not any(m in text for m in SANITIZER_MARKERS), text
    return text


def columns(s):
    """Columns a terminal gives s."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def bars(text, verb, path):
    """The bar lines drawn, each checked against the layout; and the
    summary line that replaced them."""
    # each redraw is "\r ESC[K line"; the end clears the bar and writes the
    # summary (the terminal turned its \n into \r\n)
    parts = text.split("\r\x1b[K")
    assert parts[0] == "" and parts[-1].endswith("\r\n"), repr(text)
    summary = parts[-1][:-2]
    assert summary.startswith("%s %s: 5.3 MiB in " % (verb, path)), summary
    lines = parts[1:-1]
    assert lines, repr(text)
    parsed = []
    for line in lines:
        assert "\n" not in line and "\r" not in line, repr(line)
        m = BAR.match(line)
        assert m and m["verb"] == verb, repr(line)
        shown = m["path"]
        if shown != path:  # elided in the middle
            head, sep, tail = shown.partition("...")
            assert sep and path.startswith(head) and path.endswith(tail), (shown, path)
            assert len(head) + len(tail) < len(path)
        parsed.append((line, m))
    assert any(m["pct"] == "100" for _, m in parsed), lines
    return parsed


@pytest.mark.parametrize("cols", [80, 40])
@pytest.mark.parametrize("verb", ["put", "get"])
def test_bar_fits_the_terminal(server, tmp_path, verb, cols):
    """A long path no longer wraps the bar (a new line per redraw): it is
    elided in the middle and the line stays narrower than the terminal."""
    src = save(tmp_path, BIG)
    args = ["put", LONG, src]
    if verb == "get":
        on_terminal(args, server, cols)
        args = ["get", LONG, "-o", tmp_path / "out.npy"]
    for line, m in bars(on_terminal(args, server, cols), verb, LONG):
        # the last column stays free: some terminals wrap on writing it
        assert len(line) <= cols - 1, (cols, line)
        assert "..." in m["path"] and m["bar"], line
        if cols == 80:
            assert m["bytes"], line


def test_short_path_shown_whole_with_everything(server, tmp_path):
    src = save(tmp_path, BIG)
    for line, m in bars(on_terminal(["put", "/x", src], server, 80), "put", "/x"):
        assert m["path"] == "/x" and len(m["bar"]) == 20 and m["bytes"], line


def test_columns_from_the_environment(server, tmp_path):
    """A terminal that does not know its size: $COLUMNS, else 80."""
    src = save(tmp_path, BIG)
    env = dict(os.environ, COLUMNS="50")
    for line, _ in bars(on_terminal(["put", LONG, src], server, 0, env), "put", LONG):
        assert len(line) <= 49, line
    env.pop("COLUMNS")
    for line, _ in bars(on_terminal(["put", LONG, src], server, 0, env), "put", LONG):
        assert len(line) <= 79, line


def test_tiny_terminal(server, tmp_path):
    src = save(tmp_path, BIG)
    text = on_terminal(["put", LONG, src], server, 12)
    lines = text.split("\r\x1b[K")[1:-1]
    assert lines and all(len(line) <= 11 and "\n" not in line for line in lines), lines


def test_wide_and_unprintable_characters(server, tmp_path):
    """Wide characters count two columns; a control character in a name is
    shown as '?' rather than moving the cursor."""
    src = save(tmp_path, BIG)
    path = "/数据/" + "测量结果" * 8 + "/tab\there"
    text = on_terminal(["put", path, src], server, 40)
    lines = text.split("\r\x1b[K")[1:-1]
    assert lines, repr(text)
    for line in lines:
        assert columns(line) <= 39 and "\t" not in line, line
        assert line.startswith("put /数据/..."), line
        assert line.split()[1].endswith("?here"), line
