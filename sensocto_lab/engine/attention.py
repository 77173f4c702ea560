"""Who is watching which sensor, how closely, and what that means for batching.

:class:`AttentionTracker` is pure policy (no asyncio, no I/O; time comes from an injected
clock). Viewers (dashboard sessions, notebook widgets, remote lenses) declare a level per
sensor; a sensor's level is the highest over its viewers (docs/architecture.md#attention),
capped by its
battery, and its :class:`~sensocto_lab.model.BackpressureConfig` follows from the level
and the system load.

Attention has **no data path**: it only decides how often devices are asked to send and
viewers are flushed. It never sees, delays or drops a sample; everything a device sends is
recorded whatever the level.

Level transitions of one (viewer, sensor) view are a table, :data:`TRANSITIONS`::

    state \\ event   FOCUS  VIEW_ENTER  VIEW_LEAVE  PAGE_HIDDEN  FOCUS_EXPIRED  REMOVE
    (no view)       HIGH   MEDIUM      LOW         NONE         -              -
    NONE            HIGH   MEDIUM      LOW         NONE         -              (no view)
    LOW             HIGH   MEDIUM      LOW         NONE         -              (no view)
    MEDIUM          HIGH   MEDIUM      LOW         NONE         -              (no view)
    HIGH            HIGH   MEDIUM      LOW         NONE         MEDIUM         (no view)

``-`` is an illegal transition (a bug) and raises. Decay: a HIGH view that is not
re-asserted within ``focus_ttl_s`` gets ``FOCUS_EXPIRED``; a viewer not renewed within
``viewer_ttl_s`` is removed with all its views. :meth:`AttentionTracker.tick` applies both.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sensocto_lab.clock import Clock
from sensocto_lab.engine.load import WINDOW_MULTIPLIERS
from sensocto_lab.errors import ConfigError, LocalError, ValidationError
from sensocto_lab.model import AttentionLevel, BackpressureConfig, LoadLevel, check_id

__all__ = [
    "DEFAULT_TIERS",
    "SET_EVENT",
    "TRANSITIONS",
    "AttentionChange",
    "AttentionConfig",
    "AttentionTracker",
    "TierConfig",
    "ViewEvent",
    "transition",
]


class ViewEvent(enum.Enum):
    """What can happen to one viewer's view of one sensor."""

    FOCUS = "focus"  # pointer on the card, or pinned: HIGH
    VIEW_ENTER = "view_enter"  # the card is in the viewport: MEDIUM
    VIEW_LEAVE = "view_leave"  # loaded but scrolled out: LOW
    PAGE_HIDDEN = "page_hidden"  # the tab is hidden: NONE
    FOCUS_EXPIRED = "focus_expired"  # a focus was not renewed in time
    REMOVE = "remove"  # the view is gone (unregistered, or its viewer vanished)


#: The event that sets a view to each level.
SET_EVENT: Mapping[AttentionLevel, ViewEvent] = MappingProxyType(
    {
        AttentionLevel.HIGH: ViewEvent.FOCUS,
        AttentionLevel.MEDIUM: ViewEvent.VIEW_ENTER,
        AttentionLevel.LOW: ViewEvent.VIEW_LEAVE,
        AttentionLevel.NONE: ViewEvent.PAGE_HIDDEN,
    }
)

#: A view's state: its level, or ``None`` when there is no view.
ViewState = AttentionLevel | None

_STATES: tuple[ViewState, ...] = (None, *AttentionLevel)

#: (state, event) -> next state; pairs not listed are illegal.
TRANSITIONS: Mapping[tuple[ViewState, ViewEvent], ViewState] = MappingProxyType(
    {
        # Setting a level is legal from any state, including no view (registration).
        **{(s, SET_EVENT[level]): level for s in _STATES for level in AttentionLevel},
        (AttentionLevel.HIGH, ViewEvent.FOCUS_EXPIRED): AttentionLevel.MEDIUM,
        **{(level, ViewEvent.REMOVE): None for level in AttentionLevel},
    }
)


def transition(state: ViewState, event: ViewEvent) -> ViewState:
    """The next state of a view, per :data:`TRANSITIONS`.

    Raises
    ------
    LocalError
        ``invalid_attention_transition``: the tracker applied an event that cannot happen
        in ``state`` (a bug in the caller, not bad input).
    """
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        name = "no view" if state is None else state.label
        raise LocalError(
            f"attention event {event.value} cannot happen to a view at {name}",
            reason="invalid_attention_transition",
        ) from None


