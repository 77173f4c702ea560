"""System load: a pure hysteresis policy over load samples, and a probe for CPU and memory.

:class:`LoadMonitor` turns a stream of :class:`LoadSample` (CPU, event-loop lag, queue fill,
memory) into a :class:`~sensocto_lab.model.LoadLevel`. Each metric has three thresholds
(elevated, high, critical); a sample's level is its worst metric's level. The level goes
**up** only after ``rise_samples`` consecutive samples above it, and comes **down** only
after every metric has stayed below its threshold minus a margin for ``fall_time_s``
seconds of the injected clock, so a metric hovering around a threshold does not make the
level flap.

The level drives two things (docs/architecture.md#attention): device batch windows stretch by
:attr:`LoadMonitor.window_multiplier` and in-memory ring limits shrink by
:attr:`LoadMonitor.memory_scale`. The monitor itself has no data path: it never drops a
sample.

:class:`SystemProbe` is the only I/O here: it reads system CPU and memory through psutil.
The event-loop lag and queue fill are measured by the engine and passed in.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

import psutil

from sensocto_lab.clock import Clock
from sensocto_lab.errors import ConfigError, ValidationError
from sensocto_lab.model import LoadLevel

__all__ = [
    "MEMORY_SCALES",
    "WINDOW_MULTIPLIERS",
    "LoadConfig",
    "LoadMonitor",
    "LoadSample",
    "SystemProbe",
]

#: How much device batch windows (and lens flush intervals) stretch at each load level.
WINDOW_MULTIPLIERS: Mapping[LoadLevel, float] = MappingProxyType(
    {LoadLevel.NORMAL: 1.0, LoadLevel.ELEVATED: 1.5, LoadLevel.HIGH: 2.0, LoadLevel.CRITICAL: 4.0}
)

#: Fraction of the warm/hot ring limits kept in memory at each load level (Sensocto's numbers).
MEMORY_SCALES: Mapping[LoadLevel, float] = MappingProxyType(
    {LoadLevel.NORMAL: 1.0, LoadLevel.ELEVATED: 0.5, LoadLevel.HIGH: 0.2, LoadLevel.CRITICAL: 0.05}
)

_FRACTION_METRICS = ("cpu", "queue_fill", "memory")


@dataclass(frozen=True, slots=True)
class LoadSample:
    """One measurement of how busy the machine is.

    Attributes
    ----------
    cpu
        System CPU busy fraction, 0–1 (psutil's percent / 100).
    loop_lag_s
        How late the engine's event loop ran a timer, in seconds (>= 0).
    queue_fill
        Fill fraction of the engine's bounded queues, 0–1 (e.g. the fullest one).
    memory
        System memory used fraction, 0–1.

    Raises
    ------
    ValidationError
        A metric that is not a finite number, negative, or a fraction above 1 (a percent
        passed by mistake), with reason ``invalid_load_sample``.
    """

    cpu: float
    loop_lag_s: float = 0.0
    queue_fill: float = 0.0
    memory: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValidationError(
                    f"load metric {f.name} must be a finite number >= 0, got {value!r:.40}",
                    reason="invalid_load_sample",
                )
            if f.name in _FRACTION_METRICS and value > 1:
                raise ValidationError(
                    f"load metric {f.name} is a fraction 0-1, got {value} (a percent? divide "
                    "by 100)",
                    reason="invalid_load_sample",
                )


def _check_thresholds(name: str, values: tuple[float, float, float]) -> None:
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"{name} thresholds must be three finite numbers > 0, got {values!r}")
    if not values[0] < values[1] < values[2]:
        raise ConfigError(
            f"{name} thresholds (elevated, high, critical) must increase, got {values!r}"
        )


def _check_per_level(name: str, table: Mapping[LoadLevel, float], decreasing: bool) -> None:
    if set(table) != set(LoadLevel):
        raise ConfigError(f"{name} needs a value for every load level")
    ordered = [table[level] for level in LoadLevel]
    if not all(math.isfinite(v) and v > 0 for v in ordered):
        raise ConfigError(f"{name} values must be finite and > 0")
    pairs = list(itertools.pairwise(ordered))
    if (decreasing and any(a < b for a, b in pairs)) or (
        not decreasing and any(a > b for a, b in pairs)
    ):
        direction = "shrink" if decreasing else "grow"
        raise ConfigError(f"{name} must {direction} with the load level")


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """Thresholds and hysteresis of :class:`LoadMonitor`.

    Attributes
    ----------
    cpu, loop_lag_s, queue_fill, memory
        ``(elevated, high, critical)`` thresholds per metric, in the metric's unit
        (fractions, or seconds for ``loop_lag_s``). A metric at or above a threshold puts
        the sample at that level. Memory starts at 70 % as Sensocto's monitor does.
    rise_samples
        Consecutive samples above the current level needed to go up.
    fall_margin
        Relative margin below a threshold a metric must reach before the level may come
        down (0.1: below 90 % of the threshold).
    fall_time_s
        Seconds (on the clock) every metric must stay below the lowered thresholds before
        the level comes down.
    window_multipliers, memory_scales
        Per-level batch-window stretch and in-memory limit scale.
    """

    cpu: tuple[float, float, float] = (0.75, 0.90, 0.97)
    loop_lag_s: tuple[float, float, float] = (0.05, 0.25, 1.0)
    queue_fill: tuple[float, float, float] = (0.5, 0.75, 0.9)
    memory: tuple[float, float, float] = (0.70, 0.85, 0.95)
    rise_samples: int = 3
    fall_margin: float = 0.1
    fall_time_s: float = 10.0
    window_multipliers: Mapping[LoadLevel, float] = field(
        default_factory=lambda: WINDOW_MULTIPLIERS
    )
    memory_scales: Mapping[LoadLevel, float] = field(default_factory=lambda: MEMORY_SCALES)

    def __post_init__(self) -> None:
        for name in ("cpu", "loop_lag_s", "queue_fill", "memory"):
            _check_thresholds(name, getattr(self, name))
        if not isinstance(self.rise_samples, int) or self.rise_samples < 1:
            raise ConfigError("rise_samples must be an int >= 1")
        if not 0 <= self.fall_margin < 1:
            raise ConfigError("fall_margin must be in [0, 1)")
        if not (math.isfinite(self.fall_time_s) and self.fall_time_s >= 0):
            raise ConfigError("fall_time_s must be >= 0")
        _check_per_level("window_multipliers", self.window_multipliers, decreasing=False)
        _check_per_level("memory_scales", self.memory_scales, decreasing=True)

    def level_of(self, sample: LoadSample, scale: float = 1.0) -> LoadLevel:
        """The worst metric's level, with every threshold multiplied by ``scale``."""
        worst = 0
        for name in ("cpu", "loop_lag_s", "queue_fill", "memory"):
            value = getattr(sample, name)
            crossed = sum(value >= t * scale for t in getattr(self, name))
            worst = max(worst, crossed)
        return LoadLevel(worst)


class LoadMonitor:
    """The system load level, from samples, with hysteresis against flapping.

    Pure policy: no I/O, no asyncio; the engine samples (e.g. with :class:`SystemProbe`
    every second) and calls :meth:`update`.

    Parameters
    ----------
    clock
        Anything with ``monotonic()`` (seconds); the fall time is measured on it.
    config
        Thresholds and hysteresis; defaults to :class:`LoadConfig`.
    """

    def __init__(self, clock: Clock, config: LoadConfig | None = None) -> None:
        self._clock = clock
        self.config = config or LoadConfig()
        self._level = LoadLevel.NORMAL
        self._recent: deque[LoadLevel] = deque(maxlen=self.config.rise_samples)
        self._calm_since: float | None = None
        self._calm_peak = LoadLevel.NORMAL
        self.last_sample: LoadSample | None = None

    @property
    def level(self) -> LoadLevel:
        """The current load level."""
        return self._level

    @property
    def window_multiplier(self) -> float:
        """How much batch windows stretch at the current level (1.0 when normal)."""
        return self.config.window_multipliers[self._level]

    @property
    def memory_scale(self) -> float:
        """Fraction of the in-memory ring limits to keep at the current level."""
        return self.config.memory_scales[self._level]

    def update(self, sample: LoadSample) -> LoadLevel | None:
        """Take one sample; return the new level if it changed, else ``None``.

        Going up: the last ``rise_samples`` samples were all above the current level; the
        new level is the lowest of them (the level that was sustained). Going down: every
        sample for ``fall_time_s`` seconds was below the current level with thresholds
        lowered by ``fall_margin``; the new level is the highest such calm level seen.
        """
        self.last_sample = sample
        raw = self.config.level_of(sample)
        calm = self.config.level_of(sample, scale=1.0 - self.config.fall_margin)
        self._recent.append(raw)
        if len(self._recent) == self._recent.maxlen and min(self._recent) > self._level:
            return self._change(min(self._recent))
        if calm >= self._level:
            self._calm_since = None
            return None
        now = self._clock.monotonic()
        if self._calm_since is None:
            self._calm_since, self._calm_peak = now, calm
        else:
            self._calm_peak = max(self._calm_peak, calm)
        if now - self._calm_since >= self.config.fall_time_s:
            return self._change(self._calm_peak)
        return None

    def _change(self, level: LoadLevel) -> LoadLevel:
        self._level = level
        self._recent.clear()
        self._calm_since = None
        return level


class SystemProbe:
    """Reads system CPU and memory use through psutil (the one place load touches the OS).

    CPU is the busy fraction since the previous call (psutil's non-blocking
    ``cpu_percent(interval=None)``), so call :meth:`sample` at a steady interval.
    """

    def __init__(self) -> None:
        # psutil's first non-blocking reading is meaningless; take it now.
        psutil.cpu_percent(interval=None)

    def sample(self, loop_lag_s: float = 0.0, queue_fill: float = 0.0) -> LoadSample:
        """A :class:`LoadSample` of CPU and memory now plus the engine's own measures."""
        cpu = psutil.cpu_percent(interval=None) / 100.0
        memory = psutil.virtual_memory().percent / 100.0
        return LoadSample(
            cpu=min(cpu, 1.0), loop_lag_s=loop_lag_s, queue_fill=queue_fill, memory=min(memory, 1.0)
        )
