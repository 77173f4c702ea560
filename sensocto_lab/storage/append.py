"""The append path of the tiered store: batches into the WAL (group commit) and the rings.

:meth:`TieredStore.append <sensocto_lab.storage.tiered.TieredStore.append>` and
``append_many`` come here. The batches of one call are checked, grouped by value layout,
and each group goes to the WAL as one record in one write (:meth:`.wal.WalWriter.write_group`);
then the batches that were written are put in their series' rings, in the order given.
The durability promise is ``docs/storage.md``'s, per batch: with the OS when the call
returns, or refused and not kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from sensocto_lab.errors import ClosedResourceError, StorageError, ValidationError
from sensocto_lab.model import Batch, KindSpec, check_id
from sensocto_lab.storage.generations import Generations
from sensocto_lab.storage.state import SeriesEntry, SeriesKey, StoreState, chunk_of
from sensocto_lab.storage.syncer import WalSyncer
from sensocto_lab.storage.wal import Chunk

__all__ = ["Appender", "Item"]

#: One batch to append: the stamped batch, its room, its kind.
Item = tuple[Batch, str, KindSpec]


class Appender:
    """Writes appended batches to the WAL and the rings (the store's lock taken here)."""

    def __init__(self, state: StoreState, syncer: WalSyncer, generations: Generations) -> None:
        self._s = state
        self._syncer = syncer
        self._generations = generations

    def append_many(self, items: Sequence[Item]) -> tuple[list[Exception | None], bool]:
        """Append ``items``; per item ``None`` (kept) or the error that refused it.

        Also returns whether a generation was sealed (the compactor is to be woken).
        Raises :class:`ClosedResourceError` (nothing kept) when the store is closed.
        """
        s = self._s
        results: list[Exception | None] = [None] * len(items)
        chunks: list[Chunk | None] = [None] * len(items)
        for i, (batch, room, kind) in enumerate(items):
            try:
                chunks[i] = chunk_of(batch, room, kind)
            except ValidationError as exc:
                results[i] = exc
        with s.lock:
            if s.closed:
                raise ClosedResourceError("the store is closed", reason="store_closed")
            layouts: dict[tuple[str, int], list[int]] = {}
            kinds: dict[SeriesKey, str] = {}  # series first seen in this call
            for i, chunk in enumerate(chunks):
                if chunk is None:
                    continue
                try:
                    self._check(items[i], kinds)
                except ValidationError as exc:
                    results[i], chunks[i] = exc, None
                    continue
                kind = items[i][2]
                layouts.setdefault((kind.dtype, kind.width), []).append(i)
            wake = self._generations.rotate_if_due()
            for indices in layouts.values():
                group = [c for c in (chunks[i] for i in indices) if c is not None]
                try:
                    written = self.write_wal(functools.partial(s.writer.write_group, group))
                except StorageError as exc:
                    for i in indices:
                        results[i], chunks[i] = exc, None
                    continue
                s.counters["wal_bytes_written"] += written
            for i, chunk in enumerate(chunks):
                if chunk is not None:
                    self._remember(chunk, items[i][2])
        return results, wake

    def _check(self, item: Item, kinds: dict[SeriesKey, str]) -> None:
        """Refuse a batch with bad ids, or whose series is recorded as another kind."""
        batch, room, kind = item
        key = (batch.sensor_id, batch.attribute_id)
        series = self._s.series.get(key)
        recorded = series.kind.name if series is not None else kinds.get(key)
        if recorded is None:
            check_id(batch.sensor_id, "sensor_id")
            check_id(batch.attribute_id, "attribute_id")
            check_id(room, "room")
            kinds[key] = kind.name
        elif recorded != kind.name:
            raise ValidationError(
                f"{batch.sensor_id}/{batch.attribute_id} is recorded as {recorded}, "
                f"not {kind.name}",
                reason="kind_mismatch",
            )
        elif series is not None and series.room != room:
            check_id(room, "room")

    def _remember(self, chunk: Chunk, kind: KindSpec) -> None:
        """Put a written chunk in its series' ring and count it."""
        s = self._s
        key = (chunk.sensor_id, chunk.attribute_id)
        series = s.series.get(key)
        if series is None:
            series = s.series[key] = SeriesEntry(chunk.room, kind, s.new_ring(kind))
        series.room = chunk.room
        series.ring.extend(chunk.ts, chunk.values, chunk.recv_ts, chunk.seq)
        c = s.counters
        c["samples_appended"] += len(chunk)
        c["batches_appended"] += 1

    def write_wal(self, write: Callable[[], int]) -> int:
        """Run a WAL write (the lock held), recording failure or success in the health."""
        s = self._s
        try:
            written = write()
        except StorageError as exc:
            s.counters["write_errors"] += 1
            s.health.failed("wal", exc)
            raise
        s.health.succeeded("wal")
        self._syncer.mark_unsynced()
        return written
