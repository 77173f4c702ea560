"""Pairwise connectivity of every pair of participants, one call, one matrix.

Every measure is a function of the analytic signals ``z_j = a_j·exp(i·θ_j)`` and
their cross-spectrum ``S_jk(t) = z_j(t)·conj(z_k(t))``, summed over the samples
both participants have (gaps and dead sensors are NaN and left out pair by pair).
The conventions are hypyp's ``analyses.compute_sync`` (the reference the tests
compare against, to 1e-9):

============  ==============================================================  ======================
measure       value (sums over shared samples t)                               reference
============  ==============================================================  ======================
``plv``       ``|Σ exp(i(θ_j − θ_k))| / n``                                    Lachaux et al. 1999
``nm_plv``    ``|Σ exp(i(n·θ_j − m·θ_k))| / n`` (n:m locking; not symmetric)   Tass et al. 1998
``ccorr``     ``|Σ sin(θ_j − θ̄_j) sin(θ_k − θ̄_k)| / √(Σ sin² · Σ sin²)``       Fisher 1995
``accorr``    ccorr centred per pair (Zimmermann et al. 2024), signed          hypyp ``accorr``
``coh``       ``|Σ S| / √(Σ|z_j|² Σ|z_k|²)`` (√ of magnitude-squared coh.)     Nunez & Srinivasan
``imcoh``     ``|Im Σ S| / √(Σ|z_j|² Σ|z_k|²)``                                Nolte et al. 2004
``pli``       ``|Σ sign(Im S)| / n``                                           Stam et al. 2007
``wpli``      ``|Σ Im S| / Σ |Im S|``                                          Vinck et al. 2011
``envcorr``   Pearson r of the envelopes ``|z|``                               Hipp et al. 2012
``powcorr``   Pearson r of the powers ``|z|²``                                 hypyp ``pow_corr``
============  ==============================================================  ======================

``θ̄_j`` is each participant's circular mean over its own known samples. hypyp's
``coh`` is the square root of the classic magnitude-squared coherence; square it
for the classic form. How it is fast: every sum that is bilinear in the two
signals is one matrix product (``Z @ Z^H``), including the NaN-aware counts
(``W @ W^T`` of the masks); only PLI and the wPLI denominator need ``|·|`` or
``sign`` per sample, and those run row by row over the upper triangle, never
holding hypyp's ``(pairs, time)`` array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.physio.filters import Band, invalid
from sensocto_lab.physio.grid import Signals, as_signals
from sensocto_lab.sync.phase import analytic_signal, method_settings

__all__ = ["MEASURES", "Measure", "analytic_input", "connectivity", "connectivity_matrix"]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
Measure = Literal[
    "plv", "nm_plv", "ccorr", "accorr", "coh", "imcoh", "pli", "wpli", "envcorr", "powcorr"
]

#: Every measure :func:`connectivity` offers.
MEASURES: tuple[str, ...] = (
    "plv",
    "nm_plv",
    "ccorr",
    "accorr",
    "coh",
    "imcoh",
    "pli",
    "wpli",
    "envcorr",
    "powcorr",
)


def _unit(z: ComplexArray) -> ComplexArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return z / np.abs(z)


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


class _Pairs:
    """Zero-filled signals and the per-pair sample counts, shared by every measure."""

    def __init__(self, z: ComplexArray) -> None:
        self.valid = ~np.isnan(z.real) & ~np.isnan(z.imag)
        self.complete = bool(self.valid.all())
        self.z = z if self.complete else np.where(self.valid, z, 0.0)
        w = self.valid.astype(np.float64)
        self.w = w
        n_t = float(z.shape[1])
        self.n = np.full((z.shape[0],) * 2, n_t) if self.complete else w @ w.T

    def zero(self, a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """``a`` with unknown samples set to 0 (so they drop out of sums)."""
        return a if self.complete else np.where(self.valid, a, 0.0)

    def own_sums(self, a: FloatArray) -> FloatArray:
        """``[j, k] = Σ a_j`` over the samples that ``j`` and ``k`` share."""
        if self.complete:
            return np.broadcast_to(a.sum(axis=1)[:, np.newaxis], self.n.shape).copy()
        return a @ self.w.T

    def unit(self) -> ComplexArray:
        return self.zero(_unit(self.z))


def _plv(p: _Pairs, n: int = 1, m: int = 1) -> FloatArray:
    u = p.unit()
    a = u if n == 1 else p.zero(u**n)
    b = u if m == 1 else p.zero(u**m)
    return _ratio(np.abs(a @ b.conj().T), p.n)


def _coh(p: _Pairs, imaginary: bool) -> FloatArray:
    cross = p.z @ p.z.conj().T
    power = p.own_sums(np.abs(p.z) ** 2)
    num = np.abs(cross.imag) if imaginary else np.abs(cross)
    return _ratio(num, np.sqrt(power * power.T))


def _ccorr(p: _Pairs) -> FloatArray:
    u = p.unit()
    # circular mean of each participant over its own known samples (scipy's circmean)
    mean = np.angle(u.sum(axis=1))
    s = p.zero(np.sin(np.angle(p.z) - mean[:, np.newaxis]))
    sq = p.own_sums(s**2)
    return np.abs(_ratio(s @ s.T, np.sqrt(sq * sq.T)))


def _accorr(p: _Pairs) -> FloatArray:
    u = p.unit()
    diff = u @ u.conj().T  # Σ exp(i(θ_j − θ_k))
    total = u @ u.T  # Σ exp(i(θ_j + θ_k))
    num = np.abs(diff) - np.abs(total)
    mean_diff, mean_sum = np.angle(diff), np.angle(total)
    n_adj = -(mean_diff - mean_sum) / 2
    m_adj = mean_diff + n_adj
    # Σ sin²(θ_j − c) = (n − Re(exp(−2ic) Σ exp(2iθ_j))) / 2, over the shared samples
    doubled = (
        p.zero(u**2) @ p.w.T
        if not p.complete
        else np.broadcast_to((u**2).sum(axis=1)[:, np.newaxis], p.n.shape)
    )
    x = (p.n - (np.exp(-2j * m_adj) * doubled).real) / 2
    y = (p.n - (np.exp(-2j * n_adj) * doubled.T).real) / 2
    den = 2 * np.sqrt(np.clip(x, 0, None) * np.clip(y, 0, None))
    # hypyp: a zero denominator counts as 1 (the numerator is then 0 as well)
    return num / np.where(den == 0, 1.0, den)


def _lag_index(p: _Pairs, weighted: bool) -> FloatArray:
    c, s = p.z.real, p.z.imag
    size = p.z.shape[0]
    out = np.zeros((size, size))
    if weighted:
        signed = np.abs((p.z @ p.z.conj().T).imag)  # |Σ Im S| is bilinear: one product
    for j in range(size):
        im = s[j] * c[j:] - c[j] * s[j:]  # Im(z_j conj(z_k)) for k >= j, zero where unknown
        if weighted:
            den = np.abs(im).sum(axis=1)
            row = signed[j, j:] / np.where(den == 0, 1.0, den)
        else:
            row = np.abs(np.sign(im).sum(axis=1)) / p.n[j, j:]
        out[j, j:] = row
        out[j:, j] = row
    return out


def _amplitude_corr(p: _Pairs, power: bool) -> FloatArray:
    amp = np.abs(p.z) ** (2 if power else 1)
    count = p.valid.sum(axis=1)
    mean = _ratio(p.zero(amp).sum(axis=1), count.astype(np.float64))
    x = p.zero(amp - mean[:, np.newaxis])
    sxy = x @ x.T
    if p.complete:
        sxx = (x**2).sum(axis=1)
        return _ratio(sxy, np.sqrt(np.outer(sxx, sxx)))
    # pairwise over shared samples, from moments of the own-mean-centred values
    sx = p.own_sums(x)
    sxx2 = p.own_sums(x**2)
    n = p.n
    cov = sxy - _ratio(sx * sx.T, n)
    var_j = sxx2 - _ratio(sx**2, n)
    var_k = sxx2.T - _ratio(sx.T**2, n)
    return _ratio(cov, np.sqrt(var_j * var_k))


_COMPUTE: dict[str, Callable[[_Pairs], FloatArray]] = {
    "plv": _plv,
    "ccorr": _ccorr,
    "accorr": _accorr,
    "coh": lambda p: _coh(p, False),
    "imcoh": lambda p: _coh(p, True),
    "pli": lambda p: _lag_index(p, False),
    "wpli": lambda p: _lag_index(p, True),
    "envcorr": lambda p: _amplitude_corr(p, False),
    "powcorr": lambda p: _amplitude_corr(p, True),
}


def connectivity_matrix(
    z: ComplexArray, measure: str = "plv", *, n: int = 1, m: int = 1, min_samples: int = 2
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """The ``(sensors, sensors)`` matrix of one measure from analytic signals (numpy).

    Parameters
    ----------
    z
        ``(sensors, samples)`` complex analytic signals, NaN where unknown.
    measure
        One of :data:`MEASURES` (see the module docstring).
    n, m
        The ratio of ``"nm_plv"`` (``n·θ_j`` against ``m·θ_k``).
    min_samples
        Fewest shared samples for a pair's value (else NaN).

    Returns
    -------
    values, shared
        ``float64`` matrix and the ``int64`` count of samples each pair shares.
    """
    if measure not in MEASURES:
        raise invalid(f"measure must be one of {', '.join(MEASURES)}; got {measure!r}")
    if n < 1 or m < 1:
        raise invalid(f"n and m of nm_plv must be positive integers, got {n}:{m}")
    pairs = _Pairs(np.asarray(z, dtype=np.complex128))
    # a participant without data gives 0/0 = NaN, which is the answer we want
    with np.errstate(invalid="ignore", divide="ignore"):
        values = _plv(pairs, n, m) if measure == "nm_plv" else _COMPUTE[measure](pairs)
    values = np.where(pairs.n >= min_samples, values, np.nan)
    return values, np.rint(pairs.n).astype(np.int64)


def analytic_input(
    x: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    fs: float | None,
    band: Band | None,
    order: int | None,
    attribute: str | None,
    max_gap_s: float,
) -> tuple[ComplexArray, npt.NDArray[Any], dict[str, Any]]:
    """(analytic signals, sensors, attrs): complex input as given, real input band-passed.

    A complex DataArray ``(sensor, time)`` or complex array is used as it is (it
    is already analytic: from :func:`~sensocto_lab.sync.phase.phasors`, a wavelet,
    another band-pass); real signals go through
    :func:`~sensocto_lab.sync.phase.analytic_signal` with ``band`` and ``order``
    (as for :func:`~sensocto_lab.sync.phase.phases`).
    """
    if isinstance(x, xr.DataArray) and np.iscomplexobj(x.values):
        if x.dims != ("sensor", "time"):
            raise invalid(f"expected dims ('sensor', 'time'), got {x.dims}", "invalid_signal")
        how = f"given analytic signals; {x.attrs.get('method', '')}".rstrip("; ")
        return (
            np.asarray(x.values, dtype=np.complex128),
            np.asarray(x["sensor"].values),
            {**x.attrs, "method": how},
        )
    if not isinstance(x, xr.Dataset | xr.DataArray | Signals) and np.iscomplexobj(x):
        z = np.asarray(x, dtype=np.complex128)
        if z.ndim != 2:
            raise invalid(f"expected (sensors, samples), got shape {z.shape}", "invalid_signal")
        return z, np.arange(z.shape[0]), {"method": "given analytic signals"}
    sig = as_signals(x, fs, attribute=attribute, max_gap_s=max_gap_s)
    b, o, _, how = method_settings("hilbert", band, order, "respiration", None)
    return analytic_signal(sig.values, sig.fs, b, o), sig.sensors, {"fs": sig.fs, "method": how}


def connectivity(
    x: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    measure: Measure = "plv",
    *,
    fs: float | None = None,
    band: Band | None = None,
    order: int | None = None,
    n: int = 1,
    m: int = 1,
    attribute: str | None = None,
    max_gap_s: float = 0.0,
    min_samples: int = 2,
) -> xr.DataArray:
    """One connectivity measure for every pair of participants.

    Parameters
    ----------
    x
        Real signals (``store.history`` output, a DataArray ``(sensor, time)``, an
        array with ``fs``, :class:`Signals`), band-passed and made analytic inside;
        or complex analytic signals ``(sensor, time)``, used as given.
    measure
        ``"plv"``, ``"nm_plv"``, ``"ccorr"``, ``"accorr"``, ``"coh"``, ``"imcoh"``,
        ``"pli"``, ``"wpli"``, ``"envcorr"`` or ``"powcorr"`` (module docstring;
        values as hypyp's ``analyses.compute_sync``).
    fs, band, order, attribute, max_gap_s
        For real input, as for :func:`~sensocto_lab.sync.phase.phases`.
    n, m
        For ``"nm_plv"``: ``|mean exp(i(n·θ_j − m·θ_k))|``, locking ``m`` cycles of
        ``j`` to ``n`` of ``k`` (``n=4, m=1``: four heartbeats of ``k`` per cycle
        of ``j``... when ``j`` is slower).
    min_samples
        Fewest samples both participants have for a value (else NaN).

    Returns
    -------
    xarray.DataArray
        ``(sensor, sensor_2)`` matrix (dimensionless), coordinate ``n`` (shared
        samples); NaN rows and columns for participants without data (a dead
        sensor). ``attrs``: ``measure``, ``units``, ``method``, ``reference``.
    """
    z, sensors, attrs = analytic_input(x, fs, band, order, attribute, max_gap_s)
    values, shared = connectivity_matrix(z, measure, n=n, m=m, min_samples=min_samples)
    label = f"{measure} {n}:{m}" if measure == "nm_plv" else measure
    return xr.DataArray(
        values,
        dims=("sensor", "sensor_2"),
        coords={"sensor": sensors, "sensor_2": sensors, "n": (("sensor", "sensor_2"), shared)},
        name=measure,
        attrs={
            **attrs,
            "measure": label,
            "units": "1",
            "long_name": f"pairwise {label}",
            "method": f"{label} over samples both know; signals: {attrs.get('method', '')}",
            "reference": "hypyp.analyses.compute_sync conventions",
        },
    )
