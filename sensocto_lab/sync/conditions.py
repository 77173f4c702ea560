"""Analysis by condition and around events: segments, synchrony per condition, epochs.

Pure pandas/xarray (no engine, no I/O). The inputs are what the store returns:
``ds = store.history(...)`` (dims ``("sensor", "time")``, ``time`` datetime64[ns] UTC)
and ``events = store.events(...)`` (``onset`` datetime64[ns, UTC], ``duration`` in s,
NaN for a condition still running, ``label``, ``kind``; see :mod:`sensocto_lab.events`)::

    pieces = epochs.segments(ds, events)              # {"baseline": [Dataset, ...], ...}
    table = epochs.by_condition(ds, events)           # R per condition, CI, p-value
    hr = epochs.epochs(ds, events, label="bell", attribute="hr", tmin=-5, tmax=20)
    hr.mean("epoch")                                  # the event-locked average

Conditions are events of kind ``"condition"``; a span is ``[onset, onset + duration)``
and one still open (duration NaN) runs to the end of the data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from sensocto_lab.errors import ValidationError
from sensocto_lab.sync.kuramoto import synchrony
from sensocto_lab.sync.surrogates import surrogate_test

__all__ = ["by_condition", "condition_spans", "epochs", "segments", "synchrony_R"]

FloatArray = npt.NDArray[np.float64]
Measure = Callable[[xr.Dataset], "xr.DataArray | float"]

#: Bootstrap resamples for the confidence interval of :func:`by_condition`.
N_BOOTSTRAP = 2000
_NO_END = np.iinfo(np.int64).max


def _bad(detail: str, reason: str = "invalid_parameter") -> ValidationError:
    return ValidationError(detail, reason=reason)


def synchrony_R(piece: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """The default measure: ``R(t)`` of the respiration (:func:`~sensocto_lab.sync.synchrony`).

    Returns a DataArray ``(time,)`` of the Kuramoto order parameter (0–1), from
    band-passed Hilbert phases of the piece's respiration (or its only variable).
    """
    return synchrony(piece, progress=False)


def _onsets_ns(events: pd.DataFrame) -> npt.NDArray[np.int64]:
    onset = pd.DatetimeIndex(pd.to_datetime(events["onset"], utc=True)).as_unit("ns")
    return np.asarray(onset.asi8, dtype=np.int64)


def _time_ns(data: xr.Dataset | xr.DataArray) -> npt.NDArray[np.int64]:
    time = np.asarray(data["time"].values)
    if not np.issubdtype(time.dtype, np.datetime64):
        raise _bad(f"time must be datetime64 (store.history output), got {time.dtype}")
    return time.astype("datetime64[ns]").astype(np.int64)


def condition_spans(
    events: pd.DataFrame, condition: str | Sequence[str] | None = None
) -> dict[str, list[tuple[int, int]]]:
    """Each condition's spans, ``[start_ns, end_ns)`` in ns since the epoch, oldest first.

    Parameters
    ----------
    events
        ``store.events()`` output; rows of kind ``"condition"`` are used. An open
        condition (duration NaN) ends at the largest int64 (the end of any data).
    condition
        Only this label (or these labels); ``None``: every condition.
    """
    for column in ("onset", "duration", "label", "kind"):
        if column not in events.columns:
            raise _bad(f"events need an {column!r} column (store.events() output)")
    rows = events[events["kind"] == "condition"]
    if condition is not None:
        wanted = [condition] if isinstance(condition, str) else list(condition)
        rows = rows[rows["label"].isin(wanted)]
    spans: dict[str, list[tuple[int, int]]] = {}
    if rows.empty:
        return spans
    starts = _onsets_ns(rows)
    durations = rows["duration"].to_numpy(dtype=np.float64)
    for label, start, duration in zip(rows["label"], starts, durations, strict=True):
        end = _NO_END if np.isnan(duration) else int(start) + round(duration * 1e9)
        spans.setdefault(str(label), []).append((int(start), end))
    return spans


def segments(
    ds: xr.Dataset | xr.DataArray,
    events: pd.DataFrame,
    condition: str | Sequence[str] | None = None,
) -> dict[str, list[xr.Dataset | xr.DataArray]]:
    """Cut a recording into the spans of its conditions.

    Parameters
    ----------
    ds
        ``store.history`` output (or a DataArray with a datetime64 ``time`` dim).
    events
        ``store.events()`` output (see :func:`condition_spans`).
    condition
        Only this label (or these labels); ``None``: every condition.

    Returns
    -------
    dict
        Label → the pieces of ``ds`` inside that condition's spans, in time order
        (``ds.isel(time=...)``, so coordinates and attrs are kept); spans without any
        sample are left out, a label without pieces maps to ``[]``.
    """
    t = _time_ns(ds)
    out: dict[str, list[xr.Dataset | xr.DataArray]] = {}
    for label, spans in condition_spans(events, condition).items():
        pieces = out.setdefault(label, [])
        for start, end in spans:
            lo, hi = np.searchsorted(t, [start, end], side="left")
            if hi > lo:
                pieces.append(ds.isel(time=slice(int(lo), int(hi))))
    return out


def _as_values(result: xr.DataArray | float) -> tuple[FloatArray, float | None]:
    """A measure's result as values over time and, if known, their sampling rate (Hz)."""
    if isinstance(result, xr.DataArray):
        values = np.asarray(result.values, dtype=np.float64).ravel()
        fs = result.attrs.get("fs")
        if fs is None and "time" in result.dims and result.sizes["time"] > 1:
            t = _time_ns(result)
            fs = 1e9 / float(np.median(np.diff(t)))
        return values, None if fs is None else float(fs)
    return np.array([float(result)]), None


