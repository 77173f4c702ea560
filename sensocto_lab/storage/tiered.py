"""The tiered store: memory rings → write-ahead log → Parquet, behind one object.

``append`` writes a batch to the WAL (handed to the OS before it returns) and to the
series' ring. Two background threads do the slow work: one fsyncs the WAL every
``fsync_interval_s``; the other seals WAL generations that are too big or too old and
has a worker process compact sealed generations into Parquet (:mod:`.compactor`: in
this process that work held the GIL long enough to stall the engine's event loop).
A writable store holds the data directory's lock (:mod:`.lock`) from open to close.
``history`` and ``read_table`` merge the cold tier with the not-yet-compacted WAL, so
every sample is read exactly once:

* Each WAL generation is read from exactly one place: from its WAL files while they
  exist above the commit point, else from its Parquet parts. The compactor writes the
  parts (durably), records the generation in ``wal/COMPACTED`` (the commit point),
  then deletes the WAL files.
* Readers take a snapshot under the store's lock: the generations to read from the
  WAL, with open handles on their files (so a concurrent compaction cannot pull them
  away); parts of those generations are skipped.
* On open, WAL files at or below the commit point are deleted (their data is in
  Parquet), the rest are replayed into the rings and queued for compaction. A file
  cut short by a crash loses only its torn last record. Compacting a generation
  again writes the same part names, so a crash mid-compaction leaves no duplicates.

Memory (the rings) holds copies of the newest samples for ``latest``; every sample in
a ring is also in the WAL, so history never needs the rings to be complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.errors import ClosedResourceError, StorageError, ValidationError
from sensocto_lab.model import KINDS, Batch, KindSpec, check_id
from sensocto_lab.storage import cold
from sensocto_lab.storage.compactor import (
    Compacted,
    CompactionWorker,
    ParquetSettings,
    compact_generation,
)
from sensocto_lab.storage.config import StorageConfig
from sensocto_lab.storage.history import Loader, SeriesSource, build_dataset
from sensocto_lab.storage.lock import DirLock
from sensocto_lab.storage.ring import SeriesRing
from sensocto_lab.storage.wal import (
    Chunk,
    WalWriter,
    concat_chunks,
    fsync_dir,
    list_segments,
    read_segment,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["StoredSeries", "TieredStore"]

log = logging.getLogger(__name__)

_COMMIT_FILE = "COMPACTED"
SeriesKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """One recorded (sensor, attribute): where it is partitioned and what kind it is."""

    room: str
    sensor_id: str
    attribute_id: str
    kind: str


@dataclass(slots=True)
class _Series:
    room: str
    kind: KindSpec
    ring: SeriesRing
    #: False once samples left memory without going through the ring (a kind change).
    gapless: bool = True


@dataclass(slots=True)
class _Arrays:
    """Samples of one series, concatenated."""

    ts: npt.NDArray[np.int64]
    recv_ts: npt.NDArray[np.int64]
    seq: npt.NDArray[np.int64]
    values: npt.NDArray[Any]

    @classmethod
    def concat(cls, chunks: list[Chunk]) -> _Arrays:
        c = concat_chunks(chunks)
        return cls(c.ts, c.recv_ts, c.seq, c.values)

    @classmethod
    def empty(cls) -> _Arrays:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))

    def select(self, start: int | None, end: int | None) -> _Arrays:
        if start is None and end is None:
            return self
        keep = np.ones(self.ts.shape[0], dtype=bool)
        if start is not None:
            keep &= self.ts >= start
        if end is not None:
            keep &= self.ts < end
        return _Arrays(self.ts[keep], self.recv_ts[keep], self.seq[keep], self.values[keep])


#: What a reader found of one series: its kind, its Parquet parts, its WAL samples.
_Found = tuple[KindSpec, list[cold.ColdPart], _Arrays | None]


def _to_ns(value: Any) -> int | None:
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


class TieredStore:
    """Hot/warm rings, a WAL of Arrow IPC segments and a Parquet cold tier.

    Use :meth:`open`; see the module docstring for how the tiers fit together and
    ``docs/architecture.md`` for the contract the engine relies on. Thread-safe: the
    engine's loop calls ``append``/``latest``, a notebook may call ``history`` from
    another thread, and the store's own threads fsync and compact.
    """

    def __init__(
        self, data_dir: Path, config: StorageConfig, clock: Clock, *, read_only: bool = False
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.read_only = read_only
        self._dir_lock: DirLock | None = None
        self._clock = clock
        self._wal_dir = data_dir / "wal"
        self._cold_dir = data_dir / "cold"
        self._lock = threading.Lock()
        self._compact_lock = threading.Lock()
        self._compacted = threading.Condition(self._lock)
        self._series: dict[SeriesKey, _Series] = {}
        self._scale = 1.0
        self._closed = False
        self._sealed: list[int] = []
        self._committed = 0
        self._prior_generation = 0
        self._prior_max_ts: dict[SeriesKey, int] = {}
        self._gen_opened = clock.monotonic()
        self._synced_at = clock.monotonic()
        self._unsynced = False
        self._counters = {
            "samples_appended": 0,
            "batches_appended": 0,
            "wal_bytes_written": 0,
            "generations_compacted": 0,
            "parquet_files_written": 0,
            "samples_compacted": 0,
            "torn_records_dropped": 0,
            "stale_temporaries_removed": 0,
            "samples_recovered": 0,
            "histories_from_memory": 0,
        }
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._worker = CompactionWorker()  # the background compactor's process
        self._worker_wanted = False  # a compaction is near: start the worker
        self._writer: WalWriter  # set by _recover

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        config: StorageConfig | None = None,
        clock: Clock | None = None,
        *,
        read_only: bool = False,
    ) -> TieredStore:
        """Open (or create) the store in ``data_dir`` and recover what a crash left.

        WAL segments that were not compacted are replayed into the rings and queued
        for compaction; a torn last record is dropped (and counted in
        ``stats()["torn_records_dropped"]``). The store holds the data directory's
        lock (``{data_dir}/LOCK``) until :meth:`close`: one writer per directory.

        With ``read_only=True`` nothing is locked, recovered or written: the store
        reads what is on disk (Parquet and the WAL, as :meth:`history`,
        :meth:`read_table` and :meth:`series`) while another process may be recording
        into it. Its rings stay empty and writing calls raise :class:`StorageError`.

        Raises
        ------
        StorageError
            ``data_dir`` cannot be created or read; another store has it open for
            writing (``reason="data_dir_locked"``); with ``read_only``, it holds no store.
        """
        path = Path(data_dir)
        store = cls(path, config or StorageConfig(), clock or SystemClock(), read_only=read_only)
        if read_only:
            if not store._wal_dir.is_dir() and not store._cold_dir.is_dir():
                raise StorageError(f"no store in {path}", reason="no_store")
            store._committed = store._read_commit() or 0
            return store
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot open the store in {path}: {exc}") from exc
        store._dir_lock = DirLock.acquire(path)
        try:
            store._wal_dir.mkdir(exist_ok=True)
            store._cold_dir.mkdir(exist_ok=True)
            store._recover()
        except OSError as exc:
            store._dir_lock.release()
            raise StorageError(f"cannot open the store in {path}: {exc}") from exc
        except BaseException:
            store._dir_lock.release()
            raise
        if store.config.background:
            store._start_threads()
        return store

    def _recover(self) -> None:
        commit = self._read_commit()
        self._committed = commit or 0
        # Without a commit file the cold tier may still hold parts (copied in, or the
        # WAL was removed): new generations must not reuse their names.
        last = self._committed if commit is not None else cold.max_generation(self._cold_dir)
        self._prior_generation = last  # parts up to here hold earlier sessions' samples
        self._counters["stale_temporaries_removed"] = cold.remove_stale_temporaries(self._cold_dir)
        pending: dict[int, list[Path]] = {}
        for seg in list_segments(self._wal_dir):
            last = max(last, seg.generation)
            if seg.generation <= self._committed:
                seg.path.unlink()  # already durable in Parquet; the crash hit before delete
            else:
                pending.setdefault(seg.generation, []).append(seg.path)
        for gen, paths in sorted(pending.items()):
            for p in paths:
                read = read_segment(p)
                self._counters["torn_records_dropped"] += int(read.torn)
                for c in read.chunks:
                    self._remember(c)
                    self._counters["samples_recovered"] += len(c)
            self._sealed.append(gen)
        self._writer = WalWriter(self._wal_dir, last + 1)

    def _remember(self, chunk: Chunk) -> None:
        """Put a recovered chunk in its series' ring."""
        key = (chunk.sensor_id, chunk.attribute_id)
        kind = KINDS.get(chunk.kind, KINDS["numeric"])
        series = self._series.get(key)
        if series is None or series.kind.name != kind.name:
            series = _Series(chunk.room, kind, self._new_ring(kind), gapless=series is None)
            self._series[key] = series
        series.room = chunk.room
        series.ring.extend(chunk.ts, chunk.values, chunk.recv_ts, chunk.seq)

    def _start_threads(self) -> None:
        for target, name in ((self._fsync_loop, "fsync"), (self._compact_loop, "compactor")):
            t = threading.Thread(target=target, name=f"sensocto-storage-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def close(self) -> None:
        """Stop the background threads, seal and fsync the WAL, compact it, and close.

        With ``config.compact_on_close=False`` the sealed WAL is left for the next open.
        The data directory's lock is released last, even if compacting failed.

        Idempotent. Later appends raise :class:`ClosedResourceError`; reads still work.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.read_only:
            return
        try:
            self._stop.set()
            self._wake.set()
            for t in self._threads:
                t.join()
            self._worker.close()
            with self._lock:
                sealed = self._writer.close()
                if sealed is not None:
                    self._sealed.append(sealed)
            if self.config.compact_on_close:
                self._compact_pending()
        finally:
            if self._dir_lock is not None:
                self._dir_lock.release()

    def __enter__(self) -> TieredStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------

    def _new_ring(self, kind: KindSpec) -> SeriesRing:
        hot, warm = self.config.limits(kind, self._scale)
        return SeriesRing(kind.width, kind.dtype, hot, warm)

    def append(self, batch: Batch, *, room: str, kind: KindSpec) -> None:
        """Record a validated, stamped batch in the WAL and the series' ring.

        When this returns the batch is with the OS (it survives the process being
        killed) and is fsynced within ``fsync_interval_s``.

        Raises
        ------
        ValidationError
            The batch is not stamped, its arrays disagree in length, its values do not
            have the kind's shape, or the series was recorded with another kind.
        StorageError
            The WAL could not be written.
        ClosedResourceError
            The store is closed.
        """
        self._refuse_if_read_only("append")
        chunk = self._chunk_of(batch, room, kind)
        key = (batch.sensor_id, batch.attribute_id)
        wake = False
        with self._lock:
            if self._closed:
                raise ClosedResourceError("the store is closed", reason="store_closed")
            series = self._series.get(key)
            if series is None:
                check_id(batch.sensor_id, "sensor_id")
                check_id(batch.attribute_id, "attribute_id")
                check_id(room, "room")
                series = _Series(room, kind, self._new_ring(kind))
                self._series[key] = series
            elif series.kind.name != kind.name:
                raise ValidationError(
                    f"{batch.sensor_id}/{batch.attribute_id} is recorded as "
                    f"{series.kind.name}, not {kind.name}",
                    reason="kind_mismatch",
                )
            elif series.room != room:
                check_id(room, "room")
                series.room = room
            wake = self._rotate_if_due()
            written = self._writer.write(chunk)
            series.ring.extend(chunk.ts, chunk.values, chunk.recv_ts, chunk.seq)
            self._unsynced = True
            c = self._counters
            c["samples_appended"] += len(chunk)
            c["batches_appended"] += 1
            c["wal_bytes_written"] += written
        if wake:
            self._wake.set()

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise StorageError(
                f"{what} needs a writable store; {self.data_dir} was opened read-only",
                reason="read_only",
            )

    @staticmethod
    def _chunk_of(batch: Batch, room: str, kind: KindSpec) -> Chunk:
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
                f"{kind.name} values for {n} samples must have shape {expected}, "
                f"got {values.shape}",
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

    def _rotate_if_due(self) -> bool:
        """Seal the current generation if it is too big or too old (lock held).

        Returns whether the compactor has work: a generation was sealed, or the first
        one is half full, time to start the worker process so that it is up (an
        interpreter start and pyarrow's import) by the time the generation is sealed.
        """
        w = self._writer
        if w.bytes == 0:
            self._gen_opened = self._clock.monotonic()
            return False
        age = self._clock.monotonic() - self._gen_opened
        max_bytes, max_age = self.config.segment_max_bytes, self.config.segment_max_age_s
        if w.bytes < max_bytes and age < max_age:
            if self._worker_wanted or (2 * w.bytes < max_bytes and 2 * age < max_age):
                return False
            self._worker_wanted = True
            return True
        sealed = w.seal()
        if sealed is not None:
            self._sealed.append(sealed)
        self._gen_opened = self._clock.monotonic()
        self._worker_wanted = True
        return True

    # -- memory ----------------------------------------------------------------------

    def latest(
        self, sensor_id: str, attribute_id: str, n: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        """The newest ``n`` (default: all held) samples in memory, oldest first.

        Returns ``(ts, values)`` (int64 ns, and ``(k,)`` or ``(k, width)`` values);
        empty arrays for a series never recorded.
        """
        with self._lock:
            series = self._series.get((sensor_id, attribute_id))
            if series is None:
                return np.zeros(0, dtype=np.int64), np.zeros(0)
            return series.ring.latest(n)

    def set_load_scale(self, scale: float) -> None:
        """Shrink (or restore) every ring to ``scale`` × its limits (1.0, 0.5, 0.2, 0.05).

        Only memory changes: every sample stays in the WAL and Parquet tiers.
        """
        if not (isinstance(scale, int | float) and 0 < scale <= 1):
            raise ValidationError(
                f"load scale must be in (0, 1], got {scale!r}", reason="invalid_scale"
            )
        with self._lock:
            self._scale = float(scale)
            for s in self._series.values():
                limits = self.config.limits(s.kind, self._scale)
                if limits != s.ring.limits:
                    s.ring = s.ring.resized(*limits)

    # -- durability ------------------------------------------------------------------

    def flush(self) -> None:
        """fsync the WAL now (the background thread does this every interval).

        Raises
        ------
        StorageError
            The fsync failed, or the store is read-only.
        """
        self._refuse_if_read_only("flush")
        with self._lock:
            started = self._clock.monotonic()
            self._unsynced = False
        try:
            self._writer.sync()
        except StorageError:
            with self._lock:
                self._unsynced = True
            raise
        with self._lock:
            self._synced_at = started

    def _fsync_loop(self) -> None:
        while not self._stop.wait(self.config.fsync_interval_s):
            try:
                self.flush()
            except StorageError as exc:
                self._last_error = str(exc)
                log.error("%s", exc)

    # -- compaction ------------------------------------------------------------------

    def compact(self) -> None:
        """Seal the current WAL generation, compact every sealed one, apply retention.

        Returns once their samples are durable in Parquet and the WAL files deleted.

        Raises
        ------
        StorageError
            A Parquet part could not be written (the WAL is kept; nothing is lost),
            or the store is read-only.
        """
        self._refuse_if_read_only("compact")
        with self._lock:
            sealed = self._writer.seal()
            if sealed is not None:
                self._sealed.append(sealed)
            self._gen_opened = self._clock.monotonic()
        self._compact_pending()
        self._apply_retention()

    def wait_compacted(self, timeout: float | None = None) -> bool:
        """Wait until the background compactor has compacted every generation sealed now.

        Returns False if ``timeout`` (seconds) passed first. Without background threads
        (``config.background=False``) only :meth:`compact` compacts; call that instead.
        """
        with self._lock:
            if not self._sealed:
                return True
            target = max(self._sealed)
            return self._compacted.wait_for(lambda: self._committed >= target, timeout)

    def _compact_loop(self) -> None:
        while True:
            self._wake.wait(self.config.compaction_poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with self._lock:
                    if not self._closed:
                        self._rotate_if_due()
                    start_worker = self._worker_wanted
                if start_worker:
                    self._worker.start()
                self._compact_pending(in_worker=True)
                self._apply_retention()
            except StorageError as exc:
                self._last_error = str(exc)
                log.error("compaction failed, will retry: %s", exc)

    def _compact_pending(self, *, in_worker: bool = False) -> None:
        """Compact every sealed generation: here, or in the worker process.

        The background compactor uses the worker (it keeps the engine's loop free of
        the GIL); :meth:`compact` and :meth:`close` work in the calling thread, which
        waits for the result anyway, and start no process.
        """
        with self._compact_lock:
            with self._lock:
                pending = list(self._sealed)
            for gen in pending:
                self._compact_generation(gen, in_worker)

    def _compact_generation(self, gen: int, in_worker: bool) -> None:
        """Write one sealed generation to Parquet, commit it, delete its WAL files.

        A file that ends in an unreadable record (a crash mid-write, or damage) is
        moved to ``wal/torn/`` rather than deleted, so the bytes stay for inspection.
        """
        paths = [s.path for s in list_segments(self._wal_dir) if s.generation == gen]
        c = self.config
        settings = ParquetSettings(
            c.parquet_compression,
            c.parquet_compression_level,
            c.row_group_samples,
            c.compaction_workers,
        )
        done: Compacted = (self._worker.compact if in_worker else compact_generation)(
            paths, self._cold_dir, gen, settings
        )
        self._write_commit(gen)
        with self._lock:
            self._committed = gen
            self._sealed.remove(gen)
            counters = self._counters
            counters["generations_compacted"] += 1
            counters["parquet_files_written"] += done.files
            counters["samples_compacted"] += done.samples
            self._compacted.notify_all()
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                if p in done.torn:
                    (self._wal_dir / "torn").mkdir(exist_ok=True)
                    p.rename(self._wal_dir / "torn" / p.name)
                else:
                    p.unlink()

    def _read_commit(self) -> int | None:
        try:
            return int((self._wal_dir / _COMMIT_FILE).read_text().strip() or 0)
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise StorageError(f"{self._wal_dir / _COMMIT_FILE} is corrupt: {exc}") from exc

    def _write_commit(self, gen: int) -> None:
        path = self._wal_dir / _COMMIT_FILE
        tmp = path.with_name(_COMMIT_FILE + ".tmp")
        try:
            with open(tmp, "w") as f:
                f.write(f"{gen}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(self._wal_dir)
        except OSError as exc:
            raise StorageError(f"cannot record compaction in {path}: {exc}") from exc

    def _apply_retention(self) -> None:
        days = self.config.retention_days
        if days is None:
            return
        cutoff = (self._clock.time_ns() - int(days * cold.DAY_NS)) // cold.DAY_NS
        cold.delete_before(self._cold_dir, cutoff)

    # -- reading ---------------------------------------------------------------------

    def _wal_snapshot(self) -> tuple[set[int], list[pa.Buffer]]:
        """The generations to read from the WAL and the bytes of their complete records.

        A read-only store follows the writer's commit point on disk: a generation
        compacted (and its files deleted) while the snapshot was taken shows up as a
        missing file, and the snapshot is taken again.
        """
        while True:
            try:
                with self._lock:
                    return self._wal_snapshot_locked()
            except FileNotFoundError:
                if not self.read_only:
                    raise

    def _wal_snapshot_locked(self) -> tuple[set[int], list[pa.Buffer]]:
        if self.read_only:
            self._committed = self._read_commit() or 0
            open_files = {}
        else:
            open_files = self._writer.files
        gens: set[int] = set()
        buffers = []
        for seg in list_segments(self._wal_dir):
            if seg.generation <= self._committed:
                continue
            mm = pa.memory_map(str(seg.path))
            size = open_files.get(seg.path, mm.size())
            buffers.append(mm.read_buffer(size))
            gens.add(seg.generation)
        return gens, buffers

    def _wal_series(
        self,
        buffers: Iterable[pa.Buffer],
        sensors: Sequence[str] | None,
        attributes: Sequence[str] | None,
    ) -> dict[SeriesKey, tuple[str, _Arrays]]:
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
        return {k: (kinds[k], _Arrays.concat(v)) for k, v in groups.items()}

    def _sources(
        self,
        sensors: Sequence[str] | None,
        attributes: Sequence[str] | None,
        start: int | None,
        end: int | None,
    ) -> dict[SeriesKey, _Found]:
        wal_gens, buffers = self._wal_snapshot()
        wal = self._wal_series(buffers, sensors, attributes)
        parts: dict[SeriesKey, list[cold.ColdPart]] = {}
        for p in cold.list_parts(self._cold_dir, sensors, attributes, start, end, wal_gens):
            parts.setdefault((p.sensor_id, p.attribute_id), []).append(p)
        out: dict[SeriesKey, _Found] = {}
        for key in sorted(set(wal) | set(parts)):
            with self._lock:
                known = self._series.get(key)
            if key in wal:
                kind = KINDS.get(wal[key][0], KINDS["numeric"])
            elif known is not None:
                kind = known.kind
            else:
                kind = cold.kind_of_part(parts[key][-1])
            w = wal.get(key)
            out[key] = (kind, parts.get(key, []), None if w is None else w[1])
        return out

    @staticmethod
    def _load(
        parts: list[cold.ColdPart],
        wal: _Arrays | None,
        start: int | None,
        end: int | None,
        with_values: bool,
    ) -> _Arrays:
        """One series' samples in ``[start, end)`` from Parquet then WAL, in seq order."""
        pieces: list[_Arrays] = []
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
                _Arrays(
                    _ns(t.column("ts")),
                    _ns(t.column("recv_ts")),
                    t.column("seq").to_numpy(),
                    values,
                )
            )
        if wal is not None:
            w = wal.select(start, end)
            pieces.append(w if with_values else _Arrays(w.ts, w.recv_ts, w.seq, np.zeros(0)))
        if not pieces:
            return _Arrays.empty()
        if len(pieces) == 1:
            return pieces[0]
        return _Arrays(
            np.concatenate([p.ts for p in pieces]),
            np.concatenate([p.recv_ts for p in pieces]),
            np.concatenate([p.seq for p in pieces]),
            np.concatenate([p.values for p in pieces]) if with_values else np.zeros(0),
        )

    def read_table(
        self,
        sensor_id: str,
        attribute_id: str,
        start: Any = None,
        end: Any = None,
    ) -> pa.Table:
        """Every sample of one series in ``[start, end)``, in recording order, for export.

        Columns as in the cold tier: ``ts``, ``recv_ts`` (``timestamp[ns, UTC]``),
        ``value`` (the kind's dtype, fixed-size list for vectors) and ``seq``. Reads
        Parquet and the uncompacted WAL; an unknown series gives an empty table.
        """
        lo, hi = _to_ns(start), _to_ns(end)
        src = self._sources([sensor_id], [attribute_id], lo, hi).get((sensor_id, attribute_id))
        ts_type = pa.timestamp("ns", tz="UTC")
        if src is None:
            kind = KINDS["numeric"]
            a = _Arrays.empty()
        else:
            kind, parts, wal = src
            a = self._load(parts, wal, lo, hi, True)
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

    def history(
        self,
        sensors: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        *,
        lazy: bool | None = None,
    ) -> xr.Dataset:
        """Everything recorded in ``[start, end)`` as an :class:`xarray.Dataset`.

        One variable per attribute, dims ``("sensor", "time")`` plus a component dim
        for vectors; ``time`` is the union of the samples' device timestamps
        (``datetime64[ns]``, UTC) and cells without a sample are NaN. Attributes carry
        ``units``, ``kind`` and ``rate_hz``. Reads Parquet and the uncompacted WAL, so
        it includes the newest appended samples.

        Parameters
        ----------
        sensors, attributes
            Which to include (``None``: all recorded).
        start, end
            ns since the epoch, ``datetime``, ``numpy.datetime64`` or ISO strings
            (naive times are UTC); ``None`` is open.
        lazy
            ``True``: Dask arrays whose chunks read values when computed; ``False``:
            numpy; ``None``: lazy once the selection exceeds
            ``config.lazy_threshold_samples``.
        """
        lo, hi = _to_ns(start), _to_ns(end)
        sensors = [sensors] if isinstance(sensors, str) else sensors
        attributes = [attributes] if isinstance(attributes, str) else attributes
        sensors = None if sensors is None else list(sensors)
        attributes = None if attributes is None else list(attributes)
        memory = None if lazy else self._from_memory(sensors, attributes, lo, hi)
        found = memory if memory is not None else self._sources(sensors, attributes, lo, hi)
        if lazy is None:
            estimate = sum(
                p.path.stat().st_size for _, parts, _ in found.values() for p in parts
            ) + sum(0 if w is None else w.ts.shape[0] for _, _, w in found.values())
            lazy = estimate > self.config.lazy_threshold_samples and self._count(found, lo, hi) > (
                self.config.lazy_threshold_samples
            )
        sources = [
            SeriesSource(sensor, attr, kind, self._loader(parts, wal))
            for (sensor, attr), (kind, parts, wal) in found.items()
        ]
        order = sensors if sensors is not None else sorted({s for s, _ in found})
        return build_dataset(
            sources, order, lo, hi, lazy=lazy, chunk_samples=self.config.dask_chunk_samples
        )

    def _from_memory(
        self,
        sensors: Sequence[str] | None,
        attributes: Sequence[str] | None,
        start: int | None,
        end: int | None,
    ) -> dict[SeriesKey, _Found] | None:
        """The selection from the rings alone, or None if they may not hold all of it.

        They do when, for every series asked for, no sample that ever left its ring
        (or was stored in an earlier session) has a timestamp at or after ``start``:
        then the rings hold exactly what Parquet and the WAL would return, without
        reading a file. Recent windows of named series, as live notebooks ask for.
        """
        if start is None or sensors is None or attributes is None:
            return None
        out: dict[SeriesKey, _Found] = {}
        with self._lock:
            for key in ((s, a) for s in sensors for a in attributes):
                x = self._series.get(key)
                dropped = None if x is None else x.ring.dropped_max_ts
                if x is None or not x.gapless or (dropped is not None and dropped >= start):
                    return None
                ts, values, recv, seq = x.ring.snapshot()
                out[key] = (x.kind, [], _Arrays(ts, recv, seq, values).select(start, end))
        if any(self._prior_max(key) >= start for key in out):
            return None
        with self._lock:
            self._counters["histories_from_memory"] += 1
        return out

    def _prior_max(self, key: SeriesKey) -> int:
        """Latest device timestamp of the series in earlier sessions' Parquet parts."""
        cached = self._prior_max_ts.get(key)
        if cached is None:
            parts = [
                p
                for p in cold.list_parts(self._cold_dir, [key[0]], [key[1]])
                if p.last <= self._prior_generation
            ]
            cached = cold.max_ts(parts)
            self._prior_max_ts[key] = cached
        return cached

    def _count(self, found: dict[SeriesKey, _Found], lo: int | None, hi: int | None) -> int:
        return sum(
            self._load(parts, wal, lo, hi, False).ts.shape[0] for _, parts, wal in found.values()
        )

    def _loader(self, parts: list[cold.ColdPart], wal: _Arrays | None) -> Loader:
        """Reads one series in a time range, sorted by time (then seq), for history."""

        def load(start: int | None, end: int | None, with_values: bool) -> tuple[Any, Any]:
            a = self._load(parts, wal, start, end, with_values)
            ts, values = a.ts, a.values
            if ts.shape[0] > 1 and not (np.diff(ts) >= 0).all():
                order = np.lexsort((a.seq, ts))
                ts = ts[order]
                values = values[order] if with_values else values
            return ts, values

        return load

    def series(self) -> list[StoredSeries]:
        """Every series recorded in any tier (Parquet, WAL, memory), sorted.

        A series partitioned under several rooms is listed once per room.
        """
        with self._lock:
            found = {(x.room, s, a): x.kind.name for (s, a), x in self._series.items()}
        if self.read_only:  # the rings hold nothing: the WAL's series are on disk only
            for buf in self._wal_snapshot()[1]:
                for c in read_segment(buf).chunks:
                    found[(c.room, c.sensor_id, c.attribute_id)] = c.kind
        for p in cold.list_parts(self._cold_dir):
            key = (p.room, p.sensor_id, p.attribute_id)
            if key not in found:
                found[key] = cold.kind_of_part(p).name
        return sorted(
            (StoredSeries(room, s, a, kind) for (room, s, a), kind in found.items()),
            key=lambda x: (x.sensor_id, x.attribute_id, x.room),
        )

    def next_seq(self, sensor_id: str, attribute_id: str) -> int:
        """One past the highest sequence number stored for the series (0 if none).

        The engine starts its per-series counter here after a restart, so ``seq``
        keeps increasing across sessions. Not on a read-only store (its rings hold
        nothing of the WAL): raises :class:`StorageError` there.
        """
        self._refuse_if_read_only("next_seq")
        with self._lock:
            x = self._series.get((sensor_id, attribute_id))
            in_memory = None if x is None else x.ring.last_seq
        parts = cold.list_parts(self._cold_dir, [sensor_id], [attribute_id])
        on_disk = cold.max_seq(parts)
        return max(-1 if in_memory is None else in_memory, on_disk) + 1

    def last_ts(self, sensor_id: str, attribute_id: str) -> int | None:
        """Newest device timestamp (int64 ns) stored for the series in any tier, or None.

        Memory (which also holds what the WAL replayed at open) is checked under the
        lock; Parquet parts contribute their footer statistics only, never a full
        read. The endpoint's exactly-once dedupe needs this after a clean restart,
        when everything was compacted and the rings are empty. Not on a read-only
        store: raises :class:`StorageError` there.
        """
        self._refuse_if_read_only("last_ts")
        with self._lock:
            x = self._series.get((sensor_id, attribute_id))
            held = None if x is None else x.ring.latest()[0]
            dropped = None if x is None else x.ring.dropped_max_ts
        best = -(2**62)
        if held is not None and held.shape[0]:
            best = int(held.max())
        if dropped is not None:
            best = max(best, dropped)
        parts = cold.list_parts(self._cold_dir, [sensor_id], [attribute_id])
        if parts:
            best = max(best, cold.max_ts(parts))
        return None if best == -(2**62) else best

    # -- health ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for ``/health``.

        ``samples_appended``, ``batches_appended``, ``wal_bytes`` (on disk, not yet
        compacted), ``storage_lag_s`` (age of the oldest appended sample that may not
        be fsynced yet; 0 when all is synced), ``segments_pending`` (sealed WAL
        generations awaiting compaction), ``rings`` (``{"sensor/attribute": {"hot",
        "warm"}}`` sample counts), ``ring_bytes``, ``load_scale``, compaction counters,
        ``torn_records_dropped``, ``stale_temporaries_removed`` (half-written parts of a
        killed compaction, deleted on open) and ``last_error``.
        """
        with self._lock:
            now = self._clock.monotonic()
            rings = {
                f"{s}/{a}": {"hot": x.ring.hot_count, "warm": x.ring.warm_count}
                for (s, a), x in self._series.items()
            }
            out: dict[str, Any] = dict(self._counters)
            out.update(
                wal_bytes=sum(_size(s.path) for s in list_segments(self._wal_dir)),
                storage_lag_s=max(0.0, now - self._synced_at) if self._unsynced else 0.0,
                segments_pending=len(self._sealed),
                rings=rings,
                ring_bytes=sum(x.ring.nbytes for x in self._series.values()),
                load_scale=self._scale,
                closed=self._closed,
                last_error=self._last_error,
            )
        return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _ns(column: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return arr.cast(pa.int64()).to_numpy()
