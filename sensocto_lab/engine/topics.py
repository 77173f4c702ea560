"""Bus topic names, built in one place so that publishers and subscribers agree.

| topic | message |
|---|---|
| ``data:{sensor_id}`` | stamped :class:`~sensocto_lab.model.Batch` (always) |
| ``data:attention:{level}`` | stamped batches of sensors at that level (not ``none``) |
| ``room:{room_id}`` | stamped batches of the room's sensors |
| ``signal:{sensor_id}`` | :class:`~sensocto_lab.model.BackpressureConfig` on every change |
| ``events:{room_id}`` | :class:`~sensocto_lab.events.Event` once stored (``events:-``: no room) |
| ``sensors:status`` | :class:`~sensocto_lab.engine.status.SensorStatus` |
| ``system:load`` | :class:`~sensocto_lab.model.LoadLevel` on every change |

A subscription to a topic ending in ``*`` receives every topic with that prefix
(``data(ALL)`` is ``"data:*"``). The live synchrony estimate of a room is recorded as the
synthetic sensor :func:`sync_sensor` with attribute :data:`SYNC_ATTRIBUTE`.
"""

from __future__ import annotations

__all__ = [
    "ALL",
    "LOAD",
    "STATUS",
    "SYNC_ATTRIBUTE",
    "attention",
    "data",
    "events",
    "room",
    "signal",
    "sync_sensor",
]

#: Put in place of an id to subscribe to every topic of that family.
ALL = "*"
#: Sensor lifecycle changes.
STATUS = "sensors:status"
#: System load level changes.
LOAD = "system:load"
#: The attribute under which a room's live Kuramoto R is recorded.
SYNC_ATTRIBUTE = "sync"


def data(sensor_id: str) -> str:
    """Every stamped batch of one sensor."""
    return f"data:{sensor_id}"


def attention(level_label: str) -> str:
    """Stamped batches of the sensors at one attention level (its wire name)."""
    return f"data:attention:{level_label}"


def room(room_id: str) -> str:
    """Stamped batches of the sensors recorded under one room."""
    return f"room:{room_id}"


def signal(sensor_id: str) -> str:
    """Back-pressure configurations for one sensor's device."""
    return f"signal:{sensor_id}"


def events(room_id: str | None) -> str:
    """Experiment events (markers, conditions, novelty) recorded for one room.

    Events of no room are published on ``events:-`` (``-`` is never a room id).
    """
    return f"events:{room_id or '-'}"


def sync_sensor(room_id: str) -> str:
    """The id of the synthetic sensor that carries a room's live synchrony."""
    return f"sync:{room_id}"
