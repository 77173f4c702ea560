"""The ``marker`` event of a sensor channel: our extension of Sensocto's protocol, sans-I/O.

A device marks a moment (a button pressed, a stimulus shown) by pushing, on its sensor
channel, ``marker`` with the payload ``{"label": str, "timestamp": ms since the epoch,
"value": small JSON (optional)}``. It becomes an :class:`~sensocto_lab.events.Event`
of kind ``marker`` and source ``device``, tied to the channel's sensor and room, and is
replied to once stored, like data (``docs/protocol.md``, "Markers from devices").
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from sensocto_lab.errors import ValidationError
from sensocto_lab.events import Event
from sensocto_lab.model import SensorInfo

__all__ = ["MARKER_EVENT", "event_from_marker"]

#: The push event name.
MARKER_EVENT = "marker"

_KEYS = {"label", "timestamp", "value"}


def event_from_marker(info: SensorInfo, payload: Any) -> Event:
    """The validated event a ``marker`` push of sensor ``info`` records.

    Raises :class:`ValidationError`: ``invalid_payload`` (not an object, unknown keys),
    ``invalid_timestamp`` (missing, not a finite number of ms, or outside 2000–2199),
    and the event's own reasons (``invalid_label``, ``invalid_value``).
    """
    if not isinstance(payload, Mapping):
        raise ValidationError(
            'a marker is {"label": str, "timestamp": ms, "value"?: JSON}', reason="invalid_payload"
        )
    extra = set(payload) - _KEYS
    if extra:
        raise ValidationError(
            f"a marker takes label, timestamp and value; not {', '.join(sorted(map(str, extra)))}",
            reason="invalid_payload",
        )
    ms = payload.get("timestamp")
    if isinstance(ms, bool) or not isinstance(ms, numbers.Real):
        raise ValidationError(
            f"a marker's timestamp is ms since the epoch, got {ms!r:.40}",
            reason="invalid_timestamp",
        )
    if isinstance(ms, numbers.Integral):
        onset = int(ms) * 1_000_000  # exact for any int; the range is checked below
    elif math.isfinite(float(ms)) and abs(float(ms)) < 1e15:
        onset = round(float(ms) * 1e6)
    else:
        raise ValidationError(
            f"a marker's timestamp must be finite ms in range, got {ms!r:.40}",
            reason="invalid_timestamp",
        )
    event = Event(
        onset,
        payload.get("label"),  # type: ignore[arg-type]  # checked by validated()
        "marker",
        0.0,
        info.room,
        info.sensor_id,
        None,
        payload.get("value"),
        "device",
    )
    try:
        return event.validated()
    except ValidationError as exc:
        if exc.reason == "invalid_onset":
            raise ValidationError(exc.detail, reason="invalid_timestamp") from None
        raise
