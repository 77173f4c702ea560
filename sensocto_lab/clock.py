"""Clocks: the real one, and a fake one tests drive by hand.

Everything that depends on the passage of time (attention decay, batching
windows, tier ageing, stale-sensor checks, load hysteresis) takes a
:class:`Clock`, so tests advance time instead of sleeping. :class:`Backoff` is the one
reconnect-delay policy (BLE links and WebSocket clients alike), :class:`TokenBucket` the
one rate limit (frames per socket, markers per channel, presses per dashboard).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["Backoff", "Clock", "FakeClock", "SystemClock", "TokenBucket"]


@runtime_checkable
class Clock(Protocol):
    """The time source.

    ``monotonic()`` (seconds, for intervals and deadlines) and ``time_ns()`` (wall
    clock, ns since the epoch, for timestamps) must advance together.
    """

    def monotonic(self) -> float: ...

    def time_ns(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time_ns`, :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time_ns(self) -> int:
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when :meth:`advance` is called.

    ``sleep`` returns a future that completes once the clock has been advanced past its
    deadline, so a task sleeping on a fake clock wakes in the order a real one would.

    Parameters
    ----------
    start_ns
        Wall-clock time at creation, ns since the epoch (default 2026-01-01T00:00:00Z).
    """

    def __init__(self, start_ns: int = 1_767_225_600 * 10**9) -> None:
        self._mono = 0.0
        self._wall0 = start_ns
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def monotonic(self) -> float:
        return self._mono

    def time_ns(self) -> int:
        return self._wall0 + round(self._mono * 1e9)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._counter), fut))
        await fut

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper whose deadline passed."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._mono += seconds
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    @property
    def sleepers(self) -> int:
        """Number of pending sleeps (tests wait for tasks to reach their sleep)."""
        return sum(1 for *_, f in self._sleepers if not f.done())


@dataclass(slots=True)
class Backoff:
    """Reconnect delays: ``initial_s``, times ``factor`` per failed attempt, at most ``max_s``.

    :meth:`delay` is the pure policy; :meth:`next` and :meth:`reset` keep the attempt
    count for a caller that reconnects in a loop (reset after a connection worked, so the
    next loss is retried quickly again).
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    attempt: int = field(default=0, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (0 = first)."""
        return float(min(self.max_s, self.initial_s * self.factor**attempt))

    def next(self) -> float:
        """The wait before the next attempt, in seconds; counts the attempt."""
        delay = self.delay(self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from ``initial_s`` (the connection worked)."""
        self.attempt = 0


class TokenBucket:
    """A token bucket on an injected clock: ``rate`` tokens a second, at most ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock.monotonic()
        #: Takes refused so far (for logs and statistics).
        self.refused = 0

    def take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if there are that many; False (nothing taken) otherwise."""
        now = self._clock.monotonic()
        tokens = self._tokens + (now - self._at) * self.rate
        self._tokens = tokens if tokens < self.burst else float(self.burst)
        self._at = now
        if self._tokens >= n:
            self._tokens -= n
            return True
        self.refused += 1
        return False
