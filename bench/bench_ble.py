"""BLE capture: decoding speed and what the capture costs on top of the engine.

Ours: the :mod:`sensocto_lab.protocol.gatt` decoders (numpy over the whole frame) and
:class:`~sensocto_lab.sources.ble.capture.BleCapture` fed by the fake radio into a real
:class:`~sensocto_lab.engine.engine.Engine` with the default tiered store (WAL on disk).

Baselines, measured in the same run:

- decoding: a pure-Python decoder of the same bytes written the way BLE examples
  usually are (``struct`` for the header, ``int.from_bytes`` per sample or RR);
- capture: the very same decoded batches handed straight to ``engine.ingest``, so
  the ratio is what decoding, the thread hop, the queue and stamping add.

A Polar H10 streaming HR, ECG and 200 Hz ACC sends about 9 notifications/s; the
capture target is 100 straps' worth on one core.
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import tempfile
import time
from collections.abc import Callable, Sequence

import numpy as np

from bench._table import Row, format_table
from sensocto_lab.engine.engine import Engine
from sensocto_lab.model import Batch
from sensocto_lab.protocol import gatt, pmd
from sensocto_lab.sources.ble.capture import BleCapture
from sensocto_lab.sources.ble.fake import FAKE_ADDRESS, FakeRadio, Notification, polar_h10_session

AREA = "ble"
STRAP_RATE = 9.0  # notifications/s of one H10 with HR + ECG + 200 Hz ACC


def _baseline_ecg(data: bytes) -> tuple[int, list[int]]:
    _, ts, _ = struct.unpack_from("<BQB", data)
    body = data[10:]
    return ts, [
        int.from_bytes(body[i : i + 3], "little", signed=True) for i in range(0, len(body), 3)
    ]


def _baseline_hr(data: bytes) -> tuple[int, list[float]]:
    flags = data[0]
    pos = 3 if flags & 1 else 2
    bpm = struct.unpack_from("<H" if flags & 1 else "<B", data, 1)[0]
    if flags & 0x08:
        pos += 2
    rr = [int.from_bytes(data[i : i + 2], "little") * 1000 / 1024 for i in range(pos, len(data), 2)]
    return bpm, rr


def _rate(fn: Callable[[bytes], object], items: list[bytes], seconds: float) -> float:
    """Calls per second of ``fn`` over ``items``, repeated for about ``seconds``."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for item in items:
            fn(item)
        done += len(items)
    return done / elapsed


def _decode_rows(seconds: float) -> list[Row]:
    session = polar_h10_session(60.0)
    ecg = [n.data for n in session.notifications if n.uuid == gatt.PMD_DATA_UUID and n.data[0] == 0]
    hr = [n.data for n in session.notifications if n.uuid == gatt.HEART_RATE_MEASUREMENT_UUID]
    # same answers first: the baseline decodes what ours decodes
    frame = pmd.decode_pmd_data(ecg[0])
    assert isinstance(frame, pmd.EcgFrame)
    assert frame.samples_uv.tolist() == _baseline_ecg(ecg[0])[1]
    ecg_ours = _rate(pmd.decode_pmd_data, ecg, seconds)
    ecg_base = _rate(_baseline_ecg, ecg, seconds)
    hr_ours = _rate(gatt.decode_heart_rate, hr, seconds)
    hr_base = _rate(_baseline_hr, hr, seconds)
    baseline = "pure-Python struct/int.from_bytes"
    return [
        Row(
            AREA,
            "PMD ECG frames (73 samples) decoded/s",
            ecg_ours,
            ecg_base,
            baseline,
            ">= 1x",
            ecg_ours >= ecg_base,
        ),
        # One HR notification a second per strap: numpy's per-call cost makes this
        # slower than plain Python, and it only has to keep up with many straps.
        Row(
            AREA,
            "HR notifications decoded/s",
            hr_ours,
            hr_base,
            baseline,
            ">= 10 k/s (10k straps)",
            hr_ours >= 10_000,
        ),
    ]


