"""Simulated groups run as ordinary sensors, ticking on the engine's (fake) clock."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from support.engine import WAIT, MemoryStore

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import ConfigError
from sensocto_lab.sources.simulated import SimulatedGroup
from sensocto_lab.sources.simulator import SimConfig
from sensocto_lab.storage import TieredStore
from sensocto_lab.sync.conditions import by_condition

#: A cheap simulation for long runs: the breathing only matters, slow ECG and accelerometer.
LEAN = SimConfig(respiration_hz=4.0, ecg_hz=8.0, accelerometer_hz=1.0)

#: Clock sleepers of an engine with one group: attention tick, load sampling, the producer.
SLEEPERS = 3


async def run_for(clock: FakeClock, seconds: float, tick_s: float) -> None:
    """Advance the clock tick by tick, letting the producer store each tick's batches."""

    async def asleep() -> None:
        while clock.sleepers < SLEEPERS:
            await asyncio.sleep(0)

    for _ in range(round(seconds / tick_s)):
        await asyncio.wait_for(asleep(), WAIT)
        clock.advance(tick_s)
    await asyncio.wait_for(asleep(), WAIT)


async def test_a_group_produces_every_kind_at_its_rate_through_the_engine() -> None:
    clock, store = FakeClock(), MemoryStore()
    config = SimConfig(respiration_hz=20.0, accelerometer_hz=50.0)
    async with Engine(store=store, clock=clock, thread=False) as engine:
        room = engine.bus.subscribe("room:lab", maxsize=10_000)
        group = await SimulatedGroup.start(engine,
            3, room="lab", coupling=2.0, seed=7, ecg_rate_hz=256.0, config=config
        )
        assert group.sensor_ids == ("sim-lab-0", "sim-lab-1", "sim-lab-2")
        assert set(engine.sensors) == set(group.sensor_ids)
        assert set(engine.sensors["sim-lab-0"].attributes) == {
            "respiration",
            "hr",
            "rr",
            "ecg",
            "accelerometer",
            "battery",
        }

        await run_for(clock, 2.0, group.tick_s)

        for sid in group.sensor_ids:
            # Sample k of a kind at rate r is at k/r s: 2 s hold 2r + 1 samples (k = 0..2r).
            assert len(store.values(sid, "respiration")) == 41
            assert len(store.values(sid, "ecg")) == 513
            assert store.values(sid, "accelerometer").shape == (101, 3)
            assert len(store.values(sid, "rr")) >= 1  # a heartbeat or more in 2 s
        published = room.drain()
        assert sum(len(b) for b in published) == store.samples()
        assert {b.sensor_id for b in published} == set(group.sensor_ids)

        phases = group.true_phases()
        assert phases.shape == (3,) and np.all((phases >= 0) & (phases < 2 * np.pi))
        assert 0.0 <= group.true_order_parameter() <= 1.0
        group.set_coupling(0.0)
        assert group.coupling == 0.0 and group.simulator.coupling == 0.0

        with pytest.raises(ConfigError) as err:
            await SimulatedGroup.start(engine, 2, room="lab")
        assert err.value.reason == "duplicate_task"

        await group.stop()
        assert engine.sensors == {}
        stored = store.samples()
        clock.advance(1.0)
        await asyncio.sleep(0)
        assert store.samples() == stored  # the producer is gone

        # The room is free again.
        again = await SimulatedGroup.start(engine, 1, room="lab", seed=1)
        assert again.sensor_ids == ("sim-lab-0",)


async def test_a_threaded_engine_runs_a_group_on_real_time() -> None:
    store = MemoryStore()
    engine = await Engine.start(store=store, thread=True)
    try:
        data = engine.bus.subscribe("data:sim-sim-1")
        group = await SimulatedGroup.start(engine, 2, tick_s=0.05)
        first = await asyncio.wait_for(data.get(), WAIT)
        assert first.sensor_id == "sim-sim-1" and first.seq is not None
        await group.stop(unregister=False)
        assert set(engine.sensors) == set(group.sensor_ids)
    finally:
        await engine.close()
        await engine.wait_closed()
    assert store.samples("sim-sim-1") >= len(first)


async def test_a_blocking_cell_stalls_nothing_on_a_threaded_engine() -> None:
    """The caller's loop blocks (like a long notebook cell); the engine records regardless."""
    store = MemoryStore()
    engine = await Engine.start(store=store, thread=True)
    try:
        assert engine.host is not None
        data = engine.bus.subscribe("data:sim-sim-0")
        recorded = threading.Event()

        async def watch() -> None:
            for _ in range(10):
                await data.get()
            recorded.set()

        watcher = engine.host.submit(watch)
        await SimulatedGroup.start(engine, 1, tick_s=0.02)
        # Block this loop's thread outright: nothing here runs until the engine has stored
        # ten batches of its own accord.
        assert recorded.wait(WAIT)
        watcher.result(WAIT)
        assert store.samples("sim-sim-0") > 0
    finally:
        await engine.close()
        await engine.wait_closed()


