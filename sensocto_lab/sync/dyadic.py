"""Dyadic time-domain synchrony: windowed cross-correlation with lag, rolling correlation.

For two evenly sampled series ``x`` and ``y`` (heart rate at 4 Hz, breathing), the
windowed cross-correlation of Boker, Xu, Rotondo & King (2002) takes windows of
``w`` samples every ``s`` samples and, for every lag ``τ`` in ``−τ_max…τ_max``,
the Pearson correlation of ``x[i : i+w]`` with ``y[i+τ : i+τ+w]`` (so a positive
lag means ``y`` follows ``x``). Windows whose lagged partner would run off the
recording, or hold a NaN, give NaN. Peak picking finds, in each window, the local
maximum of ``r(τ)`` nearest zero lag (a lag whose ``r`` is at least its
neighbours'; not the end of the lag range, where ``r`` may still be rising, and
on a tie in distance the negative lag); its lag and ``r`` describe who leads and
how strongly, NaN where there is no peak.

Every window and lag comes from running sums (one cumulative sum per lag), so
the cost is ``O(lags × samples)`` whatever the window length; the tests check it
against a plain pandas ``rolling().corr()`` of the shifted series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.physio.filters import invalid

__all__ = ["rolling_correlation", "windowed_cross_correlation"]

FloatArray = npt.NDArray[np.float64]


def _series(
    x: xr.DataArray | npt.ArrayLike, fs: float | None, name: str
) -> tuple[FloatArray, npt.NDArray[Any], float]:
    """(values, time, fs) of one evenly sampled series."""
    if isinstance(x, xr.DataArray):
        if x.ndim != 1 or "time" not in x.dims:
            raise invalid(f"{name} must be one series with a 'time' dim, got dims {x.dims}")
        rate = fs or x.attrs.get("fs")
        if not rate:
            raise invalid(f"{name} needs attrs['fs'] or fs= (Hz)", "missing_fs")
        return np.asarray(x.values, dtype=np.float64), np.asarray(x["time"].values), float(rate)
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1:
        raise invalid(f"{name} must be 1-D, got shape {values.shape}")
    if not fs:
        raise invalid("plain arrays need fs= in Hz", "missing_fs")
    return values, np.arange(values.size) / fs, float(fs)


def _window_sums(a: FloatArray, width: int) -> FloatArray:
    """Sum over every window of ``width`` samples: ``out[i] = a[i:i+width].sum()``."""
    c = np.concatenate(([0.0], np.cumsum(a)))
    return c[width:] - c[:-width]


def _lagged_r(x: FloatArray, y: FloatArray, width: int, lag: int) -> FloatArray:
    """Pearson r of ``x[i:i+w]`` with ``y[i+lag:i+lag+w]`` for every start ``i``."""
    n = x.size
    out = np.full(n - width + 1 if n >= width else 0, np.nan)
    if lag >= 0:
        xs, ys, offset = x[: n - lag], y[lag:], 0
    else:
        xs, ys, offset = x[-lag:], y[: n + lag], -lag
    if xs.size < width:
        return out
    bad = np.isnan(xs) | np.isnan(ys)
    if bad.all():
        return out
    # centred on the overall means first, so the running sums stay well conditioned
    xs0 = np.where(bad, 0.0, xs - xs[~bad].mean())
    ys0 = np.where(bad, 0.0, ys - ys[~bad].mean())
    nbad = _window_sums(bad.astype(np.float64), width)
    sx, sy = _window_sums(xs0, width), _window_sums(ys0, width)
    sxx, syy = _window_sums(xs0 * xs0, width), _window_sums(ys0 * ys0, width)
    sxy = _window_sums(xs0 * ys0, width)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / width
        var = (sxx - sx * sx / width) * (syy - sy * sy / width)
        r = np.where((nbad < 0.5) & (var > 0), cov / np.sqrt(np.clip(var, 0, None)), np.nan)
    out[offset : offset + r.size] = r  # window j of the shifted pair starts at x[j + offset]
    return out


def _peaks(r: FloatArray, lags: npt.NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
    """Lag (samples) and r of the local maximum nearest zero lag, per window (row)."""
    # +inf beyond the lag range: r still rising at ±τ_max has no peak inside the range
    padded = np.pad(r, ((0, 0), (1, 1)), constant_values=np.inf)
    with np.errstate(invalid="ignore"):
        local = (r >= padded[:, :-2]) & (r >= padded[:, 2:]) & ~np.isnan(r)
    order = np.argsort(np.abs(lags), kind="stable")  # nearest zero first (ties: negative)
    first = np.argmax(local[:, order], axis=1)
    found = local[:, order][np.arange(r.shape[0]), first]
    col = order[first]
    lag = np.where(found, lags[col].astype(np.float64), np.nan)
    value = np.where(found, r[np.arange(r.shape[0]), col], np.nan)
    return lag, value


def windowed_cross_correlation(
    x: xr.DataArray | npt.ArrayLike,
    y: xr.DataArray | npt.ArrayLike,
    *,
    window_s: float,
    max_lag_s: float,
    step_s: float | None = None,
    fs: float | None = None,
) -> xr.Dataset:
    """Windowed cross-correlation with lag and peak picking (Boker et al. 2002).

    Parameters
    ----------
    x, y
        Two evenly sampled series on the same time axis: 1-D DataArrays with a
        ``time`` dim and ``attrs["fs"]`` (e.g. ``physio.heart_rate(b).sel(sensor=...)``)
        or 1-D arrays with ``fs``. NaN marks gaps.
    window_s
        Window length ``w`` in seconds.
    max_lag_s
        Largest lag ``τ_max`` in seconds, both ways.
    step_s
        Distance between window starts in seconds (default: ``window_s / 2``).
    fs
        Sampling rate in Hz (plain arrays, or overriding ``attrs["fs"]``).

    Returns
    -------
    xarray.Dataset
        ``r`` ``(time, lag)``: Pearson r per window and lag (NaN where a window
        holds a gap or runs off the recording); ``peak_lag`` ``(time,)`` in seconds
        (positive: ``y`` follows ``x``) and ``peak_r`` ``(time,)``: the local maximum
        nearest zero lag; ``time`` is each window's start, ``lag`` in seconds.

    References
    ----------
    Boker, Xu, Rotondo & King (2002), Windowed cross-correlation and peak picking
    for the analysis of variability in the association between behavioral time
    series. *Psychological Methods* 7:338.
    """
    xv, time, rate = _series(x, fs, "x")
    yv, _, rate_y = _series(y, fs, "y")
    if xv.size != yv.size or rate != rate_y:
        raise invalid("x and y must share one time axis (same length and rate)")
    width = round(window_s * rate)
    max_lag = round(max_lag_s * rate)
    step = round((step_s if step_s is not None else window_s / 2) * rate)
    if width < 3 or step < 1 or max_lag < 0 or width > xv.size:
        raise invalid(
            f"need 3 samples <= window <= the series ({xv.size} samples), step >= 1 sample "
            f"and max_lag >= 0; got window_s={window_s!r}, step_s={step_s!r}, "
            f"max_lag_s={max_lag_s!r} at {rate:g} Hz"
        )
    lags = np.arange(-max_lag, max_lag + 1)
    starts = np.arange(0, xv.size - width + 1, step)
    r = np.stack([_lagged_r(xv, yv, width, int(k))[starts] for k in lags], axis=1)
    peak_lag, peak_r = _peaks(r, lags)
    return xr.Dataset(
        {
            "r": (("time", "lag"), r, {"units": "1", "long_name": "windowed cross-correlation"}),
            "peak_lag": ("time", peak_lag / rate, {"units": "s", "long_name": "lag of the peak"}),
            "peak_r": ("time", peak_r, {"units": "1", "long_name": "r at the peak"}),
        },
        coords={"time": time[starts], "lag": lags / rate},
        attrs={
            "method": "Boker et al. 2002 windowed cross-correlation, peak nearest zero lag",
            "window_s": width / rate,
            "step_s": step / rate,
            "max_lag_s": max_lag / rate,
            "fs": rate,
        },
    )


def rolling_correlation(
    x: xr.DataArray | npt.ArrayLike,
    y: xr.DataArray | npt.ArrayLike,
    *,
    window_s: float,
    fs: float | None = None,
) -> xr.DataArray:
    """Pearson correlation of ``x`` and ``y`` over a window ending at each sample.

    The same as pandas ``x.rolling(w).corr(y)`` (``w = window_s·fs`` samples), with
    NaN where the window holds a gap.

    Parameters
    ----------
    x, y, fs
        As for :func:`windowed_cross_correlation`.
    window_s
        Window length in seconds.

    Returns
    -------
    xarray.DataArray
        ``(time,)`` r in ``[-1, 1]``, NaN for the first ``w − 1`` samples.
    """
    xv, time, rate = _series(x, fs, "x")
    yv, _, _ = _series(y, fs, "y")
    if xv.size != yv.size:
        raise invalid("x and y must share one time axis (same length)")
    width = round(window_s * rate)
    if not 2 <= width <= xv.size:
        raise invalid(f"window must hold 2 to {xv.size} samples, got {width}")
    out = np.full(xv.size, np.nan)
    out[width - 1 :] = _lagged_r(xv, yv, width, 0)
    return xr.DataArray(
        out,
        dims=("time",),
        coords={"time": time},
        name="r",
        attrs={
            "units": "1",
            "long_name": "rolling correlation",
            "method": f"Pearson r over the {width / rate:g} s ending at each sample",
            "fs": rate,
            "window_s": width / rate,
        },
    )
