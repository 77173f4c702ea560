"""Participants' signals on one regular time grid: the input every analysis starts from.

Recordings arrive as an :class:`xarray.Dataset` from ``store.history`` (one data
variable per attribute, dims ``("sensor", "time")``, ``time`` the union of all
sensors' timestamps, NaN where a sensor has no sample), as a DataArray, or as a
plain ``(participants, samples)`` array with a sampling rate. Sensors may run at
different rates and drop out. :func:`as_signals` puts them on one grid at ``fs``
and marks every gap as NaN; it never fills a gap silently. Gaps up to
``max_gap_s`` are bridged by linear interpolation only when asked, and the
bridged samples are marked in :attr:`Signals.bridged`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.physio.filters import invalid

__all__ = [
    "GAP_FACTOR",
    "Signals",
    "as_signals",
    "bridge_gaps",
    "grid_step_ns",
    "merge_duplicates",
    "resample_groups",
    "resample_row",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: A spacing larger than this many nominal sample intervals is a gap, not jitter.
GAP_FACTOR = 2.5


@dataclass(frozen=True, slots=True, eq=False)
class Signals:
    """Signals of several participants sampled on one regular grid.

    Attributes
    ----------
    values
        ``float64`` array of shape ``(participants, samples)``; NaN where there is no data.
    fs
        Sampling rate of the grid, in Hz.
    sensors
        One label per row (sensor ids, or ``0..n-1`` for plain arrays), shape ``(participants,)``.
    start_ns
        Time of column 0 in ns since the epoch (a multiple of the grid step, so grids
        of the same rate line up), or ``None`` for plain arrays.
    bridged
        ``bool`` array like ``values``: True where a short gap was filled by linear
        interpolation (only with ``max_gap_s > 0``).
    attrs
        Metadata carried over from the input (``units``, ``attribute``, ...).
    absolute
        False when ``start_ns`` counts from an arbitrary origin (a time axis given in
        seconds): :meth:`time` then returns seconds.
    """

    values: FloatArray
    fs: float
    sensors: npt.NDArray[Any]
    start_ns: int | None = None
    bridged: BoolArray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    absolute: bool = True

    @property
    def n_participants(self) -> int:
        """Number of rows."""
        return int(self.values.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of grid columns."""
        return int(self.values.shape[1])

    def time(self) -> npt.NDArray[Any]:
        """The grid's time coordinate: ``datetime64[ns]`` if absolute, else seconds."""
        if self.start_ns is None:
            return np.arange(self.n_samples, dtype=np.float64) / self.fs
        ns = self.start_ns + np.arange(self.n_samples, dtype=np.int64) * grid_step_ns(self.fs)
        return ns.astype("datetime64[ns]") if self.absolute else ns / 1e9

    def coords(self, sensor_dim: str = "sensor") -> dict[str, Any]:
        """xarray coordinates ``{sensor_dim: sensors, "time": time()}``."""
        return {sensor_dim: self.sensors, "time": self.time()}


Duplicates = Literal["error", "mean", "first"]

#: The reason of errors about the signals themselves (not the parameters).
SIGNAL = "invalid_signal"


def _check_fs(fs: float | None, *, required: bool) -> float | None:
    if fs is None:
        if required:
            raise invalid("a plain array needs its sampling rate: pass fs= in Hz", "missing_fs")
        return None
    if not np.isfinite(fs) or fs <= 0:
        raise invalid(f"fs must be a positive number of Hz, got {fs!r}", "invalid_fs")
    return float(fs)


