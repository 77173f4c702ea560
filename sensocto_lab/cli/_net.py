"""The one URL rule of the command line, and the checks made before connecting or binding.

Every command that connects (``replay --url``, ``dashboard --connect``) accepts the
endpoint as ``ws://host:port`` or as the full socket URL
(``ws://host:port/socket/websocket``), normalised by :func:`endpoint`; an ``http://``
URL (the dashboard's or ``/health``'s) is refused at once with the URL to use. Before
connecting, :func:`reachable` tells within a second whether anything listens there,
instead of the clients' patient reconnecting. Before serving, :func:`check_free`
tells which option names a port that is taken, before anything is created on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sensocto_lab.cli._fail import CliError

__all__ = ["Endpoint", "check_free", "endpoint", "reachable"]

#: Where Phoenix serves its socket; ``/socket`` is what Phoenix clients are given.
SOCKET_PATH = "/socket/websocket"
#: How long to wait for a TCP connection before saying nothing answers, in seconds.
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An engine's endpoint: ``host``, ``port`` and the socket URL clients open."""

    host: str
    port: int
    url: str

    def __str__(self) -> str:
        return self.url


def endpoint(text: str) -> Endpoint:
    """Parse ``ws://host:port[/socket[/websocket]][?query]`` (or ``wss://``); else refuse.

    >>> endpoint("ws://127.0.0.1:4000").url
    'ws://127.0.0.1:4000/socket/websocket?vsn=2.0.0'
    """
    parts = urlsplit(text if "://" in text else f"ws://{text}")
    if parts.scheme in ("http", "https"):
        ws = urlunsplit(("ws" if parts.scheme == "http" else "wss", parts.netloc, "", "", ""))
        raise argparse.ArgumentTypeError(
            f"{text} is a web page's address; the engine's endpoint is a WebSocket: use {ws} "
            "(the `ingest endpoint` line that serve prints)"
        )
    if parts.scheme not in ("ws", "wss"):
        raise argparse.ArgumentTypeError(f"{text}: give the endpoint as ws://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port is None or port <= 0:
        raise argparse.ArgumentTypeError(
            f"{text} names no host and port: give the endpoint as ws://HOST:PORT "
            "(e.g. ws://127.0.0.1:4000)"
        )
    path = parts.path.rstrip("/")
    if path in ("", "/socket"):
        path = SOCKET_PATH
    if path != SOCKET_PATH:
        raise argparse.ArgumentTypeError(
            f"{text}: the endpoint's path is {SOCKET_PATH} (or leave it out: ws://HOST:PORT)"
        )
    url = urlunsplit((parts.scheme, parts.netloc, path, parts.query or "vsn=2.0.0", ""))
    return Endpoint(parts.hostname, port, url)


endpoint.__name__ = "URL"


async def reachable(where: Endpoint, flag: str) -> None:
    """Raise :class:`CliError` unless something accepts a TCP connection at ``where``."""
    at = f"{where.host}:{where.port}"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(where.host, where.port), PROBE_TIMEOUT_S
        )
    except ConnectionRefusedError:
        raise CliError(
            f"connection refused at {at}: nothing listens there; start the engine "
            f"(`sensocto-lab serve`) or pass {flag} with its endpoint"
        ) from None
    except TimeoutError:
        raise CliError(
            f"no answer from {at} within {PROBE_TIMEOUT_S:g} s: check the host in {flag} "
            "(and any firewall between)"
        ) from None
    except socket.gaierror:
        raise CliError(f"unknown host {where.host}: check the host in {flag}") from None
    except OSError as exc:
        raise CliError(f"cannot connect to {at}: {exc.strerror or exc}: check {flag}") from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def check_free(host: str, port: int, flag: str) -> None:
    """Raise :class:`CliError` if the server could not bind ``host:port`` (port 0: any free).

    The probe binds as asyncio's and Tornado's servers do (``SO_REUSEADDR``), so a port
    a stopped server left in ``TIME_WAIT`` counts as free, as it is for them.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise CliError(
            f"unknown --host {host}: give an address of this machine, e.g. 127.0.0.1"
        ) from None
    if port == 0:
        return
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CliError(
                        f"port {port} is in use: pass {flag} 0 or stop the other server"
                    ) from None
                if exc.errno == errno.EACCES:
                    raise CliError(
                        f"port {port} needs root: pass {flag} with a port above 1023, or 0"
                    ) from None
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise CliError(
                        f"--host {host} is not an address of this machine: try 127.0.0.1"
                    ) from None
                raise
