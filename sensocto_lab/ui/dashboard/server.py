"""Serve the room dashboards for a running engine, on the engine's own loop.

See docs/architecture.md#dashboards.

:func:`serve_dashboards` starts a Panel (Bokeh/tornado) server on the loop the
engine runs on, whichever thread that is, so sessions, lenses and the engine share
one loop and only that loop touches engine state. :func:`serve_remote_dashboards`
serves the same pages for an engine in another process, reached over its WebSocket
endpoint (``sensocto-lab dashboard --connect ws://HOST:PORT``). Pages:

- ``/`` and ``/lobby``: the lobby (a member's rooms, or enter a join code);
- ``/room?room=...&code=...``: a room's dashboard (or its entry form).

Resources (Bokeh, Panel JS) are served by this server itself: nothing is fetched
from a CDN.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import panel as pn
from bokeh.server.server import Server

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.engine.host import run_on, running_loop
from sensocto_lab.errors import ConfigError
from sensocto_lab.rooms import RoomStore
from sensocto_lab.ui.dashboard.context import Context
from sensocto_lab.ui.dashboard.pages import DashboardContext, lobby_page, room_page
from sensocto_lab.ui.dashboard.remote import RemoteContext

__all__ = [
    "LOGIN_TEMPLATE",
    "DashboardServer",
    "login_options",
    "serve_dashboards",
    "serve_remote_dashboards",
]

_log = logging.getLogger(__name__)

#: The login page with ``basic_auth`` (for ``panel serve``: ``--basic-login-template``).
#: Panel's own fetches its logo from the internet, which a lab machine may not reach.
LOGIN_TEMPLATE = Path(__file__).with_name("login.html")


@dataclass
class DashboardServer:
    """A running dashboard server; stop it with :meth:`stop`.

    Attributes
    ----------
    context
        What the sessions share (engine and rooms, or the remote endpoint; live
        dashboards by viewer id).
    address, port
        Where it listens.
    """

    context: Context
    address: str
    port: int
    _server: Server
    _loop: asyncio.AbstractEventLoop
    _owned_rooms: RoomStore | None

    @property
    def url(self) -> str:
        """The lobby's URL."""
        return f"http://{self.address}:{self.port}/"

    def room_url(self, room_id: str, code: str | None = None) -> str:
        """A room's dashboard URL (with its join code, if given)."""
        query = f"room={room_id}" + (f"&code={code}" if code else "")
        return f"http://{self.address}:{self.port}/room?{query}"

    async def stop(self) -> None:
        """Close every session's lens (removing its viewer), then the server."""
        if running_loop() is not self._loop:
            await run_on(self._loop, self.stop)
            return
        for dash in list(self.context.dashboards.values()):
            await dash.close()
        self._server.stop()
        with contextlib.suppress(Exception):
            self._server.unlisten()
        if self._owned_rooms is not None:
            self._owned_rooms.close()


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


async def serve_dashboards(
    engine: Any,
    *,
    rooms: RoomStore | None = None,
    port: int = 0,
    address: str = "127.0.0.1",
    clock: Clock | None = None,
    session_cleanup_ms: int = 5000,
    max_cards: int = 200,
    lens_options: dict[str, Any] | None = None,
    **server_options: Any,
) -> DashboardServer:
    """Serve the lobby and room dashboards of ``engine`` on its loop.

    Parameters
    ----------
    engine
        A started :class:`~sensocto_lab.engine.engine.Engine` (same process).
    rooms
        The room store; default ``RoomStore(engine.data_dir)`` (closed on :meth:`stop`).
    port
        TCP port; 0 picks a free one (see :attr:`DashboardServer.port`).
    address
        Interface to listen on.
    clock
        Time source for the lenses (default: the engine's).
    session_cleanup_ms
        How soon a closed browser tab's session is destroyed and its viewer removed;
        also how long a page has to open its connection (a loaded machine's browser
        can take over a second, and a session discarded before it connects shows a
        page that never updates).
    max_cards
        Most cards one dashboard draws.
    lens_options
        Extra keyword arguments for each session's :class:`~sensocto_lab.engine.lens.Lens`.
    server_options
        Passed to :func:`panel.serve` (e.g. ``basic_auth=...``, ``cookie_secret=...``).
    """
    if running_loop() is not engine.loop:
        return await run_on(
            engine.loop,
            serve_dashboards,
            engine,
            rooms=rooms,
            port=port,
            address=address,
            clock=clock,
            session_cleanup_ms=session_cleanup_ms,
            max_cards=max_cards,
            lens_options=lens_options,
            **server_options,
        )
    owned = None
    if rooms is None:
        if engine.data_dir is None:
            raise ConfigError("serve_dashboards needs rooms= when the engine has no data_dir")
        rooms = owned = RoomStore(engine.data_dir, clock=clock or engine.clock)
    ctx = DashboardContext(
        engine=engine,
        rooms=rooms,
        clock=clock or engine.clock,
        max_cards=max_cards,
        lens_options=dict(lens_options or {}),
        # with a login, only a room's owner and admins control it (see .controls)
        controls_without_login=not server_options.get("basic_auth"),
    )
    return _start(ctx, port, address, session_cleanup_ms, owned, server_options)


async def serve_remote_dashboards(
    url: str,
    *,
    token: str | None = None,
    port: int = 0,
    address: str = "127.0.0.1",
    clock: Clock | None = None,
    session_cleanup_ms: int = 5000,
    max_cards: int = 200,
    **server_options: Any,
) -> DashboardServer:
    """Serve the lobby and room dashboards of an engine in another process, on this loop.

    Parameters
    ----------
    url
        The engine's WebSocket endpoint, ``ws://HOST:PORT`` (or the full socket URL).
    token
        A viewer token of the engine (optional: each session presents its room's
        join code; with a token the dashboard relays browsers' addresses).
    port, address, clock, session_cleanup_ms, max_cards, server_options
        As for :func:`serve_dashboards`.
    """
    ctx = RemoteContext(url, token, clock=clock or SystemClock(), max_cards=max_cards)
    return _start(ctx, port, address, session_cleanup_ms, None, server_options)


def _start(
    ctx: Context,
    port: int,
    address: str,
    session_cleanup_ms: int,
    owned: RoomStore | None,
    server_options: dict[str, Any],
) -> DashboardServer:
    """Start the Panel server of ``ctx``'s pages on the running loop."""
    port = port or _free_port(address)
    server_options.setdefault("websocket_origin", [f"{address}:{port}", f"localhost:{port}"])
    if server_options.get("basic_auth"):
        server_options.setdefault("login_template", str(LOGIN_TEMPLATE))
    server = pn.serve(
        {
            "/": lambda: lobby_page(ctx),
            "/lobby": lambda: lobby_page(ctx),
            "/room": lambda: room_page(ctx),
        },
        port=port,
        address=address,
        show=False,
        start=False,
        threaded=False,
        title="sensocto_lab",
        check_unused_sessions_milliseconds=session_cleanup_ms,
        unused_session_lifetime_milliseconds=session_cleanup_ms,
        **server_options,
    )
    server.start()
    return DashboardServer(ctx, address, server.port, server, asyncio.get_running_loop(), owned)


def login_options(basic_auth: str | None) -> dict[str, Any]:
    """Server options that ask who is watching: Panel's basic auth with our login page.

    ``basic_auth`` is one shared password or a JSON file of user → password (``None``:
    no login). The cookie secret is fresh per call, so logins last as long as the server.
    """
    if not basic_auth:
        return {}
    return {"basic_auth": basic_auth, "cookie_secret": secrets.token_urlsafe(32)}
