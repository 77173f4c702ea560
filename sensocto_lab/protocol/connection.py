"""Sans-I/O Phoenix Channels v2 connections: the server side and the client side.

Frames go in (:meth:`~ServerConnection.receive_text`, :meth:`~ServerConnection.receive_bytes`),
events come out (:meth:`~ServerConnection.events_received`), and whatever must be
written to the socket is collected by :meth:`~ServerConnection.data_to_send`, in the
style of the ``websockets`` protocol objects. No sockets, no asyncio: the WebSocket
server (``live/server.py``) and client (``live/client.py``) are thin drivers.

What the server connection does on its own
------------------------------------------
- answers ``heartbeat`` on topic ``phoenix`` with ``{"status": "ok", "response": {}}``;
- answers ``phx_leave`` with ok and closes the channel;
- answers every frame it cannot accept with a ``phx_reply`` ``error`` carrying
  ``{"reason": ..., "detail": ...}`` (when the frame has a ``ref``), and reports it as
  :class:`FrameRejected`. Any input therefore yields an event; nothing raises;
- on a second ``phx_join`` of a joined topic it closes the old join (``phx_close``),
  reports :class:`ChannelReplaced` and then the new :class:`JoinRequested`, as Phoenix does.

The application answers joins (:meth:`~ServerConnection.accept_join`,
:meth:`~ServerConnection.reject_join`) and pushes (:meth:`~ServerConnection.reply`),
sends server pushes (:meth:`~ServerConnection.push`) and closes channels
(:meth:`~ServerConnection.close_channel`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, NamedTuple

from sensocto_lab.errors import LimitExceeded, PeerError, ProtocolError, SensoctoError
from sensocto_lab.protocol.channel import ChannelState, Trigger, transition
from sensocto_lab.protocol.frames import (
    Message,
    decode_binary,
    decode_fields,
    decode_text,
    encode_binary,
    encode_fields,
    encode_text,
    peek_header,
)

__all__ = [
    "PHOENIX_TOPIC",
    "ChannelClosed",
    "ChannelReplaced",
    "ClientConnection",
    "ClientEvent",
    "FrameRejected",
    "Heartbeat",
    "JoinRequested",
    "LeaveRequested",
    "Pushed",
    "Replied",
    "ServerConnection",
    "ServerEvent",
    "ServerPushed",
    "error_response",
]

#: The socket-level topic carrying heartbeats.
PHOENIX_TOPIC = "phoenix"

#: Default largest text frame (characters) or binary frame (bytes) we decode.
DEFAULT_MAX_FRAME = 1 << 20


# --- events the server connection reports ------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinRequested:
    """A client asked to join ``topic`` with ``params``; answer with accept/reject_join."""

    topic: str
    join_ref: str | None
    ref: str | None
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LeaveRequested:
    """A client left ``topic`` (already answered ok; the channel is closed)."""

    topic: str
    join_ref: str | None


@dataclass(frozen=True, slots=True)
class ChannelReplaced:
    """A new join of ``topic`` closed the previous join ``join_ref`` (already sent phx_close)."""

    topic: str
    join_ref: str | None


class Pushed(NamedTuple):
    """A client event on a joined channel; ``payload`` is JSON or ``bytes`` (binary push).

    Immutable like the other events, but a named tuple: one is made per frame, and a
    frozen dataclass's ``__init__`` cost three times as much.
    """

    topic: str
    event: str
    payload: Any
    join_ref: str | None
    ref: str | None

    def __str__(self) -> str:
        return f"Pushed({self.topic} {self.event} ref={self.ref})"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A heartbeat on topic ``phoenix`` (already answered ok)."""

    ref: str | None


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame that was refused; an error reply was queued when it carried a ``ref``."""

    error: PeerError
    topic: str | None
    ref: str | None


ServerEvent = JoinRequested | LeaveRequested | ChannelReplaced | Pushed | Heartbeat | FrameRejected


def error_response(error: SensoctoError, **extra: Any) -> dict[str, Any]:
    """The ``response`` of an error reply: ``reason``, ``detail`` and any extra fields."""
    return {"reason": error.reason, "detail": error.detail, **extra}


class _Channels:
    """Per-topic state and join_ref, stepped only through the transition table."""

    def __init__(self) -> None:
        self._state: dict[str, ChannelState] = {}
        self._join_ref: dict[str, str | None] = {}

    def state(self, topic: str) -> ChannelState:
        return self._state.get(topic, ChannelState.CLOSED)

    def join_ref(self, topic: str) -> str | None:
        return self._join_ref.get(topic)

    def step(self, topic: str, trigger: Trigger, join_ref: str | None = None) -> ChannelState:
        new = transition(self._state.get(topic, ChannelState.CLOSED), trigger)
        if new is ChannelState.CLOSED:
            self._state.pop(topic, None)
            self._join_ref.pop(topic, None)
        else:
            self._state[topic] = new
            if trigger is Trigger.JOIN:
                self._join_ref[topic] = join_ref
        return new

    def topics(self, state: ChannelState) -> list[str]:
        return [t for t, s in self._state.items() if s is state]


class ServerConnection:
    """The server side of one Phoenix socket.

    Parameters
    ----------
    max_frame
        Largest frame decoded: characters for text, bytes for binary. Larger frames
        are answered with ``frame_too_large`` (by ``ref`` when the header is readable).
    """

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._channels = _Channels()
        self._events: list[ServerEvent] = []
        self._out: list[str] = []

    # -- input ------------------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """Take one text frame."""
        if len(text) > self.max_frame:
            header = peek_header(text)
            self._reject(
                LimitExceeded(
                    f"frame of {len(text)} characters is larger than {self.max_frame}",
                    reason="frame_too_large",
                ),
                header,
            )
            return
        try:
            fields = decode_fields(text)
        except ProtocolError as exc:
            self._reject(exc, peek_header(text))
            return
        self._dispatch(*fields)

    def receive_bytes(self, data: bytes) -> None:
        """Take one binary frame (a v2 binary push)."""
        if len(data) > self.max_frame:
            self._reject(
                LimitExceeded(
                    f"frame of {len(data)} bytes is larger than {self.max_frame}",
                    reason="frame_too_large",
                ),
                _peek_binary(data),
            )
            return
        try:
            message = decode_binary(data)
        except ProtocolError as exc:
            self._reject(exc, None)
            return
        self._dispatch(message.join_ref, message.ref, message.topic, message.event, message.payload)

    # -- output -----------------------------------------------------------------------

    def events_received(self) -> list[ServerEvent]:
        """The events decoded since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[str]:
        """The text frames to write, oldest first, since the last call."""
        out, self._out = self._out, []
        return out

    def state(self, topic: str) -> ChannelState:
        """The state of ``topic`` on this socket."""
        return self._channels.state(topic)

    @property
    def buffered(self) -> int:
        """Frames waiting in :meth:`data_to_send` (a slow peer shows here)."""
        return len(self._out)

    @property
    def joined_topics(self) -> list[str]:
        """Topics currently joined."""
        return self._channels.topics(ChannelState.JOINED)

    # -- application decisions ----------------------------------------------------------

    def accept_join(self, join: JoinRequested, response: dict[str, Any] | None = None) -> None:
        """Accept a pending join; replies ``ok`` with ``response``."""
        self._channels.step(join.topic, Trigger.JOIN_OK)
        self._send_reply(join.join_ref, join.ref, join.topic, "ok", response or {})

    def reject_join(self, join: JoinRequested, error: SensoctoError, **extra: Any) -> None:
        """Refuse a pending join; replies ``error`` with the error's reason and detail."""
        self._channels.step(join.topic, Trigger.JOIN_ERROR)
        self._send_reply(
            join.join_ref, join.ref, join.topic, "error", error_response(error, **extra)
        )

    def reply(self, push: Pushed, status: str, response: dict[str, Any] | None = None) -> None:
        """Answer ``push`` with ``status`` (``ok``/``error``); nothing when it had no ref."""
        if push.ref is not None:
            self._send_reply(push.join_ref, push.ref, push.topic, status, response or {})

    def reply_error(self, push: Pushed, error: SensoctoError, **extra: Any) -> None:
        """Answer ``push`` with an ``error`` reply from ``error``."""
        self.reply(push, "error", error_response(error, **extra))

    def push(self, topic: str, event: str, payload: dict[str, Any]) -> bool:
        """Send a server push on a joined channel; False (nothing sent) when not joined."""
        if self._channels.state(topic) is not ChannelState.JOINED:
            return False
        self._send(self._channels.join_ref(topic), None, topic, event, payload)
        return True

    def close_channel(self, topic: str, *, error: SensoctoError | None = None) -> bool:
        """Close a channel with ``phx_close`` (or ``phx_error`` when ``error`` is given).

        The socket and its other channels stay. Returns False if it was not open.
        """
        state = self._channels.state(topic)
        if state is ChannelState.CLOSED:
            return False
        join_ref = self._channels.join_ref(topic)
        self._channels.step(topic, Trigger.CLOSE)
        payload = {} if error is None else error_response(error)
        self._send(join_ref, join_ref, topic, "phx_error" if error else "phx_close", payload)
        return True

    def refuse(self, data: str | bytes, error: PeerError) -> None:
        """Refuse a frame without processing it (e.g. over a rate limit), by its ref."""
        header = peek_header(data) if isinstance(data, str) else _peek_binary(data)
        self._reject(error, header)

    # -- internals ----------------------------------------------------------------------

    def _dispatch(
        self, join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any
    ) -> None:
        if topic == PHOENIX_TOPIC:
            if event == "heartbeat":
                self._send_reply(None, ref, PHOENIX_TOPIC, "ok", {})
                self._events.append(Heartbeat(ref))
            else:
                self._reject(
                    ProtocolError(
                        f"topic phoenix only takes heartbeat, got {event!r:.40}",
                        reason="invalid_event",
                    ),
                    (join_ref, ref, topic, event),
                )
            return
        try:
            if event == "phx_join":
                self._join(join_ref, ref, topic, payload)
            elif event == "phx_leave":
                self._channels.step(topic, Trigger.LEAVE)
                self._channels.step(topic, Trigger.LEAVE_OK)
                self._send_reply(join_ref, ref, topic, "ok", {})
                self._events.append(LeaveRequested(topic, join_ref))
            elif event.startswith("phx_"):
                raise ProtocolError(f"clients may not send {event!r:.40}", reason="invalid_event")
            else:
                if self._channels.state(topic) is not ChannelState.JOINED:
                    self._channels.step(topic, Trigger.PUSH)  # raises: pushes need a join
                self._events.append(Pushed(topic, event, payload, join_ref, ref))
        except ProtocolError as exc:
            self._reject(exc, (join_ref, ref, topic, event))

    def _join(self, join_ref: str | None, ref: str | None, topic: str, params: Any) -> None:
        if not isinstance(params, dict):
            raise ProtocolError("join params must be a JSON object", reason="invalid_params")
        if self._channels.state(topic) is ChannelState.JOINED:
            old = self._channels.join_ref(topic)
            self.close_channel(topic)
            self._events.append(ChannelReplaced(topic, old))
        self._channels.step(topic, Trigger.JOIN, join_ref)
        self._events.append(JoinRequested(topic, join_ref, ref, params))

    def _reject(
        self, error: PeerError, where: tuple[str | None, str | None, str, str] | None
    ) -> None:
        if where is not None:
            join_ref, ref, topic, _ = where
        else:
            join_ref = ref = topic = None
        if ref is not None and topic is not None:
            self._send_reply(join_ref, ref, topic, "error", error_response(error))
        self._events.append(FrameRejected(error, topic, ref))

    def _send_reply(
        self, join_ref: str | None, ref: str | None, topic: str, status: str, response: Any
    ) -> None:
        # as _send, one call fewer: every acknowledged push comes here
        self._out.append(
            encode_fields(
                join_ref, ref, topic, "phx_reply", {"status": status, "response": response}
            )
        )

    def _send(
        self, join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any
    ) -> None:
        self._out.append(encode_fields(join_ref, ref, topic, event, payload))


