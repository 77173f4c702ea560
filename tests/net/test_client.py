"""The Python connector against the real endpoint: batching, back-pressure, reconnects."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from support.server import MS, engine, server

from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import AuthError
from sensocto_lab.model import AttentionLevel
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.sensor_client import SensorClient
from sensocto_lab.net.server import IngestServer, serve

__all__ = ["engine", "server"]  # fixtures

ATTRS = {"hr": "hr", "ecg": "ecg", "acc": "accelerometer"}


def stored(engine: Engine, sensor: str, attr: str) -> np.ndarray:
    return np.asarray(engine.store.latest(sensor, attr)[1])


def samples(engine: Engine, sensor: str) -> int:
    return next(s["samples"] for s in engine.health()["sensors"] if s["id"] == sensor)


async def test_single_samples_are_batched_by_backpressure(
    server: IngestServer, engine: Engine
) -> None:
    async with SensorClient(server.url, "s1", ATTRS) as client:
        config = await client.wait_backpressure("none")
        assert config["recommended_batch_size"] == 20
        for i in range(45):
            await client.send("hr", 60 + i % 5, MS + i)
        assert client.outstanding == 45
        await client.drain()
        assert client.stats.pushes == 3  # 20 + 20 by size, the last 5 by drain
        assert client.stats.samples_acked == 45 and client.errors == []
        np.testing.assert_array_equal(stored(engine, "s1", "hr"), [60 + i % 5 for i in range(45)])


async def test_high_attention_sends_each_sample(server: IngestServer, engine: Engine) -> None:
    async with SensorClient(server.url, "s1", ATTRS) as client:
        await client.wait_backpressure("none")
        await engine.set_views("v1", {"s1": AttentionLevel.HIGH})
        config = await client.wait_backpressure("high")
        assert config["recommended_batch_size"] == 1
        for i in range(5):
            await client.send("acc", [0, 0, 9.8 + i], MS + i)
        await client.drain()
        assert client.stats.pushes == 5
        assert stored(engine, "s1", "acc").shape == (5, 3)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
async def test_blocks(server: IngestServer, engine: Engine, binary: bool) -> None:
    ecg = np.sin(np.arange(390) / 7.0)
    async with SensorClient(server.url, "s1", ATTRS, binary=binary) as client:
        await client.send_batch("ecg", ecg[:130], t0_ms=MS, dt_ms=1000 / 130)
        ts = MS + 1000 + np.arange(260) * 1000 / 130
        await client.send_batch("ecg", ecg[130:], timestamps_ms=ts)
        await client.drain()
        assert client.stats.samples_acked == 390
    np.testing.assert_allclose(stored(engine, "s1", "ecg")[-150:], ecg[-150:], rtol=1e-6)


async def test_bad_input_is_refused_on_the_spot(server: IngestServer) -> None:
    async with SensorClient(server.url, "s1", ATTRS) as client:
        with pytest.raises(ValueError, match="finite"):
            await client.send("hr", float("nan"), MS)
        with pytest.raises(ValueError, match="numbers"):
            await client.send("hr", "sixty", MS)
        await client.send("hr", 60, MS + 10)
        with pytest.raises(ValueError, match="increase"):
            await client.send("hr", 61, MS + 10)
        with pytest.raises(ValueError):
            await client.send_batch("ecg", [1.0, 2.0], timestamps_ms=[MS + 2, MS + 1])
        await client.send("nope", 1.0, MS)  # not declared: the server says so
        await client.drain()
        assert [e[1]["reason"] for e in client.errors] == ["invalid_attribute_id"]


async def test_refused_join_stops_the_client(engine: Engine) -> None:
    async with serve(engine, config=ServerConfig(tokens=frozenset({"t"}))) as srv:
        client = SensorClient(srv.url, "s1", ATTRS, token="wrong")
        with pytest.raises(AuthError) as info:
            await client.connect()
        assert info.value.reason == "unauthorized"
        await client.close()
        async with SensorClient(srv.url, "s1", ATTRS, token="t") as ok:
            await ok.send("hr", 60, MS)
        assert ok.stats.samples_acked == 1


async def test_reconnect_stores_every_sample_exactly_once(engine: Engine) -> None:
    srv = await serve(engine, config=ServerConfig.open())
    port = srv.port
    client = await SensorClient(srv.url, "s1", ATTRS, backoff_s=(0.02, 0.2)).connect()
    block = np.arange(1000, dtype=np.float64)
    n_blocks = 0

    async def send_some(k: int) -> None:
        nonlocal n_blocks
        for _ in range(k):
            await client.send_batch("ecg", block, t0_ms=MS + n_blocks * 10_000, dt_ms=1.0)
            n_blocks += 1

    await send_some(20)
    await asyncio.sleep(0)  # let the sender put some on the wire, not wait for them
    await srv.close()  # the server dies with pushes in flight
    await send_some(10)  # buffered while disconnected
    assert client.outstanding > 0
    srv = await serve(engine, port=port, config=ServerConfig.open())
    await client.drain(timeout=30)
    assert client.stats.connects >= 2
    assert client.stats.resent > 0 and client.stats.duplicates > 0  # replies were lost
    assert samples(engine, "s1") == n_blocks * 1000  # nothing lost, nothing twice
    ts, _ = engine.store.latest("s1", "ecg")
    assert (np.diff(ts) > 0).all()
    await client.close()
    await srv.close()
