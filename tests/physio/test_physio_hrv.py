"""HRV, artefact correction and RSA against neurokit2 on the same beats."""

from __future__ import annotations

import warnings

import neurokit2 as nk
import numpy as np
import pytest
import xarray as xr

from sensocto_lab import physio
from sensocto_lab.physio.beats import make_beats

FS = 250.0
Record = tuple[physio.SimulatedECG, xr.DataArray]


@pytest.fixture(scope="module")
def record() -> Record:
    sim = physio.simulate_ecg(300, FS, heart_rate=65, hrv_ms=50, noise=0.02, seed=12)
    return sim, physio.beats(sim.ecg, "ecg", fs=FS)


def _nk_all(peaks: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        td = nk.hrv_time(peaks, sampling_rate=FS)
        fd = nk.hrv_frequency(peaks, sampling_rate=FS)  # neurokit2's default 100 Hz resampling
        nl = nk.hrv_nonlinear(peaks, sampling_rate=FS)
    return {
        "SDNN": td["HRV_SDNN"].iloc[0],
        "RMSSD": td["HRV_RMSSD"].iloc[0],
        "pNN50": td["HRV_pNN50"].iloc[0],
        "mean_hr": 60_000 / td["HRV_MeanNN"].iloc[0],
        "LF": fd["HRV_LF"].iloc[0],
        "HF": fd["HRV_HF"].iloc[0],
        "LF_HF": fd["HRV_LFHF"].iloc[0],
        "SD1": nl["HRV_SD1"].iloc[0],
        "SD2": nl["HRV_SD2"].iloc[0],
    }


def test_hrv_within_one_percent_of_neurokit2_on_its_own_beats(record: Record) -> None:
    sim, b = record
    ours = physio.hrv(b)
    _, info = nk.ecg_peaks(nk.ecg_clean(sim.ecg, sampling_rate=FS), sampling_rate=FS)
    theirs = _nk_all(np.asarray(info["ECG_R_Peaks"]))
    for name, value in theirs.items():
        assert float(ours[name][0]) == pytest.approx(value, rel=0.01), name
    assert ours["SDNN"].attrs["units"] == "ms" and ours["LF"].attrs["units"] == "ms2"


def test_pnn50_counts_over_all_intervals_as_neurokit2_and_the_task_force() -> None:
    # successive differences 100, 10, 100 ms over four intervals: NN50 = 2 -> 2/4, not 2/3
    b = make_beats([np.array([0.0, 0.8, 1.7, 2.61, 3.61])], np.array(["a"]), 0, False, {})
    assert float(physio.hrv(b)["pNN50"][0]) == pytest.approx(50.0)


def test_windows_are_hrv_of_the_beats_inside(record: Record) -> None:
    _, b = record
    windowed = physio.hrv(b, window=60.0)
    assert windowed["RMSSD"].dims == ("sensor", "window") and windowed.sizes["window"] >= 4
    t = b.values[0][~np.isnan(b.values[0])]
    start = float(windowed["window"][1])
    inside = t[(t >= start - 1.0) & (t < start + 60.0)]
    # the first beat before the window starts the window's first interval
    inside = inside[np.searchsorted(inside, start) - 1 :]
    alone = physio.hrv(make_beats([inside], np.array([0]), 0, False, {}))
    assert float(windowed["RMSSD"][0, 1]) == pytest.approx(float(alone["RMSSD"][0]), rel=1e-9)
    assert np.isfinite(windowed["LF"].values).all()


def test_correction_repairs_a_missed_beat(record: Record) -> None:
    _, b = record
    t = b.values[0][~np.isnan(b.values[0])]
    missed = np.delete(t, 100)  # one beat lost: a double interval, not a gap (< 2 s)
    raw = physio.hrv(make_beats([missed], np.array([0]), 0, False, {}))
    fixed_beats = physio.correct_beats(make_beats([missed], np.array([0]), 0, False, {}))
    fixed = physio.hrv(fixed_beats)
    truth = float(physio.hrv(b)["RMSSD"][0])
    assert abs(float(fixed["RMSSD"][0]) - truth) < 0.25 * abs(float(raw["RMSSD"][0]) - truth)
    assert "signal_fixpeaks" in fixed_beats.attrs["method"]


def test_rsa_is_neurokit2s_hrv_rsa_on_the_same_data() -> None:
    fs = 50
    rsp = nk.rsp_simulate(duration=180, sampling_rate=fs, respiratory_rate=12, random_state=3)
    sim = physio.simulate_ecg(180, fs, heart_rate=70, hrv_ms=60, noise=0.01, seed=3)
    b = make_beats([sim.r_times], np.array(["a"]), 0, False, {})
    ours = physio.rsa(b, rsp, fs=fs)
    peaks = np.round(sim.r_times * fs).astype(int)
    marks = np.zeros(rsp.size, dtype=int)
    marks[peaks] = 1
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rsp_signals, _ = nk.rsp_process(rsp, sampling_rate=fs)
        theirs = nk.hrv_rsa(
            pd.DataFrame({"ECG_R_Peaks": marks}), rsp_signals, rpeaks=peaks, sampling_rate=fs
        )
    assert float(ours["p2t"][0]) == pytest.approx(theirs["RSA_P2T_Mean"], rel=1e-9)
    assert float(ours["porges_bohrer"][0]) == pytest.approx(theirs["RSA_PorgesBohrer"], rel=1e-9)
    assert ours["p2t"].attrs["units"] == "ms"


def test_respiration_rate_is_neurokit2s_and_near_the_truth() -> None:
    fs = 25
    rsp = np.stack(
        [
            nk.rsp_simulate(duration=120, sampling_rate=fs, respiratory_rate=r, random_state=i)
            for i, r in enumerate((12, 18))
        ]
    )
    rate = physio.respiration_rate(rsp, fs=fs)
    theirs = nk.rsp_rate(nk.rsp_clean(rsp[1], sampling_rate=fs), sampling_rate=fs)
    np.testing.assert_allclose(rate.values[1], theirs, rtol=1e-12)
    np.testing.assert_allclose(np.nanmedian(rate.values, axis=1), [12, 18], atol=1.0)
    assert rate.attrs["units"] == "1/min"
    gappy = rsp.copy()
    gappy[0, 1000:1100] = np.nan
    gappy[1, 100:2900] = np.nan  # leaves runs shorter than 30 s
    out = physio.respiration_rate(gappy, fs=fs).values
    assert np.isnan(out[0, 1000:1100]).all() and np.isfinite(out[0, :1000]).all()
    assert np.isnan(out[1]).all()
