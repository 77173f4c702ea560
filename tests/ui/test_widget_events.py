"""Markers and conditions on the notebook widgets, and the MarkerPad."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support.engine import WAIT, MemoryStore

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine import topics
from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import ConfigError, ValidationError
from sensocto_lab.events import Event
from sensocto_lab.ui.notebook._events import event_rows
from sensocto_lab.ui.notebook._wire import esm_source
from sensocto_lab.ui.notebook.history import HistoryWidget
from sensocto_lab.ui.notebook.marker_pad import MarkerPad
from sensocto_lab.ui.notebook.strip import StripWidget
from sensocto_lab.ui.notebook.sync_widget import SyncWidget

T0 = 1_767_225_600 * 10**9


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "onset": pd.to_datetime([T0, T0 + 5 * 10**9, T0 + 20 * 10**9], utc=True),
            "duration": [10.0, 0.0, float("nan")],
            "label": ["baseline", "bell", "task"],
            "kind": ["condition", "marker", "condition"],
        }
    )


def test_recorded_events_become_rows_on_the_history_time_axis() -> None:
    time = (T0 + np.arange(30) * 10**9).astype("datetime64[ns]")
    widget = HistoryWidget(time, np.linspace(0, 1, 30))
    assert widget.t_ref == T0 / 1e9  # events are drawn at t - t_ref on the axis
    widget.show_events(frame())
    assert widget.events == [
        {"t": T0 / 1e9, "d": 10.0, "label": "baseline", "kind": "condition"},
        {"t": T0 / 1e9 + 5, "d": 0.0, "label": "bell", "kind": "marker"},
        {"t": T0 / 1e9 + 20, "d": -1.0, "label": "task", "kind": "condition"},  # running
    ]
    widget.show_events(frame().iloc[:0])
    assert widget.events == []


def test_the_live_widgets_keep_their_newest_time_as_reference() -> None:
    strip = StripWidget(schedule=lambda d, f: None)
    strip.update("a", T0 + np.arange(3) * 10**9, [1.0, 2.0, 3.0])
    strip.flush()
    assert strip.t_ref == T0 / 1e9 + 2
    sync = SyncWidget(schedule=lambda d, f: None)
    sync.update(r=0.5, t=T0 / 1e9 + 7)
    sync.flush()
    assert sync.t_ref == T0 / 1e9 + 7
    strip.close()
    sync.close()


async def test_a_widget_follows_the_rooms_events_and_closes_a_condition_span() -> None:
    clock = FakeClock()
    async with Engine(store=MemoryStore(), clock=clock, thread=False) as engine:
        strip = StripWidget(clock=clock)
        feed = strip.follow_events(engine.bus, "lab")
        watch = engine.bus.subscribe(topics.events("lab"))
        await engine.begin_condition("task", room="lab")
        clock.advance(3)
        await engine.mark("bell", room="lab")
        clock.advance(2)
        await engine.end_condition("task", room="lab")

        async def three() -> None:
            while len(strip.events) < 2 or strip.events[0]["d"] < 0:
                await asyncio.sleep(0)

        for _ in range(3):
            await asyncio.wait_for(watch.get(), WAIT)
        await asyncio.wait_for(three(), WAIT)
        start = clock.time_ns() / 1e9 - 5
        assert strip.events == [
            {"t": start, "d": 5.0, "label": "task", "kind": "condition"},
            {"t": start + 3, "d": 0.0, "label": "bell", "kind": "marker"},
        ]
        feed.close()
        strip.close()


def test_event_objects_become_rows_and_ends_are_not_drawn_alone() -> None:
    begin = Event(T0, "task", "condition", 0.0, "lab", value={"phase": "begin"})
    end = Event(T0 + 10**9, "task", "condition", 0.0, "lab", value={"phase": "end"})
    spike = Event(T0, "novelty", "novelty", 0.0, "lab", value={"z": 7.0, "attribute": "hr"})
    assert [r["d"] for r in event_rows([begin, end, spike])] == [-1.0, 0.0]


async def test_the_marker_pad_records_presses_through_the_engine() -> None:
    clock = FakeClock()
    store = MemoryStore()
    async with Engine(store=store, clock=clock, thread=False) as engine:
        pad = MarkerPad(engine, room="lab", presets=["bell", "talk"])
        watch = engine.bus.subscribe(topics.events("lab"))
        pad._on_msg(pad, {"type": "mark", "label": " bell "}, [])  # what a press sends
        got = await asyncio.wait_for(watch.get(), WAIT)
        assert (got.label, got.room, got.source, got.kind) == ("bell", "lab", "notebook", "marker")
        event = await asyncio.wait_for(asyncio.wrap_future(pad.mark("free text")), WAIT)
        assert event.label == "free text" and store.recorded_events[-1] == event
        assert pad.count == 2 and pad.recent == ["bell", "free text"] and pad.error == ""
        refused = pad.mark("")
        with pytest.raises(ValidationError):
            await asyncio.wait_for(asyncio.wrap_future(refused), WAIT)
        assert "label" in pad.error and pad.count == 2
        pad._on_msg(pad, {"type": "other"}, [])  # not a mark: ignored
        assert len(store.recorded_events) == 2
        # What the browser does: set the synced ``press`` trait.
        pad.press = '{"type": "mark", "label": "talk", "n": 1, "at": 0}'
        got = await asyncio.wait_for(watch.get(), WAIT)  # "free text" may still be queued
        got = got if got.label == "talk" else await asyncio.wait_for(watch.get(), WAIT)
        assert got.label == "talk" and got.source == "notebook"
        pad.press = "not json"  # ignored
        assert store.recorded_events[-1].label == "talk"
        pad.close()


async def test_the_marker_pad_works_with_a_threaded_engine() -> None:
    engine = await Engine.start(store=MemoryStore(), thread=True)
    try:
        pad = MarkerPad(engine, room="lab")
        event = await asyncio.wait_for(asyncio.wrap_future(pad.mark("bell")), WAIT)
        assert event.label == "bell" and pad.count == 1
        pad.close()
    finally:
        await engine.close()
        await engine.wait_closed()


def test_marker_pad_presets_are_checked() -> None:
    with pytest.raises(ConfigError):
        MarkerPad(object(), presets=[str(i) for i in range(10)])
    with pytest.raises(ConfigError):
        MarkerPad(object(), presets=[""])


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node for a syntax check")
@pytest.mark.parametrize("name", ["strip", "sync_widget", "history", "marker_pad"])
def test_every_widget_module_parses_as_an_es_module(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.mjs"
    path.write_text(esm_source(name), encoding="utf-8")
    done = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_draw_events_runs_on_a_recording_canvas(tmp_path: Path) -> None:
    # drawEvents from _common.js against a stub 2-D context: no exception, and it
    # draws the events inside the box only.
    script = esm_source("strip").replace("export default { render };", "") + """
const calls = [];
const ctx = new Proxy({}, { get: (t, k) => (k in t ? t[k] : (...a) => calls.push(k)),
                            set: (t, k, v) => { t[k] = v; return true; } });
const box = { x: 0, y: 0, w: 100, h: 50 };
const events = [{ t: 10, d: 5, label: "task", kind: "condition" },
                { t: 12, d: 0, label: "bell", kind: "marker" },
                { t: 500, d: 0, label: "later", kind: "novelty" },
                { t: 14, d: -1, label: "open", kind: "condition" }, null, {}];
const n = drawEvents(ctx, box, events, 0, (s) => s * 5);
if (n !== 3) throw new Error(`drew ${n}`);
if (drawEvents(ctx, box, undefined, 0, (s) => s) !== 0) throw new Error("undefined");
"""
    path = tmp_path / "draw.mjs"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run(["node", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_panel_twins_carry_the_events() -> None:
    pytest.importorskip("panel")
    widget = HistoryWidget((T0 + np.arange(3) * 10**9), [0.1, 0.2, 0.3])
    widget.show_events(frame())
    twin: Any = widget.__panel__()
    assert twin.events == widget.events and twin.t_ref == widget.t_ref
