"""Quality flags name dead, flat, clipped and missing sensors; excluded, they are not counted."""

from __future__ import annotations

import numpy as np
import pytest

from sensocto_lab import physio, sync
from sensocto_lab.errors import ValidationError
from sensocto_lab.sync.synthetic import oscillator_group

FS = 10.0


def _group() -> np.ndarray:
    x = oscillator_group(6, 60.0, FS, snr_db=15.0, coupling=0.6, seed=3).signals.copy()
    x[1] = 0.0  # dead
    x[2] = 2.5  # stuck
    x[3] = np.clip(x[3], -0.5, 0.5)  # clipped
    x[4, 100:600] = np.nan  # missing for 50 s
    return x


def test_each_problem_gets_its_name() -> None:
    flags = physio.quality(_group(), FS, window_s=10.0)
    assert flags.dims == ("sensor", "window") and flags.shape == (6, 6)
    assert (flags.values[0] == "ok").all()
    assert (flags.values[1] == "flat").all() and (flags.values[2] == "flat").all()
    assert (flags.values[3] == "clipped").all()
    assert list(flags.values[4]) == ["ok", "missing", "missing", "missing", "missing", "missing"]
    assert (flags.values[5] == "ok").all()


def test_a_clean_sine_and_noise_are_ok() -> None:
    t = np.arange(600) / FS
    x = np.stack([np.sin(2 * np.pi * 0.25 * t), np.random.default_rng(1).standard_normal(600)])
    assert (physio.quality(x, FS).values == "ok").all()


def test_excluded_windows_are_left_out_of_group_measures() -> None:
    x = _group()
    clean = physio.exclude(x, physio.quality(x, FS), FS)
    assert np.isnan(clean.values[1:4]).all() and clean.attrs["excluded"][3] == 600
    r = sync.synchrony(clean, FS)
    assert r["n"].values.max() == 3 and r["n"].values.min() == 2
    rho = sync.cluster_phase(sync.phases(clean, FS))
    assert np.isnan(rho["rho_k"].values[1:4]).all()


def test_parameters_are_checked() -> None:
    with pytest.raises(ValidationError):
        physio.quality(np.zeros((1, 10)), FS, window_s=0)
    with pytest.raises(ValidationError):
        physio.exclude(np.ones((1, 100)), physio.quality(np.ones((2, 100)), FS), FS)
