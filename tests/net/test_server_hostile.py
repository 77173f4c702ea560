"""Hostile or broken peers on a real socket (issue #19): numbers out of range.

Every bad message gets an error reply by its ref; the channel, the socket and the
other sensors keep working, and what was stored stays stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from support.server import JOIN, MS, WAIT, Raw, engine, server

from sensocto_lab.engine.engine import Engine
from sensocto_lab.net.channels import sensor as channel_module
from sensocto_lab.net.server import IngestServer
from sensocto_lab.protocol.binary import encode_batch
from sensocto_lab.protocol.frames import Message, encode_binary

__all__ = ["engine", "server"]  # fixtures

HUGE = 10**400  # an integer beyond float range (JSON allows it)
FAR = 2**58 + MS  # ms; times 10**6 it wraps int64 to exactly MS * 10**6


def stored_ts(engine: Engine, sensor: str, attr: str) -> list[int]:
    ts, _ = engine.store.latest(sensor, attr)
    return np.asarray(ts).tolist()  # type: ignore[no-any-return]


def hr(value: Any, ms: Any) -> dict[str, Any]:
    return {"attribute_id": "hr", "payload": value, "timestamp": ms}


async def still_works(raw: Raw, topic: str, ms: int) -> None:
    """A valid push on ``topic`` is acknowledged as stored."""
    reply = await raw.request(topic, "measurement", hr(60, ms))
    assert reply == {"status": "ok", "response": {"stored": 1, "duplicates": 0}}


BAD_MEASUREMENTS = [
    (hr(61, 10_000_000_000_000), "invalid_timestamp"),  # int ms beyond int64 ns
    (hr(61, 2**63), "invalid_timestamp"),
    (hr(61, -(2**70)), "invalid_timestamp"),
    (hr(61, FAR), "invalid_timestamp"),
    (hr(61, HUGE), "invalid_timestamp"),
    (hr(HUGE, MS), "invalid_value"),
    (hr(-HUGE, MS), "invalid_value"),
    ({"attribute_id": "acc", "payload": [0, HUGE, 1], "timestamp": MS}, "invalid_value"),
    (
        {"attribute_id": "acc", "payload": {"x": 0, "y": 1, "z": HUGE}, "timestamp": MS},
        "invalid_value",
    ),
    (hr(1e308 * 10, MS), "non_finite_value"),  # inf
    ({"attribute_id": "acc", "payload": [0, 1e300, 1], "timestamp": MS}, "non_finite_value"),
]


async def test_a_measurement_out_of_range_is_refused_and_the_channel_keeps_working(
    server: IngestServer, engine: Engine
) -> None:
    raw, other = await Raw.open(server.url), await Raw.open(server.url)
    await raw.join("sensor:s1")
    await other.join("sensor:s2")
    await still_works(raw, "sensor:s1", MS)
    for i, (payload, reason) in enumerate(BAD_MEASUREMENTS, start=1):
        reply = await raw.request("sensor:s1", "measurement", payload)
        assert reply["status"] == "error", payload
        assert reply["response"]["reason"] == reason, payload
        await still_works(raw, "sensor:s1", MS + i)
        await still_works(other, "sensor:s2", MS + i)
    n = len(BAD_MEASUREMENTS)
    assert stored_ts(engine, "s1", "hr") == [(MS + i) * 10**6 for i in range(n + 1)]
    assert stored_ts(engine, "s2", "hr") == [(MS + i) * 10**6 for i in range(1, n + 1)]
    await asyncio.wait_for(server.close(), WAIT)  # nothing is stuck


def batch_cases() -> list[tuple[Any, str]]:
    good = [hr(60, MS + 100)]
    return [
        # a list of measurements: all or nothing
        ([*good, hr(61, FAR)], "invalid_batch"),
        ([*good, hr(61, 10000000000000)], "invalid_batch"),
        ([*good, hr(61, HUGE)], "invalid_batch"),
        ([*good, hr(HUGE, MS + 101)], "invalid_batch"),
        ({"measurements": [*good, hr(61, 2**63)]}, "invalid_batch"),
        # columnar
        ({"attribute_id": "hr", "timestamps": [MS, FAR], "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "timestamps": [MS, 2**63], "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "timestamps": [HUGE], "values": [1]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": HUGE, "dt": 1, "values": [1]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": FAR, "dt": 1, "values": [1]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": MS, "dt": HUGE, "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1e308, "values": [1, 2, 3]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1e300, "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1, "values": [1, HUGE]}, "invalid_value"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1, "values": [HUGE]}, "invalid_value"),
        ({"attribute_id": "ecg", "t0": MS, "dt": 1, "values": [1e300]}, "non_finite_value"),
    ]


async def test_a_batch_out_of_range_is_refused_whole(server: IngestServer, engine: Engine) -> None:
    raw, other = await Raw.open(server.url), await Raw.open(server.url)
    await raw.join("sensor:s1")
    await other.join("sensor:s2")
    for i, (payload, reason) in enumerate(batch_cases()):
        reply = await raw.request("sensor:s1", "measurements_batch", payload)
        assert reply["status"] == "error", payload
        assert reply["response"]["reason"] == reason, payload
        if reason == "invalid_batch":
            assert reply["response"]["failed_count"] == 1
        await still_works(raw, "sensor:s1", MS + i)
        await still_works(other, "sensor:s2", MS + i)
    n = len(batch_cases())
    assert stored_ts(engine, "s1", "hr") == [(MS + i) * 10**6 for i in range(n)]
    assert stored_ts(engine, "s1", "ecg") == []


@pytest.mark.parametrize(
    "block",
    [
        encode_batch("ecg", [1.0, 2.0], t0_ns=2**63 - 10, dt_ns=1e9),  # t0 + dt beyond int64
        encode_batch("ecg", [1.0, 2.0], t0_ns=MS * 10**6, dt_ns=1e300),
        encode_batch("ecg", [1.0, 2.0], t0_ns=-(2**63), dt_ns=1e19),
        encode_batch("ecg", [1.0, 2.0], ts=[MS * 10**6, 2**63 - 1]),
    ],
    ids=["t0-wraps", "dt-huge", "dt-wraps", "explicit-far"],
)
async def test_a_binary_batch_out_of_range_is_refused(
    server: IngestServer, engine: Engine, block: bytes
) -> None:
    raw = await Raw.open(server.url)
    await raw.join("sensor:s1")
    ref = raw.ref()
    await raw.send(encode_binary(Message("1", ref, "sensor:s1", "measurements_binary", block)))
    reply = await raw.reply(ref)
    assert reply["status"] == "error"
    assert reply["response"]["reason"] in {"invalid_binary_batch", "invalid_timestamp"}
    await still_works(raw, "sensor:s1", MS)
    assert stored_ts(engine, "s1", "ecg") == []


@pytest.mark.parametrize(
    "params",
    [
        {**JOIN, "sampling_rate": HUGE},
        {**JOIN, "attributes": [{"attribute_id": "hr", "sampling_rate": HUGE}]},
        {**JOIN, "attributes": {"hr": {"type": "hr", "rate_hz": -HUGE}}},
        {**JOIN, "batch_size": 1.5},
    ],
    ids=["sampling_rate", "attribute-rate", "attribute-rate-object", "batch_size"],
)
async def test_join_params_out_of_range_get_a_join_error(
    server: IngestServer, engine: Engine, params: dict[str, Any]
) -> None:
    raw = await Raw.open(server.url)
    reply = await raw.join("sensor:s1", params)
    assert reply["status"] == "error" and reply["response"]["reason"] == "invalid_params"
    assert "s1" not in engine.sensors
    assert (await raw.join("sensor:s1"))["status"] == "ok"  # the socket stays
    await still_works(raw, "sensor:s1", MS)


async def test_a_bug_handling_a_push_refuses_it_and_the_channel_goes_on(
    server: IngestServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever slips past validation (a bug) costs one push, not the channel or socket."""
    original = {
        name: getattr(channel_module, name) for name in ("merge", "sample_from_measurement")
    }

    def broken_once(name: str) -> Any:
        def broken(*args: Any) -> Any:
            monkeypatch.setattr(channel_module, name, original[name])
            raise OverflowError("a bug")

        return broken

    raw = await Raw.open(server.url)
    await raw.join("sensor:s1")
    for i, name in enumerate(original):  # in the ingest task, then in the socket's read
        monkeypatch.setattr(channel_module, name, broken_once(name))
        reply = await raw.request("sensor:s1", "measurement", hr(60, MS + 100 + i))
        assert reply["status"] == "error"
        assert reply["response"]["reason"] == "internal_error"
        await still_works(raw, "sensor:s1", MS + i)
    assert stored_ts(engine, "s1", "hr") == [MS * 10**6, (MS + 1) * 10**6]
