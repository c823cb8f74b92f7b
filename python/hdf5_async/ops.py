"""The server's operations, as data.

A copy of the list in src/proto/ops.h of the hdf5-async repository: for each
op, whether it may change the file, the role it needs and whether it may go
in a batch. tests/integration/test_op_list.py fails when this copy and
``hdf5-async-server --list-ops`` disagree.
"""

from __future__ import annotations

from typing import Dict, NamedTuple

__all__ = ["Op", "OPS", "ALIASES", "canonical", "changes"]


class Op(NamedTuple):
    changes: bool  # may change the file: the client's default durability applies
    perm: str  # the role it needs: "read", "write" or "admin"
    batch: bool  # may appear inside a batch


OPS: Dict[str, Op] = {
    "ping": Op(changes=False, perm="read", batch=True),
    "create_group": Op(changes=True, perm="write", batch=True),
    "write": Op(changes=True, perm="write", batch=True),
    "read": Op(changes=False, perm="read", batch=True),
    "append": Op(changes=True, perm="write", batch=True),
    "insert": Op(changes=True, perm="write", batch=True),
    "delete": Op(changes=True, perm="write", batch=True),
    "create_dataset": Op(changes=True, perm="write", batch=True),
    "resize": Op(changes=True, perm="write", batch=True),
    "write_slice": Op(changes=True, perm="write", batch=True),
    "set_attr": Op(changes=True, perm="write", batch=True),
    "get_attr": Op(changes=False, perm="read", batch=True),
    "list_attrs": Op(changes=False, perm="read", batch=True),
    "delete_attr": Op(changes=True, perm="write", batch=True),
    "list": Op(changes=False, perm="read", batch=True),
    "walk": Op(changes=False, perm="read", batch=True),
    "info": Op(changes=False, perm="read", batch=True),
    "exists": Op(changes=False, perm="read", batch=True),
    "create_link": Op(changes=True, perm="write", batch=True),
    "move": Op(changes=True, perm="write", batch=True),
    "auth": Op(changes=False, perm="read", batch=False),
    "compact": Op(changes=True, perm="admin", batch=False),
    # each op inside a batch is checked with its own role
    "batch": Op(changes=True, perm="read", batch=False),
    "list_files": Op(changes=False, perm="read", batch=False),
    "create_virtual": Op(changes=True, perm="write", batch=True),
}

# other spellings the server accepts: alias -> op
ALIASES: Dict[str, str] = {"update": "write"}


def canonical(name: str) -> str:
    """The op's name in OPS (an alias resolved); KeyError for an unknown op."""
    name = ALIASES.get(name, name)
    if name not in OPS:
        raise KeyError(name)
    return name


def changes(name: str) -> bool:
    """Whether op `name` (or an alias) may change the file."""
    return OPS[canonical(name)].changes
