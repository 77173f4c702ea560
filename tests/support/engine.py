"""Shared pieces of the engine tests: a real in-memory store and small batch builders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sensocto_lab.errors import ClosedResourceError
from sensocto_lab.events import Event
from sensocto_lab.model import AttributeInfo, Batch, KindSpec, SensorInfo
from sensocto_lab.storage import event_log
from sensocto_lab.storage.session import SessionInfo

T0 = 1_767_225_600 * 10**9
WAIT = 10.0  # generous ceiling for events that normally take microseconds


class MemoryStore:
    """The ``Store`` protocol over Python lists: enough to check what the engine stored."""

    def __init__(self) -> None:
        self.batches: dict[tuple[str, str], list[Batch]] = defaultdict(list)
        self.rooms: dict[str, str] = {}
        self.scale = 1.0
        self.closed = False
        self.fail_next: Exception | None = None
        self.recorded_events: list[Event] = []
        self._session = SessionInfo()

    def append(self, batch: Batch, *, room: str, kind: KindSpec) -> None:
        if self.closed:
            raise ClosedResourceError("store closed")
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        assert batch.recv_ts is not None and batch.seq is not None
        self.batches[(batch.sensor_id, batch.attribute_id)].append(batch)
        self.rooms[batch.sensor_id] = room

    def next_seq(self, sensor_id: str, attribute_id: str) -> int:
        got = self.batches[(sensor_id, attribute_id)]
        return int(got[-1].seq[-1]) + 1 if got and got[-1].seq is not None else 0

    def last_ts(self, sensor_id: str, attribute_id: str) -> int | None:
        ts, _ = self.latest(sensor_id, attribute_id, 1)
        return int(ts[-1]) if len(ts) else None

    def latest(self, sensor_id: str, attribute_id: str, n: int | None = None) -> Any:
        got = self.batches[(sensor_id, attribute_id)]
        ts = np.concatenate([b.ts for b in got]) if got else np.empty(0, np.int64)
        values = np.concatenate([b.values for b in got]) if got else np.empty(0)
        return (ts, values) if n is None else (ts[-n:], values[-n:])

    def set_load_scale(self, scale: float) -> None:
        self.scale = scale

    def append_events(self, events: Sequence[Event]) -> None:
        if self.closed:
            raise ClosedResourceError("store closed")
        checked = [e.validated() for e in events]  # all or none, like the tiered store
        self.recorded_events.extend(checked)

    def events(
        self, room: Any = None, start: Any = None, end: Any = None, kind: Any = None
    ) -> pd.DataFrame:
        table = event_log.record_batch(self.recorded_events, 0)
        rooms = [room] if isinstance(room, str) else room
        kinds = [kind] if isinstance(kind, str) else kind
        return event_log.to_frame(pa_table(table), rooms, start, end, kinds)

    @property
    def session(self) -> SessionInfo:
        return self._session

    def assign_participant(self, sensor_id: str, participant: str, role: str | None = None) -> None:
        self._session = self._session.with_assignment(sensor_id, participant, role)

    def update_session(self, *, name: Any = None, notes: Any = None, end: Any = None) -> None:
        raise NotImplementedError("session metadata is the tiered store's")

    def history(
        self, sensors: Any = None, attributes: Any = None, start: Any = None, end: Any = None
    ) -> Any:
        raise NotImplementedError("history is the tiered store's; not used by these tests")

    def statistics(self) -> dict[str, Any]:
        return {"samples_appended": self.samples(), "storage_lag_s": 0.0}

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def samples(self, sensor_id: str | None = None) -> int:
        return sum(
            len(b) for (sid, _), bs in self.batches.items() for b in bs if sensor_id in (None, sid)
        )

    def values(self, sensor_id: str, attribute_id: str) -> np.ndarray:
        return self.latest(sensor_id, attribute_id)[1]


def pa_table(batch: Any) -> Any:
    import pyarrow as pa

    return pa.Table.from_batches([batch])


def hr_sensor(sensor_id: str, room: str = "lab") -> SensorInfo:
    return SensorInfo(sensor_id, {"hr": AttributeInfo.of("hr")}, room=room)


def hr_batch(sensor_id: str, start: int, n: int = 5, attribute: str = "hr") -> Batch:
    """``n`` samples 10 ms apart, values start, start+1, ... (so order and loss show)."""
    ts = T0 + np.arange(start, start + n, dtype=np.int64) * 10_000_000
    return Batch(sensor_id, attribute, ts, np.arange(start, start + n, dtype=np.float64))
