"""The WebSocket frames the endpoint reads and writes itself, beside ``websockets``.

The socket of :mod:`sensocto_lab.net.server` parses the frames of ingest (whole,
unfragmented, masked text and binary frames) itself, because ``websockets``' parser, a
generator per frame, was a quarter of the cost of a one-sample push; and it frames its
outgoing text itself, because a ``Frame`` object and state checks per frame cost more
than the rest of an acknowledgement. ``websockets`` keeps everything else: the
handshake, control frames, fragments, and every error and the close that answers it.
So what is here must agree with ``websockets`` byte for byte, which
``tests/live/test_wsframes.py`` checks.
"""

from __future__ import annotations

from websockets.server import ServerProtocol

__all__ = ["frame_bounds", "nothing_buffered", "text_frame"]


def nothing_buffered(ws: ServerProtocol) -> bool:
    """Whether ``ws`` holds no bytes it received but has not parsed yet.

    This reads a websockets internal (its reader's buffer); should a release rename
    it, the answer is "not known to be empty", and every frame stays with websockets:
    slower, never wrong.
    """
    buffer = getattr(getattr(ws, "reader", None), "buffer", None)
    return buffer is not None and len(buffer) == 0


def frame_bounds(buf: bytes | bytearray, pos: int, limit: int) -> tuple[int, int] | None:
    """Where the payload of the client frame at ``buf[pos]`` lies (RFC 6455 §5.2).

    Parameters
    ----------
    buf
        Bytes received from a client; at least two (a header's first two) from ``pos``.
    pos
        Where the frame starts.
    limit
        The largest payload ``websockets`` takes, in bytes.

    Returns
    -------
    tuple[int, int] | None
        ``(start, stop)``: the payload is ``buf[start:stop]``, masked with the four
        bytes before ``start``. A ``stop`` beyond ``len(buf)`` means the frame has not
        all arrived (so does a header not all arrived: a length read from part of its
        bytes is at most the real one). None for a header ``websockets`` refuses
        (unmasked, reserved bits set, payload over ``limit``): it must see that frame
        to fail the connection.
    """
    head1, head2 = buf[pos], buf[pos + 1]
    length, start = head2 & 0x7F, pos + 6
    if length == 126:
        start += 2
        length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
    elif length == 127:
        start += 8
        length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
    if not head2 & 0x80 or head1 & 0x70 or length > limit:
        return None
    return start, start + length


def text_frame(payload: bytes) -> bytes:
    """A server's unfragmented, unmasked WebSocket text frame (RFC 6455 §5.2) of ``payload``.

    What ``websockets``' ``Protocol.send_text`` writes without extensions (compression
    is off), framed here because its ``Frame`` object and state checks per frame cost
    more than the rest of an acknowledgement; the server's socket checks the state
    once for all queued frames.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload
