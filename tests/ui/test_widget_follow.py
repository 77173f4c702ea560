"""Widgets fed by a real engine: bus feeds, the live synchrony computer, feed errors, closing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.synchrony import LiveSynchrony
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo
from sensocto_lab.sync.online import OnlineConfig
from sensocto_lab.ui.notebook._feed import BusFeed
from sensocto_lab.ui.notebook.strip import StripWidget
from sensocto_lab.ui.notebook.sync_widget import SyncWidget


class Requests:
    """A coalescer schedule that only records that a flush was requested (tests flush)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.count = 0

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.count += 1
        self.event.set()

    async def wait(self) -> None:
        await asyncio.wait_for(self.event.wait(), 30)
        self.event.clear()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = await Engine.start(tmp_path / "data", thread=False)
    yield eng
    await eng.close()
    await eng.wait_closed()


def _respiration_sensors(room: str, n: int) -> list[SensorInfo]:
    attr = AttributeInfo.of("respiration", "respiration")
    return [SensorInfo(f"{room}-{i}", {"respiration": attr}, room=room) for i in range(n)]


async def test_strip_follows_engine_batches_exactly(engine: Engine) -> None:
    sensors = _respiration_sensors("strip", 2)
    for info in sensors:
        await engine.register_sensor(info)
    requests = Requests()
    strip = StripWidget(window_s=60, schedule=requests)
    feed = strip.follow(engine.bus, [s.sensor_id for s in sensors], "respiration")
    t0 = time.time_ns() - 10 * 10**9
    ts = t0 + np.arange(50, dtype=np.int64) * 10**8
    for k, info in enumerate(sensors):
        await engine.ingest(Batch(info.sensor_id, "respiration", ts, np.sin(np.arange(50) + k)))
    while strip.coalescer.statistics().requests < 2:
        await requests.wait()
    strip.flush()
    assert strip.channels == ["strip-0/respiration", "strip-1/respiration"]
    for info in sensors:
        held_ts, held_v = strip.window(f"{info.sensor_id}/respiration")
        stored_ts, stored_v = engine.store.latest(info.sensor_id, "respiration")
        np.testing.assert_array_equal(held_ts, stored_ts)
        np.testing.assert_allclose(held_v, stored_v, rtol=1e-6)
    assert feed.delivered == 2 and feed.errors == 0
    strip.close()
    await feed.wait_closed()
    assert not feed.running
    assert all(sub.closed for sub in feed.subscriptions())


async def test_sync_widget_follows_live_synchrony(engine: Engine) -> None:
    sensors = _respiration_sensors("sync", 4)
    for info in sensors:
        await engine.register_sensor(info)
    # rate_hz tiny: the periodic task stays asleep; the test calls update() itself.
    live = await LiveSynchrony.start(
        engine, "sync", rate_hz=0.001, config=OnlineConfig(window_s=10.0, lag_s=1.0)
    )
    requests = Requests()
    widget = SyncWidget(schedule=requests)
    feed = widget.follow(live)
    fs = 10.0
    end = time.time_ns()
    ts = end - (np.arange(200, dtype=np.int64)[::-1] * int(1e9 / fs))
    breathing = np.cos(2 * np.pi * 0.25 * np.arange(200) / fs)  # everyone in step
    for info in sensors:
        await engine.ingest(Batch(info.sensor_id, "respiration", ts, breathing))
    estimate = await live.update()
    assert estimate is not None
    await requests.wait()
    widget.flush()
    assert widget.title == "synchrony of sync"
    assert widget.r == pytest.approx(estimate.r)
    assert widget.r > 0.95
    np.testing.assert_allclose(
        np.frombuffer(widget.phases, np.float32), estimate.phases, rtol=1e-5, atol=1e-6
    )
    assert widget.labels == list(estimate.sensors)
    widget.close()
    await feed.wait_closed()
    await live.close()


async def test_feed_counts_callback_errors_and_keeps_going(engine: Engine) -> None:
    info = _respiration_sensors("err", 1)[0]
    await engine.register_sensor(info)
    seen: list[int] = []
    done = asyncio.Event()

    def on_message(batch: Batch) -> None:
        seen.append(len(batch))
        if len(seen) == 1:
            raise ValueError("a display bug")
        done.set()

    feed = BusFeed(engine.bus, [f"data:{info.sensor_id}"], on_message)
    ts0 = time.time_ns()
    for k in range(2):
        ts = np.array([ts0 + k * 10**9], dtype=np.int64)
        await engine.ingest(Batch(info.sensor_id, "respiration", ts, np.array([0.5])))
    await asyncio.wait_for(done.wait(), 30)
    assert (feed.errors, feed.delivered) == (1, 1)
    assert isinstance(feed.last_error, ValueError)
    feed.close()
    await feed.wait_closed()


def test_feed_without_a_loop_runs_on_its_own_thread_and_joins_on_close() -> None:
    from sensocto_lab.engine.bus import Bus

    bus = Bus()
    got: list[object] = []
    arrived = threading.Event()

    def on_message(message: object) -> None:
        got.append(message)
        arrived.set()

    feed = BusFeed(bus, ["data:x"], on_message)
    assert feed.running
    # The feed's thread may not have subscribed its waiter yet; the queue holds the message.
    bus.publish("data:x", "hello")
    assert arrived.wait(30)
    feed.close()
    assert not feed.running
    assert got == ["hello"]
