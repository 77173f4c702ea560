"""A dedicated asyncio loop on its own thread, for running the engine beside a Jupyter kernel.

In a notebook the kernel's own loop stalls whenever a cell blocks (a long
computation, ``time.sleep``, a slow plot). Running the engine (and, in the same
way, a Panel server) on an :class:`EngineHost` keeps ingestion, storage and
dashboards going regardless (``docs/architecture.md``, "Dashboards and the kernel").

This module is also the one place that hops a call onto another loop:

- :func:`run_on` ``(loop, coro_fn, *args)``: await the call on ``loop`` from any loop
  (directly when already there; else ``run_coroutine_threadsafe`` + ``wrap_future``,
  so cancelling the caller cancels the work on ``loop``);
- :func:`submit_to` ``(loop, coro)``: the same from plain synchronous code, as a
  thread-safe future; ``host.run_sync(coro_fn, *args)`` blocks on it.

A loop that has closed means its owner has: both raise :class:`ClosedResourceError`.

Only the host loop touches what runs on it; :meth:`close` stops the loop and joins
the thread, so no thread is left behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sensocto_lab.errors import ClosedResourceError

__all__ = [
    "EngineHost",
    "in_jupyter_kernel",
    "on_engine_loop",
    "run_on",
    "running_loop",
    "submit_to",
]

P = ParamSpec("P")
T = TypeVar("T")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or ``None``."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def in_jupyter_kernel() -> bool:
    """True in the main thread of an IPython kernel whose event loop is running.

    That is where a blocking cell would stall an engine sharing the kernel's loop,
    so the engine then defaults to its own loop thread.
    """
    return (
        "ipykernel" in sys.modules
        and threading.current_thread() is threading.main_thread()
        and running_loop() is not None
    )


def submit_to(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]
) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on ``loop`` from any thread; returns a thread-safe future.

    Raises :class:`ClosedResourceError` (and closes ``coro``) when ``loop`` has closed.
    """
    try:
        return asyncio.run_coroutine_threadsafe(coro, loop)
    except RuntimeError:  # the loop's thread has ended
        coro.close()
        raise ClosedResourceError("the engine loop is closed") from None


async def run_on(
    loop: asyncio.AbstractEventLoop | None,
    fn: Callable[P, Coroutine[Any, Any, T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Await ``fn(*args, **kwargs)`` run on ``loop``, whichever loop awaits it.

    ``loop`` ``None`` (not started yet) or the running loop: called directly.
    """
    if loop is None or running_loop() is loop:
        return await fn(*args, **kwargs)
    return await asyncio.wrap_future(submit_to(loop, fn(*args, **kwargs)))


class _OnALoop(Protocol):
    _loop: asyncio.AbstractEventLoop | None


S = TypeVar("S", bound=_OnALoop)


def on_engine_loop(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Run a coroutine method on its object's ``_loop``, whichever loop awaits it.

    The engine's public coroutines are wrapped in it, so a notebook awaiting them on the
    kernel's loop gets the same result as code on the engine's own loop.
    """

    async def hop(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await run_on(self._loop, method, self, *args, **kwargs)

    functools.update_wrapper(hop, method)
    return hop


class EngineHost:
    """An event loop running forever on a daemon thread until :meth:`close`.

    Parameters
    ----------
    name
        The thread's name (shows in ``threading.enumerate()`` and in debuggers).
    """

    def __init__(self, name: str = "sensocto-engine") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._closed = False

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<EngineHost {self.name!r} {state}>"

    def start(self) -> EngineHost:
        """Start the thread and return once its loop is running."""
        if self._thread is not None:
            raise RuntimeError("an EngineHost can be started only once")
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
            # Whatever is still scheduled is cancelled and allowed to clean up.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The host's event loop (raises if the host is not running)."""
        if self._loop is None or self._closed:
            raise ClosedResourceError(f"engine host {self.name!r} is not running")
        return self._loop

    @property
    def thread(self) -> threading.Thread | None:
        """The loop thread (``None`` before :meth:`start`)."""
        return self._thread

    @property
    def is_running(self) -> bool:
        """True while the loop thread is alive and not closing."""
        return not self._closed and self._thread is not None and self._thread.is_alive()

    def in_host_thread(self) -> bool:
        """True when called from the host's own thread."""
        return threading.current_thread() is self._thread

    def submit(
        self, fn: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Schedule ``fn(*args, **kwargs)`` on the host loop; returns a thread-safe future."""
        return submit_to(self.loop, fn(*args, **kwargs))

    async def call(
        self, fn: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` run on the host loop, from any loop."""
        return await run_on(self.loop, fn, *args, **kwargs)

    def run_sync(
        self,
        fn: Callable[P, Coroutine[Any, Any, T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(*args, **kwargs)`` on the host loop and block until it returns.

        For code without an event loop. Raises ``RuntimeError`` when called from the
        host thread itself, where blocking would deadlock (``await`` it there instead).
        """
        if self.in_host_thread():
            raise RuntimeError("run_sync called on the engine loop would deadlock; await instead")
        return self.submit(fn, *args, **kwargs).result()

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the loop (cancelling what still runs on it) and join the thread. Idempotent.

        Must not be called from the host thread; :meth:`stop_soon` is for that.
        """
        if self.in_host_thread():
            raise RuntimeError("close() from the host thread would deadlock; use stop_soon()")
        self.stop_soon()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"engine host thread {self.name!r} did not stop in {timeout} s")

    def stop_soon(self) -> None:
        """Ask the loop to stop after its current turn (safe from any thread)."""
        if self._closed or self._loop is None:
            self._closed = True
            return
        self._closed = True
        loop = self._loop
        # The loop may close between the check and the call when its thread is exiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
