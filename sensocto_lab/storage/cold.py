"""The cold tier: Parquet files under hive partitions, written atomically.

Layout: ``{cold}/room={room}/sensor={sensor}/attribute={attr}/date={YYYY-MM-DD}/``
``part-{first:012d}-{last:012d}.parquet`` where ``first..last`` are the WAL generations
the file was compacted from. Naming files by generation makes compaction idempotent: a
crash between writing a part and deleting its WAL segment only means the same file is
written again, byte for byte, under the same name.

Columns: ``ts`` and ``recv_ts`` (``timestamp[ns, UTC]``), ``value`` (float32/float64,
or ``fixed_size_list<float>`` for vectors) and ``seq`` (int64). Encodings are chosen
for time series: timestamps and counters are delta-encoded (a regular 512 Hz clock
costs bits per thousand samples), values ADC-quantised to few distinct numbers use a
dictionary, other values byte-stream-split; all zstd-compressed. The kind, unit and
nominal rate travel in the file's key-value metadata.

Partition values are strings: a sensor ``001`` and a sensor ``1`` are two sensors.
Readers that infer partition types from the directory names would read both as the
integer 1, so read with :data:`PARTITIONING` (pyarrow: :func:`dataset`), polars'
``hive_schema`` or DuckDB's ``hive_types_autocast=false``, as ``docs/storage.md``
shows. The store's own reader takes the names from the paths and needs none of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sensocto_lab.errors import StorageError
from sensocto_lab.model import KINDS, KindSpec
from sensocto_lab.storage.health import storage_error
from sensocto_lab.storage.wal import fsync_dir

__all__ = [
    "DAY_NS",
    "PARTITIONING",
    "PARTITION_SCHEMA",
    "ColdPart",
    "dataset",
    "delete_before",
    "kind_of_part",
    "list_parts",
    "max_generation",
    "max_seq",
    "max_ts",
    "part_name",
    "read_series",
    "remove_stale_temporaries",
    "write_atomically",
    "write_part",
]

DAY_NS = 86_400 * 10**9
_TS_TYPE = pa.timestamp("ns", tz="UTC")
_PART_RE = re.compile(r"^part-(\d{12})-(\d{12})\.parquet$")
#: Above this share of distinct values, a dictionary costs more than it saves.
_DICTIONARY_MAX_DISTINCT = 0.25
_SAMPLE = 65_536
#: The hive partition columns, all strings (see the module docstring).
PARTITION_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("room", "sensor", "attribute", "date")]
)
PARTITIONING = ds.partitioning(PARTITION_SCHEMA, flavor="hive")


def dataset(cold_dir: str | os.PathLike[str]) -> ds.Dataset:
    """The cold tier as a :mod:`pyarrow.dataset`, partition columns typed as strings.

    Only complete parts (``*.parquet``): a part being written has a temporary name.
    """
    files = sorted(str(p) for p in Path(cold_dir).glob("room=*/*/*/*/*.parquet"))
    return ds.dataset(
        files, format="parquet", partitioning=PARTITIONING, partition_base_dir=str(cold_dir)
    )


@dataclass(frozen=True, slots=True)
class ColdPart:
    """One Parquet file of one series and UTC date, from WAL generations first..last."""

    room: str
    sensor_id: str
    attribute_id: str
    day: str
    first: int
    last: int
    path: Path


def part_name(first: int, last: int) -> str:
    """File name of the part compacted from generations ``first..last``."""
    return f"part-{first:012d}-{last:012d}.parquet"


def _day_str(day_index: int) -> str:
    return str(np.datetime64(day_index, "D"))


def _day_index(day: str) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


def _value_array(values: npt.NDArray[Any]) -> pa.Array:
    if values.ndim == 1:
        return pa.array(values)
    return pa.FixedSizeListArray.from_arrays(
        pa.array(np.ascontiguousarray(values).ravel()), values.shape[1]
    )


def _value_encoding(values: npt.NDArray[Any]) -> tuple[bool, dict[str, str]]:
    """Dictionary for ADC-quantised values (few distinct), byte-stream-split otherwise.

    Decided on the first ``_SAMPLE`` values: enough to tell an ADC's few thousand
    levels from continuous floats, and cheap on a sensor-hour.
    """
    head = values[:_SAMPLE].ravel()
    if head.size and np.unique(head).size <= _DICTIONARY_MAX_DISTINCT * head.size:
        return True, {}
    column = "value" if values.ndim == 1 else "value.list.element"
    return False, {column: "BYTE_STREAM_SPLIT"}


def write_part(
    cold_dir: Path,
    room: str,
    sensor_id: str,
    attribute_id: str,
    kind: KindSpec,
    generations: tuple[int, int],
    ts: npt.NDArray[np.int64],
    recv_ts: npt.NDArray[np.int64],
    seq: npt.NDArray[np.int64],
    values: npt.NDArray[Any],
    *,
    compression: str = "zstd",
    compression_level: int | None = None,
    row_group_samples: int = 1_048_576,
) -> list[Path]:
    """Write one series' samples from WAL ``generations`` as one part per UTC date.

    Each file is written to a temporary name, fsynced, renamed into place and its
    directory fsynced, so a reader (or a crash) sees either no file or the whole file.

    Returns
    -------
    list of Path
        The files written, in date order.

    Raises
    ------
    StorageError
        A file could not be written.
    """
    days = ts // DAY_NS
    written: list[Path] = []
    bounds = np.flatnonzero(np.diff(days)) + 1
    if not (np.diff(days) >= 0).all():
        # Device clock went back across midnight: group by day without reordering.
        order = np.argsort(days, kind="stable")
        ts, recv_ts, seq, values, days = (
            ts[order],
            recv_ts[order],
            seq[order],
            values[order],
            days[order],
        )
        bounds = np.flatnonzero(np.diff(days)) + 1
    meta = {
        b"sensocto": json.dumps(
            {
                "room": room,
                "sensor": sensor_id,
                "attribute": attribute_id,
                "kind": kind.name,
                "unit": kind.unit,
                "rate_hz": kind.rate_hz,
            }
        ).encode()
    }
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, ts.shape[0]], strict=True):
        day = _day_str(int(days[lo]))
        directory = (
            cold_dir
            / f"room={room}"
            / f"sensor={sensor_id}"
            / f"attribute={attribute_id}"
            / f"date={day}"
        )
        path = directory / part_name(*generations)
        vals = values[lo:hi]
        use_dictionary, encodings = _value_encoding(vals)
        table = pa.table(
            {
                "ts": pa.array(ts[lo:hi].view("datetime64[ns]")).cast(_TS_TYPE),
                "recv_ts": pa.array(recv_ts[lo:hi].view("datetime64[ns]")).cast(_TS_TYPE),
                "value": _value_array(vals),
                "seq": pa.array(seq[lo:hi]),
            }
        ).replace_schema_metadata(meta)
        write_atomically(
            table,
            path,
            row_group_size=row_group_samples,
            compression=compression,
            compression_level=compression_level,
            use_dictionary=["value"] if use_dictionary else False,
            column_encoding={
                "ts": "DELTA_BINARY_PACKED",
                "recv_ts": "DELTA_BINARY_PACKED",
                "seq": "DELTA_BINARY_PACKED",
                **encodings,
            },
        )
        written.append(path)
    return written


def write_atomically(table: pa.Table, path: Path, **options: Any) -> None:
    """Write ``table`` as the Parquet file ``path``: whole or not at all, durably.

    The file is written to a temporary name unique to this process (two processes
    compacting one generation, a worker that outlives its store's crash by a moment,
    never write into one file), fsynced, renamed into place and its directory
    fsynced. On failure the temporary is removed. ``options`` go to
    :func:`pyarrow.parquet.write_table`.

    Raises
    ------
    StorageError
        The file could not be written (``reason="disk_full"`` when out of space).
    """
    directory = path.parent
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            pq.write_table(table, f, **options)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(directory)
    except (OSError, pa.ArrowException) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise storage_error(f"cannot write the Parquet part {path.name}", exc) from exc


def remove_stale_temporaries(root: Path, own: Collection[int] = ()) -> int:
    """Delete files a dead process left half-written under ``root``; return how many.

    A file is written to ``{name}.{pid}.tmp`` and renamed when complete, so a
    temporary whose writer is gone (a compaction worker killed mid-write) is never
    read and would only take disk. One whose writer still runs is left alone, unless
    its pid is in ``own`` (this store's processes, on close: none of them writes).
    """
    removed = 0
    for tmp in root.rglob("*.tmp"):
        pid = tmp.suffixes[-2].lstrip(".") if len(tmp.suffixes) >= 2 else ""
        if pid.isdigit() and int(pid) not in own and _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _subdirs(path: Path, prefix: str, names: Sequence[str] | None) -> Iterable[tuple[str, Path]]:
    if names is not None:
        for name in names:
            p = path / f"{prefix}={name}"
            if p.is_dir():
                yield name, p
        return
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir() and entry.name.startswith(prefix + "="):
            yield entry.name[len(prefix) + 1 :], Path(entry.path)


def list_parts(
    cold_dir: Path,
    sensors: Sequence[str] | None = None,
    attributes: Sequence[str] | None = None,
    start: int | None = None,
    end: int | None = None,
    exclude: Collection[int] = (),
) -> list[ColdPart]:
    """The parts of the given series (``None``: all) whose date overlaps ``[start, end)``.

    Parts compacted from a generation in ``exclude`` are left out: the caller reads
    that generation from the WAL (the compactor is writing its parts, or was when the
    process died).
    """
    first_day = None if start is None else start // DAY_NS
    last_day = None if end is None else (end - 1) // DAY_NS
    parts: list[ColdPart] = []
    for room, room_dir in _subdirs(cold_dir, "room", None):
        for sensor, sensor_dir in _subdirs(room_dir, "sensor", sensors):
            for attr, attr_dir in _subdirs(sensor_dir, "attribute", attributes):
                for day, day_dir in _subdirs(attr_dir, "date", None):
                    d = _day_index(day)
                    if (first_day is not None and d < first_day) or (
                        last_day is not None and d > last_day
                    ):
                        continue
                    for entry in os.scandir(day_dir):
                        m = _PART_RE.match(entry.name)
                        if not m:
                            continue
                        first, last = int(m.group(1)), int(m.group(2))
                        if any(first <= g <= last for g in exclude):
                            continue
                        parts.append(
                            ColdPart(room, sensor, attr, day, first, last, Path(entry.path))
                        )
    parts.sort(key=lambda p: (p.sensor_id, p.attribute_id, p.first, p.day))
    return parts


def read_series(
    parts: Sequence[ColdPart],
    start: int | None = None,
    end: int | None = None,
    *,
    with_values: bool = True,
) -> pa.Table:
    """The rows of ``parts`` (one series) with ``start <= ts < end``, in part order.

    Columns ``ts``, ``recv_ts``, ``value`` (when ``with_values``) and ``seq``.
    """
    columns = ["ts", "recv_ts", "value", "seq"] if with_values else ["ts", "recv_ts", "seq"]
    if not parts:
        raise ValueError("read_series needs at least one part")
    dataset = ds.dataset([str(p.path) for p in parts], format="parquet")
    cond = None
    if start is not None:
        cond = pc.field("ts") >= pa.scalar(start, _TS_TYPE)
    if end is not None:
        upper = pc.field("ts") < pa.scalar(end, _TS_TYPE)
        cond = upper if cond is None else cond & upper
    try:
        return dataset.to_table(columns=columns, filter=cond)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot read Parquet parts of {parts[0].sensor_id}: {exc}") from exc


def kind_of_part(part: ColdPart) -> KindSpec:
    """The kind recorded in a part's metadata (``numeric`` if unknown)."""
    meta = pq.read_schema(part.path).metadata or {}
    info = json.loads(meta.get(b"sensocto", b"{}"))
    return KINDS.get(info.get("kind", "numeric"), KINDS["numeric"])


def _column_max(parts: Sequence[ColdPart], column: str, none: int) -> int:
    """Largest value of an int64-backed column (``seq``, ``ts`` as ns), from statistics."""
    best = none
    for part in parts:
        meta = pq.ParquetFile(part.path).metadata
        index = meta.schema.names.index(column)
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(index).statistics
            if stats is not None and stats.has_min_max:
                best = max(best, int(stats.max_raw))
            else:  # a file without statistics (not ours): read the column
                values = pq.read_table(part.path, columns=[column]).column(column)
                best = max(best, int(pc.max(values.cast(pa.int64())).as_py()))
                break
    return best


def max_seq(parts: Sequence[ColdPart]) -> int:
    """Highest ``seq`` in ``parts``, from the files' statistics (-1 when there are none)."""
    return _column_max(parts, "seq", -1)


def max_ts(parts: Sequence[ColdPart]) -> int:
    """Latest device timestamp in ``parts`` as ns (a large negative when there are none)."""
    return _column_max(parts, "ts", -(2**62))


def max_generation(cold_dir: Path) -> int:
    """The highest WAL generation any part was compacted from (0 for an empty tier).

    Walks the whole tier; used only when the WAL's commit file is missing (a fresh
    directory, or a cold tier copied on its own), so new generations never reuse a
    part's name.
    """
    best = 0
    for _dirpath, _dirs, files in os.walk(cold_dir):
        for name in files:
            m = _PART_RE.match(name)
            if m:
                best = max(best, int(m.group(2)))
    return best


def delete_before(cold_dir: Path, day_index: int) -> int:
    """Delete the date partitions older than ``day_index`` (days since the epoch).

    Returns the number of partitions deleted.
    """
    deleted = 0
    for _, room_dir in _subdirs(cold_dir, "room", None):
        for _, sensor_dir in _subdirs(room_dir, "sensor", None):
            for _, attr_dir in _subdirs(sensor_dir, "attribute", None):
                for day, day_dir in _subdirs(attr_dir, "date", None):
                    if _day_index(day) < day_index:
                        shutil.rmtree(day_dir, ignore_errors=True)
                        deleted += 1
    return deleted
