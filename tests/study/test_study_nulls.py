"""Study-level nulls: pseudo-pairs across sessions, circular shifts, phase randomisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import PARTICIPANTS, SESSIONS

from sensocto_lab.errors import ValidationError
from sensocto_lab.study import Study, kuramoto
from sensocto_lab.study.nulls import Meta, make_draws


def test_pseudo_pairs_tell_the_coupled_task_from_the_uncoupled_baseline(study_root: Path) -> None:
    study = Study.open(study_root)
    test = study.surrogate_test(kuramoto, null="pseudo_pairs", n=19, seed=1).set_index("condition")
    assert list(test.index) == ["baseline", "task"]
    assert (test["sessions"] == SESSIONS).all() and (test["n"] == 19).all()
    observed = study.apply(kuramoto).groupby("condition")["kuramoto"].mean()
    assert test.loc["task", "observed"] == pytest.approx(observed["task"], rel=1e-6)
    # every draw of strangers falls below the coupled groups: the smallest p-value
    assert test.loc["task", "p_value"] == pytest.approx(1 / 20)
    assert test.loc["task", "null_q975"] < test.loc["task", "observed"]
    assert test.loc["baseline", "p_value"] > 0.05
    assert len(test.loc["task", "null_values"]) == 19
    assert study.failures.empty


@pytest.mark.parametrize("null", ["shift", "fourier"])
def test_shift_and_fourier_nulls_keep_each_session(study_root: Path, null: str) -> None:
    test = Study.open(study_root).surrogate_test(kuramoto, null=null, n=9, seed=2)
    test = test.set_index("condition")
    assert test.loc["task", "p_value"] == pytest.approx(1 / 10)
    assert test.loc["task", "null_mean"] < 0.8
    assert (test["null"] == null).all()


def test_the_same_seed_gives_the_same_null(study_root: Path) -> None:
    study = Study.open(study_root)
    a = study.surrogate_test(kuramoto, n=5, seed=11)
    b = study.surrogate_test(kuramoto, n=5, seed=11)
    c = study.surrogate_test(kuramoto, n=5, seed=12)
    assert np.array_equal(a["null_values"][0], b["null_values"][0])
    assert not np.array_equal(a["null_values"][0], c["null_values"][0])


def test_pseudo_groups_never_hold_two_people_of_one_session_or_their_own() -> None:
    metas = [Meta(f"s{k}", 3, 100, 10.0) for k in range(6)]
    draws = make_draws(metas, "pseudo_pairs", 50, np.random.default_rng(0), 10.0)
    for draw in draws:
        for k, group in enumerate(draw):
            sessions = [s for s, _ in group]
            assert len(group) == 3 and len(set(sessions)) == 3 and k not in sessions
            assert all(0 <= p < 3 for _, p in group)


def test_pseudo_pairs_need_more_sessions_than_a_group_has_people(study_root: Path) -> None:
    few = Study.open([study_root / f"session-{k:03d}" for k in range(PARTICIPANTS)])
    with pytest.raises(ValidationError) as info:
        few.surrogate_test(kuramoto, n=3)
    assert info.value.reason == "too_few_sessions"


def test_shifts_need_a_segment_longer_than_twice_the_smallest_shift(study_root: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Study.open(study_root).surrogate_test(kuramoto, null="shift", n=3, min_shift_s=20.0)
    assert info.value.reason == "recording_too_short"


def test_an_unreadable_session_is_left_out_of_the_null_and_named(copy_study: Path) -> None:
    part = sorted((copy_study / "session-000" / "cold").rglob("*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:100])
    study = Study.open(copy_study)
    test = study.surrogate_test(kuramoto, n=5)
    assert (test["sessions"] == SESSIONS - 1).all()
    assert set(study.failures["session"]) == {"session-000"}
    assert study.failures["condition"].tolist() == ["baseline", "task"]


def test_an_unknown_null_is_refused(study_root: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Study.open(study_root).surrogate_test(kuramoto, null="bootstrap", n=3)  # type: ignore[arg-type]
    assert info.value.reason == "invalid_parameter"
