"""Marking the experiment: markers, conditions and a scheduled protocol, recorded live.

The engine's experiment calls (:class:`Experiment`, mixed into
:class:`~sensocto_lab.engine.engine.Engine`)::

    await engine.mark("bell", room="lab", value={"trial": 3})
    await engine.begin_condition("task", room="lab")
    await engine.end_condition(room="lab")                 # the innermost open one
    run = await engine.run_protocol("lab", [("baseline", 300), ("task", 600)])
    await run            # or: await run.cancel() (ends the open condition)

Every event is validated, written to the store's WAL (acknowledged events survive
``kill -9``, as samples do) and only then published on the bus as
``events:{room}`` (:func:`~sensocto_lab.engine.topics.events`). Conditions may overlap
and nest within a room: each label can be open once per room, ``end_condition()``
without a label ends the one begun last. Open conditions are the engine's memory
until they end; on disk a running condition is its begin event (see
:mod:`sensocto_lab.events`), so a crash leaves it open-ended, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sensocto_lab.clock import Clock
from sensocto_lab.engine import topics
from sensocto_lab.engine.bus import Bus
from sensocto_lab.engine.host import on_engine_loop
from sensocto_lab.errors import ConfigError, UnknownSensorError, ValidationError
from sensocto_lab.events import Event, EventSource, condition_begin, condition_end
from sensocto_lab.model import SensorInfo, check_id
from sensocto_lab.storage.base import Store

__all__ = ["Experiment", "ExperimentLog", "ProtocolRun"]


class _EngineState(Protocol):
    """What the experiment calls use of the engine they are mixed into."""

    _loop: asyncio.AbstractEventLoop | None
    _experiment: ExperimentLog
    clock: Clock
    bus: Bus

    @property
    def store(self) -> Store: ...

    @property
    def sensors(self) -> Mapping[str, SensorInfo]: ...

    def _check_open(self) -> None: ...


@dataclass(slots=True)
class _Open:
    label: str
    begin: Event


class ExperimentLog:
    """The engine's record of the experiment: open conditions per room (engine loop only)."""

    def __init__(self, engine: _EngineState) -> None:
        self._engine = engine
        self._open: dict[str | None, list[_Open]] = {}

    def record(self, events: Sequence[Event]) -> list[Event]:
        """Validate, store (all or none), then publish ``events``; returns them validated."""
        engine = self._engine
        checked = [e.validated() for e in events]
        sensors = engine.sensors
        for event in checked:
            if event.sensor is not None and event.sensor not in sensors:
                raise UnknownSensorError(
                    f"event {event.label!r} names sensor {event.sensor!r}, which is not registered",
                    reason="unknown_sensor",
                )
        engine.store.append_events(checked)
        for event in checked:
            engine.bus.publish(topics.events(event.room), event)
        return checked

    def open_conditions(self, room: str | None) -> list[str]:
        return [c.label for c in self._open.get(room, [])]

    def begin(self, event: Event) -> Event:
        opened = self._open.setdefault(event.room, [])
        if any(c.label == event.label for c in opened):
            raise ValidationError(
                f"condition {event.label!r} is already running in room {event.room!r}; "
                "end it first",
                reason="condition_open",
            )
        (stored,) = self.record([event])
        opened.append(_Open(event.label, stored))
        return stored

    def end(self, label: str | None, room: str | None, onset_ns: int, source: EventSource) -> Event:
        opened = self._open.get(room, [])
        if not opened:
            raise ValidationError(
                f"no condition is running in room {room!r}", reason="no_open_condition"
            )
        if label is None:
            index = len(opened) - 1
        else:
            names = [c.label for c in opened]
            if label not in names:
                raise ValidationError(
                    f"condition {label!r} is not running in room {room!r} "
                    f"(running: {', '.join(names)})",
                    reason="no_open_condition",
                )
            index = names.index(label)
        begin = opened[index].begin
        end = condition_end(begin.label, max(onset_ns, begin.onset_ns), room=room, source=source)
        self.record([end])
        del opened[index]
        inner = begin.value.get("value") if isinstance(begin.value, dict) else None
        duration = (end.onset_ns - begin.onset_ns) / 1e9
        return Event(
            begin.onset_ns, begin.label, "condition", duration, room, None, None, inner, source
        )


class ProtocolRun:
    """A protocol running on the engine's loop; ``await`` it, or :meth:`cancel` it.

    Attributes
    ----------
    room
        The room whose conditions it sets.
    schedule
        ``(label, seconds)`` pairs, in order.
    """

    def __init__(
        self, room: str, schedule: tuple[tuple[str, float], ...], task: asyncio.Task[None]
    ) -> None:
        self.room = room
        self.schedule = schedule
        self._task = task
        self.current: str | None = None

    def __repr__(self) -> str:
        state = "done" if self._task.done() else f"in {self.current!r}"
        return f"<ProtocolRun {self.room!r} {state}>"

    @property
    def done(self) -> bool:
        """True once the schedule ran out or was cancelled."""
        return self._task.done()

    async def wait(self) -> None:
        """Wait until the last condition has ended (from any loop)."""
        loop = self._task.get_loop()
        if asyncio.get_running_loop() is loop:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)
            return
        future = asyncio.run_coroutine_threadsafe(self._wait_here(), loop)
        await asyncio.wrap_future(future)

    async def _wait_here(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)

    async def cancel(self) -> None:
        """Stop the schedule now; the condition it had open ends at this moment."""
        self._task.get_loop().call_soon_threadsafe(self._task.cancel)
        await self.wait()

    def __await__(self) -> Any:
        return self.wait().__await__()


