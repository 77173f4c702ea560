"""Nulls for any measure: shift, phase-randomised and window-shuffled surrogates, pseudo-pairs.

:func:`surrogate_test` (module ``surrogates``) tests ``R`` and ``PLV`` on phases;
here any function of the signals is tested, e.g. cluster-phase ``ρ`` or the mean
windowed cross-correlation of a dyad's heart rates:

- :func:`null_test` keeps each person's own signal and breaks their relation
  within one session: ``"shift"`` (a random circular shift per person),
  ``"fourier"`` (each person's Fourier phases randomised: same power spectrum) or
  ``"window"`` (each person's windows shuffled in time, as multiSyncPy's
  ``shuffle_time_windows``; the remainder after the last whole window stays put).
- :func:`pseudo_pair_test` pairs people who were never in the same session (the
  standard null of physiological-synchrony studies, Moulder et al. 2018): each
  pseudo-group takes each member from a different session. multiSyncPy's
  ``shuffle_recordings`` shuffles signals across recordings without that
  constraint, so two members of one real session can meet again; ours never lets
  them.

Choose the null for the measure: a group locked at one common frequency stays
locked, at other phase differences, after a circular shift or a phase
randomisation, so measures of a *constant* phase difference (cluster-phase ``ρ``,
PLV) barely move under those nulls; window shuffles and pseudo-pairs break the
locking itself (tests/sync show both). Kuramoto ``R`` (in-phase alignment) is
tested well by shifts.

The p-value is ``(1 + #(null ≥ observed)) / (1 + n_surrogates)`` (``"greater"``;
``"less"`` counts ``≤``): never 0, exact under the null.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.physio.filters import invalid
from sensocto_lab.sync._progress import progress_bar

__all__ = ["null_test", "p_value", "pseudo_groups", "pseudo_pair_test", "window_shuffle"]

FloatArray = npt.NDArray[np.float64]
Measure = Callable[[FloatArray], "float | npt.ArrayLike"]
Null = Literal["shift", "fourier", "window"]
Alternative = Literal["greater", "less"]


def p_value(
    observed: npt.ArrayLike, null: npt.ArrayLike, alternative: Alternative = "greater"
) -> FloatArray:
    """``(1 + #(null ≥ observed)) / (1 + n)`` along the null's first axis (``≤`` for "less")."""
    obs, nul = np.asarray(observed, float), np.asarray(null, float)
    hits = (nul >= obs) if alternative == "greater" else (nul <= obs)
    return np.asarray((1 + hits.sum(axis=0)) / (1 + nul.shape[0]))


def window_shuffle(x: FloatArray, window: int, rng: np.random.Generator) -> FloatArray:
    """Each row's whole windows of ``window`` samples in a random order of its own.

    Parameters
    ----------
    x
        ``(rows, samples)``.
    window
        Window length in samples; the ``samples % window`` samples at the end stay.
    rng
        Random generator.
    """
    n_win = x.shape[1] // window
    if n_win < 2:
        raise invalid(f"a window shuffle needs at least two windows of {window} samples")
    out = x.copy()
    blocks = x[:, : n_win * window].reshape(x.shape[0], n_win, window)
    order = np.argsort(rng.random((x.shape[0], n_win)), axis=1)
    out[:, : n_win * window] = np.take_along_axis(blocks, order[:, :, None], axis=1).reshape(
        x.shape[0], -1
    )
    return out


def _shift(x: FloatArray, rng: np.random.Generator, min_shift: int) -> FloatArray:
    n = x.shape[1]
    shifts = rng.integers(min_shift, n - min_shift, size=x.shape[0], endpoint=True)
    index = (np.arange(n) + shifts[:, None]) % n
    return np.take_along_axis(x, index, axis=1)


def _fourier(x: FloatArray, rng: np.random.Generator) -> FloatArray:
    n = x.shape[1]
    spectrum = np.fft.rfft(x, axis=1)
    angles = rng.uniform(0, 2 * np.pi, spectrum.shape)
    angles[:, 0] = 0.0
    if n % 2 == 0:
        angles[:, -1] = 0.0
    return np.fft.irfft(spectrum * np.exp(1j * angles), n=n, axis=1)


def _signals(data: xr.DataArray | npt.ArrayLike) -> FloatArray:
    x = np.asarray(data.values if isinstance(data, xr.DataArray) else data, dtype=np.float64)
    if x.ndim != 2:
        raise invalid(f"expected (sensors, samples), got shape {x.shape}", "invalid_signal")
    return x


def _result(
    observed: npt.ArrayLike, null: FloatArray, alternative: Alternative, attrs: dict[str, object]
) -> xr.Dataset:
    obs = np.asarray(observed, dtype=np.float64)
    extra = tuple(f"dim_{k}" for k in range(obs.ndim))
    return xr.Dataset(
        {
            "observed": (extra, obs),
            "null": (("surrogate", *extra), null),
            "p_value": (extra, p_value(obs, null, alternative)),
        },
        attrs={**attrs, "alternative": alternative, "p_value": "(1 + #hits) / (1 + n)"},
    )


def null_test(
    measure: Measure,
    data: xr.DataArray | npt.ArrayLike,
    *,
    surrogate: Null = "shift",
    n_surrogates: int = 199,
    seed: int | np.random.Generator | None = None,
    window: int | None = None,
    min_shift: int | None = None,
    alternative: Alternative = "greater",
    progress: bool | None = None,
) -> xr.Dataset:
    """Test any measure of a group's signals against surrogates of one session.

    Parameters
    ----------
    measure
        Function of a ``(sensors, samples)`` array returning a number or an array
        (e.g. ``lambda x: sync.cluster_phase(sync.phases(x, fs))["rho"].item()``).
    data
        ``(sensor, time)`` signals (DataArray or array; a NaN-free grid for
        ``"fourier"``).
    surrogate
        ``"shift"``, ``"fourier"`` or ``"window"`` (module docstring).
    n_surrogates
        How many surrogates (199: p-values in steps of 0.005).
    seed
        Seed or generator.
    window
        ``"window"``: window length in samples (required).
    min_shift
        ``"shift"``: smallest shift in samples (default a tenth of the recording).
    alternative
        ``"greater"`` (synchrony above chance) or ``"less"``.
    progress
        tqdm bar over the surrogates (``None``: only in a notebook).

    Returns
    -------
    xarray.Dataset
        ``observed``, ``null`` (dim ``surrogate`` first) and ``p_value``.
    """
    x = _signals(data)
    if n_surrogates < 1:
        raise invalid(f"n_surrogates must be >= 1, got {n_surrogates}")
    rng = np.random.default_rng(seed)
    make: Callable[[], FloatArray]
    if surrogate == "shift":
        shortest = min_shift if min_shift is not None else x.shape[1] // 10
        if x.shape[1] - 2 * shortest < 1:
            raise invalid("the recording is too short for shifts of min_shift samples")
        make = lambda: _shift(x, rng, shortest)  # noqa: E731
    elif surrogate == "fourier":
        if np.isnan(x).any():
            raise invalid("phase-randomised surrogates need gap-free signals")
        make = lambda: _fourier(x, rng)  # noqa: E731
    elif surrogate == "window":
        if not window:
            raise invalid("surrogate='window' needs window= (samples)")
        make = lambda: window_shuffle(x, int(window), rng)  # noqa: E731
    else:
        raise invalid(f"surrogate must be 'shift', 'fourier' or 'window', got {surrogate!r}")
    observed = np.asarray(measure(x), dtype=np.float64)
    null = np.empty((n_surrogates, *observed.shape))
    with progress_bar(n_surrogates, f"{surrogate} surrogates", progress) as bar:
        for k in range(n_surrogates):
            null[k] = np.asarray(measure(make()), dtype=np.float64)
            bar.update(1)
    return _result(
        observed, null, alternative, {"surrogate": surrogate, "n_surrogates": n_surrogates}
    )


def pseudo_groups(
    sessions: Sequence[FloatArray], size: int, rng: np.random.Generator
) -> list[FloatArray]:
    """As many pseudo-groups as sessions, each of ``size`` people from ``size`` sessions.

    Each group draws its sessions at random without replacement and one random
    member of each; members are cut to the shortest recording among them.
    """
    if size > len(sessions):
        raise invalid(f"pseudo-groups of {size} need at least {size} sessions, got {len(sessions)}")
    groups = []
    for _ in range(len(sessions)):
        picked = rng.choice(len(sessions), size=size, replace=False)
        rows = [sessions[s][rng.integers(sessions[s].shape[0])] for s in picked]
        length = min(r.size for r in rows)
        groups.append(np.stack([r[:length] for r in rows]))
    return groups


def pseudo_pair_test(
    measure: Measure,
    sessions: Sequence[xr.DataArray | npt.ArrayLike],
    *,
    n_surrogates: int = 199,
    size: int | None = None,
    seed: int | np.random.Generator | None = None,
    alternative: Alternative = "greater",
    progress: bool | None = None,
) -> xr.Dataset:
    """Test a measure of real sessions against pseudo-pairs (people who never met).

    Parameters
    ----------
    measure
        Function of a ``(members, samples)`` array returning a number (or array).
    sessions
        Each real session's signals ``(members, time)`` (dyads: two rows), on
        comparable grids (the same rate); lengths may differ.
    n_surrogates
        Replicates of the null; each is the mean of the measure over as many
        pseudo-groups as there are sessions, so it is comparable with the observed
        mean over the real sessions.
    size
        Members per pseudo-group (default: the first session's).
    seed, alternative, progress
        As for :func:`null_test`.

    Returns
    -------
    xarray.Dataset
        ``observed`` (mean over the real sessions), ``per_session`` (dim
        ``session``), ``null`` and ``p_value``.

    References
    ----------
    Moulder, Boker, Ramseyer & Tschacher (2018), Determining synchrony between
    behavioral time series: an application of surrogate data generation for
    establishing falsifiable null-hypotheses. *Psychological Methods* 23:757.
    """
    arrays = [_signals(s) for s in sessions]
    if len(arrays) < 2:
        raise invalid("pseudo-pairs need at least two sessions")
    k = size or arrays[0].shape[0]
    rng = np.random.default_rng(seed)
    per_session = np.stack([np.asarray(measure(a), dtype=np.float64) for a in arrays])
    observed = per_session.mean(axis=0)
    null = np.empty((n_surrogates, *observed.shape))
    with progress_bar(n_surrogates, "pseudo-pairs", progress) as bar:
        for j in range(n_surrogates):
            values = [
                np.asarray(measure(g), dtype=np.float64) for g in pseudo_groups(arrays, k, rng)
            ]
            null[j] = np.mean(values, axis=0)
            bar.update(1)
    out = _result(
        observed,
        null,
        alternative,
        {"surrogate": "pseudo-pairs", "n_surrogates": n_surrogates, "group_size": k},
    )
    extra = tuple(f"dim_{d}" for d in range(observed.ndim))
    return out.assign(per_session=(("session", *extra), per_session))
