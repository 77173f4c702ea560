"""The in-memory tiers: a numpy ring of the newest samples of one (sensor, attribute).

Pure numpy, no I/O. One ring holds ``hot + warm`` samples; the newest ``hot`` of them
are the hot tier (what live views read) and the older ones the warm tier (what a
chart's recent history reads). Keeping both in one ring means a sample moves from hot
to warm without being copied, and ``latest(n)`` is one or two slices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SeriesRing"]


class SeriesRing:
    """The newest samples of one series, in arrival order.

    Parameters
    ----------
    width
        Values per sample: 1 stores values as ``(n,)``, more as ``(n, width)``.
    dtype
        numpy dtype of the values (the kind's dtype).
    hot, warm
        Tier sizes in samples; ``hot >= 1``, ``warm >= 0``.
    """

    __slots__ = (
        "_count",
        "_dropped_max",
        "_head",
        "_hot",
        "_recv",
        "_seq",
        "_ts",
        "_values",
        "_warm",
    )

    def __init__(self, width: int, dtype: npt.DTypeLike, hot: int, warm: int) -> None:
        if hot < 1 or warm < 0:
            raise ValueError(f"ring needs hot >= 1 and warm >= 0, got {hot}, {warm}")
        self._hot, self._warm = hot, warm
        cap = hot + warm
        shape: tuple[int, ...] = (cap,) if width == 1 else (cap, width)
        self._ts = np.zeros(cap, dtype=np.int64)
        self._recv = np.zeros(cap, dtype=np.int64)
        self._seq = np.zeros(cap, dtype=np.int64)
        self._values: npt.NDArray[Any] = np.zeros(shape, dtype=dtype)
        self._head = 0  # index the next sample goes to
        self._count = 0
        self._dropped_max: int | None = None

    @property
    def capacity(self) -> int:
        """``hot + warm`` samples."""
        return self._hot + self._warm

    @property
    def limits(self) -> tuple[int, int]:
        """``(hot, warm)`` tier sizes."""
        return self._hot, self._warm

    def __len__(self) -> int:
        return self._count

    @property
    def hot_count(self) -> int:
        """Samples currently in the hot tier."""
        return min(self._count, self._hot)

    @property
    def warm_count(self) -> int:
        """Samples currently in the warm tier."""
        return self._count - self.hot_count

    @property
    def nbytes(self) -> int:
        """Memory held by the ring's arrays, in bytes."""
        return self._ts.nbytes + self._recv.nbytes + self._seq.nbytes + self._values.nbytes

    @property
    def dropped_max_ts(self) -> int | None:
        """Latest device timestamp of any sample that fell out of this ring (None: none did).

        A reader may serve ``[start, ...)`` from the ring alone when this is below
        ``start``: no sample it lacks can fall in that range, whatever order the
        device clock went in.
        """
        return self._dropped_max

    def _note_dropped(self, incoming_ts: npt.NDArray[np.int64], overflow: int) -> None:
        """Remember the latest ts among the ``overflow`` oldest samples about to fall out."""
        old = min(overflow, self._count)
        latest: list[int] = [] if self._dropped_max is None else [self._dropped_max]
        if old:
            # The oldest `old` held samples: one or two slices of the circular buffer.
            begin = (self._head - self._count) % self.capacity
            stop = begin + old
            latest.append(int(self._ts[begin : min(stop, self.capacity)].max()))
            if stop > self.capacity:
                latest.append(int(self._ts[: stop - self.capacity].max()))
        if overflow > old:  # the oldest incoming samples never make it in
            latest.append(int(incoming_ts[: overflow - old].max()))
        self._dropped_max = max(latest)

    @property
    def last_seq(self) -> int | None:
        """Sequence number of the newest sample, or ``None`` when empty."""
        return int(self._seq[self._head - 1]) if self._count else None

    def extend(
        self,
        ts: npt.NDArray[np.int64],
        values: npt.NDArray[Any],
        recv_ts: npt.NDArray[np.int64],
        seq: npt.NDArray[np.int64],
    ) -> None:
        """Add samples (oldest first); the oldest held samples fall out when full."""
        cap = self.capacity
        n = ts.shape[0]
        if self._count + n > cap:
            self._note_dropped(ts, self._count + n - cap)
        if n >= cap:
            # Only the newest `cap` survive; lay them out from index 0.
            sl = slice(n - cap, n)
            self._ts[:], self._recv[:], self._seq[:] = ts[sl], recv_ts[sl], seq[sl]
            self._values[:] = values[sl]
            self._head, self._count = 0, cap
            return
        first = min(n, cap - self._head)
        rest = n - first
        dst = slice(self._head, self._head + first)
        self._ts[dst], self._recv[dst], self._seq[dst] = ts[:first], recv_ts[:first], seq[:first]
        self._values[dst] = values[:first]
        if rest:
            self._ts[:rest], self._recv[:rest], self._seq[:rest] = (
                ts[first:],
                recv_ts[first:],
                seq[first:],
            )
            self._values[:rest] = values[first:]
        self._head = (self._head + n) % cap
        self._count = min(cap, self._count + n)

    def _order(self, n: int) -> npt.NDArray[np.intp]:
        cap = self.capacity
        return (self._head - n + np.arange(n)) % cap

    def latest(self, n: int | None = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        """Copies of the newest ``n`` (default all) samples, oldest first, as ``(ts, values)``."""
        k = self._count if n is None else max(0, min(n, self._count))
        idx = self._order(k)
        return self._ts[idx], self._values[idx]

    def snapshot(
        self,
    ) -> tuple[
        npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.int64]
    ]:
        """Copies of everything held, oldest first: ``(ts, values, recv_ts, seq)``."""
        idx = self._order(self._count)
        return self._ts[idx], self._values[idx], self._recv[idx], self._seq[idx]

    def resized(self, hot: int, warm: int) -> SeriesRing:
        """A ring with new tier sizes holding the newest samples this one holds."""
        width = 1 if self._values.ndim == 1 else self._values.shape[1]
        ring = SeriesRing(width, self._values.dtype, hot, warm)
        ts, values, recv, seq = self.snapshot()
        ring.extend(ts, values, recv, seq)
        if self._dropped_max is not None:
            ring._dropped_max = max(self._dropped_max, ring._dropped_max or self._dropped_max)
        return ring
