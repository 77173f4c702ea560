"""Heart-rate variability per sensor (and per window), artefact correction, RSA.

The indices are neurokit2's (Task Force 1996 definitions): ``hrv_time`` for SDNN,
RMSSD, pNN50 and the mean interval, ``hrv_frequency`` for LF (0.04–0.15 Hz), HF
(0.15–0.4 Hz) and LF/HF, with neurokit2's own resampling of the intervals (100 Hz,
Welch): the Task Force's usual 4 Hz moves LF and HF by 1–2 % here, because the
Welch segments then span other lengths, and 100 Hz costs little. SD1 and SD2 are
the Poincaré formulas of neurokit2's ``hrv_nonlinear`` (sample SD, ``ddof=1``)
computed here directly, because ``hrv_nonlinear`` also computes a dozen entropies
and fractal indices (seconds per call) that we do not return. Intervals across a
gap are never used (neurokit2 then keeps only successive differences).
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from sensocto_lab.physio.beats import MAX_IBI_S, BeatTimes, beat_times, make_beats
from sensocto_lab.physio.filters import invalid, runs
from sensocto_lab.physio.grid import Signals, as_signals

__all__ = ["HRV_INDICES", "correct_beats", "hrv", "rsa"]

FloatArray = npt.NDArray[np.float64]

#: name -> (units, long name) of the indices :func:`hrv` returns.
HRV_INDICES: dict[str, tuple[str, str]] = {
    "SDNN": ("ms", "standard deviation of NN intervals (ddof=1)"),
    "RMSSD": ("ms", "root mean square of successive differences"),
    "pNN50": ("%", "share of successive differences over 50 ms (of all intervals)"),
    "mean_hr": ("bpm", "mean heart rate, 60000 / mean NN"),
    "LF": ("ms2", "power 0.04-0.15 Hz"),
    "HF": ("ms2", "power 0.15-0.4 Hz"),
    "LF_HF": ("1", "LF / HF"),
    "SD1": ("ms", "Poincare SD1 (ddof=1)"),
    "SD2": ("ms", "Poincare SD2 (ddof=1)"),
}

#: Intervals resampled at this rate (Hz) for LF and HF (neurokit2's default).
INTERPOLATION_RATE = 100


def _nk() -> Any:
    import neurokit2 as nk  # heavy: loaded when an HRV index is asked for

    return nk


def _intervals(t: FloatArray, max_ibi_s: float) -> tuple[FloatArray, FloatArray]:
    """(RRI in ms, time of each interval's end in s); intervals across gaps dropped."""
    d = np.diff(t)
    keep = d <= max_ibi_s
    return d[keep] * 1e3, t[1:][keep]


def _poincare(rri: FloatArray, rri_t: FloatArray, max_ibi_s: float) -> tuple[float, float]:
    # only pairs of intervals that follow each other (no gap between them)
    successive = np.isclose(np.diff(rri_t), rri[1:] / 1e3, rtol=0, atol=1e-6)
    if successive.sum() < 2:
        return float("nan"), float("nan")
    a, b = rri[:-1][successive], rri[1:][successive]
    return float(np.std((a - b) / np.sqrt(2), ddof=1)), float(np.std((a + b) / np.sqrt(2), ddof=1))


def _indices(rri: FloatArray, rri_t: FloatArray, max_ibi_s: float) -> dict[str, float]:
    out = dict.fromkeys(HRV_INDICES, float("nan"))
    if rri.size < 3:
        return out
    nk = _nk()
    data = {"RRI": rri, "RRI_Time": rri_t}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neurokit2 warns about short windows; NaN says it
        td = nk.hrv_time(data)
        out.update(
            SDNN=float(td["HRV_SDNN"].iloc[0]),
            RMSSD=float(td["HRV_RMSSD"].iloc[0]),
            pNN50=float(td["HRV_pNN50"].iloc[0]),
            mean_hr=60_000.0 / float(td["HRV_MeanNN"].iloc[0]),
        )
        if rri_t[-1] - rri_t[0] >= 1 / 0.04:  # at least one period of LF's lower edge
            fd = nk.hrv_frequency(data, interpolation_rate=INTERPOLATION_RATE)
            out.update(
                LF=float(fd["HRV_LF"].iloc[0]),
                HF=float(fd["HRV_HF"].iloc[0]),
                LF_HF=float(fd["HRV_LFHF"].iloc[0]),
            )
    out["SD1"], out["SD2"] = _poincare(rri, rri_t, max_ibi_s)
    return out


def hrv(
    beats: xr.DataArray,
    window: float | None = None,
    *,
    step: float | None = None,
    max_ibi_s: float = MAX_IBI_S,
) -> xr.Dataset:
    """HRV indices of every sensor, over the whole recording or in windows.

    Parameters
    ----------
    beats
        Output of :func:`~sensocto_lab.physio.beats.beats`,
        :func:`~sensocto_lab.physio.beats.beats_from_rr` or :func:`correct_beats`.
    window
        Window length in seconds (``None``: one value per sensor). An interval
        belongs to the window holding the beat that ends it.
    step
        Distance between window starts in seconds (default ``window``).
    max_ibi_s
        Intervals longer than this span a gap and are not used.

    Returns
    -------
    xarray.Dataset
        ``SDNN``, ``RMSSD`` (ms), ``pNN50`` (%), ``mean_hr`` (bpm), ``LF``, ``HF``
        (ms²), ``LF_HF``, ``SD1``, ``SD2`` (ms) and ``n_intervals``, dims
        ``("sensor",)`` or ``("sensor", "window")`` (coordinate ``window``: each
        window's start on the beats' time axis). NaN where too few intervals; LF
        and HF need a window of at least 25 s.

    References
    ----------
    Task Force (1996) *Circulation* 93:1043; neurokit2 ``hrv_time``,
    ``hrv_frequency``, ``hrv_nonlinear`` (SD1, SD2).
    """
    bt = beat_times(beats)
    if window is not None and not (np.isfinite(window) and window > 0):
        raise invalid(f"window must be a positive number of seconds, got {window!r}")
    stride = float(step if step is not None else (window or 0.0))
    if window is not None and not stride > 0:
        raise invalid(f"step must be a positive number of seconds, got {step!r}")
    known = [t for t in bt.times if t.size]
    if window is None:
        starts = np.array([np.nan])
    elif known:
        first = min(float(t[0]) for t in known)
        last = max(float(t[-1]) for t in known)
        starts = first + np.arange(0.0, max(last - first - window, 0.0) + 1e-9, stride)
    else:
        starts = np.empty(0)
    table = {name: np.full((len(bt.times), starts.size), np.nan) for name in HRV_INDICES}
    count = np.zeros((len(bt.times), starts.size), dtype=np.int64)
    for i, t in enumerate(bt.times):
        rri, rri_t = _intervals(t, max_ibi_s)
        for w, a in enumerate(starts):
            if window is None:
                sel = slice(None)
            else:
                lo, hi = np.searchsorted(rri_t, [a, a + window])
                sel = slice(int(lo), int(hi))
            values = _indices(rri[sel], rri_t[sel], max_ibi_s)
            for name, v in values.items():
                table[name][i, w] = v
            count[i, w] = rri[sel].size
    dims: tuple[str, ...] = ("sensor",) if window is None else ("sensor", "window")
    def squeeze(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return a[:, 0] if window is None else a

    data_vars = {
        name: (dims, squeeze(table[name]), {"units": u, "long_name": ln})
        for name, (u, ln) in HRV_INDICES.items()
    }
    data_vars["n_intervals"] = (dims, squeeze(count), {"units": "1"})
    coords: dict[str, Any] = {"sensor": bt.sensors}
    if window is not None:
        coords["window"] = bt.to_time(starts)
    return xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "method": "neurokit2 hrv_time, hrv_frequency; Poincare SD1/SD2 (ddof=1)",
            "window_s": window if window is not None else "whole recording",
            "max_ibi_s": max_ibi_s,
        },
    )


