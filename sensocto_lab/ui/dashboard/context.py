"""What a room dashboard is given: a session's way into a room, and the server's context.

:class:`RoomSession` is one session's access, once checked; :class:`Context` is what
every session of one dashboard server shares, in this process (:mod:`.pages`) or
reaching an engine elsewhere (:mod:`.remote`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sensocto_lab.clock import Clock
from sensocto_lab.engine import topics
from sensocto_lab.engine.contracts import EngineView, Experimenting
from sensocto_lab.events import Event
from sensocto_lab.model import SensorInfo
from sensocto_lab.rooms import Room
from sensocto_lab.ui.dashboard.vitals import natural_key

__all__ = ["Context", "RoomSession", "participant_of", "recorded_events", "room_sensors"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoomSession:
    """One session's way into a room, once its access was checked.

    Attributes
    ----------
    room
        The room shown.
    engine
        What the dashboard reads of the engine: ``sensors``, ``store.latest``,
        ``attention.level`` / ``lens_flush_ms``, and what its lens needs (``bus``,
        ``set_views``, ``renew_viewer``, ``remove_viewer``). The engine itself, or a
        :class:`~sensocto_lab.net.room_mirror.RoomMirror` of one elsewhere.
    rooms
        What it reads of the room store: ``sensors(room_id)`` (assigned sensors),
        ``enter``, ``leave`` and ``present(room_id)``.
    draws
        Told once which attributes each shown sensor's card draws, so a remote
        engine sends only those; ``None`` when nobody needs to know.
    experiment
        The engine's experiment calls, for a session that may control the room
        (``None``: a viewer; the controls are not built).
    user
        Who is watching (an authenticated user), or ``None`` for a code holder.
    """

    room: Room
    engine: EngineView
    rooms: Any
    draws: Callable[[Mapping[str, list[str]]], None] | None = None
    experiment: Experimenting | None = None
    user: str | None = None


class Context(Protocol):
    """What the pages and dashboards of one server share, wherever the engine runs."""

    clock: Clock
    max_cards: int
    lens_options: dict[str, Any]
    #: the open :class:`~sensocto_lab.ui.dashboard.room.RoomDashboard` s by viewer id
    dashboards: dict[str, Any]

    async def member(self, room_id: str, user: str | None) -> bool:
        """Whether an authenticated ``user`` is a member of the room (needs no code)."""
        ...

    async def rooms_of(self, user: str) -> list[Room]:
        """The rooms ``user`` is a member of (for the lobby)."""
        ...

    def room_counts(self, room_id: str) -> tuple[int, int] | None:
        """Live ``(sensors, viewers)`` of a room for the lobby, if known here."""
        ...

    async def find_room(self, code: str, *, client: str) -> Room:
        """The room a join code opens (guessing limited per ``client``)."""
        ...

    async def open_room(
        self, room_id: str, code: str, user: str | None, *, client: str, viewer_id: str
    ) -> RoomSession:
        """Check the session's access to the room and give it its way in.

        Raises a :class:`~sensocto_lab.errors.SensoctoError` whose ``detail`` the page
        shows (a wrong code, too many attempts, an engine out of reach).
        """
        ...

    def can_control(self, room_id: str, user: str | None) -> bool:
        """Whether ``user`` (``None``: a code holder) may mark and set conditions now."""
        ...

    def recording_status(self) -> dict[str, Any] | None:
        """Duration, samples stored, storage lag, free disk, dropped (``None``: unknown)."""
        ...

    def phases(self, room_id: str) -> Any:
        """The room's newest synchrony estimate (``t_ns``, ``sensors``, ``phases``), or ``None``."""
        ...


def room_sensors(session: RoomSession) -> list[SensorInfo]:
    """The engine's sensors shown in a session's room, in natural order (2 before 10).

    Assigned to the room, or recorded under it; the room's synchrony sensor is not
    among them (it has its own panel).
    """
    room_id = session.room.room_id
    assigned = set(session.rooms.sensors(room_id))
    sync_id = topics.sync_sensor(room_id)
    shown = [
        info
        for sid, info in session.engine.sensors.items()
        if sid != sync_id and (sid in assigned or info.room == room_id)
    ]
    return sorted(shown, key=lambda info: natural_key(info.sensor_id))


def participant_of(engine: EngineView, sensor_id: str) -> str | None:
    """Who wears ``sensor_id`` (the session's participant id), or ``None``."""
    session = getattr(engine.store, "session", None)
    try:
        return session.participant_of(sensor_id) if session is not None else None
    except Exception:  # a store without sessions
        return None


def recorded_events(store: Any, room_id: str) -> list[Event]:
    """The room's recorded events (running conditions folded), if the store keeps them."""
    read = getattr(store, "events", None)
    if read is None:
        return []
    try:
        frame = read(room=room_id)
    except Exception:
        _log.warning("room %s: recorded events unreadable", room_id, exc_info=True)
        return []
    out = []
    for row in frame.itertuples(index=False):
        out.append(Event(
            int(row.onset.value), str(row.label), row.kind, float(row.duration), row.room,
            row.sensor, row.participant, row.value, row.source,
        ))  # fmt: skip
    return out
