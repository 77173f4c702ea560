"""The WebSocket endpoint: Phoenix Channels v2 for sensors and viewers, over ``websockets``.

Thin glue over two sans-I/O protocols: ``websockets``' ``ServerProtocol`` (handshake,
frames, pings, closing) and :class:`~sensocto_lab.protocol.connection.ServerConnection`
(Phoenix), driven by one :class:`asyncio.Protocol` per socket with an idle watchdog;
each joined channel is a small handler object. Wire details are in
:mod:`sensocto_lab.protocol` and ``docs/protocol.md``.

- ``GET /health`` answers ``engine.health()`` as JSON; the socket lives at
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
  per-socket token bucket, an idle timeout, a bound on errors per channel. Bad input
  gets an ``error`` reply; a channel past its error bound is closed with ``phx_error``;
  the socket and its other channels stay, and what was stored stays stored.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import logging
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

try:  # what websockets unmasks with: its C speedup, or its pure-Python fallback
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a build without the extension
    from websockets.utils import apply_mask

from sensocto_lab.clock import Clock, SystemClock
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
from sensocto_lab.live.rooms import RoomStore
from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo
from sensocto_lab.protocol import connection as phx
from sensocto_lab.protocol.binary import BINARY_EVENT, decode_batch
from sensocto_lab.protocol.sensor import (
    BatchError,
    Sample,
    attribute_from_update,
    batches_from_measurements,
    merge,
    parse_topic,
    sample_from_measurement,
    sensor_info_from_join,
)
from sensocto_lab.protocol.viewer import (
    RoomSnapshot,
    ViewerParams,
    ViewerState,
    Watcher,
    batch_payload,
    sensor_payload,
    status_payload,
)

__all__ = ["SOCKET_PATH", "IngestServer", "ServerConfig", "TokenBucket", "serve"]

log = logging.getLogger(__name__)

#: Most queued pushes of one channel merged into one round of ingests.
_MAX_GROUP = 1024

#: Below every timestamp: "nothing stored yet".
_NEVER = -(2**63)

#: Seconds a peer has to answer our close frame (or close TCP) before the socket is cut.
_CLOSE_TIMEOUT_S = 10.0

#: Where the Phoenix socket lives (the JavaScript client appends ``/websocket``).
SOCKET_PATH = "/socket/websocket"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Security and limits of the endpoint.

    Attributes
    ----------
    tokens
        Ingest tokens accepted as the socket's ``token`` query parameter or a join's
        ``bearer_token``/``token`` param.
    require_token
        Refuse joins without a valid token (on by default; :meth:`open` turns it off
        for demos on one machine).
    allowed_origins
        Acceptable ``Origin`` headers (``None`` in the tuple admits clients that send
        none, such as devices and Node); ``None`` admits any origin.
    max_frame_bytes
        Largest frame we decode; larger ones get a ``frame_too_large`` error reply.
        Frames beyond twice this close the socket (close code 1009).
    rate_per_s, burst
        Token bucket per socket, in frames: refills ``rate_per_s`` a second, holds
        ``burst``. Frames over it get ``rate_limited`` and are not processed.
    idle_timeout_s
        A socket that sends no frame for this long is closed (Phoenix clients send a
        heartbeat every 30 s).
    max_channel_errors
        Consecutive error replies after which a channel is closed with ``phx_error``.
    channel_queue
        Validated pushes a sensor channel holds before the socket stops reading.
    viewer_queue
        Batches a viewer channel holds for a slow viewer (drop-oldest beyond).
    viewer_tokens
        Tokens that open every viewer channel without a join code (admins, trusted
        dashboards); ``None``: the ingest ``tokens`` do.
    viewer_status_s
        How often a viewer channel checks its room for new sensors and changed
        levels or presence, in seconds.
    default_room
        Room of sensors whose join names none.
    """

    tokens: frozenset[str] = frozenset()
    require_token: bool = True
    allowed_origins: tuple[str | None, ...] | None = None
    max_frame_bytes: int = 1 << 20
    rate_per_s: float = 1000.0
    burst: int = 2000
    idle_timeout_s: float = 60.0
    max_channel_errors: int = 100
    channel_queue: int = 256
    viewer_queue: int = 256
    viewer_tokens: frozenset[str] | None = None
    viewer_status_s: float = 0.5
    default_room: str = "default"

    @classmethod
    def open(cls, **changes: Any) -> ServerConfig:
        """A config without token checks (the demo, tests on 127.0.0.1)."""
        return cls(require_token=False, **changes)


