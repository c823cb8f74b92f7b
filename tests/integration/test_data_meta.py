"""Where the two halves of issue 5 meet: partial I/O, create_dataset and
resize (the data operations) against attributes, listing, info and links
(the meta operations), on one server. h5py is the oracle where it has an
opinion."""

import h5py
import numpy as np
import pytest

from h5a_util import RawConn, assert_error, assert_ok, h5open, session

import hdf5_async as h5a

HAVE_LZ4 = h5py.h5z.filter_avail(32004)
HAVE_BZIP2 = h5py.h5z.filter_avail(307)

ALL_OPS = [
    "ping", "create_group", "write", "update", "read", "append", "insert", "delete",
    "create_dataset", "resize", "write_slice", "set_attr", "get_attr", "list_attrs",
    "delete_attr", "list", "walk", "info", "exists", "create_link", "move", "auth", "compact",
    "batch", "list_files", "create_virtual",
]


def test_unknown_op_lists_every_op(server):
    with RawConn(server) as conn:
        for name in ("frobnicate", "x" * 200):
            reply = conn.call({"id": 3, "op": name, "path": "/"})
            assert_error(reply, "UNKNOWN_OP", 3)
            text = reply["error"]["message"]
            known = text[text.index("(known: ") + len("(known: "):]
            assert known.endswith(")"), text  # not cut off, even after a long name
            assert known[:-1].split(", ") == ALL_OPS


def test_each_op_takes_only_its_own_arguments(server):
    with RawConn(server) as conn:
        conn.call({"id": 1, "op": "write", "path": "/d", "data": [1, 2, 3]})
        for req in [
            {"op": "get_attr", "path": "/d", "name": "a", "selection": [0]},
            {"op": "read", "path": "/d", "name": "a"},
            {"op": "info", "path": "/d", "selection": [0]},
            {"op": "resize", "path": "/d", "shape": [4], "dest": "/e"},
            {"op": "move", "path": "/d", "dest": "/e", "shape": [4]},
            {"op": "write_slice", "path": "/d", "selection": [0], "data": 1, "name": "a"},
            {"op": "create_dataset", "path": "/n", "shape": [1], "dtype": "<f8", "limit": 1},
            {"op": "list", "path": "/", "axis": 0},
        ]:
            req["id"] = 2
            reply = conn.call(req)
            assert_error(reply, "BAD_REQUEST", 2)
            assert "takes no argument" in reply["error"]["message"], reply
        # the file is untouched by all of that
        assert assert_ok(conn.call({"id": 3, "op": "exists", "path": "/e"})) is False


def test_info_and_listing_of_created_and_resized_datasets(server):
    async def body(c):
        await c.create_dataset("/g/t", (0, 3), "<f8", maxshape=(None, 3), chunks=(16, 3),
                               fillvalue=-1.0, compression="gzip", compression_opts=6,
                               shuffle=True)
        await c.set_attr("/g/t", "units", "K")
        i = await c.info("/g/t")
        assert (i["shape"], i["maxshape"], i["chunks"]) == ((0, 3), (None, 3), (16, 3))
        assert (i["compression"], i["compression_opts"], i["shuffle"]) == ("gzip", 6, True)
        assert i["fillvalue"] == -1.0 and i["nattrs"] == 1 and i["layout"] == "chunked"
        # info opens its own handle: it sees a resize made through the cached one
        assert await c.resize("/g/t", 40, axis=0) == (40, 3)
        assert (await c.info("/g/t"))["shape"] == (40, 3)
        await c.write_slice("/g/t", np.s_[10:12], np.ones((2, 3)))
        (e,) = await c.list("/g")
        assert (e["name"], e["kind"], e["shape"], e["maxshape"]) == ("t", "dataset", (40, 3),
                                                                    (None, 3))
        assert [w["path"] for w in [x async for x in c.walk("/")]] == ["/g", "/g/t"]
        assert await c.exists("/g/t") and not await c.exists("/g/u")
        # the attribute survives resizes and partial writes (same object)
        assert await c.get_attr("/g/t", "units") == "K"
        return await c.read("/g/t", np.s_[9:13, 0])

    np.testing.assert_array_equal(session(server, body), [-1, 1, 1, -1])
    server.stop()
    with h5open(server.file) as f:
        ds = f["g/t"]
        assert ds.shape == (40, 3) and ds.attrs["units"] == "K" and ds.compression == "gzip"


