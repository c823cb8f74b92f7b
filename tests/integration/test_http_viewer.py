"""The viewer in a real browser: headless Chromium (Debian's chromium,
driven by playwright-core from viewer/node_modules) loads /, the explorer
shows the file's groups, and a dataset appended by a writer through the
main port while the page is open appears (also on /?file=NAME, a file
under data_root) without a reload (the viewer's
live refresh), and rows appended to it later show in its shape (h5web's
metadata view) and in the data its plot fetches, still without a reload. A screenshot of a plotted dataset is saved (docs/viewer.png
was made this way). Skipped, with the reason, where the viewer could not be
built (no npm) or chromium is missing."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from h5a_util import IO_TIMEOUT, REPO_ROOT, RawConn, start_server

NODE = shutil.which("node")
PLAYWRIGHT = os.path.join(REPO_ROOT, "viewer", "node_modules", "playwright-core")
BUILT = os.path.join(REPO_ROOT, "build", "viewer", ".built")


def make_file(path):
    import h5py
    with h5py.File(path, "w") as f:
        f["entry/signal"] = np.sin(np.linspace(0, 12, 400))
        f["entry/image"] = np.outer(np.arange(64), np.arange(64)).astype("f4")
        f["entry"].attrs["NX_class"] = "NXentry"


def need_browser():
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("chromium is not installed (Debian's chromium package)")
    if not os.path.exists(BUILT):
        pytest.skip("the viewer was not built (make viewer needs npm and the npm registry)")
    if not NODE or not os.path.isdir(PLAYWRIGHT):
        pytest.skip("node or viewer/node_modules/playwright-core is missing (make viewer)")


def test_viewer_live_in_chromium(tmp_path):
    need_browser()
    srv = start_server(tmp_path, precreate=make_file, http=True)
    watch(tmp_path, srv, "/?refresh=1", None)


def test_viewer_opens_a_file_under_the_data_root(tmp_path):
    """/?file=NAME: the page opens NAME under data_root, not the default
    file (which does not even exist here), and follows its writer."""
    need_browser()
    root = tmp_path / "root"
    (root / "runs").mkdir(parents=True)
    make_file(root / "runs" / "scan.h5")
    srv = start_server(tmp_path / "w", http=True,
                       server_opts={"data_root": str(root), "hdf5_file_path": "default.h5"})
    watch(tmp_path, srv, "/?refresh=1&file=runs/scan.h5", "runs/scan.h5")


def watch(tmp_path, srv, page, file):
    shot = str(tmp_path / "viewer.png")
    node = subprocess.Popen(
        [NODE, os.path.join(REPO_ROOT, "tests", "viewer", "check_viewer.mjs"),
         "http://127.0.0.1:%d%s" % (srv.http_port, page), shot, "signal",
         os.path.join(REPO_ROOT, "viewer"), "30", "50"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=os.path.join(REPO_ROOT, "viewer"), env=dict(os.environ, NODE_PATH=""))

    def expect(word):
        line = node.stdout.readline().strip()
        if line != word:
            node.kill()
            raise AssertionError((word, line, node.stderr.read()[-3000:]))

    def append_rows(c, first, n):
        for i in range(first, first + n):
            req = {"id": i, "op": "append", "path": "/new_data",
                   "data": {"nd": True, "type": "<f8", "kind": "", "shape": [10],
                            "data": np.arange(10.0).tobytes()}}
            if file:
                req["file"] = file
            r = c.call(req)
            assert r["ok"], r

    try:
        expect(b"TREE_OK")
        with RawConn(srv) as c:  # a writer, while the page is open
            append_rows(c, 0, 3)  # a new dataset of 30 rows
            node.stdin.write(b"go\n")
            node.stdin.flush()
            expect(b"NEW_OK")
            expect(b"SHAPE_OK")
            append_rows(c, 3, 2)  # 20 rows more, the page still open
            node.stdin.write(b"go\n")
            node.stdin.flush()
            expect(b"ROWS_OK")
            expect(b"PLOT_OK")
        expect(b"SHOT_OK")
        assert node.wait(timeout=IO_TIMEOUT) == 0
        assert os.path.getsize(shot) > 10000
        if os.environ.get("H5A_VIEWER_SHOT") and not file:
            shutil.copy(shot, os.environ["H5A_VIEWER_SHOT"])
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        srv.stop()
