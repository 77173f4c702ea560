"""What a channel needs of its socket, and what a socket needs of its server.

The channels (:mod:`sensocto_lab.net.channels`) are written against :class:`ChannelHost`,
which :class:`~sensocto_lab.net.socket.Socket` implements; a socket is written against
:class:`EndpointServer`, which :class:`~sensocto_lab.net.server.IngestServer` implements.
So channels, socket and server import each other's interfaces, never each other.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from sensocto_lab.clock import Clock
from sensocto_lab.engine.contracts import LiveEngine
from sensocto_lab.errors import SensoctoError
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.ledger import SensorLedger
from sensocto_lab.protocol import connection as phx
from sensocto_lab.rooms import RoomStore

__all__ = ["ChannelHost", "EndpointServer"]


class EndpointServer(Protocol):
    """The server a socket belongs to."""

    engine: LiveEngine
    config: ServerConfig
    clock: Clock
    rooms: RoomStore | None
    #: Shared by the sensor channels for exactly-once ingest.
    ledger: SensorLedger
    #: Open sockets (each adds itself on connect and removes itself once closed).
    sockets: set[Any]

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the server waits for when it closes."""
        ...

    def process_request(self, ws: ServerProtocol, request: Request) -> Response | None:
        """The answer to a request that opens no socket, or ``None`` to go on."""
        ...


class ChannelHost(Protocol):
    """The socket a channel is joined on."""

    server: EndpointServer
    #: The Phoenix connection: replies and pushes are queued on it.
    proto: phx.ServerConnection
    #: Awaitables the socket runs, in order, before it reads the next frame.
    pending: list[Any]

    def wake(self) -> None:
        """Write what was queued on :attr:`proto` (once per loop turn)."""
        ...

    def push(self, topic: str, event: str, payload: dict[str, Any]) -> None:
        """Push ``event`` with ``payload`` to the client on ``topic``."""
        ...

    def close_channel(self, topic: str, error: SensoctoError | None = None) -> None:
        """Close the channel of ``topic`` (with ``phx_error`` and ``error``, if given)."""
        ...
