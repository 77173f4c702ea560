"""The sensor lifecycle table: every pair of states is either allowed or raises."""

from __future__ import annotations

import itertools

import pytest

from sensocto_lab.engine.status import TRANSITIONS, SensorState, SensorStatus, check_transition
from sensocto_lab.errors import LocalError

S = SensorState
ALLOWED = {
    (S.REGISTERED, S.RUNNING),
    (S.REGISTERED, S.REMOVED),
    (S.RUNNING, S.RESTARTING),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.REMOVED),
    (S.RESTARTING, S.RUNNING),
    (S.RESTARTING, S.FAILED),
    (S.RESTARTING, S.REMOVED),
    (S.FAILED, S.RUNNING),
    (S.FAILED, S.REMOVED),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(S, S)))
def test_every_transition_is_allowed_or_refused(old: SensorState, new: SensorState) -> None:
    if (old, new) in ALLOWED:
        assert check_transition(old, new) is new
    else:
        with pytest.raises(LocalError) as err:
            check_transition(old, new)
        assert err.value.reason == "illegal_transition"
        assert old.value in err.value.detail and new.value in err.value.detail


def test_the_table_covers_every_state_and_removed_is_final() -> None:
    assert set(TRANSITIONS) == set(S)
    assert TRANSITIONS[S.REMOVED] == frozenset()


def test_a_status_reads_well_in_logs() -> None:
    assert str(SensorStatus("s1", S.FAILED, "crashed 5 times")) == "s1: failed (crashed 5 times)"
    assert str(SensorStatus("s1", S.RUNNING)) == "s1: running"
