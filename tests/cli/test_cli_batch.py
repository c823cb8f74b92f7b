"""The batch command (requests from a file or standard input, one JSON
object a line, applied all or nothing) and --reconnect."""

import h5py
import numpy as np

from test_cli import EXIT_FILE, EXIT_SERVER, fails, ok, run

GOOD = """# rows, then an attribute
{"op": "append", "path": "/a", "data": [[1.5, 2.5]]}

{"op": "append", "path": "/a", "data": [[3.5, -4e0]], "compression": null}
{"op": "set_attr", "path": "/a", "name": "caf\\u00e9", "data": "x\\ty"}
{"op": "create_group", "path": "/g"}
"""


def test_batch_from_a_file_and_stdin(server, tmp_path):
    f = tmp_path / "ops.jsonl"
    f.write_text(GOOD)
    r = ok(run(["batch", f], server))
    assert r.stdout.splitlines() == ["batch: 4 ops applied", "  0: shape (1, 2)",
                                     "  1: shape (2, 2)"]
    r = ok(run(["--reconnect", "batch"], server, input='{"op": "append", "path": "/a", '
                                                       '"data": [[5, 6]]}\n'))
    assert r.stdout.splitlines() == ["batch: 1 op applied", "  0: shape (3, 2)"]
    server.stop()
    with h5py.File(server.file, "r") as h:
        np.testing.assert_array_equal(h["/a"][:], [[1.5, 2.5], [3.5, -4], [5, 6]])
        assert h["/a"].attrs["caf\u00e9"] == "x\ty" and "g" in h


def test_failing_batch_applies_nothing(server, tmp_path):
    f = tmp_path / "ops.jsonl"
    f.write_text('{"op": "create_group", "path": "/g"}\n'
                 '{"op": "append", "path": "/a", "data": [[1, 2]]}\n'
                 '{"op": "append", "path": "/a", "data": [[1, 2, 3]]}\n')
    fails(run(["batch", f], server), EXIT_SERVER, r"SHAPE_MISMATCH: batch op 2 \(append\)")
    f.write_text('{"op": "compact"}\n')
    fails(run(["batch", f], server), EXIT_SERVER, "may not go in a batch")
    server.stop()
    with h5py.File(server.file, "r") as h:
        assert list(h) == []


def test_bad_input_files(server, tmp_path):
    f = tmp_path / "ops.jsonl"
    for text, why in [('{"op": "ping"\n', "line 1: "), ('# only\n\n', "holds no request"),
                      ('[1, 2]\n', "must be a JSON object"),
                      ('{"op": "ping"} x\n', "text after the object"),
                      ('{"op": "pi\\qng"}\n', "bad escape")]:
        f.write_text(text)
        fails(run(["batch", f], server), EXIT_FILE, why)
    fails(run(["batch", tmp_path / "missing"], server), EXIT_FILE, "cannot open")


def test_batch_with_file_under_data_root(start_server, tmp_path):
    """--file names the batch's file (with --reconnect too); a line naming
    another file is refused, with its index, and nothing is applied."""
    root = tmp_path / "root"
    root.mkdir()
    srv = start_server(workdir=tmp_path / "w", server_opts={"data_root": str(root)})
    f = tmp_path / "ops.jsonl"
    f.write_text(GOOD)
    r = ok(run(["--file", "runs/a.h5", "--reconnect", "batch", f], srv))
    assert r.stdout.splitlines()[0] == "batch: 4 ops applied"
    f.write_text('{"op": "create_group", "path": "/x"}\n'
                 '{"op": "create_group", "path": "/y", "file": "b.h5"}\n')
    fails(run(["--file", "runs/a.h5", "batch", f], srv), EXIT_SERVER,
          r"BAD_REQUEST: batch op 1 \(create_group\): 'file' \"b.h5\" is not the batch's file")
    srv.stop()
    assert sorted(p.name for p in root.iterdir()) == ["runs"]
    with h5py.File(root / "runs/a.h5", "r") as h:
        assert sorted(h) == ["a", "g"]
