"""BLE capture from the kernel: a heart-rate strap's notifications, into the engine.

``await scan()`` finds devices advertising the Heart Rate service (0x180D) or Polar's
PMD service; ``BleCapture(engine, address)`` connects, subscribes to Heart Rate
Measurement (0x2A37), Battery Level (0x2A19, read then notify) and, on Polar straps,
PMD ECG and accelerometer streams, decodes every notification
(:mod:`sensocto_lab.protocol.gatt`) and ingests it into the engine as the sensor
``ble-{address}`` with attributes ``hr``, ``rr``, ``battery``, ``ecg`` and
``accelerometer``. A dropped link is reconnected with exponential back-off.

The radio sits behind :class:`BleBackend`, one small interface with two
implementations: :class:`BleakBackend` (a real adapter through bleak; this is the
only module of the package that imports bleak, and only when that backend is used)
and :class:`~sensocto_lab.sources.ble.fake.FakeRadio`, which replays a recorded
session. Backend callbacks may come from any thread; they hop onto the capture's
event loop with ``call_soon_threadsafe`` and are handled there in arrival order.

Timestamps (int64 ns since the Unix epoch):

- ``hr`` and ``battery``: when the notification arrived (the characteristic carries
  no time).
- ``rr``: on a beat clock (:class:`RrTimeline`): each interval is stamped at the beat
  that ends it, consecutive intervals their durations apart, the clock anchored by
  arrivals (a beat cannot end after the notification reporting it arrives) and
  re-anchored after lost notifications or a reconnect.
- ``ecg`` and ``accelerometer``: from the PMD frame's device timestamp of its last
  sample, earlier samples ``1/rate`` apart. A strap whose clock agrees with ours
  within 5 s is trusted; an unset one (an H10 counts from 2000-01-01 at power-on)
  is mapped by the offset seen at its first frame, kept while it holds.

Units follow :data:`sensocto_lab.model.KINDS`: ECG in mV (PMD sends µV),
accelerometer in m/s² (PMD sends mG).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sensocto_lab.clock import Backoff, Clock, SystemClock
from sensocto_lab.engine.contracts import IngestSink
from sensocto_lab.engine.host import run_on
from sensocto_lab.errors import (
    ClosedResourceError,
    LocalError,
    PeerError,
    SensoctoError,
    ValidationError,
)
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo
from sensocto_lab.protocol import gatt, pmd
from sensocto_lab.sources.ble.backend import BleBackend, NotifyCallback
from sensocto_lab.sources.ble.scan import resolve_backend
from sensocto_lab.sources.ble.timing import DeviceClock, RrTimeline

__all__ = ["BleCapture", "CaptureState", "CaptureStats"]

log = logging.getLogger(__name__)

#: Standard gravity, to turn PMD milli-G into m/s².
_MG_TO_MS2 = 9.80665e-3


# --------------------------------------------------------------------------------------
# Capture


class CaptureState(enum.Enum):
    """Where a capture is: ``idle`` → ``connecting`` → ``streaming`` ⇄ ``waiting`` → ``stopped``.

    ``waiting`` is the back-off pause before the next connection attempt; ``failed``
    means the device can never work (it has no Heart Rate characteristic).
    """

    IDLE = "idle"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    WAITING = "waiting"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """Counters of one capture (a snapshot; see :meth:`BleCapture.stats`).

    Attributes
    ----------
    state
        The current :class:`CaptureState`.
    connects, drops, connect_failures
        Successful connections, links lost while streaming, failed attempts.
    received
        Notifications taken from the radio.
    processed
        Notifications handled (ingested, or counted as malformed/rejected).
    malformed
        Notifications that did not decode (bad bytes from the device).
    rejected
        Decoded samples the engine refused (validation).
    overflowed
        Notifications dropped because the engine fell ``queue_size`` behind.
    samples
        Samples ingested per attribute.
    last_error
        The most recent problem, as a sentence, or ``""``.
    """

    state: CaptureState
    connects: int = 0
    drops: int = 0
    connect_failures: int = 0
    received: int = 0
    processed: int = 0
    malformed: int = 0
    rejected: int = 0
    overflowed: int = 0
    samples: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


class _Char(enum.Enum):
    HR = gatt.HEART_RATE_MEASUREMENT_UUID
    BATTERY = gatt.BATTERY_LEVEL_UUID
    PMD_DATA = gatt.PMD_DATA_UUID


@dataclass(frozen=True, slots=True)
class _PmdStream:
    attribute: str
    measurement: pmd.PmdMeasurement
    command: bytes
    rate_hz: float


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


_Waiter = tuple[Callable[[CaptureStats], bool], "asyncio.Future[None]"]


class BleCapture:
    """Capture one strap into the engine until :meth:`stop`, reconnecting on drops.

    Parameters
    ----------
    engine
        The running :class:`~sensocto_lab.engine.engine.Engine` (anything with
        ``register_sensor`` and ``ingest`` coroutines).
    address
        The device address from :func:`scan`.
    room
        Room the sensor belongs to (dashboards, ``room=`` partition).
    backend
        ``"auto"``, ``"bleak"``, ``"fake"`` or a :class:`BleBackend` instance.
    ecg
        Start the PMD ECG stream (130 Hz) when the strap offers it.
    acc_rate_hz
        Start the PMD accelerometer at this rate (25, 50, 100 or 200 Hz); ``None``
        for no accelerometer.
    acc_range_g
        Accelerometer range, ±2, 4 or 8 G.
    clock
        Time source for arrival stamps and back-off (default: the engine's clock, or
        the system clock).
    backoff
        Reconnect delays.
    queue_size
        Notifications held while the engine is busy; beyond this the newest are
        dropped and counted (``overflowed``). A strap sends a few dozen per second.
    sensor_id
        Defaults to ``ble-{address}``.

    Examples
    --------
    >>> cap = await BleCapture(engine, "A0:9E:1A:12:34:56", room="lab").start()
    >>> await cap.wait_streaming()
    >>> cap.statistics()
    >>> await cap.stop()
    """

    def __init__(
        self,
        engine: IngestSink,
        address: str,
        *,
        room: str = "ble",
        backend: str | BleBackend = "auto",
        ecg: bool = True,
        acc_rate_hz: int | None = None,
        acc_range_g: int = 8,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        queue_size: int = 10_000,
        sensor_id: str | None = None,
    ) -> None:
        self._engine = engine
        self.address = address
        self.room = room
        self._backend_spec = backend
        self._streams: list[_PmdStream] = []
        if ecg:
            self._streams.append(
                _PmdStream("ecg", pmd.PmdMeasurement.ECG, pmd.ecg_start_command(130), 130.0)
            )
        if acc_rate_hz is not None:
            command = pmd.acc_start_command(acc_rate_hz, acc_range_g)
            self._streams.append(
                _PmdStream("accelerometer", pmd.PmdMeasurement.ACC, command, acc_rate_hz)
            )
        self._clock: Clock = clock or getattr(engine, "clock", None) or SystemClock()
        self._backoff = backoff or Backoff()
        self.sensor_id = sensor_id or f"ble-{address}"
        self.backend: BleBackend | None = None
        self._stats = CaptureStats(CaptureState.IDLE)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[_Char, bytes, int]] = asyncio.Queue(queue_size)
        self._supervisor: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._link_lost: asyncio.Event | None = None
        self._stopping = False
        # Waiters may sit on another loop (a notebook cell while the engine has its own
        # thread); the list is shared across threads, hence the lock.
        self._waiters: list[_Waiter] = []
        self._waiters_lock = threading.Lock()
        self._started = False
        self._rr = RrTimeline()
        self._device_clock = DeviceClock()
        self._pmd_rates: dict[pmd.PmdMeasurement, float] = {}

    def __repr__(self) -> str:
        return f"<BleCapture {self.sensor_id} {self._stats.state.value}>"

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> BleCapture:
        """Register the sensor and start capturing in the background; returns ``self``.

        The capture runs on the engine's loop, so a blocking notebook cell stalls
        neither the radio nor storage. Connection happens in the background (see
        :meth:`wait_streaming`).
        """
        if self._started:
            raise LocalError("this capture has already been started", reason="already_started")
        self._started = True
        # Resolved here, on the caller's loop, so a fallback notice prints in the cell.
        self.backend = await resolve_backend(self._backend_spec)
        await run_on(self._engine.loop, self._start_here)
        return self

    async def _start_here(self) -> None:
        assert self.backend is not None
        self._loop = asyncio.get_running_loop()
        attributes = {
            a.attribute_id: a
            for a in (
                AttributeInfo.of("hr", "hr"),
                AttributeInfo.of("rr", "rr"),
                AttributeInfo.of("battery", "battery"),
                *(
                    AttributeInfo.of(p.attribute, p.attribute, rate_hz=p.rate_hz)
                    for p in self._streams
                ),
            )
        }
        await self._engine.register_sensor(
            SensorInfo(
                self.sensor_id,
                attributes,
                name=f"BLE {self.address}",
                sensor_type="ble_heart_rate",
                room=self.room,
                connector_id=f"ble:{self.backend.name}",
            )
        )
        self._consumer = asyncio.create_task(self._consume(), name=f"{self.sensor_id}-ingest")
        self._supervisor = asyncio.create_task(self._run(), name=f"{self.sensor_id}-link")

    async def stop(self) -> None:
        """Disconnect, ingest every notification already received, and stop."""
        await run_on(self._engine.loop, self._stop_here)

    async def _stop_here(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self.backend is not None:
            with contextlib.suppress(Exception):  # the link may already be gone
                await self.backend.disconnect()
        if self._consumer is not None:
            await self._queue.join()
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        if self._stats.state is not CaptureState.FAILED:
            self._update(state=CaptureState.STOPPED)

    async def __aenter__(self) -> BleCapture:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- observation ---------------------------------------------------------------

    @property
    def state(self) -> CaptureState:
        """The current :class:`CaptureState`."""
        return self._stats.state

    def statistics(self) -> CaptureStats:
        """A snapshot of the counters."""
        return dataclasses.replace(self._stats, samples=dict(self._stats.samples))

    async def wait_for(
        self, predicate: Callable[[CaptureStats], bool], timeout: float = 30.0
    ) -> CaptureStats:
        """Wait until ``predicate(stats)`` holds (checked on every change); return the stats.

        Raises
        ------
        TimeoutError
            After ``timeout`` seconds.
        """
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter: _Waiter = (predicate, fut)
        with self._waiters_lock:
            self._waiters.append(waiter)
        self._wake()  # it may hold already
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            with self._waiters_lock, contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        return self.statistics()

    async def wait_streaming(self, timeout: float = 30.0) -> CaptureStats:
        """Wait until connected and subscribed (or raise if the capture failed)."""
        stats = await self.wait_for(
            lambda s: s.state in (CaptureState.STREAMING, CaptureState.FAILED), timeout
        )
        if stats.state is CaptureState.FAILED:
            raise LocalError(stats.last_error, reason="ble_capture_failed")
        return stats

    async def wait_processed(self, n: int, timeout: float = 30.0) -> CaptureStats:
        """Wait until ``n`` notifications in total have been handled."""
        return await self.wait_for(lambda s: s.processed >= n, timeout)

    def _update(self, **changes: Any) -> None:
        self._stats = dataclasses.replace(self._stats, **changes)
        self._wake()

    def _wake(self) -> None:
        """Resolve the waiters whose predicate holds, each on its own loop."""
        stats = self._stats
        with self._waiters_lock:
            waiters = list(self._waiters)
        for predicate, fut in waiters:
            if predicate(stats):
                with contextlib.suppress(RuntimeError):  # the waiter's loop has closed
                    fut.get_loop().call_soon_threadsafe(_resolve, fut)

    # -- link ----------------------------------------------------------------------

    async def _run(self) -> None:
        assert self.backend is not None
        attempt = 0
        while not self._stopping:
            self._update(state=CaptureState.CONNECTING)
            self._link_lost = asyncio.Event()
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except PeerError as exc:
                log.error("%s: %s", self.sensor_id, exc.detail)
                self._update(state=CaptureState.FAILED, last_error=exc.detail)
                with contextlib.suppress(Exception):
                    await self.backend.disconnect()
                return
            except Exception as exc:
                self._update(
                    connect_failures=self._stats.connect_failures + 1,
                    last_error=f"connecting to {self.address} failed: {exc!r}",
                )
                with contextlib.suppress(Exception):
                    await self.backend.disconnect()
            else:
                attempt = 0
                self._update(state=CaptureState.STREAMING, connects=self._stats.connects + 1)
                await self._link_lost.wait()
                self._update(
                    drops=self._stats.drops + 1, last_error=f"link to {self.address} dropped"
                )
                log.warning("%s: link dropped, reconnecting", self.sensor_id)
            self._update(state=CaptureState.WAITING)
            await self._clock.sleep(self._backoff.delay(attempt))
            attempt += 1

    async def _connect(self) -> None:
        backend = self.backend
        assert backend is not None and self._link_lost is not None
        lost = self._link_lost
        await backend.connect(self.address, self._threadsafe(lost.set))
        if not backend.has_characteristic(gatt.HEART_RATE_MEASUREMENT_UUID):
            raise PeerError(
                f"{self.address} has no Heart Rate Measurement characteristic (0x2A37); "
                "is it a heart-rate strap?",
                reason="not_a_heart_rate_device",
            )
        await backend.start_notify(gatt.HEART_RATE_MEASUREMENT_UUID, self._receiver(_Char.HR))
        if backend.has_characteristic(gatt.BATTERY_LEVEL_UUID):
            self._receiver(_Char.BATTERY)(await backend.read_gatt_char(gatt.BATTERY_LEVEL_UUID))
            try:
                await backend.start_notify(gatt.BATTERY_LEVEL_UUID, self._receiver(_Char.BATTERY))
            except Exception as exc:  # many straps allow reading only
                log.info("%s: battery notifications unavailable (%r)", self.sensor_id, exc)
        if self._streams and backend.has_characteristic(gatt.PMD_CONTROL_UUID):
            await self._start_pmd(backend)

    async def _start_pmd(self, backend: BleBackend) -> None:
        control: asyncio.Queue[bytes] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_control(data: bytes) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(control.put_nowait, bytes(data))

        await backend.start_notify(gatt.PMD_CONTROL_UUID, on_control)
        await backend.start_notify(gatt.PMD_DATA_UUID, self._receiver(_Char.PMD_DATA))
        for stream in self._streams:
            await backend.write_gatt_char(gatt.PMD_CONTROL_UUID, stream.command)
            try:
                reply = pmd.decode_pmd_control_response(await asyncio.wait_for(control.get(), 10))
            except ValidationError as exc:
                self._update(last_error=f"PMD start {stream.attribute}: {exc.detail}")
                continue
            if reply.ok or reply.status is pmd.PmdStatus.ALREADY_IN_STATE:
                self._pmd_rates[stream.measurement] = stream.rate_hz
            else:
                msg = f"{self.address} refused to start {stream.attribute}: {reply.status.name}"
                log.warning("%s: %s", self.sensor_id, msg)
                self._update(last_error=msg)

    def _threadsafe(self, fn: Callable[[], None]) -> Callable[[], None]:
        loop = self._loop
        assert loop is not None

        def hop() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(fn)

        return hop

    def _receiver(self, char: _Char) -> NotifyCallback:
        """A notification callback, safe from any thread: stamp arrival, hop, enqueue."""
        loop = self._loop
        assert loop is not None

        def on_notify(data: bytes) -> None:
            recv = self._clock.time_ns()
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(self._enqueue, char, bytes(data), recv)

        return on_notify

    def _enqueue(self, char: _Char, data: bytes, recv_ns: int) -> None:
        try:
            self._queue.put_nowait((char, data, recv_ns))
        except asyncio.QueueFull:
            self._update(received=self._stats.received + 1, overflowed=self._stats.overflowed + 1)
            return
        self._update(received=self._stats.received + 1)

    # -- decode and ingest ---------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            char, data, recv = await self._queue.get()
            try:
                await self._handle(char, data, recv)
            except Exception as exc:
                # A bug on one notification must not end the capture (nor leave stop()
                # waiting on the queue): report it and go on with the next.
                log.exception("%s: handling a %s notification failed", self.sensor_id, char.name)
                self._update(
                    processed=self._stats.processed + 1,
                    rejected=self._stats.rejected + 1,
                    last_error=f"handling a {char.name} notification failed: {exc!r}",
                )
            finally:
                self._queue.task_done()

    async def _handle(self, char: _Char, data: bytes, recv_ns: int) -> None:
        try:
            batches = self._decode(char, data, recv_ns)
        except ValidationError as exc:
            log.warning("%s: malformed %s notification: %s", self.sensor_id, char.name, exc)
            self._update(
                processed=self._stats.processed + 1,
                malformed=self._stats.malformed + 1,
                last_error=f"malformed {char.name} notification {data[:24].hex()}: {exc.detail}",
            )
            return
        samples = dict(self._stats.samples)
        rejected = self._stats.rejected
        last_error = self._stats.last_error
        for batch in batches:
            try:
                await self._engine.ingest(batch)
            except ClosedResourceError as exc:
                # The engine is shutting down: nothing more can be stored, so stop
                # reconnecting; what arrives until stop() is counted as rejected.
                self._stopping = True
                rejected += len(batch)
                last_error = f"engine closed: {exc.detail}"
            except SensoctoError as exc:
                # Refused (validation) or not stored (sensor failed, storage error):
                # counted and reported; the next notification is tried all the same.
                rejected += len(batch)
                last_error = f"engine refused {batch}: {exc}"
                log.warning("%s: %s", self.sensor_id, last_error)
            else:
                samples[batch.attribute_id] = samples.get(batch.attribute_id, 0) + len(batch)
        self._update(
            processed=self._stats.processed + 1,
            samples=samples,
            rejected=rejected,
            last_error=last_error,
        )

    def _batch(self, attribute: str, ts: npt.ArrayLike, values: npt.ArrayLike) -> Batch:
        return Batch(
            self.sensor_id,
            attribute,
            np.asarray(ts, dtype=np.int64).reshape(-1),
            np.asarray(values, dtype=np.float64),
        )

    def _decode(self, char: _Char, data: bytes, recv_ns: int) -> Sequence[Batch]:
        if char is _Char.HR:
            hr = gatt.decode_heart_rate(data)
            out = []
            if hr.bpm > 0:  # 0 is the strap's "no reading yet"
                out.append(self._batch("hr", [recv_ns], [float(hr.bpm)]))
            if hr.rr_ms.size:
                out.append(self._batch("rr", self._rr.place(hr.rr_ms, recv_ns), hr.rr_ms))
            return out
        if char is _Char.BATTERY:
            level = gatt.decode_battery_level(data)
            return [self._batch("battery", [recv_ns], [float(level.percent)])]
        frame = pmd.decode_pmd_data(data)
        values: npt.NDArray[np.floating[Any]]
        if isinstance(frame, pmd.EcgFrame):
            attribute, mtype = "ecg", pmd.PmdMeasurement.ECG
            values = frame.samples_uv / 1000.0
        else:
            attribute, mtype = "accelerometer", pmd.PmdMeasurement.ACC
            values = frame.samples_mg * _MG_TO_MS2
        rate = self._pmd_rates.get(mtype)
        if rate is None:
            raise ValidationError(
                f"PMD {attribute} frame arrived but that stream was not started",
                reason="unexpected_stream",
            )
        last = self._device_clock.to_unix(frame.timestamp_ns, recv_ns)
        n = values.shape[0]
        ts = last - np.round(np.arange(n - 1, -1, -1) * (1e9 / rate)).astype(np.int64)
        return [self._batch(attribute, ts, values)]
