"""A live group-synchrony widget: R gauge, phase circle, recent R(t) strip.

Feed it by calling :meth:`SyncWidget.update` (from any thread) with the group's current
phases and/or Kuramoto order parameter ``R``, or let it follow the engine's live
synchrony topic with :meth:`SyncWidget.follow`. Updates are coalesced: however often it is
fed, the browser receives at most ``max_hz`` (default 15) state changes per second.

It is an anywidget for JupyterLab; ``pn.panel(widget)`` shows the same JavaScript inside
a Panel page (:meth:`SyncWidget.__panel__`).
"""

from __future__ import annotations

import math
import numbers
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import traitlets

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.engine import topics
from sensocto_lab.errors import ConfigError, ValidationError
from sensocto_lab.model import Batch
from sensocto_lab.ui.notebook._coalesce import Coalescer, Schedule
from sensocto_lab.ui.notebook._events import EventLayer
from sensocto_lab.ui.notebook._feed import BusFeed
from sensocto_lab.ui.notebook._wire import as_f32_1d, esm_source, f32_bytes, panel_twin

__all__ = ["SyncWidget", "order_parameter"]

_SYNCED = ("r", "r_t", "r_v", "t_span_s", "phases", "labels", "title", "events", "t_ref")


def order_parameter(phases: npt.ArrayLike) -> float:
    """Kuramoto order parameter ``R = |mean_j exp(i θ_j)|`` of phases in radians (0..1)."""
    theta = np.asarray(phases, dtype=np.float64)
    if theta.size == 0:
        return 0.0
    return float(np.abs(np.exp(1j * theta).mean()))


