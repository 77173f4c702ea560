"""Decoders for the BLE payloads a heart-rate strap sends, sans-I/O.

Bytes in, small frozen dataclasses and numpy arrays out; nothing here touches a
radio, a socket or an event loop, so every rule is tested with byte vectors.

Covered:

- **Heart Rate Measurement** (Bluetooth SIG characteristic 0x2A37 of the Heart Rate
  service 0x180D): flags, heart rate as uint8 or uint16 bpm, sensor-contact bits,
  energy expended (uint16 kJ), RR intervals (uint16 each, 1/1024 s, several per
  notification).
- **Battery Level** (0x2A19): one uint8, 0–100 %.
- the service and characteristic UUIDs, also those of Polar's PMD service, whose
  frames :mod:`sensocto_lab.protocol.pmd` decodes.

Malformed input raises :class:`~sensocto_lab.errors.ValidationError` whose ``reason``
names the rule broken (``too_short``, ``trailing_bytes``, ``unsupported_frame_type``,
...), never an ``IndexError`` or ``struct.error``.

The ``encode_*`` functions are the exact inverse of the decoders. They exist so the
fake radio (:mod:`sensocto_lab.sources.ble.fake`) can build notifications a real strap
would send, and so tests can round-trip; capture never encodes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sensocto_lab.errors import ValidationError

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "PMD_CONTROL_UUID",
    "PMD_DATA_UUID",
    "PMD_SERVICE_UUID",
    "BatteryLevel",
    "HeartRateMeasurement",
    "decode_battery_level",
    "decode_heart_rate",
    "encode_battery_level",
    "encode_heart_rate",
    "malformed",
    "sig_uuid",
]


def sig_uuid(short: int) -> str:
    """The full 128-bit UUID string of a 16-bit Bluetooth SIG assigned number."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


HEART_RATE_SERVICE_UUID = sig_uuid(0x180D)
HEART_RATE_MEASUREMENT_UUID = sig_uuid(0x2A37)
BATTERY_SERVICE_UUID = sig_uuid(0x180F)
BATTERY_LEVEL_UUID = sig_uuid(0x2A19)
PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"



def malformed(what: str, detail: str, reason: str) -> ValidationError:
    """The error for a payload that breaks the rule ``reason`` of ``what`` (shared by decoders)."""
    return ValidationError(f"{what}: {detail}", reason=reason)


# --------------------------------------------------------------------------------------
# Heart Rate Measurement (0x2A37)

_HR_UINT16 = 0x01
_HR_CONTACT_DETECTED = 0x02
_HR_CONTACT_SUPPORTED = 0x04
_HR_ENERGY = 0x08
_HR_RR = 0x10
_HR_RESERVED = 0xE0


@dataclass(frozen=True, slots=True, eq=False)
class HeartRateMeasurement:
    """One Heart Rate Measurement notification.

    Attributes
    ----------
    bpm
        Heart rate, beats per minute (0 means the strap has no reading yet).
    contact
        ``True``/``False`` when the strap reports skin contact, ``None`` when it does
        not support contact detection.
    energy_kj
        Energy expended since the last reset, kJ, or ``None`` when absent.
    rr_ms
        RR intervals in milliseconds, shape ``(k,)`` float64, oldest first; ``k`` may
        be 0. Converted from the wire's 1/1024 s units, so values are exact.
    """

    bpm: int
    contact: bool | None
    energy_kj: int | None
    rr_ms: npt.NDArray[np.float64] = field(repr=False)

    def __str__(self) -> str:
        return f"HR {self.bpm} bpm, {len(self.rr_ms)} RR, contact={self.contact}"


def decode_heart_rate(data: bytes) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement (0x2A37) notification.

    Raises
    ------
    ValidationError
        ``too_short`` (fewer bytes than the flags promise), ``trailing_bytes`` (an odd
        byte after the RR intervals, or bytes after the last announced field),
        ``reserved_flags`` (bits 5–7 set).
    """
    what = "heart rate measurement"
    view = memoryview(bytes(data))
    if len(view) < 2:
        raise malformed(what, f"needs at least 2 bytes, got {len(view)}", "too_short")
    flags = view[0]
    if flags & _HR_RESERVED:
        raise malformed(what, f"reserved flag bits set in 0x{flags:02x}", "reserved_flags")
    pos = 1
    if flags & _HR_UINT16:
        if len(view) < 3:
            detail = "flags announce a uint16 heart rate but 1 byte follows"
            raise malformed(what, detail, "too_short")
        bpm = int.from_bytes(view[1:3], "little")
        pos = 3
    else:
        bpm = view[1]
        pos = 2
    contact = bool(flags & _HR_CONTACT_DETECTED) if flags & _HR_CONTACT_SUPPORTED else None
    energy: int | None = None
    if flags & _HR_ENERGY:
        if len(view) < pos + 2:
            raise malformed(what, "flags announce energy expended but it is missing", "too_short")
        energy = int.from_bytes(view[pos : pos + 2], "little")
        pos += 2
    rest = len(view) - pos
    if flags & _HR_RR:
        if rest % 2:
            raise malformed(
                what, f"RR intervals take 2 bytes each, {rest} bytes left", "trailing_bytes"
            )
        rr_ms = np.frombuffer(view[pos:], dtype="<u2") * (1000.0 / 1024.0)
    elif rest:
        raise malformed(what, f"{rest} bytes after the last announced field", "trailing_bytes")
    else:
        rr_ms = np.empty(0, dtype=np.float64)
    return HeartRateMeasurement(bpm, contact, energy, rr_ms)


def encode_heart_rate(
    bpm: int,
    rr_ms: Sequence[float] | npt.NDArray[np.float64] = (),
    *,
    contact: bool | None = True,
    energy_kj: int | None = None,
    uint16: bool | None = None,
) -> bytes:
    """Build a Heart Rate Measurement notification (the inverse of :func:`decode_heart_rate`).

    RR intervals are rounded to the wire's 1/1024 s. ``uint16`` forces the heart-rate
    field width; by default uint8 is used when ``bpm`` fits. The RR flag is set
    exactly when ``rr_ms`` is non-empty.
    """
    wide = bpm > 0xFF if uint16 is None else uint16
    flags = _HR_UINT16 if wide else 0
    if contact is not None:
        flags |= _HR_CONTACT_SUPPORTED | (_HR_CONTACT_DETECTED if contact else 0)
    body = struct.pack("<H", bpm) if wide else struct.pack("<B", bpm)
    if energy_kj is not None:
        flags |= _HR_ENERGY
        body += struct.pack("<H", energy_kj)
    rr = np.asarray(rr_ms, dtype=np.float64)
    if rr.size:
        flags |= _HR_RR
        body += np.round(rr * 1.024).astype("<u2").tobytes()
    return bytes([flags]) + body


# --------------------------------------------------------------------------------------
# Battery Level (0x2A19)


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """A Battery Level reading or notification: ``percent`` in 0–100."""

    percent: int


def decode_battery_level(data: bytes) -> BatteryLevel:
    """Decode a Battery Level (0x2A19) value.

    Raises
    ------
    ValidationError
        ``invalid_length`` unless exactly one byte, ``out_of_range`` above 100 %.
    """
    if len(data) != 1:
        raise malformed("battery level", f"must be 1 byte, got {len(data)}", "invalid_length")
    pct = data[0]
    if pct > 100:
        raise malformed("battery level", f"{pct} % is above 100 %", "out_of_range")
    return BatteryLevel(pct)


def encode_battery_level(percent: int) -> bytes:
    """Build a Battery Level value (the inverse of :func:`decode_battery_level`)."""
    return bytes([percent])
