"""Signal basics shared by physiology and synchrony: band-pass filters, gap runs, flat runs.

Pure numpy/scipy. Every analysis of ``sensocto_lab.physio`` and ``sensocto_lab.sync``
filters gap by gap through :func:`by_segments`: a gap (NaN) is never filtered across,
runs shorter than one period of the slowest rhythm in the band stay NaN, and so
does a run that is flat (a dead or stuck sensor: all samples equal), because a
flat run has no rhythm and its "phase" would be round-off (see docs/architecture.md,
Synchrony section).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.signal as ss

from sensocto_lab.errors import ValidationError

__all__ = [
    "FLAT_TOLERANCE",
    "RESPIRATION_BAND",
    "Band",
    "bandpass",
    "butter_sos",
    "by_segments",
    "flat_rows",
    "invalid",
    "min_len",
    "runs",
]

FloatArray = npt.NDArray[np.float64]
Band = tuple[float, float]

#: Default pass band for breathing, in Hz (6–36 breaths per minute).
RESPIRATION_BAND: Band = (0.1, 0.6)

#: A run whose peak-to-peak range is at most this fraction of its largest magnitude is flat.
FLAT_TOLERANCE = 1e-10

#: The upper band edge is clipped to this fraction of Nyquist (Butterworth design needs < 1).
NYQUIST_FRACTION = 0.95


def invalid(detail: str, reason: str = "invalid_parameter") -> ValidationError:
    """The one way physio and sync report a bad argument or signal (the caller's fault)."""
    return ValidationError(detail, reason=reason)


@lru_cache(maxsize=64)
def butter_sos(fs: float, band: Band, order: int) -> FloatArray:
    """Second-order sections of a Butterworth band-pass (``order`` per edge).

    Parameters
    ----------
    fs
        Sampling rate in Hz.
    band
        ``(low, high)`` pass band in Hz; ``high`` is clipped to 0.95 × Nyquist.
    order
        Butterworth order per edge.

    Returns
    -------
    numpy.ndarray
        ``(sections, 6)`` SOS for :func:`scipy.signal.sosfiltfilt`.

    Raises
    ------
    ValidationError
        A band that is not ``0 < low < high``, lies above Nyquist, or whose clipped
        upper edge falls to or below ``low`` (the ECG band 5–30 Hz at fs = 10.2 Hz:
        0.95 × 5.1 Hz = 4.85 Hz), or an order below 1.
    """
    low, high = band
    nyquist = fs / 2.0
    if not (0 < low < high):
        raise invalid(f"band must be (low, high) with 0 < low < high Hz, got {band!r}")
    if low >= nyquist:
        raise invalid(f"band {band!r} Hz lies above the Nyquist frequency {nyquist:g} Hz")
    if order < 1:
        raise invalid(f"filter order must be >= 1, got {order}")
    high = min(high, NYQUIST_FRACTION * nyquist)
    if high <= low:
        raise invalid(
            f"band {band!r} Hz: its upper edge, clipped to {NYQUIST_FRACTION:g} x Nyquist "
            f"= {high:g} Hz, is not above the lower edge at fs = {fs:g} Hz; lower the band "
            "or sample faster"
        )
    try:
        return np.asarray(ss.butter(order, [low, high], btype="band", fs=fs, output="sos"))
    except ValueError as exc:  # any other design failure is still the caller's band
        raise invalid(f"cannot design a {band!r} Hz band-pass at fs = {fs:g} Hz: {exc}") from None


def min_len(fs: float, band: Band, sos: FloatArray) -> int:
    """Shortest run (samples) worth filtering: one period of ``band[0]`` and more than
    ``sosfiltfilt``'s default padding."""
    return max(int(np.ceil(fs / band[0])), 3 * (2 * sos.shape[0] + 1) + 1)


def runs(valid: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the True runs of a 1-D mask (stop exclusive)."""
    edges = np.diff(np.concatenate(([0], valid.view(np.int8), [0])))
    return list(
        zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True)
    )


def flat_rows(values: FloatArray) -> npt.NDArray[np.bool_]:
    """Rows of a NaN-free ``(rows, samples)`` block whose samples are all (nearly) equal.

    A row is flat when its peak-to-peak range is at most :data:`FLAT_TOLERANCE` times
    its largest magnitude (an all-zero row, a constant non-zero row).
    """
    if values.shape[-1] == 0:
        return np.ones(values.shape[:-1], dtype=bool)
    ptp = np.ptp(values, axis=-1)
    return ptp <= FLAT_TOLERANCE * np.abs(values).max(axis=-1)


def by_segments(
    values: FloatArray,
    shortest: int,
    block: Callable[[FloatArray], npt.NDArray[Any]],
    dtype: type,
) -> npt.NDArray[Any]:
    """Apply ``block`` (2-D in, same shape out, along the last axis) gap by gap.

    Rows without NaN go through one vectorised call; rows with gaps are processed
    one contiguous run at a time. Runs shorter than ``shortest`` samples and flat
    runs (:func:`flat_rows`) stay NaN.

    Parameters
    ----------
    values
        ``(rows, samples)``, NaN marks gaps.
    shortest
        Fewest samples in a run for it to be processed.
    block
        The vectorised operation.
    dtype
        dtype of the result (``float64`` or ``complex128``).
    """
    valid = ~np.isnan(values)
    full = valid.all(axis=1)
    out: npt.NDArray[Any] = np.full(values.shape, np.nan, dtype=dtype)
    if values.shape[1] >= shortest and full.any():
        rows = np.flatnonzero(full)
        rows = rows[~flat_rows(values[rows])]
        if rows.size == values.shape[0]:
            return block(values)
        if rows.size:
            out[rows] = block(values[rows])
    for i in np.flatnonzero(~full):
        for a, b in runs(valid[i]):
            if b - a >= shortest and not flat_rows(values[i, a:b])[()]:
                out[i, a:b] = block(values[i : i + 1, a:b])[0]
    return out


def bandpass(
    values: FloatArray, fs: float, band: Band = RESPIRATION_BAND, order: int = 2
) -> FloatArray:
    """Zero-phase Butterworth band-pass of each row, gap by gap.

    Parameters
    ----------
    values
        ``(rows, samples)``, NaN marks gaps.
    fs
        Sampling rate in Hz.
    band
        Pass band ``(low, high)`` in Hz.
    order
        Butterworth order per edge; ``sosfiltfilt`` doubles the effective order and
        cancels the phase shift.

    Returns
    -------
    numpy.ndarray
        Filtered values, same shape; NaN in gaps, in runs shorter than one period of
        ``band[0]`` and in flat runs.
    """
    sos = butter_sos(float(fs), (float(band[0]), float(band[1])), order)
    return by_segments(
        values, min_len(fs, band, sos), lambda x: ss.sosfiltfilt(sos, x, axis=-1), np.float64
    )
