"""Room dashboards of an engine in another process, reached over its WebSocket endpoint.

:class:`RemoteContext` is the dashboards' :class:`~sensocto_lab.ui.dashboard.pages.Context`
when the engine runs elsewhere (``sensocto-lab serve`` on another machine or port):

- a session that presents a room's join code gets its own ``lens:{viewer_id}``
  channel (a :class:`~sensocto_lab.net.viewer_client.ViewerClient` joined with that
  code), so the engine checks the code, counts the session's attention under its
  viewer id and sends only what the session views, by tier;
- the dashboard reads the room through a :class:`~sensocto_lab.net.room_mirror.RoomMirror`
  of that client, exactly as it reads an engine in this process;
- the lobby finds a room by its code with a short ``lens:`` join that names no room.

With ``token`` (a viewer token of the engine) the dashboard is trusted: it relays each
browser's address, so one person guessing codes does not lock the others out, and it
vouches for users logged in by ``panel serve`` auth, so members open their rooms
without the code (the engine's room store decides who is a member; a ``member`` join,
see :class:`~sensocto_lab.protocol.viewer.ViewerParams`). Without a token every session
presents the code.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.errors import LocalError
from sensocto_lab.net.room_mirror import RoomMirror
from sensocto_lab.net.viewer_client import ViewerClient, socket_url
from sensocto_lab.protocol.viewer import RoomSnapshot
from sensocto_lab.rooms import Room, normalize_code
from sensocto_lab.ui.dashboard.context import RoomSession
from sensocto_lab.ui.dashboard.room import RoomDashboard

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
        As in :class:`~sensocto_lab.ui.dashboard.pages.DashboardContext`.
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

    async def member(self, room_id: str, user: str | None) -> bool:
        """Whether the engine's room store lists ``user`` in the room (never without a token)."""
        return room_id in await self._member_rooms(user)

    async def rooms_of(self, user: str) -> list[Room]:
        """The rooms the engine's room store lists ``user`` in (none without a token)."""
        return [Room(r, name, "", 0) for r, name in (await self._member_rooms(user)).items()]

    async def _member_rooms(self, user: str | None) -> dict[str, str]:
        """``user``'s rooms (id → name), from a short member join that opens none."""
        if self.token is None or not user:
            return {}
        viewer = self._viewer(_lobby_topic(), None, None, user_id=user, member=True)
        snapshot = await self._join_once(viewer)
        return dict(snapshot.member_rooms)

    def can_control(self, room_id: str, user: str | None) -> bool:
        """Never: the engine's endpoint carries no experiment calls (a plain viewer)."""
        return False

    def room_counts(self, room_id: str) -> tuple[int, int] | None:
        """Not known here (the lobby lists the rooms without counts)."""
        return None

    def recording_status(self) -> dict[str, Any] | None:
        """Not known here."""
        return None

    def phases(self, room_id: str) -> Any:
        """Not sent over the wire: the phase circle stays empty."""
        return None

    async def find_room(self, code: str, *, client: str) -> Room:
        snapshot = await self._join_once(self._viewer(_lobby_topic(), code, client))
        return _room(snapshot, code)

    async def open_room(
        self, room_id: str, code: str, user: str | None, *, client: str, viewer_id: str
    ) -> RoomSession:
        # a logged-in user without a code: their membership is asked for instead
        by_member = not code and user is not None and self.token is not None
        viewer = self._viewer(
            f"lens:{viewer_id}",
            None if by_member else code,
            client,
            room=room_id,
            user_id=user or "guest",
            backfill=self.backfill,
            member=by_member,
        )
        try:
            await self._connect(viewer)
        except BaseException:
            await viewer.close()
            raise
        mirror = RoomMirror(viewer)
        assert viewer.snapshot is not None  # joined
        room = _room(viewer.snapshot, None if by_member else code)
        return RoomSession(room, mirror, mirror.rooms, mirror.draw_only)

    def _viewer(
        self, topic: str, code: str | None, client: str | None, **params: Any
    ) -> ViewerClient:
        """A viewer client of ``topic`` that presents ``code`` for ``client``."""
        return ViewerClient(
            self.url, topic, code=code, token=self.token, client=client, clock=self.clock, **params
        )

    async def _join_once(self, viewer: ViewerClient) -> RoomSnapshot:
        """Join, take the reply and leave (a lookup that opens nothing)."""
        try:
            await self._connect(viewer)
        finally:
            await viewer.close()
        assert viewer.snapshot is not None  # joined
        return viewer.snapshot

    async def _connect(self, viewer: ViewerClient) -> None:
        try:
            await viewer.connect(timeout=self.connect_timeout_s)
        except TimeoutError:
            raise LocalError(
                "the engine is out of reach; try again in a moment", reason="unreachable"
            ) from None


def _lobby_topic() -> str:
    """A fresh ``lens:`` topic for a lookup that opens no room."""
    return f"lens:lobby-{uuid.uuid4().hex[:16]}"


def _room(snapshot: RoomSnapshot, code: str | None) -> Room:
    """The room a join opened; ``code`` is the one typed, now known good (``None``: a member)."""
    assert snapshot.room_id is not None  # joined with a code, or by a member
    join_code = "" if code is None else normalize_code(code)
    return Room(snapshot.room_id, snapshot.name or snapshot.room_id, join_code, 0)
