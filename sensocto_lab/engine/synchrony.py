"""Live group synchrony of a room, published as the synthetic sensor ``sync:{room}``.

:class:`LiveSynchrony` subscribes to the room's bus topic, feeds every respiration
batch of the room's sensors to a pure :class:`~sensocto_lab.sync.online.OnlineSynchrony`,
and at a fixed rate on the engine's clock (2 Hz by default) publishes the Kuramoto
order parameter ``R`` through ``engine.ingest`` as attribute ``sync`` of sensor
``sync:{room}``, so it is validated, stored and published like any device's sample.
Each sample is stamped with the time it describes (see ``OnlineConfig.lag_s``).

Like Sensocto's ``SyncComputer`` it reads the per-sensor data path, not the
attention-gated one: synchrony is computed whether or not anyone is watching.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeVar

import numpy as np

from sensocto_lab.clock import Clock
from sensocto_lab.engine import topics
from sensocto_lab.engine.bus import Overflow, Subscription
from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.host import run_on
from sensocto_lab.errors import ConfigError, SensoctoError
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo, check_id
from sensocto_lab.sync.online import OnlineConfig, OnlineSynchrony, SyncEstimate

__all__ = ["LiveSynchrony"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class LiveSynchrony:
    """The online synchrony computer of one room.

    Use ``live = await LiveSynchrony.start(engine, room)`` (then ``await live.close()``)
    or ``async with LiveSynchrony(engine, room) as live:``.

    Parameters
    ----------
    engine
        A started engine; the computer runs on its loop.
    room
        The room whose sensors are followed; the result is sensor ``sync:{room}``.
    kind
        Which attribute kind carries the rhythm (``"respiration"``).
    rate_hz
        Updates per second, on ``clock``.
    config
        Window, lag, grid rate and band of the online computer.
    clock
        Time source (default: the engine's).
    maxsize
        Bus queue size; about ``maxsize`` batches may arrive between two reads before
        the oldest are dropped (counted in :meth:`statistics`, seen as gaps).
    """

    def __init__(
        self,
        engine: Engine,
        room: str,
        *,
        kind: str = "respiration",
        rate_hz: float = 2.0,
        config: OnlineConfig | None = None,
        clock: Clock | None = None,
        maxsize: int = 65_536,
    ) -> None:
        if not rate_hz > 0:
            raise ConfigError(f"rate_hz must be > 0, got {rate_hz!r}")
        self.engine = engine
        self.room = check_id(room, "room")
        self.sensor_id = check_id(topics.sync_sensor(room), "sensor_id")
        self.kind = kind
        self.period_s = 1.0 / rate_hz
        self.clock: Clock = clock or engine.clock
        self.online = OnlineSynchrony(config)
        self._maxsize = maxsize
        self._follow: dict[tuple[str, str], bool] = {}
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_t_ns = -1
        self.latest: SyncEstimate | None = None
        self.updates = 0
        self.published = 0
        self.errors = 0

    def __repr__(self) -> str:
        state = "running" if self._task is not None else "stopped"
        return f"<LiveSynchrony {self.sensor_id} {state}, {len(self.online.sensors)} sensors>"

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    async def start(cls, engine: Engine, room: str, **kwargs: Any) -> LiveSynchrony:
        """Create, register ``sync:{room}`` and start updating (see the class parameters)."""
        live = cls(engine, room, **kwargs)
        await live.open()
        return live

    async def open(self) -> None:
        """Register the synthetic sensor, subscribe to the room, start the periodic task."""
        await run_on(self.engine.loop, self._open_here)

    async def _open_here(self) -> None:
        if self._task is not None:
            raise RuntimeError("this synchrony computer is already running")
        attribute = AttributeInfo.of(
            topics.SYNC_ATTRIBUTE, "numeric", rate_hz=1.0 / self.period_s, unit="1"
        )
        await self.engine.register_sensor(
            SensorInfo(
                self.sensor_id,
                {topics.SYNC_ATTRIBUTE: attribute},
                name=f"Synchrony of {self.room}",
                sensor_type="synchrony",
                room=self.room,
            )
        )
        self._sub = self.engine.bus.subscribe(
            topics.room(self.room), maxsize=self._maxsize, policy=Overflow.DROP_OLDEST
        )
        self._task = asyncio.create_task(self._run(), name=f"synchrony {self.room}")

    async def close(self) -> None:
        """Stop updating, unsubscribe and unregister ``sync:{room}`` (its data stays stored)."""
        await run_on(self.engine.loop, self._close_here)

    async def _close_here(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self._sub is not None:
            self._sub.close()
        if not self.engine.closed and self.sensor_id in self.engine.sensors:
            await self.engine.unregister_sensor(self.sensor_id)

    async def __aenter__(self) -> LiveSynchrony:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -------------------------------------------------------------------- work

    async def _run(self) -> None:
        next_at = self.clock.monotonic() + self.period_s
        while not self.engine.closed:
            await self.clock.sleep(max(0.0, next_at - self.clock.monotonic()))
            # Keep the cadence; after a stall skip the missed updates instead of bursting.
            next_at = max(next_at + self.period_s, self.clock.monotonic())
            try:
                await self.update()
            except SensoctoError as exc:  # storage refused it, the engine is closing, ...
                self.errors += 1
                log.warning("synchrony of %s: update failed: %s", self.room, exc)

    def _follows(self, batch: Batch) -> bool:
        key = (batch.sensor_id, batch.attribute_id)
        follow = self._follow.get(key)
        if follow is None:
            info = self.engine.sensors.get(batch.sensor_id)
            attribute = None if info is None else info.attributes.get(batch.attribute_id)
            follow = (
                attribute is not None
                and attribute.kind.name == self.kind
                and batch.sensor_id != self.sensor_id
            )
            self._follow[key] = follow
        return follow

    def _take_pending(self) -> None:
        if self._sub is None:
            return
        for batch in self._sub.drain():
            if isinstance(batch, Batch) and self._follows(batch):
                try:
                    self.online.push(batch.sensor_id, batch.ts, batch.values)
                except SensoctoError as exc:
                    self.errors += 1
                    log.warning("synchrony of %s: %s refused: %s", self.room, batch, exc)

    async def update(self) -> SyncEstimate | None:
        """Read what arrived, estimate ``R`` now and publish it if it is new and defined.

        Returns the estimate (also kept in :attr:`latest`), or ``None`` before any data.
        """
        self._take_pending()
        end = self.online.ready_ns()
        if end is None:
            return None
        estimate = self.online.estimate(min(end, self.clock.time_ns()))
        self.latest = estimate
        self.updates += 1
        if np.isfinite(estimate.r) and estimate.t_ns > self._last_t_ns:
            batch = Batch(
                self.sensor_id,
                topics.SYNC_ATTRIBUTE,
                np.array([estimate.t_ns], dtype=np.int64),
                np.array([estimate.r]),
            )
            await self.engine.ingest(batch)
            self._last_t_ns = estimate.t_ns
            self.published += 1
        return estimate

    def statistics(self) -> dict[str, Any]:
        """Counters: updates, samples published, errors, participants, bus drops."""
        return {
            "sensor_id": self.sensor_id,
            "updates": self.updates,
            "published": self.published,
            "errors": self.errors,
            "participants": len(self.online.sensors),
            "dropped_samples": self.online.dropped_samples,
            "bus": None if self._sub is None else self._sub.statistics().as_dict(),
        }
