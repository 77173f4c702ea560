"""Publishing a room to LSL: ``pub = await publish_lsl(engine, room="lab")``.

A function of ``sources`` taking the engine (the engine never imports sources). A
task the engine owns follows the room's batches (``room:{room}``) and events
(``events:{room}``) on the bus and pushes them to LSL outlets, created when a
sensor's first batch arrives (so sensors that join later are published too):

- per sensor, its scalar attributes of one regular rate go out as one stream, one
  channel each (labels and units in ``desc/channels``; samples of the channels are
  paired in arrival order, as the engine stores an LSL stream's channels with the
  same stamps); a vector attribute (accelerometer x, y, z) is one stream of its
  components; an irregular attribute (RR, HR, button; rate 0) is its own stream with
  ``nominal_srate`` 0;
- the room's live synchrony, sensor ``sync:{room}``, is published like any sensor;
- the room's events go out as one string stream ``{room}-events`` (type
  ``Markers``): a marker's label, a condition's ``label/begin`` and ``label/end``.

Stamps are the samples' own times (engine ns → this machine's ``local_clock()`` via
one :class:`~sensocto_lab.sources.lsl.discovery.ClockMap`). Source ids are
``sensocto:{room}:{sensor}:{group}``, so a recorder on the same machine can leave our
own streams out (``record_lsl(engine, "not(starts-with(source_id,'sensocto:'))")``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from sensocto_lab.engine import topics
from sensocto_lab.engine.bus import Overflow, Subscription
from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.host import run_on
from sensocto_lab.events import Event, condition_phase
from sensocto_lab.io.series import IRREGULAR_KINDS
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo, check_id
from sensocto_lab.sources.lsl.discovery import ClockMap, set_channel_desc

if TYPE_CHECKING:
    import pylsl

__all__ = ["LslPublisher", "publish_lsl"]

log = logging.getLogger(__name__)

_SKIP = {"lsl_offset"}


def _rate(attribute: AttributeInfo) -> float:
    if attribute.kind.name in IRREGULAR_KINDS:
        return 0.0
    return float(attribute.effective_rate_hz)


class _Group:
    """One outlet: a sensor's attributes that share a rate (or one vector attribute)."""

    def __init__(self, key: str, info: SensorInfo, attrs: list[AttributeInfo], rate: float):
        self.key = key
        self.sensor_id = info.sensor_id
        self.attrs = [a.attribute_id for a in attrs]
        self.rate = rate
        self.pending: dict[str, list[Batch]] = defaultdict(list)
        self.outlet: pylsl.StreamOutlet | None = None
        self.info = info
        self.attr_infos = attrs
        self.pushed = 0

    def open(self, room: str) -> None:
        import pylsl

        labels: list[str] = []
        units: list[str] = []
        for a in self.attr_infos:
            if a.kind.is_vector:
                labels += [f"{a.attribute_id}_{c}" for c in a.kind.components]
                units += [a.effective_unit] * a.kind.width
            else:
                labels.append(a.attribute_id)
                units.append(a.effective_unit)
        fmt = (
            pylsl.cf_float32
            if all(a.kind.dtype == "float32" for a in self.attr_infos)
            else (pylsl.cf_double64)
        )
        name = self.sensor_id if len(self.attrs) > 1 else f"{self.sensor_id}/{self.attrs[0]}"
        stream = pylsl.StreamInfo(
            name,
            self.info.sensor_type or "sensocto",
            len(labels),
            self.rate,
            fmt,
            f"sensocto:{room}:{self.sensor_id}:{self.key}",
        )
        set_channel_desc(stream, labels, units)
        self.outlet = pylsl.StreamOutlet(stream, chunk_size=0, max_buffered=360)

    def take(self, batch: Batch) -> tuple[np.ndarray, np.ndarray] | None:
        """Add a batch; return ``(ts_ns, values (n, channels))`` ready to push, if any."""
        if len(self.attrs) == 1:
            values = batch.values.reshape(len(batch), -1)
            return batch.ts, values
        self.pending[batch.attribute_id].append(batch)
        counts = [sum(len(b) for b in self.pending[a]) for a in self.attrs]
        n = min(counts)
        if n == 0:
            return None
        columns = []
        ts = None
        for a in self.attrs:
            parts = self.pending[a]
            joined_ts = np.concatenate([b.ts for b in parts])
            joined = np.concatenate([b.values.reshape(len(b)) for b in parts])
            if ts is None:
                ts = joined_ts[:n]
            columns.append(joined[:n])
            rest = len(joined) - n
            self.pending[a] = [Batch(self.sensor_id, a, joined_ts[n:], joined[n:])] if rest else []
        assert ts is not None
        return ts, np.column_stack(columns)


