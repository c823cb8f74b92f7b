"""Which node of a [cluster] serves which file: rendezvous (highest random
weight) hashing, exactly as the server computes it (src/server/cluster.h,
docs/scaling.md), so a client sends each request to the file's owner
without asking anybody.

weight(node, file) = finalize(FNV-1a-64(node bytes + b"\\0" + file bytes)),
finalize being splitmix64's (x ^= x >> 30; x *= 0xbf58476d1ce4e5b9;
x ^= x >> 27; x *= 0x94d049bb133111eb; x ^= x >> 31, modulo 2**64); the
owner is the node of the highest weight, the first on a tie. ``node`` is
the list's entry as written ("10.0.0.2:8888"), ``file`` the request's
``file`` (UTF-8)."""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Sequence

from .errors import WrongNodeError

__all__ = ["weight", "owner", "Routing"]

log = logging.getLogger("hdf5_async")

_MASK = (1 << 64) - 1


def weight(node: str, file: str) -> int:
    h = 0xCBF29CE484222325
    for b in node.encode("utf-8") + b"\0" + file.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & _MASK
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _MASK
    h ^= h >> 31
    return h


def owner(nodes: Sequence[str], file: str) -> int:
    """The index in nodes of the node that serves file."""
    best, bw = 0, -1
    for i, n in enumerate(nodes):
        w = weight(n, file)
        if w > bw:
            best, bw = i, w
    return best


class Routing:
    """The [cluster] routing of HDF5Client (which provides the attributes:
    nodes, host, port, _peers, _peer_kw, _closed_exc, _call): a call for a
    file goes to the file's owner, over a connection to that node made on
    first use with the same options (reconnect included: each such
    connection has its own client_id and seq), and WRONG_NODE is followed.
    Kept here, beside the hash, so that client.py stays the plain client."""

    host: str
    port: int
    nodes: Any
    _peers: Dict[str, Any]
    _peer_kw: Dict[str, Any]
    _closed_exc: Optional[BaseException]

    def _address(self) -> str:
        return "%s:%d" % (self.host, self.port)

    async def _peer(self, node: str) -> Any:
        """This client for its own address, else a connection to node."""
        if node == self._address():
            return self
        peer = self._peers.get(node)
        if peer is None or peer._closed_exc is not None:
            host, _, port = node.rpartition(":")
            peer = type(self)(host.strip("[]"), int(port), **self._peer_kw)
            self._peers[node] = peer
            await peer.connect()
        return peer

    async def _routed(self, op: str, path: Optional[str], durability: Optional[str], file: str,
                      args: Dict[str, Any]) -> Any:
        """[cluster]: send the call to the file's owner (rendezvous hashing
        over the config's nodes), and follow WRONG_NODE to the node the
        server names (a stale or missing node list), a few times."""
        node = self.nodes[owner(self.nodes, file)] if self.nodes else self._address()
        for _ in range(4):
            target = await self._peer(node)
            try:
                return await target._call(op, path, durability, _local=True, **args)  # type: ignore[attr-defined]
            except WrongNodeError as e:
                if not e.node or e.node == node:
                    raise
                log.debug("WRONG_NODE: %s is served by %s", file, e.node)
                node = e.node
        raise WrongNodeError("file %r: too many WRONG_NODE redirections" % (file,))
