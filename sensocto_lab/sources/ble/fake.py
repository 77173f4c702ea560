"""A fake BLE radio that replays a recorded heart-rate strap session (no bleak).

:class:`FakeRadio` implements :class:`~sensocto_lab.sources.ble.capture.BleBackend`: it
advertises, connects, answers reads and PMD control-point commands, and delivers the
notification bytes of a :class:`RecordedSession` at the times they were recorded, the
way a real strap would. It can drop the link (:meth:`FakeRadio.drop`), deliver
callbacks from a foreign thread (as bleak does on some platforms), and inject
arbitrary bytes. Only the radio is fake: the capture, decoders and engine under test
are the real ones.

:func:`polar_h10_session` is the recording: the notifications a Polar H10-like chest
strap sends, generated from a small physiological model (heartbeats modulated by
breathing, i.e. respiratory sinus arrhythmia; a synthetic PQRST ECG on those beats;
chest motion in the accelerometer) and encoded to bytes with the
:mod:`~sensocto_lab.protocol.gatt` encoders. Its ground truth (beat times, RR
intervals, the bpm of each notification) comes with it, so tests compare what the
store holds with what the strap "measured".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.errors import ClosedResourceError
from sensocto_lab.protocol import gatt, pmd
from sensocto_lab.protocol.pmd import PmdMeasurement, PmdOp, PmdStatus
from sensocto_lab.sources.ble.backend import BleDevice, NotifyCallback
from sensocto_lab.sources.waveforms import beat_phase, ecg_mv

__all__ = [
    "FAKE_ADDRESS",
    "FakeRadio",
    "Notification",
    "RecordedSession",
    "SessionTruth",
    "notifications_of",
    "polar_h10_session",
]

#: The address the fake strap advertises.
FAKE_ADDRESS = "FA:KE:00:00:10:0A"

#: An H10 whose clock was never set counts ns from 2000-01-01 since power-on: ~14 days.
_DEVICE_CLOCK_START_NS = 1_234_567 * 10**9

_ECG_RATE = 130
_ECG_FRAME = 73  # samples per PMD ECG frame on an H10 at the default MTU
_LATENCY_S = 0.02  # from the last sample of a frame to its notification


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification as the strap sent it.

    Attributes
    ----------
    offset_s
        Seconds since the session started.
    uuid
        The characteristic that notified.
    data
        The bytes on the air.
    """

    offset_s: float
    uuid: str
    data: bytes


@dataclass(frozen=True, slots=True, eq=False)
class SessionTruth:
    """What the model generated, to compare a capture against.

    Attributes
    ----------
    beat_s
        Time of every heartbeat, seconds since the session start, shape ``(k,)``; on
        the 1/1024 s grid RR intervals are sent in, so they survive the wire exactly.
    rr_ms
        ``np.diff(beat_s)`` in ms, shape ``(k - 1,)``: the RR interval ending at each
        beat from the second on.
    hr_bpm
        The bpm of each Heart Rate notification, in order.
    battery_pct
        Battery level at the start.
    breath_hz
        Breathing rate that modulates the heartbeat.
    """

    beat_s: npt.NDArray[np.float64] = field(repr=False)
    rr_ms: npt.NDArray[np.float64] = field(repr=False)
    hr_bpm: npt.NDArray[np.int64] = field(repr=False)
    battery_pct: int = 87
    breath_hz: float = 0.25


@dataclass(frozen=True, slots=True, eq=False)
class RecordedSession:
    """A recorded session: notifications sorted by time, and the model's truth."""

    notifications: tuple[Notification, ...]
    duration_s: float
    truth: SessionTruth
    acc_rate_hz: int = 50

    def __str__(self) -> str:
        return f"RecordedSession({len(self.notifications)} notifications, {self.duration_s} s)"


