"""Live synchrony on a running engine: published as sync:{room}, stored, right, and fast enough."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.synchrony import LiveSynchrony
from sensocto_lab.engine.topics import SYNC_ATTRIBUTE
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo
from sensocto_lab.sources.simulated import SimulatedGroup
from sensocto_lab.sources.simulator import GroupSimulator, SimConfig
from sensocto_lab.sync.baseline import minmax_phase
from sensocto_lab.sync.kuramoto import synchrony

WAIT = 10.0
TICK = 0.5  # the simulator's batch period and the computer's update period
N = 8
SEED = 5
COUPLING = 0.6
CONFIG = SimConfig(ecg_hz=50.0, accelerometer_hz=10.0)
#: Sleeping tasks once everything is idle: attention, load, simulator, synchrony.
SLEEPERS = 4


async def _idle(clock: FakeClock) -> None:
    async def asleep() -> None:
        while clock.sleepers < SLEEPERS:
            await asyncio.sleep(0)

    await asyncio.wait_for(asleep(), WAIT)


def _truth(start_ns: int, ticks: int) -> tuple[np.ndarray, np.ndarray]:
    """The same simulator, stepped the same way: true phases at respiration times."""
    sim = GroupSimulator(N, COUPLING, SEED, start_ns=start_ns, room="lab", config=CONFIG)
    steps = [sim.advance_to(start_ns + round(k * TICK * 1e9)) for k in range(1, ticks + 1)]
    return np.concatenate([s.phase_ts for s in steps]), np.concatenate([s.phase for s in steps])


def _error(estimated: np.ndarray, true: np.ndarray) -> float:
    """Median phase error after removing the estimator's constant offset.

    The simulator's breath is asymmetric (inhale 40 %), so its fundamental, which the
    Hilbert phase follows, peaks 0.1 cycle before the breath does; a constant offset
    is a convention, not information (R does not change), so each estimator is
    judged after removing its own.
    """
    error = np.angle(np.exp(1j * (estimated - true)))
    offset = np.angle(np.nanmean(np.exp(1j * error)))
    return float(np.nanmedian(np.abs(np.angle(np.exp(1j * (error - offset))))))


async def test_live_synchrony_against_truth_offline_and_the_heuristic(tmp_path: Path) -> None:
    clock = FakeClock()
    start_ns = clock.time_ns()
    async with Engine(tmp_path, clock=clock, thread=False) as engine:
        group = await SimulatedGroup.start(engine,
            N, room="lab", coupling=COUPLING, seed=SEED, tick_s=TICK, config=CONFIG
        )
        live = await LiveSynchrony.start(engine, "lab", clock=clock)
        assert live.sensor_id in engine.sensors
        assert set(engine.sensors[live.sensor_id].attributes) == {SYNC_ATTRIBUTE}

        ticks = 160  # 80 s
        estimates, heuristic = [], []
        for _ in range(ticks):
            await _idle(clock)
            clock.advance(TICK)
            await _idle(clock)
            if live.latest is not None:
                estimates.append(live.latest)
            recent = [engine.store.latest(s, "respiration", 50) for s in group.sensor_ids]
            if all(len(ts) == 50 for ts, _ in recent):
                heuristic.append((recent[0][0][-1], minmax_phase(np.stack([v for _, v in recent]))))

        # Published through the engine and stored like any other sensor's samples.
        stored = engine.store.history(sensors=[live.sensor_id], attributes=[SYNC_ATTRIBUTE])
        values = stored[SYNC_ATTRIBUTE].sel(sensor=live.sensor_id).values
        assert values.size == live.published >= ticks - 2 * 30
        assert np.all((values >= 0) & (values <= 1))
        assert stored[SYNC_ATTRIBUTE].attrs["units"] == "1"
        assert live.statistics()["participants"] == N and live.errors == 0

        # Agrees with the offline analysis of the same window read back from storage.
        last = live.latest
        assert last is not None
        cfg = live.online.config
        step = cfg.step_ns
        window_start = last.t_ns - (cfg.window - 1 - cfg.lag) * step
        window_end = last.t_ns + cfg.lag * step
        history = engine.store.history(
            sensors=list(group.sensor_ids),
            attributes=["respiration"],
            start=window_start,
            end=window_end + 1,
        )
        offline = synchrony(history, fs=cfg.fs)
        at = int(np.searchsorted(offline["time"].values.astype(np.int64), last.t_ns))
        assert offline.sizes["time"] == cfg.window
        assert last.r == pytest.approx(float(offline.values[at]), abs=1e-9)

        # Against the ground truth: R, and phases better than Sensocto's heuristic.
        true_ts, true_phase = _truth(start_ns, ticks)
        settled = [e for e in estimates if e.t_ns >= start_ns + 35 * 10**9]
        rows = np.searchsorted(true_ts, [e.t_ns for e in settled])
        assert np.array_equal(true_ts[rows], [e.t_ns for e in settled])
        r_true = np.abs(np.exp(1j * true_phase[rows]).mean(axis=1))
        r_live = np.array([e.r for e in settled])
        assert np.median(np.abs(r_live - r_true)) <= 0.05
        ours = _error(np.stack([e.phases for e in settled]), true_phase[rows])
        at_h = np.searchsorted(true_ts, [t for t, _ in heuristic])
        theirs = _error(np.stack([p for _, p in heuristic]), true_phase[at_h])
        assert ours <= 0.3 and ours < theirs, (ours, theirs)

        await live.close()
        assert live.sensor_id not in engine.sensors
        published = live.published
        await _idle_after_close(clock)
        assert live.published == published
        await group.stop()


async def _idle_after_close(clock: FakeClock) -> None:
    async def asleep() -> None:
        while clock.sleepers < SLEEPERS - 1:
            await asyncio.sleep(0)

    await asyncio.wait_for(asleep(), WAIT)
    clock.advance(2 * TICK)
    await asyncio.wait_for(asleep(), WAIT)


async def test_other_rooms_and_other_kinds_are_ignored(tmp_path: Path) -> None:
    clock = FakeClock()
    async with Engine(tmp_path, clock=clock, thread=False) as engine:
        resp = AttributeInfo.of("respiration")
        hr = AttributeInfo.of("hr")
        await engine.register_sensor(SensorInfo("a", {"respiration": resp, "hr": hr}, room="lab"))
        await engine.register_sensor(SensorInfo("b", {"respiration": resp}, room="elsewhere"))
        async with LiveSynchrony(engine, "lab", clock=clock) as live:
            t = clock.time_ns() + np.arange(5, dtype=np.int64) * 100_000_000
            await engine.ingest(Batch("a", "respiration", t, np.arange(5.0)))
            await engine.ingest(Batch("a", "hr", t, np.full(5, 60.0)))
            await engine.ingest(Batch("b", "respiration", t, np.arange(5.0)))
            estimate = await live.update()
            assert live.online.sensors == ("a",)
            assert estimate is not None and estimate.n <= 1 and np.isnan(estimate.r)
            assert live.published == 0  # R needs two participants: nothing to publish


async def test_threaded_engine_from_another_loop(tmp_path: Path) -> None:
    engine = await Engine.start(tmp_path, thread=True)
    try:
        live = await LiveSynchrony.start(engine, "lab", rate_hz=50.0)
        assert live.sensor_id in engine.sensors
        assert repr(live).startswith("<LiveSynchrony sync:lab running")
        await live.close()
        assert live.sensor_id not in engine.sensors
    finally:
        await engine.close()
        await engine.wait_closed()


def test_bad_parameters_are_refused() -> None:
    engine = Engine(store=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LiveSynchrony(engine, "lab", rate_hz=0.0)
    with pytest.raises(Exception, match="room"):
        LiveSynchrony(engine, "bad room!")
