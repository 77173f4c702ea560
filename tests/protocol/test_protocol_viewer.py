"""Viewer events folded into attention levels, and the batch push payload."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sensocto_lab.errors import ValidationError
from sensocto_lab.model import AttentionLevel as L
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo
from sensocto_lab.protocol.viewer import (
    MAX_BACKFILL,
    RoomSnapshot,
    ViewerParams,
    ViewerState,
    Watcher,
    batch_from_payload,
    batch_payload,
    read_status,
    status_payload,
)


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


def test_set_views_sets_exact_levels_and_attributes() -> None:
    v = ViewerState()
    v.apply("view_enter", {"sensor_ids": ["a", "b"]})
    v.apply("set_views", {"views": {"a": "high", "c": "none"}, "attributes": {"a": ["hr"]}})
    assert v.levels() == {"a": L.HIGH, "c": L.NONE}
    assert v.focused == "a" and v.attributes == {"a": ("hr",)}
    for bad in ({}, {"views": {"a": "loud"}}, {"views": {"a": "low"}, "attributes": {"a": "hr"}}):
        with pytest.raises(ValidationError):
            v.apply("set_views", bad)
    assert v.levels() == {"a": L.HIGH, "c": L.NONE}


def test_batch_payload_round_trips() -> None:
    ts = np.array([1_767_225_600_000_123_000, 1_767_225_600_100_456_000], dtype=np.int64)
    for values in (np.array([1.5, 2.5]), np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])):
        batch = Batch("s1", "acc", ts, values, seq=np.array([7, 8], dtype=np.int64))
        back = batch_from_payload(json.loads(json.dumps(batch_payload(batch))))
        assert (back.sensor_id, back.attribute_id) == ("s1", "acc")
        np.testing.assert_array_equal(back.ts, ts)
        np.testing.assert_array_equal(back.values, values)
        assert back.seq is not None and back.seq.tolist() == [7, 8]
    with pytest.raises(ValidationError):
        batch_from_payload({"sensor_id": "s1"})


def test_snapshot_round_trips_with_sensors_recent_and_status() -> None:
    info = SensorInfo(
        "s1",
        {"hr": AttributeInfo.of("hr", "hr"), "ecg": AttributeInfo.of("ecg", "ecg", rate_hz=130.0)},
        name="strap",
        room="lab",
    )
    recent = Batch("s1", "hr", np.array([1_000_000], dtype=np.int64), np.array([61.0]))
    snap = RoomSnapshot(
        "v1", "lab", "Lab", {"s1": info}, [recent], {"s1": L.MEDIUM}, [Watcher("v1", "ana")],
        member_rooms={"lab": "Lab", "calm": "Calm room"},
    )  # fmt: skip
    back = RoomSnapshot.from_payload(json.loads(json.dumps(snap.to_payload())))
    assert back.viewer_id == "v1" and back.room_id == "lab" and back.name == "Lab"
    got = back.sensors["s1"]
    assert (got.name, got.room) == ("strap", "lab")
    assert got.attributes["ecg"].kind.name == "ecg" and got.attributes["ecg"].rate_hz == 130.0
    assert got.attributes["hr"].effective_unit == "bpm"
    assert back.recent[0].values.tolist() == [61.0]
    assert back.levels == {"s1": L.MEDIUM} and list(back.present) == [Watcher("v1", "ana")]
    assert back.member_rooms == {"lab": "Lab", "calm": "Calm room"}
    assert read_status(status_payload({"s1": L.HIGH}, [])) == ({"s1": L.HIGH}, [])
    with pytest.raises(ValidationError):
        RoomSnapshot.from_payload({"sensors": []})
    with pytest.raises(ValidationError, match="member_rooms"):
        RoomSnapshot.from_payload({"viewer_id": "v1", "member_rooms": [{"room_id": "lab"}]})


def test_viewer_params_round_trip_and_are_checked() -> None:
    params = ViewerParams(code="ABCDE-12345", room="lab", user_id="ana", backfill=10**9)
    assert params.backfill == 10**9  # capped when read by the server
    back = ViewerParams.from_params(params.to_params())
    assert back.code == "ABCDE-12345" and back.room == "lab" and back.user_id == "ana"
    assert back.backfill == MAX_BACKFILL
    assert ViewerParams.from_params({"bearer_token": "t"}).token == "t"
    assert "member" not in params.to_params() and not back.member
    member = ViewerParams(token="t", room="lab", user_id="ana", member=True)
    assert ViewerParams.from_params(member.to_params()) == member
    for bad in ({"code": 5}, {"backfill": -1}, {"room": "a b"}, {"member": "yes"}):
        with pytest.raises(ValidationError):
            ViewerParams.from_params(bad)