class TokenBucket:
    """A token bucket on an injected clock: ``rate`` tokens a second, at most ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock.monotonic()

    def take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if there are that many; False (nothing taken) otherwise."""
        now = self._clock.monotonic()
        tokens = self._tokens + (now - self._at) * self.rate
        self._tokens = tokens if tokens < self.burst else float(self.burst)
        self._at = now
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False


class _Engine(Protocol):
    """What the endpoint needs of the engine (docs/architecture.md)."""

    @property
    def bus(self) -> Any: ...

    @property
    def attention(self) -> Any: ...

    @property
    def store(self) -> Any: ...

    @property
    def sensors(self) -> Mapping[str, SensorInfo]: ...

    async def register_sensor(self, info: SensorInfo) -> Any: ...

    async def register_attribute(self, sensor_id: str, attribute: AttributeInfo) -> Any: ...

    async def unregister_attribute(self, sensor_id: str, attribute_id: str) -> Any: ...

    async def ingest(self, batch: Batch) -> Batch: ...

    async def set_views(
        self, viewer_id: str, views: Mapping[str, object], *, replace: bool = False
    ) -> Any: ...

    async def renew_viewer(self, viewer_id: str) -> Any: ...

    async def remove_viewer(self, viewer_id: str) -> Any: ...

    def health(self) -> dict[str, Any]: ...


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


# --- channels ----------------------------------------------------------------------------


class _Channel:
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

    def spawn(self, coro: Any, name: str) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    async def close(self) -> None:
        """Stop this channel's tasks; called once when it closes or the socket goes."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _SensorChannel(_Channel):
    """``sensor:{id}``: validate pushes, ingest them in order, reply once stored."""

    def __init__(self, socket: _Socket, topic: str, info: SensorInfo, exactly_once: bool) -> None:
        super().__init__(socket, topic)
        self.info = info
        self.exactly_once = exactly_once
        self.newest: dict[str, int] = {}
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
            self.newest[attr] = max(self.newest.get(attr, _NEVER), int(stamped.ts[-1]))
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
        """Fill :attr:`newest` for attributes this channel has not stored to yet.

        Asked of the store once per attribute and channel: ``last_ts`` covers the rings
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


class _ConnectorChannel(_Channel):
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


class _ViewerChannel(_Channel):
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
            self.spawn(self.forward(f"data:{sid}"), f"{self.topic}:{sid}")
            self._assigned[sid] = self.tasks[-1]

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


# --- one socket ---------------------------------------------------------------------------


def _nothing_buffered(ws: ServerProtocol) -> bool:
    """Whether ``ws`` holds no bytes it received but has not parsed yet.

    This reads a websockets internal (its reader's buffer); should a release rename
    it, the answer is "not known to be empty", and every frame stays with websockets:
    slower, never wrong.
    """
    buffer = getattr(getattr(ws, "reader", None), "buffer", None)
    return buffer is not None and len(buffer) == 0