def _window_means(values: FloatArray, fs: float | None, window_s: float) -> FloatArray:
    if fs is None:
        return values[np.isfinite(values)]
    size = max(1, round(window_s * fs))
    means = [
        float(np.nanmean(chunk))
        for start in range(0, values.size, size)
        if np.isfinite(chunk := values[start : start + size]).any()
    ]
    return np.array(means, dtype=np.float64)


def _surrogate_p(
    pieces: Sequence[xr.Dataset | xr.DataArray],
    n_surrogates: int,
    rng: np.random.Generator,
    attribute: str | None,
) -> float:
    """One p-value over a condition's pieces: observed and null R weighted by length."""
    observed, null, weight = 0.0, np.zeros(n_surrogates), 0.0
    for piece in pieces:
        seconds = (_time_ns(piece)[-1] - _time_ns(piece)[0]) / 1e9
        # Shifts of at least a quarter of the piece (at most 10 s, the surrogate test's
        # default of one period of the band's lower edge), so short pieces stay testable.
        min_shift = min(10.0, seconds / 4)
        try:
            test = surrogate_test(
                piece,
                attribute=attribute,
                n_surrogates=n_surrogates,
                seed=rng,
                progress=False,
                min_shift_s=min_shift,
            )
        except ValidationError as exc:
            if exc.reason == "recording_too_short":
                continue
            raise
        obs = float(test["observed"])
        if not np.isfinite(obs):
            continue
        observed += seconds * obs
        null += seconds * np.nan_to_num(test["null"].values)
        weight += seconds
    if weight == 0:
        return float("nan")
    return float((1 + np.sum(null / weight >= observed / weight)) / (1 + n_surrogates))


