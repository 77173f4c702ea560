"""LSL in: record_lsl next to pylsl pulling into numpy itself, on this machine.

The baseline is what a lab script does without us: a pylsl inlet pulling chunks into
a preallocated numpy buffer (``pull_chunk(dest_obj=...)``). Ours records the same
streams with the engine: one sensor per stream, one stored and published series per
channel, every sample written to the WAL before a subscriber sees it.

Rows, both sides in this run:
- a lab's load, one 32-channel float32 EEG at 512 Hz plus 8 three-channel ACC at
  50 Hz, pushed in real time: samples lost (pushed − stored) and the p99 latency
  from a chunk's push (its last sample's stamp) to a subscriber of ``room:{room}``,
  measured after ``gc.freeze()`` as ``sensocto-lab serve`` runs (an unfrozen full
  collection stalls the loop ~85 ms with the scientific stack loaded);
- the most values per second one 32-channel stream sustains (pushed as fast as it
  goes, 512-sample chunks), until every sample is stored and published.

LSL is kept on this machine (machine-scope discovery, ``lsl_api.cfg``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from bench._table import Row, format_table

os.environ.setdefault("LSLAPICFG", str(Path(__file__).with_name("lsl_api.cfg")))

EEG_CH, EEG_HZ, ACC_N, ACC_HZ = 32, 512, 8, 50


def _outlets(tag: str):  # type: ignore[no-untyped-def]
    import pylsl

    eeg = pylsl.StreamOutlet(
        pylsl.StreamInfo("EEG", "EEG", EEG_CH, EEG_HZ, pylsl.cf_float32, f"{tag}-eeg"), 0, 360
    )
    accs = [
        pylsl.StreamOutlet(
            pylsl.StreamInfo(f"ACC{i}", "ACC", 3, ACC_HZ, pylsl.cf_float32, f"{tag}-acc{i}"), 0, 360
        )
        for i in range(ACC_N)
    ]
    return eeg, accs


def _push_realtime(eeg, accs, seconds: float) -> int:  # type: ignore[no-untyped-def]
    """Push the lab load in real time (EEG 8 samples per 15.6 ms); returns samples pushed."""
    rng = np.random.default_rng(0)
    eeg_block = rng.standard_normal((8, EEG_CH)).astype(np.float32)
    acc_row = rng.standard_normal((1, 3)).astype(np.float32)
    start = time.perf_counter()
    sent_eeg = sent_acc = 0
    while (now := time.perf_counter() - start) < seconds:
        while sent_eeg + 8 <= now * EEG_HZ:
            eeg.push_chunk(eeg_block)
            sent_eeg += 8
        while sent_acc + 1 <= now * ACC_HZ:
            for a in accs:
                a.push_chunk(acc_row)
            sent_acc += 1
        time.sleep(0.002)
    return sent_eeg + sent_acc * ACC_N


def _baseline_lab(seconds: float) -> tuple[int, int, float, float]:
    """pylsl alone: (pushed, received, p99 and p50 push→pull latency ms)."""
    import pylsl

    tag = f"bl{uuid.uuid4().hex[:6]}"
    eeg, accs = _outlets(tag)
    inlets = []
    for outlet in [eeg, *accs]:
        info = pylsl.resolve_byprop("source_id", outlet.get_info().source_id(), 1, 10)[0]
        inlet = pylsl.StreamInlet(info, max_buflen=360)
        inlet.open_stream(timeout=10)
        inlets.append(inlet)
    stop = threading.Event()
    got = [0]
    lat: list[float] = []

    def pull() -> None:
        bufs = [np.empty((1024, i.channel_count), np.float32) for i in inlets]
        while not stop.is_set() or any(i.samples_available() for i in inlets):
            for inlet, buf in zip(inlets, bufs, strict=True):
                _, ts = inlet.pull_chunk(timeout=0.0, max_samples=1024, dest_obj=buf, as_numpy=True)
                if len(ts):
                    lat.append(pylsl.local_clock() - float(ts[-1]))
                    got[0] += len(ts)
            time.sleep(0.001)

    puller = threading.Thread(target=pull)
    puller.start()
    pushed = _push_realtime(eeg, accs, seconds)
    time.sleep(0.5)
    stop.set()
    puller.join()
    inlets.clear()
    del eeg, accs
    ms = np.asarray(lat) * 1e3
    return pushed, got[0], float(np.percentile(ms, 99)), float(np.percentile(ms, 50))


async def _ours_lab(seconds: float) -> tuple[int, int, float, float]:
    """record_lsl: (pushed, stored, p99 and p50 push→subscriber latency ms)."""
    from sensocto_lab.engine.engine import Engine
    from sensocto_lab.lsl import record_lsl

    tag = f"us{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        async with Engine(data_dir=tmp, thread=False) as engine:
            eeg, accs = _outlets(tag)
            rec = await record_lsl(engine, f"starts-with(source_id,'{tag}')", room="bench")
            await rec.wait_for(1 + ACC_N, 20)
            while not all(o.have_consumers() for o in [eeg, *accs]):
                await asyncio.sleep(0.01)
            # Warm: every stream registered and its first clock estimate taken.
            while len(rec.statistics()) < 1 + ACC_N or any(
                st["time_correction_s"] is None for st in rec.statistics().values()
            ):
                await asyncio.sleep(0.01)
            # What `sensocto-lab serve` does once started: what exists now is never
            # collected again, so a full collection no longer walks every module.
            gc.collect()
            gc.freeze()
            sub = engine.bus.subscribe("room:bench", maxsize=1_000_000)
            lat: list[float] = []
            stored = 0

            async def listen() -> None:
                nonlocal stored
                async for batch in sub:
                    if batch.attribute_id in ("ch0",):
                        lat.append((engine.clock.time_ns() - int(batch.ts[-1])) / 1e6)
                        stored += len(batch)

            listener = asyncio.create_task(listen())
            pushed = await asyncio.to_thread(_push_realtime, eeg, accs, seconds)
            deadline = time.monotonic() + 10
            while stored < pushed and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            listener.cancel()
            gc.unfreeze()
            await rec.stop()
            sub.close()
            del eeg, accs
    return pushed, stored, float(np.percentile(lat, 99)), float(np.percentile(lat, 50))


def _baseline_max(n_chunks: int) -> float:
    import pylsl

    tag = f"bm{uuid.uuid4().hex[:6]}"
    info = pylsl.StreamInfo("Max", "EEG", EEG_CH, EEG_HZ, pylsl.cf_float32, tag)
    outlet = pylsl.StreamOutlet(info, 0, 3600)
    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("source_id", tag, 1, 10)[0], max_buflen=3600)
    inlet.open_stream(timeout=10)
    block = np.random.default_rng(1).standard_normal((512, EEG_CH)).astype(np.float32)
    buf = np.empty((EEG_HZ * 2, EEG_CH), np.float32)
    total, got = n_chunks * 512, 0
    start = time.perf_counter()
    for _ in range(n_chunks):
        outlet.push_chunk(block)
    while got < total:
        _, ts = inlet.pull_chunk(timeout=2.0, max_samples=len(buf), dest_obj=buf, as_numpy=True)
        if not len(ts):
            break
        got += len(ts)
    elapsed = time.perf_counter() - start
    del inlet, outlet
    return got * EEG_CH / elapsed


async def _ours_max(n_chunks: int) -> float:
    import pylsl

    from sensocto_lab.engine.engine import Engine
    from sensocto_lab.lsl import record_lsl

    tag = f"um{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        async with Engine(data_dir=tmp, thread=False) as engine:
            info = pylsl.StreamInfo("Max", "EEG", EEG_CH, EEG_HZ, pylsl.cf_float32, tag)
            outlet = pylsl.StreamOutlet(info, 0, 3600)
            rec = await record_lsl(
                engine, f"source_id='{tag}'", room="bench", max_chunk_s=2.0, max_buflen=3600
            )
            await rec.wait_for(1, 20)
            while not outlet.have_consumers() or tag not in engine.sensors:
                await asyncio.sleep(0.01)
            sub = engine.bus.subscribe(f"data:{tag}", maxsize=1_000_000)
            block = np.random.default_rng(1).standard_normal((512, EEG_CH)).astype(np.float32)
            total = n_chunks * 512 * EEG_CH
            start = time.perf_counter()
            for _ in range(n_chunks):
                outlet.push_chunk(block)
            got = 0
            while got < total:
                batch = await asyncio.wait_for(sub.get(), 30)
                if batch.attribute_id != "lsl_offset":
                    got += len(batch)
            elapsed = time.perf_counter() - start
            await rec.stop()
            sub.close()
            del outlet
    return got / elapsed


def run(quick: bool = False) -> list[Row]:
    """Measure record_lsl and pylsl-into-numpy on the same streams in this run."""
    seconds = 8.0 if quick else 60.0
    n_chunks = 200 if quick else 1000
    try:
        import pylsl  # noqa: F401
    except (ImportError, RuntimeError):
        return [Row("lsl", "pylsl not runnable here", float("nan"))]
    b_pushed, b_got, b_p99, b_p50 = _baseline_lab(seconds)
    o_pushed, o_got, o_p99, o_p50 = asyncio.run(_ours_lab(seconds))
    base = "pylsl inlet → numpy (dest_obj)"
    lost = float(o_pushed - o_got)
    ours_max = asyncio.run(_ours_max(n_chunks))
    base_max = _baseline_max(n_chunks)
    load = f"32-ch 512 Hz + 8×ACC 50 Hz, {seconds:g} s"
    return [
        Row("lsl", f"LSL-in samples lost ({load})", lost, float(b_pushed - b_got), base,
            target="0", met=lost == 0, higher_is_better=False),
        Row("lsl", f"LSL-in p99 push→subscriber latency, ms ({load})", o_p99, b_p99, base,
            target="<= 10 ms", met=o_p99 <= 10, higher_is_better=False),
        Row("lsl", f"LSL-in p50 push→subscriber latency, ms ({load})", o_p50, b_p50, base,
            higher_is_better=False),
        Row("lsl", "LSL-in max sustained values/s (32-ch float32)", ours_max, base_max, base,
            target=">= 0.5x", met=ours_max >= 0.5 * base_max),
    ]  # fmt: skip


if __name__ == "__main__":
    print(format_table(run()))
