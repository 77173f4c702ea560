"""Our R-peak detector against neurokit2's ecg_peaks and against the true beats."""

from __future__ import annotations

from collections.abc import Callable

import neurokit2 as nk
import numpy as np
import pytest

from sensocto_lab import physio
from sensocto_lab.physio.peaks import PEAK_SETTINGS, PeakSettings, detect_peaks

F1 = Callable[..., float]


def _nk_beats(ecg: np.ndarray, fs: float) -> np.ndarray:
    _, info = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=fs), sampling_rate=fs)
    return np.asarray(info["ECG_R_Peaks"]) / fs


@pytest.mark.parametrize("fs", [130, 250, 500])
@pytest.mark.parametrize("noise", [0.01, 0.1])
def test_same_beats_as_neurokit2_on_its_simulated_ecg(fs: int, noise: float, beat_f1: F1) -> None:
    ecg = nk.ecg_simulate(
        duration=300, sampling_rate=fs, heart_rate=70, noise=noise, random_state=1
    )
    ours = detect_peaks(ecg, fs, "ecg") / fs
    theirs = _nk_beats(ecg, fs)
    assert beat_f1(ours, theirs) >= 0.995
    # where both find a beat they put it at the same sample (within one sample)
    near = np.abs(ours[:, None] - theirs[None]).min(axis=1)
    assert np.median(near[near < 0.05]) <= 1.0 / fs


@pytest.mark.parametrize("fs", [130, 250, 500])
@pytest.mark.parametrize(("ectopic", "noise", "wander"), [(0.0, 0.02, 0.1), (0.05, 0.1, 0.5)])
def test_finds_the_true_beats_with_noise_wander_and_ectopics(
    fs: int, ectopic: float, noise: float, wander: float, beat_f1: F1
) -> None:
    sim = physio.simulate_ecg(600, fs, ectopic_share=ectopic, noise=noise, wander=wander, seed=3)
    ours = detect_peaks(sim.ecg, fs, "ecg") / fs
    assert beat_f1(ours, sim.r_times) >= 0.999
    assert beat_f1(ours, _nk_beats(sim.ecg, fs)) >= 0.995
    if ectopic:
        assert sim.ectopic.sum() >= 10  # the record does hold ectopic beats


def test_the_old_prominence_rule_overcounts_noisy_ecg_where_the_gradient_rule_does_not(
    beat_f1: F1,
) -> None:
    sim = physio.simulate_ecg(300, 130, noise=0.1, seed=3)
    old = PeakSettings((5.0, 30.0), 0.3, 0.3, 2.0)  # the detector before issue 17
    assert detect_peaks(sim.ecg, 130, settings=old).size > 1.05 * sim.r_times.size
    assert beat_f1(detect_peaks(sim.ecg, 130, "ecg") / 130, sim.r_times) == 1.0


def test_rows_in_one_pass_equal_rows_one_by_one() -> None:
    sims = [physio.simulate_ecg(60, 130, seed=s).ecg for s in range(3)]
    together = physio.peaks.detect_peaks_rows(np.stack(sims), 130, "ecg")
    for alone, ecg in zip(together, sims, strict=True):
        np.testing.assert_array_equal(alone, detect_peaks(ecg, 130, "ecg"))


def test_flat_and_short_runs_have_no_beats() -> None:
    assert detect_peaks(np.zeros(2000), 130, "ecg").size == 0
    assert detect_peaks(np.ones(5), 130, "ecg").size == 0
    assert PEAK_SETTINGS["ecg"].detector == "gradient"
