"""Marking the experiment through the engine: markers, conditions, protocols, participants."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support.engine import WAIT, MemoryStore, hr_sensor

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine import topics
from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import ConfigError, UnknownSensorError, ValidationError
from sensocto_lab.events import Event
from sensocto_lab.storage import TieredStore

ROOT = Path(__file__).resolve().parents[2]


async def test_a_mark_is_stored_then_published_on_its_room() -> None:
    store = MemoryStore()
    clock = FakeClock()
    async with Engine(store=store, clock=clock, thread=False) as engine:
        sub = engine.bus.subscribe(topics.events("lab"))
        event = await engine.mark("bell", room="lab", value={"trial": 3})
        assert event.onset_ns == clock.time_ns() and event.kind == "marker"
        assert store.recorded_events == [event]  # stored before it was published
        assert await asyncio.wait_for(sub.get(), WAIT) == event
        frame = engine.store.events(room="lab")
        assert frame["label"].tolist() == ["bell"] and frame["value"][0] == {"trial": 3}
        assert frame["source"].tolist() == ["notebook"]


@pytest.mark.parametrize(
    ("label", "kwargs", "reason"),
    [
        ("", {}, "invalid_label"),
        ("x" * 257, {}, "invalid_label"),
        ("bell", {"value": {"x": float("nan")}}, "invalid_value"),
        ("bell", {"room": "my lab"}, "invalid_room"),
        ("bell", {"onset_ns": 10**30}, "invalid_onset"),
    ],
)
async def test_bad_marks_are_refused_and_nothing_is_recorded(
    label: str, kwargs: dict[str, object], reason: str
) -> None:
    store = MemoryStore()
    async with Engine(store=store, thread=False) as engine:
        with pytest.raises(ValidationError) as info:
            await engine.mark(label, **kwargs)  # type: ignore[arg-type]
        assert info.value.reason == reason
        assert store.recorded_events == []
        assert (await engine.mark("ok")).label == "ok"  # the engine carries on


async def test_a_mark_for_an_unknown_sensor_is_refused() -> None:
    store = MemoryStore()
    async with Engine(store=store, thread=False) as engine:
        with pytest.raises(UnknownSensorError):
            await engine.mark("spike", sensor="nobody")
        await engine.register_sensor(hr_sensor("s1"))
        assert (await engine.mark("spike", sensor="s1")).sensor == "s1"


async def test_conditions_nest_and_end_innermost_first() -> None:
    clock = FakeClock()
    store = MemoryStore()
    async with Engine(store=store, clock=clock, thread=False) as engine:
        await engine.begin_condition("task", room="lab", value={"video": "paced"})
        clock.advance(10)
        await engine.begin_condition("stimulus", room="lab")
        assert engine.conditions("lab") == ["task", "stimulus"]
        with pytest.raises(ValidationError) as info:
            await engine.begin_condition("task", room="lab")
        assert info.value.reason == "condition_open"
        clock.advance(2)
        inner = await engine.end_condition(room="lab")
        assert (inner.label, inner.duration_s) == ("stimulus", 2.0)
        clock.advance(3)
        outer = await engine.end_condition("task", room="lab")
        assert (outer.label, outer.duration_s, outer.value) == ("task", 15.0, {"video": "paced"})
        with pytest.raises(ValidationError) as info:
            await engine.end_condition(room="lab")
        assert info.value.reason == "no_open_condition"
        frame = engine.store.events(room="lab", kind="condition")
        assert frame["label"].tolist() == ["task", "stimulus"]
        assert frame["duration"].tolist() == [15.0, 2.0]


async def test_a_protocol_runs_its_schedule_on_the_engine_clock_and_cancel_ends_it() -> None:
    clock = FakeClock()
    store = MemoryStore()
    async with Engine(store=store, clock=clock, thread=False) as engine:
        sub = engine.bus.subscribe(topics.events("lab"))
        run = await engine.run_protocol("lab", [("baseline", 5), ("task", 10), ("recovery", 5)])

        async def next_event() -> Event:
            got = await asyncio.wait_for(sub.get(), WAIT)
            assert isinstance(got, Event)
            return got

        assert (await next_event()).label == "baseline" and run.current == "baseline"
        clock.advance(5)
        assert (await next_event()).value == {"phase": "end"}
        assert (await next_event()).label == "task"
        clock.advance(4)
        await run.cancel()
        assert run.done and engine.conditions("lab") == []
        frame = engine.store.events(room="lab", kind="condition")
        assert frame["label"].tolist() == ["baseline", "task"]
        assert frame["duration"].tolist() == [5.0, 4.0]
        assert set(frame["source"]) == {"protocol"}
        with pytest.raises(ConfigError):
            await engine.run_protocol("lab", [("task", 0)])


async def test_a_threaded_engine_takes_marks_and_protocols_from_another_loop(
    tmp_path: Path,
) -> None:
    engine = await Engine.start(tmp_path, thread=True)
    try:
        await engine.assign_participant("sim-lab-0", "P01", role="leader")
        await engine.mark("start", room="lab")
        run = await engine.run_protocol("lab", [("rest", 0.05)])
        await run
        frame = engine.store.events(room="lab")
        assert frame["label"].tolist() == ["start", "rest"]
        rest = frame.iloc[1]
        assert rest["kind"] == "condition" and rest["duration"] >= 0.05
        assert engine.store.session.participant_of("sim-lab-0") == "P01"
    finally:
        await engine.close()
        await engine.wait_closed()


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from sensocto_lab.engine.engine import Engine

    async def main(data_dir):
        engine = await Engine.start(data_dir, thread=False)
        await engine.begin_condition("task", room="lab")
        print("condition", flush=True)
        i = 0
        while True:
            await engine.mark(f"m{i}", room="lab", value={"i": i})
            print(f"acked {i}", flush=True)
            i += 1

    asyncio.run(main(sys.argv[1]))
    """
)


def test_acknowledged_marks_and_conditions_survive_kill_9_exactly_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    acked = -1
    try:
        assert child.stdout.readline().strip() == "condition"
        for line in child.stdout:
            acked = int(line.split()[1])
            if acked >= 200:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=WAIT)
    store = TieredStore.open(tmp_path)
    try:
        frame = store.events(room="lab")
        markers = frame[frame["kind"] == "marker"]
        numbers = [v["i"] for v in markers["value"]]
        assert numbers[: acked + 1] == list(range(acked + 1))  # every acknowledged one, in order
        assert len(numbers) == len(set(numbers))  # exactly once
        task = frame[frame["kind"] == "condition"]
        assert task["label"].tolist() == ["task"] and math.isnan(task["duration"].iloc[0])
        assert np.all(np.diff(markers["onset"].astype("int64").to_numpy()) >= 0)
    finally:
        store.close()
