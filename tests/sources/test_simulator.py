from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import find_peaks

from sensocto_lab.errors import ConfigError, ValidationError
from sensocto_lab.model import Batch, resolve_kind
from sensocto_lab.sources.simulator import GroupSimulator, SimConfig, SimStep
from sensocto_lab.sources.waveforms import breath_shape

T0 = 1_767_225_600 * 10**9
RATES = {"respiration": 20.0, "hr": 1.0, "ecg": 130.0, "accelerometer": 50.0, "battery": 1 / 60}


def _run(sim: GroupSimulator, seconds: float, dt: float = 0.5) -> list[SimStep]:
    return [sim.step(dt) for _ in range(round(seconds / dt))]


def _collect(steps: list[SimStep], attribute: str, i: int = 0) -> tuple[np.ndarray, np.ndarray]:
    sensor = f"sim-sim-{i}"
    found = [b for s in steps for b in s.select(attribute) if b.sensor_id == sensor]
    return np.concatenate([b.ts for b in found]), np.concatenate([b.values for b in found])


def _phase_record(steps: list[SimStep]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([s.phase_ts for s in steps]), np.concatenate([s.phase for s in steps])


def test_rates_are_exact_over_irregular_steps() -> None:
    sim = GroupSimulator(3, seed=4, start_ns=T0)
    rng = np.random.default_rng(0)
    steps = []
    while sim.now_ns - T0 < 130 * 10**9:
        steps.append(sim.step(float(rng.uniform(0.003, 0.7))))
    span_ns = sim.now_ns - T0
    for attribute, rate in RATES.items():
        for i in range(3):
            ts, _ = _collect(steps, attribute, i)
            period = 1e9 / rate
            expected_n = math.floor(span_ns / period) + 1
            assert len(ts) == expected_n, attribute
            k = np.arange(expected_n)
            assert np.array_equal(ts, T0 + np.round(k * period).astype(np.int64)), attribute


def test_batches_are_valid_for_their_kinds() -> None:
    sim = GroupSimulator(4, seed=1, start_ns=T0)
    steps = _run(sim, 61, dt=0.25)
    seen = set()
    for batch in (b for s in steps for b in s.batches):
        kind = resolve_kind(batch.attribute_id)
        checked = batch.validated(kind)
        assert checked.values.shape[0] == len(batch)
        seen.add((batch.sensor_id, kind.name))
    infos = sim.sensor_infos()
    assert [s.sensor_id for s in infos] == [f"sim-sim-{i}" for i in range(4)]
    expected = {"respiration", "hr", "rr", "ecg", "accelerometer", "battery"}
    for info in infos:
        assert set(info.attributes) == expected
        assert info.room == "sim"
        assert {k for s, k in seen if s == info.sensor_id} == expected
    assert infos[0].attributes["ecg"].effective_rate_hz == 130.0


def test_phase_record_is_aligned_with_respiration() -> None:
    sim = GroupSimulator(5, seed=2, start_ns=T0)
    steps = _run(sim, 60, dt=0.3)
    phase_ts, phase = _phase_record(steps)
    for i in range(5):
        ts, resp = _collect(steps, "respiration", i)
        assert np.array_equal(ts, phase_ts)
        shape = breath_shape(phase[:, i], sim.config.inhale_fraction)
        assert np.corrcoef(shape, resp)[0, 1] > 0.9
    # The final record row is the simulator's current phase when a step ends on a sample.
    assert phase_ts[-1] == sim.now_ns
    np.testing.assert_allclose(phase[-1], sim.true_phases_unwrapped)
    np.testing.assert_allclose(np.mod(phase[-1], 2 * np.pi), sim.true_phases)
    assert steps[-1].order_parameter()[-1] == pytest.approx(sim.true_order_parameter())
    assert np.all((sim.true_phases >= 0) & (sim.true_phases < 2 * np.pi))


@pytest.mark.parametrize("seed", [0, 1])
def test_uncoupled_group_stays_incoherent(seed: int) -> None:
    sim = GroupSimulator(16, coupling=0.0, seed=seed, start_ns=T0)
    steps = _run(sim, 240, dt=2.0)
    _, phase = _phase_record(steps)
    r = np.abs(np.exp(1j * phase).mean(axis=1))
    assert r.mean() < 0.4


def test_strong_coupling_synchronises_after_transients_and_live_change() -> None:
    sim = GroupSimulator(16, coupling=0.0, seed=3, start_ns=T0)
    _run(sim, 30, dt=1.0)
    assert sim.true_order_parameter() < 0.6
    sim.set_coupling(2.0)
    assert sim.coupling == 2.0
    _run(sim, 60, dt=1.0)  # transients
    steps = _run(sim, 60, dt=1.0)
    _, phase = _phase_record(steps)
    r = np.abs(np.exp(1j * phase).mean(axis=1))
    assert r.min() > 0.9
    # Locked oscillators share one frequency: the group's mean rate.
    rates = (phase[-1] - phase[0]) / (2 * np.pi * 59.95)
    assert np.ptp(rates) < 0.01


def _rsa_swing(hr: np.ndarray, theta: np.ndarray) -> float:
    """Mean HR near the breath peak minus mean HR mid-exhale, bpm."""
    return float(hr[np.cos(theta) > 0.5].mean() - hr[np.cos(theta) < -0.5].mean())


def test_rsa_heart_rate_follows_breathing_phase() -> None:
    sim = GroupSimulator(4, coupling=0.0, seed=5, start_ns=T0)
    steps = _run(sim, 180, dt=0.5)
    phase_ts, phase = _phase_record(steps)
    for i in range(4):
        # Beat-to-beat rate from the RR events, against the breathing phase at each beat.
        beat_ts, rr_ms = _collect(steps, "rr", i)
        inst_hr = 60_000.0 / rr_ms[1:]
        theta = np.interp((beat_ts[1:] + beat_ts[:-1]) / 2, phase_ts, phase[:, i])
        assert _rsa_swing(inst_hr, theta) > 2.0  # bpm; rsa_bpm=5 gives ~5-11
        assert np.corrcoef(inst_hr, np.cos(theta))[0, 1] > 0.5
        # A breathing phase from another participant shows no such swing.
        other = np.interp((beat_ts[1:] + beat_ts[:-1]) / 2, phase_ts, phase[:, (i + 1) % 4])
        assert abs(_rsa_swing(inst_hr, other)) < _rsa_swing(inst_hr, theta) / 2
        # The 1 Hz HR carries the same modulation.
        hr_ts, hr = _collect(steps, "hr", i)
        assert _rsa_swing(hr, np.interp(hr_ts, phase_ts, phase[:, i])) > 2.0
        assert 40 < hr.mean() < 130
        # RR intervals match the beat spacing.
        np.testing.assert_allclose(rr_ms[1:], np.diff(beat_ts) / 1e6, atol=1e-3)


@pytest.mark.parametrize(
    ("noise_mv", "tolerance_samples"),
    [(0.0, 1.0), (SimConfig().ecg_noise_mv, 2.0)],  # noise can move a peak by a sample
)
def test_ecg_r_peaks_sit_on_the_rr_beats(noise_mv: float, tolerance_samples: float) -> None:
    config = SimConfig(ecg_hz=250.0, ecg_noise_mv=noise_mv)
    sim = GroupSimulator(3, seed=6, start_ns=T0, config=config)
    steps = _run(sim, 60, dt=0.2)
    for i in range(3):
        ts, ecg = _collect(steps, "ecg", i)
        beat_ts, _ = _collect(steps, "rr", i)
        # R peaks: tall maxima at least 250 ms apart (a refractory period, so noise on
        # the R wave's top cannot split one peak into two).
        peaks = ts[find_peaks(ecg, height=0.6, distance=round(0.25 * 250))[0]]
        # Away from the record's edges, where a peak may fall just outside.
        margin = 5 * 10**9 // 250
        lo, hi = ts[0] + margin, ts[-1] - margin
        peaks = peaks[(peaks > lo) & (peaks < hi)]
        inner = beat_ts[(beat_ts > lo) & (beat_ts < hi)]
        assert len(peaks) == len(inner) > 50
        assert np.abs(peaks - inner).max() <= tolerance_samples * 1e9 / 250.0 + 1


def test_battery_drains_and_accelerometer_sees_gravity() -> None:
    config = SimConfig(battery_drain_pct_per_hour=60.0)
    sim = GroupSimulator(2, seed=7, start_ns=T0, config=config)
    steps = _run(sim, 600, dt=5.0)
    for i in range(2):
        _, battery = _collect(steps, "battery", i)
        assert len(battery) == 11
        assert np.all(np.diff(battery) <= 0)
        assert 9 <= battery[0] - battery[-1] <= 11  # 10 minutes at 60 %/h
        _, acc = _collect(steps, "accelerometer", i)
        assert acc.shape[1] == 3
        assert np.linalg.norm(acc, axis=1).mean() == pytest.approx(9.81, abs=0.05)
    np.testing.assert_array_equal(sim.battery, np.floor(sim.battery))


def test_same_seed_same_data_other_seed_other_data() -> None:
    def values(seed: int) -> list[np.ndarray]:
        sim = GroupSimulator(3, seed=seed, start_ns=T0)
        return [b.values for s in _run(sim, 5, dt=0.5) for b in s.batches]

    a, b, c = values(9), values(9), values(10)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=False))


