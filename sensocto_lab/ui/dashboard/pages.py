"""The room dashboard: one per browser session, and the pages that gate access to it.

:class:`RoomDashboard` builds a card per sensor of a room, each wrapped in a
:class:`~sensocto_lab.ui.dashboard.observer.VisibilityObserver`, plus the room's
synchrony (the ``sync:{room}`` sensor's ``sync`` attribute: the Kuramoto R now and
R(t)) and who is watching. What the observers report becomes this session's
attention views (focused → high, visible → medium, scrolled out → low, page
hidden → none), registered with the engine in bulk by the session's
:class:`~sensocto_lab.engine.lens.Lens`; the lens's flushes become one
``pn.io.hold()``-ed document update each.

Everything here runs on the loop the Panel server shares with the engine
(DESIGN §8); only that loop touches engine state and the session's document.

:func:`room_page` and :func:`lobby_page` build a session's page: a room is shown
only to a session that presents its join code (``?room=...&code=...`` or the
entry form) or whose authenticated user (``panel serve`` auth) is a member.

Where rooms and data come from is the context's business (:class:`Context`):
:class:`DashboardContext` reads an engine and a room store in this process; the
remote context of :mod:`sensocto_lab.ui.dashboard.remote` reaches an engine in
another process over its WebSocket endpoint. Either hands a session that got in a
:class:`RoomSession`, whose ``engine`` and ``rooms`` the dashboard reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any, Protocol
from urllib.parse import urlencode

import numpy as np
import panel as pn
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Range1d
from bokeh.models.widgets import Div
from bokeh.plotting import figure
from panel.io.resources import LOCAL_DIST
from panel.io.state import set_curdoc

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.engine import topics
from sensocto_lab.engine.lens import Lens, LensFlush
from sensocto_lab.errors import SensoctoError, ValidationError
from sensocto_lab.model import AttentionLevel, Batch, SensorInfo
from sensocto_lab.rooms import Room, RoomStore, format_code
from sensocto_lab.ui.dashboard.cards import SensorCard
from sensocto_lab.ui.dashboard.observer import PageObserver, VisibilityObserver, level_for

__all__ = [
    "Context",
    "DashboardContext",
    "RoomDashboard",
    "RoomSession",
    "lobby_page",
    "room_page",
    "room_sensors",
]

_log = logging.getLogger(__name__)

#: Points of R(t) kept in the page, and the time span shown, in ms.
SYNC_ROLLOVER = 2000
SYNC_WINDOW_MS = 300_000.0

#: Least time between two flushes, so document updates, of one session, in ms: each
#: update costs the server in proportion to the whole document (Bokeh serialises
#: against every model), so sensors due a few ms apart share one. 20 ms keeps a page
#: under 50 updates a second (a browser paints 60 frames); measured against 30 ms with
#: ten devices out of step, it cut the median sample→screen latency from ~39 to
#: ~35 ms at no measurable server CPU.
APPLY_GAP_MS = 20.0

#: Least time between flush stamps sent to the page for its lag measurement, in ms.
STAMP_EVERY_MS = 200.0


@dataclass(frozen=True, slots=True)
class RoomSession:
    """One session's way into a room, once its access was checked.

    Attributes
    ----------
    room
        The room shown.
    engine
        What the dashboard reads of the engine: ``sensors``, ``store.latest``,
        ``attention.level`` / ``lens_flush_ms``, and what its lens needs (``bus``,
        ``set_views``, ``renew_viewer``, ``remove_viewer``). The engine itself, or a
        :class:`~sensocto_lab.net.room_mirror.RoomMirror` of one elsewhere.
    rooms
        What it reads of the room store: ``sensors(room_id)`` (assigned sensors),
        ``enter``, ``leave`` and ``present(room_id)``.
    draws
        Told once which attributes each shown sensor's card draws, so a remote
        engine sends only those; ``None`` when nobody needs to know.
    """

    room: Room
    engine: Any
    rooms: Any
    draws: Callable[[Mapping[str, list[str]]], None] | None = None


class Context(Protocol):
    """What the pages and dashboards of one server share, wherever the engine runs."""

    clock: Clock
    max_cards: int
    lens_options: dict[str, Any]
    dashboards: dict[str, RoomDashboard]

    async def member(self, room_id: str, user: str | None) -> bool:
        """Whether an authenticated ``user`` is a member of the room (needs no code)."""
        ...

    async def rooms_of(self, user: str) -> list[Room]:
        """The rooms ``user`` is a member of (for the lobby)."""
        ...

    async def find_room(self, code: str, *, client: str) -> Room:
        """The room a join code opens (guessing limited per ``client``)."""
        ...

    async def open_room(
        self, room_id: str, code: str, user: str | None, *, client: str, viewer_id: str
    ) -> RoomSession:
        """Check the session's access to the room and give it its way in.

        Raises a :class:`~sensocto_lab.errors.SensoctoError` whose ``detail`` the page
        shows (a wrong code, too many attempts, an engine out of reach).
        """
        ...


@dataclass
class DashboardContext:
    """What every dashboard session of one server shares: an engine in this process.

    Attributes
    ----------
    engine
        The running engine (its loop is the Panel server's loop).
    rooms
        Rooms, join codes, members and presence.
    clock
        Time source of the lenses.
    max_cards
        Most cards one dashboard shows (the rest are listed, not drawn).
    lens_options
        Extra keyword arguments for each session's :class:`Lens` (``flush_ms=None``
        draws scrolled-out cards at the low tier's interval too).
    dashboards
        The open dashboards by viewer id (kept by the dashboards themselves).
    """

    engine: Any
    rooms: RoomStore
    clock: Clock = field(default_factory=SystemClock)
    max_cards: int = 200
    lens_options: dict[str, Any] = field(default_factory=dict)
    dashboards: dict[str, RoomDashboard] = field(default_factory=dict)

    async def member(self, room_id: str, user: str | None) -> bool:
        return self._member(room_id, user)

    def _member(self, room_id: str, user: str | None) -> bool:
        try:
            return user is not None and self.rooms.role_of(room_id, user) is not None
        except ValidationError:  # no such room
            return False

    async def rooms_of(self, user: str) -> list[Room]:
        return self.rooms.rooms(user)

    async def find_room(self, code: str, *, client: str) -> Room:
        return self.rooms.find_by_code(code, client=client)

    async def open_room(
        self, room_id: str, code: str, user: str | None, *, client: str, viewer_id: str
    ) -> RoomSession:
        if self._member(room_id, user):
            room = self.rooms.room(room_id)
        elif user:
            room = self.rooms.join(code, user, client=client, room_id=room_id)
        else:
            room = self.rooms.check_code(room_id, code, client=client)
        return RoomSession(room, self.engine, self.rooms)


def room_sensors(session: RoomSession) -> list[SensorInfo]:
    """The engine's sensors shown in a session's room: assigned to it, or recorded under it.

    The room's synchrony sensor is not among them (it has its own panel).
    """
    room_id = session.room.room_id
    assigned = set(session.rooms.sensors(room_id))
    sync_id = topics.sync_sensor(room_id)
    return [
        info
        for sid, info in sorted(session.engine.sensors.items())
        if sid != sync_id and (sid in assigned or info.room == room_id)
    ]


class RoomDashboard:
    """One session's view of one room.

    Parameters
    ----------
    ctx
        The server's shared context.
    session
        The room shown and what to read it from (access already checked).
    viewer_id
        This session's viewer id (its attention views and presence are under it).
    user_id
        Who is watching (an authenticated user, or a guest name).
    doc
        The session's Bokeh document (updates are scheduled on it).
    """

    def __init__(
        self,
        ctx: Context,
        session: RoomSession,
        *,
        viewer_id: str,
        user_id: str,
        doc: Document,
    ) -> None:
        self.ctx = ctx
        self.room = room = session.room
        self.engine = session.engine
        self.rooms = session.rooms
        self.viewer_id = viewer_id
        self.user_id = user_id
        self._doc = doc
        sensors = room_sensors(session)
        self.cards: dict[str, SensorCard] = {
            info.sensor_id: SensorCard(info) for info in sensors[: ctx.max_cards]
        }
        # What each card's observer last reported; a card not yet drawn has reported
        # nothing and gets no attention (and no data) until it has
        self._ratio: dict[str, float] = {}
        self._pointer: dict[str, bool] = {}
        self._page_visible = True
        self.sync_id = topics.sync_sensor(room.room_id)
        self._has_sync = self.sync_id in self.engine.sensors
        if session.draws is not None:
            session.draws(self._attributes())
        options = {"flush_ms": self._display_flush_ms, "gap_ms": APPLY_GAP_MS, **ctx.lens_options}
        self.lens = Lens(viewer_id, self.engine, self._on_flush, clock=ctx.clock, **options)
        self._pending: list[LensFlush] = []
        self._scheduled = False
        self._views_task: asyncio.Task[None] | None = None
        self._views_dirty = False
        self._closed = False  # no more drawing: the document is going away
        self._finished = False  # close() has run
        self.page = PageObserver(on_visibility=self._on_visibility, on_lag=self._on_lag)
        self.observers = [
            VisibilityObserver(card.panel, key=sid, on_change=self._on_card)
            for sid, card in self.cards.items()
        ]
        self._sync_source = ColumnDataSource(
            data={"t": np.zeros(0, dtype=np.float64), "y": np.zeros(0, dtype=np.float64)},
            name="room-sync",
        )
        # Bokeh Divs: cheap to update (see SensorCard)
        self._sync_now = Div(text="", width=280)
        self._present = Div(text="", width=280, styles={"font-size": "13px"})
        # explicit x range following the newest R: a plot with an automatic range and no
        # data yet stops every plot on the page from painting (Bokeh 3.9)
        now_ms = ctx.clock.time_ns() / 1e6
        self._sync_x = Range1d(start=now_ms - SYNC_WINDOW_MS, end=now_ms)
        self._backfill()
        self.layout = self._build_layout(len(sensors))

    def _backfill(self) -> None:
        """Start every plot from what the store holds in memory (see SensorCard.backfill)."""
        store = self.engine.store
        for sid, card in self.cards.items():
            if card.attribute is not None:
                card.backfill(*store.latest(sid, card.attribute, card.rollover))
            if card.battery_attribute is not None:
                _ts, battery = store.latest(sid, card.battery_attribute, 1)
                if len(battery):
                    card.set_status(AttentionLevel.NONE, float(battery[-1]))
        if self._has_sync:
            ts, r = store.latest(self.sync_id, topics.SYNC_ATTRIBUTE, SYNC_ROLLOVER)
            if len(ts):
                self._sync_source.data = {"t": ts / 1e6, "y": np.asarray(r, dtype=np.float64)}
                self._follow_sync(float(ts[-1]) / 1e6)

    def _build_layout(self, n_sensors: int) -> pn.viewable.Viewable:
        # a member let in by a remote engine is not told the code
        code = self.room.join_code and f"join code {format_code(self.room.join_code)} · "
        header = pn.pane.HTML(
            f"<h2 style='margin:4px 0'>{escape(self.room.name)}</h2>"
            f"<span style='color:#566573'>room {self.room.room_id} · "
            f"{code}{n_sensors} sensors</span>"
        )
        side: list[Any] = [pn.pane.Bokeh(self._present, margin=0)]
        if self._has_sync:
            fig = figure(
                height=160, width=280, x_axis_type="datetime", x_range=self._sync_x,
                y_range=Range1d(start=0, end=1), toolbar_location=None, tools="",
            )  # fmt: skip
            fig.line("t", "y", source=self._sync_source, line_width=2, color="#7d3c98")
            fig.yaxis.axis_label = "R(t)"
            self._show_sync(None)
            # Wrapped like the cards: next to plots inside observers, a plot outside
            # one kept those from painting (Bokeh 3.9 / Panel 1.9, headless Chromium).
            sync = pn.Column(pn.pane.Bokeh(self._sync_now, margin=0), pn.pane.Bokeh(fig, margin=0))
            side.insert(0, VisibilityObserver(sync, key=self.sync_id, on_change=self._on_card))
        if n_sensors > len(self.cards):
            more = Div(text=f"{n_sensors - len(self.cards)} more sensors not drawn")
            side.append(pn.pane.Bokeh(more, margin=0))
        grid = pn.FlexBox(*self.observers, flex_wrap="wrap")
        body = pn.Row(grid, pn.Column(*side, width=300))
        return pn.Column(header, body, self.page, sizing_mode="stretch_width")

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start the lens, register this session's views and its presence."""
        self.rooms.enter(self.room.room_id, self.viewer_id, self.user_id)
        self.ctx.dashboards[self.viewer_id] = self
        await self.lens.start()
        await self.lens.set_views(self.levels(), self._attributes())
        self._doc.add_next_tick_callback(self._refresh_status)

    def detach(self) -> None:
        """Stop touching the session's document (it is being destroyed)."""
        self._closed = True

    async def close(self) -> None:
        """The session ended: stop the lens (removing this viewer) and the presence."""
        if self._finished:
            return
        self._finished = self._closed = True
        self.ctx.dashboards.pop(self.viewer_id, None)
        self.rooms.leave(self.viewer_id)
        if self._views_task is not None:
            self._views_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._views_task
        await self.lens.close()

    # -- attention ----------------------------------------------------------------------

    def levels(self) -> dict[str, AttentionLevel]:
        """This session's level per shown sensor, from what its observers reported.

        A card whose observer has not reported yet (the page is still loading) is
        ``NONE``: nothing is streamed to a page before it can draw.
        """
        out = {
            sid: level_for(self._ratio[sid], self._pointer[sid], self._page_visible)
            if sid in self._ratio
            else AttentionLevel.NONE
            for sid in self.cards
        }
        if self._has_sync:
            out[self.sync_id] = AttentionLevel.MEDIUM if self._page_visible else AttentionLevel.NONE
        return out

    def _display_flush_ms(self, level: AttentionLevel) -> float | None:
        """What this page draws: visible and focused cards at their tier's interval.

        Scrolled-out cards (LOW) are buffered, not drawn, and catch up when scrolled
        back (DESIGN §8: the browser is the limit; out of view gets no updates). The
        engine still counts them as LOW for the devices' batching.
        """
        if level <= AttentionLevel.LOW:
            return None
        ms = self.engine.attention.lens_flush_ms(level)
        return None if ms is None else float(ms)

    def _attributes(self) -> dict[str, list[str]]:
        attrs: dict[str, list[str]] = {sid: card.attributes for sid, card in self.cards.items()}
        if self._has_sync:
            attrs[self.sync_id] = [topics.SYNC_ATTRIBUTE]
        return attrs

    def _on_card(self, sensor_id: str, ratio: float, pointer: bool) -> None:
        if sensor_id not in self.cards:
            return
        self._ratio[sensor_id] = ratio
        self._pointer[sensor_id] = pointer
        self._views_changed()

    def _on_lag(self, lag_ms: float) -> None:
        self.lens.report_lag(lag_ms)

    def _on_visibility(self, visible: bool) -> None:
        self._page_visible = visible
        self._views_changed()

    def _views_changed(self) -> None:
        """Send the new views to the engine; reports arriving meanwhile are coalesced."""
        if self._closed:
            return
        if self._views_task is not None and not self._views_task.done():
            self._views_dirty = True
            return
        self._views_task = asyncio.get_running_loop().create_task(self._send_views())

    async def _send_views(self) -> None:
        while True:
            self._views_dirty = False
            await self.lens.set_views(self.levels(), self._attributes())
            if not self._views_dirty:
                return

    # -- drawing ------------------------------------------------------------------------

    def _on_flush(self, flush: LensFlush) -> None:
        """Lens sink: queue the flush and schedule one document update for what is queued.

        The lens keeps its flushes APPLY_GAP_MS apart; the update is the document's
        next tick (flushes queued meanwhile join it).
        """
        self._pending.append(flush)
        if self._scheduled or self._closed:
            return
        self._scheduled = True
        self._doc.add_next_tick_callback(self._apply)

    def _apply(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        with pn.io.hold(self._doc):
            for flush in pending:
                for (sensor_id, _attr), batch in flush.items():
                    card = self.cards.get(sensor_id)
                    if card is not None:
                        card.push(batch)
                    elif sensor_id == self.sync_id:
                        self._push_sync(batch)
            now_ms = time.time_ns() / 1e6
            # the page times a flush by its stamp; a few a second are enough to
            # report lag, and each stamp costs a Panel parameter round
            if now_ms - self.page.stamp >= STAMP_EVERY_MS:
                self.page.stamp = now_ms

    def _push_sync(self, batch: Batch) -> None:
        if batch.attribute_id != topics.SYNC_ATTRIBUTE or not len(batch):
            return
        values = np.asarray(batch.values, dtype=np.float64).reshape(len(batch), -1)[:, 0]
        self._sync_source.stream({"t": batch.ts / 1e6, "y": values}, rollover=SYNC_ROLLOVER)
        self._show_sync(float(values[-1]))
        self._follow_sync(float(batch.ts[-1]) / 1e6)

    def _follow_sync(self, last_ms: float) -> None:
        """Show R(t) up to ``last_ms``: the last SYNC_WINDOW_MS, or all there is if less."""
        first = (
            float(self._sync_source.data["t"][0]) if len(self._sync_source.data["t"]) else last_ms
        )
        start = max(first, last_ms - SYNC_WINDOW_MS)
        self._sync_x.update(start=min(start, last_ms - 1000.0), end=last_ms)

    def _show_sync(self, r: float | None) -> None:
        shown = "–" if r is None else f"{r:.2f}"
        self._sync_now.text = (
            f"<div style='color:#566573'>Room synchrony R</div>"
            f"<div style='font-size:28pt;color:#7d3c98'>{shown}</div>"
        )

    def _refresh_status(self) -> None:
        """Cards show the engine's level of their sensor; the side lists who is watching."""
        attention = self.engine.attention
        for sid, card in self.cards.items():
            card.set_status(attention.level(sid), card.battery)
        present = self.rooms.present(self.room.room_id)
        names = sorted({p.user_id for p in present})
        self._present.text = f"<b>Watching now ({len(present)})</b><br>" + "<br>".join(
            names or ["nobody"]
        )


# -- pages ----------------------------------------------------------------------------------


def _session_arg(name: str) -> str:
    values = pn.state.session_args.get(name) or [b""]
    raw = values[0]
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _client_id() -> str:
    """Who is guessing join codes: the remote address, else this session."""
    ctx = pn.state.curdoc.session_context if pn.state.curdoc else None
    request = getattr(ctx, "request", None)
    remote = getattr(getattr(request, "_request", None), "remote_ip", None)
    return str(remote or (ctx.id if ctx is not None else "unknown"))


def _viewer_id() -> str:
    """This page's viewer id (its attention views and presence are under it).

    Unique per page: a session discarded before its browser connected is made anew
    under the same session id, and the two must not share views.
    """
    doc = pn.state.curdoc
    session = doc.session_context if doc is not None else None
    name = session.id[:100] if session is not None else "page"
    viewer_id = f"dash-{name}-{uuid.uuid4().hex[:12]}"
    return "".join(c if c.isalnum() or c in "_.:-" else "-" for c in viewer_id)


def _gone(doc: Document | None) -> bool:
    """Whether the session of ``doc`` was destroyed (its browser left, or never came)."""
    context = doc.session_context if doc is not None else None
    return context is not None and bool(getattr(context, "destroyed", False))


def _open_dashboard(
    ctx: Context, session: RoomSession, viewer_id: str, user_id: str, container: pn.Column
) -> RoomDashboard:
    """Show the room's dashboard in ``container`` (on the session's document, under its lock)."""
    doc = pn.state.curdoc
    if doc is None:
        raise RuntimeError("a dashboard needs a Panel server session")
    dash = RoomDashboard(ctx, session, viewer_id=viewer_id, user_id=user_id, doc=doc)
    container[:] = [dash.layout]

    def started(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _log.error("dashboard %s failed to start", viewer_id, exc_info=task.exception())

    asyncio.get_running_loop().create_task(dash.start()).add_done_callback(started)

    def destroyed(_session_context: Any) -> None:
        dash.detach()
        asyncio.get_running_loop().create_task(dash.close())

    pn.state.on_session_destroyed(destroyed)
    pn.state.add_periodic_callback(dash._refresh_status, period=500)
    return dash


def _on_document(doc: Document | None, callback: Callable[[], object]) -> None:
    """Run ``callback`` as the session's next tick: under its document lock, as its curdoc."""
    if doc is None or doc.session_context is None:
        callback()
        return
    if _gone(doc):
        return

    def run() -> None:
        with set_curdoc(doc):
            callback()

    doc.add_next_tick_callback(run)


def _run_task(what: Coroutine[Any, Any, None]) -> None:
    """Run a page's async step (a network round trip for a remote engine) as a task."""

    def done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _log.error("dashboard page step failed", exc_info=task.exception())

    asyncio.get_running_loop().create_task(what).add_done_callback(done)


def serve_resources_locally() -> None:
    """Make this session's components load Panel's CSS from this server, not its CDN.

    Panel points component stylesheets at its CDN until the page is rendered; parts
    made or re-rendered before that would then be fetched from the internet, which a
    lab machine may not reach (each failing request delays the page).
    """
    doc = pn.state.curdoc
    if doc is not None:
        rel = pn.state.rel_path
        doc._template_variables["dist_url"] = f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST


def room_page(ctx: Context) -> pn.viewable.Viewable:
    """The page of one session at ``/room``: the entry form, then the room's dashboard.

    The room comes from ``?room=`` (or the form); the session must present the
    room's join code (``?code=`` or the form) unless its authenticated user is a
    member. A wrong code shows why and reveals nothing of the room.
    """
    serve_resources_locally()
    user = pn.state.user
    doc = pn.state.curdoc
    viewer_id, client = _viewer_id(), _client_id()
    container = pn.Column(sizing_mode="stretch_width")
    room_in = pn.widgets.TextInput(label="Room", value=_session_arg("room"), width=200)
    code_in = pn.widgets.PasswordInput(label="Join code", placeholder="ABCDE-12345", width=200)
    join = pn.widgets.Button(label="Join", color="primary", width=100)
    message = pn.pane.HTML("", styles={"color": "#c0392b"})

    busy = False  # an attempt is under way, or the room is shown: one per page

    async def attempt(room_id: str, code: str, *, unless_stranger: bool = False) -> None:
        nonlocal busy
        if busy:
            return
        busy = True
        try:
            if unless_stranger and not await ctx.member(room_id, user):
                busy = False  # no code and not a member: the form asks for the code
                return
            session = await ctx.open_room(room_id, code, user, client=client, viewer_id=viewer_id)
        except SensoctoError as exc:
            busy = False
            detail = exc.detail
            _on_document(doc, lambda: setattr(message, "object", detail))
            return
        if _gone(doc):  # the page went while the room was being opened
            await session.engine.remove_viewer(viewer_id)
            return
        _on_document(
            doc, lambda: _open_dashboard(ctx, session, viewer_id, user or "guest", container)
        )

    join.on_click(
        lambda _event: _run_task(attempt((room_in.value or "").strip(), code_in.value or ""))
    )
    container[:] = [
        pn.pane.HTML("<h2>Join a room</h2>"),
        pn.Row(room_in, code_in, join),
        message,
    ]
    room_id, code = _session_arg("room"), _session_arg("code")
    if room_id and (code or user):
        # Once the page has loaded: a layout swapped while the browser was still
        # fetching the document left some pages blank (the remote path's round trip
        # made that race common on a loaded machine).
        pn.state.onload(lambda: _run_task(attempt(room_id, code, unless_stranger=not code)))
    return container


def lobby_page(ctx: Context, room_url: str = "room") -> pn.viewable.Viewable:
    """The page at ``/``: a join code gives a link to its room; members see their rooms."""
    serve_resources_locally()
    user = pn.state.user
    doc = pn.state.curdoc
    client = _client_id()
    code_in = pn.widgets.TextInput(label="Join code", placeholder="ABCDE-12345", width=220)
    go = pn.widgets.Button(label="Open room", color="primary", width=120)
    message = pn.pane.HTML("")

    async def open_room(code: str) -> None:
        try:
            room = await ctx.find_room(code, client=client)
        except SensoctoError as exc:
            text = f"<span style='color:#c0392b'>{escape(exc.detail)}</span>"
        else:
            query = urlencode({"room": room.room_id, "code": format_code(room.join_code)})
            text = f"<a href='{room_url}?{query}'>Open {escape(room.name)}</a>"
        _on_document(doc, lambda: setattr(message, "object", text))

    go.on_click(lambda _event: _run_task(open_room(code_in.value or "")))
    items: list[Any] = [
        pn.pane.HTML("<h1>sensocto_lab</h1><p>Enter the join code shown in the room.</p>"),
        pn.Row(code_in, go),
        message,
    ]
    if user:
        yours = pn.pane.HTML("<h3>Your rooms</h3><ul><li>…</li></ul>")
        items.append(yours)

        async def list_rooms(user: str) -> None:
            try:
                mine = await ctx.rooms_of(user)
            except SensoctoError as exc:
                text = f"<h3>Your rooms</h3><p>{escape(exc.detail)}</p>"
            else:
                links = "".join(
                    f"<li><a href='{room_url}?{urlencode({'room': r.room_id})}'>"
                    f"{escape(r.name)}</a></li>"
                    for r in mine
                )
                text = f"<h3>Your rooms</h3><ul>{links or '<li>none</li>'}</ul>"
            _on_document(doc, lambda: setattr(yours, "object", text))

        pn.state.onload(lambda: _run_task(list_rooms(user)))
    return pn.Column(*items)
