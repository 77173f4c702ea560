"""Phoenix Channels v2 frames: text (JSON arrays) and binary pushes, to and from messages.

Pure codec, no I/O. A v2 *text* frame is a JSON array::

    [join_ref, ref, topic, event, payload]

``join_ref`` names the channel join a message belongs to, ``ref`` the request a reply
answers (both strings or ``null``). A v2 *binary* frame from a client is a push whose
payload is raw bytes (what the official JavaScript client sends for an ``ArrayBuffer``)::

    u8 kind = 0 (push) | u8 len(join_ref) | u8 len(ref) | u8 len(topic) | u8 len(event)
    join_ref | ref | topic | event        (ASCII/UTF-8, sizes above)
    payload                               (the rest of the frame)

The server sends only text frames (replies are JSON even for binary pushes, as Phoenix
does). Anything that is not one of these raises :class:`~sensocto_lab.errors.ProtocolError`
with a ``reason`` of ``invalid_json``, ``invalid_frame`` or ``invalid_binary_frame``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from sensocto_lab.errors import ProtocolError

__all__ = [
    "BINARY_PUSH",
    "Fields",
    "Message",
    "decode_binary",
    "decode_fields",
    "decode_text",
    "encode_binary",
    "encode_fields",
    "encode_text",
    "peek_header",
]

#: Kind byte of a client→server binary push (Phoenix serializer v2).
BINARY_PUSH = 0

# The standard library's codec defines what a frame means (NaN/Infinity literals and
# integers of any size decode, NaN refuses to encode); orjson, about ten times faster on
# the small frames of the ingest hot path, does the work whenever its result is the same.
_decoder = json.JSONDecoder()
_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)
# Types the standard library would not encode (dataclasses, datetimes, str/int/dict
# subclasses such as enums) make orjson raise too, so the standard library decides.
_ORJSON_STRICT = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)

# The four header fields of a text frame, read without parsing the (possibly huge or
# broken) payload, so an oversize or malformed frame can still be answered by ref.
_HEADER_RE = re.compile(
    r'\s*\[\s*(null|"[^"\\]{0,255}")\s*,\s*(null|"[^"\\]{0,255}")\s*,'
    r'\s*"([^"\\]{1,255})"\s*,\s*"([^"\\]{1,255})"'
)


@dataclass(frozen=True, slots=True)
class Message:
    """One Phoenix message, either direction.

    Attributes
    ----------
    join_ref
        The join this message belongs to (``None`` for heartbeats and broadcasts).
    ref
        The request reference a reply answers; ``None`` for pushes that want no reply.
    topic
        Channel topic, e.g. ``"sensor:abc"`` or ``"phoenix"``.
    event
        Event name, e.g. ``"phx_join"``, ``"measurement"``.
    payload
        The decoded JSON payload, or ``bytes`` for a binary push.
    """

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any

    def __str__(self) -> str:
        size = len(self.payload) if isinstance(self.payload, bytes) else "json"
        return f"Message({self.topic} {self.event} ref={self.ref} payload={size})"


def _ref(value: object, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= 255:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # some connectors send integer refs
    raise ProtocolError(
        f"{what} must be a string or null, got {value!r:.40}", reason="invalid_frame"
    )


def _name(value: object, what: str) -> str:
    if isinstance(value, str) and 0 < len(value) <= 255:
        return value
    raise ProtocolError(
        f"{what} must be a non-empty string of at most 255 characters, got {value!r:.40}",
        reason="invalid_frame",
    )


#: The five fields of a frame, checked: ``(join_ref, ref, topic, event, payload)``.
Fields = tuple[str | None, str | None, str, str, Any]


def decode_text(text: str) -> Message:
    """Decode one v2 text frame.

    Raises
    ------
    ProtocolError
        ``invalid_json`` when the text is not JSON; ``invalid_frame`` when it is not a
        five-element array with string/null refs and non-empty topic and event.
    """
    return Message(*decode_fields(text))


def decode_fields(text: str) -> Fields:
    """:func:`decode_text` as a plain tuple (hot paths that need no :class:`Message`)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:  # maybe valid for the standard library (NaN, big ints)
        try:
            data = _decoder.decode(text)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"frame is not valid JSON: {exc}", reason="invalid_json") from None
    if type(data) is not list or len(data) != 5:
        raise ProtocolError(
            "a v2 frame is a JSON array [join_ref, ref, topic, event, payload]",
            reason="invalid_frame",
        )
    join_ref, ref, topic, event, payload = data
    if (  # the usual frame, checked inline: string refs, a topic and an event
        type(topic) is str
        and type(event) is str
        and type(ref) is str
        and type(join_ref) is str
        and 0 < len(topic) <= 255
        and 0 < len(event) <= 255
        and len(ref) <= 255
        and len(join_ref) <= 255
    ):
        return join_ref, ref, topic, event, payload
    return (
        _ref(join_ref, "join_ref"),
        _ref(ref, "ref"),
        _name(topic, "topic"),
        _name(event, "event"),
        payload,
    )


