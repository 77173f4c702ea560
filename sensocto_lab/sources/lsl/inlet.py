"""Recording LSL streams with the engine: ``rec = await record_lsl(engine, "type='EEG'")``.

This is a function of ``sources`` that takes the engine, not an ``Engine`` method:
the engine never imports sources (``docs/architecture.md``, the layer rule). It drives
the engine through its public calls only, like the simulated group does.

What happens (each stream that matches, now or later, through a
``ContinuousResolver`` polled by one thread):

- one sensor per stream: id from ``source_id``, else the name, made safe
  (:func:`~sensocto_lab.io.safe_id`); one attribute per channel (labels from
  ``desc/channels``, else ``ch0``…; units likewise), numeric formats kept as they are
  (:func:`~sensocto_lab.io.recording.channel_kind`); plus the attribute
  ``lsl_offset``: ``time_correction()`` in s, sampled when it is read (at the start
  and every ``clock_update_s``), so the clock mapping can be redone offline;
- string streams (markers) become events (``source="device"``) through
  ``engine.record_events``;
- a thread per stream pulls chunks into a numpy buffer (``pull_chunk(dest_obj=...)``,
  never sample by sample; pylsl blocks, so it runs off the loop) and hands each chunk
  to the engine's loop (:func:`~sensocto_lab.engine.host.submit_to`), where one
  ``engine.ingest`` per channel stores and publishes it. At most ``MAX_INFLIGHT``
  chunks wait there; beyond that the thread waits, and liblsl buffers (``max_buflen``
  seconds) instead of anything being dropped;
- stamps: the sender's, dejittered by liblsl for regular streams (``proc_dejitter``)
  and monotonized, plus ``time_correction()``, mapped to the engine clock by one
  :class:`~sensocto_lab.sources.lsl.discovery.ClockMap`; the offsets are also written to
  ``{data_dir}/interop/lsl/{sensor}.json`` with each channel's label, unit and rate;
- ``recover=True``: liblsl reconnects to a stream that comes back (same
  ``source_id``) and the sensor stays; with ``False`` a lost stream's sensor is
  unregistered and a stream that reappears is recorded as new.

The watcher is a task the engine owns (``engine.start_task("lsl:{room}:…")``), so
closing the engine stops the threads before its sensors drain.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.host import submit_to
from sensocto_lab.errors import ClosedResourceError, ConfigError, SensoctoError
from sensocto_lab.events import Event
from sensocto_lab.io.meta import INTEROP_DIR, write_json
from sensocto_lab.io.recording import channel_kind, safe_id, unique_ids
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo, check_id
from sensocto_lab.sources.lsl.discovery import DTYPES, ClockMap, channel_desc, format_name

if TYPE_CHECKING:
    import pylsl

__all__ = ["LslRecording", "record_lsl"]

log = logging.getLogger(__name__)

#: Chunks of one stream handed to the engine loop and not yet stored, at most.
MAX_INFLIGHT = 8
OFFSET_ATTRIBUTE = "lsl_offset"
Predicate = str | Callable[["pylsl.StreamInfo"], bool] | None


class _StreamWorker:
    """One stream's inlet and pulling thread."""

    def __init__(self, rec: LslRecording, info: pylsl.StreamInfo, sensor_id: str) -> None:
        self.rec = rec
        self.info = info
        self.sensor_id = sensor_id
        self.name = info.name()
        self.format = format_name(info.channel_format())
        self.samples = 0
        self.chunks = 0
        self.errors = 0
        self.lost = False
        self.offsets: list[tuple[float, float]] = []
        self.thread = threading.Thread(target=self._main, name=f"lsl-in:{sensor_id}", daemon=True)

    def __repr__(self) -> str:
        return f"<lsl stream {self.name!r} → {self.sensor_id} n={self.samples}>"

    def _main(self) -> None:
        try:
            self._run()
        except ClosedResourceError:
            pass  # the engine closed under us
        except Exception:
            log.exception("LSL stream %s stopped on an error", self.name)
            self.errors += 1

    def _run(self) -> None:
        import pylsl

        rec = self.rec
        regular = self.info.nominal_srate() > 0
        flags = pylsl.proc_monotonize | (pylsl.proc_dejitter if regular else 0)
        inlet = pylsl.StreamInlet(
            self.info, max_buflen=rec.max_buflen, recover=rec.recover, processing_flags=flags
        )
        try:
            inlet.open_stream(timeout=rec.open_timeout_s)
            full = inlet.info(timeout=rec.open_timeout_s)
            if self.format == "string":
                self._pull_markers(inlet)
            else:
                self._pull_samples(inlet, full)
        except pylsl.LostError:
            self.lost = True
        finally:
            inlet.close_stream()
            if self.lost and not rec.recover and not rec.stopping.is_set():
                with contextlib.suppress(SensoctoError, RuntimeError):
                    rec.call(rec.engine.unregister_sensor(self.sensor_id)).result(5)

    def _correction(self, inlet: pylsl.StreamInlet) -> float | None:
        import pylsl

        try:
            tc = float(inlet.time_correction(timeout=self.rec.open_timeout_s))
        except pylsl.TimeoutError:
            return None
        self.offsets.append((pylsl.local_clock(), tc))
        return tc

    def _pull_markers(self, inlet: pylsl.StreamInlet) -> None:
        rec = self.rec
        tc = self._correction(inlet) or 0.0
        next_tc = time.monotonic() + rec.clock_update_s
        while not rec.stopping.is_set():
            samples, stamps = inlet.pull_chunk(timeout=rec.poll_s, max_samples=1024)
            if time.monotonic() >= next_tc:
                tc = self._correction(inlet) or tc
                next_tc = time.monotonic() + rec.clock_update_s
            if not stamps:
                continue
            onsets = rec.clock.to_ns(np.asarray(stamps), tc)
            events = []
            for onset, sample in zip(onsets.tolist(), samples, strict=True):
                text = " | ".join(str(v) for v in sample).strip()
                label = "".join(" " if ord(c) < 32 else c for c in text)[:256]
                if label:
                    value = {"stream": self.name}
                    events.append(
                        Event(int(onset), label, room=rec.room, value=value, source="device")
                    )
            if events:
                self.samples += len(events)
                self._track(rec.call(rec.engine.record_events(events)))

    def _pull_samples(self, inlet: pylsl.StreamInlet, full: pylsl.StreamInfo) -> None:
        rec = self.rec
        engine = rec.engine
        rate = float(full.nominal_srate())
        desc = channel_desc(full)
        dtype = np.dtype(DTYPES[self.format])
        attrs = unique_ids(
            safe_id(label, f"ch{i}") if safe_id(label, "") != OFFSET_ATTRIBUTE else f"ch{i}"
            for i, (label, _) in enumerate(desc)
        )
        kinds = [channel_kind(label, full.type(), dtype) for label, _ in desc]
        attributes = {
            a: AttributeInfo(a, k, rate_hz=rate or None, unit=unit or None)
            for a, k, (_, unit) in zip(attrs, kinds, desc, strict=True)
        }
        attributes[OFFSET_ATTRIBUTE] = AttributeInfo.of(OFFSET_ATTRIBUTE, "numeric", unit="s")
        info = SensorInfo(
            self.sensor_id,
            attributes,
            name=full.name(),
            sensor_type=full.type() or "lsl",
            room=rec.room,
            connector_id="lsl",
        )
        rec.call(engine.register_sensor(info)).result(rec.open_timeout_s)
        self._write_sidecar(full, attrs, desc, rate)
        cap = max(64, int(rate * rec.max_chunk_s) if rate > 0 else 1024)
        buf = np.empty((cap, len(desc)), dtype=dtype)
        tc = self._store_offset(inlet, 0.0)
        next_tc = time.monotonic() + rec.clock_update_s
        while not rec.stopping.is_set():
            view, stamps = inlet.pull_chunk(
                timeout=rec.poll_s, max_samples=cap, dest_obj=buf, min_samples=1, as_numpy=True
            )
            if time.monotonic() >= next_tc:
                tc = self._store_offset(inlet, tc)
                next_tc = time.monotonic() + rec.clock_update_s
            n = len(stamps)
            if n == 0:
                continue
            ts = rec.clock.to_ns(stamps, tc)
            columns = [(a, np.array(view[:, i])) for i, a in enumerate(attrs)]
            self.samples += n
            self.chunks += 1
            self._track(rec.call(rec.deliver(self.sensor_id, ts, columns)))

    def _store_offset(self, inlet: pylsl.StreamInlet, previous: float) -> float:
        tc = self._correction(inlet)
        if tc is None:
            return previous
        at, _ = self.offsets[-1]
        ts = self.rec.clock.to_ns(np.array([at]))
        batch = Batch(self.sensor_id, OFFSET_ATTRIBUTE, ts, np.array([tc]))
        self._track(self.rec.call(self.rec.engine.ingest(batch)))
        return tc

    def _track(self, future: concurrent.futures.Future[Any]) -> None:
        """Keep ``future``; wait while more than ``MAX_INFLIGHT`` are not stored yet.

        The wait gives up once the recording stops and the engine is closed (its loop
        may never run what is queued), so a pulling thread never hangs.
        """
        pending = self.rec.pending.setdefault(self.sensor_id, deque())
        pending.append(future)
        while pending and (pending[0].done() or len(pending) > MAX_INFLIGHT):
            oldest = pending[0]
            if not oldest.done():
                concurrent.futures.wait([oldest], timeout=0.5)
                if not oldest.done():
                    if self.rec.stopping.is_set() and self.rec.engine.closed:
                        raise ClosedResourceError("the engine closed while chunks were queued")
                    continue
            pending.popleft()
            try:
                oldest.result()
            except SensoctoError as exc:
                self.errors += 1
                log.warning("LSL stream %s: a chunk was refused: %s", self.name, exc)
            except concurrent.futures.CancelledError:
                self.errors += 1

    def _write_sidecar(
        self, full: pylsl.StreamInfo, attrs: list[str], desc: list[tuple[str, str]], rate: float
    ) -> None:
        data_dir = self.rec.engine.data_dir
        if data_dir is None:
            return
        doc = {
            "stream": {
                "name": full.name(),
                "type": full.type(),
                "source_id": full.source_id(),
                "hostname": full.hostname(),
                "uid": full.uid(),
                "channel_format": self.format,
                "nominal_srate": rate,
            },
            "epoch_offset_ns": self.rec.clock.epoch_offset_ns,
            "offset_attribute": OFFSET_ATTRIBUTE,
            "series": [
                {"sensor": self.sensor_id, "attribute": a, "unit": u, "rate_hz": rate, "label": lab}
                for a, (lab, u) in zip(attrs, desc, strict=True)
            ],
        }
        try:
            write_json(Path(data_dir) / INTEROP_DIR / "lsl" / f"{self.sensor_id}.json", doc)
        except SensoctoError as exc:
            log.warning("LSL stream %s: sidecar not written: %s", self.name, exc)