def as_signals(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    fs: float | None = None,
    *,
    attribute: str | None = None,
    max_gap_s: float = 0.0,
    duplicates: Duplicates = "error",
) -> Signals:
    """Put a recording on one regular grid.

    Parameters
    ----------
    data
        ``store.history`` output (an :class:`xarray.Dataset`), a DataArray with a
        ``"time"`` dim (and optionally ``"sensor"``), a ``(participants, samples)``
        or ``(samples,)`` array, or :class:`Signals` (returned as is, re-bridged if asked).
    fs
        Grid rate in Hz. Required for plain arrays. For time-stamped input the default
        is the median of the sensors' own rates, so no sensor is thinned much and none
        is upsampled much.
    attribute
        Which data variable of a Dataset to use; default ``"respiration"`` if present,
        else the only variable.
    max_gap_s
        Gaps up to this long (seconds) are bridged by linear interpolation and marked
        in :attr:`Signals.bridged`; longer gaps stay NaN. Default 0: nothing is filled.
    duplicates
        What to do with repeated timestamps (real files have them: a device that
        stamps a batch with one time, a merge of two exports): ``"error"`` (the
        default: refuse, so nothing is merged silently), ``"mean"`` (each sensor's
        known values at one timestamp are averaged) or ``"first"`` (each sensor's
        first known value is kept). Timestamps must still be non-decreasing.

    Returns
    -------
    Signals
        ``float64`` values of shape ``(participants, samples)`` on the grid.

    Raises
    ------
    ValidationError
        Missing or invalid ``fs``, a Dataset without the attribute, wrong dims or
        shapes, non-numeric values, or infinite values.
    """
    if max_gap_s < 0 or not np.isfinite(max_gap_s):
        raise invalid(f"max_gap_s must be >= 0 seconds, got {max_gap_s!r}", "invalid_parameter")
    if isinstance(data, Signals):
        signals = data
    elif isinstance(data, xr.Dataset):
        signals = _from_dataarray(_pick_variable(data, attribute), fs, duplicates)
    elif isinstance(data, xr.DataArray):
        signals = _from_dataarray(data, fs, duplicates)
    else:
        signals = _from_array(data, _check_fs(fs, required=True))
    if max_gap_s > 0:
        values, bridged = bridge_gaps(signals.values, signals.fs, max_gap_s)
        return dataclasses.replace(signals, values=values, bridged=bridged)
    return signals


def _pick_variable(ds: xr.Dataset, attribute: str | None) -> xr.DataArray:
    names = [str(n) for n in ds.data_vars]
    if attribute is None:
        if "respiration" in names:
            attribute = "respiration"
        elif len(names) == 1:
            attribute = names[0]
        else:
            raise invalid(
                f"the Dataset holds {names}; pass attribute= to choose one", "missing_attribute"
            )
    if attribute not in names:
        raise invalid(
            f"the Dataset has no attribute {attribute!r}; it holds {names}", "unknown_attribute"
        )
    da = ds[attribute]
    da.attrs.setdefault("attribute", attribute)
    return da


def _numeric(values: npt.ArrayLike) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise invalid(f"signal values must be numbers: {exc}", SIGNAL) from None
    if np.isinf(arr).any():
        raise invalid("signal values must be finite or NaN (NaN marks a gap), not infinite", SIGNAL)
    return arr


def _from_array(values: npt.ArrayLike, fs: float | None) -> Signals:
    assert fs is not None
    arr = _numeric(values)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise invalid(f"expected a (participants, samples) array, got shape {arr.shape}", SIGNAL)
    return Signals(arr, fs, np.arange(arr.shape[0]))


