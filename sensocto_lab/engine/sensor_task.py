"""One sensor's runtime state in the engine and the supervised task that drains its queue.

The task takes queued batches one by one and hands each to the engine's ``process``
(validate, stamp, store, publish: one step on the loop). A peer's bad batch or a store's
refusal goes back to that batch's caller; any other exception is a crash, which the
supervisor restarts, retrying the held batch ``retries`` times before failing it back with
:class:`LocalError`: never dropped silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sensocto_lab.engine import topics
from sensocto_lab.engine.status import SensorState
from sensocto_lab.errors import LocalError, SensoctoError
from sensocto_lab.model import AttentionLevel, Batch, SensorInfo

__all__ = ["Pending", "SensorRuntime", "run_sensor"]


@dataclass(slots=True, eq=False)
class Pending:
    """One batch waiting in (or held by) a sensor task, with its caller's future."""

    batch: Batch
    future: asyncio.Future[Batch]
    attempts: int = 0


@dataclass(slots=True, eq=False)
class SensorRuntime:
    """The engine's runtime state of one registered sensor (engine loop only)."""

    info: SensorInfo
    queue: asyncio.Queue[Pending | None]
    state: SensorState = SensorState.REGISTERED
    level: AttentionLevel = AttentionLevel.NONE
    inflight: Pending | None = None
    samples: int = 0
    batches: int = 0
    topic_data: str = ""
    topic_room: str = ""

    def __post_init__(self) -> None:
        self.topic_data = topics.data(self.info.sensor_id)
        self.topic_room = topics.room(self.info.room)

    def fail_pending(self, error: Exception) -> None:
        """Fail the held batch and every queued one back to their callers with ``error``."""
        items: list[Pending | None] = [self.inflight]
        self.inflight = None
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        for item in items:
            if item is not None and not item.future.done():
                item.future.set_exception(error)


async def run_sensor(
    sensor: SensorRuntime, process: Callable[[SensorRuntime, Batch], Batch], retries: int
) -> None:
    """The sensor task: take queued batches one by one until the stop sentinel."""
    while True:
        item = sensor.inflight
        if item is None:
            item = await sensor.queue.get()
            if item is None:
                return
            sensor.inflight = item
        item.attempts += 1
        try:
            stamped = process(sensor, item.batch)
        except SensoctoError as exc:
            # The peer's bad batch, or storage refusing it: that caller's problem only.
            sensor.inflight = None
            if not item.future.done():
                item.future.set_exception(exc)
            continue
        except Exception as exc:
            if item.attempts > retries:
                sensor.inflight = None
                if not item.future.done():
                    item.future.set_exception(
                        LocalError(
                            f"processing {item.batch} crashed {item.attempts} times: {exc!r}",
                            reason="sensor_crashed",
                        )
                    )
            raise
        sensor.inflight = None
        if not item.future.done():
            item.future.set_result(stamped)
