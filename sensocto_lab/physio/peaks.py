"""Events of a rhythm (breath peaks, R-peaks) in one gap-free run.

The detector is deliberately simple and vectorised: a zero-phase Butterworth
band-pass, :func:`scipy.signal.find_peaks` with a refractory distance and a
prominence relative to the run's robust range, then sub-sample refinement by a
parabola. On ECG it finds the same beats as neurokit2's ``ecg_peaks`` (see
tests/physio) at a fraction of the cost; PPG goes to neurokit2 instead (see
:mod:`sensocto_lab.physio.beats`), because a pulse wave's dicrotic notch fools
a prominence rule.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.signal as ss

from sensocto_lab.physio.filters import RESPIRATION_BAND, Band, butter_sos, invalid, min_len

__all__ = ["PEAK_SETTINGS", "RESPIRATION_BAND", "PeakSettings", "detect_peaks", "peak_settings"]

FloatArray = npt.NDArray[np.float64]


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
    order
        Butterworth order per edge of the band-pass.
    """

    band: Band
    distance_s: float
    prominence: float
    max_interval_s: float
    order: int = 2


#: Physiologically sensible defaults per kind.
PEAK_SETTINGS: dict[str, PeakSettings] = {
    "respiration": PeakSettings(RESPIRATION_BAND, 1.5, 0.25, 12.0),
    "ecg": PeakSettings((5.0, 30.0), 0.3, 0.3, 2.0),
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


def detect_peaks(
    x: FloatArray,
    fs: float,
    kind: str = "respiration",
    *,
    settings: PeakSettings | None = None,
) -> FloatArray:
    """Times of the rhythm's peaks in one gap-free run, in (fractional) samples.

    The run is band-passed (``settings.band``, ``settings.order``), peaks are picked
    with :func:`scipy.signal.find_peaks` (``distance``, ``prominence`` from
    ``settings``) and refined to sub-sample precision with a parabola through the
    three samples around each peak.

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
    """
    s = settings or peak_settings(kind)
    sos = butter_sos(float(fs), s.band, s.order)
    if x.shape[0] < min_len(fs, s.band, sos) or np.ptp(x) == 0:
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
