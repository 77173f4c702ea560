"""Synchrony measures next to the peer libraries, on the same data in the same run.

Imported by :mod:`bench.bench_sync` (area ``sync``); see its docstring for what each
row compares. Ours is the best of two runs (the first pays one-time import and
allocation costs); a peer runs once, after a warm-up on a slice, since the slowest
take a minute at full size.
"""

from __future__ import annotations

import time
import tracemalloc
import warnings
from itertools import combinations

import numpy as np
import scipy.signal as ss

from bench._table import Row, best_ms
from sensocto_lab import sync
from sensocto_lab.physio.filters import butter_sos
from sensocto_lab.sync.connectivity import connectivity_matrix
from sensocto_lab.sync.phase import analytic_signal

AREA = "sync"
FS = 25.0


def _group(n: int, samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / FS
    x = np.cos(2 * np.pi * rng.uniform(0.2, 0.3, (n, 1)) * t + rng.uniform(0, 6, (n, 1)))
    return x + 0.3 * rng.standard_normal(x.shape)


def _row(measure: str, ours: float, base: float, name: str, factor: float) -> Row:
    target = "<= 1x" if factor == 1 else f"<= {factor:g}x (>= {1 / factor:g}x faster)"
    return Row(AREA, measure, ours, base, name, target, ours <= factor * base, False)


def peer_rows(quick: bool) -> list[Row]:
    """Every row of the peers' comparison (ms, lower is better)."""
    from hypyp.analyses import compute_sync
    from multiSyncPy import synchrony_metrics as msp
    from neurokit2 import signal_synchrony

    n, samples = (16, 15_000) if quick else (64, 90_000)
    size = f"{n} x {samples / FS / 60:g} min"
    x = _group(n, samples)
    z = analytic_signal(x, FS)
    theta = np.angle(z)
    hy = z.reshape(2, 1, n // 2, 1, -1)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compute_sync(hy[..., :100], "plv")  # warm-ups
        msp.rho(theta[:, :100])
        msp.coherence_team(x[:2, :1024])
        signal_synchrony(x[0, :100], x[1, :100])
        for measure, factor in (("plv", 1.0), ("wpli", 0.1)):
            ours = best_ms(lambda m=measure: connectivity_matrix(z, m), 2)
            base = best_ms(lambda m=measure: compute_sync(hy, m))
            rows.append(
                _row(f"{measure} matrix {size}, ms", ours, base, "hypyp compute_sync", factor)
            )

        ours = best_ms(lambda: sync.cluster_phase(theta), 2)
        base = best_ms(lambda: msp.rho(theta))
        rows.append(_row(f"cluster-phase rho {size}, ms", ours, base, "multiSyncPy rho", 1.0))

        win = int(30 * FS)
        ours = best_ms(
            lambda: sync.windowed_order_parameter(sync.order_parameter(theta, FS), 30.0), 2
        )
        base = best_ms(
            lambda: msp.apply_windowed(
                theta, lambda w: np.abs(np.exp(1j * w).mean(axis=0)).mean(), win
            )
        )
        rows.append(
            _row(f"windowed R (30 s) {size}, ms", ours, base, "multiSyncPy apply_windowed", 1.0)
        )

        ours = best_ms(lambda: sync.spectral_synchrony(x, FS), 2)
        base = best_ms(lambda: msp.coherence_team(x))
        rows.append(
            _row(
                f"Welch coherence, all pairs {size}, ms",
                ours,
                base,
                "multiSyncPy coherence_team",
                0.1,
            )
        )
        base = best_ms(lambda: msp.sum_normalized_csd(x))
        rows.append(
            _row(
                f"sum-normalised CSD, all pairs {size}, ms",
                ours,
                base,
                "multiSyncPy sum_normalized_csd",
                0.1,
            )
        )

        ours = best_ms(lambda: sync.connectivity(x, "plv", fs=FS), 2)
        base = best_ms(lambda: [signal_synchrony(x[i], x[j]) for i, j in combinations(range(n), 2)])
        rows.append(
            _row(
                f"all-pairs phase synchrony {size}, ms",
                ours,
                base,
                "neurokit2 signal_synchrony (hilbert) per pair",
                0.1,
            )
        )

        small = _group(8, 3000, seed=1)  # 8 x 5 min at 10 Hz
        ours = best_ms(lambda: sync.rqa(small, 1.0), 2)
        base = best_ms(lambda: msp.rqa_metrics(msp.recurrence_matrix(small, 1.0)))
        rows.append(
            _row(
                "mdRQA 8 x 5 min at 10 Hz, ms",
                ours,
                base,
                "multiSyncPy recurrence_matrix + rqa_metrics",
                1.0,
            )
        )

    band = int(10 * FS)
    tracemalloc.start()
    start = time.perf_counter()
    sync.rqa(x, 1.0, max_offset=band)
    banded_ms = (time.perf_counter() - start) * 1e3
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    full_gb = samples**2 * 8 / 2**30
    rows.append(
        Row(AREA, f"banded mdRQA (10 s band) {size}, ms", banded_ms, None, "", "", None, False)
    )
    rows.append(
        Row(
            AREA,
            f"banded mdRQA {size}: peak traced memory, MB",
            peak_mb,
            full_gb * 1024,
            "multiSyncPy's T x T distance matrix (MB, not run)",
            "bounded",
            peak_mb < 1024,
            False,
        )
    )

    sos = butter_sos(FS, (0.1, 0.6), 2)

    def plain() -> None:
        th = np.angle(ss.hilbert(ss.sosfiltfilt(sos, x, axis=-1), axis=-1))
        u = np.exp(1j * th)
        np.abs(u.mean(axis=0))
        np.abs(u @ u.conj().T) / u.shape[1]

    def ours_pipeline() -> None:
        phasors = sync.phasors(x, FS)
        sync.order_parameter(phasors)
        sync.phase_locking(phasors)

    def three_calls() -> None:
        phases = sync.phases(x, FS)
        sync.order_parameter(phases)
        sync.phase_locking(phases)

    base = best_ms(plain, 2)
    rows.append(
        _row(
            f"phasors -> R -> PLV {size}, ms",
            best_ms(ours_pipeline, 2),
            base,
            "sosfiltfilt + scipy hilbert + angle/exp/mean/matmul",
            1.0,
        )
    )
    rows.append(
        Row(
            AREA,
            f"phases -> R -> PLV (three calls) {size}, ms",
            best_ms(three_calls, 2),
            base,
            "same plain pass",
            "",
            None,
            False,
        )
    )
    return rows
