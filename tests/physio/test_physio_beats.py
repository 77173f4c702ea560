"""beats, beats_from_rr, ibi, heart_rate on xarray, against neurokit2 and plain references."""

from __future__ import annotations

from collections.abc import Callable

import neurokit2 as nk
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sensocto_lab import physio
from sensocto_lab.errors import ValidationError
from sensocto_lab.physio.beats import make_beats

F1 = Callable[..., float]
T0 = np.datetime64("2026-01-01T00:00:00", "ns")


def _ecg_group(n: int = 3, seconds: float = 120, fs: float = 130.0) -> tuple[xr.DataArray, list]:
    sims = [physio.simulate_ecg(seconds, fs, heart_rate=60 + 7 * i, seed=i) for i in range(n)]
    time = T0 + (np.arange(sims[0].ecg.size) * (1e9 / fs)).astype("timedelta64[ns]")
    da = xr.DataArray(
        np.stack([s.ecg for s in sims]),
        dims=("sensor", "time"),
        coords={"sensor": [f"p{i}" for i in range(n)], "time": time},
        attrs={"units": "mV"},
    )
    return da, sims


def test_ecg_beats_are_datetimes_on_the_input_axis(beat_f1: F1) -> None:
    da, sims = _ecg_group()
    b = physio.beats(da, "ecg")
    assert b.dims == ("sensor", "beat") and b.dtype == np.dtype("datetime64[ns]")
    assert list(b["sensor"].values) == ["p0", "p1", "p2"]
    for i, sim in enumerate(sims):
        row = b.values[i][~np.isnat(b.values[i])]
        secs = (row - T0) / np.timedelta64(1, "s")
        assert beat_f1(secs, sim.r_times, tol=0.02) == 1.0
        assert b.attrs["n_beats"][i] == row.size
    # ragged: the slower heart has fewer beats, padded with NaT
    assert np.isnat(b.values[0, -1]) and not np.isnat(b.values[2, -1])


def test_ecg_beats_of_a_dataset_and_with_a_gap(beat_f1: F1) -> None:
    da, sims = _ecg_group(2)
    x = da.copy()
    x[0, 5000:6000] = np.nan  # about 7.7 s of dropout
    b = physio.beats(xr.Dataset({"ecg": x, "respiration": x * 0}), "ecg")
    secs = (b.values[0][~np.isnat(b.values[0])] - T0) / np.timedelta64(1, "s")
    gap = (5000 / 130, 6000 / 130)
    assert not ((secs > gap[0] + 0.1) & (secs < gap[1] - 0.1)).any()
    truth = sims[0].r_times[(sims[0].r_times < gap[0] - 0.5) | (sims[0].r_times > gap[1] + 0.5)]
    kept = secs[(secs < gap[0] - 0.5) | (secs > gap[1] + 0.5)]
    assert beat_f1(kept, truth, tol=0.02) == 1.0


def test_ppg_beats_are_neurokit2s(beat_f1: F1) -> None:
    fs = 100
    ppg = nk.ppg_simulate(duration=30, sampling_rate=fs, heart_rate=48, random_state=2)
    ours = physio.beats(ppg, "ppg", fs=fs)
    _, info = nk.ppg_peaks(nk.ppg_clean(ppg, sampling_rate=fs), sampling_rate=fs)
    np.testing.assert_allclose(ours.values[0], np.asarray(info["PPG_Peaks"]) / fs, atol=1e-9)
    assert 22 <= ours.sizes["beat"] <= 25  # 48 bpm for 30 s
    # an R-peak rule on the pulse wave counts the dicrotic notch as beats too
    assert physio.detect_peaks(ppg, fs, "ecg").size > 1.1 * ours.sizes["beat"]


def test_beats_from_rr_give_back_the_straps_intervals() -> None:
    rng = np.random.default_rng(5)
    rr = rng.normal(850, 40, 200)
    true_beats = 3.0 + np.concatenate(([0.0], np.cumsum(rr) / 1e3))
    # each interval arrives 0-0.9 s after its beat; 20 intervals are lost in the middle
    stamps = true_beats[1:] + rng.uniform(0.0, 0.9, rr.size)
    keep = np.r_[0:90, 110:200]
    time = T0 + (np.sort(stamps[keep]) * 1e9).astype("timedelta64[ns]")
    da = xr.DataArray(
        rr[keep][None], dims=("sensor", "time"), coords={"sensor": ["h10"], "time": time}
    )
    b = physio.beats_from_rr(da)
    intervals = physio.ibi(b)
    got = intervals.values[0][~np.isnan(intervals.values[0])]
    np.testing.assert_allclose(got, rr[keep], atol=1e-3)  # the strap's own values, ns rounding
    assert b.attrs["n_beats"] == [182]  # two runs of 90 intervals, each with its first beat
    secs = (b.values[0] - T0) / np.timedelta64(1, "s")
    assert np.all(secs[:91] <= true_beats[:91] + 1e-5)  # never later than the true beats
    assert np.abs(secs[:91] - true_beats[:91]).max() < 0.9


def test_ibi_and_heart_rate_against_a_pandas_reference() -> None:
    beat_s = np.array([0.0, 0.8, 1.7, 2.5, 3.4, 6.0, 6.9, 7.7])  # 2.6 s gap: not an interval
    b = make_beats([beat_s], np.array(["a"]), int(T0.astype(np.int64)), True, {"kind": "ecg"})
    intervals = physio.ibi(b).values[0]
    np.testing.assert_allclose(intervals, [np.nan, 800, 900, 800, 900, np.nan, 900, 800])
    hr = physio.heart_rate(b, fs=4)
    assert hr.attrs["units"] == "bpm" and hr.attrs["fs"] == 4.0
    secs = (hr["time"].values - T0) / np.timedelta64(1, "s")
    rate = pd.Series(60000 / intervals[1:], index=beat_s[1:])
    reference = np.interp(secs, rate.index, rate.to_numpy())
    inside = (secs <= 3.4) | (secs >= 6.9)
    np.testing.assert_allclose(hr.values[0][inside], reference[inside], rtol=1e-12)
    assert np.isnan(hr.values[0][(secs > 3.4) & (secs < 6.9)]).all()


def test_heart_rate_matches_neurokit2_signal_rate_between_beats() -> None:
    fs = 130.0
    sim = physio.simulate_ecg(120, fs, seed=8)
    b = physio.beats(sim.ecg, "ecg", fs=fs)
    hr = physio.heart_rate(b, fs=fs)  # on the ECG's own grid, to compare sample by sample
    peaks = np.round(b.values[0] * fs).astype(int)
    theirs = nk.signal_rate(
        peaks, sampling_rate=fs, desired_length=sim.ecg.size, interpolation_method="linear"
    )
    t = hr["time"].values
    j = np.round(t * fs).astype(int)
    inside = (t > b.values[0][1] + 1) & (t < b.values[0][-1] - 1)
    # neurokit2 puts each rate at integer peaks, ours at sub-sample beats: under 1 %
    np.testing.assert_allclose(hr.values[0][inside], theirs[j[inside]], rtol=0.01)


def test_kind_is_checked() -> None:
    with pytest.raises(ValidationError):
        physio.beats(np.zeros((1, 1000)), "eeg", fs=100)  # type: ignore[arg-type]
