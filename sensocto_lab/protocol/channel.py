"""The lifecycle of one channel on a socket, as a transition table.

Pure, no I/O. Server side of Phoenix Channels::

    CLOSED ──join──▶ JOINING ──join_ok──▶ JOINED ──leave──▶ LEAVING ──leave_ok──▶ CLOSED
                        │                    │  ▲
                        └──join_error──▶ CLOSED │ push (stays JOINED)
                                             └─────close (phx_close / phx_error)──▶ CLOSED

Every pair not in :data:`TRANSITIONS` is illegal and :func:`transition` raises
:class:`~sensocto_lab.errors.ProtocolError` with reason ``unmatched_topic`` (a push or
leave on a channel that is not joined) or ``invalid_transition`` (anything else, such
as a second join while one is pending).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from sensocto_lab.errors import ProtocolError

__all__ = ["TRANSITIONS", "ChannelState", "Trigger", "transition"]


class _FastHash(enum.Enum):
    """Members hash by identity: :data:`TRANSITIONS` is looked up for every push, and
    ``Enum.__hash__`` (a Python-level hash of the name) was most of that lookup."""

    __hash__ = object.__hash__


class ChannelState(_FastHash):
    """Where a channel is in its life."""

    CLOSED = "closed"
    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"


class Trigger(_FastHash):
    """What happens to a channel: a client frame or our own decision."""

    JOIN = "join"  # client sent phx_join
    JOIN_OK = "join_ok"  # we accepted the join
    JOIN_ERROR = "join_error"  # we refused the join
    PUSH = "push"  # client sent an event on the channel
    LEAVE = "leave"  # client sent phx_leave
    LEAVE_OK = "leave_ok"  # we answered the leave
    CLOSE = "close"  # we closed the channel (phx_close / phx_error)


_S, _T = ChannelState, Trigger

#: (state, trigger) -> next state. Anything missing is illegal.
TRANSITIONS: Mapping[tuple[ChannelState, Trigger], ChannelState] = {
    (_S.CLOSED, _T.JOIN): _S.JOINING,
    (_S.JOINING, _T.JOIN_OK): _S.JOINED,
    (_S.JOINING, _T.JOIN_ERROR): _S.CLOSED,
    (_S.JOINING, _T.CLOSE): _S.CLOSED,
    (_S.JOINED, _T.PUSH): _S.JOINED,
    (_S.JOINED, _T.LEAVE): _S.LEAVING,
    (_S.JOINED, _T.CLOSE): _S.CLOSED,
    (_S.LEAVING, _T.LEAVE_OK): _S.CLOSED,
    (_S.LEAVING, _T.CLOSE): _S.CLOSED,
}


def transition(state: ChannelState, trigger: Trigger) -> ChannelState:
    """The state after ``trigger`` happens in ``state``.

    Raises
    ------
    ProtocolError
        ``unmatched_topic`` for a push or leave on a channel that is not joined,
        ``invalid_transition`` for any other pair missing from :data:`TRANSITIONS`.
    """
    try:
        return TRANSITIONS[state, trigger]
    except KeyError:
        pass
    if trigger in (Trigger.PUSH, Trigger.LEAVE) and state is not ChannelState.JOINED:
        raise ProtocolError(
            f"cannot {trigger.value} on a channel that is {state.value}; join it first",
            reason="unmatched_topic",
        )
    raise ProtocolError(
        f"a channel that is {state.value} cannot take {trigger.value}",
        reason="invalid_transition",
    )