@pytest.mark.skipif(not (HAVE_LZ4 and HAVE_BZIP2), reason="needs hdf5-filter-plugin")
def test_info_names_plugin_filters(server):
    async def body(c):
        await c.create_dataset("/lz4", (100,), "<f8", compression="lz4")
        await c.create_dataset("/lz4b", (100,), "<f8", compression="lz4", compression_opts=1 << 16)
        await c.create_dataset("/bz", (100,), "<i4", compression="bzip2", compression_opts=5,
                               shuffle=True)
        await c.write("/bzw", np.arange(1000), compression="bzip2")
        return [await c.info(p) for p in ("/lz4", "/lz4b", "/bz", "/bzw")]

    lz4, lz4b, bz, bzw = session(server, body)
    assert (lz4["compression"], lz4["compression_opts"]) == ("lz4", 0)
    assert (lz4b["compression"], lz4b["compression_opts"]) == ("lz4", 1 << 16)
    assert (bz["compression"], bz["compression_opts"], bz["shuffle"]) == ("bzip2", 5, True)
    assert (bzw["compression"], bzw["compression_opts"]) == ("bzip2", 9)
    assert [f["id"] for f in bz["filters"]] == [2, 307]
    assert lz4["filters"][0]["id"] == 32004 and lz4["filters"][0]["cd_values"] == (0,)


def test_move_then_data_ops_at_both_paths(server):
    """move empties the dataset cache: the old path is gone for resize,
    write_slice and read, the new one works, and create_dataset may use
    the old path again."""

    async def body(c):
        await c.append("/a/x", np.arange(10))  # cached open, chunked
        await c.write_slice("/a/x", np.s_[0], 100)
        await c.move("/a/x", "/b/x")
        for call in (c.read("/a/x"), c.read("/a/x", np.s_[0]), c.resize("/a/x", (3,)),
                     c.write_slice("/a/x", np.s_[0], 1), c.info("/a/x")):
            with pytest.raises(h5a.NotFoundError):
                await call
        assert await c.resize("/b/x", (12,)) == (12,)
        await c.write_slice("/b/x", np.s_[10:], [7, 8])
        assert await c.create_dataset("/a/x", (2,), "<i8") == (2,)
        assert await c.create_dataset("/a/x", (2,), "<i8", exist_ok=True) == (2,)
        with pytest.raises(h5a.ExistsError):
            await c.create_dataset("/b/x", (12,), "<i8")
        return await c.read("/b/x"), await c.read("/a/x")

    moved, fresh = session(server, body)
    np.testing.assert_array_equal(moved, [100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8])
    np.testing.assert_array_equal(fresh, [0, 0])


def test_data_ops_through_soft_links(server):
    async def body(c):
        await c.create_dataset("/real/d", (4, 4), "<i4", maxshape=(None, 4), fillvalue=0)
        await c.create_link("/l", "/real")
        await c.create_link("/real/alias", "d")  # relative
        await c.write_slice("/l/d", np.s_[1], [1, 2, 3, 4])
        assert await c.resize("/real/alias", 6, axis=0) == (6, 4)
        np.testing.assert_array_equal(await c.read("/l/alias", np.s_[1:3, ::2]), [[1, 3], [0, 0]])
        assert (await c.info("/l/d"))["shape"] == (6, 4)
        # create_dataset under a linked group lands in the real one
        await c.create_dataset("/l/e", (2,), "<f4")
        assert await c.exists("/real/e")
        # a dangling link is NOT_FOUND for the data ops, create_dataset too
        # (as for write and create_group: the name is taken, its target missing)
        await c.create_link("/dangling", "/nowhere")
        for call in (c.read("/dangling"), c.write_slice("/dangling", np.s_[0], 1),
                     c.resize("/dangling", (1,)), c.create_dataset("/dangling", (1,), "<f4")):
            with pytest.raises(h5a.NotFoundError):
                await call
        # deleting the link leaves the dataset
        await c.delete("/real/alias")
        return await c.read("/real/d", np.s_[:, 0])

    np.testing.assert_array_equal(session(server, body), [0, 1, 0, 0, 0, 0])
    server.stop()
    with h5open(server.file) as f:
        assert f["real/d"].shape == (6, 4) and "alias" not in f["real"]
