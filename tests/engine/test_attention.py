from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine.attention import (
    SET_EVENT,
    TRANSITIONS,
    AttentionChange,
    AttentionConfig,
    AttentionTracker,
    TierConfig,
    ViewEvent,
    transition,
)
from sensocto_lab.errors import ConfigError, LocalError, ValidationError
from sensocto_lab.model import AttentionLevel, LoadLevel

H, M, L, N = AttentionLevel.HIGH, AttentionLevel.MEDIUM, AttentionLevel.LOW, AttentionLevel.NONE
STATES = (None, N, L, M, H)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(clock: FakeClock) -> AttentionTracker:
    return AttentionTracker(clock)


def _levels(changes: list[AttentionChange]) -> dict[str, tuple[AttentionLevel, AttentionLevel]]:
    return {c.sensor_id: (c.old, c.new) for c in changes}


# -- the transition table ---------------------------------------------------------------------

EXPECTED = {
    ViewEvent.FOCUS: {s: H for s in STATES},
    ViewEvent.VIEW_ENTER: {s: M for s in STATES},
    ViewEvent.VIEW_LEAVE: {s: L for s in STATES},
    ViewEvent.PAGE_HIDDEN: {s: N for s in STATES},
    ViewEvent.FOCUS_EXPIRED: {H: M},
    ViewEvent.REMOVE: {N: None, L: None, M: None, H: None},
}
ALL_PAIRS = [(s, e) for s in STATES for e in ViewEvent]


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=lambda x: str(x))
def test_every_transition_is_as_documented(state: AttentionLevel | None, event: ViewEvent) -> None:
    expected = EXPECTED[event]
    if state in expected:
        assert transition(state, event) == expected[state]
    else:
        with pytest.raises(LocalError) as info:
            transition(state, event)
        assert info.value.reason == "invalid_attention_transition"


def test_table_has_exactly_the_documented_transitions() -> None:
    documented = {(s, e) for e, row in EXPECTED.items() for s in row}
    assert set(TRANSITIONS) == documented


@pytest.mark.parametrize("state", STATES, ids=str)
@pytest.mark.parametrize("level", list(AttentionLevel), ids=str)
def test_tracker_sets_any_level_from_any_state(
    tracker: AttentionTracker, state: AttentionLevel | None, level: AttentionLevel
) -> None:
    if state is not None:
        tracker.set_view("v", "s1", state)
    tracker.set_view("v", "s1", level)
    assert tracker.views("v") == {"s1": level}
    assert tracker.level("s1") == level
    assert SET_EVENT[level] in {e for (s, e) in TRANSITIONS if s == state}


# -- levels over viewers and changes -----------------------------------------------------------


def test_sensor_level_is_max_over_viewers(tracker: AttentionTracker) -> None:
    tracker.set_view("a", "s1", L)
    tracker.set_view("b", "s1", "medium")
    assert tracker.level("s1") == M
    changes = tracker.remove_viewer("b")
    assert _levels(changes) == {"s1": (M, L)}
    assert tracker.level("s1") == L
    assert tracker.level("never-seen") == N


def test_changes_carry_the_recomputed_config(tracker: AttentionTracker) -> None:
    seen: list[list[AttentionChange]] = []
    tracker.on_change = seen.append
    changes = tracker.set_view("v", "s1", H)
    assert changes == seen[0]
    (change,) = changes
    assert (change.old, change.new) == (N, H)
    assert change.config.batch_size == 1
    assert change.config.batch_window_ms == 100
    assert change.config.attention_level == H
    assert "s1" in str(change)
    # The same level again is no change, and on_change is not called.
    assert tracker.set_view("v", "s1", H) == []
    assert len(seen) == 1


def test_new_sensor_at_defaults_reports_nothing(tracker: AttentionTracker) -> None:
    assert tracker.add_sensor("s1") == []
    assert tracker.set_view("v", "s1", N) == []
    assert tracker.backpressure("s1").batch_window_ms == 5000
    assert "s1" in tracker.sensor_ids


def test_bulk_register_and_unregister(tracker: AttentionTracker) -> None:
    sensors = {f"s{i}": M for i in range(100)}
    changes = tracker.set_views("v", sensors)
    assert len(changes) == 100
    assert all((c.old, c.new) == (N, M) for c in changes)
    assert tracker.sensors_at(M) == sorted(sensors)
    changes = tracker.remove_views("v", [f"s{i}" for i in range(50)] + ["unknown"])
    assert len(changes) == 50
    assert all(c.new == N for c in changes)
    assert len(tracker.views("v")) == 50


def test_replace_drops_views_not_listed(tracker: AttentionTracker) -> None:
    tracker.set_views("v", {"s1": H, "s2": M, "s3": L})
    changes = tracker.set_views("v", {"s2": M, "s4": L}, replace=True)
    assert _levels(changes) == {"s1": (H, N), "s3": (L, N), "s4": (N, L)}
    assert tracker.views("v") == {"s2": M, "s4": L}


