"""Instantaneous phase of each participant's rhythm.

Two estimators, both in the same convention (a peak of the rhythm is phase 0,
phases wrapped to ``(-π, π]``):

- **Hilbert**: zero-phase Butterworth band-pass (``scipy.signal.sosfiltfilt``,
  respiration 0.1–0.6 Hz by default) then the angle of the analytic signal. The
  FFT length is chosen with ``scipy.fft.next_fast_len`` and all participants
  without gaps go through one 2-D call.
- **Events**: breath peaks or R-peaks found with ``scipy.signal.find_peaks``;
  the phase rises 2π per cycle, linearly between consecutive events.

A gap (NaN) is never filtered across: each contiguous run of samples is processed
on its own, runs shorter than one period of the slowest rhythm in the band give
NaN, and so do intervals between events that span a gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.fft as sfft
import scipy.signal as ss
import xarray as xr

from sensocto_lab.errors import ValidationError
from sensocto_lab.sync.grid import Signals, as_signals

__all__ = [
    "PEAK_SETTINGS",
    "RESPIRATION_BAND",
    "PeakSettings",
    "analytic_signal",
    "bandpass",
    "detect_peaks",
    "event_phase",
    "hilbert_phase",
    "peak_phase",
    "phases",
]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
Band = tuple[float, float]

#: Default pass band for breathing, in Hz (6–36 breaths per minute).
RESPIRATION_BAND: Band = (0.1, 0.6)

TWO_PI = 2.0 * np.pi


@dataclass(frozen=True, slots=True)
class PeakSettings:
    """How events are found in one kind of signal.

    Attributes
    ----------
    band
        Band-pass (Hz) applied before peak picking; the upper edge is clipped below
        Nyquist.
    distance_s
        Shortest plausible time between two events (seconds): 1.5 s is 40 breaths
        per minute, 0.3 s is 200 beats per minute.
    prominence
        Smallest prominence of an event, as a fraction of the filtered signal's robust
        range (1st to 99th percentile).
    max_interval_s
        Longest plausible cycle (seconds); a longer interval is a missed event or a
        gap, and its phase is NaN.
    """

    band: Band
    distance_s: float
    prominence: float
    max_interval_s: float


#: Physiologically sensible defaults per kind.
PEAK_SETTINGS: dict[str, PeakSettings] = {
    "respiration": PeakSettings(RESPIRATION_BAND, 1.5, 0.25, 12.0),
    "ecg": PeakSettings((5.0, 30.0), 0.3, 0.3, 2.0),
}


def _bad(detail: str, reason: str = "invalid_parameter") -> ValidationError:
    return ValidationError(detail, reason=reason)


@lru_cache(maxsize=64)
def butter_sos(fs: float, band: Band, order: int) -> npt.NDArray[np.float64]:
    """Second-order sections of a Butterworth band-pass (``order`` per edge)."""
    low, high = band
    nyquist = fs / 2.0
    if not (0 < low < high):
        raise _bad(f"band must be (low, high) with 0 < low < high Hz, got {band!r}")
    if low >= nyquist:
        raise _bad(f"band {band!r} Hz lies above the Nyquist frequency {nyquist:g} Hz")
    if order < 1:
        raise _bad(f"filter order must be >= 1, got {order}")
    high = min(high, 0.95 * nyquist)
    return np.asarray(ss.butter(order, [low, high], btype="band", fs=fs, output="sos"))


def _min_len(fs: float, band: Band, sos: npt.NDArray[np.float64]) -> int:
    # One period of the slowest rhythm, and more than sosfiltfilt's padding.
    return max(int(np.ceil(fs / band[0])), 3 * (2 * sos.shape[0] + 1) + 1)


def _runs(valid: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate(([0], valid.view(np.int8), [0])))
    return list(
        zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True)
    )


def _by_segments(
    values: FloatArray,
    min_len: int,
    block: Callable[[FloatArray], npt.NDArray[Any]],
    dtype: type,
) -> npt.NDArray[Any]:
    """Apply ``block`` (2-D in, same shape out, along the last axis) gap by gap.

    Rows without NaN go through one vectorised call; rows with gaps are processed
    one contiguous run at a time, and runs shorter than ``min_len`` stay NaN.
    """
    valid = ~np.isnan(values)
    full = valid.all(axis=1)
    if full.all():
        if values.shape[1] < min_len:
            return np.full(values.shape, np.nan, dtype=dtype)
        return block(values)
    out: npt.NDArray[Any] = np.full(values.shape, np.nan, dtype=dtype)
    if full.any() and values.shape[1] >= min_len:
        out[full] = block(values[full])
    for i in np.flatnonzero(~full):
        for a, b in _runs(valid[i]):
            if b - a >= min_len:
                out[i, a:b] = block(values[i : i + 1, a:b])[0]
    return out


def _analytic_of_filtered(y: FloatArray) -> ComplexArray:
    """Analytic signal along the last axis: one real FFT, one inverse FFT of fast length."""
    n_time = y.shape[-1]
    n = sfft.next_fast_len(n_time, real=True)
    spectrum = sfft.rfft(y, n=n, axis=-1)
    full = np.zeros((*y.shape[:-1], n), dtype=np.complex128)
    half = (n + 1) // 2
    full[..., 0] = spectrum[..., 0]
    np.multiply(spectrum[..., 1:half], 2.0, out=full[..., 1:half])
    if n % 2 == 0:
        full[..., n // 2] = spectrum[..., n // 2]
    return sfft.ifft(full, axis=-1, overwrite_x=True)[..., :n_time]


def bandpass(
    values: FloatArray, fs: float, band: Band = RESPIRATION_BAND, order: int = 2
) -> FloatArray:
    """Zero-phase Butterworth band-pass of each row, gap by gap.

    Parameters
    ----------
    values
        ``(participants, samples)``, NaN marks gaps.
    fs
        Sampling rate in Hz.
    band
        Pass band ``(low, high)`` in Hz.
    order
        Butterworth order per edge; ``sosfiltfilt`` doubles the effective order and
        cancels the phase shift.

    Returns
    -------
    numpy.ndarray
        Filtered values, same shape; NaN in gaps and in runs shorter than one period
        of ``band[0]``.
    """
    sos = butter_sos(float(fs), (float(band[0]), float(band[1])), order)
    return _by_segments(
        values, _min_len(fs, band, sos), lambda x: ss.sosfiltfilt(sos, x, axis=-1), np.float64
    )


def analytic_signal(
    values: FloatArray, fs: float, band: Band = RESPIRATION_BAND, order: int = 2
) -> ComplexArray:
    """Analytic signal of each band-passed row, gap by gap (see :func:`bandpass`).

    Returns
    -------
    numpy.ndarray
        ``complex128``, shape ``(participants, samples)``; NaN in gaps.
    """
    sos = butter_sos(float(fs), (float(band[0]), float(band[1])), order)
    return _by_segments(
        values,
        _min_len(fs, band, sos),
        lambda x: _analytic_of_filtered(ss.sosfiltfilt(sos, x, axis=-1)),
        np.complex128,
    )


def hilbert_phase(
    values: FloatArray, fs: float, band: Band = RESPIRATION_BAND, order: int = 2
) -> FloatArray:
    """Phase (radians, ``(-π, π]``) of each row's band-passed analytic signal; NaN in gaps."""
    return np.angle(analytic_signal(values, fs, band, order))


