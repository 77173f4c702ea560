"""Security and limits of the ingest endpoint, and where its socket lives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LOCAL_ORIGINS", "SOCKET_PATH", "ServerConfig"]

#: Where the Phoenix socket lives (the JavaScript client appends ``/websocket``).
SOCKET_PATH = "/socket/websocket"

#: Pages served from this machine on any port (``:*``), and clients that send no
#: ``Origin`` (devices, the Python clients, Node): who may open a socket by default.
LOCAL_ORIGINS: tuple[str | None, ...] = (
    *(
        f"{scheme}://{host}:*"
        for scheme in ("http", "https")
        for host in ("localhost", "127.0.0.1", "[::1]")
    ),
    None,
)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Security and limits of the endpoint.

    Attributes
    ----------
    tokens
        Ingest tokens accepted as the socket's ``token`` query parameter or a join's
        ``bearer_token``/``token`` param.
    require_token
        Refuse joins without a valid token (on by default; :meth:`open` turns it off
        for demos on one machine).
    allowed_origins
        Acceptable ``Origin`` headers: exact origins (``"https://lab.example"``), or
        with ``:*`` for any port (``"http://localhost:*"``); ``None`` in the tuple
        admits clients that send none, such as devices and Node. By default
        :data:`LOCAL_ORIGINS`, so a page from elsewhere cannot push data through a
        browser on this machine; ``None`` admits any origin. Others get HTTP 403.
    max_frame_bytes
        Largest frame we decode; larger ones get a ``frame_too_large`` error reply.
        Frames beyond twice this close the socket (close code 1009).
    rate_per_s, burst
        Token bucket per socket, in frames: refills ``rate_per_s`` a second, holds
        ``burst``. Frames over it get ``rate_limited`` and are not processed.
    idle_timeout_s
        A socket that sends no frame for this long is closed (Phoenix clients send a
        heartbeat every 30 s).
    max_channel_errors
        Consecutive error replies after which a channel is closed with ``phx_error``.
    channel_queue
        Validated pushes a sensor channel holds before the socket stops reading.
    send_buffer_bytes
        Bytes written for a peer but not yet taken by it (the transport's write
        buffer) above which the socket stops reading from that peer until it has
        taken all but a quarter: a client that sends but does not read cannot make
        replies pile up.
    send_timeout_s
        A peer whose unsent bytes stay above ``send_buffer_bytes`` this long is
        closed (close code 1008, "peer does not read ..."), on the injected clock.
    viewer_queue
        Batches a viewer channel holds for a slow viewer (drop-oldest beyond).
    viewer_tokens
        Tokens that open every viewer channel without a join code (admins, trusted
        dashboards); ``None``: the ingest ``tokens`` do.
    viewer_status_s
        How often a viewer channel checks its room for new sensors and changed
        levels or presence, in seconds.
    default_room
        Room of sensors whose join names none.
    marker_rate_per_s, marker_burst
        Token bucket per sensor channel for device ``marker`` pushes: more get
        ``rate_limited`` (and are not recorded) while the channel's data keeps flowing.
    """

    tokens: frozenset[str] = frozenset()
    require_token: bool = True
    allowed_origins: tuple[str | None, ...] | None = LOCAL_ORIGINS
    max_frame_bytes: int = 1 << 20
    rate_per_s: float = 1000.0
    burst: int = 2000
    idle_timeout_s: float = 60.0
    max_channel_errors: int = 100
    channel_queue: int = 256
    send_buffer_bytes: int = 1 << 20
    send_timeout_s: float = 30.0
    viewer_queue: int = 256
    viewer_tokens: frozenset[str] | None = None
    viewer_status_s: float = 0.5
    default_room: str = "default"
    marker_rate_per_s: float = 100.0
    marker_burst: int = 1000

    @classmethod
    def open(cls, **changes: Any) -> ServerConfig:
        """A config without token checks (the demo, tests on 127.0.0.1)."""
        return cls(require_token=False, **changes)

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a handshake with this ``Origin`` header (None: none) may open a socket."""
        allowed = self.allowed_origins
        if allowed is None or origin in allowed:
            return True
        if origin is None:
            return False
        for pattern in allowed:
            if pattern is not None and pattern.endswith(":*"):
                base = pattern[:-2]
                port = origin[len(base) + 1 :] if origin.startswith(base + ":") else ""
                if origin == base or (port.isdigit() and port.isascii()):
                    return True
        return False
