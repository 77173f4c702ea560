"""Cluster-phase rho against multiSyncPy's synchrony_metrics.rho on the same phases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiSyncPy.synchrony_metrics import rho as msp_rho

from sensocto_lab import sync
from sensocto_lab.sync.synthetic import oscillator_group

FS = 10.0


@pytest.mark.parametrize("coupling", [0.0, 0.3, 1.0])
def test_rho_equals_multisyncpy(coupling: float) -> None:
    group = oscillator_group(6, 120.0, FS, snr_db=10.0, coupling=coupling, seed=7)
    theta = sync.phases(group.signals, FS)
    ours = sync.cluster_phase(theta)
    theirs_t, theirs = msp_rho(theta.values)
    np.testing.assert_allclose(ours["rho_group"].values, theirs_t, rtol=0, atol=1e-9)
    assert float(ours["rho"]) == pytest.approx(theirs, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 9), st.integers(5, 200), st.integers(0, 2**31 - 1))
def test_rho_equals_multisyncpy_on_any_phases(n: int, t: int, seed: int) -> None:
    theta = np.random.default_rng(seed).uniform(-np.pi, np.pi, (n, t))
    ours = sync.cluster_phase(theta)
    theirs_t, theirs = msp_rho(theta)
    np.testing.assert_allclose(ours["rho_group"].values, theirs_t, rtol=0, atol=1e-9)
    assert float(ours["rho"]) == pytest.approx(theirs, abs=1e-9)


def test_members_locked_at_fixed_lags_have_rho_one_where_r_is_not() -> None:
    t = np.arange(600) / FS
    lags = np.array([0.0, 1.0, 2.0, 2.5])[:, None]
    theta = np.angle(np.exp(1j * (2 * np.pi * 0.25 * t + lags)))
    out = sync.cluster_phase(theta)
    assert float(out["rho"]) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(out["rho_k"].values, 1.0, atol=1e-12)
    assert float(sync.order_parameter(theta).mean()) < 0.7
    # the relative phases are the lags, up to the group phase's offset
    rel = out["mean_relative_phase"].values
    np.testing.assert_allclose(np.angle(np.exp(1j * (rel - rel[0]))), lags[:, 0], atol=1e-9)


def test_unknown_phases_are_skipped() -> None:
    group = oscillator_group(5, 120.0, FS, snr_db=10.0, coupling=0.5, seed=1)
    theta = sync.phases(group.signals, FS).values
    gappy = theta.copy()
    gappy[4] = np.nan  # a dead member
    ours = sync.cluster_phase(gappy)
    theirs_t, _ = msp_rho(theta[:4])
    np.testing.assert_allclose(ours["rho_group"].values, theirs_t, atol=1e-9)
    assert np.isnan(ours["rho_k"].values[4]) and (ours["n"].values == 4).all()
    # phasors give the same as phases
    z = sync.phasors(group.signals, FS)
    np.testing.assert_allclose(
        sync.cluster_phase(z)["rho_group"].values, msp_rho(theta)[0], atol=1e-9
    )
