"""Where the client connects: config.ini's [client] / [server] sections."""

import configparser
import os

__all__ = ["ClientSettings", "load_settings", "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_CONFIG"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888
DEFAULT_CONFIG = "config.ini"

# Addresses a server listens on that mean "every interface": a client on the
# same machine reaches it through the loopback address.
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ClientSettings:
    __slots__ = ("host", "port", "debug", "config_path")

    def __init__(self, host, port, debug=False, config_path=None):
        self.host = host
        self.port = port
        self.debug = debug
        self.config_path = config_path

    def __repr__(self):
        return "ClientSettings(host=%r, port=%r, debug=%r, config_path=%r)" % (
            self.host,
            self.port,
            self.debug,
            self.config_path,
        )


def _bool(value, where):
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError("%s: %r is not a boolean (true/false)" % (where, value))


def _port(value, where):
    try:
        p = int(str(value).strip(), 10)
    except ValueError:
        raise ValueError("%s: %r is not a port number" % (where, value)) from None
    if not 0 < p < 65536:
        raise ValueError("%s: port %d is outside 1..65535" % (where, p))
    return p


def _client_host(host):
    host = host.strip()
    if host in _WILDCARD_HOSTS:
        return DEFAULT_HOST
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def load_settings(host=None, port=None, config=None):
    """Resolve host, port and debug.

    Explicit host/port win. Otherwise they come from ``config`` (a path; when
    None, ``./config.ini`` if it exists and host or port is missing): for each of host and port the
    [client] section is used if it has the key, else [server]; a wildcard
    listen address (0.0.0.0, ::, empty) means 127.0.0.1. Without a file the
    defaults are 127.0.0.1:8888. ``debug = true`` in [client] or [server]
    turns on debug logging. ``#`` and ``;`` after whitespace start a comment
    (``port = 8891 # local``), as in the server and the CLI.
    """
    path = config
    # ./config.ini is looked at only when it has something to tell: with
    # host and port both given and no file named, nothing is read.
    if path is None and (host is None or port is None) and os.path.exists(DEFAULT_CONFIG):
        path = DEFAULT_CONFIG
    cfg_host = cfg_port = None
    debug = False
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
    if host is None:
        host = _client_host(cfg_host) if cfg_host is not None else DEFAULT_HOST
    if port is None:
        port = cfg_port if cfg_port is not None else DEFAULT_PORT
    else:
        port = _port(port, "port")
    return ClientSettings(host, port, debug, path)
