"""Groups of breathing-like oscillators whose true phases are known.

For tests, benchmarks and teaching: each participant is a noisy Kuramoto phase
oscillator, ``dθ_j = (ω_j + K·R·sin(ψ − θ_j)) dt + σ dW_j``, observed as
``a_j(t)·cos θ_j(t)`` plus white noise at a given signal-to-noise ratio. A peak of
the signal is phase 0, the same convention as :mod:`sensocto_lab.sync.phase`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["OscillatorGroup", "oscillator_group"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class OscillatorGroup:
    """A simulated recording and its ground truth.

    Attributes
    ----------
    signals
        Observed signals, ``(participants, samples)``, arbitrary units.
    phases
        True phases (radians, unwrapped), same shape.
    fs
        Sampling rate in Hz.
    """

    signals: FloatArray
    phases: FloatArray
    fs: float

    @property
    def true_order_parameter(self) -> FloatArray:
        """True ``R(t)``, shape ``(samples,)``."""
        return np.abs(np.exp(1j * self.phases).mean(axis=0))


def oscillator_group(
    n: int,
    duration_s: float,
    fs: float = 10.0,
    *,
    coupling: float = 0.0,
    freq_hz: tuple[float, float] = (0.2, 0.3),
    phase_noise: float = 0.05,
    amplitude_jitter: float = 0.2,
    snr_db: float | None = 10.0,
    identical: bool = False,
    seed: int | np.random.Generator | None = None,
) -> OscillatorGroup:
    """Simulate ``n`` breathing-like oscillators.

    Parameters
    ----------
    n
        Participants.
    duration_s
        Length of the recording in seconds.
    fs
        Sampling rate in Hz.
    coupling
        Kuramoto coupling ``K`` in rad/s; 0 gives independent participants.
    freq_hz
        Natural frequencies are drawn uniformly from this range (Hz).
    phase_noise
        Phase diffusion ``σ`` in rad/√s (breath-to-breath variability).
    amplitude_jitter
        Relative depth of a slow (0.01–0.05 Hz) modulation of each amplitude.
    snr_db
        Signal-to-noise power ratio of the added white noise, in dB; ``None`` for none.
    identical
        Every participant follows participant 0's phase and amplitude exactly
        (``R = 1``; with ``snr_db`` each still gets its own noise).
    seed
        Seed or generator, for reproducible groups.

    Returns
    -------
    OscillatorGroup
        The signals and the true phases.
    """
    rng = np.random.default_rng(seed)
    steps = round(duration_s * fs)
    dt = 1.0 / fs
    omega = 2 * np.pi * rng.uniform(*freq_hz, size=n)
    start = rng.uniform(0, 2 * np.pi, size=n)
    increments = omega[:, np.newaxis] * dt + phase_noise * np.sqrt(dt) * rng.standard_normal(
        (n, steps)
    )
    increments[:, 0] = start
    if coupling:
        theta = np.empty((n, steps))
        theta[:, 0] = start
        for k in range(1, steps):
            prev = theta[:, k - 1]
            z = np.exp(1j * prev).mean()
            pull = coupling * np.abs(z) * np.sin(np.angle(z) - prev) * dt
            theta[:, k] = prev + increments[:, k] + pull
    else:  # independent: a random walk with drift
        theta = np.cumsum(increments, axis=1)
    if identical:
        theta[:] = theta[0]
    t = np.arange(steps) * dt
    mod_freq = rng.uniform(0.01, 0.05, size=(n, 1))
    amplitude = 1.0 + amplitude_jitter * np.sin(
        2 * np.pi * mod_freq * t + rng.uniform(0, 2 * np.pi, (n, 1))
    )
    if identical:
        amplitude[:] = amplitude[0]
    signals = amplitude * np.cos(theta)
    if snr_db is not None:
        power = np.mean(signals**2, axis=1, keepdims=True)
        signals += np.sqrt(power / 10 ** (snr_db / 10)) * rng.standard_normal((n, steps))
    return OscillatorGroup(signals, theta, fs)
