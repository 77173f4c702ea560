"""Spectral synchrony of every pair: Welch coherence and sum-normalised CSD, one pass.

multiSyncPy's ``coherence_team`` is the mean over pairs of the frequency-mean of
:func:`scipy.signal.coherence`; its ``sum_normalized_csd`` is, per pair,
``Σ_f |P_xy(f)|² / Σ_f P_xx(f) P_yy(f)`` (less moved by white noise), averaged
over pairs. Both call scipy's Welch estimator twice per pair. Here every signal's
windowed segments are Fourier-transformed once (Hann window, half overlap,
constant detrend, one-sided: scipy's defaults), and all cross-spectra come from
one product over segments, so the group's ``N²`` spectra cost about as much as
``N`` of scipy's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.signal as ss
import xarray as xr

from sensocto_lab.physio.filters import invalid

__all__ = ["cross_spectra", "spectral_synchrony"]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]


def _default_nperseg(n: int) -> int:
    # multiSyncPy's rule: scipy's 256, but a quarter of short recordings
    return n // 4 if n // 256 < 4 else 256


def cross_spectra(
    x: FloatArray, fs: float = 1.0, nperseg: int | None = None
) -> tuple[FloatArray, ComplexArray]:
    """Welch cross-spectral densities of every pair, as :func:`scipy.signal.csd`.

    Parameters
    ----------
    x
        ``(sensors, samples)`` real, NaN-free.
    fs
        Sampling rate in Hz.
    nperseg
        Segment length (default: 256, or a quarter of a recording shorter than 1024).

    Returns
    -------
    freqs, csd
        ``(freqs,)`` in Hz and ``(sensors, sensors, freqs)`` complex densities
        (units²/Hz); ``csd[j, k]`` equals ``scipy.signal.csd(x[j], x[k])[1]``.
    """
    n = x.shape[1]
    seg = nperseg or _default_nperseg(n)
    if not 2 <= seg <= n:
        raise invalid(f"nperseg must be between 2 and {n}, got {seg}")
    step = seg - seg // 2
    window = ss.get_window("hann", seg)
    starts = np.arange(0, n - seg + 1, step)
    segments = np.lib.stride_tricks.sliding_window_view(x, seg, axis=1)[:, starts]
    segments = segments - segments.mean(axis=-1, keepdims=True)
    spectra = np.fft.rfft(segments * window, axis=-1)  # (sensors, segments, freqs)
    scale = 1.0 / (fs * (window**2).sum())
    by_freq = np.ascontiguousarray(spectra.transpose(2, 0, 1))  # (freqs, sensors, segments)
    # all pairs' mean cross-periodograms in one batched product: (freqs, sensors, sensors)
    product = by_freq @ by_freq.conj().transpose(0, 2, 1)
    csd = product.transpose(1, 2, 0) * (scale / starts.size)
    # one-sided: double every bin but DC (and Nyquist for even lengths), as scipy does
    csd[..., 1 : (seg + 1) // 2] *= 2
    return np.asarray(np.fft.rfftfreq(seg, 1 / fs), dtype=np.float64), np.asarray(
        csd, np.complex128
    )


def spectral_synchrony(
    signals: xr.DataArray | npt.ArrayLike,
    fs: float | None = None,
    *,
    nperseg: int | None = None,
) -> xr.Dataset:
    """Welch coherence and sum-normalised CSD of every pair, and their group means.

    Parameters
    ----------
    signals
        ``(sensor, time)`` raw signals, NaN-free (DataArray with ``attrs["fs"]`` or
        a ``time`` in seconds, or an array with ``fs``).
    fs
        Sampling rate in Hz (scales the frequency axis only; the values do not
        depend on it).
    nperseg
        Welch segment length in samples (multiSyncPy's default rule).

    Returns
    -------
    xarray.Dataset
        ``coherence`` and ``csd`` ``(sensor, sensor_2)``: each pair's mean
        magnitude-squared coherence over frequencies and its sum-normalised CSD;
        ``coherence_group`` and ``csd_group``: their means over pairs ``j < k``
        (multiSyncPy ``coherence_team``, ``sum_normalized_csd``); ``spectrum``
        ``(sensor, sensor_2, freq)``: the coherence by frequency.

    References
    ----------
    Reinero, Dikker & Van Bavel (2021) *Soc. Cogn. Affect. Neurosci.* 16:43
    (team coherence); multiSyncPy ``coherence_team``, ``sum_normalized_csd``;
    :func:`scipy.signal.coherence`, :func:`scipy.signal.csd`.
    """
    sensors: npt.NDArray[Any]
    if isinstance(signals, xr.DataArray):
        x = np.asarray(signals.values, dtype=np.float64)
        sensors = (
            np.asarray(signals["sensor"].values)
            if "sensor" in signals.coords
            else np.arange(len(x))
        )
        fs = fs or signals.attrs.get("fs") or 1.0
    else:
        x = np.asarray(signals, dtype=np.float64)
        sensors = np.arange(x.shape[0]) if x.ndim == 2 else np.arange(0)
    if x.ndim != 2 or x.shape[0] < 2:
        raise invalid(f"expected (sensors >= 2, samples), got shape {x.shape}", "invalid_signal")
    if np.isnan(x).any():
        raise invalid("spectral synchrony needs gap-free signals", "invalid_signal")
    seg = nperseg or _default_nperseg(x.shape[1])
    freqs, csd = cross_spectra(x, float(fs or 1.0), seg)
    power = np.real(np.einsum("iif->if", csd))
    pp = power[:, None, :] * power[None, :, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        spectrum = np.abs(csd) ** 2 / pp
        normalised = (np.abs(csd) ** 2).sum(axis=-1) / pp.sum(axis=-1)
    mean_coh = spectrum.mean(axis=-1)
    upper = np.triu_indices(x.shape[0], k=1)
    pair = ("sensor", "sensor_2")
    return xr.Dataset(
        {
            "coherence": (pair, mean_coh, {"units": "1", "long_name": "mean Welch coherence"}),
            "csd": (pair, normalised, {"units": "1", "long_name": "sum-normalised CSD"}),
            "coherence_group": ((), float(mean_coh[upper].mean()), {"units": "1"}),
            "csd_group": ((), float(normalised[upper].mean()), {"units": "1"}),
            "spectrum": ((*pair, "freq"), spectrum, {"units": "1"}),
        },
        coords={"sensor": sensors, "sensor_2": sensors, "freq": ("freq", freqs, {"units": "Hz"})},
        attrs={
            "method": "Welch (Hann, 50 % overlap, constant detrend) cross-spectra of all pairs",
            "nperseg": seg,
        },
    )
