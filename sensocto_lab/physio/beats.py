"""Heartbeats of a whole group: beat times, inter-beat intervals, an even heart-rate series.

Beats are a DataArray ``(sensor, beat)`` of beat times on the input's time axis
(``datetime64[ns]`` for recordings, seconds for plain arrays), NaT/NaN-padded
where sensors have different numbers of beats. They come from

- ECG: our R-peak detector (:func:`sensocto_lab.physio.peaks.detect_peaks`, which
  finds the beats of neurokit2's ``ecg_peaks`` on the same signal, faster);
- PPG: neurokit2's ``ppg_clean`` and ``ppg_findpeaks`` (Elgendi et al. 2013), since
  a pulse wave's dicrotic notch fools a prominence rule (a 24-beat PPG record gave
  42 "R-peaks");
- a strap's own RR intervals: :func:`beats_from_rr`.

Every step runs gap by gap: a NaN gap is never detected across, and an interval
spanning a gap (longer than ``max_ibi_s``) is not an interval.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.physio.filters import invalid, runs
from sensocto_lab.physio.grid import Signals, as_signals, grid_step_ns
from sensocto_lab.physio.peaks import PeakSettings, detect_peaks, detect_peaks_rows, peak_settings

__all__ = [
    "MAX_IBI_S",
    "BeatTimes",
    "beat_times",
    "beats",
    "beats_from_rr",
    "heart_rate",
    "ibi",
    "make_beats",
]

FloatArray = npt.NDArray[np.float64]
Kind = Literal["ecg", "ppg"]

#: Longest plausible inter-beat interval in seconds (30 bpm); longer is a gap or a missed beat.
MAX_IBI_S = 2.0


def _ppg_peaks(x: FloatArray, fs: float) -> FloatArray:
    import neurokit2 as nk  # heavy (pandas, sklearn): loaded on first PPG use only

    cleaned = nk.ppg_clean(x, sampling_rate=fs)
    found = nk.ppg_findpeaks(cleaned, sampling_rate=fs, method="elgendi")["PPG_Peaks"]
    return np.asarray(found, dtype=np.float64)


def _detect(sig: Signals, kind: str, settings: PeakSettings | None) -> list[FloatArray]:
    """Beat positions (fractional samples of the grid) per sensor, gap by gap."""
    if kind == "ppg":
        if settings is not None:
            raise invalid("settings= applies to kind='ecg' (PPG uses neurokit2's Elgendi method)")

        def find(x: FloatArray) -> FloatArray:
            return _ppg_peaks(x, sig.fs) if x.size >= 4 * sig.fs and np.ptp(x) > 0 else np.empty(0)

    elif kind == "ecg":
        s = peak_settings("ecg", settings)

        def find(x: FloatArray) -> FloatArray:
            return detect_peaks(x, sig.fs, settings=s)

    else:
        raise invalid(f"kind must be 'ecg' or 'ppg', got {kind!r}")
    valid = ~np.isnan(sig.values)
    full: npt.NDArray[np.bool_] = np.asarray(valid.all(axis=1))
    out: list[FloatArray] = [np.empty(0)] * sig.n_participants
    if kind == "ecg" and full.any():
        # gap-free rows: one 2-D filter pass for all of them
        rows = np.flatnonzero(full).tolist()
        for i, found in zip(
            rows, detect_peaks_rows(sig.values[full], sig.fs, settings=s), strict=True
        ):
            out[i] = found
    for i in range(sig.n_participants):
        if kind == "ecg" and bool(full[i]):
            continue
        parts = [a + find(sig.values[i, a:b]) for a, b in runs(valid[i])]
        out[i] = np.concatenate(parts) if parts else np.empty(0)
    return out


def make_beats(
    per_sensor: list[FloatArray],
    sensors: npt.NDArray[Any],
    origin_ns: int | None,
    absolute: bool,
    attrs: dict[str, Any],
) -> xr.DataArray:
    """The beats DataArray from beat times in seconds since ``origin_ns``, per sensor.

    Parameters
    ----------
    per_sensor
        One increasing ``float64`` array of beat times (s) per sensor.
    sensors
        Sensor labels, shape ``(sensors,)``.
    origin_ns
        Time of 0 s in ns since the epoch (``None``: times stay seconds).
    absolute
        True: ``datetime64[ns]`` values (NaT-padded); False: seconds (NaN-padded).
    attrs
        ``kind``, ``method``, ... for the result.
    """
    width = max((p.size for p in per_sensor), default=0)
    secs = np.full((len(per_sensor), width), np.nan)
    for i, p in enumerate(per_sensor):
        secs[i, : p.size] = p
    values: npt.NDArray[Any]
    if absolute and origin_ns is not None:
        nat = np.isnan(secs)
        ns = origin_ns + np.round(np.where(nat, 0.0, secs) * 1e9).astype(np.int64)
        values = ns.astype("datetime64[ns]")
        values[nat] = np.datetime64("NaT")
        units = "datetime64[ns]"
    else:
        values = secs + (origin_ns / 1e9 if origin_ns else 0.0)
        units = "s"
    return xr.DataArray(
        values,
        dims=("sensor", "beat"),
        coords={"sensor": sensors, "beat": np.arange(width)},
        name="beats",
        attrs={
            **attrs,
            "long_name": "heartbeat times",
            "units": units,
            "n_beats": [int(p.size) for p in per_sensor],
        },
    )


def beats(
    data: xr.Dataset | xr.DataArray | npt.ArrayLike | Signals,
    kind: Kind = "ecg",
    *,
    fs: float | None = None,
    attribute: str | None = None,
    settings: PeakSettings | None = None,
) -> xr.DataArray:
    """Heartbeat times of every sensor, from ECG (R-peaks) or PPG (pulse peaks).

    Parameters
    ----------
    data
        ``store.history`` output, a DataArray ``(sensor, time)`` (datetime64 or
        seconds), a ``(sensors, samples)`` array with ``fs``, or
        :class:`~sensocto_lab.physio.grid.Signals`. NaN marks gaps.
    kind
        ``"ecg"``: our detector (band-pass 5–30 Hz, refractory 0.3 s, prominence;
        matches neurokit2 ``ecg_peaks``); ``"ppg"``: neurokit2 ``ppg_clean`` +
        ``ppg_findpeaks(method="elgendi")``.
    fs
        Sampling rate in Hz (plain arrays) or of the grid.
    attribute
        Data variable of a Dataset; default ``kind`` if the Dataset has it.
    settings
        ECG only: :class:`~sensocto_lab.physio.peaks.PeakSettings` instead of the
        ``"ecg"`` defaults.

    Returns
    -------
    xarray.DataArray
        ``(sensor, beat)`` beat times, ``datetime64[ns]`` on the input's time axis
        (seconds for plain arrays), padded with NaT/NaN; ``attrs`` ``kind``,
        ``method``, ``fs``, ``n_beats`` (per sensor).

    References
    ----------
    neurokit2 ``ecg_peaks``, ``ppg_findpeaks``; Elgendi et al. (2013) PLoS ONE 8:e76585.
    """
    if isinstance(data, xr.Dataset) and attribute is None and kind in data.data_vars:
        attribute = kind
    sig = as_signals(data, fs, attribute=attribute)
    positions = _detect(sig, kind, settings)
    step_s = grid_step_ns(sig.fs) / 1e9
    how = (
        "R-peaks: Butterworth band-pass, find_peaks with refractory distance and prominence"
        if kind == "ecg"
        else "pulse peaks: neurokit2 ppg_clean + ppg_findpeaks (elgendi)"
    )
    origin = sig.start_ns if sig.start_ns is not None else None
    return make_beats(
        [p * step_s for p in positions],
        sig.sensors,
        origin,
        sig.absolute and origin is not None,
        {"kind": kind, "method": how, "fs": sig.fs},
    )


class BeatTimes:
    """Beat times of each sensor as float seconds since one origin (the inner form).

    Attributes
    ----------
    times
        One increasing ``float64`` array (s since ``origin_ns``) per sensor.
    sensors
        Labels, shape ``(sensors,)``.
    origin_ns
        ns since the epoch of 0 s (0 for relative input).
    absolute
        Whether the input was ``datetime64`` (results then use datetime too).
    """

    __slots__ = ("absolute", "attrs", "origin_ns", "sensors", "times")

    def __init__(
        self,
        times: list[FloatArray],
        sensors: npt.NDArray[Any],
        origin_ns: int,
        absolute: bool,
        attrs: dict[str, Any],
    ) -> None:
        self.times = times
        self.sensors = sensors
        self.origin_ns = origin_ns
        self.absolute = absolute
        self.attrs = attrs

    def to_time(self, secs: FloatArray) -> npt.NDArray[Any]:
        """Seconds since the origin as the input's time axis (datetime64[ns] or seconds)."""
        if self.absolute:
            return (self.origin_ns + np.round(secs * 1e9).astype(np.int64)).astype("datetime64[ns]")
        return secs + self.origin_ns / 1e9


