"""Automatic novelty events: spikes found, normal data quiet, warm-up and refractory kept."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from support.engine import WAIT, MemoryStore

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine import topics
from sensocto_lab.engine.config import EngineConfig
from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.novelty import NoveltyConfig, NoveltyDetector
from sensocto_lab.errors import ConfigError
from sensocto_lab.events import Event
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo

T0 = 1_767_225_600 * 10**9
HR = AttributeInfo.of("hr")
INFO = SensorInfo("s1", {"hr": HR}, room="lab")


def hr_batches(values: np.ndarray, per_batch: int = 5, hz: float = 1.0) -> list[Batch]:
    ts = T0 + np.round(np.arange(values.size) / hz * 1e9).astype(np.int64)
    return [
        Batch("s1", "hr", ts[i : i + per_batch], values[i : i + per_batch])
        for i in range(0, values.size, per_batch)
    ]


def run(detector: NoveltyDetector, values: np.ndarray, per_batch: int = 5) -> list[Event]:
    for batch in hr_batches(values, per_batch):
        detector.observe(INFO, HR, batch)
    return detector.flush()


def normal_hr(n: int, seed: int = 0) -> np.ndarray:
    return 70 + np.random.default_rng(seed).normal(0, 2.0, n)


def test_injected_spikes_are_found_where_they_are() -> None:
    values = normal_hr(600)
    spikes = [100, 250, 400, 555]
    values[spikes] = [140.0, 20.0, 130.0, 0.0]  # artefacts and a dropout to zero
    detector = NoveltyDetector(NoveltyConfig(), lambda events: None)
    found = run(detector, values, per_batch=12)
    onsets = [(e.onset_ns - T0) // 10**9 for e in found]
    assert onsets == spikes
    first = found[0]
    assert (first.kind, first.label, first.sensor, first.room, first.source) == (
        "novelty", "novelty", "s1", "lab", "device")
    assert first.value["attribute"] == "hr" and first.value["z"] > 6
    assert first.value["value"] == 140.0
    assert detector.statistics()["recorded"] == 4


@pytest.mark.parametrize("per_batch", [1, 7, 9, 60])
def test_normal_and_flat_data_raise_no_alarm(per_batch: int) -> None:
    detector = NoveltyDetector(NoveltyConfig(), lambda events: None)
    assert run(detector, normal_hr(3600, seed=per_batch), per_batch) == []  # an hour at 1 Hz
    flat = NoveltyDetector(NoveltyConfig(), lambda events: None)
    assert run(flat, np.full(600, 60.0), per_batch) == []


@pytest.mark.parametrize("per_batch", [5, 10])
def test_the_refractory_period_suppresses_a_burst(per_batch: int) -> None:
    values = normal_hr(200)
    values[100:104] = 150.0  # four bad seconds in a row, then one 20 s later
    values[124] = 150.0
    config = NoveltyConfig(refractory_s=10.0)
    found = run(NoveltyDetector(config, lambda e: None), values, per_batch)
    assert [(e.onset_ns - T0) // 10**9 for e in found] == [100, 124]
    config = NoveltyConfig(refractory_s=0.0)
    every = run(NoveltyDetector(config, lambda e: None), values, per_batch)
    assert [(e.onset_ns - T0) // 10**9 for e in every] == [100, 101, 102, 103, 124]


@pytest.mark.parametrize("per_batch", [1, 20])
def test_nothing_is_flagged_during_the_warm_up(per_batch: int) -> None:
    values = normal_hr(100)
    values[[20, 45, 75]] = 150.0
    config = NoveltyConfig(warmup=30, warmup_s=0.0)
    found = run(NoveltyDetector(config, lambda e: None), values, per_batch)
    assert [(e.onset_ns - T0) // 10**9 for e in found] == [45, 75]
    # Counted in seconds too: 60 s of device time at 1 Hz is more than 30 samples.
    config = NoveltyConfig(warmup=30, warmup_s=60.0)
    found = run(NoveltyDetector(config, lambda e: None), values, per_batch)
    assert [(e.onset_ns - T0) // 10**9 for e in found] == [75]


def test_unwatched_kinds_and_bad_configs() -> None:
    detector = NoveltyDetector(NoveltyConfig(kinds=frozenset({"rr"})), lambda e: None)
    values = normal_hr(100)
    values[50] = 200.0
    assert run(detector, values) == [] and detector.statistics()["series"] == 0
    for bad in ({"z_threshold": 0}, {"warmup": 1}, {"refractory_s": -1}, {"warmup_s": -1}):
        with pytest.raises(ConfigError):
            NoveltyConfig(**bad)  # type: ignore[arg-type]


async def test_the_engine_records_novelty_after_storing_the_batch() -> None:
    store = MemoryStore()
    async with Engine(store=store, clock=FakeClock(), thread=False) as engine:
        await engine.register_sensor(INFO)
        sub = engine.bus.subscribe(topics.events("lab"))
        values = normal_hr(120)
        values[90] = 160.0
        for batch in hr_batches(values, 10):
            await engine.ingest(batch)
        event = await asyncio.wait_for(sub.get(), WAIT)
        assert isinstance(event, Event) and event.kind == "novelty"
        assert event.onset_ns == T0 + 90 * 10**9 and event in store.recorded_events
        frame = engine.store.events(room="lab", kind="novelty")
        assert frame["sensor"].tolist() == ["s1"] and frame["value"][0]["attribute"] == "hr"


async def test_novelty_can_be_turned_off() -> None:
    store = MemoryStore()
    config = EngineConfig(novelty=None)
    async with Engine(store=store, clock=FakeClock(), thread=False, config=config) as engine:
        await engine.register_sensor(INFO)
        values = normal_hr(120)
        values[90] = 160.0
        for batch in hr_batches(values, 10):
            await engine.ingest(batch)
        await engine.mark("after")  # recorded after anything the ingest steps scheduled
        assert [e.kind for e in store.recorded_events] == ["marker"]
