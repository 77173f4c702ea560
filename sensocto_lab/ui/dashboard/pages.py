"""The pages that gate access to a room's dashboard, and the in-process context.

:func:`room_page` and :func:`lobby_page` build a session's page: a room is shown
only to a session that presents its join code (``?room=...&code=...`` or the
entry form) or whose authenticated user (``panel serve`` auth) is a member.
:class:`DashboardContext` reads an engine and a room store in this process; the
remote context of :mod:`sensocto_lab.ui.dashboard.remote` reaches an engine in
another process over its WebSocket endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

import panel as pn
from bokeh.document import Document
from panel.io.resources import LOCAL_DIST
from panel.io.state import set_curdoc

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.engine import topics
from sensocto_lab.errors import SensoctoError, ValidationError
from sensocto_lab.rooms import Role, Room, RoomStore, format_code
from sensocto_lab.ui.dashboard.context import Context, RoomSession
from sensocto_lab.ui.dashboard.room import PHASE_MS, STATUS_MS, RoomDashboard

__all__ = ["DashboardContext", "lobby_page", "room_page"]

_log = logging.getLogger(__name__)


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
    controls_without_login
        Whether a session holding only the join code gets the admin controls: on a
        server that asks nobody to log in (the demo, a lab machine) whoever holds the
        code runs the experiment; with a login, only the room's owner and admins do.
    synchrony
        Each room's live synchrony (its ``latest`` estimate draws the phase circle).
    """

    engine: Any
    rooms: RoomStore
    clock: Clock = field(default_factory=SystemClock)
    max_cards: int = 200
    lens_options: dict[str, Any] = field(default_factory=dict)
    dashboards: dict[str, RoomDashboard] = field(default_factory=dict)
    controls_without_login: bool = True
    synchrony: dict[str, Any] = field(default_factory=dict)

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
        return RoomSession(room, self.engine, self.rooms, experiment=self.engine, user=user)

    def can_control(self, room_id: str, user: str | None) -> bool:
        if user is None:
            return self.controls_without_login
        try:
            role = self.rooms.role_of(room_id, user)
        except ValidationError:  # the room is gone
            return False
        return role is not None and role >= Role.ADMIN

    def room_counts(self, room_id: str) -> tuple[int, int] | None:
        assigned = set(self.rooms.sensors(room_id))
        sync_id = topics.sync_sensor(room_id)
        sensors = sum(
            1
            for sid, info in self.engine.sensors.items()
            if sid != sync_id and (sid in assigned or info.room == room_id)
        )
        return sensors, len(self.rooms.present(room_id))

    def recording_status(self) -> dict[str, Any] | None:
        store = self.engine.store
        stats = store.statistics()
        start = getattr(getattr(store, "session", None), "start_ns", None)
        free = None
        data_dir = getattr(self.engine, "data_dir", None)
        if data_dir is not None:
            try:
                free = shutil.disk_usage(data_dir).free
            except OSError:
                free = None
        now = self.clock.time_ns()
        return {
            "duration_s": 0.0 if start is None else max(0.0, (now - start) / 1e9),
            "samples": stats.get("samples_appended", 0),
            "storage_lag_s": stats.get("storage_lag_s"),
            "free_bytes": free,
            # accepted by the engine but not stored: what a recording must never lose
            "dropped": int(stats.get("write_errors", 0) or 0),
        }

    def phases(self, room_id: str) -> Any:
        live = self.synchrony.get(room_id)
        return getattr(live, "latest", None)


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
    pn.state.add_periodic_callback(dash._refresh_status, period=STATUS_MS)
    pn.state.add_periodic_callback(dash._refresh_phases, period=PHASE_MS)
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
    """The page at ``/`` and ``/lobby``: a logged-in member's rooms with live counts
    (sensors, viewers; refreshed every 2 s), and a join-code box for everyone."""
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
        pn.pane.HTML(
            "<h1>sensocto_lab</h1><p>Live physiology of a group, recorded as it happens. "
            "Enter the join code shown in the room; members who logged in find theirs "
            "listed below.</p>"
        ),
        pn.Row(code_in, go),
        message,
    ]
    if user:
        yours = pn.pane.HTML("<h3>Your rooms</h3><ul><li>…</li></ul>", name="your-rooms")
        items.append(yours)
        mine: list[Room] = []

        def render() -> None:
            rows = []
            for r in mine:
                counts = ctx.room_counts(r.room_id)
                live = (
                    ""
                    if counts is None
                    else f" <span style='color:#566573'>· {counts[0]} sensors · "
                    f"{counts[1]} watching</span>"
                )
                href = f"{room_url}?{urlencode({'room': r.room_id})}"
                rows.append(f"<li><a href='{href}'>{escape(r.name)}</a>{live}</li>")
            text = f"<h3>Your rooms</h3><ul>{''.join(rows) or '<li>none</li>'}</ul>"
            if text != yours.object:
                yours.object = text

        async def list_rooms(user: str) -> None:
            try:
                mine[:] = await ctx.rooms_of(user)
            except SensoctoError as exc:
                text = f"<h3>Your rooms</h3><p>{escape(exc.detail)}</p>"
                _on_document(doc, lambda: setattr(yours, "object", text))
                return
            _on_document(doc, render)

        def loaded() -> None:
            _run_task(list_rooms(user))
            pn.state.add_periodic_callback(render, period=2000)

        pn.state.onload(loaded)
    return pn.Column(*items)