def beat_times(beats: xr.DataArray) -> BeatTimes:
    """Unpack a beats DataArray ``(sensor, beat)`` into per-sensor float seconds."""
    if beats.dims != ("sensor", "beat"):
        raise invalid(
            f"beats must have dims ('sensor', 'beat'), got {beats.dims}", "invalid_signal"
        )
    values = np.asarray(beats.values)
    absolute = np.issubdtype(values.dtype, np.datetime64)
    if absolute:
        ns = values.astype("datetime64[ns]").astype(np.int64)
        known = ~np.isnat(values)
        origin = int(ns[known].min()) if known.any() else 0
        secs = np.where(known, (ns - origin) / 1e9, np.nan)
    else:
        secs = values.astype(np.float64)
        origin = 0
    times = []
    for row in secs:
        t = row[~np.isnan(row)]
        if (np.diff(t) <= 0).any():
            raise invalid("beat times must be strictly increasing per sensor", "invalid_signal")
        times.append(t)
    return BeatTimes(times, np.asarray(beats["sensor"].values), origin, absolute, dict(beats.attrs))


def beats_from_rr(
    rr: xr.Dataset | xr.DataArray,
    *,
    attribute: str = "rr",
    max_gap_s: float = 2.0,
) -> xr.DataArray:
    """Beat times from a strap's own RR intervals (Polar H10 and the like).

    Each RR sample is stamped when it arrived, which is after the beat that ended
    it. Within a run of consecutive intervals the beats are the running sum of
    the intervals, anchored as late as the arrival stamps allow: the beat ending
    interval ``i`` is at ``c + Σ_{j≤i} rr_j`` with ``c = min_i(t_i − Σ_{j≤i} rr_j)``,
    and the run's first interval starts at ``c`` (a beat too). A new run starts
    where the stamps jump by more than ``max_gap_s`` beyond the interval (lost
    notifications), so no interval is invented across a gap.

    Parameters
    ----------
    rr
        ``(sensor, time)`` RR intervals in ms (the ``rr`` kind), NaN where a sensor
        has none; or a Dataset holding ``attribute``.
    attribute
        Data variable of a Dataset.
    max_gap_s
        Largest slack (s) between the stamps' step and the interval within a run.

    Returns
    -------
    xarray.DataArray
        As :func:`beats`; :func:`ibi` of it gives back the strap's intervals.
    """
    da = rr[attribute] if isinstance(rr, xr.Dataset) else rr
    if "time" not in da.dims:
        raise invalid(f"rr needs a 'time' dim, it has {da.dims}", "invalid_signal")
    if da.ndim == 1:
        da = da.expand_dims(sensor=[str(da.name or "0")])
    da = da.transpose("sensor", "time")
    time = np.asarray(da["time"].values)
    absolute = np.issubdtype(time.dtype, np.datetime64)
    t_ns = (
        time.astype("datetime64[ns]").astype(np.int64)
        if absolute
        else np.round(time.astype(np.float64) * 1e9).astype(np.int64)
    )
    values = np.asarray(da.values, dtype=np.float64)
    origin = int(t_ns.min()) if t_ns.size else 0
    t_s = (t_ns - origin) / 1e9
    per_sensor = []
    for row in values:
        known = ~np.isnan(row)
        t, ms = t_s[known], row[known]
        if (ms <= 0).any():
            raise invalid("RR intervals must be positive milliseconds", "invalid_signal")
        rr_s = ms / 1e3
        slack = np.diff(t) - rr_s[1:]
        starts = np.concatenate(([0], np.flatnonzero(slack > max_gap_s) + 1, [t.size]))
        parts = []
        for a, b in itertools.pairwise(starts):
            if b <= a:
                continue
            ends = np.cumsum(rr_s[a:b])
            anchor = float(np.min(t[a:b] - ends))
            parts.append(anchor + np.concatenate(([0.0], ends)))
        per_sensor.append(np.concatenate(parts) if parts else np.empty(0))
    return make_beats(
        per_sensor,
        np.asarray(da["sensor"].values) if "sensor" in da.coords else np.arange(values.shape[0]),
        origin,
        absolute,
        {"kind": "rr", "method": "running sum of the strap's RR intervals, anchored to arrival"},
    )


