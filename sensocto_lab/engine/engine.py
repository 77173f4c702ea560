"""The live engine: sensor registry, one supervised task per sensor, storage, bus.

A batch's path (``docs/architecture.md``, "Data flow")::

    ingest(batch) ─▶ sensor's bounded inbound queue ─▶ sensor task:
        validate (kind) ─▶ stamp (recv_ts, per-attribute seq) ─▶ store.append ─▶ publish
                                                                 │
                                      the caller's ``await ingest`` returns here

A sample is stored before it is published, and ``ingest`` returns the stamped batch
only once it is stored. Errors that are the peer's fault (:class:`ValidationError`,
:class:`UnknownSensorError`) and storage errors go back to that caller; the sensor
keeps running. Any other exception in a sensor's task is a crash: the
:class:`~sensocto_lab.engine.supervisor.Supervisor` restarts the task with back-off,
and the batch it held is retried (``EngineConfig.inflight_retries`` times) or failed
back to its caller with a :class:`LocalError`, never dropped silently. A sensor that
keeps crashing is stopped and reported ``failed`` on ``sensors:status``; other
sensors do not notice.

Threading: the engine runs on one event loop and only that loop mutates its state.
With ``thread=True`` (the default inside a Jupyter kernel) that loop is an
:class:`~sensocto_lab.engine.host.EngineHost` thread; every public coroutine called
from another loop hops onto it, so calling code is the same either way.
:meth:`Engine.call` does the same for code without a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.engine import topics
from sensocto_lab.engine.attention import AttentionChange, AttentionTracker
from sensocto_lab.engine.bus import Bus
from sensocto_lab.engine.config import EngineConfig, LoadProbe
from sensocto_lab.engine.experiment import Experiment, ExperimentLog
from sensocto_lab.engine.host import (
    EngineHost,
    in_jupyter_kernel,
    on_engine_loop,
    run_on,
    running_loop,
    submit_to,
)
from sensocto_lab.engine.load import LoadMonitor, SystemProbe
from sensocto_lab.engine.novelty import NoveltyDetector
from sensocto_lab.engine.sensor_task import Pending, SensorRuntime, run_sensor
from sensocto_lab.engine.status import SensorState, SensorStatus, check_transition
from sensocto_lab.engine.supervisor import Supervisor
from sensocto_lab.errors import (
    ClosedResourceError,
    ConfigError,
    SensorFailedError,
    UnknownSensorError,
)
from sensocto_lab.model import (
    AttentionLevel,
    AttributeInfo,
    Batch,
    LoadLevel,
    SensorInfo,
    check_id,
)
from sensocto_lab.storage import Store, TieredStore

__all__ = ["Engine", "EngineConfig"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class Engine(Experiment):
    """Registry, per-sensor tasks, storage and bus of a live recording.

    Use ``engine = await Engine.start(data_dir)`` (then ``await engine.close()``) or
    ``async with Engine(data_dir) as engine:``.

    Parameters
    ----------
    data_dir
        Where the default store keeps its files; ignored when ``store`` is given.
    config
        Engine settings (:class:`EngineConfig`).
    clock
        Time source for stamping, restarts and periodic work (default: real time).
    store
        A :class:`~sensocto_lab.storage.base.Store`; by default
        ``TieredStore.open(data_dir)``. A store passed in is not closed by the engine.
    thread
        ``True``: run on a dedicated loop thread; ``False``: on the caller's loop;
        ``None``: a thread inside a Jupyter kernel, else the caller's loop.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        config: EngineConfig | None = None,
        clock: Clock | None = None,
        store: Store | None = None,
        thread: bool | None = None,
    ) -> None:
        if store is None and data_dir is None:
            raise ConfigError("Engine needs a data_dir, or a store to record into")
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.config = config or EngineConfig()
        self.clock: Clock = clock or SystemClock()
        self._store = store
        self._owns_store = store is None
        self._thread_mode = thread
        self.bus = Bus()
        self.attention = AttentionTracker(
            self.clock, self.config.attention, on_change=self._on_attention_change
        )
        self.load = LoadMonitor(self.clock, self.config.load)
        self._host: EngineHost | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sensors: dict[str, SensorRuntime] = {}
        self._seq: dict[tuple[str, str], int] = {}
        self._supervisor: Supervisor | None = None
        self._opened = False
        self._closing = False
        self._closed: asyncio.Event | None = None
        self._experiment = ExperimentLog(self)
        self._novelty = NoveltyDetector.maybe(self.config.novelty, self._experiment.record)

    def __repr__(self) -> str:
        state = "closed" if self._closing else ("running" if self._opened else "new")
        where = "own thread" if self._host else "caller's loop"
        return f"<Engine {state}, {len(self._sensors)} sensors, {where}>"

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    async def start(
        cls,
        data_dir: str | Path | None = None,
        *,
        config: EngineConfig | None = None,
        clock: Clock | None = None,
        store: Store | None = None,
        thread: bool | None = None,
    ) -> Engine:
        """Create and open an engine (see the class parameters); returns once it runs."""
        engine = cls(data_dir, config=config, clock=clock, store=store, thread=thread)
        await engine.open()
        return engine

    @classmethod
    def start_sync(
        cls,
        data_dir: str | Path | None = None,
        *,
        config: EngineConfig | None = None,
        clock: Clock | None = None,
        store: Store | None = None,
    ) -> Engine:
        """Start an engine on its own loop thread from code without an event loop.

        For scripts and tools; drive it with :meth:`call` and end it with
        :meth:`close_sync`.
        """
        if running_loop() is not None:
            raise RuntimeError("an event loop is running here: use await Engine.start(...)")
        engine = cls(data_dir, config=config, clock=clock, store=store, thread=True)
        engine._opened = True
        host = engine._host = EngineHost().start()
        try:
            host.run_sync(engine._open_here)
        except BaseException:
            host.close()
            raise
        return engine

    async def open(self) -> None:
        """Open the store and start the engine's loop work (once)."""
        if self._opened:
            raise RuntimeError("this engine was already started")
        self._opened = True
        threaded = self._thread_mode if self._thread_mode is not None else in_jupyter_kernel()
        if not threaded:
            await self._open_here()
            return
        self._host = EngineHost().start()
        try:
            await self._host.call(self._open_here)
        except BaseException:
            self._host.close()
            raise

    async def _open_here(self) -> None:
        if self._store is None:
            assert self.data_dir is not None
            self._store = TieredStore.open(self.data_dir, self.config.storage, clock=self.clock)
        self._loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        self._supervisor = Supervisor(self.clock, self.config.restart, self._on_worker_state)
        # Periodic work runs supervised too; its names cannot clash with sensor ids.
        self._supervisor.start("@attention", self._attention_loop)
        probe = self.config.load_probe or SystemProbe().sample
        self._supervisor.start("@load", functools.partial(self._load_loop, probe))

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
        await self.wait_closed()

    async def close(self) -> None:
        """Stop taking batches, finish the queued ones, close the store, stop the thread.

        Every batch already queued is stored (or failed back to its caller) before the
        store closes. Idempotent; :meth:`wait_closed` waits for the end.
        """
        if not self._opened or self._loop is None:
            return
        host = self._host
        if running_loop() is self._loop:
            await self._shutdown()
            if host is not None:
                host.stop_soon()
            return
        if not self._loop.is_closed():
            with contextlib.suppress(ClosedResourceError):
                await run_on(self._loop, self._shutdown)
        if host is not None:
            host.close()

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` has finished (and the loop thread, if any, has ended)."""
        if self._closed is None:
            return
        if self._host is None or running_loop() is self._loop:
            await self._closed.wait()
            return
        if self._host.is_running:
            await self._host.call(self._closed.wait)
        thread = self._host.thread
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join)

    def close_sync(self) -> None:
        """:meth:`close` for code without an event loop (blocks until done)."""
        if self._host is None:
            raise RuntimeError("close_sync needs a threaded engine; await engine.close() instead")
        if self._host.is_running:
            self._host.run_sync(self._shutdown)
        self._host.close()

    async def _shutdown(self) -> None:
        if self._closing:
            assert self._closed is not None
            await self._closed.wait()
            return
        self._closing = True
        try:
            assert self._supervisor is not None
            # Producers and periodic work stop first, then every sensor drains its queue.
            for name in self._supervisor.names():
                if name.startswith("@"):
                    await self._supervisor.stop(name)
            for sensor_id in list(self._sensors):
                await self._remove_sensor(sensor_id)
            await self._supervisor.close()
            if self._owns_store and self._store is not None:
                # Closing seals and compacts the WAL: disk work kept off the loop.
                await asyncio.to_thread(self._store.close)
            self.bus.close()
        finally:
            assert self._closed is not None
            self._closed.set()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has begun."""
        return self._closing

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the engine runs on (its own thread's, or the caller's)."""
        if self._loop is None:
            raise ClosedResourceError("the engine has not been started")
        return self._loop

    @property
    def host(self) -> EngineHost | None:
        """The loop thread when the engine runs on its own thread, else ``None``."""
        return self._host

    @property
    def store(self) -> Store:
        """The store every accepted batch is appended to."""
        if self._store is None:
            raise ClosedResourceError("the engine has not been started")
        return self._store

    def call(
        self,
        fn: Callable[P, Coroutine[Any, Any, T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run the coroutine function ``fn(*args, **kwargs)`` on the engine loop and block.

        For synchronous code (Panel callbacks, a CLI, a plain thread), e.g.
        ``engine.call(engine.ingest, batch)``. Raises ``RuntimeError`` on the engine
        loop's own thread, where blocking would deadlock (``await`` there).
        """
        loop = self.loop
        if running_loop() is loop or (self._host is not None and self._host.in_host_thread()):
            raise RuntimeError("engine.call on the engine loop would deadlock; await instead")
        return submit_to(loop, fn(*args, **kwargs)).result()

    def _check_open(self) -> None:
        if self._closing or self._loop is None:
            raise ClosedResourceError("the engine is closed" if self._closing else "not started")

    # ------------------------------------------------------------------ registry

    @property
    def sensors(self) -> Mapping[str, SensorInfo]:
        """Registered sensors by id (a snapshot)."""
        return MappingProxyType({sid: s.info for sid, s in self._sensors.items()})

    @on_engine_loop
    async def register_sensor(self, info: SensorInfo) -> SensorInfo:
        """Register ``info`` (idempotent: an existing sensor takes the new info).

        A sensor that had failed is started again. Returns the registered info.
        """
        self._check_open()
        sensor = self._sensors.get(info.sensor_id)
        if sensor is not None:
            if sensor.info.room != info.room:
                sensor.topic_room = topics.room(info.room)
            sensor.info = info
            if sensor.state is SensorState.FAILED:
                self._start_worker(sensor)
            return info
        queue: asyncio.Queue[Pending | None] = asyncio.Queue(self.config.inbound_maxsize)
        sensor = SensorRuntime(info, queue, level=self.attention.level(info.sensor_id))
        self._sensors[info.sensor_id] = sensor
        self.attention.add_sensor(info.sensor_id)
        self.bus.publish(topics.STATUS, SensorStatus(info.sensor_id, SensorState.REGISTERED))
        self._start_worker(sensor)
        return info

    @on_engine_loop
    async def unregister_sensor(self, sensor_id: str) -> None:
        """Remove a sensor once the batches already queued for it are stored.

        Raises :class:`UnknownSensorError` if it is not registered.
        """
        self._check_open()
        self._sensor(sensor_id)
        await self._remove_sensor(sensor_id)

    @on_engine_loop
    async def register_attribute(self, sensor_id: str, attribute: AttributeInfo) -> SensorInfo:
        """Add (or replace) one attribute of a registered sensor; returns the new info."""
        self._check_open()
        sensor = self._sensor(sensor_id)
        sensor.info = sensor.info.with_attribute(attribute)
        return sensor.info

    @on_engine_loop
    async def unregister_attribute(self, sensor_id: str, attribute_id: str) -> SensorInfo:
        """Remove one attribute; later batches for it are refused. Returns the new info."""
        self._check_open()
        sensor = self._sensor(sensor_id)
        if attribute_id not in sensor.info.attributes:
            raise UnknownSensorError(
                f"sensor {sensor_id!r} has no attribute {attribute_id!r}",
                reason="unknown_attribute",
            )
        sensor.info = sensor.info.without_attribute(attribute_id)
        return sensor.info

    def _sensor(self, sensor_id: str) -> SensorRuntime:
        sensor = self._sensors.get(sensor_id)
        if sensor is None:
            raise UnknownSensorError(f"sensor {sensor_id!r} is not registered")
        return sensor

    def state(self, sensor_id: str) -> SensorState:
        """The lifecycle state of a registered sensor."""
        return self._sensor(sensor_id).state

    # ------------------------------------------------------------- sensor tasks

    def _start_worker(self, sensor: SensorRuntime) -> None:
        assert self._supervisor is not None
        sid = sensor.info.sensor_id
        task = functools.partial(run_sensor, sensor, self._process, self.config.inflight_retries)
        self._supervisor.start(sid, task)

    def _set_state(self, sensor: SensorRuntime, state: SensorState, detail: str = "") -> None:
        sensor.state = check_transition(sensor.state, state)
        self.bus.publish(topics.STATUS, SensorStatus(sensor.info.sensor_id, state, detail))

    def _on_worker_state(self, sensor_id: str, state: SensorState, detail: str) -> None:
        sensor = self._sensors.get(sensor_id)
        if sensor is None or sensor.state is SensorState.REMOVED:
            return
        self._set_state(sensor, state, detail)
        if state is SensorState.FAILED:
            sensor.fail_pending(SensorFailedError(f"sensor {sensor_id!r} failed: {detail}"))

    def _process(self, sensor: SensorRuntime, batch: Batch) -> Batch:
        """Validate, stamp, store and publish one batch (no awaits: one step on the loop)."""
        attribute = sensor.info.attributes.get(batch.attribute_id)
        if attribute is None:
            raise UnknownSensorError(
                f"sensor {sensor.info.sensor_id!r} has no attribute {batch.attribute_id!r}",
                reason="unknown_attribute",
            )
        batch = batch.validated(attribute.kind)
        if self.config.fault is not None:
            self.config.fault(batch)
        key = (batch.sensor_id, batch.attribute_id)
        first = self._seq.get(key)
        if first is None:  # first batch of this series in this process: carry on from disk
            first = self.store.next_seq(*key)
        stamped = batch.stamped(self.clock.time_ns(), first)
        self.store.append(stamped, room=sensor.info.room, kind=attribute.kind)
        self._seq[key] = first + len(stamped)
        sensor.samples += len(stamped)
        sensor.batches += 1
        self._publish_batch(sensor, stamped)
        if self._novelty is not None:  # scores only; records later (engine/novelty.py)
            self._novelty.observe(sensor.info, attribute, stamped)
        if attribute.kind.name == "battery":
            self._note_battery(sensor, float(stamped.values[-1]))
        return stamped

    def _note_battery(self, sensor: SensorRuntime, pct: float) -> None:
        """Let a low battery cap the sensor's attention level (see ``docs/architecture.md``)."""
        if 0.0 <= pct <= 100.0:
            self.attention.set_battery(sensor.info.sensor_id, pct)

    def _publish_batch(self, sensor: SensorRuntime, stamped: Batch) -> None:
        bus = self.bus
        bus.publish(sensor.topic_data, stamped)
        if sensor.level is not AttentionLevel.NONE:
            bus.publish(topics.attention(sensor.level.label), stamped)
        bus.publish(sensor.topic_room, stamped)

    async def _remove_sensor(self, sensor_id: str) -> None:
        sensor = self._sensors.get(sensor_id)
        if sensor is None:
            return
        assert self._supervisor is not None
        if sensor_id in self._supervisor:
            await sensor.queue.put(None)
            await self._supervisor.wait(sensor_id)
        sensor.fail_pending(UnknownSensorError(f"sensor {sensor_id!r} was removed"))
        del self._sensors[sensor_id]
        self.attention.remove_sensor(sensor_id)
        self._set_state(sensor, SensorState.REMOVED)

    # -------------------------------------------------------------------- ingest

    @on_engine_loop
    async def ingest(self, batch: Batch) -> Batch:
        """Record one batch; returns it stamped (``recv_ts``, ``seq``) once it is stored.

        Waits while the sensor's inbound queue is full.

        Raises
        ------
        UnknownSensorError
            The sensor or attribute is not registered (reasons ``unknown_sensor``,
            ``unknown_attribute``).
        ValidationError
            The batch breaks its kind's rules; nothing of it is stored.
        SensorFailedError
            The sensor's task kept crashing and was stopped.
        LocalError
            The sensor's task crashed on this very batch (reason ``sensor_crashed``).
        StorageError, ClosedResourceError
            The store could not take it, or the engine is closing.
        """
        return await (await self._enqueue(batch))

    async def _enqueue(self, batch: Batch) -> asyncio.Future[Batch]:
        """Queue ``batch`` for its sensor's task; the future resolves once it is stored."""
        self._check_open()
        check_id(batch.sensor_id, "sensor_id")
        sensor = self._sensor(batch.sensor_id)
        if batch.attribute_id not in sensor.info.attributes:
            raise UnknownSensorError(
                f"sensor {batch.sensor_id!r} has no attribute {batch.attribute_id!r}; "
                "register it first",
                reason="unknown_attribute",
            )
        if sensor.state is SensorState.FAILED:
            raise SensorFailedError(f"sensor {batch.sensor_id!r} has failed; register it again")
        future: asyncio.Future[Batch] = asyncio.get_running_loop().create_future()
        item = Pending(batch, future)
        try:
            sensor.queue.put_nowait(item)
        except asyncio.QueueFull:
            await sensor.queue.put(item)
        return future

    # ------------------------------------------------------ owned background work

    @on_engine_loop
    async def start_task(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work()`` on the engine loop as background work the engine owns.

        For sources that produce on their own (a simulated group, a replay): the task
        is supervised like a sensor task (restarted with back-off after a crash,
        ``work`` called again) and is stopped first when the engine closes, before the
        sensors drain. ``name`` (e.g. ``"sim:lab"``) must not be running already
        (:class:`ConfigError`, reason ``duplicate_task``).
        """
        self._check_open()
        assert self._supervisor is not None
        key = f"@{name}"
        if key in self._supervisor:
            raise ConfigError(f"a task named {name!r} is already running", reason="duplicate_task")
        self._supervisor.start(key, work)

    @on_engine_loop
    async def stop_task(self, name: str) -> None:
        """Cancel the background work ``name`` and wait for it (no-op if it is not running)."""
        if self._supervisor is not None:
            await self._supervisor.stop(f"@{name}")

    # ----------------------------------------------------------- attention, load

    @on_engine_loop
    async def set_views(
        self, viewer_id: str, views: Mapping[str, object], *, replace: bool = False
    ) -> list[AttentionChange]:
        """Set many of one viewer's views at once (sensor id → level) and renew the viewer.

        Levels are :class:`AttentionLevel`, their wire names or 0–3; ``replace`` drops the
        viewer's other views. Every resulting change is published on ``signal:{sensor}``.
        Raises :class:`ValidationError` (and changes nothing) on a bad id or level.
        """
        self._check_open()
        return self.attention.set_views(viewer_id, views, replace=replace)

    @on_engine_loop
    async def remove_viewer(self, viewer_id: str) -> list[AttentionChange]:
        """Forget a viewer and its views (a closed dashboard, a dropped lens)."""
        self._check_open()
        return self.attention.remove_viewer(viewer_id)

    @on_engine_loop
    async def renew_viewer(self, viewer_id: str) -> None:
        """Keep a viewer alive (its heartbeat); viewers not renewed are cleaned up."""
        self._check_open()
        self.attention.renew(viewer_id)

    def _on_attention_change(self, changes: list[AttentionChange]) -> None:
        for change in changes:
            sensor = self._sensors.get(change.sensor_id)
            if sensor is not None:
                sensor.level = change.new
            self.bus.publish(topics.signal(change.sensor_id), change.config)

    async def _attention_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.attention_tick_s)
            self.attention.tick()

    async def _load_loop(self, probe: LoadProbe) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.clock.sleep(self.config.load_interval_s)
            # Lag: how long the loop takes to come back to us through its ready queue.
            before = loop.time()
            await asyncio.sleep(0)
            lag = loop.time() - before
            fill = max(
                (s.queue.qsize() / self.config.inbound_maxsize for s in self._sensors.values()),
                default=0.0,
            )
            level = self.load.update(probe(lag, min(fill, 1.0)))
            if level is not None:
                self._apply_load(level)

    def _apply_load(self, level: LoadLevel) -> None:
        log.info("system load is now %s", level.label)
        self.store.set_load_scale(self.load.memory_scale)
        self.attention.set_load(level)
        self.bus.publish(topics.LOAD, level)

    # -------------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        """A JSON-able snapshot: sensors, load level, attention, storage lag and counters, bus.

        Each sensor has ``id``, ``room``, ``state``, ``attention`` (level name),
        ``samples`` and ``batches`` stored since registration, ``queued`` batches and its
        ``attributes``. ``gc`` tells the process's garbage collections per generation and
        how many objects are frozen out of them (a full collection stalls the loop for
        as long as it takes to scan what is not frozen). ``storage_health`` is ``ok``, or
        ``failing`` while a write, fsync or compaction keeps failing (a full disk), with
        ``last_error`` saying why (no file paths). Safe to call from any thread (it only
        reads).
        """
        sensors = [
            {
                "id": sid,
                "room": s.info.room,
                "state": s.state.value,
                "attention": s.level.label,
                "samples": s.samples,
                "batches": s.batches,
                "queued": s.queue.qsize(),
                "attributes": sorted(s.info.attributes),
            }
            for sid, s in list(self._sensors.items())
        ]
        storage: dict[str, Any] = {}
        if self._store is not None and not (self._closing and self._owns_store):
            storage = dict(self._store.statistics())
        return {
            "state": "closed" if self._closing else ("running" if self._loop else "new"),
            "threaded": self._host is not None,
            "sensors": sensors,
            "load": self.load.level.label,
            "attention": self.attention.statistics(),
            "storage_lag_s": storage.get("storage_lag_s"),
            "storage_health": (storage.get("health") or {}).get("state"),
            "last_error": storage.get("last_error"),
            "storage": storage,
            "bus": self.bus.statistics(),
            "gc": {
                "collections": [g["collections"] for g in gc.get_stats()],
                "frozen": gc.get_freeze_count(),
            },
        }
