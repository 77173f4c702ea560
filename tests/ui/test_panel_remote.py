"""The dashboards' remote context against a real endpoint (no browser): codes, rooms, reach."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import AuthError, LocalError
from sensocto_lab.model import AttributeInfo, SensorInfo
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.room_mirror import RoomMirror
from sensocto_lab.net.server import IngestServer, serve
from sensocto_lab.rooms import Room, RoomStore, format_code
from sensocto_lab.ui.dashboard.remote import RemoteContext


@pytest.fixture
async def endpoint(tmp_path: Path) -> AsyncIterator[tuple[IngestServer, Room]]:
    async with Engine(tmp_path / "data", thread=False) as engine:
        attrs = {"respiration": AttributeInfo.of("respiration")}
        await engine.register_sensor(SensorInfo("p1", attrs, room="lab"))
        with RoomStore(tmp_path / "data") as rooms:
            room = rooms.create_room("lab", "Breathing lab", owner="ana")
            async with serve(engine, config=ServerConfig.open(), rooms=rooms) as server:
                yield server, room


async def test_codes_find_and_open_rooms(endpoint: tuple[IngestServer, Room]) -> None:
    server, room = endpoint
    ctx = RemoteContext(f"ws://127.0.0.1:{server.port}")
    found = await ctx.find_room(format_code(room.join_code).lower(), client="browser-1")
    assert (found.room_id, found.name, found.join_code) == ("lab", "Breathing lab", room.join_code)
    with pytest.raises(AuthError, match="no room has that join code"):
        await ctx.find_room("AAAAA-AAAAA", client="browser-1")

    with pytest.raises(AuthError, match="that join code does not open this room"):
        await ctx.open_room("lab", "AAAAA-AAAAA", None, client="browser-1", viewer_id="tab-1")
    session = await ctx.open_room("lab", room.join_code, "bo", client="b1", viewer_id="tab-2")
    assert session.room.room_id == "lab" and isinstance(session.engine, RoomMirror)
    assert list(session.engine.sensors) == ["p1"]
    assert [w.user_id for w in session.rooms.present("lab")] == ["bo"]
    await session.engine.remove_viewer("tab-2")
    # without a token nobody vouches for a login: the code is always needed
    assert not await ctx.member("lab", "ana") and await ctx.rooms_of("ana") == []


async def test_with_a_token_logged_in_members_need_no_code(tmp_path: Path) -> None:
    async with Engine(tmp_path / "data", thread=False) as engine:
        attrs = {"respiration": AttributeInfo.of("respiration")}
        await engine.register_sensor(SensorInfo("p1", attrs, room="lab"))
        with RoomStore(tmp_path / "data") as rooms:
            rooms.create_room("lab", "Breathing lab", owner="ana")
            rooms.create_room("calm", "Calm room", owner="bo")
            config = ServerConfig(viewer_tokens=frozenset({"dash"}))
            async with serve(engine, config=config, rooms=rooms) as server:
                ctx = RemoteContext(f"ws://127.0.0.1:{server.port}", token="dash")
                assert await ctx.member("lab", "ana") and not await ctx.member("calm", "ana")
                assert [(r.room_id, r.name) for r in await ctx.rooms_of("ana")] == [
                    ("lab", "Breathing lab")
                ]
                assert not await ctx.member("lab", None)

                session = await ctx.open_room("lab", "", "ana", client="b1", viewer_id="tab-1")
                assert session.room.room_id == "lab" and session.room.join_code == ""
                assert list(session.engine.sensors) == ["p1"]
                await session.engine.remove_viewer("tab-1")
                with pytest.raises(AuthError, match="not a member of room calm"):
                    await ctx.open_room("calm", "", "ana", client="b1", viewer_id="tab-2")
                with pytest.raises(AuthError, match="does not open this room"):  # a guest
                    await ctx.open_room("lab", "", None, client="b1", viewer_id="tab-3")


async def test_an_engine_out_of_reach_is_said_so() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = RemoteContext(f"ws://127.0.0.1:{port}", connect_timeout_s=0.3)
    with pytest.raises(LocalError) as info:
        await ctx.open_room("lab", "ABCDE-12345", None, client="b", viewer_id="tab")
    assert info.value.reason == "unreachable"
