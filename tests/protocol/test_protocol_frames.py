"""The v2 codec: whole frames, broken frames, binary pushes, and fuzzing."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensocto_lab.errors import ProtocolError
from sensocto_lab.protocol.frames import (
    Message,
    decode_binary,
    decode_text,
    encode_binary,
    encode_text,
    peek_header,
)

refs = st.one_of(st.none(), st.text(min_size=1, max_size=10))
names = st.text(min_size=1, max_size=30)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)


def test_decodes_a_join_frame() -> None:
    msg = decode_text('["1","1","sensor:a","phx_join",{"sensor_name":"A"}]')
    assert msg == Message("1", "1", "sensor:a", "phx_join", {"sensor_name": "A"})


def test_integer_refs_become_strings() -> None:
    assert decode_text('[3,4,"t","e",{}]').ref == "4"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid_json"),
        ('["1","1","t","e",{}', "invalid_json"),
        ('{"topic":"t"}', "invalid_frame"),
        ('["1","1","t","e"]', "invalid_frame"),
        ('["1","1","","e",{}]', "invalid_frame"),
        ('["1","1","t",5,{}]', "invalid_frame"),
        ('[true,"1","t","e",{}]', "invalid_frame"),
        ('["1",[1],"t","e",{}]', "invalid_frame"),
        ("[" * 100_000, "invalid_json"),
    ],
)
def test_bad_text_frames_raise_protocol_error(text: str, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_text(text)
    assert info.value.reason == reason


@pytest.mark.parametrize("refs", [(None, None), ("1", "2")])
def test_encode_refuses_nan(refs: tuple[str | None, str | None]) -> None:
    with pytest.raises(ValueError):
        encode_text(Message(*refs, "t", "e", {"x": float("nan")}))


def test_literals_only_the_stdlib_reads_still_decode() -> None:
    msg = decode_text(
        '["1","2","t","e",{"x":NaN,"y":-Infinity,"n":123456789012345678901234567890}]'
    )
    assert math.isnan(msg.payload["x"]) and msg.payload["y"] == -math.inf
    assert msg.payload["n"] == 123456789012345678901234567890


def test_what_the_stdlib_cannot_encode_still_raises() -> None:
    with pytest.raises(TypeError):
        encode_text(Message("1", "2", "t", "e", {"x": Message(None, None, "t", "e", {})}))


@given(refs, refs, names, names, json_values)
def test_text_round_trip(join_ref, ref, topic, event, payload) -> None:  # type: ignore[no-untyped-def]
    msg = Message(join_ref, ref, topic, event, payload)
    assert decode_text(encode_text(msg)) == msg


@given(st.text(max_size=200))
def test_any_text_decodes_or_raises_protocol_error(text: str) -> None:
    try:
        msg = decode_text(text)
    except ProtocolError as exc:
        assert exc.reason in {"invalid_json", "invalid_frame"}
    else:
        assert isinstance(msg.topic, str) and msg.topic


def test_binary_push_round_trip_matches_the_js_layout() -> None:
    frame = encode_binary(Message("1", "2", "sensor:a", "measurements_binary", b"\x01\x02"))
    # kind, 4 sizes, strings, payload: exactly what phoenix/serializer.js binaryEncode makes
    assert frame == bytes([0, 1, 1, 8, 19]) + b"12sensor:ameasurements_binary\x01\x02"
    assert decode_binary(frame) == Message("1", "2", "sensor:a", "measurements_binary", b"\x01\x02")


def test_every_truncation_of_a_binary_push_header_raises() -> None:
    frame = encode_binary(Message("1", "2", "sensor:a", "ev", b""))
    for cut in range(len(frame)):
        with pytest.raises(ProtocolError) as info:
            decode_binary(frame[:cut])
        assert info.value.reason == "invalid_binary_frame"
    assert decode_binary(frame).payload == b""


def test_binary_frames_of_other_kinds_are_refused() -> None:
    with pytest.raises(ProtocolError, match="kind 1"):
        decode_binary(bytes([1, 0, 0, 1, 1]) + b"te")


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    try:
        msg = decode_binary(data)
    except ProtocolError as exc:
        assert exc.reason == "invalid_binary_frame"
    else:
        assert isinstance(msg.payload, bytes)


def test_peek_header_reads_refs_of_broken_frames() -> None:
    broken = '["7","8","sensor:a","measurement",{"payload": [1,2,' + "3," * 10
    assert peek_header(broken) == ("7", "8", "sensor:a", "measurement")
    assert peek_header('[null,"9","phoenix","heartbeat"') == (None, "9", "phoenix", "heartbeat")
    assert peek_header("garbage") is None
    # the header is the same one json sees
    good = encode_text(Message("1", "2", "t", "e", {}))
    assert peek_header(good) == tuple(json.loads(good)[:4])
