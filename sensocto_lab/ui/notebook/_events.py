"""Markers and conditions drawn on the notebook widgets, live or from history.

:class:`EventLayer` is mixed into :class:`StripWidget`, :class:`SyncWidget` and
:class:`HistoryWidget`. Its synced ``events`` trait is a list of small dicts::

    {"t": onset, s since the epoch, "d": duration s (-1: still running),
     "label": str, "kind": "marker" | "condition" | "novelty"}

and ``t_ref`` is the epoch second of the widget's own time reference (the newest
sample for the live widgets, the first one for the history), so the JavaScript
(``_common.js: drawEvents``) puts each marker at ``t - t_ref`` on its time axis:
conditions as shaded labelled spans, markers and novelty as labelled vertical lines.

``widget.show_events(store.events(...))`` shows recorded events; ``widget.follow_events
(engine.bus, room)`` adds them as they are published on ``events:{room}`` (a condition
that begins is drawn up to the newest sample until its end arrives).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
import traitlets

from sensocto_lab.engine import topics
from sensocto_lab.events import Event, condition_phase
from sensocto_lab.ui.notebook._feed import BusFeed, LiveWidget

__all__ = ["MAX_EVENTS", "EventLayer", "event_rows"]

#: Most events a widget keeps (the oldest go first).
MAX_EVENTS = 500


def event_rows(events: Any) -> list[dict[str, Any]]:
    """``store.events()`` (a DataFrame) or :class:`Event` objects as ``events`` rows."""
    if isinstance(events, Iterable) and not hasattr(events, "columns"):
        return [_row(e) for e in events if condition_phase(e.kind, e.value) != "end"]
    frame = events
    if len(frame) == 0:
        return []
    onset = np.asarray(frame["onset"].array.as_unit("ns").asi8, dtype=np.int64) / 1e9
    rows = []
    for t, d, label, kind in zip(
        onset.tolist(), frame["duration"].tolist(), frame["label"], frame["kind"], strict=True
    ):
        running = d != d  # NaN: a condition still running
        rows.append({"t": t, "d": -1.0 if running else float(d), "label": str(label),
                     "kind": str(kind)})
    return rows


def _row(event: Event) -> dict[str, Any]:
    running = condition_phase(event.kind, event.value) == "begin"
    return {
        "t": event.onset_ns / 1e9,
        "d": -1.0 if running else float(event.duration_s),
        "label": event.label,
        "kind": event.kind,
    }


class EventLayer(LiveWidget):
    """Markers and condition spans over a widget's time axis (see the module doc)."""

    events = traitlets.List(traitlets.Dict(), default_value=[]).tag(sync=True)
    t_ref = traitlets.Float(0.0).tag(sync=True)

    _events_lock = threading.Lock()

    def show_events(self, events: Any) -> None:
        """Show these events (a ``store.events()`` table or :class:`Event` objects) only."""
        self.events = event_rows(events)[-MAX_EVENTS:]

    def add_event(self, event: Event) -> None:
        """Add one event as it happens; a condition's end closes its open span."""
        with self._events_lock:
            rows = list(self.events)
            if condition_phase(event.kind, event.value) == "end":
                for row in reversed(rows):
                    if row["kind"] == "condition" and row["label"] == event.label and row["d"] < 0:
                        row["d"] = max(0.0, event.onset_ns / 1e9 - row["t"])
                        break
            else:
                rows.append(_row(event))
            self.events = [dict(r) for r in rows[-MAX_EVENTS:]]

    def follow_events(self, bus: Any, room: str | None) -> BusFeed:
        """Add the events published on ``events:{room}`` of the engine's bus as they come."""

        def on_message(event: Any) -> None:
            if isinstance(event, Event):
                self.add_event(event)

        return self._follow(bus, [topics.events(room)], on_message)