class _Socket(asyncio.Protocol):
    """One WebSocket connection, driven as an :class:`asyncio.Protocol`: its channels,
    its idle watchdog, and the ``websockets`` Sans-I/O protocol under it.

    ``websockets`` does the HTTP handshake, pings, fragments, limits, protocol errors
    and the closing handshake; this class parses only whole data frames itself
    (:meth:`_take_frames`), hands ``websockets`` everything else and writes what it
    wants sent. The Phoenix frames of one ``data_received`` are
    handled in one synchronous pass, without a coroutine or future per frame.
    What must be awaited (joins, closing channels, a full channel queue) is run by
    a task while reading is paused, so frames are still handled strictly in order.
    Outgoing Phoenix frames are written together, once per event-loop iteration.
    """

    _ids = itertools.count(1)

    def __init__(self, server: IngestServer) -> None:
        self.server = server
        cfg = server.config
        self.ws = ServerProtocol(
            origins=_origins(cfg.allowed_origins), max_size=2 * cfg.max_frame_bytes
        )
        self.transport: asyncio.Transport | None = None
        self.request: Request | None = None
        self.token_ok = False
        self.id = next(self._ids)
        self.proto = phx.ServerConnection(max_frame=cfg.max_frame_bytes)
        self.bucket = TokenBucket(cfg.rate_per_s, cfg.burst, server.clock)
        self.channels: dict[str, _Channel] = {}
        self.pending: list[Any] = []  # awaitables to run before the next frame
        self.last_frame = server.clock.monotonic()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox: collections.deque[str | bytes] = collections.deque()
        self._fragments: list[bytes] = []  # a fragmented message being received
        self._catching_up: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._fragmented_text = False
        self._invalid = False  # a text message was not UTF-8: the socket is closing
        self._flush_soon = False
        self._write_paused = False
        self._max_size = 2 * cfg.max_frame_bytes  # websockets closes with 1009 beyond
        self._own_frames = False  # data frames are parsed by _take_frames
        self._buffer = bytearray()  # received bytes _take_frames has not used yet

    @property
    def remote_address(self) -> Any:
        """The peer's ``(host, port)``, or None."""
        return None if self.transport is None else self.transport.get_extra_info("peername")

    def wake(self) -> None:
        """Write the queued Phoenix frames soon (once for all queued this iteration)."""
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def push(self, topic: str, event: str, payload: dict[str, Any]) -> None:
        if self.proto.push(topic, event, payload):
            self.wake()

    def close_channel(self, topic: str, error: SensoctoError | None = None) -> None:
        self.proto.close_channel(topic, error=error)
        channel = self.channels.pop(topic, None)
        if channel is not None:
            self.server.spawn(channel.close())
        self.wake()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (after writing what is queued); idempotent."""
        if self.ws.state is State.OPEN:
            self._flush()
            self.ws.send_close(code, reason)
            self._send_ws_data()
        elif self.ws.state is State.CONNECTING and self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.sockets.add(self)
        self._watchdog = asyncio.get_running_loop().create_task(
            self._watch(), name=f"ws{self.id}:idle"
        )

    def data_received(self, data: bytes) -> None:
        self.last_frame = self.server.clock.monotonic()  # for the idle watchdog
        if self._own_frames:
            self._buffer += data
            self._take_frames()
        else:
            self._to_websockets(data)
            # Once open, whole data frames are parsed here (unless the client sent
            # frames before our handshake response, which RFC 6455 forbids).
            self._own_frames = self.ws.state is State.OPEN and _nothing_buffered(self.ws)
        self._send_ws_data()
        if self._catching_up is None:
            self._catch_up_now()

    def _to_websockets(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Request):  # a server protocol receives no Response
                self._handshake(event)

    def _take_frames(self) -> None:
        """Handle the whole frames at the start of :attr:`_buffer`, in order.

        Unfragmented, masked text and binary frames within the size limit (all the
        frames of ingest) are unmasked and queued here: ``websockets``' parser, a
        generator per frame, was a quarter of the cost of a one-sample push. Every
        other frame (control frames, fragments, anything invalid) is handed to
        ``websockets`` whole, so its parser always starts at a frame boundary and
        answers pings, closes and protocol errors itself; a frame whose header it
        would refuse (unmasked, reserved bits, too large) is handed over with
        everything after it. An incomplete frame waits in the buffer.
        """
        buf, message, limit, ws = self._buffer, self._message, self._max_size, self.ws
        pos, end = 0, len(buf)
        while end - pos >= 2 and ws.state is State.OPEN:
            head1, head2 = buf[pos], buf[pos + 1]
            length, start = head2 & 0x7F, pos + 6
            if length == 126:
                start += 2
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            elif length == 127:
                start += 8
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            if not head2 & 0x80 or head1 & 0x70 or length > limit:
                self._own_frames = False  # websockets fails the connection
                break
            stop = start + length
            if stop > end:
                break
            if (head1 == 0x81 or head1 == 0x82) and not self._fragments:  # FIN, text/binary
                message(apply_mask(buf[start:stop], buf[start - 4 : start]), head1 == 0x81)
            else:
                self._to_websockets(bytes(buf[pos:stop]))
            pos = stop
        del buf[:pos]
        if not self._own_frames or ws.state is not State.OPEN:  # websockets takes the rest
            self._own_frames = False
            rest = bytes(buf)
            buf.clear()
            if rest:
                self._to_websockets(rest)

    def eof_received(self) -> None:
        self.ws.receive_eof()
        self._send_ws_data()  # the transport closes itself (None returned)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ws.receive_eof()
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.server.spawn(self._teardown())

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._flush()

    # -- frames in ------------------------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        self.request = request
        response = self.server.process_request(self.ws, request)
        if response is None:
            response = self.ws.accept(request)
        self.ws.send_response(response)
        if response.status_code == 101:
            token = parse_qs(urlsplit(request.path).query).get("token", [None])[0]
            self.token_ok = token is not None and token in self.server.config.tokens

    def _frame(self, frame: Frame) -> None:
        """Queue a whole text or binary message; the protocol answered control frames."""
        opcode = frame.opcode
        if self._invalid:
            return
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            data = bytes(frame.data)  # the parser's bytes as they are (no copy)
            if not frame.fin:  # the first fragment of a message
                self._fragments, self._fragmented_text = [data], opcode is Opcode.TEXT
                return
            text = opcode is Opcode.TEXT
        elif opcode is Opcode.CONT:  # the protocol checked the sequence and the size
            self._fragments.append(bytes(frame.data))
            if not frame.fin:
                return
            data, text = b"".join(self._fragments), self._fragmented_text
            self._fragments = []
        else:
            return
        self._message(data, text)

    def _message(self, data: bytes, text: bool) -> None:
        """Queue a whole message; text that is not UTF-8 closes the socket (1007)."""
        if not text:
            self._inbox.append(data)
            return
        try:
            self._inbox.append(data.decode())
        except UnicodeDecodeError as exc:
            self._invalid = True
            self.ws.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")

    def _catch_up_now(self) -> None:
        """Handle queued frames in order until one leaves work to await (then a task does)."""
        inbox, receive = self._inbox, self._receive
        if inbox:
            self.wake()
        while inbox:
            receive(inbox.popleft())
            if self.pending:
                if self.transport is not None:
                    self.transport.pause_reading()
                self._catching_up = asyncio.get_running_loop().create_task(
                    self._catch_up(), name=f"ws{self.id}:reader"
                )
                return

    async def _catch_up(self) -> None:
        """Await what frames left to do, handle the frames queued behind them, resume reading."""
        try:
            while self.pending:
                for awaitable in self.pending:
                    await awaitable
                self.pending.clear()
                inbox = self._inbox
                while inbox and not self.pending:
                    self._receive(inbox.popleft())
                self.wake()
        except Exception:  # a bug: the socket goes (1011), the server stays
            log.exception("socket %d failed handling a frame", self.id)
            for awaitable in self.pending:
                if asyncio.iscoroutine(awaitable):
                    awaitable.close()
            self.pending.clear()
            self._inbox.clear()
            self.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            self._catching_up = None
        if self.transport is not None:
            self.transport.resume_reading()

    def _receive(self, frame: str | bytes) -> None:
        """Feed one frame to the protocol and its events to the channels.

        Synchronous, so a push costs no coroutine: what must be awaited (joins,
        closing channels, a full channel queue) goes to :attr:`pending` in order.
        """
        if not self.bucket.take():
            self.proto.refuse(
                frame,
                LimitExceeded(
                    f"more than {self.server.config.rate_per_s:g} frames a second; "
                    "batch samples (measurements_batch) or slow down",
                    reason="rate_limited",
                ),
            )
        elif isinstance(frame, str):
            self.proto.receive_text(frame)
        else:
            self.proto.receive_bytes(frame)
        for event in self.proto.events_received():
            if isinstance(event, phx.Pushed):
                channel = self.channels.get(event.topic)
                if channel is not None:
                    channel.handle(event)
            elif isinstance(event, phx.JoinRequested):
                self.pending.append(self._join(event))
            elif isinstance(event, phx.LeaveRequested | phx.ChannelReplaced):
                channel = self.channels.pop(event.topic, None)
                if channel is not None:
                    self.pending.append(channel.close())
            elif isinstance(event, phx.Heartbeat):
                for channel in self.channels.values():
                    if isinstance(channel, _ViewerChannel) and channel.lens is None:
                        self.pending.append(self.server.engine.renew_viewer(channel.viewer_id))
            elif isinstance(event, phx.FrameRejected):
                log.debug("socket %d refused a frame: %s", self.id, event.error)

    def _authorized(self, params: Mapping[str, Any]) -> bool:
        cfg = self.server.config
        if not cfg.require_token or self.token_ok:
            return True
        token = params.get("bearer_token", params.get("token"))
        return isinstance(token, str) and token in cfg.tokens

    async def _join(self, join: phx.JoinRequested) -> None:
        try:
            viewer = join.topic.startswith(("room:", "lens:"))  # they check their own access
            if not viewer and not self._authorized(join.params):
                raise AuthError(
                    "a valid ingest token is needed (socket ?token= or join param bearer_token)",
                    reason="unauthorized",
                )
            topic = parse_topic(join.topic)
            if topic.kind == "sensor":
                channel: _Channel = await self._join_sensor(join, topic.id)
            elif topic.kind == "connector":
                channel = _ConnectorChannel(self, join.topic)
            else:
                channel = await self._join_viewer(join, topic.kind, topic.id)
        except (PeerError, LocalError) as exc:
            self.proto.reject_join(join, exc)
            return
        self.channels[join.topic] = channel
        response: dict[str, Any] = {}
        if isinstance(channel, _SensorChannel):
            response = {
                "sensor_id": channel.info.sensor_id,
                "attributes": sorted(channel.info.attributes),
            }
        elif isinstance(channel, _ViewerChannel):
            response = channel.reply
        self.proto.accept_join(join, response)
        if isinstance(channel, _SensorChannel):
            channel.spawn(channel.run(), f"{join.topic}:ingest")
            channel.spawn(channel.forward_backpressure(), f"{join.topic}:backpressure")
        elif isinstance(channel, _ViewerChannel):
            channel.start()

    async def _join_sensor(self, join: phx.JoinRequested, sensor_id: str) -> _SensorChannel:
        engine, params = self.server.engine, join.params
        info = sensor_info_from_join(sensor_id, params, room=self.server.config.default_room)
        known = engine.sensors.get(sensor_id)
        if known is not None:  # a rejoin keeps attributes declared before
            info = dataclasses.replace(info, attributes={**known.attributes, **info.attributes})
        await engine.register_sensor(info)
        exactly_once = params.get("exactly_once") is True
        return _SensorChannel(self, join.topic, info, exactly_once)

    async def _join_viewer(self, join: phx.JoinRequested, kind: str, ident: str) -> _ViewerChannel:
        """Check a viewer's access, then make its channel (a lens starts at once).

        With a room store, a join code opens its room (a lens without ``room`` finds it
        by the code) and restricts the channel to it; without a code a viewer token is
        needed. A trusted dashboard (with a token) may instead vouch for a logged-in
        user (``member``): their membership opens the room, restricted to it. Without
        a room store the ingest token rules, as for sensors.
        """
        params = ViewerParams.from_params(join.params)
        rooms = self.server.rooms
        room = ident if kind == "room" else params.room
        name, restricted = "", False
        member_rooms: dict[str, str] = {}
        trusted = self._viewer_token(join.params, params)
        if rooms is not None and params.code is not None:
            peer = self.remote_address[0] if self.remote_address else f"ws-{self.id}"
            client = f"{peer}/{params.client}" if trusted and params.client else str(peer)
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
                raise AuthError(
                    f"{params.user_id} is not a member of room {room}", reason="forbidden"
                )
            name, restricted = member_rooms.get(room or "", ""), True
        elif rooms is not None and room is not None:
            with contextlib.suppress(ValidationError):
                name = rooms.room(room).name
        viewer = ident if kind == "lens" else params.viewer_id or f"ws-{self.id}-{ident}"
        channel = _ViewerChannel(
            self, join.topic, viewer, room=room, user_id=params.user_id, restricted=restricted
        )
        if kind == "lens":
            channel.lens = Lens(
                ident, self.server.engine, channel.send_batches, clock=self.server.clock
            )
            await channel.lens.start()
        if rooms is not None and room is not None:
            with contextlib.suppress(ValidationError):
                rooms.enter(room, viewer, params.user_id)
        channel.reply = channel.snapshot(name, params.backfill, member_rooms)
        return channel

    def _viewer_token(self, raw: Mapping[str, Any], params: ViewerParams) -> bool:
        """Whether the join (or its socket) presents a token that opens any viewer channel."""
        cfg = self.server.config
        if self.server.rooms is None:  # no codes to check: as for sensors
            return self._authorized(raw)
        tokens = cfg.tokens if cfg.viewer_tokens is None else cfg.viewer_tokens
        query = parse_qs(urlsplit(self.request.path if self.request else "").query)
        return any(t in tokens for t in (params.token, query.get("token", [None])[0]) if t)

    async def _teardown(self) -> None:
        """After the connection is lost: handle what was received, then close the channels."""
        try:
            if self._catching_up is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._catching_up)
            elif self._inbox:
                self._catch_up_now()
                if self._catching_up is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._catching_up)
            for topic in list(self.channels):
                await self.channels.pop(topic).close()
        finally:
            self.server.sockets.discard(self)
            self.closed.set_result(None)

    # -- frames out -----------------------------------------------------------------------

    def _send_ws_data(self) -> None:
        """Write what the WebSocket protocol has to send (handshake, pongs, close, EOF)."""
        transport = self.transport
        assert transport is not None
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
            else:  # pragma: no cover - TCP can always half-close
                transport.close()
        if self._close_timer is None and self.ws.close_expected():
            self._close_timer = asyncio.get_running_loop().call_later(
                _CLOSE_TIMEOUT_S, transport.abort
            )

    def _flush(self) -> None:
        """Write the queued Phoenix frames with one transport write.

        Frames stay queued while the transport's buffer is full (:attr:`proto`'s
        ``buffered`` shows a slow peer) and are dropped once the socket is closing.
        """
        self._flush_soon = False
        if self._write_paused:
            return
        frames = self.proto.data_to_send()
        if frames and self.ws.state is State.OPEN and self.transport is not None:
            self.transport.write(b"".join([_text_frame(f.encode()) for f in frames]))

    async def _watch(self) -> None:
        clock, idle = self.server.clock, self.server.config.idle_timeout_s
        while True:
            remaining = self.last_frame + idle - clock.monotonic()
            if remaining <= 0:
                self.close(1000, "idle timeout")
                return
            await clock.sleep(remaining)


# --- the server -----------------------------------------------------------------------------


class IngestServer:
    """A running endpoint. Make one with :func:`serve`.

    Attributes
    ----------
    port
        The TCP port it listens on (the OS picks one for ``port=0``).
    """

    def __init__(
        self, engine: _Engine, config: ServerConfig, clock: Clock, rooms: RoomStore | None = None
    ) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.rooms = rooms
        self._listener: asyncio.Server | None = None
        #: Open connections (each removes itself once its channels are closed).
        self.sockets: set[_Socket] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.host = ""

    @property
    def url(self) -> str:
        """The socket URL (without token)."""
        return f"ws://{self.host}:{self.port}{SOCKET_PATH}?vsn=2.0.0"

    async def start(self, host: str, port: int) -> IngestServer:
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(lambda: _Socket(self), host, port)
        sockname = self._listener.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        return self

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def process_request(self, ws: ServerProtocol, request: Request) -> Response | None:
        """The answer to a request that does not open a socket (health, bad path, vsn
        or token); None lets the WebSocket handshake go on (it checks the origin)."""
        parts = urlsplit(request.path)
        if parts.path == "/health":
            body = json.dumps(self.engine.health(), default=str).encode()
            headers = Headers(
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return Response(200, "OK", headers, body)
        if parts.path != SOCKET_PATH:
            return ws.reject(HTTPStatus.NOT_FOUND, f"no such path; the socket is {SOCKET_PATH}\n")
        query = parse_qs(parts.query)
        vsn = query.get("vsn", ["2.0.0"])[0]
        if vsn != "2.0.0":
            return ws.reject(HTTPStatus.BAD_REQUEST, f"only vsn=2.0.0 is spoken, got {vsn}\n")
        token = query.get("token", [None])[0]
        if token is not None and self.config.require_token and token not in self.config.tokens:
            return ws.reject(HTTPStatus.FORBIDDEN, "invalid token\n")
        return None

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
        engine: _Engine,
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


def _text_frame(payload: bytes) -> bytes:
    """A server's unfragmented, unmasked WebSocket text frame (RFC 6455 §5.2) of ``payload``.

    What ``websockets``' ``Protocol.send_text`` writes without extensions (compression
    is off), framed here because its ``Frame`` object and state checks per frame cost
    more than the rest of an acknowledgement; :meth:`_Socket._flush` checks the state
    once for all queued frames.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def _origins(allowed: tuple[str | None, ...] | None) -> list[Any] | None:
    """``websockets`` wants ``Origin`` values (a str subtype) or ``None``."""
    return None if allowed is None else list(allowed)


def _size(item: Sample | Batch) -> int:
    return 1 if isinstance(item, Sample) else len(item)