def test_zero_step_emits_only_the_first_samples() -> None:
    sim = GroupSimulator(2, seed=0, start_ns=T0)
    first = sim.step(0.0)
    assert {b.attribute_id for b in first.batches} == set(RATES)
    assert all(len(b) == 1 and b.ts[0] == T0 for b in first.batches)
    assert sim.step(0.0).batches == ()


@pytest.mark.parametrize("dt", [-0.1, float("nan"), float("inf"), 601.0, "1"])
def test_bad_steps_are_refused_and_advance_nothing(dt: object) -> None:
    sim = GroupSimulator(2, seed=0, start_ns=T0)
    sim.step(1.0)
    before = sim.true_phases_unwrapped
    with pytest.raises(ValidationError) as info:
        sim.step(dt)  # type: ignore[arg-type]
    assert info.value.reason == "invalid_step"
    assert sim.now_ns == T0 + 10**9
    np.testing.assert_array_equal(sim.true_phases_unwrapped, before)
    with pytest.raises(ValidationError):
        sim.advance_to(T0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: GroupSimulator(0, start_ns=T0),
        lambda: GroupSimulator(2, coupling=float("nan"), start_ns=T0),
        lambda: GroupSimulator(2, start_ns=T0, room="bad room"),
        lambda: GroupSimulator(2, start_ns=1.5e18),  # type: ignore[arg-type]
        lambda: SimConfig(ecg_hz=0),
        lambda: SimConfig(breath_rate_hz=2.0),
        lambda: SimConfig(phase_noise=-1),
    ],
)
def test_bad_setup_is_refused(make: object) -> None:
    with pytest.raises((ConfigError, ValidationError)):
        make()  # type: ignore[operator]


