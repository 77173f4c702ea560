"""A sensor card: a live Bokeh plot of the sensor's main attribute, its attention and battery.

The card owns a :class:`bokeh.models.ColumnDataSource` with columns ``t``
(device time, ms since the epoch, as Bokeh's datetime axis wants) and ``y``; new
samples are streamed in as numpy arrays with a rollover, so the page only ever
holds the last ``window_s`` seconds. The card does not subscribe to anything:
the dashboard's lens hands it batches (see :mod:`sensocto_lab.engine.lens`).
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
import numpy.typing as npt
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div
from bokeh.plotting import figure

from sensocto_lab.model import AttentionLevel, Batch, SensorInfo

__all__ = ["MAIN_KIND_ORDER", "SensorCard", "main_attribute", "plot_values"]

#: Which attribute a card plots: the first kind in this order that the sensor has.
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

_LEVEL_COLOURS = {
    AttentionLevel.HIGH: "#c0392b",
    AttentionLevel.MEDIUM: "#d68910",
    AttentionLevel.LOW: "#2471a3",
    AttentionLevel.NONE: "#7f8c8d",
}


def main_attribute(info: SensorInfo) -> str | None:
    """The attribute id a card for ``info`` plots, or ``None`` if it has nothing plottable."""
    by_kind: dict[str, str] = {}
    for attr_id, attr in sorted(info.attributes.items()):
        by_kind.setdefault(attr.kind.name, attr_id)
    for kind in MAIN_KIND_ORDER:
        if kind in by_kind:
            return by_kind[kind]
    return None


def plot_values(values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """One float per sample to draw: the value, or the magnitude of a vector sample."""
    arr = np.asarray(values, dtype=np.float64)
    return arr if arr.ndim == 1 else np.linalg.norm(arr, axis=1)


class SensorCard:
    """One sensor's card.

    Parameters
    ----------
    info
        The sensor.
    attribute
        The attribute plotted (default: :func:`main_attribute`).
    window_s
        Seconds of data kept in the plot.
    width, height
        Card size in CSS pixels.
    """

    def __init__(
        self,
        info: SensorInfo,
        attribute: str | None = None,
        *,
        window_s: float = 20.0,
        width: int = 300,
        height: int = 150,
    ) -> None:
        self.sensor_id = info.sensor_id
        self.attribute = attribute if attribute is not None else main_attribute(info)
        spec = info.attributes.get(self.attribute) if self.attribute else None
        rate = spec.effective_rate_hz if spec is not None else 10.0
        #: Samples kept in the browser: ``window_s`` at the nominal rate, 100 to 5000.
        self.rollover = int(min(max(rate * window_s, 100), 5000))
        self.battery_attribute = next(
            (a_id for a_id, a in info.attributes.items() if a.kind.name == "battery"), None
        )
        self.source = ColumnDataSource(
            data={"t": np.zeros(0, dtype=np.float64), "y": np.zeros(0, dtype=np.float64)},
            name=f"card:{self.sensor_id}",
        )
        fig = figure(
            height=height - 48,
            width=width,
            x_axis_type="datetime",
            toolbar_location=None,
            tools="",
            min_border=4,
        )
        fig.line("t", "y", source=self.source, line_width=1.5, color="#1f618d")
        fig.yaxis.axis_label = spec.effective_unit if spec is not None else ""
        fig.xaxis.visible = False
        # The page re-ranges the plot on every frame and would send each new range (and
        # size) back: hundreds of messages a second for 10 live plots, each handled on
        # the engine loop ahead of the next update. Nothing here reads them back.
        for model in (fig, fig.x_range, fig.y_range):
            model.syncable = False
        self.figure = fig
        unit = f" ({spec.effective_unit})" if spec is not None else ""
        # A Bokeh Div, not a Panel HTML pane: changing its text is one property patch,
        # where re-rendering a pane makes Bokeh recompute the whole document's models.
        self._header = Div(text="", width=width - 8, styles={"font-size": "12px"})
        self._subtitle = escape(f"{info.name} {self.attribute or 'no plottable attribute'}{unit}")
        self._level: AttentionLevel | None = None
        self._battery: float | None = None
        self.set_status(AttentionLevel.NONE, None)
        self.panel = pn.Column(
            pn.pane.Bokeh(self._header, margin=0),
            pn.pane.Bokeh(fig, margin=0),
            width=width,
            height=height,
            margin=4,
            styles={"border": "1px solid #d5d8dc", "border-radius": "6px"},
        )

    @property
    def attributes(self) -> list[str]:
        """The attributes this card draws from (plotted attribute and battery)."""
        return [a for a in (self.attribute, self.battery_attribute) if a is not None]

    def backfill(self, ts: npt.NDArray[np.int64], values: npt.NDArray[Any]) -> None:
        """Start the plot from samples already recorded (``ts`` in ns), before it is shown.

        A plot that first renders with no data cannot set its ranges; starting from
        what the store holds also shows a newcomer the last seconds at once.
        """
        n = min(len(ts), self.rollover)
        if n:
            t_ms = np.asarray(ts[-n:], dtype=np.float64) / 1e6
            self.source.data = {"t": t_ms, "y": plot_values(values[-n:])}

    def push(self, batch: Batch) -> None:
        """Draw a batch of this sensor (plotted attribute: stream; battery: status line).

        Must run while holding the Bokeh document's lock (a document callback).
        """
        if batch.attribute_id == self.battery_attribute and len(batch):
            self.set_status(self._level or AttentionLevel.NONE, float(batch.values[-1]))
        if batch.attribute_id != self.attribute or not len(batch):
            return
        t_ms = batch.ts.astype(np.float64) / 1e6
        self.source.stream({"t": t_ms, "y": plot_values(batch.values)}, rollover=self.rollover)

    def set_status(self, level: AttentionLevel, battery: float | None) -> None:
        """Show the sensor's attention level and battery (only re-rendered on change)."""
        if level == self._level and battery == self._battery:
            return
        self._level, self._battery = level, battery
        colour = _LEVEL_COLOURS[level]
        batt = "" if battery is None else f" · battery {battery:.0f}%"
        text = (
            f"<b style='font-size:13px'>{self.sensor_id}</b> "
            f"<span style='color:{colour}'>attention {level.label}</span>{batt}"
            f"<br><span style='color:#566573'>{self._subtitle}</span>"
        )
        # every new text makes the page lay the card out again: only when it reads differently
        if text != self._header.text:
            self._header.text = text

    @property
    def battery(self) -> float | None:
        """The last battery level shown, in percent."""
        return self._battery
