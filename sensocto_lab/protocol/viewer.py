"""What viewer channels carry: visibility events in, compact batches out.

Pure, no I/O. A viewer (a dashboard in another process, another kernel) joins
``room:{room_id}`` or ``lens:{viewer_id}`` and reports what it shows:

====================  =========================================  =====================
event                 payload                                    effect
====================  =========================================  =====================
``view_enter``        ``{"sensor_id"}`` or ``{"sensor_ids"}``    those sensors: medium
``view_leave``        ``{"sensor_id"}`` or ``{"sensor_ids"}``    those sensors: low
``focus``             ``{"sensor_id"}`` (``null`` = blur)        that sensor: high; the
                                                                 previous focus: medium
``page_hidden``       ``{"hidden": true|false}``                 every sensor: none while
                                                                 hidden
====================  =========================================  =====================

:class:`ViewerState` folds these into ``{sensor_id: AttentionLevel}`` for
``engine.set_views``. The server pushes ``batch`` events whose payload is
:func:`batch_payload` (timestamps as ms floats, so JavaScript's doubles hold them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensocto_lab.errors import ValidationError
from sensocto_lab.model import AttentionLevel, Batch, check_id

__all__ = ["VIEWER_EVENTS", "ViewerState", "batch_payload"]

#: Events a viewer channel accepts.
VIEWER_EVENTS = frozenset({"view_enter", "view_leave", "focus", "page_hidden"})


def _sensor_ids(payload: Mapping[str, Any]) -> list[str]:
    if "sensor_ids" in payload:
        ids = payload["sensor_ids"]
        if not isinstance(ids, list):
            raise ValidationError("sensor_ids must be a list", reason="invalid_payload")
        return [check_id(s, "sensor_id") for s in ids]
    if "sensor_id" in payload:
        return [check_id(payload["sensor_id"], "sensor_id")]
    raise ValidationError("a view event needs sensor_id or sensor_ids", reason="missing_fields")


@dataclass(slots=True)
class ViewerState:
    """One viewer's view of its sensors, built from its visibility events."""

    visible: dict[str, AttentionLevel] = field(default_factory=dict)
    focused: str | None = None
    hidden: bool = False

    def apply(self, event: str, payload: object) -> None:
        """Fold one viewer event in.

        Raises
        ------
        ValidationError
            ``invalid_event`` for another event, ``invalid_payload``/``missing_fields``/
            ``invalid_sensor_id`` for a payload of the wrong shape. The state is unchanged.
        """
        if event not in VIEWER_EVENTS:
            raise ValidationError(
                f"viewer channels take {', '.join(sorted(VIEWER_EVENTS))}; got {event!r:.40}",
                reason="invalid_event",
            )
        if not isinstance(payload, Mapping):
            raise ValidationError(f"{event} payload must be an object", reason="invalid_payload")
        if event == "page_hidden":
            hidden = payload.get("hidden", True)
            if not isinstance(hidden, bool):
                raise ValidationError("hidden must be true or false", reason="invalid_payload")
            self.hidden = hidden
        elif event == "focus":
            target = payload.get("sensor_id")
            new = None if target is None else check_id(target, "sensor_id")
            if self.focused is not None and self.focused in self.visible:
                self.visible[self.focused] = AttentionLevel.MEDIUM
            self.focused = new
            if new is not None:
                self.visible[new] = AttentionLevel.HIGH
        else:
            level = AttentionLevel.MEDIUM if event == "view_enter" else AttentionLevel.LOW
            for sensor_id in _sensor_ids(payload):
                if sensor_id == self.focused and event == "view_enter":
                    continue  # already focused, which is more
                if sensor_id == self.focused:
                    self.focused = None
                self.visible[sensor_id] = level

    def levels(self) -> dict[str, AttentionLevel]:
        """``{sensor_id: level}`` as this viewer sees them (all none while hidden)."""
        if self.hidden:
            return dict.fromkeys(self.visible, AttentionLevel.NONE)
        return dict(self.visible)


def batch_payload(batch: Batch) -> dict[str, Any]:
    """A stamped batch as the payload of a viewer ``batch`` push.

    ``ts`` are device times in ms since the epoch (floats, µs resolution), ``values`` a
    list (of rows for vector kinds), ``seq`` the first sample's sequence number.
    """
    ts_ms = np.round(batch.ts / 1e6, 3)
    return {
        "sensor_id": batch.sensor_id,
        "attribute_id": batch.attribute_id,
        "ts": ts_ms.tolist(),
        "values": np.asarray(batch.values).tolist(),
        "seq": None if batch.seq is None else int(batch.seq[0]),
    }
