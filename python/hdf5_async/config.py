"""Where the client connects and who it says it is: config.ini's [client] /
[server] sections, and the environment variable HDF5_ASYNC_TOKEN."""

from __future__ import annotations

import configparser
import os
from typing import List, Optional, Union

__all__ = [
    "ClientSettings",
    "load_settings",
    "resolve_token",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_CONFIG",
    "TOKEN_ENV",
]

TOKEN_ENV = "HDF5_ASYNC_TOKEN"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888
DEFAULT_CONFIG = "config.ini"

# Addresses a server listens on that mean "every interface": a client on the
# same machine reaches it through the loopback address.
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ClientSettings:
    __slots__ = ("host", "port", "debug", "config_path", "token_file", "nodes")

    def __init__(
        self,
        host: str,
        port: int,
        debug: bool = False,
        config_path: Optional[str] = None,
        token_file: Optional[str] = None,
    ) -> None:
        self.host = host
        self.port = port
        self.debug = debug
        self.config_path = config_path
        self.token_file = token_file
        #: [cluster] nodes ("HOST:PORT" strings, as the config writes them)
        self.nodes: List[str] = []

    def __repr__(self) -> str:
        return "ClientSettings(host=%r, port=%r, debug=%r, config_path=%r, token_file=%r)" % (
            self.host,
            self.port,
            self.debug,
            self.config_path,
            self.token_file,
        )


def _bool(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError("%s: %r is not a boolean (true/false)" % (where, value))


def _port(value: object, where: str) -> int:
    try:
        p = int(str(value).strip(), 10)
    except ValueError:
        raise ValueError("%s: %r is not a port number" % (where, value)) from None
    if not 0 < p < 65536:
        raise ValueError("%s: port %d is outside 1..65535" % (where, p))
    return p


def _client_host(host: str) -> str:
    host = host.strip()
    if host in _WILDCARD_HOSTS:
        return DEFAULT_HOST
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def load_settings(
    host: Optional[str] = None,
    port: Optional[Union[int, str]] = None,
    config: Optional[Union[str, "os.PathLike[str]"]] = None,
) -> ClientSettings:
    """Resolve host, port, debug and the token file.

    Explicit host/port win. Otherwise they come from ``config`` (a path; when
    None, ``./config.ini`` if it exists and host or port is missing): for each of host and port the
    [client] section is used if it has the key, else [server]; a wildcard
    listen address (0.0.0.0, ::, empty) means 127.0.0.1. Without a file the
    defaults are 127.0.0.1:8888. ``debug = true`` in [client] or [server]
    makes the client log each request and reply (logger "hdf5_async",
    level DEBUG; the application configures where records go).
    ``token_file`` in [client] names a file holding the client's token
    (a relative path is relative to the config file's directory). ``#``
    and ``;`` after whitespace start a comment (``port = 8891 # local``),
    as in the server and the CLI.
    """
    path = config
    # ./config.ini is looked at only when it has something to tell: with
    # host and port both given and no file named, nothing is read.
    if path is None and (host is None or port is None) and os.path.exists(DEFAULT_CONFIG):
        path = DEFAULT_CONFIG
    cfg_host = cfg_port = token_file = None
    debug = False
    nodes: List[str] = []
    if path is not None:
        path = os.fspath(path)
        parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
        with open(path, encoding="utf-8") as f:
            parser.read_file(f, source=path)
        for section in ("server", "client"):  # client read last: it wins
            if not parser.has_section(section):
                continue
            sec = parser[section]
            if "host" in sec:
                cfg_host = sec["host"]
            if "port" in sec:
                cfg_port = _port(sec["port"], "%s [%s] port" % (path, section))
            if "debug" in sec and _bool(sec["debug"], "%s [%s] debug" % (path, section)):
                debug = True
        if parser.has_section("cluster") and parser["cluster"].get("nodes", "").strip():
            nodes = parse_nodes(parser["cluster"]["nodes"], "%s [cluster] nodes" % path)
        if parser.has_section("client") and parser["client"].get("token_file", "").strip():
            token_file = os.path.join(
                os.path.dirname(os.path.abspath(path)), parser["client"]["token_file"].strip()
            )
    if host is None and port is None and nodes and cfg_port is None:
        host, _, p = nodes[0].rpartition(":")  # a cluster-only config: its first node
        host, port = host.strip("[]"), int(p)
    if host is None:
        host = _client_host(cfg_host) if cfg_host is not None else DEFAULT_HOST
    if port is None:
        port = cfg_port if cfg_port is not None else DEFAULT_PORT
    else:
        port = _port(port, "port")
    settings = ClientSettings(host, port, debug, path, token_file)
    settings.nodes = nodes
    return settings


def parse_nodes(value: str, where: str = "nodes") -> List[str]:
    """``HOST:PORT, HOST:PORT, ...`` as the server reads [cluster] nodes:
    each entry stripped of blanks, kept as written (the hash uses it)."""
    out: List[str] = []
    for entry in value.split(","):
        entry = entry.strip()
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535 or " " in entry:
            raise ValueError("%s: %r is not HOST:PORT" % (where, entry))
        if entry in out:
            raise ValueError("%s: %r is listed twice" % (where, entry))
        out.append(entry)
    return out


def resolve_token(token: Optional[str], settings: ClientSettings) -> Optional[str]:
    """The token to send: the one given, else $HDF5_ASYNC_TOKEN when set and
    not empty, else the contents of the config's ``token_file`` (surrounding
    whitespace and the final newline stripped), else None (no auth)."""
    if token is not None:
        if not isinstance(token, str) or not token:
            raise TypeError("token must be a non-empty str")
        return token
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    if settings.token_file is not None:
        where = "%s [client] token_file" % (settings.config_path,)
        try:
            with open(settings.token_file, encoding="utf-8") as f:
                text = f.read().strip()
        except OSError as e:
            raise ValueError("%s: cannot read %s: %s" % (where, settings.token_file, e.strerror)) from None
        if not text:
            raise ValueError("%s: %s is empty" % (where, settings.token_file))
        return text
    return None
