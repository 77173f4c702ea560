"""What every channel of a socket is: pushes in, replies out, its own tasks."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sensocto_lab.errors import LimitExceeded, PeerError
from sensocto_lab.net.hosting import ChannelHost
from sensocto_lab.protocol import connection as phx

__all__ = ["Channel"]


class Channel:
    """One joined channel on a socket; subclasses handle its pushes."""

    def __init__(self, socket: ChannelHost, topic: str) -> None:
        self.socket = socket
        self.topic = topic
        self.errors = 0
        self.tasks: list[asyncio.Task[None]] = []

    def handle(self, push: phx.Pushed) -> None:
        """Answer a push (synchronously, or by queueing work for the channel's tasks)."""
        raise NotImplementedError

    def fail(self, push: phx.Pushed, error: PeerError, **extra: Any) -> None:
        """Error reply; closes the channel once it has erred too often in a row."""
        self.socket.proto.reply_error(push, error, **extra)
        self.errors += 1
        if self.errors >= self.socket.server.config.max_channel_errors:
            self.socket.close_channel(
                self.topic,
                LimitExceeded(f"{self.errors} errors in a row; rejoin", reason="too_many_errors"),
            )
        self.socket.wake()

    def ok(self, push: phx.Pushed, response: dict[str, Any] | None = None) -> None:
        self.errors = 0
        self.socket.proto.reply(push, "ok", response)
        self.socket.wake()

    def spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        """Run ``coro`` as one of this channel's tasks (cancelled when it closes)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.append(task)
        return task

    async def close(self) -> None:
        """Stop this channel's tasks; called once when it closes or the socket goes."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
