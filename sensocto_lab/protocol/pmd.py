"""Polar Measurement Data (PMD), sans-I/O: Polar's published streaming format.

For the H10, OH1 and Verity Sense: data-characteristic notifications carrying ECG frames
(3-byte signed µV samples) and accelerometer frames (int8/int16/int24 × 3 axes, mG), and
the control point: start/stop/settings commands and their responses. Malformed input
raises :class:`~sensocto_lab.errors.ValidationError` (see :mod:`.gatt`); the
``encode_*`` functions are the decoders' exact inverse, for the fake strap and tests.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sensocto_lab.errors import ValidationError
from sensocto_lab.protocol.gatt import malformed

__all__ = [
    "ACC_RANGES_G",
    "ACC_SAMPLE_RATES_HZ",
    "ECG_SAMPLE_RATES_HZ",
    "POLAR_EPOCH_UNIX_NS",
    "AccFrame",
    "EcgFrame",
    "PmdControlResponse",
    "PmdMeasurement",
    "PmdOp",
    "PmdSetting",
    "PmdStatus",
    "acc_start_command",
    "decode_pmd_control_response",
    "decode_pmd_data",
    "decode_pmd_features",
    "ecg_start_command",
    "encode_pmd_acc",
    "encode_pmd_control_response",
    "encode_pmd_ecg",
    "encode_pmd_features",
    "pmd_settings_request",
    "pmd_start_command",
    "pmd_stop_command",
]

#: The PMD device clock counts ns since 2000-01-01 UTC.
POLAR_EPOCH_UNIX_NS = 946_684_800 * 10**9

#: Sample rates (Hz) Polar H10 offers per stream, and accelerometer ranges (G).
ECG_SAMPLE_RATES_HZ: tuple[int, ...] = (130,)
ACC_SAMPLE_RATES_HZ: tuple[int, ...] = (25, 50, 100, 200)
ACC_RANGES_G: tuple[int, ...] = (2, 4, 8)

_ECG_RESOLUTION_BITS = 14
_ACC_RESOLUTION_BITS = 16


# --------------------------------------------------------------------------------------
# Polar Measurement Data: data characteristic


class PmdMeasurement(enum.IntEnum):
    """PMD measurement types (the first byte of a data frame and of a command)."""

    ECG = 0x00
    PPG = 0x01
    ACC = 0x02
    PPI = 0x03
    GYRO = 0x05
    MAG = 0x06


#: bytes per axis value for the uncompressed accelerometer frame types 0, 1, 2.
_ACC_FRAME_BYTES: Mapping[int, int] = {0x00: 1, 0x01: 2, 0x02: 3}
_ECG_FRAME_TYPE = 0x00
_COMPRESSED = 0x80
_PMD_HEADER = struct.Struct("<BQB")  # measurement type, timestamp ns, frame type


@dataclass(frozen=True, slots=True, eq=False)
class EcgFrame:
    """One PMD ECG data frame.

    Attributes
    ----------
    timestamp_ns
        Device time of the **last** sample, ns since 2000-01-01 (the Polar epoch),
        on the strap's own clock (which may never have been set).
    samples_uv
        Samples in microvolts, shape ``(n,)`` int32, oldest first.
    """

    timestamp_ns: int
    samples_uv: npt.NDArray[np.int32] = field(repr=False)

    def __str__(self) -> str:
        return f"ECG frame, {len(self.samples_uv)} samples"


@dataclass(frozen=True, slots=True, eq=False)
class AccFrame:
    """One PMD accelerometer data frame.

    Attributes
    ----------
    timestamp_ns
        Device time of the **last** sample, ns since 2000-01-01 (the Polar epoch).
    samples_mg
        Samples in milli-G, shape ``(n, 3)`` int32 (x, y, z), oldest first.
    frame_type
        0, 1 or 2: 1, 2 or 3 bytes per axis value on the wire.
    """

    timestamp_ns: int
    samples_mg: npt.NDArray[np.int32] = field(repr=False)
    frame_type: int = 1

    def __str__(self) -> str:
        return f"ACC frame, {len(self.samples_mg)} samples"


def _signed_le(payload: memoryview, width: int) -> npt.NDArray[np.int32]:
    """Little-endian signed integers of ``width`` bytes (1–3) packed back to back."""
    if width == 1:
        return np.frombuffer(payload, dtype=np.int8).astype(np.int32)
    if width == 2:
        return np.frombuffer(payload, dtype="<i2").astype(np.int32)
    # 3 bytes: place each value in the top of an int32, then shift back (sign-extends)
    padded = np.zeros((len(payload) // 3, 4), dtype=np.uint8)
    padded[:, 1:] = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3)
    return padded.view("<i4").reshape(-1) >> 8


def _pack_signed_le(values: npt.NDArray[Any], width: int) -> bytes:
    lo, hi = -(1 << (8 * width - 1)), (1 << (8 * width - 1)) - 1
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"values do not fit in {width}-byte signed integers")
    u = (v & ((1 << (8 * width)) - 1)).astype(np.uint32)
    cols = [((u >> (8 * i)) & 0xFF).astype(np.uint8) for i in range(width)]
    return np.stack(cols, axis=1).tobytes()


def decode_pmd_data(data: bytes) -> EcgFrame | AccFrame:
    """Decode a notification of the PMD data characteristic (FB005C82-…).

    Layout: measurement type (1 byte), timestamp of the last sample (uint64 ns since
    2000-01-01), frame type (1 byte), then the samples. ECG frame type 0: 3-byte signed
    µV per sample. ACC frame types 0/1/2: x, y, z as signed 1/2/3-byte mG values.

    Raises
    ------
    ValidationError
        ``too_short`` (no header or no sample), ``trailing_bytes`` (samples do not fill
        whole records), ``unsupported_measurement`` (PPG, PPI, gyro, ...),
        ``unsupported_frame_type`` (compressed/delta frames and unknown types).
    """
    what = "PMD data frame"
    view = memoryview(bytes(data))
    if len(view) < _PMD_HEADER.size:
        raise malformed(
            what, f"needs a {_PMD_HEADER.size}-byte header, got {len(view)} bytes", "too_short"
        )
    mtype, timestamp, frame_type = _PMD_HEADER.unpack_from(view)
    payload = view[_PMD_HEADER.size :]
    if mtype == PmdMeasurement.ECG:
        width, record = 3, 3
        if frame_type != _ECG_FRAME_TYPE:
            raise malformed(
                what,
                f"ECG frame type 0x{frame_type:02x} is not supported (only 0x00, "
                "uncompressed 3-byte µV samples)",
                "unsupported_frame_type",
            )
    elif mtype == PmdMeasurement.ACC:
        if frame_type not in _ACC_FRAME_BYTES:
            raise malformed(
                what,
                f"accelerometer frame type 0x{frame_type:02x} is not supported (only "
                "uncompressed 0x00, 0x01, 0x02)",
                "unsupported_frame_type",
            )
        width = _ACC_FRAME_BYTES[frame_type]
        record = 3 * width
    else:
        raise malformed(
            what,
            f"measurement type 0x{mtype:02x} is not supported (only ECG 0x00 and ACC 0x02)",
            "unsupported_measurement",
        )
    if not payload:
        raise malformed(what, "carries no samples", "too_short")
    if len(payload) % record:
        raise malformed(
            what,
            f"{len(payload)} sample bytes are not a whole number of {record}-byte samples",
            "trailing_bytes",
        )
    values = _signed_le(payload, width)
    if mtype == PmdMeasurement.ECG:
        return EcgFrame(timestamp, values)
    return AccFrame(timestamp, values.reshape(-1, 3), frame_type)


def encode_pmd_ecg(timestamp_ns: int, samples_uv: npt.ArrayLike) -> bytes:
    """Build a PMD ECG frame (type 0x00) from µV samples; inverse of :func:`decode_pmd_data`."""
    head = _PMD_HEADER.pack(PmdMeasurement.ECG, timestamp_ns, _ECG_FRAME_TYPE)
    return head + _pack_signed_le(np.asarray(samples_uv), 3)


def encode_pmd_acc(timestamp_ns: int, samples_mg: npt.ArrayLike, frame_type: int = 1) -> bytes:
    """Build a PMD accelerometer frame from ``(n, 3)`` mG samples.

    ``frame_type`` 0, 1 or 2 packs each axis value in 1, 2 or 3 bytes.
    """
    head = _PMD_HEADER.pack(PmdMeasurement.ACC, timestamp_ns, frame_type)
    return head + _pack_signed_le(np.asarray(samples_mg), _ACC_FRAME_BYTES[frame_type])


# --------------------------------------------------------------------------------------
# Polar Measurement Data: control point


class PmdOp(enum.IntEnum):
    """Control point op codes (first byte of a command)."""

    GET_SETTINGS = 0x01
    START = 0x02
    STOP = 0x03


class PmdSetting(enum.IntEnum):
    """Setting types inside start commands and settings responses."""

    SAMPLE_RATE = 0x00
    RESOLUTION = 0x01
    RANGE = 0x02
    RANGE_MILLIUNIT = 0x03
    CHANNELS = 0x04
    FACTOR = 0x05


#: bytes per value of each setting type in a settings response.
_SETTING_BYTES: Mapping[int, int] = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4}


class PmdStatus(enum.IntEnum):
    """Error codes in a control point response (0 is success)."""

    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13


_CP_RESPONSE = 0xF0
_CP_FEATURES = 0x0F


def pmd_start_command(measurement: PmdMeasurement, settings: Mapping[PmdSetting, int]) -> bytes:
    """Build a "request measurement start" command for the PMD control point.

    Layout: ``0x02``, measurement type, then per setting: type, count (1), value as
    uint16 little-endian. Prefer :func:`ecg_start_command` / :func:`acc_start_command`,
    which check the values a Polar H10 accepts.
    """
    out = bytearray([PmdOp.START, measurement])
    for setting, value in settings.items():
        if not 0 <= value <= 0xFFFF:
            raise ValidationError(
                f"PMD setting {PmdSetting(setting).name} must fit in uint16, got {value}",
                reason="invalid_setting",
            )
        out += struct.pack("<BBH", setting, 1, value)
    return bytes(out)


def ecg_start_command(sample_rate_hz: int = 130) -> bytes:
    """The start command for ECG at ``sample_rate_hz`` (130 Hz on the H10), 14-bit.

    Raises
    ------
    ValidationError
        ``invalid_setting`` for a rate the strap does not offer.
    """
    if sample_rate_hz not in ECG_SAMPLE_RATES_HZ:
        raise ValidationError(
            f"ECG sample rate must be one of {ECG_SAMPLE_RATES_HZ} Hz, got {sample_rate_hz}",
            reason="invalid_setting",
        )
    return pmd_start_command(
        PmdMeasurement.ECG,
        {PmdSetting.SAMPLE_RATE: sample_rate_hz, PmdSetting.RESOLUTION: _ECG_RESOLUTION_BITS},
    )


def acc_start_command(sample_rate_hz: int = 50, range_g: int = 8) -> bytes:
    """The start command for the accelerometer: 25–200 Hz, ±2/4/8 G, 16-bit.

    Raises
    ------
    ValidationError
        ``invalid_setting`` for a rate or range the strap does not offer.
    """
    if sample_rate_hz not in ACC_SAMPLE_RATES_HZ:
        raise ValidationError(
            f"accelerometer sample rate must be one of {ACC_SAMPLE_RATES_HZ} Hz, "
            f"got {sample_rate_hz}",
            reason="invalid_setting",
        )
    if range_g not in ACC_RANGES_G:
        raise ValidationError(
            f"accelerometer range must be one of {ACC_RANGES_G} G, got {range_g}",
            reason="invalid_setting",
        )
    return pmd_start_command(
        PmdMeasurement.ACC,
        {
            PmdSetting.SAMPLE_RATE: sample_rate_hz,
            PmdSetting.RESOLUTION: _ACC_RESOLUTION_BITS,
            PmdSetting.RANGE: range_g,
        },
    )


def pmd_stop_command(measurement: PmdMeasurement) -> bytes:
    """The "stop measurement" command for ``measurement``."""
    return bytes([PmdOp.STOP, measurement])


def pmd_settings_request(measurement: PmdMeasurement) -> bytes:
    """The "get measurement settings" command for ``measurement``."""
    return bytes([PmdOp.GET_SETTINGS, measurement])


@dataclass(frozen=True, slots=True)
class PmdControlResponse:
    """A response indicated on the PMD control point after a command.

    Attributes
    ----------
    op
        The command answered.
    measurement
        The measurement type the command named (raw byte; see :class:`PmdMeasurement`).
    status
        :class:`PmdStatus` code; ``ok`` is ``status == SUCCESS``.
    more
        True when the device will send further response frames.
    settings
        For a settings response: the offered values per setting type, e.g.
        ``{SAMPLE_RATE: (25, 50, 100, 200), RANGE: (2, 4, 8)}``; empty otherwise.
    """

    op: PmdOp
    measurement: int
    status: PmdStatus
    more: bool = False
    settings: Mapping[PmdSetting, tuple[int, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the command succeeded."""
        return self.status == PmdStatus.SUCCESS

    def __str__(self) -> str:
        return f"PMD {self.op.name} type {self.measurement}: {self.status.name}"