class LslRecording:
    """LSL streams being recorded by an engine; make one with :func:`record_lsl`.

    Attributes
    ----------
    room
        The room the streams' sensors and events belong to.
    clock
        The LSL → engine clock map in use.
    """

    def __init__(self, engine: Engine, predicate: Predicate, room: str, **options: Any) -> None:
        self.engine = engine
        self.predicate = predicate
        self.room = room
        self.recover: bool = options["recover"]
        self.max_buflen: int = options["max_buflen"]
        self.poll_s: float = options["poll_s"]
        self.clock_update_s: float = options["clock_update_s"]
        self.open_timeout_s: float = options["open_timeout_s"]
        self.max_chunk_s: float = options["max_chunk_s"]
        self.clock = ClockMap.measure(engine.clock.time_ns)
        self.stopping = threading.Event()
        self.pending: dict[str, deque[concurrent.futures.Future[Any]]] = {}
        self._workers: dict[str, _StreamWorker] = {}
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._resolver_thread: threading.Thread | None = None
        self.task_name = f"lsl:{room}:{id(self):x}"
        self._stopped = False

    def __repr__(self) -> str:
        return f"<LslRecording room={self.room!r} streams={sorted(self._workers)}>"

    def call(self, coro: Any) -> concurrent.futures.Future[Any]:
        """Run ``coro`` on the engine's loop (from a pulling thread)."""
        return submit_to(self.engine.loop, coro)

    async def deliver(
        self, sensor_id: str, ts: np.ndarray, columns: list[tuple[str, np.ndarray]]
    ) -> None:
        """Ingest one chunk, one batch per channel, on the engine loop."""
        engine = self.engine
        results = await asyncio.gather(
            *(engine.ingest(Batch(sensor_id, a, ts, v)) for a, v in columns),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    @property
    def sensors(self) -> dict[str, str]:
        """``{sensor_id: stream name}`` of the streams recorded so far."""
        with self._lock:
            return {sid: w.name for sid, w in self._workers.items()}

    def statistics(self) -> dict[str, dict[str, Any]]:
        """Per sensor: samples and chunks pulled, errors, lost, latest ``time_correction``."""
        with self._lock:
            workers = dict(self._workers)
        return {
            sid: {
                "stream": w.name,
                "format": w.format,
                "samples": w.samples,
                "chunks": w.chunks,
                "errors": w.errors,
                "lost": w.lost,
                "time_correction_s": w.offsets[-1][1] if w.offsets else None,
            }
            for sid, w in workers.items()
        }

    # -- watching for streams (a thread; liblsl's resolver calls block) --------------

    def _matches(self, info: pylsl.StreamInfo) -> bool:
        return not callable(self.predicate) or bool(self.predicate(info))

    def _resolve(self) -> None:
        import pylsl

        pred = self.predicate if isinstance(self.predicate, str) else None
        resolver = pylsl.ContinuousResolver(pred=pred) if pred else pylsl.ContinuousResolver()
        try:
            while not self.stopping.is_set():
                for info in resolver.results():
                    if info.uid() not in self._seen and self._matches(info):
                        self._seen.add(info.uid())
                        self._start(info)
                self.stopping.wait(0.1)
        finally:
            del resolver

    def _start(self, info: pylsl.StreamInfo) -> None:
        sensor_id = safe_id(info.source_id() or info.name(), "lsl")
        with self._lock:
            current = self._workers.get(sensor_id)
            if current is not None and current.thread.is_alive():
                return  # the same source, back again: its inlet recovers (or it's a twin)
            worker = _StreamWorker(self, info, sensor_id)
            self._workers[sensor_id] = worker
        worker.thread.start()

    async def _watch(self) -> None:
        self._resolver_thread = threading.Thread(
            target=self._resolve, name=f"lsl-resolve:{self.room}", daemon=True
        )
        self._resolver_thread.start()
        try:
            await asyncio.Event().wait()  # until stopped or the engine closes
        finally:
            self.stopping.set()
            await asyncio.to_thread(self._join)

    def _join(self) -> None:
        if self._resolver_thread is not None:
            self._resolver_thread.join(10)
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.thread.join(10)

    async def wait_for(self, n_streams: int, timeout: float = 10.0) -> None:
        """Wait until ``n_streams`` streams are being recorded (``TimeoutError`` after)."""
        deadline = time.monotonic() + timeout
        while len(self._workers) < n_streams:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._workers)} of {n_streams} LSL streams found")
            await asyncio.sleep(0.02)

    async def stop(self, *, unregister: bool = False) -> None:
        """Stop recording (the pulled data is stored); optionally unregister the sensors."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        engine = self.engine
        await engine.stop_task(self.task_name)
        await asyncio.to_thread(self._join)
        for pending in list(self.pending.values()):
            for future in list(pending):
                with contextlib.suppress(SensoctoError, concurrent.futures.CancelledError):
                    await asyncio.wrap_future(future)
        if unregister and not engine.closed:
            for sensor_id in self.sensors:
                if sensor_id in engine.sensors:
                    await engine.unregister_sensor(sensor_id)


async def record_lsl(
    engine: Engine,
    predicate: Predicate = None,
    *,
    room: str = "default",
    recover: bool = True,
    max_buflen: int = 360,
    poll_s: float = 0.05,
    clock_update_s: float = 5.0,
    open_timeout_s: float = 5.0,
    max_chunk_s: float = 0.5,
) -> LslRecording:
    """Record the LSL streams that match ``predicate`` (now and later) with ``engine``.

    Parameters
    ----------
    engine
        A started engine (its own thread or this loop).
    predicate
        An LSL XPath predicate (``"type='EEG'"``, ``"name='Markers'"``), a function
        of a ``pylsl.StreamInfo`` returning True to record it, or ``None`` (all).
    room
        The room of the streams' sensors and marker events.
    recover
        Keep a sensor when its stream comes back (see the module docstring).
    max_buflen
        Seconds liblsl buffers per stream while the engine is busy.
    poll_s
        Longest a pull waits for a first sample, s (also how soon ``stop`` is seen).
    clock_update_s
        How often ``time_correction()`` is read and stored, s.
    open_timeout_s
        How long opening a stream and its first clock estimate may take, s.
    max_chunk_s
        Most seconds of samples one pull takes (the numpy buffer's size; bigger
        chunks cost less per sample when a stream is far behind).

    Returns
    -------
    LslRecording
        ``await rec.stop()`` ends it; ``rec.sensors``, ``rec.statistics()``.
    """
    check_id(room, "room")
    if not poll_s > 0 or not clock_update_s > 0 or not max_chunk_s > 0 or max_buflen < 1:
        raise ConfigError("poll_s, clock_update_s and max_chunk_s must be > 0 s, max_buflen >= 1 s")
    rec = LslRecording(
        engine,
        predicate,
        room,
        recover=recover,
        max_buflen=max_buflen,
        poll_s=poll_s,
        clock_update_s=clock_update_s,
        open_timeout_s=open_timeout_s,
        max_chunk_s=max_chunk_s,
    )
    await engine.start_task(rec.task_name, rec._watch)
    return rec