@dataclass(frozen=True, slots=True)
class TierConfig:
    """Batching at one attention level (docs/architecture.md#attention).

    Attributes
    ----------
    batch_size
        Samples a device gathers before sending.
    batch_window_ms
        Longest a device holds samples, in ms, before load stretching.
    lens_flush_ms
        How often a viewer's lens flushes, in ms; ``None``: buffer only, never flush.
    """

    batch_size: int
    batch_window_ms: int
    lens_flush_ms: int | None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.batch_window_ms < 1:
            raise ConfigError("batch_size and batch_window_ms must be >= 1")
        if self.lens_flush_ms is not None and self.lens_flush_ms < 1:
            raise ConfigError("lens_flush_ms must be >= 1 or None")


#: Sensocto's numbers: what its channel sends in ``backpressure_config`` and its lens tiers.
DEFAULT_TIERS: Mapping[AttentionLevel, TierConfig] = MappingProxyType(
    {
        AttentionLevel.HIGH: TierConfig(1, 100, 32),
        AttentionLevel.MEDIUM: TierConfig(5, 500, 50),
        AttentionLevel.LOW: TierConfig(10, 2000, 100),
        AttentionLevel.NONE: TierConfig(20, 5000, None),
    }
)


@dataclass(frozen=True, slots=True)
class AttentionConfig:
    """Policy of :class:`AttentionTracker`.

    Attributes
    ----------
    tiers
        Batching per attention level.
    load_multipliers
        Factor by which batch windows and lens flush intervals stretch per load level.
    battery_caps
        ``(below_pct, max_level)`` pairs: a sensor whose battery is below ``below_pct``
        percent is at most ``max_level``; the strictest cap that applies wins.
    focus_ttl_s
        Seconds a HIGH view lasts unless re-asserted; then it drops to MEDIUM. ``None``
        disables focus decay.
    viewer_ttl_s
        Seconds a viewer lasts without any call about it (set or renew); then it and its
        views are removed. ``None`` disables the cleanup.
    """

    tiers: Mapping[AttentionLevel, TierConfig] = field(default_factory=lambda: DEFAULT_TIERS)
    load_multipliers: Mapping[LoadLevel, float] = field(default_factory=lambda: WINDOW_MULTIPLIERS)
    battery_caps: tuple[tuple[float, AttentionLevel], ...] = (
        (20.0, AttentionLevel.MEDIUM),
        (10.0, AttentionLevel.LOW),
    )
    focus_ttl_s: float | None = 30.0
    viewer_ttl_s: float | None = 60.0

    def __post_init__(self) -> None:
        if set(self.tiers) != set(AttentionLevel):
            raise ConfigError("tiers needs a TierConfig for every level")
        if set(self.load_multipliers) != set(LoadLevel) or not all(
            math.isfinite(m) and m >= 1 for m in self.load_multipliers.values()
        ):
            raise ConfigError("load_multipliers needs a finite factor >= 1 for every load level")
        for below, _ in self.battery_caps:
            if not 0 < below <= 100:
                raise ConfigError(f"battery cap threshold must be in (0, 100] %, got {below}")
        for name in ("focus_ttl_s", "viewer_ttl_s"):
            ttl = getattr(self, name)
            if ttl is not None and not (math.isfinite(ttl) and ttl > 0):
                raise ConfigError(f"{name} must be > 0 or None")

    def battery_cap(self, pct: float | None) -> AttentionLevel:
        """The highest level a sensor with ``pct`` % battery may have (HIGH if unknown)."""
        cap = AttentionLevel.HIGH
        if pct is None:
            return cap
        for below, level in self.battery_caps:
            if pct < below:
                cap = min(cap, level)
        return cap


@dataclass(frozen=True, slots=True)
class AttentionChange:
    """A sensor whose effective level or backpressure config changed.

    ``old`` and ``new`` are equal when only the config changed (e.g. the load level).
    """

    sensor_id: str
    old: AttentionLevel
    new: AttentionLevel
    config: BackpressureConfig

    def __str__(self) -> str:
        return (
            f"AttentionChange({self.sensor_id}: {self.old.label} -> {self.new.label}, "
            f"window={self.config.batch_window_ms}ms, size={self.config.batch_size})"
        )