def _parse_settings(params: memoryview) -> dict[PmdSetting, tuple[int, ...]]:
    what = "PMD settings response"
    out: dict[PmdSetting, tuple[int, ...]] = {}
    pos = 0
    while pos < len(params):
        if pos + 2 > len(params):
            raise malformed(what, "a setting is cut after its type byte", "too_short")
        stype, count = params[pos], params[pos + 1]
        if stype not in _SETTING_BYTES:
            raise malformed(what, f"unknown setting type 0x{stype:02x}", "unknown_setting")
        size = _SETTING_BYTES[stype]
        end = pos + 2 + count * size
        if end > len(params):
            raise malformed(what, f"setting {PmdSetting(stype).name} is cut short", "too_short")
        chunk = params[pos + 2 : end]
        out[PmdSetting(stype)] = tuple(
            int.from_bytes(chunk[i * size : (i + 1) * size], "little") for i in range(count)
        )
        pos = end
    return out


def decode_pmd_control_response(data: bytes) -> PmdControlResponse:
    """Decode an indication of the PMD control point (FB005C81-…).

    Layout: ``0xF0``, op code, measurement type, status, "more frames" flag, then for a
    successful settings response the settings (type, count, values; values are
    uint16 except RANGE_MILLIUNIT and FACTOR uint32 and CHANNELS uint8). Parameters
    of start responses are ignored.

    Raises
    ------
    ValidationError
        ``not_a_response`` (first byte not 0xF0), ``too_short``, ``unknown_op``,
        ``unknown_status``, ``unknown_setting``.
    """
    what = "PMD control point response"
    view = memoryview(bytes(data))
    if len(view) < 4:
        raise malformed(what, f"needs at least 4 bytes, got {len(view)}", "too_short")
    if view[0] != _CP_RESPONSE:
        raise malformed(what, f"starts with 0x{view[0]:02x}, not 0xf0", "not_a_response")
    op, mtype, status = view[1], view[2], view[3]
    if op not in PmdOp._value2member_map_:
        raise malformed(what, f"unknown op code 0x{op:02x}", "unknown_op")
    if status not in PmdStatus._value2member_map_:
        raise malformed(what, f"unknown status code {status}", "unknown_status")
    more = len(view) > 4 and view[4] != 0
    settings: dict[PmdSetting, tuple[int, ...]] = {}
    if op == PmdOp.GET_SETTINGS and status == PmdStatus.SUCCESS:
        settings = _parse_settings(view[5:])
    return PmdControlResponse(PmdOp(op), mtype, PmdStatus(status), more, settings)


