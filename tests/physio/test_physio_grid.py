"""Putting recordings on one grid: gaps stay gaps, unequal rates line up, bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sensocto_lab.errors import ValidationError
from sensocto_lab.physio.grid import as_signals, bridge_gaps, grid_step_ns, resample_row

T0 = 1_767_225_600 * 10**9


def _history_like(rates_hz: dict[str, float], duration_s: float) -> xr.DataArray:
    """A DataArray shaped like store.history: union time axis, NaN where a sensor has none."""
    per_sensor = {}
    for sensor, rate in rates_hz.items():
        ts = T0 + np.round(np.arange(int(duration_s * rate)) * 1e9 / rate).astype(np.int64)
        per_sensor[sensor] = (ts, np.sin(2 * np.pi * 0.25 * (ts - T0) / 1e9))
    union = np.unique(np.concatenate([ts for ts, _ in per_sensor.values()]))
    values = np.full((len(rates_hz), union.size), np.nan)
    for i, (ts, x) in enumerate(per_sensor.values()):
        values[i, np.searchsorted(union, ts)] = x
    da = xr.DataArray(
        values,
        dims=("sensor", "time"),
        coords={"sensor": list(rates_hz), "time": union.astype("datetime64[ns]")},
        attrs={"units": "a.u."},
    )
    return da


def test_plain_array_keeps_nan_gaps_and_needs_fs() -> None:
    x = np.arange(20.0).reshape(2, 10)
    x[1, 3:5] = np.nan
    sig = as_signals(x, fs=5.0)
    assert sig.values.shape == (2, 10)
    assert np.isnan(sig.values[1, 3:5]).all() and not np.isnan(sig.values[0]).any()
    assert sig.start_ns is None and sig.time()[1] == pytest.approx(0.2)
    with pytest.raises(ValidationError) as err:
        as_signals(x)
    assert err.value.reason == "missing_fs"


def test_unequal_rates_land_on_one_grid_aligned_to_the_step() -> None:
    da = _history_like({"a": 10.0, "b": 25.0, "c": 4.0}, 20.0)
    sig = as_signals(da, fs=10.0)
    assert sig.fs == 10.0
    assert sig.start_ns is not None and sig.start_ns % grid_step_ns(10.0) == 0
    t = (sig.time().astype(np.int64) - T0) / 1e9
    expected = np.sin(2 * np.pi * 0.25 * t)
    for i in range(3):
        valid = ~np.isnan(sig.values[i])
        assert valid.sum() > 150
        # linear interpolation of a slow sine sampled at >= 4 Hz
        assert np.abs(sig.values[i, valid] - expected[valid]).max() < 0.05
    assert list(sig.sensors) == ["a", "b", "c"]


def test_default_rate_is_the_median_sensor_rate() -> None:
    da = _history_like({"a": 10.0, "b": 25.0, "c": 4.0}, 10.0)
    assert as_signals(da).fs == pytest.approx(10.0)


def test_a_dropout_is_a_nan_gap_not_interpolated() -> None:
    da = _history_like({"a": 10.0, "b": 10.0}, 30.0)
    t = da["time"].values
    drop = (t >= np.datetime64(T0 + 10 * 10**9, "ns")) & (t < np.datetime64(T0 + 13 * 10**9, "ns"))
    da[0, drop] = np.nan
    sig = as_signals(da, fs=10.0)
    grid_t = sig.time()
    inside = (grid_t > np.datetime64(T0 + 10 * 10**9, "ns")) & (
        grid_t < np.datetime64(T0 + 13 * 10**9 - 10**8, "ns")
    )
    assert inside.sum() >= 25
    assert np.isnan(sig.values[0, inside]).all()
    assert not np.isnan(sig.values[1, inside]).any()


def test_short_gaps_are_bridged_only_when_asked_and_marked() -> None:
    x = np.sin(np.linspace(0, 6, 100))[np.newaxis, :].repeat(2, axis=0)
    x[0, 40:43] = np.nan  # 0.3 s at 10 Hz
    x[1, 40:60] = np.nan  # 2 s
    plain = as_signals(x, fs=10.0)
    assert np.isnan(plain.values).sum() == 23 and plain.bridged is None
    sig = as_signals(x, fs=10.0, max_gap_s=0.5)
    assert sig.bridged is not None
    assert sig.bridged[0, 40:43].all() and sig.bridged.sum() == 3
    assert not np.isnan(sig.values[0]).any()
    assert np.isnan(sig.values[1, 40:60]).all()
    assert sig.values[0, 41] == pytest.approx((x[0, 39] + x[0, 43]) / 2)


def test_edge_gaps_are_never_bridged() -> None:
    x = np.array([[np.nan, 1.0, 2.0, np.nan]])
    values, bridged = bridge_gaps(x, 1.0, 10.0)
    assert np.isnan(values[0, [0, 3]]).all() and not bridged.any()


def test_dataset_picks_respiration_or_the_named_attribute() -> None:
    da = _history_like({"a": 10.0, "b": 10.0}, 5.0)
    ds = xr.Dataset({"respiration": da, "hr": da * 60})
    assert as_signals(ds, fs=10.0).values[0, 5] == pytest.approx(
        as_signals(da, fs=10.0).values[0, 5]
    )
    assert as_signals(ds, fs=10.0, attribute="hr").values[0, 5] == pytest.approx(
        60 * as_signals(da, fs=10.0).values[0, 5]
    )
    with pytest.raises(ValidationError) as err:
        as_signals(ds, attribute="ecg")
    assert err.value.reason == "unknown_attribute"
    with pytest.raises(ValidationError) as err:
        as_signals(xr.Dataset({"hr": da, "spo2": da}))
    assert err.value.reason == "missing_attribute"


@pytest.mark.parametrize(
    ("data", "kwargs", "reason"),
    [
        (np.array([[1.0, np.inf, 2.0]]), {"fs": 1.0}, "invalid_signal"),
        (np.array([["a", "b"]]), {"fs": 1.0}, "invalid_signal"),
        (np.zeros((2, 2, 2)), {"fs": 1.0}, "invalid_signal"),
        (np.zeros((2, 5)), {"fs": -3.0}, "invalid_fs"),
        (np.zeros((2, 5)), {"fs": 1.0, "max_gap_s": -1.0}, "invalid_parameter"),
        (xr.DataArray(np.zeros((2, 3)), dims=("a", "b")), {}, "invalid_signal"),
    ],
)
def test_bad_input_is_refused_with_a_reason(data: object, kwargs: dict, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        as_signals(data, **kwargs)  # type: ignore[arg-type]
    assert err.value.reason == reason


def test_vector_attributes_must_be_narrowed_to_one_component() -> None:
    da = xr.DataArray(np.zeros((2, 4, 3)), dims=("sensor", "time", "component"))
    with pytest.raises(ValidationError, match="component"):
        as_signals(da, fs=1.0)


def test_resample_row_is_nan_outside_and_in_gaps() -> None:
    t = np.array([0, 100, 200, 900, 1000], dtype=np.int64)
    x = np.array([0.0, 1.0, 2.0, 9.0, 10.0])
    grid = np.arange(-100, 1200, 50, dtype=np.int64)
    out = resample_row(t, x, grid, 100.0)
    assert np.isnan(out[grid < 0]).all() and np.isnan(out[grid > 1000]).all()
    assert np.isnan(out[(grid > 200) & (grid < 900)]).all()
    assert out[grid == 150][0] == pytest.approx(1.5)
    assert out[grid == 900][0] == pytest.approx(9.0)


def test_a_time_axis_in_seconds_stays_in_seconds() -> None:
    t = 100.0 + np.arange(50) / 10.0
    da = xr.DataArray(np.sin(t)[np.newaxis, :], dims=("sensor", "time"), coords={"time": t})
    sig = as_signals(da)
    assert sig.fs == pytest.approx(10.0)
    assert sig.time()[0] == pytest.approx(100.0) and sig.time()[-1] == pytest.approx(104.9)
    np.testing.assert_allclose(sig.values[0], np.sin(t), atol=1e-12)
