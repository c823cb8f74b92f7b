"""The op list of src/proto/ops.h, as the built server prints it
(`hdf5-async-server --list-ops`), against its copies that no compiler
checks: python/hdf5_async/ops.py and docs/protocol.md's section 5 (the
operation headings and the table). Adding an op to ops.h alone makes these
tests fail until the copies follow."""

import json
import os
import re
import subprocess

import pytest

from h5a_util import REPO_ROOT, RawConn, assert_error, assert_ok, server_binary
from hdf5_async import ops as py_ops

PROTOCOL_MD = os.path.join(REPO_ROOT, "docs", "protocol.md")


@pytest.fixture(scope="module")
def server_ops():
    out = subprocess.run(
        [server_binary(), "--list-ops"], check=True, stdout=subprocess.PIPE, timeout=60
    ).stdout
    listed = json.loads(out)
    assert listed, "the server lists no ops"
    for op in listed:
        assert set(op) == {"name", "keys", "required", "changes", "perm", "batch", "aliases"}, op
        assert set(op["required"]) <= set(op["keys"]), op
        assert op["perm"] in ("read", "write", "admin"), op
    return {op["name"]: op for op in listed}


def _section5():
    with open(PROTOCOL_MD, encoding="utf-8") as f:
        text = f.read()
    start = text.index("\n## 5. Operations\n")
    return text[start : text.index("\n## 6. ", start)]


# "### `write` (path, data, compression?) and `update` (alias)"; a heading
# starting with a backquoted name is an op's
HEADING = re.compile(r"^### `(\w+)`(?: \(([^)]*)\))?(?: and `(\w+)` \(alias\))?$")


def _doc_headings():
    ops = {}
    for line in _section5().splitlines():
        if not line.startswith("### `"):
            continue
        m = HEADING.match(line)
        assert m, "op heading not in the form \"### `op` (key, key?)\": %r" % line
        name, args, alias = m.groups()
        assert name not in ops, "op %r has two headings" % name
        keys = [a.strip() for a in args.split(",")] if args else []
        ops[name] = {
            "keys": {k.rstrip("?") for k in keys},
            "required": {k for k in keys if not k.endswith("?")},
            "aliases": [alias] if alias else [],
        }
    return ops


TABLE_HEADER = "| op | changes the file | permission | allowed in a batch |"


def _doc_table():
    lines = _section5().splitlines()
    assert TABLE_HEADER in lines, "docs/protocol.md section 5 has no op table"
    body = lines[lines.index(TABLE_HEADER) + 2 :]
    rows = {}
    yes_no = {"yes": True, "no": False}
    for line in body:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, "op table row without 4 cells: %r" % line
        m = re.fullmatch(r"`(\w+)`(?: \(alias `(\w+)`\))?", cells[0])
        assert m, "op table: first cell not `op` or `op` (alias `name`): %r" % line
        name, alias = m.groups()
        assert name not in rows, "op %r has two rows" % name
        assert cells[1] in yes_no and cells[3] in yes_no, line
        rows[name] = {
            "changes": yes_no[cells[1]],
            "perm": cells[2],
            "batch": yes_no[cells[3]],
            "aliases": [alias] if alias else [],
        }
    return rows


def test_python_op_list_matches_server(server_ops):
    want = {n: (op["changes"], op["perm"], op["batch"]) for n, op in server_ops.items()}
    got = {n: (op.changes, op.perm, op.batch) for n, op in py_ops.OPS.items()}
    assert got == want, "python/hdf5_async/ops.py OPS differs from src/proto/ops.h"
    aliases = {a: n for n, op in server_ops.items() for a in op["aliases"]}
    assert py_ops.ALIASES == aliases, "python/hdf5_async/ops.py ALIASES differs"


def test_python_changes_follows_the_list(server_ops):
    for name, op in server_ops.items():
        for spelling in [name] + op["aliases"]:
            assert py_ops.changes(spelling) is op["changes"], spelling
    with pytest.raises(KeyError):
        py_ops.changes("no_such_op")


def test_protocol_headings_match_server(server_ops):
    docs = _doc_headings()
    assert sorted(docs) == sorted(server_ops), "docs/protocol.md section 5 headings"
    for name, op in server_ops.items():
        want = {"keys": set(op["keys"]), "required": set(op["required"]), "aliases": op["aliases"]}
        assert docs[name] == want, "docs/protocol.md heading of %r" % name


def test_protocol_table_matches_server(server_ops):
    table = _doc_table()
    assert list(table) == list(server_ops), "docs/protocol.md section 5 table: ops or order"
    for name, op in server_ops.items():
        want = {k: op[k] for k in ("changes", "perm", "batch", "aliases")}
        assert table[name] == want, "docs/protocol.md table row of %r" % name


def test_server_takes_exactly_the_listed_keys(server, server_ops):
    """--list-ops prints the tables the parser uses; this checks it against
    the parser's answers: each op and alias is known, and each key is refused
    exactly when the op's listed keys do not have it. Values are nil, so no
    request gets as far as touching the file."""
    all_keys = sorted({k for op in server_ops.values() for k in op["keys"]})
    rid = 0
    with RawConn(server) as conn:
        for name, op in server_ops.items():
            for spelling in [name] + op["aliases"]:
                rid += 1
                reply = conn.call({"id": rid, "op": spelling})
                if op["required"]:
                    assert_error(reply, "BAD_REQUEST", rid)
                    assert "needs" in reply["error"]["message"], reply
                else:
                    assert_ok(reply, rid)
            for key in all_keys:
                rid += 1
                reply = conn.call({"id": rid, "op": name, key: None})
                refused = "takes no argument '%s'" % key
                if key in op["keys"]:
                    assert reply["ok"] or refused not in reply["error"]["message"], (name, reply)
                else:
                    assert_error(reply, "BAD_REQUEST", rid)
                    assert refused in reply["error"]["message"], (name, reply)
