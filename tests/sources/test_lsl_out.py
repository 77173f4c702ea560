"""publish_lsl read by real liblsl inlets on this machine only."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

os.environ["LSLAPICFG"] = str(Path(__file__).resolve().parents[2] / "bench" / "lsl_api.cfg")

import numpy as np
import pylsl

from sensocto_lab import lsl
from sensocto_lab.engine.engine import Engine
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo

WAIT = 15.0
T0 = 1_767_225_600 * 10**9


async def _inlet(source_id: str) -> pylsl.StreamInlet:
    found = await asyncio.to_thread(pylsl.resolve_byprop, "source_id", source_id, 1, WAIT)
    assert found, source_id
    inlet = pylsl.StreamInlet(found[0], max_buflen=60)
    await asyncio.to_thread(inlet.open_stream, WAIT)
    return inlet


async def _pull(inlet: pylsl.StreamInlet, n: int) -> tuple[np.ndarray, np.ndarray]:
    def run() -> tuple[np.ndarray, np.ndarray]:
        values, stamps = [], []
        while len(stamps) < n:
            chunk, ts = inlet.pull_chunk(timeout=WAIT, max_samples=n - len(stamps))
            if not ts:
                break
            values += chunk
            stamps += ts
        return np.asarray(values), np.asarray(stamps)

    return await asyncio.to_thread(run)


async def test_publish_sensors_sync_and_events(tmp_path: Path) -> None:
    room = f"pub{os.getpid()}"
    async with Engine(data_dir=tmp_path / "d", thread=False) as engine:
        now = engine.clock.time_ns()
        await engine.register_sensor(
            SensorInfo(
                "strap",
                {
                    "ecg": AttributeInfo.of("ecg", "ecg", rate_hz=100.0, unit="mV"),
                    "resp": AttributeInfo.of("resp", "numeric", rate_hz=100.0, unit="a.u."),
                    "accelerometer": AttributeInfo.of("accelerometer", "accelerometer"),
                    "hr": AttributeInfo.of("hr", "hr"),
                },
                room=room,
                sensor_type="ECG",
            )
        )
        sync_id = f"sync:{room}"
        await engine.register_sensor(
            SensorInfo(
                sync_id, {"sync": AttributeInfo.of("sync", "numeric", rate_hz=2.0)}, room=room
            )
        )
        pub = await lsl.publish_lsl(engine, room=room)
        ts = now + np.arange(200) * 10_000_000
        ecg = np.linspace(-1, 1, 200)
        resp = np.linspace(0, 5, 200)
        first = [
            Batch("strap", "ecg", ts[:1], ecg[:1]),
            Batch("strap", "resp", ts[:1], resp[:1]),
            Batch("strap", "accelerometer", ts[:1], np.zeros((1, 3))),
            Batch("strap", "hr", ts[:1], np.array([60.0])),
            Batch(sync_id, "sync", ts[:1], np.array([0.5])),
        ]
        for b in first:
            await engine.ingest(b)
        await engine.mark("warmup", room=room)
        inlets = {
            key: await _inlet(f"sensocto:{room}:{sid}:{key}")
            for sid, key in (
                ("strap", "100Hz"),
                ("strap", "accelerometer"),
                ("strap", "hr"),
                (sync_id, "2Hz"),
            )
        }
        inlets["events"] = await _inlet(f"sensocto:{room}:events")
        info = inlets["100Hz"].info(timeout=WAIT)
        assert info.channel_count() == 2 and info.nominal_srate() == 100
        ch = info.desc().child("channels").child("channel")
        assert (ch.child_value("label"), ch.child_value("unit")) == ("ecg", "mV")
        assert ch.next_sibling().child_value("label") == "resp"
        assert inlets["hr"].info().nominal_srate() == 0  # irregular stays irregular

        for a, values in (("ecg", ecg), ("resp", resp)):
            await engine.ingest(Batch("strap", a, ts[1:], values[1:]))
        acc = np.arange(30, dtype=np.float32).reshape(10, 3)
        await engine.ingest(Batch("strap", "accelerometer", ts[1:11], acc))
        await engine.ingest(Batch("strap", "hr", ts[5:6], np.array([72.0])))
        await engine.ingest(Batch(sync_id, "sync", ts[50:51], np.array([0.75])))
        await engine.mark("bell", room=room)

        values, stamps = await _pull(inlets["100Hz"], 199)
        np.testing.assert_allclose(values[:, 0], ecg[1:], rtol=1e-6)  # ecg is float32 in the store
        np.testing.assert_allclose(values[:, 1], resp[1:])
        np.testing.assert_allclose(pub.clock.to_ns(stamps), ts[1:], atol=2_000)
        values, _ = await _pull(inlets["accelerometer"], 10)
        np.testing.assert_array_equal(values, acc)
        values, _ = await _pull(inlets["hr"], 1)
        assert values.tolist() == [[72.0]]
        values, _ = await _pull(inlets["2Hz"], 1)
        assert values.tolist() == [[0.75]]
        labels, stamps = await _pull(inlets["events"], 1)
        assert labels.tolist() == [["bell"]]
        stored = engine.store.events(room=room)
        assert abs(pub.clock.to_ns(stamps)[0] - stored["onset"].iloc[-1].value) < 2_000
        assert pub.statistics()["events"] == 2
        await pub.stop()
        assert pub.outlets == {}
        for inlet in inlets.values():
            inlet.close_stream()
