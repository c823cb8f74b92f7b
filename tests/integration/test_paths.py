"""One path resolver for every operation: data operations (read, write,
append, create_group, ...) and metadata operations (info, list, attributes,
exists, links) see the same thing at a path, and refuse a path whose parent
is not a group, or leads nowhere, with the same code and the same message.
Paths are followed level by level from the parent's group, so soft links
(absolute and relative) and hard links back to an ancestor in any component
lead where h5py's f[path] leads. External links are never followed (they
name another file on the server's machine): every op through one is
BAD_PATH, naming the link only."""

import os

import h5py
import numpy as np
import pytest

from h5a_util import RawConn, assert_ok, h5open


def arr(a):
    a = np.ascontiguousarray(a)
    return {"nd": True, "type": a.dtype.str, "kind": "", "shape": list(a.shape), "data": a.tobytes()}


def make_file(path):
    d = os.path.dirname(path)
    with h5py.File(os.path.join(d, "other.h5"), "w") as o:
        o.create_dataset("grp/d", data=np.arange(3.0))
    with h5py.File(path, "w") as f:
        f.create_dataset("g/x", data=np.arange(4.0))
        f["named_t"] = np.dtype("<u2")
        f["soft"] = h5py.SoftLink("/g")
        f["g/rel"] = h5py.SoftLink("x")  # relative to /g
        f["g/up"] = f["g"]  # a hard link to its own group
        f["dangling"] = h5py.SoftLink("/nowhere")
        f["ext_missing"] = h5py.ExternalLink("missing.h5", "/y")
        f["ext"] = h5py.ExternalLink("other.h5", "/grp")
        deep = f.create_group("/".join("l%d" % i for i in range(200)))
        deep["to_g"] = h5py.SoftLink("/g")
        deep["gone"] = h5py.SoftLink("/l0/nothing")


DEEP = "/" + "/".join("l%d" % i for i in range(200))


@pytest.fixture
def conn(start_server):
    srv = start_server(precreate=make_file)
    c = RawConn(srv)
    yield srv, c
    c.close()


def stop(srv, c):
    c.close()  # first: a server stopping waits for its clients to hang up
    srv.stop()


def call(c, op, **kw):
    return c.call(dict({"id": 1, "op": op}, **kw))


def error_of(c, op, **kw):
    reply = call(c, op, **kw)
    assert reply["ok"] is False, (op, kw, reply)
    return reply["error"]["code"], reply["error"]["message"]


# Every op that takes an existing path, and ones that create at a path.
def ops_at(path):
    return [
        ("read", {"path": path}),
        ("write_slice", {"path": path, "selection": [0], "data": arr(np.zeros(1))}),
        ("resize", {"path": path, "shape": [1]}),
        ("info", {"path": path}),
        ("list", {"path": path}),
        ("walk", {"path": path}),
        ("list_attrs", {"path": path}),
        ("get_attr", {"path": path, "name": "a"}),
        ("set_attr", {"path": path, "name": "a", "data": arr(np.zeros(1))}),
        ("create_group", {"path": path}),
        ("write", {"path": path, "data": arr(np.zeros(2))}),
        ("append", {"path": path, "data": arr(np.zeros(2))}),
        ("create_dataset", {"path": path, "shape": [2], "dtype": "<f8"}),
        ("delete", {"path": path}),
        ("create_link", {"path": path, "target": "/g"}),
        ("move", {"path": path, "dest": "/moved"}),
        ("move", {"path": "/ext", "dest": path}),
    ]


@pytest.mark.parametrize(
    "path, code, message",
    [
        ("/g/x/y", "NOT_A_GROUP", "'/g/x' is a dataset, not a group, so '/g/x/y' cannot exist"),
        ("/soft/rel/y", "NOT_A_GROUP",
         "'/soft/rel' is a dataset, not a group, so '/soft/rel/y' cannot exist"),
        ("/named_t/y", "NOT_A_GROUP",
         "'/named_t' is a datatype, not a group, so '/named_t/y' cannot exist"),
        ("/dangling/y", "NOT_FOUND", "'/dangling' is a soft link to '/nowhere', which does not exist"),
        ("/ext_missing/y", "BAD_PATH",
         "'/ext_missing' is an external link into another file, which this server does not "
         "follow (list shows where it points), so '/ext_missing/y' cannot be reached"),
        (DEEP + "/gone/y", "NOT_FOUND",
         "'%s/gone' is a soft link to '/l0/nothing', which does not exist" % DEEP),
    ],
)
def test_every_op_gives_the_same_error_below_a_parent_that_is_no_group(conn, path, code, message):
    srv, c = conn
    for op, kw in ops_at(path):
        got = error_of(c, op, **kw)
        if op == "write_slice" and code == "NOT_FOUND":
            # write_slice says what it needs instead (make the dataset first)
            assert got == (code, "no dataset at '%s': write_slice writes into an existing "
                                 "dataset (make it with write or create_dataset)" % path)
            continue
        assert got == (code, message), (op, kw)
    if code == "BAD_PATH":  # not followed: no yes or no, but why not
        assert error_of(c, "exists", path=path) == (code, message)
    else:
        assert call(c, "exists", path=path)["result"] is False
    stop(srv, c)
    with h5open(srv.file) as f:
        assert "moved" not in f and "x" in f["g"]


def test_links_in_any_component_lead_where_h5py_leads(conn):
    srv, c = conn
    paths = ["/soft/x", "/soft/rel", "/g/up/up/rel", DEEP + "/to_g/x", DEEP + "/to_g/up/rel"]
    for p in paths:
        assert assert_ok(call(c, "exists", path=p)) is True, p
        assert assert_ok(call(c, "info", path=p))["kind"] == "dataset", p
        got = assert_ok(call(c, "read", path=p))
        assert got[b"data"] == np.arange(3.0 if p.startswith("/ext") else 4.0).tobytes(), p
    # writes go where reads come from
    assert_ok(call(c, "write_slice", path=DEEP + "/to_g/up/rel", selection=[[1, 2, 1]],
                   data=arr(np.array([-1.0]))))
    assert_ok(call(c, "create_group", path="/soft/up/new"))
    assert_ok(call(c, "set_attr", path="/soft/rel", name="a", data=arr(np.ones(1))))
    stop(srv, c)
    with h5open(srv.file) as f:
        assert f["g/x"][1] == -1
        assert "new" in f["g"]
        assert f["g/x"].attrs["a"] == 1


def test_exists_and_kinds_agree_with_h5py_at_every_depth(conn):
    srv, c = conn
    # (through an external link there is no answer: BAD_PATH, above)
    paths = ["/", "/l0", DEEP, DEEP + "/to_g", DEEP + "/gone", DEEP + "/gone/y", DEEP + "/nope",
             DEEP + "/nope/deeper", "/ext", "/ext_missing", "/g/up/up/up/x", "/named_t",
             "/named_t/y"]
    got = [assert_ok(call(c, "exists", path=p)) for p in paths]
    stop(srv, c)
    with h5open(srv.file) as f:
        want = [p in f for p in paths]
    assert got == want
