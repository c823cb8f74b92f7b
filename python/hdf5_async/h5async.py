"""The h5py-shaped API, awaitable: ``AsyncFile``, ``AsyncGroup``,
``AsyncDataset``, ``AsyncAttributeManager``, on the caller's event loop.
hdf5_async.h5 makes the blocking ``File`` family from them."""

from __future__ import annotations

import asyncio
import inspect
import os
import operator
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
from numpy.lib.recfunctions import repack_fields

from ._h5util import (
    ExternalLink,
    HardLink,
    SoftLink,
    _as_tuple,
    _axis_of,
    _basename,
    _bytes_strings,
    _check_simple,
    _err,
    _fancy_runs,
    _guess_dtype,
    _h5py_errors,
    _is_int,
    _is_vlen,
    _join,
    _parent,
    _sel_shape,
    _shape_of,
    _split_fields,
    _str_strings,
    _unsupported,
    string_dtype,
)
from .client import HDF5Client, SSLArg
from .errors import (
    BadReplyError,
    BadRequestError,
    ExistsError,
    NotADatasetError,
    NotAGroupError,
    NotFoundError,
    OutOfRangeError,
    ShapeMismatchError,
    TypeMismatchError,
)

if TYPE_CHECKING:
    from .h5 import File

__all__ = ["AsyncFile", "AsyncGroup", "AsyncDataset", "AsyncAttributeManager"]


# ---------------------------------------------------------------- the core


class _FileState:
    """What every object of one open file shares."""

    def __init__(self, client: HDF5Client, mode: str) -> None:
        self.client = client
        self.mode = mode
        self.open = False
        self.afile: Optional["AsyncFile"] = None
        self.sync_file: Optional["File"] = None


def _parse_server(server: Optional[str]) -> Tuple[Optional[str], Optional[int]]:
    if server is None:
        return None, None
    if not isinstance(server, str) or not server:
        raise TypeError('server must be "HOST:PORT" or "HOST"')
    if server.startswith("["):  # [v6]:port
        host, _, rest = server[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if server.count(":") == 1:
        host, port = server.split(":")
        return host or None, int(port)
    return server, None


_MODES = {"r": "r", "r+": "r+", "a": "r+"}


def _client_for(name: Any, mode: str, server: Optional[str], config: Any, token: Optional[str],
                ssl: SSLArg, timeout: Optional[float]) -> Tuple[HDF5Client, str]:
    if name is not None:
        name = os.fspath(name)
        if isinstance(name, bytes):
            name = name.decode()
        if not name or name.startswith("/"):
            raise ValueError(
                "name must be a file under the server's data_root, relative to it "
                "(run_0001.h5, 2026/run_0002.h5), or None for the server's default file; "
                "not %r" % (name,)
            )
    if mode in ("w", "w-", "x"):
        raise ValueError(
            "mode %r would create or truncate the file: the server's file always exists and "
            "is shared; open it with 'a' or 'r+' and delete what you want gone" % mode
        )
    if mode not in _MODES:
        raise ValueError("Invalid mode; must be one of r, r+, a (got %r)" % (mode,))
    host, port = _parse_server(server)
    client = HDF5Client(host, port, config, timeout=timeout, token=token, ssl=ssl,
                        read_only=mode == "r", file=name)
    return client, _MODES[mode]


class _Node:
    """What groups and datasets share: name, file, parent, attrs."""

    def __init__(self, state: _FileState, name: str) -> None:
        self._state = state
        self._name = name

    @property
    def name(self) -> str:
        """The path this object was opened with."""
        return self._name

    @property
    def _c(self) -> HDF5Client:
        if not self._state.open:
            raise ValueError("Not a location (file closed)")
        return self._state.client

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, _Node) and other._state is self._state
                and other._name == self._name)

    def __hash__(self) -> int:
        return hash((id(self._state), self._name))

    def __bool__(self) -> bool:
        return self._state.open

    @property
    def ref(self) -> Any:
        raise _unsupported("object references (.ref)")

    @property
    def regionref(self) -> Any:
        raise _unsupported("region references (.regionref)")

    @property
    def id(self) -> Any:
        raise _unsupported("h5py's low-level API (.id)")


