"""One WebSocket connection of the ingest endpoint, driven as an :class:`asyncio.Protocol`.

Thin glue over two sans-I/O protocols: ``websockets``' ``ServerProtocol`` (handshake,
frames, pings, closing) and :class:`~sensocto_lab.protocol.connection.ServerConnection`
(Phoenix). The socket checks access on joins and makes the joined channels
(:mod:`sensocto_lab.net.channels`), which reply through it
(:class:`~sensocto_lab.net.hosting.ChannelHost`); it belongs to a server through
:class:`~sensocto_lab.net.hosting.EndpointServer`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

try:  # what websockets unmasks with: its C speedup, or its pure-Python fallback
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a build without the extension
    from websockets.utils import apply_mask

from sensocto_lab.clock import TokenBucket
from sensocto_lab.errors import (
    AuthError,
    LimitExceeded,
    LocalError,
    PeerError,
    SensoctoError,
)
from sensocto_lab.model import SensorInfo
from sensocto_lab.net.channels.base import Channel
from sensocto_lab.net.channels.sensor import INTERNAL_ERROR, ConnectorChannel, SensorChannel
from sensocto_lab.net.channels.viewer import ViewerChannel, open_viewer
from sensocto_lab.net.hosting import EndpointServer
from sensocto_lab.net.wsframes import frame_bounds, nothing_buffered, text_frame
from sensocto_lab.protocol import connection as phx
from sensocto_lab.protocol.sensor import (
    declaration_conflict,
    parse_topic,
    sensor_info_from_join,
)
from sensocto_lab.protocol.viewer import ViewerParams

__all__ = ["Socket", "SocketStatistics"]

log = logging.getLogger(__name__)

#: Seconds a peer has to answer our close frame (or close TCP) before the socket is cut.
_CLOSE_TIMEOUT_S = 10.0

#: Phoenix frames queued in one read after which they are written at once, so a peer
#: that does not read is noticed (the transport pauses writing) within one read.
_FLUSH_EVERY = 256


@dataclasses.dataclass(frozen=True, slots=True)
class SocketStatistics:
    """What one connection holds for its peer, and how often the peer held it up.

    Attributes
    ----------
    send_buffer
        Bytes written for the peer that it has not taken yet (the transport's buffer).
    frames_queued
        Phoenix frames waiting to be written (while the transport's buffer is full).
    inbox
        Frames received but not handled yet (reading stops meanwhile).
    reading
        Whether the socket reads from the peer now.
    write_pauses
        Times the peer's unsent bytes went over ``send_buffer_bytes``.
    """

    send_buffer: int
    frames_queued: int
    inbox: int
    reading: bool
    write_pauses: int


class Socket(asyncio.Protocol):
    """One WebSocket connection, driven as an :class:`asyncio.Protocol`: its channels,
    its idle watchdog, and the ``websockets`` Sans-I/O protocol under it.

    ``websockets`` does the HTTP handshake, pings, fragments, limits, protocol errors
    and the closing handshake; this class parses only whole data frames itself
    (:meth:`_take_frames`), hands ``websockets`` everything else and writes what it
    wants sent. The Phoenix frames of one ``data_received`` are
    handled in one synchronous pass, without a coroutine or future per frame.
    What must be awaited (joins, closing channels, a full channel queue) is run by
    a task while reading is paused, so frames are still handled strictly in order.
    Outgoing Phoenix frames are written together, once per event-loop iteration.
    """

    _ids = itertools.count(1)

    def __init__(self, server: EndpointServer) -> None:
        self.server = server
        cfg = server.config
        # origins are checked by the server's process_request (ports may be any)
        self.ws = ServerProtocol(max_size=2 * cfg.max_frame_bytes)
        self.transport: asyncio.Transport | None = None
        self.request: Request | None = None
        self.token_ok = False
        self.id = next(self._ids)
        self.proto = phx.ServerConnection(max_frame=cfg.max_frame_bytes)
        self.bucket = TokenBucket(cfg.rate_per_s, cfg.burst, server.clock)
        self.channels: dict[str, Channel] = {}
        self.pending: list[Any] = []  # awaitables to run before the next frame
        self.last_frame = server.clock.monotonic()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox: collections.deque[str | bytes] = collections.deque()
        self._fragments: list[bytes] = []  # a fragmented message being received
        self._catching_up: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._fragmented_text = False
        self._invalid = False  # a text message was not UTF-8: the socket is closing
        self._flush_soon = False
        self._write_paused = False
        self._write_pauses = 0
        self._stall: asyncio.Task[None] | None = None  # closes a peer that will not read
        self._max_size = 2 * cfg.max_frame_bytes  # websockets closes with 1009 beyond
        self._own_frames = False  # data frames are parsed by _take_frames
        self._buffer = bytearray()  # received bytes _take_frames has not used yet

    @property
    def remote_address(self) -> Any:
        """The peer's ``(host, port)``, or None."""
        return None if self.transport is None else self.transport.get_extra_info("peername")

    def statistics(self) -> SocketStatistics:
        """What this connection holds for its peer now (see :class:`SocketStatistics`)."""
        transport = self.transport
        return SocketStatistics(
            send_buffer=0 if transport is None else transport.get_write_buffer_size(),
            frames_queued=self.proto.buffered,
            inbox=len(self._inbox),
            reading=transport is not None and transport.is_reading(),
            write_pauses=self._write_pauses,
        )

    def wake(self) -> None:
        """Write the queued Phoenix frames soon (once for all queued this iteration)."""
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def push(self, topic: str, event: str, payload: dict[str, Any]) -> None:
        if self.proto.push(topic, event, payload):
            self.wake()

    def close_channel(self, topic: str, error: SensoctoError | None = None) -> None:
        self.proto.close_channel(topic, error=error)
        channel = self.channels.pop(topic, None)
        if channel is not None:
            self.server.spawn(channel.close())
        self.wake()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (after writing what is queued); idempotent."""
        if self.ws.state is State.OPEN:
            self._flush()
            self.ws.send_close(code, reason)
            self._send_ws_data()
        elif self.ws.state is State.CONNECTING and self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        high = self.server.config.send_buffer_bytes
        transport.set_write_buffer_limits(high=high, low=high // 4)
        self.server.sockets.add(self)
        self._watchdog = asyncio.get_running_loop().create_task(
            self._watch(), name=f"ws{self.id}:idle"
        )

    def data_received(self, data: bytes) -> None:
        self.last_frame = self.server.clock.monotonic()  # for the idle watchdog
        if self._own_frames:
            self._buffer += data
            self._take_frames()
        else:
            self._to_websockets(data)
            # Once open, whole data frames are parsed here (unless the client sent
            # frames before our handshake response, which RFC 6455 forbids).
            self._own_frames = self.ws.state is State.OPEN and nothing_buffered(self.ws)
        self._send_ws_data()
        if self._catching_up is None:
            self._catch_up_safely()

    def _to_websockets(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Request):  # a server protocol receives no Response
                self._handshake(event)

    def _take_frames(self) -> None:
        """Handle the whole frames at the start of :attr:`_buffer`, in order.

        Unfragmented, masked text and binary frames within the size limit (all the
        frames of ingest) are unmasked and queued here: ``websockets``' parser, a
        generator per frame, was a quarter of the cost of a one-sample push. Every
        other frame (control frames, fragments, anything invalid) is handed to
        ``websockets`` whole, so its parser always starts at a frame boundary and
        answers pings, closes and protocol errors itself; a frame whose header it
        would refuse (unmasked, reserved bits, too large) is handed over with
        everything after it. An incomplete frame waits in the buffer.
        """
        buf, message, limit, ws = self._buffer, self._message, self._max_size, self.ws
        pos, end = 0, len(buf)
        while end - pos >= 2 and ws.state is State.OPEN:
            bounds = frame_bounds(buf, pos, limit)
            if bounds is None:
                self._own_frames = False  # websockets fails the connection
                break
            start, stop = bounds
            if stop > end:
                break
            head1 = buf[pos]
            if (head1 == 0x81 or head1 == 0x82) and not self._fragments:  # FIN, text/binary
                message(apply_mask(buf[start:stop], buf[start - 4 : start]), head1 == 0x81)
            else:
                self._to_websockets(bytes(buf[pos:stop]))
            pos = stop
        del buf[:pos]
        if not self._own_frames or ws.state is not State.OPEN:  # websockets takes the rest
            self._own_frames = False
            rest = bytes(buf)
            buf.clear()
            if rest:
                self._to_websockets(rest)

    def eof_received(self) -> None:
        self.ws.receive_eof()
        self._send_ws_data()  # the transport closes itself (None returned)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ws.receive_eof()
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._stall is not None:
            self._stall.cancel()
        self._write_paused = False  # nothing more is written: what was received is handled
        self.server.spawn(self._teardown())

    def pause_writing(self) -> None:
        """The peer does not take what we write: read no more from it (back-pressure),
        and close it if it does not start taking within ``send_timeout_s``."""
        self._write_paused = True
        self._write_pauses += 1
        self._reading()
        if self._stall is None:
            self._stall = asyncio.get_running_loop().create_task(
                self._close_stalled(), name=f"ws{self.id}:stalled"
            )

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self._flush()
        if self._catching_up is None:
            self._catch_up_safely()  # what was left unread in the inbox, then reading again

    def _reading(self) -> None:
        """Read from the peer unless frames wait for work to be awaited or for output
        the peer does not take (then the peer's writes back up in TCP)."""
        if self.transport is None:
            return
        if self._catching_up is not None or self._write_paused or self._inbox:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    async def _close_stalled(self) -> None:
        timeout = self.server.config.send_timeout_s
        await self.server.clock.sleep(timeout)
        self._stall = None
        unsent = self.statistics().send_buffer
        log.info("socket %d: peer took nothing of %d bytes for %g s", self.id, unsent, timeout)
        self.close(CloseCode.POLICY_VIOLATION, f"peer does not read: {unsent} bytes unsent")

    # -- frames in ------------------------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        self.request = request
        response = self.server.process_request(self.ws, request)
        if response is None:
            response = self.ws.accept(request)
        self.ws.send_response(response)
        if response.status_code == 101:
            token = parse_qs(urlsplit(request.path).query).get("token", [None])[0]
            self.token_ok = token is not None and token in self.server.config.tokens

    def _frame(self, frame: Frame) -> None:
        """Queue a whole text or binary message; the protocol answered control frames."""
        opcode = frame.opcode
        if self._invalid:
            return
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            data = bytes(frame.data)  # the parser's bytes as they are (no copy)
            if not frame.fin:  # the first fragment of a message
                self._fragments, self._fragmented_text = [data], opcode is Opcode.TEXT
                return
            text = opcode is Opcode.TEXT
        elif opcode is Opcode.CONT:  # the protocol checked the sequence and the size
            self._fragments.append(bytes(frame.data))
            if not frame.fin:
                return
            data, text = b"".join(self._fragments), self._fragmented_text
            self._fragments = []
        else:
            return
        self._message(data, text)

    def _message(self, data: bytes, text: bool) -> None:
        """Queue a whole message; text that is not UTF-8 closes the socket (1007)."""
        if not text:
            self._inbox.append(data)
            return
        try:
            self._inbox.append(data.decode())
        except UnicodeDecodeError as exc:
            self._invalid = True
            self.ws.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")

    def _catch_up_safely(self) -> None:
        """:meth:`_catch_up_now`, where a bug closes the socket with 1011 (a close frame)
        instead of asyncio cutting the connection."""
        try:
            self._catch_up_now()
        except Exception:
            self._failed()

    def _catch_up_now(self) -> None:
        """Handle queued frames in order until one leaves work to await (then a task
        does) or the peer stops taking what we write (then :meth:`resume_writing` does)."""
        inbox, receive = self._inbox, self._receive
        if inbox:
            self.wake()
        while inbox and not self._write_paused:
            receive(inbox.popleft())
            if self.pending:
                self._catching_up = asyncio.get_running_loop().create_task(
                    self._catch_up(), name=f"ws{self.id}:reader"
                )
                break
            if self.proto.buffered >= _FLUSH_EVERY:
                self._flush()
        self._reading()

    async def _catch_up(self) -> None:
        """Await what frames left to do, handle the frames queued behind them, resume reading."""
        try:
            while self.pending:
                for awaitable in self.pending:
                    await awaitable
                self.pending.clear()
                inbox = self._inbox
                while inbox and not self.pending and not self._write_paused:
                    self._receive(inbox.popleft())
                    if self.proto.buffered >= _FLUSH_EVERY:
                        self._flush()
                self.wake()
        except Exception:  # a bug: the socket goes (1011), the server stays
            self._failed()
        finally:
            self._catching_up = None
        self._reading()

    def _failed(self) -> None:
        """A bug handling a frame: log it, drop what was left to do, close with 1011."""
        log.exception("socket %d failed handling a frame", self.id)
        for awaitable in self.pending:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
        self.pending.clear()
        self._inbox.clear()
        self.close(CloseCode.INTERNAL_ERROR, "internal error")

    def _receive(self, frame: str | bytes) -> None:
        """Feed one frame to the protocol and its events to the channels.

        Synchronous, so a push costs no coroutine: what must be awaited (joins,
        closing channels, a full channel queue) goes to :attr:`pending` in order.
        """
        if not self.bucket.take():
            self.proto.refuse(
                frame,
                LimitExceeded(
                    f"more than {self.server.config.rate_per_s:g} frames a second; "
                    "batch samples (measurements_batch) or slow down",
                    reason="rate_limited",
                ),
            )
        elif isinstance(frame, str):
            self.proto.receive_text(frame)
        else:
            self.proto.receive_bytes(frame)
        for event in self.proto.events_received():
            if isinstance(event, phx.Pushed):
                channel = self.channels.get(event.topic)
                if channel is not None:
                    try:
                        channel.handle(event)
                    except Exception:  # a bug: refuse the push, keep the socket reading
                        log.exception("socket %d failed handling %s", self.id, event)
                        self.proto.reply_error(event, INTERNAL_ERROR)
            elif isinstance(event, phx.JoinRequested):
                self.pending.append(self._join(event))
            elif isinstance(event, phx.LeaveRequested | phx.ChannelReplaced):
                channel = self.channels.pop(event.topic, None)
                if channel is not None:
                    self.pending.append(channel.close())
            elif isinstance(event, phx.Heartbeat):
                for channel in self.channels.values():
                    if isinstance(channel, ViewerChannel) and channel.lens is None:
                        self.pending.append(self.server.engine.renew_viewer(channel.viewer_id))
            elif isinstance(event, phx.FrameRejected):
                log.debug("socket %d refused a frame: %s", self.id, event.error)

    def _authorized(self, params: Mapping[str, Any]) -> bool:
        cfg = self.server.config
        if not cfg.require_token or self.token_ok:
            return True
        token = params.get("bearer_token", params.get("token"))
        return isinstance(token, str) and token in cfg.tokens

    async def _join(self, join: phx.JoinRequested) -> None:
        try:
            viewer = join.topic.startswith(("room:", "lens:"))  # they check their own access
            if not viewer and not self._authorized(join.params):
                raise AuthError(
                    "a valid ingest token is needed (socket ?token= or join param bearer_token)",
                    reason="unauthorized",
                )
            topic = parse_topic(join.topic)
            if topic.kind == "sensor":
                channel: Channel = await self._join_sensor(join, topic.id)
            elif topic.kind == "connector":
                channel = ConnectorChannel(self, join.topic)
            else:
                channel = await self._join_viewer(join, topic.kind, topic.id)
        except (PeerError, LocalError) as exc:
            self.proto.reject_join(join, exc)
            return
        self.channels[join.topic] = channel
        response: dict[str, Any] = {}
        if isinstance(channel, SensorChannel):
            response = {
                "sensor_id": channel.info.sensor_id,
                "attributes": sorted(channel.info.attributes),
            }
        elif isinstance(channel, ViewerChannel):
            response = channel.reply
        self.proto.accept_join(join, response)
        if isinstance(channel, SensorChannel):
            channel.spawn(channel.run(), f"{join.topic}:ingest")
            channel.spawn(channel.forward_backpressure(), f"{join.topic}:backpressure")
        elif isinstance(channel, ViewerChannel):
            channel.start()

    async def _join_sensor(self, join: phx.JoinRequested, sensor_id: str) -> SensorChannel:
        engine, params = self.server.engine, join.params
        info = sensor_info_from_join(sensor_id, params, room=self.server.config.default_room)
        for held in self._held_elsewhere(sensor_id):
            conflict = declaration_conflict(held, info)
            if conflict is not None:
                raise AuthError(
                    f"sensor {sensor_id} is joined by another connection; this join "
                    f"declares {conflict}",
                    reason="sensor_in_use",
                )
        known = engine.sensors.get(sensor_id)
        if known is not None:  # a rejoin keeps attributes declared before
            info = dataclasses.replace(info, attributes={**known.attributes, **info.attributes})
        await engine.register_sensor(info)
        exactly_once = params.get("exactly_once") is True
        return SensorChannel(self, join.topic, info, exactly_once)

    def _held_elsewhere(self, sensor_id: str) -> list[SensorInfo]:
        """The declarations of ``sensor_id`` on other live connections' channels."""
        return [
            channel.info
            for socket in self.server.sockets
            if socket is not self and socket.transport and not socket.transport.is_closing()
            for channel in socket.channels.values()
            if isinstance(channel, SensorChannel) and channel.info.sensor_id == sensor_id
        ]

    async def _join_viewer(self, join: phx.JoinRequested, kind: str, ident: str) -> ViewerChannel:
        """Check a viewer's access, then make its channel (see :func:`open_viewer`)."""
        params = ViewerParams.from_params(join.params)
        peer = self.remote_address[0] if self.remote_address else f"ws-{self.id}"
        return await open_viewer(
            self,
            join.topic,
            params,
            trusted=self._viewer_token(join.params, params),
            peer=str(peer),
            default_viewer=f"ws-{self.id}-{ident}",
        )

    def _viewer_token(self, raw: Mapping[str, Any], params: ViewerParams) -> bool:
        """Whether the join (or its socket) presents a token that opens any viewer channel."""
        cfg = self.server.config
        if self.server.rooms is None:  # no codes to check: as for sensors
            return self._authorized(raw)
        tokens = cfg.tokens if cfg.viewer_tokens is None else cfg.viewer_tokens
        query = parse_qs(urlsplit(self.request.path if self.request else "").query)
        return any(t in tokens for t in (params.token, query.get("token", [None])[0]) if t)

    async def _teardown(self) -> None:
        """After the connection is lost: handle what was received, then close the channels."""
        try:
            while self._catching_up is not None or self._inbox:
                if self._catching_up is None:
                    self._catch_up_now()
                if self._catching_up is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._catching_up)
            for topic in list(self.channels):
                await self.channels.pop(topic).close()
        finally:
            self.server.sockets.discard(self)
            self.closed.set_result(None)

    # -- frames out -----------------------------------------------------------------------

    def _send_ws_data(self) -> None:
        """Write what the WebSocket protocol has to send (handshake, pongs, close, EOF)."""
        transport = self.transport
        assert transport is not None
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
            else:  # pragma: no cover - TCP can always half-close
                transport.close()
        if self._close_timer is None and self.ws.close_expected():
            self._close_timer = asyncio.get_running_loop().call_later(
                _CLOSE_TIMEOUT_S, transport.abort
            )

    def _flush(self) -> None:
        """Write the queued Phoenix frames with one transport write.

        Frames stay queued while the transport's buffer is full (:attr:`proto`'s
        ``buffered`` shows a slow peer) and are dropped once the socket is closing.
        """
        self._flush_soon = False
        if self._write_paused:
            return
        frames = self.proto.data_to_send()
        if frames and self.ws.state is State.OPEN and self.transport is not None:
            self.transport.write(b"".join([text_frame(f.encode()) for f in frames]))

    async def _watch(self) -> None:
        clock, idle = self.server.clock, self.server.config.idle_timeout_s
        while True:
            remaining = self.last_frame + idle - clock.monotonic()
            if remaining <= 0:
                self.close(1000, "idle timeout")
                return
            await clock.sleep(remaining)
