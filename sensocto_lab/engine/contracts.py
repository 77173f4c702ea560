"""The engine's typed interface: what everything outside the engine is written against.

Two halves, like the store's contract in :mod:`sensocto_lab.storage.base`:

- :class:`IngestSink`: what a *source* of samples needs (the WebSocket sensor channels,
  BLE capture, the simulator, replay): register sensors and attributes, ingest batches,
  and the engine's clock and loop.
- :class:`EngineView`: what a *viewer* needs (a dashboard session, a lens, a notebook
  widget): the sensors, the bus their batches arrive on, attention levels, recent
  samples, and the calls that tell the engine what is being looked at.

:class:`~sensocto_lab.engine.engine.Engine` implements both (and :class:`LiveEngine`, the
two together with the engine's full attention tracker and store, which the endpoint
uses). A dashboard of an engine in another process reads a
:class:`~sensocto_lab.net.room_mirror.RoomMirror`, which implements :class:`EngineView`
alone. ``tests/engine/test_contracts.py`` has mypy check both conformances.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sensocto_lab.clock import Clock
from sensocto_lab.engine.attention import AttentionTracker
from sensocto_lab.engine.bus import Bus
from sensocto_lab.events import Event
from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo
from sensocto_lab.storage.base import Store

__all__ = [
    "AttentionView",
    "EngineView",
    "Experimenting",
    "IngestSink",
    "LiveEngine",
    "RecentSamples",
]


class AttentionView(Protocol):
    """The attention levels a viewer reads."""

    def level(self, sensor_id: str) -> AttentionLevel:
        """The sensor's level now (the highest over its viewers)."""
        ...

    def lens_flush_ms(self, level: AttentionLevel) -> float | None:
        """How often a lens flushes a sensor at ``level``, ms (``None``: buffer only)."""
        ...


class RecentSamples(Protocol):
    """The newest samples of a series, from memory."""

    def latest(
        self, sensor_id: str, attribute_id: str, n: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        """The newest ``n`` (default: all held) samples: ``(ts_ns, values)``."""
        ...


class EngineView(Protocol):
    """What a viewer of the engine (dashboard, lens, widget) reads and tells it."""

    @property
    def sensors(self) -> Mapping[str, SensorInfo]:
        """Sensors by id."""
        ...

    @property
    def bus(self) -> Bus:
        """Where batches arrive (topics in :mod:`sensocto_lab.engine.topics`)."""
        ...

    @property
    def attention(self) -> AttentionView:
        """Attention levels."""
        ...

    @property
    def store(self) -> RecentSamples:
        """Recent samples, for a card's first frame."""
        ...

    async def set_views(
        self, viewer_id: str, views: Mapping[str, object], *, replace: bool = False
    ) -> object:
        """Set the viewer's views (sensor id → level) and renew it."""
        ...

    async def renew_viewer(self, viewer_id: str) -> None:
        """Keep the viewer alive."""
        ...

    async def remove_viewer(self, viewer_id: str) -> object:
        """Forget the viewer and its views."""
        ...


class IngestSink(Protocol):
    """What a source of samples calls; each call may come from any event loop."""

    @property
    def clock(self) -> Clock:
        """The engine's time source (stamps, batching windows)."""
        ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the engine runs on (its own thread's, or the caller's)."""
        ...

    @property
    def sensors(self) -> Mapping[str, SensorInfo]:
        """Sensors by id."""
        ...

    async def register_sensor(self, info: SensorInfo) -> SensorInfo:
        """Register (or update) a sensor; idempotent."""
        ...

    async def unregister_sensor(self, sensor_id: str) -> None:
        """Remove a sensor once its queued batches are stored."""
        ...

    async def register_attribute(self, sensor_id: str, attribute: AttributeInfo) -> SensorInfo:
        """Add or replace one attribute of a registered sensor."""
        ...

    async def unregister_attribute(self, sensor_id: str, attribute_id: str) -> SensorInfo:
        """Remove one attribute; later batches for it are refused."""
        ...

    async def ingest(self, batch: Batch) -> Batch:
        """Record one batch; returns it stamped once it is stored."""
        ...

    async def record_events(self, events: Sequence[Event]) -> list[Event]:
        """Record events (a device's markers, an LSL marker stream); stored, then published."""
        ...


class LiveEngine(EngineView, IngestSink, Protocol):
    """An engine in this process: both halves, its attention tracker, store and health."""

    @property
    def attention(self) -> AttentionTracker:
        """The attention tracker (levels, back-pressure for devices)."""
        ...

    @property
    def store(self) -> Store:
        """The store every accepted batch is appended to."""
        ...

    @property
    def closed(self) -> bool:
        """True once the engine has begun to close."""
        ...

    def health(self) -> dict[str, Any]:
        """A JSON-able snapshot of sensors, load, attention, storage and bus."""
        ...


class Experimenting(Protocol):
    """The experiment calls a control room makes (:mod:`sensocto_lab.engine.experiment`)."""

    async def mark(
        self, label: str, *, room: str | None = ..., value: Any = ..., source: Any = ...
    ) -> Event: ...

    async def begin_condition(
        self, label: str, *, room: str | None = ..., value: Any = ..., source: Any = ...
    ) -> Event: ...

    async def end_condition(
        self, label: str | None = ..., *, room: str | None = ..., source: Any = ...
    ) -> Event: ...
