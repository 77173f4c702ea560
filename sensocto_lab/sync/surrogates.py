"""Is the group more in step than chance? Significance against surrogate data.

A surrogate keeps what each participant does on their own and destroys how they
relate to each other:

- ``"shift"``: each participant's phase series is rotated in time by its own random
  circular shift (at least ``min_shift_s``), keeping its full dynamics.
- ``"fourier"``: each participant's band-passed signal gets random Fourier phases
  (its own, per frequency), keeping its power spectrum; the phase is then taken
  from the surrogate's analytic signal.

The p-value is ``(1 + #(surrogate statistic >= observed)) / (1 + n_surrogates)``,
which is never 0 and is exact under the null. Note that a pair locked at a common
frequency stays locked (at another phase difference) after a circular shift, so
for pairwise PLV in a strongly coupled group the ``"fourier"`` surrogate is the
sharper test. Surrogates are generated in
vectorised chunks; a progress bar (tqdm) shows by default inside a notebook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.fft as sfft
import xarray as xr

from sensocto_lab.physio.filters import Band, bandpass, invalid
from sensocto_lab.physio.grid import Signals, as_signals
from sensocto_lab.physio.peaks import PeakSettings
from sensocto_lab.sync._progress import progress_bar
from sensocto_lab.sync.phase import Method, analytic_signal, method_settings, peak_phase

__all__ = ["fourier_surrogates", "shift_surrogates", "surrogate_test"]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
Statistic = Literal["R", "PLV"]
Surrogate = Literal["shift", "fourier"]

#: Complex values held per chunk of surrogates (about 64 MB).
CHUNK_ELEMENTS = 4_000_000


def shift_surrogates(unit: ComplexArray, shifts: npt.NDArray[np.int64]) -> ComplexArray:
    """Rotate each participant's series by its own circular shift.

    Parameters
    ----------
    unit
        ``(participants, samples)`` phasors (or any series).
    shifts
        ``(surrogates, participants)`` shifts in samples.

    Returns
    -------
    numpy.ndarray
        ``(surrogates, participants, samples)``.
    """
    n_time = unit.shape[-1]
    index = (np.arange(n_time) + shifts[..., np.newaxis]) % n_time
    return unit[np.arange(unit.shape[0])[:, np.newaxis], index]


def fourier_surrogates(
    spectrum: ComplexArray, n_time: int, rng: np.random.Generator, count: int
) -> ComplexArray:
    """Analytic signals of phase-randomised surrogates of real signals.

    Parameters
    ----------
    spectrum
        ``rfft`` of the real signals along the last axis, ``(participants, n_time//2 + 1)``.
    n_time
        Length of the signals.
    rng
        Source of the random phases (independent per participant and frequency).
    count
        Surrogates to make.

    Returns
    -------
    numpy.ndarray
        ``(count, participants, n_time)`` complex analytic signals whose real parts
        have the original power spectra.
    """
    n_freq = spectrum.shape[-1]
    angles = rng.uniform(0.0, 2 * np.pi, size=(count, *spectrum.shape))
    angles[..., 0] = 0.0
    if n_time % 2 == 0:
        angles[..., n_freq - 1] = 0.0
    full = np.zeros((count, spectrum.shape[0], n_time), dtype=np.complex128)
    half = (n_time + 1) // 2
    rotated = spectrum * np.exp(1j * angles)
    full[..., 0] = rotated[..., 0]
    full[..., 1:half] = 2.0 * rotated[..., 1:half]
    if n_time % 2 == 0:
        full[..., n_time // 2] = rotated[..., n_time // 2]
    return sfft.ifft(full, axis=-1, overwrite_x=True)


def _mean_r(unit: ComplexArray, min_count: int) -> FloatArray:
    """Time-mean of ``R(t)`` per leading index; ``unit`` is ``(..., participants, samples)``."""
    valid = ~np.isnan(unit.real)
    total = np.where(valid, unit, 0).sum(axis=-2)
    count = valid.sum(axis=-2)
    enough = count >= min_count
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(enough, np.abs(total) / count, 0.0)
    return r.sum(axis=-1) / np.maximum(enough.sum(axis=-1), 1)


def _plv(unit: ComplexArray, min_count: int) -> FloatArray:
    """PLV matrices for each leading index; ``unit`` is ``(..., participants, samples)``."""
    valid = ~np.isnan(unit.real)
    z = np.where(valid, unit, 0)
    w = valid.astype(np.float64)
    both = w @ np.swapaxes(w, -1, -2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(both >= min_count, np.abs(z @ np.swapaxes(z.conj(), -1, -2)) / both, np.nan)


def surrogate_test(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    fs: float | None = None,
    *,
    statistic: Statistic = "R",
    surrogate: Surrogate = "shift",
    n_surrogates: int = 199,
    seed: int | np.random.Generator | None = None,
    progress: bool | None = None,
    method: Method = "hilbert",
    band: Band | None = None,
    order: int | None = None,
    kind: str = "respiration",
    settings: PeakSettings | None = None,
    attribute: str | None = None,
    max_gap_s: float = 0.0,
    min_shift_s: float | None = None,
    min_count: int = 2,
) -> xr.Dataset:
    """Test group synchrony against surrogates.

    Parameters
    ----------
    data, fs, method, band, order, kind, settings, attribute, max_gap_s
        As for :func:`~sensocto_lab.sync.phase.phases`.
    statistic
        ``"R"``: the time-mean of the order parameter ``R(t)``; ``"PLV"``: every
        pair's phase-locking value (one p-value per pair).
    surrogate
        ``"shift"`` (circular time shift) or ``"fourier"`` (phase randomised;
        needs ``method="hilbert"``).
    n_surrogates
        How many surrogates (199 gives p-values in steps of 0.005).
    seed
        Seed or generator, for a reproducible test.
    progress
        Show a tqdm progress bar; ``None`` shows one only inside a Jupyter kernel.
    min_shift_s
        Smallest circular shift in seconds (default: one period of ``band[0]``,
        so a surrogate is not just the original nudged).
    min_count
        Fewest participants (``R``) or shared samples (``PLV``) for a value.

    Returns
    -------
    xarray.Dataset
        ``observed``, ``null`` (dim ``"surrogate"`` first) and ``p_value``; for
        ``"PLV"`` each has dims ``("sensor", "sensor_2")``. ``attrs`` say which
        statistic, surrogate, how many and the phase method.

    Raises
    ------
    ValidationError
        Unknown statistic or surrogate, ``n_surrogates < 1``, a recording too short
        for the shift, or ``"fourier"`` with event phases.
    """
    if statistic not in ("R", "PLV"):
        raise invalid(f"statistic must be 'R' or 'PLV', got {statistic!r}")
    if surrogate not in ("shift", "fourier"):
        raise invalid(f"surrogate must be 'shift' or 'fourier', got {surrogate!r}")
    if n_surrogates < 1:
        raise invalid(f"n_surrogates must be >= 1, got {n_surrogates}")
    if surrogate == "fourier" and method != "hilbert":
        raise invalid("phase-randomised surrogates need method='hilbert'")
    sig = as_signals(data, fs, attribute=attribute, max_gap_s=max_gap_s)
    band, order, peak_set, how = method_settings(method, band, order, kind, settings)
    rng = np.random.default_rng(seed)
    n_people, n_time = sig.values.shape
    if peak_set is None:
        z = analytic_signal(sig.values, sig.fs, band, order)
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = z / np.abs(z)
    else:
        unit = np.exp(1j * peak_phase(sig.values, sig.fs, kind, settings=peak_set))

    stat: Callable[[ComplexArray, int], FloatArray] = _mean_r if statistic == "R" else _plv
    observed = stat(unit, min_count)

    make: Callable[[int], ComplexArray]
    if surrogate == "shift":
        min_shift = int(np.ceil((min_shift_s if min_shift_s is not None else 1 / band[0]) * sig.fs))
        if n_time - 2 * min_shift < 1:
            raise invalid(
                f"{n_time / sig.fs:g} s is too short for circular shifts of at least "
                f"{min_shift / sig.fs:g} s; pass a smaller min_shift_s",
                "recording_too_short",
            )

        def make(count: int) -> ComplexArray:
            shifts = rng.integers(
                min_shift, n_time - min_shift, size=(count, n_people), endpoint=True
            )
            return shift_surrogates(unit, shifts)

    else:
        filtered = bandpass(sig.values, sig.fs, band, order)
        mask = np.isnan(unit.real)
        spectrum = sfft.rfft(np.nan_to_num(filtered), axis=-1)

        def make(count: int) -> ComplexArray:
            zs = fourier_surrogates(spectrum, n_time, rng, count)
            with np.errstate(invalid="ignore", divide="ignore"):
                zs /= np.abs(zs)
            zs[:, mask] = np.nan
            return zs

    chunk = max(1, min(n_surrogates, CHUNK_ELEMENTS // max(1, n_people * n_time)))
    null = np.empty((n_surrogates, *np.shape(observed)))
    with progress_bar(n_surrogates, f"{surrogate} surrogates", progress) as bar:
        for start in range(0, n_surrogates, chunk):
            count = min(chunk, n_surrogates - start)
            null[start : start + count] = stat(make(count), min_count)
            bar.update(count)
    p_value = (1 + (null >= observed).sum(axis=0)) / (1 + n_surrogates)

    attrs = {
        "statistic": statistic,
        "surrogate": surrogate,
        "n_surrogates": n_surrogates,
        "method": f"{statistic} against {n_surrogates} {surrogate} surrogates; phases: {how}",
        "p_value": "(1 + #(null >= observed)) / (1 + n_surrogates)",
        "fs": sig.fs,
    }
    if statistic == "R":
        return xr.Dataset(
            {
                "observed": ((), float(observed)),
                "null": (("surrogate",), null),
                "p_value": ((), float(p_value)),
            },
            attrs={**attrs, "units": "1"},
        )
    pair = ("sensor", "sensor_2")
    return xr.Dataset(
        {
            "observed": (pair, observed),
            "null": (("surrogate", *pair), null),
            # A participant with themselves is trivially locked: no test, no p-value.
            "p_value": (
                pair,
                np.where(np.eye(n_people, dtype=bool) | np.isnan(observed), np.nan, p_value),
            ),
        },
        coords={"sensor": sig.sensors, "sensor_2": sig.sensors},
        attrs={**attrs, "units": "1"},
    )
