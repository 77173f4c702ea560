"""Viewer events folded into attention levels, and the batch push payload."""

from __future__ import annotations

import numpy as np
import pytest

from sensocto_lab.errors import ValidationError
from sensocto_lab.model import AttentionLevel as L
from sensocto_lab.model import Batch
from sensocto_lab.protocol.viewer import ViewerState, batch_payload


def test_enter_focus_leave_hide() -> None:
    v = ViewerState()
    v.apply("view_enter", {"sensor_ids": ["a", "b"]})
    assert v.levels() == {"a": L.MEDIUM, "b": L.MEDIUM}
    v.apply("focus", {"sensor_id": "a"})
    v.apply("view_enter", {"sensor_id": "a"})
    assert v.levels() == {"a": L.HIGH, "b": L.MEDIUM}
    v.apply("focus", {"sensor_id": "b"})
    assert v.levels() == {"a": L.MEDIUM, "b": L.HIGH}
    v.apply("view_leave", {"sensor_id": "b"})
    assert v.levels() == {"a": L.MEDIUM, "b": L.LOW} and v.focused is None
    v.apply("page_hidden", {"hidden": True})
    assert v.levels() == {"a": L.NONE, "b": L.NONE}
    v.apply("page_hidden", {"hidden": False})
    assert v.levels()["a"] is L.MEDIUM
    v.apply("focus", {"sensor_id": None})
    assert v.focused is None


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("scroll", {}, "invalid_event"),
        ("view_enter", [], "invalid_payload"),
        ("view_enter", {}, "missing_fields"),
        ("view_enter", {"sensor_ids": "a"}, "invalid_payload"),
        ("view_enter", {"sensor_id": "a b"}, "invalid_sensor_id"),
        ("page_hidden", {"hidden": "yes"}, "invalid_payload"),
    ],
)
def test_bad_viewer_events_change_nothing(event: str, payload: object, reason: str) -> None:
    v = ViewerState()
    v.apply("view_enter", {"sensor_id": "a"})
    with pytest.raises(ValidationError) as info:
        v.apply(event, payload)
    assert info.value.reason == reason
    assert v.levels() == {"a": L.MEDIUM}


def test_batch_payload_keeps_ms_precision() -> None:
    ts = np.array([1_767_225_600_000_123_456, 1_767_225_600_010_000_000], dtype=np.int64)
    b = Batch("s", "hr", ts, np.array([60.0, 61.0])).stamped(ts[-1], 41)
    p = batch_payload(b)
    assert p["ts"] == [1_767_225_600_000.123, 1_767_225_600_010.0]
    assert p["values"] == [60.0, 61.0] and p["seq"] == 41
