"""Soak and fault tests across the whole stack: nothing accepted is ever lost.

Short forms run in CI; ``pytest --soak-long -m soak`` runs the long forms
(1000 sensors for 10 minutes). Each test ends by reopening the data directory
from disk and checking every sample a sender had acknowledged is there exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import numpy as np
import psutil
import pytest
import websockets

from sensocto_lab.engine.engine import Engine, EngineConfig
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.sensor_client import SensorClient
from sensocto_lab.net.server import serve
from sensocto_lab.storage import TieredStore

pytestmark = [pytest.mark.soak, pytest.mark.timeout(900)]

T0_MS = 1_767_225_600_000.0


def stored_ts_ms(data_dir: Path, sensor_id: str, attribute_id: str) -> np.ndarray:
    """Device timestamps (ms) of one series as read back from disk after a restart."""
    store = TieredStore.open(data_dir)
    try:
        table = store.read_table(sensor_id, attribute_id)
    finally:
        store.close()
    ts = table.column("ts").cast("int64").to_numpy()
    return ts / 1e6


def assert_exactly(data_dir: Path, sensor_id: str, attribute_id: str, sent: np.ndarray) -> None:
    got = stored_ts_ms(data_dir, sensor_id, attribute_id)
    assert len(got) == len(sent), f"{sensor_id}: stored {len(got)} of {len(sent)} samples"
    np.testing.assert_allclose(got, sent, atol=1e-3)


@asynccontextmanager
async def endpoint(data_dir: Path, **config: object) -> AsyncIterator[tuple[Engine, str]]:
    async with Engine(data_dir=data_dir, thread=False) as engine:
        server = await serve(engine, host="127.0.0.1", port=0, config=ServerConfig.open(**config))
        try:
            yield engine, f"ws://127.0.0.1:{server.port}/socket/websocket?vsn=2.0.0"
        finally:
            await server.close()


async def stream(url: str, sensor_id: str, seconds: int, *, rate_hz: float = 50.0) -> np.ndarray:
    """Push ``seconds`` of 1-second blocks of ``rate_hz`` samples; return their ms stamps."""
    per = int(rate_hz)
    sent = []
    async with SensorClient(url, sensor_id, {"resp": "respiration"}) as client:
        for s in range(seconds):
            ts = T0_MS + s * 1000 + np.arange(per) * (1000 / rate_hz)
            await client.send_batch("resp", np.sin(ts / 700), timestamps_ms=ts)
            sent.append(ts)
        await client.drain(timeout=60)
        assert not client.errors
    return np.concatenate(sent)


async def test_soak_many_sensors_nothing_lost_memory_flat(tmp_path: Path, soak_long: bool) -> None:
    """1000 sensors at 10 Hz in real time (10 s in CI, 10 minutes long): no loss, flat RSS."""
    n_sensors, seconds = 1000, (600 if soak_long else 10)
    proc = psutil.Process()
    async with Engine(data_dir=tmp_path, thread=False) as engine:
        ids = [f"soak-{i:04d}" for i in range(n_sensors)]
        for sid in ids:
            await engine.register_sensor(
                SensorInfo(sid, {"hr": AttributeInfo.of("hr", "numeric")}, room="soak")
            )
        rss: list[float] = []
        start = time.monotonic()
        for s in range(seconds):
            ts = (T0_MS + s * 1000 + np.arange(10) * 100) * 1e6
            batches = [Batch(sid, "hr", ts.astype(np.int64), np.full(10, 60.0 + s)) for sid in ids]
            await asyncio.gather(*(engine.ingest(b) for b in batches))
            rss.append(proc.memory_info().rss / 2**20)
            # pace to real time: the load is 10 Hz per sensor, not as fast as possible
            delay = start + s + 1 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        health = engine.health()
    stored = {row["id"]: row["samples"] for row in health["sensors"]}
    lost = sum(seconds * 10 - stored.get(sid, 0) for sid in ids)
    growth = rss[-1] - rss[len(rss) // 4]
    print(
        f"\nsoak: {n_sensors} sensors x {seconds} s: lost {lost}, RSS {rss[0]:.0f} → "
        f"{rss[-1]:.0f} MiB (growth after warm-up {growth:.1f} MiB)"
    )
    assert lost == 0
    # memory rings are bounded: after warm-up RSS must not climb with time
    assert growth < 64 + 0.02 * seconds
    for sid in (ids[0], ids[-1]):
        got = stored_ts_ms(tmp_path, sid, "hr")
        assert len(got) == seconds * 10


async def test_sensor_task_killed_neighbours_and_its_own_data_survive(tmp_path: Path) -> None:
    """One sensor's task is killed repeatedly mid-stream; every acknowledged sample survives."""
    kills = 0

    def kill_every_fourth(batch: Batch) -> None:
        nonlocal kills
        if batch.sensor_id == "victim" and int(batch.ts[0] // 10**9) % 4 == 0:
            kills += 1
            raise RuntimeError("killed by the fault test")

    config = EngineConfig(fault=kill_every_fourth, inflight_retries=0)
    async with Engine(data_dir=tmp_path, thread=False, config=config) as engine:
        server = await serve(engine, host="127.0.0.1", port=0, config=ServerConfig.open())
        url = f"ws://127.0.0.1:{server.port}/socket/websocket?vsn=2.0.0"
        statuses = engine.bus.subscribe("sensors:status", maxsize=10_000)
        a, b = await asyncio.gather(stream(url, "left", 12), stream(url, "right", 12))
        victim_acked: list[np.ndarray] = []
        async with SensorClient(url, "victim", {"resp": "respiration"}) as client:
            for s in range(8):
                ts = T0_MS + s * 1000 + np.arange(50) * 20.0
                await client.send_batch("resp", np.cos(ts), timestamps_ms=ts)
                await client.drain(timeout=30)
                if not client.errors:
                    victim_acked.append(ts)
                client.errors.clear()
        states = []
        while (msg := statuses.get_nowait() if statuses.statistics().queued else None) is not None:
            states.append((msg.sensor_id, str(msg.state)))
        await server.close()
    assert kills >= 1
    assert any(sid == "victim" and "restarting" in st.lower() for sid, st in states)
    assert not any(sid in ("left", "right") and "restarting" in st.lower() for sid, st in states)
    assert_exactly(tmp_path, "left", "resp", a)
    assert_exactly(tmp_path, "right", "resp", b)
    assert_exactly(tmp_path, "victim", "resp", np.concatenate(victim_acked))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_process(data_dir: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """``sensocto-lab serve`` in a child process; returns once its endpoint is up."""
    cmd = [
        sys.executable,
        "-m",
        "sensocto_lab.cli",
        "serve",
        "--no-auth",
        "--no-dashboard",
        "--port",
        str(port),
        "--data",
        str(data_dir),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ready"):
                break
        else:
            raise AssertionError(f"serve exited with {proc.wait()} before listening")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


async def test_storage_writer_killed_client_resends_and_nothing_is_lost(tmp_path: Path) -> None:
    """The serving process (engine + WAL writer) is SIGKILLed mid-stream and restarted:
    the client reconnects, resends what was not acknowledged, and every sample is
    stored exactly once."""
    port = _free_port()
    url = f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0"
    sent: list[np.ndarray] = []
    with serve_process(tmp_path, port) as first:
        client = SensorClient(url, "strap", {"ecg": "ecg"}, backoff_s=(0.05, 0.5))
        await client.connect()
        for s in range(10):
            ts = T0_MS + s * 1000 + np.arange(512) * (1000 / 512)
            await client.send_batch("ecg", np.sin(ts), timestamps_ms=ts)
            sent.append(ts)
        await client.drain(timeout=60)
        for s in range(10, 20):  # these are in flight when the process dies
            ts = T0_MS + s * 1000 + np.arange(512) * (1000 / 512)
            await client.send_batch("ecg", np.sin(ts), timestamps_ms=ts)
            sent.append(ts)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    with serve_process(tmp_path, port):
        for s in range(20, 30):
            ts = T0_MS + s * 1000 + np.arange(512) * (1000 / 512)
            await client.send_batch("ecg", np.sin(ts), timestamps_ms=ts)
            sent.append(ts)
        await client.drain(timeout=120)
        assert not client.errors
        await client.close()
    assert_exactly(tmp_path, "strap", "ecg", np.concatenate(sent))


async def test_serve_killed_again_and_again_loses_nothing_acknowledged(
    tmp_path: Path, soak_long: bool
) -> None:
    """4 straps at 512 Hz; ``serve`` is SIGKILLed at random moments (3 times here, 100 with
    ``--soak-long``) and restarted on the same data directory. The clients resend what
    was not acknowledged; in the end every sample is stored exactly once and every
    Parquet file the kills left behind opens."""
    import random

    import pyarrow.parquet as pq

    kills = 100 if soak_long else 3
    rng = random.Random(19)
    port = _free_port()
    url = f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0"
    straps = [f"strap-{i}" for i in range(4)]
    clients = [SensorClient(url, sid, {"ecg": "ecg"}, backoff_s=(0.05, 0.5)) for sid in straps]
    sent: dict[str, list[np.ndarray]] = {sid: [] for sid in straps}
    block = [0]

    async def send_one_second() -> None:
        s = block[0]
        block[0] += 1
        ts = T0_MS + s * 1000 + np.arange(512) * (1000 / 512)
        for sid, client in zip(straps, clients, strict=True):
            await client.send_batch("ecg", np.sin(ts), timestamps_ms=ts)
            sent[sid].append(ts)

    for kill in range(kills):
        with serve_process(tmp_path, port) as proc:
            if kill == 0:  # later the clients reconnect by themselves
                await asyncio.gather(*(client.connect() for client in clients))
            for _second in range(rng.randint(1, 4)):
                await send_one_second()
            await asyncio.sleep(rng.uniform(0.0, 0.3))  # the kill lands mid-stream
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    with serve_process(tmp_path, port):
        await send_one_second()
        for client in clients:
            await client.drain(timeout=120)
            assert not client.errors
            await client.close()
    for sid in straps:
        assert_exactly(tmp_path, sid, "ecg", np.concatenate(sent[sid]))
    parts = sorted((tmp_path / "cold").rglob("*.parquet"))
    assert parts, "nothing was compacted"
    for part in parts:
        pq.read_table(part)  # every file the kills left behind opens


async def test_stalled_viewer_does_not_slow_or_lose_ingest(tmp_path: Path) -> None:
    """A viewer joins a room over the endpoint and never reads a frame again."""
    async with endpoint(tmp_path, viewer_queue=8) as (engine, url):
        stalled = await websockets.connect(url, max_queue=1)
        await stalled.send(json.dumps(["1", "1", "room:default", "phx_join", {}]))
        await asyncio.wait_for(stalled.recv(), 10)  # the join reply; then it stops reading
        sent: dict[str, list[np.ndarray]] = {"a": [], "b": []}
        for sid in sent:
            await engine.register_sensor(
                SensorInfo(sid, {"resp": AttributeInfo.of("resp", "respiration")}, room="default")
            )
        await engine.set_views("stalled-viewer", {"a": 3, "b": 3})
        # 2 x 1500 batches of 200 samples: far more than the socket buffers hold
        for i in range(1500):
            ts = T0_MS + i * 1000 + np.arange(200) * 5.0
            for sid, chunks in sent.items():
                await engine.ingest(Batch(sid, "resp", (ts * 1e6).astype(np.int64), np.sin(ts)))
                chunks.append(ts)
        room_subs = [
            s for s in engine.bus.statistics()["subscriptions"] if s["topic"] == "room:default"
        ]
        await stalled.close()
    # the viewer's channel kept draining the bus (its own display buffer absorbs the
    # stall, never the engine), and every sample is stored
    assert room_subs and room_subs[0]["delivered"] + room_subs[0]["dropped"] == 3000
    for sid, chunks in sent.items():
        assert_exactly(tmp_path, sid, "resp", np.concatenate(chunks))


async def test_flooded_endpoint_refuses_excess_and_keeps_everyone_elses_data(
    tmp_path: Path,
) -> None:
    """A device floods frames past the rate limit; it gets ``rate_limited`` replies,
    the engine keeps running and a well-behaved sensor loses nothing."""
    async with endpoint(tmp_path, rate_per_s=200.0, burst=100) as (engine, url):
        async with websockets.connect(url) as flood:
            await flood.send(
                json.dumps(
                    [
                        "1",
                        "1",
                        "sensor:flood",
                        "phx_join",
                        {"sensor_id": "flood", "attributes": [{"attribute_id": "hr"}]},
                    ]
                )
            )
            reply = json.loads(await asyncio.wait_for(flood.recv(), 10))
            assert reply[4]["status"] == "ok"

            async def flood_it() -> tuple[int, int]:
                for i in range(2000):
                    frame = [
                        "1",
                        str(i + 2),
                        "sensor:flood",
                        "measurement",
                        {"attribute_id": "hr", "payload": 60, "timestamp": T0_MS + i},
                    ]
                    await flood.send(json.dumps(frame))
                ok = limited = 0
                while ok + limited < 2000:
                    msg = json.loads(await asyncio.wait_for(flood.recv(), 30))
                    if msg[3] != "phx_reply" or msg[2] != "sensor:flood":
                        continue
                    if msg[4]["status"] == "ok":
                        ok += 1
                    elif msg[4]["response"].get("reason") == "rate_limited":
                        limited += 1
                return ok, limited

            (ok, limited), calm = await asyncio.gather(flood_it(), stream(url, "calm", 10))
        assert limited > 0
        assert engine.health()["sensors"]
    assert_exactly(tmp_path, "calm", "resp", calm)
    assert len(stored_ts_ms(tmp_path, "flood", "hr")) == ok
