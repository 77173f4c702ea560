"""What the sensor channels of one server share per sensor, for exactly-once ingest."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

__all__ = ["SensorLedger"]


class SensorLedger:
    """What the sensor channels of one server share per sensor, for exactly-once ingest.

    The newest stored timestamp per attribute (every channel of the sensor keeps it
    current), and a turn: an exactly-once channel dedupes and stores while it holds
    its sensor's turn. A connector that reconnects while its old connection is still
    storing would otherwise dedupe its resend against a store the old connection has
    not finished writing to, and store those samples twice.
    """

    def __init__(self) -> None:
        #: Newest stored timestamp (ns) per sensor and attribute.
        self.newest: collections.defaultdict[str, dict[str, int]] = collections.defaultdict(dict)
        #: Channels waiting for each sensor's turn now.
        self.waiting: collections.Counter[str] = collections.Counter()
        self._turns: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )

    @contextlib.asynccontextmanager
    async def turn(self, sensor_id: str) -> AsyncIterator[None]:
        """Hold ``sensor_id``'s turn for the block (first come, first served)."""
        lock = self._turns[sensor_id]
        self.waiting[sensor_id] += 1
        try:
            await lock.acquire()
        finally:
            self.waiting[sensor_id] -= 1
        try:
            yield
        finally:
            lock.release()
