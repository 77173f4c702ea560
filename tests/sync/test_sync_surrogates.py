"""Surrogate tests: real coupling is found, chance coupling is found 5 % of the time."""

from __future__ import annotations

import numpy as np
import pytest

from sensocto_lab.errors import ValidationError
from sensocto_lab.sync.surrogates import fourier_surrogates, shift_surrogates, surrogate_test
from sensocto_lab.sync.synthetic import oscillator_group

FS = 4.0


@pytest.mark.parametrize("surrogate", ["shift", "fourier"])
def test_a_coupled_group_is_significant(surrogate: str) -> None:
    group = oscillator_group(8, 120.0, FS, coupling=1.5, seed=20)
    result = surrogate_test(group.signals, FS, surrogate=surrogate, n_surrogates=99, seed=0)
    assert float(result.observed) > 0.9
    assert float(result.p_value) == pytest.approx(1 / 100)
    assert result.null.shape == (99,) and float(result.null.max()) < float(result.observed)
    assert result.attrs["surrogate"] == surrogate and result.attrs["n_surrogates"] == 99


@pytest.mark.slow
@pytest.mark.parametrize("surrogate", ["shift", "fourier"])
def test_false_positive_rate_on_uncoupled_groups(surrogate: str) -> None:
    rng = np.random.default_rng(21)
    trials = 1000
    p = np.empty(trials)
    for k in range(trials):
        group = oscillator_group(4, 60.0, FS, freq_hz=(0.15, 0.35), seed=rng)
        result = surrogate_test(
            group.signals, FS, surrogate=surrogate, n_surrogates=99, seed=rng, min_shift_s=5.0
        )
        p[k] = float(result.p_value)
    rate = np.mean(p <= 0.05)
    assert 0.03 <= rate <= 0.07, rate


def test_p_value_is_one_plus_count_over_one_plus_n() -> None:
    group = oscillator_group(5, 60.0, FS, seed=22)
    result = surrogate_test(group.signals, FS, n_surrogates=19, seed=1, min_shift_s=5.0)
    count = int((result.null.values >= float(result.observed)).sum())
    assert float(result.p_value) == pytest.approx((1 + count) / 20)
    again = surrogate_test(group.signals, FS, n_surrogates=19, seed=1, min_shift_s=5.0)
    np.testing.assert_array_equal(again.null.values, result.null.values)


def test_pairwise_plv_p_values() -> None:
    group = oscillator_group(4, 120.0, FS, coupling=2.0, seed=23)
    result = surrogate_test(
        group.signals, FS, statistic="PLV", surrogate="fourier", n_surrogates=49, seed=2
    )
    assert result.observed.dims == ("sensor", "sensor_2")
    assert result.null.dims == ("surrogate", "sensor", "sensor_2")
    p = result.p_value.values
    assert np.isnan(np.diag(p)).all()
    off = p[~np.eye(4, dtype=bool)]
    assert np.all(off == pytest.approx(1 / 50))


def test_shift_surrogates_rotate_each_row_by_its_own_shift() -> None:
    x = np.arange(10.0)[np.newaxis, :].repeat(2, axis=0)
    out = shift_surrogates(x.astype(complex), np.array([[1, 3]]))
    assert out.shape == (1, 2, 10)
    assert out[0, 0, 0].real == 1 and out[0, 1, 0].real == 3 and out[0, 1, -1].real == 2


def test_fourier_surrogates_keep_the_power_spectrum() -> None:
    rng = np.random.default_rng(24)
    x = rng.standard_normal((3, 64))
    spectrum = np.fft.rfft(x, axis=-1)
    z = fourier_surrogates(spectrum, 64, rng, 5)
    assert z.shape == (5, 3, 64)
    power = np.abs(np.fft.rfft(z.real, axis=-1))
    np.testing.assert_allclose(power, np.broadcast_to(np.abs(spectrum), power.shape), atol=1e-9)
    assert not np.allclose(z[0].real, x)


def test_progress_bar_shows_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    group = oscillator_group(3, 40.0, FS, seed=25)
    surrogate_test(group.signals, FS, n_surrogates=5, seed=0, min_shift_s=5.0, progress=True)
    assert "shift surrogates" in capsys.readouterr().err
    surrogate_test(group.signals, FS, n_surrogates=5, seed=0, min_shift_s=5.0)
    assert capsys.readouterr().err == ""  # not in a notebook: no bar by default


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"statistic": "coherence"}, "invalid_parameter"),
        ({"surrogate": "bootstrap"}, "invalid_parameter"),
        ({"n_surrogates": 0}, "invalid_parameter"),
        ({"surrogate": "fourier", "method": "peaks"}, "invalid_parameter"),
        ({"min_shift_s": 30.0}, "recording_too_short"),
    ],
)
def test_bad_requests_are_refused(kwargs: dict, reason: str) -> None:
    group = oscillator_group(3, 40.0, FS, seed=26)
    with pytest.raises(ValidationError) as err:
        surrogate_test(group.signals, FS, **kwargs)
    assert err.value.reason == reason


def test_event_phases_work_with_shift_surrogates() -> None:
    group = oscillator_group(6, 120.0, FS, coupling=1.5, seed=27)
    result = surrogate_test(group.signals, FS, method="peaks", n_surrogates=49, seed=3)
    assert "peaks" in result.attrs["method"]
    assert float(result.p_value) == pytest.approx(1 / 50)
