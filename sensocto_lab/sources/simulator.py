"""A simulated group whose breathing is coupled, with known ground truth.

:class:`GroupSimulator` is pure numpy (no asyncio, no clock): the engine calls
:meth:`GroupSimulator.advance_to` (or :meth:`~GroupSimulator.step`) with the time and feeds the
returned batches in as ordinary sensors ``sim-{room}-{i}``.

Model
-----
Participant ``i``'s breathing phase ``θ_i`` (radians, unwrapped) follows the noisy Kuramoto model::

    dθ_i = (ω_i + (K/N) Σ_j sin(θ_j − θ_i)) dt + σ dW_i

integrated by Euler–Maruyama on sub-steps of at most ``max_substep_s``; natural rates
``ω_i = 2π f_i`` with ``f_i`` around 0.25 Hz. Phase 0 (mod 2π) is the peak of a breath,
the end of an inhale: the convention of :mod:`sensocto_lab.sync.phase` (its peak-event
phases match; its Hilbert phases follow the breath's fundamental, a constant
``π(0.5 − inhale_fraction)`` later for everyone, so R is unchanged). Because the
coupling and the phases are known, :attr:`~GroupSimulator.true_phases` and
:meth:`~GroupSimulator.true_order_parameter` are the ground truth the synchrony analysis
is validated against (docs/architecture.md#synchrony).

From the phase:

- ``respiration``: an asymmetric breath (inhale shorter than exhale) plus noise, a.u.;
- ``hr``: heart rate in bpm with respiratory sinus arrhythmia,
  ``HR_i(t) = HR0_i + D_i(t) + A_i cos θ_i(t)`` (rising through the inhale, fastest at
  its end), ``D_i`` a slow Ornstein–Uhlenbeck drift (the variability that is not RSA);
- ``rr``: one event per heartbeat, timestamped at the beat, value the interval since the
  previous beat in ms; beats are where the heart phase ``ψ_i = ∫ HR_i/60 dt`` crosses an
  integer;
- ``ecg``: a McSharry-style sum of Gaussians (P, Q, R, S, T) over the beat phase in mV, so
  each R peak sits exactly on an ``rr`` beat time;
- ``accelerometer``: gravity seen through a slightly tilted chest plus breathing motion, m/s²;
- ``battery``: a linear drain in whole percent.

Every kind keeps its own sample clock: sample ``k`` of a kind at rate ``r`` is at
``start_ns + round(k·1e9/r)`` however the time is cut into steps, so rates are exact over
any run. Randomness comes from one seeded :class:`numpy.random.Generator`: the same seed
and the same sequence of steps give the same data.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from sensocto_lab.errors import ConfigError, ValidationError
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo, check_id
from sensocto_lab.sources.waveforms import breath_shape, ecg_mv

__all__ = ["MAX_STEP_S", "GroupSimulator", "SimConfig", "SimStep"]

#: Longest time one call may advance (keeps a 512 Hz ECG batch under the model's limit).
MAX_STEP_S = 600.0

FloatArray = npt.NDArray[np.float64]

# McSharry et al. (2003) wave positions (rad of the beat cycle, R at 0) and widths; the
# amplitudes are in mV for a lead-II-like trace.

_GRAVITY = 9.81

#: The periodic attributes and the config field holding each one's rate (rr is per beat).
_RATE_FIELDS = {
    "respiration": "respiration_hz",
    "hr": "hr_hz",
    "ecg": "ecg_hz",
    "accelerometer": "accelerometer_hz",
    "battery": "battery_hz",
}


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Rates and physiology of the simulated group.

    Attributes
    ----------
    respiration_hz, ecg_hz, accelerometer_hz, hr_hz, battery_hz
        Sampling rate of each kind, Hz (ECG like a Polar H10: 130 Hz; up to 512 Hz).
    breath_rate_hz, breath_rate_sd_hz
        Mean and spread of the natural breathing rates (clipped to 0.1–0.5 Hz).
    phase_noise
        Phase diffusion σ of the breathing oscillators, rad/√s.
    inhale_fraction
        Fraction of a breath spent inhaling (the waveform's asymmetry).
    heart_rate_bpm, heart_rate_sd_bpm
        Mean and spread of the resting heart rates.
    rsa_bpm
        Mean respiratory sinus arrhythmia amplitude, bpm (peak deviation from rest).
    hr_drift_sd_bpm, hr_drift_tau_s
        The heart rate's slow wandering that is not breathing (an Ornstein–Uhlenbeck
        process): its standard deviation in bpm and its correlation time in seconds.
    respiration_noise, ecg_noise_mv, accelerometer_noise
        Standard deviation of additive white noise on each signal, in its unit.
    battery_drain_pct_per_hour
        How fast batteries run down.
    truth_history_s
        Seconds of true phases kept for :meth:`GroupSimulator.phase_at` (0: none); 600 s
        of 16 participants at 20 Hz is 1.5 MB.
    max_substep_s
        Longest Euler–Maruyama sub-step of the phase integration, s.
    """

    respiration_hz: float = 20.0
    ecg_hz: float = 130.0
    accelerometer_hz: float = 50.0
    hr_hz: float = 1.0
    battery_hz: float = 1 / 60
    breath_rate_hz: float = 0.25
    breath_rate_sd_hz: float = 0.025
    phase_noise: float = 0.05
    inhale_fraction: float = 0.4
    heart_rate_bpm: float = 70.0
    heart_rate_sd_bpm: float = 7.0
    rsa_bpm: float = 5.0
    hr_drift_sd_bpm: float = 2.0
    hr_drift_tau_s: float = 20.0
    respiration_noise: float = 0.03
    ecg_noise_mv: float = 0.02
    accelerometer_noise: float = 0.02
    battery_drain_pct_per_hour: float = 8.0
    truth_history_s: float = 600.0
    max_substep_s: float = 0.02

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(
                    f"simulator {f.name} must be a finite number >= 0, got {value!r:.40}"
                )
        for name in ("respiration_hz", "ecg_hz", "accelerometer_hz", "hr_hz", "battery_hz"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"simulator {name} must be > 0")
        if not 0.1 <= self.breath_rate_hz <= 0.5:
            raise ConfigError("breath_rate_hz must be within 0.1-0.5 Hz")
        if not 0.1 <= self.inhale_fraction <= 0.9:
            raise ConfigError("inhale_fraction must be within 0.1-0.9")
        if not 30 <= self.heart_rate_bpm <= 200:
            raise ConfigError("heart_rate_bpm must be within 30-200")
        if not 0 < self.max_substep_s <= 0.1:
            raise ConfigError("max_substep_s must be within (0, 0.1] s")