def ibi(beats: xr.DataArray, *, max_ibi_s: float = MAX_IBI_S) -> xr.DataArray:
    """Inter-beat intervals: the interval ending at each beat, in ms.

    Parameters
    ----------
    beats
        Output of :func:`beats` or :func:`beats_from_rr`.
    max_ibi_s
        Longer intervals span a gap or a missed beat and are NaN.

    Returns
    -------
    xarray.DataArray
        ``(sensor, beat)`` intervals in ms (NaN for each sensor's first beat, longer
        intervals and padding), with coordinate ``time`` ``(sensor, beat)``: the beat
        that ends the interval.
    """
    bt = beat_times(beats)
    width = beats.sizes["beat"]
    out = np.full((len(bt.times), width), np.nan)
    for i, t in enumerate(bt.times):
        d = np.diff(t)
        out[i, 1 : t.size] = np.where(d <= max_ibi_s, d * 1e3, np.nan)
    return xr.DataArray(
        out,
        dims=("sensor", "beat"),
        coords={
            "sensor": bt.sensors,
            "beat": beats["beat"].values,
            "time": (("sensor", "beat"), np.asarray(beats.values)),
        },
        name="ibi",
        attrs={
            "units": "ms",
            "long_name": "inter-beat interval",
            "method": f"difference of successive beats, NaN above {max_ibi_s:g} s",
            "kind": bt.attrs.get("kind", ""),
        },
    )


