from __future__ import annotations

import pytest

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine.load import LoadConfig, LoadMonitor, LoadSample, SystemProbe
from sensocto_lab.errors import ConfigError, ValidationError
from sensocto_lab.model import LoadLevel

CALM = LoadSample(cpu=0.2, loop_lag_s=0.001, queue_fill=0.0, memory=0.3)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _feed(
    monitor: LoadMonitor, clock: FakeClock, sample: LoadSample, n: int, every: float = 1.0
) -> list[LoadLevel]:
    """Give ``n`` samples ``every`` seconds apart; the level changes they caused."""
    changes = []
    for _ in range(n):
        change = monitor.update(sample)
        if change is not None:
            changes.append(change)
        clock.advance(every)
    return changes


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (CALM, LoadLevel.NORMAL),
        (LoadSample(cpu=0.80), LoadLevel.ELEVATED),
        (LoadSample(cpu=0.2, loop_lag_s=0.3), LoadLevel.HIGH),
        (LoadSample(cpu=0.2, queue_fill=0.95), LoadLevel.CRITICAL),
        (LoadSample(cpu=0.2, memory=0.72), LoadLevel.ELEVATED),
        (LoadSample(cpu=0.91, memory=0.96), LoadLevel.CRITICAL),  # the worst metric wins
    ],
)
def test_level_is_the_worst_metric(sample: LoadSample, expected: LoadLevel) -> None:
    assert LoadConfig().level_of(sample) == expected


def test_rises_after_rise_samples_and_exposes_scales(clock: FakeClock) -> None:
    monitor = LoadMonitor(clock, LoadConfig(rise_samples=3))
    busy = LoadSample(cpu=0.92)
    assert monitor.update(busy) is None
    assert monitor.update(busy) is None
    assert monitor.update(busy) == LoadLevel.HIGH
    assert monitor.level == LoadLevel.HIGH
    assert monitor.window_multiplier == 2.0
    assert monitor.memory_scale == 0.2
    assert monitor.last_sample == busy


def test_rise_goes_to_the_sustained_level(clock: FakeClock) -> None:
    monitor = LoadMonitor(clock, LoadConfig(rise_samples=3))
    changes = _feed(monitor, clock, LoadSample(cpu=0.99), 2)
    changes += _feed(monitor, clock, LoadSample(cpu=0.8), 1)
    assert changes == [LoadLevel.ELEVATED]


def test_spike_shorter_than_rise_samples_is_ignored(clock: FakeClock) -> None:
    monitor = LoadMonitor(clock, LoadConfig(rise_samples=3))
    for _ in range(10):
        assert _feed(monitor, clock, LoadSample(cpu=0.99), 2) == []
        assert _feed(monitor, clock, CALM, 1) == []
    assert monitor.level == LoadLevel.NORMAL


def test_falls_only_after_fall_time_below_margin(clock: FakeClock) -> None:
    monitor = LoadMonitor(clock, LoadConfig(rise_samples=1, fall_margin=0.1, fall_time_s=10))
    assert monitor.update(LoadSample(cpu=0.98)) == LoadLevel.CRITICAL
    # 9.5 s calm is not enough...
    assert _feed(monitor, clock, CALM, 10, every=0.95) == []
    # ...and one sample back above the lowered threshold restarts the wait.
    assert monitor.update(LoadSample(cpu=0.96)) is None
    assert _feed(monitor, clock, CALM, 10, every=1.0) == []
    assert monitor.update(CALM) == LoadLevel.NORMAL
    assert monitor.window_multiplier == 1.0
    assert monitor.memory_scale == 1.0


def test_falls_to_the_highest_calm_level_seen(clock: FakeClock) -> None:
    monitor = LoadMonitor(clock, LoadConfig(rise_samples=1, fall_time_s=5))
    monitor.update(LoadSample(cpu=0.98))
    changes = _feed(monitor, clock, LoadSample(cpu=0.80), 3) + _feed(monitor, clock, CALM, 3)
    assert changes == [LoadLevel.ELEVATED]


def test_no_flapping_around_a_threshold(clock: FakeClock) -> None:
    monitor = LoadMonitor(clock, LoadConfig(rise_samples=3, fall_margin=0.1, fall_time_s=10))
    # Settle at ELEVATED, then hover just around the 0.75 threshold for ten minutes.
    _feed(monitor, clock, LoadSample(cpu=0.8), 3)
    assert monitor.level == LoadLevel.ELEVATED
    changes = []
    for i in range(600):
        cpu = 0.76 if i % 2 else 0.74
        changes += _feed(monitor, clock, LoadSample(cpu=cpu), 1)
    assert changes == []
    # From NORMAL, the same hovering (never 3 in a row above) does not rise either.
    fresh = LoadMonitor(clock, LoadConfig(rise_samples=3))
    for i in range(600):
        assert fresh.update(LoadSample(cpu=0.76 if i % 2 else 0.74)) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cpu": 85.0},
        {"cpu": -0.1},
        {"cpu": float("nan")},
        {"cpu": 0.1, "loop_lag_s": float("inf")},
        {"cpu": 0.1, "memory": 1.5},
        {"cpu": "0.5"},
        {"cpu": True},
    ],
)
def test_bad_samples_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        LoadSample(**kwargs)  # type: ignore[arg-type]
    assert info.value.reason == "invalid_load_sample"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cpu": (0.9, 0.8, 0.95)},
        {"memory": (0.5, 0.6)},
        {"rise_samples": 0},
        {"fall_margin": 1.0},
        {"fall_time_s": -1.0},
        {"window_multipliers": {level: 1.0 for level in list(LoadLevel)[:3]}},
        {"memory_scales": dict(zip(LoadLevel, (0.05, 0.2, 0.5, 1.0), strict=True))},
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        LoadConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.reason == "invalid_config"


def test_system_probe_reads_real_fractions() -> None:
    probe = SystemProbe()
    sample = probe.sample(loop_lag_s=0.002, queue_fill=0.25)
    assert 0.0 <= sample.cpu <= 1.0
    assert 0.0 < sample.memory <= 1.0
    assert (sample.loop_lag_s, sample.queue_fill) == (0.002, 0.25)