async def _capture_rows(session_s: float) -> list[Row]:
    session = polar_h10_session(session_s, acc_rate_hz=200)
    notes = session.notifications
    with tempfile.TemporaryDirectory() as tmp:
        engine = await Engine.start(tmp, thread=False)
        try:
            radio = FakeRadio(session, autoplay=False)
            capture = await BleCapture(engine, FAKE_ADDRESS, backend=radio, acc_rate_hz=200).start()
            await capture.wait_streaming(30)
            base_processed = capture.statistics().processed

            start = time.perf_counter()
            for note in notes:
                radio.inject(note.uuid, note.data)
            await capture.wait_processed(base_processed + len(notes), 300)
            ours = len(notes) / (time.perf_counter() - start)

            latencies = []
            for note in [n for n in notes if n.uuid == gatt.HEART_RATE_MEASUREMENT_UUID][:200]:
                target = capture.statistics().processed + 1
                t0 = time.perf_counter()
                radio.inject(note.uuid, note.data)
                await capture.wait_processed(target, 30)
                latencies.append((time.perf_counter() - t0) * 1e3)
            await capture.stop()

            # baseline: the same notifications, decoded beforehand, straight into ingest
            batches = _decoded(notes)
            start = time.perf_counter()
            for group in batches:
                for batch in group:
                    await engine.ingest(batch)
            base = len(batches) / (time.perf_counter() - start)
        finally:
            await engine.close()
    p99 = float(np.percentile(latencies, 99))
    return [
        Row(
            AREA,
            "capture notifications/s into engine",
            ours,
            base,
            "engine.ingest of pre-decoded batches",
            f">= {100 * STRAP_RATE:.0f}/s (100 straps)",
            ours >= 100 * STRAP_RATE,
        ),
        Row(
            AREA,
            "capture notify -> stored p50 (ms)",
            statistics.median(latencies),
            None,
            "",
            "",
            None,
            higher_is_better=False,
        ),
        Row(
            AREA,
            "capture notify -> stored p99 (ms)",
            p99,
            None,
            "",
            "<= 50 ms",
            p99 <= 50,
            higher_is_better=False,
        ),
    ]


def _decoded(notes: Sequence[Notification]) -> list[list[Batch]]:
    """The batches the capture would ingest, stamped on a clock moving 1 ms per note."""
    sid = f"ble-{FAKE_ADDRESS}"
    t = time.time_ns() + 10**9
    out: list[list[Batch]] = []
    for i, note in enumerate(notes):
        ts = t + i * 1_000_000
        if note.uuid == gatt.HEART_RATE_MEASUREMENT_UUID:
            hr = gatt.decode_heart_rate(note.data)
            group = []
            if hr.bpm:
                group.append(Batch(sid, "hr", np.array([ts]), np.array([float(hr.bpm)])))
            if hr.rr_ms.size:
                group.append(Batch(sid, "rr", np.full(hr.rr_ms.size, ts), hr.rr_ms))
        elif note.uuid == gatt.BATTERY_LEVEL_UUID:
            group = [Batch(sid, "battery", np.array([ts]), np.array([float(note.data[0])]))]
        else:
            frame = pmd.decode_pmd_data(note.data)
            if isinstance(frame, pmd.EcgFrame):
                mv = frame.samples_uv / 1000.0
                group = [Batch(sid, "ecg", ts + np.arange(mv.size), mv)]
            else:
                ms2 = frame.samples_mg * 9.80665e-3
                group = [Batch(sid, "accelerometer", ts + np.arange(len(ms2)), ms2)]
        out.append(group)
    return out


def run(quick: bool = False) -> list[Row]:
    """Decode and capture measures (``quick``: about 15 s)."""
    rows = _decode_rows(1.0 if quick else 3.0)
    rows += asyncio.run(_capture_rows(60.0 if quick else 300.0))
    return rows


if __name__ == "__main__":
    print(format_table(run()))
