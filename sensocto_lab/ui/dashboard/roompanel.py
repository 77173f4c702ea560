"""The room panel: the group's synchrony now, over time, and per condition.

- a gauge of the Kuramoto R now (the ``sync:{room}`` sensor, see
  :mod:`sensocto_lab.engine.synchrony`);
- a phase circle, one dot per participant in the colour of its card, moved at
  :data:`PHASE_HZ` by extrapolating each participant's phase from the two newest
  estimates (the estimate itself comes at 2 Hz and describes the group ``lag_s`` ago);
- R(t) on a wall-clock axis (``HH:MM:SS``, few ticks: labels never overlap), with the
  experiment's markers and condition spans drawn on it;
- the condition running now as a banner, recent markers, and R per condition so far
  (:func:`condition_means`: mean ± 95 % CI over 5-s block means).

Markers and spans live in two :class:`ColumnDataSource` s shared with every card's plot.
Labels are shown escaped everywhere.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import numpy.typing as npt
from bokeh.models import ColumnDataSource, DatetimeTicker, DatetimeTickFormatter, Range1d
from bokeh.models.widgets import Div
from bokeh.plotting import figure

from sensocto_lab.events import Event, condition_phase
from sensocto_lab.model import Batch
from sensocto_lab.ui.dashboard.cards import draw_events

__all__ = ["PHASE_HZ", "RoomPanel", "Span", "condition_colour", "condition_means"]

#: Points of R(t) kept in the page, and the time span shown, in ms.
SYNC_ROLLOVER = 2000
SYNC_WINDOW_MS = 300_000.0
#: How often the phase circle moves, Hz.
PHASE_HZ = 10.0
#: Block length of the per-condition confidence interval, s: R at 2 Hz is strongly
#: autocorrelated, block means far less, so their spread gives an honest interval.
BLOCK_S = 5.0

_CONDITION_COLOURS = {"baseline": "#5d6d7e", "task": "#e67e22", "recovery": "#27ae60"}
_PALETTE = ("#2e86c1", "#8e44ad", "#16a085", "#d35400", "#c0392b", "#7f8c8d")


def condition_colour(label: str) -> str:
    """The colour a condition is drawn in (fixed for the demo's, else from its name)."""
    return _CONDITION_COLOURS.get(label, _PALETTE[zlib.crc32(label.encode()) % len(_PALETTE)])


@dataclass
class Span:
    """One condition of the room: ``label`` from ``start_ns`` to ``end_ns`` (``None``: running)."""

    label: str
    start_ns: int
    end_ns: int | None = None


def condition_means(
    t_ns: npt.NDArray[np.int64],
    r: npt.NDArray[np.float64],
    spans: Iterable[Span],
    now_ns: int,
    block_s: float = BLOCK_S,
) -> dict[str, tuple[float, float, int]]:
    """R per condition label so far: ``{label: (mean, half-width of 95 % CI, blocks)}``.

    Each span is cut into ``block_s`` blocks; a block's mean is one observation, and
    every occurrence of a label pools its blocks. With one block the half-width is NaN.
    """
    t = np.asarray(t_ns, dtype=np.int64)
    y = np.asarray(r, dtype=np.float64)
    blocks: dict[str, list[float]] = {}
    step = int(block_s * 1e9)
    for span in spans:
        end = now_ns if span.end_ns is None else span.end_ns
        inside = (t >= span.start_ns) & (t < end) & np.isfinite(y)
        if not inside.any():
            continue
        index = (t[inside] - span.start_ns) // step
        values = y[inside]
        means = [float(values[index == i].mean()) for i in np.unique(index)]
        blocks.setdefault(span.label, []).extend(means)
    out: dict[str, tuple[float, float, int]] = {}
    for label, means in blocks.items():
        k = len(means)
        mean = float(np.mean(means))
        half = 1.96 * float(np.std(means, ddof=1)) / math.sqrt(k) if k > 1 else float("nan")
        out[label] = (mean, half, k)
    return out


class RoomPanel:
    """The room's synchrony side panel of one dashboard session (document-lock only).

    Parameters
    ----------
    colours
        Each participant's colour by sensor id (the cards' colours).
    has_sync
        Whether the room's synchrony sensor exists (else the R parts say so).
    now_ms
        Now, ms since the epoch (R(t)'s first range).
    width
        Panel width, CSS pixels.
    """

    def __init__(
        self, colours: dict[str, str], *, has_sync: bool, now_ms: float, width: int = 430
    ) -> None:
        self.colours = colours
        self.has_sync = has_sync
        self.marks = ColumnDataSource(data={"x": [], "label": []}, name="room-marks")
        self.spans = ColumnDataSource(
            data={"left": [], "right": [], "colour": [], "label": []}, name="room-spans"
        )
        self.conditions: list[Span] = []
        self.markers: list[Event] = []
        self.sync_source = ColumnDataSource(
            data={"t": np.zeros(0, dtype=np.float64), "y": np.zeros(0, dtype=np.float64)},
            name="room-sync",
        )
        self.phase_source = ColumnDataSource(
            data={"x": [], "y": [], "colour": [], "sensor": []}, name="room-phases"
        )
        self._r_t: list[int] = []
        self._r_v: list[float] = []
        self._phases: tuple[int, tuple[str, ...], npt.NDArray[np.float64]] | None = None
        self._omega: npt.NDArray[np.float64] | None = None
        self.r_now: float | None = None
        self.gauge = Div(text="", width=width)
        self.banner = Div(text="", width=width, name="room-banner")
        self.by_condition = Div(text="", width=width, name="room-by-condition")
        self.recent = Div(text="", width=width, styles={"font-size": "12px"})
        self._sync_x = Range1d(start=now_ms - SYNC_WINDOW_MS, end=now_ms)
        self.sync_figure = self._r_figure(width)
        self.phase_figure = self._circle_figure()
        self.show_r(None)
        self.render_banner(int(now_ms * 1e6))
        self._render_recent()
        self.by_condition.text = (
            "<b>R per condition</b><br><span style='color:#566573'>no condition yet</span>"
        )

    # -- figures --------------------------------------------------------------------------

    def _r_figure(self, width: int) -> Any:
        # explicit x range following the newest R: a plot with an automatic range and no
        # data yet stops every plot on the page from painting (Bokeh 3.9)
        fig = figure(
            height=170, width=width, x_axis_type="datetime", x_range=self._sync_x,
            y_range=Range1d(start=0, end=1), toolbar_location=None, tools="", min_border=8,
        )  # fmt: skip
        draw_events(fig, self.marks, self.spans)
        fig.line("t", "y", source=self.sync_source, line_width=2, color="#7d3c98")
        fig.yaxis.axis_label = "R(t)"
        # wall clock, one format for every zoom, few ticks: labels never overlap
        fmt = "%H:%M:%S"
        fig.xaxis.formatter = DatetimeTickFormatter(
            milliseconds=fmt, seconds=fmt, minsec=fmt, minutes="%H:%M", hourmin="%H:%M",
            hours="%H:%M", context=None,
        )  # fmt: skip
        fig.xaxis.ticker = DatetimeTicker(desired_num_ticks=4)
        fig.xaxis.major_label_orientation = 0
        return fig

    def _circle_figure(self) -> Any:
        fig = figure(
            height=200, width=200, x_range=Range1d(start=-1.25, end=1.25),
            y_range=Range1d(start=-1.25, end=1.25),
            toolbar_location=None, tools="", min_border=4, match_aspect=True,
        )  # fmt: skip
        angle = np.linspace(0, 2 * np.pi, 121)
        fig.line(np.cos(angle), np.sin(angle), color="#bdc3c7")
        fig.scatter("x", "y", source=self.phase_source, size=11, color="colour", line_color="white")
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        return fig

    # -- synchrony ----------------------------------------------------------------------

    def backfill_sync(self, ts: npt.NDArray[np.int64], r: npt.NDArray[Any]) -> None:
        """Start R(t) (and the per-condition means) from recorded R, before it is shown."""
        if not len(ts):
            return
        values = np.asarray(r, dtype=np.float64).reshape(len(ts), -1)[:, 0]
        self._r_t, self._r_v = [int(x) for x in ts], [float(x) for x in values]
        keep = slice(-SYNC_ROLLOVER, None)
        self.sync_source.data = {"t": ts[keep] / 1e6, "y": values[keep]}
        self.show_r(float(values[-1]))
        self._follow(float(ts[-1]) / 1e6)

    def push_sync(self, batch: Batch) -> None:
        """Stream new R samples into the gauge and R(t)."""
        if not len(batch):
            return
        values = np.asarray(batch.values, dtype=np.float64).reshape(len(batch), -1)[:, 0]
        self._r_t.extend(int(x) for x in batch.ts)
        self._r_v.extend(float(x) for x in values)
        self.sync_source.stream({"t": batch.ts / 1e6, "y": values}, rollover=SYNC_ROLLOVER)
        self.show_r(float(values[-1]))
        self._follow(float(batch.ts[-1]) / 1e6)

    def _follow(self, last_ms: float) -> None:
        """Show R(t) up to ``last_ms``: the last SYNC_WINDOW_MS, or all there is if less."""
        t = self.sync_source.data["t"]
        first = float(t[0]) if len(t) else last_ms
        start = max(first, last_ms - SYNC_WINDOW_MS)
        self._sync_x.update(start=min(start, last_ms - 1000.0), end=last_ms)

    def show_r(self, r: float | None) -> None:
        """The gauge: R now as a number and a bar."""
        self.r_now = r
        if not self.has_sync:
            self.gauge.text = (
                "<div style='color:#566573'>Room synchrony: not computed for this room</div>"
            )
            return
        shown = "–" if r is None else f"{r:.2f}"
        pct = 0 if r is None else round(100 * min(max(r, 0.0), 1.0))
        self.gauge.text = (
            "<div style='color:#566573'>Room synchrony R</div>"
            f"<div class='room-r' style='font-size:28pt;color:#7d3c98'>{shown}</div>"
            "<div style='background:#ebedef;height:10px;border-radius:5px'>"
            f"<div style='background:#7d3c98;width:{pct}%;height:10px;border-radius:5px'>"
            "</div></div>"
        )

    def set_phases(
        self, t_ns: int, sensors: Sequence[str], phases: npt.NDArray[np.float64]
    ) -> None:
        """A new synchrony estimate: each participant's phase (rad) at ``t_ns``."""
        sensors = tuple(sensors)
        phases = np.asarray(phases, dtype=np.float64)
        prev = self._phases
        if prev is not None and prev[1] == sensors and t_ns > prev[0]:
            dphi = np.angle(np.exp(1j * (phases - prev[2])))  # wrapped to (-π, π]
            self._omega = dphi / ((t_ns - prev[0]) / 1e9)
        elif prev is None or prev[1] != sensors:
            self._omega = None
        self._phases = (t_ns, sensors, phases)

    def move_phases(self, now_ns: int) -> None:
        """Draw the dots where the participants are now (extrapolated from the newest estimate)."""
        if self._phases is None:
            return
        t_ns, sensors, phases = self._phases
        now = phases
        if self._omega is not None:
            now = phases + self._omega * min((now_ns - t_ns) / 1e9, 5.0)
        ok = np.isfinite(now)
        self.phase_source.data = {
            "x": np.cos(now[ok]),
            "y": np.sin(now[ok]),
            "colour": [
                self.colours.get(s, "#7f8c8d") for s, k in zip(sensors, ok, strict=True) if k
            ],
            "sensor": [s for s, k in zip(sensors, ok, strict=True) if k],
        }

    # -- the experiment -------------------------------------------------------------------

    def backfill_events(self, events: Iterable[Event]) -> None:
        """Start from the room's recorded events (running conditions folded, or halves)."""
        for event in events:
            self.on_event(event, redraw=False)
        self._redraw_events()

    def on_event(self, event: Event, *, redraw: bool = True) -> None:
        """Draw a marker or a condition's begin or end as it is recorded."""
        phase = condition_phase(event.kind, event.value)
        if event.kind == "marker":
            self.markers.append(event)
        elif phase == "begin":
            self.conditions.append(Span(event.label, event.onset_ns))
        elif phase == "end":
            for span in reversed(self.conditions):
                if span.label == event.label and span.end_ns is None:
                    span.end_ns = event.onset_ns
                    break
        elif event.kind == "condition":  # one already over (or folded from the store)
            end = (
                None
                if not math.isfinite(event.duration_s)
                else event.onset_ns + int(event.duration_s * 1e9)
            )
            self.conditions.append(Span(event.label, event.onset_ns, end))
        else:
            return
        if redraw:
            self._redraw_events()

    def _redraw_events(self) -> None:
        self.marks.data = {
            "x": [m.onset_ns / 1e6 for m in self.markers],
            "label": [m.label for m in self.markers],
        }
        self._redraw_spans(None)
        self._render_recent()

    def _redraw_spans(self, now_ns: int | None) -> None:
        now_ms = (now_ns / 1e6) if now_ns is not None else None
        right = [
            (s.end_ns / 1e6) if s.end_ns is not None else (now_ms or s.start_ns / 1e6 + 1.0)
            for s in self.conditions
        ]
        self.spans.data = {
            "left": [s.start_ns / 1e6 for s in self.conditions],
            "right": right,
            "colour": [condition_colour(s.label) for s in self.conditions],
            "label": [s.label for s in self.conditions],
        }

    def running(self) -> list[Span]:
        """The conditions running now, the one begun last at the end."""
        return [s for s in self.conditions if s.end_ns is None]

    def tick(self, now_ns: int) -> None:
        """Once a second or so: open spans reach now, the banner and R per condition."""
        if self.running():
            self._redraw_spans(now_ns)
        self.render_banner(now_ns)
        means = condition_means(
            np.asarray(self._r_t), np.asarray(self._r_v), self.conditions, now_ns
        )
        if means:
            rows = "".join(
                f"<tr data-condition='{escape(label)}'>"
                f"<td><span style='color:{condition_colour(label)}'>■</span> "
                f"{escape(label)}</td>"
                f"<td style='text-align:right'>{m:.2f}</td>"
                f"<td>± {'–' if math.isnan(h) else f'{h:.2f}'}</td>"
                f"<td style='color:#566573'>{k} × {BLOCK_S:g} s</td></tr>"
                for label, (m, h, k) in sorted(means.items())
            )
            text = (
                "<b>R per condition</b> (mean ± 95 % CI)"
                f"<table style='font-size:12px'>{rows}</table>"
            )
            if text != self.by_condition.text:
                self.by_condition.text = text

    def render_banner(self, now_ns: int) -> None:
        """The condition running now, and for how long."""
        running = self.running()
        if running:
            span = running[-1]
            secs = max(0, (now_ns - span.start_ns) // 10**9)
            colour = condition_colour(span.label)
            text = (
                f"<div class='room-condition' style='background:{colour};color:white;"
                "padding:4px 10px;"
                f"border-radius:4px;font-size:15px'>Condition: <b>{escape(span.label)}</b> · "
                f"{secs // 60}:{secs % 60:02d}</div>"
            )
        else:
            text = (
                "<div class='room-condition' style='background:#ebedef;padding:4px 10px;"
                "border-radius:4px;font-size:15px'>No condition running</div>"
            )
        if text != self.banner.text:
            self.banner.text = text

    def _render_recent(self) -> None:
        last = self.markers[-5:][::-1]
        items = "".join(
            f"<li>{_clock(m.onset_ns)} {escape(m.label)} "
            f"<span style='color:#95a5a6'>{escape(m.source)}</span></li>"
            for m in last
        )
        self.recent.text = (
            f"<b>Markers</b> ({len(self.markers)})<ul style='margin:2px 0'>{items}</ul>"
        )


def _clock(ns: int) -> str:
    """``HH:MM:SS`` UTC of ``ns`` since the epoch."""
    secs = (ns // 10**9) % 86400
    return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