class LslPublisher:
    """A room being published to LSL; make one with :func:`publish_lsl`."""

    def __init__(self, engine: Engine, room: str, sensors: list[str] | None) -> None:
        self.engine = engine
        self.room = room
        self.sensors = None if sensors is None else set(sensors) | {topics.sync_sensor(room)}
        self.clock = ClockMap.measure(engine.clock.time_ns)
        self.task_name = f"lsl-out:{room}:{id(self):x}"
        self._groups: dict[tuple[str, str], _Group] = {}
        self._markers: pylsl.StreamOutlet | None = None
        self._data_sub: Subscription | None = None
        self._event_sub: Subscription | None = None
        self.events_pushed = 0

    def __repr__(self) -> str:
        return f"<LslPublisher room={self.room!r} outlets={len(self.outlets)}>"

    @property
    def outlets(self) -> dict[str, str]:
        """``{stream name: source_id}`` of the outlets open now."""
        out = {}
        for g in list(self._groups.values()):
            if g.outlet is not None:
                info = g.outlet.get_info()
                out[info.name()] = info.source_id()
        if self._markers is not None:
            out[f"{self.room}-events"] = f"sensocto:{self.room}:events"
        return out

    def statistics(self) -> dict[str, Any]:
        """Samples pushed per outlet and events pushed."""
        return {
            "samples": {f"{g.sensor_id}:{g.key}": g.pushed for g in self._groups.values()},
            "events": self.events_pushed,
        }

    def _group_of(self, batch: Batch) -> _Group | None:
        sensor = self.engine.sensors.get(batch.sensor_id)
        attr = sensor.attributes.get(batch.attribute_id) if sensor else None
        if sensor is None or attr is None or attr.attribute_id in _SKIP:
            return None
        rate = _rate(attr)
        if attr.kind.is_vector or rate <= 0:
            key, members = attr.attribute_id, [attr]
        else:
            key = f"{rate:g}Hz"
            members = [
                a
                for a in sensor.attributes.values()
                if a.attribute_id not in _SKIP and not a.kind.is_vector and _rate(a) == rate
            ]
        group = self._groups.get((sensor.sensor_id, key))
        if group is None:
            group = _Group(key, sensor, members, rate)
            group.open(self.room)
            self._groups[(sensor.sensor_id, key)] = group
        return group

    async def _subscribe(self) -> None:
        """Subscribe to the room's topics (on the engine loop, before the task runs)."""
        bus = self.engine.bus
        if self._data_sub is None:
            self._data_sub = bus.subscribe(
                topics.room(self.room), maxsize=4096, policy=Overflow.DROP_OLDEST
            )
        if self._event_sub is None:
            self._event_sub = bus.subscribe(topics.events(self.room), maxsize=1024)

    async def _samples(self) -> None:
        sub = self._data_sub
        assert sub is not None
        try:
            async for batch in sub:
                if self.sensors is not None and batch.sensor_id not in self.sensors:
                    continue
                group = self._group_of(batch)
                ready = group.take(batch) if group is not None else None
                if group is None or ready is None or group.outlet is None:
                    continue
                ts, values = ready
                stamps = self.clock.to_lsl(ts).tolist()
                group.outlet.push_chunk(np.ascontiguousarray(values).tolist(), stamps)
                group.pushed += len(stamps)
        finally:
            sub.close()

    async def _events(self) -> None:
        import pylsl

        sub = self._event_sub
        assert sub is not None
        try:
            async for event in sub:
                if not isinstance(event, Event):
                    continue
                if self._markers is None:
                    info = pylsl.StreamInfo(
                        f"{self.room}-events",
                        "Markers",
                        1,
                        pylsl.IRREGULAR_RATE,
                        pylsl.cf_string,
                        f"sensocto:{self.room}:events",
                    )
                    self._markers = pylsl.StreamOutlet(info)
                phase = condition_phase(event.kind, event.value)
                text = event.label if phase is None else f"{event.label}/{phase}"
                stamp = float(self.clock.to_lsl(np.array([event.onset_ns]))[0])
                self._markers.push_sample([text], stamp)
                self.events_pushed += 1
        finally:
            sub.close()

    async def _run(self) -> None:
        await self._subscribe()  # again after a restart
        try:
            await asyncio.gather(self._samples(), self._events())
        finally:
            for sub in (self._data_sub, self._event_sub):
                if sub is not None:
                    sub.close()
            self._data_sub = self._event_sub = None
            self._groups.clear()  # the outlets close as they are released
            self._markers = None

    async def stop(self) -> None:
        """Stop publishing and close the outlets."""
        await self.engine.stop_task(self.task_name)


async def publish_lsl(
    engine: Engine, *, room: str = "default", sensors: list[str] | None = None
) -> LslPublisher:
    """Publish ``room``'s sensors, its live synchrony and its events as LSL streams.

    Parameters
    ----------
    engine
        A started engine.
    room
        The room to publish.
    sensors
        Only these sensors (``None``: every sensor of the room, also later ones);
        ``sync:{room}`` is published either way.

    Returns
    -------
    LslPublisher
        ``await pub.stop()`` closes the outlets; ``pub.outlets``, ``pub.statistics()``.
    """
    check_id(room, "room")
    pub = LslPublisher(engine, room, sensors)
    await run_on(engine.loop, pub._subscribe)  # from here on nothing of the room is missed
    await engine.start_task(pub.task_name, pub._run)
    return pub
