"""Notebook widgets: what live feeding costs the kernel and the browser link.

Ours: :class:`~sensocto_lab.ui.notebook.sync_widget.SyncWidget` and
:class:`~sensocto_lab.ui.notebook.strip.StripWidget` (float32 bytes traitlets, updates
coalesced to at most 15 sends per second).

Baseline, measured in the same run: the plain ipywidgets way, a ``DOMWidget`` whose
state is ``List(Float)`` traitlets set on every update (each set is one JSON comm
message), fed the same data.

Both widgets get a recording comm (no kernel): it counts the comm messages ipywidgets
publishes and their size (JSON text plus binary buffers). Feeding runs on a fake
clock at the engine's rate (the live synchrony at 20 Hz for 64 people; 8 ECG channels
at 130 Hz in 10 batches per second), so messages per second are exact, and the wall
time of the feeding loop gives the kernel-side cost per update.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import comm
import ipywidgets
import numpy as np
import traitlets
from comm.base_comm import BaseComm

from bench._table import Row, format_table
from sensocto_lab.clock import FakeClock
from sensocto_lab.ui.notebook.strip import StripWidget
from sensocto_lab.ui.notebook.sync_widget import SyncWidget

AREA = "widgets"


class _CountingComm(BaseComm):
    """Counts what ipywidgets would send to the browser."""

    messages = 0
    nbytes = 0

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
        **keys: Any,
    ) -> None:
        if msg_type != "comm_msg":
            return
        _CountingComm.messages += 1
        _CountingComm.nbytes += len(json.dumps(data, default=str)) + sum(
            memoryview(b).nbytes for b in buffers or []
        )


class _NaiveSync(ipywidgets.DOMWidget):
    r = traitlets.Float(0.0).tag(sync=True)
    phases = traitlets.List(traitlets.Float()).tag(sync=True)
    r_history = traitlets.List(traitlets.Float()).tag(sync=True)


class _NaiveStrip(ipywidgets.DOMWidget):
    values = traitlets.Dict().tag(sync=True)


class _Pump:
    """A coalescer schedule on the fake clock: due callbacks run when time reaches them."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.pending.append((self.clock.monotonic() + delay, callback))

    def run_due(self) -> None:
        now = self.clock.monotonic() + 1e-12
        due = [f for t, f in self.pending if t <= now]
        self.pending = [(t, f) for t, f in self.pending if t > now]
        for f in due:
            f()


def _measure(
    feed: Callable[[int], None], steps: int, dt: float, clock: FakeClock
) -> dict[str, float]:
    _CountingComm.messages = _CountingComm.nbytes = 0
    start = time.perf_counter()
    for i in range(steps):
        feed(i)
        clock.advance(dt)
    wall = time.perf_counter() - start
    seconds = steps * dt
    return {
        "msgs_per_s": _CountingComm.messages / seconds,
        "kb_per_s": _CountingComm.nbytes / seconds / 1024,
        "us_per_update": wall / steps * 1e6,
    }


def _sync_rows(seconds: float) -> list[Row]:
    people, rate, window = 64, 20.0, 60.0
    steps, dt = round(seconds * rate), 1 / rate
    rng = np.random.default_rng(0)
    phases = rng.uniform(-np.pi, np.pi, (steps, people))

    clock = FakeClock()
    pump = _Pump(clock)
    ours = SyncWidget(window_s=window, clock=clock, schedule=pump)

    def feed_ours(i: int) -> None:
        ours.update(phases=phases[i])
        pump.run_due()

    mine = _measure(feed_ours, steps, dt, clock)

    clock = FakeClock()
    naive = _NaiveSync()
    history: list[float] = []

    def feed_naive(i: int) -> None:
        theta = phases[i]
        r = float(np.abs(np.exp(1j * theta).mean()))
        history.append(r)
        del history[: max(0, len(history) - round(window * rate))]
        with naive.hold_sync():
            naive.r = r
            naive.phases = theta.tolist()
            naive.r_history = list(history)

    base = _measure(feed_naive, steps, dt, clock)
    name = "ipywidgets List traitlets, every update"
    return _rows(f"sync widget, {people} people at {rate:g} Hz", "update", mine, base, name, 1)


def _strip_rows(seconds: float) -> list[Row]:
    channels, fs, batches_per_s, window = 8, 130.0, 10.0, 10.0
    per_batch = round(fs / batches_per_s)
    steps, dt = round(seconds * batches_per_s), 1 / batches_per_s
    rng = np.random.default_rng(1)

    def batch(i: int) -> tuple[np.ndarray, np.ndarray]:
        ts = 1_767_225_600 * 10**9 + (i * per_batch + np.arange(per_batch)) * round(1e9 / fs)
        return ts.astype(np.int64), rng.standard_normal(per_batch)

    clock = FakeClock()
    pump = _Pump(clock)
    ours = StripWidget(window_s=window, clock=clock, schedule=pump)

    def feed_ours(i: int) -> None:
        for c in range(channels):
            ts, v = batch(i)
            ours.update(f"ch{c}", ts, v)
        pump.run_due()

    mine = _measure(feed_ours, steps, dt, clock)

    clock = FakeClock()
    naive = _NaiveStrip()
    held: dict[str, list[float]] = {}

    def feed_naive(i: int) -> None:
        for c in range(channels):
            _, v = batch(i)
            lane = held.setdefault(f"ch{c}", [])
            lane.extend(v.tolist())
            del lane[: max(0, len(lane) - round(window * fs))]
            naive.values = {k: list(x) for k, x in held.items()}

    base = _measure(feed_naive, steps, dt, clock)
    name = "ipywidgets Dict of lists, every batch"
    what = f"strip, {channels} ECG channels at {fs:g} Hz"
    return _rows(what, "batch", mine, base, name, channels)


def _rows(
    what: str, unit: str, mine: dict[str, float], base: dict[str, float], name: str, per: int
) -> list[Row]:
    """The three rows of one widget: messages and bytes to the browser, kernel time per ``unit``."""
    return [
        Row(
            AREA,
            f"{what}: messages to browser /s",
            mine["msgs_per_s"],
            base["msgs_per_s"],
            name,
            "<= 15",
            mine["msgs_per_s"] <= 15.0 + 1e-9,
            higher_is_better=False,
        ),
        Row(
            AREA,
            f"{what}: KiB to browser /s",
            mine["kb_per_s"],
            base["kb_per_s"],
            name,
            higher_is_better=False,
        ),
        Row(
            AREA,
            f"{what}: kernel us per {unit}",
            mine["us_per_update"] / per,
            base["us_per_update"] / per,
            name,
            higher_is_better=False,
        ),
    ]


def run(quick: bool = False) -> list[Row]:
    """Measure both widgets next to the plain-ipywidgets baseline (see the module doc)."""
    seconds = 30.0 if quick else 120.0
    original = comm.create_comm
    comm.create_comm = _CountingComm
    try:
        return _sync_rows(seconds) + _strip_rows(seconds)
    finally:
        comm.create_comm = original


if __name__ == "__main__":
    print(format_table(run()))
