"""Room dashboards of an engine in another process, reached over its WebSocket endpoint.

:class:`RemoteContext` is the dashboards' :class:`~sensocto_lab.widgets.panel_dashboard.Context`
when the engine runs elsewhere (``sensocto-lab serve`` on another machine or port):

- a session that presents a room's join code gets its own ``lens:{viewer_id}``
  channel (a :class:`~sensocto_lab.live.viewer_client.ViewerClient` joined with that
  code), so the engine checks the code, counts the session's attention under its
  viewer id and sends only what the session views, by tier;
- the dashboard reads the room through a :class:`~sensocto_lab.live.room_mirror.RoomMirror`
  of that client, exactly as it reads an engine in this process;
- the lobby finds a room by its code with a short ``lens:`` join that names no room.

Membership by login (``panel serve`` auth) needs the room store, which lives with the
engine: here every session presents the code. With ``token`` (a viewer token of the
engine), the dashboard relays each browser's address, so one person guessing codes
does not lock the others out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.errors import LocalError
from sensocto_lab.live.room_mirror import RoomMirror
from sensocto_lab.live.rooms import Room, normalize_code
from sensocto_lab.live.viewer_client import ViewerClient, socket_url
from sensocto_lab.widgets.panel_dashboard import RoomDashboard, RoomSession

__all__ = ["RemoteContext"]


@dataclass
class RemoteContext:
    """What the dashboard sessions of one server share: an engine reached over the wire.

    Attributes
    ----------
    url
        The engine's endpoint: ``ws://host:port`` (the socket path is added) or the
        full socket URL.
    token
        A viewer token of the engine (optional; see the module doc).
    clock, max_cards, lens_options, dashboards
        As in :class:`~sensocto_lab.widgets.panel_dashboard.DashboardContext`.
    connect_timeout_s
        How long a session waits for the engine before the page says it is out of reach.
    backfill
        Recent samples per (sensor, attribute) each session's cards start from.
    """

    url: str
    token: str | None = None
    clock: Clock = field(default_factory=SystemClock)
    max_cards: int = 200
    lens_options: dict[str, Any] = field(default_factory=dict)
    dashboards: dict[str, RoomDashboard] = field(default_factory=dict)
    connect_timeout_s: float = 10.0
    backfill: int = 2000

    def __post_init__(self) -> None:
        self.url = socket_url(self.url)

    def member(self, room_id: str, user: str | None) -> bool:
        """Always False: membership lives with the engine's room store; codes work."""
        return False

    def rooms_of(self, user: str) -> list[Room]:
        """None known here (see :meth:`member`)."""
        return []

    async def find_room(self, code: str, *, client: str) -> Room:
        viewer = self._viewer(f"lens:lobby-{uuid.uuid4().hex[:16]}", code, client)
        try:
            await self._connect(viewer)
        finally:
            await viewer.close()
        return _room(viewer, code)

    async def open_room(
        self, room_id: str, code: str, user: str | None, *, client: str, viewer_id: str
    ) -> RoomSession:
        viewer = self._viewer(
            f"lens:{viewer_id}",
            code,
            client,
            room=room_id,
            user_id=user or "guest",
            backfill=self.backfill,
        )
        try:
            await self._connect(viewer)
        except BaseException:
            await viewer.close()
            raise
        mirror = RoomMirror(viewer)
        return RoomSession(_room(viewer, code), mirror, mirror.rooms, mirror.draw_only)

    def _viewer(self, topic: str, code: str, client: str, **params: Any) -> ViewerClient:
        """A viewer client of ``topic`` that presents ``code`` for ``client``."""
        return ViewerClient(
            self.url, topic, code=code, token=self.token, client=client, clock=self.clock, **params
        )

    async def _connect(self, viewer: ViewerClient) -> None:
        try:
            await viewer.connect(timeout=self.connect_timeout_s)
        except TimeoutError:
            raise LocalError(
                "the engine is out of reach; try again in a moment", reason="unreachable"
            ) from None


def _room(viewer: ViewerClient, code: str) -> Room:
    """The room a joined client's code opened (the code is the one typed, now known good)."""
    snapshot = viewer.snapshot
    assert snapshot is not None and snapshot.room_id is not None  # joined with a code
    return Room(snapshot.room_id, snapshot.name or snapshot.room_id, normalize_code(code), 0)