def merge_duplicates(
    values: FloatArray, t_ns: npt.NDArray[np.int64], how: Duplicates
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Merge columns that share a timestamp, per sensor, skipping NaN.

    Parameters
    ----------
    values
        ``(sensors, samples)``, NaN where a sensor has no sample.
    t_ns
        ``(samples,)`` non-decreasing times in ns.
    how
        ``"mean"`` of each sensor's known values at a timestamp, or its ``"first"``
        known value (NaN if it has none there).

    Returns
    -------
    values, t_ns
        Merged ``(sensors, unique samples)`` values and strictly increasing times.
    """
    t_unique, starts = np.unique(t_ns, return_index=True)
    valid = ~np.isnan(values)
    if how == "mean":
        total = np.add.reduceat(np.where(valid, values, 0.0), starts, axis=1)
        count = np.add.reduceat(valid.astype(np.int64), starts, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan), t_unique
    # "first": the smallest column index holding a known value in each group
    column = np.where(valid, np.arange(values.shape[1]), values.shape[1])
    first = np.minimum.reduceat(column, starts, axis=1)
    found = first < values.shape[1]
    picked = np.take_along_axis(values, np.minimum(first, values.shape[1] - 1), axis=1)
    return np.where(found, picked, np.nan), t_unique


def _from_dataarray(da: xr.DataArray, fs: float | None, duplicates: Duplicates) -> Signals:
    fs = _check_fs(fs, required=False)
    if "time" not in da.dims:
        raise invalid(f"the DataArray needs a 'time' dim, it has {da.dims}", SIGNAL)
    if da.ndim == 1:
        da = da.expand_dims(sensor=[str(da.name or "0")])
    extra = [d for d in da.dims if d not in ("sensor", "time")]
    if da.ndim != 2 or extra:
        raise invalid(
            f"expected dims ('sensor', 'time'), got {da.dims}; select one component of a "
            "vector attribute first (e.g. da.sel(component='x'))",
            SIGNAL,
        )
    da = da.transpose("sensor", "time")
    values = _numeric(da.values)
    sensors = np.asarray(da["sensor"].values) if "sensor" in da.coords else np.arange(da.shape[0])
    attrs = dict(da.attrs)
    time = np.asarray(da["time"].values)
    if np.issubdtype(time.dtype, np.datetime64):
        t_ns = time.astype("datetime64[ns]").astype(np.int64)
        absolute = True
    elif np.issubdtype(time.dtype, np.number):
        t_ns = np.round(time.astype(np.float64) * 1e9).astype(np.int64)
        absolute = False
    else:
        raise invalid(f"time must be datetime64 or seconds, got dtype {time.dtype}", SIGNAL)
    if duplicates not in ("error", "mean", "first"):
        raise invalid(
            f"duplicates must be 'error', 'mean' or 'first', got {duplicates!r}",
            "invalid_parameter",
        )
    step = np.diff(t_ns)
    if (step < 0).any():
        raise invalid("time must be increasing (sort the recording by time first)", SIGNAL)
    if (step == 0).any():
        if duplicates == "error":
            raise invalid(
                f"time must be strictly increasing: {int((step == 0).sum())} duplicate "
                "timestamps; pass duplicates='mean' or 'first' to as_signals() to merge them",
                "duplicate_timestamps",
            )
        values, t_ns = merge_duplicates(values, t_ns, duplicates)
        attrs["duplicates"] = duplicates
    grid_fs, start_ns, out = _resample(values, t_ns, fs)
    return Signals(out, grid_fs, sensors, start_ns, None, attrs, absolute)


def _sensor_rate(t_ns: npt.NDArray[np.int64]) -> float | None:
    if t_ns.size < 2:
        return None
    return 1e9 / float(np.median(np.diff(t_ns)))


def grid_step_ns(fs: float) -> int:
    """The grid step in whole ns for a rate of ``fs`` Hz (grid times are its multiples)."""
    return max(1, round(1e9 / fs))


def resample_groups(
    group: npt.NDArray[np.int64],
    t: npt.NDArray[np.int64],
    x: FloatArray,
    at_group: npt.NDArray[np.int64],
    at: npt.NDArray[np.int64],
    interval_ns: FloatArray,
) -> FloatArray:
    """Several sensors' samples linearly interpolated at grid times, gaps left NaN.

    All sensors go through one vectorised pass (the online computer resamples a
    thousand sensors' batches at once this way); a time is looked up only among
    the samples of its own group.

    Parameters
    ----------
    group, t, x
        Samples: group (sensor row) number, time in ns and value, shape ``(m,)``,
        sorted by group and, within a group, strictly increasing in time.
    at_group, at
        Where to estimate: group number and time in ns, shape ``(k,)``.
    interval_ns
        Each group's nominal sample interval (indexed by group number): a time inside
        a spacing longer than :data:`GAP_FACTOR` intervals is in a gap.

    Returns
    -------
    numpy.ndarray
        Shape ``(k,)``; NaN before a group's first sample, after its last and in gaps.
    """
    out = np.full(at.shape, np.nan)
    if t.size == 0 or at.size == 0:
        return out
    origin = min(int(t.min()), int(at.min()))
    span = max(int(t.max()), int(at.max())) - origin + 1
    key = group * span + (t - origin)
    at_key = at_group * span + (at - origin)
    right = np.searchsorted(key, at_key, side="left")
    found = np.minimum(right, key.size - 1)
    on_sample = (key[found] == at_key) & (right < key.size)
    left = np.maximum(right - 1, 0)
    between = (right > 0) & (right < key.size) & ~on_sample
    between &= (group[left] == at_group) & (group[found] == at_group)
    spacing = (t[found] - t[left]).astype(np.float64)
    between &= spacing <= GAP_FACTOR * interval_ns[at_group]
    out[on_sample] = x[found[on_sample]]
    li, ri = left[between], found[between]
    slope = (x[ri] - x[li]) / spacing[between]
    out[between] = x[li] + slope * (at[between] - t[li])
    return out


def resample_row(
    t: npt.NDArray[np.int64], x: FloatArray, grid: npt.NDArray[np.int64], interval_ns: float
) -> FloatArray:
    """One sensor's samples at ``grid`` times (ns): :func:`resample_groups` with one group."""
    return resample_groups(
        np.zeros(t.size, dtype=np.int64),
        t,
        x,
        np.zeros(grid.size, dtype=np.int64),
        grid,
        np.array([interval_ns]),
    )


def _resample(
    values: FloatArray, t_ns: npt.NDArray[np.int64], fs: float | None
) -> tuple[float, int, FloatArray]:
    """Interpolate each row's own samples onto one grid of multiples of the step.

    Linear interpolation, no anti-alias filter: choose a grid that is not much
    coarser than the sensors (the default, their median rate, is not).
    """
    valid = ~np.isnan(values)
    rows = [t_ns[v] for v in valid]
    rates = [r for r in (_sensor_rate(t) for t in rows) if r is not None]
    if fs is None:
        if not rates:
            raise invalid(
                "no sensor has two samples; cannot infer a sampling rate (pass fs=)", SIGNAL
            )
        fs = float(np.median(rates))
    present = [t for t in rows if t.size]
    if not present:
        raise invalid("the recording holds no samples", SIGNAL)
    step = grid_step_ns(fs)
    first = -(-min(int(t[0]) for t in present) // step)
    last = max(int(t[-1]) for t in present) // step
    grid = np.arange(first, max(first, last) + 1, dtype=np.int64) * step
    out = np.full((values.shape[0], grid.size), np.nan)
    for i, (t, row_valid) in enumerate(zip(rows, valid, strict=True)):
        if t.size >= 2:
            out[i] = resample_row(t, values[i, row_valid], grid, float(np.median(np.diff(t))))
    return 1e9 / step, int(grid[0]), out


def bridge_gaps(values: FloatArray, fs: float, max_gap_s: float) -> tuple[FloatArray, BoolArray]:
    """Fill interior NaN runs up to ``max_gap_s`` by linear interpolation, and mark them.

    Parameters
    ----------
    values
        ``(participants, samples)``; NaN marks a gap.
    fs
        Sampling rate in Hz.
    max_gap_s
        Longest gap (seconds) to fill. Runs at the start or end of a row are never
        filled: there is nothing on one side to interpolate from.

    Returns
    -------
    values, bridged
        A filled copy, and a ``bool`` mask of the samples that were filled.
    """
    out = values.copy()
    bridged = np.zeros(values.shape, dtype=bool)
    max_len = int(np.floor(max_gap_s * fs + 1e-9))
    if max_len < 1:
        return out, bridged
    for i in np.flatnonzero(np.isnan(values).any(axis=1)):
        row = out[i]
        nan = np.isnan(row)
        edges = np.diff(np.concatenate(([0], nan.view(np.int8), [0])))
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            if a == 0 or b == row.size or b - a > max_len:
                continue
            row[a:b] = np.interp(np.arange(a, b), [a - 1, b], [row[a - 1], row[b]])
            bridged[i, a:b] = True
    return out, bridged
