"""Keeping a Phoenix socket up: exponential back-off and the reconnect loop.

Shared by the Python clients (:mod:`.client` for sensors, :mod:`.viewer_client` for
viewers). A client runs its *session* (join, then read frames until the socket goes)
inside :func:`run_reconnecting`, which opens a fresh connection for each session and
waits a growing back-off between failed attempts. A refused join is the client's
:class:`~sensocto_lab.errors.AuthError`: it ends the loop, as retrying cannot help.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection as WsConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from sensocto_lab.clock import Clock
from sensocto_lab.errors import ProtocolError
from sensocto_lab.protocol.connection import ClientConnection

__all__ = ["TRANSIENT", "Backoff", "run_reconnecting", "send_frames", "wait_started"]

log = logging.getLogger(__name__)

#: Failures after which a client connects again.
TRANSIENT = (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, ProtocolError)


class Backoff:
    """Waits between reconnect attempts: ``first``, doubling up to ``longest`` seconds.

    :meth:`reset` after a successful join, so the next loss is retried quickly again.
    """

    def __init__(self, first: float, longest: float) -> None:
        self.first = first
        self.longest = longest
        self._next = first

    def reset(self) -> None:
        """Start again from ``first`` (the connection worked)."""
        self._next = self.first

    def next(self) -> float:
        """The wait before the next attempt, in seconds (and double the one after)."""
        delay = self._next
        self._next = min(delay * 2, self.longest)
        return delay


async def run_reconnecting(
    url: str,
    session: Callable[[WsConnection], Awaitable[None]],
    *,
    clock: Clock,
    backoff: Backoff,
    on_lost: Callable[[], None],
    name: str,
) -> None:
    """Run ``session`` on one fresh connection after another, until cancelled.

    ``on_lost`` runs after every session, however it ended. Transient failures
    (:data:`TRANSIENT`) are logged and retried after ``backoff.next()`` seconds on
    ``clock``; anything else (a refused join's ``AuthError``) propagates.
    """
    while True:
        try:
            async with connect(url, compression=None, ping_interval=None, max_size=None) as ws:
                await session(ws)
        except TRANSIENT as exc:
            log.debug("%s: connection lost: %s", name, exc)
        finally:
            on_lost()
        await clock.sleep(backoff.next())


async def send_frames(ws: WsConnection, proto: ClientConnection) -> None:
    """Write every frame the sans-I/O connection has queued, in order."""
    for frame in proto.data_to_send():
        await ws.send(frame)


async def wait_started(task: asyncio.Task[None], ready: asyncio.Event, timeout: float) -> bool:
    """Wait until ``ready`` is set or ``task`` ended; False if ``timeout`` seconds passed."""
    waiter = asyncio.ensure_future(ready.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=timeout, return_when="FIRST_COMPLETED")
    waiter.cancel()
    return bool(done)
