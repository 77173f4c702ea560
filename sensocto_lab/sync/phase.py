"""Instantaneous phase of each participant's rhythm.

Two estimators, both in the same convention (a peak of the rhythm is phase 0,
phases wrapped to ``(-π, π]``):

- **Hilbert**: zero-phase Butterworth band-pass (``scipy.signal.sosfiltfilt``,
  respiration 0.1–0.6 Hz by default) then the angle of the analytic signal, computed
  exactly as :func:`scipy.signal.hilbert` does (one FFT of the run's own length, no
  padding), so phases agree with scipy's to rounding, at the edges too; all
  participants without gaps go through one 2-D call.
- **Events**: breath peaks or R-peaks found by
  :func:`sensocto_lab.physio.peaks.detect_peaks`; the phase rises 2π per cycle,
  linearly between consecutive events.

A gap (NaN) is never filtered across: each contiguous run of samples is processed
on its own, runs shorter than one period of the slowest rhythm in the band give
NaN, and so do flat runs (a dead or stuck sensor has no phase, see
:func:`sensocto_lab.physio.filters.by_segments`) and intervals between events that
span a gap.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.fft as sfft
import scipy.signal as ss
import xarray as xr

from sensocto_lab.physio.filters import (
    Band,
    bandpass,
    butter_sos,
    by_segments,
    invalid,
    min_len,
    runs,
)
from sensocto_lab.physio.grid import Signals, as_signals
from sensocto_lab.physio.peaks import (
    PEAK_SETTINGS,
    RESPIRATION_BAND,
    PeakSettings,
    detect_peaks,
    peak_settings,
)

__all__ = [
    "PEAK_SETTINGS",
    "RESPIRATION_BAND",
    "PeakSettings",
    "analytic_of_filtered",
    "analytic_signal",
    "bandpass",
    "butter_sos",
    "detect_peaks",
    "event_phase",
    "hilbert_phase",
    "method_settings",
    "peak_phase",
    "phases",
    "phasors",
]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]

TWO_PI = 2.0 * np.pi


def analytic_of_filtered(y: FloatArray) -> ComplexArray:
    """Analytic signal along the last axis, as :func:`scipy.signal.hilbert` computes it.

    One real FFT and one inverse FFT of the run's own length ``n`` (scipy's
    convention): padding to a faster length would change the edges (1.3 rad at
    ``n = 7507``). The real FFT halves the forward work against scipy's complex one.
    """
    n = y.shape[-1]
    spectrum = sfft.rfft(y, axis=-1)
    full = np.zeros((*y.shape[:-1], n), dtype=np.complex128)
    half = (n + 1) // 2
    full[..., 0] = spectrum[..., 0]
    np.multiply(spectrum[..., 1:half], 2.0, out=full[..., 1:half])
    if n % 2 == 0:
        full[..., n // 2] = spectrum[..., n // 2]
    return sfft.ifft(full, axis=-1, overwrite_x=True)


def analytic_signal(
    values: FloatArray, fs: float, band: Band = RESPIRATION_BAND, order: int = 2
) -> ComplexArray:
    """Analytic signal of each band-passed row, gap by gap (see :func:`bandpass`).

    Returns
    -------
    numpy.ndarray
        ``complex128``, shape ``(participants, samples)``; NaN in gaps, short runs and
        flat runs.
    """
    sos = butter_sos(float(fs), (float(band[0]), float(band[1])), order)
    return by_segments(
        values,
        min_len(fs, band, sos),
        lambda x: analytic_of_filtered(ss.sosfiltfilt(sos, x, axis=-1)),
        np.complex128,
    )


def hilbert_phase(
    values: FloatArray, fs: float, band: Band = RESPIRATION_BAND, order: int = 2
) -> FloatArray:
    """Phase (radians, ``(-π, π]``) of each row's band-passed analytic signal; NaN in gaps."""
    return np.angle(analytic_signal(values, fs, band, order))


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
        raise invalid("event times must be strictly increasing")
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
    s = settings or peak_settings(kind)
    max_len = s.max_interval_s * fs
    out = np.full(values.shape, np.nan)
    valid = ~np.isnan(values)
    for i in range(values.shape[0]):
        for a, b in runs(valid[i]):
            peaks = detect_peaks(values[i, a:b], fs, settings=s)
            out[i, a:b] = event_phase(peaks, np.arange(b - a), max_interval=max_len)
    return out


Method = Literal["hilbert", "peaks"]


def method_settings(
    method: Method,
    band: Band | None,
    order: int | None,
    kind: str,
    settings: PeakSettings | None,
) -> tuple[Band, int, PeakSettings | None, str]:
    """Resolve the band, order and (for events) peak settings of a phase method.

    ``band`` and ``order`` apply to both methods: the Hilbert band-pass, or the
    band-pass before peak picking (replacing those of ``settings`` or of ``kind``'s
    :data:`PEAK_SETTINGS`). Returns ``(band, order, settings, description)``.
    """
    if method == "hilbert":
        if settings is not None:
            raise invalid("settings= (PeakSettings) applies to method='peaks' only")
        b = RESPIRATION_BAND if band is None else (float(band[0]), float(band[1]))
        o = 2 if order is None else int(order)
        how = f"hilbert; zero-phase Butterworth band-pass {b[0]:g}-{b[1]:g} Hz, order {o}"
        return b, o, None, how
    if method == "peaks":
        s = peak_settings(kind, settings, band=band, order=order)
        how = (
            f"peaks; {kind} events after a {s.band[0]:g}-{s.band[1]:g} Hz band-pass, "
            f"order {s.order}; 2*pi per cycle, linear between events"
        )
        return s.band, s.order, s, how
    raise invalid(f"method must be 'hilbert' or 'peaks', got {method!r}")


