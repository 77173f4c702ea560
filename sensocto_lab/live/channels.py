"""The channels of the WebSocket endpoint: one handler object per joined topic.

:class:`SensorChannel` (``sensor:{id}``, ``sensocto:sensor:{id}``) validates pushes as
they arrive, ingests them in order and replies once they are stored;
:class:`ConnectorChannel` (``sensocto:connector:{id}``) answers pings;
:class:`ViewerChannel` (``room:{id}``, ``lens:{viewer_id}``) turns visibility into
``engine.set_views`` and pushes batches and the room's news. A socket of
:mod:`sensocto_lab.live.server` checks access, makes the channel on a join and hands it
the pushes of its topic; the channel replies and pushes through that socket. What they
do on the wire is told in the server's module docstring and ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from sensocto_lab.errors import (
    AuthError,
    LimitExceeded,
    LocalError,
    PeerError,
    SensoctoError,
    SensorFailedError,
    ValidationError,
)
from sensocto_lab.live.bus import Overflow
from sensocto_lab.live.lens import Lens, LensFlush
from sensocto_lab.model import AttentionLevel, Batch, SensorInfo
from sensocto_lab.protocol import connection as phx
from sensocto_lab.protocol.binary import BINARY_EVENT, decode_batch
from sensocto_lab.protocol.sensor import (
    BatchError,
    Sample,
    attribute_from_update,
    batches_from_measurements,
    merge,
    sample_from_measurement,
)
from sensocto_lab.protocol.viewer import (
    RoomSnapshot,
    ViewerState,
    Watcher,
    batch_payload,
    sensor_payload,
    status_payload,
)

if TYPE_CHECKING:
    from sensocto_lab.live.server import _Socket

__all__ = ["Channel", "ConnectorChannel", "SensorChannel", "SensorLedger", "ViewerChannel"]

#: Most queued pushes of one channel merged into one round of ingests.
_MAX_GROUP = 1024

#: Below every timestamp: "nothing stored yet".
_NEVER = -(2**63)


class _Backlog:
    """Validated pushes of a sensor channel not yet stored, oldest first.

    One producer (the socket) and one consumer (the channel's ingest task): a deque
    and a future to wake whoever waits, instead of :class:`asyncio.Queue`, whose
    bookkeeping per item (getters, putters, unfinished count) was a measurable part
    of a one-sample push.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: collections.deque[tuple[phx.Pushed, Any]] = collections.deque()
        self.busy = False  # the consumer is storing what it took
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: tuple[phx.Pushed, Any]) -> bool:
        """Append ``item``; True when the backlog is now full (await :meth:`room`)."""
        self.items.append(item)
        self._wake()
        return len(self.items) >= self.capacity

    async def next(self) -> collections.deque[tuple[phx.Pushed, Any]]:
        """(Consumer) wait for items; take some from the returned deque, then :meth:`taken`."""
        self.busy = False
        self._wake()
        while not self.items:
            await self._wait()
        self.busy = True
        return self.items

    def taken(self) -> None:
        """(Consumer) items were taken: a full backlog may have room."""
        self._wake()

    async def room(self) -> None:
        """(Producer) wait until the backlog is below its capacity."""
        while len(self.items) >= self.capacity:
            await self._wait()

    async def drained(self) -> None:
        """Wait until every item was taken and the consumer is done storing it."""
        while self.items or self.busy:
            await self._wait()

    async def _wait(self) -> None:
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._waiter)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Channel:
    """One joined channel on a socket; subclasses handle its pushes."""

    def __init__(self, socket: _Socket, topic: str) -> None:
        self.socket = socket
        self.topic = topic
        self.errors = 0
        self.tasks: list[asyncio.Task[None]] = []

    def handle(self, push: phx.Pushed) -> None:
        """Answer a push (synchronously, or by queueing work for the channel's tasks)."""
        raise NotImplementedError

    def fail(self, push: phx.Pushed, error: PeerError, **extra: Any) -> None:
        """Error reply; closes the channel once it has erred too often in a row."""
        self.socket.proto.reply_error(push, error, **extra)
        self.errors += 1
        if self.errors >= self.socket.server.config.max_channel_errors:
            self.socket.close_channel(
                self.topic,
                LimitExceeded(f"{self.errors} errors in a row; rejoin", reason="too_many_errors"),
            )
        self.socket.wake()

    def ok(self, push: phx.Pushed, response: dict[str, Any] | None = None) -> None:
        self.errors = 0
        self.socket.proto.reply(push, "ok", response)
        self.socket.wake()

    def spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        """Run ``coro`` as one of this channel's tasks (cancelled when it closes)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.append(task)
        return task

    async def close(self) -> None:
        """Stop this channel's tasks; called once when it closes or the socket goes."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class SensorLedger:
    """What the sensor channels of one server share per sensor, for exactly-once ingest.

    The newest stored timestamp per attribute (every channel of the sensor keeps it
    current), and a turn: an exactly-once channel dedupes and stores while it holds
    its sensor's turn. A connector that reconnects while its old connection is still
    storing would otherwise dedupe its resend against a store the old connection has
    not finished writing to, and store those samples twice.
    """

    def __init__(self) -> None:
        #: Newest stored timestamp (ns) per sensor and attribute.
        self.newest: collections.defaultdict[str, dict[str, int]] = collections.defaultdict(dict)
        #: Channels waiting for each sensor's turn now.
        self.waiting: collections.Counter[str] = collections.Counter()
        self._turns: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )

    @contextlib.asynccontextmanager
    async def turn(self, sensor_id: str) -> AsyncIterator[None]:
        """Hold ``sensor_id``'s turn for the block (first come, first served)."""
        lock = self._turns[sensor_id]
        self.waiting[sensor_id] += 1
        try:
            await lock.acquire()
        finally:
            self.waiting[sensor_id] -= 1
        try:
            yield
        finally:
            lock.release()