def test_bad_input_raises_and_changes_nothing(tracker: AttentionTracker) -> None:
    tracker.set_views("v", {"s1": M})
    with pytest.raises(ValidationError) as info:
        tracker.set_views("v", {"s2": H, "s3": "extreme"})
    assert info.value.reason == "invalid_attention_level"
    with pytest.raises(ValidationError):
        tracker.set_views("v", {"bad id!": H})
    with pytest.raises(ValidationError):
        tracker.set_views("", {"s2": H})
    with pytest.raises(ValidationError):
        tracker.set_views("v", ["s2"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        tracker.remove_views("v", "s1")
    with pytest.raises(ValidationError):
        tracker.set_load(7)  # type: ignore[arg-type]
    assert tracker.load == LoadLevel.NORMAL
    assert tracker.views("v") == {"s1": M}
    assert tracker.level("s2") == N


# -- decay and cleanup -------------------------------------------------------------------------


def test_focus_decays_to_medium_unless_reasserted(clock: FakeClock) -> None:
    tracker = AttentionTracker(clock, AttentionConfig(focus_ttl_s=30, viewer_ttl_s=None))
    tracker.set_views("v", {"s1": H, "s2": H})
    assert tracker.next_deadline() == pytest.approx(30)
    clock.advance(20)
    tracker.set_view("v", "s2", H)  # renews the focus on s2 only
    tracker.renew("v")  # a heartbeat does not renew focus
    clock.advance(9.9)
    assert tracker.tick() == []
    clock.advance(0.1)
    assert _levels(tracker.tick()) == {"s1": (H, M)}
    clock.advance(20)
    assert _levels(tracker.tick()) == {"s2": (H, M)}
    assert tracker.views("v") == {"s1": M, "s2": M}
    assert tracker.next_deadline() is None


def test_vanished_viewer_is_cleaned_up(clock: FakeClock) -> None:
    tracker = AttentionTracker(clock, AttentionConfig(focus_ttl_s=None, viewer_ttl_s=60))
    tracker.set_views("alive", {"s1": L})
    tracker.set_views("gone", {"s1": H, "s2": M})
    clock.advance(45)
    tracker.renew("alive")
    clock.advance(15)
    changes = tracker.tick()
    assert _levels(changes) == {"s1": (H, L), "s2": (M, N)}
    assert tracker.viewer_ids == {"alive"}
    clock.advance(45)
    assert _levels(tracker.tick()) == {"s1": (L, N)}
    assert tracker.viewer_ids == frozenset()
    assert tracker.statistics()["views"] == 0


def test_decay_to_removal_when_both_expire(clock: FakeClock) -> None:
    tracker = AttentionTracker(clock, AttentionConfig(focus_ttl_s=30, viewer_ttl_s=60))
    tracker.set_view("v", "s1", H)
    clock.advance(30)
    assert _levels(tracker.tick()) == {"s1": (H, M)}
    clock.advance(30)
    assert _levels(tracker.tick()) == {"s1": (M, N)}


# -- battery and load ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pct", "expected"), [(100, H), (20, H), (19.9, M), (10, M), (9.99, L), (0, L), (None, H)]
)
def test_battery_caps_effective_level(
    tracker: AttentionTracker, pct: float | None, expected: AttentionLevel
) -> None:
    tracker.set_view("v", "s1", H)
    tracker.set_battery("s1", pct)
    assert tracker.level("s1") == expected
    assert tracker.viewed_level("s1") == H
    assert tracker.backpressure("s1").attention_level == expected


def test_battery_change_reports_and_never_raises_level(tracker: AttentionTracker) -> None:
    tracker.set_view("v", "s1", L)
    assert tracker.set_battery("s1", 5) == []  # cap LOW does not change LOW
    tracker.set_view("v", "s1", H)
    assert tracker.level("s1") == L
    assert _levels(tracker.set_battery("s1", 15)) == {"s1": (L, M)}
    assert _levels(tracker.set_battery("s1", None)) == {"s1": (M, H)}


@pytest.mark.parametrize("bad", [-1, 101, float("nan"), "50", True])
def test_bad_battery_is_refused(tracker: AttentionTracker, bad: object) -> None:
    tracker.set_battery("s1", 50)
    with pytest.raises(ValidationError) as info:
        tracker.set_battery("s1", bad)  # type: ignore[arg-type]
    assert info.value.reason == "invalid_battery"
    tracker.set_view("v", "s1", H)
    assert tracker.level("s1") == H


def test_load_stretches_windows_of_every_known_sensor(tracker: AttentionTracker) -> None:
    tracker.add_sensor("idle")
    tracker.set_view("v", "seen", M)
    changes = tracker.set_load(LoadLevel.CRITICAL)
    by_sensor = {c.sensor_id: c for c in changes}
    assert set(by_sensor) == {"idle", "seen"}
    assert by_sensor["idle"].config.batch_window_ms == 20_000
    assert by_sensor["seen"].config.batch_window_ms == 2000
    assert by_sensor["seen"].old == by_sensor["seen"].new == M
    assert by_sensor["seen"].config.load_level == LoadLevel.CRITICAL
    assert tracker.lens_flush_ms(H) == 128
    assert tracker.lens_flush_ms(N) is None
    assert tracker.set_load(LoadLevel.CRITICAL) == []
    tracker.set_load(LoadLevel.ELEVATED)
    assert tracker.backpressure("seen").batch_window_ms == 750


def test_removed_sensor_is_no_longer_signalled(tracker: AttentionTracker) -> None:
    tracker.add_sensor("s1")
    tracker.remove_sensor("s1")
    assert tracker.set_load(LoadLevel.HIGH) == []
    assert "s1" not in tracker.sensor_ids


def test_custom_tiers_and_bad_config() -> None:
    tiers = {H: TierConfig(1, 50, 16), M: TierConfig(5, 200, 50), L: TierConfig(10, 1000, 100)}
    tiers[N] = TierConfig(20, 5000, None)
    tracker = AttentionTracker(FakeClock(), AttentionConfig(tiers=tiers))
    tracker.set_view("v", "s1", H)
    assert tracker.backpressure("s1").batch_window_ms == 50
    with pytest.raises(ConfigError):
        AttentionConfig(tiers={H: TierConfig(1, 50, 16)})
    with pytest.raises(ConfigError):
        AttentionConfig(load_multipliers={level: 0.5 for level in LoadLevel})
    with pytest.raises(ConfigError):
        AttentionConfig(focus_ttl_s=0)
    with pytest.raises(ConfigError):
        TierConfig(0, 100, 32)


# -- the reported changes always add up to the current state ----------------------------------

SENSORS = [f"s{i}" for i in range(4)]
VIEWERS = ["a", "b", "c"]
levels = st.sampled_from(list(AttentionLevel))
operations = st.one_of(
    st.tuples(
        st.just("set"),
        st.sampled_from(VIEWERS),
        st.dictionaries(st.sampled_from(SENSORS), levels, max_size=4),
        st.booleans(),
    ),
    st.tuples(st.just("remove"), st.sampled_from(VIEWERS), st.lists(st.sampled_from(SENSORS))),
    st.tuples(st.just("remove_viewer"), st.sampled_from(VIEWERS)),
    st.tuples(st.just("renew"), st.sampled_from(VIEWERS)),
    st.tuples(st.just("wait"), st.floats(0, 70)),
    st.tuples(st.just("battery"), st.sampled_from(SENSORS), st.none() | st.floats(0, 100)),
    st.tuples(st.just("load"), st.sampled_from(list(LoadLevel))),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(operations, max_size=40))
def test_changes_replay_to_the_current_state(ops: list[tuple]) -> None:
    clock = FakeClock()
    tracker = AttentionTracker(clock)
    for sensor in SENSORS:
        tracker.add_sensor(sensor)

    def key(config: object) -> tuple:
        return (
            config.attention_level,  # type: ignore[attr-defined]
            config.batch_window_ms,  # type: ignore[attr-defined]
            config.batch_size,  # type: ignore[attr-defined]
            config.load_level,  # type: ignore[attr-defined]
        )

    # What each device was told: on join, then every change.
    told = {s: key(tracker.backpressure(s)) for s in SENSORS}
    battery: dict[str, float | None] = {}
    for op in ops:
        match op:
            case ("set", viewer, views, replace):
                changes = tracker.set_views(viewer, views, replace=replace)
            case ("remove", viewer, sensors):
                changes = tracker.remove_views(viewer, sensors)
            case ("remove_viewer", viewer):
                changes = tracker.remove_viewer(viewer)
            case ("renew", viewer):
                changes = tracker.renew(viewer)
            case ("wait", seconds):
                clock.advance(seconds)
                changes = tracker.tick()
            case ("battery", sensor, pct):
                battery[sensor] = pct
                changes = tracker.set_battery(sensor, pct)
            case ("load", load):
                changes = tracker.set_load(load)
        for change in changes:
            assert told[change.sensor_id] != key(change.config)
            assert told[change.sensor_id][0] == change.old
            told[change.sensor_id] = key(change.config)
        for sensor in SENSORS:
            assert told[sensor] == key(tracker.backpressure(sensor))
            viewed = max(
                (tracker.views(v).get(sensor, AttentionLevel.NONE) for v in VIEWERS),
                default=AttentionLevel.NONE,
            )
            cap = tracker.config.battery_cap(battery.get(sensor))
            assert tracker.level(sensor) == min(viewed, cap)
