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

from sensocto_lab.model import Batch, KindSpec

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """What the engine needs from storage."""

    def append(self, batch: Batch, *, room: str, kind: KindSpec) -> None:
        """Record a validated, stamped batch in every tier.

        When this returns, the batch is in the write-ahead log (written to the OS,
        fsynced within the fsync interval) and in the hot/warm rings, so the engine
        may acknowledge and publish it. Raises :class:`~sensocto_lab.errors.StorageError`
        if the WAL cannot be written and :class:`~sensocto_lab.errors.ClosedResourceError`
        after :meth:`close`.
        """
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
    ) -> xr.Dataset:
        """Everything recorded in ``[start, end)`` as an :class:`xarray.Dataset`."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for /health: samples appended, WAL bytes, storage lag, ring sizes."""
        ...

    def flush(self) -> None:
        """fsync the WAL now."""
        ...

    def close(self) -> None:
        """Flush, fsync and close; later appends raise ClosedResourceError."""
        ...
