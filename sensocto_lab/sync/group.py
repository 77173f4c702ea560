"""Group measures on raw signals and on samples of recordings: symbolic entropy, weak null.

- **Symbolic entropy** (multiSyncPy ``symbolic_entropy``): each signal is coded
  low/medium/high by its own terciles; the joint pattern of codes across the group
  at each sample is a symbol; the natural-log Shannon entropy of the symbols'
  frequencies. Low entropy: the group visits few joint states (moves together).
- **Kuramoto weak null** (Frank & Richardson 2010; multiSyncPy
  ``kuramoto_weak_null``): over a sample of recordings of ``N`` members, is the
  mean of ``R²`` above ``1/N``, its expectation for independent phases? A one-sided
  t-test on the recordings' time-mean ``R²``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.stats
import xarray as xr

from sensocto_lab.physio.filters import invalid
from sensocto_lab.sync.kuramoto import phasor_input

__all__ = ["kuramoto_weak_null", "symbolic_entropy", "terciles"]

FloatArray = npt.NDArray[np.float64]


def _rows(x: xr.DataArray | npt.ArrayLike) -> FloatArray:
    values = np.asarray(x.values if isinstance(x, xr.DataArray) else x, dtype=np.float64)
    if values.ndim != 2:
        raise invalid(f"expected (sensors, samples), got shape {values.shape}", "invalid_signal")
    return values


def terciles(values: FloatArray) -> npt.NDArray[np.int8]:
    """Code each row 0/1/2 (low/medium/high) by its own terciles, as multiSyncPy does.

    ``x < q(1/3)`` is 0, ``x < q(2/3)`` is 1, else 2 (``numpy.quantile``, linear);
    NaN gives -1.
    """
    out = np.full(values.shape, -1, dtype=np.int8)
    for i, row in enumerate(values):
        known = ~np.isnan(row)
        if not known.any():
            continue
        lo, hi = np.quantile(row[known], [1 / 3, 2 / 3])
        out[i, known] = np.where(row[known] < lo, 0, np.where(row[known] < hi, 1, 2))
    return out


def symbolic_entropy(signals: xr.DataArray | npt.ArrayLike) -> float:
    """Shannon entropy (nats) of the group's joint tercile patterns.

    Parameters
    ----------
    signals
        ``(sensor, time)`` raw signals (not phases), DataArray or array; samples
        where any signal is NaN are left out of the pattern counts.

    Returns
    -------
    float
        Entropy in nats, between 0 and ``N·ln 3``.

    References
    ----------
    multiSyncPy ``synchrony_metrics.symbolic_entropy`` (Hudson, Wiltshire & Atzmueller
    2023, *Behav. Res. Methods*).
    """
    codes = terciles(_rows(signals))
    known = (codes >= 0).all(axis=0)
    if not known.any():
        return float("nan")
    columns = codes[:, known]
    if columns.shape[0] <= 39:  # 3**39 < 2**63: one integer per pattern
        weights = 3 ** np.arange(columns.shape[0], dtype=np.int64)
        _, counts = np.unique(weights @ columns.astype(np.int64), return_counts=True)
    else:
        _, counts = np.unique(columns.T, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def kuramoto_weak_null(recordings: Sequence[xr.DataArray | npt.ArrayLike]) -> xr.Dataset:
    """Weak-null test of the Kuramoto order parameter over a sample of recordings.

    Parameters
    ----------
    recordings
        Phases (radians) or phasors of each recording, ``(sensor, time)``; every
        recording has the same number of members ``N`` (durations may differ).

    Returns
    -------
    xarray.Dataset
        ``p_value`` (one-sided), ``t`` (statistic), ``df`` (recordings − 1) and
        ``mean_r2`` (per recording: the time-mean of ``R(t)²``, dim ``recording``).

    References
    ----------
    Frank & Richardson (2010), On a test statistic for the Kuramoto order parameter
    of synchronization. *Physica D* 239:2084. multiSyncPy ``kuramoto_weak_null``
    (the same value; its standard deviation of the sample is numpy's default,
    ``ddof=0``, and ours follows it so the p-values agree).
    """
    if len(recordings) < 2:
        raise invalid("the weak null needs at least two recordings")
    means, sizes = [], set()
    for rec in recordings:
        unit, _, _, _ = phasor_input(rec, None)
        sizes.add(unit.shape[0])
        valid = ~np.isnan(unit.real)
        total = np.where(valid, unit, 0).sum(axis=0)
        count = valid.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = (np.abs(total) / count) ** 2
        means.append(float(np.nanmean(r2)))
    if len(sizes) != 1:
        raise invalid(f"every recording must have the same number of members, got {sorted(sizes)}")
    y = np.asarray(means)
    mu = 1.0 / sizes.pop()
    t = (y.mean() - mu) / (y.std() / np.sqrt(y.size))
    df = y.size - 1
    return xr.Dataset(
        {
            "p_value": ((), float(scipy.stats.t.sf(t, df=df))),
            "t": ((), float(t)),
            "df": ((), df),
            "mean_r2": ("recording", y, {"units": "1"}),
        },
        attrs={"method": "Frank & Richardson 2010 weak null: one-sided t-test of mean R^2 > 1/N"},
    )