@dataclass(frozen=True, slots=True, eq=False)
class SimStep:
    """What one step produced.

    Attributes
    ----------
    batches
        One unvalidated :class:`~sensocto_lab.model.Batch` per (participant, kind) that has
        samples in this step.
    end_ns
        The simulation time reached, ns since the epoch.
    phase_ts
        ``int64`` ns, shape ``(n,)``: the respiration sample times of this step.
    phase
        True unwrapped breathing phase in rad, shape ``(n, participants)``, at ``phase_ts``.
    """

    batches: tuple[Batch, ...]
    end_ns: int
    phase_ts: npt.NDArray[np.int64]
    phase: FloatArray

    def __str__(self) -> str:
        samples = sum(len(b) for b in self.batches)
        return f"SimStep(to={self.end_ns}, batches={len(self.batches)}, samples={samples})"

    def order_parameter(self) -> FloatArray:
        """True Kuramoto ``R(t) = |mean_j exp(iθ_j)|`` at ``phase_ts``, shape ``(n,)``."""
        return np.asarray(np.abs(np.exp(1j * self.phase).mean(axis=1)), dtype=np.float64)

    def select(self, attribute_id: str) -> Iterator[Batch]:
        """This step's batches of one attribute, in participant order."""
        return (b for b in self.batches if b.attribute_id == attribute_id)


