"""The online synchrony computer: rolling windows in, ``R`` now and then out.

Pure (no engine, no clock, no asyncio): the live wrapper in
:mod:`sensocto_lab.engine.synchrony` feeds it batches and asks for an estimate at a
fixed rate.

How it stays cheap for a thousand participants:

- :meth:`OnlineSynchrony.push` only checks and queues a batch. Before an estimate,
  all queued batches of all participants are interpolated onto a regular grid
  (multiples of ``1/fs`` since the epoch) in one pass of
  :func:`~sensocto_lab.physio.grid.resample_groups`, the function the offline path
  uses, and written into a ring of ``window_s`` per participant; gaps are NaN.
- Band-pass (``sosfiltfilt``, odd padding) followed by the FFT Hilbert transform is
  linear in the window's samples, so the analytic signal at one index is a fixed
  weight vector times the window. :meth:`OnlineSynchrony.estimate` is therefore one
  matrix-vector product for every gap-free participant; participants with a gap in
  the window go through the offline :func:`~sensocto_lab.sync.phase.analytic_signal`.
  Both give the offline result on the same window, to rounding.

Phases are read ``lag_s`` before the window's end: the analytic signal of a finite
window is biased at its edge (about 1 rad at the last sample, 0.2 rad two seconds
earlier for breathing), so the estimate describes the group ``lag_s`` ago and is
stamped with that time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from sensocto_lab.errors import ValidationError
from sensocto_lab.physio.filters import RESPIRATION_BAND, Band, flat_rows
from sensocto_lab.physio.grid import GAP_FACTOR, Signals, grid_step_ns, resample_groups
from sensocto_lab.sync.phase import analytic_signal

__all__ = ["OnlineConfig", "OnlineSynchrony", "SyncEstimate"]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]


@dataclass(frozen=True, slots=True)
class OnlineConfig:
    """Settings of the online computer.

    Attributes
    ----------
    fs
        Grid rate in Hz (the respiration kind's nominal 10 Hz by default).
    window_s
        Length of the rolling window the phases are computed on, seconds.
    lag_s
        How long before the window's end the phase is read (edge bias, see module).
    band, order
        Band-pass, as for :func:`~sensocto_lab.sync.phase.bandpass`.
    min_count
        Fewest participants with a phase for ``R`` to be defined.
    """

    fs: float = 10.0
    window_s: float = 30.0
    lag_s: float = 2.0
    band: Band = RESPIRATION_BAND
    order: int = 2
    min_count: int = 2

    def __post_init__(self) -> None:
        if not (np.isfinite(self.fs) and self.fs > 0):
            raise ValidationError(f"fs must be > 0 Hz, got {self.fs!r}", reason="invalid_config")
        if not 0 <= self.lag_s < self.window_s:
            raise ValidationError(
                f"need 0 <= lag_s < window_s, got lag_s={self.lag_s!r}, window_s={self.window_s!r}",
                reason="invalid_config",
            )
        if self.window_s * self.band[0] < 1:
            raise ValidationError(
                f"window_s must hold at least one period of {self.band[0]:g} Hz",
                reason="invalid_config",
            )

    @property
    def step_ns(self) -> int:
        """Grid step in ns."""
        return grid_step_ns(self.fs)

    @property
    def window(self) -> int:
        """Window length in grid samples."""
        return round(self.window_s * 1e9 / self.step_ns)

    @property
    def lag(self) -> int:
        """Lag in grid samples."""
        return round(self.lag_s * 1e9 / self.step_ns)


@dataclass(frozen=True, slots=True, eq=False)
class SyncEstimate:
    """One online estimate.

    Attributes
    ----------
    t_ns
        The time the estimate describes (window end minus the lag), ns since the epoch.
    r
        Kuramoto order parameter in ``[0, 1]`` (NaN with too few participants).
    psi
        Mean phase, radians (NaN likewise).
    n
        Participants with a phase at ``t_ns``.
    sensors
        Every participant known, in row order.
    phases
        Phase per participant at ``t_ns``, radians, NaN where unknown; shape ``(len(sensors),)``.
    """

    t_ns: int
    r: float
    psi: float
    n: int
    sensors: tuple[str, ...]
    phases: FloatArray = field(repr=False)


#: Pending samples that trigger putting them on the grid before anyone asks.
FLUSH_SAMPLES = 1_000_000

#: "Nothing written yet" for a row's last grid index.
_NEVER = np.iinfo(np.int64).min // 2

G = TypeVar("G", bound=np.generic)


def _doubled(a: npt.NDArray[G], fill: object) -> npt.NDArray[G]:
    """``a`` with as many rows again, filled with ``fill``."""
    return np.concatenate([a, np.full(a.shape, fill, dtype=a.dtype)])


@lru_cache(maxsize=8)
def _weights(fs: float, window: int, m: int, band: Band, order: int) -> FloatArray:
    """Real and imaginary weights of the analytic signal at index ``m``, shape ``(window, 2)``.

    For a gap-free window ``x``, ``analytic_signal(x)[m] == (x @ w) @ [1, 1j]``; real
    weights keep the product real (no complex copy of the window).
    """
    impulses = np.eye(window)
    column = analytic_signal(impulses, fs, band, order)[:, m]
    return np.ascontiguousarray(np.column_stack([column.real, column.imag]))


class OnlineSynchrony:
    """Rolling windows of many participants and their group synchrony.

    Parameters
    ----------
    config
        :class:`OnlineConfig`; defaults as documented there.
    """

    def __init__(self, config: OnlineConfig | None = None) -> None:
        self.config = cfg = config or OnlineConfig()
        self._step = cfg.step_ns
        self._fs = 1e9 / self._step
        self._w = cfg.window
        self._rows: dict[str, int] = {}
        self._names: list[str] = []
        capacity = 16
        self._ring = np.full((capacity, self._w), np.nan)
        self._written = np.full(capacity, _NEVER, dtype=np.int64)
        self._last_t = np.zeros(capacity, dtype=np.int64)
        self._last_x = np.zeros(capacity)
        self._interval = np.zeros(capacity)
        self._has_last = np.zeros(capacity, dtype=bool)
        self._pending: list[tuple[int, npt.NDArray[np.int64], FloatArray]] = []
        self._pending_samples = 0
        self._dropped = 0

    @property
    def sensors(self) -> tuple[str, ...]:
        """Participants seen so far, in row order."""
        return tuple(self._names)

    @property
    def fs(self) -> float:
        """Grid rate in Hz."""
        return self._fs

    def _row(self, sensor_id: str) -> int:
        row = self._rows.get(sensor_id)
        if row is not None:
            return row
        row = len(self._names)
        if row == self._ring.shape[0]:
            self._ring = _doubled(self._ring, np.nan)
            self._written = _doubled(self._written, _NEVER)
            self._last_t = _doubled(self._last_t, 0)
            self._last_x = _doubled(self._last_x, 0.0)
            self._interval = _doubled(self._interval, 0.0)
            self._has_last = _doubled(self._has_last, False)
        self._rows[sensor_id] = row
        self._names.append(sensor_id)
        return row

    def push(self, sensor_id: str, ts_ns: npt.ArrayLike, values: npt.ArrayLike) -> None:
        """Add one participant's new samples.

        Parameters
        ----------
        sensor_id
            Whose samples.
        ts_ns
            Sample times, ``int64`` ns since the epoch, non-decreasing, shape ``(k,)``.
        values
            Finite sample values, shape ``(k,)``.

        Samples at or before the participant's previous newest one (replays,
        duplicates) are ignored and counted in :attr:`dropped_samples`.

        Raises
        ------
        ValidationError
            Shapes differ, values are not finite, or times go backwards.
        """
        t = np.asarray(ts_ns, dtype=np.int64).reshape(-1)
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        if t.shape != x.shape:
            raise ValidationError(
                f"{t.size} timestamps but {x.size} values", reason="invalid_shape"
            )
        if not np.isfinite(x).all():
            raise ValidationError("values must be finite", reason="non_finite_value")
        if t.size > 1 and (t[1:] < t[:-1]).any():
            raise ValidationError("timestamps must not go backwards", reason="unordered_timestamps")
        if t.size:
            self._pending.append((self._row(sensor_id), t, x))
            self._pending_samples += t.size
            if self._pending_samples >= FLUSH_SAMPLES:
                self._flush()

    @property
    def dropped_samples(self) -> int:
        """Samples ignored because they were not newer than their participant's newest."""
        self._flush()
        return self._dropped

    def _flush(self) -> None:
        """Put every pending batch on the grid: all participants in one vectorised pass."""
        if not self._pending:
            return
        pending, self._pending, self._pending_samples = self._pending, [], 0
        rows = np.array([row for row, _, _ in pending], dtype=np.int64)
        touched = np.unique(rows)
        before = touched[self._has_last[touched]]  # their newest sample joins the pass
        group = np.concatenate([before, np.repeat(rows, [t.size for _, t, _ in pending])])
        t = np.concatenate([self._last_t[before], *(t for _, t, _ in pending)])
        x = np.concatenate([self._last_x[before], *(x for _, _, x in pending)])
        order = np.argsort(group, kind="stable")
        group, t, x = group[order], t[order], x[order]
        # Keep, per participant, only samples newer than everything before them.
        key = group * (int(t.max()) - int(t.min()) + 1) + (t - t.min())
        keep = np.ones(key.size, dtype=bool)
        keep[1:] = key[1:] > np.maximum.accumulate(key)[:-1]
        self._dropped += int(key.size - keep.sum())
        group, t, x = group[keep], t[keep], x[keep]
        first = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
        last = np.concatenate((first[1:], [group.size])) - 1
        members = group[first]
        self._update_intervals(group, t)

        step, width = self._step, self._w
        hi = t[last] // step
        lo = np.maximum(
            np.maximum(self._written[members] + 1, -(-t[first] // step)), hi - width + 1
        )
        counts = np.maximum(hi - lo + 1, 0)
        if counts.sum():
            at_group = np.repeat(members, counts)
            index = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            index += np.repeat(lo, counts)
            interval = np.where(self._interval > 0, self._interval, GAP_FACTOR * 1e9)
            self._ring[at_group, index % width] = resample_groups(
                group, t, x, at_group, index * step, interval
            )
            wrote = counts > 0
            self._written[members[wrote]] = hi[wrote]
        self._last_t[members], self._last_x[members] = t[last], x[last]
        self._has_last[members] = True

    def _update_intervals(self, group: npt.NDArray[np.int64], t: npt.NDArray[np.int64]) -> None:
        """Each participant's nominal interval: the median spacing of this pass's samples."""
        same = group[1:] == group[:-1]
        owner, spacing = group[1:][same], np.diff(t)[same]
        if not spacing.size:
            return
        order = np.lexsort((spacing, owner))
        owner, spacing = owner[order], spacing[order]
        start = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1])))
        count = np.diff(np.concatenate((start, [owner.size])))
        median = (spacing[start + (count - 1) // 2] + spacing[start + count // 2]) / 2
        rows = owner[start]
        # One spacing is a sample of one: use it only until there is something better.
        update = (count >= 2) | (self._interval[rows] == 0)
        self._interval[rows[update]] = median[update]

    def ready_ns(self) -> int | None:
        """The newest grid time every recently active participant has reached, or ``None``.

        A participant more than ``lag_s`` behind the newest one counts as inactive
        (silent or gone) and does not hold the window back; ``None`` before any data.
        """
        self._flush()
        written = self._written[: len(self._names)]
        if written.size == 0 or written.max() == _NEVER:
            return None
        active = written >= written.max() - self.config.lag
        return int(written[active].min()) * self._step

    def window(self, now_ns: int) -> Signals:
        """The grid window ending at ``now_ns``: ``(participants, window)``, NaN where unknown."""
        self._flush()
        n = len(self._names)
        end = int(now_ns) // self._step
        grid = np.arange(end - self._w + 1, end + 1, dtype=np.int64)
        values = self._ring[:n, grid % self._w]
        values[grid[np.newaxis, :] > self._written[:n, np.newaxis]] = np.nan
        return Signals(
            values, self._fs, np.array(self._names, dtype=object), int(grid[0]) * self._step
        )

    def estimate(self, now_ns: int) -> SyncEstimate:
        """``R``, ``ψ`` and each participant's phase ``lag_s`` before ``now_ns``.

        Uses the window ending at ``now_ns`` (see :meth:`window`); equals the offline
        ``order_parameter(phases(window))`` at that index, to rounding.
        """
        cfg = self.config
        win = self.window(now_ns)
        m = self._w - 1 - cfg.lag
        values = win.values
        z = np.full(values.shape[0], np.nan, dtype=np.complex128)
        nan = np.isnan(values)
        gappy = nan.any(axis=1)
        full = np.logical_not(gappy)
        # a flat window (dead or stuck sensor) has no phase, as offline
        full[full] = ~flat_rows(values[full])
        if full.any():
            weights = _weights(self._fs, self._w, m, cfg.band, cfg.order)
            parts = (values if full.all() else values[full]) @ weights
            z[full] = parts[:, 0] + 1j * parts[:, 1]
        partial = np.flatnonzero(gappy & ~nan[:, m])
        if partial.size:
            z[partial] = analytic_signal(values[partial], self._fs, cfg.band, cfg.order)[:, m]
        phases = np.angle(z)
        known = ~np.isnan(phases)
        count = int(known.sum())
        total = np.exp(1j * phases[known]).sum()
        enough = count >= cfg.min_count
        return SyncEstimate(
            t_ns=win.start_ns + m * self._step if win.start_ns is not None else 0,
            r=float(np.abs(total) / count) if enough else float("nan"),
            psi=float(np.angle(total)) if enough else float("nan"),
            n=count,
            sensors=tuple(self._names),
            phases=phases,
        )