def encode_pmd_control_response(
    op: PmdOp,
    measurement: int,
    status: PmdStatus = PmdStatus.SUCCESS,
    settings: Mapping[PmdSetting, Sequence[int]] | None = None,
) -> bytes:
    """Build a control point response (inverse of :func:`decode_pmd_control_response`)."""
    out = bytearray([_CP_RESPONSE, op, measurement, status, 0])
    for stype, values in (settings or {}).items():
        size = _SETTING_BYTES[stype]
        out += bytes([stype, len(values)])
        for v in values:
            out += int(v).to_bytes(size, "little")
    return bytes(out)


def decode_pmd_features(data: bytes) -> frozenset[PmdMeasurement]:
    """Decode a read of the PMD control point: the measurements the device can stream.

    Layout: ``0x0F`` then a bitmap, bit ``n`` set when measurement type ``n`` is
    offered (H10: ECG and ACC).

    Raises
    ------
    ValidationError
        ``too_short`` or ``not_a_feature_read`` (first byte not 0x0F).
    """
    what = "PMD feature read"
    if len(data) < 2:
        raise malformed(what, f"needs at least 2 bytes, got {len(data)}", "too_short")
    if data[0] != _CP_FEATURES:
        raise malformed(what, f"starts with 0x{data[0]:02x}, not 0x0f", "not_a_feature_read")
    bits = int.from_bytes(data[1:], "little")
    return frozenset(m for m in PmdMeasurement if bits >> m & 1)


def encode_pmd_features(measurements: Iterable[PmdMeasurement]) -> bytes:
    """Build a PMD control point read (inverse of :func:`decode_pmd_features`)."""
    bits = 0
    for m in measurements:
        bits |= 1 << m
    return bytes([_CP_FEATURES]) + bits.to_bytes(2, "little")