class Experiment:
    """The experiment calls of the engine (mixed into :class:`Engine`; see the module doc)."""

    _loop: asyncio.AbstractEventLoop | None
    _experiment: ExperimentLog
    clock: Clock
    bus: Bus
    if TYPE_CHECKING:  # the engine's own

        @property
        def store(self) -> Store: ...

        def _check_open(self) -> None: ...

    @on_engine_loop
    async def record_events(self, events: Sequence[Event]) -> list[Event]:
        """Record events made elsewhere (a device, LSL, an import); returns them validated.

        All or none: one invalid event raises :class:`ValidationError` and nothing is
        stored. Stored before they are published on ``events:{room}``.
        """
        self._check_open()
        return self._experiment.record(events)

    @on_engine_loop
    async def mark(
        self,
        label: str,
        *,
        room: str | None = None,
        sensor: str | None = None,
        participant: str | None = None,
        value: Any = None,
        source: EventSource = "notebook",
        onset_ns: int | None = None,
    ) -> Event:
        """Record a marker now (or at ``onset_ns``, ns since the epoch); returns it.

        ``value`` is small JSON (≤ 4 KiB). Raises :class:`ValidationError` for an empty
        or over-long label (> 256 characters), a bad id, a non-JSON value or an onset
        outside 2000–2199, and :class:`UnknownSensorError` for an unregistered sensor.
        """
        self._check_open()
        at = self.clock.time_ns() if onset_ns is None else onset_ns
        event = Event(at, label, "marker", 0.0, room, sensor, participant, value, source)
        (stored,) = self._experiment.record([event])
        return stored

    @on_engine_loop
    async def begin_condition(
        self,
        label: str,
        *,
        room: str | None = None,
        value: Any = None,
        source: EventSource = "notebook",
    ) -> Event:
        """Begin condition ``label`` in ``room`` now; recorded at once (crash-safe).

        Conditions may nest or overlap; the same label cannot run twice in one room
        (:class:`ValidationError`, reason ``condition_open``).
        """
        self._check_open()
        begin = condition_begin(label, self.clock.time_ns(), room=room, value=value, source=source)
        return self._experiment.begin(begin)

    @on_engine_loop
    async def end_condition(
        self, label: str | None = None, *, room: str | None = None, source: EventSource = "notebook"
    ) -> Event:
        """End condition ``label`` (default: the one begun last) in ``room``; returns the
        whole condition (onset, duration). :class:`ValidationError` ``no_open_condition``
        when none (or not that one) is running."""
        self._check_open()
        return self._experiment.end(label, room, self.clock.time_ns(), source)

    def conditions(self, room: str | None = None) -> list[str]:
        """The conditions running in ``room`` now, the one begun last at the end."""
        return self._experiment.open_conditions(room)

    @on_engine_loop
    async def run_protocol(
        self, room: str, schedule: Sequence[tuple[str, float]], *, source: EventSource = "protocol"
    ) -> ProtocolRun:
        """Run ``schedule`` (``(label, seconds)`` pairs) as consecutive conditions of ``room``.

        Returns at once with a :class:`ProtocolRun` to await or cancel; cancelling (or
        closing the engine) ends the open condition at that moment. Time is the engine's
        clock, so a fake clock drives a protocol in tests.
        """
        self._check_open()
        check_id(room, "room")
        steps = tuple((str(label), float(seconds)) for label, seconds in schedule)
        if not steps or any(not (s > 0) or s == float("inf") for _, s in steps):
            raise ConfigError("a protocol is one or more (label, seconds > 0) steps")
        for label, _ in steps:
            Event(self.clock.time_ns(), label, "condition").validated()
        holder: list[ProtocolRun] = []
        task = asyncio.get_running_loop().create_task(
            self._protocol(room, steps, source, holder), name=f"protocol {room}"
        )
        run = ProtocolRun(room, steps, task)
        holder.append(run)
        return run

    async def _protocol(
        self,
        room: str,
        steps: tuple[tuple[str, float], ...],
        source: EventSource,
        holder: list[ProtocolRun],
    ) -> None:
        clock = self.clock
        for label, seconds in steps:
            self._experiment.begin(
                condition_begin(label, self.clock.time_ns(), room=room, source=source)
            )
            if holder:
                holder[0].current = label
            try:
                await clock.sleep(seconds)
            finally:
                with contextlib.suppress(Exception):  # the engine may be closing
                    self._experiment.end(label, room, self.clock.time_ns(), source)
        if holder:
            holder[0].current = None

    @on_engine_loop
    async def assign_participant(
        self, sensor_id: str, participant: str, role: str | None = None
    ) -> None:
        """Say who wears ``sensor_id`` (kept in the session's ``session.json``).

        ``history()`` then carries a ``participant`` coordinate, dashboards show the
        participant's id. A sensor belongs to one participant at a time.
        """
        self._check_open()
        check_id(sensor_id, "sensor_id")
        check_id(participant, "participant")
        self.store.assign_participant(sensor_id, participant, role)
