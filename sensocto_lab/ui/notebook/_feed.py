"""Feed a widget from engine bus topics, without ever slowing the engine.

A :class:`BusFeed` subscribes to some topics (bounded queues, oldest dropped when the
widget falls behind: a display only needs recent data) and hands every message to a
callback. It runs as a task on the event loop that is running when it is made (the
Jupyter kernel's loop, while the engine runs on its own loop thread), or, in plain
synchronous code, on a small thread of its own. :meth:`BusFeed.close` stops it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import anywidget

from sensocto_lab.engine.bus import Bus, Overflow, Subscription
from sensocto_lab.ui.notebook._coalesce import Coalescer

__all__ = ["BusFeed", "LiveWidget"]


class LiveWidget(anywidget.AnyWidget):
    """A widget fed from the bus and sending through a :class:`Coalescer`.

    Subclasses set ``self._feeds = []`` first thing in ``__init__`` (so :meth:`close`
    works even if construction fails) and ``self.coalescer`` once built.
    """

    _feeds: list[BusFeed]
    coalescer: Coalescer

    def _follow(
        self, bus: Bus, topics: Sequence[str], on_message: Callable[[Any], None]
    ) -> BusFeed:
        feed = BusFeed(bus, topics, on_message)
        self._feeds.append(feed)
        return feed

    def close(self) -> None:
        """Stop following the engine and close the widget's comm."""
        for feed in self._feeds:
            feed.close()
        self._feeds.clear()
        super().close()

    def flush(self) -> None:
        """Send any pending state now (ignoring the rate limit)."""
        self.coalescer.flush_now()


class BusFeed:
    """Deliver messages of ``topics`` on ``bus`` to ``on_message``.

    Parameters
    ----------
    bus
        The engine's bus (``engine.bus``).
    topics
        Exact topics or ``prefix*`` patterns.
    on_message
        Called with each message, oldest first. An exception it raises is counted in
        :attr:`errors` (last one in :attr:`last_error`) and the feed carries on.
    maxsize
        Messages held per topic while the callback is behind; older ones are dropped.
    """

    def __init__(
        self,
        bus: Bus,
        topics: Sequence[str],
        on_message: Callable[[Any], None],
        *,
        maxsize: int = 256,
    ) -> None:
        self._on_message = on_message
        self._subs: list[Subscription] = [
            bus.subscribe(t, maxsize=maxsize, policy=Overflow.DROP_OLDEST) for t in topics
        ]
        self.delivered = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._task = loop.create_task(self._run())
        else:
            self._thread = threading.Thread(
                target=asyncio.run, args=(self._run(),), name="sensocto-widget-feed", daemon=True
            )
            self._thread.start()

    def __repr__(self) -> str:
        topics = [s.topic for s in self._subs]
        return f"<BusFeed {topics} delivered={self.delivered} errors={self.errors}>"

    @property
    def running(self) -> bool:
        """True until the feed has stopped (after :meth:`close`)."""
        if self._task is not None:
            return not self._task.done()
        return self._thread is not None and self._thread.is_alive()

    def subscriptions(self) -> list[Subscription]:
        """The feed's bus subscriptions (for their ``statistics()``)."""
        return list(self._subs)

    async def _run(self) -> None:
        await asyncio.gather(*(self._pump(sub) for sub in self._subs))

    async def _pump(self, sub: Subscription) -> None:
        async for first in sub:
            for message in [first, *sub.drain()]:
                try:
                    self._on_message(message)
                except Exception as exc:  # bad data must not stop the display
                    self.errors += 1
                    self.last_error = exc
                else:
                    self.delivered += 1

    def close(self, timeout: float = 10.0) -> None:
        """Unsubscribe; the feed stops once it has handed over what was queued."""
        for sub in self._subs:
            sub.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    async def wait_closed(self) -> None:
        """Wait until the feed's task has finished (after :meth:`close`)."""
        if self._task is not None:
            await asyncio.shield(self._task)