async def wait_for_coupling(group: SimulatedGroup, k: float) -> None:
    """Yield to the loop until the follower has applied ``k`` (no wall-clock sleeps)."""

    async def applied() -> None:
        while group.coupling != k:
            await asyncio.sleep(0)

    await asyncio.wait_for(applied(), WAIT)


async def test_a_group_follows_the_protocol_and_its_synchrony_changes_with_it() -> None:
    clock, store = FakeClock(), MemoryStore()
    async with Engine(store=store, clock=clock, thread=False) as engine:
        group = await SimulatedGroup.start(
            engine, 8, room="lab", coupling=0.7, seed=3, tick_s=0.5, config=LEAN
        )
        await group.follow_conditions({"baseline": 0.0, "task": 3.0, "recovery": 0.0})
        assert group.coupling == 0.7
        run = await engine.run_protocol("lab", [("baseline", 20), ("task", 60), ("recovery", 20)])
        await wait_for_coupling(group, 0.0)
        # The protocol sleeps on the clock too: one more sleeper than the plain group.
        sleepers = SLEEPERS + 1

        async def tick(seconds: float) -> None:
            for _ in range(round(seconds / group.tick_s)):
                while clock.sleepers < sleepers:
                    await asyncio.sleep(0)
                clock.advance(group.tick_s)

        await asyncio.wait_for(tick(20), WAIT)
        await wait_for_coupling(group, 3.0)
        r_start = group.true_order_parameter()
        await asyncio.wait_for(tick(59), WAIT)
        assert group.coupling == 3.0
        r_task = group.true_order_parameter()
        assert r_task > 0.9 and r_task > r_start
        await asyncio.wait_for(tick(1), WAIT)
        await wait_for_coupling(group, 0.0)
        # Each condition hands back the K from before it began: after the last, the first K.
        await asyncio.wait_for(tick(20), WAIT)
        await run
        await wait_for_coupling(group, 0.7)
        assert engine.conditions("lab") == []
        await group.stop()


async def test_follow_conditions_nests_and_restores_the_default_or_the_previous_coupling() -> None:
    clock, store = FakeClock(), MemoryStore()
    async with Engine(store=store, clock=clock, thread=False) as engine:
        group = await SimulatedGroup.start(engine, 2, room="lab", coupling=1.0)
        await group.follow_conditions({"task": 2.0, "stimulus": 4.0})
        await engine.begin_condition("task", room="lab")
        await wait_for_coupling(group, 2.0)
        await engine.begin_condition("other", room="lab")  # not followed: no change
        await engine.begin_condition("stimulus", room="lab")
        await wait_for_coupling(group, 4.0)
        await engine.end_condition("task", room="lab")  # outer ends; the inner still rules
        await engine.mark("bell", room="lab")
        await engine.end_condition("stimulus", room="lab")
        await wait_for_coupling(group, 1.0)  # what the outer had before it began
        await engine.end_condition("other", room="lab")
        await engine.begin_condition("task", room="elsewhere")  # another room: ignored
        await group.follow_conditions({"task": 2.5}, default=0.5)
        await engine.begin_condition("task", room="lab")
        await wait_for_coupling(group, 2.5)
        await engine.end_condition("task", room="lab")
        await wait_for_coupling(group, 0.5)
        with pytest.raises(ConfigError):
            await group.follow_conditions({"task": -1.0})
        await group.stop()


async def test_the_recorded_protocol_shows_synchrony_in_the_task_only(tmp_path: Path) -> None:
    """The issue's Done-when, through the engine: R(task) > R(baseline), p < 0.01 vs > 0.05."""
    clock = FakeClock()
    store = TieredStore.open(tmp_path, clock=clock)
    async with Engine(store=store, clock=clock, thread=False) as engine:
        group = await SimulatedGroup.start(
            engine, 8, room="lab", coupling=0.0, seed=5, tick_s=0.5, config=LEAN
        )
        await group.follow_conditions({"baseline": 0.0, "task": 3.0})
        run = await engine.run_protocol("lab", [("baseline", 60), ("task", 60)])
        sleepers = SLEEPERS + 1

        async def tick(seconds: float) -> None:
            for _ in range(round(seconds / group.tick_s)):
                while clock.sleepers < sleepers and not run.done:
                    await asyncio.sleep(0)
                clock.advance(group.tick_s)

        await asyncio.wait_for(tick(120), WAIT)
        await run
        ds = engine.store.history(attributes=["respiration"])
        events = engine.store.events(room="lab")
        await group.stop()
    store.close()
    table = by_condition(ds, events, seed=0).set_index("condition")
    assert table.loc["task", "value"] > table.loc["baseline", "value"]
    assert table.loc["task", "p_value"] < 0.01
    assert table.loc["baseline", "p_value"] > 0.05
