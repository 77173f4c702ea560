"""The fsync side of the WAL: what may not be on disk yet, and the thread that syncs it.

``append`` hands every record to the OS before it returns (a killed process loses
nothing); power loss is covered by fsyncing the open WAL files every
``fsync_interval_s``, here. The storage lag in ``statistics()`` is the age of the
oldest record that may not be fsynced yet.
"""

from __future__ import annotations

import logging
import threading

from sensocto_lab.errors import StorageError
from sensocto_lab.storage.state import StoreState

__all__ = ["WalSyncer"]

log = logging.getLogger(__name__)


class WalSyncer:
    """fsyncs the store's WAL on demand (:meth:`flush`) or every interval (:meth:`run`)."""

    def __init__(self, state: StoreState) -> None:
        self._s = state
        self._synced_at = state.clock.monotonic()
        self._unsynced = False

    def mark_unsynced(self) -> None:
        """A record was written and may not be fsynced yet (the store's lock held)."""
        self._unsynced = True

    def lag_s(self, now: float) -> float:
        """Seconds since the last fsync if anything is unsynced, else 0 (lock held)."""
        return max(0.0, now - self._synced_at) if self._unsynced else 0.0

    def flush(self) -> None:
        """fsync the WAL now.

        Raises
        ------
        StorageError
            The fsync failed (recorded in the store's health), or the store is read-only.
        """
        s = self._s
        s.refuse_if_read_only("flush")
        with s.lock:
            started = s.clock.monotonic()
            self._unsynced = False
        try:
            s.writer.sync()
        except StorageError as exc:
            with s.lock:
                self._unsynced = True
                s.counters["write_errors"] += 1
            s.health.failed("fsync", exc)
            raise
        s.health.succeeded("fsync")
        with s.lock:
            self._synced_at = started

    def run(self, stop: threading.Event) -> None:
        """The fsync thread: :meth:`flush` every interval until ``stop`` is set."""
        while not stop.wait(self._s.config.fsync_interval_s):
            try:
                self.flush()
            except StorageError as exc:
                log.error("%s", exc)
