"""connectivity() against hypyp's compute_sync, value by value, on the same analytic signals."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypyp.analyses import compute_sync

from sensocto_lab import sync
from sensocto_lab.errors import ValidationError
from sensocto_lab.sync.connectivity import MEASURES, connectivity_matrix
from sensocto_lab.sync.phase import analytic_signal
from sensocto_lab.sync.synthetic import oscillator_group

FS = 10.0
HYPYP = [m for m in MEASURES if m != "nm_plv"]


def _hypyp(z: np.ndarray, measure: str) -> np.ndarray:
    """hypyp's (2 participants, 1 epoch, channels, 1 band, time) layout, our row order."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return compute_sync(z.reshape(2, 1, z.shape[0] // 2, 1, -1), measure)[0]


@pytest.fixture(scope="module")
def analytic() -> np.ndarray:
    group = oscillator_group(8, 240.0, FS, snr_db=5.0, coupling=0.6, phase_noise=0.1, seed=21)
    z = analytic_signal(group.signals, FS)
    # amplitudes that differ per participant and drift, so coh, envcorr and powcorr are not trivial
    t = np.arange(z.shape[1]) / FS
    return z * (1 + 0.5 * np.sin(2 * np.pi * 0.01 * t * np.arange(1, 9)[:, None]))


@pytest.mark.parametrize("measure", HYPYP)
def test_each_measure_equals_hypyp_on_the_same_analytic_signals(
    analytic: np.ndarray, measure: str
) -> None:
    ours = sync.connectivity(analytic, measure)  # type: ignore[arg-type]
    theirs = _hypyp(analytic, measure)
    assert ours.dims == ("sensor", "sensor_2") and ours.attrs["measure"] == measure
    np.testing.assert_allclose(ours.values, theirs, rtol=0, atol=1e-9)
    off = ~np.eye(8, dtype=bool)
    assert np.ptp(ours.values[off]) > 1e-3  # the pairs do differ: the check is not vacuous


def test_real_signals_are_band_passed_and_made_analytic_inside() -> None:
    group = oscillator_group(6, 120.0, FS, snr_db=5.0, coupling=0.5, seed=4)
    band = (0.15, 0.4)
    da = xr.DataArray(group.signals, dims=("sensor", "time"), coords={"time": np.arange(1200) / FS})
    ours = sync.connectivity(da, "wpli", band=band, order=3)
    z = analytic_signal(group.signals, FS, band, 3)
    np.testing.assert_allclose(ours.values, _hypyp(z, "wpli"), rtol=0, atol=1e-9)
    assert "0.15-0.4 Hz" in ours.attrs["method"]


def test_a_complex_dataarray_is_used_as_given(analytic: np.ndarray) -> None:
    da = xr.DataArray(analytic, dims=("sensor", "time"), coords={"sensor": list("abcdefgh")})
    ours = sync.connectivity(da, "coh")
    assert list(ours["sensor_2"].values) == list("abcdefgh")
    np.testing.assert_allclose(ours.values, _hypyp(analytic, "coh"), atol=1e-9)


def test_phasors_give_the_phase_measures_of_the_signals(analytic: np.ndarray) -> None:
    group = oscillator_group(4, 120.0, FS, snr_db=5.0, coupling=0.5, seed=9)
    plv = sync.connectivity(sync.phasors(group.signals, FS), "plv")
    np.testing.assert_allclose(
        plv.values, sync.phase_locking(sync.phases(group.signals, FS)).values
    )


@pytest.mark.parametrize(
    "measure", ["plv", "accorr", "coh", "imcoh", "pli", "wpli", "envcorr", "powcorr"]
)
def test_gaps_leave_each_pair_its_shared_samples(analytic: np.ndarray, measure: str) -> None:
    z = analytic.copy()
    z[1, 300:700] = np.nan
    z[2, 1500:1600] = np.nan
    z[3, 650:900] = np.nan
    ours = sync.connectivity(z, measure)  # type: ignore[arg-type]
    for j, k in [(0, 1), (1, 2), (1, 3), (2, 3), (4, 5)]:
        both = ~np.isnan(z[j]) & ~np.isnan(z[k])
        pair = np.stack([z[j, both], z[k, both]])
        assert ours.values[j, k] == pytest.approx(_hypyp(pair, measure)[0, 1], abs=1e-9)
        assert ours["n"].values[j, k] == both.sum()


def test_ccorr_with_gaps_centres_each_participant_on_its_own_samples(analytic: np.ndarray) -> None:
    # On purpose: the circular mean is a property of the participant, not of the pair.
    z = analytic.copy()
    z[1, 300:700] = np.nan
    ours = sync.connectivity(z, "ccorr").values[0, 1]
    theta = np.angle(z)
    mean = [np.angle(np.nanmean(np.exp(1j * theta[i]))) for i in (0, 1)]
    both = ~np.isnan(theta[1])
    a, b = (np.sin(theta[i, both] - mean[i]) for i in (0, 1))
    assert ours == pytest.approx(
        abs((a * b).sum()) / np.sqrt((a**2).sum() * (b**2).sum()), abs=1e-12
    )


def test_nm_plv_is_the_direct_formula() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(3000) / FS
    theta = np.stack(
        [2 * np.pi * 0.25 * t, 4 * 2 * np.pi * 0.25 * t + 0.3 * rng.standard_normal(3000)]
    )
    z = np.exp(1j * theta)
    values, shared = connectivity_matrix(z, "nm_plv", n=4, m=1)
    direct = np.abs(np.mean(np.exp(1j * (4 * theta[0] - theta[1]))))
    assert values[0, 1] == pytest.approx(direct, abs=1e-12) and values[0, 1] > 0.9
    assert values[1, 0] == pytest.approx(np.abs(np.mean(np.exp(1j * (4 * theta[1] - theta[0])))))
    assert values[1, 0] < 0.1 and shared[0, 1] == 3000
    assert sync.connectivity(z, "plv").values[0, 1] < 0.1  # 1:1 misses the 1:4 locking


def test_dead_sensor_is_a_nan_row() -> None:
    group = oscillator_group(4, 120.0, FS, seed=2)
    x = group.signals.copy()
    x[2] = 0.0
    for measure in HYPYP:
        values = sync.connectivity(x, measure, fs=FS).values  # type: ignore[arg-type]
        assert np.isnan(values[2]).all() and np.isnan(values[:, 2]).all(), measure
        assert np.isfinite(values[np.ix_([0, 1, 3], [0, 1, 3])]).all(), measure


def test_unknown_measure_is_refused() -> None:
    with pytest.raises(ValidationError):
        sync.connectivity(np.ones((2, 10), complex), "granger")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["plv", "ccorr", "coh", "imcoh", "pli", "wpli"]),
    st.integers(2, 6),
    st.integers(8, 80),
    st.floats(0.0, 0.4),
    st.integers(0, 2**31 - 1),
)
def test_any_analytic_input_gives_a_symmetric_matrix_in_0_1(
    measure: str, n: int, t: int, gaps: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, t)) + 1j * rng.standard_normal((n, t))
    z[rng.random((n, t)) < gaps] = np.nan
    values = sync.connectivity(z, measure).values  # type: ignore[arg-type]
    finite = np.isfinite(values)
    np.testing.assert_allclose(values, values.T, atol=1e-12, equal_nan=True)
    assert (values[finite] >= -1e-12).all() and (values[finite] <= 1 + 1e-12).all()
