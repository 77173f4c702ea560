"""Group commit: the batches the engine stamps within one loop turn are stored in one call.

``Engine._process`` stamps a batch and :meth:`GroupCommit.append` stages it; the first
batch of a turn schedules :meth:`GroupCommit.flush` (one ``call_soon`` per group, not
one per batch) for the end of that turn, when everything staged goes to the store's
``append_many`` (one WAL record and one write per value layout, ``docs/engine-scale.md``).
Then, in staging order, each kept batch is handed to ``on_stored`` (the engine
publishes it) and its future resolves; a refused one's future gets the store's error.
So a batch is acknowledged only once it is written, and published only once stored
(``docs/architecture.md``, Data flow), while a turn with a thousand batches makes one
system call per layout instead of a thousand.

A store without ``append_many`` (the ``Store`` protocol asks only for ``append``) is
written batch by batch within the same flush.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from sensocto_lab.engine.sensor_task import SensorRuntime
from sensocto_lab.errors import LocalError, SensoctoError
from sensocto_lab.model import Batch, KindSpec
from sensocto_lab.storage import Store

__all__ = ["GroupCommit"]

log = logging.getLogger(__name__)

#: What the store is given per batch: the stamped batch, its room, its kind.
Item = tuple[Batch, str, KindSpec]
AppendMany = Callable[[Sequence[Item]], list[Exception | None]]
#: ``on_stored(sensor, stamped, kind)`` once written; ``on_refused(sensor, stamped)`` if not.
OnStored = Callable[[SensorRuntime, Batch, KindSpec], None]
OnRefused = Callable[[SensorRuntime, Batch], None]


class GroupCommit:
    """Stages stamped batches and writes them together at the end of the loop turn.

    Engine loop only. Parameters: the store, and the engine's ``on_stored`` (publish)
    and ``on_refused`` (forget the series' counter) callbacks.
    """

    def __init__(self, store: Store, on_stored: OnStored, on_refused: OnRefused) -> None:
        self._loop = asyncio.get_running_loop()
        self._store = store
        many = getattr(store, "append_many", None)
        self._append_many: AppendMany = many if callable(many) else self._one_by_one
        self._on_stored = on_stored
        self._on_refused = on_refused
        self._staged: list[tuple[SensorRuntime, Batch, KindSpec, asyncio.Future[None]]] = []
        self.groups = 0  # flushes that wrote anything
        self.batches = 0  # batches they held

    def append(self, sensor: SensorRuntime, stamped: Batch, kind: KindSpec) -> asyncio.Future[None]:
        """Stage ``stamped``; the future resolves once it is stored and published.

        The future raises the store's error (a :class:`SensoctoError`) if it was not
        kept. Cancelling it does not unstage the batch: it is stored all the same.
        """
        future = self._loop.create_future()
        if not self._staged:
            self._loop.call_soon(self.flush)
        self._staged.append((sensor, stamped, kind, future))
        return future

    def flush(self) -> None:
        """Store everything staged now (normally called once at the end of the turn)."""
        staged = self._staged
        if not staged:
            return
        self._staged = []
        self.groups += 1
        self.batches += len(staged)
        items = [(stamped, sensor.info.room, kind) for sensor, stamped, kind, _ in staged]
        try:
            results = self._append_many(items)
        except SensoctoError as exc:  # the store refused the whole call (closed)
            results = [exc] * len(items)
        except Exception as exc:  # a bug in a store: failed back, never a hung caller
            log.exception("the store failed a group of %d batches", len(items))
            results = [_store_crashed(exc)] * len(items)
        for (sensor, stamped, kind, future), error in zip(staged, results, strict=True):
            if error is None:
                try:
                    self._on_stored(sensor, stamped, kind)
                except Exception:  # stored all the same: the caller gets its batch
                    log.exception("publishing %s failed", stamped)
                if not future.done():
                    future.set_result(None)
            else:
                self._on_refused(sensor, stamped)
                if not future.done():
                    future.set_exception(
                        error if isinstance(error, SensoctoError) else _store_crashed(error)
                    )

    def _one_by_one(self, items: Sequence[Item]) -> list[Exception | None]:
        """``append_many`` for a store that has only ``append``."""
        results: list[Exception | None] = []
        for batch, room, kind in items:
            try:
                self._store.append(batch, room=room, kind=kind)
            except Exception as exc:
                results.append(exc)
            else:
                results.append(None)
        return results


def _store_crashed(exc: Exception) -> LocalError:
    return LocalError(f"the store failed: {exc!r}", reason="store_crashed")
