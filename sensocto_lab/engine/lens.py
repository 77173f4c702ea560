"""The lens: one per viewer (a browser session), buffering by attention tier.

A dashboard session shows some sensors; each has a level *for this viewer*
(focused → high, visible → medium, scrolled out → low, tab hidden → none). The
lens subscribes to ``data:{sensor}`` on the engine bus for every sensor the
session shows, keeps what arrives in a bounded per-(sensor, attribute) buffer,
and hands a sensor's buffer to a *sink* on the leading edge: data arriving at
least a tier interval after the sensor's last flush goes out at once (after a
couple of ms for other sensors' samples of the same moment to join), data
arriving sooner at last flush + interval. So a sensor flushes about once per
interval, and a steady stream is drawn when it arrives, not on a fixed grid.
Sensors due together go in one sink call (the dashboard turns it into one
``pn.io.hold()``-ed update), and sink calls can be kept a least gap apart; a
sensor due within that gap goes along with a flush rather than wait a whole gap
for the next one, so the session's sensors keep flushing together.

Intervals come from :meth:`AttentionTracker.lens_flush_ms` (32/50/100 ms for
high/medium/low; ``None`` for none: buffer only). When the browser reports that
it renders late, :class:`RateGovernor` stretches every interval (up to
``max_factor``) and relaxes it again once the browser keeps up.

The lens never slows the engine: bus queues are bounded with drop-oldest, and
the display buffers keep only the newest ``capacity`` samples. Dropping here
affects what is drawn, never what is stored.

:class:`TierBuffer` and :class:`RateGovernor` are pure and clock-driven;
:class:`Lens` is the asyncio driver over them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.engine import topics
from sensocto_lab.engine.bus import Overflow
from sensocto_lab.engine.contracts import EngineView
from sensocto_lab.errors import ClosedResourceError, ConfigError
from sensocto_lab.model import AttentionLevel, Batch

_log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FLUSH_MS",
    "DEFAULT_SETTLE_MS",
    "Lens",
    "LensFlush",
    "LensStats",
    "RateGovernor",
    "TierBuffer",
]

#: Lens flush intervals in ms (``None``: buffer only) when the engine gives none
#: (docs/architecture.md#attention).
DEFAULT_FLUSH_MS: Mapping[AttentionLevel, float | None] = {
    AttentionLevel.HIGH: 32.0,
    AttentionLevel.MEDIUM: 50.0,
    AttentionLevel.LOW: 100.0,
    AttentionLevel.NONE: None,
}

#: How long data ready to go out waits for other sensors' samples, in ms (see :class:`Lens`).
DEFAULT_SETTLE_MS = 2.0

#: Fraction of an interval after which a sensor counts as due (timers wake a bit early).
_SLACK = 0.9

#: What one flush carries: the buffered samples per (sensor_id, attribute_id), concatenated.
LensFlush = dict[tuple[str, str], Batch]


@dataclass(frozen=True, slots=True)
class LensStats:
    """Counters of one lens.

    Attributes
    ----------
    received
        Samples taken from the bus into display buffers.
    flushed
        Samples handed to the sink.
    dropped
        Samples dropped from full display buffers (oldest first); display only.
    flushes
        Sink calls made.
    slowdown
        Current interval multiplier from the browser's render lag (1.0 = on time).
    """

    received: int
    flushed: int
    dropped: int
    flushes: int
    slowdown: float


class RateGovernor:
    """Stretch flush intervals while the browser renders late, relax them when it keeps up.

    Parameters
    ----------
    target_lag_ms
        Render lag (ms from a flush reaching the page to it being painted, beyond
        the page's best) the browser may show before the lens slows down.
    max_factor
        Largest multiplier applied to the tier intervals.
    """

    def __init__(self, target_lag_ms: float = 200.0, max_factor: float = 8.0) -> None:
        self.target_lag_ms = target_lag_ms
        self.max_factor = max_factor
        self.factor = 1.0

    def report(self, lag_ms: float) -> float:
        """Take one lag report; returns the new multiplier.

        Above the target the multiplier doubles (the browser must catch up fast);
        below half the target it shrinks by a quarter (recover gently).
        """
        if lag_ms > self.target_lag_ms:
            self.factor = min(self.factor * 2.0, self.max_factor)
        elif lag_ms < self.target_lag_ms / 2:
            self.factor = max(self.factor / 1.25, 1.0)
        return self.factor


class TierBuffer:
    """Per-viewer display buffers, flushed by each sensor's tier interval.

    Parameters
    ----------
    clock
        Time source for the intervals.
    flush_ms
        Interval in ms for a level, ``None`` for "do not flush" (see :data:`DEFAULT_FLUSH_MS`).
    capacity
        Samples kept per (sensor, attribute) between flushes; older ones are dropped.
    gap_ms
        Least time between two flushes, in ms, whichever sensors they carry.
    settle_ms
        How long data whose interval has passed waits before it goes out, in ms, so
        that sensors whose samples arrive a moment apart share one flush.
    """

    def __init__(
        self,
        clock: Clock,
        flush_ms: Callable[[AttentionLevel], float | None] = DEFAULT_FLUSH_MS.__getitem__,
        capacity: int = 2000,
        *,
        gap_ms: float = 0.0,
        settle_ms: float = 0.0,
    ) -> None:
        if capacity < 1:
            raise ConfigError("capacity must be at least 1 sample")
        if gap_ms < 0 or settle_ms < 0:
            raise ConfigError("gap_ms and settle_ms must not be negative")
        self._clock = clock
        self._flush_ms = flush_ms
        self.capacity = capacity
        self.gap_s = gap_ms / 1000.0
        self.settle_s = settle_ms / 1000.0
        self.governor = RateGovernor()
        self._levels: dict[str, AttentionLevel] = {}
        self._attrs: dict[str, frozenset[str] | None] = {}
        self._last: dict[str, float] = {}
        #: When the oldest batch still buffered for a sensor arrived (monotonic).
        self._arrived: dict[str, float] = {}
        self._last_flush = float("-inf")
        self._bufs: dict[tuple[str, str], deque[Batch]] = {}
        self._sizes: dict[tuple[str, str], int] = {}
        self.received = self.flushed = self.dropped = self.flushes = 0

    @property
    def levels(self) -> Mapping[str, AttentionLevel]:
        """This viewer's level per shown sensor."""
        return self._levels

    def set_views(
        self,
        views: Mapping[str, AttentionLevel],
        attributes: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        """Replace the shown sensors and their levels (all at once).

        ``attributes`` limits a sensor's buffer to the attributes its card draws;
        a sensor without an entry keeps all. Buffers of sensors no longer shown are
        dropped; a sensor that rises from ``none`` flushes at its next tick.
        """
        attributes = attributes or {}
        for sensor in list(self._levels):
            if sensor not in views:
                self._forget(sensor)
        for sensor, level in views.items():
            self._levels[sensor] = AttentionLevel.parse(level)
            shown = attributes.get(sensor)
            self._attrs[sensor] = None if shown is None else frozenset(shown)
            self._last.setdefault(sensor, float("-inf"))

    def _forget(self, sensor: str) -> None:
        del self._levels[sensor]
        self._attrs.pop(sensor, None)
        self._last.pop(sensor, None)
        self._arrived.pop(sensor, None)
        for key in [k for k in self._bufs if k[0] == sensor]:
            del self._bufs[key]
            del self._sizes[key]

    def add(self, batch: Batch) -> bool:
        """Buffer a batch if its sensor and attribute are shown; returns whether it was kept."""
        sensor = batch.sensor_id
        if sensor not in self._levels:
            return False
        shown = self._attrs.get(sensor)
        if shown is not None and batch.attribute_id not in shown:
            return False
        key = (sensor, batch.attribute_id)
        self._arrived.setdefault(sensor, self._clock.monotonic())
        buf = self._bufs.setdefault(key, deque())
        buf.append(batch)
        size = self._sizes.get(key, 0) + len(batch)
        self.received += len(batch)
        while size > self.capacity:
            over = size - self.capacity
            first = buf[0]
            if len(first) <= over:
                buf.popleft()
                size -= len(first)
                self.dropped += len(first)
            else:
                buf[0] = _tail(first, len(first) - over)
                size -= over
                self.dropped += over
        self._sizes[key] = size
        return True

    def interval_s(self, level: AttentionLevel) -> float | None:
        """Current interval for ``level`` in seconds (with the governor's slowdown)."""
        ms = self._flush_ms(level)
        return None if ms is None else ms * self.governor.factor / 1000.0

    def due_at(self, sensor: str) -> float | None:
        """Monotonic time from which ``sensor`` may flush again; ``None``: never."""
        if sensor not in self._levels:
            return None
        interval = self.interval_s(self._levels[sensor])
        # a little slack, so a wake-up a hair early still flushes
        return None if interval is None else self._last[sensor] + interval * _SLACK

    def is_due(self, sensor: str) -> bool:
        """Whether ``sensor``'s interval has passed (buffered data would flush now)."""
        at = self.due_at(sensor)
        return at is not None and self._clock.monotonic() >= at

    def ready_at(self, sensor: str) -> float | None:
        """Monotonic time at which ``sensor``'s buffered data goes out; ``None``: never.

        Its interval must have passed, its oldest buffered batch must have waited
        ``settle_s`` (so sensors whose samples arrive a moment apart share a flush),
        and the last flush must be ``gap_s`` ago (the session-wide rate bound).
        """
        at = self.due_at(sensor)
        arrived = self._arrived.get(sensor)
        if at is None or arrived is None:
            return None
        return max(at, arrived + self.settle_s, self._last_flush + self.gap_s * _SLACK)

    def next_due_s(self) -> float | None:
        """Seconds until buffered data is due to flush (0: now); ``None``: nothing will be."""
        times = [self.ready_at(s) for s in self._arrived]
        pending = [t for t in times if t is not None]
        if not pending:
            return None
        return max(0.0, min(pending) - self._clock.monotonic())

    def due(self) -> LensFlush:
        """Take everything buffered for the sensors whose interval has passed.

        Nothing is taken before some sensor is ready (see :meth:`ready_at`); then every
        sensor with data whose interval has passed, or will pass within the session
        gap, goes along, whether or not it has settled. Holding back a sensor that is
        a few ms short of its interval would delay it by the whole gap and split the
        session's sensors into two groups of flushes, a gap apart, that never meet
        again (samples of half the cards then wait a whole gap more). The gap still bounds
        every sensor's rate.
        """
        if self.next_due_s() != 0.0:
            return {}
        now = self._clock.monotonic()
        horizon = now + self.gap_s * _SLACK
        ready = {s for s in self._arrived if (at := self.due_at(s)) is not None and at <= horizon}
        out: LensFlush = {}
        for key in [k for k in self._bufs if k[0] in ready]:
            merged = _concat(self._bufs.pop(key))
            del self._sizes[key]
            out[key] = merged
            self.flushed += len(merged)
        for sensor in ready:
            self._last[sensor] = now
            del self._arrived[sensor]
        self._last_flush = now
        self.flushes += 1
        return out

    def statistics(self) -> LensStats:
        """The counters (see :class:`LensStats`)."""
        return LensStats(
            self.received, self.flushed, self.dropped, self.flushes, self.governor.factor
        )


def _tail(batch: Batch, n: int) -> Batch:
    """The last ``n`` samples of ``batch``."""
    return dataclasses.replace(
        batch,
        ts=batch.ts[-n:],
        values=batch.values[-n:],
        recv_ts=None if batch.recv_ts is None else batch.recv_ts[-n:],
        seq=None if batch.seq is None else batch.seq[-n:],
    )


def _concat(batches: deque[Batch]) -> Batch:
    """One batch of consecutive batches of the same (sensor, attribute)."""
    if len(batches) == 1:
        return batches[0]
    recv = [b.recv_ts for b in batches if b.recv_ts is not None]
    seq = [b.seq for b in batches if b.seq is not None]
    stamped = len(recv) == len(seq) == len(batches)
    return dataclasses.replace(
        batches[0],
        ts=np.concatenate([b.ts for b in batches]),
        values=np.concatenate([b.values for b in batches]),
        recv_ts=np.concatenate(recv) if stamped else None,
        seq=np.concatenate(seq) if stamped else None,
    )


class _Subscription(Protocol):
    def __aiter__(self) -> Any: ...

    def close(self) -> None: ...


class Lens:
    """Per-viewer subscription, buffering and flushing, on the engine's event loop.

    Parameters
    ----------
    viewer_id
        The viewer (browser session) this lens serves; the engine's attention tracker
        knows its views under this id.
    engine
        The engine whose bus is read and whose attention is told about the views.
    sink
        Called with a :data:`LensFlush` once per tick that has data. It runs on the
        engine loop and must be quick (the dashboard schedules a document update).
    clock
        Time source for intervals and view renewal.
    capacity
        Display buffer per (sensor, attribute), in samples.
    queue_size
        Bound of each bus subscription (drop-oldest).
    renew_s
        How often the views are renewed with the engine while they last, in seconds.
    flush_ms
        Flush interval per level in ms (``None``: do not flush); default: the engine's
        ``attention.lens_flush_ms`` (docs/architecture.md#attention).
    gap_ms
        Least time between two sink calls, whatever the sensors (a dashboard's
        document update costs in proportion to the whole page).
    settle_ms
        How long data that may go out waits for other sensors' samples arriving a
        moment later, so that one sink call carries them all.
    """

    def __init__(
        self,
        viewer_id: str,
        engine: EngineView,
        sink: Callable[[LensFlush], None],
        *,
        clock: Clock | None = None,
        capacity: int = 2000,
        queue_size: int = 256,
        renew_s: float = 2.0,
        flush_ms: Callable[[AttentionLevel], float | None] | None = None,
        gap_ms: float = 0.0,
        settle_ms: float = DEFAULT_SETTLE_MS,
    ) -> None:
        self.viewer_id = viewer_id
        self._engine = engine
        self._sink = sink
        self._clock = clock or SystemClock()
        if flush_ms is None:
            flush_ms = engine.attention.lens_flush_ms
        self.buffer = TierBuffer(
            self._clock, flush_ms, capacity, gap_ms=gap_ms, settle_ms=settle_ms
        )
        self._queue_size = queue_size
        self._renew_s = renew_s
        self._subs: dict[str, tuple[_Subscription, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        #: When the flush loop will next wake by itself (monotonic; -inf while it works).
        self._deadline = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> Lens:
        """Start the flush loop (on the running loop, which must be the engine's)."""
        if self._closed:
            raise ClosedResourceError("the lens is closed", reason="closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"lens:{self.viewer_id}"
            )
        return self

    async def set_views(
        self,
        views: Mapping[str, AttentionLevel],
        attributes: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        """Show exactly ``views`` (sensor → this viewer's level), in one engine call.

        Subscribes to newly shown sensors, unsubscribes from dropped ones, and
        registers the views in bulk with :meth:`Engine.set_views` (replacing the
        viewer's earlier views).
        """
        if self._closed:
            raise ClosedResourceError("the lens is closed", reason="closed")
        views = {s: AttentionLevel.parse(lv) for s, lv in views.items()}
        self.buffer.set_views(views, attributes)
        for sensor in [s for s in self._subs if s not in views]:
            sub, task = self._subs.pop(sensor)
            sub.close()
            task.cancel()
        for sensor in views:
            if sensor not in self._subs:
                sub = self._engine.bus.subscribe(
                    topics.data(sensor), maxsize=self._queue_size, policy=Overflow.DROP_OLDEST
                )
                task = asyncio.get_running_loop().create_task(
                    self._read(sub), name=f"lens:{self.viewer_id}:{sensor}"
                )
                self._subs[sensor] = (sub, task)
        await self._engine.set_views(self.viewer_id, views, replace=True)
        self._wake.set()

    def report_lag(self, lag_ms: float) -> float:
        """The page's render lag in ms (from the browser); returns the new slowdown."""
        factor = self.buffer.governor.report(float(lag_ms))
        self._wake.set()
        return factor

    def statistics(self) -> LensStats:
        """The buffer's counters."""
        return self.buffer.statistics()

    async def _read(self, sub: _Subscription) -> None:
        async for batch in sub:
            if self.buffer.add(batch):
                at = self.buffer.ready_at(batch.sensor_id)
                if at is not None and at < self._deadline:
                    self._wake.set()  # due before the flush loop would wake: wake it

    async def _wait(self, timeout: float) -> None:
        """Until :attr:`_wake` is set or ``timeout`` seconds pass on the clock."""
        loop = asyncio.get_running_loop()
        sleeper = loop.create_task(self._clock.sleep(timeout))
        waker = loop.create_task(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _run(self) -> None:
        # Data that arrives when its sensor is due is flushed at once; data that
        # arrives early waits for the interval to pass. So a sensor flushes at most
        # once per interval, and a steady stream is drawn without waiting on a grid.
        last_renew = self._clock.monotonic()
        while True:
            self._wake.clear()
            wait = self.buffer.next_due_s()
            if wait is None or wait > 0:
                timeout = self._renew_s if wait is None else min(wait, self._renew_s)
                self._deadline = self._clock.monotonic() + timeout
                await self._wait(timeout)
                self._deadline = float("-inf")
            await asyncio.sleep(0)  # readers woken together add theirs: one flush for all
            flush = self.buffer.due()
            if flush:
                try:
                    self._sink(flush)
                except Exception:
                    # a broken page must not stop this viewer's other updates
                    _log.exception("lens %s: sink failed", self.viewer_id)
            now = self._clock.monotonic()
            if self.buffer.levels and now - last_renew >= self._renew_s:
                last_renew = now
                await self._engine.renew_viewer(self.viewer_id)

    async def close(self) -> None:
        """Stop flushing, close the subscriptions and remove the viewer from the engine."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for _, t in self._subs.values()]
        for sub, _ in self._subs.values():
            sub.close()
        if self._task is not None:
            tasks.append(self._task)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._subs.clear()
        await self._engine.remove_viewer(self.viewer_id)
