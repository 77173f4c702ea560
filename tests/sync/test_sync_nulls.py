"""Surrogates for any measure: window shuffle, shift, Fourier, pseudo-pairs, p-values."""

from __future__ import annotations

import numpy as np
import pytest
from multiSyncPy import synchrony_metrics as msp

from sensocto_lab import sync
from sensocto_lab.errors import ValidationError
from sensocto_lab.sync.nulls import p_value, pseudo_groups
from sensocto_lab.sync.synthetic import oscillator_group

FS = 10.0


def _rho(x: np.ndarray) -> float:
    return float(sync.cluster_phase(sync.phases(x, FS))["rho"])


def test_window_shuffle_permutes_each_rows_windows_like_multisyncpy() -> None:
    x = np.arange(2 * 53, dtype=float).reshape(2, 53)
    out = sync.window_shuffle(x, 10, np.random.default_rng(1))
    for row, orig in zip(out, x, strict=True):
        windows = sorted(map(tuple, row[:50].reshape(5, 10)))
        assert windows == sorted(map(tuple, orig[:50].reshape(5, 10)))
        np.testing.assert_array_equal(row[50:], orig[50:])  # the remainder stays
    assert not np.array_equal(out[0, :50] - x[0, :50], out[1, :50] - x[1, :50])  # independent
    theirs = msp.shuffle_time_windows(x[:, :50], 10)  # the same kind of surrogate
    assert sorted(map(tuple, theirs[0].reshape(5, 10))) == sorted(
        map(tuple, x[0, :50].reshape(5, 10))
    )


def test_p_value_formula() -> None:
    assert p_value(0.5, np.array([0.1, 0.6, 0.5, 0.2])) == pytest.approx(3 / 5)
    assert p_value(0.5, np.array([0.1, 0.6, 0.5, 0.2]), "less") == pytest.approx(4 / 5)


def _mean_r(x: np.ndarray) -> float:
    return float(sync.order_parameter(sync.phases(x, FS)).mean())


@pytest.mark.parametrize(
    ("surrogate", "measure"), [("shift", _mean_r), ("fourier", _mean_r), ("window", _rho)]
)
def test_null_test_finds_a_coupled_group_and_not_a_free_one(surrogate: str, measure) -> None:  # type: ignore[no-untyped-def]
    coupled = oscillator_group(5, 120.0, FS, snr_db=10.0, coupling=1.5, seed=2).signals
    free = oscillator_group(5, 120.0, FS, snr_db=10.0, coupling=0.0, seed=2).signals
    kw = {"window": 100} if surrogate == "window" else {}
    hit = sync.null_test(measure, coupled, surrogate=surrogate, n_surrogates=39, seed=1, **kw)  # type: ignore[arg-type]
    miss = sync.null_test(measure, free, surrogate=surrogate, n_surrogates=39, seed=1, **kw)  # type: ignore[arg-type]
    assert float(hit["p_value"]) == pytest.approx(1 / 40)
    assert float(miss["p_value"]) > 0.05
    assert hit["null"].shape == (39,) and hit.attrs["surrogate"] == surrogate


def test_shifts_keep_the_locking_that_rho_measures_window_shuffles_do_not() -> None:
    # On purpose, documented: a group locked at one frequency stays locked (at other
    # phase differences) after circular shifts, so rho's shift null is no test there.
    coupled = oscillator_group(5, 120.0, FS, snr_db=10.0, coupling=1.5, seed=2).signals
    shifted = sync.null_test(_rho, coupled, surrogate="shift", n_surrogates=19, seed=1)
    windowed = sync.null_test(
        _rho, coupled, surrogate="window", window=100, n_surrogates=19, seed=1
    )
    assert float(shifted["null"].min()) > 0.8 and float(windowed["null"].max()) < 0.8


def test_null_test_of_a_matrix_measure_gives_a_p_value_per_pair() -> None:
    x = oscillator_group(4, 120.0, FS, snr_db=10.0, coupling=1.0, seed=3).signals
    out = sync.null_test(
        lambda s: sync.connectivity(s, "wpli", fs=FS).values, x, n_surrogates=19, seed=0
    )
    assert out["p_value"].shape == (4, 4) and out["null"].shape == (19, 4, 4)


def _sessions(coupling: float, n: int = 6) -> list[np.ndarray]:
    # each session its own breathing pace, so pseudo-pairs drift apart
    out = []
    for s in range(n):
        g = oscillator_group(2, 120.0, FS, snr_db=10.0, coupling=coupling, seed=10 + s)
        out.append(g.signals)
    return out


def test_pseudo_pairs_never_meet_twice() -> None:
    sessions = [np.full((2, 50), float(s)) for s in range(5)]
    for group in pseudo_groups(sessions, 2, np.random.default_rng(0)):
        assert group[0, 0] != group[1, 0]


def test_pseudo_pair_test_finds_real_dyads_and_not_unrelated_ones() -> None:
    plv = lambda s: float(sync.phase_locking(sync.phases(s, FS)).values[0, 1])  # noqa: E731
    real = sync.pseudo_pair_test(plv, _sessions(1.5), n_surrogates=39, seed=4)
    assert float(real["p_value"]) == pytest.approx(1 / 40)
    assert real["per_session"].shape == (6,)
    unrelated = sync.pseudo_pair_test(plv, _sessions(0.0), n_surrogates=39, seed=4)
    assert float(unrelated["p_value"]) > 0.05


def test_bad_arguments_are_refused() -> None:
    x = np.zeros((2, 100))
    with pytest.raises(ValidationError):
        sync.null_test(_rho, x, surrogate="window")
    with pytest.raises(ValidationError):
        sync.null_test(_rho, x, surrogate="bootstrap")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        sync.pseudo_pair_test(_rho, [x])
