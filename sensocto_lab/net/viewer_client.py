"""Watch a room of an engine in another process over its WebSocket endpoint.

Thin asyncio glue over the sans-I/O :class:`~sensocto_lab.protocol.connection.ClientConnection`
and :mod:`sensocto_lab.protocol.viewer`::

    async with ViewerClient(url, "room:lab", code="ABCDE-12345") as v:
        print(sorted(v.sensors))                      # the room's sensors (join reply)
        sub = v.bus.subscribe("data:*")               # batches as they arrive
        await v.view_enter("p01", "p02")              # what this viewer shows
        await v.focus("p01")
        await v.wait_for(lambda: v.levels["p01"] == AttentionLevel.HIGH)

- **Topics.** ``room:{room_id}`` sends every batch of the room; ``lens:{viewer_id}``
  (with ``room=``) only the viewed sensors', flushed by their attention tier.
- **Access.** The join presents the room's join code (``code``) or a viewer token
  (``token``, a join param: never in the URL, so a code is checked even when the
  client also holds a token). A refused join raises :class:`AuthError` from
  :meth:`connect`; the client stops.
- **Data in.** The join reply's sensors, recent samples, attention levels and presence
  are in :attr:`snapshot`, :attr:`sensors`, :attr:`levels` and :attr:`present`, kept
  current by the server's ``sensor`` and ``status`` pushes. Batches are published on
  the client's own :attr:`bus` as ``data:{sensor_id}`` (bounded subscriber queues,
  drop-oldest by default, as on the engine's bus).
- **Views out.** :meth:`view_enter`, :meth:`view_leave`, :meth:`focus`,
  :meth:`page_hidden` and :meth:`set_views` return the levels the server applied.
- **Reconnects** with exponential back-off; after a rejoin the client sends its
  current views again, so the engine's attention is as before the drop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection as WsConnection

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.engine import topics
from sensocto_lab.engine.bus import Bus
from sensocto_lab.errors import AuthError, ClosedResourceError, ValidationError
from sensocto_lab.model import AttentionLevel, SensorInfo
from sensocto_lab.net.config import SOCKET_PATH
from sensocto_lab.net.reconnect import TRANSIENT, KeepConnected, send_frames
from sensocto_lab.protocol.connection import ChannelClosed, ClientConnection, Replied, ServerPushed
from sensocto_lab.protocol.viewer import (
    RoomSnapshot,
    ViewerParams,
    ViewerState,
    Watcher,
    batch_from_payload,
    read_status,
    sensor_from_payload,
)

__all__ = ["ViewerClient", "ViewerStats", "socket_url"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ViewerStats:
    """Counters of a :class:`ViewerClient`.

    Attributes
    ----------
    connects
        Successful joins (1 + rejoins after reconnects).
    batches, samples
        Batches (and their samples) received and published on the client's bus.
    """

    connects: int = 0
    batches: int = 0
    samples: int = 0


class ViewerClient:
    """One viewer channel of a remote engine, kept joined across reconnects.

    Parameters
    ----------
    url
        The socket URL, e.g. ``ws://127.0.0.1:4000/socket/websocket?vsn=2.0.0``.
    topic
        ``room:{room_id}`` or ``lens:{viewer_id}``.
    code
        The room's join code.
    token
        A viewer token (opens any room without a code; a trusted dashboard also
        relays ``client`` with it).
    room
        The room of a ``lens:`` topic (omit it to find the room by ``code``).
    viewer_id
        The viewer id of a ``room:`` topic (default: one per socket, chosen by the server).
    user_id
        Who is watching, as listed in the room's presence.
    client
        The address of whoever typed ``code`` (dashboards relay their browsers').
    backfill
        Recent samples per (sensor, attribute) wanted in the join reply.
    member
        With ``token``: ``user_id`` logged in to this dashboard, and their membership
        opens ``room`` (see :class:`~sensocto_lab.protocol.viewer.ViewerParams`).
    clock
        Time source for back-off and heartbeats.
    backoff_s
        First and longest wait between reconnect attempts, in seconds.
    heartbeat_s
        Seconds between heartbeats (they keep a ``room:`` viewer alive on the engine).
    reply_timeout_s
        How long a view event waits for the server's reply.
    """

    def __init__(
        self,
        url: str,
        topic: str,
        *,
        code: str | None = None,
        token: str | None = None,
        room: str | None = None,
        viewer_id: str | None = None,
        user_id: str = "guest",
        client: str | None = None,
        backfill: int = 0,
        member: bool = False,
        clock: Clock | None = None,
        backoff_s: tuple[float, float] = (0.05, 2.0),
        heartbeat_s: float = 30.0,
        reply_timeout_s: float = 10.0,
    ) -> None:
        if not topic.startswith(("room:", "lens:")):
            raise ValueError(f"a viewer joins room:{{id}} or lens:{{viewer_id}}, not {topic!r}")
        self.url = url
        self.topic = topic
        self.params = ViewerParams(code, token, room, viewer_id, user_id, client, backfill, member)
        self.clock = clock or SystemClock()
        self.heartbeat_s = heartbeat_s
        self.reply_timeout_s = reply_timeout_s
        self.stats = ViewerStats()
        #: Batches as ``data:{sensor_id}``; subscribe before data is expected.
        self.bus = Bus()
        #: The latest join reply (``None`` before the first join).
        self.snapshot: RoomSnapshot | None = None
        #: The room's sensors by id, kept current by ``sensor`` pushes.
        self.sensors: dict[str, SensorInfo] = {}
        #: The engine's attention level per sensor of the room (over all its viewers).
        self.levels: dict[str, AttentionLevel] = {}
        #: Who is watching the room.
        self.present: list[Watcher] = []
        self._views = ViewerState()  # what this viewer shows; sent again after a rejoin
        self._conn = KeepConnected(
            url,
            self._session,
            clock=self.clock,
            backoff_s=backoff_s,
            on_lost=self._lost,
            on_fatal=self._notify,
            name=f"viewer:{topic}",
        )
        self._changed = asyncio.Event()  # replaced by a fresh one on every change
        self._pending: dict[str, asyncio.Future[Replied | None]] = {}
        self._link: tuple[WsConnection, ClientConnection] | None = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

    async def connect(self, timeout: float = 10.0) -> ViewerClient:
        """Start, and wait until the first join succeeded.

        Raises
        ------
        AuthError
            The server refused the join (wrong code, no token, too many attempts);
            the client stops.
        TimeoutError
            Not joined within ``timeout`` seconds (the client keeps trying).
        """
        if self._closed:
            raise ClosedResourceError("the viewer client is closed", reason="closed")
        await self._conn.start(timeout)
        return self

    async def close(self) -> None:
        """Leave: close the socket (the engine removes this viewer) and the client's bus."""
        self._closed = True
        await self._conn.stop()
        self.bus.close()

    async def __aenter__(self) -> ViewerClient:
        return await self.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """True while joined."""
        return self._conn.joined.is_set()

    @property
    def viewer_id(self) -> str | None:
        """The id the engine counts this viewer's attention under (known once joined)."""
        return None if self.snapshot is None else self.snapshot.viewer_id

    @property
    def views(self) -> dict[str, AttentionLevel]:
        """This viewer's own level per sensor, as last set (all none while hidden)."""
        return self._views.levels()

    async def wait_for(self, condition: Callable[[], object], timeout: float = 10.0) -> None:
        """Wait until ``condition()`` is true, checking it on every message received.

        Raises
        ------
        TimeoutError
            Still false after ``timeout`` seconds.
        """

        async def until() -> None:
            while not condition():
                if self._conn.fatal is not None:
                    raise self._conn.fatal
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    # -- views out ----------------------------------------------------------------------

    async def view_enter(self, *sensor_ids: str) -> dict[str, AttentionLevel]:
        """These sensors are in view (medium)."""
        return await self._view("view_enter", {"sensor_ids": list(sensor_ids)})

    async def view_leave(self, *sensor_ids: str) -> dict[str, AttentionLevel]:
        """These sensors left the view (low)."""
        return await self._view("view_leave", {"sensor_ids": list(sensor_ids)})

    async def focus(self, sensor_id: str | None) -> dict[str, AttentionLevel]:
        """Focus one sensor (high; the previous focus drops to medium), ``None`` to blur."""
        return await self._view("focus", {"sensor_id": sensor_id})

    async def page_hidden(self, hidden: bool = True) -> dict[str, AttentionLevel]:
        """The whole view is hidden (every sensor none) or shown again."""
        return await self._view("page_hidden", {"hidden": hidden})

    async def set_views(
        self,
        views: Mapping[str, AttentionLevel | str],
        attributes: Mapping[str, Collection[str]] | None = None,
    ) -> dict[str, AttentionLevel]:
        """Show exactly ``views`` (sensor → level), optionally only some attributes each."""
        return await self._view("set_views", _set_views_payload(views, attributes))

    async def _view(self, event: str, payload: dict[str, Any]) -> dict[str, AttentionLevel]:
        """Apply a view event here, send it, and return the levels the server applied.

        While the socket is down the event is only kept (it is sent with the rest
        of the views after the rejoin) and the local levels are returned.

        Raises
        ------
        ValidationError
            A malformed event (checked here, before sending), or one the server refused.
        AuthError
            ``forbidden``: a sensor outside the room this client's code opens.
        """
        if self._closed:
            raise ClosedResourceError("the viewer client is closed", reason="closed")
        before = self._views.copy()
        self._views.apply(event, payload)
        reply = await self._request(event, payload)
        if reply is None:
            return self._views.levels()
        response = reply.response if isinstance(reply.response, dict) else {}
        if reply.status != "ok":
            self._views = before
            reason = str(response.get("reason", "refused"))
            error = AuthError if reason == "forbidden" else ValidationError
            raise error(str(response.get("detail", reason)), reason=reason)
        levels = response.get("levels", {})
        return {str(s): AttentionLevel.parse(lv) for s, lv in levels.items()}

    async def _request(self, event: str, payload: dict[str, Any]) -> Replied | None:
        """Push on the channel and await the reply; ``None`` if not joined or the socket went."""
        if self._link is None or not self._conn.joined.is_set():
            return None
        ws, proto = self._link
        ref = proto.push(self.topic, event, payload)
        future: asyncio.Future[Replied | None] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            await send_frames(ws, proto)
            return await asyncio.wait_for(future, self.reply_timeout_s)
        except TRANSIENT as exc:  # the socket went while sending or waiting
            log.debug("viewer %s: %s not answered: %s", self.topic, event, exc)
            return None
        finally:
            self._pending.pop(ref, None)

    # -- the connection loop --------------------------------------------------------------

    def _lost(self) -> None:
        self._link = None
        for future in self._pending.values():
            if not future.done():
                future.set_result(None)
        self._notify()

    async def _session(self, ws: WsConnection) -> None:
        proto = ClientConnection()
        join_ref = proto.join(self.topic, self.params.to_params())
        await send_frames(ws, proto)
        beat = asyncio.get_running_loop().create_task(self._heartbeat(ws, proto))
        try:
            async for frame in ws:
                if not isinstance(frame, str):
                    continue
                proto.receive_text(frame)
                for event in proto.events_received():
                    if isinstance(event, Replied) and event.ref == join_ref:
                        self._on_join(event)
                        self._link = (ws, proto)
                        await self._resend_views(ws, proto)
                    elif isinstance(event, Replied):
                        future = self._pending.get(event.ref)
                        if future is not None and not future.done():
                            future.set_result(event)
                    elif isinstance(event, ServerPushed):
                        self._on_push(event)
                    elif isinstance(event, ChannelClosed):
                        return  # rejoin through a fresh connection
                self._notify()
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    def _on_join(self, reply: Replied) -> None:
        response = reply.response if isinstance(reply.response, dict) else {}
        if reply.status != "ok":
            raise AuthError(
                str(response.get("detail", f"join of {self.topic} refused")),
                reason=str(response.get("reason", "join_refused")),
            )
        snapshot = RoomSnapshot.from_payload(response)
        self.snapshot = snapshot
        self.sensors = dict(snapshot.sensors)
        self.levels = dict(snapshot.levels)
        self.present = list(snapshot.present)
        self.stats.connects += 1
        self._conn.joined_ok()

    async def _resend_views(self, ws: WsConnection, proto: ClientConnection) -> None:
        """After a rejoin the server knows nothing of this viewer's views: send them."""
        views = self._views
        if views.visible:
            payload = _set_views_payload(views.visible, views.attributes)
            proto.push(self.topic, "set_views", payload)
        if views.hidden:
            proto.push(self.topic, "page_hidden", {"hidden": True})
        await send_frames(ws, proto)

    def _on_push(self, push: ServerPushed) -> None:
        try:
            if push.event == "batch":
                batch = batch_from_payload(push.payload)
                self.stats.batches += 1
                self.stats.samples += len(batch)
                self.bus.publish(topics.data(batch.sensor_id), batch)
            elif push.event == "sensor":
                info = sensor_from_payload(push.payload)
                self.sensors[info.sensor_id] = info
            elif push.event == "status":
                levels, self.present = read_status(push.payload)
                self.levels = levels
        except ValidationError as exc:  # a newer server's payload: skip it, keep the rest
            log.warning("viewer %s: unreadable %s push: %s", self.topic, push.event, exc)

    async def _heartbeat(self, ws: WsConnection, proto: ClientConnection) -> None:
        while True:
            await self.clock.sleep(self.heartbeat_s)
            proto.heartbeat()
            await send_frames(ws, proto)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def _set_views_payload(
    views: Mapping[str, AttentionLevel | str],
    attributes: Mapping[str, Collection[str]] | None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "views": {s: AttentionLevel.parse(lv).label for s, lv in views.items()}
    }
    if attributes:
        payload["attributes"] = {s: list(a) for s, a in attributes.items()}
    return payload


def socket_url(endpoint: str) -> str:
    """The socket URL of an endpoint given as ``ws://host:port`` (or ``http://``, or in full).

    >>> socket_url("ws://127.0.0.1:4000")
    'ws://127.0.0.1:4000/socket/websocket?vsn=2.0.0'
    """
    parts = urlsplit(endpoint if "://" in endpoint else f"ws://{endpoint}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path not in ("", "/") else SOCKET_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query or "vsn=2.0.0", ""))
