"""Sensor channel payloads as Sensocto's connectors send them, and every way they go wrong."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sensocto_lab.errors import PeerError, ProtocolError, ValidationError
from sensocto_lab.model import AttentionLevel
from sensocto_lab.protocol.chunks import merge
from sensocto_lab.protocol.sensor import (
    BatchError,
    Topic,
    attribute_from_update,
    batch_from_measurement,
    batches_from_measurements,
    parse_topic,
    sample_from_measurement,
    sensor_info_from_join,
)

MS = 1_767_225_600_000

JOIN = {
    "connector_id": "phone-1",
    "connector_name": "Phone",
    "sensor_id": "s1",
    "sensor_name": "Strap",
    "sensor_type": "polar",
    "attributes": ["hr", {"attribute_id": "acc", "attribute_type": "accelerometer"}],
    "sampling_rate": 50,
    "batch_size": 10,
    "bearer_token": "t",
}
INFO = sensor_info_from_join("s1", JOIN)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("sensor:s1", Topic("sensor", "s1")),
        ("sensocto:sensor:s1", Topic("sensor", "s1")),
        ("sensocto:connector:c1", Topic("connector", "c1")),
        ("room:r1", Topic("room", "r1")),
        ("lens:v1", Topic("lens", "v1")),
    ],
)
def test_topics(topic: str, expected: Topic) -> None:
    assert parse_topic(topic) == expected


def test_bad_topics() -> None:
    with pytest.raises(ProtocolError, match="unknown topic"):
        parse_topic("chat:1")
    with pytest.raises(ValidationError) as info:
        parse_topic("sensor:../etc")
    assert info.value.reason == "invalid_sensor_id"


def test_join_params_become_sensor_info() -> None:
    assert INFO.name == "Strap" and INFO.sensor_type == "polar" and INFO.connector_id == "phone-1"
    assert INFO.attributes["hr"].kind.name == "hr"
    assert INFO.attributes["acc"].kind.name == "accelerometer"
    assert INFO.attributes["acc"].rate_hz == 50
    mapped = sensor_info_from_join(
        "s2", {"attributes": {"ecg": "ecg", "x": {"type": "temp"}}, "room": "lab"}
    )
    assert mapped.room == "lab" and mapped.attributes["x"].kind.name == "temperature"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"sensor_id": "other"}, "invalid_sensor_id"),
        ({"sampling_rate": -1}, "invalid_params"),
        ({"batch_size": "ten"}, "invalid_params"),
        ({"attributes": 5}, "invalid_params"),
        ({"attributes": [5]}, "invalid_params"),
        ({"attributes": ["bad id!"]}, "invalid_attribute_id"),
        ({"sensor_name": {"x": 1}}, "invalid_params"),
    ],
)
def test_bad_join_params(params: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        sensor_info_from_join("s1", params)
    assert info.value.reason == reason


def test_one_measurement() -> None:
    batch = batch_from_measurement(INFO, {"attribute_id": "hr", "payload": 61, "timestamp": MS})
    assert batch.ts.tolist() == [MS * 10**6] and batch.values.tolist() == [61.0]
    acc = batch_from_measurement(
        INFO, {"attribute_id": "acc", "payload": {"x": 1, "y": 2, "z": 3}, "timestamp": MS}
    )
    assert acc.values.tolist() == [[1.0, 2.0, 3.0]]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"attribute_id": "hr", "payload": 61}, "missing_fields"),
        ({"attribute_id": "nope", "payload": 61, "timestamp": MS}, "invalid_attribute_id"),
        ({"attribute_id": 5, "payload": 61, "timestamp": MS}, "invalid_attribute_id"),
        ({"attribute_id": "hr", "payload": "61", "timestamp": MS}, "invalid_value"),
        ({"attribute_id": "hr", "payload": True, "timestamp": MS}, "invalid_value"),
        ({"attribute_id": "hr", "payload": math.nan, "timestamp": MS}, "non_finite_value"),
        ({"attribute_id": "hr", "payload": 61, "timestamp": "now"}, "invalid_timestamp"),
        ({"attribute_id": "hr", "payload": 61, "timestamp": 5}, "invalid_timestamp"),
        ({"attribute_id": "hr", "payload": 61, "timestamp": 10**13}, "invalid_timestamp"),
        ({"attribute_id": "hr", "payload": 61, "timestamp": 2**58 + MS}, "invalid_timestamp"),
        ({"attribute_id": "hr", "payload": 61, "timestamp": 10**400}, "invalid_timestamp"),
        ({"attribute_id": "hr", "payload": 10**400, "timestamp": MS}, "invalid_value"),
        ({"attribute_id": "acc", "payload": [0, 10**400, 0], "timestamp": MS}, "invalid_value"),
        ({"attribute_id": "acc", "payload": [1, 2], "timestamp": MS}, "invalid_shape"),
        ({"attribute_id": "acc", "payload": {"x": 1}, "timestamp": MS}, "invalid_value"),
        ([1, 2], "invalid_payload"),
    ],
)
def test_bad_measurements(payload: object, reason: str) -> None:
    with pytest.raises(PeerError) as info:
        batch_from_measurement(INFO, payload)
    assert info.value.reason == reason
    # the cheap path used by the server refuses it too, now or when merging
    try:
        sample = sample_from_measurement(INFO, payload)
    except PeerError as exc:
        assert exc.reason == reason
    else:
        chunks, errors = merge(INFO, [sample])
        assert chunks == [] and errors[0].reason == reason


def test_batch_of_items_groups_by_attribute_and_sorts() -> None:
    items = [
        {"attribute_id": "hr", "payload": 60, "timestamp": MS + 2},
        {"attribute_id": "acc", "payload": [0, 0, 1], "timestamp": MS},
        {"attribute_id": "hr", "payload": 59, "timestamp": MS + 1},
    ]
    hr, acc = batches_from_measurements(INFO, items)
    assert hr.attribute_id == "hr" and hr.values.tolist() == [59.0, 60.0]
    assert (np.diff(hr.ts) > 0).all()
    assert acc.values.shape == (1, 3)
    assert batches_from_measurements(INFO, {"measurements": items})[0].values.tolist() == [
        59.0,
        60.0,
    ]


def test_batch_is_all_or_nothing_with_failed_count() -> None:
    items: list[Any] = [
        {"attribute_id": "hr", "payload": 60 + i, "timestamp": MS + i} for i in range(10)
    ]
    items[3] = {"attribute_id": "hr", "payload": math.nan, "timestamp": MS + 3}
    items[7] = {"attribute_id": "hr", "timestamp": MS + 7}
    with pytest.raises(BatchError) as info:
        batches_from_measurements(INFO, items)
    assert info.value.reason == "invalid_batch" and info.value.failed_count == 2
    assert info.value.first.reason == "non_finite_value"


def test_columnar_batches() -> None:
    (b,) = batches_from_measurements(
        INFO, {"attribute_id": "hr", "t0": MS, "dt": 1000, "values": [60, 61, 62]}
    )
    assert b.ts.tolist() == [(MS + 1000 * i) * 10**6 for i in range(3)]
    (b,) = batches_from_measurements(
        INFO, {"attribute_id": "acc", "timestamps": [MS, MS + 20], "values": [[0, 0, 1], [0, 1, 0]]}
    )
    assert b.values.shape == (2, 3)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"attribute_id": "hr", "values": [1, 2]}, "missing_fields"),
        ({"attribute_id": "hr", "timestamps": [MS], "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1, "values": ["a"]}, "invalid_value"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1, "values": [1, math.inf]}, "non_finite_value"),
        ({"attribute_id": "acc", "t0": MS, "dt": 1, "values": [[1, 2, 3], [1]]}, "invalid_value"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1, "values": 3}, "invalid_value"),
        ([], "invalid_payload"),
        ("x", "invalid_payload"),
    ],
)
def test_bad_batches(payload: object, reason: str) -> None:
    with pytest.raises(PeerError) as info:
        batches_from_measurements(INFO, payload)
    assert info.value.reason == reason


def test_update_attributes() -> None:
    action, attr = attribute_from_update(
        {"action": "register", "attribute_id": "spo2", "metadata": {"unit": "%"}}
    )
    assert action == "register" and attr.kind.name == "spo2"  # type: ignore[union-attr]
    assert attribute_from_update({"action": "unregister", "attribute_id": "hr"}) == (
        "unregister",
        "hr",
    )
    for payload, reason in [
        ({"action": "register"}, "missing_fields"),
        ({"action": "rename", "attribute_id": "hr"}, "invalid_action"),
        ({"action": "register", "attribute_id": "hr", "metadata": 3}, "invalid_params"),
    ]:
        with pytest.raises(ValidationError) as info:
            attribute_from_update(payload)
        assert info.value.reason == reason


def test_attention_levels_parse_for_reference() -> None:
    assert AttentionLevel.parse("high") is AttentionLevel.HIGH
