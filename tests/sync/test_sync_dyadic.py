"""Windowed cross-correlation and rolling correlation against plain pandas references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from sensocto_lab import sync
from sensocto_lab.errors import ValidationError

FS = 4.0


def _pair(n: int = 1200, lag: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = np.convolve(rng.standard_normal(n + 200), np.ones(8) / 8, mode="same")
    x = base[100 : 100 + n] + 0.03 * rng.standard_normal(n)
    y = base[100 - lag : 100 - lag + n] + 0.03 * rng.standard_normal(n)  # y follows x by `lag`
    return x, y


def _pandas_wcc(x: np.ndarray, y: np.ndarray, w: int, step: int, max_lag: int) -> np.ndarray:
    xs, ys = pd.Series(x), pd.Series(y)
    cols = []
    for k in range(-max_lag, max_lag + 1):
        # window [i, i+w) of x against [i+k, i+k+w) of y: y shifted back by k
        rolled = xs.rolling(w).corr(ys.shift(-k))
        cols.append(rolled.to_numpy()[w - 1 :][::step])
    return np.stack(cols, axis=1)


def test_wcc_equals_pandas_rolling_corr_of_the_shifted_series() -> None:
    x, y = _pair()
    w, step, max_lag = 120, 20, 10
    out = sync.windowed_cross_correlation(
        x, y, window_s=w / FS, step_s=step / FS, max_lag_s=max_lag / FS, fs=FS
    )
    reference = _pandas_wcc(x, y, w, step, max_lag)
    assert out["r"].shape == reference.shape
    both = ~np.isnan(reference)
    np.testing.assert_array_equal(np.isnan(out["r"].values), ~both)
    np.testing.assert_allclose(out["r"].values[both], reference[both], rtol=0, atol=1e-9)


def test_peak_picking_finds_who_follows_and_by_how_much() -> None:
    x, y = _pair(lag=6)
    out = sync.windowed_cross_correlation(x, y, window_s=30, step_s=5, max_lag_s=4, fs=FS)
    assert np.nanmedian(out["peak_lag"].values) == pytest.approx(6 / FS)
    assert np.nanmedian(out["peak_r"].values) > 0.8
    back = sync.windowed_cross_correlation(y, x, window_s=30, step_s=5, max_lag_s=4, fs=FS)
    assert np.nanmedian(back["peak_lag"].values) == pytest.approx(-6 / FS)


def test_peak_is_the_local_maximum_nearest_zero_not_the_global_one() -> None:
    from sensocto_lab.sync.dyadic import _peaks

    lags = np.arange(-3, 4)
    # the global maximum at lag -2, a smaller local one at +2: the nearer-zero wins on a tie
    lag, value = _peaks(np.array([[0.1, 0.9, 0.5, 0.2, 0.3, 0.35, 0.1]]), lags)
    assert lag[0] == -2 and value[0] == 0.9
    # a bump at +1 is nearer zero than the global maximum at -2
    lag, value = _peaks(np.array([[0.1, 0.9, 0.5, 0.2, 0.3, 0.25, 0.1]]), lags)
    assert lag[0] == 1 and value[0] == 0.3
    # r still rising at the edge of the lag range is no peak (Boker et al.)
    lag, _ = _peaks(np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]]), lags)
    assert np.isnan(lag[0])


def test_gaps_give_nan_windows_only() -> None:
    x, y = _pair()
    y[400:410] = np.nan
    out = sync.windowed_cross_correlation(x, y, window_s=30, step_s=30, max_lag_s=0, fs=FS)
    r = out["r"].values[:, 0]
    t = out["time"].values
    hit = (t * FS <= 409) & (t * FS + 120 > 400)
    assert np.isnan(r[hit]).all() and np.isfinite(r[~hit]).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 60), st.integers(0, 2**31 - 1))
def test_rolling_correlation_is_pandas_rolling_corr(w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(200).cumsum()
    y = 0.5 * x + rng.standard_normal(200)
    ours = sync.rolling_correlation(x, y, window_s=w / FS, fs=FS).values
    theirs = pd.Series(x).rolling(w).corr(pd.Series(y)).to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_dataarrays_carry_time_and_fs() -> None:
    x, y = _pair(400)
    t = np.datetime64("2026-01-01", "ns") + (np.arange(400) * 250e6).astype("timedelta64[ns]")
    da = [xr.DataArray(v, dims="time", coords={"time": t}, attrs={"fs": FS}) for v in (x, y)]
    out = sync.windowed_cross_correlation(*da, window_s=30, max_lag_s=2)
    assert out["time"].values[1] == t[60] and out.attrs["step_s"] == 15.0
    assert sync.rolling_correlation(*da, window_s=10)["time"].values[-1] == t[-1]
    with pytest.raises(ValidationError):
        sync.windowed_cross_correlation(x, y[:-1], window_s=30, max_lag_s=2, fs=FS)
