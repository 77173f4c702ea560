"""Exactly-once ingest across a clean restart, and across a reconnect while still storing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
from support.engine import MemoryStore
from support.server import MS, WAIT, Raw

from sensocto_lab.engine.engine import Engine
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.server import serve
from sensocto_lab.protocol.binary import encode_batch
from sensocto_lab.protocol.frames import Message, encode_binary

TOPIC = "sensor:s1"
JOIN = {
    "attributes": [
        {"attribute_id": "hr", "attribute_type": "hr"},
        {"attribute_id": "ecg", "attribute_type": "ecg"},
    ],
    "exactly_once": True,
}


def columnar(first: int, n: int) -> dict[str, Any]:
    """``n`` ecg samples 1 ms apart from ``MS + first``, values = their index."""
    return {
        "attribute_id": "ecg",
        "t0": MS + first,
        "dt": 1.0,
        "values": [float(i) for i in range(first, first + n)],
    }


async def send_exactly_once(engine: Engine, pushes: list[tuple[str, Any]]) -> list[Any]:
    """Serve ``engine``, join a new exactly-once channel, send ``pushes``, stop serving.

    Returns the ``response`` of each push's reply, in order.
    """
    responses = []
    async with serve(engine, config=ServerConfig.open()) as server:
        raw = await Raw.open(server.url)
        assert (await raw.join(TOPIC, JOIN))["status"] == "ok"
        for event, payload in pushes:
            if isinstance(payload, bytes):
                ref = raw.ref()
                await raw.send(encode_binary(Message("1", ref, TOPIC, event, payload)))
                reply = await raw.reply(ref)
            else:
                reply = await raw.request(TOPIC, event, payload)
            assert reply["status"] == "ok", reply
            responses.append(reply["response"])
        await raw.close()
    return responses


async def ingest_on_fresh_server(data: Path, pushes: list[tuple[str, Any]]) -> list[Any]:
    """:func:`send_exactly_once` to a new engine on ``data``, closed afterwards."""
    async with Engine(data, thread=False) as engine:
        return await send_exactly_once(engine, pushes)


async def test_resend_after_restart_is_deduplicated_against_storage(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = await ingest_on_fresh_server(
        data,
        [
            ("measurements_batch", columnar(0, 100)),
            ("measurement", {"attribute_id": "hr", "payload": 60, "timestamp": MS + 5}),
        ],
    )
    assert first == [{"stored": 100, "duplicates": 0}, {"stored": 1, "duplicates": 0}]

    # The connector lost the replies and resends its buffer, overlapping what is stored.
    block = encode_batch(
        "ecg", np.arange(90, 130, dtype=np.float32), t0_ns=(MS + 90) * 10**6, dt_ns=1e6
    )
    second = await ingest_on_fresh_server(
        data,
        [
            ("measurements_batch", columnar(50, 60)),  # 50..109: 50 stored before
            ("measurements_binary", block),  # 90..129: 110..129 are new
            ("measurement", {"attribute_id": "hr", "payload": 60, "timestamp": MS + 5}),
            ("measurement", {"attribute_id": "hr", "payload": 61, "timestamp": MS + 6}),
        ],
    )
    assert second == [
        {"stored": 10, "duplicates": 50},
        {"stored": 20, "duplicates": 20},
        {"stored": 0, "duplicates": 1},
        {"stored": 1, "duplicates": 0},
    ]

    async with Engine(data, thread=False) as engine:
        ecg = engine.store.history(["s1"], ["ecg"])
        ts = ecg["time"].values.astype(np.int64)
        assert len(ts) == 130 and (np.diff(ts) > 0).all()  # every sample once, in order
        hr = engine.store.history(["s1"], ["hr"])
        assert hr.sizes["time"] == 2


async def test_any_store_of_the_protocol_dedupes_against_its_last_ts() -> None:
    """Exactly-once asks the ``Store`` protocol's ``last_ts``, whatever store is behind it."""
    store = MemoryStore()
    async with Engine(store=store, thread=False) as engine:
        first = await send_exactly_once(engine, [("measurements_batch", columnar(0, 100))])
        again = await send_exactly_once(engine, [("measurements_batch", columnar(50, 60))])
    assert first == [{"stored": 100, "duplicates": 0}]
    assert again == [{"stored": 10, "duplicates": 50}]
    assert store.samples("s1") == 110


class _SlowFirstIngest:
    """The engine, but its first ``ingest`` waits for :attr:`go` (a slow disk, once)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def ingest(self, batch: Any) -> Any:
        if not self.started.is_set():
            self.started.set()
            await self.go.wait()
        return await self._engine.ingest(batch)


async def test_a_resend_while_the_old_connection_still_stores_is_stored_once(
    tmp_path: Path,
) -> None:
    """A connector reconnects and resends while its old connection is still storing.

    The resend must not be deduplicated against a store the old connection has not
    finished writing to: it waits for the sensor's turn, then finds every sample there.
    """
    async with Engine(tmp_path / "data", thread=False) as engine:
        slow = _SlowFirstIngest(engine)
        server = await serve(slow, config=ServerConfig.open())
        old = await Raw.open(server.url)
        assert (await old.join(TOPIC, JOIN))["status"] == "ok"
        await old.send(["1", old.ref(), TOPIC, "measurements_batch", columnar(0, 100)])
        await slow.started.wait()  # the old connection is storing its push
        old.ws.transport.abort()  # and goes away without its reply

        new = await Raw.open(server.url)
        assert (await new.join(TOPIC, JOIN))["status"] == "ok"
        ref = new.ref()
        await new.send(["1", ref, TOPIC, "measurements_batch", columnar(0, 120)])

        async def resend_waits_its_turn() -> None:
            while server.ledger.waiting["s1"] == 0:
                await asyncio.sleep(0)

        # the resend waits for the sensor's turn (were it answered first, it would have
        # been stored beside the old connection's samples)
        replied = asyncio.ensure_future(new.reply(ref))
        waits = asyncio.ensure_future(resend_waits_its_turn())
        await asyncio.wait({replied, waits}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        waits.cancel()
        slow.go.set()
        reply = await replied
        assert reply == {"status": "ok", "response": {"stored": 20, "duplicates": 100}}
        await new.close()
        await server.close()
        ts = engine.store.history(["s1"], ["ecg"])["time"].values.astype(np.int64)
        assert len(ts) == 120 and (np.diff(ts) > 0).all()  # every sample once
