"""Events of a rhythm (breath peaks, R-peaks) in gap-free runs.

Two detectors, both after a zero-phase Butterworth band-pass and both refined to
sub-sample precision by a parabola through the three samples around each event:

- ``"prominence"`` (breathing): :func:`scipy.signal.find_peaks` with a refractory
  distance and a prominence relative to the run's robust range.
- ``"gradient"`` (ECG R-peaks): the QRS-gradient rule of neurokit2's default
  ``ecg_peaks`` method, vectorised. The absolute slope, smoothed over 0.1 s, must
  exceed 1.5 times its own 0.75 s average; each such stretch at least 0.4 times
  the mean stretch long holds one QRS, whose R-peak is the stretch's maximum;
  beats closer than the refractory distance keep the earlier one. White noise
  has no sustained slope, so this keeps working where a prominence rule counts
  noise peaks as beats. It finds neurokit2's beats on the same signal (tests/physio)
  and runs over a whole group in one 2-D filter pass (:func:`detect_peaks_rows`).

PPG goes to neurokit2 instead (see :mod:`sensocto_lab.physio.beats`): a pulse
wave's dicrotic notch fools both rules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.signal as ss

from sensocto_lab.physio.filters import RESPIRATION_BAND, Band, butter_sos, invalid, min_len

__all__ = [
    "PEAK_SETTINGS",
    "RESPIRATION_BAND",
    "PeakSettings",
    "detect_peaks",
    "detect_peaks_rows",
    "peak_settings",
]

FloatArray = npt.NDArray[np.float64]
Detector = Literal["prominence", "gradient"]

#: The gradient rule's constants (neurokit2 ``_ecg_findpeaks_neurokit`` defaults).
SMOOTH_S = 0.1
AVERAGE_S = 0.75
GRADIENT_FACTOR = 1.5
MIN_LEN_FACTOR = 0.4
#: Samples filtered at once by :func:`detect_peaks_rows` (bounds its temporaries).
BLOCK_SAMPLES = 1_000_000

#: Ours on top: a QRS stretch's peak slope is at least this share of the median stretch's.
MIN_STRENGTH = 0.5


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
        range (1st to 99th percentile); ``"prominence"`` detector only.
    max_interval_s
        Longest plausible cycle (seconds); a longer interval is a missed event or a
        gap, and its phase is NaN.
    order
        Butterworth order per edge of the band-pass.
    detector
        ``"prominence"`` or ``"gradient"`` (see the module docstring).
    """

    band: Band
    distance_s: float
    prominence: float
    max_interval_s: float
    order: int = 2
    detector: Detector = "prominence"


#: Physiologically sensible defaults per kind.
PEAK_SETTINGS: dict[str, PeakSettings] = {
    "respiration": PeakSettings(RESPIRATION_BAND, 1.5, 0.25, 12.0),
    "ecg": PeakSettings((5.0, 30.0), 0.3, 0.3, 2.0, detector="gradient"),
}


def peak_settings(
    kind: str = "respiration",
    settings: PeakSettings | None = None,
    *,
    band: Band | None = None,
    order: int | None = None,
) -> PeakSettings:
    """The settings to use: ``settings`` (or the defaults of ``kind``), with ``band`` and
    ``order`` replaced where given.

    Raises
    ------
    ValidationError
        An unknown ``kind`` (without ``settings``).
    """
    if settings is None:
        try:
            settings = PEAK_SETTINGS[kind]
        except KeyError:
            raise invalid(f"kind must be one of {sorted(PEAK_SETTINGS)}, got {kind!r}") from None
    changes: dict[str, object] = {}
    if band is not None:
        changes["band"] = (float(band[0]), float(band[1]))
    if order is not None:
        changes["order"] = int(order)
    return dataclasses.replace(settings, **changes) if changes else settings  # type: ignore[arg-type]


def _refine(y: FloatArray, peaks: npt.NDArray[np.intp]) -> FloatArray:
    """Sub-sample peak positions: the vertex of a parabola through three samples."""
    peaks = peaks[(peaks > 0) & (peaks < y.size - 1)]
    left, mid, right = y[peaks - 1], y[peaks], y[peaks + 1]
    curvature = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    return peaks + np.clip(shift, -0.5, 0.5)


def _boxcar(x: FloatArray, width: int) -> FloatArray:
    """Centred moving average of ``width`` samples along the last axis (shorter at the edges).

    From one cumulative sum by slicing (no fancy indexing), so it costs two passes.
    """
    n = x.shape[-1]
    width = max(1, min(width, n))
    c = np.zeros((*x.shape[:-1], n + 1))
    np.cumsum(x, axis=-1, out=c[..., 1:])
    half = width // 2
    out = np.empty(x.shape)
    # interior: sample i averages [i - half, i - half + width)
    out[..., half : n - width + half + 1] = (c[..., width:] - c[..., : n + 1 - width]) / width
    for i in (*range(half), *range(n - width + half + 1, n)):  # the few edge samples
        lo, hi = max(i - half, 0), min(i - half + width, n)
        out[..., i] = (c[..., hi] - c[..., lo]) / (hi - lo)
    return out


