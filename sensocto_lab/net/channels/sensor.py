"""Sensor and connector channels: validate pushes, ingest them in order, reply once stored.

:class:`SensorChannel` (``sensor:{id}``, ``sensocto:sensor:{id}``) validates pushes as
they arrive, ingests them in order and replies once they are stored;
:class:`ConnectorChannel` (``sensocto:connector:{id}``) answers pings. What they do on
the wire is told in ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from typing import Any

from sensocto_lab.clock import TokenBucket
from sensocto_lab.engine import topics
from sensocto_lab.engine.bus import Overflow
from sensocto_lab.errors import (
    LimitExceeded,
    LocalError,
    PeerError,
    SensoctoError,
    SensorFailedError,
    ValidationError,
)
from sensocto_lab.events import Event
from sensocto_lab.model import Batch, SensorInfo
from sensocto_lab.net.channels.base import Channel
from sensocto_lab.net.hosting import ChannelHost
from sensocto_lab.protocol import connection as phx
from sensocto_lab.protocol.binary import BINARY_EVENT, decode_batch
from sensocto_lab.protocol.chunks import merge
from sensocto_lab.protocol.markers import MARKER_EVENT, event_from_marker
from sensocto_lab.protocol.sensor import (
    BatchError,
    Sample,
    attribute_from_update,
    batches_from_measurements,
    sample_from_measurement,
)

__all__ = ["ConnectorChannel", "SensorChannel"]

log = logging.getLogger(__name__)

#: Pushes handled one at a time, in order with the data around them (not merged).
_ALONE = frozenset({"update_attributes", MARKER_EVENT})

#: Most queued pushes of one channel merged into one round of ingests.
_MAX_GROUP = 1024

#: The reply to a push that hit a bug of ours (logged); the channel stays.
INTERNAL_ERROR = LocalError(
    "the server failed handling this push (a bug, logged there); it was not stored",
    reason="internal_error",
)

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


class SensorChannel(Channel):
    """``sensor:{id}``: validate pushes, ingest them in order, reply once stored."""

    def __init__(
        self, socket: ChannelHost, topic: str, info: SensorInfo, exactly_once: bool
    ) -> None:
        super().__init__(socket, topic)
        self.info = info
        self.exactly_once = exactly_once
        #: Newest stored timestamp per attribute, shared with the sensor's other channels.
        self.newest = socket.server.ledger.newest[info.sensor_id]
        cfg = socket.server.config
        self.backlog = _Backlog(cfg.channel_queue)
        self.marker_bucket = TokenBucket(
            cfg.marker_rate_per_s, cfg.marker_burst, socket.server.clock
        )
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
            elif push.event == MARKER_EVENT:
                work = self._marker(push.payload)
            else:
                raise ValidationError(
                    f"sensor channels take measurement, measurements_batch, {BINARY_EVENT}, "
                    f"update_attributes, marker and ping; got {push.event!r:.40}",
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

    def _marker(self, payload: Any) -> Event:
        """A device's marker, refused past the channel's marker rate (data keeps flowing)."""
        if not self.marker_bucket.take():
            cfg = self.socket.server.config
            raise LimitExceeded(
                f"more than {cfg.marker_rate_per_s:g} markers a second on one sensor; "
                "this one was not recorded",
                reason="rate_limited",
            )
        return event_from_marker(self.info, payload)

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
            first = group[0][0].event
            if first == MARKER_EVENT:  # consecutive markers: one record, one WAL write
                while items and items[0][0].event == MARKER_EVENT and len(group) < _MAX_GROUP:
                    group.append(items.popleft())
                backlog.taken()
                await self._record_markers(group)
                continue
            while group[-1][0].event not in _ALONE and items and len(group) < _MAX_GROUP:
                group.append(items.popleft())
            update = group.pop() if group[-1][0].event in _ALONE else None
            if update is not None and update[0].event == MARKER_EVENT:
                items.appendleft(update)  # starts the next round of markers
                update = None
            backlog.taken()
            if group:
                try:
                    await self._ingest(group)
                except Exception:  # a bug: these pushes are refused, the channel goes on
                    log.exception("%s failed storing %d pushes", self.topic, len(group))
                    for push, _ in group:
                        self.socket.proto.reply_error(push, INTERNAL_ERROR)
                    self.socket.wake()
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

    async def _record_markers(self, group: list[tuple[phx.Pushed, Any]]) -> None:
        """Record consecutive (already validated) markers as one call, then reply to each."""
        try:
            stored = await self.socket.server.engine.record_events([e for _, e in group])
        except (PeerError, LocalError) as exc:
            for push, _ in group:
                self.socket.proto.reply_error(push, exc)
            self.socket.wake()
            return
        self.errors = 0
        reply = self.socket.proto.reply
        for (push, _), event in zip(group, stored, strict=True):
            reply(push, "ok", {"stored": 1, "onset_ns": event.onset_ns})
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
            topics.signal(self.info.sensor_id), maxsize=8, policy=Overflow.DROP_OLDEST
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


def _size(item: Sample | Batch) -> int:
    return 1 if isinstance(item, Sample) else len(item)
