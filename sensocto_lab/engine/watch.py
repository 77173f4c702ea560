"""How the engine watches its viewers and itself: attention, load and health.

Mixed into :class:`~sensocto_lab.engine.engine.Engine` (as the experiment calls are):
viewers' views set each sensor's attention level, whose ``backpressure_config`` goes out
on ``signal:{sensor}``; the load loop samples loop lag, queue fill and the system, and
a change of level reaches the store's rings, the attention tiers and ``system:load``;
:meth:`Watching.health` is the JSON-able snapshot ``/health`` answers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sensocto_lab.clock import Clock
from sensocto_lab.engine import topics
from sensocto_lab.engine.attention import AttentionChange, AttentionTracker
from sensocto_lab.engine.bus import Bus
from sensocto_lab.engine.commit import GroupCommit
from sensocto_lab.engine.config import EngineConfig, LoadProbe
from sensocto_lab.engine.host import EngineHost, on_engine_loop
from sensocto_lab.engine.load import LoadMonitor
from sensocto_lab.engine.sensor_task import SensorRuntime
from sensocto_lab.model import LoadLevel
from sensocto_lab.storage import Store

__all__ = ["Watching"]

log = logging.getLogger(__name__)


class Watching:
    """Attention, load and health calls of the engine (mixed into :class:`Engine`)."""

    _loop: asyncio.AbstractEventLoop | None
    _host: EngineHost | None
    _sensors: dict[str, SensorRuntime]
    _store: Store | None
    _owns_store: bool
    _closing: bool
    _commit: GroupCommit | None
    config: EngineConfig
    clock: Clock
    attention: AttentionTracker
    load: LoadMonitor
    bus: Bus
    if TYPE_CHECKING:  # the engine's own

        @property
        def store(self) -> Store: ...

        def _check_open(self) -> None: ...

    @on_engine_loop
    async def set_views(
        self, viewer_id: str, views: Mapping[str, object], *, replace: bool = False
    ) -> list[AttentionChange]:
        """Set many of one viewer's views at once (sensor id → level) and renew the viewer.

        Levels are :class:`AttentionLevel`, their wire names or 0–3; ``replace`` drops the
        viewer's other views. Every resulting change is published on ``signal:{sensor}``.
        Raises :class:`ValidationError` (and changes nothing) on a bad id or level.
        """
        self._check_open()
        return self.attention.set_views(viewer_id, views, replace=replace)

    @on_engine_loop
    async def remove_viewer(self, viewer_id: str) -> list[AttentionChange]:
        """Forget a viewer and its views (a closed dashboard, a dropped lens)."""
        self._check_open()
        return self.attention.remove_viewer(viewer_id)

    @on_engine_loop
    async def renew_viewer(self, viewer_id: str) -> None:
        """Keep a viewer alive (its heartbeat); viewers not renewed are cleaned up."""
        self._check_open()
        self.attention.renew(viewer_id)

    def _on_attention_change(self, changes: list[AttentionChange]) -> None:
        for change in changes:
            sensor = self._sensors.get(change.sensor_id)
            if sensor is not None:
                sensor.level = change.new
            self.bus.publish(topics.signal(change.sensor_id), change.config)

    async def _attention_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.attention_tick_s)
            self.attention.tick()

    async def _load_loop(self, probe: LoadProbe) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.clock.sleep(self.config.load_interval_s)
            # Lag: how long the loop takes to come back to us through its ready queue.
            before = loop.time()
            await asyncio.sleep(0)
            lag = loop.time() - before
            fill = max(
                (s.queue.qsize() / self.config.inbound_maxsize for s in self._sensors.values()),
                default=0.0,
            )
            level = self.load.update(probe(lag, min(fill, 1.0)))
            if level is not None:
                self._apply_load(level)

    def _apply_load(self, level: LoadLevel) -> None:
        log.info("system load is now %s", level.label)
        self.store.set_load_scale(self.load.memory_scale)
        self.attention.set_load(level)
        self.bus.publish(topics.LOAD, level)

    # -------------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        """A JSON-able snapshot: sensors, load level, attention, storage lag and counters, bus.

        Each sensor has ``id``, ``room``, ``state``, ``attention`` (level name),
        ``samples`` and ``batches`` stored since registration, ``queued`` batches and its
        ``attributes``. ``gc`` tells the process's garbage collections per generation and
        how many objects are frozen out of them (a full collection stalls the loop for
        as long as it takes to scan what is not frozen); ``group_commit`` how many
        store calls (``groups``) took how many ``batches``. ``storage_health`` is ``ok``,
        or ``failing`` while a write, fsync or compaction keeps failing (a full disk), with
        ``last_error`` saying why (no file paths). Safe to call from any thread (it only
        reads).
        """
        sensors = [
            {
                "id": sid,
                "room": s.info.room,
                "state": s.state.value,
                "attention": s.level.label,
                "samples": s.samples,
                "batches": s.batches,
                "queued": s.queue.qsize(),
                "attributes": sorted(s.info.attributes),
            }
            for sid, s in list(self._sensors.items())
        ]
        storage: dict[str, Any] = {}
        if self._store is not None and not (self._closing and self._owns_store):
            storage = dict(self._store.statistics())
        return {
            "state": "closed" if self._closing else ("running" if self._loop else "new"),
            "threaded": self._host is not None,
            "sensors": sensors,
            "load": self.load.level.label,
            "attention": self.attention.statistics(),
            "storage_lag_s": storage.get("storage_lag_s"),
            "storage_health": (storage.get("health") or {}).get("state"),
            "last_error": storage.get("last_error"),
            "storage": storage,
            "bus": self.bus.statistics(),
            "gc": {
                "collections": [g["collections"] for g in gc.get_stats()],
                "frozen": gc.get_freeze_count(),
            },
            "group_commit": {
                "groups": 0 if self._commit is None else self._commit.groups,
                "batches": 0 if self._commit is None else self._commit.batches,
            },
        }
