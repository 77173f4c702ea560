"""Reading the store: a snapshot of the WAL merged with Parquet, as tables, xarray or events.

Every sample (and event) is read exactly once (``docs/storage.md``):

* Each WAL generation is read from exactly one place: from its WAL files while they
  exist above the commit point, else from its Parquet parts.
* Readers take a snapshot under the store's lock: the generations to read from the
  WAL, with the bytes of their complete records (memory-mapped, so a concurrent
  compaction cannot pull them away); parts of those generations are skipped.

Recent windows of named series are served from the rings when they provably hold
everything Parquet and the WAL would return (:meth:`StoreReader.from_memory`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

import sensocto_lab.storage.cold as cold
import sensocto_lab.storage.event_log as event_log
from sensocto_lab.errors import ValidationError
from sensocto_lab.model import KINDS, KindSpec
from sensocto_lab.storage.history import Loader, SeriesSource, build_dataset
from sensocto_lab.storage.state import SeriesKey, StoreState
from sensocto_lab.storage.wal import Chunk, concat_chunks, list_segments
from sensocto_lab.storage.wal_read import read_records, read_segment

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SeriesArrays", "StoreReader", "StoredSeries", "WalSnapshot", "to_ns"]


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """One recorded (sensor, attribute): where it is partitioned and what kind it is."""

    room: str
    sensor_id: str
    attribute_id: str
    kind: str


@dataclass(slots=True)
class SeriesArrays:
    """Samples of one series, concatenated."""

    ts: npt.NDArray[np.int64]
    recv_ts: npt.NDArray[np.int64]
    seq: npt.NDArray[np.int64]
    values: npt.NDArray[Any]

    @classmethod
    def concat(cls, chunks: list[Chunk]) -> SeriesArrays:
        c = concat_chunks(chunks)
        return cls(c.ts, c.recv_ts, c.seq, c.values)

    @classmethod
    def empty(cls) -> SeriesArrays:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))

    def select(self, start: int | None, end: int | None) -> SeriesArrays:
        if start is None and end is None:
            return self
        keep = np.ones(self.ts.shape[0], dtype=bool)
        if start is not None:
            keep &= self.ts >= start
        if end is not None:
            keep &= self.ts < end
        return SeriesArrays(self.ts[keep], self.recv_ts[keep], self.seq[keep], self.values[keep])


#: What a reader found of one series: its kind, its Parquet parts, its WAL samples.
Found = tuple[KindSpec, list[cold.ColdPart], SeriesArrays | None]


@dataclass(frozen=True, slots=True)
class WalSnapshot:
    """Generations to read from the WAL, and the bytes of their complete records."""

    generations: set[int]
    samples: list[pa.Buffer]
    events: list[pa.Buffer]


def to_ns(value: Any) -> int | None:
    """A time bound as int ns since the epoch (UTC); naive datetimes are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"a time bound must be ns since the epoch, a datetime or an ISO string; "
            f"got {value!r:.60}",
            reason="invalid_time",
        ) from exc
    if stamp is pd.NaT:
        raise ValidationError("a time bound cannot be NaT", reason="invalid_time")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value)


