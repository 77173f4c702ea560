"""The room dashboard: one per browser session, and what it reads.

:class:`RoomDashboard` builds a card per sensor of a room, each wrapped in a
:class:`~sensocto_lab.ui.dashboard.observer.VisibilityObserver`, plus the room's
synchrony (the ``sync:{room}`` sensor's ``sync`` attribute: the Kuramoto R now and
R(t)) and who is watching. What the observers report becomes this session's
attention views (focused → high, visible → medium, scrolled out → low, page
hidden → none), registered with the engine in bulk by the session's
:class:`~sensocto_lab.engine.lens.Lens`; the lens's flushes become one
``pn.io.hold()``-ed document update each.

Everything here runs on the loop the Panel server shares with the engine
(``docs/architecture.md``, "Dashboards and the kernel"); only that loop touches engine
state and the session's document. Where rooms and data come from is the context's
business (:class:`Context`, made in :mod:`.pages` or :mod:`.remote`): it hands a
session that got in a :class:`RoomSession`, whose ``engine`` and ``rooms`` the
dashboard reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any, Protocol

import numpy as np
import panel as pn
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Range1d
from bokeh.models.widgets import Div
from bokeh.plotting import figure

from sensocto_lab.clock import Clock
from sensocto_lab.engine import topics
from sensocto_lab.engine.contracts import EngineView
from sensocto_lab.engine.lens import Lens, LensFlush
from sensocto_lab.model import AttentionLevel, Batch, SensorInfo
from sensocto_lab.rooms import Room, format_code
from sensocto_lab.ui.dashboard.cards import SensorCard
from sensocto_lab.ui.dashboard.observer import PageObserver, VisibilityObserver, level_for

__all__ = ["Context", "RoomDashboard", "RoomSession", "room_sensors"]

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
    engine: EngineView
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
        # Whether the page has drawn this layout (its page observer reported): a model
        # changed before then reaches a page that does not know it yet ("reference
        # ... isn't known", thrown in the browser), so nothing changes before.
        self._page_seen = False
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
            shown = self._page_visible and self._page_seen
            out[self.sync_id] = AttentionLevel.MEDIUM if shown else AttentionLevel.NONE
        return out

    def _display_flush_ms(self, level: AttentionLevel) -> float | None:
        """What this page draws: visible and focused cards at their tier's interval.

        Scrolled-out cards (LOW) are buffered, not drawn, and catch up when scrolled
        back (the browser is the limit; out of view gets no updates:
        docs/architecture.md#dashboards). The
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
        self._page_seen = True
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
        if not self._page_seen or self._closed:
            return
        attention = self.engine.attention
        for sid, card in self.cards.items():
            card.set_status(attention.level(sid), card.battery)
        present = self.rooms.present(self.room.room_id)
        names = sorted({p.user_id for p in present})
        self._present.text = f"<b>Watching now ({len(present)})</b><br>" + "<br>".join(
            names or ["nobody"]
        )


# -- pages ----------------------------------------------------------------------------------
