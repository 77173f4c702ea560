from __future__ import annotations

import numpy as np
import pytest

from sensocto_lab.errors import ValidationError
from sensocto_lab.model import (
    KINDS,
    AttentionLevel,
    AttributeInfo,
    Batch,
    SensorInfo,
    check_id,
    ms_to_ns,
    resolve_kind,
)

T0_MS = 1_767_225_600_000


def _batch(values: object, n: int = 3, attr: str = "ecg") -> Batch:
    return Batch.from_samples("s1", attr, T0_MS + np.arange(n) * 8, values)


def test_resolve_kind_by_type_alias_and_fallback() -> None:
    assert resolve_kind("heartrate").name == "hr"
    assert resolve_kind("x", "imu").name == "accelerometer"
    assert resolve_kind("whatever").name == "numeric"


def test_validated_casts_to_kind_dtype() -> None:
    b = _batch([0.1, 0.2, 0.3]).validated(KINDS["ecg"])
    assert b.values.dtype == np.float32
    assert b.ts.dtype == np.int64
    assert b.ts[1] - b.ts[0] == 8_000_000


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([0.1, float("nan"), 0.3], "non_finite_value"),
        ([0.1, float("inf"), 0.3], "non_finite_value"),
        ([0.1, 0.2], "invalid_shape"),
        ([[1, 2, 3]] * 3, "invalid_shape"),
    ],
)
def test_bad_values_are_refused_with_a_reason(values: object, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        _batch(values).validated(KINDS["ecg"])
    assert err.value.reason == reason


def test_vector_kind_needs_rows_of_width() -> None:
    ok = _batch([[0, 0, 9.8]] * 3, attr="acc").validated(KINDS["accelerometer"])
    assert ok.values.shape == (3, 3)
    with pytest.raises(ValidationError):
        _batch([1.0, 2.0, 3.0], attr="acc").validated(KINDS["accelerometer"])


def test_timestamps_must_not_go_backwards_or_be_absurd() -> None:
    b = Batch.from_samples("s1", "hr", [T0_MS, T0_MS - 1], [60, 61])
    with pytest.raises(ValidationError, match="backwards"):
        b.validated(KINDS["hr"])
    with pytest.raises(ValidationError, match="between 2000"):
        Batch.from_samples("s1", "hr", [5], [60]).validated(KINDS["hr"])
    with pytest.raises(ValidationError):
        Batch.from_samples("s1", "hr", ["soon"], [60])


def test_stamped_sets_arrival_and_sequence() -> None:
    b = _batch([1, 2, 3]).stamped(recv_ns=42, first_seq=10)
    assert b.recv_ts is not None and b.seq is not None
    assert b.recv_ts.tolist() == [42, 42, 42]
    assert b.seq.tolist() == [10, 11, 12]


def test_ms_to_ns_keeps_sub_ms_precision() -> None:
    assert ms_to_ns(1.5).item() == 1_500_000


def test_ids_are_checked() -> None:
    with pytest.raises(ValidationError):
        SensorInfo("../etc/passwd")
    with pytest.raises(ValidationError):
        AttributeInfo.of("has space")
    info = SensorInfo("s1").with_attribute(AttributeInfo.of("ecg"))
    assert info.attributes["ecg"].kind.name == "ecg"
    assert "ecg" not in info.without_attribute("ecg").attributes


def test_attention_levels_order_and_parse() -> None:
    assert max(AttentionLevel.LOW, AttentionLevel.HIGH) is AttentionLevel.HIGH
    assert AttentionLevel.parse("medium") is AttentionLevel.MEDIUM
    with pytest.raises(ValidationError):
        AttentionLevel.parse("loud")


@pytest.mark.parametrize("good", ["s1", "001", "a" * 128, "Polar_H10:AA-BB.1"])
def test_check_id_accepts_usable_identifiers(good: str) -> None:
    assert check_id(good, "sensor_id") == good


@pytest.mark.parametrize(
    "bad", ["abc\n", "abc\r\n", "\nabc", "", "_x", "a" * 129, "a/b", "a b", "ab\x00", 1, None]
)
def test_check_id_refuses_the_rest_including_a_trailing_newline(bad: object) -> None:
    with pytest.raises(ValidationError) as e:
        check_id(bad, "sensor_id")
    assert e.value.reason == "invalid_sensor_id"


def test_a_signalling_nan_is_refused_as_non_finite_without_a_warning() -> None:
    import warnings

    snan = np.frombuffer(b"\x01\x00\x80\x7f", dtype=np.float32)  # float32 signalling NaN
    batch = Batch("s1", "hr", np.array([1_767_225_600 * 10**9]), snan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValidationError) as info:
            batch.validated(KINDS["hr"])
    assert info.value.reason == "non_finite_value"
