"""The frames the endpoint parses and writes itself, checked against ``websockets``."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.utils import apply_mask

from sensocto_lab.net.wsframes import frame_bounds, text_frame

SIZES = [0, 1, 125, 126, 65535, 65536, 70000]  # each length encoding and its edges


def _payload(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


@pytest.mark.parametrize("size", SIZES)
def test_text_frames_are_what_websockets_would_write(size: int) -> None:
    payload = _payload(size)
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


@pytest.mark.parametrize(
    "opcode, size",
    [(Opcode.TEXT, n) for n in SIZES] + [(Opcode.BINARY, n) for n in SIZES] + [(Opcode.PING, 125)],
)
def test_frame_bounds_find_the_payload_of_a_client_frame(opcode: Opcode, size: int) -> None:
    frame = Frame(opcode, _payload(size)).serialize(mask=True, extensions=[])
    buf = bytearray(b"rest" + frame)  # the frame need not start the buffer
    bounds = frame_bounds(buf, 4, size)
    assert bounds is not None
    start, stop = bounds
    assert stop == len(buf)
    assert apply_mask(buf[start:stop], buf[start - 4 : start]) == _payload(size)


@pytest.mark.parametrize("size", SIZES)
def test_a_frame_not_all_arrived_ends_beyond_the_buffer(size: int) -> None:
    frame = Frame(Opcode.BINARY, _payload(size)).serialize(mask=True, extensions=[])
    for cut in sorted({*range(2, min(len(frame), 16)), len(frame) - 1}):
        bounds = frame_bounds(frame[:cut], 0, size)
        assert bounds is not None and bounds[1] > cut, cut


def _masked(payload: bytes) -> bytes:
    return Frame(Opcode.TEXT, payload).serialize(mask=True, extensions=[])


@pytest.mark.parametrize(
    "frame, limit",
    [
        (Frame(Opcode.TEXT, b"hi").serialize(mask=False, extensions=[]), 10),
        (b"\xc1" + _masked(b"hi")[1:], 10),  # FIN, RSV1, text
        (_masked(b"hello"), 4),
        (_masked(_payload(70000))[:10], 65536),
    ],
    ids=["unmasked", "reserved-bit", "too-large", "too-large-8-byte-length"],
)
def test_frame_bounds_refuse_what_websockets_fails(frame: bytes, limit: int) -> None:
    assert frame_bounds(frame, 0, limit) is None
