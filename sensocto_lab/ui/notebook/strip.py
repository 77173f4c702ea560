"""A live strip plot of several sensor channels (canvas), for notebooks and Panel.

Feed it with :meth:`StripWidget.update` (one channel's new samples) or
:meth:`StripWidget.update_batch` (an engine :class:`~sensocto_lab.model.Batch`), from any
thread, or let it follow engine sensors with :meth:`StripWidget.follow`. It keeps the last
``window_s`` seconds of each channel in Python and sends the window (decimated to at most
``max_points`` per channel) at most ``max_hz`` times per second.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import traitlets

from sensocto_lab.clock import Clock
from sensocto_lab.engine import topics
from sensocto_lab.errors import ConfigError, ValidationError
from sensocto_lab.model import Batch, check_id
from sensocto_lab.ui.notebook._coalesce import Coalescer, Schedule
from sensocto_lab.ui.notebook._events import EventLayer
from sensocto_lab.ui.notebook._feed import BusFeed
from sensocto_lab.ui.notebook._wire import as_f32_1d, esm_source, f32_bytes, panel_twin

__all__ = ["StripWidget"]

_SYNCED = (
    "times",
    "values",
    "offsets",
    "channels",
    "units",
    "title",
    "t_span_s",
    "px_width",
    "lane_px",
    "events",
    "t_ref",
)


@dataclass(slots=True)
class _Channel:
    unit: str
    ts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    values: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))


class StripWidget(EventLayer):
    """Several live signals, one lane each, newest at the right.

    Parameters
    ----------
    window_s
        Seconds of signal shown.
    max_points
        Most points sent per channel (older-to-newer stride decimation beyond it).
    title
        Shown above the lanes.
    max_hz, clock, schedule
        Rate limit of browser updates; see :class:`.sync_widget.SyncWidget`.
    width, lane_height
        Canvas width and height of one lane, in CSS pixels.

    Synced state
    ------------
    ``channels``/``units`` (names), ``offsets`` (``len(channels) + 1`` indices into the
    concatenated arrays), ``times`` (float32 bytes, seconds relative to the newest sample
    over all channels, ≤ 0), ``values`` (float32 bytes); ``events`` and ``t_ref`` (the
    newest sample, epoch s): markers and conditions, see :mod:`._events`
    (:meth:`show_events`, :meth:`follow_events`).
    """

    _esm = esm_source("strip")

    times = traitlets.Bytes(b"").tag(sync=True)
    values = traitlets.Bytes(b"").tag(sync=True)
    offsets = traitlets.List(traitlets.Int(), default_value=[0]).tag(sync=True)
    channels = traitlets.List(traitlets.Unicode(), default_value=[]).tag(sync=True)
    units = traitlets.List(traitlets.Unicode(), default_value=[]).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    t_span_s = traitlets.Float(10.0).tag(sync=True)
    px_width = traitlets.Int(640).tag(sync=True)
    lane_px = traitlets.Int(70).tag(sync=True)

    def __init__(
        self,
        *,
        window_s: float = 10.0,
        max_points: int = 2000,
        title: str = "",
        max_hz: float = 15.0,
        clock: Clock | None = None,
        schedule: Schedule | None = None,
        width: int = 640,
        lane_height: int = 70,
    ) -> None:
        self._feeds: list[BusFeed] = []  # first: close() runs even if __init__ fails
        # the widget is built before the checks: a half-built ipywidget fails in __del__
        super().__init__(t_span_s=float(window_s), title=title, px_width=width, lane_px=lane_height)
        if not (math.isfinite(window_s) and window_s > 0):
            self.close()
            raise ConfigError(f"window_s must be a positive number of seconds, got {window_s!r}")
        if max_points < 2:
            self.close()
            raise ConfigError(f"max_points must be at least 2, got {max_points}")
        self.max_points = max_points
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        self.coalescer = Coalescer(self._flush, max_hz=max_hz, clock=clock, schedule=schedule)

    def update(
        self, channel: str, ts: npt.ArrayLike, values: npt.ArrayLike, *, unit: str = ""
    ) -> None:
        """Append samples to ``channel`` (created on first use); safe from any thread.

        Parameters
        ----------
        channel
            Lane name, e.g. ``"sim-room-0/respiration"``.
        ts
            ``int64`` ns since the epoch, shape ``(n,)``, non-decreasing.
        values
            Scalar samples, shape ``(n,)`` (pick one component of vector kinds).
        unit
            Physical unit shown in the lane label (set on first use).

        Raises
        ------
        ValidationError
            Mismatched lengths, non-finite values, not 1-D, or timestamps going backwards
            (within the call or before the channel's last sample). Nothing is appended then.
        """
        ts_arr = np.asarray(ts)
        if ts_arr.ndim != 1 or not np.issubdtype(ts_arr.dtype, np.integer):
            raise ValidationError(
                "ts must be a 1-D array of int64 ns since the epoch", reason="invalid_timestamp"
            )
        ts_arr = ts_arr.astype(np.int64, copy=False)
        vals = as_f32_1d(values, f"values of {channel!r}")
        if len(vals) != len(ts_arr):
            raise ValidationError(
                f"{len(ts_arr)} timestamps but {len(vals)} values", reason="invalid_shape"
            )
        if len(ts_arr) > 1 and (np.diff(ts_arr) < 0).any():
            raise ValidationError("timestamps must not go backwards", reason="unordered_timestamps")
        if len(ts_arr) == 0:
            return
        with self._lock:
            ch = self._channels.get(channel)
            if ch is not None and len(ch.ts) and ts_arr[0] < ch.ts[-1]:
                raise ValidationError(
                    f"samples for {channel!r} start before its last sample",
                    reason="unordered_timestamps",
                )
            if ch is None:
                ch = self._channels[channel] = _Channel(unit)
            ts_all = np.concatenate([ch.ts, ts_arr])
            keep = ts_all >= ts_all[-1] - round(self.t_span_s * 1e9)
            ch.ts = ts_all[keep]
            ch.values = np.concatenate([ch.values, vals])[keep]
        self.coalescer.request()

    def update_batch(self, batch: Batch, *, component: int | None = None, unit: str = "") -> None:
        """Append an engine batch to the lane ``"{sensor_id}/{attribute_id}"``.

        Vector batches need ``component`` (the column to plot); its index is added to the
        lane name.
        """
        values = np.asarray(batch.values)
        name = f"{batch.sensor_id}/{batch.attribute_id}"
        if values.ndim == 2:
            if component is None:
                raise ValidationError(
                    f"{name} has {values.shape[1]} components; pass component=<column>",
                    reason="invalid_shape",
                )
            values = values[:, component]
            name = f"{name}[{component}]"
        self.update(name, batch.ts, values, unit=unit)

    def follow(
        self, bus: Any, sensors: Iterable[str], attribute: str, *, component: int | None = None
    ) -> BusFeed:
        """Plot ``attribute`` of each of ``sensors`` as the engine publishes it.

        Subscribes to ``data:{sensor}`` on the engine's bus (``engine.bus``) and appends
        the matching batches. Returns the running :class:`BusFeed`; :meth:`close` (or
        ``feed.close()``) stops it.
        """
        check_id(attribute, "attribute_id")
        wanted = set(sensors)

        def on_message(batch: Any) -> None:
            if isinstance(batch, Batch) and batch.attribute_id == attribute:
                self.update_batch(batch, component=component)

        return self._follow(bus, [topics.data(s) for s in sorted(wanted)], on_message)

    def window(self, channel: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The samples of ``channel`` currently held: ``(ts ns, values)``."""
        with self._lock:
            ch = self._channels[channel]
            return ch.ts.copy(), ch.values.copy()

    def _flush(self) -> None:
        with self._lock:
            chans = {name: (c.unit, c.ts, c.values) for name, c in self._channels.items()}
        newest = max((int(ts[-1]) for _, ts, _ in chans.values() if len(ts)), default=0)
        t_parts, v_parts, offsets = [], [], [0]
        for _, ts, vals in chans.values():
            step = max(1, math.ceil(len(ts) / self.max_points))
            # Stride from the newest sample backwards so the latest point is always drawn.
            idx = np.arange(len(ts) - 1, -1, -step)[::-1]
            t_parts.append((ts[idx] - newest) / 1e9)
            v_parts.append(vals[idx])
            offsets.append(offsets[-1] + len(idx))
        with self.hold_sync():
            self.times = f32_bytes(np.concatenate(t_parts) if t_parts else [])
            self.values = f32_bytes(np.concatenate(v_parts) if v_parts else [])
            self.offsets = offsets
            self.channels = list(chans)
            self.units = [u for u, _, _ in chans.values()]
            self.t_ref = newest / 1e9

    def __panel__(self) -> Any:
        """This widget as a Panel component (same JavaScript, kept in step)."""
        return panel_twin(
            self, "strip", _SYNCED, width=self.px_width + 20, height=self._panel_height()
        )

    def _panel_height(self) -> int:
        return max(1, len(self.channels)) * self.lane_px + 50
