"""record_lsl and lsl.streams against real liblsl outlets on this machine only."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

os.environ["LSLAPICFG"] = str(Path(__file__).resolve().parents[2] / "bench" / "lsl_api.cfg")

import numpy as np
import pylsl
import pytest

from sensocto_lab import lsl
from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.topics import room as room_topic
from sensocto_lab.io.meta import series_meta

WAIT = 15.0


def _outlet(name, type_, n, rate, fmt, source_id, labels=None, units=None):
    info = pylsl.StreamInfo(name, type_, n, rate, fmt, source_id)
    if labels:
        chans = info.desc().append_child("channels")
        for label, unit in zip(labels, units, strict=True):
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60)


async def _collect(sub, want: dict[tuple[str, str], int], timeout: float = WAIT) -> dict:
    """Batches from ``sub`` until each (sensor, attribute) has ``want`` samples."""
    got: dict[tuple[str, str], list] = {}

    async def run() -> None:
        while any(sum(len(b) for b in got.get(k, [])) < n for k, n in want.items()):
            batch = await sub.get()
            got.setdefault((batch.sensor_id, batch.attribute_id), []).append(batch)

    await asyncio.wait_for(run(), timeout)
    return got


@pytest.fixture
def tag() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


async def test_streams_lists_an_outlet(tag: str) -> None:
    outlet = _outlet("List", "EEG", 3, 256, pylsl.cf_int16, f"{tag}-list")
    try:
        for _ in range(20):
            found = await asyncio.to_thread(lsl.streams, 0.5)
            row = found[found["source_id"] == f"{tag}-list"]
            if len(row):
                break
        assert len(row) == 1
        assert row.iloc[0].to_dict() | {"uid": ""} == {
            "name": "List",
            "type": "EEG",
            "source_id": f"{tag}-list",
            "channels": 3,
            "rate": 256.0,
            "format": "int16",
            "host": row.iloc[0]["host"],
            "uid": "",
        }
    finally:
        del outlet


async def test_record_lsl_numeric_markers_later_streams_and_clock(tmp_path: Path, tag: str) -> None:
    async with Engine(data_dir=tmp_path / "d", thread=False) as engine:
        sub = engine.bus.subscribe(room_topic("lab"), maxsize=100_000)
        eeg = _outlet(
            "EEG",
            "EEG",
            4,
            100,
            pylsl.cf_float32,
            f"{tag}-eeg",
            ["Fp1", "Fp2", "C z", "lsl_offset"],
            ["uV"] * 4,
        )
        marks = _outlet("Marks", "Markers", 1, 0, pylsl.cf_string, f"{tag}-mk")
        rec = await lsl.record_lsl(engine, f"starts-with(source_id,'{tag}')", room="lab")
        await rec.wait_for(2, WAIT)
        await asyncio.wait_for(_until_consumers(eeg, marks), WAIT)

        rng = np.random.default_rng(0)
        data = rng.standard_normal((300, 4)).astype(np.float32)
        t0 = pylsl.local_clock()
        stamps = t0 + np.arange(300) / 100
        for lo in range(0, 300, 50):
            eeg.push_chunk(data[lo : lo + 50].tolist(), stamps[lo : lo + 50].tolist())
        marks.push_sample(["go"], t0 + 0.5)
        marks.push_sample(["stop"], t0 + 2.5)

        # A stream that appears after recording began, int32 without labels.
        late = _outlet("Late", "Misc", 2, 10, pylsl.cf_int32, f"{tag}-late")
        await rec.wait_for(3, WAIT)
        await asyncio.wait_for(_until_consumers(late), WAIT)
        big = np.array([[2**31 - 1, -(2**31)], [7, -7]], dtype=np.int32)
        late.push_chunk(big.tolist(), [t0 + 1.0, t0 + 1.1])

        eeg_id, late_id = f"{tag}-eeg", f"{tag}-late"
        got = await _collect(
            sub, {(eeg_id, a): 300 for a in ("Fp1", "Fp2", "C_z", "ch3")} | {(late_id, "ch0"): 2}
        )
        info = engine.sensors[eeg_id]
        assert set(info.attributes) == {"Fp1", "Fp2", "C_z", "ch3", "lsl_offset"}
        assert info.attributes["Fp1"].unit == "uV" and info.attributes["Fp1"].rate_hz == 100
        assert info.room == "lab" and info.name == "EEG"
        for i, attr in enumerate(("Fp1", "Fp2", "C_z", "ch3")):
            batches = got[(eeg_id, attr)]
            values = np.concatenate([b.values for b in batches])
            np.testing.assert_array_equal(values[:300], data[:, i].astype(np.float64))
            ts = np.concatenate([b.ts for b in batches])[:300]
            expected = rec.clock.to_ns(stamps)
            # Dejittered sender stamps + time_correction (0 on one machine), on the engine clock.
            assert np.abs(ts - expected).max() < 5_000_000
            assert (np.diff(ts) >= 0).all()
        late_values = np.concatenate([b.values for b in got[(late_id, "ch0")]])
        assert late_values.tolist()[:2] == [2**31 - 1, 7]  # int32 kept exactly

        async def events_stored() -> list[str]:
            while True:
                table = engine.store.events(room="lab")
                if len(table) >= 2:
                    return list(table["label"])
                await asyncio.sleep(0.02)

        assert await asyncio.wait_for(events_stored(), WAIT) == ["go", "stop"]
        table = engine.store.events(room="lab")
        assert set(table["source"]) == {"device"}
        onset_ns = int(table["onset"].iloc[0].value)
        assert abs(onset_ns - int(rec.clock.to_ns(np.array([t0 + 0.5]))[0])) < 1_000_000

        offsets = engine.store.read_table(eeg_id, "lsl_offset")
        assert offsets.num_rows >= 1
        assert abs(float(offsets["value"][0].as_py())) < 0.01  # same machine
        stats = rec.statistics()
        assert stats[eeg_id]["samples"] >= 300 and stats[eeg_id]["errors"] == 0
        await rec.stop()
        meta = series_meta(tmp_path / "d")
        assert meta[(eeg_id, "C_z")] == {"unit": "uV", "rate_hz": 100.0, "label": "C z"}
        del eeg, marks, late
        sub.close()


async def _until_consumers(*outlets: pylsl.StreamOutlet) -> None:
    while not all(o.have_consumers() for o in outlets):
        await asyncio.sleep(0.01)


async def test_recover_keeps_the_sensor_when_the_stream_comes_back(
    tmp_path: Path, tag: str
) -> None:
    async with Engine(data_dir=tmp_path / "d", thread=False) as engine:
        sub = engine.bus.subscribe(f"data:{tag}-r", maxsize=10_000)
        outlet = _outlet("R", "ECG", 1, 50, pylsl.cf_double64, f"{tag}-r", ["ecg"], ["mV"])
        wanted = f"{tag}-r"  # a Python predicate this time (the other test uses XPath)
        rec = await lsl.record_lsl(
            engine, lambda info: info.source_id() == wanted, room="lab", recover=True
        )
        await rec.wait_for(1, WAIT)
        await asyncio.wait_for(_until_consumers(outlet), WAIT)
        t0 = pylsl.local_clock()
        outlet.push_chunk([[1.0]] * 10, (t0 + np.arange(10) / 50).tolist())
        await _collect(sub, {(f"{tag}-r", "ecg"): 10})
        del outlet  # the source goes away ...
        outlet = _outlet("R", "ECG", 1, 50, pylsl.cf_double64, f"{tag}-r", ["ecg"], ["mV"])
        await asyncio.wait_for(_until_consumers(outlet), WAIT)  # ... and its inlet reconnects
        t1 = pylsl.local_clock()
        outlet.push_chunk([[2.0]] * 10, (t1 + np.arange(10) / 50).tolist())
        got = await _collect(sub, {(f"{tag}-r", "ecg"): 10})
        values = np.concatenate([b.values for b in got[(f"{tag}-r", "ecg")]])
        assert values.tolist() == [2.0] * 10
        assert f"{tag}-r" in engine.sensors
        assert list(rec.sensors) == [f"{tag}-r"]  # the same sensor, not a second one
        await rec.stop()
        del outlet
        sub.close()
