"""The ingest path at scale: caller's-path processing, group commit, order, crashes.

With the real :class:`TieredStore` (no background threads), so group commit reaches the
WAL, and the in-memory store (no ``append_many``: written batch by batch) where the
engine's own behaviour is the point. ``docs/engine-scale.md`` describes the design.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from support.engine import WAIT, MemoryStore, hr_batch, hr_sensor

from sensocto_lab.engine.engine import Engine, EngineConfig
from sensocto_lab.engine.sensor_task import SensorRuntime
from sensocto_lab.engine.status import SensorState
from sensocto_lab.engine.supervisor import RestartPolicy
from sensocto_lab.errors import LocalError
from sensocto_lab.model import Batch
from sensocto_lab.storage import StorageConfig, TieredStore
from sensocto_lab.storage.wal import list_segments
from sensocto_lab.storage.wal_read import read_segment

QUIET = StorageConfig(background=False, compact_on_close=False)


async def _produce(engine: Engine, sid: str, batches: int, first: int = 0) -> list[Batch]:
    """One device: each batch (from batch ``first`` on) sent once the last was acknowledged."""
    return [await engine.ingest(hr_batch(sid, 5 * (first + i))) for i in range(batches)]


async def test_a_turn_of_idle_sensors_is_one_store_call_and_one_record(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, QUIET)
    async with Engine(store=store, thread=False) as engine:
        ids = [f"s{i:03d}" for i in range(200)]
        for sid in ids:
            await engine.register_sensor(hr_sensor(sid))
        data = engine.bus.subscribe("room:lab", maxsize=10_000)
        before = engine.health()["group_commit"]
        results = await asyncio.gather(*(_produce(engine, sid, 3) for sid in ids))
        after = engine.health()["group_commit"]
        # 600 batches of 200 devices: about one store call per round, never one per batch
        assert after["batches"] - before["batches"] == 600
        assert after["groups"] - before["groups"] <= 6
        for sid, stamped in zip(ids, results, strict=True):
            assert [b.seq.tolist() for b in stamped if b.seq is not None] == [
                list(range(5 * i, 5 * i + 5)) for i in range(3)
            ]
            np.testing.assert_array_equal(store.latest(sid, "hr")[1], np.arange(15.0))
        published = data.drain()
        assert len(published) == 600
        assert engine.health()["sensors"][0]["samples"] == 15
    store.close()
    [seg] = list_segments(tmp_path / "wal")
    read = read_segment(seg.path)
    assert not read.torn and read.records <= 6  # the groups, one record each


async def test_an_acknowledged_batch_is_already_in_the_wal_file(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, QUIET)
    async with Engine(store=store, thread=False) as engine:
        await engine.register_sensor(hr_sensor("s1"))
        await engine.register_sensor(hr_sensor("s2"))
        for i in range(3):
            a, b = await asyncio.gather(
                engine.ingest(hr_batch("s1", 5 * i)), engine.ingest(hr_batch("s2", 5 * i))
            )
            [seg] = list_segments(tmp_path / "wal")
            on_disk = {c.sensor_id: c.seq for c in read_segment(seg.path).chunks}
            for stamped in (a, b):
                assert stamped.seq is not None
                assert on_disk[stamped.sensor_id][-1] == stamped.seq[-1]
    store.close()


async def test_order_per_sensor_holds_across_both_paths(tmp_path: Path) -> None:
    """Bursts queue behind a caller's-path batch; every sensor's samples stay in order."""
    store = TieredStore.open(tmp_path, QUIET)
    async with Engine(store=store, thread=False) as engine:
        for sid in ("a", "b", "c"):
            await engine.register_sensor(hr_sensor(sid))
        sub = engine.bus.subscribe("data:a", maxsize=1000)

        async def burst(sid: str, first: int, n: int) -> list[Batch]:
            return await asyncio.gather(
                *(engine.ingest(hr_batch(sid, 5 * (first + i))) for i in range(n))
            )

        # bursts (queued: the first of each goes on the caller's path) mixed with
        # one-at-a-time devices (always idle), in two waves
        await asyncio.gather(burst("a", 0, 40), _produce(engine, "b", 20), burst("c", 0, 5))
        await asyncio.gather(burst("a", 40, 10), burst("b", 20, 30), _produce(engine, "c", 5, 5))
        for sid, n in (("a", 50), ("b", 50), ("c", 10)):
            table = store.read_table(sid, "hr")
            np.testing.assert_array_equal(table.column("value").to_numpy(), np.arange(5.0 * n))
            np.testing.assert_array_equal(table.column("seq").to_numpy(), np.arange(5 * n))
        assert [int(b.seq[0]) for b in sub.drain()] == [5 * i for i in range(50)]
    store.close()


async def test_a_crash_on_the_callers_path_is_retried_first_then_the_queue() -> None:
    store = MemoryStore()
    crashes = {"left": 1}

    def fault(batch: Batch) -> None:
        if crashes["left"] and int(batch.values[0]) == 0:
            crashes["left"] -= 1
            raise RuntimeError("injected")

    config = EngineConfig(fault=fault, restart=RestartPolicy(backoff_initial_s=0.0))
    async with Engine(store=store, config=config, thread=False) as engine:
        status = engine.bus.subscribe("sensors:status")
        await engine.register_sensor(hr_sensor("s1"))
        # batch 0 is taken on the caller's path (the sensor is idle) and crashes there;
        # 1..9 queue behind it while the task restarts
        results = await asyncio.wait_for(
            asyncio.gather(*(engine.ingest(hr_batch("s1", 5 * i)) for i in range(10))), WAIT
        )
        assert [int(b.seq[0]) for b in results if b.seq is not None] == [5 * i for i in range(10)]
        assert store.values("s1", "hr").tolist() == list(range(50))
        states = [m.state for m in status.drain() if m.sensor_id == "s1"]
        assert SensorState.RESTARTING in states
        assert engine.state("s1") is SensorState.RUNNING


async def test_a_callers_path_crash_without_retries_fails_back_and_restarts() -> None:
    store = MemoryStore()

    def fault(batch: Batch) -> None:
        if int(batch.values[0]) == 0:
            raise RuntimeError("always on batch 0")

    config = EngineConfig(
        fault=fault, inflight_retries=0, restart=RestartPolicy(backoff_initial_s=0.0)
    )
    async with Engine(store=store, config=config, thread=False) as engine:
        status = engine.bus.subscribe("sensors:status")
        await engine.register_sensor(hr_sensor("s1"))
        with pytest.raises(LocalError) as err:
            await engine.ingest(hr_batch("s1", 0))
        assert err.value.reason == "sensor_crashed"
        stamped = await asyncio.wait_for(engine.ingest(hr_batch("s1", 5)), WAIT)
        assert stamped.seq is not None and stamped.seq.tolist() == [0, 1, 2, 3, 4]
        states = [m.state for m in status.drain() if m.sensor_id == "s1"]
        assert states.count(SensorState.RESTARTING) == 1


async def test_freeze_gc_freezes_the_registered_sensors(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    calls: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    store = MemoryStore()
    async with Engine(store=store, config=EngineConfig(freeze_gc=True), thread=False) as engine:
        for i in range(3):
            await engine.register_sensor(hr_sensor(f"s{i}"))
        assert len(calls) == 3
    calls.clear()
    async with Engine(store=MemoryStore(), thread=False) as engine:
        await engine.register_sensor(hr_sensor("s0"))
        assert calls == []  # off by default: a notebook kernel is not frozen


def test_idle_means_running_with_nothing_queued_held_or_in_progress() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    sensor = SensorRuntime(hr_sensor("s1"), queue, state=SensorState.RUNNING)  # type: ignore[arg-type]
    assert sensor.idle
    sensor.busy = True
    assert not sensor.idle
    sensor.busy = False
    sensor.state = SensorState.RESTARTING
    assert not sensor.idle
    sensor.state = SensorState.RUNNING
    queue.put_nowait(object())
    assert not sensor.idle
