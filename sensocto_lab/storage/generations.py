"""WAL generations from sealing to Parquet: rotation, compaction, the commit point, retention.

A generation is sealed when it is too big or too old (:meth:`Generations.rotate_if_due`,
from the append path and the compactor thread). Sealed generations are compacted in
order: their samples and events are written to Parquet (:mod:`.compactor`, in the
worker process for the background thread), the generation is recorded in
``wal/COMPACTED`` (the commit point), then its WAL files are deleted. Readers read a
generation from the WAL while its files are above the commit point, else from its
Parquet parts, so every sample is read exactly once (see ``docs/storage.md``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

import pyarrow as pa

import sensocto_lab.storage.cold as cold
import sensocto_lab.storage.event_log as event_log
from sensocto_lab.errors import StorageError
from sensocto_lab.storage.compactor import (
    Compacted,
    CompactionWorker,
    ParquetSettings,
    compact_generation,
)
from sensocto_lab.storage.health import storage_error
from sensocto_lab.storage.state import COMMIT_FILE, StoreState
from sensocto_lab.storage.wal import EVENTS_LAYOUT, WalWriter, fsync_dir, list_segments
from sensocto_lab.storage.wal_read import read_records, read_segment

__all__ = ["Generations"]

log = logging.getLogger(__name__)


class Generations:
    """Seals, compacts and retires the store's WAL generations."""

    def __init__(self, state: StoreState) -> None:
        self._s = state
        self._compact_lock = threading.Lock()  # one compaction at a time
        self.compacted = threading.Condition(state.lock)
        self.worker = CompactionWorker()  # the background compactor's process
        self.worker_wanted = False  # a compaction is near: start the worker
        self.gen_opened = state.clock.monotonic()

    # -- the commit point ------------------------------------------------------------

    def read_commit(self) -> int | None:
        """The committed generation on disk, or None if there is no commit file."""
        path = self._s.wal_dir / COMMIT_FILE
        try:
            return int(path.read_text().strip() or 0)
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise StorageError(f"wal/{COMMIT_FILE} is corrupt: {exc}") from exc

    def _write_commit(self, gen: int) -> None:
        path = self._s.wal_dir / COMMIT_FILE
        tmp = path.with_name(COMMIT_FILE + ".tmp")
        try:
            with open(tmp, "w") as f:
                f.write(f"{gen}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(self._s.wal_dir)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise storage_error(f"cannot record compaction in wal/{COMMIT_FILE}", exc) from exc

    def recover(self) -> None:
        """Open the WAL of a writable store after whatever ended the last one.

        WAL files at or below the commit point are deleted (their data is in Parquet,
        the crash came before the delete); the rest are replayed into the rings (a
        torn last record is dropped and counted) and queued for compaction; the event
        counter continues after the highest stored ``seq``; temporaries of dead
        writers are removed. The writer starts above every generation on disk.
        """
        s = self._s
        commit = self.read_commit()
        s.committed = commit or 0
        # Without a commit file the cold tier may still hold parts (copied in, or the
        # WAL was removed): new generations must not reuse their names.
        last = s.committed if commit is not None else cold.max_generation(s.cold_dir)
        s.prior_generation = last
        s.counters["stale_temporaries_removed"] = sum(
            cold.remove_stale_temporaries(d) for d in (s.cold_dir, s.events_dir, s.wal_dir)
        )
        event_seq = event_log.max_seq(s.events_dir)
        pending: dict[int, list[Path]] = {}
        for seg in list_segments(s.wal_dir):
            last = max(last, seg.generation)
            if seg.generation <= s.committed:
                seg.path.unlink()  # already durable in Parquet; the crash hit before delete
            else:
                pending.setdefault(seg.generation, []).append(seg.path)
        for gen, paths in sorted(pending.items()):
            for p in paths:
                if p.name.endswith(f"-{EVENTS_LAYOUT}.arrows"):
                    batches, torn = read_records(p)
                    s.counters["torn_records_dropped"] += int(torn)
                    for b in batches:
                        s.counters["events_recovered"] += b.num_rows
                        event_seq = max(event_seq, _max_seq(b))
                    continue
                read = read_segment(p)
                s.counters["torn_records_dropped"] += int(read.torn)
                for c in read.chunks:
                    s.remember(c)
                    s.counters["samples_recovered"] += len(c)
            s.sealed.append(gen)
        s.next_event_seq = event_seq + 1
        s.writer = WalWriter(s.wal_dir, last + 1)

    # -- sealing ---------------------------------------------------------------------

    def seal_now(self) -> None:
        """Seal the current generation (the store's lock held)."""
        sealed = self._s.writer.seal()
        if sealed is not None:
            self._s.sealed.append(sealed)
        self.gen_opened = self._s.clock.monotonic()

    def rotate_if_due(self) -> bool:
        """Seal the current generation if it is too big or too old (lock held).

        Returns whether the compactor has work: a generation was sealed, or the first
        one is half full, time to start the worker process so that it is up (an
        interpreter start and pyarrow's import) by the time the generation is sealed.
        """
        s = self._s
        w = s.writer
        if w.bytes == 0:
            self.gen_opened = s.clock.monotonic()
            return False
        age = s.clock.monotonic() - self.gen_opened
        max_bytes, max_age = s.config.segment_max_bytes, s.config.segment_max_age_s
        if w.bytes < max_bytes and age < max_age:
            if self.worker_wanted or (2 * w.bytes < max_bytes and 2 * age < max_age):
                return False
            self.worker_wanted = True
            return True
        self.seal_now()
        self.worker_wanted = True
        return True

    # -- compaction ------------------------------------------------------------------

    def compact(self) -> None:
        """Seal the current generation, compact every sealed one, apply retention."""
        with self._s.lock:
            self.seal_now()
        self.compact_pending()
        self.apply_retention()

    def wait_compacted(self, timeout: float | None = None) -> bool:
        """Wait until every generation sealed now is compacted; False on timeout."""
        s = self._s
        with s.lock:
            if not s.sealed:
                return True
            target = max(s.sealed)
            return self.compacted.wait_for(lambda: s.committed >= target, timeout)

    def run(self, stop: threading.Event, wake: threading.Event) -> None:
        """The compactor thread: rotate, compact in the worker, retain, until ``stop``."""
        s = self._s
        while True:
            wake.wait(s.config.compaction_poll_s)
            wake.clear()
            if stop.is_set():
                return
            try:
                with s.lock:
                    if not s.closed:
                        self.rotate_if_due()
                    start_worker = self.worker_wanted
                if start_worker:
                    self.worker.start()
                self.compact_pending(in_worker=True)
                self.apply_retention()
            except StorageError as exc:
                log.error("compaction failed, will retry: %s", exc)

    def compact_pending(self, *, in_worker: bool = False) -> None:
        """Compact every sealed generation: here, or in the worker process.

        The background compactor uses the worker (it keeps the engine's loop free of
        the GIL); :meth:`compact` and the store's ``close`` work in the calling
        thread, which waits for the result anyway, and start no process.

        Raises
        ------
        StorageError
            A part could not be written (the WAL is kept; recorded in the health).
        """
        with self._compact_lock:
            with self._s.lock:
                pending = list(self._s.sealed)
            try:
                for gen in pending:
                    self._compact_generation(gen, in_worker)
            except StorageError as exc:
                with self._s.lock:
                    self._s.counters["write_errors"] += 1
                self._s.health.failed("compaction", exc)
                raise
            self._s.health.succeeded("compaction")

    def _compact_generation(self, gen: int, in_worker: bool) -> None:
        """Write one sealed generation to Parquet, commit it, delete its WAL files.

        A file that ends in an unreadable record (a crash mid-write, or damage) is
        moved to ``wal/torn/`` rather than deleted, so the bytes stay for inspection.
        """
        s = self._s
        paths = [seg.path for seg in list_segments(s.wal_dir) if seg.generation == gen]
        c = s.config
        settings = ParquetSettings(
            c.parquet_compression,
            c.parquet_compression_level,
            c.row_group_samples,
            c.compaction_workers,
        )
        done: Compacted = (self.worker.compact if in_worker else compact_generation)(
            paths, s.cold_dir, s.events_dir, gen, settings
        )
        self._write_commit(gen)
        with s.lock:
            s.committed = gen
            s.sealed.remove(gen)
            counters = s.counters
            counters["generations_compacted"] += 1
            counters["parquet_files_written"] += done.files
            counters["samples_compacted"] += done.samples
            counters["events_compacted"] += done.events
            self.compacted.notify_all()
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                if p in done.torn:
                    (s.wal_dir / "torn").mkdir(exist_ok=True)
                    p.rename(s.wal_dir / "torn" / p.name)
                else:
                    p.unlink()

    def apply_retention(self) -> None:
        """Delete cold and event partitions older than ``config.retention_days``."""
        s = self._s
        days = s.config.retention_days
        if days is None:
            return
        cutoff = (s.clock.time_ns() - int(days * cold.DAY_NS)) // cold.DAY_NS
        cold.delete_before(s.cold_dir, cutoff)
        event_log.delete_before(s.events_dir, cutoff)


def _max_seq(batch: pa.RecordBatch) -> int:
    seq = batch.column("seq").to_numpy()
    return int(seq.max()) if seq.shape[0] else -1
