"""Symbolic entropy, the Kuramoto weak null, mdRQA and spectral synchrony vs multiSyncPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st
from multiSyncPy import synchrony_metrics as msp

from sensocto_lab import sync
from sensocto_lab.sync.synthetic import oscillator_group

FS = 10.0


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(6, 300), st.integers(0, 2**31 - 1))
def test_symbolic_entropy_equals_multisyncpy(n: int, t: int, seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal((n, t))
    assert sync.symbolic_entropy(x) == pytest.approx(msp.symbolic_entropy(x), abs=1e-12)


def test_symbolic_entropy_is_lower_for_a_group_in_step() -> None:
    locked = oscillator_group(5, 120.0, FS, snr_db=20.0, coupling=2.0, seed=1).signals
    free = oscillator_group(5, 120.0, FS, snr_db=20.0, coupling=0.0, seed=1).signals
    assert sync.symbolic_entropy(locked) < sync.symbolic_entropy(free)
    assert sync.symbolic_entropy(locked) == pytest.approx(msp.symbolic_entropy(locked), abs=1e-12)


def test_symbolic_entropy_skips_unknown_samples() -> None:
    x = np.random.default_rng(3).standard_normal((3, 200))
    gappy = np.concatenate([x, np.full((3, 10), np.nan)], axis=1)
    gappy[1, -5:] = 1.0  # half-known columns are still left out
    assert sync.symbolic_entropy(gappy[:, :200]) == pytest.approx(msp.symbolic_entropy(x))


def test_weak_null_equals_multisyncpy() -> None:
    recordings = [
        sync.phases(oscillator_group(4, 60.0 + 10 * k, FS, coupling=0.4, seed=k).signals, FS).values
        for k in range(6)
    ]
    ours = sync.kuramoto_weak_null(recordings)
    p, t, df = msp.kuramoto_weak_null(recordings)
    assert float(ours["p_value"]) == pytest.approx(p, rel=1e-9)
    assert float(ours["t"]) == pytest.approx(t, rel=1e-9) and int(ours["df"]) == df
    assert float(ours["p_value"]) < 0.05  # coupled groups are more in step than chance


@pytest.mark.parametrize("radius", [0.5, 1.5])
def test_rqa_equals_multisyncpy(radius: float) -> None:
    x = oscillator_group(4, 60.0, FS, snr_db=10.0, coupling=0.5, seed=2).signals
    ours = sync.rqa(x, radius)
    rec, det, mean_length, max_length = msp.rqa_metrics(msp.recurrence_matrix(x, radius))
    assert float(ours["rec"]) == pytest.approx(rec, rel=1e-12)
    assert float(ours["det"]) == pytest.approx(det, rel=1e-12)
    assert float(ours["mean_length"]) == pytest.approx(mean_length, rel=1e-12)
    assert int(ours["max_length"]) == max_length
    assert 0 < rec < 1


def test_rqa_with_embedding_and_min_length_equals_multisyncpy() -> None:
    x = oscillator_group(3, 40.0, FS, snr_db=10.0, seed=5).signals
    ours = sync.rqa(x, 1.0, min_length=3, embedding_dimension=2, embedding_delay=4)
    matrix = msp.recurrence_matrix(x, 1.0, embedding_dimension=2, embedding_delay=4)
    rec, det, mean_length, max_length = msp.rqa_metrics(matrix, min_length=3)
    assert (float(ours["rec"]), float(ours["det"])) == pytest.approx((rec, det), rel=1e-12)
    assert (
        float(ours["mean_length"]) == pytest.approx(mean_length)
        and int(ours["max_length"]) == max_length
    )


def test_banded_rqa_counts_only_the_band() -> None:
    x = oscillator_group(3, 40.0, FS, snr_db=10.0, seed=6).signals
    band = 25
    ours = sync.rqa(x, 1.0, max_offset=band)
    matrix = msp.recurrence_matrix(x, 1.0)
    i, j = np.triu_indices(x.shape[1], k=1)
    inside = (j - i) <= band
    assert float(ours["rec"]) == pytest.approx(matrix[i[inside], j[inside]].mean(), rel=1e-12)
    assert int(ours["cells"]) == inside.sum()


def test_spectral_synchrony_equals_multisyncpy_and_scipy() -> None:
    x = oscillator_group(5, 200.0, FS, snr_db=5.0, coupling=0.6, seed=4).signals
    ours = sync.spectral_synchrony(x, FS)
    assert float(ours["coherence_group"]) == pytest.approx(msp.coherence_team(x), rel=1e-9)
    assert float(ours["csd_group"]) == pytest.approx(np.real(msp.sum_normalized_csd(x)), rel=1e-9)
    f, pair = ss.coherence(x[1], x[3], fs=FS, nperseg=256)
    np.testing.assert_allclose(ours["spectrum"].values[1, 3], pair, rtol=1e-9)
    np.testing.assert_allclose(ours["freq"].values, f)
    short = x[:, :600]  # under 1024 samples: a quarter of the recording per segment
    assert float(sync.spectral_synchrony(short)["coherence_group"]) == pytest.approx(
        msp.coherence_team(short), rel=1e-9
    )
