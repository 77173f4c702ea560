"""Breathing rate of a whole group, on the breathing signals' own grid.

neurokit2 does the work (``rsp_clean`` with Khodadad et al. 2018's band-pass, then
``rsp_rate`` from the troughs, monotone-cubic between breaths); this module runs
it gap by gap over every sensor and returns our DataArray.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.physio.filters import runs
from sensocto_lab.physio.grid import Signals, as_signals

__all__ = ["MIN_RUN_S", "respiration_rate"]

#: Shortest gap-free run (s) given a rate: three breaths at the slowest plausible 6/min.
MIN_RUN_S = 30.0


def respiration_rate(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    fs: float | None = None,
    *,
    attribute: str | None = None,
) -> xr.DataArray:
    """Breaths per minute of every sensor, at every sample of its breathing signal.

    Parameters
    ----------
    data
        Breathing signals (``store.history`` output, a DataArray ``(sensor, time)``,
        a ``(sensors, samples)`` array with ``fs``, or
        :class:`~sensocto_lab.physio.grid.Signals`); NaN marks gaps.
    fs, attribute
        As for :func:`~sensocto_lab.physio.grid.as_signals` (default attribute
        ``"respiration"``).

    Returns
    -------
    xarray.DataArray
        ``(sensor, time)`` breathing rate in breaths/min on the signals' grid; NaN
        in gaps, in runs shorter than :data:`MIN_RUN_S` and in flat runs.

    References
    ----------
    neurokit2 ``rsp_clean(method="khodadad2018")``, ``rsp_rate(method="trough")``;
    Khodadad et al. (2018) *Physiol. Meas.* 39:094001.
    """
    import neurokit2 as nk  # heavy: loaded on first use

    sig = as_signals(data, fs, attribute=attribute)
    out = np.full(sig.values.shape, np.nan)
    valid = ~np.isnan(sig.values)
    for i in range(sig.n_participants):
        for a, b in runs(valid[i]):
            x = sig.values[i, a:b]
            if b - a < MIN_RUN_S * sig.fs or np.ptp(x) == 0:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # too few breaths: neurokit2 warns, NaN says it
                cleaned = nk.rsp_clean(x, sampling_rate=sig.fs, method="khodadad2018")
                out[i, a:b] = nk.rsp_rate(cleaned, sampling_rate=sig.fs, method="trough")
    return xr.DataArray(
        out,
        dims=("sensor", "time"),
        coords=sig.coords(),
        name="respiration_rate",
        attrs={
            "units": "1/min",
            "long_name": "breathing rate",
            "fs": sig.fs,
            "method": "neurokit2 rsp_clean (khodadad2018) + rsp_rate (trough), gap by gap",
        },
    )