def _qrs_masks(y: FloatArray, fs: float) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Smoothed absolute slope and the QRS mask of band-passed rows (the gradient rule)."""
    smooth = _boxcar(np.abs(np.gradient(y, axis=-1)), round(SMOOTH_S * fs))
    return smooth, smooth > GRADIENT_FACTOR * _boxcar(smooth, round(AVERAGE_S * fs))


def _stretch_max(
    v: FloatArray, begin: npt.NDArray[np.intp], end: npt.NDArray[np.intp]
) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Maximum of ``v`` over each ``[begin, end)`` and its (first) index."""
    width = int((end - begin).max())
    index = begin[:, np.newaxis] + np.arange(width)
    inside = index < end[:, np.newaxis]
    values = np.where(inside, v[np.minimum(index, v.size - 1)], -np.inf)
    arg = values.argmax(axis=1)
    return values[np.arange(begin.size), arg], begin + arg


def _gradient_peaks(
    y: FloatArray, smooth: FloatArray, qrs: npt.NDArray[np.bool_], distance: float
) -> npt.NDArray[np.intp]:
    """R-peak sample indices in one band-passed run from its slope and QRS mask."""
    edges = np.diff(qrs.view(np.int8))
    begin = np.flatnonzero(edges == 1) + 1
    end = np.flatnonzero(edges == -1) + 1
    # a QRS cut by either end of the run is still a beat (its maximum may be the edge's)
    if qrs[0]:
        begin = np.concatenate(([0], begin))
    if qrs[-1]:
        end = np.concatenate((end, [y.size]))
    if begin.size == 0:
        return np.empty(0, dtype=np.intp)
    length = end - begin
    keep = length >= MIN_LEN_FACTOR * length.mean()
    begin, end = begin[keep], end[keep]
    # a stretch whose slope stays far below a typical QRS's is noise that happened to
    # outgrow a quiet average (band-passed ECG between beats is quiet)
    strength, _ = _stretch_max(smooth, begin, end)
    keep = strength >= MIN_STRENGTH * np.median(strength)
    _, peaks = _stretch_max(y, begin[keep], end[keep])
    # refractory: keep a beat only if it is far enough after the last kept one
    if not (np.diff(peaks) <= distance).any():
        return peaks
    kept = [int(peaks[0])]
    for p in peaks[1:].tolist():
        if p - kept[-1] > distance:
            kept.append(p)
    return np.asarray(kept, dtype=np.intp)


def _prominence_peaks(y: FloatArray, s: PeakSettings, fs: float) -> npt.NDArray[np.intp]:
    lo, hi = np.percentile(y, [1.0, 99.0])
    peaks, _ = ss.find_peaks(
        y, distance=max(1.0, s.distance_s * fs), prominence=max(s.prominence * (hi - lo), 1e-12)
    )
    return peaks


def detect_peaks_rows(
    values: FloatArray,
    fs: float,
    kind: str = "ecg",
    *,
    settings: PeakSettings | None = None,
) -> list[FloatArray]:
    """:func:`detect_peaks` of each gap-free row of ``(rows, samples)``, one filter pass.

    Returns
    -------
    list of numpy.ndarray
        Per row, increasing ``float64`` positions in samples (empty for flat rows
        or rows too short for the filter).
    """
    s = settings or peak_settings(kind)
    sos = butter_sos(float(fs), s.band, s.order)
    if values.shape[-1] < min_len(fs, s.band, sos):
        return [np.empty(0) for _ in range(values.shape[0])]
    out: list[FloatArray] = []
    # blocks of about BLOCK_SAMPLES: whole-group temporaries (hundreds of MB for an
    # hour of 64 sensors) would cost more in page faults than the arithmetic
    rows = max(1, BLOCK_SAMPLES // values.shape[-1])
    for start in range(0, values.shape[0], rows):
        block = values[start : start + rows]
        y = ss.sosfiltfilt(sos, block, axis=-1)
        if s.detector == "gradient":
            smooth, qrs = _qrs_masks(y, fs)
        flat = np.ptp(block, axis=-1) == 0
        for i, row in enumerate(y):
            if flat[i]:
                out.append(np.empty(0))
                continue
            if s.detector == "gradient":
                peaks = _gradient_peaks(row, smooth[i], qrs[i], s.distance_s * fs)
            else:
                peaks = _prominence_peaks(row, s, fs)
            out.append(_refine(row, peaks))
    return out


def detect_peaks(
    x: FloatArray,
    fs: float,
    kind: str = "respiration",
    *,
    settings: PeakSettings | None = None,
) -> FloatArray:
    """Times of the rhythm's peaks in one gap-free run, in (fractional) samples.

    The run is band-passed (``settings.band``, ``settings.order``), events are
    picked by ``settings.detector`` (module docstring) with the refractory
    ``settings.distance_s``, and refined to sub-sample precision with a parabola
    through the three samples around each peak.

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
        ``float64`` peak positions in samples from the start of ``x``, increasing;
        empty for a run too short for the filter or flat.

    References
    ----------
    neurokit2 ``ecg_peaks(method="neurokit")`` (the gradient rule);
    :func:`scipy.signal.find_peaks` (the prominence rule).
    """
    return detect_peaks_rows(
        np.asarray(x, dtype=np.float64)[np.newaxis], fs, kind, settings=settings
    )[0]