async def _open(state: _FileState, path: str) -> Union["AsyncGroup", "AsyncDataset"]:
    with _h5py_errors(NOT_A_GROUP=KeyError, NOT_A_DATASET=KeyError, BAD_PATH=KeyError):
        info = await state.client.info(path)
    return _from_info(state, path, info)


def _from_info(state: _FileState, path: str, info: Dict[str, Any]) -> Union["AsyncGroup", "AsyncDataset"]:
    kind = info.get("kind")
    if kind == "group":
        return state.afile if path == "/" and state.afile is not None else AsyncGroup(state, path)
    if kind == "dataset":
        return AsyncDataset(state, path, info)
    if kind == "datatype":
        raise _unsupported("opening a named datatype (%s)" % path)
    raise BadReplyError("info of %s has kind %r" % (path, kind))


class AsyncAttributeManager:
    """``obj.attrs`` of an AsyncGroup / AsyncDataset: awaitable methods named
    as h5py's (``await attrs.get(name)``, ``await attrs[name]``,
    ``await attrs.set(name, value)``, ``await attrs.delete(name)``,
    ``await attrs.contains(name)``, ``await attrs.keys()`` ...)."""

    def __init__(self, node: _Node) -> None:
        self._node = node

    @property
    def _c(self) -> HDF5Client:
        return self._node._c

    def __getitem__(self, name: str) -> Awaitable[Any]:
        return self._getitem(name)

    async def _getitem(self, name: str) -> Any:
        return _str_strings(await self._c.get_attr(self._node.name, name))

    async def get(self, name: str, default: Any = None) -> Any:
        try:
            return await self._getitem(name)
        except NotFoundError:
            return default

    async def set(self, name: str, value: Any) -> None:
        """``attrs[name] = value``."""
        with _h5py_errors(READ_ONLY=OSError):
            await self._c.set_attr(self._node.name, name, value)

    async def create(self, name: str, data: Any, shape: Any = None, dtype: Any = None) -> None:
        """h5py's ``attrs.create``: data converted to dtype and shape first."""
        if dtype is not None and dtype not in (str, bytes) and not _is_vlen(np.dtype(dtype)):
            data = np.asarray(data, dtype=dtype)
        if shape is not None:
            data = np.asarray(data).reshape(shape)
        await self.set(name, data)

    async def modify(self, name: str, value: Any) -> None:
        await self.set(name, value)

    async def delete(self, name: str) -> None:
        """``del attrs[name]``."""
        with _h5py_errors(READ_ONLY=OSError):
            await self._c.delete_attr(self._node.name, name)

    async def keys(self) -> List[str]:
        return [a["name"] for a in await self._c.list_attrs(self._node.name)]

    async def values(self) -> List[Any]:
        return list((await self.items_dict()).values())

    async def items(self) -> List[Tuple[str, Any]]:
        return list((await self.items_dict()).items())

    async def items_dict(self) -> Dict[str, Any]:
        return {k: _str_strings(v) for k, v in (await self._c.attrs(self._node.name)).items()}

    async def contains(self, name: str) -> bool:
        return name in await self.keys()

    async def len(self) -> int:
        return len(await self.keys())

    def __aiter__(self) -> Any:
        return self._aiter()

    async def _aiter(self) -> Any:
        for k in await self.keys():
            yield k