class StoreReader:
    """The store's read side (see the module docstring)."""

    def __init__(self, state: StoreState, read_commit: Any) -> None:
        self._s = state
        self._read_commit = read_commit  # () -> int | None, the commit point on disk
        self._prior_max_ts: dict[SeriesKey, int] = {}

    # -- the WAL snapshot ------------------------------------------------------------

    def snapshot(self) -> WalSnapshot:
        """The WAL to read now (see the module docstring).

        A read-only store follows the writer's commit point on disk: a generation
        compacted (and its files deleted) while the snapshot was taken shows up as a
        missing file, and the snapshot is taken again.
        """
        while True:
            try:
                with self._s.lock:
                    return self._snapshot_locked()
            except FileNotFoundError:
                if not self._s.read_only:
                    raise

    def _snapshot_locked(self) -> WalSnapshot:
        s = self._s
        if s.read_only:
            s.committed = self._read_commit() or 0
            open_files = {}
        else:
            open_files = s.writer.files
        snap = WalSnapshot(set(), [], [])
        for seg in list_segments(s.wal_dir):
            if seg.generation <= s.committed:
                continue
            mm = pa.memory_map(str(seg.path))
            size = open_files.get(seg.path, mm.size())
            (snap.events if seg.is_events else snap.samples).append(mm.read_buffer(size))
            snap.generations.add(seg.generation)
        return snap

    def _wal_series(
        self,
        buffers: Iterable[pa.Buffer],
        sensors: Sequence[str] | None,
        attributes: Sequence[str] | None,
    ) -> dict[SeriesKey, tuple[str, SeriesArrays]]:
        groups: dict[SeriesKey, list[Chunk]] = {}
        kinds: dict[SeriesKey, str] = {}

        def keep(sensor: str, attribute: str) -> bool:
            return (sensors is None or sensor in sensors) and (
                attributes is None or attribute in attributes
            )

        for buf in buffers:
            for c in read_segment(buf, keep).chunks:
                key = (c.sensor_id, c.attribute_id)
                groups.setdefault(key, []).append(c)
                kinds[key] = c.kind
        return {k: (kinds[k], SeriesArrays.concat(v)) for k, v in groups.items()}

    def sources(
        self,
        sensors: Sequence[str] | None,
        attributes: Sequence[str] | None,
        start: int | None,
        end: int | None,
    ) -> dict[SeriesKey, Found]:
        """Where each selected series' samples are: its kind, Parquet parts, WAL arrays."""
        s = self._s
        snap = self.snapshot()
        wal = self._wal_series(snap.samples, sensors, attributes)
        parts: dict[SeriesKey, list[cold.ColdPart]] = {}
        for p in cold.list_parts(s.cold_dir, sensors, attributes, start, end, snap.generations):
            parts.setdefault((p.sensor_id, p.attribute_id), []).append(p)
        out: dict[SeriesKey, Found] = {}
        for key in sorted(set(wal) | set(parts)):
            with s.lock:
                known = s.series.get(key)
            if key in wal:
                kind = KINDS.get(wal[key][0], KINDS["numeric"])
            elif known is not None:
                kind = known.kind
            else:
                kind = cold.kind_of_part(parts[key][-1])
            w = wal.get(key)
            out[key] = (kind, parts.get(key, []), None if w is None else w[1])
        return out

    def wal_chunks(self) -> list[Chunk]:
        """Every sample chunk of the WAL snapshot (a read-only store's series list)."""
        return [c for buf in self.snapshot().samples for c in read_segment(buf).chunks]

    # -- samples -----------------------------------------------------------------------

    @staticmethod
    def load(
        parts: list[cold.ColdPart],
        wal: SeriesArrays | None,
        start: int | None,
        end: int | None,
        with_values: bool,
    ) -> SeriesArrays:
        """One series' samples in ``[start, end)`` from Parquet then WAL, in seq order."""
        pieces: list[SeriesArrays] = []
        if parts:
            t = cold.read_series(parts, start, end, with_values=with_values)
            n = t.num_rows
            values: npt.NDArray[Any] = np.zeros(0)
            if with_values:
                col = t.column("value").combine_chunks()
                if isinstance(col.type, pa.FixedSizeListType):
                    values = col.flatten().to_numpy().reshape(n, col.type.list_size)
                else:
                    values = col.to_numpy()
            pieces.append(
                SeriesArrays(
                    _ns(t.column("ts")),
                    _ns(t.column("recv_ts")),
                    t.column("seq").to_numpy(),
                    values,
                )
            )
        if wal is not None:
            w = wal.select(start, end)
            pieces.append(w if with_values else SeriesArrays(w.ts, w.recv_ts, w.seq, np.zeros(0)))
        if not pieces:
            return SeriesArrays.empty()
        if len(pieces) == 1:
            return pieces[0]
        return SeriesArrays(
            np.concatenate([p.ts for p in pieces]),
            np.concatenate([p.recv_ts for p in pieces]),
            np.concatenate([p.seq for p in pieces]),
            np.concatenate([p.values for p in pieces]) if with_values else np.zeros(0),
        )

    def read_table(self, sensor_id: str, attribute_id: str, start: Any, end: Any) -> pa.Table:
        """See :meth:`TieredStore.read_table <sensocto_lab.storage.tiered.TieredStore>`."""
        lo, hi = to_ns(start), to_ns(end)
        src = self.sources([sensor_id], [attribute_id], lo, hi).get((sensor_id, attribute_id))
        ts_type = pa.timestamp("ns", tz="UTC")
        if src is None:
            kind = KINDS["numeric"]
            a = SeriesArrays.empty()
        else:
            kind, parts, wal = src
            a = self.load(parts, wal, lo, hi, True)
        values = np.asarray(a.values, dtype=kind.dtype)
        value_arr = (
            pa.array(values)
            if kind.width == 1
            else pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), kind.width)
        )
        return pa.table(
            {
                "ts": pa.array(a.ts.view("datetime64[ns]")).cast(ts_type),
                "recv_ts": pa.array(a.recv_ts.view("datetime64[ns]")).cast(ts_type),
                "value": value_arr,
                "seq": pa.array(a.seq),
            }
        )

    def dataset(
        self,
        sensors: list[str] | None,
        attributes: list[str] | None,
        lo: int | None,
        hi: int | None,
        lazy: bool | None,
        spans: list[tuple[int, int]] | None = None,
    ) -> Any:
        """The history Dataset (see ``TieredStore.history``), without participant coords.

        ``spans`` (``[(start, end), ...]`` ns) keeps only samples inside one of them.
        """
        s = self._s
        memory = (
            None if lazy or spans is not None else self.from_memory(sensors, attributes, lo, hi)
        )
        found = memory if memory is not None else self.sources(sensors, attributes, lo, hi)
        if lazy is None:
            limit = s.config.lazy_threshold_samples
            estimate = sum(
                p.path.stat().st_size for _, parts, _ in found.values() for p in parts
            ) + sum(0 if w is None else w.ts.shape[0] for _, _, w in found.values())
            lazy = estimate > limit and self._count(found, lo, hi) > limit
        series = [
            SeriesSource(sensor, attr, kind, self._loader(parts, wal, spans))
            for (sensor, attr), (kind, parts, wal) in found.items()
        ]
        order = sensors if sensors is not None else sorted({sensor for sensor, _ in found})
        return build_dataset(
            series, order, lo, hi, lazy=lazy, chunk_samples=s.config.dask_chunk_samples
        )

    def from_memory(
        self,
        sensors: Sequence[str] | None,
        attributes: Sequence[str] | None,
        start: int | None,
        end: int | None,
    ) -> dict[SeriesKey, Found] | None:
        """The selection from the rings alone, or None if they may not hold all of it.

        They do when, for every series asked for, no sample that ever left its ring
        (or was stored in an earlier session) has a timestamp at or after ``start``:
        then the rings hold exactly what Parquet and the WAL would return, without
        reading a file. Recent windows of named series, as live notebooks ask for.
        """
        s = self._s
        if start is None or sensors is None or attributes is None:
            return None
        out: dict[SeriesKey, Found] = {}
        with s.lock:
            for key in ((sensor, a) for sensor in sensors for a in attributes):
                x = s.series.get(key)
                dropped = None if x is None else x.ring.dropped_max_ts
                if x is None or not x.gapless or (dropped is not None and dropped >= start):
                    return None
                ts, values, recv, seq = x.ring.snapshot()
                out[key] = (x.kind, [], SeriesArrays(ts, recv, seq, values).select(start, end))
        if any(self._prior_max(key) >= start for key in out):
            return None
        with s.lock:
            s.counters["histories_from_memory"] += 1
        return out

    def _prior_max(self, key: SeriesKey) -> int:
        """Latest device timestamp of the series in earlier sessions' Parquet parts."""
        cached = self._prior_max_ts.get(key)
        if cached is None:
            parts = [
                p
                for p in cold.list_parts(self._s.cold_dir, [key[0]], [key[1]])
                if p.last <= self._s.prior_generation
            ]
            cached = cold.max_ts(parts)
            self._prior_max_ts[key] = cached
        return cached

    def _count(self, found: dict[SeriesKey, Found], lo: int | None, hi: int | None) -> int:
        return sum(
            self.load(parts, wal, lo, hi, False).ts.shape[0] for _, parts, wal in found.values()
        )

    def _loader(
        self,
        parts: list[cold.ColdPart],
        wal: SeriesArrays | None,
        spans: list[tuple[int, int]] | None,
    ) -> Loader:
        """Reads one series in a time range, sorted by time (then seq), for history."""

        def load(start: int | None, end: int | None, with_values: bool) -> tuple[Any, Any]:
            a = self.load(parts, wal, start, end, with_values)
            ts, values = a.ts, a.values
            if spans is not None:
                inside = _inside(ts, spans)
                ts = ts[inside]
                values = values[inside] if with_values else values
                a = SeriesArrays(ts, a.recv_ts[inside], a.seq[inside], values)
            if ts.shape[0] > 1 and not (np.diff(ts) >= 0).all():
                order = np.lexsort((a.seq, ts))
                ts = ts[order]
                values = values[order] if with_values else values
            return ts, values

        return load

    # -- series and their ends -----------------------------------------------------------

    def series(self) -> list[StoredSeries]:
        """See ``TieredStore.series``."""
        s = self._s
        with s.lock:
            found = {(x.room, sn, a): x.kind.name for (sn, a), x in s.series.items()}
        if s.read_only:  # the rings hold nothing: the WAL's series are on disk only
            for c in self.wal_chunks():
                found[(c.room, c.sensor_id, c.attribute_id)] = c.kind
        for p in cold.list_parts(s.cold_dir):
            key = (p.room, p.sensor_id, p.attribute_id)
            if key not in found:
                found[key] = cold.kind_of_part(p).name
        return sorted(
            (StoredSeries(room, sn, a, kind) for (room, sn, a), kind in found.items()),
            key=lambda x: (x.sensor_id, x.attribute_id, x.room),
        )

    def next_seq(self, sensor_id: str, attribute_id: str) -> int:
        """See ``TieredStore.next_seq`` (memory, then Parquet statistics)."""
        s = self._s
        with s.lock:
            x = s.series.get((sensor_id, attribute_id))
            in_memory = None if x is None else x.ring.last_seq
        on_disk = cold.max_seq(cold.list_parts(s.cold_dir, [sensor_id], [attribute_id]))
        return max(-1 if in_memory is None else in_memory, on_disk) + 1

    def last_ts(self, sensor_id: str, attribute_id: str) -> int | None:
        """See ``TieredStore.last_ts`` (memory, then Parquet footer statistics)."""
        s = self._s
        with s.lock:
            x = s.series.get((sensor_id, attribute_id))
            held = None if x is None else x.ring.latest()[0]
            dropped = None if x is None else x.ring.dropped_max_ts
        best = -(2**62)
        if held is not None and held.shape[0]:
            best = int(held.max())
        if dropped is not None:
            best = max(best, dropped)
        parts = cold.list_parts(s.cold_dir, [sensor_id], [attribute_id])
        if parts:
            best = max(best, cold.max_ts(parts))
        return None if best == -(2**62) else best

    # -- events ------------------------------------------------------------------------

    def events(
        self,
        room: str | Sequence[str] | None,
        start: Any,
        end: Any,
        kind: str | Sequence[str] | None,
    ) -> pd.DataFrame:
        """See :meth:`TieredStore.events <sensocto_lab.storage.tiered.TieredStore>`."""
        rooms = [room] if isinstance(room, str) else None if room is None else list(room)
        kinds = [kind] if isinstance(kind, str) else None if kind is None else list(kind)
        lo, hi = to_ns(start), to_ns(end)
        snap = self.snapshot()
        # No date pruning: a running condition's begin may sit on any earlier date, and
        # without it its end would read as an end without a begin.
        parts = event_log.list_parts(self._s.events_dir, rooms, None, snap.generations)
        batches = [b for buf in snap.events for b in read_records(buf)[0]]
        table = event_log.read_table(parts, batches, self._s.events_dir)
        return event_log.to_frame(table, rooms, lo, hi, kinds)

    def condition_spans(self, label: str) -> list[tuple[int, int]]:
        """``[(start_ns, end_ns), ...]`` of the condition ``label`` (a running one: to now+).

        Raises
        ------
        ValidationError
            No condition of that label was recorded (``reason="unknown_condition"``;
            the message lists the known ones).
        """
        frame = self.events(None, None, None, "condition")
        known = sorted(set(frame["label"]))
        rows = frame[frame["label"] == label]
        if rows.empty:
            raise ValidationError(
                f"no condition {label!r:.60} was recorded; known conditions: "
                f"{', '.join(map(repr, known)) or 'none'}",
                reason="unknown_condition",
            )
        onset = np.asarray(rows["onset"].array.asi8, dtype=np.int64)
        duration = rows["duration"].to_numpy()
        span = np.round(np.nan_to_num(duration) * 1e9).astype(np.int64)
        ends = np.where(np.isnan(duration), np.iinfo(np.int64).max, onset + span)
        return [(int(a), int(b)) for a, b in zip(onset, ends, strict=True)]


def _inside(ts: npt.NDArray[np.int64], spans: list[tuple[int, int]]) -> npt.NDArray[np.bool_]:
    keep = np.zeros(ts.shape[0], dtype=bool)
    for lo, hi in spans:
        keep |= (ts >= lo) & (ts < hi)
    return keep


def _ns(column: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return arr.cast(pa.int64()).to_numpy()
