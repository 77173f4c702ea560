"""Supervision: restart with back-off on the injected clock, give up on a crash loop."""

from __future__ import annotations

import asyncio

import pytest

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine.status import SensorState
from sensocto_lab.engine.supervisor import RestartPolicy, Supervisor

WAIT = 10.0


class Recorder:
    """Collects ``on_state`` calls and lets a test wait for a given one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, SensorState, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, name: str, state: SensorState, detail: str) -> None:
        self.events.append((name, state, detail))
        self._changed.set()

    def states(self, name: str = "w") -> list[SensorState]:
        return [s for n, s, _ in self.events if n == name]

    async def until(self, count: int, name: str = "w") -> None:
        async def wait() -> None:
            while len(self.states(name)) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), WAIT)


def test_back_off_grows_and_is_capped() -> None:
    policy = RestartPolicy(backoff_initial_s=0.5, backoff_factor=2.0, backoff_max_s=3.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_a_worker_that_returns_is_not_restarted() -> None:
    rec = Recorder()
    sup = Supervisor(FakeClock(), RestartPolicy(), rec)
    runs = []

    async def work() -> None:
        runs.append(1)

    sup.start("w", work)
    await sup.wait("w")
    assert runs == [1] and rec.states() == [SensorState.RUNNING]
    assert "w" not in sup


async def test_a_crashed_worker_restarts_after_its_back_off() -> None:
    clock = FakeClock()
    rec = Recorder()
    sup = Supervisor(clock, RestartPolicy(backoff_initial_s=1.0), rec)
    runs = []
    done = asyncio.Event()

    async def work() -> None:
        runs.append(clock.monotonic())
        if len(runs) < 3:
            raise ValueError(f"crash {len(runs)}")
        await done.wait()

    sup.start("w", work)
    await rec.until(2)
    assert rec.events[1] == ("w", SensorState.RESTARTING, "ValueError: crash 1")
    await asyncio.sleep(0)
    assert runs == [0.0]  # still backing off
    clock.advance(1.0)
    await rec.until(4)  # restarted, crashed again
    clock.advance(1.9)  # second back-off is 2 s
    await asyncio.sleep(0)
    assert len(runs) == 2
    clock.advance(0.1)
    await rec.until(5)
    assert runs == [0.0, 1.0, 3.0]
    assert rec.states() == [
        SensorState.RUNNING,
        SensorState.RESTARTING,
        SensorState.RUNNING,
        SensorState.RESTARTING,
        SensorState.RUNNING,
    ]
    done.set()
    await sup.wait("w")


async def test_too_many_crashes_in_the_window_fail_the_worker() -> None:
    rec = Recorder()
    sup = Supervisor(FakeClock(), RestartPolicy(max_crashes=3, backoff_initial_s=0.0), rec)

    async def work() -> None:
        raise RuntimeError("boom")

    sup.start("w", work)
    await sup.wait("w")
    assert rec.states() == [SensorState.RUNNING, SensorState.RESTARTING] * 2 + [
        SensorState.RUNNING,
        SensorState.FAILED,
    ]
    assert "3 times" in rec.events[-1][2] and "boom" in rec.events[-1][2]
    assert "w" not in sup


async def test_crashes_spread_wider_than_the_window_never_fail() -> None:
    clock = FakeClock()
    rec = Recorder()
    policy = RestartPolicy(max_crashes=2, window_s=10.0, backoff_initial_s=0.0)
    sup = Supervisor(clock, policy, rec)
    runs = []
    done = asyncio.Event()

    async def work() -> None:
        runs.append(1)
        if len(runs) <= 4:
            clock.advance(11.0)  # each crash happens more than a window after the last
            raise RuntimeError("rare")
        await done.wait()

    sup.start("w", work)
    await rec.until(9)
    assert SensorState.FAILED not in rec.states() and len(runs) == 5
    done.set()
    await sup.wait("w")


async def test_workers_are_independent_and_can_be_stopped() -> None:
    rec = Recorder()
    sup = Supervisor(FakeClock(), RestartPolicy(max_crashes=1), rec)
    forever = asyncio.Event()

    async def bad() -> None:
        raise RuntimeError("bad")

    async def good() -> None:
        await forever.wait()

    sup.start("good", good)
    sup.start("bad", bad)
    with pytest.raises(ValueError, match="already"):
        sup.start("good", good)
    await sup.wait("bad")
    assert rec.states("bad")[-1] is SensorState.FAILED
    assert "good" in sup
    await sup.stop("good")
    assert "good" not in sup and rec.states("good") == [SensorState.RUNNING]
    await sup.stop("good")  # stopping what is not running is a no-op
    sup.start("good", good)
    await sup.close()
    assert "good" not in sup
