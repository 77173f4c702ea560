"""Viewer channels (``room:{id}``, ``lens:{viewer_id}``): visibility in, batches and news out.

A viewer's visibility events become ``engine.set_views``; the server pushes the room's
batches (or the lens's tier-flushed batches), sensors that appear later and status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from sensocto_lab.engine import topics
from sensocto_lab.engine.bus import Overflow
from sensocto_lab.engine.lens import Lens, LensFlush
from sensocto_lab.errors import (
    AuthError,
    LocalError,
    PeerError,
    ValidationError,
)
from sensocto_lab.model import AttentionLevel, Batch, SensorInfo
from sensocto_lab.net.channels.base import Channel
from sensocto_lab.net.hosting import ChannelHost
from sensocto_lab.protocol import connection as phx
from sensocto_lab.protocol.viewer import (
    RoomSnapshot,
    ViewerParams,
    ViewerState,
    Watcher,
    batch_payload,
    sensor_payload,
    status_payload,
)

__all__ = ["ViewerChannel", "open_viewer"]


class ViewerChannel(Channel):
    """``room:{id}`` / ``lens:{viewer_id}``: visibility in; batches and the room's news out.

    A channel opened with a join code (or by a member) is *restricted*: it may view
    only its room's sensors. One opened with a token alone may view any sensor; its
    room (if any) only decides what the join reply and the ``sensor``/``status``
    pushes describe.
    """

    def __init__(
        self,
        socket: ChannelHost,
        topic: str,
        viewer_id: str,
        *,
        room: str | None = None,
        user_id: str = "guest",
        restricted: bool = False,
    ) -> None:
        super().__init__(socket, topic)
        self.viewer_id = viewer_id
        self.room = room
        self.user_id = user_id
        self.restricted = restricted
        self.state = ViewerState()
        self.lens: Lens | None = None
        self.dropped = 0  # batches not sent to a viewer too slow to take them
        #: The join reply's response (set by the join).
        self.reply: dict[str, Any] = {"viewer_id": viewer_id}
        self._known: dict[str, SensorInfo] = {}  # sensors the viewer has been told of
        self._status: dict[str, Any] | None = None
        #: ``room:`` channels: forwarders of sensors assigned here but recorded elsewhere.
        self._assigned: dict[str, asyncio.Task[None]] = {}

    def sensors(self) -> dict[str, SensorInfo]:
        """The room's sensors: recorded under it, or assigned to it in the room store."""
        if self.room is None:
            return {}
        rooms = self.socket.server.rooms
        assigned: set[str] = set()
        if rooms is not None:
            with contextlib.suppress(ValidationError, LocalError):  # a room it does not know
                assigned = set(rooms.sensors(self.room))
        return {
            sid: info
            for sid, info in self.socket.server.engine.sensors.items()
            if info.room == self.room or sid in assigned
        }

    def _now(
        self, sensors: Mapping[str, SensorInfo]
    ) -> tuple[dict[str, AttentionLevel], list[Watcher]]:
        """The engine's levels of ``sensors`` and who watches the room."""
        attention = self.socket.server.engine.attention
        rooms = self.socket.server.rooms
        present: list[Watcher] = []
        if rooms is not None and self.room is not None:
            with contextlib.suppress(LocalError):
                present = [Watcher(p.viewer_id, p.user_id) for p in rooms.present(self.room)]
        return {sid: attention.level(sid) for sid in sensors}, present

    def snapshot(
        self, name: str, backfill: int, member_rooms: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The join reply: the room's sensors, ``backfill`` recent samples each, status.

        ``member_rooms``: for a member join, the user's rooms (id → name).
        """
        sensors = self.sensors()
        recent: list[Batch] = []
        store = self.socket.server.engine.store
        for sid, info in sorted(sensors.items()) if backfill else ():
            for attr in info.attributes:
                with contextlib.suppress(KeyError, LocalError):
                    ts, values = store.latest(sid, attr, backfill)
                    if len(ts):
                        recent.append(Batch(sid, attr, ts, values))
        levels, present = self._now(sensors)
        self._known, self._status = sensors, status_payload(levels, present)
        snap = RoomSnapshot(
            self.viewer_id, self.room, name, sensors, recent, levels, present, member_rooms or {}
        )
        return snap.to_payload()

    def start(self) -> None:
        """Start pushing: the room's batches (``room:``), its news (channels with a room)."""
        if self.room is None:
            return
        if self.lens is None:
            self.spawn(self.forward(topics.room(self.room)), f"{self.topic}:batches")
            self._forward_assigned(self._known)
        self.spawn(self.watch(), f"{self.topic}:status")

    def _forward_assigned(self, sensors: Mapping[str, SensorInfo]) -> None:
        """Forward the sensors assigned to a ``room:`` channel's room but recorded elsewhere.

        Their batches are published under the room they are recorded in, not on
        ``room:{id}``; each gets its own ``data:{sensor}`` forwarder while assigned.
        """
        if self.lens is not None:
            return
        wanted = {sid for sid, info in sensors.items() if info.room != self.room}
        for sid in [s for s in self._assigned if s not in wanted]:
            task = self._assigned.pop(sid)
            task.cancel()
            self.tasks.remove(task)
        for sid in sorted(wanted - self._assigned.keys()):
            self._assigned[sid] = self.spawn(self.forward(topics.data(sid)), f"{self.topic}:{sid}")

    async def watch(self) -> None:
        """Announce sensors that appear (or change) in the room; push changed status."""
        clock, every = self.socket.server.clock, self.socket.server.config.viewer_status_s
        while True:
            await clock.sleep(every)
            sensors = self.sensors()
            for sid, info in sorted(sensors.items()):
                if self._known.get(sid) != info:
                    self.socket.push(self.topic, "sensor", sensor_payload(info))
            self._known = sensors
            self._forward_assigned(sensors)
            status = status_payload(*self._now(sensors))
            if status != self._status:
                self._status = status
                self.socket.push(self.topic, "status", status)

    def handle(self, push: phx.Pushed) -> None:
        trial = self.state.copy()
        try:
            trial.apply(push.event, push.payload)
            if self.restricted:
                outside = sorted(set(trial.visible) - set(self.sensors()))
                if outside:
                    raise AuthError(
                        f"not in room {self.room}: {', '.join(outside[:3]):.200}",
                        reason="forbidden",
                    )
        except PeerError as exc:
            self.fail(push, exc)
            return
        self.state = trial
        self.socket.pending.append(self._apply(push, trial.levels(), trial.attributes))

    async def _apply(
        self,
        push: phx.Pushed,
        levels: dict[str, AttentionLevel],
        attributes: Mapping[str, tuple[str, ...]],
    ) -> None:
        try:
            if self.lens is not None:
                await self.lens.set_views(levels, attributes or None)
            else:
                await self.socket.server.engine.set_views(self.viewer_id, levels)
        except PeerError as exc:
            self.fail(push, exc)
            return
        self.ok(push, {"levels": {s: lv.label for s, lv in levels.items()}})

    def send_batch(self, batch: Batch) -> None:
        """Push one batch, unless the viewer is too slow to take it.

        Then it is dropped (it is stored anyway): a slow viewer must not make the
        server hoard frames.
        """
        if self.socket.proto.buffered >= self.socket.server.config.viewer_queue:
            self.dropped += 1
            return
        self.socket.push(self.topic, "batch", batch_payload(batch))

    def send_batches(self, flush: LensFlush) -> None:
        for batch in flush.values():
            self.send_batch(batch)

    async def forward(self, topic: str) -> None:
        """Push every batch published on ``topic`` (``room:{id}`` or ``data:{sensor}``)."""
        sub = self.socket.server.engine.bus.subscribe(
            topic,
            maxsize=self.socket.server.config.viewer_queue,
            policy=Overflow.DROP_OLDEST,
        )
        try:
            async for batch in sub:
                self.send_batch(batch)
        finally:
            sub.close()

    async def close(self) -> None:
        await super().close()
        if self.lens is not None:
            await self.lens.close()
        with contextlib.suppress(PeerError, LocalError):
            await self.socket.server.engine.remove_viewer(self.viewer_id)
        rooms = self.socket.server.rooms
        if rooms is not None and self.room is not None:
            rooms.leave(self.viewer_id)


async def open_viewer(
    socket: ChannelHost,
    topic: str,
    params: ViewerParams,
    *,
    trusted: bool,
    peer: str,
    default_viewer: str,
) -> ViewerChannel:
    """Check a viewer's access, then make its channel (a lens starts at once).

    With a room store, a join code opens its room (a lens without ``room`` finds it
    by the code) and restricts the channel to it; without a code a viewer token is
    needed (``trusted``: the join or its socket presents one). A trusted dashboard
    may instead vouch for a logged-in user (``member``): their membership opens the
    room, restricted to it. Without a room store the ingest token rules, as for
    sensors. ``peer`` (the client's address) is whom wrong codes count against;
    ``default_viewer`` the viewer id of a ``room:`` join that names none.

    Raises
    ------
    AuthError, ValidationError
        The join error to reply (``unauthorized``, ``forbidden``, ``invalid_join_code``,
        ``too_many_attempts``).
    """
    kind, _, ident = topic.partition(":")
    server = socket.server
    rooms = server.rooms
    room = ident if kind == "room" else params.room
    name, restricted = "", False
    member_rooms: dict[str, str] = {}
    if rooms is not None and params.code is not None:
        client = f"{peer}/{params.client}" if trusted and params.client else peer
        if room is None:
            found = rooms.find_by_code(params.code, client=client)
        else:
            found = rooms.check_code(room, params.code, client=client)
        room, name, restricted = found.room_id, found.name, True
    elif not trusted:
        raise AuthError(
            "a room's join code (join param code) or a viewer token is needed",
            reason="unauthorized",
        )
    elif rooms is not None and params.member:
        member_rooms = {r.room_id: r.name for r in rooms.rooms(params.user_id)}
        if room is not None and room not in member_rooms:
            raise AuthError(f"{params.user_id} is not a member of room {room}", reason="forbidden")
        name, restricted = member_rooms.get(room or "", ""), True
    elif rooms is not None and room is not None:
        with contextlib.suppress(ValidationError):
            name = rooms.room(room).name
    viewer = ident if kind == "lens" else params.viewer_id or default_viewer
    channel = ViewerChannel(
        socket, topic, viewer, room=room, user_id=params.user_id, restricted=restricted
    )
    if kind == "lens":
        channel.lens = Lens(ident, server.engine, channel.send_batches, clock=server.clock)
        await channel.lens.start()
    if rooms is not None and room is not None:
        with contextlib.suppress(ValidationError):
            rooms.enter(room, viewer, params.user_id)
    channel.reply = channel.snapshot(name, params.backfill, member_rooms)
    return channel
