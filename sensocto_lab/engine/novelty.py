"""Automatic events: a sample far from its series' running statistics is a ``novelty``.

The detector (after Sensocto's NoveltyDetector) keeps, per (sensor, attribute), a
running mean and variance (Welford's algorithm, merged batch by batch with Chan's
formula) and flags a sample whose z-score ``|x - mean| / std`` is at least
``z_threshold``. It runs inside the engine's ingest step, after the batch is stored
and published, and is vectorised per batch:

* a batch of more than :data:`SMALL_BATCH` samples is scored against the statistics
  from **before** it (one numpy pass), so a burst inside it is scored against the
  same baseline; smaller batches (the usual case: hr and rr arrive one or a few
  samples at a time) are scored sample by sample in plain floats, which is cheaper;
* flagged samples do not update the statistics (a spike does not widen the band that
  would let the next spike through);
* no sample is scored until its series has ``warmup`` samples, and none is reported
  until ``warmup_s`` seconds of it have passed (outliers in between are still kept
  out of the statistics);
* after a flag, the series stays quiet for ``refractory_s`` seconds of device time.

Events are not recorded inside the ingest step: they are collected and recorded
(stored, then published on ``events:{room}``) once per loop iteration by a callback
scheduled with ``call_soon`` (``flush``), so the hot path only scores. Each is
``Event(kind="novelty", label="novelty", sensor=..., room=..., value={"z", "attribute",
"value"}, source="device")``: the source is ``"device"`` because the event is about,
and timed by, the device's own data (onset = the sample's device timestamp), not a
person's or a schedule's act.

Which attributes: by default the slow physiological scalars (``hr``, ``rr``, ``hrv``,
``spo2``, ``temperature``), where an outlier is an artefact or an event worth a look.
Left out: ``respiration`` (a breath is a wide oscillation, so a dropout or a clipped
belt stays inside its range; its novelty is about rate and amplitude, not sample
values, and at 10-20 Hz it was most of the detector's cost: add it to ``kinds`` to
watch it anyway), ``ecg`` (every R peak is an amplitude outlier; ECG novelty is about
shape), the motion vectors (``accelerometer``, ``gyroscope``,
``quaternion``: moving is normal and bursty), ``geolocation``, ``battery`` (a slow
monotone drain), ``button`` (already an event) and ``numeric`` (which includes the
derived ``sync`` attribute of ``sync:{room}``). A flat line or a dropout to a typical
value is not an outlier and is not found by a z-score.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sensocto_lab.errors import ConfigError
from sensocto_lab.events import ONSET_MAX_NS, ONSET_MIN_NS, Event
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo

__all__ = ["DEFAULT_NOVELTY_KINDS", "NoveltyConfig", "NoveltyDetector"]

log = logging.getLogger(__name__)

#: Batches up to this many samples are scored sample by sample in plain floats.
SMALL_BATCH = 32

#: The attribute kinds a detector watches by default (see the module docstring).
DEFAULT_NOVELTY_KINDS = frozenset({"hr", "rr", "hrv", "spo2", "temperature"})


@dataclass(frozen=True, slots=True)
class NoveltyConfig:
    """How the engine finds novelty.

    Attributes
    ----------
    z_threshold
        Smallest ``|x - mean| / std`` flagged (dimensionless, > 0).
    warmup, warmup_s
        A series flags nothing before it has seen ``warmup`` samples (>= 2) **and**
        ``warmup_s`` seconds of device time since its first sample: a count alone
        would be 1.5 s of a 20 Hz respiration, a fraction of one breath.
    refractory_s
        Seconds of device time after a flag during which the same series flags nothing.
    kinds
        Attribute kinds watched (by :attr:`~sensocto_lab.model.KindSpec.name`);
        scalar kinds only.
    min_std
        Floor of the standard deviation, in the attribute's unit, so a series that
        barely moves (a steady 60 bpm) does not flag its first 1-bpm change.
    """

    z_threshold: float = 6.0
    warmup: int = 30
    warmup_s: float = 60.0
    refractory_s: float = 10.0
    kinds: frozenset[str] = DEFAULT_NOVELTY_KINDS
    min_std: float = 1e-3

    def __post_init__(self) -> None:
        if not (self.z_threshold > 0 and math.isfinite(self.z_threshold)):
            raise ConfigError(f"z_threshold must be > 0, got {self.z_threshold!r}")
        if self.warmup < 2:
            raise ConfigError(f"warmup must be at least 2 samples, got {self.warmup!r}")
        if not (self.warmup_s >= 0 and math.isfinite(self.warmup_s)):
            raise ConfigError(f"warmup_s must be >= 0 seconds, got {self.warmup_s!r}")
        if not (self.refractory_s >= 0 and math.isfinite(self.refractory_s)):
            raise ConfigError(f"refractory_s must be >= 0 seconds, got {self.refractory_s!r}")
        if not (self.min_std >= 0 and math.isfinite(self.min_std)):
            raise ConfigError(f"min_std must be >= 0, got {self.min_std!r}")


class _Series:
    """Running statistics of one (sensor, attribute) series."""

    __slots__ = ("count", "m2", "mean", "quiet_until", "ready_ns")

    def __init__(self, ready_ns: int) -> None:
        self.ready_ns = ready_ns  # device ns from which samples may be flagged (warm-up)
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.quiet_until = -(2**62)  # device ns before which nothing is flagged


class NoveltyDetector:
    """Per-series z-score novelty over stamped batches (engine loop only).

    Parameters
    ----------
    config
        Thresholds and which kinds (:class:`NoveltyConfig`).
    record
        ``record(events)``: how found events are stored and published (the engine's
        experiment log); called from :meth:`flush`, never from :meth:`observe`.
    """

    def __init__(self, config: NoveltyConfig, record: Callable[[Sequence[Event]], object]) -> None:
        self.config = config
        self._record = record
        self._series: dict[tuple[str, str], _Series] = {}
        self._pending: list[Event] = []
        self._scheduled = False
        self.found = 0
        self.recorded = 0
        self.failed = 0
        self.samples = 0

    @classmethod
    def maybe(
        cls, config: NoveltyConfig | None, record: Callable[[Sequence[Event]], object]
    ) -> NoveltyDetector | None:
        """A detector, or ``None`` when novelty is off (``config`` is None)."""
        return None if config is None else cls(config, record)

    def __repr__(self) -> str:
        return f"<NoveltyDetector {len(self._series)} series, {self.found} found>"

    def observe(self, info: SensorInfo, attribute: AttributeInfo, batch: Batch) -> None:
        """Score one stamped batch; found events are recorded soon after (see module doc)."""
        cfg = self.config
        if attribute.kind.name not in cfg.kinds or attribute.kind.width != 1:
            return
        key = (batch.sensor_id, batch.attribute_id)
        state = self._series.get(key)
        ts = batch.ts
        if state is None:
            state = self._series[key] = _Series(int(ts[0]) + round(cfg.warmup_s * 1e9))
        n = len(ts)
        self.samples += n
        if n <= SMALL_BATCH:
            self._observe_small(state, info, batch)
        else:
            self._observe_large(state, info, batch)

    def _observe_small(self, state: _Series, info: SensorInfo, batch: Batch) -> None:
        """Sample by sample in plain floats (cheaper than numpy for a few samples)."""
        cfg = self.config
        count, mean, m2 = state.count, state.mean, state.m2
        for t, v in zip(batch.ts.tolist(), batch.values.tolist(), strict=True):
            if not math.isfinite(v):
                continue
            if count >= cfg.warmup:
                z = abs(v - mean) / max(math.sqrt(m2 / (count - 1)), cfg.min_std)
                if z >= cfg.z_threshold:  # an outlier does not update the statistics
                    if t >= state.quiet_until and t >= state.ready_ns:
                        state.quiet_until = t + round(cfg.refractory_s * 1e9)
                        self._found(info, batch, t, z, v)
                    continue
            count += 1
            delta = v - mean
            mean += delta / count
            m2 += delta * (v - mean)
        state.count, state.mean, state.m2 = count, mean, m2

    def _observe_large(self, state: _Series, info: SensorInfo, batch: Batch) -> None:
        """Against the statistics from before the batch, in one numpy pass."""
        cfg = self.config
        x = np.asarray(batch.values, dtype=np.float64)
        ok = np.isfinite(x)
        if state.count >= 2 and state.count + x.size > cfg.warmup:
            std = max(math.sqrt(state.m2 / (state.count - 1)), cfg.min_std)
            z = np.abs(x - state.mean) / std
            hits = np.flatnonzero(ok & (z >= cfg.z_threshold))
            if hits.size:
                ts = batch.ts
                position = state.count + np.cumsum(ok) - 1  # index in the series
                for i in hits.tolist():
                    t = int(ts[i])
                    if position[i] < cfg.warmup:
                        continue
                    ok[i] = False  # an outlier does not update the statistics
                    if t < state.quiet_until or t < state.ready_ns:
                        continue
                    state.quiet_until = t + round(cfg.refractory_s * 1e9)
                    self._found(info, batch, t, float(z[i]), float(x[i]))
        x = x[ok] if not ok.all() else x
        n = x.size
        if n == 0:
            return
        mean = float(x.sum()) / n
        d = x - mean
        m2 = float(np.dot(d, d))
        total = state.count + n
        delta = mean - state.mean
        state.mean += delta * n / total
        state.m2 += m2 + delta * delta * state.count * n / total
        state.count = total

    def _found(self, info: SensorInfo, batch: Batch, onset_ns: int, z: float, x: float) -> None:
        self.found += 1
        if not ONSET_MIN_NS <= onset_ns < ONSET_MAX_NS:
            self.failed += 1  # a device clock outside any session: nothing to record
            return
        value = {"z": round(z, 2), "attribute": batch.attribute_id, "value": x}
        self._pending.append(
            Event(onset_ns, "novelty", "novelty", 0.0, info.room, batch.sensor_id, None, value,
                  "device")
        )
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a direct call in a test): flush() by hand
                self._scheduled = False

    def flush(self) -> list[Event]:
        """Record the events found since the last flush; returns them (engine loop only)."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        if not pending:
            return []
        try:
            self._record(pending)
        except Exception as exc:  # the sensor left, or the engine is closing
            self.failed += len(pending)
            log.warning("%d novelty events not recorded: %s", len(pending), exc)
            return []
        self.recorded += len(pending)
        return pending

    def forget(self, sensor_id: str) -> None:
        """Drop a sensor's statistics (it was unregistered)."""
        for key in [k for k in self._series if k[0] == sensor_id]:
            del self._series[key]

    def statistics(self) -> dict[str, int]:
        """``series`` watched, ``samples`` scored, events ``found``, ``recorded``, ``failed``."""
        return {
            "series": len(self._series),
            "samples": self.samples,
            "found": self.found,
            "recorded": self.recorded,
            "failed": self.failed,
        }
