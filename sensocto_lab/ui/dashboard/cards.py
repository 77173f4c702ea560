"""A participant's card: who it is, live numbers, a state, and one chosen waveform.

The card owns a :class:`bokeh.models.ColumnDataSource` with columns ``t``
(device time, ms since the epoch, as Bokeh's datetime axis wants) and ``y`` for the
waveform picked (:data:`WAVEFORMS`: respiration, ECG, HR trend, RR tachogram,
accelerometer magnitude); new samples are streamed in as numpy arrays with a
rollover, so the page only ever holds the waveform's window. Its numbers (heart
rate, breaths per minute, battery, signal quality) and state
(:class:`~sensocto_lab.ui.dashboard.vitals.CardState`) are set by the dashboard from
the store's recent samples. The card subscribes to nothing: the dashboard's lens
hands it batches (see :mod:`sensocto_lab.engine.lens`). Markers and condition spans
are drawn from two sources every card shares with the room panel.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import numpy as np
import numpy.typing as npt
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div
from bokeh.plotting import figure

from sensocto_lab.engine.contracts import RecentSamples
from sensocto_lab.model import AttentionLevel, Batch, SensorInfo
from sensocto_lab.ui.dashboard.vitals import (
    FLAT_WINDOW_S,
    STATE_STYLE,
    CardState,
    Vitals,
    breaths_per_minute,
    card_state,
    is_flat,
)

__all__ = [
    "MAIN_KIND_ORDER",
    "WAVEFORMS",
    "SensorCard",
    "draw_events",
    "main_attribute",
    "plot_values",
]

#: Which attribute a card plots first: the first kind in this order that the sensor has.
MAIN_KIND_ORDER = (
    "respiration",
    "ecg",
    "hr",
    "rr",
    "hrv",
    "spo2",
    "accelerometer",
    "gyroscope",
    "temperature",
    "numeric",
)

#: The waveforms a card can show (kind → menu label), and the seconds each keeps.
WAVEFORMS: dict[str, str] = {
    "respiration": "Respiration",
    "ecg": "ECG",
    "hr": "HR trend",
    "rr": "RR tachogram",
    "accelerometer": "Accelerometer |a|",
}
WINDOW_S: dict[str, float] = {
    "respiration": 20.0,
    "ecg": 5.0,
    "hr": 120.0,
    "rr": 120.0,
    "accelerometer": 10.0,
}

#: Seconds of respiration a card keeps for its breathing rate.
RESP_KEEP_S = 30.0

#: Far beyond any signal: markers and spans are drawn from here to there, and the
#: plots' ranges follow the waveform only.
_TALL = 1e9


def main_attribute(info: SensorInfo) -> str | None:
    """The attribute id a card for ``info`` plots first, or ``None`` if nothing is plottable."""
    by_kind = _by_kind(info)
    return next((by_kind[k] for k in MAIN_KIND_ORDER if k in by_kind), None)


def _by_kind(info: SensorInfo) -> dict[str, str]:
    by_kind: dict[str, str] = {}
    for attr_id, attr in sorted(info.attributes.items()):
        by_kind.setdefault(attr.kind.name, attr_id)
    return by_kind


def plot_values(values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """One float per sample to draw: the value, or the magnitude of a vector sample."""
    arr = np.asarray(values, dtype=np.float64)
    return arr if arr.ndim == 1 else np.linalg.norm(arr, axis=1)


def draw_events(fig: Any, marks: ColumnDataSource, spans: ColumnDataSource) -> None:
    """Draw condition spans (``left``, ``right``, ``colour``) and markers (``x``) on ``fig``.

    Sources shared by every plot of a page: one patch updates them all. The plot's
    ranges must follow its own renderers (``x_range.renderers``), not these.
    """
    fig.quad(
        left="left", right="right", bottom=-_TALL, top=_TALL, source=spans,
        fill_color="colour", fill_alpha=0.12, line_alpha=0,
    )  # fmt: skip
    fig.segment(
        x0="x", x1="x", y0=-_TALL, y1=_TALL, source=marks, line_color="#c0392b",
        line_width=1.5, line_dash="dashed",
    )  # fmt: skip


class SensorCard:
    """One sensor's card.

    Parameters
    ----------
    info
        The sensor.
    participant
        Who wears it (the session's participant id); ``None`` shows the sensor id.
    colour
        The participant's colour (the same dot on the phase circle).
    marks, spans
        The page's shared marker and condition-span sources (``None``: not drawn).
    on_waveform
        Called with the sensor id after the card's waveform changed.
    width, height
        Card size in CSS pixels.
    """

    def __init__(
        self,
        info: SensorInfo,
        attribute: str | None = None,
        *,
        participant: str | None = None,
        colour: str = "#1f618d",
        marks: ColumnDataSource | None = None,
        spans: ColumnDataSource | None = None,
        on_waveform: Callable[[str], None] | None = None,
        width: int = 300,
        height: int = 210,
    ) -> None:
        self.sensor_id = info.sensor_id
        self.info = info
        self.participant = participant
        self.colour = colour
        self._kinds = _by_kind(info)
        self.waveforms = [k for k in WAVEFORMS if k in self._kinds]
        self.attribute = attribute if attribute is not None else main_attribute(info)
        self.battery_attribute = self._kinds.get("battery")
        self._on_waveform = on_waveform
        self._store: RecentSamples | None = None
        # what the numbers are computed from: the newest sample time, heart rate and
        # the last RESP_KEEP_S of respiration, from every batch the card is handed
        self.last_ns: int | None = None
        self._hr: float | None = None
        self._resp_t = np.zeros(0, dtype=np.int64)
        self._resp_v = np.zeros(0, dtype=np.float64)
        self.source = ColumnDataSource(
            data={"t": np.zeros(0, dtype=np.float64), "y": np.zeros(0, dtype=np.float64)},
            name=f"card:{self.sensor_id}",
        )
        fig = figure(
            height=height - 86, width=width - 8, x_axis_type="datetime",
            toolbar_location=None, tools="", min_border=4,
        )  # fmt: skip
        if marks is not None and spans is not None:
            draw_events(fig, marks, spans)
        line = fig.line("t", "y", source=self.source, line_width=1.5, color=colour)
        fig.x_range.renderers = fig.y_range.renderers = [line]  # type: ignore[attr-defined]
        fig.xaxis.visible = False
        # The page re-ranges the plot on every frame and would send each new range (and
        # size) back: hundreds of messages a second for 10 live plots, each handled on
        # the engine loop ahead of the next update. Nothing here reads them back.
        for model in (fig, fig.x_range, fig.y_range):
            model.syncable = False
        self.figure = fig
        self.rollover = 100
        self._set_axis()
        # Bokeh Divs, not Panel HTML panes: changing a text is one property patch, where
        # re-rendering a pane makes Bokeh recompute the whole document's models.
        # fixed sizes: a new text then needs no new layout of its neighbours
        self._header = Div(text="", width=width - 8, height=22, styles={"font-size": "12px"})
        self._numbers = Div(text="", width=width - 8, height=18, styles={"font-size": "12px"})
        self._numbers_id = escape(self.sensor_id)
        self._level: AttentionLevel = AttentionLevel.NONE
        self._battery: float | None = None
        self.vitals: Vitals | None = None
        self.state = CardState.CONNECTING
        self._render_header()
        self._render_numbers()
        names = {WAVEFORMS[k]: k for k in self.waveforms} or {"none": ""}
        current = next((k for k, a in self._kinds.items() if a == self.attribute), "")
        self.select = pn.widgets.Select(
            options=names,
            value=current if current in self.waveforms else next(iter(names.values())),
            width=150, height=28, margin=(0, 4), css_classes=[f"waveform-{self.sensor_id}"],
        )  # fmt: skip
        self.select.param.watch(self._picked, "value")
        self.panel = pn.Column(
            pn.pane.Bokeh(self._header, margin=0),
            pn.pane.Bokeh(self._numbers, margin=0),
            self.select,
            pn.pane.Bokeh(fig, margin=0),
            width=width,
            height=height,
            margin=4,
            styles={"border": "1px solid #d5d8dc", "border-radius": "6px"},
        )

    @property
    def label(self) -> str:
        """What the card is called: the participant id, else the sensor id."""
        return self.participant or self.sensor_id

    @property
    def attributes(self) -> list[str]:
        """The attributes streamed to this card: its waveform, and what its numbers need."""
        wanted = (
            self.attribute,
            self.battery_attribute,
            self._kinds.get("hr"),
            self._kinds.get("respiration"),
        )
        return sorted({a for a in wanted if a is not None})

    def attribute_of(self, kind: str) -> str | None:
        """The sensor's attribute of ``kind`` (``"hr"``, ...), if it has one."""
        return self._kinds.get(kind)

    # -- waveform -----------------------------------------------------------------------

    def _picked(self, event: Any) -> None:
        self.show(str(event.new))

    def show(self, kind: str, store: RecentSamples | None = None) -> bool:
        """Show waveform ``kind``; ``False`` if the sensor has none of that kind.

        The plot restarts from ``store``'s recent samples (default: the one given to
        :meth:`backfill`), and the dashboard is told to stream the new attribute.
        """
        attr = self._kinds.get(kind)
        if attr is None or kind not in WAVEFORMS:
            return False
        if self.select.value != kind:
            self.select.value = kind  # comes back here through the watcher
            return True
        if attr == self.attribute:
            return True
        self.attribute = attr
        self._set_axis()
        self.source.data = {"t": np.zeros(0), "y": np.zeros(0)}
        store = store or self._store
        if store is not None:
            self.backfill(store)
        if self._on_waveform is not None:
            self._on_waveform(self.sensor_id)
        return True

    def _set_axis(self) -> None:
        spec = self.info.attributes.get(self.attribute) if self.attribute else None
        kind = spec.kind.name if spec is not None else ""
        rate = spec.effective_rate_hz if spec is not None else 10.0
        #: Samples kept in the browser: the waveform's window at its rate, 100 to 5000.
        self.rollover = int(min(max(rate * WINDOW_S.get(kind, 20.0), 100), 5000))
        self.figure.yaxis.axis_label = spec.effective_unit if spec is not None else ""

    def backfill(self, store: RecentSamples) -> None:
        """Start the plot from samples already recorded, before it is shown.

        A plot that first renders with no data cannot set its ranges; starting from
        what the store holds also shows a newcomer the last seconds at once.
        """
        self._store = store
        if self.attribute is None:
            return
        ts, values = store.latest(self.sensor_id, self.attribute, self.rollover)
        n = min(len(ts), self.rollover)
        if n:
            t_ms = np.asarray(ts[-n:], dtype=np.float64) / 1e6
            self.source.data = {"t": t_ms, "y": plot_values(values[-n:])}
        for kind in ("battery", "hr", "respiration"):
            attr = self._kinds.get(kind)
            if attr is not None:
                ts, values = store.latest(self.sensor_id, attr, 1000)
                if len(ts):
                    self._keep(attr, np.asarray(ts), np.asarray(values))

    def _keep(self, attr: str, ts: npt.NDArray[np.int64], values: npt.NDArray[Any]) -> None:
        """Remember what the numbers need from a batch's ``ts`` (ns) and ``values``."""
        self.last_ns = max(self.last_ns or 0, int(ts[-1]))
        if attr == self.battery_attribute:
            self._battery = float(values[-1])
        elif attr == self._kinds.get("hr"):
            self._hr = float(values[-1])
        elif attr == self._kinds.get("respiration"):
            t = np.concatenate([self._resp_t, ts.astype(np.int64)])
            v = np.concatenate([self._resp_v, plot_values(values)])
            keep = t >= t[-1] - int(RESP_KEEP_S * 1e9)
            self._resp_t, self._resp_v = t[keep], v[keep]

    def push(self, batch: Batch) -> None:
        """Take a batch of this sensor: its waveform is streamed, the rest kept for numbers.

        Must run while holding the Bokeh document's lock (a document callback).
        """
        if not len(batch):
            return
        self._keep(batch.attribute_id, batch.ts, batch.values)
        if batch.attribute_id != self.attribute:
            return
        t_ms = batch.ts.astype(np.float64) / 1e6
        self.source.stream({"t": t_ms, "y": plot_values(batch.values)}, rollover=self.rollover)

    # -- numbers and state ------------------------------------------------------------------

    @property
    def battery(self) -> float | None:
        """The last battery level seen, in percent."""
        return self._battery

    def set_status(self, level: AttentionLevel, battery: float | None = None) -> None:
        """Show the sensor's attention level (and battery), re-rendered only on change."""
        if battery is not None:
            self._battery = battery
        if level != self._level:
            self._level = level
            self._render_header()

    def measure(self, now_ns: int, *, registered: bool = True) -> Vitals:
        """The card's numbers and state now (``registered``: the engine knows the sensor)."""
        resp = self._kinds.get("respiration")
        recent = self._resp_v[self._resp_t >= now_ns - int(FLAT_WINDOW_S * 1e9)]
        flat = resp is not None and is_flat(recent)
        state = card_state(
            registered=registered,
            last_ns=self.last_ns,
            now_ns=now_ns,
            flat=flat,
            battery=self._battery,
        )
        quality = "no signal" if self.last_ns is None else ("flat" if flat else "good")
        br = breaths_per_minute(self._resp_t, self._resp_v) if len(self._resp_t) else None
        return Vitals(self._hr, br, self._battery, quality, state)

    def set_vitals(self, vitals: Vitals) -> None:
        """Show new numbers and state (texts re-rendered only when they read differently)."""
        changed_state = vitals.state != self.state
        self.vitals, self.state = vitals, vitals.state
        if changed_state:
            self._render_header()
        self._render_numbers()

    def _render_header(self) -> None:
        colour, border = STATE_STYLE[self.state]
        who = escape(self.label)
        sub = (
            ""
            if self.participant is None
            else f" <span style='color:#566573'>{escape(self.sensor_id)}</span>"
        )
        text = (
            f"<div data-sensor='{escape(self.sensor_id)}' "
            f"style='border-left:6px {border} {colour};padding-left:6px'>"
            f"<span style='color:{self.colour}'>●</span> <b style='font-size:13px'>{who}</b>{sub} "
            f"<span class='card-state' data-state='{self.state.name.lower()}' "
            f"style='background:{colour};color:white;border-radius:3px;padding:0 4px'>"
            f"{self.state.value}</span> "
            f"<span style='color:#95a5a6'>attention {self._level.label}</span></div>"
        )
        if text != self._header.text:  # every new text makes the page lay the card out
            self._header.text = text

    def _render_numbers(self) -> None:
        v = self.vitals

        def num(x: float | None, fmt: str) -> str:
            return "–" if x is None else format(x, fmt)

        battery = self._battery if v is None or v.battery is None else v.battery
        text = (
            f"<span data-numbers='{self._numbers_id}'>"
            f"<b>{num(v.hr_bpm if v else None, '.0f')}</b> bpm · "
            f"<b>{num(v.br_per_min if v else None, '.1f')}</b> br/min · "
            f"battery {num(battery, '.0f')}% · signal {v.quality if v else 'no signal'}</span>"
        )
        if text != self._numbers.text:
            self._numbers.text = text
