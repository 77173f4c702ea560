"""The physiology waveforms every simulated source draws: one breath shape, one ECG beat.

Both the group simulator and the fake BLE strap use these, so a detector tuned on one
sees the same signal from the other.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["beat_phase", "breath_shape", "ecg_mv"]

FloatArray = npt.NDArray[np.float64]

# The PQRST complex as a sum of Gaussians over the beat-cycle angle (McSharry et al.
# 2003, IEEE Trans. Biomed. Eng. 50:289): centres (rad, R at 0), widths (rad), heights (mV).
_ECG_ANGLES = np.array([-math.pi / 3, -math.pi / 12, 0.0, math.pi / 12, math.pi / 2])
_ECG_WIDTHS = np.array([0.25, 0.1, 0.1, 0.1, 0.4])
_ECG_AMPS_MV = np.array([0.15, -0.15, 1.2, -0.3, 0.35])


def breath_shape(theta: npt.ArrayLike, inhale_fraction: float = 0.4) -> FloatArray:
    """Lung volume over a breath, 0 (empty) to 1 (full), from the phase ``theta`` (rad).

    Full at phase 0 (the peak). The inhale (phase ``-2π·inhale_fraction`` to 0) rises as
    half a cosine and the longer exhale falls as the other half, so the wave is periodic,
    smooth and asymmetric.
    """
    split = 2 * math.pi * inhale_fraction
    phi = np.mod(np.asarray(theta, dtype=np.float64) + split, 2 * math.pi)
    warped = np.where(
        phi < split,
        phi / (2 * inhale_fraction),
        math.pi + (phi - split) / (2 * (1 - inhale_fraction)),
    )
    return np.asarray(0.5 * (1 - np.cos(warped)), dtype=np.float64)


def ecg_mv(heart_phase: npt.ArrayLike) -> FloatArray:
    """One ECG lead, mV, from the continuous heart phase in beats (R peak at integers).

    Any shape; the result has the same shape. Noise and baseline wander are the caller's.
    """
    psi = np.asarray(heart_phase, dtype=np.float64)
    angle = 2 * math.pi * (psi - np.floor(psi + 0.5))  # in [-π, π), R peak at 0
    d = angle[..., None] - _ECG_ANGLES
    return np.asarray((_ECG_AMPS_MV * np.exp(-(d**2) / (2 * _ECG_WIDTHS**2))).sum(axis=-1))


def beat_phase(t: npt.ArrayLike, beats: npt.ArrayLike) -> FloatArray:
    """The heart phase in beats at times ``t``, from beat times (same unit, increasing).

    Linear between beats (beat ``k`` is phase ``k``) and extrapolated with the first and
    last interval outside them, so :func:`ecg_mv` of it puts an R peak on every beat.
    """
    times = np.asarray(t, dtype=np.float64)
    b = np.asarray(beats, dtype=np.float64)
    if len(b) < 2:
        raise ValueError("beat_phase needs at least two beats")
    k = np.arange(len(b), dtype=np.float64)
    phase = np.interp(times, b, k)
    before, after = times < b[0], times > b[-1]
    phase[before] = (times[before] - b[0]) / (b[1] - b[0])
    phase[after] = k[-1] + (times[after] - b[-1]) / (b[-1] - b[-2])
    return phase
