"""Signal quality per sensor and window: name the dead, flat and clipped sensors.

A group measure should rest on the sensors that carry a signal. :func:`quality`
flags each sensor in each window; :func:`exclude` turns the flagged windows into
gaps (NaN), which every measure of :mod:`sensocto_lab.sync` and
:mod:`sensocto_lab.physio` already leaves out, so a dead strap is named instead
of silently counted.

Flags, checked in this order:

- ``"missing"``: more than half of the window is NaN (no data, dropped out);
- ``"flat"``: the known samples are all equal (peak-to-peak at most 1e-10 of
  their magnitude: an all-zero or stuck sensor);
- ``"clipped"``: more than ``clip_share`` of the known samples sit on plateaus (two
  or more equal samples in a row) at the window's minimum or maximum: the signal
  hits the ADC's or the device's rails (a sampled sine touches its peak at single
  samples, never on a plateau);
- ``"ok"``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.physio.filters import FLAT_TOLERANCE, invalid
from sensocto_lab.physio.grid import Signals, as_signals

__all__ = ["FLAGS", "Flag", "exclude", "quality"]

Flag = Literal["ok", "missing", "flat", "clipped"]

#: Every flag :func:`quality` gives.
FLAGS: tuple[str, ...] = ("ok", "missing", "flat", "clipped")


def _flags(x: npt.NDArray[np.float64], clip_share: float) -> npt.NDArray[np.str_]:
    """Flags of ``(rows, samples)`` windows."""
    valid = ~np.isnan(x)
    n = valid.sum(axis=1)
    filled_hi = np.where(valid, x, -np.inf)
    filled_lo = np.where(valid, x, np.inf)
    with np.errstate(invalid="ignore"):
        hi = filled_hi.max(axis=1)
        lo = filled_lo.min(axis=1)
        span = hi - lo
        scale = np.maximum(np.abs(hi), np.abs(lo))
        flat = span <= FLAT_TOLERANCE * scale
        tol = 1e-9 * span
        at_rail = valid & ((x >= (hi - tol)[:, None]) | (x <= (lo + tol)[:, None]))
        # on a plateau: a neighbour is at the same rail too
        plateau = np.zeros_like(at_rail)
        both = at_rail[:, 1:] & at_rail[:, :-1] & np.isclose(x[:, 1:], x[:, :-1], rtol=0, atol=0)
        plateau[:, 1:] |= both
        plateau[:, :-1] |= both
        share = plateau.sum(axis=1) / np.maximum(n, 1)
    out = np.full(x.shape[0], "ok", dtype="<U7")
    out[share > clip_share] = "clipped"
    out[flat] = "flat"
    out[n * 2 <= x.shape[1]] = "missing"
    return out


def quality(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    fs: float | None = None,
    *,
    window_s: float = 10.0,
    clip_share: float = 0.02,
    attribute: str | None = None,
) -> xr.DataArray:
    """A quality flag per sensor and window.

    Parameters
    ----------
    data
        Any signal ``(sensor, time)`` (ECG, PPG, breathing, heart rate), as for
        :func:`~sensocto_lab.physio.grid.as_signals`.
    fs, attribute
        As for :func:`~sensocto_lab.physio.grid.as_signals`.
    window_s
        Window length in seconds (disjoint windows; a shorter last window is kept).
    clip_share
        Share of samples on plateaus at the window's extremes above which it is
        ``"clipped"``.

    Returns
    -------
    xarray.DataArray
        ``(sensor, window)`` of ``"ok"``, ``"missing"``, ``"flat"`` or ``"clipped"``;
        coordinate ``window``: each window's start on the input's time axis; attrs
        ``window_s``, ``fs``.
    """
    if not (np.isfinite(window_s) and window_s > 0):
        raise invalid(f"window_s must be a positive number of seconds, got {window_s!r}")
    if not 0 < clip_share < 1:
        raise invalid(f"clip_share must be in (0, 1), got {clip_share!r}")
    sig = as_signals(data, fs, attribute=attribute)
    width = max(1, round(window_s * sig.fs))
    starts = np.arange(0, sig.n_samples, width)
    flags = np.empty((sig.n_participants, starts.size), dtype="<U7")
    for w, a in enumerate(starts):
        flags[:, w] = _flags(sig.values[:, a : a + width], clip_share)
    return xr.DataArray(
        flags,
        dims=("sensor", "window"),
        coords={"sensor": sig.sensors, "window": sig.time()[starts]},
        name="quality",
        attrs={"window_s": window_s, "fs": sig.fs, "flags": ", ".join(FLAGS)},
    )


def exclude(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    flags: xr.DataArray,
    fs: float | None = None,
    *,
    attribute: str | None = None,
) -> xr.DataArray:
    """The signals with every window not flagged ``"ok"`` set to NaN (a gap).

    Parameters
    ----------
    data
        The signals :func:`quality` was computed on.
    flags
        Output of :func:`quality` on ``data``.
    fs, attribute
        As for :func:`quality`.

    Returns
    -------
    xarray.DataArray
        ``(sensor, time)`` on the :func:`~sensocto_lab.physio.grid.as_signals` grid,
        NaN in bad windows; attrs ``excluded`` (samples set to NaN per sensor).
    """
    sig = as_signals(data, fs, attribute=attribute)
    width = max(1, round(float(flags.attrs["window_s"]) * sig.fs))
    if flags.shape != (sig.n_participants, -(-sig.n_samples // width)):
        raise invalid("flags do not fit these signals: compute quality() on the same data")
    bad = np.repeat(np.asarray(flags.values) != "ok", width, axis=1)[:, : sig.n_samples]
    values = np.where(bad, np.nan, sig.values)
    return xr.DataArray(
        values,
        dims=("sensor", "time"),
        coords=sig.coords(),
        name=sig.attrs.get("attribute", "signal"),
        attrs={**sig.attrs, "excluded": bad.sum(axis=1).tolist()},
    )
