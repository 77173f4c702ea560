"""BLE capture: the real capture, decoders and Engine, with only the radio faked.

The fake radio replays a recorded Polar H10-like session whose ground truth (beats,
RR intervals, bpm) is known. Most tests drive replay time with a FakeClock and
``radio.emit_due()``, then wait on the capture's own counters, so nothing sleeps.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from sensocto_lab.clock import Backoff, FakeClock
from sensocto_lab.engine.bus import Overflow, Subscription
from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import LocalError
from sensocto_lab.model import Batch
from sensocto_lab.protocol import gatt, pmd
from sensocto_lab.sources.ble import scan as ble_scan
from sensocto_lab.sources.ble.bleak_backend import BleakBackend
from sensocto_lab.sources.ble.capture import BleCapture, CaptureState
from sensocto_lab.sources.ble.fake import (
    FAKE_ADDRESS,
    FakeRadio,
    Notification,
    notifications_of,
    polar_h10_session,
)
from sensocto_lab.sources.ble.scan import resolve_backend, scan
from sensocto_lab.sources.ble.timing import DeviceClock, RrTimeline

WAIT = 20.0  # generous ceiling for events that normally take milliseconds
SENSOR = f"ble-{FAKE_ADDRESS}"
HR_UUID = gatt.HEART_RATE_MEASUREMENT_UUID


# --- pure timing policy ---------------------------------------------------------------


def test_rr_timeline_anchors_newest_beat_at_arrival_and_keeps_spacing() -> None:
    line = RrTimeline()
    t0 = 1_767_225_600 * 10**9
    first = line.place(np.array([1000.0, 900.0]), t0)
    assert first.tolist() == [t0 - 900_000_000, t0]
    # next notification 1.05 s later; the beat clock continues from the last beat
    second = line.place(np.array([950.0]), t0 + 1_050_000_000)
    assert second.tolist() == [t0 + 950_000_000]


def test_rr_timeline_tightens_when_a_beat_would_end_after_its_arrival() -> None:
    line = RrTimeline()
    t0 = 1_767_225_600 * 10**9
    line.place(np.array([1000.0, 900.0]), t0)  # newest beat anchored at t0
    # this beat would end at t0 + 1.0 s but its notification arrived at t0 + 0.95 s:
    # the anchor was late; the beat is put at arrival and later beats follow it
    assert line.place(np.array([1000.0]), t0 + 950_000_000).tolist() == [t0 + 950_000_000]
    assert line.place(np.array([800.0]), t0 + 2 * 10**9).tolist() == [t0 + 1_750_000_000]


def test_rr_timeline_reanchors_after_lost_notifications() -> None:
    t0 = 1_767_225_600 * 10**9
    line = RrTimeline(max_lag_ns=3 * 10**9)
    line.place(np.array([1000.0]), t0)
    later = t0 + 60 * 10**9  # a minute of lost notifications
    assert line.place(np.array([800.0, 800.0]), later).tolist() == [later - 800_000_000, later]
    assert line.place(np.empty(0), later).size == 0

    # one lost notification (a second of beats): the clock lags by ~1 s until the
    # window shows every newest beat far before its arrival, then it catches up
    line = RrTimeline(window=4, max_slack_ns=500_000_000)
    line.place(np.array([1000.0]), t0)
    lagging = [line.place(np.array([1000.0]), t0 + (2 + i) * 10**9)[0] for i in range(4)]
    assert lagging[:3] == [t0 + (1 + i) * 10**9 for i in range(3)]
    assert lagging[3] == t0 + 5 * 10**9  # raised back to its arrival
    assert np.all(np.diff(lagging) > 0)


def test_device_clock_trusts_a_set_clock_and_maps_an_unset_one() -> None:
    recv = 1_767_225_600 * 10**9
    synced = DeviceClock()
    device_now = recv - pmd.POLAR_EPOCH_UNIX_NS - 30_000_000  # 30 ms behind us
    assert synced.to_unix(device_now, recv) == recv - 30_000_000

    unset = DeviceClock()
    assert unset.to_unix(5 * 10**9, recv) == recv  # anchored at first arrival
    # later frames keep the offset, even with arrival jitter
    assert unset.to_unix(6 * 10**9, recv + 10**9 + 40_000_000) == recv + 10**9
    # the strap restarted (its clock jumped back): re-anchored
    assert unset.to_unix(10**9, recv + 20 * 10**9) == recv + 20 * 10**9


def test_backoff_doubles_up_to_its_ceiling() -> None:
    b = Backoff(initial_s=0.5, max_s=4.0, factor=2.0)
    assert [b.delay(i) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


# --- the recorded session -------------------------------------------------------------


def test_recorded_session_decodes_to_its_truth() -> None:
    session = polar_h10_session(20.0)
    truth = session.truth
    hr = [gatt.decode_heart_rate(n.data) for n in notifications_of(session, HR_UUID)]
    assert [m.bpm for m in hr] == truth.hr_bpm.tolist()
    rr = np.concatenate([m.rr_ms for m in hr])
    np.testing.assert_array_equal(rr, truth.rr_ms[: rr.size])
    assert 55 < 60_000 / rr.mean() < 70
    frames = [pmd.decode_pmd_data(n.data) for n in notifications_of(session, gatt.PMD_DATA_UUID)]
    ecg = [f for f in frames if isinstance(f, pmd.EcgFrame)]
    assert len(ecg) == 20 * 130 // 73
    # R peaks (~1.2 mV) sit on the beats
    samples = np.concatenate([f.samples_uv for f in ecg])
    assert samples.max() > 900
    offsets = [n.offset_s for n in session.notifications]
    assert offsets == sorted(offsets)


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = await Engine.start(tmp_path / "data", thread=False)
    yield eng
    await eng.close()


def _record(engine: Engine) -> Subscription:
    """Everything the engine publishes for the fake strap (published only once stored)."""
    return engine.bus.subscribe(f"data:{SENSOR}", maxsize=100_000, policy=Overflow.DROP_NEWEST)


def _collected(sub: Subscription) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[Any]]]:
    batches: list[Batch] = sub.drain()
    out = {}
    for attr in {b.attribute_id for b in batches}:
        mine = [b for b in batches if b.attribute_id == attr]
        out[attr] = (np.concatenate([b.ts for b in mine]), np.concatenate([b.values for b in mine]))
    return out


async def _play(
    radio: FakeRadio, clock: FakeClock, capture: BleCapture, seconds: float, step: float = 0.25
) -> list[tuple[Notification, int]]:
    """Advance replay time in steps; return each delivered notification with its arrival ns."""
    arrivals: list[tuple[Notification, int]] = []
    for _ in range(round(seconds / step)):
        clock.advance(step)
        before = len(radio.delivered)
        radio.emit_due()
        arrivals += [(n, clock.time_ns()) for n in radio.delivered[before:]]
        await capture.wait_processed(capture.statistics().received, WAIT)
    return arrivals


# --- capture into a real engine -------------------------------------------------------


async def test_scan_lists_only_heart_rate_devices() -> None:
    devices = await scan(1.0, backend="fake")
    assert [d.address for d in devices] == [FAKE_ADDRESS]
    assert devices[0].is_heart_rate and "H10" in devices[0].name


async def test_capture_stores_hr_rr_battery_ecg_acc_with_right_values_and_times(
    engine: Engine,
) -> None:
    clock = FakeClock()
    session = polar_h10_session(20.0)
    radio = FakeRadio(session, clock=clock, autoplay=False)
    sub = _record(engine)
    capture = BleCapture(engine, FAKE_ADDRESS, backend=radio, clock=clock, acc_rate_hz=50)
    await capture.start()
    await capture.wait_streaming(WAIT)
    assert set(engine.sensors[SENSOR].attributes) == {"hr", "rr", "battery", "ecg", "accelerometer"}

    arrivals = await _play(radio, clock, capture, 12.5)
    await capture.stop()
    got = _collected(sub)

    hr_notes = [(n, t) for n, t in arrivals if n.uuid == HR_UUID]
    assert len(hr_notes) == 12
    decoded = [gatt.decode_heart_rate(n.data) for n, _ in hr_notes]
    # hr: the strap's bpm, stamped on arrival; 0 ("no reading yet", before the second
    # beat) is not a heart rate and is left out
    truth_bpm = session.truth.hr_bpm[:12]
    assert truth_bpm[0] == 0
    np.testing.assert_array_equal(got["hr"][1], truth_bpm[truth_bpm > 0])
    stamped = [t for (_, t), m in zip(hr_notes, decoded, strict=True) if m.bpm > 0]
    assert got["hr"][0].tolist() == stamped
    # rr: the model's intervals, exactly; each stamped at the beat ending it, never
    # after the notification carrying it arrived, and close to the true beat time
    rr_ts, rr = got["rr"]
    np.testing.assert_array_equal(rr, session.truth.rr_ms[: rr.size])
    replay_start_ns = clock.time_ns() - round(clock.monotonic() * 1e9)
    true_ts = replay_start_ns + np.round(session.truth.beat_s[1 : rr.size + 1] * 1e9)
    error_s = (rr_ts - true_ts) / 1e9
    # never early; at first up to a notification period late (the newest beat of the
    # first notification is put at its arrival), then within the arrival delay
    delay_s = 0.25 + 0.05  # replay step + the strap's send delay
    assert error_s.min() >= 0 and error_s.max() <= 1.0 + delay_s
    assert error_s[rr.size // 2 :].max() <= delay_s
    # spacing is the intervals' own, except where an arrival tightened the anchor
    exact = np.diff(rr_ts) == np.round(rr[1:] * 1e6)
    assert exact.sum() >= exact.size - 3
    ends = np.cumsum([m.rr_ms.size for m in decoded])
    for (_, arrival), end in zip(hr_notes, ends, strict=True):
        if end:
            assert rr_ts[end - 1] <= arrival
    # battery: read on connect, then the strap's notification half-way
    assert got["battery"][1].tolist() == [87.0, 86.0]
    battery_note = next(t for n, t in arrivals if n.uuid == gatt.BATTERY_LEVEL_UUID)
    assert got["battery"][0][1] == battery_note

    # ecg: every delivered frame, µV → mV, 1/130 s apart; the strap's clock was never
    # set, so device time is mapped by the arrival of the first PMD frame (ECG or ACC)
    pmd_notes = [(n, t) for n, t in arrivals if n.uuid == gatt.PMD_DATA_UUID]
    pmd_frames = [(pmd.decode_pmd_data(n.data), t) for n, t in pmd_notes]
    ecg_frames = [(f, t) for f, t in pmd_frames if isinstance(f, pmd.EcgFrame)]
    uv = np.concatenate([f.samples_uv for f, _ in ecg_frames])
    np.testing.assert_allclose(got["ecg"][1], uv / 1000.0, rtol=1e-6)
    first, first_arrival = pmd_frames[0]
    offset = first_arrival - first.timestamp_ns
    last_samples = got["ecg"][0][72::73]
    assert last_samples.tolist() == [f.timestamp_ns + offset for f, _ in ecg_frames]
    assert all(ts <= t for ts, (_, t) in zip(last_samples, ecg_frames, strict=True))
    steps = np.diff(got["ecg"][0])
    assert np.abs(steps - 1e9 / 130).max() <= 1
    # accelerometer: (n, 3) in m/s², gravity on -y
    acc_ts, acc = got["accelerometer"]
    assert acc.shape == (acc_ts.size, 3) and acc_ts.size >= 10 * 50
    assert abs(acc[:, 1].mean() + 9.80665) < 0.05

    stats = capture.statistics()
    assert stats.state is CaptureState.STOPPED
    assert stats.malformed == stats.rejected == stats.overflowed == 0
    assert stats.samples["hr"] == 11 and stats.samples["ecg"] == uv.size


async def test_capture_lands_in_storage_history(engine: Engine) -> None:
    clock = FakeClock()
    radio = FakeRadio(polar_h10_session(20.0), clock=clock, autoplay=False)
    capture = await BleCapture(engine, FAKE_ADDRESS, backend=radio, clock=clock, ecg=False).start()
    await capture.wait_streaming(WAIT)
    arrivals = await _play(radio, clock, capture, 6.0)
    await capture.stop()
    engine.store.flush()
    ds = engine.store.history(sensors=[SENSOR], attributes=["hr", "rr"])
    hr = ds["hr"].sel(sensor=SENSOR).dropna("time")
    hr_notes = [(gatt.decode_heart_rate(n.data).bpm, t) for n, t in arrivals if n.uuid == HR_UUID]
    assert hr.values.tolist() == [bpm for bpm, _ in hr_notes if bpm > 0]
    times = hr["time"].values.astype("datetime64[ns]").astype(np.int64)
    assert times.tolist() == [t for bpm, t in hr_notes if bpm > 0]
    rr = ds["rr"].sel(sensor=SENSOR).dropna("time")
    assert rr.size == capture.statistics().samples["rr"] > 0


async def test_drop_reconnects_and_loses_nothing_delivered_after(engine: Engine) -> None:
    clock = FakeClock()
    radio = FakeRadio(polar_h10_session(30.0), clock=clock, autoplay=False)
    sub = _record(engine)
    capture = BleCapture(
        engine, FAKE_ADDRESS, backend=radio, clock=clock, backoff=Backoff(0.5, 8.0)
    )
    await capture.start()
    await capture.wait_streaming(WAIT)
    before = await _play(radio, clock, capture, 4.0)

    radio.drop()
    await capture.wait_for(lambda s: s.state is CaptureState.WAITING, WAIT)
    clock.advance(1.0)  # past the 0.5 s back-off; the strap kept sending to nobody
    radio.emit_due()
    stats = await capture.wait_for(lambda s: s.connects == 2, WAIT)
    assert stats.drops == 1 and radio.missed > 0
    after = await _play(radio, clock, capture, 6.0)
    await capture.stop()
    got = _collected(sub)

    delivered = before + after
    assert after, "nothing was delivered after the reconnect"
    hr = [gatt.decode_heart_rate(n.data) for n, _ in delivered if n.uuid == HR_UUID]
    np.testing.assert_array_equal(got["hr"][1], [m.bpm for m in hr if m.bpm > 0])
    np.testing.assert_array_equal(got["rr"][1], np.concatenate([m.rr_ms for m in hr]))
    assert np.all(np.diff(got["rr"][0]) >= 0)
    ecg_after = [n for n, _ in after if n.uuid == gatt.PMD_DATA_UUID]
    assert ecg_after, "the ECG stream was not restarted after the reconnect"
    ecg_all = [n for n, _ in delivered if n.uuid == gatt.PMD_DATA_UUID]
    assert got["ecg"][1].size == 73 * len(ecg_all)
    assert np.all(np.diff(got["ecg"][0]) > 0)


async def test_malformed_notifications_are_counted_and_capture_continues(
    engine: Engine,
) -> None:
    clock = FakeClock()
    radio = FakeRadio(polar_h10_session(20.0), clock=clock, autoplay=False)
    sub = _record(engine)
    capture = await BleCapture(engine, FAKE_ADDRESS, backend=radio, clock=clock).start()
    await capture.wait_streaming(WAIT)
    await _play(radio, clock, capture, 3.0)
    ok_before = capture.statistics().samples["hr"]
    assert ok_before > 0

    assert radio.inject(HR_UUID, b"\x10\x48\x00\x04\x01")  # odd RR byte
    assert radio.inject(gatt.PMD_DATA_UUID, b"\x00" + bytes(8) + b"\x80" + bytes(9))  # delta
    stats = await capture.wait_for(lambda s: s.malformed == 2, WAIT)
    assert "unsupported_frame_type" in stats.last_error or "PMD" in stats.last_error

    await _play(radio, clock, capture, 3.0)
    await capture.stop()
    stats = capture.statistics()
    assert stats.malformed == 2
    assert stats.samples["hr"] == ok_before + 3
    assert _collected(sub)["hr"][1].size == ok_before + 3


async def test_callbacks_from_a_foreign_thread(engine: Engine) -> None:
    clock = FakeClock()
    radio = FakeRadio(polar_h10_session(20.0), clock=clock, autoplay=False, threaded=True)
    sub = _record(engine)
    capture = await BleCapture(
        engine, FAKE_ADDRESS, backend=radio, clock=clock, acc_rate_hz=50
    ).start()
    try:
        await capture.wait_streaming(WAIT)
        for _ in range(20):
            clock.advance(0.25)
            radio.emit_due()
        delivered = len(radio.delivered) + 1  # and the battery read
        await capture.wait_for(lambda s: s.received >= delivered, WAIT)
        radio.drop()  # the disconnect callback comes from the radio's thread too
        await capture.wait_for(lambda s: s.drops == 1, WAIT)
    finally:
        await capture.stop()
        radio.close()
    stats = capture.statistics()
    assert stats.processed == stats.received == delivered  # stop() drained everything
    got = _collected(sub)
    assert got["hr"][1].size == stats.samples["hr"] >= 3
    assert got["ecg"][1].size == stats.samples["ecg"] > 0
    assert np.all(np.diff(got["ecg"][0]) > 0)


async def test_capture_with_an_engine_on_its_own_thread(tmp_path: Path) -> None:
    # the notebook setup: the engine (and so the capture) on a loop thread, the
    # caller on another loop
    engine = await Engine.start(tmp_path / "data", thread=True)
    try:
        clock = FakeClock()
        radio = FakeRadio(polar_h10_session(20.0), clock=clock, autoplay=False)
        sub = _record(engine)
        capture = await BleCapture(engine, FAKE_ADDRESS, backend=radio, clock=clock).start()
        await capture.wait_streaming(WAIT)
        arrivals = await _play(radio, clock, capture, 5.0)
        await capture.stop()
    finally:
        await engine.close()
        await engine.wait_closed()
    bpm = [gatt.decode_heart_rate(n.data).bpm for n, _ in arrivals if n.uuid == HR_UUID]
    np.testing.assert_array_equal(_collected(sub)["hr"][1], [b for b in bpm if b > 0])
    assert capture.state is CaptureState.STOPPED


async def test_autoplay_replays_on_time(engine: Engine) -> None:
    # the notebook path: the radio's own task delivers in real time
    radio = FakeRadio(polar_h10_session(3.0), loop=False)
    capture = await BleCapture(engine, FAKE_ADDRESS, backend=radio, acc_rate_hz=25).start()
    try:
        stats = await capture.wait_for(lambda s: s.samples.get("hr", 0) >= 1, WAIT)
    finally:
        await capture.stop()
        radio.close()
    assert radio.elapsed_s >= 2.05  # the first heart rate was sent 2.05 s in
    assert stats.samples.get("ecg", 0) >= 73


async def test_a_device_without_heart_rate_fails_clearly(engine: Engine) -> None:
    class Scale(FakeRadio):
        def has_characteristic(self, uuid: str) -> bool:
            return False

    capture = await BleCapture(engine, FAKE_ADDRESS, backend=Scale(autoplay=False)).start()
    with pytest.raises(LocalError, match="Heart Rate Measurement"):
        await capture.wait_streaming(WAIT)
    await capture.stop()
    assert capture.state is CaptureState.FAILED


async def test_a_refused_pmd_stream_is_reported_and_the_rest_streams(engine: Engine) -> None:
    class NoAccelerometer(FakeRadio):
        async def write_gatt_char(self, uuid: str, data: bytes) -> None:
            if data[:2] == bytes([pmd.PmdOp.START, pmd.PmdMeasurement.ACC]):
                reply = pmd.encode_pmd_control_response(
                    pmd.PmdOp.START, data[1], pmd.PmdStatus.INVALID_SAMPLE_RATE
                )
                self._call(gatt.PMD_CONTROL_UUID, reply)
            else:
                await super().write_gatt_char(uuid, data)

    clock = FakeClock()
    radio = NoAccelerometer(polar_h10_session(20.0), clock=clock, autoplay=False)
    capture = await BleCapture(
        engine, FAKE_ADDRESS, backend=radio, clock=clock, acc_rate_hz=200
    ).start()
    stats = await capture.wait_streaming(WAIT)
    assert "refused to start accelerometer: INVALID_SAMPLE_RATE" in stats.last_error
    await _play(radio, clock, capture, 3.0)
    await capture.stop()
    stats = capture.statistics()
    assert stats.samples["ecg"] > 0 and stats.samples["hr"] > 0
    assert "accelerometer" not in stats.samples
    assert stats.malformed == 0


async def test_unreachable_device_backs_off_and_keeps_trying(engine: Engine) -> None:
    clock = FakeClock()
    radio = FakeRadio(clock=clock, autoplay=False)
    capture = BleCapture(
        engine, "AA:BB:CC:DD:EE:FF", backend=radio, clock=clock, backoff=Backoff(1.0, 4.0)
    )
    await capture.start()
    await capture.wait_for(lambda s: s.connect_failures == 1 and s.state is CaptureState.WAITING)
    assert "AA:BB:CC:DD:EE:FF" in capture.statistics().last_error
    clock.advance(1.0)
    await capture.wait_for(lambda s: s.connect_failures == 2 and s.state is CaptureState.WAITING)
    clock.advance(1.0)  # the second wait is 2 s: not yet
    assert clock.sleepers == 1
    clock.advance(1.0)
    await capture.wait_for(lambda s: s.connect_failures == 3)
    await capture.stop()
    assert capture.state is CaptureState.STOPPED


# --- the bleak backend, over bleak's own client with the radio faked beneath it ------


def _bleak_client_over(radio: FakeRadio) -> type:
    """A bleak client backend (the layer bleak puts over BlueZ/WinRT/CoreBluetooth)
    whose "radio" is the fake strap, so BleakBackend runs through bleak's BleakClient."""
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection

    uuids = [
        HR_UUID,
        gatt.BATTERY_LEVEL_UUID,
        gatt.PMD_CONTROL_UUID,
        gatt.PMD_DATA_UUID,
    ]

    class RadioClient(BaseBleakClient):
        def __init__(self, address: Any, **kwargs: Any) -> None:
            super().__init__(
                address,
                disconnected_callback=kwargs["disconnected_callback"],
                timeout=kwargs["timeout"],
            )
            self._up = False

        @property
        def mtu_size(self) -> int:
            return 247

        @property
        def is_connected(self) -> bool:
            return self._up

        async def connect(self, pair: bool, **kwargs: Any) -> None:
            await radio.connect(self.address, self._dropped)
            self._up = True
            services = BleakGATTServiceCollection()
            service = BleakGATTService(None, 1, gatt.PMD_SERVICE_UUID)
            services.add_service(service)
            for handle, uuid in enumerate(uuids, start=10):
                props: Any = ["read", "write", "notify", "indicate"]
                services.add_characteristic(
                    BleakGATTCharacteristic(None, handle, uuid, props, lambda: 244, service)
                )
            self.services = services

        def _dropped(self) -> None:
            self._up = False
            if self._disconnected_callback is not None:
                self._disconnected_callback()

        async def disconnect(self) -> None:
            self._up = False
            await radio.disconnect()

        async def pair(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError

        async def unpair(self) -> None:
            raise NotImplementedError

        async def read_gatt_char(self, characteristic: Any, **kwargs: Any) -> bytearray:
            return bytearray(await radio.read_gatt_char(characteristic.uuid))

        async def read_gatt_descriptor(self, descriptor: Any, **kwargs: Any) -> bytearray:
            raise NotImplementedError

        async def write_gatt_char(self, characteristic: Any, data: Any, response: bool) -> None:
            assert response, "PMD commands must be written with response"
            await radio.write_gatt_char(characteristic.uuid, bytes(data))

        async def write_gatt_descriptor(self, descriptor: Any, data: Any) -> None:
            raise NotImplementedError

        async def start_notify(self, characteristic: Any, callback: Any, **kwargs: Any) -> None:
            await radio.start_notify(characteristic.uuid, lambda d: callback(bytearray(d)))

        async def stop_notify(self, characteristic: Any) -> None:
            raise NotImplementedError

    return RadioClient


async def test_bleak_backend_through_bleak_client(engine: Engine) -> None:
    clock = FakeClock()
    radio = FakeRadio(polar_h10_session(20.0), clock=clock, autoplay=False)
    backend = BleakBackend(client_backend=_bleak_client_over(radio))
    sub = _record(engine)
    capture = await BleCapture(
        engine, FAKE_ADDRESS, backend=backend, clock=clock, acc_rate_hz=25
    ).start()
    await capture.wait_streaming(WAIT)
    assert backend.has_characteristic(gatt.PMD_DATA_UUID)
    assert not backend.has_characteristic(gatt.sig_uuid(0x2A38))
    arrivals = await _play(radio, clock, capture, 4.0)
    radio.drop()  # bleak's disconnected callback reaches the capture
    await capture.wait_for(lambda s: s.drops == 1, WAIT)
    await capture.stop()
    got = _collected(sub)
    bpm = [gatt.decode_heart_rate(n.data).bpm for n, _ in arrivals if n.uuid == HR_UUID]
    np.testing.assert_array_equal(got["hr"][1], [b for b in bpm if b > 0])
    ecg = [n for n, _ in arrivals if n.uuid == gatt.PMD_DATA_UUID and n.data[0] == 0]
    assert got["ecg"][1].size == 73 * len(ecg) > 0
    assert got["accelerometer"][1].shape[1] == 3
    assert got["battery"][1].tolist() == [87.0]


# --- backend choice -------------------------------------------------------------------


async def test_backend_choice(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    assert isinstance(await resolve_backend("fake"), FakeRadio)
    with pytest.raises(LocalError) as info:
        await resolve_backend("bluetooth")
    assert info.value.reason == "invalid_backend"

    async def no_adapter() -> str:
        return "no usable Bluetooth adapter (test)"

    monkeypatch.setattr(BleakBackend, "available", staticmethod(no_adapter))
    monkeypatch.setattr(ble_scan, "_in_notebook", lambda: False)
    with pytest.raises(LocalError) as info:
        await resolve_backend("auto")
    assert info.value.reason == "no_ble_adapter"
    assert "backend='fake'" in info.value.detail

    monkeypatch.setattr(ble_scan, "_in_notebook", lambda: True)
    assert isinstance(await resolve_backend("auto"), FakeRadio)
    assert "using the fake radio" in capsys.readouterr().out


# --- a real strap, only when asked for -------------------------------------------------


@pytest.mark.hardware
@pytest.mark.skipif(
    "SENSOCTO_BLE_ADDRESS" not in os.environ,
    reason="set SENSOCTO_BLE_ADDRESS to a strap's address to run against real hardware",
)
async def test_real_strap(engine: Engine) -> None:
    address = os.environ["SENSOCTO_BLE_ADDRESS"]
    capture = await BleCapture(engine, address, backend="bleak", acc_rate_hz=50).start()
    try:
        await capture.wait_streaming(60.0)
        stats = await capture.wait_for(lambda s: s.samples.get("hr", 0) >= 5, 60.0)
    finally:
        await capture.stop()
    assert stats.malformed == 0
