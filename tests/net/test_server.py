"""The endpoint on a real socket: joins, ingest, replies, viewers, limits, bad input."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pytest
from support.server import JOIN, MS, WAIT, Raw, engine, server
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sensocto_lab.clock import FakeClock, TokenBucket
from sensocto_lab.engine.engine import Engine
from sensocto_lab.model import AttentionLevel
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.server import IngestServer, serve
from sensocto_lab.protocol.binary import encode_batch
from sensocto_lab.protocol.frames import Message, encode_binary

__all__ = ["engine", "server"]  # fixtures


def stored(engine: Engine, sensor: str, attr: str) -> list[float]:
    _, values = engine.store.latest(sensor, attr)
    return np.asarray(values).tolist()  # type: ignore[no-any-return]


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_health_is_json_of_the_engine(engine: Engine) -> None:
    server = await serve(engine, config=ServerConfig.open(tokens=frozenset({"tok"})))
    raw = await Raw.open(server.url)
    assert (await raw.join("sensor:s1"))["status"] == "ok"
    status, body = await http_get(server.port, "/health?token=tok")
    assert status == 200
    health = json.loads(body)
    assert [s["id"] for s in health["sensors"]] == ["s1"]
    assert (await http_get(server.port, "/nowhere"))[0] == 404
    assert (await http_get(server.port, "/socket/websocket?vsn=1.0.0"))[0] == 400
    await raw.close()
    await server.close()


async def test_join_pushes_backpressure_and_measurement_is_stored_before_ok(
    server: IngestServer, engine: Engine
) -> None:
    raw = await Raw.open(server.url)
    reply = await raw.join("sensocto:sensor:s1")
    assert reply == {
        "status": "ok",
        "response": {"sensor_id": "s1", "attributes": ["acc", "ecg", "hr"]},
    }
    assert engine.sensors["s1"].name == "strap"
    push = await raw.push_event("sensocto:sensor:s1", "backpressure_config")
    assert push[4]["attention_level"] == "none"
    assert push[4]["recommended_batch_size"] == 20 and push[4]["recommended_batch_window"] == 5000
    reply = await raw.request(
        "sensocto:sensor:s1", "measurement", {"attribute_id": "hr", "payload": 61, "timestamp": MS}
    )
    assert reply == {"status": "ok", "response": {"stored": 1, "duplicates": 0}}
    assert stored(engine, "s1", "hr") == [61.0]  # the reply came after storing


async def test_batches_json_columnar_and_binary(server: IngestServer, engine: Engine) -> None:
    raw = await Raw.open(server.url)
    await raw.join("sensor:s1")
    items = [
        {"attribute_id": "hr", "payload": 60 + i, "timestamp": MS + 1000 * i} for i in range(5)
    ] + [{"attribute_id": "acc", "payload": {"x": 0, "y": 0, "z": 9.8}, "timestamp": MS}]
    reply = await raw.request("sensor:s1", "measurements_batch", items)
    assert reply["response"] == {"stored": 6, "duplicates": 0}
    reply = await raw.request(
        "sensor:s1",
        "measurements_batch",
        {"attribute_id": "hr", "t0": MS + 5000, "dt": 1000, "values": [65, 66]},
    )
    assert reply["response"]["stored"] == 2
    ecg = np.sin(np.arange(260) / 10).astype(np.float32)
    ref = raw.ref()
    block = encode_batch("ecg", ecg, t0_ns=MS * 10**6, dt_ns=1e9 / 130)
    await raw.send(encode_binary(Message("1", ref, "sensor:s1", "measurements_binary", block)))
    assert (await raw.reply(ref))["response"]["stored"] == 260
    assert stored(engine, "s1", "hr") == [60.0, 61.0, 62.0, 63.0, 64.0, 65.0, 66.0]
    np.testing.assert_allclose(stored(engine, "s1", "ecg")[-150:], ecg[-150:])


BAD_INPUT = [
    # (frame, expected reason)
    ('["1","{ref}","sensor:s1","measurement",{"payload": oops}]', "invalid_json"),
    ('["1","{ref}","sensor:s1","teleport",{}]', "invalid_event"),
    (
        '["1","{ref}","sensor:s1","measurement",{"attribute_id":"hr","payload":"61","timestamp":1767225600000}]',
        "invalid_value",
    ),
    (
        '["1","{ref}","sensor:s1","measurement",{"attribute_id":"hr","payload":NaN,"timestamp":1767225600000}]',
        "non_finite_value",
    ),
    (
        '["1","{ref}","sensor:s1","measurement",{"attribute_id":"hr","payload":61,"timestamp":"now"}]',
        "invalid_timestamp",
    ),
    (
        '["1","{ref}","sensor:s1","measurement",{"attribute_id":"nope","payload":61,"timestamp":1767225600000}]',
        "invalid_attribute_id",
    ),
    ('["1","{ref}","sensor:s1","measurement",{"payload":61}]', "missing_fields"),
    ('["1","{ref}","sensor:s1","measurements_binary",{}]', "invalid_payload"),
    ('["1","{ref}","sensor:s2","measurement",{}]', "unmatched_topic"),
    ('["1","{ref}","sensor:s1","phx_reply",{}]', "invalid_event"),
    ('["1","{ref}","sensor:s1","measurement",{"pad":"' + "x" * 70_000 + '"}]', "frame_too_large"),
]


async def test_bad_input_gets_error_replies_and_loses_nothing(engine: Engine) -> None:
    async with serve(engine, config=ServerConfig.open(max_frame_bytes=65_536)) as srv:
        good, bad = await Raw.open(srv.url), await Raw.open(srv.url)
        await good.join("sensor:good")
        await bad.join("sensor:s1")
        ok = await bad.request(
            "sensor:s1", "measurement", {"attribute_id": "hr", "payload": 50, "timestamp": MS}
        )
        assert ok["status"] == "ok"
        for i, (template, reason) in enumerate(BAD_INPUT):
            ref = bad.ref()
            await bad.send(template.replace("{ref}", ref))
            reply = await bad.reply(ref)
            assert reply["status"] == "error", template[:80]
            assert reply["response"]["reason"] == reason, template[:80]
            assert reply["response"]["detail"]
            # the other sensor keeps ingesting meanwhile
            r = await good.request(
                "sensor:good",
                "measurement",
                {"attribute_id": "hr", "payload": i, "timestamp": MS + i},
            )
            assert r["status"] == "ok"
        block = encode_binary(Message("1", "999", "sensor:s1", "measurements_binary", b"SLB1junk"))
        await bad.send(block)
        assert (await bad.reply("999"))["response"]["reason"] == "invalid_binary_batch"
        ok = await bad.request(
            "sensor:s1", "measurement", {"attribute_id": "hr", "payload": 51, "timestamp": MS + 1}
        )
        assert ok["status"] == "ok"
        assert stored(engine, "s1", "hr") == [50.0, 51.0]
        assert stored(engine, "good", "hr") == [float(i) for i in range(len(BAD_INPUT))]


async def test_invalid_batch_stores_nothing_and_counts_failures(
    server: IngestServer, engine: Engine
) -> None:
    raw = await Raw.open(server.url)
    await raw.join("sensor:s1")
    items = [{"attribute_id": "hr", "payload": 60, "timestamp": MS + i} for i in range(10)]
    items[2]["payload"] = math.inf
    items[5]["attribute_id"] = "nope"
    ref = raw.ref()
    await raw.send(
        json.dumps(["1", ref, "sensor:s1", "measurements_batch", items]).replace(
            "Infinity", "Infinity"
        )
    )
    reply = await raw.reply(ref)
    assert reply["status"] == "error"
    assert reply["response"]["reason"] == "invalid_batch" and reply["response"]["failed_count"] == 2
    assert stored(engine, "s1", "hr") == []


async def test_a_channel_erring_too_often_is_closed_and_the_socket_stays(engine: Engine) -> None:
    async with serve(engine, config=ServerConfig.open(max_channel_errors=3)) as srv:
        raw = await Raw.open(srv.url)
        await raw.join("sensor:a")
        await raw.join("sensor:b")
        for _ in range(3):
            await raw.request("sensor:a", "teleport", {})
        closed = await raw.push_event("sensor:a", "phx_error")
        assert closed[4]["reason"] == "too_many_errors"
        reply = await raw.request("sensor:a", "ping", {})
        assert reply["response"]["reason"] == "unmatched_topic"
        assert (await raw.request("sensor:b", "ping", {"n": 1})) == {
            "status": "ok",
            "response": {"n": 1},
        }
        assert (await raw.join("sensor:a"))["status"] == "ok"  # it may rejoin


async def test_update_attributes(server: IngestServer, engine: Engine) -> None:
    raw = await Raw.open(server.url)
    await raw.join("sensor:s1")
    reply = await raw.request(
        "sensor:s1", "update_attributes", {"action": "register", "attribute_id": "spo2"}
    )
    assert "spo2" in reply["response"]["attributes"] and "spo2" in engine.sensors["s1"].attributes
    ok = await raw.request(
        "sensor:s1", "measurement", {"attribute_id": "spo2", "payload": 97, "timestamp": MS}
    )
    assert ok["status"] == "ok"
    await raw.request(
        "sensor:s1", "update_attributes", {"action": "unregister", "attribute_id": "spo2"}
    )
    err = await raw.request(
        "sensor:s1", "measurement", {"attribute_id": "spo2", "payload": 97, "timestamp": MS + 1}
    )
    assert err["response"]["reason"] == "invalid_attribute_id"
    bad = await raw.request(
        "sensor:s1", "update_attributes", {"action": "rename", "attribute_id": "hr"}
    )
    assert bad["response"]["reason"] == "invalid_action"


async def test_tokens(engine: Engine) -> None:
    async with serve(engine, config=ServerConfig(tokens=frozenset({"sekrit"}))) as srv:
        raw = await Raw.open(srv.url)
        reply = await raw.join("sensor:s1")
        assert reply["status"] == "error" and reply["response"]["reason"] == "unauthorized"
        assert "s1" not in engine.sensors
        assert (await raw.join("sensor:s1", {**JOIN, "bearer_token": "sekrit"}))["status"] == "ok"
        with pytest.raises(InvalidStatus) as info:
            await Raw.open(srv.url + "&token=wrong")
        assert info.value.response.status_code == 403
        with_token = await Raw.open(srv.url + "&token=sekrit")
        assert (await with_token.join("sensor:s2"))["status"] == "ok"


async def test_origins(engine: Engine) -> None:
    config = ServerConfig.open(allowed_origins=("http://lab.local", None))
    async with serve(engine, config=config) as srv:
        with pytest.raises(InvalidStatus) as info:
            await Raw.open(srv.url, origin="http://evil.example")
        assert info.value.response.status_code == 403
        ok = await Raw.open(srv.url, origin="http://lab.local")
        assert (await ok.join("sensor:s1"))["status"] == "ok"
        assert (await (await Raw.open(srv.url)).join("sensor:s2"))["status"] == "ok"


async def test_flood_is_rate_limited_on_the_clock(engine: Engine) -> None:
    clock = FakeClock()
    config = ServerConfig.open(rate_per_s=10, burst=5)
    async with serve(engine, config=config, clock=clock) as srv:
        raw = await Raw.open(srv.url)
        await raw.join("sensor:s1")  # 1 token
        refs = [raw.ref() for _ in range(10)]
        for i, ref in enumerate(refs):
            await raw.send(
                [
                    "1",
                    ref,
                    "sensor:s1",
                    "measurement",
                    {"attribute_id": "hr", "payload": i, "timestamp": MS + i},
                ]
            )
        statuses = [(await raw.reply(ref))["status"] for ref in refs]
        assert statuses == ["ok"] * 4 + ["error"] * 6
        clock.advance(1.0)  # refills
        assert (await raw.request("sensor:s1", "ping", {}))["status"] == "ok"
        assert stored(engine, "s1", "hr") == [0.0, 1.0, 2.0, 3.0]
    bucket = TokenBucket(2.0, 2, clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]


async def test_idle_socket_is_closed(engine: Engine) -> None:
    clock = FakeClock()
    async with serve(engine, config=ServerConfig.open(idle_timeout_s=60), clock=clock) as srv:
        raw = await Raw.open(srv.url)
        await raw.join("sensor:s1")
        while clock.sleepers == 0:  # the watchdog reached its sleep
            await asyncio.sleep(0)
        clock.advance(59)
        assert (await raw.request("phoenix", "heartbeat", {}, join_ref=None))["status"] == "ok"  # type: ignore[arg-type]
        clock.advance(59)  # 59 s since the heartbeat: still open
        assert (await raw.request("phoenix", "heartbeat", {}, join_ref=None))["status"] == "ok"  # type: ignore[arg-type]
        clock.advance(61)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(raw.ws.recv(), WAIT)
        assert raw.ws.close_reason == "idle timeout"


async def test_room_viewer_gets_batches_and_drives_attention(
    server: IngestServer, engine: Engine
) -> None:
    sensor, viewer = await Raw.open(server.url), await Raw.open(server.url)
    await sensor.join("sensor:s1", {**JOIN, "room": "lab"})
    await sensor.push_event("sensor:s1", "backpressure_config")
    assert (await viewer.join("room:lab", {"viewer_id": "v1"}))["response"]["viewer_id"] == "v1"
    await sensor.request(
        "sensor:s1", "measurement", {"attribute_id": "hr", "payload": 70, "timestamp": MS}
    )
    batch = await viewer.push_event("room:lab", "batch")
    assert batch[4]["sensor_id"] == "s1" and batch[4]["values"] == [70.0] and batch[4]["ts"] == [MS]
    reply = await viewer.request("room:lab", "focus", {"sensor_id": "s1"}, join_ref="101")
    assert reply["response"]["levels"] == {"s1": "high"}
    assert engine.attention.level("s1") is AttentionLevel.HIGH
    config = await sensor.expect(
        lambda m: m[3] == "backpressure_config" and m[4]["attention_level"] == "high"
    )
    assert config[4]["recommended_batch_size"] == 1
    bad = await viewer.request("room:lab", "view_enter", {"sensor_id": 5})
    assert bad["response"]["reason"] == "invalid_sensor_id"
    await viewer.close()  # the viewer goes: its views go
    config = await sensor.expect(
        lambda m: m[3] == "backpressure_config" and m[4]["attention_level"] == "none"
    )
    assert engine.attention.level("s1") is AttentionLevel.NONE


async def test_lens_viewer_gets_its_sensors_flushed(server: IngestServer, engine: Engine) -> None:
    sensor, viewer = await Raw.open(server.url), await Raw.open(server.url)
    await sensor.join("sensor:s1")
    await sensor.join("sensor:s2")
    await viewer.join("lens:v9", {})
    await viewer.request("lens:v9", "view_enter", {"sensor_ids": ["s1"]})
    assert engine.attention.level("s1") is AttentionLevel.MEDIUM
    await sensor.request(
        "sensor:s2", "measurement", {"attribute_id": "hr", "payload": 1, "timestamp": MS}
    )
    await sensor.request(
        "sensor:s1", "measurement", {"attribute_id": "hr", "payload": 2, "timestamp": MS}
    )
    batch = await viewer.push_event("lens:v9", "batch")
    assert batch[4]["sensor_id"] == "s1" and batch[4]["values"] == [2.0]
    await viewer.request("lens:v9", "page_hidden", {"hidden": True})
    assert engine.attention.level("s1") is AttentionLevel.NONE


async def test_connector_channel_and_rejoin(server: IngestServer) -> None:
    raw = await Raw.open(server.url)
    assert (await raw.join("sensocto:connector:c1", {"connector_name": "x"}))["status"] == "ok"
    assert (await raw.request("sensocto:connector:c1", "ping", {"t": 1}))["response"] == {"t": 1}
    assert (await raw.request("sensocto:connector:c1", "measurement", {}))["status"] == "error"
    unknown = await raw.join("chat:lobby", {})
    assert unknown["response"]["reason"] == "unknown_topic"
    await raw.join("sensor:s1")
    await raw.join("sensor:s1")  # the second join replaces the first
    closed = await raw.push_event("sensor:s1", "phx_close")
    assert closed[0] == closed[1]  # the old join's ref
    assert (await raw.request("sensor:s1", "ping", {}, join_ref=closed[0]))["status"] == "ok"


async def test_socket_close_ingests_what_was_accepted(server: IngestServer, engine: Engine) -> None:
    raw = await Raw.open(server.url)
    await raw.join("sensor:s1")
    for i in range(50):  # a connector that does not wait for replies
        await raw.send(
            [
                None,
                None,
                "sensor:s1",
                "measurement",
                {"attribute_id": "hr", "payload": i, "timestamp": MS + i},
            ]
        )
    await raw.close()
    await server.close()
    assert (
        stored(engine, "s1", "hr")
        == [float(i) for i in range(50)][-len(stored(engine, "s1", "hr")) :]
    )
    assert engine.health()["sensors"][0]["samples"] == 50


async def test_frames_far_over_the_limit_are_cut_off_by_websockets(engine: Engine) -> None:
    async with serve(engine, config=ServerConfig.open(max_frame_bytes=1000)) as srv:
        raw, other = await Raw.open(srv.url), await Raw.open(srv.url)
        await raw.join("sensor:s1")
        await other.join("sensor:s2")
        await raw.send('["1","5","sensor:s1","measurement",{"pad":"' + "x" * 5000 + '"}]')
        with pytest.raises(ConnectionClosed):
            while True:  # the pushes sent before, then the close
                await asyncio.wait_for(raw.ws.recv(), WAIT)
        assert raw.ws.close_code == 1009  # message too big
        assert (await other.request("sensor:s2", "ping", {}))["status"] == "ok"  # others stay
