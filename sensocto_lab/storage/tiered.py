"""The tiered store: memory rings → write-ahead log → Parquet, behind one object.

``append`` writes a batch to the WAL (handed to the OS before it returns) and to the
series' ring; ``append_events`` writes events to the WAL's event stream with the same
promise. The slow work happens behind the caller, in parts named by their job: the
fsync thread (:mod:`.syncer`), sealing, compaction in a worker process and retention
(:mod:`.generations`), and the readers that merge the WAL with Parquet so every
sample and event is read exactly once (:mod:`.reader`). A writable store holds the
data directory's lock (:mod:`.lock`) from open to close and keeps the session's
metadata (:mod:`.session`). How the tiers fit together, and how a crash is
recovered, is in ``docs/storage.md``.

Memory (the rings) holds copies of the newest samples for ``latest``; every sample in
a ring is also in the WAL, so history never needs the rings to be complete.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

import sensocto_lab.storage.cold as cold
import sensocto_lab.storage.event_log as event_log
import sensocto_lab.storage.session as session_file
from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.errors import ClosedResourceError, StorageError, ValidationError
from sensocto_lab.events import Event
from sensocto_lab.model import Batch, KindSpec
from sensocto_lab.storage.append import Appender
from sensocto_lab.storage.config import StorageConfig
from sensocto_lab.storage.generations import Generations
from sensocto_lab.storage.health import storage_error
from sensocto_lab.storage.lock import DirLock
from sensocto_lab.storage.reader import StoredSeries, StoreReader, to_ns
from sensocto_lab.storage.session import SessionInfo, SessionKeeper, check_text
from sensocto_lab.storage.state import StoreState
from sensocto_lab.storage.syncer import WalSyncer
from sensocto_lab.storage.wal import EVENTS_LAYOUT, list_segments

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["StoredSeries", "TieredStore"]

log = logging.getLogger(__name__)


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
        self._s = StoreState(data_dir, config, clock, read_only=read_only)
        self._syncer = WalSyncer(self._s)
        self._generations = Generations(self._s)
        self._reader = StoreReader(self._s, self._generations.read_commit)
        self._appender = Appender(self._s, self._syncer, self._generations)
        self._dir_lock: DirLock | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._session = SessionKeeper(data_dir, self._s.health)

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
        ``statistics()["torn_records_dropped"]``). The store holds the data
        directory's lock (``{data_dir}/LOCK``) until :meth:`close`: one writer per
        directory. The first writable open starts the session (``session.json``,
        :attr:`session`) at the clock's time.

        With ``read_only=True`` nothing is locked, recovered or written: the store
        reads what is on disk (Parquet and the WAL, as :meth:`history`,
        :meth:`read_table`, :meth:`series` and :meth:`events`) while another process
        may be recording into it. Its rings stay empty and writing calls raise
        :class:`StorageError`.

        Raises
        ------
        StorageError
            ``data_dir`` cannot be created or read (``reason="disk_full"`` when the
            disk is full); another store has it open for writing
            (``reason="data_dir_locked"``); with ``read_only``, it holds no store.
        """
        path = Path(data_dir)
        store = cls(path, config or StorageConfig(), clock or SystemClock(), read_only=read_only)
        s = store._s
        if read_only:
            if not s.wal_dir.is_dir() and not s.cold_dir.is_dir():
                raise StorageError(f"no store in {path}", reason="no_store")
            s.committed = store._generations.read_commit() or 0
            return store
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(f"cannot open the store in {path}", exc) from exc
        store._dir_lock = DirLock.acquire(path)
        try:
            for directory in (s.wal_dir, s.cold_dir, s.events_dir):
                directory.mkdir(exist_ok=True)
            store._generations.recover()
            store._session.start(s.clock.time_ns(), _version(), store._rooms())
        except OSError as exc:
            store._dir_lock.release()
            raise storage_error(f"cannot open the store in {path}", exc) from exc
        except BaseException:
            store._dir_lock.release()
            raise
        if store.config.background:
            store._start_threads()
        return store

    def _start_threads(self) -> None:
        jobs = (
            (lambda: self._syncer.run(self._stop), "fsync"),
            (lambda: self._generations.run(self._stop, self._wake), "compactor"),
        )
        for target, name in jobs:
            t = threading.Thread(target=target, name=f"sensocto-storage-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def close(self) -> None:
        """Stop the background threads, seal and fsync the WAL, compact it, and close.

        With ``config.compact_on_close=False`` the sealed WAL is left for the next open.
        Temporaries that failed writes left behind are removed and the data
        directory's lock is released last, even if compacting failed.

        Idempotent. Later appends raise :class:`ClosedResourceError`; reads still work.
        """
        s = self._s
        with s.lock:
            if s.closed:
                return
            s.closed = True
        if self.read_only:
            return
        try:
            self._stop.set()
            self._wake.set()
            for t in self._threads:
                t.join()
            self._generations.worker.close()
            with s.lock:
                self._generations.seal_now()
            s.writer.sync()
            self._session.change(lambda info: info, self._rooms(), quiet=True)
            if self.config.compact_on_close:
                self._generations.compact_pending()
        finally:
            for d in (s.cold_dir, s.events_dir, s.wal_dir):
                cold.remove_stale_temporaries(d, own={os.getpid()})
            if self._dir_lock is not None:
                self._dir_lock.release()

    def __enter__(self) -> TieredStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------

    def append(self, batch: Batch, *, room: str, kind: KindSpec) -> None:
        """Record a validated, stamped batch in the WAL and the series' ring.

        When this returns the batch is with the OS (it survives the process being
        killed) in a readable WAL file, and is fsynced within ``fsync_interval_s``.
        If it raises, nothing of the batch was acknowledged or kept.

        Raises
        ------
        ValidationError
            The batch is not stamped, its arrays disagree in length, its values do not
            have the kind's shape, or the series was recorded with another kind.
        StorageError
            The WAL could not be written (``reason="disk_full"`` when out of space;
            the store's health says ``failing`` until a write succeeds again).
        ClosedResourceError
            The store is closed.
        """
        [error] = self.append_many([(batch, room, kind)])
        if error is not None:
            raise error

    def append_many(self, items: Sequence[tuple[Batch, str, KindSpec]]) -> list[Exception | None]:
        """Record many validated, stamped ``(batch, room, kind)`` at once: a group commit.

        The batches of one value layout (``f4x1``, ``f8x1``, ...) go to the WAL as one
        record in one write, so a loop turn's worth of batches costs one system call per
        layout, not one per batch. Per batch the promise of :meth:`append` holds: when
        this returns, each batch whose entry in the returned list is ``None`` is with
        the OS in a readable WAL file and is fsynced within ``fsync_interval_s``; one
        whose entry is an exception (:class:`ValidationError` as for :meth:`append`,
        :class:`StorageError` for its layout's failed write) was not kept. A record is
        kept or lost whole, so the batches that share one (after a power loss, a torn
        record) are too. Batches of one series are kept in the order given.

        Raises
        ------
        ClosedResourceError
            The store is closed (nothing kept).
        StorageError
            The store is read-only.
        """
        self._s.refuse_if_read_only("append")
        results, wake = self._appender.append_many(items)
        if wake:
            self._wake.set()
        return results

    def append_events(self, events: Sequence[Event]) -> None:
        """Record events (markers, conditions, novelty) in the WAL, next to the samples.

        Every event is validated first (:meth:`Event.validated
        <sensocto_lab.events.Event.validated>`): one bad event refuses the call and
        nothing is written. When this returns the events are with the OS in one WAL
        record (they survive the process being killed) and are fsynced within
        ``fsync_interval_s``, as for :meth:`append`; compaction moves them to
        ``events/room=/date=/`` Parquet parts. Each gets a store-wide ``seq``.

        Raises
        ------
        ValidationError
            An event breaks the rules (``invalid_label``, ``invalid_onset``, ...).
        StorageError
            The WAL could not be written, or the store is read-only.
        ClosedResourceError
            The store is closed.
        """
        s = self._s
        s.refuse_if_read_only("append_events")
        checked = [e.validated() for e in events]
        if not checked:
            return
        with s.lock:
            if s.closed:
                raise ClosedResourceError("the store is closed", reason="store_closed")
            record = event_log.record_batch(checked, s.next_event_seq)
            wake = self._generations.rotate_if_due()
            written = self._appender.write_wal(lambda: s.writer.write_record(EVENTS_LAYOUT, record))
            s.next_event_seq += len(checked)
            s.event_rooms.update(e.room for e in checked if e.room is not None)
            s.counters["events_appended"] += len(checked)
            s.counters["wal_bytes_written"] += written
        if wake:
            self._wake.set()

    # -- memory ----------------------------------------------------------------------

    def latest(
        self, sensor_id: str, attribute_id: str, n: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        """The newest ``n`` (default: all held) samples in memory, oldest first.

        Returns ``(ts, values)`` (int64 ns, and ``(k,)`` or ``(k, width)`` values);
        empty arrays for a series never recorded.
        """
        with self._s.lock:
            series = self._s.series.get((sensor_id, attribute_id))
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
        s = self._s
        with s.lock:
            s.scale = float(scale)
            for x in s.series.values():
                limits = self.config.limits(x.kind, s.scale)
                if limits != x.ring.limits:
                    x.ring = x.ring.resized(*limits)

    # -- durability and compaction -----------------------------------------------------

    def flush(self) -> None:
        """fsync the WAL now (the background thread does this every interval).

        Raises
        ------
        StorageError
            The fsync failed, or the store is read-only.
        """
        self._syncer.flush()

    def compact(self) -> None:
        """Seal the current WAL generation, compact every sealed one, apply retention.

        Returns once their samples and events are durable in Parquet and the WAL files
        deleted.

        Raises
        ------
        StorageError
            A Parquet part could not be written (the WAL is kept; nothing is lost),
            or the store is read-only.
        """
        self._s.refuse_if_read_only("compact")
        self._generations.compact()

    def wait_compacted(self, timeout: float | None = None) -> bool:
        """Wait until the background compactor has compacted every generation sealed now.

        Returns False if ``timeout`` (seconds) passed first. Without background threads
        (``config.background=False``) only :meth:`compact` compacts; call that instead.
        """
        return self._generations.wait_compacted(timeout)

    # -- reading ---------------------------------------------------------------------

    def read_table(
        self, sensor_id: str, attribute_id: str, start: Any = None, end: Any = None
    ) -> pa.Table:
        """Every sample of one series in ``[start, end)``, in recording order, for export.

        Columns as in the cold tier: ``ts``, ``recv_ts`` (``timestamp[ns, UTC]``),
        ``value`` (the kind's dtype, fixed-size list for vectors) and ``seq``. Reads
        Parquet and the uncompacted WAL; an unknown series gives an empty table.
        """
        return self._reader.read_table(sensor_id, attribute_id, start, end)

    def history(
        self,
        sensors: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        *,
        lazy: bool | None = None,
        condition: str | None = None,
    ) -> xr.Dataset:
        """Everything recorded in ``[start, end)`` as an :class:`xarray.Dataset`.

        One variable per attribute, dims ``("sensor", "time")`` plus a component dim
        for vectors; ``time`` is the union of the samples' device timestamps
        (``datetime64[ns]``, UTC) and cells without a sample are NaN. Attributes carry
        ``units``, ``kind`` and ``rate_hz``; the ``participant`` coordinate on
        ``sensor`` names who wore each sensor (``""`` where unassigned, see
        :meth:`assign_participant`). Reads Parquet and the uncompacted WAL, so it
        includes the newest appended samples.

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
        condition
            Keep only samples inside the spans of this condition (its stored events,
            in any room; a running condition counts until now).

        Raises
        ------
        ValidationError
            A bad time bound, or an unknown ``condition`` (``reason="unknown_condition"``,
            the message lists the known ones).
        """
        lo, hi = to_ns(start), to_ns(end)
        sensors = [sensors] if isinstance(sensors, str) else sensors
        attributes = [attributes] if isinstance(attributes, str) else attributes
        sensors = None if sensors is None else list(sensors)
        attributes = None if attributes is None else list(attributes)
        spans = None if condition is None else self._reader.condition_spans(condition)
        ds = self._reader.dataset(sensors, attributes, lo, hi, lazy, spans)
        info = self.session
        who = [info.participant_of(str(x)) or "" for x in ds["sensor"].values]
        return ds.assign_coords(participant=("sensor", np.array(who, dtype=object)))

    def events(
        self,
        room: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        kind: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The recorded events in ``[start, end)``, oldest first, as a pandas table.

        Columns ``onset`` (``datetime64[ns, UTC]``), ``duration`` (s, float), ``label``,
        ``kind``, ``room``, ``sensor``, ``participant`` (None where not given),
        ``value`` (decoded JSON) and ``source``. Running conditions are folded: a
        begin and its end are one row with the begin's onset and the span as
        duration; one still running has duration NaN (see :mod:`sensocto_lab.events`).
        Reads Parquet and the uncompacted WAL (also on a read-only store).

        Parameters
        ----------
        room, kind
            Keep only these rooms / kinds (``None``: all).
        start, end
            Bounds on the onset, as for :meth:`history`.
        """
        return self._reader.events(room, start, end, kind)

    def series(self) -> list[StoredSeries]:
        """Every series recorded in any tier (Parquet, WAL, memory), sorted.

        A series partitioned under several rooms is listed once per room.
        """
        return self._reader.series()

    def next_seq(self, sensor_id: str, attribute_id: str) -> int:
        """One past the highest sequence number stored for the series (0 if none).

        The engine starts its per-series counter here after a restart, so ``seq``
        keeps increasing across sessions. Not on a read-only store (its rings hold
        nothing of the WAL): raises :class:`StorageError` there.
        """
        self._s.refuse_if_read_only("next_seq")
        return self._reader.next_seq(sensor_id, attribute_id)

    def last_ts(self, sensor_id: str, attribute_id: str) -> int | None:
        """Newest device timestamp (int64 ns) stored for the series in any tier, or None.

        Memory (which also holds what the WAL replayed at open) is checked under the
        lock; Parquet parts contribute their footer statistics only, never a full
        read. The endpoint's exactly-once dedupe needs this after a clean restart,
        when everything was compacted and the rings are empty. Not on a read-only
        store: raises :class:`StorageError` there.
        """
        self._s.refuse_if_read_only("last_ts")
        return self._reader.last_ts(sensor_id, attribute_id)

    # -- session ---------------------------------------------------------------------

    @property
    def session(self) -> SessionInfo:
        """The session's metadata (``session.json``), with every room recorded so far.

        A read-only store reads the file each time (the writer may change it); a
        directory recorded before sessions were kept gives an empty ``SessionInfo``.
        """
        if self.read_only:
            return session_file.load(self.data_dir) or SessionInfo()
        return self._session.current(self._rooms())

    def _rooms(self) -> set[str]:
        with self._s.lock:
            return {x.room for x in self._s.series.values()} | self._s.event_rooms

    def assign_participant(self, sensor_id: str, participant: str, role: str | None = None) -> None:
        """Record that ``participant`` wears ``sensor_id`` (as ``role``, e.g. ``"chest"``).

        A sensor belongs to one participant: assigning it again moves it. Written to
        ``session.json`` (atomically, fsynced) before this returns.

        Raises
        ------
        ValidationError
            A bad sensor id, participant id or role.
        StorageError
            The file could not be written, or the store is read-only.
        """
        self._s.refuse_if_read_only("assign_participant")
        self._session.change(
            lambda info: info.with_assignment(sensor_id, participant, role), self._rooms()
        )

    def update_session(
        self, *, name: str | None = None, notes: str | None = None, end: Any = None
    ) -> None:
        """Change the session's name, notes or end time (``None`` leaves one as it is).

        ``end`` is a time as for :meth:`history`. Written like :meth:`assign_participant`.
        """
        self._s.refuse_if_read_only("update_session")
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_text(name, "name")
        if notes is not None:
            changes["notes"] = check_text(notes, "notes")
        if end is not None:
            changes["end_ns"] = to_ns(end)
        self._session.change(lambda info: replace(info, **changes), self._rooms())

    # -- health ----------------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """Counters and health for ``/health``.

        ``samples_appended``, ``batches_appended``, ``events_appended``, ``wal_bytes``
        (on disk, not yet compacted), ``storage_lag_s`` (age of the oldest appended
        record that may not be fsynced yet; 0 when all is synced),
        ``segments_pending`` (sealed WAL generations awaiting compaction), ``rings``
        (``{"sensor/attribute": {"hot", "warm"}}`` sample counts), ``ring_bytes``,
        ``load_scale``, compaction counters, ``torn_records_dropped``,
        ``stale_temporaries_removed`` (half-written files of a killed compaction,
        deleted on open), ``write_errors``; ``health``: ``{"state": "ok" | "failing",
        "reason", "since", "message", "failing": [...]}`` (see :mod:`.health`), and
        ``last_error`` / ``last_error_at`` (the last failure's message and ISO time,
        kept after recovery). No message holds an absolute path.
        """
        s = self._s
        last = s.health.last_error
        with s.lock:
            now = s.clock.monotonic()
            rings = {
                f"{sn}/{a}": {"hot": x.ring.hot_count, "warm": x.ring.warm_count}
                for (sn, a), x in s.series.items()
            }
            out: dict[str, Any] = dict(s.counters)
            out.update(
                wal_bytes=sum(_size(seg.path) for seg in list_segments(s.wal_dir)),
                storage_lag_s=self._syncer.lag_s(now),
                segments_pending=len(s.sealed),
                rings=rings,
                ring_bytes=sum(x.ring.nbytes for x in s.series.values()),
                load_scale=s.scale,
                closed=s.closed,
            )
        out["health"] = s.health.snapshot()
        out["last_error"] = None if last is None else last.message
        out["last_error_at"] = None if last is None else last.to_dict()["at"]
        return out


def _version() -> str:
    """``sensocto_lab.__version__``, looked up when needed: the root package lists
    storage's names in its public API, so a static import from here would close an
    import cycle (``docs/storage.md``, Modules)."""
    version: str = importlib.import_module("sensocto_lab").__version__
    return version


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
