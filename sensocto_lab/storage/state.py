"""What the parts of the tiered store share: directories, the lock, series, counters.

:class:`~sensocto_lab.storage.tiered.TieredStore` is one object to its callers and
several parts inside, each in a module named after its job: the append path
(``tiered``), the fsync thread (``syncer``), sealing, compaction and retention
(``generations``) and the readers (``reader``, ``event_log``). They share one
:class:`StoreState`; everything mutable in it is guarded by ``state.lock``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensocto_lab.clock import Clock
from sensocto_lab.errors import StorageError, ValidationError
from sensocto_lab.model import KINDS, Batch, KindSpec
from sensocto_lab.storage.config import StorageConfig
from sensocto_lab.storage.health import Health
from sensocto_lab.storage.ring import SeriesRing
from sensocto_lab.storage.wal import Chunk, WalWriter

__all__ = ["COMMIT_FILE", "SeriesEntry", "SeriesKey", "StoreState", "chunk_of"]

#: The commit point in ``wal/``: the newest generation whose samples are in Parquet.
COMMIT_FILE = "COMPACTED"
SeriesKey = tuple[str, str]


@dataclass(slots=True)
class SeriesEntry:
    """One series in memory: where it is partitioned, its kind, its ring."""

    room: str
    kind: KindSpec
    ring: SeriesRing
    #: False once samples left memory without going through the ring (a kind change).
    gapless: bool = True


class StoreState:
    """The store's shared state (see the module docstring).

    ``writer`` exists on writable stores only (set when the WAL is recovered).
    """

    def __init__(
        self, data_dir: Path, config: StorageConfig, clock: Clock, *, read_only: bool
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.clock = clock
        self.read_only = read_only
        self.wal_dir = data_dir / "wal"
        self.cold_dir = data_dir / "cold"
        self.events_dir = data_dir / "events"
        self.lock = threading.Lock()
        self.series: dict[SeriesKey, SeriesEntry] = {}
        self.scale = 1.0
        self.closed = False
        #: Sealed generations awaiting compaction, oldest first.
        self.sealed: list[int] = []
        #: The commit point: generations up to here are read from Parquet only.
        self.committed = 0
        #: Parts up to this generation hold earlier sessions' samples.
        self.prior_generation = 0
        #: The next event's sequence number (store-wide).
        self.next_event_seq = 0
        #: Rooms events were recorded in (series carry their own).
        self.event_rooms: set[str] = set()
        self.health = Health(clock)
        self.counters: dict[str, int] = {
            "samples_appended": 0,
            "batches_appended": 0,
            "events_appended": 0,
            "wal_bytes_written": 0,
            "generations_compacted": 0,
            "parquet_files_written": 0,
            "samples_compacted": 0,
            "events_compacted": 0,
            "torn_records_dropped": 0,
            "stale_temporaries_removed": 0,
            "samples_recovered": 0,
            "events_recovered": 0,
            "histories_from_memory": 0,
            "write_errors": 0,
        }
        self.writer: WalWriter

    def new_ring(self, kind: KindSpec) -> SeriesRing:
        """An empty ring of ``kind`` at the current load scale."""
        hot, warm = self.config.limits(kind, self.scale)
        return SeriesRing(kind.width, kind.dtype, hot, warm)

    def remember(self, chunk: Chunk) -> None:
        """Put a chunk replayed from the WAL in its series' ring."""
        key = (chunk.sensor_id, chunk.attribute_id)
        kind = KINDS.get(chunk.kind, KINDS["numeric"])
        series = self.series.get(key)
        if series is None or series.kind.name != kind.name:
            series = SeriesEntry(chunk.room, kind, self.new_ring(kind), gapless=series is None)
            self.series[key] = series
        series.room = chunk.room
        series.ring.extend(chunk.ts, chunk.values, chunk.recv_ts, chunk.seq)

    def refuse_if_read_only(self, what: str) -> None:
        """Raise ``StorageError(reason="read_only")`` on a read-only store."""
        if self.read_only:
            raise StorageError(
                f"{what} needs a writable store; {self.data_dir} was opened read-only",
                reason="read_only",
            )

    def relative(self, path: Path) -> str:
        """``path`` relative to the data directory, for messages."""
        try:
            return str(path.relative_to(self.data_dir))
        except ValueError:
            return path.name


def chunk_of(batch: Batch, room: str, kind: KindSpec) -> Chunk:
    """The WAL chunk of a stamped batch, or :class:`ValidationError` (nothing written)."""
    if batch.recv_ts is None or batch.seq is None:
        raise ValidationError(
            "store only stamped batches (Batch.stamped sets recv_ts and seq)",
            reason="unstamped_batch",
        )
    n = len(batch)
    expected = (n,) if kind.width == 1 else (n, kind.width)
    values = np.asarray(batch.values)
    if n == 0 or batch.recv_ts.shape != (n,) or batch.seq.shape != (n,):
        raise ValidationError(
            f"a batch needs ts, recv_ts and seq of one length > 0; got {n}, "
            f"{batch.recv_ts.shape}, {batch.seq.shape}",
            reason="invalid_batch",
        )
    if values.shape != expected:
        raise ValidationError(
            f"{kind.name} values for {n} samples must have shape {expected}, got {values.shape}",
            reason="invalid_shape",
        )
    return Chunk(
        room,
        batch.sensor_id,
        batch.attribute_id,
        kind.name,
        np.ascontiguousarray(batch.ts, dtype=np.int64),
        np.ascontiguousarray(batch.recv_ts, dtype=np.int64),
        np.ascontiguousarray(batch.seq, dtype=np.int64),
        np.ascontiguousarray(values, dtype=kind.dtype),
    )