def test_batch_type_is_the_model_batch() -> None:
    sim = GroupSimulator(1, seed=0, start_ns=T0)
    step = sim.step(1.0)
    assert all(isinstance(b, Batch) for b in step.batches)
    # A short line for logs, not the arrays.
    assert str(step).startswith(f"SimStep(to={T0 + 10**9}, batches={len(step.batches)}, ")
    assert len(str(step)) < 80


def test_breath_peaks_at_phase_zero_and_is_asymmetric() -> None:
    p = 0.4
    theta = np.linspace(-np.pi, np.pi, 2001)
    shape = breath_shape(theta, p)
    assert theta[np.argmax(shape)] == pytest.approx(0.0, abs=1e-2)
    assert breath_shape([0.0, -2 * np.pi * p, 2 * np.pi * (1 - p)], p) == pytest.approx([1, 0, 0])
    # Inhale (rise) takes 40 % of the cycle, exhale 60 %.
    assert np.all(np.diff(breath_shape(np.linspace(-2 * np.pi * p, 0, 50), p)) > 0)
    assert np.all(np.diff(breath_shape(np.linspace(0, 2 * np.pi * (1 - p), 50), p)) < 0)


@pytest.mark.parametrize(("coupling", "expect_sync"), [(0.0, False), (2.0, True)])
def test_sync_analysis_recovers_the_true_phases(coupling: float, expect_sync: bool) -> None:
    from sensocto_lab.sync.kuramoto import order_parameter
    from sensocto_lab.sync.phase import phases

    sim = GroupSimulator(16, coupling=coupling, seed=11, start_ns=T0)
    steps = _run(sim, 180, dt=1.0)
    _, true_phase = _phase_record(steps)
    resp = np.stack([_collect(steps, "respiration", i)[1] for i in range(16)])
    estimated = phases(resp, fs=sim.config.respiration_hz).values
    keep = slice(400, -400)  # away from the filter's edges (20 s each side)
    error = np.angle(np.exp(1j * (estimated[:, keep] - true_phase.T[:, keep])))
    # The Hilbert phase follows the breath's fundamental, whose peak sits a constant
    # π(0.5 − inhale_fraction) after the asymmetric breath's own peak (phase 0)...
    offset = np.angle(np.exp(1j * error).mean())
    assert offset == pytest.approx(-np.pi * (0.5 - sim.config.inhale_fraction), abs=0.05)
    # ...and apart from that shared offset the estimate tracks the truth closely.
    assert np.median(np.abs(np.angle(np.exp(1j * (error - offset))))) < 0.12
    r_est = order_parameter(estimated[:, keep]).values
    r_true = np.abs(np.exp(1j * true_phase[keep]).mean(axis=1))
    assert np.abs(r_est - r_true).mean() < 0.1
    assert (r_true.mean() > 0.9) == expect_sync


def test_true_phase_history_is_kept_for_its_horizon_and_interpolated() -> None:
    sim = GroupSimulator(3, seed=8, start_ns=T0, config=SimConfig(truth_history_s=30.0))
    steps = _run(sim, 100, dt=0.7)
    ts, phase = sim.true_phase_history()
    assert ts[-1] == steps[-1].phase_ts[-1]
    assert 30 <= (ts[-1] - ts[0]) / 1e9 < 31
    assert phase.shape == (len(ts), 3)
    # Exactly the step records at sample times, and in between on the line joining them.
    np.testing.assert_array_equal(sim.phase_at(ts[-5:]), phase[-5:])
    mid = (ts[-2] + ts[-1]) // 2
    np.testing.assert_allclose(sim.phase_at(mid), (phase[-2] + phase[-1]) / 2, atol=1e-6)
    for outside in (ts[0] - 1, ts[-1] + 1, T0):
        with pytest.raises(ValidationError) as info:
            sim.phase_at(outside)
        assert info.value.reason == "out_of_range"
    off = GroupSimulator(2, seed=0, start_ns=T0, config=SimConfig(truth_history_s=0))
    off.step(5.0)
    assert len(off.true_phase_history()[0]) == 0
    with pytest.raises(ValidationError):
        off.phase_at(T0)
