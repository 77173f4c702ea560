"""Synchrony benchmarks: offline R(t) next to plain numpy/scipy, and one live update.

- **R(t), N signals x 60 000 samples**: ours is :func:`sensocto_lab.sync.synchrony`
  (zero-phase Butterworth band-pass with ``sosfiltfilt``, FFT Hilbert, order
  parameter, DataArray out). The baseline does the same work the plain way:
  the *same* ``sosfiltfilt`` band-pass, ``scipy.signal.hilbert``, ``np.angle`` and
  ``np.abs(np.mean(np.exp(1j*theta), axis=0))``. Both are timed in the same run,
  best of a few repeats, in ms.
- **Live update, 1000 sensors**: :meth:`OnlineSynchrony.estimate` on full 30 s
  windows at 10 Hz, and a whole 2 Hz tick (pushing 0.5 s of 20 Hz batches from
  every sensor, then estimating). Sensocto's min/max heuristic on its 50-sample
  buffers is timed beside it for scale (it does much less: no filtering).
- **Live phase error**: median error of the live phases against the known phases
  of a test group (64 participants, 10 dB SNR), next to the heuristic's.
- **Measures vs their peers** (64 signals x 1 h at 25 Hz; ``--quick``: 16 x 10 min),
  each peer fed the same data in the same run: PLV and wPLI against hypyp
  ``compute_sync`` on the same analytic signals; cluster-phase rho and windowed R
  against multiSyncPy on the same phases; Welch coherence and sum-normalised CSD
  against multiSyncPy ``coherence_team`` / ``sum_normalized_csd``; the all-pairs
  phase-synchrony matrix (band-pass, Hilbert, PLV of every pair) against
  neurokit2 ``signal_synchrony`` (Hilbert) run over every pair; mdRQA on 8 x 5 min
  at 10 Hz against multiSyncPy ``recurrence_matrix`` + ``rqa_metrics``, and banded
  mdRQA of the big group with its peak traced memory; and the phases -> R -> PLV
  pipeline against one plain numpy/scipy pass.
"""

from __future__ import annotations

import numpy as np
import scipy.signal as ss

from bench._table import Row, best_ms, format_table
from bench.bench_sync_peers import peer_rows
from sensocto_lab.sync.baseline import minmax_phase
from sensocto_lab.sync.kuramoto import synchrony
from sensocto_lab.sync.online import OnlineSynchrony
from sensocto_lab.sync.phase import RESPIRATION_BAND, butter_sos
from sensocto_lab.sync.synthetic import oscillator_group

AREA = "sync"
FS = 10.0
SAMPLES = 60_000
T0 = 1_767_225_600 * 10**9


def _baseline_r(x: np.ndarray) -> np.ndarray:
    """The plain way: same band-pass, scipy's Hilbert, angle, exp, mean."""
    sos = butter_sos(FS, RESPIRATION_BAND, 2)
    theta = np.angle(ss.hilbert(ss.sosfiltfilt(sos, x, axis=-1), axis=-1))
    return np.abs(np.mean(np.exp(1j * theta), axis=0))


def _offline_rows(quick: bool) -> list[Row]:
    rows = []
    rng = np.random.default_rng(0)
    for n in (8, 64, 512):
        t = np.arange(SAMPLES) / FS
        freq = rng.uniform(0.2, 0.3, (n, 1))
        x = np.cos(2 * np.pi * freq * t + rng.uniform(0, 6, (n, 1)))
        x += 0.3 * rng.standard_normal(x.shape)
        np.testing.assert_allclose(
            synchrony(x, FS).values[1000:-1000], _baseline_r(x)[1000:-1000], atol=1e-6
        )
        repeats = 1 if (quick and n == 512) else 3
        ours = best_ms(lambda x=x: synchrony(x, FS), repeats)
        base = best_ms(lambda x=x: _baseline_r(x), repeats)
        rows.append(
            Row(
                AREA,
                f"R(t) of {n} x {SAMPLES} samples, ms",
                ours,
                base,
                "sosfiltfilt + scipy hilbert + angle/exp/mean",
                "<= 1.2x",
                ours <= 1.2 * base,
                higher_is_better=False,
            )
        )
    return rows