class AsyncGroup(_Node):
    """A group of an AsyncFile: h5py's Group with awaitable methods
    (``await g[name]``, ``await g.get(name)``, ``await g.contains(name)``,
    ``await g.keys()``, ``await g.create_dataset(...)``, ``await g.set(name,
    value)`` for ``g[name] = value``, ``await g.delete(name)`` for
    ``del g[name]``, ``async for name in g``)."""

    @property
    def attrs(self) -> AsyncAttributeManager:
        return AsyncAttributeManager(self)

    @property
    def file(self) -> "AsyncFile":
        assert self._state.afile is not None
        return self._state.afile

    @property
    def parent(self) -> "AsyncGroup":
        p = _parent(self._name)
        return self.file if p == "/" else AsyncGroup(self._state, p)

    def __repr__(self) -> str:
        if not self._state.open:
            return "<Closed hdf5_async group>"
        return '<hdf5_async group "%s">' % self._name

    def _path(self, name: Any) -> str:
        return _join(self._name, name)

    def __getitem__(self, name: Any) -> Awaitable[Union["AsyncGroup", "AsyncDataset"]]:
        return self.get_item(name)

    async def get_item(self, name: Any) -> Union["AsyncGroup", "AsyncDataset"]:
        """``g[name]``: the group or dataset (KeyError when missing)."""
        return await _open(self._state, self._path(name))

    async def get(self, name: Any, default: Any = None, getclass: bool = False,
                  getlink: bool = False) -> Any:
        """h5py's ``get``: the object, or ``default`` when nothing is there;
        ``getclass`` gives its class, ``getlink`` the link itself (HardLink,
        SoftLink or ExternalLink)."""
        path = self._path(name)
        if getlink:
            link = await self._link(path)
            if link is None:
                return default
            return type(link) if getclass else link
        try:
            obj = await _open(self._state, path)
        except KeyError:
            return default
        return type(obj) if getclass else obj

    async def _link(self, path: str) -> Any:
        if path == "/":
            return HardLink()
        base = _basename(path)
        try:
            entries = await self._c.list(_parent(path))
        except (NotFoundError, TypeError):
            return None
        for e in entries:
            if e["name"] == base:
                if e["kind"] == "soft_link":
                    return SoftLink(e["target"])
                if e["kind"] == "external_link":
                    return ExternalLink(e["file"], e["target"])
                return HardLink()
        return None

    async def contains(self, name: Any) -> bool:
        """``name in g``."""
        try:
            path = self._path(name)
        except KeyError:
            return False
        return await self._c.exists(path)

    async def len(self) -> int:
        """``len(g)``: the number of members."""
        info = await self._c.info(self._name)
        return int(info["members"])

    async def keys(self) -> List[str]:
        """The members' names, in name order (as h5py without track_order)."""
        return [e["name"] for e in await self._c.list(self._name)]

    async def values(self) -> List[Union["AsyncGroup", "AsyncDataset"]]:
        return [v for _, v in await self.items()]

    async def items(self) -> List[Tuple[str, Union["AsyncGroup", "AsyncDataset"]]]:
        names = await self.keys()
        objs = await asyncio.gather(*(_open(self._state, self._path(n)) for n in names))
        return list(zip(names, objs))

    def __aiter__(self) -> Any:
        return self._aiter()

    async def _aiter(self) -> Any:
        for k in await self.keys():
            yield k

    async def create_group(self, name: Any, track_order: Optional[bool] = None) -> "AsyncGroup":
        """A new group (and missing parents); ValueError when the name is
        taken. Two clients racing to create the same name may both
        succeed."""
        if track_order:
            raise _unsupported("track_order")
        path = self._path(name)
        with _h5py_errors(READ_ONLY=ValueError, NOT_A_GROUP=ValueError):
            if self._state.mode == "r":
                await self._c.create_group(path)  # raises READ_ONLY
            if await self._c.exists(path):
                raise ExistsError("Unable to create group (name already exists): %s" % path)
            await self._c.create_group(path)
        return AsyncGroup(self._state, path)

    async def require_group(self, name: Any) -> "AsyncGroup":
        """The group at name, created when missing; TypeError when something
        else is there."""
        path = self._path(name)
        try:
            obj = await _open(self._state, path)
        except KeyError:
            return await self.create_group(name)
        if not isinstance(obj, AsyncGroup):
            raise _err(NotAGroupError, TypeError, "Incompatible object (Dataset) already exists")
        return obj

    async def create_dataset(self, name: Any, shape: Any = None, dtype: Any = None, data: Any = None,
                             **kwds: Any) -> "AsyncDataset":
        """h5py's create_dataset: from shape and dtype, or from data (its
        shape and dtype unless given); kwds chunks, maxshape, compression,
        compression_opts, shuffle, fillvalue. ValueError when the name is
        taken."""
        ds = await self._create_dataset(name, shape, dtype, data, kwds, exists_as=ValueError,
                                        read_only_as=ValueError)
        assert ds is not None
        return ds

    async def _create_dataset(self, name: Any, shape: Any, dtype: Any, data: Any, kwds: Dict[str, Any],
                              exists_as: type, read_only_as: type,
                              want_object: bool = True) -> Optional["AsyncDataset"]:
        if name is None:
            raise _unsupported("anonymous datasets (name=None)")
        path = self._path(name)
        opts = _creation_options(kwds)
        if isinstance(data, AsyncDataset):
            data = await data.read(())
        if data is not None:
            if dtype is None:
                dtype = _guess_dtype(data)
            dshape = _shape_of(data)
            if shape is None:
                shape = dshape
            else:
                shape = (shape,) if _is_int(shape) else tuple(shape)
                if int(np.prod(shape)) != int(np.prod(dshape)):
                    raise ShapeMismatchError("Shape tuple is incompatible with data")
                if tuple(shape) != dshape:
                    data = np.asarray(data).reshape(shape)
            if not isinstance(data, np.ndarray) and dtype not in (str, bytes) \
                    and not _is_vlen(np.dtype(dtype)):
                data = np.asarray(data, dtype=dtype)
        elif shape is None:
            if dtype is None:
                raise _err(BadRequestError, TypeError, "One of data, shape or dtype must be specified")
            raise _unsupported("datasets without a shape (HDF5's null dataspace, h5py.Empty)")
        if dtype is None:
            dtype = "f4"
        with _h5py_errors(EXISTS=exists_as, READ_ONLY=read_only_as, NOT_A_GROUP=exists_as):
            await self._c.create_dataset(path, shape, dtype, **opts)
        with _h5py_errors(READ_ONLY=read_only_as):
            if data is not None and int(np.prod(shape)) > 0:
                await self._c.write_slice(path, Ellipsis, data)
        if not want_object:
            return None
        return AsyncDataset(self._state, path, await self._c.info(path))

    async def require_dataset(self, name: Any, shape: Any, dtype: Any, exact: bool = False,
                              **kwds: Any) -> "AsyncDataset":
        """The dataset at name when its shape matches and its dtype is the
        same (exact) or can hold dtype's values; created when missing;
        TypeError otherwise."""
        path = self._path(name)
        try:
            obj = await _open(self._state, path)
        except KeyError:
            return await self.create_dataset(name, shape, dtype, **kwds)
        if not isinstance(obj, AsyncDataset):
            raise _err(NotADatasetError, TypeError, "Incompatible object (Group) already exists")
        shape = (shape,) if _is_int(shape) else tuple(shape)
        if shape != obj.shape:
            raise _err(ShapeMismatchError, TypeError,
                       "Shapes do not match (existing %s vs new %s)" % (obj.shape, shape))
        want = np.dtype(dtype) if dtype not in (str, bytes) else string_dtype(
            "utf-8" if dtype is str else "ascii")
        if exact and want != obj.dtype:
            raise TypeMismatchError("Datatypes do not exactly match (existing %s vs new %s)" % (obj.dtype, want))
        if not exact and not np.can_cast(want, obj.dtype):
            raise TypeMismatchError("Datatypes cannot be safely cast (existing %s vs new %s)" % (obj.dtype, want))
        return obj

    async def set(self, name: Any, obj: Any) -> None:
        """``g[name] = obj``: a new dataset made from obj (OSError when the
        name is taken), or a soft link for a SoftLink."""
        path = self._path(name)
        if type(obj).__name__ == "SoftLink" and hasattr(obj, "path"):
            with _h5py_errors(EXISTS=OSError, READ_ONLY=ValueError):
                await self._c.create_link(path, str(obj.path))
            return
        if type(obj).__name__ == "ExternalLink":
            raise _unsupported("creating external links")
        if isinstance(obj, (_Node, HardLink)) or type(obj).__name__ in ("Group", "Dataset", "Datatype"):
            raise _unsupported("hard links to existing objects (g[name] = obj)")
        await self._create_dataset(name, None, None, obj, {}, exists_as=OSError, read_only_as=ValueError,
                                   want_object=False)

    async def delete(self, name: Any) -> None:
        """``del g[name]``: removes the link (a group with everything in it)."""
        with _h5py_errors(READ_ONLY=KeyError):
            await self._c.delete(self._path(name))

    async def move(self, source: Any, dest: Any) -> None:
        with _h5py_errors(READ_ONLY=ValueError, EXISTS=ValueError):
            await self._c.move(self._path(source), self._path(dest))

    async def copy(self, *a: Any, **k: Any) -> None:
        raise _unsupported("copy()")

    async def visit(self, func: Callable[[str], Any]) -> Any:
        """Call func(name) for every group and dataset below, depth first
        in name order (names relative to this group); stops at and returns
        the first value that is not None. func may be a coroutine function."""
        for name, _ in await self._walk(objects=False):
            r = func(name)
            if inspect.isawaitable(r):
                r = await r
            if r is not None:
                return r
        return None

    async def visititems(self, func: Callable[[str, Any], Any]) -> Any:
        """visit() with the object too: func(name, obj)."""
        for name, obj in await self._walk(objects=True):
            r = func(name, obj)
            if inspect.isawaitable(r):
                r = await r
            if r is not None:
                return r
        return None

    async def _walk(self, objects: bool) -> List[Tuple[str, Any]]:
        """Every object below (links skipped, as h5py's visit skips them),
        with objects made from pipelined info calls."""
        strip = len(self._name.rstrip("/")) + 1
        found = []
        async for e in self._c.walk(self._name):
            if e["kind"] in ("group", "dataset", "datatype"):
                found.append(e)
        names = [e["path"][strip:] for e in found]
        if not objects:
            return [(n, None) for n in names]
        infos = await asyncio.gather(*(
            self._c.info(e["path"]) if e["kind"] == "dataset" else _group_info()
            for e in found))
        out = []
        for n, e, info in zip(names, found, infos):
            if e["kind"] == "datatype":
                raise _unsupported("visiting named datatypes (%s)" % e["path"])
            out.append((n, _from_info(self._state, e["path"], info)))
        return out


