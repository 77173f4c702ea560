"""sensocto_lab next to Lab Streaming Layer (pylsl) on this machine.

LSL is what many labs use to move physiological streams between programs on one
machine or LAN; the comparable path here is a device pushing over our WebSocket
endpoint into the engine (stored *and* published) and a subscriber reading it.

Measures, both sides in this same run, one 1-channel float32 stream:
- throughput: 512-sample chunks pushed as fast as the receiver keeps up;
- latency: one sample at a time, push to receipt (p50 and p99).

LSL is kept on this machine (machine-scope discovery, see ``lsl_api.cfg``). Our side
also writes every sample to the WAL before a subscriber sees it; LSL stores nothing.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._table import Row, format_table

os.environ.setdefault("LSLAPICFG", str(Path(__file__).with_name("lsl_api.cfg")))

CHUNK = 512
T0_MS = 1_767_225_600_000.0


def _lsl(n_chunks: int, n_latency: int) -> tuple[float, float, float] | None:
    """LSL samples/s, latency p50 and p99 in ms; None if pylsl cannot run here."""
    try:
        import pylsl
    except (ImportError, RuntimeError):
        return None
    info = pylsl.StreamInfo("bench", "ECG", 1, 512, "float32", f"bench-{os.getpid()}")
    outlet = pylsl.StreamOutlet(info, chunk_size=CHUNK, max_buffered=360)
    found = pylsl.resolve_byprop("source_id", info.source_id(), timeout=5)
    if not found:
        return None
    inlet = pylsl.StreamInlet(found[0], max_buflen=360)
    inlet.open_stream(timeout=5)
    data = np.random.default_rng(0).standard_normal((CHUNK, 1)).astype(np.float32)

    total = n_chunks * CHUNK
    start = time.perf_counter()
    got = 0
    for _ in range(n_chunks):
        outlet.push_chunk(data)
        samples, _ = inlet.pull_chunk(timeout=0.0, max_samples=total)
        got += len(samples)
    while got < total:
        samples, _ = inlet.pull_chunk(timeout=2.0, max_samples=total)
        if not samples:
            break
        got += len(samples)
    rate = got / (time.perf_counter() - start)

    lat = []
    for i in range(n_latency):
        t = time.perf_counter()
        outlet.push_sample([float(i)])
        sample, _ = inlet.pull_sample(timeout=2.0)
        if sample is not None:
            lat.append(time.perf_counter() - t)
    inlet.close_stream()
    del inlet, outlet
    ms = np.asarray(lat) * 1e3
    return rate, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


async def _ours(n_chunks: int, n_latency: int) -> tuple[float, float, float]:
    """Our samples/s (client → endpoint → engine, stored and published), p50/p99 ms."""
    from sensocto_lab.engine.engine import Engine
    from sensocto_lab.net.config import ServerConfig
    from sensocto_lab.net.sensor_client import SensorClient
    from sensocto_lab.net.server import serve

    with tempfile.TemporaryDirectory() as tmp:
        async with Engine(data_dir=tmp, thread=False) as engine:
            server = await serve(engine, host="127.0.0.1", port=0, config=ServerConfig.open())
            url = f"ws://127.0.0.1:{server.port}/socket/websocket?vsn=2.0.0"
            data = np.random.default_rng(0).standard_normal(CHUNK)
            async with SensorClient(url, "bench-ecg", {"ecg": "ecg"}) as thru:
                sub = engine.bus.subscribe("data:bench-ecg", maxsize=n_chunks + 16)
                total = n_chunks * CHUNK
                start = time.perf_counter()
                for i in range(n_chunks):
                    await thru.send_batch("ecg", data, t0_ms=T0_MS + i * 1000, dt_ms=1.9)
                got = 0
                while got < total:
                    got += len(await asyncio.wait_for(sub.get(), 30))
                rate = got / (time.perf_counter() - start)
                sub.close()

            async with SensorClient(url, "bench-lat", {"v": "numeric"}) as one:
                sub = engine.bus.subscribe("data:bench-lat", maxsize=16)
                lat = []
                for i in range(n_latency):
                    t = time.perf_counter()
                    await one.send_batch("v", [float(i)], t0_ms=T0_MS + i, dt_ms=1.0)
                    await asyncio.wait_for(sub.get(), 30)
                    lat.append(time.perf_counter() - t)
                sub.close()
            await server.close()
    ms = np.asarray(lat) * 1e3
    return rate, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def run(quick: bool = False) -> list[Row]:
    """Measure LSL and sensocto_lab on the same streams in this run."""
    n_chunks = 400 if quick else 4000
    n_latency = 300 if quick else 3000
    ours = asyncio.run(_ours(n_chunks, n_latency))
    lsl = _lsl(n_chunks, n_latency)
    base = "pylsl outlet→inlet"
    if lsl is None:
        base = "pylsl (not runnable here)"
    rows = [
        Row("lsl", "chunked samples/s (512-sample chunks)", ours[0], lsl and lsl[0], base),
        Row(
            "lsl",
            "single-sample latency p50 (ms)",
            ours[1],
            lsl and lsl[1],
            base,
            higher_is_better=False,
        ),
        Row(
            "lsl",
            "single-sample latency p99 (ms)",
            ours[2],
            lsl and lsl[2],
            base,
            higher_is_better=False,
        ),
    ]
    return rows


if __name__ == "__main__":
    print(format_table(run()))
