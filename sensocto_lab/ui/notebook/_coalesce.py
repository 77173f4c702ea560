"""Coalesce widget updates from any thread into at most ``max_hz`` sends.

A live widget may be fed hundreds of times a second (one call per engine batch) from the
engine's loop thread, while the browser only needs a frame every ~66 ms. The widget keeps
its data in Python (under its own lock) and calls :meth:`Coalescer.request` after each
change; the coalescer runs the widget's ``flush`` (which snapshots the data and sets the
synced traitlets) at most ``max_hz`` times per second, always once more after the last
request, so the final state is never lost.

Where the flush runs is decided by ``schedule``: by default on the asyncio loop that was
running when the coalescer was made (the Jupyter kernel's loop, so comm messages leave
from the kernel's own thread), else on a short-lived timer thread (scripts, Panel servers).
Tests pass a :class:`~sensocto_lab.clock.FakeClock` and their own ``schedule``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.errors import ConfigError

__all__ = ["Coalescer", "CoalescerStats", "Schedule"]

#: ``schedule(delay_s, callback)``: run ``callback`` (no arguments) after ``delay_s`` seconds.
Schedule = Callable[[float, Callable[[], None]], None]


@dataclass(frozen=True, slots=True)
class CoalescerStats:
    """Counters: ``requests`` received, ``flushes`` run, ``failures`` (flush raised)."""

    requests: int
    flushes: int
    failures: int


def _default_schedule() -> Schedule:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        running = loop

        def on_loop(delay: float, callback: Callable[[], None]) -> None:
            if running.is_closed():
                return
            running.call_soon_threadsafe(running.call_later, delay, callback)

        return on_loop

    def on_timer(delay: float, callback: Callable[[], None]) -> None:
        timer = threading.Timer(delay, callback)
        timer.daemon = True
        timer.start()

    return on_timer


class Coalescer:
    """Run ``flush`` at most ``max_hz`` times per second, however often it is requested.

    Parameters
    ----------
    flush
        Sends the current state (called with no arguments, never concurrently with itself).
    max_hz
        Highest flush rate, in flushes per second (default 15).
    clock
        Time source for the rate limit (``monotonic()`` seconds).
    schedule
        How a deferred flush is run; see the module docstring.
    """

    def __init__(
        self,
        flush: Callable[[], None],
        *,
        max_hz: float = 15.0,
        clock: Clock | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        if not max_hz > 0:
            raise ConfigError(f"max_hz must be positive, got {max_hz!r}")
        self._flush = flush
        self._interval = 1.0 / max_hz
        self._clock = clock or SystemClock()
        self._schedule = schedule or _default_schedule()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending = False
        self._scheduled = False
        self._last: float | None = None
        self._requests = 0
        self._flushes = 0
        self._failures = 0
        self.last_error: BaseException | None = None

    @property
    def interval_s(self) -> float:
        """Shortest time between two flushes, in seconds."""
        return self._interval

    def request(self) -> None:
        """Ask for a flush; thread-safe, never blocks on the flush itself."""
        with self._lock:
            self._requests += 1
            self._pending = True
            if self._scheduled:
                return
            self._scheduled = True
            delay = self._delay_locked()
        self._schedule(delay, self._run)

    def flush_now(self) -> None:
        """Flush at once if anything is pending (e.g. before a notebook cell ends)."""
        with self._lock:
            if not self._pending:
                return
        self._run(force=True)

    def statistics(self) -> CoalescerStats:
        """The counters so far."""
        with self._lock:
            return CoalescerStats(self._requests, self._flushes, self._failures)

    def _delay_locked(self) -> float:
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self._interval - self._clock.monotonic())

    def _run(self, force: bool = False) -> None:
        with self._lock:
            delay = self._delay_locked()
            if delay > 0 and not force:
                # Woken early (a real timer's jitter, or a fake clock not yet advanced).
                self._schedule(delay, self._run)
                return
            self._scheduled = False
            if not self._pending:
                return
            self._pending = False
            self._last = self._clock.monotonic()
            self._flushes += 1
        with self._flush_lock:
            try:
                self._flush()
            except Exception as exc:  # a broken view must not kill the feeding thread
                with self._lock:
                    self._failures += 1
                self.last_error = exc
