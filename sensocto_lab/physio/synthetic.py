"""A simulated ECG with known R-peak times: noise, baseline wander and ectopic beats.

Each beat is a sum of Gaussians (P, Q, R, S, T waves, in the spirit of McSharry
et al. 2003's ECGSYN, without its dynamics), so the true R-peak of every beat is
known exactly and detectors can be scored against the truth, not only against
each other. Ectopic beats are premature ventricular contractions: they come at
``prematurity`` of the expected interval, are wide, tall and without a P wave,
and are followed by a compensatory pause.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensocto_lab.physio.filters import invalid

__all__ = ["SimulatedECG", "simulate_ecg"]

FloatArray = npt.NDArray[np.float64]

# (offset from R in s, amplitude in mV, width sigma in s) of each wave
_NORMAL = ((-0.20, 0.12, 0.025), (-0.035, -0.12, 0.010), (0.0, 1.0, 0.010),
           (0.035, -0.25, 0.010), (0.25, 0.30, 0.040))  # fmt: skip
_ECTOPIC = ((0.0, 1.4, 0.025), (0.07, -0.55, 0.030), (0.32, -0.35, 0.060))


@dataclass(frozen=True, slots=True, eq=False)
class SimulatedECG:
    """A simulated record.

    Attributes
    ----------
    ecg
        ``(samples,)`` in mV.
    fs
        Sampling rate in Hz.
    r_times
        True R-peak times in seconds, increasing.
    ectopic
        ``bool`` per beat: True for the ectopic ones.
    """

    ecg: FloatArray
    fs: float
    r_times: FloatArray
    ectopic: npt.NDArray[np.bool_]


def _add_waves(
    ecg: FloatArray, fs: float, at: FloatArray, waves: tuple[tuple[float, float, float], ...]
) -> None:
    if at.size == 0:
        return
    span = np.arange(-round(0.45 * fs), round(0.6 * fs) + 1)
    idx = np.round(at * fs).astype(np.int64)[:, None] + span
    inside = (idx >= 0) & (idx < ecg.size)
    dt = idx / fs - at[:, None]
    shape = sum(a * np.exp(-0.5 * ((dt - off) / sd) ** 2) for off, a, sd in waves)
    np.add.at(ecg, idx[inside], np.asarray(shape)[inside])


def simulate_ecg(
    duration_s: float,
    fs: float = 130.0,
    *,
    heart_rate: float = 70.0,
    hrv_ms: float = 40.0,
    ectopic_share: float = 0.0,
    prematurity: float = 0.65,
    noise: float = 0.03,
    wander: float = 0.3,
    rr_s: npt.ArrayLike | None = None,
    seed: int | np.random.Generator | None = None,
) -> SimulatedECG:
    """Simulate an ECG with known R-peaks.

    Parameters
    ----------
    duration_s
        Length in seconds.
    fs
        Sampling rate in Hz (a Polar H10's PMD ECG: 130 Hz).
    heart_rate
        Mean rate in bpm.
    hrv_ms
        Standard deviation of the beat-to-beat intervals in ms (a 0.25 Hz
        respiratory modulation plus white variation).
    ectopic_share
        Probability that a beat is a premature ventricular contraction.
    prematurity
        An ectopic beat comes at this fraction of the expected interval; the next
        interval makes up the rest (compensatory pause).
    noise
        Standard deviation of white noise in mV.
    wander
        Amplitude of the baseline wander in mV (0.15 and 0.33 Hz sines: breathing
        and movement).
    rr_s
        The beat-to-beat intervals to use, in seconds (instead of ``heart_rate``
        and ``hrv_ms``), e.g. to give two people a shared heart-rate trend; ectopic
        beats are still added on top.
    seed
        Seed or generator.

    Returns
    -------
    SimulatedECG
        The signal and its true beats.
    """
    rng = np.random.default_rng(seed)
    if rr_s is None:
        mean_rr = 60.0 / heart_rate
        n_beats = int(duration_s / mean_rr) + 2
        k = np.arange(n_beats)
        rr = mean_rr + (hrv_ms / 1e3) * (
            np.sqrt(0.5) * np.sin(2 * np.pi * 0.25 * k * mean_rr)
            + np.sqrt(0.5) * rng.standard_normal(n_beats)
        )
    else:
        rr = np.asarray(rr_s, dtype=np.float64)
        if rr.ndim != 1 or (rr <= 0).any():
            raise invalid("rr_s must be positive intervals in seconds, one per beat")
        n_beats = rr.size
    ectopic = rng.random(n_beats) < ectopic_share
    ectopic[0] = False
    ectopic[1:] &= ~ectopic[:-1]  # no two in a row: each needs its pause
    pause = np.zeros(n_beats)
    pause[1:] = np.where(ectopic[:-1], (1 - prematurity) * rr[:-1], 0.0)
    rr = np.where(ectopic, prematurity * rr, rr) + pause
    times = 0.3 + np.cumsum(rr) - rr[0]
    keep = times < duration_s - 0.3
    times, ectopic = times[keep], ectopic[keep]
    n = round(duration_s * fs)
    t = np.arange(n) / fs
    ecg = np.zeros(n)
    _add_waves(ecg, fs, times[~ectopic], _NORMAL)
    _add_waves(ecg, fs, times[ectopic], _ECTOPIC)
    phase = rng.uniform(0, 2 * np.pi, 2)
    ecg += wander * (
        0.7 * np.sin(2 * np.pi * 0.15 * t + phase[0])
        + 0.3 * np.sin(2 * np.pi * 0.33 * t + phase[1])
    )
    ecg += noise * rng.standard_normal(n)
    return SimulatedECG(ecg, float(fs), times, ectopic)