def heart_rate(
    beats: xr.DataArray, fs: float = 4.0, *, max_ibi_s: float = MAX_IBI_S
) -> xr.DataArray:
    """Heart rate resampled evenly: the input of heart-rate synchrony.

    Each interval's rate ``60 / IBI`` (bpm) is placed at the beat that ends it and
    linearly interpolated onto a regular grid at ``fs`` Hz shared by all sensors
    (multiples of ``1/fs`` since the epoch, as :mod:`sensocto_lab.physio.grid`).
    Samples before a sensor's second beat, after its last, or inside an interval
    longer than ``max_ibi_s`` are NaN.

    Parameters
    ----------
    beats
        Output of :func:`beats` or :func:`beats_from_rr`.
    fs
        Rate of the output series in Hz (4 Hz is usual for HRV and synchrony).
    max_ibi_s
        As for :func:`ibi`.

    Returns
    -------
    xarray.DataArray
        ``(sensor, time)`` heart rate in bpm; ``attrs`` ``fs``, ``units``, ``method``.

    References
    ----------
    neurokit2 ``signal_rate`` (ours interpolates linearly and leaves gaps NaN).
    """
    if not (np.isfinite(fs) and fs > 0):
        raise invalid(f"fs must be a positive number of Hz, got {fs!r}")
    bt = beat_times(beats)
    step_ns = grid_step_ns(fs)
    known = [t for t in bt.times if t.size >= 2]
    if not known:
        raise invalid("no sensor has two beats; there is no heart rate to resample")
    first_ns = bt.origin_ns + round(min(t[1] for t in known) * 1e9)
    last_ns = bt.origin_ns + round(max(t[-1] for t in known) * 1e9)
    grid_ns = np.arange(-(-first_ns // step_ns), last_ns // step_ns + 1, dtype=np.int64) * step_ns
    grid_s = (grid_ns - bt.origin_ns) / 1e9
    out = np.full((len(bt.times), grid_ns.size), np.nan)
    for i, t in enumerate(bt.times):
        if t.size < 2:
            continue
        d = np.diff(t)
        rate = 60.0 / d
        at = t[1:]
        row = np.interp(grid_s, at, rate, left=np.nan, right=np.nan)
        # the sample lies in interval k (between beats k and k+1 of t); its own and the
        # rate points either side must be plausible intervals
        k = np.searchsorted(t, grid_s, side="right") - 1
        k = np.clip(k, 0, t.size - 2)
        bad = d[k] > max_ibi_s
        prev = np.clip(k - 1, 0, d.size - 1)
        bad |= (k >= 1) & (d[prev] > max_ibi_s)
        row[bad] = np.nan
        out[i] = row
    time = grid_ns.astype("datetime64[ns]") if bt.absolute else grid_ns / 1e9
    return xr.DataArray(
        out,
        dims=("sensor", "time"),
        coords={"sensor": bt.sensors, "time": time},
        name="heart_rate",
        attrs={
            "units": "bpm",
            "long_name": "heart rate",
            "fs": float(1e9 / step_ns),
            "method": f"60/IBI at each beat, linear interpolation at {fs:g} Hz, "
            f"NaN across intervals over {max_ibi_s:g} s",
        },
    )
