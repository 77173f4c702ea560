"""Supervision of named worker tasks: restart on crash with back-off, give up on a crash loop.

The engine runs one worker per sensor under a :class:`Supervisor`. A worker that
raises an unexpected exception is started again after an exponential back-off
(on the injected clock); one that crashes ``max_crashes`` times within
``window_s`` seconds is left stopped and reported ``failed``. Workers are
independent: one crashing or failing never touches another.

Every change is reported through the ``on_state(name, state, detail)`` callback,
which the engine turns into :class:`~sensocto_lab.engine.status.SensorStatus`
messages. What happens to the work a crashed worker held is the worker's business
(the engine retries or fails its in-flight batch before the exception reaches here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sensocto_lab.clock import Clock
from sensocto_lab.engine.status import SensorState

__all__ = ["RestartPolicy", "Supervisor"]

log = logging.getLogger(__name__)

#: ``on_state(name, state, detail)``: a worker started, is restarting or failed.
StateCallback = Callable[[str, SensorState, str], None]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When and how fast crashed workers are restarted.

    Attributes
    ----------
    max_crashes
        Crashes within ``window_s`` after which the worker is stopped as failed.
    window_s
        Length of the crash-counting window, seconds.
    backoff_initial_s
        Wait before the first restart, seconds; 0 restarts on the next loop turn.
    backoff_factor
        Each further crash in the window multiplies the wait by this.
    backoff_max_s
        Longest wait between restarts, seconds.
    """

    max_crashes: int = 5
    window_s: float = 60.0
    backoff_initial_s: float = 0.05
    backoff_factor: float = 2.0
    backoff_max_s: float = 5.0

    def backoff(self, crashes: int) -> float:
        """Seconds to wait before restarting after the ``crashes``-th crash in the window."""
        delay = self.backoff_initial_s * self.backoff_factor ** max(crashes - 1, 0)
        return min(delay, self.backoff_max_s)


class Supervisor:
    """Owns one asyncio task per worker name and restarts crashed workers.

    Parameters
    ----------
    clock
        Time source for the crash window and the back-off sleeps.
    policy
        Restart limits.
    on_state
        Called on the loop with ``(name, state, detail)`` when a worker is started
        (``RUNNING``), is about to be restarted (``RESTARTING``, detail = the error)
        or has been given up on (``FAILED``).
    """

    def __init__(self, clock: Clock, policy: RestartPolicy, on_state: StateCallback) -> None:
        self._clock = clock
        self._policy = policy
        self._on_state = on_state
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._tasks

    def names(self) -> list[str]:
        """Names of the workers running (or backing off) now."""
        return list(self._tasks)

    def start(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work()`` under supervision until it returns, is stopped, or fails.

        ``work`` is called again for every restart, so it must pick up where the
        last run left off. Raises ``ValueError`` if ``name`` is already running.
        """
        if name in self._tasks:
            raise ValueError(f"worker {name!r} is already supervised")
        task = asyncio.get_running_loop().create_task(
            self._supervise(name, work), name=f"supervised:{name}"
        )
        self._tasks[name] = task
        task.add_done_callback(lambda t: self._forget(name, t))

    def _forget(self, name: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(name) is task:
            del self._tasks[name]

    async def _supervise(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        crashes: deque[float] = deque()
        window = self._policy.window_s
        while True:
            self._on_state(name, SensorState.RUNNING, "")
            try:
                await work()
                return
            except Exception as exc:
                now = self._clock.monotonic()
                crashes.append(now)
                while crashes and now - crashes[0] > window:
                    crashes.popleft()
                detail = f"{type(exc).__name__}: {exc}"
                if len(crashes) >= self._policy.max_crashes:
                    log.error("worker %s failed after %d crashes", name, len(crashes), exc_info=exc)
                    self._on_state(
                        name,
                        SensorState.FAILED,
                        f"crashed {len(crashes)} times within {window:g} s; last: {detail}",
                    )
                    return
                log.warning("worker %s crashed, restarting", name, exc_info=exc)
                self._on_state(name, SensorState.RESTARTING, detail)
                await self._clock.sleep(self._policy.backoff(len(crashes)))

    async def wait(self, name: str) -> None:
        """Wait until the worker ``name`` has returned, failed or been stopped."""
        task = self._tasks.get(name)
        if task is not None:
            await asyncio.wait({task})

    async def stop(self, name: str) -> None:
        """Cancel the worker ``name`` and wait for it (no-op if it is not running)."""
        task = self._tasks.get(name)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def close(self) -> None:
        """Cancel every worker and wait for all of them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
