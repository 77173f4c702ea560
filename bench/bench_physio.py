"""Physiology benchmarks: beats of a group's ECG, the streaming detector, HRV, vs neurokit2.

- **ECG beats, 64 sensors x 1 h at 130 Hz** (``--quick``: 16 x 10 min) of simulated
  ECG (noise, baseline wander, 2 % ectopic beats): :func:`sensocto_lab.physio.beats`
  next to neurokit2 ``ecg_clean`` + ``ecg_peaks`` run on two of the sensors and
  scaled to the group (neurokit2 goes one sensor at a time, so its cost is linear
  in sensors). Also the real-time factor: recording length / our time, the issue
  asks >= 1000x (the hour of 64 sensors in <= 3.6 s).
- **Streaming**: one :class:`~sensocto_lab.physio.streaming.StreamingBeats` fed one
  second (130 samples) at a time; the real-time factor of one stream.
- **HRV of 8 sensors x 5 min**: :func:`sensocto_lab.physio.hrv` next to neurokit2
  ``hrv_time`` + ``hrv_frequency`` + ``hrv_nonlinear`` per sensor (the peer computes
  many more nonlinear indices; ours returns SD1/SD2 of them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from bench._table import Row, best_ms, format_table
from sensocto_lab import physio

AREA = "physio"
FS = 130.0


def _seconds(fn: Callable[[], object], repeats: int = 1) -> float:
    return best_ms(fn, repeats) / 1e3


def _ecg(n: int, seconds: float) -> np.ndarray:
    return np.stack(
        [
            physio.simulate_ecg(
                seconds,
                FS,
                heart_rate=60 + (i % 20),
                ectopic_share=0.02,
                noise=0.05,
                wander=0.3,
                seed=i,
            ).ecg
            for i in range(n)
        ]
    )


def run(quick: bool = False) -> list[Row]:
    """Measure ours and neurokit2 in this run (``quick``: a smaller group)."""
    import neurokit2 as nk

    n, seconds = (16, 600.0) if quick else (64, 3600.0)
    size = f"{n} x {seconds / 60:g} min"
    x = _ecg(n, seconds)
    ours = _seconds(lambda: physio.beats(x, "ecg", fs=FS), 2)

    def theirs_two() -> None:
        for row in x[:2]:
            nk.ecg_peaks(nk.ecg_clean(row, sampling_rate=FS), sampling_rate=FS)

    theirs = _seconds(theirs_two) * n / 2
    factor = seconds / ours
    rows = [
        Row(
            AREA,
            f"ECG beats {size} at 130 Hz, ms",
            ours * 1e3,
            theirs * 1e3,
            "neurokit2 ecg_clean + ecg_peaks (2 sensors, x n/2)",
            "<= 1x",
            ours <= theirs,
            False,
        ),
        Row(
            AREA,
            f"ECG beats {size}: real-time factor, x",
            factor,
            None,
            "",
            ">= 1000x",
            factor >= 1000,
            True,
        ),
    ]

    one = x[0]

    def stream() -> None:
        det = physio.StreamingBeats(FS)
        for i in range(0, one.size, 130):
            det.push(one[i : i + 130])
        det.flush()

    per_stream = _seconds(stream)
    rows.append(
        Row(
            AREA,
            f"streaming beats, 1 s chunks, {seconds / 60:g} min: real-time factor, x",
            seconds / per_stream,
            None,
            "",
            "",
            None,
            True,
        )
    )

    short = x[:8, : int(300 * FS)]
    beats = physio.beats(short, "ecg", fs=FS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        physio.hrv(beats)  # warm-up: neurokit2's imports
        ours_hrv = _seconds(lambda: physio.hrv(beats))

        def theirs_hrv() -> None:
            for row in beats.values:
                peaks = np.round(row[~np.isnan(row)] * FS).astype(int)
                nk.hrv_seconds(peaks, sampling_rate=FS)
                nk.hrv_frequency(peaks, sampling_rate=FS)
                nk.hrv_nonlinear(peaks, sampling_rate=FS)

        theirs_hrv_s = _seconds(theirs_hrv)
    rows.append(
        Row(
            AREA,
            "HRV of 8 x 5 min, ms",
            ours_hrv * 1e3,
            theirs_hrv_s * 1e3,
            "neurokit2 hrv_time + hrv_frequency + hrv_nonlinear",
            "<= 1x",
            ours_hrv <= theirs_hrv_s,
            False,
        )
    )
    return rows


if __name__ == "__main__":
    print(format_table(run()))
