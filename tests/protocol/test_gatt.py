"""The BLE payload decoders against byte vectors written from the specifications.

Vectors are packed by hand with :mod:`struct` (the Bluetooth SIG Heart Rate and
Battery characteristics, Polar's PMD frames and control point), so they do not
depend on our encoders; the encoders are then checked to be exact inverses, and
hypothesis checks that any bytes decode or raise ``ValidationError``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensocto_lab.errors import ValidationError
from sensocto_lab.protocol import gatt, pmd
from sensocto_lab.protocol.pmd import PmdMeasurement, PmdOp, PmdSetting, PmdStatus

# --- Heart Rate Measurement 0x2A37 ----------------------------------------------------


def test_hr_uint8_without_contact_support() -> None:
    m = gatt.decode_heart_rate(struct.pack("<BB", 0x00, 72))
    assert m.bpm == 72
    assert m.contact is None
    assert m.energy_kj is None
    assert m.rr_ms.shape == (0,)


def test_hr_uint16_value() -> None:
    m = gatt.decode_heart_rate(struct.pack("<BH", 0x01, 300))
    assert m.bpm == 300


@pytest.mark.parametrize(
    ("flags", "contact"), [(0x00, None), (0x02, None), (0x04, False), (0x06, True)]
)
def test_hr_sensor_contact_bits(flags: int, contact: bool | None) -> None:
    assert gatt.decode_heart_rate(struct.pack("<BB", flags, 60)).contact is contact


def test_hr_energy_and_several_rr_intervals() -> None:
    # flags: uint8 HR, contact supported+detected, energy present, RR present
    data = struct.pack("<BBHHHH", 0x1E, 64, 1234, 1024, 512, 1000)
    m = gatt.decode_heart_rate(data)
    assert m.bpm == 64
    assert m.contact is True
    assert m.energy_kj == 1234
    np.testing.assert_array_equal(m.rr_ms, [1000.0, 500.0, 1000 * 1000 / 1024])


def test_hr_polar_h10_style_notification() -> None:
    # Polar H10 sends flags 0x16: uint8 HR, contact detected, RR present
    m = gatt.decode_heart_rate(bytes([0x16, 0x3C, 0x00, 0x04]))
    assert (m.bpm, m.contact) == (60, True)
    np.testing.assert_array_equal(m.rr_ms, [1000.0])


def test_hr_rr_flag_with_no_intervals_is_empty() -> None:
    assert gatt.decode_heart_rate(bytes([0x10, 70])).rr_ms.size == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too_short"),
        (b"\x00", "too_short"),
        (b"\x01\x48", "too_short"),  # uint16 HR announced, one byte
        (b"\x08\x48\x01", "too_short"),  # energy announced, one byte
        (b"\x10\x48\x00\x04\x01", "trailing_bytes"),  # odd RR byte
        (b"\x00\x48\x00", "trailing_bytes"),  # byte after the HR, no RR flag
        (b"\x20\x48", "reserved_flags"),
    ],
)
def test_hr_malformed_is_a_validation_error(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        gatt.decode_heart_rate(data)
    assert info.value.reason == reason
    assert "heart rate" in info.value.detail


@given(
    bpm=st.integers(0, 0xFFFF),
    rr_raw=st.lists(st.integers(0, 0xFFFF), max_size=9),
    contact=st.sampled_from([None, True, False]),
    energy=st.one_of(st.none(), st.integers(0, 0xFFFF)),
)
def test_hr_encode_decode_round_trip(
    bpm: int, rr_raw: list[int], contact: bool | None, energy: int | None
) -> None:
    rr_ms = np.asarray(rr_raw, dtype=np.float64) * 1000 / 1024
    m = gatt.decode_heart_rate(
        gatt.encode_heart_rate(bpm, rr_ms, contact=contact, energy_kj=energy)
    )
    assert (m.bpm, m.contact, m.energy_kj) == (bpm, contact, energy)
    np.testing.assert_array_equal(m.rr_ms, rr_ms)


# --- Battery Level 0x2A19 -------------------------------------------------------------


def test_battery_level() -> None:
    assert gatt.decode_battery_level(struct.pack("<B", 87)).percent == 87
    assert gatt.decode_battery_level(gatt.encode_battery_level(100)).percent == 100


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "invalid_length"), (b"\x10\x00", "invalid_length"), (b"\x65", "out_of_range")],
)
def test_battery_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        gatt.decode_battery_level(data)
    assert info.value.reason == reason


# --- PMD data frames ------------------------------------------------------------------

TS = 599_000_000_123_456_789  # ns since 2000-01-01, as a strap's clock reads


def _int24(v: int) -> bytes:
    return struct.pack("<i", v)[:3]


def test_pmd_ecg_frame_three_byte_signed_microvolts() -> None:
    samples = [0, 1, -1, 8_388_607, -8_388_608, 1200, -350]
    data = struct.pack("<BQB", 0x00, TS, 0x00) + b"".join(_int24(v) for v in samples)
    frame = pmd.decode_pmd_data(data)
    assert isinstance(frame, pmd.EcgFrame)
    assert frame.timestamp_ns == TS
    np.testing.assert_array_equal(frame.samples_uv, samples)


@pytest.mark.parametrize(("frame_type", "fmt"), [(0x00, "<bbb"), (0x01, "<hhh")])
def test_pmd_acc_frame_int8_int16(frame_type: int, fmt: str) -> None:
    lim = 127 if frame_type == 0 else 32767
    rows = [(0, 1, -1), (lim, -lim - 1, 5), (-20, 40, lim // 2)]
    data = struct.pack("<BQB", 0x02, TS, frame_type) + b"".join(struct.pack(fmt, *r) for r in rows)
    frame = pmd.decode_pmd_data(data)
    assert isinstance(frame, pmd.AccFrame)
    assert frame.timestamp_ns == TS
    assert frame.frame_type == frame_type
    np.testing.assert_array_equal(frame.samples_mg, rows)


def test_pmd_acc_frame_int24() -> None:
    rows = [(-8_388_608, 0, 8_388_607), (981, -12, 3)]
    data = struct.pack("<BQB", 0x02, TS, 0x02) + b"".join(_int24(v) for r in rows for v in r)
    frame = pmd.decode_pmd_data(data)
    assert isinstance(frame, pmd.AccFrame)
    np.testing.assert_array_equal(frame.samples_mg, rows)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too_short"),
        (struct.pack("<BQ", 0x00, TS), "too_short"),  # no frame type
        (struct.pack("<BQB", 0x00, TS, 0x00), "too_short"),  # header only
        (struct.pack("<BQB", 0x00, TS, 0x00) + b"\x01\x02\x03\x04", "trailing_bytes"),
        (struct.pack("<BQB", 0x02, TS, 0x01) + b"\x01\x02\x03\x04", "trailing_bytes"),
        (struct.pack("<BQB", 0x00, TS, 0x80) + b"\x00" * 9, "unsupported_frame_type"),
        (struct.pack("<BQB", 0x02, TS, 0x81) + b"\x00" * 6, "unsupported_frame_type"),
        (struct.pack("<BQB", 0x01, TS, 0x00) + b"\x00" * 12, "unsupported_measurement"),
        (struct.pack("<BQB", 0x77, TS, 0x00) + b"\x00" * 3, "unsupported_measurement"),
    ],
)
def test_pmd_data_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        pmd.decode_pmd_data(data)
    assert info.value.reason == reason
    assert "PMD" in info.value.detail


def test_pmd_frames_fed_with_every_truncation_never_index_error() -> None:
    whole = pmd.encode_pmd_ecg(TS, np.arange(-5, 5) * 1000)
    for cut in range(len(whole)):
        try:
            frame = pmd.decode_pmd_data(whole[:cut])
        except ValidationError:
            continue
        # a cut on a sample boundary is itself a valid, shorter frame
        assert isinstance(frame, pmd.EcgFrame)
        assert (cut - 10) % 3 == 0


@given(
    ts=st.integers(0, 2**64 - 1),
    samples=st.lists(st.integers(-(2**23), 2**23 - 1), min_size=1, max_size=80),
)
def test_pmd_ecg_round_trip(ts: int, samples: list[int]) -> None:
    frame = pmd.decode_pmd_data(pmd.encode_pmd_ecg(ts, samples))
    assert isinstance(frame, pmd.EcgFrame)
    assert frame.timestamp_ns == ts
    np.testing.assert_array_equal(frame.samples_uv, samples)


@given(
    frame_type=st.sampled_from([0, 1, 2]),
    data=st.data(),
)
def test_pmd_acc_round_trip(frame_type: int, data: st.DataObject) -> None:
    half = 1 << (8 * (frame_type + 1) - 1)
    rows = data.draw(
        st.lists(st.tuples(*[st.integers(-half, half - 1)] * 3), min_size=1, max_size=40)
    )
    frame = pmd.decode_pmd_data(pmd.encode_pmd_acc(TS, rows, frame_type))
    assert isinstance(frame, pmd.AccFrame)
    np.testing.assert_array_equal(frame.samples_mg, rows)


# --- PMD control point ----------------------------------------------------------------


def test_ecg_start_command_is_the_h10_byte_sequence() -> None:
    # op 0x02 start, type 0x00 ECG, sample rate 130 (0x0082), resolution 14
    expected = struct.pack("<BB" + "BBH" * 2, 0x02, 0x00, 0x00, 1, 130, 0x01, 1, 14)
    assert pmd.ecg_start_command() == expected
    assert expected == bytes.fromhex("02 00 00 01 82 00 01 01 0e 00")


@pytest.mark.parametrize("rate", [25, 50, 100, 200])
@pytest.mark.parametrize("range_g", [2, 4, 8])
def test_acc_start_command(rate: int, range_g: int) -> None:
    expected = struct.pack(
        "<BB" + "BBH" * 3, 0x02, 0x02, 0x00, 1, rate, 0x01, 1, 16, 0x02, 1, range_g
    )
    assert pmd.acc_start_command(rate, range_g) == expected


def test_acc_200hz_8g_matches_polar_sdk_bytes() -> None:
    assert pmd.acc_start_command(200, 8) == bytes.fromhex(
        "02 02 00 01 c8 00 01 01 10 00 02 01 08 00"
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: pmd.ecg_start_command(250),
        lambda: pmd.acc_start_command(30),
        lambda: pmd.acc_start_command(50, 16),
        lambda: pmd.pmd_start_command(PmdMeasurement.ACC, {PmdSetting.SAMPLE_RATE: 70_000}),
    ],
)
def test_start_command_rejects_unoffered_settings(call: Callable[[], bytes]) -> None:
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.reason == "invalid_setting"


def test_stop_and_settings_commands() -> None:
    assert pmd.pmd_stop_command(PmdMeasurement.ECG) == b"\x03\x00"
    assert pmd.pmd_settings_request(PmdMeasurement.ACC) == b"\x01\x02"


def test_start_response_success_and_error() -> None:
    ok = pmd.decode_pmd_control_response(bytes([0xF0, 0x02, 0x00, 0x00, 0x00]))
    assert ok.ok and ok.op is PmdOp.START and ok.measurement == 0
    bad = pmd.decode_pmd_control_response(bytes([0xF0, 0x02, 0x02, 0x06, 0x00]))
    assert not bad.ok
    assert bad.status is PmdStatus.ALREADY_IN_STATE


def test_settings_response_lists_offered_values() -> None:
    data = (
        bytes([0xF0, 0x01, 0x02, 0x00, 0x00])
        + struct.pack("<BB4H", 0x00, 4, 25, 50, 100, 200)
        + struct.pack("<BBH", 0x01, 1, 16)
        + struct.pack("<BB3H", 0x02, 3, 2, 4, 8)
        + struct.pack("<BBI", 0x03, 1, 8000)
        + struct.pack("<BBB", 0x04, 1, 3)
    )
    r = pmd.decode_pmd_control_response(data)
    assert r.ok
    assert r.settings == {
        PmdSetting.SAMPLE_RATE: (25, 50, 100, 200),
        PmdSetting.RESOLUTION: (16,),
        PmdSetting.RANGE: (2, 4, 8),
        PmdSetting.RANGE_MILLIUNIT: (8000,),
        PmdSetting.CHANNELS: (3,),
    }
    again = pmd.encode_pmd_control_response(PmdOp.GET_SETTINGS, 0x02, settings=r.settings)
    assert pmd.decode_pmd_control_response(again).settings == r.settings


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xf0\x02\x00", "too_short"),
        (b"\x02\x02\x00\x00\x00", "not_a_response"),
        (b"\xf0\x09\x00\x00\x00", "unknown_op"),
        (b"\xf0\x02\x00\x63\x00", "unknown_status"),
        (b"\xf0\x01\x02\x00\x00\x00\x04\x19", "too_short"),  # 4 rates announced, 1 byte
        (b"\xf0\x01\x02\x00\x00\x00", "too_short"),  # setting type without count
        (b"\xf0\x01\x02\x00\x00\x09\x01\x00\x00", "unknown_setting"),
    ],
)
def test_control_response_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        pmd.decode_pmd_control_response(data)
    assert info.value.reason == reason


def test_features_read() -> None:
    # H10: ECG (bit 0) and ACC (bit 2)
    assert pmd.decode_pmd_features(b"\x0f\x05\x00") == {PmdMeasurement.ECG, PmdMeasurement.ACC}
    assert pmd.decode_pmd_features(pmd.encode_pmd_features([PmdMeasurement.PPI])) == {
        PmdMeasurement.PPI
    }
    with pytest.raises(ValidationError) as info:
        pmd.decode_pmd_features(b"\xf0\x05")
    assert info.value.reason == "not_a_feature_read"


def test_sig_uuids() -> None:
    assert gatt.HEART_RATE_MEASUREMENT_UUID == "00002a37-0000-1000-8000-00805f9b34fb"
    assert gatt.BATTERY_LEVEL_UUID == "00002a19-0000-1000-8000-00805f9b34fb"


# --- fuzz: any bytes decode or raise ValidationError ----------------------------------

DECODERS = [
    gatt.decode_heart_rate,
    gatt.decode_battery_level,
    pmd.decode_pmd_data,
    pmd.decode_pmd_control_response,
    pmd.decode_pmd_features,
]


@pytest.mark.parametrize("decode", DECODERS, ids=lambda f: f.__name__)
@given(data=st.binary(max_size=64))
def test_any_bytes_decode_or_raise_validation_error(
    decode: Callable[[bytes], object], data: bytes
) -> None:
    try:
        decode(data)
    except ValidationError as exc:
        assert exc.reason and exc.detail


@given(
    head=st.sampled_from([b"\x00", b"\x02"]),
    ts=st.binary(min_size=8, max_size=8),
    frame_type=st.integers(0, 255),
    body=st.binary(max_size=40),
)
def test_pmd_shaped_bytes_decode_or_raise(
    head: bytes, ts: bytes, frame_type: int, body: bytes
) -> None:
    # random bytes rarely reach the sample decoding; these always pass the header
    try:
        frame = pmd.decode_pmd_data(head + ts + bytes([frame_type]) + body)
    except ValidationError as exc:
        assert exc.reason in {"too_short", "trailing_bytes", "unsupported_frame_type"}
    else:
        assert len(frame.samples_uv if isinstance(frame, pmd.EcgFrame) else frame.samples_mg) > 0
