"""Cluster-phase synchrony (Richardson, Garcia, Frank, Gergor & Marsh 2012).

With phases ``θ_k(t)`` of ``N`` members: the group's phase
``q(t) = arg(mean_k exp(i·θ_k(t)))``; each member's relative phase
``φ_k(t) = θ_k(t) − q(t)``; its synchrony with the group
``ρ_k = |mean_t exp(i·φ_k(t))|`` and its mean relative phase ``φ̄_k`` (the angle
of the same mean); the group's synchrony at each moment
``ρ_group(t) = |mean_k exp(i·(φ_k(t) − φ̄_k))|`` and overall ``ρ = mean_t ρ_group(t)``.
Unlike the Kuramoto ``R``, ``ρ`` is 1 for a group locked at any constant phase
differences, not only in phase.

multiSyncPy's ``synchrony_metrics.rho`` is the reference (same values to 1e-9 on
the same phases, see tests/sync). Ours is NaN-aware: means skip unknown phases.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.sync.kuramoto import phasor_input

__all__ = ["cluster_phase"]

ComplexArray = npt.NDArray[np.complex128]


def _nanmean_phasor(z: ComplexArray, axis: int, complete: bool) -> ComplexArray:
    if complete:  # the common case: no masks
        return z.mean(axis=axis)
    valid = ~np.isnan(z.real)
    count = valid.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, z, 0).sum(axis=axis) / np.where(count > 0, count, np.nan)


def cluster_phase(
    phases: xr.DataArray | npt.ArrayLike,
    fs: float | None = None,
    *,
    min_count: int = 2,
    relative: bool = False,
) -> xr.Dataset:
    """Cluster-phase synchrony of a group: ``ρ_group(t)``, ``ρ``, each member's ``ρ_k``.

    Parameters
    ----------
    phases
        ``(sensor, time)`` phases in radians (:func:`~sensocto_lab.sync.phase.phases`)
        or unit phasors (:func:`~sensocto_lab.sync.phase.phasors`); NaN where unknown.
    fs
        Sampling rate of a plain array, Hz (sets the time axis in seconds).
    min_count
        Fewest members with a phase for ``ρ_group(t)`` to be defined (else NaN).
    relative
        Also return every member's relative phase ``φ_k(t)`` (an angle per sample:
        costs as much again as the rest).

    Returns
    -------
    xarray.Dataset
        ``rho_group`` (time): group synchrony ``ρ_group(t)`` in ``[0, 1]``;
        ``rho`` (scalar): its time mean (NaN times skipped); ``rho_k`` (sensor): each
        member's synchrony with the group; ``mean_relative_phase`` (sensor): ``φ̄_k``,
        rad; ``group_phase`` (time): ``q(t)``, rad; with ``relative``,
        ``relative_phase`` (sensor, time): ``φ_k(t)`` wrapped to ``(-π, π]``, rad.
        Coordinate ``n`` (time): members counted.

    References
    ----------
    Richardson, M. J., Garcia, R. L., Frank, T. D., Gergor, M., & Marsh, K. L. (2012).
    Measuring group synchrony: a cluster-phase method for analyzing multivariate
    movement time-series. *Frontiers in Physiology* 3:405. multiSyncPy
    ``synchrony_metrics.rho``.
    """
    unit, sensors, time, attrs = phasor_input(phases, fs)
    valid = ~np.isnan(unit.real)
    complete = bool(valid.all())
    count = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = _nanmean_phasor(unit, 0, complete)
        q_unit = q / np.abs(q)
        rel = unit * q_unit.conj()  # exp(i·φ_k(t)); NaN where the member or q is unknown
        member = _nanmean_phasor(rel, 1, complete)  # mean_t exp(i·φ_k)
        rho_k = np.abs(member)
        centred = rel * (member / rho_k).conj()[:, np.newaxis]
    rho_t = np.abs(_nanmean_phasor(centred, 0, complete))
    rho_t = np.where(count >= min_count, rho_t, np.nan)
    known = ~np.isnan(rho_t)
    rho = float(rho_t[known].mean()) if known.any() else float("nan")
    how = f"cluster-phase (Richardson et al. 2012); phases: {attrs.get('method', 'given')}"
    base = {k: v for k, v in attrs.items() if k in ("fs",)}
    out = xr.Dataset(
        {
            "rho_group": ("time", rho_t, {"units": "1", "long_name": "group synchrony rho(t)"}),
            "rho": ((), rho, {"units": "1", "long_name": "mean group synchrony rho"}),
            "rho_k": ("sensor", rho_k, {"units": "1", "long_name": "member synchrony rho_k"}),
            "mean_relative_phase": (
                "sensor",
                np.angle(member),
                {"units": "rad", "long_name": "mean relative phase to the group"},
            ),
            "group_phase": ("time", np.angle(q), {"units": "rad", "long_name": "group phase q"}),
        },
        coords={"sensor": sensors, "time": time, "n": ("time", count)},
        attrs={**base, "method": how},
    )
    if relative:
        out["relative_phase"] = (
            ("sensor", "time"),
            np.angle(rel),
            {"units": "rad", "long_name": "relative phase to the group phase"},
        )
    return out
