"""A sensor's lifecycle as a state table, and the status messages the engine publishes.

Every change of a sensor's state is published on ``sensors:status`` as a
:class:`SensorStatus`. The allowed transitions are one table, :data:`TRANSITIONS`;
anything else is a bug in the engine and raises.

::

    from \\ to    running  restarting  failed  removed
    registered    yes      -           -       yes
    running       -        yes         yes     yes      (a crash; failed: the limit is hit)
    restarting    yes      -           yes     yes
    failed        yes      -           -       yes      (registered again: running)
    removed       -        -           -       -
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sensocto_lab.errors import LocalError

__all__ = ["TRANSITIONS", "SensorState", "SensorStatus", "check_transition"]


class SensorState(enum.Enum):
    """Where a sensor is in its life (the wire name is ``.value``)."""

    REGISTERED = "registered"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    REMOVED = "removed"


#: state -> states it may move to
TRANSITIONS: Mapping[SensorState, frozenset[SensorState]] = {
    SensorState.REGISTERED: frozenset({SensorState.RUNNING, SensorState.REMOVED}),
    SensorState.RUNNING: frozenset(
        {SensorState.RESTARTING, SensorState.FAILED, SensorState.REMOVED}
    ),
    SensorState.RESTARTING: frozenset(
        {SensorState.RUNNING, SensorState.FAILED, SensorState.REMOVED}
    ),
    SensorState.FAILED: frozenset({SensorState.RUNNING, SensorState.REMOVED}),
    SensorState.REMOVED: frozenset(),
}


def check_transition(old: SensorState, new: SensorState) -> SensorState:
    """Return ``new`` if a sensor may move from ``old`` to it, else raise :class:`LocalError`."""
    if new not in TRANSITIONS[old]:
        raise LocalError(
            f"a sensor cannot go from {old.value} to {new.value}", reason="illegal_transition"
        )
    return new


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """One sensor's new state, as published on ``sensors:status``.

    Attributes
    ----------
    sensor_id
        Whose state changed.
    state
        The new state.
    detail
        Why, for people: the crash that caused a restart, the reason a sensor failed.
    """

    sensor_id: str
    state: SensorState
    detail: str = ""

    def __str__(self) -> str:
        tail = f" ({self.detail})" if self.detail else ""
        return f"{self.sensor_id}: {self.state.value}{tail}"