def _filled(n: int, seconds: float, rate: float) -> tuple[OnlineSynchrony, int]:
    online = OnlineSynchrony()
    ts = T0 + np.round(np.arange(int(seconds * rate)) * 1e9 / rate).astype(np.int64)
    rng = np.random.default_rng(1)
    phase0 = rng.uniform(0, 6, n)
    for i in range(n):
        online.push(f"s{i}", ts, np.cos(2 * np.pi * 0.25 * (ts - T0) / 1e9 + phase0[i]))
    return online, int(ts[-1])


def _live_rows(quick: bool) -> list[Row]:
    n, rate = 1000, 20.0
    online, end = _filled(n, 31.0, rate)
    repeats = 20 if quick else 100
    update = best_ms(lambda: online.estimate(end), repeats)
    buffers = np.random.default_rng(2).standard_normal((n, 50))
    heuristic = best_ms(lambda: minmax_phase(buffers), repeats)

    batch_ts = end + np.round(np.arange(1, 11) * 1e9 / rate).astype(np.int64)

    def tick() -> None:
        nonlocal batch_ts
        for i in range(n):
            online.push(f"s{i}", batch_ts, np.cos(2 * np.pi * 0.25 * (batch_ts - T0) / 1e9 + i))
        online.estimate(int(batch_ts[-1]))
        batch_ts = batch_ts + 500_000_000

    whole_tick = best_ms(tick, 5 if quick else 20)
    return [
        Row(
            AREA,
            "live update, 1000 sensors, ms",
            update,
            heuristic,
            "Sensocto min/max heuristic (no filter)",
            "<= 5 ms",
            update <= 5.0,
            higher_is_better=False,
        ),
        Row(
            AREA,
            "live 2 Hz tick incl. 1000 batch pushes, ms",
            whole_tick,
            None,
            "",
            "",
            None,
            higher_is_better=False,
        ),
    ]


def _accuracy_rows() -> list[Row]:
    rate = 20.0
    group = oscillator_group(64, 90.0, rate, snr_db=10.0, coupling=0.4, seed=3)
    ts = T0 + np.round(np.arange(group.signals.shape[1]) * 1e9 / rate).astype(np.int64)
    online = OnlineSynchrony()
    ours, theirs = [], []
    for lo in range(0, ts.size, 10):
        hi = min(lo + 10, ts.size)
        for i in range(64):
            online.push(f"p{i}", ts[lo:hi], group.signals[i, lo:hi])
        if hi > 35 * rate:
            est = online.estimate(int(ts[hi - 1]))
            j = np.searchsorted(ts, est.t_ns)
            ours.append(np.angle(np.exp(1j * (est.phases - group.phases[:, j]))))
            guess = minmax_phase(group.signals[:, hi - 50 : hi])
            theirs.append(np.angle(np.exp(1j * (guess - group.phases[:, hi - 1]))))
    ours_err = float(np.median(np.abs(ours)))
    theirs_err = float(np.median(np.abs(theirs)))
    return [
        Row(
            AREA,
            "live phase error at 10 dB SNR, rad",
            ours_err,
            theirs_err,
            "Sensocto min/max heuristic",
            "<= 0.3 and < heuristic",
            ours_err <= 0.3 and ours_err < theirs_err,
            higher_is_better=False,
        )
    ]


def run(quick: bool = False) -> list[Row]:
    """Measure ours and the baselines in this run (``quick``: fewer repeats)."""
    return [*_offline_rows(quick), *_live_rows(quick), *_accuracy_rows(), *peer_rows(quick)]


if __name__ == "__main__":
    print(format_table(run()))
