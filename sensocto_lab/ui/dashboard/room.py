"""The room dashboard: one per browser session, the experiment's control room.

:class:`RoomDashboard` builds a card per sensor of a room (sorted naturally, named
by participant, see :mod:`.cards`), each wrapped in a
:class:`~sensocto_lab.ui.dashboard.observer.VisibilityObserver`; the room panel
(:mod:`.roompanel`: R gauge, phase circle, R(t) with markers and condition spans,
the condition running, R per condition); the focus view of one participant
(:mod:`.focus`, opened by clicking a card); and, for a room admin, the controls
(:mod:`.controls`: markers, conditions, recording status). What the observers report
becomes this session's attention views (focused card or focus view → high, visible →
medium, scrolled out → low, page hidden → none), registered with the engine in bulk
by the session's :class:`~sensocto_lab.engine.lens.Lens`; the lens's flushes become
one ``pn.io.hold()``-ed document update each. The room's events (``events:{room}``
on the bus) are drawn as they are recorded, whoever recorded them.

Everything here runs on the loop the Panel server shares with the engine
(``docs/architecture.md``, "Dashboards and the kernel"); only that loop touches engine
state and the session's document. Nothing in the document changes before the page has
drawn it (its page observer reported): a model changed earlier reaches a page that does
not know it yet, and Bokeh throws ("reference ... isn't known"). Where rooms and data
come from is the context's business (:class:`Context`, made in :mod:`.pages` or
:mod:`.remote`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from html import escape
from typing import Any

import numpy as np
import panel as pn
from bokeh.document import Document
from bokeh.models.widgets import Div

from sensocto_lab.engine import topics
from sensocto_lab.engine.bus import Subscription
from sensocto_lab.engine.lens import Lens, LensFlush
from sensocto_lab.events import Event
from sensocto_lab.model import AttentionLevel
from sensocto_lab.rooms import format_code
from sensocto_lab.ui.dashboard.cards import WAVEFORMS, SensorCard
from sensocto_lab.ui.dashboard.context import (
    Context,
    RoomSession,
    participant_of,
    recorded_events,
    room_sensors,
)
from sensocto_lab.ui.dashboard.controls import Controls, format_status
from sensocto_lab.ui.dashboard.focus import FocusView
from sensocto_lab.ui.dashboard.observer import PageObserver, VisibilityObserver, level_for
from sensocto_lab.ui.dashboard.roompanel import PHASE_HZ, SYNC_ROLLOVER, RoomPanel

__all__ = ["Context", "RoomDashboard", "RoomSession", "room_sensors"]

_log = logging.getLogger(__name__)

#: Least time between two flushes, so document updates, of one session, in ms: each
#: update costs the server in proportion to the whole document (Bokeh serialises
#: against every model), so sensors due a few ms apart share one. 20 ms keeps a page
#: under 50 updates a second (a browser paints 60 frames); measured against 30 ms with
#: ten devices out of step, it cut the median sample→screen latency from ~39 to
#: ~35 ms at no measurable server CPU.
APPLY_GAP_MS = 20.0

#: Least time between flush stamps sent to the page for its lag measurement, in ms.
STAMP_EVERY_MS = 200.0

#: How often cards' numbers and states, presence and the room panel's texts refresh, ms.
STATUS_MS = 500

#: The participants' colours (cards and phase-circle dots), in card order.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
)  # fmt: skip


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
        self.session = session
        self.viewer_id = viewer_id
        self.user_id = user_id
        self._doc = doc
        sensors = room_sensors(session)
        shown = sensors[: ctx.max_cards]
        colours = {info.sensor_id: PALETTE[i % len(PALETTE)] for i, info in enumerate(shown)}
        self.sync_id = topics.sync_sensor(room.room_id)
        self._has_sync = self.sync_id in self.engine.sensors
        now_ms = ctx.clock.time_ns() / 1e6
        self.panel = RoomPanel(colours, has_sync=self._has_sync, now_ms=now_ms)
        self.cards: dict[str, SensorCard] = {
            info.sensor_id: SensorCard(
                info,
                participant=participant_of(self.engine, info.sensor_id),
                colour=colours[info.sensor_id],
                marks=self.panel.marks,
                spans=self.panel.spans,
                on_waveform=self._waveform_changed,
            )
            for info in shown
        }
        self.focus = FocusView(self.panel.marks, self.panel.spans)
        self.focus.close_button.on_click(lambda _e: self.close_focus())
        # What each card's observer last reported; a card not yet drawn has reported
        # nothing and gets no attention (and no data) until it has
        self._ratio: dict[str, float] = {}
        self._pointer: dict[str, bool] = {}
        self._page_visible = True
        self._page_seen = False  # the page has drawn the layout (see the module doc)
        self._early_events: list[Event] = []
        if session.draws is not None:
            session.draws(self._attributes())
        options = {"flush_ms": self._display_flush_ms, "gap_ms": APPLY_GAP_MS, **ctx.lens_options}
        self.lens = Lens(viewer_id, self.engine, self._on_flush, clock=ctx.clock, **options)
        self._pending: list[LensFlush] = []
        self._scheduled = False
        self._views_task: asyncio.Task[None] | None = None
        self._views_dirty = False
        self._events_sub: Subscription | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._phase_t = -1
        self._ticks = 0
        self._closed = False  # no more drawing: the document is going away
        self._finished = False  # close() has run
        self.page = PageObserver(
            on_visibility=self._on_visibility, on_lag=self._on_lag, on_key=self._on_key
        )
        self.observers = [
            VisibilityObserver(
                card.panel, key=sid, on_change=self._on_card, on_click=self.open_focus
            )
            for sid, card in self.cards.items()
        ]
        self.controls: Controls | None = None
        if session.experiment is not None and ctx.can_control(room.room_id, session.user):
            self.controls = Controls(
                room_id=room.room_id, user=user_id, experiment=session.experiment,
                allowed=lambda: ctx.can_control(room.room_id, session.user), clock=ctx.clock,
                run=self._run, on_document=self._on_document,
            )  # fmt: skip
        menu = WAVEFORMS.items()
        self.all_waveforms = pn.widgets.Select(
            options={"Waveform for all cards …": "", **{v: k for k, v in menu}},
            value="", width=200, css_classes=["waveform-all"],
        )  # fmt: skip
        self.all_waveforms.param.watch(self._all_picked, "value")
        self._present = Div(text="", width=300, styles={"font-size": "13px"})
        self._backfill()
        self.layout = self._build_layout(len(sensors))

    def _backfill(self) -> None:
        """Start every plot from what the store holds (see SensorCard.backfill)."""
        store = self.engine.store
        for card in self.cards.values():
            card.backfill(store)
        if self._has_sync:
            history = getattr(store, "history", None)
            ts, r = store.latest(self.sync_id, topics.SYNC_ATTRIBUTE, SYNC_ROLLOVER)
            if history is not None:  # the whole session, for R per condition
                with contextlib.suppress(Exception):
                    da = history(sensors=[self.sync_id], attributes=[topics.SYNC_ATTRIBUTE])[
                        topics.SYNC_ATTRIBUTE
                    ].sel(sensor=self.sync_id)
                    ok = np.isfinite(np.asarray(da.values, dtype=np.float64))
                    if ok.sum() > len(ts):
                        ts = (
                            np.asarray(da["time"].values)
                            .astype("datetime64[ns]")
                            .astype(np.int64)[ok]
                        )
                        r = np.asarray(da.values, dtype=np.float64)[ok]
            self.panel.backfill_sync(ts, r)
        self.panel.backfill_events(recorded_events(self.engine.store, self.room.room_id))

    def _build_layout(self, n_sensors: int) -> pn.viewable.Viewable:
        # a member let in by a remote engine is not told the code
        code = self.room.join_code and f"join code {format_code(self.room.join_code)} · "
        role = "you control this room" if self.controls is not None else "viewer"
        header = pn.Row(
            pn.pane.HTML(
                f"<h2 style='margin:4px 0'>{escape(self.room.name)}</h2>"
                f"<span style='color:#566573'>room {escape(self.room.room_id)} · "
                f"{code}{n_sensors} sensors · {role}</span>",
                width=520,
            ),
            pn.pane.Bokeh(self.panel.banner, margin=(12, 4)),
        )
        items: list[Any] = [header]
        if self.controls is not None:
            items.append(self.controls.panel)
        items.append(pn.Row(self.all_waveforms, pn.pane.HTML(
            "<span style='color:#566573;font-size:12px'>click a card to focus it"
            + (" · <b>m</b> marks" if self.controls is not None else "") + "</span>")))  # fmt: skip
        items.append(VisibilityObserver(self.focus.panel, key="focus", on_change=self._on_card))
        side: list[Any] = [
            pn.pane.Bokeh(self.panel.gauge, margin=0),
            pn.pane.Bokeh(self.panel.phase_figure, margin=0),
            pn.pane.Bokeh(self.panel.sync_figure, margin=0),
            pn.pane.Bokeh(self.panel.by_condition, margin=0),
            pn.pane.Bokeh(self.panel.recent, margin=0),
            pn.pane.Bokeh(self._present, margin=0),
        ]
        if n_sensors > len(self.cards):
            more = Div(text=f"{n_sensors - len(self.cards)} more sensors not drawn")
            side.append(pn.pane.Bokeh(more, margin=0))
        # Wrapped like the cards: next to plots inside observers, a plot outside one
        # kept those from painting (Bokeh 3.9 / Panel 1.9, headless Chromium).
        panel = VisibilityObserver(
            pn.Column(*side, width=440), key=self.sync_id, on_change=self._on_card
        )
        grid = pn.FlexBox(*self.observers, flex_wrap="wrap", sizing_mode="stretch_width")
        items += [pn.Row(grid, panel, sizing_mode="stretch_width"), self.page]
        return pn.Column(*items, sizing_mode="stretch_width")

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start the lens, register this session's views, its presence, and follow events."""
        self.rooms.enter(self.room.room_id, self.viewer_id, self.user_id)
        self.ctx.dashboards[self.viewer_id] = self
        self._events_sub = self.engine.bus.subscribe(topics.events(self.room.room_id), maxsize=1000)
        self._events_task = asyncio.get_running_loop().create_task(self._follow_events())
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
        if self._events_sub is not None:
            self._events_sub.close()
        for task in (self._views_task, self._events_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.lens.close()

    def _run(self, what: Coroutine[Any, Any, None]) -> None:
        """Run a step of this session as a task; its failure is logged."""

        def done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                _log.error("dashboard %s: step failed", self.viewer_id, exc_info=task.exception())

        asyncio.get_running_loop().create_task(what).add_done_callback(done)

    def _on_document(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` as the document's next tick, once the page has drawn it."""
        if self._closed:
            return

        def run() -> None:
            if not self._closed:
                with pn.io.hold(self._doc):
                    callback()

        self._doc.add_next_tick_callback(run)

    async def _follow_events(self) -> None:
        assert self._events_sub is not None
        while True:
            event = await self._events_sub.get()
            if isinstance(event, Event):
                self._on_document(functools.partial(self._on_event, event))

    def _on_event(self, event: Event) -> None:
        if not self._page_seen:
            self._early_events.append(event)
            return
        self.panel.on_event(event)
        self.panel.tick(self.ctx.clock.time_ns())

    # -- attention ----------------------------------------------------------------------

    def levels(self) -> dict[str, AttentionLevel]:
        """This session's level per shown sensor, from what its observers reported.

        A card whose observer has not reported yet (the page is still loading) is
        ``NONE``: nothing is streamed to a page before it can draw. The focused sensor
        is ``HIGH`` while the page is visible.
        """
        out = {
            sid: level_for(self._ratio[sid], self._pointer[sid], self._page_visible)
            if sid in self._ratio
            else AttentionLevel.NONE
            for sid in self.cards
        }
        focused = self.focus.sensor_id
        if focused is not None and self._page_visible:
            out[focused] = AttentionLevel.HIGH
        if self._has_sync:
            shown = self._page_visible and self._page_seen
            out[self.sync_id] = AttentionLevel.MEDIUM if shown else AttentionLevel.NONE
        return out

    def _display_flush_ms(self, level: AttentionLevel) -> float | None:
        """What this page draws: visible and focused cards at their tier's interval.

        Scrolled-out cards (LOW) are buffered, not drawn, and catch up when scrolled
        back (the browser is the limit; out of view gets no updates:
        docs/architecture.md#dashboards). The engine still counts them as LOW for the
        devices' batching.
        """
        if level <= AttentionLevel.LOW:
            return None
        ms = self.engine.attention.lens_flush_ms(level)
        return None if ms is None else float(ms)

    def _attributes(self) -> dict[str, list[str]]:
        attrs: dict[str, list[str]] = {sid: card.attributes for sid, card in self.cards.items()}
        focused = self.focus.sensor_id
        if focused is not None:
            attrs[focused] = sorted(set(attrs[focused]) | set(self.focus.attributes))
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
        if not self._page_seen:
            self._page_seen = True
            early, self._early_events = self._early_events, []
            for event in early:
                self._on_document(functools.partial(self._on_event, event))
        self._views_changed()

    def _on_key(self, key: str) -> None:
        """The page's keyboard shortcuts: ``m`` marks (admins), Escape closes the focus view."""
        if key == "m" and self.controls is not None:
            self.controls.press_mark()
        elif key == "Escape":
            self._on_document(self.close_focus)

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

    # -- waveforms and focus --------------------------------------------------------------

    def _waveform_changed(self, _sensor_id: str) -> None:
        self._views_changed()

    def _all_picked(self, event: Any) -> None:
        kind = str(event.new or "")
        if not kind:
            return
        with pn.io.hold(self._doc):
            for card in self.cards.values():
                card.show(kind)

    def open_focus(self, sensor_id: str) -> None:
        """Show ``sensor_id`` in the focus view (and view it at HIGH attention)."""
        card = self.cards.get(sensor_id)
        if card is None or self._closed:
            return
        with pn.io.hold(self._doc):
            self.focus.open(card, self.engine.store, self.ctx.clock.time_ns())
        self._views_changed()

    def close_focus(self) -> None:
        """Hide the focus view; its sensor goes back to what its card reports."""
        if self.focus.sensor_id is None:
            return
        self.focus.close()
        self._views_changed()

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
        focused = self.focus.sensor_id
        with pn.io.hold(self._doc):
            for flush in pending:
                for (sensor_id, _attr), batch in flush.items():
                    card = self.cards.get(sensor_id)
                    if card is not None:
                        card.push(batch)
                        if sensor_id == focused:
                            self.focus.push(batch)
                    elif sensor_id == self.sync_id and batch.attribute_id == topics.SYNC_ATTRIBUTE:
                        self.panel.push_sync(batch)
            now_ms = time.time_ns() / 1e6
            # the page times a flush by its stamp; a few a second are enough to
            # report lag, and each stamp costs a Panel parameter round
            if now_ms - self.page.stamp >= STAMP_EVERY_MS:
                self.page.stamp = now_ms

    def _refresh_status(self) -> None:
        """Cards' numbers, states and levels; who is watching; the room panel's texts."""
        if not self._page_seen or self._closed:
            return
        now_ns = self.ctx.clock.time_ns()
        levels = self.levels()
        attention = self.engine.attention
        sensors = self.engine.sensors
        self._ticks += 1
        with pn.io.hold(self._doc):
            # numbers once a second, for what is seen (a scrolled-out card is not drawn
            # anyway): each new text makes the page lay out its document again
            numbers = self._ticks % 2 == 1
            for sid, card in self.cards.items():
                if numbers and levels.get(sid, AttentionLevel.NONE) >= AttentionLevel.MEDIUM:
                    card.set_vitals(card.measure(now_ns, registered=sid in sensors))
                    card.set_status(attention.level(sid))
            if self.focus.sensor_id in self.cards:
                self.focus.set_vitals(self.cards[self.focus.sensor_id])
            self.panel.tick(now_ns)
            present = self.rooms.present(self.room.room_id)
            names = sorted({p.user_id for p in present})
            text = f"<b>Watching now ({len(present)})</b><br>" + "<br>".join(
                escape(n) for n in (names or ["nobody"])
            )
            if text != self._present.text:
                self._present.text = text
            if self.controls is not None and self._ticks % 2 == 1:
                status = self.ctx.recording_status()
                if status is not None:
                    self.controls.status.text = format_status(status)

    def _refresh_phases(self) -> None:
        """The phase circle, at PHASE_HZ: a new estimate when there is one, else moved on."""
        if not self._page_seen or self._closed or not self._has_sync:
            return
        estimate = self.ctx.phases(self.room.room_id)
        if estimate is None:
            return
        with pn.io.hold(self._doc):
            if estimate.t_ns != self._phase_t:
                self._phase_t = estimate.t_ns
                self.panel.set_phases(estimate.t_ns, estimate.sensors, estimate.phases)
            self.panel.move_phases(self.ctx.clock.time_ns())


#: Period of the phase circle's refresh, ms.
PHASE_MS = int(1000 / PHASE_HZ)
