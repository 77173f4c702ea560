"""The binary batch block: round trips, every truncation, corrupt fields, fuzzing."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensocto_lab.errors import ProtocolError
from sensocto_lab.protocol.binary import MAGIC, decode_batch, encode_batch

T0 = 1_767_225_600_000_000_000


def test_evenly_spaced_scalar_round_trip() -> None:
    values = np.linspace(-1, 1, 130, dtype=np.float32)
    block = encode_batch("ecg", values, t0_ns=T0, dt_ns=1e9 / 130)
    out = decode_batch(block)
    assert out.attribute_id == "ecg"
    np.testing.assert_array_equal(out.values, values)
    assert out.ts[0] == T0 and out.ts[-1] == T0 + round(129 * 1e9 / 130)
    assert out.ts.dtype == np.int64 and out.values.dtype == np.float32
    assert len(block) == 16 + 3 + 16 + 4 * 130


@pytest.mark.parametrize("dt", [1e6, 1e9 / 130, 3.0, 0.0, 2.5e12])
def test_evenly_spaced_stamps_are_t0_plus_rounded_multiples(dt: float) -> None:
    n = 50_000
    out = decode_batch(encode_batch("ecg", np.zeros(n), t0_ns=T0, dt_ns=dt))
    expected = [T0 + round(i * dt) for i in range(n)]
    np.testing.assert_array_equal(out.ts, expected)


def test_explicit_timestamps_and_vectors() -> None:
    ts = T0 + np.array([0, 7, 7, 100], dtype=np.int64)
    values = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = decode_batch(encode_batch("accelerometer", values, ts=ts))
    np.testing.assert_array_equal(out.ts, ts)
    np.testing.assert_array_equal(out.values, values)
    assert out.values.shape == (4, 3)


def test_every_truncation_and_extension_raises() -> None:
    block = encode_batch("hr", [60.0, 61.0], t0_ns=T0, dt_ns=1e9)
    for cut in range(len(block)):
        with pytest.raises(ProtocolError) as info:
            decode_batch(block[:cut])
        assert info.value.reason == "invalid_binary_batch"
    with pytest.raises(ProtocolError, match="announces"):
        decode_batch(block + b"\x00")


def _head(**fields: int | bytes) -> bytes:
    h = {"magic": MAGIC, "version": 1, "flags": 0, "a": 2, "n": 1, "w": 1, "r": 0} | fields
    return struct.pack("<4sBBHIHH", *h.values())


@pytest.mark.parametrize(
    ("head", "match"),
    [
        (_head(magic=b"XXXX"), "magic"),
        (_head(version=2), "version"),
        (_head(flags=4), "flags"),
        (_head(n=0), "n must be"),
        (_head(n=10**7), "n must be"),
        (_head(w=0), "width"),
    ],
)
def test_corrupt_header_fields_are_named(head: bytes, match: str) -> None:
    body = b"hr" + struct.pack("<qd", T0, 1e6) + b"\x00" * 4
    with pytest.raises(ProtocolError, match=match):
        decode_batch(head + body)


def test_negative_dt_and_non_utf8_id_are_refused() -> None:
    with pytest.raises(ProtocolError, match="dt"):
        decode_batch(_head() + b"hr" + struct.pack("<qd", T0, -1.0) + b"\x00" * 4)
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode_batch(_head() + b"\xff\xfe" + struct.pack("<qd", T0, 1.0) + b"\x00" * 4)


@pytest.mark.parametrize(
    ("t0", "dt"), [(2**63 - 10, 1e9), (-(2**63), 1e19), (T0, 1e300)], ids=["t0", "dt", "huge"]
)
def test_evenly_spaced_stamps_beyond_int64_are_refused(t0: int, dt: float) -> None:
    """They would wrap around (a far-future time seen as any other), or warn and garble."""
    with pytest.raises(ProtocolError, match="beyond int64"):
        decode_batch(encode_batch("hr", [1.0, 2.0], t0_ns=t0, dt_ns=dt))


def test_encode_needs_timing() -> None:
    with pytest.raises(ValueError):
        encode_batch("hr", [1.0])
    with pytest.raises(ValueError):
        encode_batch("hr", [1.0, 2.0], ts=[T0])


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise(data: bytes) -> None:
    try:
        out = decode_batch(data)
    except ProtocolError as exc:
        assert exc.reason == "invalid_binary_batch"
    else:
        assert out.ts.shape[0] == out.values.shape[0]


@given(
    st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=50),
    st.integers(0, 10**12),
)
def test_round_trip_property(values: list[float], dt: int) -> None:
    out = decode_batch(encode_batch("resp", values, t0_ns=T0, dt_ns=float(dt)))
    np.testing.assert_array_equal(out.values, np.asarray(values, dtype=np.float32))
    assert (np.diff(out.ts) >= 0).all()