def phases(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    fs: float | None = None,
    *,
    method: Method = "hilbert",
    band: Band | None = None,
    order: int | None = None,
    kind: str = "respiration",
    settings: PeakSettings | None = None,
    attribute: str | None = None,
    max_gap_s: float = 0.0,
) -> xr.DataArray:
    """Instantaneous phase of every participant, as a DataArray.

    Parameters
    ----------
    data
        ``store.history`` output, a DataArray ``("sensor", "time")``, a
        ``(participants, samples)`` array (with ``fs``), or :class:`Signals`
        (from :func:`~sensocto_lab.physio.grid.as_signals`, e.g. to merge duplicate
        timestamps).
    fs
        Sampling rate in Hz (plain arrays), or the rate of the common grid.
    method
        ``"hilbert"`` (band-pass + Hilbert) or ``"peaks"`` (events, linear between).
    band, order
        Band-pass (Hz, Butterworth order per edge). Hilbert default: 0.1–0.6 Hz,
        order 2; for ``"peaks"`` they replace the band-pass of ``settings``.
    kind
        For ``"peaks"``: ``"respiration"`` (breath peaks) or ``"ecg"`` (R-peaks).
    settings
        For ``"peaks"``: a :class:`PeakSettings` instead of ``kind``'s defaults
        (e.g. another refractory distance for PPG), without touching the global
        :data:`PEAK_SETTINGS`.
    attribute, max_gap_s
        See :func:`~sensocto_lab.physio.grid.as_signals`.

    Returns
    -------
    xarray.DataArray
        Phases in radians, ``(-π, π]``, dims ``("sensor", "time")``, NaN where
        unknown (gaps, short runs, flat sensors); ``attrs`` carry ``units``,
        ``method``, ``fs``, ``fft`` (the Hilbert FFT length convention). With
        ``max_gap_s`` a ``bridged`` coordinate marks interpolated samples.
    """
    sig = as_signals(data, fs, attribute=attribute, max_gap_s=max_gap_s)
    b, o, s, how = method_settings(method, band, order, kind, settings)
    if s is None:
        theta = hilbert_phase(sig.values, sig.fs, b, o)
    else:
        theta = peak_phase(sig.values, sig.fs, kind, settings=s)
    return _on_grid(theta, sig, "phase", how, "rad", "instantaneous phase")


def phasors(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    fs: float | None = None,
    *,
    method: Method = "hilbert",
    band: Band | None = None,
    order: int | None = None,
    kind: str = "respiration",
    settings: PeakSettings | None = None,
    attribute: str | None = None,
    max_gap_s: float = 0.0,
) -> xr.DataArray:
    """Unit phasors ``exp(i·θ)`` of every participant: :func:`phases` without the angle.

    For the Hilbert method this is ``z / |z|`` of the analytic signal, so no angle
    and exponential round trip is paid. :func:`~sensocto_lab.sync.kuramoto.order_parameter`,
    :func:`~sensocto_lab.sync.kuramoto.phase_locking`,
    :func:`~sensocto_lab.sync.cluster.cluster_phase` and
    :func:`~sensocto_lab.sync.connectivity.connectivity` take it as they take
    phases; computing it once and passing it to each shares the work.

    Parameters
    ----------
    data, fs, method, band, order, kind, settings, attribute, max_gap_s
        As for :func:`phases`.

    Returns
    -------
    xarray.DataArray
        ``complex128`` of modulus 1, dims ``("sensor", "time")``, NaN where the
        phase is unknown; attrs as :func:`phases` (``units`` ``"1"``).
    """
    sig = as_signals(data, fs, attribute=attribute, max_gap_s=max_gap_s)
    b, o, s, how = method_settings(method, band, order, kind, settings)
    if s is None:
        z = analytic_signal(sig.values, sig.fs, b, o)
        with np.errstate(invalid="ignore", divide="ignore"):
            z /= np.abs(z)
    else:
        z = np.exp(1j * peak_phase(sig.values, sig.fs, kind, settings=s))
    return _on_grid(z, sig, "phasor", how, "1", "unit phasor exp(i*phase)")


def _on_grid(
    values: npt.NDArray[np.float64] | ComplexArray,
    sig: Signals,
    name: str,
    how: str,
    units: str,
    long_name: str,
) -> xr.DataArray:
    da = xr.DataArray(
        values,
        dims=("sensor", "time"),
        coords=sig.coords(),
        name=name,
        attrs={
            "units": units,
            "method": how,
            "fs": sig.fs,
            "long_name": long_name,
            "fft": "run length, unpadded (as scipy.signal.hilbert)",
        },
    )
    if sig.bridged is not None:
        da = da.assign_coords(bridged=(("sensor", "time"), sig.bridged))
    return da
