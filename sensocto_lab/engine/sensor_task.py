"""One sensor's runtime state in the engine and the supervised task that drains its queue.

A batch for an idle sensor (running, nothing queued, nothing held) is processed on its
caller's path, without this task (``docs/engine-scale.md``); the others are queued here,
and the task takes them one by one and awaits the engine's ``process`` for each
(validate, stamp, store, publish). A peer's bad batch or a store's refusal goes back to
that batch's caller; any other exception is a crash, which the supervisor restarts,
retrying the held batch ``retries`` times before failing it back with
:class:`LocalError`: never dropped silently. A crash on a caller's path is handed over
(:meth:`SensorRuntime.hand_crash`): this task raises it, the supervisor restarts it, and
it retries that batch first, so order and restart policy are the same on both paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sensocto_lab.engine import topics
from sensocto_lab.engine.status import SensorState
from sensocto_lab.errors import LocalError, SensoctoError
from sensocto_lab.model import AttentionLevel, Batch, SensorInfo

__all__ = ["WAKE", "Pending", "SensorRuntime", "crashed_error", "run_sensor"]


@dataclass(slots=True, eq=False)
class Pending:
    """One batch waiting in (or held by) a sensor task, with its caller's future."""

    batch: Batch
    future: asyncio.Future[Batch]
    attempts: int = 0


class _Wake:
    """Queued to wake an idle sensor task that has a crash to raise."""

    __slots__ = ()


WAKE = _Wake()
#: ``process(sensor, batch)``: the engine's validate, stamp, store, publish.
Process = Callable[["SensorRuntime", Batch], Coroutine[Any, Any, Batch]]


@dataclass(slots=True, eq=False)
class SensorRuntime:
    """The engine's runtime state of one registered sensor (engine loop only)."""

    info: SensorInfo
    queue: asyncio.Queue[Pending | _Wake | None]
    state: SensorState = SensorState.REGISTERED
    level: AttentionLevel = AttentionLevel.NONE
    inflight: Pending | None = None
    #: a batch of this sensor is being processed on its caller's path
    busy: bool = False
    #: a crash on a caller's path, for the task to raise
    crash: Exception | None = None
    samples: int = 0
    batches: int = 0
    topic_data: str = ""
    topic_room: str = ""

    def __post_init__(self) -> None:
        self.topic_data = topics.data(self.info.sensor_id)
        self.topic_room = topics.room(self.info.room)

    @property
    def idle(self) -> bool:
        """Running with nothing queued, held or in progress: a batch may skip the task."""
        return (
            not self.busy
            and self.inflight is None
            and self.state is SensorState.RUNNING
            and self.queue.empty()
        )

    def hand_crash(self, batch: Batch, exc: Exception, retries: int) -> asyncio.Future[Batch]:
        """Give the task a crash that ``batch`` caused on its caller's path (sensor idle).

        The task raises ``exc`` (the supervisor restarts it as for its own crash) and
        then retries ``batch`` first, unless ``retries`` is 0: then it is failed back
        now with :class:`LocalError`. Returns the future of the batch's outcome.
        """
        item = Pending(batch, asyncio.get_running_loop().create_future(), attempts=1)
        if item.attempts > retries:
            item.future.set_exception(crashed_error(item, exc))
        else:
            self.inflight = item
        self.crash = exc
        if self.queue.empty():
            self.queue.put_nowait(WAKE)  # the task waits in queue.get()
        return item.future

    def fail_pending(self, error: Exception) -> None:
        """Fail the held batch and every queued one back to their callers with ``error``."""
        items: list[Pending | _Wake | None] = [self.inflight]
        self.inflight = None
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        for item in items:
            if isinstance(item, Pending) and not item.future.done():
                item.future.set_exception(error)


def crashed_error(item: Pending, exc: Exception) -> LocalError:
    """What the caller of a batch that crashed its task ``item.attempts`` times gets."""
    return LocalError(
        f"processing {item.batch} crashed {item.attempts} times: {exc!r}",
        reason="sensor_crashed",
    )


async def run_sensor(sensor: SensorRuntime, process: Process, retries: int) -> None:
    """The sensor task: take queued batches one by one until the stop sentinel."""
    while True:
        if sensor.crash is not None:  # handed over from a caller's path
            crash, sensor.crash = sensor.crash, None
            raise crash
        item = sensor.inflight
        if item is None:
            got = await sensor.queue.get()
            if got is None:
                return
            if isinstance(got, _Wake):
                continue
            item = sensor.inflight = got
        item.attempts += 1
        try:
            stamped = await process(sensor, item.batch)
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
                    item.future.set_exception(crashed_error(item, exc))
            raise
        sensor.inflight = None
        if not item.future.done():
            item.future.set_result(stamped)
