"""Events in storage: their WAL record, their Parquet parts, and reading them back.

An ``append_events`` call is one record in the generation's event stream
(``wal/seg-{generation}-events.arrows``, schema :data:`WAL_SCHEMA`: ``onset`` int64 ns,
``duration`` float64 s, ``label``, ``kind``, ``room``, ``sensor``, ``participant``,
``value`` (JSON text), ``source``, and a store-wide ``seq``). Compaction writes a
generation's events as ``{data_dir}/events/room={room or "_"}/date=YYYY-MM-DD/``
``part-{generation:012d}-{generation:012d}.parquet`` (``onset`` as
``timestamp[ns, UTC]``; ``room`` and ``date`` come from the partition, ``_`` meaning
no room), named by generation as sample parts are, so compacting again after a crash
rewrites the same files. Readers read each generation from exactly one place, as for
samples: from the WAL while it is above the commit point, else from these parts.

:func:`to_frame` returns the events as a pandas table, running conditions folded (see
:mod:`sensocto_lab.events`).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sensocto_lab.events import Event, condition_phase, encode_value
from sensocto_lab.storage.cold import DAY_NS, part_name, write_atomically

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "NO_ROOM",
    "PARTITIONING",
    "WAL_SCHEMA",
    "EventPart",
    "delete_before",
    "list_parts",
    "max_seq",
    "read_table",
    "record_batch",
    "to_frame",
    "write_parts",
]

#: The room partition of events without a room (never a valid room id).
NO_ROOM = "_"
_STRING_COLUMNS = ("label", "kind", "room", "sensor", "participant", "value", "source")
WAL_SCHEMA = pa.schema(
    [
        ("onset", pa.int64()),
        ("duration", pa.float64()),
        *((name, pa.string()) for name in _STRING_COLUMNS),
        ("seq", pa.int64()),
    ]
)
_TS_TYPE = pa.timestamp("ns", tz="UTC")
#: Columns of ``TieredStore.events()``, in order.
COLUMNS = ("onset", "duration", "label", "kind", "room", "sensor", "participant", "value", "source")
PARTITIONING = ds.partitioning(
    pa.schema([("room", pa.string()), ("date", pa.string())]), flavor="hive"
)
_PART_RE = re.compile(r"^part-(\d{12})-(\d{12})\.parquet$")


def record_batch(events: Sequence[Event], first_seq: int) -> pa.RecordBatch:
    """The WAL record of validated ``events``, numbered from ``first_seq``."""
    return pa.RecordBatch.from_arrays(
        [
            pa.array([e.onset_ns for e in events], pa.int64()),
            pa.array([e.duration_s for e in events], pa.float64()),
            pa.array([e.label for e in events], pa.string()),
            pa.array([e.kind for e in events], pa.string()),
            pa.array([e.room for e in events], pa.string()),
            pa.array([e.sensor for e in events], pa.string()),
            pa.array([e.participant for e in events], pa.string()),
            pa.array(
                [None if e.value is None else encode_value(e.value) for e in events], pa.string()
            ),
            pa.array([e.source for e in events], pa.string()),
            pa.array(np.arange(first_seq, first_seq + len(events), dtype=np.int64)),
        ],
        schema=WAL_SCHEMA,
    )


def write_parts(
    events_dir: Path, table: pa.Table, generation: int, *, compression: str = "zstd"
) -> list[Path]:
    """Write one generation's events (a :data:`WAL_SCHEMA` table) as parts by room and date.

    Raises
    ------
    StorageError
        A part could not be written.
    """
    if table.num_rows == 0:
        return []
    rooms = pc.fill_null(table.column("room"), NO_ROOM).to_pylist()
    days = (table.column("onset").to_numpy() // DAY_NS).tolist()
    groups: dict[tuple[str, int], list[int]] = {}
    for i, key in enumerate(zip(rooms, days, strict=True)):
        groups.setdefault(key, []).append(i)
    written = []
    for (room, day), rows in sorted(groups.items()):
        part = table.take(pa.array(rows)).drop_columns(["room"])
        part = part.set_column(0, "onset", part.column("onset").cast(_TS_TYPE))
        path = (
            events_dir
            / f"room={room}"
            / f"date={np.datetime64(day, 'D')}"
            / part_name(generation, generation)
        )
        write_atomically(part, path, compression=compression)
        written.append(path)
    return written


@dataclass(frozen=True, slots=True)
class EventPart:
    """One Parquet file of events: its room partition, date, generations and path."""

    room: str
    day: str
    first: int
    last: int
    path: Path


def list_parts(
    events_dir: Path,
    rooms: Collection[str] | None = None,
    start: int | None = None,
    exclude: Collection[int] = (),
) -> list[EventPart]:
    """Parts of ``rooms`` (``None``: all) dated on or after ``start``'s day (None: all).

    Parts of a generation in ``exclude`` are left out (read from the WAL instead).
    Later dates are never pruned: a condition's end may fall after any window.
    """
    first_day = None if start is None else str(np.datetime64(start // DAY_NS, "D"))
    parts: list[EventPart] = []
    for room_dir in _subdirs(events_dir, "room"):
        room = room_dir.name[len("room=") :]
        if rooms is not None and room not in rooms:
            continue
        for day_dir in _subdirs(room_dir, "date"):
            day = day_dir.name[len("date=") :]
            if first_day is not None and day < first_day:
                continue
            for entry in os.scandir(day_dir):
                m = _PART_RE.match(entry.name)
                if m is None:
                    continue
                first, last = int(m.group(1)), int(m.group(2))
                if not any(first <= g <= last for g in exclude):
                    parts.append(EventPart(room, day, first, last, Path(entry.path)))
    parts.sort(key=lambda p: (p.first, p.room, p.day))
    return parts


def _subdirs(path: Path, prefix: str) -> list[Path]:
    try:
        return sorted(
            Path(e.path) for e in os.scandir(path) if e.is_dir() and e.name.startswith(prefix + "=")
        )
    except FileNotFoundError:
        return []


def max_seq(events_dir: Path) -> int:
    """Highest event ``seq`` in the parts, from their statistics (-1 if none)."""
    best = -1
    for part in list_parts(events_dir):
        meta = pq.ParquetFile(part.path).metadata
        index = meta.schema.names.index("seq")
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(index).statistics
            if stats is not None and stats.has_min_max:
                best = max(best, int(stats.max))
    return best


def read_table(
    parts: Sequence[EventPart], wal: Sequence[pa.RecordBatch], events_dir: Path
) -> pa.Table:
    """The events of ``parts`` and WAL records ``wal`` as one :data:`WAL_SCHEMA` table."""
    tables = []
    if parts:
        found = ds.dataset(
            [str(p.path) for p in parts],
            format="parquet",
            partitioning=PARTITIONING,
            partition_base_dir=str(events_dir),
        ).to_table()
        room = found.column("room")
        room = pc.if_else(pc.equal(room, NO_ROOM), pa.scalar(None, pa.string()), room)
        found = found.drop_columns(["room", "date"]).append_column("room", room)
        found = found.set_column(0, "onset", found.column("onset").cast(pa.int64()))
        tables.append(found.select(WAL_SCHEMA.names).cast(WAL_SCHEMA))
    if wal:
        tables.append(pa.Table.from_batches(wal, WAL_SCHEMA))
    if not tables:
        return WAL_SCHEMA.empty_table()
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _decode(values: pa.ChunkedArray) -> np.ndarray:
    """JSON texts as an object array of decoded values (None for null).

    The texts are decoded in one ``json.loads`` of their JSON array (one C call, not
    one per event); each event gets its own object, so changing one row's dict
    cannot change another's.
    """
    out = np.full(len(values), None, dtype=object)
    present = np.flatnonzero(pc.is_valid(values).to_numpy(zero_copy_only=False))
    if present.size:
        texts = values if present.size == len(values) else values.take(pa.array(present))
        # Joined in Arrow: one Python string, not one per event.
        whole = pa.ListArray.from_arrays(
            pa.array([0, present.size], pa.int32()), texts.combine_chunks()
        )
        joined = pc.binary_join(whole, ",")[0].as_py()
        decoded = json.loads("[" + joined + "]")
        out[present] = np.fromiter(decoded, dtype=object, count=len(decoded))
    return out


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    """A string column as an object array (None for null), via its few distinct values.

    Labels, kinds, rooms and sources repeat: converting each distinct string once
    and indexing is several times faster than converting every row.
    """
    encoded = pc.dictionary_encode(column).combine_chunks()
    uniques = np.empty(len(encoded.dictionary) + 1, dtype=object)
    uniques[:-1] = encoded.dictionary.to_pylist()
    indices = pc.fill_null(encoded.indices, len(encoded.dictionary))
    return uniques[indices.to_numpy(zero_copy_only=False)]


def to_frame(
    table: pa.Table,
    rooms: Collection[str] | None,
    start: int | None,
    end: int | None,
    kinds: Collection[str] | None,
) -> pd.DataFrame:
    """Events of ``table`` as ``TieredStore.events()`` returns them (see there).

    Columns are turned into numpy arrays once and sorted and selected there: object
    arrays index by pointer copies, cheaper than Arrow ``take`` on string columns.
    """
    import pandas as pd

    if rooms is not None:
        table = table.filter(pc.is_in(table.column("room"), pa.array(list(rooms), pa.string())))
    if kinds is not None:
        table = table.filter(pc.is_in(table.column("kind"), pa.array(list(kinds), pa.string())))
    onset = table.column("onset").to_numpy()
    order = np.lexsort((table.column("seq").to_numpy(), onset))
    onset = onset[order]
    duration = table.column("duration").to_numpy()[order]
    cols = {
        name: _objects(table.column(name))[order]
        for name in ("label", "kind", "room", "sensor", "participant", "source")
    }
    values = _decode(table.column("value"))[order]
    # Only rows that may be halves of a running condition go through Python.
    maybe = pc.and_(
        pc.equal(table.column("kind"), "condition"),
        pc.match_substring(pc.fill_null(table.column("value"), ""), '"phase":'),
    )
    keep = np.ones(table.num_rows, dtype=bool)
    candidates = np.flatnonzero(maybe.to_numpy(zero_copy_only=False)[order])
    if candidates.size:
        _fold(cols, candidates, onset, duration, values, keep)
    if start is not None:
        keep &= onset >= start
    if end is not None:
        keep &= onset < end
    if not keep.all():
        onset, duration, values = onset[keep], duration[keep], values[keep]
        cols = {name: col[keep] for name, col in cols.items()}
    stamps = pd.Series(onset.view("datetime64[ns]"), copy=False).dt.tz_localize("UTC")
    columns: dict[str, Any] = {"onset": stamps, "duration": duration}
    for name, col in cols.items():
        # object columns: None where not given (pandas' own string dtype would say NaN)
        columns[name] = pd.Series(col, dtype=object, copy=False)
    columns["value"] = pd.Series(values, dtype=object, copy=False)
    return pd.DataFrame(columns, columns=list(COLUMNS))


def _fold(
    cols: dict[str, np.ndarray],
    candidates: np.ndarray,
    onset: np.ndarray,
    duration: np.ndarray,
    values: np.ndarray,
    keep: np.ndarray,
) -> None:
    """Fold begin/end pairs of running conditions into their begin row (in place)."""
    open_: dict[tuple[Any, ...], list[int]] = {}
    label, room, sensor, who = (cols[n] for n in ("label", "room", "sensor", "participant"))
    for i in candidates.tolist():
        phase = condition_phase("condition", values[i])
        if phase is None:
            continue
        key = (label[i], room[i], sensor[i], who[i])
        if phase == "begin":
            open_.setdefault(key, []).append(i)
            duration[i] = math.nan  # until its end is found
            values[i] = values[i].get("value")
        elif open_.get(key):
            begin = open_[key].pop()
            duration[begin] = (onset[i] - onset[begin]) / 1e9
            keep[i] = False


def delete_before(events_dir: Path, day_index: int) -> int:
    """Delete event date partitions older than ``day_index``; returns how many."""
    cutoff = str(np.datetime64(day_index, "D"))
    deleted = 0
    for room_dir in _subdirs(events_dir, "room"):
        for day_dir in _subdirs(room_dir, "date"):
            if day_dir.name[len("date=") :] < cutoff:
                shutil.rmtree(day_dir, ignore_errors=True)
                deleted += 1
    return deleted
