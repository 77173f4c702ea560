"""Kuramoto R, mean phase, windowed R and PLV against ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sensocto_lab.errors import ValidationError
from sensocto_lab.sync.kuramoto import (
    order_parameter,
    phase_locking,
    synchrony,
    windowed_order_parameter,
)
from sensocto_lab.sync.phase import phases
from sensocto_lab.sync.synthetic import oscillator_group

FS = 10.0
EDGE = 200


@pytest.mark.parametrize("coupling", [0.0, 0.6, 3.0])
def test_r_tracks_the_true_order_parameter(coupling: float) -> None:
    group = oscillator_group(12, 160.0, FS, coupling=coupling, snr_db=10.0, seed=8)
    r = synchrony(group.signals, FS).values[EDGE:-EDGE]
    r_true = group.true_order_parameter[EDGE:-EDGE]
    error = np.abs(r - r_true)
    assert np.median(error) <= 0.05
    assert np.percentile(error, 95) <= 0.1


def test_identical_phases_give_r_one() -> None:
    group = oscillator_group(6, 60.0, FS, identical=True, snr_db=None, seed=9)
    r = synchrony(group.signals, FS)
    np.testing.assert_allclose(r.values, 1.0, atol=1e-12)
    theta = np.tile(np.linspace(-3, 3, 50), (5, 1))
    np.testing.assert_allclose(order_parameter(theta).values, 1.0, atol=1e-12)
    np.testing.assert_allclose(order_parameter(theta)["psi"].values, theta[0], atol=1e-12)


@pytest.mark.parametrize("n", [4, 16, 64])
def test_independent_uniform_phases_give_r_about_one_over_sqrt_n(n: int) -> None:
    rng = np.random.default_rng(10)
    theta = rng.uniform(-np.pi, np.pi, size=(n, 4000))  # 4000 independent trials
    r = order_parameter(theta).values
    # E[R^2] = 1/N exactly for independent uniform phases; 4000 trials bound it to ~5 %.
    assert np.sqrt(np.mean(r**2)) == pytest.approx(1 / np.sqrt(n), rel=0.05)


def test_synchrony_equals_order_parameter_of_phases() -> None:
    group = oscillator_group(5, 60.0, FS, coupling=1.0, seed=11)
    x = group.signals.copy()
    x[2, 200:260] = np.nan
    fused = synchrony(x, FS)
    stepwise = order_parameter(phases(x, FS))
    np.testing.assert_allclose(fused.values, stepwise.values, atol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(fused["n"].values, stepwise["n"].values)
    assert fused["n"].values[230] == 4 and fused["n"].values[100] == 5
    assert fused.attrs["units"] == "1" and "hilbert" in fused.attrs["method"]
    # R from phases is still R: the phases' radians and name do not leak into it
    assert stepwise.attrs["units"] == "1"
    assert stepwise.attrs["long_name"] == "Kuramoto order parameter"
    assert "hilbert" in stepwise.attrs["method"]


def test_too_few_participants_give_nan() -> None:
    theta = np.zeros((3, 4))
    theta[1:, 2] = np.nan
    r = order_parameter(theta)
    assert np.isnan(r.values[2]) and r.values[0] == 1.0 and r["n"].values[2] == 1


def test_windowed_r_is_the_mean_over_each_window() -> None:
    group = oscillator_group(8, 100.0, FS, coupling=0.5, seed=12)
    r = synchrony(group.signals, FS)
    rw = windowed_order_parameter(r, 10.0)
    assert rw.sizes["time"] == 10
    assert rw.values[3] == pytest.approx(float(r.values[300:400].mean()))
    assert rw["time"].values[0] == pytest.approx(r["time"].values[50])
    overlapping = windowed_order_parameter(r, 10.0, step_s=5.0)
    assert overlapping.sizes["time"] == 19
    assert "10 s" in rw.attrs["method"]
    with pytest.raises(ValidationError):
        windowed_order_parameter(r.assign_attrs(fs=None), 10.0)


def test_plv_is_one_for_locked_pairs_and_small_for_independent_ones() -> None:
    rng = np.random.default_rng(13)
    t = np.arange(3000) / FS
    base = 2 * np.pi * 0.25 * t
    theta = np.stack(
        [
            base,
            base + 1.0,  # locked at a constant lag
            np.cumsum(rng.normal(0, 0.3, t.size)) + 2 * np.pi * 0.31 * t,  # independent
        ]
    )
    da = xr.DataArray(theta, dims=("sensor", "time"), coords={"sensor": ["a", "b", "c"]})
    plv = phase_locking(da)
    assert plv.dims == ("sensor", "sensor_2")
    assert plv.sel(sensor="a", sensor_2="b") == pytest.approx(1.0)
    assert float(plv.sel(sensor="a", sensor_2="c")) < 0.1
    np.testing.assert_allclose(plv.values, plv.values.T)
    np.testing.assert_allclose(np.diag(plv.values), 1.0)
    assert int(plv["n"].sel(sensor="a", sensor_2="c")) == 3000


def test_plv_skips_samples_where_either_phase_is_unknown() -> None:
    theta = np.zeros((2, 10))
    theta[1, :5] = np.pi / 2
    theta[1, :3] = np.nan
    plv = phase_locking(theta)
    assert int(plv["n"][0, 1]) == 7
    assert float(plv[0, 1]) == pytest.approx(np.abs(2 * np.exp(-1j * np.pi / 2) + 5) / 7)


def test_phase_input_must_be_two_dimensional() -> None:
    with pytest.raises(ValidationError):
        order_parameter(np.zeros(5))
    with pytest.raises(ValidationError):
        phase_locking(xr.DataArray(np.zeros((2, 3)), dims=("time", "sensor")))


def test_progress_bar_over_participants_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    group = oscillator_group(3, 30.0, FS, seed=14)
    synchrony(group.signals, FS, progress=True)
    assert "participants" in capsys.readouterr().err
    synchrony(group.signals, FS)
    assert capsys.readouterr().err == ""


def test_uncoupled_groups_through_the_whole_pipeline_give_r_about_one_over_sqrt_n() -> None:
    rng = np.random.default_rng(15)
    n = 16
    squares = []
    for _ in range(40):
        group = oscillator_group(n, 60.0, FS, snr_db=10.0, seed=rng)
        r = synchrony(group.signals, FS).values[EDGE:-EDGE]
        squares.append(np.mean(r**2))
    assert np.sqrt(np.mean(squares)) == pytest.approx(1 / np.sqrt(n), rel=0.15)
