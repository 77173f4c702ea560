"""The contract between the engine and storage.

The engine calls storage; storage never calls the engine. Every tier (memory
rings, WAL, Parquet) sits behind :class:`Store`, which the engine's per-sensor
tasks use from the engine's event loop. Calls are synchronous and fast (append
is a buffered write plus a ring copy); slow work (fsync, compaction) runs in the
store's own background threads and compaction's worker process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from sensocto_lab.events import Event
from sensocto_lab.model import Batch, KindSpec

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from sensocto_lab.storage.session import SessionInfo

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """What the engine needs from storage."""

    def append(self, batch: Batch, *, room: str, kind: KindSpec) -> None:
        """Record a validated, stamped batch in every tier.

        When this returns, the batch is in the write-ahead log (written to the OS in a
        readable file, so it survives ``kill -9``; fsynced within the fsync interval,
        so it survives power loss after that) and in the hot/warm rings, so the engine
        may acknowledge and publish it. Raises :class:`~sensocto_lab.errors.StorageError`
        if the WAL cannot be written (``reason="disk_full"`` when out of space; then
        nothing of the batch is kept) and :class:`~sensocto_lab.errors.ClosedResourceError`
        after :meth:`close`.
        """
        ...

    def append_events(self, events: Sequence[Event]) -> None:
        """Record markers, conditions and novelty events next to the samples.

        All are validated first (one bad event raises
        :class:`~sensocto_lab.errors.ValidationError` and nothing is written). When
        this returns they are in the write-ahead log with :meth:`append`'s promise
        (``kill -9`` loses none; fsynced within the fsync interval), each exactly once.
        """
        ...

    def events(
        self,
        room: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        kind: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Recorded events with onset in ``[start, end)``, sorted by onset; running
        conditions folded into one row (duration NaN while open). Reads what is durable
        and what is still in the WAL; works on read-only stores."""
        ...

    @property
    def session(self) -> SessionInfo:
        """The session's metadata, as last written to ``session.json``."""
        ...

    def assign_participant(self, sensor_id: str, participant: str, role: str | None = None) -> None:
        """Record who wears a sensor; in ``session.json`` (fsynced) when this returns."""
        ...

    def update_session(
        self, *, name: str | None = None, notes: str | None = None, end: Any = None
    ) -> None:
        """Change the session's name, notes or end; in ``session.json`` (fsynced) on return."""
        ...

    def latest(
        self, sensor_id: str, attribute_id: str, n: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        """The newest ``n`` (default: all) samples held in memory, as ``(ts, values)``."""
        ...

    def next_seq(self, sensor_id: str, attribute_id: str) -> int:
        """One past the highest ``seq`` stored for the series (0 if none), so sequence
        numbers keep increasing across engine restarts."""
        ...

    def last_ts(self, sensor_id: str, attribute_id: str) -> int | None:
        """Newest device timestamp (int64 ns) stored for the series in any tier, or
        ``None``; the endpoint's exactly-once dedupe asks it once per attribute."""
        ...

    def set_load_scale(self, scale: float) -> None:
        """Scale the in-memory ring limits (1.0, 0.5, 0.2, 0.05 by load level)."""
        ...

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
        """Everything recorded in ``[start, end)`` as an :class:`xarray.Dataset`, with a
        ``participant`` coordinate on ``sensor``; ``condition`` keeps only samples inside
        that condition's spans. Reads what is durable and what is still in the WAL."""
        ...

    def statistics(self) -> dict[str, Any]:
        """Counters and health for /health: samples and events appended, WAL bytes,
        storage lag, ring sizes, ``health`` (``ok``/``failing`` with reason and time)."""
        ...


    def flush(self) -> None:
        """fsync the WAL now: when this returns, everything acknowledged survives power loss."""
        ...

    def close(self) -> None:
        """Flush, fsync and close; later appends raise ClosedResourceError."""
        ...