async def _group_info() -> Dict[str, Any]:
    return {"kind": "group"}


def _creation_options(kwds: Dict[str, Any]) -> Dict[str, Any]:
    """h5py's create_dataset keywords -> HDF5Client.create_dataset's."""
    out: Dict[str, Any] = {}
    for k in ("chunks", "maxshape", "compression_opts", "fillvalue"):
        if kwds.get(k) is not None:
            out[k] = kwds[k]
    comp = kwds.get("compression")
    if comp is not None:
        if not isinstance(comp, str):
            if _is_int(comp) and 0 <= int(comp) <= 9:  # h5py: an int is a gzip level
                out["compression"], out["compression_opts"] = "gzip", int(comp)
            else:
                raise _unsupported("compression given as a filter number (%r)" % (comp,))
        else:
            out["compression"] = comp
    if kwds.get("shuffle"):
        out["shuffle"] = True
    for k, name in (("fletcher32", "fletcher32 checksums"), ("scaleoffset", "the scale-offset filter"),
                    ("track_order", "track_order"), ("track_times", "track_times=True"),
                    ("external", "external storage"), ("dcpl", "dataset creation property lists"),
                    ("dapl", "dataset access property lists"), ("efile_prefix", "efile_prefix"),
                    ("virtual_prefix", "virtual datasets"), ("allow_unknown_filter", "allow_unknown_filter"),
                    ("rdcc_nbytes", "chunk cache settings"), ("rdcc_w0", "chunk cache settings"),
                    ("rdcc_nslots", "chunk cache settings")):
        if kwds.get(k):
            raise _unsupported(name)
    unknown = set(kwds) - {"chunks", "maxshape", "compression", "compression_opts", "fillvalue",
                           "shuffle", "fletcher32", "scaleoffset", "track_order", "track_times",
                           "external", "dcpl", "dapl", "efile_prefix", "virtual_prefix",
                           "allow_unknown_filter", "rdcc_nbytes", "rdcc_w0", "rdcc_nslots"}
    if unknown:
        raise _err(BadRequestError, TypeError,
                   "create_dataset() got unexpected keyword arguments: %s" % ", ".join(sorted(unknown)))
    return out


