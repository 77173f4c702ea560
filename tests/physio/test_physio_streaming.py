"""The streaming beat detector: neurokit2's beats, whatever the chunking, as offline."""

from __future__ import annotations

from collections.abc import Callable

import neurokit2 as nk
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensocto_lab import physio
from sensocto_lab.errors import ValidationError
from sensocto_lab.physio.streaming import StreamingBeats

FS = 130.0
F1 = Callable[..., float]


def _stream(ecg: np.ndarray, chunks: list[int] | int, **kw: object) -> np.ndarray:
    det = StreamingBeats(FS, **kw)  # type: ignore[arg-type]
    out, i, k = [], 0, 0
    while i < ecg.size:
        size = chunks if isinstance(chunks, int) else chunks[k % len(chunks)]
        out.append(det.push(ecg[i : i + size]))
        i, k = i + size, k + 1
    out.append(det.flush())
    return np.concatenate(out)


@pytest.fixture(scope="module")
def record() -> physio.SimulatedECG:
    # a PMD ECG at 130 Hz with noise, baseline wander and 5 % ectopic beats
    return physio.simulate_ecg(600, FS, ectopic_share=0.05, noise=0.1, wander=0.5, seed=7)


def test_same_beats_as_neurokit2(record: physio.SimulatedECG, beat_f1: F1) -> None:
    _, info = nk.ecg_peaks(nk.ecg_clean(record.ecg, sampling_rate=FS), sampling_rate=FS)
    theirs = np.asarray(info["ECG_R_Peaks"]) / FS
    ours = _stream(record.ecg, 13)
    assert beat_f1(ours, theirs) >= 0.995
    assert beat_f1(ours, record.r_times) >= 0.999
    assert record.ectopic.sum() >= 10


@pytest.mark.parametrize("seed", [1, 2])
def test_same_beats_as_neurokit2_on_its_simulator_with_wander(seed: int, beat_f1: F1) -> None:
    ecg = nk.ecg_simulate(
        duration=300, sampling_rate=FS, heart_rate=75, noise=0.1, random_state=seed
    )
    t = np.arange(ecg.size) / FS
    ecg = ecg + 0.4 * np.sin(2 * np.pi * 0.2 * t) + 0.2 * np.sin(2 * np.pi * 0.05 * t + 1)
    _, info = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=FS), sampling_rate=FS)
    assert beat_f1(_stream(ecg, 13), np.asarray(info["ECG_R_Peaks"]) / FS) >= 0.995


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=6))
def test_chunking_does_not_change_the_beats(chunks: list[int]) -> None:
    ecg = physio.simulate_ecg(40, FS, ectopic_share=0.05, noise=0.05, seed=1).ecg
    np.testing.assert_array_equal(_stream(ecg, chunks), _stream(ecg, ecg.size))


def test_streaming_equals_the_offline_detector(record: physio.SimulatedECG) -> None:
    offline = physio.detect_peaks(record.ecg, FS, "ecg") / FS
    online = _stream(record.ecg, 65)
    assert online.size == offline.size
    np.testing.assert_allclose(online, offline, atol=1e-6)


def test_heart_rate_rr_latency_and_ns_times() -> None:
    sim = physio.simulate_ecg(30, FS, heart_rate=60, hrv_ms=0, noise=0.02, seed=2)
    det = StreamingBeats(FS, start_ns=1_767_225_600 * 10**9)
    reported = [det.push(sim.ecg[i : i + 130]) for i in range(0, sim.ecg.size, 130)]
    assert det.heart_rate() == pytest.approx(60.0, abs=0.5)
    np.testing.assert_allclose(det.rr_ms(), 1000.0, atol=10)
    stats = det.statistics()
    assert stats.latency_s == pytest.approx(2.5) and stats.samples == sim.ecg.size
    first = np.concatenate(reported)[0]
    assert first == pytest.approx(1_767_225_600 * 10**9 + sim.r_times[0] * 1e9, abs=10e6)


def test_dropouts_are_gaps() -> None:
    sim = physio.simulate_ecg(60, FS, noise=0.02, seed=4)
    x = sim.ecg.copy()
    x[int(20 * FS) : int(25 * FS)] = np.nan
    beats = _stream(x, 100)
    assert not ((beats > 20.3) & (beats < 24.7)).any()
    assert ((beats > 26) & (beats < 58)).sum() >= 30


def test_bad_settings_and_samples_are_refused() -> None:
    with pytest.raises(ValidationError):
        StreamingBeats(FS, window_s=2.0, hop_s=1.0, margin_s=1.0)
    with pytest.raises(ValidationError):
        StreamingBeats(FS).push(np.array([1.0, np.inf]))