class SyncWidget(EventLayer):
    """Group synchrony at a glance, updated live.

    Parameters
    ----------
    window_s
        Length of the R(t) strip, in seconds.
    title
        Shown above the plots (e.g. the room name).
    max_hz
        Highest rate of updates sent to the browser, per second.
    clock
        Time source for the strip's time axis (when ``update`` gets no ``t``) and for the
        rate limit; a :class:`~sensocto_lab.clock.FakeClock` in tests.
    schedule
        How deferred sends run (see :mod:`sensocto_lab.ui.notebook._coalesce`); by default on
        the event loop running when the widget is made, else on a timer thread.

    Synced state (what the browser sees)
    ------------------------------------
    ``r`` (float, 0..1), ``phases`` (float32 bytes, radians, one per participant),
    ``labels`` (participant names), ``r_t`` / ``r_v`` (float32 bytes: strip times in
    seconds relative to the newest point, ≤ 0, and R values), ``t_span_s``, ``title``.
    """

    _esm = esm_source("sync_widget")

    r = traitlets.Float(0.0).tag(sync=True)
    r_t = traitlets.Bytes(b"").tag(sync=True)
    r_v = traitlets.Bytes(b"").tag(sync=True)
    t_span_s = traitlets.Float(60.0).tag(sync=True)
    phases = traitlets.Bytes(b"").tag(sync=True)
    labels = traitlets.List(traitlets.Unicode(), default_value=[]).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        title: str = "",
        max_hz: float = 15.0,
        clock: Clock | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        self._feeds: list[BusFeed] = []  # first: close() runs even if __init__ fails
        # the widget is built before the check: a half-built ipywidget fails in __del__
        super().__init__(t_span_s=float(window_s), title=title)
        if not (math.isfinite(window_s) and window_s > 0):
            self.close()
            raise ConfigError(f"window_s must be a positive number of seconds, got {window_s!r}")
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._state_r = 0.0
        self._state_phases = np.zeros(0, np.float32)
        self._state_labels: list[str] = []
        self._history: deque[tuple[float, float]] = deque()
        self.coalescer = Coalescer(self._flush, max_hz=max_hz, clock=self._clock, schedule=schedule)

    def update(
        self,
        *,
        r: float | None = None,
        phases: npt.ArrayLike | None = None,
        t: float | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        """Record the group's state at time ``t``; safe to call from any thread.

        Parameters
        ----------
        r
            Kuramoto order parameter in [0, 1]. If omitted it is computed from ``phases``.
        phases
            Current phase of each participant, radians, shape ``(n,)``.
        t
            When, in seconds on any monotonic scale (e.g. ``ts / 1e9``); default: the clock.
        labels
            Participant names, one per phase (kept until changed).

        Raises
        ------
        ValidationError
            Non-finite or out-of-range values, wrong shapes, time going backwards, or
            neither ``r`` nor ``phases`` given. Nothing is changed in that case.
        """
        if r is None and phases is None:
            raise ValidationError("update needs r, phases, or both", reason="missing_fields")
        theta = None if phases is None else as_f32_1d(phases, "phases")
        if r is None:
            assert theta is not None
            r = order_parameter(theta)
        if not (
            isinstance(r, numbers.Real)
            and not isinstance(r, bool)
            and math.isfinite(r)
            and -1e-6 <= r <= 1 + 1e-6
        ):
            raise ValidationError(
                f"R must be a number in [0, 1], got {r!r:.40}", reason="invalid_r"
            )
        if labels is not None:
            labels = [str(x) for x in labels]
            n = len(theta) if theta is not None else len(self._state_phases)
            if len(labels) != n:
                raise ValidationError(
                    f"{len(labels)} labels for {n} participants", reason="invalid_shape"
                )
        now = self._clock.monotonic() if t is None else float(t)
        if not math.isfinite(now):
            raise ValidationError("t must be a finite number of seconds", reason="invalid_time")
        with self._lock:
            if self._history and now < self._history[-1][0]:
                raise ValidationError(
                    f"t={now} is before the last update ({self._history[-1][0]})",
                    reason="unordered_timestamps",
                )
            self._state_r = min(1.0, max(0.0, float(r)))
            if theta is not None:
                self._state_phases = theta
            if labels is not None:
                self._state_labels = list(labels)
            self._history.append((now, self._state_r))
            horizon = now - self.t_span_s
            while self._history and self._history[0][0] < horizon:
                self._history.popleft()
        self.coalescer.request()

    def follow(self, live: Any) -> BusFeed:
        """Show a running :class:`~sensocto_lab.engine.synchrony.LiveSynchrony` as it publishes.

        Each ``R`` sample it publishes on ``data:sync:{room}`` becomes an update, with
        the participants' phases of its latest estimate (those without a phase yet are
        left out). Returns the running :class:`BusFeed`; :meth:`close` stops it.
        """
        if not self.title:
            self.title = f"synchrony of {live.room}"

        def on_message(batch: Any) -> None:
            if not isinstance(batch, Batch) or batch.attribute_id != topics.SYNC_ATTRIBUTE:
                return
            estimate = live.latest
            phases = labels = None
            if estimate is not None:
                known = np.isfinite(estimate.phases)
                phases = np.asarray(estimate.phases)[known]
                labels = [s for s, k in zip(estimate.sensors, known, strict=True) if k]
            for t_ns, r in zip(batch.ts, np.asarray(batch.values).reshape(-1), strict=True):
                self.update(r=float(r), phases=phases, labels=labels, t=int(t_ns) / 1e9)

        return self._follow(live.engine.bus, [topics.data(live.sensor_id)], on_message)

    def _flush(self) -> None:
        with self._lock:
            r = self._state_r
            phases = self._state_phases
            labels = list(self._state_labels)
            hist = np.asarray(self._history, dtype=np.float64).reshape(-1, 2)
        rel = hist[:, 0] - hist[-1, 0] if len(hist) else hist[:, 0]
        with self.hold_sync():
            self.r = r
            self.phases = f32_bytes(phases)
            self.r_t = f32_bytes(rel)
            self.r_v = f32_bytes(hist[:, 1])
            if len(hist):
                self.t_ref = float(hist[-1, 0])
            if labels != self.labels:
                self.labels = labels

    def __panel__(self) -> Any:
        """This widget as a Panel component (same JavaScript, kept in step)."""
        return panel_twin(self, "sync_widget", _SYNCED, width=660, height=190)