def detect_peaks(
    x: FloatArray,
    fs: float,
    kind: str = "respiration",
    *,
    settings: PeakSettings | None = None,
) -> FloatArray:
    """Times of the rhythm's peaks in one gap-free run, in (fractional) samples.

    The run is band-passed (``settings.band``), peaks are picked with
    :func:`scipy.signal.find_peaks` (``distance``, ``prominence`` from ``settings``)
    and refined to sub-sample precision with a parabola through the three samples
    around each peak.

    Parameters
    ----------
    x
        One gap-free run, shape ``(samples,)``.
    fs
        Sampling rate in Hz.
    kind
        ``"respiration"`` (breath peaks) or ``"ecg"`` (R-peaks); picks the defaults.
    settings
        Overrides the defaults of ``kind``.

    Returns
    -------
    numpy.ndarray
        ``float64`` peak positions in samples from the start of ``x``, increasing.
    """
    s = settings or _settings(kind)
    sos = butter_sos(float(fs), s.band, 2)
    if x.shape[0] < _min_len(fs, s.band, sos):
        return np.empty(0)
    y = ss.sosfiltfilt(sos, x)
    lo, hi = np.percentile(y, [1.0, 99.0])
    peaks, _ = ss.find_peaks(
        y, distance=max(1.0, s.distance_s * fs), prominence=max(s.prominence * (hi - lo), 1e-12)
    )
    peaks = peaks[(peaks > 0) & (peaks < y.size - 1)]
    left, mid, right = y[peaks - 1], y[peaks], y[peaks + 1]
    curvature = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    return peaks + np.clip(shift, -0.5, 0.5)


def _settings(kind: str) -> PeakSettings:
    try:
        return PEAK_SETTINGS[kind]
    except KeyError:
        raise _bad(f"kind must be one of {sorted(PEAK_SETTINGS)}, got {kind!r}") from None


