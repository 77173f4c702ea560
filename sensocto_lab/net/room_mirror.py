"""One room of an engine in another process, seen as the parts of an engine a dashboard reads.

A room dashboard (:class:`~sensocto_lab.ui.dashboard.pages.RoomDashboard`) reads
an :class:`~sensocto_lab.engine.engine.Engine` and a
:class:`~sensocto_lab.rooms.RoomStore`: sensors, recent samples for backfill,
attention levels, the bus its :class:`~sensocto_lab.engine.lens.Lens` subscribes to,
``set_views``, and the room's presence. :class:`RoomMirror` offers the same over one
:class:`~sensocto_lab.net.viewer_client.ViewerClient`, so the dashboard runs
unchanged against an engine reached over the WebSocket endpoint:

==========================  ==============================================================
engine part                 from the viewer client
==========================  ==============================================================
``sensors``                 the join reply's sensors, and those announced later
``store.latest``            the join reply's recent samples (backfill)
``attention.level``         the engine's levels, as pushed by the server
``attention.lens_flush_ms`` the standard tier intervals (docs/architecture.md#attention)
``bus``                     the client's bus (``data:{sensor_id}``)
``set_views``               the client's ``set_views`` (one message; only the attributes
                            given to :meth:`RoomMirror.draw_only`, if any)
``remove_viewer``           closes the client (the server removes the viewer)
==========================  ==============================================================

``mirror.rooms`` answers the room store's ``sensors``, ``present`` (and takes
``enter``/``leave``, which the server already did on the join).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from sensocto_lab.engine.bus import Bus
from sensocto_lab.engine.lens import DEFAULT_FLUSH_MS
from sensocto_lab.model import AttentionLevel, Batch, SensorInfo
from sensocto_lab.net.viewer_client import ViewerClient
from sensocto_lab.protocol.viewer import Watcher

__all__ = ["RoomMirror"]


class _Attention:
    """The engine's attention levels of the room, as last pushed."""

    def __init__(self, client: ViewerClient) -> None:
        self._client = client

    def level(self, sensor_id: str) -> AttentionLevel:
        return self._client.levels.get(sensor_id, AttentionLevel.NONE)

    def lens_flush_ms(self, level: AttentionLevel) -> float | None:
        return DEFAULT_FLUSH_MS[AttentionLevel.parse(level)]


class _Recent:
    """The join reply's recent samples, read like ``store.latest``."""

    def __init__(self, client: ViewerClient) -> None:
        recent = client.snapshot.recent if client.snapshot is not None else ()
        self._batches: dict[tuple[str, str], Batch] = {
            (b.sensor_id, b.attribute_id): b for b in recent
        }

    def latest(
        self, sensor_id: str, attribute_id: str, n: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        """The newest ``n`` (default all) samples the join reply carried: ``(ts_ns, values)``."""
        batch = self._batches.get((sensor_id, attribute_id))
        if batch is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        start = 0 if n is None else max(len(batch) - n, 0)
        return batch.ts[start:], batch.values[start:]


class _Rooms:
    """The room store's answers about the mirrored room."""

    def __init__(self, client: ViewerClient) -> None:
        self._client = client

    def sensors(self, room_id: str) -> list[str]:
        return sorted(self._client.sensors)

    def present(self, room_id: str) -> list[Watcher]:
        return list(self._client.present)

    def enter(self, room_id: str, viewer_id: str, user_id: str) -> None:
        """Nothing to do: the server recorded the presence when the client joined."""

    def leave(self, viewer_id: str) -> None:
        """Nothing to do: the server forgets the presence when the client leaves."""


class RoomMirror:
    """The engine-like view of one room that a dashboard session reads (see the module doc).

    Parameters
    ----------
    client
        A joined :class:`ViewerClient` of the room (a ``lens:`` one sends only what
        the session views). The mirror owns it: :meth:`remove_viewer` closes it.
    """

    def __init__(self, client: ViewerClient) -> None:
        self.client = client
        self.attention = _Attention(client)
        self.store = _Recent(client)
        self.rooms = _Rooms(client)
        self._drawn: dict[str, list[str]] = {}

    @property
    def sensors(self) -> Mapping[str, SensorInfo]:
        """The room's sensors by id."""
        return self.client.sensors

    @property
    def bus(self) -> Bus:
        """Where the room's batches arrive, as ``data:{sensor_id}``."""
        return self.client.bus

    def draw_only(self, attributes: Mapping[str, list[str]]) -> None:
        """From now on ask for just these attributes of each sensor (what its card draws)."""
        self._drawn = {s: list(a) for s, a in attributes.items()}

    async def set_views(
        self, viewer_id: str, views: Mapping[str, object], *, replace: bool = False
    ) -> None:
        """Send the session's views (always replacing: the client holds them all)."""
        levels = {s: AttentionLevel.parse(lv) for s, lv in views.items()}
        await self.client.set_views(levels, self._drawn or None)

    async def renew_viewer(self, viewer_id: str) -> None:
        """Nothing to do: the server's lens keeps the viewer alive while the socket is up."""

    async def remove_viewer(self, viewer_id: str) -> None:
        """The session ended: leave the room (the server removes the viewer)."""
        await self.client.close()