class GroupSimulator:
    """N participants breathing as coupled Kuramoto oscillators, with heart, ECG and motion.

    Parameters
    ----------
    n
        Number of participants (1–1000).
    coupling
        Kuramoto coupling ``K`` in rad/s; 0 is independent breathing, and with the default
        spread anything above ~0.3 pulls the group together. Change it live with
        :meth:`set_coupling`.
    seed
        Seed (or a ready :class:`numpy.random.Generator`) for every random draw.
    start_ns
        Simulation start, ns since the epoch (the engine passes its clock's ``time_ns()``).
    room
        Room of the sensors; ids are ``sim-{room}-{i}`` for ``i`` in ``0..n-1``.
    config
        Rates and physiology; defaults to :class:`SimConfig`.
    """

    def __init__(
        self,
        n: int,
        coupling: float = 0.5,
        seed: int | np.random.Generator = 0,
        *,
        start_ns: int,
        room: str = "sim",
        config: SimConfig | None = None,
    ) -> None:
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or not 1 <= n <= 1000:
            raise ConfigError(f"participants must be an int 1-1000, got {n!r:.20}")
        if not isinstance(start_ns, int | np.integer) or isinstance(start_ns, bool):
            raise ConfigError("start_ns must be int ns since the epoch")
        self.config = cfg = config or SimConfig()
        self.room = check_id(room, "room")
        self.sensor_ids = tuple(check_id(f"sim-{room}-{i}", "sensor_id") for i in range(int(n)))
        self.start_ns = int(start_ns)
        self._coupling = 0.0
        self.set_coupling(coupling)
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        rng = self._rng

        rates = np.clip(rng.normal(cfg.breath_rate_hz, cfg.breath_rate_sd_hz, n), 0.1, 0.5)
        self._omega: FloatArray = 2 * math.pi * rates
        self._theta: FloatArray = rng.uniform(0, 2 * math.pi, n)
        self._hr0: FloatArray = np.clip(
            rng.normal(cfg.heart_rate_bpm, cfg.heart_rate_sd_bpm, n), 45, 120
        )
        self._rsa: FloatArray = cfg.rsa_bpm * rng.uniform(0.6, 1.4, n)
        self._resp_amp: FloatArray = rng.uniform(0.7, 1.3, n)
        # Chest orientation: gravity mostly on z, a few degrees of tilt; breathing moves the
        # chest along its own normal.
        tilt = rng.normal(0, 0.15, (n, 2))
        self._gravity: FloatArray = _GRAVITY * np.column_stack(
            [np.sin(tilt[:, 0]), np.sin(tilt[:, 1]), np.cos(tilt[:, 0]) * np.cos(tilt[:, 1])]
        )
        self._chest_axis: FloatArray = self._gravity / _GRAVITY
        self._battery0: FloatArray = rng.uniform(60, 100, n)
        # Heart phase in beats; the previous beat was psi0 of a beat ago.
        psi0 = rng.uniform(0, 1, n)
        self._psi: FloatArray = psi0
        self._drift: FloatArray = rng.normal(0, cfg.hr_drift_sd_bpm, n)
        self._last_beat_s: FloatArray = -psi0 * 60.0 / self._hr0
        self._t_ns = 0  # ns since start_ns
        self._next_k = dict.fromkeys(_RATE_FIELDS, 0)
        self._truth: deque[tuple[npt.NDArray[np.int64], FloatArray]] = deque()

    # -- ground truth ------------------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of participants."""
        return len(self.sensor_ids)

    @property
    def now_ns(self) -> int:
        """Simulation time reached, ns since the epoch."""
        return self.start_ns + self._t_ns

    @property
    def coupling(self) -> float:
        """The Kuramoto coupling ``K`` in rad/s."""
        return self._coupling

    @property
    def natural_rates_hz(self) -> FloatArray:
        """Each participant's natural breathing rate, Hz, shape ``(n,)``."""
        return self._omega / (2 * math.pi)

    @property
    def true_phases(self) -> FloatArray:
        """Breathing phases now, wrapped to ``[0, 2π)``, shape ``(n,)``."""
        return np.mod(self._theta, 2 * math.pi)

    @property
    def true_phases_unwrapped(self) -> FloatArray:
        """Breathing phases now, unwrapped (radians since the start plus the initial phase)."""
        return self._theta.copy()

    @property
    def battery(self) -> FloatArray:
        """Battery levels now, %, shape ``(n,)``."""
        return self._battery_at(self._t_ns / 1e9)

    def true_order_parameter(self) -> float:
        """Kuramoto ``R = |mean_j exp(iθ_j)|`` now: 0 incoherent … 1 in lock-step."""
        return float(np.abs(np.exp(1j * self._theta).mean()))

    def true_phase_history(self) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """The recorded true phases: ``(ts, phase)`` at respiration sample times.

        ``ts`` is ``int64`` ns, shape ``(m,)``; ``phase`` is unwrapped radians, shape
        ``(m, n)``; they cover at least the last ``config.truth_history_s`` seconds.
        """
        if not self._truth:
            return np.empty(0, dtype=np.int64), np.empty((0, self.n))
        return (
            np.concatenate([ts for ts, _ in self._truth]),
            np.concatenate([phase for _, phase in self._truth]),
        )

    def phase_at(self, ts_ns: npt.ArrayLike) -> FloatArray:
        """True unwrapped breathing phases at ``ts_ns`` (int ns since the epoch), radians.

        Interpolated linearly between respiration samples of the recorded history.
        Returns shape ``(n,)`` for one time, ``(len(ts_ns), n)`` for an array of times.

        Raises
        ------
        ValidationError
            ``out_of_range``: a time outside the recorded history.
        """
        ts, phase = self.true_phase_history()
        t = np.asarray(ts_ns, dtype=np.int64)
        if not len(ts) or (t.size and (t.min() < ts[0] or t.max() > ts[-1])):
            span = f"{ts[0]}-{ts[-1]}" if len(ts) else "nothing yet"
            raise ValidationError(
                f"true phases are recorded for ns {span}; asked outside it",
                reason="out_of_range",
            )
        x = (t.reshape(-1) - self.start_ns).astype(np.float64)
        xp = (ts - self.start_ns).astype(np.float64)
        out = np.column_stack([np.interp(x, xp, phase[:, i]) for i in range(self.n)])
        return out.reshape((*t.shape, self.n))

    def set_coupling(self, coupling: float) -> None:
        """Change ``K`` (rad/s) from the next step on; negative ``K`` pushes phases apart."""
        if not isinstance(coupling, int | float) or not math.isfinite(coupling):
            raise ConfigError(f"coupling must be a finite number, got {coupling!r:.40}")
        self._coupling = float(coupling)

    def sensor_infos(self) -> list[SensorInfo]:
        """The sensors to register: ``sim-{room}-{i}`` with the six simulated attributes."""
        cfg = self.config
        attributes = {
            a.attribute_id: a
            for a in (
                AttributeInfo.of("respiration", rate_hz=cfg.respiration_hz),
                AttributeInfo.of("hr", rate_hz=cfg.hr_hz),
                AttributeInfo.of("rr"),
                AttributeInfo.of("ecg", rate_hz=cfg.ecg_hz),
                AttributeInfo.of("accelerometer", rate_hz=cfg.accelerometer_hz),
                AttributeInfo.of("battery", rate_hz=cfg.battery_hz),
            )
        }
        return [
            SensorInfo(
                sensor_id,
                attributes,
                name=f"Participant {i + 1}",
                sensor_type="simulator",
                room=self.room,
                connector_id=f"sim-{self.room}",
            )
            for i, sensor_id in enumerate(self.sensor_ids)
        ]

    # -- stepping ---------------------------------------------------------------------------

    def step(self, dt: float) -> SimStep:
        """Advance by ``dt`` seconds (rounded to whole ns); see :meth:`advance_to`."""
        if not isinstance(dt, int | float) or not math.isfinite(dt) or dt < 0:
            raise ValidationError(
                f"dt must be a finite number of seconds >= 0, got {dt!r:.40}", reason="invalid_step"
            )
        return self.advance_to(self.now_ns + round(dt * 1e9))

    def advance_to(self, t_ns: int) -> SimStep:
        """Simulate up to ``t_ns`` (ns since the epoch) and return every sample due by then.

        Raises
        ------
        ValidationError
            ``invalid_step``: ``t_ns`` is before the time already reached, or more than
            :data:`MAX_STEP_S` ahead of it. Nothing is advanced.
        """
        end = int(t_ns) - self.start_ns
        if end < self._t_ns or end - self._t_ns > MAX_STEP_S * 1e9:
            raise ValidationError(
                f"the simulator can advance 0-{MAX_STEP_S:g} s at a time, asked "
                f"{(end - self._t_ns) / 1e9:g} s",
                reason="invalid_step",
            )
        t0 = self._t_ns / 1e9
        span = (end - self._t_ns) / 1e9
        substeps = max(1, math.ceil(span / self.config.max_substep_s))
        h = span / substeps
        theta = self._integrate_phases(substeps, h)
        drift = self._integrate_drift(substeps, h)
        hr = self._heart_rate(theta, drift)
        psi = self._integrate_heart(hr, h)

        ks = {attr: self._due(attr, end) for attr in _RATE_FIELDS}
        offsets = {a: np.round(k * self._period_ns(a)).astype(np.int64) for a, k in ks.items()}
        times = {attr: ns / 1e9 for attr, ns in offsets.items()}  # s since start

        def at(nodes: FloatArray, attr: str) -> FloatArray:
            return _interp_uniform(nodes, t0, h, times[attr])

        resp_theta = at(theta, "respiration")
        values: dict[str, npt.NDArray[Any]] = {
            "respiration": self._respiration(resp_theta),
            "hr": self._heart_rate(at(theta, "hr"), at(drift, "hr")),
            "ecg": self._ecg(at(psi, "ecg"), at(theta, "ecg")),
            "accelerometer": self._accelerometer(at(theta, "accelerometer")),
            "battery": self._battery_at(times["battery"]),
        }
        stamps = {attr: self.start_ns + ns for attr, ns in offsets.items()}
        beats = self._beats(psi, t0, h)

        batches: list[Batch] = []
        for i, sensor_id in enumerate(self.sensor_ids):
            for attr, ts in stamps.items():
                if len(ts):
                    column = np.ascontiguousarray(values[attr][:, i])
                    batches.append(Batch(sensor_id, attr, ts, column))
            beat_ts, rr = beats[i]
            if len(beat_ts):
                batches.append(Batch(sensor_id, "rr", beat_ts, rr))

        self._theta, self._psi, self._drift = theta[-1].copy(), psi[-1].copy(), drift[-1].copy()
        self._t_ns = end
        for attr, k in ks.items():
            if len(k):
                self._next_k[attr] = int(k[-1]) + 1
        self._record(stamps["respiration"], resp_theta)
        return SimStep(tuple(batches), self.now_ns, stamps["respiration"], resp_theta)

    def _record(self, ts: npt.NDArray[np.int64], phase: FloatArray) -> None:
        """Keep the true phases of the last ``truth_history_s`` seconds."""
        if self.config.truth_history_s <= 0 or not len(ts):
            return
        self._truth.append((ts, phase))
        horizon = int(ts[-1]) - round(self.config.truth_history_s * 1e9)
        while int(self._truth[0][0][-1]) < horizon:
            self._truth.popleft()

    # -- the model ----------------------------------------------------------------------------

    def _integrate_phases(self, substeps: int, h: float) -> FloatArray:
        """Phases at ``substeps + 1`` equally spaced nodes, shape ``(substeps + 1, n)``."""
        nodes = np.empty((substeps + 1, self.n))
        nodes[0] = theta = self._theta
        noise = self._rng.standard_normal((substeps, self.n)) * (
            self.config.phase_noise * math.sqrt(h)
        )
        for s in range(substeps):
            # (K/N) Σ_j sin(θ_j − θ_i) = K · Im(z · exp(−iθ_i)) with z the mean field.
            z = np.exp(1j * theta).mean()
            pull = self._coupling * np.imag(z * np.exp(-1j * theta))
            theta = theta + (self._omega + pull) * h + noise[s]
            nodes[s + 1] = theta
        return nodes

    def _integrate_drift(self, substeps: int, h: float) -> FloatArray:
        """The heart rate's non-respiratory drift (bpm) at the nodes, exact OU updates."""
        cfg = self.config
        nodes = np.empty((substeps + 1, self.n))
        nodes[0] = drift = self._drift
        keep = math.exp(-h / cfg.hr_drift_tau_s) if cfg.hr_drift_tau_s > 0 else 0.0
        shocks = self._rng.standard_normal((substeps, self.n)) * (
            cfg.hr_drift_sd_bpm * math.sqrt(1 - keep**2)
        )
        for s in range(substeps):
            drift = keep * drift + shocks[s]
            nodes[s + 1] = drift
        return nodes

    def _heart_rate(self, theta: FloatArray, drift: FloatArray) -> FloatArray:
        """Heart rate in bpm with RSA (fastest at the end of an inhale, θ ≡ 0) and drift."""
        # The floor keeps the heart phase strictly increasing whatever the settings.
        return np.maximum(self._hr0 + drift + self._rsa * np.cos(theta), 20.0)

    def _integrate_heart(self, hr_nodes: FloatArray, h: float) -> FloatArray:
        """Heart phase in beats at the nodes (trapezoidal integral of HR/60)."""
        beats_per_s = hr_nodes / 60.0
        increments = 0.5 * (beats_per_s[1:] + beats_per_s[:-1]) * h
        return np.vstack([self._psi, self._psi + np.cumsum(increments, axis=0)])

    def _beats(
        self, psi: FloatArray, t0: float, h: float
    ) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
        """Per participant: beat times (ns since the epoch) and RR intervals (ms)."""
        out = []
        for i in range(self.n):
            col = psi[:, i]
            first, last = math.floor(col[0]) + 1, math.floor(col[-1])
            targets = np.arange(first, last + 1, dtype=np.float64)
            idx = np.searchsorted(col, targets)  # col[idx-1] < target <= col[idx]
            frac = (targets - col[idx - 1]) / (col[idx] - col[idx - 1])
            beat_s = t0 + h * (idx - 1 + frac)
            rr_ms = np.diff(np.concatenate([[self._last_beat_s[i]], beat_s])) * 1000.0
            if len(beat_s):
                self._last_beat_s[i] = beat_s[-1]
            out.append((self.start_ns + np.round(beat_s * 1e9).astype(np.int64), rr_ms))
        return out

    def _respiration(self, theta: FloatArray) -> FloatArray:
        cfg = self.config
        wave = self._resp_amp * (breath_shape(theta, cfg.inhale_fraction) - 0.5)
        return wave + self._rng.normal(0, cfg.respiration_noise, theta.shape)

    def _ecg(self, psi: FloatArray, theta: FloatArray) -> npt.NDArray[np.float32]:
        waves = ecg_mv(psi)
        wander = 0.05 * np.sin(theta)  # breathing moves the baseline a little
        noise = self._rng.normal(0, self.config.ecg_noise_mv, psi.shape)
        return (waves + wander + noise).astype(np.float32)

    def _accelerometer(self, theta: FloatArray) -> npt.NDArray[np.float32]:
        """Shape ``(samples, n, 3)``: gravity plus chest motion along its normal, m/s²."""
        motion = 0.05 * (breath_shape(theta, self.config.inhale_fraction) - 0.5)
        acc = self._gravity + motion[..., None] * self._chest_axis
        acc += self._rng.normal(0, self.config.accelerometer_noise, acc.shape)
        return acc.astype(np.float32)

    def _battery_at(self, t_s: npt.ArrayLike) -> FloatArray:
        """Whole-percent battery at times ``t_s`` (s since start), shape ``(len(t_s), n)``."""
        t = np.asarray(t_s, dtype=np.float64)
        level = self._battery0 - self.config.battery_drain_pct_per_hour * t[..., None] / 3600
        return np.asarray(np.floor(np.clip(level, 0, 100)), dtype=np.float64)

    def _period_ns(self, attr: str) -> float:
        return 1e9 / float(getattr(self.config, _RATE_FIELDS[attr]))

    def _due(self, attr: str, end_ns: int) -> npt.NDArray[np.int64]:
        """Sample indices of ``attr`` at or before ``end_ns`` (since start) not yet emitted."""
        period = self._period_ns(attr)
        last = math.floor(end_ns / period) + 1
        while last >= 0 and round(last * period) > end_ns:
            last -= 1
        return np.arange(self._next_k[attr], last + 1, dtype=np.int64)


def _interp_uniform(nodes: FloatArray, t0: float, h: float, t: FloatArray) -> FloatArray:
    """Linear interpolation of ``nodes`` (``(m+1, n)``, m >= 1, at ``t0 + h·j``) at times ``t`` (s).

    Returns shape ``(len(t), n)``.
    """
    if len(t) == 0:
        return np.empty((0, nodes.shape[1]))
    if h == 0:
        return np.repeat(nodes[:1], len(t), axis=0)
    pos = np.clip((t - t0) / h, 0, len(nodes) - 1)
    j = np.minimum(np.floor(pos).astype(np.int64), len(nodes) - 2)
    frac = (pos - j)[:, None]
    return np.asarray(nodes[j] * (1 - frac) + nodes[j + 1] * frac)
