"""Per-viewer buffering by tier (sensocto_lab/engine/lens.py)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.lens import DEFAULT_FLUSH_MS, Lens, RateGovernor, TierBuffer
from sensocto_lab.errors import ClosedResourceError
from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo

H, M, L, N = (
    AttentionLevel.HIGH,
    AttentionLevel.MEDIUM,
    AttentionLevel.LOW,
    AttentionLevel.NONE,
)
T0 = 1_767_225_600 * 10**9


def batch(
    sensor: str, n: int, start: int = 0, attr: str = "respiration", *, stamped: bool = True
) -> Batch:
    """Samples ``start .. start+n-1`` (values equal their index), 10 ms apart."""
    ts = T0 + np.arange(start, start + n, dtype=np.int64) * 10**7
    values = np.arange(start, start + n, dtype=np.float64)
    raw = Batch(sensor, attr, ts, values)
    return raw.stamped(T0, start) if stamped else raw


def test_each_tier_flushes_at_its_interval_and_none_only_buffers() -> None:
    clock = FakeClock()
    buf = TierBuffer(clock)
    buf.set_views({"h": H, "m": M, "l": L, "n": N})
    assert buf.next_due_s() is None  # nothing buffered
    flushed_at: dict[str, list[int]] = {s: [] for s in "hmln"}
    for step in range(1, 301):  # 300 ms in 1 ms steps, a sample per sensor per ms
        clock.advance(0.001)
        for s in "hmln":
            buf.add(batch(s, 1, step))
        for sensor, _attr in buf.due():
            flushed_at[sensor].append(step)
    gaps = {s: np.diff(v) for s, v in flushed_at.items()}
    assert set(gaps["h"]) <= {29, 30}  # 32 ms, less the 10% slack for early wake-ups
    assert gaps["m"].min() >= 45 and gaps["m"].max() <= 46
    assert gaps["l"].min() >= 90 and gaps["l"].max() <= 91
    assert flushed_at["n"] == []
    assert len(flushed_at["h"]) > len(flushed_at["m"]) > len(flushed_at["l"]) > 0


def test_a_flush_carries_every_sample_in_order_once() -> None:
    clock = FakeClock()
    buf = TierBuffer(clock)
    buf.set_views({"s": M})
    seen: list[float] = []
    for i in range(40):
        buf.add(batch("s", 3, 3 * i))
        clock.advance(0.02)
        for out in buf.due().values():
            assert out.recv_ts is not None and out.seq is not None
            assert len(out.ts) == len(out.values) == len(out.seq)
            seen.extend(out.values.tolist())
    clock.advance(1.0)
    for out in buf.due().values():
        seen.extend(out.values.tolist())
    assert seen == list(range(120))
    stats = buf.statistics()
    assert stats.received == stats.flushed == 120 and stats.dropped == 0


def test_full_buffers_drop_oldest_for_display_only() -> None:
    clock = FakeClock()
    buf = TierBuffer(clock, capacity=10)
    buf.set_views({"s": N})
    for i in range(5):
        buf.add(batch("s", 4, 4 * i))  # 20 samples while hidden
    assert buf.due() == {}
    buf.set_views({"s": H})  # shown again: the newest 10 arrive at once
    (out,) = buf.due().values()
    assert out.values.tolist() == list(range(10, 20))
    assert out.seq is not None and out.seq.tolist() == list(range(10, 20))
    assert buf.statistics().dropped == 10


def test_only_shown_sensors_and_attributes_are_buffered() -> None:
    clock = FakeClock()
    buf = TierBuffer(clock)
    buf.set_views({"a": M, "b": M}, attributes={"a": ["respiration"]})
    assert buf.add(batch("a", 1))
    assert not buf.add(batch("a", 1, attr="ecg"))
    assert buf.add(batch("b", 1, attr="ecg"))
    assert not buf.add(batch("stranger", 1))
    buf.set_views({"b": L})  # "a" no longer shown: its buffer goes
    clock.advance(1.0)
    assert set(buf.due()) == {("b", "ecg")}


def test_data_after_its_interval_goes_out_at_once_sooner_at_last_flush_plus_interval() -> None:
    clock = FakeClock()
    buf = TierBuffer(clock)
    buf.set_views({"s": M})
    buf.add(batch("s", 1))
    assert buf.next_due_s() == 0.0 and set(buf.due()) == {("s", "respiration")}
    clock.advance(0.060)  # a whole interval later: out at once, not on a grid
    buf.add(batch("s", 1, 1))
    assert buf.next_due_s() == 0.0 and set(buf.due()) == {("s", "respiration")}
    clock.advance(0.020)  # sooner: waits for the interval (less the slack) since the last flush
    buf.add(batch("s", 1, 2))
    assert buf.next_due_s() == pytest.approx(0.045 - 0.020)
    assert buf.due() == {}
    clock.advance(0.025)
    (out,) = buf.due().values()
    assert out.values.tolist() == [2.0]


def test_sensors_arriving_a_moment_apart_share_one_flush() -> None:
    clock = FakeClock()
    buf = TierBuffer(clock, settle_ms=2.0)
    buf.set_views({"a": M, "b": M})
    buf.add(batch("a", 1))
    assert buf.next_due_s() == pytest.approx(0.002)
    assert buf.due() == {}  # not settled yet
    clock.advance(0.001)
    buf.add(batch("b", 1))
    assert buf.due() == {}
    clock.advance(0.001)
    assert set(buf.due()) == {("a", "respiration"), ("b", "respiration")}
    assert buf.statistics().flushes == 1
    clock.advance(0.050)  # the next round settles again, from its own first arrival
    buf.add(batch("b", 1, 1))
    assert buf.next_due_s() == pytest.approx(0.002)


def test_flushes_keep_the_session_gap_whichever_sensors_they_carry() -> None:
    clock = FakeClock()
    buf = TierBuffer(clock, gap_ms=30.0)
    buf.set_views({"a": H, "b": H})
    buf.add(batch("a", 1))
    assert set(buf.due()) == {("a", "respiration")}
    clock.advance(0.005)
    buf.add(batch("b", 1))  # b's interval has passed (never flushed), the gap has not
    assert not buf.is_due("a") and buf.is_due("b")
    assert buf.next_due_s() == pytest.approx(0.027 - 0.005)  # 30 ms less the slack
    assert buf.due() == {}
    clock.advance(0.022)
    buf.add(batch("a", 1, 1))  # a is due again at 28.8 ms, within the gap: it goes along
    assert not buf.is_due("a")
    assert set(buf.due()) == {("a", "respiration"), ("b", "respiration")}
    clock.advance(0.001)
    buf.add(batch("b", 1, 1))  # b early again: its own interval (28.8 ms) bounds it
    assert buf.next_due_s() == pytest.approx(0.0288 - 0.001)
    with pytest.raises(ValueError):
        TierBuffer(clock, gap_ms=-1.0)


def test_sensors_a_gap_apart_fall_into_step_instead_of_alternating() -> None:
    """Ten sensors sampled together at 20 Hz, medium tier, 30 ms session gap.

    Started out of step (half flushed a gap after the other half), they would keep
    alternating if a sensor a few ms short of its interval waited for the next flush.
    """
    clock = FakeClock()
    buf = TierBuffer(clock, gap_ms=30.0)
    sensors = [f"s{i}" for i in range(10)]
    buf.set_views(dict.fromkeys(sensors, M))
    for s in sensors[:5]:
        buf.add(batch(s, 1))
    assert len(buf.due()) == 5
    clock.advance(0.030)
    for s in sensors[5:]:
        buf.add(batch(s, 1))
    assert len(buf.due()) == 5  # out of step: the second half a gap later
    waits: list[float] = []
    for k in range(1, 40):  # every 50 ms all ten sample together
        clock.advance(0.020)
        arrived = clock.monotonic()
        for s in sensors:
            buf.add(batch(s, 1, k))
        while (wait := buf.next_due_s()) is not None:
            clock.advance(wait)
            for _key in buf.due():
                waits.append(clock.monotonic() - arrived)
        clock.advance(0.030 - (clock.monotonic() - arrived))
    assert max(waits[-100:]) < 0.001  # in step: every sample goes out when it arrives
    assert buf.statistics().flushes < 2 + 39 + 5  # one flush per round after falling in step


def test_governor_slows_on_lag_and_recovers() -> None:
    gov = RateGovernor(target_lag_ms=100, max_factor=8)
    assert [gov.report(500) for _ in range(4)] == [2, 4, 8, 8]
    assert gov.report(80) == 8  # between half and full target: hold
    factors = [gov.report(10) for _ in range(20)]
    assert factors[0] == pytest.approx(6.4) and factors[-1] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(factors))


def test_lag_stretches_the_buffer_intervals() -> None:
    clock = FakeClock()
    buf = TierBuffer(clock)
    buf.set_views({"s": M, "hidden": N})
    buf.governor.report(1000)
    assert buf.interval_s(M) == pytest.approx(2 * DEFAULT_FLUSH_MS[M] / 1000)
    buf.add(batch("hidden", 1))
    assert buf.next_due_s() is None  # hidden data is never due
    buf.add(batch("s", 1))
    assert buf.is_due("s") and buf.next_due_s() == 0.0  # never flushed: due at once
    assert set(buf.due()) == {("s", "respiration")}
    buf.add(batch("s", 1, 1))
    assert not buf.is_due("s")
    assert buf.next_due_s() == pytest.approx(0.1 * 0.9)  # 2 × 50 ms, less the slack
    clock.advance(0.0901)
    assert buf.is_due("s") and buf.next_due_s() == 0.0
    assert buf.interval_s(N) is None
    with pytest.raises(ValueError):
        TierBuffer(clock, capacity=0)


# -- the lens on a real engine -----------------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = await Engine.start(tmp_path, thread=False)
    for sid in ("a", "b", "c"):
        await eng.register_sensor(
            SensorInfo(sid, {"respiration": AttributeInfo.of("respiration")}, room="lab")
        )
    yield eng
    await eng.close()
    await eng.wait_closed()


async def test_lens_registers_views_and_flushes_what_arrives(engine: Engine) -> None:
    flushes: asyncio.Queue[dict[tuple[str, str], Batch]] = asyncio.Queue()
    lens = await Lens("viewer-1", engine, flushes.put_nowait).start()
    await lens.set_views({"a": H, "b": L, "c": N})
    assert engine.attention.views("viewer-1") == {"a": H, "b": L, "c": N}
    assert [engine.attention.level(s) for s in "abc"] == [H, L, N]

    for i in range(3):
        for sid in "abc":
            await engine.ingest(batch(sid, 5, 5 * i, stamped=False))
    got: dict[str, list[float]] = {}
    while sum(len(v) for v in got.values()) < 30:
        flush = await asyncio.wait_for(flushes.get(), timeout=10)
        for (sid, _attr), b in flush.items():
            got.setdefault(sid, []).extend(b.values.tolist())
    assert got == {"a": list(range(15)), "b": list(range(15))}  # "c" is hidden: buffered only

    await lens.set_views({"c": M})  # "a" and "b" dropped, "c" shown: its buffer arrives
    flush = await asyncio.wait_for(flushes.get(), timeout=10)
    assert set(flush) == {("c", "respiration")}
    assert flush["c", "respiration"].values.tolist() == list(range(15))
    assert engine.attention.views("viewer-1") == {"c": M}
    assert engine.attention.level("a") == N

    await lens.close()
    assert "viewer-1" not in engine.attention.viewer_ids
    with pytest.raises(ClosedResourceError):
        await lens.set_views({"a": H})


async def test_a_stalled_lens_drops_for_display_and_never_blocks_ingest(engine: Engine) -> None:
    lens = Lens("slow", engine, lambda _flush: None, queue_size=4, capacity=8)
    await lens.set_views({"a": N})  # never flushed, never read faster than it arrives
    for i in range(50):
        await asyncio.wait_for(engine.ingest(batch("a", 2, 2 * i, stamped=False)), timeout=10)
    ts, _values = engine.store.latest("a", "respiration")
    assert len(ts) >= 50  # storage kept what the display dropped
    stats = lens.statistics()
    assert stats.received > 8 and stats.received - stats.dropped <= 8  # newest 8 kept
    await lens.close()


async def test_lens_flushes_on_its_clock_once_sensors_have_settled(engine: Engine) -> None:
    clock = FakeClock()
    flushes: asyncio.Queue[dict[tuple[str, str], Batch]] = asyncio.Queue()
    lens = Lens("settling", engine, flushes.put_nowait, clock=clock, settle_ms=5.0)
    await lens.start()
    await lens.set_views({"a": M, "b": M})
    await engine.ingest(batch("a", 1, stamped=False))
    await engine.ingest(batch("b", 1, stamped=False))

    async def asleep() -> None:  # both samples read, the flush loop waiting on the clock
        while lens.statistics().received < 2 or clock.sleepers < 1:
            await asyncio.sleep(0)

    await asyncio.wait_for(asleep(), 10)
    clock.advance(0.004)
    await asyncio.wait_for(asleep(), 10)
    assert flushes.empty()  # not settled yet
    clock.advance(0.001)
    flush = await asyncio.wait_for(flushes.get(), timeout=10)
    assert set(flush) == {("a", "respiration"), ("b", "respiration")}
    await lens.close()


async def test_flush_intervals_can_be_overridden(engine: Engine) -> None:
    flushes: asyncio.Queue[dict[tuple[str, str], Batch]] = asyncio.Queue()
    lens = Lens("every-tier", engine, flushes.put_nowait, flush_ms=lambda _level: 20.0)
    await lens.start()
    await lens.set_views({"a": N})  # hidden, yet flushed: the override says so
    await engine.ingest(batch("a", 3, stamped=False))
    flush = await asyncio.wait_for(flushes.get(), timeout=10)
    assert flush["a", "respiration"].values.tolist() == [0.0, 1.0, 2.0]
    await lens.close()
