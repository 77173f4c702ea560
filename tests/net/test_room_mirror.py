"""A room mirror reads like the engine it mirrors: sensors, backfill, levels, views, leave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from support.server import WAIT, engine

from sensocto_lab.engine.engine import Engine
from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.room_mirror import RoomMirror
from sensocto_lab.net.server import serve
from sensocto_lab.net.viewer_client import ViewerClient
from sensocto_lab.rooms import RoomStore

__all__ = ["engine"]  # fixture

T0 = 1_767_225_600_000_000_000


@pytest.fixture
async def mirror(engine: Engine, tmp_path: Path) -> AsyncIterator[RoomMirror]:
    attrs = {"respiration": AttributeInfo.of("respiration"), "battery": AttributeInfo.of("battery")}
    await engine.register_sensor(SensorInfo("p1", attrs, room="lab"))
    await engine.ingest(Batch("p1", "respiration", T0 + np.arange(5) * 10**8, np.arange(5.0)))
    with RoomStore(tmp_path / "rooms") as rooms:
        room = rooms.create_room("lab", owner="ana")
        async with serve(engine, config=ServerConfig.open(), rooms=rooms) as server:
            client = ViewerClient(
                server.url, "lens:tab", code=room.join_code, user_id="bo", backfill=3
            )
            yield RoomMirror(await client.connect())
            await client.close()


async def test_mirror_reads_like_the_engine(mirror: RoomMirror, engine: Engine) -> None:
    assert list(mirror.sensors) == ["p1"] and mirror.rooms.sensors("lab") == ["p1"]
    ts, values = mirror.store.latest("p1", "respiration", 2)
    assert ts.tolist() == [T0 + 3 * 10**8, T0 + 4 * 10**8] and values.tolist() == [3.0, 4.0]
    assert len(mirror.store.latest("p1", "battery", 2)[0]) == 0
    assert [w.user_id for w in mirror.rooms.present("lab")] == ["bo"]
    assert mirror.attention.lens_flush_ms(AttentionLevel.HIGH) == 32.0
    assert mirror.attention.level("p1") is AttentionLevel.NONE

    mirror.draw_only({"p1": ["respiration"]})  # what the card draws: no battery sent
    sub = mirror.bus.subscribe("data:p1")
    await mirror.set_views("tab", {"p1": AttentionLevel.HIGH}, replace=True)
    assert engine.attention.level("p1") is AttentionLevel.HIGH
    await mirror.client.wait_for(lambda: mirror.attention.level("p1") is AttentionLevel.HIGH)
    await engine.ingest(Batch("p1", "battery", np.array([T0 + 10**9]), np.array([80.0])))
    await engine.ingest(Batch("p1", "respiration", np.array([T0 + 10**9]), np.array([9.0])))
    batch = await asyncio.wait_for(sub.get(), WAIT)
    assert (batch.attribute_id, batch.values.tolist()) == ("respiration", [9.0])

    await mirror.remove_viewer("tab")  # the session ended: the client leaves
    assert not mirror.client.connected
