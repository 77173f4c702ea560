"""The loop thread: calls hop onto it from loops and plain code, and close leaves no thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sensocto_lab.engine.host import EngineHost
from sensocto_lab.errors import ClosedResourceError

WAIT = 10.0


async def where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


async def fail() -> None:
    raise KeyError("from the host")


def test_run_sync_runs_on_the_host_thread_and_close_joins_it() -> None:
    host = EngineHost(name="host-under-test").start()
    try:
        assert host.is_running and host.thread is not None
        assert host.run_sync(where) == "host-under-test"
        with pytest.raises(KeyError, match="from the host"):
            host.run_sync(fail)
    finally:
        host.close()
    assert not host.is_running and not host.thread.is_alive()
    with pytest.raises(ClosedResourceError):
        _ = host.loop
    host.close()  # idempotent


async def test_call_hops_from_a_foreign_loop_and_back() -> None:
    host = EngineHost(name="host-call").start()
    try:
        assert await host.call(where) == "host-call"
        with pytest.raises(KeyError):
            await host.call(fail)
        # A blocked host-side coroutine does not block this loop.
        release = threading.Event()
        blocked = asyncio.ensure_future(host.call(asyncio.to_thread, release.wait, WAIT))
        assert await asyncio.sleep(0, result="this loop still runs") == "this loop still runs"
        release.set()
        assert await asyncio.wait_for(blocked, WAIT) is True
    finally:
        await asyncio.to_thread(host.close)


async def test_cancelling_the_caller_cancels_the_work_on_the_host() -> None:
    host = EngineHost(name="host-cancel").start()
    started = threading.Event()
    cancelled = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        task = asyncio.ensure_future(host.call(forever))
        await asyncio.to_thread(started.wait, WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(cancelled.wait, WAIT)
    finally:
        await asyncio.to_thread(host.close)


def test_blocking_calls_from_the_host_thread_are_refused() -> None:
    host = EngineHost(name="host-refuse").start()

    async def nested_run_sync() -> None:
        host.run_sync(where)

    async def nested_close() -> None:
        host.close()

    try:
        with pytest.raises(RuntimeError, match="deadlock"):
            host.run_sync(nested_run_sync)
        with pytest.raises(RuntimeError, match="deadlock"):
            host.run_sync(nested_close)
    finally:
        host.close()
    assert not host.thread.is_alive()  # type: ignore[union-attr]


def test_close_cancels_what_still_runs_on_the_host() -> None:
    host = EngineHost(name="host-leftover").start()
    cleaned = threading.Event()

    async def lingering() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    host.loop.call_soon_threadsafe(lambda: host.loop.create_task(lingering()))
    host.run_sync(where)  # the task above has started by now
    host.close()
    assert cleaned.is_set()
    assert [t for t in threading.enumerate() if t.name == "host-leftover"] == []


def test_a_host_starts_once() -> None:
    host = EngineHost(name="host-once").start()
    try:
        with pytest.raises(RuntimeError, match="once"):
            host.start()
    finally:
        host.close()