@functools.lru_cache(maxsize=8)
def polar_h10_session(
    duration_s: float = 60.0, *, seed: int = 0, acc_rate_hz: int = 50
) -> RecordedSession:
    """The notifications of a Polar H10-like strap over ``duration_s`` seconds.

    Heart rate ~62 bpm with ±4 bpm respiratory sinus arrhythmia at 15 breaths/min and
    a little beat-to-beat noise; a Heart Rate notification (flags 0x16: uint8 bpm,
    contact, RR intervals) every second carrying the beats since the previous one;
    PMD ECG frames of 73 samples at 130 Hz (µV, baseline wander from breathing, noise);
    PMD accelerometer frames (type 0x01, int16 mG) at ``acc_rate_hz``, half a second
    each, gravity on -y plus chest motion on z; one battery notification (87 → 86 %)
    half-way. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    breath_hz = 0.25
    # Beats on the 1/1024 s grid (what the RR field can carry).
    ticks = [int(0.3 * 1024)]
    while ticks[-1] < duration_s * 1024:
        t = ticks[-1] / 1024
        bpm = 62 + 4 * np.sin(2 * np.pi * breath_hz * t) + rng.normal(0, 0.8)
        ticks.append(ticks[-1] + round(60 / bpm * 1024))
    beat = np.asarray(ticks[:-1], dtype=np.float64) / 1024
    rr_ms = np.diff(beat) * 1000

    notes: list[Notification] = []
    hr_bpm: list[int] = []
    last_bpm = 0
    for n in range(1, int(duration_s) + 1):
        sent = n + 0.05
        idx = np.nonzero((beat > sent - 1) & (beat <= sent))[0]
        idx = idx[idx > 0]  # the first beat ends no interval
        rr = rr_ms[idx - 1]
        if rr.size:
            last_bpm = round(60_000 / rr.mean())
        hr_bpm.append(last_bpm)
        notes.append(
            Notification(
                sent, gatt.HEART_RATE_MEASUREMENT_UUID, gatt.encode_heart_rate(last_bpm, rr)
            )
        )
    notes.append(
        Notification(duration_s / 2, gatt.BATTERY_LEVEL_UUID, gatt.encode_battery_level(86))
    )

    n_ecg = int(duration_s * _ECG_RATE)
    t_ecg = np.arange(n_ecg) / _ECG_RATE
    ecg = (
        ecg_mv(beat_phase(t_ecg, beat))
        + 0.05 * np.sin(2 * np.pi * breath_hz * t_ecg)
        + rng.normal(0, 0.01, n_ecg)
    )
    ecg_uv = np.round(ecg * 1000).astype(np.int64)
    for start in range(0, n_ecg - _ECG_FRAME + 1, _ECG_FRAME):
        last = start + _ECG_FRAME - 1
        stamp = _DEVICE_CLOCK_START_NS + round(t_ecg[last] * 1e9)
        data = pmd.encode_pmd_ecg(stamp, ecg_uv[start : last + 1])
        notes.append(Notification(t_ecg[last] + _LATENCY_S, gatt.PMD_DATA_UUID, data))

    n_acc = int(duration_s * acc_rate_hz)
    t_acc = np.arange(n_acc) / acc_rate_hz
    acc_mg = np.stack(
        [
            rng.normal(0, 4, n_acc),
            -1000 + rng.normal(0, 4, n_acc),
            25 * np.sin(2 * np.pi * breath_hz * t_acc) + rng.normal(0, 4, n_acc),
        ],
        axis=1,
    )
    per_frame = max(1, acc_rate_hz // 2)
    for start in range(0, n_acc - per_frame + 1, per_frame):
        last = start + per_frame - 1
        stamp = _DEVICE_CLOCK_START_NS + round(t_acc[last] * 1e9)
        data = pmd.encode_pmd_acc(stamp, np.round(acc_mg[start : last + 1]), frame_type=1)
        notes.append(Notification(t_acc[last] + _LATENCY_S, gatt.PMD_DATA_UUID, data))

    notes.sort(key=lambda note: note.offset_s)
    truth = SessionTruth(beat, rr_ms, np.asarray(hr_bpm, dtype=np.int64), 87, breath_hz)
    return RecordedSession(tuple(notes), float(duration_s), truth, acc_rate_hz)


class FakeRadio:
    """A :class:`~sensocto_lab.sources.ble.capture.BleBackend` that replays a recorded session.

    Replay time starts at the first connection and runs on ``clock`` (never faster
    than recorded: device timestamps and arrival times must stay consistent).
    Notifications whose time has come are delivered only while
    connected, subscribed and (for PMD frames) with that stream started; the rest are
    lost, as a strap's notifications are when nobody listens. At the end of the
    session it starts over (``loop=True``), shifting PMD device timestamps on.

    Parameters
    ----------
    session
        What to replay (default: :func:`polar_h10_session`).
    clock
        Replay time source (a :class:`~sensocto_lab.clock.FakeClock` in tests).
    autoplay
        Deliver notifications on time in a background task. With ``False`` nothing is
        delivered until :meth:`emit_due` is called (tests drive it with a fake clock).
    threaded
        Call every callback from a separate thread, as bleak's backends may.
    loop
        Start the session over when it ends.
    address, name, rssi
        How the strap advertises.
    """

    name = "fake"

    def __init__(
        self,
        session: RecordedSession | None = None,
        *,
        clock: Clock | None = None,
        autoplay: bool = True,
        threaded: bool = False,
        loop: bool = True,
        address: str = FAKE_ADDRESS,
        name: str = "Polar H10 FAKE0001",
        rssi: int = -58,
    ) -> None:
        self.session = session or polar_h10_session()
        self._clock: Clock = clock or SystemClock()
        self._autoplay = autoplay
        self._loop_session = loop
        self.address = address
        self.device_name = name
        self._rssi = rssi
        self._executor = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fake-ble")
            if threaded
            else None
        )
        self._connected = False
        self._on_disconnect: Callable[[], None] | None = None
        self._subscribers: dict[str, NotifyCallback] = {}
        self._streaming: set[int] = set()
        self._battery = self.session.truth.battery_pct
        self._t0: float | None = None
        self._cursor = 0  # index into the looped notification sequence
        self._player: asyncio.Task[None] | None = None
        self.delivered: list[Notification] = []
        self.missed = 0
        self.connects = 0

    # -- BleBackend ----------------------------------------------------------------

    async def scan(self, timeout: float) -> list[BleDevice]:
        """The fake strap, and a non-heart-rate device nearby (filtered out by :func:`scan`)."""
        return [
            BleDevice(
                self.address,
                self.device_name,
                self._rssi,
                (gatt.HEART_RATE_SERVICE_UUID, gatt.BATTERY_SERVICE_UUID, gatt.PMD_SERVICE_UUID),
            ),
            BleDevice("FA:KE:00:00:5C:A1", "Kitchen scale", -80, (gatt.sig_uuid(0x181D),)),
        ]

    async def connect(self, address: str, on_disconnect: Callable[[], None]) -> None:
        if address != self.address:
            raise ConnectionError(f"no device at {address} (the fake strap is {self.address})")
        self._connected = True
        self._on_disconnect = on_disconnect
        self.connects += 1
        if self._t0 is None:
            self._t0 = self._clock.monotonic()
        if self._autoplay and self._player is None:
            self._player = asyncio.create_task(self._play(), name="fake-ble-replay")

    async def disconnect(self) -> None:
        self._connected = False
        self._subscribers.clear()
        self._streaming.clear()
        if self._player is not None:
            self._player.cancel()
            self._player = None

    def has_characteristic(self, uuid: str) -> bool:
        return uuid in {
            gatt.HEART_RATE_MEASUREMENT_UUID,
            gatt.BATTERY_LEVEL_UUID,
            gatt.PMD_CONTROL_UUID,
            gatt.PMD_DATA_UUID,
        }

    def _require_link(self) -> None:
        if not self._connected:
            raise ClosedResourceError("the fake strap is not connected", reason="not_connected")

    async def start_notify(self, uuid: str, callback: NotifyCallback) -> None:
        self._require_link()
        self._subscribers[uuid] = callback

    async def read_gatt_char(self, uuid: str) -> bytes:
        self._require_link()
        if uuid == gatt.BATTERY_LEVEL_UUID:
            return gatt.encode_battery_level(self._battery)
        if uuid == gatt.PMD_CONTROL_UUID:
            return pmd.encode_pmd_features([PmdMeasurement.ECG, PmdMeasurement.ACC])
        raise ValueError(f"the fake strap cannot read {uuid}")

    async def write_gatt_char(self, uuid: str, data: bytes) -> None:
        """Answer PMD start/stop commands by indication, as the strap does."""
        self._require_link()
        if uuid != gatt.PMD_CONTROL_UUID or len(data) < 2:
            raise ValueError(f"the fake strap does not accept {data.hex()} on {uuid}")
        op, mtype = data[0], data[1]
        status = PmdStatus.SUCCESS
        if op == PmdOp.START:
            if mtype not in (PmdMeasurement.ECG, PmdMeasurement.ACC):
                status = PmdStatus.NOT_SUPPORTED
            elif mtype in self._streaming:
                status = PmdStatus.ALREADY_IN_STATE
            self._streaming.add(mtype)
        elif op == PmdOp.STOP:
            self._streaming.discard(mtype)
        reply = pmd.encode_pmd_control_response(PmdOp(op), mtype, status)
        self._call(gatt.PMD_CONTROL_UUID, reply)

    # -- replay --------------------------------------------------------------------

    @property
    def elapsed_s(self) -> float:
        """Session time now: seconds since the first connection."""
        if self._t0 is None:
            return 0.0
        return self._clock.monotonic() - self._t0

    def _note(self, index: int) -> Notification:
        notes = self.session.notifications
        lap, i = divmod(index, len(notes))
        note = notes[i]
        if lap == 0:
            return note
        shift = lap * self.session.duration_s
        data = note.data
        if note.uuid == gatt.PMD_DATA_UUID:
            stamp = int.from_bytes(data[1:9], "little") + round(shift * 1e9)
            data = data[:1] + stamp.to_bytes(8, "little") + data[9:]
        return Notification(note.offset_s + shift, note.uuid, data)

    def _exhausted(self) -> bool:
        return not self._loop_session and self._cursor >= len(self.session.notifications)

    def emit_due(self) -> int:
        """Deliver every notification whose time has come; return how many were delivered."""
        delivered = 0
        now = self.elapsed_s
        while not self._exhausted():
            note = self._note(self._cursor)
            if note.offset_s > now:
                break
            self._cursor += 1
            if self._deliverable(note):
                self._deliver(note)
                delivered += 1
            else:
                self.missed += 1
        return delivered

    def _deliverable(self, note: Notification) -> bool:
        if not self._connected or note.uuid not in self._subscribers:
            return False
        return note.uuid != gatt.PMD_DATA_UUID or note.data[0] in self._streaming

    def _deliver(self, note: Notification) -> None:
        if note.uuid == gatt.BATTERY_LEVEL_UUID:
            self._battery = note.data[0]
        self.delivered.append(note)
        self._call(note.uuid, note.data)

    async def _play(self) -> None:
        while not self._exhausted():
            self.emit_due()
            if self._exhausted():
                break
            wait = self._note(self._cursor).offset_s - self.elapsed_s
            await self._clock.sleep(max(wait, 0.0))

    def _call(self, uuid: str, data: bytes) -> None:
        callback = self._subscribers.get(uuid)
        if callback is None:
            return
        if self._executor is None:
            callback(data)
        else:
            self._executor.submit(callback, data)

    # -- faults --------------------------------------------------------------------

    def drop(self) -> None:
        """Lose the link: subscriptions and PMD streams end, ``on_disconnect`` is called."""
        was = self._connected
        self._connected = False
        self._subscribers.clear()
        self._streaming.clear()
        if was and self._on_disconnect is not None:
            if self._executor is None:
                self._on_disconnect()
            else:
                self._executor.submit(self._on_disconnect)

    def inject(self, uuid: str, data: bytes) -> bool:
        """Deliver arbitrary ``data`` on ``uuid`` now (e.g. a corrupt frame); False if unheard."""
        if not self._connected or uuid not in self._subscribers:
            return False
        self._call(uuid, data)
        return True

    def close(self) -> None:
        """Stop replaying and release the callback thread."""
        self._connected = False
        if self._player is not None:
            self._player.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def notifications_of(session: RecordedSession, uuid: str) -> Sequence[Notification]:
    """The session's notifications on one characteristic, in order."""
    return [n for n in session.notifications if n.uuid == uuid]