class AsyncDataset(_Node):
    """A dataset of an AsyncFile: h5py's Dataset with awaitable I/O
    (``await ds[sel]``, ``await ds.read(sel)``, ``await ds.write(sel,
    value)``, ``await ds.resize(...)``, ``await ds.append(rows)``). Its
    shape, dtype and creation properties are what the server said when it
    was opened (or after this object's own resize/append/refresh()), as
    h5py's are until ``refresh()`` for changes made by other writers."""

    def __init__(self, state: _FileState, name: str, info: Dict[str, Any]) -> None:
        super().__init__(state, name)
        self._set_info(info)

    def _set_info(self, info: Dict[str, Any]) -> None:
        shape = info.get("shape")
        if shape is None:
            raise _unsupported("datasets with a null dataspace (h5py.Empty) such as %s" % self._name)
        self._info = info
        self._shape: Tuple[int, ...] = tuple(int(d) for d in shape)

    # ---- what h5py answers without I/O

    @property
    def attrs(self) -> AsyncAttributeManager:
        return AsyncAttributeManager(self)

    @property
    def file(self) -> "AsyncFile":
        assert self._state.afile is not None
        return self._state.afile

    @property
    def parent(self) -> AsyncGroup:
        p = _parent(self._name)
        return self.file if p == "/" else AsyncGroup(self._state, p)

    @property
    def shape(self) -> Tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        dt = self._info.get("dtype")
        if dt is None:
            raise _unsupported("an HDF5 type with no numpy equivalent (%s)" % self._name)
        return dt

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return np.prod(self._shape, dtype=np.intp)  # type: ignore[return-value]  (as h5py's)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def maxshape(self) -> Tuple[Optional[int], ...]:
        return tuple(self._info.get("maxshape") or self._shape)

    @property
    def chunks(self) -> Optional[Tuple[int, ...]]:
        c = self._info.get("chunks")
        return tuple(c) if c is not None else None

    @property
    def compression(self) -> Optional[str]:
        return self._info.get("compression")

    @property
    def compression_opts(self) -> Any:
        return self._info.get("compression_opts")

    @property
    def shuffle(self) -> bool:
        return bool(self._info.get("shuffle"))

    @property
    def fletcher32(self) -> bool:
        return bool(self._info.get("fletcher32"))

    @property
    def scaleoffset(self) -> None:
        return None

    @property
    def fillvalue(self) -> Any:
        fv = self._info.get("fillvalue")
        dt = self._info.get("dtype")
        if dt is not None and dt.kind != "O":
            if fv is None:
                return np.zeros((), dtype=dt)[()]
            return np.asarray(fv, dtype=dt)[()]
        return fv

    @property
    def is_virtual(self) -> bool:
        return False

    @property
    def external(self) -> None:
        return None

    @property
    def dims(self) -> Any:
        raise _unsupported("dimension scales (.dims)")

    def __len__(self) -> int:
        if not self._shape:
            raise _err(ShapeMismatchError, TypeError, "Attempt to take len() of scalar dataset")
        return self._shape[0]

    def len(self) -> int:
        return len(self)

    def __repr__(self) -> str:
        if not self._state.open:
            return "<Closed hdf5_async dataset>"
        dt = self._info.get("dtype")
        return '<hdf5_async dataset "%s": shape %s, type "%s">' % (
            _basename(self._name) or "/", self._shape, dt.str if dt is not None else "?")

    # ---- I/O

    async def refresh(self) -> None:
        """Re-read shape and properties from the server (changes by other
        clients)."""
        self._set_info(await self._c.info(self._name))

    def __getitem__(self, sel: Any) -> Awaitable[Any]:
        return self.read(sel)

    async def read(self, sel: Any = ()) -> Any:
        """``ds[sel]``: h5py's indexing (ints, slices with positive steps,
        Ellipsis, one increasing list or boolean mask along one axis, field
        names of a compound)."""
        return await self._read(sel, as_str=None)

    async def _read(self, sel: Any, as_str: Optional[Tuple[str, str]]) -> Any:
        fields, rest = _split_fields(_as_tuple(sel))
        if fields and self.dtype.names is None:
            raise BadRequestError("Field names only allowed for compound types")
        if not self._shape and any(not (s is Ellipsis) for s in rest):
            raise ShapeMismatchError("Illegal slicing argument for scalar dataspace")
        fancy = _check_simple(rest)
        if fancy is not None:
            out = await self._read_fancy(rest, fancy)
        else:
            with _h5py_errors(SHAPE_MISMATCH=ValueError):
                out = await self._c.read(self._name, rest if rest else None)
            if Ellipsis in rest and not isinstance(out, np.ndarray):
                out = np.asarray(out, dtype=object if isinstance(out, (str, bytes)) else None)
        if fields:
            for f in fields:
                if f not in (self.dtype.names or ()):
                    raise BadRequestError("Field %s does not appear in this type." % f)
            if len(fields) == 1:
                out = out[fields[0]]
            else:  # packed, as h5py reads them (numpy's multi-field view keeps offsets)
                out = repack_fields(np.asarray(out)[fields])
        dt = self._info.get("dtype")
        if _is_vlen(dt):
            out = _str_strings(out, *as_str) if as_str else _bytes_strings(out)
        elif as_str and dt is not None and dt.kind == "S":
            out = _str_strings(np.asarray(out).astype(object) if isinstance(out, np.ndarray) else out,
                               *as_str)
        return out

    async def _read_fancy(self, sel: Tuple[Any, ...], pos: int) -> Any:
        axis = _axis_of(sel, pos, len(self._shape))
        runs, count = _fancy_runs(sel[pos], self._shape[axis])
        parts = await asyncio.gather(*(
            self._c.read(self._name, sel[:pos] + (r,) + sel[pos + 1:]) for r in runs))
        if not parts:
            probe = sel[:pos] + (slice(0, 0),) + sel[pos + 1:]
            return await self._c.read(self._name, probe)
        # where the list's axis is in the result: after the axes the items
        # before it keep (integers drop theirs)
        out_axis = sum(1 for s in sel[:pos] if isinstance(s, slice))
        if Ellipsis in sel[:pos]:
            out_axis = axis - sum(1 for s in sel[:pos] if _is_int(s))
        return np.concatenate([np.asarray(p) for p in parts], axis=out_axis)

    async def write(self, sel: Any, value: Any) -> None:
        """``ds[sel] = value``: value converted to the dataset's dtype as
        h5py converts it (numpy for non-arrays), broadcast to the
        selection."""
        sel_t = _as_tuple(sel)
        fields, rest = _split_fields(sel_t)
        if fields:
            raise _unsupported("writing compound fields by name (ds['field'] = ...)")
        if _check_simple(rest) is not None:
            raise _unsupported("writing through a list or boolean index (fancy indexing)")
        dt = self.dtype
        if not isinstance(value, np.ndarray) and not _is_vlen(dt):
            try:
                value = np.asarray(value, dtype=dt)
            except ValueError as e:
                raise _err(TypeMismatchError, ValueError, str(e)) from None
            except TypeError as e:
                raise TypeMismatchError(str(e)) from None
        if isinstance(value, np.ndarray) and value.size != 1:
            want = _sel_shape(rest, self._shape)
            if want is not None and value.shape != want:
                try:
                    value = np.ascontiguousarray(np.broadcast_to(value, want))
                except ValueError:
                    raise _err(ShapeMismatchError, TypeError,
                               "Can't broadcast %s -> %s" % (value.shape, want)) from None
        elif isinstance(value, np.ndarray) and value.ndim:
            value = value.reshape(())
        with _h5py_errors(SHAPE_MISMATCH=TypeError, READ_ONLY=OSError):
            await self._c.write_slice(self._name, rest if rest else (), value)

    async def resize(self, size: Any, axis: Optional[int] = None) -> None:
        """h5py's ``resize``: the new shape, or with ``axis`` that axis' new
        length. TypeError for a dataset that is not chunked."""
        if self.chunks is None:
            raise _err(OutOfRangeError, TypeError, "Only chunked datasets can be resized")
        if axis is not None:
            if not 0 <= axis < len(self._shape):
                raise _err(OutOfRangeError, ValueError, "Invalid axis (0 to %s allowed)" % (len(self._shape) - 1))
            try:
                size = int(operator.index(size))
            except TypeError:
                raise _err(BadRequestError, TypeError,
                           "Argument must be a single int if axis is specified") from None
        with _h5py_errors(OUT_OF_RANGE=RuntimeError, READ_ONLY=RuntimeError, SHAPE_MISMATCH=ValueError):
            self._shape = await self._c.resize(self._name, size, axis)

    async def append(self, rows: Any) -> Tuple[int, ...]:
        """Add rows along axis 0 (hdf5_async's own; one request, atomic).
        Returns the new shape."""
        with _h5py_errors(READ_ONLY=OSError):
            self._shape = await self._c.append(self._name, rows)
        if self.maxshape[0] is not None:  # a fixed dataset was converted
            await self.refresh()
        return self._shape

    async def read_direct(self, dest: np.ndarray, source_sel: Any = None, dest_sel: Any = None) -> None:
        data = await self.read(() if source_sel is None else source_sel)
        dest[() if dest_sel is None else dest_sel] = data

    async def write_direct(self, source: np.ndarray, source_sel: Any = None, dest_sel: Any = None) -> None:
        await self.write(Ellipsis if dest_sel is None else dest_sel,
                         source if source_sel is None else source[source_sel])

    def asstr(self, encoding: str = "utf-8", errors: str = "strict") -> "_AsyncAsStr":
        """Read variable-length strings as str: ``await ds.asstr()[sel]``."""
        dt = self._info.get("dtype")
        if not (_is_vlen(dt) or (dt is not None and dt.kind == "S")):
            raise _err(TypeMismatchError, TypeError,
                       "dset.asstr() can only be used on datasets with an HDF5 string datatype")
        return _AsyncAsStr(self, (encoding, errors))

    def fields(self, names: Any) -> Any:
        raise _unsupported("Dataset.fields(); read ds['name'] instead")

    def astype(self, dtype: Any) -> Any:
        raise _unsupported("Dataset.astype(); convert what you read with numpy")

    def iter_chunks(self, sel: Any = None) -> Any:
        raise _unsupported("iter_chunks()")

    @property
    def virtual_sources(self) -> Any:
        raise _unsupported("virtual datasets")


