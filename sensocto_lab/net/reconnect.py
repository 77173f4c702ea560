"""Keeping a Phoenix socket up: exponential back-off and the reconnect loop.

Shared by the Python clients (:mod:`.client` for sensors, :mod:`.viewer_client` for
viewers). A client hands its *session* (join, then read frames until the socket goes)
to a :class:`KeepConnected`, which runs it on one fresh connection after another
(:func:`run_reconnecting`) with a growing back-off between failed attempts, and lets
``connect()`` wait for the first join. A refused join is the session's
:class:`~sensocto_lab.errors.AuthError`: it ends the loop, as retrying cannot help.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection as WsConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from sensocto_lab.clock import Backoff, Clock
from sensocto_lab.errors import AuthError, ProtocolError
from sensocto_lab.protocol.connection import ClientConnection

__all__ = ["TRANSIENT", "KeepConnected", "run_reconnecting", "send_frames"]

log = logging.getLogger(__name__)

#: Failures after which a client connects again.
TRANSIENT = (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, ProtocolError)


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


class KeepConnected:
    """The task that keeps one client's session running across reconnects.

    Parameters
    ----------
    url
        The socket URL.
    session
        Joins and reads one connection until it goes; raises ``AuthError`` if the
        join is refused. It calls :meth:`joined_ok` once joined.
    clock
        Time source of the back-off.
    backoff_s
        First and longest wait between attempts, in seconds.
    on_lost
        Called after every session (the socket went; :attr:`joined` is clear).
    on_fatal
        Called once the loop stopped for good (:attr:`fatal` is set).
    name
        For logs and the task's name.
    """

    def __init__(
        self,
        url: str,
        session: Callable[[WsConnection], Awaitable[None]],
        *,
        clock: Clock,
        backoff_s: tuple[float, float],
        on_lost: Callable[[], None],
        on_fatal: Callable[[], None],
        name: str,
    ) -> None:
        self.url = url
        self._session = session
        self._clock = clock
        self.backoff = Backoff(*backoff_s)
        self._on_lost = on_lost
        self._on_fatal = on_fatal
        self.name = name
        #: Set while the client is joined.
        self.joined = asyncio.Event()
        #: The refusal that stopped the client, if one did.
        self.fatal: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def joined_ok(self) -> None:
        """The session joined: wake :meth:`start`, and retry quickly after the next loss."""
        self.backoff.reset()
        self.joined.set()

    async def start(self, timeout: float) -> None:
        """Start the task (once) and wait until joined.

        Raises
        ------
        AuthError
            The join was refused; the task has stopped.
        TimeoutError
            Not joined within ``timeout`` seconds (the task keeps trying).
        """
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        waiter = asyncio.ensure_future(self.joined.wait())
        done, _ = await asyncio.wait(
            {waiter, self._task}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        waiter.cancel()
        if self.fatal is not None:
            raise self.fatal
        if not done:
            raise TimeoutError(f"{self.name}: not joined within {timeout} s")

    async def stop(self) -> None:
        """Cancel the task and wait for it (the socket closes)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            await run_reconnecting(
                self.url,
                self._session,
                clock=self._clock,
                backoff=self.backoff,
                on_lost=self._lost,
                name=self.name,
            )
        except AuthError as exc:
            self.fatal = exc
            self._on_fatal()

    def _lost(self) -> None:
        self.joined.clear()
        self._on_lost()