def _peek_binary(data: bytes) -> tuple[str | None, str | None, str, str] | None:
    try:
        head = decode_binary(data[: 5 + sum(data[1:5])] if len(data) >= 5 else data)
    except ProtocolError:
        return None
    return head.join_ref, head.ref, head.topic, head.event


# --- the client side ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replied:
    """The server answered request ``ref`` with ``status`` and ``response``."""

    topic: str
    ref: str
    status: str
    response: Any


@dataclass(frozen=True, slots=True)
class ServerPushed:
    """The server pushed ``event`` on a joined channel."""

    topic: str
    event: str
    payload: Any


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """The server closed ``topic`` (``phx_close``, or ``phx_error`` when ``error``)."""

    topic: str
    error: bool
    payload: Any


ClientEvent = Replied | ServerPushed | ChannelClosed


class ClientConnection:
    """The client side of one Phoenix socket: refs, joins, pushes and decoding replies.

    Replies and pushes for joins other than the current one of their topic (left over
    from before a rejoin) are dropped, as the official client does.
    """

    def __init__(self) -> None:
        self._refs = itertools.count(1)
        self._channels = _Channels()
        self._pending_joins: dict[str, str] = {}  # ref -> topic
        self._events: list[ClientEvent] = []
        self._out: list[str | bytes] = []

    def state(self, topic: str) -> ChannelState:
        """The state of ``topic`` as this client sees it."""
        return self._channels.state(topic)

    def join(self, topic: str, params: dict[str, Any]) -> str:
        """Queue a ``phx_join``; returns its ref (also the channel's join_ref)."""
        ref = str(next(self._refs))
        self._channels.step(topic, Trigger.JOIN, ref)
        self._pending_joins[ref] = topic
        self._out.append(encode_text(Message(ref, ref, topic, "phx_join", params)))
        return ref

    def push(self, topic: str, event: str, payload: dict[str, Any] | bytes) -> str:
        """Queue an event on a joined channel (binary frame for ``bytes``); returns its ref.

        Raises
        ------
        ProtocolError
            ``unmatched_topic`` when ``topic`` is not joined.
        """
        if self._channels.state(topic) is not ChannelState.JOINED:
            transition(self._channels.state(topic), Trigger.PUSH)  # raises
        ref = str(next(self._refs))
        msg = Message(self._channels.join_ref(topic), ref, topic, event, payload)
        self._out.append(encode_binary(msg) if isinstance(payload, bytes) else encode_text(msg))
        return ref

    def heartbeat(self) -> str:
        """Queue a heartbeat; returns its ref."""
        ref = str(next(self._refs))
        self._out.append(encode_text(Message(None, ref, PHOENIX_TOPIC, "heartbeat", {})))
        return ref

    def reset(self) -> None:
        """Forget every channel (the socket was lost); refs keep counting up."""
        self._channels = _Channels()
        self._pending_joins.clear()
        self._out.clear()

    def receive_text(self, text: str) -> None:
        """Take one text frame from the server.

        Raises
        ------
        ProtocolError
            The server sent something that is not a v2 frame.
        """
        msg = decode_text(text)
        current = self._channels.join_ref(msg.topic)
        if msg.event == "phx_reply":
            payload = msg.payload if isinstance(msg.payload, dict) else {}
            status = str(payload.get("status", "error"))
            response = payload.get("response")
            if msg.ref is not None and msg.ref in self._pending_joins:
                topic = self._pending_joins.pop(msg.ref)
                if topic == msg.topic and current == msg.ref:
                    self._channels.step(
                        topic, Trigger.JOIN_OK if status == "ok" else Trigger.JOIN_ERROR
                    )
            if msg.ref is not None:
                self._events.append(Replied(msg.topic, msg.ref, status, response))
        elif msg.event in ("phx_close", "phx_error"):
            if (
                msg.join_ref == current
                and self._channels.state(msg.topic) is not ChannelState.CLOSED
            ):
                self._channels.step(msg.topic, Trigger.CLOSE)
                self._events.append(ChannelClosed(msg.topic, msg.event == "phx_error", msg.payload))
        elif msg.join_ref is None or msg.join_ref == current:
            self._events.append(ServerPushed(msg.topic, msg.event, msg.payload))

    def events_received(self) -> list[ClientEvent]:
        """Events decoded since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[str | bytes]:
        """Frames to write (text, or bytes for binary pushes), oldest first."""
        out, self._out = self._out, []
        return out
