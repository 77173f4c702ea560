"""Sensocto's phase heuristic, kept as the baseline our estimators must beat.

Sensocto's ``SyncComputer`` keeps the last 50 breathing samples of each sensor
(at least 15 before it answers) and maps the newest value to a phase from its
position between the buffer's minimum and maximum plus the sign of the last
difference (rising or falling). Here it is expressed in our convention (a peak is
phase 0): falling from the peak covers ``[0, π]``, rising from the trough
``[π, 2π)``. It needs no filtering and is instantaneous, but noise and drifting
baselines move it directly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["minmax_phase"]


def minmax_phase(
    recent: npt.ArrayLike, *, min_samples: int = 15, min_range: float = 0.0
) -> npt.NDArray[np.float64]:
    """Phase of each participant's newest sample by Sensocto's min/max heuristic.

    Parameters
    ----------
    recent
        ``(participants, samples)`` buffer of each participant's latest samples,
        oldest first (Sensocto: 50 samples); NaN-free.
    min_samples
        Fewer samples than this give NaN (Sensocto: 15).
    min_range
        A buffer whose max − min is not above this is "flat" and gives NaN
        (Sensocto used an absolute 2 in its sensors' units).

    Returns
    -------
    numpy.ndarray
        ``(participants,)`` phases in radians, ``[0, 2π)``, NaN where undefined.
    """
    x = np.atleast_2d(np.asarray(recent, dtype=np.float64))
    if x.shape[1] < max(min_samples, 2):
        return np.full(x.shape[0], np.nan)
    lo = x.min(axis=1)
    span = x.max(axis=1) - lo
    flat = span <= min_range
    position = (x[:, -1] - lo) / np.where(flat, 1.0, span)
    rising = x[:, -1] > x[:, -2]
    phase = np.where(rising, np.pi * (1.0 + position), np.pi * (1.0 - position))
    return np.where(flat, np.nan, np.mod(phase, 2 * np.pi))
