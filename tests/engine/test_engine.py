"""The engine core: registry, per-sensor tasks, validation, stamping, storage, publishing.

Storage here is a small but real in-memory implementation of the ``Store`` protocol
(the tiered store has its own suite); everything else is the real engine.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from support.engine import T0, WAIT, MemoryStore, hr_batch, hr_sensor

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine.bus import Overflow, Subscription
from sensocto_lab.engine.engine import Engine, EngineConfig
from sensocto_lab.engine.status import SensorState, SensorStatus
from sensocto_lab.engine.supervisor import RestartPolicy
from sensocto_lab.errors import (
    ClosedResourceError,
    LocalError,
    SensorFailedError,
    StorageError,
    UnknownSensorError,
    ValidationError,
)
from sensocto_lab.model import AttributeInfo, Batch, LoadLevel, SensorInfo
from sensocto_lab.storage import Store, TieredStore


async def next_status(sub: Subscription, sensor_id: str, state: SensorState) -> SensorStatus:
    """The first status message of ``sensor_id`` reaching ``state`` (skipping others)."""

    async def scan() -> SensorStatus:
        async for msg in sub:
            if msg.sensor_id == sensor_id and msg.state is state:
                return msg  # type: ignore[no-any-return]
        raise AssertionError("status subscription closed")

    return await asyncio.wait_for(scan(), WAIT)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def test_memory_store_satisfies_the_protocol(store: MemoryStore) -> None:
    assert isinstance(store, Store)


async def test_ingest_stores_stamps_and_publishes(store: MemoryStore) -> None:
    clock = FakeClock()
    async with Engine(store=store, clock=clock, thread=False) as engine:
        await engine.register_sensor(hr_sensor("s1"))
        data = engine.bus.subscribe("data:s1")
        room = engine.bus.subscribe("room:lab")

        first = await engine.ingest(hr_batch("s1", 0, 5))
        clock.advance(1.5)
        second = await engine.ingest(hr_batch("s1", 5, 3))

        assert first.seq is not None and second.seq is not None
        assert first.seq.tolist() == [0, 1, 2, 3, 4]
        assert second.seq.tolist() == [5, 6, 7]
        assert first.recv_ts is not None and second.recv_ts is not None
        assert set(first.recv_ts.tolist()) == {clock.time_ns() - 1_500_000_000}
        assert set(second.recv_ts.tolist()) == {clock.time_ns()}
        assert store.values("s1", "hr").tolist() == list(range(8))
        assert store.rooms["s1"] == "lab"
        for sub in (data, room):
            got = sub.drain()
            assert [b.seq.tolist() for b in got] == [first.seq.tolist(), second.seq.tolist()]
        assert engine.health()["sensors"][0]["samples"] == 8


async def test_bad_batches_are_refused_and_the_sensor_keeps_running(store: MemoryStore) -> None:
    async with Engine(store=store, thread=False) as engine:
        await engine.register_sensor(hr_sensor("s1"))
        data = engine.bus.subscribe("data:s1")
        nan = Batch("s1", "hr", hr_batch("s1", 0).ts, np.array([1.0, np.nan, 3, 4, 5]))
        with pytest.raises(ValidationError) as err:
            await engine.ingest(nan)
        assert err.value.reason == "non_finite_value"
        with pytest.raises(UnknownSensorError) as unknown:
            await engine.ingest(hr_batch("nobody", 0))
        assert unknown.value.reason == "unknown_sensor"
        with pytest.raises(UnknownSensorError) as attr:
            await engine.ingest(hr_batch("s1", 0, attribute="ecg"))
        assert attr.value.reason == "unknown_attribute"
        assert store.samples() == 0 and data.statistics().delivered == 0

        ok = await engine.ingest(hr_batch("s1", 0))
        assert ok.seq is not None and ok.seq[0] == 0  # refused batches used no sequence numbers
        assert engine.state("s1") is SensorState.RUNNING
        assert store.samples("s1") == 5


async def test_storage_errors_go_to_the_caller_only(store: MemoryStore) -> None:
    async with Engine(store=store, thread=False) as engine:
        await engine.register_sensor(hr_sensor("s1"))
        store.fail_next = StorageError("disk full")
        with pytest.raises(StorageError):
            await engine.ingest(hr_batch("s1", 0))
        stamped = await engine.ingest(hr_batch("s1", 0))
        assert stamped.seq is not None and stamped.seq.tolist() == [0, 1, 2, 3, 4]
        assert engine.state("s1") is SensorState.RUNNING


async def test_sensors_and_attributes_come_and_go_at_run_time(store: MemoryStore) -> None:
    async with Engine(store=store, thread=False) as engine:
        status = engine.bus.subscribe("sensors:status")
        await engine.register_sensor(hr_sensor("s1"))
        await next_status(status, "s1", SensorState.RUNNING)
        assert set(engine.sensors) == {"s1"}

        await engine.register_attribute("s1", AttributeInfo.of("acc", "accelerometer"))
        acc = Batch("s1", "acc", hr_batch("s1", 0, 4).ts, np.ones((4, 3)))
        stamped = await engine.ingest(acc)
        assert stamped.values.shape == (4, 3) and stamped.values.dtype == np.float32

        await engine.unregister_attribute("s1", "acc")
        with pytest.raises(UnknownSensorError):
            await engine.ingest(acc)
        with pytest.raises(UnknownSensorError):
            await engine.unregister_attribute("s1", "acc")

        # Registering again is idempotent and takes the new attribute set.
        await engine.register_sensor(
            SensorInfo(
                "s1", {"hr": AttributeInfo.of("hr"), "ecg": AttributeInfo.of("ecg")}, room="lab"
            )
        )
        assert set(engine.sensors["s1"].attributes) == {"hr", "ecg"}

        await engine.register_sensor(hr_sensor("s2"))
        await engine.ingest(hr_batch("s2", 0))
        await engine.ingest(hr_batch("s1", 0))
        await engine.unregister_sensor("s1")
        await next_status(status, "s1", SensorState.REMOVED)
        assert set(engine.sensors) == {"s2"}
        with pytest.raises(UnknownSensorError):
            await engine.ingest(hr_batch("s1", 0))
        with pytest.raises(UnknownSensorError):
            await engine.unregister_sensor("s1")

        # A sensor registered again under the same id continues its sequence numbers.
        await engine.register_sensor(hr_sensor("s1"))
        stamped = await engine.ingest(hr_batch("s1", 5))
        assert stamped.seq is not None and stamped.seq[0] == 5
        assert store.samples("s2") == 5 and store.values("s1", "hr").tolist() == list(range(10))


async def test_unregister_stores_what_was_already_queued(store: MemoryStore) -> None:
    async with Engine(store=store, thread=False) as engine:
        await engine.register_sensor(hr_sensor("s1"))
        pending = [asyncio.ensure_future(engine.ingest(hr_batch("s1", 5 * i))) for i in range(20)]
        await asyncio.sleep(0)  # let the ingests reach the sensor's queue
        await engine.unregister_sensor("s1")
        results = await asyncio.gather(*pending, return_exceptions=True)
        assert all(isinstance(r, Batch) for r in results)
        assert store.values("s1", "hr").tolist() == list(range(100))


async def test_a_crashing_sensor_restarts_and_its_neighbours_keep_every_sample(
    store: MemoryStore,
) -> None:
    crashes = {"left": 2}

    def fault(batch: Batch) -> None:
        if batch.sensor_id == "bad" and crashes["left"] > 0:
            crashes["left"] -= 1
            raise RuntimeError("injected crash")

    config = EngineConfig(fault=fault, restart=RestartPolicy(backoff_initial_s=0.0))
    async with Engine(store=store, config=config, thread=False) as engine:
        status = engine.bus.subscribe("sensors:status")
        for sid in ("bad", "n1", "n2"):
            await engine.register_sensor(hr_sensor(sid))

        async def feed(sid: str, batches: int) -> list[Batch | BaseException]:
            return await asyncio.gather(
                *(engine.ingest(hr_batch(sid, 5 * i)) for i in range(batches)),
                return_exceptions=True,
            )

        bad, n1, n2 = await asyncio.gather(feed("bad", 10), feed("n1", 50), feed("n2", 50))

        restarting = await next_status(status, "bad", SensorState.RESTARTING)
        assert "injected crash" in restarting.detail
        # The first batch crashed twice: retried once, then failed back to its caller.
        assert isinstance(bad[0], LocalError) and bad[0].reason == "sensor_crashed"
        assert all(isinstance(b, Batch) for b in bad[1:])
        assert store.values("bad", "hr").tolist() == list(range(5, 50))
        assert engine.state("bad") is SensorState.RUNNING
        for sid, results in (("n1", n1), ("n2", n2)):
            assert all(isinstance(b, Batch) for b in results)
            assert store.values(sid, "hr").tolist() == list(range(250))
        assert engine.health()["sensors"][0]["state"] == "running"


async def test_a_batch_is_retried_after_a_single_crash(store: MemoryStore) -> None:
    crashes = {"left": 1}

    def fault(batch: Batch) -> None:
        if crashes["left"] > 0:
            crashes["left"] -= 1
            raise RuntimeError("transient")

    config = EngineConfig(fault=fault, restart=RestartPolicy(backoff_initial_s=0.0))
    async with Engine(store=store, config=config, thread=False) as engine:
        await engine.register_sensor(hr_sensor("s1"))
        stamped = await asyncio.wait_for(engine.ingest(hr_batch("s1", 0)), WAIT)
        assert stamped.seq is not None and stamped.seq.tolist() == [0, 1, 2, 3, 4]
        assert store.samples("s1") == 5


async def test_restart_back_off_runs_on_the_injected_clock(store: MemoryStore) -> None:
    clock = FakeClock()
    crashes = {"left": 1}

    def fault(batch: Batch) -> None:
        if crashes["left"] > 0:
            crashes["left"] -= 1
            raise RuntimeError("once")

    policy = RestartPolicy(backoff_initial_s=2.0)
    async with Engine(
        store=store, clock=clock, config=EngineConfig(fault=fault, restart=policy), thread=False
    ) as engine:
        status = engine.bus.subscribe("sensors:status")
        await engine.register_sensor(hr_sensor("s1"))
        pending = asyncio.ensure_future(engine.ingest(hr_batch("s1", 0)))
        await next_status(status, "s1", SensorState.RESTARTING)
        # The back-off sleeps on the clock beside the attention tick and load sampling.
        assert clock.sleepers == 3
        clock.advance(1.9)
        await asyncio.sleep(0)
        assert not pending.done() and engine.state("s1") is SensorState.RESTARTING
        clock.advance(0.1)
        stamped = await asyncio.wait_for(pending, WAIT)
        assert stamped.seq is not None and len(stamped) == 5
        assert engine.state("s1") is SensorState.RUNNING


async def test_a_sensor_that_keeps_crashing_is_failed_and_reported(store: MemoryStore) -> None:
    def fault(batch: Batch) -> None:
        if batch.sensor_id == "bad":
            raise RuntimeError("always")

    policy = RestartPolicy(max_crashes=5, window_s=60.0, backoff_initial_s=0.0)
    async with Engine(
        store=store,
        config=EngineConfig(fault=fault, restart=policy, inflight_retries=10),
        thread=False,
    ) as engine:
        status = engine.bus.subscribe("sensors:status")
        await engine.register_sensor(hr_sensor("bad"))
        await engine.register_sensor(hr_sensor("good"))
        bad = [asyncio.ensure_future(engine.ingest(hr_batch("bad", 5 * i))) for i in range(3)]
        good = await asyncio.gather(*(engine.ingest(hr_batch("good", 5 * i)) for i in range(20)))

        failed = await next_status(status, "bad", SensorState.FAILED)
        assert "5 times" in failed.detail and "always" in failed.detail
        for fut in bad:
            with pytest.raises(SensorFailedError):
                await asyncio.wait_for(fut, WAIT)
        with pytest.raises(SensorFailedError):
            await engine.ingest(hr_batch("bad", 100))
        assert store.samples("bad") == 0
        assert len(good) == 20 and store.values("good", "hr").tolist() == list(range(100))
        health = {s["id"]: s for s in engine.health()["sensors"]}
        assert health["bad"]["state"] == "failed" and health["good"]["state"] == "running"

        # Registering a failed sensor again starts it afresh.
        await engine.register_sensor(hr_sensor("bad"))
        await next_status(status, "bad", SensorState.RUNNING)
        assert engine.state("bad") is SensorState.RUNNING


async def test_a_stalled_subscriber_costs_ingestion_nothing(store: MemoryStore) -> None:
    async with Engine(store=store, thread=False) as engine:
        await engine.register_sensor(hr_sensor("s1"))
        stalled = engine.bus.subscribe("data:s1", maxsize=10, policy=Overflow.DROP_OLDEST)
        refuser = engine.bus.subscribe("data:*", maxsize=10, policy=Overflow.DROP_NEWEST)
        strict = engine.bus.subscribe("room:lab", maxsize=10, policy=Overflow.DISCONNECT)
        results = await asyncio.gather(*(engine.ingest(hr_batch("s1", 5 * i)) for i in range(200)))

        assert len(results) == 200
        assert store.values("s1", "hr").tolist() == list(range(1000))
        s = stalled.statistics()
        assert (s.delivered, s.dropped, s.queued, s.maxsize) == (200, 190, 10, 10)
        # DROP_OLDEST keeps the newest batches, DROP_NEWEST the first ones.
        assert [int(b.seq[0]) for b in stalled.drain()] == [5 * i for i in range(190, 200)]
        assert [int(b.seq[0]) for b in refuser.drain()] == [5 * i for i in range(10)]
        assert refuser.statistics().dropped == 190
        assert strict.closed and strict.statistics().dropped == 1
        assert len(strict.drain()) == 10
        with pytest.raises(ClosedResourceError) as err:
            strict.get_nowait()
        assert err.value.reason == "subscriber_overflow"
        bus = engine.health()["bus"]
        assert bus["dropped"] == 380 and bus["subscribers"] == 2


async def test_close_refuses_new_work_and_closes_an_owned_store_only(store: MemoryStore) -> None:
    engine = await Engine.start(store=store, thread=False)
    await engine.register_sensor(hr_sensor("s1"))
    sub = engine.bus.subscribe("data:s1")
    await engine.close()
    await engine.wait_closed()
    assert engine.closed and not store.closed  # a store passed in belongs to the caller
    with pytest.raises(ClosedResourceError):
        await engine.ingest(hr_batch("s1", 0))
    with pytest.raises(ClosedResourceError):
        await engine.register_sensor(hr_sensor("s2"))
    assert sub.closed
    await engine.close()  # idempotent


def test_an_engine_needs_somewhere_to_store() -> None:
    with pytest.raises(ValueError, match="data_dir"):
        Engine()


def _engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sensocto-engine"]


async def test_threaded_engine_serves_foreign_loops_and_sync_code(store: MemoryStore) -> None:
    engine = await Engine.start(store=store, thread=True)
    try:
        assert engine.host is not None and engine.loop is not asyncio.get_running_loop()
        assert len(_engine_threads()) == 1
        await engine.register_sensor(hr_sensor("s1"))

        # From this test's loop: the call hops onto the engine loop and back.
        stamped = await engine.ingest(hr_batch("s1", 0))
        assert stamped.seq is not None and stamped.seq.tolist() == [0, 1, 2, 3, 4]

        # A subscriber read from this loop while the engine publishes on its own.
        sub = engine.bus.subscribe("data:s1")
        waiting = asyncio.ensure_future(sub.get())
        await asyncio.sleep(0)
        await engine.ingest(hr_batch("s1", 5))
        got = await asyncio.wait_for(waiting, WAIT)
        assert got.seq.tolist() == [5, 6, 7, 8, 9]

        # From plain synchronous code in another thread (a Panel callback, a CLI).
        def sync_client() -> Batch:
            return engine.call(engine.ingest, hr_batch("s1", 10))

        from_thread = await asyncio.to_thread(sync_client)
        assert from_thread.seq is not None and from_thread.seq[0] == 10

        # From a second, unrelated event loop in another thread.
        def other_loop() -> Batch:
            return asyncio.run(engine.ingest(hr_batch("s1", 15)))

        from_loop = await asyncio.to_thread(other_loop)
        assert from_loop.seq is not None and from_loop.seq[0] == 15

        # Errors cross the hop with their type and reason.
        with pytest.raises(UnknownSensorError):
            await engine.ingest(hr_batch("nobody", 0))
        assert store.values("s1", "hr").tolist() == list(range(20))
    finally:
        await engine.close()
        await engine.wait_closed()
    assert _engine_threads() == []
    assert engine.host is not None and not engine.host.is_running
    with pytest.raises(ClosedResourceError):
        await engine.ingest(hr_batch("s1", 20))
    await engine.close()  # idempotent after the thread has gone
    with pytest.raises(ClosedResourceError):
        await asyncio.to_thread(engine.call, engine.ingest, hr_batch("s1", 20))


async def test_engine_call_refuses_to_deadlock_on_its_own_loop(store: MemoryStore) -> None:
    with pytest.raises(RuntimeError, match="event loop is running"):
        Engine.start_sync(store=store)
    async with Engine(store=store, thread=False) as engine:
        await engine.register_sensor(hr_sensor("s1"))
        with pytest.raises(RuntimeError, match="deadlock"):
            engine.call(engine.ingest, hr_batch("s1", 0))


def test_threaded_engine_from_code_without_a_loop(store: MemoryStore) -> None:
    engine = Engine.start_sync(store=store)
    try:
        engine.call(engine.register_sensor, hr_sensor("s1"))
        stamped = engine.call(engine.ingest, hr_batch("s1", 0))
        assert stamped.seq is not None and len(stamped) == 5
        assert engine.health()["sensors"][0]["samples"] == 5
    finally:
        engine.close_sync()
    assert _engine_threads() == []
    assert engine.closed and store.samples() == 5


async def test_jupyter_kernel_is_detected_only_in_its_main_thread(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from sensocto_lab.engine.host import in_jupyter_kernel

    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # any module object marks "in a kernel"
    assert in_jupyter_kernel()
    assert not await asyncio.to_thread(in_jupyter_kernel)
    engine = await Engine.start(store=store)
    try:
        assert engine.host is not None
    finally:
        await engine.close()
    assert _engine_threads() == []


async def test_the_default_store_records_to_disk_and_survives_a_restart(tmp_path: Path) -> None:
    engine = await Engine.start(tmp_path, thread=True)
    try:
        await engine.register_sensor(hr_sensor("s1"))
        for i in range(4):
            await engine.ingest(hr_batch("s1", 5 * i))
        ts, values = engine.store.latest("s1", "hr")
        assert values.tolist() == list(range(20))
        assert ts.tolist() == hr_batch("s1", 0, 20).ts.tolist()
        health = engine.health()
        assert health["storage"]["samples_appended"] == 20
        assert health["storage_lag_s"] >= 0 and health["load"] in {lv.label for lv in LoadLevel}
        assert json.loads(json.dumps(health)) == health  # JSON-able as it is
    finally:
        await engine.close()
        await engine.wait_closed()
    assert _engine_threads() == []

    with TieredStore.open(tmp_path) as store:
        recorded = store.history(sensors=["s1"])["hr"]
        assert recorded.sel(sensor="s1").values.tolist() == list(range(20))


async def test_sequence_numbers_continue_across_engine_restarts(tmp_path: Path) -> None:
    """seq identifies a sample within its series for good, not per process."""
    for run in range(2):
        async with Engine(data_dir=tmp_path, thread=False) as engine:
            await engine.register_sensor(hr_sensor("s1"))
            stamped = await engine.ingest(hr_batch("s1", start=run * 100, n=5))
            assert stamped.seq is not None
            assert stamped.seq.tolist() == list(range(run * 5, run * 5 + 5))


async def test_health_says_when_storage_is_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from sensocto_lab.errors import StorageError
    from sensocto_lab.storage import wal

    def full(*_args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    async with Engine(tmp_path, thread=False) as engine:
        await engine.register_sensor(hr_sensor("s1"))
        await engine.ingest(Batch("s1", "hr", np.array([T0]), np.array([60.0])))
        assert engine.health()["storage_health"] == "ok"
        monkeypatch.setattr(wal.os, "pwritev", full)
        with pytest.raises(StorageError):
            await engine.ingest(Batch("s1", "hr", np.array([T0 + 1]), np.array([61.0])))
        health = engine.health()
        assert health["storage_health"] == "failing"
        assert "space" in health["last_error"] and str(tmp_path) not in health["last_error"]
        monkeypatch.undo()
