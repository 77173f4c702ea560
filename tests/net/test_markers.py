"""Device markers on the sensor channel: replied to once stored, refused clearly, rate-limited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.server import JOIN, MS, Raw, engine

from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import PeerError
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.sensor_client import SensorClient
from sensocto_lab.net.server import IngestServer, serve

__all__ = ["engine"]

ATTRS = {"hr": "hr"}
BIG = {"x": [1, 2, {"y": "z" * 5000}]}


@pytest.fixture
async def server(engine: Engine) -> AsyncIterator[IngestServer]:
    config = ServerConfig.open(default_room="lab", marker_rate_per_s=1.0, marker_burst=5)
    async with serve(engine, config=config) as srv:
        yield srv


async def test_the_python_client_marks_and_the_marker_is_an_event_of_its_sensor(
    server: IngestServer, engine: Engine
) -> None:
    async with SensorClient(server.url, "s1", ATTRS) as client:
        reply = await client.mark("button", value={"press": 1}, timestamp_ms=MS + 5)
        assert reply["stored"] == 1 and reply["onset_ns"] == (MS + 5) * 1_000_000
        with pytest.raises(PeerError) as info:
            await client.mark("")
        assert info.value.reason == "invalid_label"
    frame = engine.store.events(room="lab")
    assert frame["label"].tolist() == ["button"]
    row = frame.iloc[0]
    assert (row["sensor"], row["source"], row["value"]) == ("s1", "device", {"press": 1})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("bell", "invalid_payload"),
        ({"label": "bell"}, "invalid_timestamp"),
        ({"label": "bell", "timestamp": 10**400}, "invalid_timestamp"),
        ({"label": "bell", "timestamp": 1e300}, "invalid_timestamp"),
        (
            {"label": "bell", "timestamp": MS, "value": {"x": [1, 2, {"y": "z" * 5000}]}},
            "invalid_value",
        ),
        ({"label": "<b>" * 100, "timestamp": MS}, "invalid_label"),
        ({"label": "bell", "timestamp": MS, "colour": "red"}, "invalid_payload"),
    ],
)
async def test_a_bad_marker_gets_an_error_reply_and_the_channel_keeps_storing(
    server: IngestServer, engine: Engine, payload: Any, reason: str
) -> None:
    raw = await Raw.open(server.url)
    try:
        assert (await raw.join("sensor:s1", {**JOIN, "room": "lab"}))["status"] == "ok"
        reply = await raw.request("sensor:s1", "marker", payload)
        assert reply["status"] == "error" and reply["response"]["reason"] == reason
        ok = await raw.request(
            "sensor:s1", "measurement", {"attribute_id": "hr", "payload": 61, "timestamp": MS}
        )
        assert ok["status"] == "ok"
        assert (await raw.request("sensor:s1", "marker", {"label": "ok", "timestamp": MS}))[
            "status"
        ] == "ok"
    finally:
        await raw.close()
    assert engine.store.events(room="lab")["label"].tolist() == ["ok"]


async def test_a_marker_flood_is_rate_limited_while_data_keeps_flowing(
    server: IngestServer, engine: Engine
) -> None:
    raw = await Raw.open(server.url)
    try:
        assert (await raw.join("sensor:s1", {**JOIN, "room": "lab"}))["status"] == "ok"
        statuses = []
        for i in range(20):
            marker = {"label": f"m{i}", "timestamp": MS + i}
            reply = await raw.request("sensor:s1", "marker", marker)
            statuses.append(reply["status"] == "ok" or reply["response"]["reason"])
        assert statuses[:5] == [True] * 5  # the burst
        assert "rate_limited" in statuses[5:]
        data = await raw.request(
            "sensor:s1", "measurement", {"attribute_id": "hr", "payload": 61, "timestamp": MS}
        )
        assert data["status"] == "ok"
    finally:
        await raw.close()
    stored = engine.store.events(room="lab")["label"].tolist()
    assert stored == [f"m{i}" for i, s in enumerate(statuses) if s is True]