class _AsyncAsStr:
    def __init__(self, ds: AsyncDataset, how: Tuple[str, str]) -> None:
        self._ds, self._how = ds, how

    def __getitem__(self, sel: Any) -> Awaitable[Any]:
        return self._ds._read(sel, self._how)


class AsyncFile(AsyncGroup):
    """h5py's File for asyncio code, on the caller's event loop: ``async with
    AsyncFile(server="host:8888") as f:`` (or ``f = await AsyncFile(...)``,
    then ``await f.close()``). Arguments as :class:`File`'s."""

    def __init__(self, name: Any = None, mode: str = "a", *, server: Optional[str] = None,
                 config: Any = None, token: Optional[str] = None, ssl: SSLArg = None,
                 timeout: Optional[float] = None) -> None:
        client, hmode = _client_for(name, mode, server, config, token, ssl, timeout)
        state = _FileState(client, hmode)
        super().__init__(state, "/")
        state.afile = self

    @property
    def mode(self) -> str:
        return self._state.mode

    @property
    def filename(self) -> str:
        c = self._state.client
        if c.file is not None:
            return "hdf5-async://%s:%s/%s" % (c.host, c.port, c.file)
        return "hdf5-async://%s:%s" % (c.host, c.port)

    @property
    def client(self) -> HDF5Client:
        """The HDF5Client underneath (all of the protocol's operations)."""
        return self._state.client

    async def open(self) -> "AsyncFile":
        await self._state.client.connect()
        self._state.open = True
        return self

    def __await__(self) -> Any:
        return self.open().__await__()

    async def close(self) -> None:
        self._state.open = False
        await self._state.client.close()

    async def flush(self) -> None:
        """Make everything applied so far survive the server process dying
        (the client's sync("flush"))."""
        await self._c.sync("flush")

    async def __aenter__(self) -> "AsyncFile":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        if not self._state.open:
            return "<Closed hdf5_async file>"
        return '<hdf5_async file "%s" (mode %s)>' % (self.filename, self.mode)
