"""The WebSocket endpoint: Phoenix Channels v2 for sensors and viewers, over ``websockets``.

Thin glue over two sans-I/O protocols: ``websockets``' ``ServerProtocol`` (handshake,
frames, pings, closing) and :class:`~sensocto_lab.protocol.connection.ServerConnection`
(Phoenix), driven by one :class:`asyncio.Protocol` per socket with an idle watchdog.
The socket parses the whole data frames of ingest itself and frames what it writes
(:mod:`sensocto_lab.net.wsframes`); each joined channel is a small handler object
(:mod:`sensocto_lab.net.channels`). Wire details are in :mod:`sensocto_lab.protocol`
and ``docs/protocol.md``.

- ``GET /health`` answers ``engine.health()`` as JSON to a request with a token
  (``?token=`` or ``Authorization: Bearer``), only states and counts to others
  (:func:`health_summary`), never absolute paths; the socket lives at
  ``/socket/websocket?vsn=2.0.0&token=...``.
- Sensor channels (``sensor:{id}``, ``sensocto:sensor:{id}``): the join registers the
  sensor with the engine and the server pushes ``backpressure_config`` at once and on
  every change (bus topic ``signal:{id}``). Pushes are validated as they arrive, then
  ingested in order by the channel's worker; the ``ok`` reply is sent only after
  ``engine.ingest`` returned (the samples are stored). A channel whose join params
  contain ``"exactly_once": true`` drops samples at or before the newest stored
  timestamp of their attribute, so a client that resends unacknowledged pushes after
  a reconnect stores every sample once (it must send strictly increasing timestamps).
- Viewer channels (``room:{id}``, ``lens:{viewer_id}``): with a room store, a join
  must present the room's join code (``code``; a lens names its ``room``, or is found
  by the code) or a viewer token; a dashboard with a viewer token may vouch for a
  logged-in member instead (``member``). Without a room store the ingest token rules
  as for sensors. The join reply is the room's :class:`~sensocto_lab.protocol.viewer.RoomSnapshot`
  (sensors, recent samples, levels, presence). Visibility events become
  ``engine.set_views``; the server pushes ``batch`` events (every batch of the room,
  or the lens's tier-flushed batches), ``sensor`` for sensors that appear later and
  ``status`` when levels or presence change. When the socket closes its viewers are
  removed.
- Limits (:class:`ServerConfig`): ingest tokens, allowed origins, frame size, a
  per-socket token bucket, an idle timeout, a bound on errors per channel, a bound on
  the bytes a peer has not taken (beyond it the socket stops reading from that peer,
  and closes it with 1008 if it stays so for ``send_timeout_s``). Bad input
  gets an ``error`` reply; a channel past its error bound is closed with ``phx_error``;
  the socket and its other channels stay, and what was stored stays stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Generator
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.engine.contracts import LiveEngine
from sensocto_lab.net.config import SOCKET_PATH, ServerConfig
from sensocto_lab.net.ledger import SensorLedger
from sensocto_lab.net.socket import Socket
from sensocto_lab.rooms import RoomStore

__all__ = ["IngestServer", "serve"]

log = logging.getLogger(__name__)


class IngestServer:
    """A running endpoint. Make one with :func:`serve`.

    Attributes
    ----------
    port
        The TCP port it listens on (the OS picks one for ``port=0``).
    """

    def __init__(
        self, engine: LiveEngine, config: ServerConfig, clock: Clock, rooms: RoomStore | None = None
    ) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.rooms = rooms
        #: Shared by the sensor channels for exactly-once ingest.
        self.ledger = SensorLedger()
        self._listener: asyncio.Server | None = None
        #: Open connections (each removes itself once its channels are closed).
        self.sockets: set[Socket] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.host = ""

    @property
    def url(self) -> str:
        """The socket URL (without token)."""
        return f"ws://{self.host}:{self.port}{SOCKET_PATH}?vsn=2.0.0"

    async def start(self, host: str, port: int) -> IngestServer:
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(lambda: Socket(self), host, port)
        sockname = self._listener.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        return self

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def process_request(self, ws: ServerProtocol, request: Request) -> Response | None:
        """The answer to a request that does not open a socket (health, bad path,
        origin, vsn or token); None lets the WebSocket handshake go on."""
        parts = urlsplit(request.path)
        if parts.path == "/health":
            health = self.engine.health()
            if not self._health_token(request, parse_qs(parts.query)):
                health = health_summary(health)
            body = json.dumps(without_paths(health), default=str).encode()
            headers = Headers(
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return Response(200, "OK", headers, body)
        if parts.path != SOCKET_PATH:
            return ws.reject(HTTPStatus.NOT_FOUND, f"no such path; the socket is {SOCKET_PATH}\n")
        origins = request.headers.get_all("Origin")
        if len(origins) > 1 or not self.config.origin_allowed(origins[0] if origins else None):
            return ws.reject(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        query = parse_qs(parts.query)
        vsn = query.get("vsn", ["2.0.0"])[0]
        if vsn != "2.0.0":
            return ws.reject(HTTPStatus.BAD_REQUEST, f"only vsn=2.0.0 is spoken, got {vsn}\n")
        token = query.get("token", [None])[0]
        if token is not None and self.config.require_token and token not in self.config.tokens:
            return ws.reject(HTTPStatus.FORBIDDEN, "invalid token\n")
        return None

    def _health_token(self, request: Request, query: dict[str, list[str]]) -> bool:
        """Whether a ``/health`` request presents an ingest or viewer token (``?token=``
        or ``Authorization: Bearer``): only then does it list sensors and rooms."""
        cfg = self.config
        tokens = cfg.tokens | (cfg.viewer_tokens or frozenset())
        given = query.get("token", [])
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = [*given, bearer.strip()]
        return any(t in tokens for t in given)

    async def close(self) -> None:
        """Stop accepting, close every socket (code 1001), wait until their channels close."""
        if self._listener is not None:
            self._listener.close()
            sockets = list(self.sockets)
            for socket in sockets:
                socket.close(CloseCode.GOING_AWAY, "server shutting down")
            await asyncio.gather(*(socket.closed for socket in sockets))
            await self._listener.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_closed(self) -> None:
        """Wait until the server has been closed."""
        if self._listener is not None:
            await self._listener.wait_closed()

    async def __aenter__(self) -> IngestServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def health_summary(health: dict[str, Any]) -> dict[str, Any]:
    """What ``/health`` tells anyone: states and counts, no sensor or room ids.

    ``state`` (the engine's), ``sensors`` (how many) and ``sensor_states`` (how many
    in each state), ``load`` (level), ``storage_lag_s`` and ``storage_state``
    (``ok``, ``error`` after a failed write or compaction, ``closed``, or None
    without a store).
    """
    states: dict[str, int] = {}
    for sensor in health.get("sensors", []):
        states[sensor["state"]] = states.get(sensor["state"], 0) + 1
    storage = health.get("storage") or {}
    storage_state = None
    if storage:
        storage_state = (
            "closed" if storage.get("closed") else "error" if storage.get("last_error") else "ok"
        )
    return {
        "state": health.get("state"),
        "sensors": sum(states.values()),
        "sensor_states": states,
        "load": health.get("load"),
        "storage_lag_s": health.get("storage_lag_s"),
        "storage_state": storage_state,
    }


# An absolute path (POSIX, or Windows with a drive letter) not inside a URL or an id
# such as "s1/hr": its directories say where and whose the data are.
_PATH = re.compile(r"(?<![\w.:/\\-])(?:/|[A-Za-z]:\\)(?:[^\s'\"/\\]+[/\\])*([^\s'\"/\\]*)")


def without_paths(value: Any) -> Any:
    """``value`` (JSON-able) with every absolute path in its strings cut to its last part."""
    if isinstance(value, str):
        return (
            _PATH.sub(lambda m: m.group(1) or "/", value)
            if "/" in value or "\\" in value
            else value
        )
    if isinstance(value, dict):
        return {k: without_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_paths(v) for v in value]
    return value


class serve:
    """Start the endpoint: ``server = await serve(engine)`` or ``async with serve(engine) as s``.

    Parameters
    ----------
    engine
        The engine to register sensors with and ingest into.
    host, port
        Where to listen; ``port=0`` lets the OS pick (see ``server.port``).
    config
        :class:`ServerConfig` (tokens on by default).
    clock
        Time source for the rate limit and the idle timeout.
    rooms
        The room store whose join codes open viewer channels (and whose presence
        they join); without one, viewers need a token as sensors do.
    """

    def __init__(
        self,
        engine: LiveEngine,
        host: str = "127.0.0.1",
        port: int = 0,
        config: ServerConfig | None = None,
        *,
        clock: Clock | None = None,
        rooms: RoomStore | None = None,
    ) -> None:
        self._server = IngestServer(engine, config or ServerConfig(), clock or SystemClock(), rooms)
        self._where = (host, port)

    def __await__(self) -> Generator[Any, None, IngestServer]:
        return self._server.start(*self._where).__await__()

    async def __aenter__(self) -> IngestServer:
        return await self._server.start(*self._where)

    async def __aexit__(self, *exc_info: object) -> None:
        await self._server.close()