def encode_text(message: Message) -> str:
    """Encode ``message`` as a v2 text frame (compact JSON; NaN is refused)."""
    return encode_fields(
        message.join_ref, message.ref, message.topic, message.event, message.payload
    )


def encode_fields(
    join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any
) -> str:
    """:func:`encode_text` of the fields of a message (hot paths that make no :class:`Message`)."""
    frame = (join_ref, ref, topic, event, payload)
    try:
        fast = orjson.dumps(frame, option=_ORJSON_STRICT)
        if b"null" in fast:  # NaN and infinities come out as null; null refs do too
            body = orjson.dumps(payload, option=_ORJSON_STRICT)
            if b"null" in body:  # a payload with null or NaN: the stdlib decides
                return _encoder.encode(frame)
    except orjson.JSONEncodeError:
        return _encoder.encode(frame)  # the same, or raises as before
    return fast.decode()


def decode_binary(data: bytes) -> Message:
    """Decode one v2 binary push (kind 0); the payload stays ``bytes``.

    Raises
    ------
    ProtocolError
        ``invalid_binary_frame`` for another kind, a short frame, or header strings
        that are not UTF-8 or are empty where required (topic, event).
    """
    if len(data) < 5:
        raise ProtocolError(
            f"a binary frame needs a 5-byte header, got {len(data)} bytes",
            reason="invalid_binary_frame",
        )
    if data[0] != BINARY_PUSH:
        raise ProtocolError(
            f"only binary pushes (kind 0) are accepted, got kind {data[0]}",
            reason="invalid_binary_frame",
        )
    sizes = data[1:5]
    end = 5 + sum(sizes)
    if len(data) < end:
        raise ProtocolError(
            f"binary frame header announces {end} bytes, frame has {len(data)}",
            reason="invalid_binary_frame",
        )
    fields: list[str] = []
    offset = 5
    for size in sizes:
        try:
            fields.append(bytes(data[offset : offset + size]).decode("utf-8"))
        except UnicodeDecodeError:
            raise ProtocolError(
                "binary frame header fields must be UTF-8", reason="invalid_binary_frame"
            ) from None
        offset += size
    join_ref, ref, topic, event = fields
    if not topic or not event:
        raise ProtocolError(
            "binary frame needs a topic and an event", reason="invalid_binary_frame"
        )
    return Message(join_ref or None, ref or None, topic, event, bytes(data[end:]))


def encode_binary(message: Message) -> bytes:
    """Encode a push with a ``bytes`` payload as a v2 binary frame (what a client sends)."""
    if not isinstance(message.payload, bytes | bytearray | memoryview):
        raise TypeError("a binary push carries a bytes payload")
    parts = [
        (message.join_ref or "").encode(),
        (message.ref or "").encode(),
        message.topic.encode(),
        message.event.encode(),
    ]
    if any(len(p) > 255 for p in parts):
        raise ValueError("join_ref, ref, topic and event must each fit in 255 bytes")
    return bytes([BINARY_PUSH, *(len(p) for p in parts)]) + b"".join(parts) + bytes(message.payload)


def peek_header(text: str) -> tuple[str | None, str | None, str, str] | None:
    """Read ``(join_ref, ref, topic, event)`` from the start of a text frame, if possible.

    Used to answer frames that cannot be decoded whole (too large, broken payload);
    returns ``None`` when even the header is unreadable.
    """
    match = _HEADER_RE.match(text[:1100])
    if match is None:
        return None
    join_ref, ref, topic, event = match.groups()
    return (
        None if join_ref == "null" else join_ref[1:-1],
        None if ref == "null" else ref[1:-1],
        topic,
        event,
    )
