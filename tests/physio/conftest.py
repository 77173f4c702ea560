"""Shared physio test helpers: beat matching (F1 at a tolerance), as a fixture."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest


def f1(found: npt.ArrayLike, reference: npt.ArrayLike, tol: float = 0.05) -> float:
    """F1 of beat times (s) against reference times, matched one to one within ``tol`` s."""
    a = np.sort(np.asarray(found, dtype=np.float64))
    b = np.sort(np.asarray(reference, dtype=np.float64))
    if a.size == 0 or b.size == 0:
        return 0.0
    i = j = tp = 0
    while i < a.size and j < b.size:  # greedy in time order: each beat matches once
        if abs(a[i] - b[j]) <= tol:
            tp, i, j = tp + 1, i + 1, j + 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return 2 * tp / (a.size + b.size)


@pytest.fixture
def beat_f1() -> Callable[..., float]:
    """:func:`f1`, for tests."""
    return f1
