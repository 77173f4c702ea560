"""Group synchrony: the Kuramoto order parameter and pairwise phase locking.

``R(t) = |mean_j exp(i·θ_j(t))|`` is 1 when everyone breathes in step and about
``1/√N`` (root mean square) for ``N`` independent participants; ``ψ(t)``, the
angle of the same mean, is the group's mean phase. The phase-locking value of a
pair, ``PLV_jk = |mean_t exp(i·(θ_j(t) − θ_k(t)))|``, says how constant their
phase difference is over the recording.

Means skip participants (or samples) whose phase is NaN; the count is returned so
a reader can see how many people each value rests on. Every function here takes
phases (radians) or unit phasors (complex, from
:func:`~sensocto_lab.sync.phase.phasors`): pass phasors to several of them and
``exp(i·θ)`` is computed once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.signal as ss
import xarray as xr

from sensocto_lab.physio.filters import Band, butter_sos, by_segments, invalid, min_len
from sensocto_lab.physio.grid import Signals, as_signals
from sensocto_lab.physio.peaks import PeakSettings
from sensocto_lab.sync._progress import progress_bar
from sensocto_lab.sync.phase import Method, analytic_of_filtered, method_settings, peak_phase

__all__ = [
    "order_parameter",
    "phase_locking",
    "phasor_input",
    "phasor_sum",
    "synchrony",
    "unit_phasors",
    "windowed_order_parameter",
]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]

#: Participants processed at once by :func:`synchrony` (bounds memory for large groups).
BLOCK_ROWS = 64


def unit_phasors(values: FloatArray | ComplexArray) -> ComplexArray:
    """``exp(i·θ)`` of phases (radians), or ``z / |z|`` of complex values; NaN stays NaN.

    Complex input of modulus 1 (from :func:`~sensocto_lab.sync.phase.phasors`) is
    returned as is, so passing phasors to several measures shares the work.
    """
    if np.iscomplexobj(values):
        z = np.asarray(values, dtype=np.complex128)
        modulus = np.abs(z)
        known = modulus[~np.isnan(modulus)]
        if known.size == 0 or np.allclose(known, 1.0, rtol=0, atol=1e-12):
            return z
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(modulus > 0, z / modulus, np.nan + 0j)
    theta = np.asarray(values, dtype=np.float64)
    out = np.empty(theta.shape, dtype=np.complex128)
    # cos and sin into the two halves: a little cheaper than exp(1j*theta)
    np.cos(theta, out=out.real)
    np.sin(theta, out=out.imag)
    return out


def phasor_sum(unit: ComplexArray) -> tuple[ComplexArray, npt.NDArray[np.int64]]:
    """Sum of unit phasors over participants (axis 0), skipping NaN.

    Parameters
    ----------
    unit
        ``(participants, samples)`` complex unit phasors ``exp(i·θ)``, NaN where unknown.

    Returns
    -------
    total, count
        ``(samples,)`` complex sum and ``int64`` number of participants in it.
    """
    valid = ~np.isnan(unit.real)
    if valid.all():
        return unit.sum(axis=0), np.full(unit.shape[1], unit.shape[0], dtype=np.int64)
    return np.where(valid, unit, 0).sum(axis=0), valid.sum(axis=0)


def _order_dataarray(
    total: ComplexArray,
    count: npt.NDArray[np.int64],
    time: npt.NDArray[Any],
    min_count: int,
    attrs: dict[str, Any],
) -> xr.DataArray:
    enough = count >= min_count
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(enough, np.abs(total) / count, np.nan)
    psi = np.where(enough, np.angle(total), np.nan)
    return xr.DataArray(
        r,
        dims=("time",),
        coords={"time": time, "psi": ("time", psi), "n": ("time", count)},
        name="R",
        # provenance (method, fs) carries over from the phases; what R is does not
        attrs={**attrs, "units": "1", "long_name": "Kuramoto order parameter"},
    )


def phasor_input(
    phases: xr.DataArray | npt.ArrayLike, fs: float | None
) -> tuple[ComplexArray, npt.NDArray[Any], npt.NDArray[Any], dict[str, Any]]:
    """(unit phasors, sensors, time, attrs) from phases or phasors, DataArray or array.

    Parameters
    ----------
    phases
        ``(sensor, time)`` radians, or complex unit phasors / analytic signals.
    fs
        Sampling rate of a plain array in Hz (sets the time axis in seconds).
    """
    if isinstance(phases, xr.DataArray):
        if phases.dims != ("sensor", "time"):
            raise invalid(
                f"phases must have dims ('sensor', 'time'), got {phases.dims}", "invalid_signal"
            )
        return (
            unit_phasors(phases.values),
            np.asarray(phases["sensor"].values),
            np.asarray(phases["time"].values),
            dict(phases.attrs),
        )
    values = np.asarray(phases)
    if values.ndim != 2:
        raise invalid(
            f"phases must be (participants, samples), got shape {values.shape}", "invalid_signal"
        )
    time = np.arange(values.shape[1]) / fs if fs else np.arange(values.shape[1])
    return unit_phasors(values), np.arange(values.shape[0]), time, {"fs": fs} if fs else {}


def order_parameter(
    phases: xr.DataArray | npt.ArrayLike, fs: float | None = None, *, min_count: int = 2
) -> xr.DataArray:
    """Kuramoto order parameter ``R(t)`` and mean phase ``ψ(t)`` from phases.

    Parameters
    ----------
    phases
        Output of :func:`~sensocto_lab.sync.phase.phases` or
        :func:`~sensocto_lab.sync.phase.phasors`, or a ``(participants, samples)``
        array of radians or phasors (NaN where unknown).
    fs
        Sampling rate in Hz for a plain array (sets the time coordinate in seconds).
    min_count
        Fewest participants with a known phase for ``R`` to be defined (else NaN).

    Returns
    -------
    xarray.DataArray
        ``R`` in ``[0, 1]``, dims ``("time",)``, with coordinates ``psi`` (mean
        phase, radians) and ``n`` (participants counted); ``attrs`` carry ``units``
        and ``method``.
    """
    unit, _, time, attrs = phasor_input(phases, fs)
    total, count = phasor_sum(unit)
    method = f"|mean exp(i*theta)| over participants; phases: {attrs.get('method', 'given')}"
    return _order_dataarray(total, count, time, min_count, {**attrs, "method": method})


def synchrony(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    fs: float | None = None,
    *,
    method: Method = "hilbert",
    band: Band | None = None,
    order: int | None = None,
    kind: str = "respiration",
    settings: PeakSettings | None = None,
    attribute: str | None = None,
    max_gap_s: float = 0.0,
    min_count: int = 2,
    progress: bool | None = None,
) -> xr.DataArray:
    """``R(t)`` straight from the signals (band-pass, Hilbert, order parameter).

    The same result as ``order_parameter(phases(data, ...))``, but for the Hilbert
    method it takes each participant's unit phasor as ``z / |z|`` of the analytic
    signal (no angle and exponential round trip) and works through participants
    in blocks of :data:`BLOCK_ROWS`, so memory stays bounded for large groups.

    Parameters
    ----------
    data, fs, method, band, order, kind, settings, attribute, max_gap_s
        As for :func:`~sensocto_lab.sync.phase.phases`.
    min_count
        As for :func:`order_parameter`.
    progress
        Show a tqdm bar over the blocks of participants; ``None``: only in a notebook.

    Returns
    -------
    xarray.DataArray
        As :func:`order_parameter`.
    """
    sig = as_signals(data, fs, attribute=attribute, max_gap_s=max_gap_s)
    b, o, s, how = method_settings(method, band, order, kind, settings)
    values = sig.values
    total = np.zeros(sig.n_samples, dtype=np.complex128)
    count = np.zeros(sig.n_samples, dtype=np.int64)
    if s is None:
        sos = butter_sos(float(sig.fs), b, o)
        shortest = min_len(sig.fs, b, sos)

        def unit_of(x: FloatArray) -> ComplexArray:
            z = analytic_of_filtered(ss.sosfiltfilt(sos, x, axis=-1))
            with np.errstate(invalid="ignore", divide="ignore"):
                z /= np.abs(z)
            return z

        with progress_bar(sig.n_participants, "participants", progress) as bar:
            for start in range(0, sig.n_participants, BLOCK_ROWS):
                block = values[start : start + BLOCK_ROWS]
                t, c = phasor_sum(by_segments(block, shortest, unit_of, np.complex128))
                total += t
                count += c
                bar.update(block.shape[0])
    else:
        t, c = phasor_sum(unit_phasors(peak_phase(values, sig.fs, kind, settings=s)))
        total += t
        count += c
    attrs = {"fs": sig.fs, "method": f"|mean exp(i*theta)| over participants; phases: {how}"}
    return _order_dataarray(total, count, sig.time(), min_count, attrs)


def windowed_order_parameter(
    r: xr.DataArray, window_s: float, step_s: float | None = None
) -> xr.DataArray:
    """Mean of ``R(t)`` over sliding windows.

    Parameters
    ----------
    r
        ``R(t)`` from :func:`order_parameter` or :func:`synchrony` (needs ``attrs["fs"]``).
    window_s
        Window length in seconds.
    step_s
        Distance between window starts in seconds (default: ``window_s``, disjoint windows).

    Returns
    -------
    xarray.DataArray
        Mean ``R`` per window, dims ``("time",)`` at the window centres; NaN where
        less than half of a window has a defined ``R``.
    """
    fs = r.attrs.get("fs")
    if not fs:
        raise invalid("R needs attrs['fs'] (use order_parameter(..., fs=) or synchrony())")
    width = round(window_s * fs)
    step = round((step_s if step_s is not None else window_s) * fs)
    if width < 1 or step < 1:
        raise invalid(f"window_s and step_s must be at least one sample (1/{fs:g} s)")
    values = np.asarray(r.values, dtype=np.float64)
    valid = ~np.isnan(values)
    csum = np.concatenate(([0.0], np.cumsum(np.where(valid, values, 0.0))))
    ccount = np.concatenate(([0], np.cumsum(valid)))
    starts = np.arange(0, values.size - width + 1, step)
    n = ccount[starts + width] - ccount[starts]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n * 2 >= width, (csum[starts + width] - csum[starts]) / n, np.nan)
    time = np.asarray(r["time"].values)[starts + width // 2]
    return xr.DataArray(
        mean,
        dims=("time",),
        coords={"time": time},
        name="R_windowed",
        attrs={
            **r.attrs,
            "long_name": "windowed Kuramoto order parameter",
            "method": f"mean of R(t) over {window_s:g} s windows; R: {r.attrs.get('method', '')}",
            "window_s": window_s,
        },
    )


def phase_locking(
    phases: xr.DataArray | npt.ArrayLike, fs: float | None = None, *, min_samples: int = 2
) -> xr.DataArray:
    """Pairwise phase-locking values of all participants.

    Parameters
    ----------
    phases
        Output of :func:`~sensocto_lab.sync.phase.phases` or
        :func:`~sensocto_lab.sync.phase.phasors`, or ``(participants, samples)``
        radians or phasors.
    fs
        Unused for the values; recorded in ``attrs`` for a plain array.
    min_samples
        Fewest samples where both phases are known for a pair's value (else NaN).

    Returns
    -------
    xarray.DataArray
        Symmetric ``PLV`` matrix in ``[0, 1]``, dims ``("sensor", "sensor_2")``,
        ones on the diagonal, with coordinate ``n``: the samples each pair shares.
        A participant without any known phase (a dead sensor) has a NaN row and
        column, as hypyp gives.
    """
    unit, sensors, _, attrs = phasor_input(phases, fs)
    valid = ~np.isnan(unit.real)
    if valid.all():  # the common case: no masks, one product
        both = np.full((unit.shape[0],) * 2, float(unit.shape[1]))
    else:
        unit = np.where(valid, unit, 0.0)
        weights = valid.astype(np.float64)
        both = weights @ weights.T
    with np.errstate(invalid="ignore", divide="ignore"):
        plv = np.where(both >= min_samples, np.abs(unit @ unit.conj().T) / both, np.nan)
    return xr.DataArray(
        plv,
        dims=("sensor", "sensor_2"),
        coords={
            "sensor": sensors,
            "sensor_2": sensors,
            "n": (("sensor", "sensor_2"), np.rint(both).astype(np.int64)),
        },
        name="PLV",
        attrs={
            **attrs,
            "units": "1",
            "long_name": "phase-locking value",
            "method": "|mean_t exp(i*(theta_j - theta_k))| over samples where both are known; "
            f"phases: {attrs.get('method', 'given')}",
        },
    )
