"""Regression tests for what a comparison run against scipy, hypyp and multiSyncPy found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.signal as ss
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypyp.analyses import compute_sync

from sensocto_lab import sync
from sensocto_lab.errors import ValidationError
from sensocto_lab.physio.filters import butter_sos
from sensocto_lab.sync.phase import PEAK_SETTINGS, PeakSettings, analytic_signal
from sensocto_lab.sync.synthetic import oscillator_group

FS = 10.0


def _group_with_dead_and_stuck() -> np.ndarray:
    group = oscillator_group(8, 120.0, FS, snr_db=10.0, coupling=0.5, seed=11)
    x = group.signals.copy()
    x[6] = 0.0  # a dead sensor: all zeros
    x[7] = 3.7  # a stuck one: constant, non-zero
    return x


def test_dead_and_constant_sensors_have_no_phase_and_are_not_counted() -> None:
    x = _group_with_dead_and_stuck()
    theta = sync.phases(x, FS)
    assert np.isnan(theta.values[6:]).all()
    assert not np.isnan(theta.values[:6]).any()
    two_step = sync.order_parameter(theta)
    one_step = sync.synchrony(x, FS)
    assert (two_step["n"].values == 6).all() and (one_step["n"].values == 6).all()
    np.testing.assert_allclose(two_step.values, one_step.values, rtol=0, atol=1e-12)


def test_dead_sensor_plv_row_is_nan_as_in_hypyp() -> None:
    x = _group_with_dead_and_stuck()
    plv = sync.phase_locking(sync.phases(x, FS)).values
    assert np.isnan(plv[6]).all() and np.isnan(plv[:, 7]).all()
    # hypyp on the same analytic signals: same values for the live sensors, NaN for the
    # dead one (a plain Hilbert transform of its zero band-passed signal is 0 + 0j)
    z = analytic_signal(x, FS)
    z[6:] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        theirs = compute_sync(z.reshape(2, 1, 4, 1, -1), "plv", epochs_average=False)[0, 0]
    np.testing.assert_allclose(plv[:6, :6], theirs[:6, :6], rtol=0, atol=1e-9)
    assert np.isnan(theirs[6]).all() and np.isnan(plv[6]).all()


def test_online_flat_sensor_is_left_out_too() -> None:
    online = sync.OnlineSynchrony()
    t0 = 1_767_225_600 * 10**9
    ts = t0 + np.arange(0, 40 * 10**9, 10**8, dtype=np.int64)
    sec = (ts - t0) / 1e9
    online.push("a", ts, np.cos(2 * np.pi * 0.25 * sec))
    online.push("b", ts, np.cos(2 * np.pi * 0.25 * sec + 0.3))
    online.push("dead", ts, np.zeros(ts.size))
    est = online.estimate(int(ts[-1]))
    assert est.n == 2 and np.isnan(est.phases[2])


@pytest.mark.parametrize("fs", [10.01, 10.2, 10.5, 10.52])
def test_butter_sos_refuses_a_band_whose_clipped_edge_falls_below_the_low_one(fs: float) -> None:
    with pytest.raises(ValidationError) as info:
        butter_sos(fs, PEAK_SETTINGS["ecg"].band, 2)
    assert info.value.reason == "invalid_parameter" and "upper edge" in info.value.detail


def test_butter_sos_just_above_the_limit_still_designs_a_filter() -> None:
    sos = butter_sos(10.6, (5.0, 30.0), 2)
    assert sos.shape == (2, 6) and np.isfinite(sos).all()


def test_peaks_honour_band_order_and_settings() -> None:
    group = oscillator_group(3, 120.0, FS, snr_db=10.0, seed=5)
    default = sync.phases(group.signals, FS, method="peaks")
    narrow = sync.phases(group.signals, FS, method="peaks", band=(0.2, 0.3))
    assert "0.2-0.3 Hz" in narrow.attrs["method"]
    assert not np.allclose(np.nan_to_num(default.values), np.nan_to_num(narrow.values))
    order4 = sync.phases(group.signals, FS, method="peaks", order=4)
    assert "order 4" in order4.attrs["method"]
    # settings= without touching the global table: a refractory time of 6 s halves the breaths
    slow = PeakSettings((0.1, 0.6), 6.0, 0.25, 20.0)
    theta = sync.phases(group.signals, FS, method="peaks", settings=slow)
    cycles = (np.diff(np.unwrap(theta.values[0][~np.isnan(theta.values[0])])) > 0).sum()
    assert cycles > 0
    wraps_default = (np.diff(default.values[0]) < -np.pi).sum()
    wraps_slow = (np.diff(theta.values[0]) < -np.pi).sum()
    assert wraps_slow < 0.7 * wraps_default
    assert PEAK_SETTINGS["respiration"].distance_s == 1.5
    r = sync.synchrony(group.signals, FS, method="peaks", settings=slow)
    np.testing.assert_allclose(r.values, sync.order_parameter(theta).values, atol=1e-12)


def test_settings_with_hilbert_is_refused() -> None:
    with pytest.raises(ValidationError):
        sync.phases(np.zeros((2, 100)), FS, settings=PEAK_SETTINGS["ecg"])


@pytest.mark.parametrize("n", [7507, 7500, 601])
def test_hilbert_phase_matches_scipy_at_the_edges_for_any_length(n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.cos(2 * np.pi * 0.25 * np.arange(n) / FS) + 0.3 * rng.standard_normal(n)
    sos = ss.butter(2, [0.1, 0.6], btype="band", fs=FS, output="sos")
    reference = np.angle(ss.hilbert(ss.sosfiltfilt(sos, x)))
    ours = sync.phases(x, FS).values[0]
    assert np.abs(np.angle(np.exp(1j * (ours - reference)))).max() < 1e-9
    assert "unpadded" in sync.phases(x, FS).attrs["fft"]


def _duplicated() -> xr.DataArray:
    t = (np.arange(200) * 100_000_000).astype("datetime64[ns]")
    t = np.insert(t, [50, 120], t[[50, 120]])  # two repeated timestamps
    values = np.vstack([np.sin(np.arange(202) / 5.0), np.cos(np.arange(202) / 5.0)])
    values[0, 51] = 10.0  # the duplicate of sample 50 carries another value
    values[1, 50] = np.nan  # sensor 1 has only the second of the pair
    return xr.DataArray(values, dims=("sensor", "time"), coords={"sensor": ["a", "b"], "time": t})


def test_duplicate_timestamps_are_refused_by_default_with_a_pointer_to_the_fix() -> None:
    with pytest.raises(ValidationError) as info:
        sync.as_signals(_duplicated())
    assert info.value.reason == "duplicate_timestamps" and "duplicates=" in info.value.detail


@pytest.mark.parametrize("how", ["mean", "first"])
def test_duplicate_timestamps_merged_on_request(how: str) -> None:
    da = _duplicated()
    sig = sync.as_signals(da, duplicates=how)  # type: ignore[arg-type]
    assert sig.n_samples == 200 and sig.fs == pytest.approx(10.0)
    raw = da.values
    if how == "mean":
        assert sig.values[0, 50] == pytest.approx((raw[0, 50] + 10.0) / 2)
        assert sig.values[1, 50] == pytest.approx(raw[1, 51])  # NaN skipped
    else:
        assert sig.values[0, 50] == pytest.approx(raw[0, 50])
        assert sig.values[1, 50] == pytest.approx(raw[1, 51])  # first *known* value
    assert sig.attrs["duplicates"] == how


def test_decreasing_time_is_still_refused() -> None:
    da = _duplicated().isel(time=slice(None, None, -1))
    with pytest.raises(ValidationError):
        sync.as_signals(da, duplicates="mean")


def test_phasors_share_the_work_and_agree_with_phases() -> None:
    group = oscillator_group(5, 60.0, FS, snr_db=10.0, seed=8)
    theta = sync.phases(group.signals, FS)
    z = sync.phasors(group.signals, FS)
    assert np.iscomplexobj(z.values)
    np.testing.assert_allclose(np.angle(z.values), theta.values, atol=1e-12)
    np.testing.assert_allclose(
        sync.order_parameter(z).values, sync.order_parameter(theta).values, atol=1e-12
    )
    np.testing.assert_allclose(
        sync.phase_locking(z).values, sync.phase_locking(theta).values, atol=1e-12
    )


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=20, max_size=60), st.integers(0, 2**31 - 1))
def test_merged_duplicates_equal_pandas_groupby(repeats: list[int], seed: int) -> None:
    # each timestamp of a 10 Hz grid stands 1 + repeats[i] times, with random NaN
    steps = np.repeat(np.arange(len(repeats)), np.asarray(repeats) + 1)
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((2, steps.size))
    values[rng.random(values.shape) < 0.2] = np.nan
    values[:, np.searchsorted(steps, [0, len(repeats) - 1])] = 1.0  # both ends known
    time = (steps * 100_000_000).astype("datetime64[ns]")
    da = xr.DataArray(values, dims=("sensor", "time"), coords={"time": time})
    for how in ("mean", "first"):
        sig = sync.as_signals(da, fs=10.0, duplicates=how)  # type: ignore[arg-type]
        frame = pd.DataFrame(values.T, index=steps)
        reference = (
            (frame.groupby(level=0).mean() if how == "mean" else frame.groupby(level=0).first())
            .to_numpy()
            .T
        )
        # the grid interpolates across NaN: compare where the merged sample is known
        known = ~np.isnan(reference)
        np.testing.assert_allclose(sig.values[known], reference[known], rtol=0, atol=1e-12)
