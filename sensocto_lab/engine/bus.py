"""The in-process bus: topics, and one bounded queue per subscriber.

Publishing never blocks and never raises on a full queue: each subscription has a
``maxsize`` and a named :class:`Overflow` policy that decides what a full queue
does, and counts what it dropped. A stalled subscriber therefore costs the
publisher one deque append and nothing else; ingestion and storage never wait on it.

Topics (docs/architecture.md): ``data:{sensor_id}``, ``data:attention:{level}``,
``room:{room_id}``, ``signal:{sensor_id}``, ``sensors:status``, ``system:load``.
A subscription topic ending in ``*`` matches every topic with that prefix.

Messages are published from the engine's loop. A subscription may be read from
another event loop or thread (a notebook cell awaiting live data while the engine
runs on its own loop thread): the queue is guarded by a lock and a waiting reader
is woken on its own loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sensocto_lab.errors import ClosedResourceError, ConfigError

__all__ = ["Bus", "Overflow", "Subscription", "SubscriptionStats"]

#: Queue size when a subscriber does not choose one.
DEFAULT_MAXSIZE = 1024


class Overflow(enum.Enum):
    """What a full subscriber queue does with a new message.

    ``DROP_OLDEST``
        Discard the oldest queued message and keep the new one (live views: the
        newest data matters most).
    ``DROP_NEWEST``
        Discard the new message and keep the queue as it is (consumers that want a
        gap-free prefix, e.g. a recorder that will catch up from storage).
    ``DISCONNECT``
        Close the subscription; its reader gets :class:`ClosedResourceError` with
        reason ``"subscriber_overflow"`` once the queued messages are read.
    """

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    DISCONNECT = "disconnect"


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    """Counters of one subscription.

    Attributes
    ----------
    topic
        What it subscribed to (may end in ``*``).
    delivered
        Messages put into its queue since it was created.
    dropped
        Messages lost to the overflow policy (never delivered, or evicted unread).
    queued
        Messages waiting to be read now.
    maxsize
        The queue's bound.
    policy
        The overflow policy.
    closed
        Whether it was closed (by its owner, the bus, or ``DISCONNECT``).
    """

    topic: str
    delivered: int
    dropped: int
    queued: int
    maxsize: int
    policy: Overflow
    closed: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for ``health()``."""
        return {
            "topic": self.topic,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "queued": self.queued,
            "maxsize": self.maxsize,
            "policy": self.policy.value,
            "closed": self.closed,
        }


