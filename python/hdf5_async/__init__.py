"""hdf5-async: clients of the hdf5-async server -- ``File`` (h5py's API,
blocking), ``AsyncFile`` (the same, awaitable) and ``HDF5Client`` (every
operation of the protocol, asyncio).

One server owns one HDF5 file and applies every client's operations one at a
time, in the order it received them; any number of clients, on any number of
machines, read and write the file through it. h5py's API, pointed at a
server::

    import numpy as np
    import hdf5_async

    with hdf5_async.File(server="host:8888") as f:   # or config.ini's address
        f["entry/data"] = np.arange(100.0)
        print(f["entry/data"][10:20], f["entry/data"].dtype)

See docs/from-h5py.md for what differs from h5py and why. The protocol's
operations, asyncio::

    import asyncio
    import numpy as np
    from hdf5_async import HDF5Client

    async def main():
        async with HDF5Client() as client:          # host/port from ./config.ini
            await client.create_group("/my_group")
            await client.write("/my_group/x", np.arange(5), compression="gzip")
            print(await client.read("/my_group/x"))

    asyncio.run(main())

Needs only ``numpy`` and ``msgpack``. The wire protocol is described in
docs/protocol.md of the hdf5-async repository.

Values
------
* numpy arrays and scalars keep their dtype and shape (bool, ints and
  unsigned ints of both byte orders, float16/32/64, complex64/128, ``S<n>``,
  ``V<n>``, structured with nested and subarray fields) and are stored the way
  h5py stores them.
* Python ``bool``, ``int``, ``float`` become scalar datasets (bool, int64 --
  uint64 above 2**63-1 --, float64); ``complex`` a complex128 scalar.
* ``str`` is stored as a variable-length UTF-8 string, ``bytes`` as a
  variable-length ASCII string (as h5py does); reading gives back ``str`` /
  ``bytes``.
* NumPy unicode arrays (dtype ``U<n>``) have no HDF5 equivalent: the client
  sends them as nested lists of ``str``, stored as variable-length UTF-8
  strings; reading such a dataset gives a numpy object array of ``str``
  (the same thing h5py does with ``h5py.string_dtype()``, except that h5py
  hands back ``bytes``). Object arrays whose elements are all ``str`` (or all
  ``bytes``) are sent the same way, so what ``read`` returns can be written
  back.
* numpy ``bytes_`` scalars are fixed-length strings (``S<n>``), as h5py
  stores them; numpy ``str_`` scalars are stored like ``str``.
* lists and tuples whose leaves are all ``str`` (all ``bytes``) become
  arrays of variable-length UTF-8 (ASCII) strings, as h5py stores them; other
  lists and tuples go through ``numpy.asarray`` (a list of ``np.bytes_``
  gives a fixed-length ``S<n>`` array).
* anything else raises ``TypeError`` before anything is sent.

Partial I/O and creation
------------------------
``read(path, np.s_[10:20, ::2])`` reads only that part (NumPy's basic
indexing: ints, slices with positive steps, one Ellipsis), and
``write_slice(path, selection, data)`` writes into it. ``create_dataset``
makes an empty dataset with h5py's options (chunks, maxshape, fillvalue,
compression incl. the lz4/bzip2/bitshuffle plugins when the server has
them, shuffle, exist_ok) and ``resize(path, shape, axis=None)`` changes a
chunked dataset's shape within its maxshape.

Errors
------
Every error reply raises the subclass of :class:`HDF5AsyncError` named after
its code (``NotFoundError`` for ``NOT_FOUND``, ...), with ``.code`` and
``.message``; each is also the built-in exception h5py raises for that
condition (``NotFoundError`` is a ``KeyError``, ...). A connection that drops
makes every pending call raise :class:`ConnectionClosedError`; a call over
the client's ``timeout`` raises :class:`TimedOutError` (also an
``asyncio.TimeoutError``).

Logging
-------
The package logs to the ``"hdf5_async"`` logger and installs no handler:
``logging.basicConfig(level=logging.DEBUG)`` (or any configuration of the
application's) shows them; ``debug = true`` in config.ini sets the logger's
level to DEBUG so each request and reply is logged.
"""

from . import errors, h5
from .client import HDF5Client
from .errors import *  # noqa: F401,F403 (every class, declared once in errors.py)
from .h5 import *  # noqa: F401,F403 (File, AsyncFile, Group, Dataset, ...)

__version__ = "0.2.0"

__all__ = ["HDF5Client", "__version__"] + h5.__all__ + errors.__all__
