"""The h5py-shaped API: ``File``, ``Group``, ``Dataset``, ``AttributeManager``
(blocking, like h5py) and their awaitable twins ``AsyncFile``,
``AsyncGroup``, ``AsyncDataset``, ``AsyncAttributeManager``.

``File`` runs its connection on one background event-loop thread shared by
every ``File`` of the process, so it works where a loop is already running
(Jupyter) and from any number of threads. ``AsyncFile`` runs on the
caller's loop. Both raise what h5py raises where h5py raises it (KeyError
for a missing name, ValueError for a taken one, ...), as instances of the
package's error classes (``.code``). What h5py offers and this does not is
an :class:`~hdf5_async.errors.UnsupportedError` (a NotImplementedError)
before anything is sent: see docs/from-h5py.md.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from typing import Any, Callable, Coroutine, Iterator, List, Optional, Tuple, TypeVar, Union

import numpy as np

from ._h5util import ExternalLink, HardLink, SoftLink, _err, _unsupported, string_dtype
from .errors import ShapeMismatchError
from .client import HDF5Client, SSLArg
from .h5async import (
    AsyncAttributeManager,
    AsyncDataset,
    AsyncFile,
    AsyncGroup,
    _AsyncAsStr,
    _Node,
)

__all__ = [
    "File",
    "Group",
    "Dataset",
    "AttributeManager",
    "AsyncFile",
    "AsyncGroup",
    "AsyncDataset",
    "AsyncAttributeManager",
    "SoftLink",
    "ExternalLink",
    "HardLink",
    "string_dtype",
]

T = TypeVar("T")


# ------------------------------------------------------- the event loop thread


class _LoopThread:
    """One event loop on a daemon thread for every File of the process."""

    _lock = threading.Lock()
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _thread: Optional[threading.Thread] = None
    _pid: Optional[int] = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if (cls._loop is None or cls._pid != os.getpid() or cls._thread is None
                    or not cls._thread.is_alive()):
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def main() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                t = threading.Thread(target=main, name="hdf5_async-loop", daemon=True)
                t.start()
                ready.wait()
                cls._loop, cls._thread, cls._pid = loop, t, os.getpid()
            return cls._loop

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, T]) -> T:
        loop = cls.loop()
        if threading.current_thread() is cls._thread:
            coro.close()
            raise RuntimeError(
                "a blocking hdf5_async.File call was made on the File's own event-loop thread "
                "(it would wait for itself): use AsyncFile in asyncio code"
            )
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # KeyboardInterrupt while waiting: give the call up
            raise



# ------------------------------------------------------------ the blocking API


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return _LoopThread.run(coro)


def _sync(obj: Any) -> Any:
    if isinstance(obj, AsyncFile):
        return obj._state.sync_file
    if isinstance(obj, AsyncGroup):
        return Group(obj)
    if isinstance(obj, AsyncDataset):
        return Dataset(obj)
    return obj


class AttributeManager:
    """``obj.attrs``: a mapping of the object's attributes, as h5py's."""

    def __init__(self, a: AsyncAttributeManager) -> None:
        self._a = a

    def __getitem__(self, name: str) -> Any:
        return _run(self._a._getitem(name))

    def __setitem__(self, name: str, value: Any) -> None:
        _run(self._a.set(name, value))

    def __delitem__(self, name: str) -> None:
        _run(self._a.delete(name))

    def __contains__(self, name: object) -> bool:
        return _run(self._a.contains(name))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return _run(self._a.len())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> List[str]:
        return _run(self._a.keys())

    def values(self) -> List[Any]:
        return _run(self._a.values())

    def items(self) -> List[Tuple[str, Any]]:
        return _run(self._a.items())

    def get(self, name: str, default: Any = None) -> Any:
        return _run(self._a.get(name, default))

    def create(self, name: str, data: Any, shape: Any = None, dtype: Any = None) -> None:
        _run(self._a.create(name, data, shape, dtype))

    def modify(self, name: str, value: Any) -> None:
        _run(self._a.modify(name, value))

    def __repr__(self) -> str:
        return '<Attributes of hdf5_async object "%s">' % self._a._node.name


class _SyncNode:
    _a: Any

    @property
    def name(self) -> str:
        return self._a.name

    @property
    def attrs(self) -> AttributeManager:
        return AttributeManager(self._a.attrs)

    @property
    def file(self) -> "File":
        return self._a._state.sync_file

    @property
    def parent(self) -> "Group":
        return _sync(self._a.parent)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SyncNode) and self._a == other._a

    def __hash__(self) -> int:
        return hash(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __repr__(self) -> str:
        return repr(self._a)

    @property
    def ref(self) -> Any:
        return self._a.ref

    @property
    def regionref(self) -> Any:
        return self._a.regionref

    @property
    def id(self) -> Any:
        return self._a.id


class Group(_SyncNode):
    """A group, as h5py's: ``g[name]``, ``name in g``, ``len(g)``,
    iteration, keys/values/items, create_group, require_group,
    create_dataset, require_dataset, ``g[name] = data``, ``del g[name]``,
    visit/visititems, move, attrs."""

    _a: AsyncGroup

    def __init__(self, a: AsyncGroup) -> None:
        self._a = a

    def __getitem__(self, name: Any) -> Union["Group", "Dataset"]:
        return _sync(_run(self._a.get_item(name)))

    def __setitem__(self, name: Any, obj: Any) -> None:
        _run(self._a.set(name, obj))

    def __delitem__(self, name: Any) -> None:
        _run(self._a.delete(name))

    def __contains__(self, name: object) -> bool:
        return _run(self._a.contains(name))

    def __len__(self) -> int:
        return _run(self._a.len())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> List[str]:
        return _run(self._a.keys())

    def values(self) -> List[Union["Group", "Dataset"]]:
        return [_sync(v) for v in _run(self._a.values())]

    def items(self) -> List[Tuple[str, Union["Group", "Dataset"]]]:
        return [(k, _sync(v)) for k, v in _run(self._a.items())]

    def get(self, name: Any, default: Any = None, getclass: bool = False, getlink: bool = False) -> Any:
        r = _run(self._a.get(name, default, getclass, getlink))
        if getclass and isinstance(r, type) and issubclass(r, _Node):
            return {AsyncDataset: Dataset, AsyncFile: Group}.get(r, Group)
        return _sync(r)

    def create_group(self, name: Any, track_order: Optional[bool] = None) -> "Group":
        return _sync(_run(self._a.create_group(name, track_order)))

    def require_group(self, name: Any) -> "Group":
        return _sync(_run(self._a.require_group(name)))

    def create_dataset(self, name: Any, shape: Any = None, dtype: Any = None, data: Any = None,
                       **kwds: Any) -> "Dataset":
        if isinstance(data, Dataset):
            data = data[()]
        return _sync(_run(self._a.create_dataset(name, shape, dtype, data, **kwds)))

    def require_dataset(self, name: Any, shape: Any, dtype: Any, exact: bool = False,
                        **kwds: Any) -> "Dataset":
        return _sync(_run(self._a.require_dataset(name, shape, dtype, exact, **kwds)))

    def move(self, source: Any, dest: Any) -> None:
        _run(self._a.move(source, dest))

    def copy(self, *a: Any, **k: Any) -> None:
        raise _unsupported("copy()")

    def visit(self, func: Callable[[str], Any]) -> Any:
        """func(name) for every group and dataset below, depth first in name
        order; stops at the first value that is not None."""
        for name, _ in _run(self._a._walk(objects=False)):
            r = func(name)
            if r is not None:
                return r
        return None

    def visititems(self, func: Callable[[str, Any], Any]) -> Any:
        for name, obj in _run(self._a._walk(objects=True)):
            r = func(name, _sync(obj))
            if r is not None:
                return r
        return None


class Dataset(_SyncNode):
    """A dataset, as h5py's: ``ds[sel]``, ``ds[sel] = value``, shape,
    dtype, ndim, size, chunks, maxshape, compression, compression_opts,
    fillvalue, ``len(ds)``, resize, attrs; and ``append(rows)``."""

    _a: AsyncDataset

    def __init__(self, a: AsyncDataset) -> None:
        self._a = a

    def __getitem__(self, sel: Any) -> Any:
        return _run(self._a.read(sel))

    def __setitem__(self, sel: Any, value: Any) -> None:
        _run(self._a.write(sel, value))

    def __array__(self, dtype: Any = None) -> np.ndarray:
        arr = np.asarray(self[()])
        return arr if dtype is None else arr.astype(dtype)

    def __iter__(self) -> Iterator[Any]:
        if not self.shape:
            raise _err(ShapeMismatchError, TypeError, "Can't iterate over a scalar dataset")
        return iter(self[()])

    def __len__(self) -> int:
        return len(self._a)

    def len(self) -> int:
        return len(self._a)

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    maxshape = property(lambda self: self._a.maxshape)
    chunks = property(lambda self: self._a.chunks)
    compression = property(lambda self: self._a.compression)
    compression_opts = property(lambda self: self._a.compression_opts)
    shuffle = property(lambda self: self._a.shuffle)
    fletcher32 = property(lambda self: self._a.fletcher32)
    scaleoffset = property(lambda self: self._a.scaleoffset)
    fillvalue = property(lambda self: self._a.fillvalue)
    is_virtual = property(lambda self: self._a.is_virtual)
    external = property(lambda self: self._a.external)
    dims = property(lambda self: self._a.dims)
    virtual_sources = property(lambda self: self._a.virtual_sources)

    def refresh(self) -> None:
        _run(self._a.refresh())

    def flush(self) -> None:
        _run(self._a._c.sync("flush"))

    def resize(self, size: Any, axis: Optional[int] = None) -> None:
        _run(self._a.resize(size, axis))

    def append(self, rows: Any) -> Tuple[int, ...]:
        return _run(self._a.append(rows))

    def read_direct(self, dest: np.ndarray, source_sel: Any = None, dest_sel: Any = None) -> None:
        _run(self._a.read_direct(dest, source_sel, dest_sel))

    def write_direct(self, source: np.ndarray, source_sel: Any = None, dest_sel: Any = None) -> None:
        _run(self._a.write_direct(source, source_sel, dest_sel))

    def asstr(self, encoding: str = "utf-8", errors: str = "strict") -> "_AsStr":
        return _AsStr(self._a.asstr(encoding, errors))

    def fields(self, names: Any) -> Any:
        return self._a.fields(names)

    def astype(self, dtype: Any) -> Any:
        return self._a.astype(dtype)

    def iter_chunks(self, sel: Any = None) -> Any:
        return self._a.iter_chunks(sel)


class _AsStr:
    def __init__(self, a: _AsyncAsStr) -> None:
        self._a = a

    def __getitem__(self, sel: Any) -> Any:
        return _run(self._a[sel])  # type: ignore[arg-type]


class File(Group):
    """An h5py-style handle on the file a server serves::

        import hdf5_async
        with hdf5_async.File(server="host:8888") as f:     # or config.ini's address
            f["entry/data"] = np.arange(100.0)
            print(f["entry/data"][10:20])

    ``name``: a file under the server's ``data_root``, relative to it
    (``File("run_0001.h5", server=...)``; created by the first change), or
    None for the server's default file. ``mode``: "r" (every change refused
    before it is sent), "r+" or "a" (read and write). ``server``: "HOST:PORT", "HOST" or None (config.ini's
    address, as HDF5Client finds it); ``config``, ``token``, ``ssl``,
    ``timeout``: as HDF5Client's. Blocking calls run on one background
    event-loop thread, so File works inside Jupyter and from many threads.
    """

    def __init__(self, name: Any = None, mode: str = "a", *, server: Optional[str] = None,
                 config: Any = None, token: Optional[str] = None, ssl: SSLArg = None,
                 timeout: Optional[float] = None) -> None:
        af = AsyncFile(name, mode, server=server, config=config, token=token, ssl=ssl, timeout=timeout)
        af._state.sync_file = self
        super().__init__(af)
        _run(af.open())
        self._finalizer = weakref.finalize(self, _close_quietly, af)

    @property
    def mode(self) -> str:
        return self._a.mode  # type: ignore[attr-defined]

    @property
    def filename(self) -> str:
        return self._a.filename  # type: ignore[attr-defined]

    @property
    def client(self) -> HDF5Client:
        """The HDF5Client underneath; use it only through AsyncFile or on
        the File's loop thread."""
        return self._a.client  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close the connection (objects of this file stop working)."""
        if self._finalizer.detach() is not None:
            _run(self._a.close())  # type: ignore[attr-defined]

    def flush(self) -> None:
        """Make everything applied so far survive the server process dying."""
        _run(self._a.flush())  # type: ignore[attr-defined]

    def __enter__(self) -> "File":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _close_quietly(af: AsyncFile) -> None:
    loop = _LoopThread._loop
    if loop is not None and not loop.is_closed() and _LoopThread._pid == os.getpid():
        try:
            asyncio.run_coroutine_threadsafe(af.close(), loop)
        except RuntimeError:
            pass