class Subscription:
    """One subscriber's bounded queue; create with :meth:`Bus.subscribe`.

    Read with ``await sub.get()`` or ``async for msg in sub``; the loop ends when
    the subscription is closed and its queue drained.
    """

    def __init__(self, bus: Bus, topic: str, maxsize: int, policy: Overflow) -> None:
        if maxsize < 1:
            raise ConfigError(f"maxsize must be at least 1, got {maxsize}")
        self._bus = bus
        self.topic = topic
        self.maxsize = maxsize
        self.policy = policy
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._delivered = 0
        self._dropped = 0
        self._closed_reason: str | None = None

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<Subscription {self.topic!r} queued={s.queued}/{s.maxsize} "
            f"delivered={s.delivered} dropped={s.dropped} {s.policy.value}>"
        )

    @property
    def closed(self) -> bool:
        """True once closed; queued messages may still be read."""
        return self._closed_reason is not None

    def statistics(self) -> SubscriptionStats:
        """The counters now."""
        with self._lock:
            return SubscriptionStats(
                self.topic,
                self._delivered,
                self._dropped,
                len(self._queue),
                self.maxsize,
                self.policy,
                self.closed,
            )

    def _offer(self, message: Any) -> bool:
        """Queue ``message`` by the overflow policy; True if it was queued. Never blocks."""
        with self._lock:
            if self._closed_reason is not None:
                return False
            if len(self._queue) >= self.maxsize:
                self._dropped += 1
                if self.policy is Overflow.DROP_NEWEST:
                    return False
                if self.policy is Overflow.DISCONNECT:
                    self._closed_reason = "subscriber_overflow"
                    self._wake_locked()
                    disconnected = True
                else:
                    self._queue.popleft()
                    disconnected = False
            else:
                disconnected = False
            if not disconnected:
                self._queue.append(message)
                self._delivered += 1
                self._wake_locked()
                return True
        self._bus._remove(self)
        return False

    def _wake_locked(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        loop = waiter.get_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            waiter.set_result(None)
        else:
            # A reader whose loop has closed cannot be woken; publishing must not fail for it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_set_if_pending, waiter)

    def get_nowait(self) -> Any:
        """The oldest queued message.

        Raises
        ------
        asyncio.QueueEmpty
            Nothing is queued and the subscription is open.
        ClosedResourceError
            Nothing is queued and the subscription is closed (reason ``"closed"`` or
            ``"subscriber_overflow"``).
        """
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self._closed_reason is not None:
                raise ClosedResourceError(
                    f"subscription to {self.topic!r} is closed", reason=self._closed_reason
                )
            raise asyncio.QueueEmpty

    async def get(self) -> Any:
        """Wait for the next message (see :meth:`get_nowait` for the errors)."""
        while True:
            with self._lock:
                if self._queue:
                    return self._queue.popleft()
                if self._closed_reason is not None:
                    raise ClosedResourceError(
                        f"subscription to {self.topic!r} is closed", reason=self._closed_reason
                    )
                waiter = asyncio.get_running_loop().create_future()
                self._waiter = waiter
            try:
                await waiter
            finally:
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None

    def drain(self) -> list[Any]:
        """Take every queued message now, oldest first (never waits)."""
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
            return items

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.get()
        except ClosedResourceError as exc:
            if exc.reason == "closed":
                raise StopAsyncIteration from None
            raise

    def close(self) -> None:
        """Stop receiving; messages already queued can still be read. Idempotent."""
        with self._lock:
            if self._closed_reason is None:
                self._closed_reason = "closed"
            self._wake_locked()
        self._bus._remove(self)


def _set_if_pending(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Bus:
    """Topic fan-out to bounded subscriber queues.

    Publishing is synchronous and cheap: a dict lookup for exact topics, a scan of
    the (few) prefix subscriptions, and one append per matching subscriber.
    """

    def __init__(self) -> None:
        self._exact: dict[str, list[Subscription]] = {}
        self._prefix: list[tuple[str, Subscription]] = []
        self._published = 0

    def subscribe(
        self,
        topic: str,
        *,
        maxsize: int = DEFAULT_MAXSIZE,
        policy: Overflow = Overflow.DROP_OLDEST,
    ) -> Subscription:
        """Start receiving messages published on ``topic`` (``"data:*"`` for a prefix).

        Parameters
        ----------
        topic
            An exact topic, or a prefix followed by ``*``.
        maxsize
            Most messages held unread; beyond it ``policy`` applies.
        policy
            What a full queue does (:class:`Overflow`).
        """
        sub = Subscription(self, topic, maxsize, Overflow(policy))
        if topic.endswith("*"):
            self._prefix = [*self._prefix, (topic[:-1], sub)]
        else:
            self._exact[topic] = [*self._exact.get(topic, ()), sub]
        return sub

    def publish(self, topic: str, message: Any) -> int:
        """Offer ``message`` to every subscriber of ``topic``; returns how many queued it.

        Never blocks and never raises because a subscriber is full or slow.
        """
        self._published += 1
        count = 0
        for sub in self._exact.get(topic, ()):
            count += sub._offer(message)
        for prefix, sub in self._prefix:
            if topic.startswith(prefix):
                count += sub._offer(message)
        return count

    def has_subscribers(self, topic: str) -> bool:
        """True if publishing on ``topic`` would reach anyone (lets callers skip work)."""
        if self._exact.get(topic):
            return True
        return any(topic.startswith(prefix) for prefix, _ in self._prefix)

    def subscriptions(self) -> list[Subscription]:
        """Every open subscription."""
        subs = [s for group in self._exact.values() for s in group]
        subs.extend(s for _, s in self._prefix)
        return subs

    def statistics(self) -> dict[str, Any]:
        """JSON-able totals and per-subscription counters."""
        subs = [s.statistics() for s in self.subscriptions()]
        return {
            "published": self._published,
            "subscribers": len(subs),
            "dropped": sum(s.dropped for s in subs),
            "queued": sum(s.queued for s in subs),
            "subscriptions": [s.as_dict() for s in subs],
        }

    def close(self) -> None:
        """Close every subscription (readers drain what is queued, then stop)."""
        for sub in self.subscriptions():
            sub.close()

    def _remove(self, sub: Subscription) -> None:
        # Lists are replaced, never mutated, so a publish iterating one is unaffected.
        if sub.topic.endswith("*"):
            self._prefix = [(p, s) for p, s in self._prefix if s is not sub]
        else:
            rest = [s for s in self._exact.get(sub.topic, ()) if s is not sub]
            if rest:
                self._exact[sub.topic] = rest
            else:
                self._exact.pop(sub.topic, None)
