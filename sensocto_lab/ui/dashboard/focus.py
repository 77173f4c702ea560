"""The focus view: one participant, large, every attribute, the last minutes of history.

Opened by clicking a card (see ``visibility.js``); while it is open the dashboard
views that sensor at ``HIGH`` attention (the engine sends it at the high tier's
rate) and streams all its attributes here. Built once per session and shown or
hidden, so opening it adds no models to the page (a model added while the page
streams is one the page may not know yet).
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

import numpy as np
import numpy.typing as npt
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div
from bokeh.plotting import figure

from sensocto_lab.engine.contracts import RecentSamples
from sensocto_lab.model import Batch
from sensocto_lab.ui.dashboard.cards import WAVEFORMS, SensorCard, draw_events, plot_values
from sensocto_lab.ui.dashboard.vitals import STATE_STYLE, Vitals

__all__ = ["FOCUS_WINDOW_S", "FocusView"]

_log = logging.getLogger(__name__)

#: Seconds of history the focus view shows per kind.
FOCUS_WINDOW_S = {
    "respiration": 180.0,
    "ecg": 10.0,
    "hr": 300.0,
    "rr": 300.0,
    "accelerometer": 30.0,
}


class FocusView:
    """The focus view of one dashboard session (document-lock only).

    Parameters
    ----------
    marks, spans
        The page's shared marker and condition-span sources.
    width
        Width of the view, CSS pixels.
    """

    def __init__(self, marks: ColumnDataSource, spans: ColumnDataSource, width: int = 900) -> None:
        self.sensor_id: str | None = None
        self._card: SensorCard | None = None
        self.sources: dict[str, ColumnDataSource] = {}
        self.figures: dict[str, Any] = {}
        self._rollover: dict[str, int] = {}
        for kind, title in WAVEFORMS.items():
            source = ColumnDataSource(
                data={"t": np.zeros(0, dtype=np.float64), "y": np.zeros(0, dtype=np.float64)},
                name=f"focus:{kind}",
            )
            fig = figure(
                height=130, width=width - 20, x_axis_type="datetime", title=title,
                toolbar_location=None, tools="", min_border=4,
            )  # fmt: skip
            draw_events(fig, marks, spans)
            line = fig.line("t", "y", source=source, line_width=1.5)
            fig.x_range.renderers = fig.y_range.renderers = [line]  # type: ignore[attr-defined]
            for model in (fig, fig.x_range, fig.y_range):
                model.syncable = False
            self.sources[kind], self.figures[kind], self._line = source, fig, line
        self.title = Div(text="", width=width - 140, name="focus-title")
        self.numbers = Div(text="", width=width - 20, styles={"font-size": "20px"})
        self.close_button = pn.widgets.Button(label="Close (Esc)", width=110)
        self.panel = pn.Column(
            pn.Row(pn.pane.Bokeh(self.title, margin=0), self.close_button),
            pn.pane.Bokeh(self.numbers, margin=0),
            *(pn.pane.Bokeh(f, margin=0) for f in self.figures.values()),
            visible=False,
            width=width,
            styles={"border": "2px solid #2e86c1", "border-radius": "8px", "background": "white"},
        )

    @property
    def attributes(self) -> list[str]:
        """Attributes streamed to the focus view (all of the focused sensor's)."""
        return sorted(self._card.info.attributes) if self._card is not None else []

    def open(self, card: SensorCard, store: RecentSamples, now_ns: int) -> None:
        """Show ``card``'s participant, from what the store holds of the last minutes."""
        self.sensor_id, self._card = card.sensor_id, card
        for kind, fig in self.figures.items():
            attr = card.attribute_of(kind)
            fig.visible = attr is not None
            data = {"t": np.zeros(0), "y": np.zeros(0)}
            if attr is not None:
                spec = card.info.attributes[attr]
                window = FOCUS_WINDOW_S[kind]
                self._rollover[kind] = int(min(max(spec.effective_rate_hz * window, 100), 40_000))
                ts, values = _recent(store, card.sensor_id, attr, now_ns - int(window * 1e9))
                fig.yaxis.axis_label = spec.effective_unit
                if len(ts):
                    data = {"t": ts / 1e6, "y": plot_values(values)}
            self.sources[kind].data = data
        self.set_vitals(card)
        self.panel.visible = True

    def close(self) -> None:
        """Hide the view; nothing is streamed to it any more."""
        self.sensor_id = self._card = None
        self.panel.visible = False

    def push(self, batch: Batch) -> None:
        """Stream a batch of the focused sensor into its plot."""
        card = self._card
        if card is None or batch.sensor_id != self.sensor_id or not len(batch):
            return
        spec = card.info.attributes.get(batch.attribute_id)
        if (
            spec is None
            or spec.kind.name not in self.sources
            or card.attribute_of(spec.kind.name) != batch.attribute_id
        ):
            return
        kind = spec.kind.name
        self.sources[kind].stream(
            {"t": batch.ts.astype(np.float64) / 1e6, "y": plot_values(batch.values)},
            rollover=self._rollover.get(kind, 1000),
        )

    def set_vitals(self, card: SensorCard) -> None:
        """Show the focused card's numbers, large."""
        if card is not self._card:
            return
        v: Vitals | None = card.vitals
        colour, _ = STATE_STYLE[card.state]
        sub = (
            ""
            if card.participant is None
            else f" <span style='color:#566573;font-size:14px'>{escape(card.sensor_id)}</span>"
        )
        title = (
            f"<div data-focus='{escape(card.sensor_id)}' style='font-size:24px'>"
            f"<span style='color:{card.colour}'>●</span> "
            f"<b>{escape(card.label)}</b>{sub} <span class='card-state' style='background:{colour};"
            "color:white;border-radius:3px;padding:0 6px;font-size:16px'>"
            f"{card.state.value}</span></div>"
        )
        if title != self.title.text:
            self.title.text = title

        def num(x: float | None, fmt: str) -> str:
            return "–" if x is None else format(x, fmt)

        numbers = (
            f"heart rate <b>{num(v.hr_bpm if v else None, '.0f')}</b> bpm · "
            f"breathing <b>{num(v.br_per_min if v else None, '.1f')}</b> /min · "
            f"battery <b>{num(card.battery, '.0f')}</b> % · "
            f"signal <b>{v.quality if v else 'no signal'}</b>"
        )
        if numbers != self.numbers.text:
            self.numbers.text = numbers


def _recent(
    store: Any, sensor_id: str, attribute: str, start_ns: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Samples since ``start_ns``: the store's history if it has one, else its memory."""
    history = getattr(store, "history", None)
    if history is not None:
        try:
            ds = history(sensors=[sensor_id], attributes=[attribute], start=start_ns)
            da = ds[attribute].sel(sensor=sensor_id)
            values = np.asarray(da.values, dtype=np.float64)
            ts = np.asarray(da["time"].values).astype("datetime64[ns]").astype(np.int64)
            ok = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
            if ok.any():
                return ts[ok], values[ok]
        except Exception:  # a history that cannot be read: fall back to memory, say so
            _log.warning(
                "focus view: history of %s/%s unreadable", sensor_id, attribute, exc_info=True
            )
    ts, values = store.latest(sensor_id, attribute)
    keep = np.asarray(ts) >= start_ns
    return np.asarray(ts)[keep], np.asarray(values)[keep]
