"""The bus: topic routing, bounded queues, overflow policies, counters, cross-thread readers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sensocto_lab.engine.bus import Bus, Overflow
from sensocto_lab.errors import ClosedResourceError

WAIT = 10.0


def test_messages_reach_exact_and_prefix_subscribers_only() -> None:
    bus = Bus()
    s1 = bus.subscribe("data:s1")
    s2 = bus.subscribe("data:s2")
    every = bus.subscribe("data:*")
    status = bus.subscribe("sensors:status")

    assert bus.publish("data:s1", "a") == 2
    assert bus.publish("data:s2", "b") == 2
    assert bus.publish("system:load", "c") == 0
    assert s1.drain() == ["a"] and s2.drain() == ["b"]
    assert every.drain() == ["a", "b"]
    assert status.drain() == []
    assert bus.has_subscribers("data:anything") and not bus.has_subscribers("room:x")


@pytest.mark.parametrize(
    ("policy", "kept", "closed"),
    [
        (Overflow.DROP_OLDEST, [7, 8, 9], False),
        (Overflow.DROP_NEWEST, [0, 1, 2], False),
        (Overflow.DISCONNECT, [0, 1, 2], True),
    ],
)
def test_a_full_queue_follows_its_policy_and_counts(
    policy: Overflow, kept: list[int], closed: bool
) -> None:
    bus = Bus()
    sub = bus.subscribe("t", maxsize=3, policy=policy)
    for i in range(10):
        bus.publish("t", i)  # never blocks, never raises
    stats = sub.statistics()
    assert stats.queued == 3 and stats.maxsize == 3 and stats.policy is policy
    assert stats.closed is closed
    if policy is Overflow.DISCONNECT:
        # Disconnected on the first overflow: later messages never reached it.
        assert (stats.delivered, stats.dropped) == (3, 1)
        assert not bus.has_subscribers("t")
    else:
        assert (stats.delivered, stats.dropped) == (10 if policy is Overflow.DROP_OLDEST else 3, 7)
    assert sub.drain() == kept
    assert sub.statistics().as_dict()["policy"] == policy.value


async def test_a_disconnected_reader_is_told_why_after_draining() -> None:
    bus = Bus()
    sub = bus.subscribe("t", maxsize=1, policy=Overflow.DISCONNECT)
    bus.publish("t", 1)
    bus.publish("t", 2)
    assert await sub.get() == 1
    with pytest.raises(ClosedResourceError) as err:
        async for _ in sub:
            pass
    assert err.value.reason == "subscriber_overflow"


async def test_get_waits_for_a_publish_and_iteration_ends_on_close() -> None:
    bus = Bus()
    sub = bus.subscribe("t")
    waiting = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    bus.publish("t", "hello")
    assert await asyncio.wait_for(waiting, WAIT) == "hello"

    bus.publish("t", 1)
    bus.publish("t", 2)
    sub.close()
    bus.publish("t", 3)  # after close: not delivered
    assert [m async for m in sub] == [1, 2]
    with pytest.raises(ClosedResourceError):
        sub.get_nowait()
    with pytest.raises(asyncio.QueueEmpty):
        bus.subscribe("u").get_nowait()


async def test_closing_wakes_a_waiting_reader() -> None:
    bus = Bus()
    sub = bus.subscribe("t")
    reader = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    sub.close()
    with pytest.raises(ClosedResourceError):
        await asyncio.wait_for(reader, WAIT)
    assert bus.statistics()["subscribers"] == 0


async def test_a_reader_on_another_threads_loop_is_woken() -> None:
    bus = Bus()
    sub = bus.subscribe("t")
    ready = threading.Event()
    got: list[object] = []

    def reader() -> None:
        async def main() -> None:
            waiting = asyncio.ensure_future(sub.get())
            await asyncio.sleep(0)
            ready.set()
            got.append(await asyncio.wait_for(waiting, WAIT))

        asyncio.run(main())

    thread = threading.Thread(target=reader)
    thread.start()
    await asyncio.to_thread(ready.wait, WAIT)
    bus.publish("t", "across")
    await asyncio.to_thread(thread.join, WAIT)
    assert got == ["across"]


def test_bus_statistics_and_close() -> None:
    bus = Bus()
    a = bus.subscribe("t", maxsize=2)
    b = bus.subscribe("t*", maxsize=5, policy=Overflow.DROP_NEWEST)
    for i in range(4):
        bus.publish("t", i)
    stats = bus.statistics()
    assert stats["published"] == 4 and stats["subscribers"] == 2
    assert stats["dropped"] == 2 and stats["queued"] == 6
    bus.close()
    assert a.closed and b.closed and bus.statistics()["subscribers"] == 0
    assert bus.publish("t", 5) == 0


def test_a_queue_must_hold_something() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Bus().subscribe("t", maxsize=0)
