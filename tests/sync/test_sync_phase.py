"""Phase extraction against known phases: Hilbert and events, with gaps and bad parameters."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss

from sensocto_lab.errors import ValidationError
from sensocto_lab.sync.phase import (
    PEAK_SETTINGS,
    analytic_signal,
    bandpass,
    detect_peaks,
    event_phase,
    peak_phase,
    phases,
)
from sensocto_lab.sync.synthetic import oscillator_group

FS = 10.0
EDGE = 200  # 20 s at each end, away from the filter's edges


def _error(estimated: np.ndarray, true: np.ndarray) -> np.ndarray:
    return np.abs(np.angle(np.exp(1j * (estimated - true))))


@pytest.mark.parametrize("method", ["hilbert", "peaks"])
def test_median_phase_error_at_10_db_snr(method: str) -> None:
    group = oscillator_group(16, 150.0, FS, snr_db=10.0, phase_noise=0.05, seed=3)
    theta = phases(group.signals, FS, method=method).values
    error = _error(theta[:, EDGE:-EDGE], group.phases[:, EDGE:-EDGE])
    assert np.isnan(error).mean() < 0.01
    assert np.nanmedian(error) <= 0.3
    assert np.nanmedian(error) <= 0.15  # in practice a good deal better than the bar


def test_hilbert_matches_scipy_on_a_gap_free_signal() -> None:
    group = oscillator_group(3, 60.0, FS, seed=1)
    sos = ss.butter(2, [0.1, 0.6], btype="band", fs=FS, output="sos")
    reference = ss.hilbert(ss.sosfiltfilt(sos, group.signals, axis=-1), axis=-1)
    ours = analytic_signal(group.signals, FS)
    # the same FFT length as scipy's (no padding): equal to rounding, edges included
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12 * np.abs(reference).max())


def test_dataarray_out_has_units_method_and_coords() -> None:
    group = oscillator_group(4, 40.0, FS, seed=2)
    da = phases(group.signals, FS)
    assert da.dims == ("sensor", "time")
    assert da.attrs["units"] == "rad" and "hilbert" in da.attrs["method"]
    assert da.attrs["fs"] == FS
    assert da["time"].values[1] == pytest.approx(0.1)
    finite = da.values[~np.isnan(da.values)]
    assert finite.min() >= -np.pi and finite.max() <= np.pi


def test_gaps_are_not_filtered_across_and_short_runs_give_nan() -> None:
    group = oscillator_group(2, 120.0, FS, snr_db=10.0, seed=4)
    x = group.signals.copy()
    x[0, 500:540] = np.nan  # a 4 s dropout
    x[1, 100:1150] = np.nan  # leaves 10 s + 5 s runs: the 5 s one is below one 0.1 Hz period
    theta = phases(x, FS).values
    assert np.isnan(theta[0, 500:540]).all()
    assert np.isnan(theta[1, 1150:]).all() and not np.isnan(theta[1, :100]).any()
    # each side of the dropout still tracks the truth away from its edges
    for part in (slice(EDGE, 440), slice(600, 1200 - EDGE)):
        assert np.median(_error(theta[0, part], group.phases[0, part])) < 0.3
    # a gap-free row filtered alone equals the same row filtered with the others
    alone = bandpass(group.signals[:1], FS)
    together = bandpass(group.signals, FS)
    np.testing.assert_allclose(alone[0], together[0], rtol=0, atol=1e-12)


def test_bridged_samples_are_marked_on_the_phases() -> None:
    group = oscillator_group(2, 60.0, FS, seed=5)
    x = group.signals.copy()
    x[0, 300:303] = np.nan
    da = phases(x, FS, max_gap_s=0.5)
    assert da["bridged"].values[0, 300:303].all() and da["bridged"].values.sum() == 3
    assert not np.isnan(da.values[0, 300:303]).any()


def test_event_phase_rises_linearly_between_events() -> None:
    events = np.array([1.0, 3.0, 4.0, 20.0])
    t = np.array([0.5, 1.0, 1.5, 2.0, 3.5, 4.0, 10.0])
    theta = event_phase(events, t, max_interval=5.0)
    assert np.isnan(theta[0]) and np.isnan(theta[-1])  # before the first; 16 s interval
    assert theta[1] == pytest.approx(0.0)
    assert theta[2] == pytest.approx(np.pi / 2)
    assert abs(theta[3]) == pytest.approx(np.pi)
    assert theta[4] == pytest.approx(np.pi)
    assert theta[5] == pytest.approx(0.0)
    with pytest.raises(ValidationError):
        event_phase([2.0, 1.0], t)


def test_breath_peaks_are_found_where_the_true_phase_is_zero() -> None:
    group = oscillator_group(1, 120.0, FS, snr_db=10.0, seed=6)
    peaks = detect_peaks(group.signals[0], FS)
    cycles = np.unwrap(group.phases[0]) / (2 * np.pi)
    expected = np.count_nonzero(np.diff(np.floor(cycles)))
    assert abs(len(peaks) - expected) <= 1
    true_at_peaks = np.interp(peaks, np.arange(cycles.size), group.phases[0])
    assert np.median(np.abs(np.angle(np.exp(1j * true_at_peaks)))) < 0.2


def test_r_peaks_of_an_ecg() -> None:
    fs = 130.0
    rng = np.random.default_rng(7)
    beats = np.cumsum(rng.uniform(0.7, 1.0, 60))  # 60-86 bpm
    t = np.arange(int((beats[-1] + 1) * fs)) / fs
    ecg = np.zeros_like(t)
    for b in beats:  # a narrow R wave, a wide T wave, baseline wander and noise
        ecg += 1.2 * np.exp(-((t - b) ** 2) / (2 * 0.012**2))
        ecg += 0.3 * np.exp(-((t - b - 0.25) ** 2) / (2 * 0.05**2))
    ecg += 0.2 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0, 0.03, t.size)
    found = detect_peaks(ecg, fs, "ecg") / fs
    assert len(found) == len(beats)
    assert np.abs(found - beats).max() < 2 / fs
    theta = peak_phase(ecg[np.newaxis, :], fs, "ecg")[0]
    assert np.isnan(theta[: int(beats[0] * fs) - 1]).all()
    assert np.nanmax(np.abs(theta)) <= np.pi


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"band": (0.6, 0.1)}, "band"),
        ({"band": (6.0, 8.0)}, "Nyquist"),
        ({"order": 0}, "order"),
        ({"method": "wavelet"}, "method"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        phases(np.zeros((2, 200)), FS, **kwargs)


def test_unknown_peak_kind_is_refused() -> None:
    assert set(PEAK_SETTINGS) == {"respiration", "ecg"}
    with pytest.raises(ValidationError, match="kind"):
        phases(np.zeros((1, 200)), FS, method="peaks", kind="emg")
