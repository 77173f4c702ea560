"""Helpers shared by the endpoint and client tests (no tests here).

A real engine with the real tiered store in a temp dir, a real server on 127.0.0.1
port 0, and ``Raw``: a bare WebSocket peer that speaks frames by hand, for feeding
the server the malformed input a well-behaved client never sends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from sensocto_lab.engine.engine import Engine
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.server import IngestServer, serve

WAIT = 10.0
MS = 1_767_225_600_000  # 2026-01-01 in ms since the epoch

JOIN = {
    "connector_id": "c1",
    "connector_name": "test connector",
    "sensor_name": "strap",
    "sensor_type": "polar",
    "attributes": [
        {"attribute_id": "hr", "attribute_type": "hr"},
        {"attribute_id": "ecg", "attribute_type": "ecg"},
        {"attribute_id": "acc", "attribute_type": "accelerometer"},
    ],
    "sampling_rate": 130,
    "batch_size": 10,
}


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with Engine(tmp_path / "data", thread=False) as eng:
        yield eng


@pytest.fixture
async def server(engine: Engine) -> AsyncIterator[IngestServer]:
    async with serve(engine, config=ServerConfig.open()) as srv:
        yield srv


class Raw:
    """A WebSocket peer that sends frames by hand and waits for specific answers."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[Any] = []
        self._ref = 100

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> Raw:
        return cls(await connect(url, compression=None, max_size=None, **kwargs))

    def ref(self) -> str:
        self._ref += 1
        return str(self._ref)

    async def send(self, frame: str | bytes | list[Any]) -> None:
        await self.ws.send(json.dumps(frame) if isinstance(frame, list) else frame)

    async def expect(self, match: Callable[[list[Any]], bool]) -> list[Any]:
        """The first frame (already seen or next) for which ``match`` is true."""

        async def scan() -> list[Any]:
            for msg in self.seen:
                if match(msg):
                    self.seen.remove(msg)
                    return msg
            while True:
                msg = json.loads(await self.ws.recv())
                if match(msg):
                    return msg  # type: ignore[no-any-return]
                self.seen.append(msg)

        return await asyncio.wait_for(scan(), WAIT)

    async def reply(self, ref: str) -> dict[str, Any]:
        """The ``phx_reply`` payload for ``ref``."""
        msg = await self.expect(lambda m: m[1] == ref and m[3] == "phx_reply")
        return msg[4]  # type: ignore[no-any-return]

    async def request(
        self, topic: str, event: str, payload: Any, join_ref: str = "1"
    ) -> dict[str, Any]:
        ref = self.ref()
        await self.send([join_ref, ref, topic, event, payload])
        return await self.reply(ref)

    async def join(self, topic: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        ref = self.ref()
        await self.send([ref, ref, topic, "phx_join", JOIN if params is None else params])
        return await self.reply(ref)

    async def push_event(self, topic: str, event: str) -> list[Any]:
        return await self.expect(lambda m: m[2] == topic and m[3] == event)

    async def close(self) -> None:
        await self.ws.close()