class SensorChannel(Channel):
    """``sensor:{id}``: validate pushes, ingest them in order, reply once stored."""

    def __init__(self, socket: _Socket, topic: str, info: SensorInfo, exactly_once: bool) -> None:
        super().__init__(socket, topic)
        self.info = info
        self.exactly_once = exactly_once
        #: Newest stored timestamp per attribute, shared with the sensor's other channels.
        self.newest = socket.server.ledger.newest[info.sensor_id]
        self.backlog = _Backlog(socket.server.config.channel_queue)
        self.closing = False

    def handle(self, push: phx.Pushed) -> None:
        if push.event == "ping":
            self.ok(push, push.payload if isinstance(push.payload, dict) else {})
            return
        try:
            work: Any
            if push.event == "measurement":
                work = sample_from_measurement(self.info, push.payload)  # no list: see _ingest
            elif push.event == "measurements_batch":
                work = batches_from_measurements(self.info, push.payload)
            elif push.event == BINARY_EVENT:
                work = [self._binary(push.payload)]
            elif push.event == "update_attributes":
                work = attribute_from_update(push.payload)
            else:
                raise ValidationError(
                    f"sensor channels take measurement, measurements_batch, {BINARY_EVENT}, "
                    f"update_attributes and ping; got {push.event!r:.40}",
                    reason="invalid_event",
                )
        except BatchError as exc:
            self.fail(push, exc, failed_count=exc.failed_count)
            return
        except PeerError as exc:
            self.fail(push, exc)
            return
        if self.backlog.put((push, work)):  # full: the socket stops reading until it has room
            self.socket.pending.append(self.backlog.room())

    def _binary(self, payload: Any) -> Batch:
        if not isinstance(payload, bytes):
            raise ValidationError(
                f"{BINARY_EVENT} must be a binary frame", reason="invalid_payload"
            )
        block = decode_batch(payload)
        attr = self.info.attributes.get(block.attribute_id)
        if attr is None:
            raise ValidationError(
                f"attribute {block.attribute_id!r:.40} is not registered on {self.info.sensor_id}",
                reason="invalid_attribute_id",
            )
        batch = Batch(self.info.sensor_id, block.attribute_id, block.ts, block.values)
        return batch.validated(attr.kind)

    async def run(self) -> None:
        """Ingest queued pushes in arrival order; reply to each once it is stored.

        Pushes that queued up while the previous ones were stored are merged into as
        few ``engine.ingest`` calls as possible (see :func:`merge`), so a connector
        sending one sample per frame does not pay one storage write per sample.
        """
        backlog = self.backlog
        while True:
            items = await backlog.next()
            group = [items.popleft()]
            while group[-1][0].event != "update_attributes" and items and len(group) < _MAX_GROUP:
                group.append(items.popleft())
            update = group.pop() if group[-1][0].event == "update_attributes" else None
            backlog.taken()
            if group:
                await self._ingest(group)
            if update is not None:
                await self._update(*update)

    async def _ingest(self, group: list[tuple[phx.Pushed, Any]]) -> None:
        if not self.exactly_once:
            await self._store(group)
            return
        async with self.socket.server.ledger.turn(self.info.sensor_id):
            await self._store(group)

    async def _store(self, group: list[tuple[phx.Pushed, Any]]) -> None:
        """Store a group of pushes (deduplicated on exactly-once channels) and reply."""
        items: list[Sample | Batch] = []
        owner: list[int] = []
        duplicates = [0] * len(group)
        if self.exactly_once:
            await self._learn_newest(group)
        running = dict(self.newest)
        for k, (_, work) in enumerate(group):
            # a one-sample push queues its Sample alone: a list per push, kept until
            # stored, made the garbage collector's full passes frequent
            for item in (work,) if type(work) is Sample else work:
                if self.exactly_once:
                    fresh = self._fresh(item, running)
                    duplicates[k] += _size(item) - (0 if fresh is None else _size(fresh))
                    if fresh is None:
                        continue
                    item = fresh
                items.append(item)
                owner.append(k)
        chunks, errors = merge(self.info, items)
        failed: dict[int, SensoctoError] = {owner[i]: e for i, e in errors.items()}
        stored = [0] * len(group)
        for chunk in chunks:
            try:
                stamped = await self.socket.server.engine.ingest(chunk.batch)
            except (PeerError, LocalError) as exc:
                for i in chunk.members:
                    failed.setdefault(owner[i], exc)
                continue
            for i, n in chunk.members.items():
                stored[owner[i]] += n
            attr = chunk.batch.attribute_id
            if attr in self.newest:  # learned from the store: keep it current
                self.newest[attr] = max(self.newest[attr], int(stamped.ts[-1]))
        if not failed:  # the usual round: every push stored, one wake-up for all replies
            self.errors = 0
            reply = self.socket.proto.reply
            for k, (push, _) in enumerate(group):
                reply(push, "ok", {"stored": stored[k], "duplicates": duplicates[k]})
            self.socket.wake()
            return
        for k, (push, _) in enumerate(group):
            error = failed.get(k)
            if error is None:
                self.ok(push, {"stored": stored[k], "duplicates": duplicates[k]})
            elif isinstance(error, PeerError):
                self.fail(push, error)
            else:
                self.socket.proto.reply_error(push, error)
                if isinstance(error, SensorFailedError):
                    self.socket.close_channel(self.topic, error)
                self.socket.wake()

    async def _update(self, push: phx.Pushed, work: tuple[str, Any]) -> None:
        engine = self.socket.server.engine
        action, what = work
        try:
            if action == "register":
                await engine.register_attribute(self.info.sensor_id, what)
                self.info = self.info.with_attribute(what)
            else:
                await engine.unregister_attribute(self.info.sensor_id, what)
                self.info = self.info.without_attribute(what)
        except PeerError as exc:
            self.fail(push, exc)
            return
        self.ok(push, {"attributes": sorted(self.info.attributes)})

    def _fresh(self, item: Sample | Batch, running: dict[str, int]) -> Sample | Batch | None:
        """``item`` without samples already stored (exactly-once channels only)."""
        attr = item.attribute_id
        newest = running[attr]
        if isinstance(item, Sample):
            keep: Sample | Batch | None = item if item.ts_ns > newest else None
        else:
            mask = item.ts > newest
            if mask.all():
                keep = item
            elif mask.any():
                keep = dataclasses.replace(item, ts=item.ts[mask], values=item.values[mask])
            else:
                keep = None
        if keep is not None:
            newest = keep.ts_ns if isinstance(keep, Sample) else int(keep.ts[-1])
        running[attr] = newest
        return keep

    async def _learn_newest(self, group: list[tuple[phx.Pushed, Any]]) -> None:
        """Fill :attr:`newest` for attributes not learned yet (by any channel of the sensor).

        Asked of the store once per attribute and server: ``last_ts`` covers the rings
        and the WAL/Parquet tiers, so after a clean restart on the same data dir a
        connector's resend of its unacknowledged buffer is still recognised. It may
        read Parquet footers, so it runs off the event loop.
        """
        store = self.socket.server.engine.store
        attrs = {
            item.attribute_id
            for _, work in group
            for item in ((work,) if type(work) is Sample else work)
        }
        for attr in attrs:
            if attr not in self.newest:
                last = await asyncio.to_thread(store.last_ts, self.info.sensor_id, attr)
                self.newest[attr] = _NEVER if last is None else last

    async def forward_backpressure(self) -> None:
        engine = self.socket.server.engine
        sub = engine.bus.subscribe(
            f"signal:{self.info.sensor_id}", maxsize=8, policy=Overflow.DROP_OLDEST
        )
        try:
            self.socket.push(self.topic, "backpressure_config", self._backpressure())
            async for config in sub:
                self.socket.push(self.topic, "backpressure_config", config.to_payload())
        finally:
            sub.close()

    def _backpressure(self) -> dict[str, Any]:
        payload: dict[str, Any] = self.socket.server.engine.attention.backpressure(
            self.info.sensor_id
        ).to_payload()
        return payload

    async def close(self) -> None:
        # What was validated is still ingested (a connector that does not wait for
        # replies must not lose it); an exactly-once client's resend is then deduped.
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, LocalError):
            await asyncio.wait_for(self.backlog.drained(), timeout=10.0)
        await super().close()


class ConnectorChannel(Channel):
    """``sensocto:connector:{id}``: a connector announcing itself; answers ``ping``."""

    def handle(self, push: phx.Pushed) -> None:
        if push.event == "ping":
            self.ok(push, push.payload if isinstance(push.payload, dict) else {})
        else:
            self.fail(
                push,
                ValidationError(
                    f"connector channels take ping; join sensocto:sensor:{{id}} to send data, "
                    f"got {push.event!r:.40}",
                    reason="invalid_event",
                ),
            )


class ViewerChannel(Channel):
    """``room:{id}`` / ``lens:{viewer_id}``: visibility in; batches and the room's news out.

    A channel opened with a join code (or by a member) is *restricted*: it may view
    only its room's sensors. One opened with a token alone may view any sensor; its
    room (if any) only decides what the join reply and the ``sensor``/``status``
    pushes describe.
    """

    def __init__(
        self,
        socket: _Socket,
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
            self.spawn(self.forward(f"room:{self.room}"), f"{self.topic}:batches")
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
            self._assigned[sid] = self.spawn(self.forward(f"data:{sid}"), f"{self.topic}:{sid}")

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


def _size(item: Sample | Batch) -> int:
    return 1 if isinstance(item, Sample) else len(item)