def correct_beats(beats: xr.DataArray, *, max_ibi_s: float = MAX_IBI_S) -> xr.DataArray:
    """Artefact-corrected beats: missed, extra and misplaced beats fixed by neurokit2.

    Runs ``signal_fixpeaks(method="Kubios")`` (Lipponen & Tarvainen 2019) on each
    run of beats between gaps (intervals over ``max_ibi_s``), on a 1 kHz index
    (beat times rounded to the ms).

    Returns
    -------
    xarray.DataArray
        Beats as the input (same time axis), ``attrs["method"]`` noting the correction.
    """
    nk = _nk()
    bt = beat_times(beats)
    fixed = []
    for t in bt.times:
        pieces = []
        breaks = np.concatenate(([0], np.flatnonzero(np.diff(t) > max_ibi_s) + 1, [t.size]))
        for a, b in itertools.pairwise(breaks):
            run = t[a:b]
            if run.size < 4:
                pieces.append(run)
                continue
            base = run[0]
            idx = np.round((run - base) * 1000).astype(np.int64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, corrected = nk.signal_fixpeaks(idx, sampling_rate=1000, method="Kubios")
            pieces.append(base + np.unique(np.asarray(corrected, dtype=np.float64)) / 1000)
        fixed.append(np.concatenate(pieces) if pieces else np.empty(0))
    attrs = {**bt.attrs, "method": f"{bt.attrs.get('method', '')}; neurokit2 signal_fixpeaks"}
    attrs.pop("n_beats", None)
    return make_beats(fixed, bt.sensors, bt.origin_ns, bt.absolute, attrs)


def _rsa_one(
    t: FloatArray, origin_ns: int, sig: Signals, row: int, start_ns: int
) -> dict[str, float]:
    nk = _nk()
    empty = {"RSA_P2T_Mean": np.nan, "RSA_PorgesBohrer": np.nan, "RSA_Gates_Mean": np.nan}
    resp = sig.values[row]
    valid = ~np.isnan(resp)
    if valid.sum() < 30 * sig.fs or np.ptp(resp[valid]) == 0:
        return empty
    # the longest gap-free run of breathing, and the beats inside it, on its samples
    a, b = max(runs(valid), key=lambda r: r[1] - r[0])
    step_s = 1 / sig.fs
    pos = (t + (origin_ns - start_ns) / 1e9) / step_s - a
    peaks = np.round(pos[(pos >= 0) & (pos < b - a)]).astype(np.int64)
    if peaks.size < 10:
        return empty
    marks = np.zeros(b - a, dtype=np.int64)
    marks[peaks] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rsp_signals, _ = nk.rsp_process(resp[a:b], sampling_rate=sig.fs)
        ecg_signals = pd.DataFrame({"ECG_R_Peaks": marks})
        out = nk.hrv_rsa(ecg_signals, rsp_signals, rpeaks=peaks, sampling_rate=sig.fs)
    return {k: float(out.get(k, np.nan)) for k in empty}


def rsa(
    beats: xr.DataArray,
    resp: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    *,
    fs: float | None = None,
    attribute: str | None = None,
) -> xr.Dataset:
    """Respiratory sinus arrhythmia of each sensor: how much the heart follows the breath.

    Parameters
    ----------
    beats
        Beats of the sensors (same sensor order and time axis as ``resp``).
    resp
        Breathing signals ``(sensor, time)`` (``store.history`` output, a DataArray,
        an array with ``fs``); the longest gap-free run of each is used.
    fs, attribute
        As for :func:`~sensocto_lab.physio.grid.as_signals`.

    Returns
    -------
    xarray.Dataset
        ``p2t`` (ms): mean peak-to-trough RSA per breath (Grossman 1990);
        ``porges_bohrer`` (ln ms²) and ``gates`` (ms), dims ``("sensor",)``; NaN
        with less than 30 s of breathing or fewer than 10 beats.

    References
    ----------
    neurokit2 ``hrv_rsa``; Grossman, van Beek & Wientjes (1990) *Psychophysiology*
    27:702; Lewis et al. (2012) *Biol. Psychol.* 89:349 (Porges–Bohrer).
    """
    bt: BeatTimes = beat_times(beats)
    sig = as_signals(resp, fs, attribute=attribute)
    if sig.n_participants != len(bt.times):
        raise invalid(
            f"beats hold {len(bt.times)} sensors but resp holds {sig.n_participants}",
            "invalid_signal",
        )
    start_ns = sig.start_ns or 0
    rows = [_rsa_one(t, bt.origin_ns, sig, i, start_ns) for i, t in enumerate(bt.times)]
    names = {"RSA_P2T_Mean": "p2t", "RSA_PorgesBohrer": "porges_bohrer", "RSA_Gates_Mean": "gates"}
    units = {"p2t": "ms", "porges_bohrer": "ln(ms2)", "gates": "ms"}
    return xr.Dataset(
        {
            short: ("sensor", np.array([r[key] for r in rows]), {"units": units[short]})
            for key, short in names.items()
        },
        coords={"sensor": bt.sensors},
        attrs={"method": "neurokit2 hrv_rsa on rsp_process of the breathing signal"},
    )
