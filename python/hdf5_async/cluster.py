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

from typing import Sequence

__all__ = ["weight", "owner"]

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
