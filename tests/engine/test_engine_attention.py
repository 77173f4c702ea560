"""Attention and load inside the engine, driven by a fake clock.

Viewers' levels route batches to ``data:attention:{level}`` and publish each sensor's new
``BackpressureConfig`` on ``signal:{sensor}``; decay and load sampling run on the
injected clock; load changes publish ``system:load`` and scale the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
from support.engine import WAIT, MemoryStore, hr_batch, hr_sensor

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine.attention import AttentionConfig
from sensocto_lab.engine.engine import Engine, EngineConfig
from sensocto_lab.engine.load import LoadConfig, LoadSample
from sensocto_lab.errors import ValidationError
from sensocto_lab.model import (
    AttentionLevel,
    AttributeInfo,
    BackpressureConfig,
    Batch,
    LoadLevel,
    SensorInfo,
)

#: The periodic tasks sleeping on the clock between runs: attention tick and load sampling.
PERIODIC = 2


async def advance(clock: FakeClock, seconds: float) -> None:
    """Advance the clock once the periodic tasks sleep, then let them run and sleep again."""

    async def settled() -> None:
        while clock.sleepers < PERIODIC:
            await asyncio.sleep(0)

    await asyncio.wait_for(settled(), WAIT)
    clock.advance(seconds)
    await asyncio.wait_for(settled(), WAIT)


class Load:
    """A load probe whose CPU reading the test sets (the OS's numbers are not ours to set)."""

    def __init__(self) -> None:
        self.cpu = 0.1

    def __call__(self, loop_lag_s: float, queue_fill: float) -> LoadSample:
        assert loop_lag_s >= 0 and 0 <= queue_fill <= 1
        return LoadSample(cpu=self.cpu, loop_lag_s=0.0, queue_fill=queue_fill, memory=0.3)


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Engine, FakeClock, MemoryStore, Load]]:
    clock, store, load = FakeClock(), MemoryStore(), Load()
    config = EngineConfig(
        attention=AttentionConfig(focus_ttl_s=30.0, viewer_ttl_s=60.0),
        load=LoadConfig(rise_samples=2, fall_time_s=5.0),
        load_probe=load,
    )
    async with Engine(store=store, clock=clock, config=config, thread=False) as engine:
        for sid in ("s1", "s2"):
            await engine.register_sensor(hr_sensor(sid))
        yield engine, clock, store, load


async def test_views_route_batches_by_level_and_signal_the_device(
    rig: tuple[Engine, FakeClock, MemoryStore, Load],
) -> None:
    engine, _, _, _ = rig
    signal = engine.bus.subscribe("signal:s1")
    high = engine.bus.subscribe("data:attention:high")
    medium = engine.bus.subscribe("data:attention:medium")
    none = engine.bus.subscribe("data:attention:none")

    changes = await engine.set_views("v1", {"s1": "high", "s2": AttentionLevel.MEDIUM})
    assert {c.sensor_id: c.new for c in changes} == {
        "s1": AttentionLevel.HIGH,
        "s2": AttentionLevel.MEDIUM,
    }
    config = await asyncio.wait_for(signal.get(), WAIT)
    assert isinstance(config, BackpressureConfig)
    assert (config.attention_level, config.batch_window_ms, config.batch_size) == (
        AttentionLevel.HIGH,
        100,
        1,
    )
    await engine.ingest(hr_batch("s1", 0))
    await engine.ingest(hr_batch("s2", 0))
    await engine.register_sensor(hr_sensor("s3"))
    await engine.ingest(hr_batch("s3", 0))  # nobody watches s3
    assert [b.sensor_id for b in high.drain()] == ["s1"]
    assert [b.sensor_id for b in medium.drain()] == ["s2"]
    assert none.statistics().delivered == 0  # level none is never published
    health = {s["id"]: s["attention"] for s in engine.health()["sensors"]}
    assert health == {"s1": "high", "s2": "medium", "s3": "none"}

    # A second viewer at a lower level does not lower s1; removing the first does.
    await engine.set_views("v2", {"s1": "low"})
    await engine.remove_viewer("v1")
    assert (await asyncio.wait_for(signal.get(), WAIT)).attention_level is AttentionLevel.LOW
    low = engine.bus.subscribe("data:attention:low")
    await engine.ingest(hr_batch("s1", 5))
    assert [int(b.seq[0]) for b in low.drain()] == [5]
    assert high.drain() == []

    with pytest.raises(ValidationError):
        await engine.set_views("v3", {"s1": "staring"})


async def test_focus_decays_and_vanished_viewers_are_cleaned_up_on_the_clock(
    rig: tuple[Engine, FakeClock, MemoryStore, Load],
) -> None:
    engine, clock, _, _ = rig
    signal = engine.bus.subscribe("signal:s1")
    await engine.set_views("v1", {"s1": "high"})
    assert (await signal.get()).attention_level is AttentionLevel.HIGH

    await advance(clock, 29.0)
    assert signal.drain() == []  # not yet
    await engine.renew_viewer("v1")  # a heartbeat keeps the viewer, not the focus
    await advance(clock, 1.0)
    decayed = await asyncio.wait_for(signal.get(), WAIT)
    assert decayed.attention_level is AttentionLevel.MEDIUM
    assert decayed.timestamp_ms == clock.time_ns() // 1_000_000

    await advance(clock, 58.0)  # renewed at t=29: the viewer is removed at t=89
    assert signal.drain() == []
    await advance(clock, 1.0)
    gone = await asyncio.wait_for(signal.get(), WAIT)
    assert gone.attention_level is AttentionLevel.NONE and gone.batch_window_ms == 5000
    assert engine.health()["attention"]["viewers"] == 0


async def test_load_changes_are_published_and_scale_store_and_windows(
    rig: tuple[Engine, FakeClock, MemoryStore, Load],
) -> None:
    engine, clock, store, load = rig
    levels = engine.bus.subscribe("system:load")
    signal = engine.bus.subscribe("signal:s2")
    await engine.set_views("v1", {"s2": "high"})
    assert (await signal.get()).batch_window_ms == 100

    load.cpu = 0.92  # "high" by the default thresholds, sustained for two samples
    await advance(clock, 1.0)
    assert levels.drain() == []
    await advance(clock, 1.0)
    assert await asyncio.wait_for(levels.get(), WAIT) is LoadLevel.HIGH
    assert store.scale == 0.2
    stretched = await asyncio.wait_for(signal.get(), WAIT)
    assert (stretched.batch_window_ms, stretched.load_level) == (200, LoadLevel.HIGH)
    assert engine.health()["load"] == "high"

    load.cpu = 0.1  # calm again for fall_time_s
    for _ in range(6):
        await advance(clock, 1.0)
    assert await asyncio.wait_for(levels.get(), WAIT) is LoadLevel.NORMAL
    assert store.scale == 1.0
    assert (await asyncio.wait_for(signal.get(), WAIT)).batch_window_ms == 100


async def test_a_low_battery_caps_the_level(
    rig: tuple[Engine, FakeClock, MemoryStore, Load],
) -> None:
    engine, _, _, _ = rig
    info = SensorInfo("s9", {"battery": AttributeInfo.of("battery")}, room="lab")
    await engine.register_sensor(info)
    await engine.set_views("v1", {"s9": "high"})
    signal = engine.bus.subscribe("signal:s9")
    ts = hr_batch("s9", 0, 1).ts
    await engine.ingest(Batch("s9", "battery", ts, np.array([15.0])))
    capped = await asyncio.wait_for(signal.get(), WAIT)
    assert capped.attention_level is AttentionLevel.MEDIUM
    assert engine.attention.level("s9") is AttentionLevel.MEDIUM
