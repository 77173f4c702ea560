"""The online computer: same answer as offline on the same window, better than the heuristic."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sensocto_lab.errors import ValidationError
from sensocto_lab.physio.grid import as_signals
from sensocto_lab.sync.baseline import minmax_phase
from sensocto_lab.sync.kuramoto import order_parameter, synchrony
from sensocto_lab.sync.online import OnlineConfig, OnlineSynchrony
from sensocto_lab.sync.phase import phases
from sensocto_lab.sync.synthetic import oscillator_group

T0 = 1_767_225_600 * 10**9
SENSOR_HZ = 20.0


def _recording(n: int, duration_s: float, seed: int, coupling: float = 0.4):
    group = oscillator_group(n, duration_s, SENSOR_HZ, coupling=coupling, snr_db=10.0, seed=seed)
    ts = T0 + np.round(np.arange(group.signals.shape[1]) * 1e9 / SENSOR_HZ).astype(np.int64)
    return group, ts


def _feed(online: OnlineSynchrony, signals: np.ndarray, ts: np.ndarray, lo: int, hi: int) -> None:
    for i in range(signals.shape[0]):
        online.push(f"p{i}", ts[lo:hi], signals[i, lo:hi])


def test_estimate_equals_offline_on_the_same_window() -> None:
    group, ts = _recording(10, 60.0, seed=30)
    online = OnlineSynchrony()
    x = group.signals.copy()
    x[3, 700:760] = np.nan  # participant 3 drops out for 3 s: its window has a gap
    for lo in range(0, 1200, 7):  # uneven batches
        for i in range(10):
            keep = ~np.isnan(x[i, lo : lo + 7])
            online.push(f"p{i}", ts[lo : lo + 7][keep], x[i, lo : lo + 7][keep])
    now = int(ts[1199])
    est = online.estimate(now)
    window = online.window(now)
    m = online.config.window - 1 - online.config.lag
    offline = order_parameter(phases(window))
    assert est.r == pytest.approx(float(offline.values[m]), abs=1e-9)
    assert est.psi == pytest.approx(float(offline["psi"].values[m]), abs=1e-9)
    assert est.n == int(offline["n"].values[m]) == 10
    assert est.t_ns == int(window.time()[m].astype(np.int64))
    assert np.isnan(window.values[3]).any()


def test_window_matches_offline_resampling_of_the_raw_samples() -> None:
    group, ts = _recording(3, 40.0, seed=31)
    online = OnlineSynchrony()
    for lo in range(0, 800, 10):
        _feed(online, group.signals, ts, lo, lo + 10)
    now = int(ts[-1])
    live = online.window(now)
    raw = xr.DataArray(
        group.signals,
        dims=("sensor", "time"),
        coords={"sensor": ["p0", "p1", "p2"], "time": ts.astype("datetime64[ns]")},
    )
    offline = as_signals(raw, fs=10.0)
    assert live.start_ns is not None and offline.start_ns is not None
    offset = (live.start_ns - offline.start_ns) // 100_000_000
    overlap = offline.values[:, offset : offset + live.n_samples]
    np.testing.assert_allclose(live.values[:, : overlap.shape[1]], overlap, atol=1e-12)


def test_live_r_agrees_with_offline_r_of_the_whole_recording() -> None:
    group, ts = _recording(12, 120.0, seed=32, coupling=0.8)
    online = OnlineSynchrony()
    raw = xr.DataArray(
        group.signals,
        dims=("sensor", "time"),
        coords={"sensor": [f"p{i}" for i in range(12)], "time": ts.astype("datetime64[ns]")},
    )
    full = synchrony(raw, 10.0)
    full_ns = full["time"].values.astype(np.int64)
    diffs = []
    for lo in range(0, ts.size, 10):
        _feed(online, group.signals, ts, lo, lo + 10)
        if lo >= 40 * SENSOR_HZ and lo % 10 == 0 and lo < ts.size - 30 * SENSOR_HZ:
            est = online.estimate(int(ts[lo + 9]))
            diffs.append(abs(est.r - float(full.values[np.searchsorted(full_ns, est.t_ns)])))
    assert np.median(diffs) <= 0.05
    assert np.percentile(diffs, 90) <= 0.1


def test_live_phases_beat_the_min_max_heuristic() -> None:
    group, ts = _recording(16, 90.0, seed=33)
    online = OnlineSynchrony()
    ours, theirs = [], []
    for lo in range(0, ts.size, 10):
        _feed(online, group.signals, ts, lo, lo + 10)
        hi = min(lo + 10, ts.size)
        if hi > 35 * SENSOR_HZ:
            est = online.estimate(int(ts[hi - 1]))
            j = np.searchsorted(ts, est.t_ns)
            ours.append(np.abs(np.angle(np.exp(1j * (est.phases - group.phases[:, j])))))
            # Sensocto's heuristic on its 50-sample buffer, at the newest sample
            guess = minmax_phase(group.signals[:, hi - 50 : hi])
            truth = group.phases[:, hi - 1]
            theirs.append(np.abs(np.angle(np.exp(1j * (guess - truth)))))
    ours_median, theirs_median = np.median(ours), np.median(theirs)
    assert ours_median <= 0.3
    assert ours_median < 0.6 * theirs_median, (ours_median, theirs_median)


def test_a_silent_participant_leaves_the_estimate() -> None:
    group, ts = _recording(4, 80.0, seed=34)
    online = OnlineSynchrony()
    for lo in range(0, ts.size, 20):
        upto = 3 if lo >= 20 * SENSOR_HZ else 4  # p3 stops after 20 s
        _feed(online, group.signals[:upto], ts, lo, lo + 20)
    est = online.estimate(int(ts[-1]))
    assert est.n == 3 and np.isnan(est.phases[3])
    assert est.sensors == ("p0", "p1", "p2", "p3")


def test_too_few_participants_give_nan_r() -> None:
    group, ts = _recording(1, 40.0, seed=35)
    online = OnlineSynchrony()
    _feed(online, group.signals, ts, 0, ts.size)
    est = online.estimate(int(ts[-1]))
    assert est.n == 1 and np.isnan(est.r) and not np.isnan(est.phases[0])


def test_replayed_samples_are_dropped_and_counted() -> None:
    online = OnlineSynchrony()
    t = T0 + np.arange(10, dtype=np.int64) * 50_000_000
    online.push("a", t, np.arange(10.0))
    before = online.window(int(t[-1])).values.copy()
    online.push("a", t[5:], np.full(5, 99.0))
    assert online.dropped_samples == 5
    np.testing.assert_array_equal(online.window(int(t[-1])).values, before)


@pytest.mark.parametrize(
    ("ts", "values", "reason"),
    [
        ([T0, T0 + 1], [1.0], "invalid_shape"),
        ([T0, T0 + 1], [1.0, np.nan], "non_finite_value"),
        ([T0 + 5, T0], [1.0, 2.0], "unordered_timestamps"),
    ],
)
def test_bad_batches_are_refused_and_change_nothing(ts: list, values: list, reason: str) -> None:
    online = OnlineSynchrony()
    with pytest.raises(ValidationError) as err:
        online.push("a", ts, values)
    assert err.value.reason == reason
    assert online.sensors == ()


def test_config_is_checked() -> None:
    with pytest.raises(ValidationError):
        OnlineConfig(lag_s=40.0)
    with pytest.raises(ValidationError):
        OnlineConfig(window_s=5.0)
    with pytest.raises(ValidationError):
        OnlineConfig(fs=0.0)


def test_many_participants_grow_the_rings() -> None:
    online = OnlineSynchrony()
    t = T0 + np.arange(300, dtype=np.int64) * 100_000_000
    x = np.cos(2 * np.pi * 0.25 * (t - T0) / 1e9)
    for i in range(40):
        online.push(f"s{i}", t, x)
    est = online.estimate(int(t[-1]))
    assert est.n == 40 and est.r == pytest.approx(1.0)
