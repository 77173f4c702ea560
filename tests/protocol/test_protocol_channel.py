"""Every transition of the channel table, and every illegal one."""

from __future__ import annotations

import itertools

import pytest

from sensocto_lab.errors import ProtocolError
from sensocto_lab.protocol.channel import TRANSITIONS, ChannelState, Trigger, transition

S, T = ChannelState, Trigger


@pytest.mark.parametrize(("pair", "after"), list(TRANSITIONS.items()), ids=str)
def test_legal_transitions(pair: tuple[ChannelState, Trigger], after: ChannelState) -> None:
    assert transition(*pair) is after


ILLEGAL = [p for p in itertools.product(S, T) if p not in TRANSITIONS]


@pytest.mark.parametrize("pair", ILLEGAL, ids=str)
def test_illegal_transitions_raise(pair: tuple[ChannelState, Trigger]) -> None:
    state, trigger = pair
    with pytest.raises(ProtocolError) as info:
        transition(state, trigger)
    expected = "unmatched_topic" if trigger in (T.PUSH, T.LEAVE) else "invalid_transition"
    assert info.value.reason == expected
    assert state.value in info.value.detail


def test_a_full_life() -> None:
    state = S.CLOSED
    for trigger in (T.JOIN, T.JOIN_OK, T.PUSH, T.PUSH, T.LEAVE, T.LEAVE_OK):
        state = transition(state, trigger)
    assert state is S.CLOSED