@dataclass(slots=True)
class _Viewer:
    last_seen: float
    views: dict[str, AttentionLevel] = field(default_factory=dict)
    focused_at: dict[str, float] = field(default_factory=dict)


def _parse_views(views: Mapping[str, object]) -> dict[str, AttentionLevel]:
    if not isinstance(views, Mapping):
        raise ValidationError(
            f"views must be a mapping of sensor id to level, got {type(views).__name__}",
            reason="invalid_views",
        )
    return {check_id(s, "sensor_id"): AttentionLevel.parse(lvl) for s, lvl in views.items()}


class AttentionTracker:
    """Viewer → sensor attention levels, their decay, and the resulting back-pressure.

    Every mutating call validates its whole input first (bad input raises
    :class:`~sensocto_lab.errors.ValidationError` and changes nothing), then recomputes
    the affected sensors and returns an :class:`AttentionChange` for each sensor whose
    effective level or backpressure config changed; the same list goes to ``on_change``.

    A sensor is *known* once it is added, viewed, or given a battery level; known sensors
    get a change when the load level stretches their window.

    Parameters
    ----------
    clock
        Anything with ``monotonic()`` (seconds, for decay) and ``time_ns()`` (for the
        config's timestamp).
    config
        The policy; defaults to :class:`AttentionConfig`.
    on_change
        Called with the (non-empty) list of changes after each mutation.
    """

    def __init__(
        self,
        clock: Clock,
        config: AttentionConfig | None = None,
        on_change: Callable[[list[AttentionChange]], None] | None = None,
    ) -> None:
        self._clock = clock
        self.config = config or AttentionConfig()
        self.on_change = on_change
        self._viewers: dict[str, _Viewer] = {}
        self._viewers_of: dict[str, dict[str, AttentionLevel]] = {}
        self._battery: dict[str, float] = {}
        self._registered: set[str] = set()
        self._load = LoadLevel.NORMAL
        # What was last reported per sensor: (level, window_ms, size, load).
        self._reported: dict[str, tuple[AttentionLevel, int, int, LoadLevel]] = {}

    # -- queries ---------------------------------------------------------------------------

    @property
    def load(self) -> LoadLevel:
        """The load level windows are currently stretched for."""
        return self._load

    @property
    def viewer_ids(self) -> frozenset[str]:
        """Viewers currently tracked."""
        return frozenset(self._viewers)

    @property
    def sensor_ids(self) -> frozenset[str]:
        """Every known sensor (added, viewed, or with a battery level)."""
        return frozenset(self._registered | self._viewers_of.keys() | self._battery.keys())

    def views(self, viewer_id: str) -> Mapping[str, AttentionLevel]:
        """A viewer's views, sensor → level (empty for an unknown viewer)."""
        viewer = self._viewers.get(viewer_id)
        return MappingProxyType(dict(viewer.views)) if viewer else MappingProxyType({})

    def viewed_level(self, sensor_id: str) -> AttentionLevel:
        """The highest level over a sensor's viewers, before the battery cap."""
        return max(self._viewers_of.get(sensor_id, {}).values(), default=AttentionLevel.NONE)

    def level(self, sensor_id: str) -> AttentionLevel:
        """A sensor's effective level: highest over its viewers, capped by its battery."""
        return min(
            self.viewed_level(sensor_id), self.config.battery_cap(self._battery.get(sensor_id))
        )

    def sensors_at(self, level: AttentionLevel) -> list[str]:
        """Known sensors whose effective level is ``level``."""
        return sorted(s for s in self.sensor_ids if self.level(s) == level)

    def lens_flush_ms(self, level: AttentionLevel) -> int | None:
        """A lens's flush interval at ``level`` in ms, stretched by load; ``None``: no flush."""
        base = self.config.tiers[level].lens_flush_ms
        return None if base is None else round(base * self.config.load_multipliers[self._load])

    def backpressure(self, sensor_id: str) -> BackpressureConfig:
        """What the sensor's device should be told now (its ``backpressure_config``)."""
        level = self.level(sensor_id)
        tier = self.config.tiers[level]
        return BackpressureConfig(
            attention_level=level,
            batch_window_ms=round(tier.batch_window_ms * self.config.load_multipliers[self._load]),
            batch_size=tier.batch_size,
            timestamp_ms=self._clock.time_ns() // 1_000_000,
            load_level=self._load,
        )

    def next_deadline(self) -> float | None:
        """Monotonic time of the next focus expiry or viewer timeout, or ``None``.

        The engine can sleep until then and call :meth:`tick`.
        """
        deadlines: list[float] = []
        for viewer in self._viewers.values():
            if self.config.viewer_ttl_s is not None:
                deadlines.append(viewer.last_seen + self.config.viewer_ttl_s)
            if self.config.focus_ttl_s is not None and viewer.focused_at:
                deadlines.append(min(viewer.focused_at.values()) + self.config.focus_ttl_s)
        return min(deadlines, default=None)

    def statistics(self) -> dict[str, int]:
        """Counts for /health: viewers, views, known sensors, sensors per level."""
        counts = {f"sensors_{lvl.label}": 0 for lvl in AttentionLevel}
        for sensor in self.sensor_ids:
            counts[f"sensors_{self.level(sensor).label}"] += 1
        return {
            "viewers": len(self._viewers),
            "views": sum(len(v.views) for v in self._viewers.values()),
            "sensors": len(self.sensor_ids),
            **counts,
        }

    # -- mutations -------------------------------------------------------------------------

    def add_sensor(self, sensor_id: str) -> list[AttentionChange]:
        """Make a sensor known (so load changes reach it); returns changes (usually none)."""
        self._registered.add(check_id(sensor_id, "sensor_id"))
        return self._commit([sensor_id])

    def remove_sensor(self, sensor_id: str) -> list[AttentionChange]:
        """Forget a sensor's registration and battery; viewers' views of it stay theirs."""
        self._registered.discard(sensor_id)
        self._battery.pop(sensor_id, None)
        return self._commit([sensor_id])

    def set_views(
        self, viewer_id: str, views: Mapping[str, object], *, replace: bool = False
    ) -> list[AttentionChange]:
        """Register or update many views of one viewer in one call, and renew the viewer.

        Parameters
        ----------
        viewer_id
            Who is watching.
        views
            sensor id → level (an :class:`AttentionLevel`, its wire name, or 0–3).
            Setting HIGH again renews that focus.
        replace
            Drop the viewer's views of sensors not in ``views``.
        """
        check_id(viewer_id, "viewer_id")
        parsed = _parse_views(views)
        now = self._clock.monotonic()
        viewer = self._viewers.setdefault(viewer_id, _Viewer(last_seen=now))
        viewer.last_seen = now
        touched = list(parsed)
        if replace:
            gone = [s for s in viewer.views if s not in parsed]
            for sensor in gone:
                self._apply(viewer_id, viewer, sensor, ViewEvent.REMOVE)
            touched.extend(gone)
        for sensor, level in parsed.items():
            self._apply(viewer_id, viewer, sensor, SET_EVENT[level])
            if level == AttentionLevel.HIGH:
                viewer.focused_at[sensor] = now
        return self._commit(touched)

    def set_view(self, viewer_id: str, sensor_id: str, level: object) -> list[AttentionChange]:
        """Set one view (see :meth:`set_views`)."""
        return self.set_views(viewer_id, {sensor_id: level})

    def remove_views(self, viewer_id: str, sensor_ids: Iterable[str]) -> list[AttentionChange]:
        """Drop some of a viewer's views (unknown ones are ignored) and renew the viewer."""
        if isinstance(sensor_ids, str):
            raise ValidationError(
                "sensor_ids must be a collection of ids, not one string",
                reason="invalid_views",
            )
        viewer = self._viewers.get(viewer_id)
        if viewer is None:
            return []
        viewer.last_seen = self._clock.monotonic()
        gone = [s for s in dict.fromkeys(sensor_ids) if s in viewer.views]
        for sensor in gone:
            self._apply(viewer_id, viewer, sensor, ViewEvent.REMOVE)
        return self._commit(gone)

    def remove_view(self, viewer_id: str, sensor_id: str) -> list[AttentionChange]:
        """Drop one view (see :meth:`remove_views`)."""
        return self.remove_views(viewer_id, [sensor_id])

    def remove_viewer(self, viewer_id: str) -> list[AttentionChange]:
        """Forget a viewer and all its views (unknown viewers are ignored)."""
        viewer = self._viewers.pop(viewer_id, None)
        if viewer is None:
            return []
        gone = list(viewer.views)
        for sensor in gone:
            self._apply(viewer_id, viewer, sensor, ViewEvent.REMOVE)
        return self._commit(gone)

    def renew(self, viewer_id: str) -> list[AttentionChange]:
        """Keep a viewer alive (a heartbeat). Does not renew its focus; returns ``[]``.

        A focus is renewed only by setting HIGH again, so a tab left open on a pinned
        card still decays once its owner stops interacting.
        """
        viewer = self._viewers.get(viewer_id)
        if viewer is not None:
            viewer.last_seen = self._clock.monotonic()
        return []

    def tick(self) -> list[AttentionChange]:
        """Apply decay at the clock's now: expire unrenewed focus, remove vanished viewers."""
        now = self._clock.monotonic()
        touched: list[str] = []
        focus_ttl, viewer_ttl = self.config.focus_ttl_s, self.config.viewer_ttl_s
        for viewer_id, viewer in list(self._viewers.items()):
            if viewer_ttl is not None and now - viewer.last_seen >= viewer_ttl:
                del self._viewers[viewer_id]
                for sensor in list(viewer.views):
                    self._apply(viewer_id, viewer, sensor, ViewEvent.REMOVE)
                    touched.append(sensor)
                continue
            if focus_ttl is None:
                continue
            for sensor, since in list(viewer.focused_at.items()):
                if now - since >= focus_ttl:
                    self._apply(viewer_id, viewer, sensor, ViewEvent.FOCUS_EXPIRED)
                    touched.append(sensor)
        return self._commit(touched)

    def set_battery(self, sensor_id: str, pct: float | None) -> list[AttentionChange]:
        """Record a sensor's battery level in percent (0–100), or ``None`` for unknown."""
        check_id(sensor_id, "sensor_id")
        if pct is None:
            self._battery.pop(sensor_id, None)
        else:
            if (
                not isinstance(pct, int | float)
                or isinstance(pct, bool)
                or not (math.isfinite(pct) and 0 <= pct <= 100)
            ):
                raise ValidationError(
                    f"battery level must be a percentage 0-100, got {pct!r:.40}",
                    reason="invalid_battery",
                )
            self._battery[sensor_id] = float(pct)
        return self._commit([sensor_id])

    def set_load(self, load: LoadLevel) -> list[AttentionChange]:
        """Stretch every known sensor's window for the system ``load`` level."""
        if not isinstance(load, LoadLevel):
            raise ValidationError(
                f"load must be a LoadLevel, got {load!r:.40}", reason="invalid_load_level"
            )
        self._load = load
        return self._commit(self.sensor_ids)

    # -- internals -------------------------------------------------------------------------

    def _apply(self, viewer_id: str, viewer: _Viewer, sensor: str, event: ViewEvent) -> None:
        new = transition(viewer.views.get(sensor), event)
        if new != AttentionLevel.HIGH:
            viewer.focused_at.pop(sensor, None)
        if new is None:
            viewer.views.pop(sensor, None)
            by_viewer = self._viewers_of.get(sensor, {})
            by_viewer.pop(viewer_id, None)
            if not by_viewer:
                self._viewers_of.pop(sensor, None)
        else:
            viewer.views[sensor] = new
            self._viewers_of.setdefault(sensor, {})[viewer_id] = new

    def _commit(self, sensors: Iterable[str]) -> list[AttentionChange]:
        changes: list[AttentionChange] = []
        for sensor in sorted(set(sensors)):
            config = self.backpressure(sensor)
            key = (config.attention_level, config.batch_window_ms, config.batch_size, self._load)
            # A sensor never reported before was told the defaults (no viewer) on join.
            previous = self._reported.get(sensor, self._initial_key())
            if self._is_known(sensor):
                self._reported[sensor] = key
            else:
                self._reported.pop(sensor, None)
            if previous != key:
                changes.append(AttentionChange(sensor, previous[0], key[0], config))
        if changes and self.on_change is not None:
            self.on_change(changes)
        return changes

    def _is_known(self, sensor_id: str) -> bool:
        return (
            sensor_id in self._registered
            or sensor_id in self._viewers_of
            or sensor_id in self._battery
        )

    def _initial_key(self) -> tuple[AttentionLevel, int, int, LoadLevel]:
        tier = self.config.tiers[AttentionLevel.NONE]
        window = round(tier.batch_window_ms * self.config.load_multipliers[self._load])
        return (AttentionLevel.NONE, window, tier.batch_size, self._load)
