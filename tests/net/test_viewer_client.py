"""The viewer client against a real endpoint with a room store: join, refuse, data, reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from support.server import WAIT, engine

from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import AuthError
from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.server import IngestServer, serve
from sensocto_lab.net.viewer_client import ViewerClient
from sensocto_lab.rooms import Room, RoomStore

__all__ = ["engine"]  # fixture

H, M, L, N = (AttentionLevel.HIGH, AttentionLevel.MEDIUM, AttentionLevel.LOW, AttentionLevel.NONE)
T0 = 1_767_225_600_000_000_000  # 2026-01-01 in ns
ATTRS = {"respiration": AttributeInfo.of("respiration"), "battery": AttributeInfo.of("battery")}


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[RoomStore]:
    with RoomStore(tmp_path / "rooms") as store:
        yield store


@pytest.fixture
async def lab(engine: Engine, rooms: RoomStore) -> Room:
    for sid, room in (("p1", "lab"), ("p2", "lab"), ("x1", "other")):
        await engine.register_sensor(SensorInfo(sid, ATTRS, name=f"name {sid}", room=room))
    await engine.ingest(Batch("p1", "respiration", T0 + np.arange(3) * 10**8, np.arange(3.0)))
    return rooms.create_room("lab", "Breathing lab", owner="ana")


@pytest.fixture
async def server(engine: Engine, rooms: RoomStore) -> AsyncIterator[IngestServer]:
    config = ServerConfig(tokens=frozenset({"ingest"}), viewer_status_s=0.05)
    async with serve(engine, config=config, rooms=rooms) as srv:
        yield srv


async def test_a_join_code_opens_the_room_with_its_sensors_and_recent_samples(
    server: IngestServer, engine: Engine, lab: Room
) -> None:
    async with ViewerClient(
        server.url, "room:lab", code=lab.join_code.lower(), user_id="ana", backfill=2
    ) as v:
        assert v.snapshot is not None and v.snapshot.name == "Breathing lab"
        assert sorted(v.sensors) == ["p1", "p2"]  # not the other room's
        p1 = v.sensors["p1"]
        assert p1.name == "name p1" and p1.attributes["battery"].kind.name == "battery"
        assert p1.attributes["battery"].effective_unit == "%"
        (recent,) = v.snapshot.recent
        assert (recent.sensor_id, recent.values.tolist()) == ("p1", [1.0, 2.0])
        assert [w.user_id for w in v.present] == ["ana"]

        sub = v.bus.subscribe("data:p2")
        await engine.ingest(Batch("x1", "respiration", np.array([T0]), np.array([9.0])))
        await engine.ingest(Batch("p2", "respiration", np.array([T0]), np.array([5.0])))
        batch = await asyncio.wait_for(sub.get(), WAIT)
        assert batch.values.tolist() == [5.0] and batch.ts.tolist() == [T0]

        assert await v.view_enter("p1", "p2") == {"p1": M, "p2": M}
        assert await v.focus("p2") == {"p1": M, "p2": H}
        assert engine.attention.level("p2") is H
        await v.wait_for(lambda: v.levels.get("p2") is H)  # the engine's level, pushed
        assert await v.page_hidden() == {"p1": N, "p2": N}
        assert engine.attention.level("p2") is N
        assert await v.set_views({"p1": "low"}) == {"p1": L}
        assert engine.attention.level("p1") is L and engine.attention.level("p2") is N

        with pytest.raises(AuthError) as info:  # a code opens its room only
            await v.view_enter("x1")
        assert info.value.reason == "forbidden"
        assert v.views == {"p1": L}

        await engine.register_sensor(SensorInfo("p3", ATTRS, room="lab"))
        await v.wait_for(lambda: "p3" in v.sensors)
    await _level(engine, "p1", N)  # the socket closed: the engine forgot the viewer


async def test_a_room_viewer_gets_the_batches_of_sensors_assigned_to_the_room(
    server: IngestServer, engine: Engine, rooms: RoomStore, lab: Room
) -> None:
    rooms.assign_sensor("lab", "x1", by="ana")  # recorded under "other", shown in "lab"
    async with ViewerClient(server.url, "room:lab", code=lab.join_code) as v:
        assert sorted(v.sensors) == ["p1", "p2", "x1"]
        x1, p1 = v.bus.subscribe("data:x1"), v.bus.subscribe("data:p1")
        await engine.ingest(Batch("x1", "respiration", np.array([T0]), np.array([7.0])))
        await engine.ingest(Batch("p1", "respiration", np.array([T0 + 10**9]), np.array([8.0])))
        assert (await asyncio.wait_for(x1.get(), WAIT)).values.tolist() == [7.0]
        assert (await asyncio.wait_for(p1.get(), WAIT)).values.tolist() == [8.0]

        rooms.unassign_sensor("lab", "x1", by="ana")
        await v.wait_for(lambda: "x1" not in v.levels)  # the channel saw it go
        await engine.ingest(Batch("x1", "respiration", np.array([T0 + 1]), np.array([9.0])))
        await engine.ingest(Batch("p1", "respiration", np.array([T0 + 2 * 10**9]), np.array([6.0])))
        assert (await asyncio.wait_for(p1.get(), WAIT)).values.tolist() == [6.0]
        assert x1.drain() == []  # no longer forwarded (p1's later batch came through)


async def test_wrong_or_missing_code_is_refused_and_tokens_are_as_configured(
    server: IngestServer, engine: Engine, rooms: RoomStore, lab: Room
) -> None:
    for kwargs, reason in (
        ({"code": "AAAAA-AAAAA"}, "invalid_join_code"),
        ({"code": "not a code"}, "invalid_join_code"),
        ({}, "unauthorized"),
        ({"token": "guess"}, "unauthorized"),
    ):
        client = ViewerClient(server.url, "room:lab", **kwargs)
        with pytest.raises(AuthError) as info:
            await client.connect(timeout=WAIT)
        assert info.value.reason == reason
        assert client.sensors == {} and client.stats.batches == 0
        await client.close()
    # an unknown room reads as a wrong code (room ids cannot be probed)
    with pytest.raises(AuthError, match="does not open"):
        await ViewerClient(server.url, "room:nope", code=lab.join_code).connect(timeout=WAIT)

    # the ingest token opens any room, and any sensor, when no viewer tokens are set
    async with ViewerClient(server.url, "room:other", token="ingest") as v:
        assert sorted(v.sensors) == ["x1"]
        assert await v.view_enter("p1") == {"p1": M}

    # with viewer tokens, only those do
    async with serve(
        engine, config=ServerConfig(viewer_tokens=frozenset({"admin"})), rooms=rooms
    ) as strict:
        with pytest.raises(AuthError):
            await ViewerClient(strict.url, "room:lab", token="ingest").connect(timeout=WAIT)
        async with ViewerClient(strict.url, "room:lab", token="admin") as v:
            assert sorted(v.sensors) == ["p1", "p2"]


async def test_a_trusted_dashboard_vouches_for_members_and_only_they_get_in(
    server: IngestServer, rooms: RoomStore, lab: Room
) -> None:
    rooms.create_room("calm", "Calm room", owner="ana")
    rooms.create_room("busy", "Busy room", owner="bo")
    # a lookup without a room opens none and lists the user's rooms
    async with ViewerClient(
        server.url, "lens:lobby", token="ingest", user_id="ana", member=True
    ) as lobby:
        assert lobby.snapshot is not None
        assert lobby.snapshot.member_rooms == {"calm": "Calm room", "lab": "Breathing lab"}
        assert lobby.sensors == {}
        with pytest.raises(AuthError) as info:
            await lobby.view_enter("p1")
        assert info.value.reason == "forbidden"

    async with ViewerClient(
        server.url, "lens:tab-1", token="ingest", room="lab", user_id="ana", member=True
    ) as v:
        assert v.snapshot is not None and v.snapshot.name == "Breathing lab"
        assert sorted(v.sensors) == ["p1", "p2"]
        assert await v.view_enter("p1") == {"p1": M}
        with pytest.raises(AuthError) as info:  # membership opens that room only
            await v.view_enter("x1")
        assert info.value.reason == "forbidden"

    for kwargs, reason in (
        ({"token": "ingest", "user_id": "ana", "room": "busy"}, "forbidden"),  # not hers
        ({"user_id": "ana", "room": "lab"}, "unauthorized"),  # no token: no one to vouch
        ({"token": "guess", "user_id": "ana", "room": "lab"}, "unauthorized"),
    ):
        client = ViewerClient(server.url, "lens:tab-2", member=True, **kwargs)
        with pytest.raises(AuthError) as info:
            await client.connect(timeout=WAIT)
        assert info.value.reason == reason
        assert client.sensors == {}
        await client.close()


async def test_too_many_wrong_codes_lock_the_guesser_out(server: IngestServer, lab: Room) -> None:
    reasons = []
    for _ in range(6):
        with pytest.raises(AuthError) as info:
            await ViewerClient(server.url, "room:lab", code="AAAAA-AAAAA").connect(timeout=WAIT)
        reasons.append(info.value.reason)
    assert reasons[-1] == "too_many_attempts"
    with pytest.raises(AuthError):  # even the right code, for now
        await ViewerClient(server.url, "room:lab", code=lab.join_code).connect(timeout=WAIT)
    # a trusted dashboard relays who typed: another browser is not locked out
    async with ViewerClient(
        server.url, "room:lab", code=lab.join_code, token="ingest", client="10.0.0.2"
    ) as v:
        assert sorted(v.sensors) == ["p1", "p2"]


async def test_a_lens_found_by_its_code_gets_only_viewed_sensors(
    server: IngestServer, engine: Engine, lab: Room
) -> None:
    async with ViewerClient(server.url, "lens:tab-1", code=lab.join_code) as v:
        assert v.snapshot is not None and v.snapshot.room_id == "lab"
        assert v.viewer_id == "tab-1"
        sub = v.bus.subscribe("data:*")
        await v.set_views({"p1": "high", "p2": "none"}, {"p1": ["respiration"]})
        assert engine.attention.level("p1") is H
        await engine.ingest(Batch("p2", "respiration", np.array([T0 + 1]), np.array([7.0])))
        await engine.ingest(Batch("p1", "battery", np.array([T0 + 1]), np.array([80.0])))
        await engine.ingest(Batch("p1", "respiration", np.array([T0 + 10**9]), np.array([3.0])))
        batch = await asyncio.wait_for(sub.get(), WAIT)
        assert (batch.sensor_id, batch.attribute_id, batch.values.tolist()) == (
            "p1",
            "respiration",
            [3.0],
        )
        assert all(b.sensor_id == "p1" and b.attribute_id == "respiration" for b in sub.drain())


async def test_reconnects_and_sends_its_views_again(
    engine: Engine, rooms: RoomStore, lab: Room
) -> None:
    config = ServerConfig.open()
    first = await serve(engine, config=config, rooms=rooms)
    port = first.port
    v = ViewerClient(first.url, "room:lab", code=lab.join_code, backoff_s=(0.02, 0.2))
    await v.connect(timeout=WAIT)
    await v.focus("p1")
    assert engine.attention.level("p1") is H
    await first.close()  # the socket drops: the engine forgets the viewer
    await _level(engine, "p1", N)
    await v.wait_for(lambda: not v.connected)
    assert await v.view_enter("p2") == {"p1": H, "p2": M}  # kept while down
    second = await serve(engine, port=port, config=config, rooms=rooms)
    try:
        await v.wait_for(lambda: v.stats.connects == 2, timeout=WAIT)
        await _level(engine, "p1", H)
        await _level(engine, "p2", M)
    finally:
        await v.close()
        await second.close()


async def _level(engine: Engine, sensor_id: str, level: AttentionLevel) -> None:
    """Wait until the engine's level of ``sensor_id`` is ``level`` (its ``signal:`` topic)."""
    sub = engine.bus.subscribe(f"signal:{sensor_id}")
    try:
        async with asyncio.timeout(WAIT):
            while engine.attention.level(sensor_id) is not level:
                await sub.get()
    finally:
        sub.close()