def by_condition(
    ds: xr.Dataset | xr.DataArray,
    events: pd.DataFrame,
    measure: Measure = synchrony_R,
    n_surrogates: int = 199,
    seed: int | np.random.Generator | None = 0,
    *,
    condition: str | Sequence[str] | None = None,
    window_s: float = 10.0,
    attribute: str | None = None,
) -> pd.DataFrame:
    """A measure per condition, with a bootstrap CI and (for R) a surrogate p-value.

    Parameters
    ----------
    ds, events, condition
        As for :func:`segments`.
    measure
        ``measure(piece) -> DataArray (time,) or float``, applied to each piece of a
        condition; default :func:`synchrony_R` (``R(t)`` of the respiration).
    n_surrogates
        Circular-shift surrogates per piece for the p-value (0: no test).
    seed
        Seed or generator of the bootstrap and the surrogates.
    window_s
        Length of the non-overlapping windows the CI resamples, seconds.
    attribute
        Which variable the surrogate test uses (default as :func:`~sensocto_lab.sync.
        as_signals`: ``"respiration"``, else the only one).

    Returns
    -------
    pandas.DataFrame
        One row per condition, columns ``condition``, ``measure`` (its name),
        ``value`` (the mean of the measure's values over all the condition's pieces:
        for R, the time-mean of ``R(t)``), ``n`` (the windows the CI resampled),
        ``ci_low``, ``ci_high`` and ``p_value``.

    Notes
    -----
    **CI**: a 95 % percentile bootstrap over windows (``window_s``) of the measure's
    values: each piece's ``R(t)`` is cut into windows, the window means are resampled
    with replacement :data:`N_BOOTSTRAP` times, and the 2.5th and 97.5th percentiles
    of the resampled means are the interval. Windows, not samples, because ``R(t)`` is
    strongly autocorrelated; fewer than two windows give NaN.
    **p-value**: only for the default measure (NaN for others): each piece is tested
    with :func:`~sensocto_lab.sync.surrogate_test` (``statistic="R"``,
    ``surrogate="shift"``, shifts of at least a quarter of the piece up to 10 s); the
    observed and surrogate mean R are averaged over pieces weighted by their length,
    and ``p = (1 + #(null >= observed)) / (1 + n_surrogates)``. Each piece is band-
    passed on its own, so its first and last seconds carry filter edge effects, and a
    piece shorter than one period of the band's lower edge (10 s for the default
    0.1 Hz) has no ``R(t)`` at all: a condition made only of such pieces gets NaN.
    """
    if not (window_s > 0 and np.isfinite(window_s)):
        raise _bad(f"window_s must be > 0 seconds, got {window_s!r}")
    if n_surrogates < 0:
        raise _bad(f"n_surrogates must be >= 0, got {n_surrogates}")
    rng = np.random.default_rng(seed)
    name = getattr(measure, "__name__", type(measure).__name__)
    rows: list[dict[str, Any]] = []
    for label, pieces in segments(ds, events, condition).items():
        values: list[FloatArray] = []
        windows: list[FloatArray] = []
        for piece in pieces:
            got, fs = _as_values(measure(piece))  # type: ignore[arg-type]
            values.append(got)
            windows.append(_window_means(got, fs, window_s))
        flat = np.concatenate(values) if values else np.empty(0)
        value = float(np.nanmean(flat)) if np.isfinite(flat).any() else float("nan")
        means = np.concatenate(windows) if windows else np.empty(0)
        low = high = float("nan")
        if means.size >= 2:
            draws = rng.choice(means, size=(N_BOOTSTRAP, means.size), replace=True).mean(axis=1)
            low, high = (float(x) for x in np.percentile(draws, [2.5, 97.5]))
        p_value = float("nan")
        if measure is synchrony_R and n_surrogates > 0 and np.isfinite(value):
            p_value = _surrogate_p(pieces, n_surrogates, rng, attribute)
        rows.append(
            {
                "condition": label,
                "measure": name,
                "value": value,
                "n": int(means.size),
                "ci_low": low,
                "ci_high": high,
                "p_value": p_value,
            }
        )
    columns = ["condition", "measure", "value", "n", "ci_low", "ci_high", "p_value"]
    return pd.DataFrame(rows, columns=columns)


