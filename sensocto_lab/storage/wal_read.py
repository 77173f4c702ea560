"""Reading the write-ahead log: every complete record of a segment, never an exception.

The files are those :mod:`.wal` writes (layout and durability are described there).
Readers stop at the first record they cannot read and say so (``torn``): after a
crash only the torn last record of a file is lost, and a file cut before its schema
reads as empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy.typing as npt
import pyarrow as pa

from sensocto_lab.storage.wal import GROUP_KEY, META_KEYS, Chunk

__all__ = ["SegmentRead", "read_records", "read_segment"]


def _values_of(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    """One numpy array of a value column: ``(n,)``, or ``(n, width)`` for vectors."""
    if isinstance(column.type, pa.FixedSizeListType):
        width = column.type.list_size
        flat = pa.concat_arrays(column.chunks).flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(-1, width)
    return column.to_numpy()


@dataclass(frozen=True, slots=True)
class SegmentRead:
    """What one WAL file holds.

    Attributes
    ----------
    chunks
        One :class:`Chunk` per (room, sensor, attribute, kind), its samples in the
        order they were written.
    records
        Complete records read.
    torn
        True when the file ends in a record that cannot be read (a crash mid-write,
        or a file cut before its schema): that record, and only that one, is lost.
    """

    chunks: list[Chunk]
    records: int
    torn: bool


def _group(batches: dict[tuple[str, ...], list[pa.RecordBatch]]) -> list[Chunk]:
    chunks = []
    for (room, sensor, attribute, kind), group in batches.items():
        # ChunkedArray.to_numpy concatenates once; combine_chunks first is ~3x slower.
        cols = pa.Table.from_batches(group).columns
        chunks.append(
            Chunk(
                room,
                sensor,
                attribute,
                kind,
                cols[0].to_numpy(),
                cols[1].to_numpy(),
                cols[2].to_numpy(),
                _values_of(cols[3]),
            )
        )
    return chunks


def read_segment(
    source: Path | pa.Buffer, keep: Callable[[str, str], bool] | None = None
) -> SegmentRead:
    """Read every complete record of one WAL file (or of a buffer holding a prefix of it).

    Never raises for a damaged file: reading stops at the first record that cannot be
    read, and :attr:`SegmentRead.torn` says so. ``keep(sensor_id, attribute_id)``, if
    given, selects the series to convert (the others are skipped, but counted).
    """
    buf = _open(source)
    groups: dict[tuple[str, ...], list[pa.RecordBatch]] = {}
    names: dict[tuple[bytes, ...], tuple[str, ...]] = {}
    records = 0
    torn = False
    with buf:
        try:
            reader = pa.ipc.open_stream(buf)
        except (pa.ArrowInvalid, OSError):
            return SegmentRead([], 0, True)  # cut before the schema was fully written
        if reader.schema.names[:3] != ["ts", "recv_ts", "seq"]:
            return SegmentRead([], 0, False)  # not a samples stream (events: read_records)
        while True:
            try:
                batch, meta = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError):
                torn = True
                break
            if GROUP_KEY in meta:
                pieces = _pieces(meta[GROUP_KEY], batch.num_rows)
                if pieces is None:  # a group that does not add up: damaged, stop here
                    torn = True
                    break
                records += 1
                for piece, start, n in pieces:
                    if keep is None or keep(piece[1], piece[2]):
                        groups.setdefault(piece, []).append(batch.slice(start, n))
                continue
            records += 1
            if batch.num_rows:
                raw = tuple(meta.values())  # written in META_KEYS order
                key = names.get(raw)
                if key is None:
                    key = names[raw] = tuple(meta[k].decode() for k in META_KEYS)
                if keep is None or keep(key[1], key[2]):
                    groups.setdefault(key, []).append(batch)
    return SegmentRead(_group(groups), records, torn)


def _pieces(listing: bytes, rows: int) -> list[tuple[tuple[str, ...], int, int]] | None:
    """A group record's pieces: (room, sensor, attribute, kind), first row, rows each.

    ``None`` if the listing is malformed or does not cover the record's rows exactly.
    """
    out: list[tuple[tuple[str, ...], int, int]] = []
    start = 0
    try:
        for line in listing.decode().splitlines():
            *series, n = line.split(" ")
            if len(series) != 4:
                return None
            out.append((tuple(series), start, int(n)))
            start += int(n)
    except ValueError:
        return None
    return out if start == rows else None


def _open(source: Path | pa.Buffer) -> Any:
    return pa.memory_map(str(source)) if isinstance(source, Path) else pa.BufferReader(source)


def read_records(source: Path | pa.Buffer) -> tuple[list[pa.RecordBatch], bool]:
    """Every complete record of a WAL stream of any schema, and whether it ends torn.

    For streams other than samples' (events); never raises for a damaged file.
    """
    batches: list[pa.RecordBatch] = []
    with _open(source) as buf:
        try:
            reader = pa.ipc.open_stream(buf)
        except (pa.ArrowInvalid, OSError):
            return [], True
        while True:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                return batches, False
            except (pa.ArrowInvalid, OSError):
                return batches, True