def event_phase(
    events: npt.ArrayLike, times: npt.ArrayLike, *, max_interval: float | None = None
) -> FloatArray:
    """Phase that rises 2π per cycle, linearly between consecutive events.

    Parameters
    ----------
    events
        Increasing event times (any unit, e.g. seconds or samples); each is phase 0.
    times
        Where to evaluate the phase, same unit.
    max_interval
        Intervals longer than this (a missed event, a gap) give NaN.

    Returns
    -------
    numpy.ndarray
        Phase in radians wrapped to ``(-π, π]``, NaN before the first and after the
        last event.
    """
    ev = np.asarray(events, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    out = np.full(t.shape, np.nan)
    if ev.size < 2:
        return out
    if (np.diff(ev) <= 0).any():
        raise _bad("event times must be strictly increasing")
    k = np.searchsorted(ev, t, side="right") - 1
    inside = (k >= 0) & (k < ev.size - 1)
    k = np.clip(k, 0, ev.size - 2)
    interval = ev[k + 1] - ev[k]
    if max_interval is not None:
        inside &= interval <= max_interval
    frac = (t - ev[k]) / interval
    out[inside] = np.angle(np.exp(1j * TWO_PI * frac[inside]))
    out[np.isin(t, ev)] = 0.0  # an event is phase 0 even next to an implausible interval
    return out


def peak_phase(
    values: FloatArray,
    fs: float,
    kind: str = "respiration",
    *,
    settings: PeakSettings | None = None,
) -> FloatArray:
    """Event-based phase of each row (see :func:`detect_peaks`, :func:`event_phase`).

    Returns
    -------
    numpy.ndarray
        ``(participants, samples)`` phases in radians, NaN in gaps, before the first
        and after the last event of each run, and across implausibly long intervals.
    """
    s = settings or _settings(kind)
    max_len = s.max_interval_s * fs
    out = np.full(values.shape, np.nan)
    valid = ~np.isnan(values)
    for i in range(values.shape[0]):
        for a, b in _runs(valid[i]):
            peaks = detect_peaks(values[i, a:b], fs, settings=s)
            out[i, a:b] = event_phase(peaks, np.arange(b - a), max_interval=max_len)
    return out


Method = Literal["hilbert", "peaks"]


def phases(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    fs: float | None = None,
    *,
    method: Method = "hilbert",
    band: Band = RESPIRATION_BAND,
    order: int = 2,
    kind: str = "respiration",
    attribute: str | None = None,
    max_gap_s: float = 0.0,
) -> xr.DataArray:
    """Instantaneous phase of every participant, as a DataArray.

    Parameters
    ----------
    data
        ``store.history`` output, a DataArray ``("sensor", "time")``, a
        ``(participants, samples)`` array (with ``fs``), or :class:`Signals`.
    fs
        Sampling rate in Hz (plain arrays), or the rate of the common grid.
    method
        ``"hilbert"`` (band-pass + Hilbert) or ``"peaks"`` (events, linear between).
    band, order
        Band-pass for ``"hilbert"`` (Hz, Butterworth order per edge).
    kind
        For ``"peaks"``: ``"respiration"`` (breath peaks) or ``"ecg"`` (R-peaks).
    attribute, max_gap_s
        See :func:`~sensocto_lab.sync.grid.as_signals`.

    Returns
    -------
    xarray.DataArray
        Phases in radians, ``(-π, π]``, dims ``("sensor", "time")``, NaN where
        unknown; ``attrs`` carry ``units``, ``method``, ``fs``. With ``max_gap_s`` a
        ``bridged`` coordinate marks interpolated samples.
    """
    sig = as_signals(data, fs, attribute=attribute, max_gap_s=max_gap_s)
    if method == "hilbert":
        theta = hilbert_phase(sig.values, sig.fs, band, order)
        how = f"hilbert; zero-phase Butterworth band-pass {band[0]:g}-{band[1]:g} Hz, order {order}"
    elif method == "peaks":
        theta = peak_phase(sig.values, sig.fs, kind)
        how = f"peaks; {kind} events, 2*pi per cycle, linear between events"
    else:
        raise _bad(f"method must be 'hilbert' or 'peaks', got {method!r}")
    da = xr.DataArray(
        theta,
        dims=("sensor", "time"),
        coords=sig.coords(),
        name="phase",
        attrs={"units": "rad", "method": how, "fs": sig.fs, "long_name": "instantaneous phase"},
    )
    if sig.bridged is not None:
        da = da.assign_coords(bridged=(("sensor", "time"), sig.bridged))
    return da