def epochs(
    data: xr.Dataset | xr.DataArray,
    events: pd.DataFrame,
    label: str = "bell",
    tmin: float = -5.0,
    tmax: float = 20.0,
    *,
    attribute: str | None = None,
    fs: float | None = None,
    baseline: tuple[float, float] | None = None,
) -> xr.DataArray:
    """Cut the signal around each event ``label``, on a regular lag grid (like MNE's Epochs).

    Parameters
    ----------
    data
        ``store.history`` output (pick the variable with ``attribute``; default: the
        only one) or a DataArray ``(sensor, time)`` (or ``(time,)``).
    events
        ``store.events()`` output; every row with this ``label`` (any kind) is an epoch.
    label
        Which events.
    tmin, tmax
        The window around each onset, seconds (``tmin < tmax``; negative is before).
    attribute
        The Dataset variable, e.g. ``"hr"``.
    fs
        Lag grid rate in Hz; default the variable's ``rate_hz`` attr, else the median
        sample spacing.
    baseline
        ``(start, stop)`` in s of lag: subtract each epoch's and sensor's mean over it
        (e.g. ``(tmin, 0)``); ``None``: no correction.

    Returns
    -------
    xarray.DataArray
        Dims ``("epoch", "sensor", "lag")``; ``lag`` in s from ``tmin`` to ``tmax``,
        ``epoch`` the onsets (datetime64[ns]). Values are linearly interpolated between
        a sensor's own samples; NaN outside its data or across a gap longer than 2.5
        sample intervals (a gap is never bridged). ``attrs`` keep the source's
        (``units``...) and add ``label``, ``tmin``, ``tmax``, ``fs``.
    """
    if not (np.isfinite(tmin) and np.isfinite(tmax) and tmin < tmax):
        raise _bad(f"need finite tmin < tmax, got {tmin!r}, {tmax!r}")
    if isinstance(data, xr.Dataset):
        names = [str(n) for n in data.data_vars]
        if attribute is None and len(names) != 1:
            raise _bad(f"the Dataset holds {names}; pass attribute=", "missing_attribute")
        name = attribute or names[0]
        if name not in names:
            raise _bad(f"the Dataset has no {name!r}; it holds {names}", "unknown_attribute")
        da = data[name]
    else:
        da = data
    if da.ndim == 1:
        da = da.expand_dims(sensor=[str(da.name or "0")])
    if set(da.dims) != {"sensor", "time"}:
        raise _bad(f"expected dims ('sensor', 'time'), got {da.dims}")
    da = da.transpose("sensor", "time")
    t = _time_ns(da)
    values = np.asarray(da.values, dtype=np.float64)
    if fs is None:
        fs = da.attrs.get("rate_hz")
    if fs is None:
        finite_t = [np.diff(t[np.isfinite(row)]) for row in values]
        spacing = np.concatenate(finite_t) if finite_t else np.empty(0)
        if spacing.size == 0:
            raise _bad("too few samples to infer fs; pass fs=")
        fs = 1e9 / float(np.median(spacing))
    fs = float(fs)
    if not (fs > 0 and np.isfinite(fs)):
        raise _bad(f"fs must be > 0 Hz, got {fs!r}")
    lags = np.arange(np.ceil(tmin * fs), np.floor(tmax * fs) + 1) / fs
    rows = events[events["label"] == label] if "label" in events.columns else events.iloc[:0]
    onsets = _onsets_ns(rows) if not rows.empty else np.empty(0, np.int64)
    out = np.full((onsets.size, values.shape[0], lags.size), np.nan)
    targets = onsets[:, np.newaxis] + np.round(lags * 1e9).astype(np.int64)  # (epoch, lag)
    for i, row in enumerate(values):
        ok = np.isfinite(row)
        ts, vs = t[ok], row[ok]
        if ts.size < 2:
            continue
        step = float(np.median(np.diff(ts)))
        flat = targets.ravel()
        at = np.searchsorted(ts, flat, side="right")
        lo, hi = np.clip(at - 1, 0, ts.size - 1), np.clip(at, 0, ts.size - 1)
        inside = (flat >= ts[0]) & (flat <= ts[-1]) & (ts[hi] - ts[lo] <= 2.5 * step)
        got = np.interp(flat.astype(np.float64), ts.astype(np.float64), vs)
        out[:, i, :] = np.where(inside, got, np.nan).reshape(targets.shape)
    if baseline is not None:
        b0, b1 = baseline
        window = (lags >= b0) & (lags <= b1)
        if not window.any():
            raise _bad(f"baseline {baseline!r} holds no lag of the grid")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN baseline stays NaN
            out = out - np.nanmean(out[..., window], axis=-1, keepdims=True)
    attrs = {**da.attrs, "label": label, "tmin": tmin, "tmax": tmax, "fs": fs}
    if baseline is not None:
        attrs["baseline"] = list(baseline)
    return xr.DataArray(
        out,
        dims=("epoch", "sensor", "lag"),
        coords={
            "epoch": onsets.astype("datetime64[ns]"),
            "sensor": np.asarray(da["sensor"].values),
            "lag": ("lag", lags, {"units": "s"}),
        },
        attrs=attrs,
        name=da.name,
    )
