"""Sensocto's min/max phase heuristic, the baseline the live computer must beat."""

from __future__ import annotations

import numpy as np
import pytest

from sensocto_lab.sync.baseline import minmax_phase


def test_clean_cosine_gives_roughly_the_right_phase() -> None:
    t = np.arange(50) / 10.0
    for phase0 in np.linspace(0, 2 * np.pi, 13)[:-1]:
        theta = 2 * np.pi * 0.25 * t + phase0
        guess = minmax_phase(np.cos(theta)[np.newaxis, :])[0]
        assert abs(np.angle(np.exp(1j * (guess - theta[-1])))) < 0.45


def test_falling_is_first_half_rising_second_half() -> None:
    assert minmax_phase([np.linspace(1, 0, 20)])[0] == pytest.approx(np.pi)
    assert minmax_phase([np.linspace(0, 1, 20)])[0] == pytest.approx(0.0)
    assert minmax_phase([[*np.linspace(0, 1, 19), 0.5]])[0] == pytest.approx(np.pi / 2)


def test_flat_or_short_buffers_give_nan() -> None:
    assert np.isnan(minmax_phase(np.ones((1, 30)))[0])
    assert np.isnan(minmax_phase(np.arange(10.0)[np.newaxis, :])[0])
    assert np.isnan(minmax_phase([np.linspace(0, 1, 20)], min_range=2.0)[0])
