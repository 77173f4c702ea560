"""Events: novelty detection quality and cost, and how fast the engine takes markers.

Measures:

- **detection** on the simulator (16 participants, their hr and rr: the watched kinds) with
  injected artefacts: spikes (a single sample far off), dropouts (a few samples at 0)
  and flat lines (30 s stuck at the last value). An artefact counts as found when a
  ``novelty`` event of its series falls within it or 1 s after; every other event is a
  false alarm, reported per sensor-hour. The same run without artefacts gives the false
  alarms on clean data. No baseline: the issue names none.
- **cost**: the detector's own time per scored sample; the engine's time per ingested
  sample (all six simulated kinds through a real ``TieredStore``) with novelty on vs
  off, best of alternated rounds; and, as the on/off difference is within the noise
  of a shared machine, the time spent inside the detector's ``observe`` during the
  "on" runs (timed around each call) as a share of the rest of the ingest time,
  which is what the < 2 % target is checked on.
- **marks/s**: ``engine.mark`` awaited in a loop on the engine's own loop (in-process,
  ``TieredStore``: validate, WAL, publish).

``python -m bench.bench_events`` prints the table.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench._table import Row, format_table
from sensocto_lab.engine.config import EngineConfig
from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.novelty import NoveltyConfig, NoveltyDetector
from sensocto_lab.events import Event
from sensocto_lab.model import Batch, SensorInfo
from sensocto_lab.sources.simulator import GroupSimulator

AREA = "events"
T0 = 1_767_225_600 * 10**9
N = 16
WATCHED = ("hr", "rr")  # the default NoveltyConfig.kinds the simulator produces
KINDS_OF = ("spike", "dropout", "flat")


def _simulate(seconds: float, seed: int = 0) -> tuple[list[SensorInfo], list[Batch]]:
    sim = GroupSimulator(N, 0.5, seed, start_ns=T0)
    batches: list[Batch] = []
    for _ in range(round(seconds)):
        batches.extend(sim.step(1.0).batches)
    return sim.sensor_infos(), batches


def _inject(
    batches: list[Batch], seed: int
) -> tuple[list[Batch], dict[tuple[str, str], list[tuple[str, int, int]]]]:
    """Artefacts in the watched series: ``(kind, start_ns, end_ns)`` per series."""
    rng = np.random.default_rng(seed)
    series: dict[tuple[str, str], list[Batch]] = defaultdict(list)
    for b in batches:
        series[(b.sensor_id, b.attribute_id)].append(b)
    truth: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
    out: list[Batch] = [b for b in batches if b.attribute_id not in WATCHED]
    for key, parts in series.items():
        if key[1] not in WATCHED:
            continue
        ts = np.concatenate([p.ts for p in parts])
        v = np.concatenate([np.asarray(p.values, np.float64) for p in parts])
        # One artefact every ~2 minutes of the series, after a 2 minute warm-up, kinds in turn.
        span_s = (ts[-1] - ts[0]) / 1e9
        starts = np.arange(120.0, span_s - 60, 120.0) + rng.uniform(-20, 20)
        for j, s in enumerate(starts):
            i = int(np.searchsorted(ts, ts[0] + s * 1e9))
            kind = KINDS_OF[j % 3]
            if kind == "spike":
                v[i] = v[i] + 8 * np.std(v[:i]) * rng.choice([-1, 1])
                end = i + 1
            elif kind == "dropout":
                end = min(v.size, i + 3)
                v[i:end] = 0.0
            else:
                end = int(np.searchsorted(ts, ts[i] + 30e9))
                v[i:end] = v[i - 1]
            truth[key].append((kind, int(ts[i]), int(ts[min(end, ts.size) - 1])))
        edges = np.cumsum([0] + [len(p) for p in parts])
        for p, lo, hi in zip(parts, edges[:-1], edges[1:], strict=True):
            out.append(Batch(p.sensor_id, p.attribute_id, p.ts, v[lo:hi].astype(p.values.dtype)))
    out.sort(key=lambda b: int(b.ts[0]))
    return out, truth


def _detect(infos: list[SensorInfo], batches: list[Batch]) -> tuple[list[Event], float, int]:
    found: list[Event] = []
    detector = NoveltyDetector(NoveltyConfig(), found.extend)
    by_id = {i.sensor_id: i for i in infos}
    start = time.perf_counter()
    for b in batches:
        info = by_id[b.sensor_id]
        detector.observe(info, info.attributes[b.attribute_id], b)
    wall = time.perf_counter() - start
    detector.flush()
    return found, wall, detector.samples


def _quality_rows(seconds: float) -> list[Row]:
    infos, clean = _simulate(seconds, seed=1)
    batches, truth = _inject(clean, seed=2)
    events, wall, scored = _detect(infos, batches)
    hours = N * seconds / 3600
    hit = {k: 0 for k in KINDS_OF}
    total = {k: 0 for k in KINDS_OF}
    false = 0
    by_series: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in events:
        by_series[(str(e.sensor), str(e.value["attribute"]))].append(e.onset_ns)
    for key, onsets in by_series.items():
        spans = truth.get(key, [])
        for t in onsets:
            if not any(lo <= t <= hi + 10**9 for _, lo, hi in spans):
                false += 1
    for key, spans in truth.items():
        onsets = np.array(by_series.get(key, []), dtype=np.int64)
        for kind, lo, hi in spans:
            total[kind] += 1
            hit[kind] += bool(((onsets >= lo) & (onsets <= hi + 10**9)).any())
    clean_events, _, _ = _detect(infos, clean)
    rows = [
        Row(AREA, f"detected {kind}s, % of {total[kind]} injected", 100 * hit[kind] / total[kind])
        for kind in KINDS_OF
    ]
    rows += [
        Row(AREA, "false alarms per sensor-hour (with artefacts)", false / hours,
            higher_is_better=False),
        Row(AREA, "false alarms per sensor-hour (clean data)", len(clean_events) / hours,
            target="< 1", met=len(clean_events) / hours < 1, higher_is_better=False),
        Row(AREA, "detector cost, us per scored sample", wall / scored * 1e6,
            higher_is_better=False),
    ]
    return rows


async def _ingest_s(engine: Engine, batches: list[Batch]) -> tuple[float, float]:
    """Seconds to ingest ``batches``, and of them the seconds spent in the detector."""
    inside = [0.0]
    detector = engine._novelty
    if detector is not None:
        observe = detector.observe

        def timed(*args: Any) -> None:
            t = time.perf_counter()
            observe(*args)
            inside[0] += time.perf_counter() - t

        detector.observe = timed  # type: ignore[method-assign]
    start = time.perf_counter()
    for b in batches:
        await engine.ingest(b)
    return time.perf_counter() - start, inside[0]


async def _cost_rows(seconds: float, rounds: int) -> list[Row]:
    infos, batches = _simulate(seconds, seed=3)
    samples = sum(len(b) for b in batches)
    best = {"on": float("inf"), "off": float("inf")}
    share = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                config = EngineConfig(novelty=NoveltyConfig() if mode == "on" else None)
                path = Path(tmp) / f"{mode}-{r}"
                async with Engine(data_dir=path, thread=False, config=config) as engine:
                    for info in infos:
                        await engine.register_sensor(info)
                    wall, inside = await _ingest_s(engine, batches)
                    best[mode] = min(best[mode], wall)
                    if mode == "on":
                        share = min(share, 100 * inside / (wall - inside))
    per_on, per_off = best["on"] / samples * 1e6, best["off"] / samples * 1e6
    return [
        Row(AREA, "engine us per sample, novelty on (vs off; noisy on a shared machine)",
            per_on, per_off, "the same engine, novelty off", higher_is_better=False),
        Row(AREA, "detector time inside the engine, % of the rest of ingest", share,
            target="< 2 %", met=share < 2.0, higher_is_better=False),
    ]


async def _mark_rows(n: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        async with Engine(data_dir=tmp, thread=False) as engine:
            start = time.perf_counter()
            for i in range(n):
                await engine.mark("bell", room="lab", value={"i": i})
            wall = time.perf_counter() - start
    return [Row(AREA, "engine.mark in-process, marks/s", n / wall)]


def run(quick: bool = False) -> list[Row]:
    """Detection quality, cost and marks/s (see the module doc)."""
    seconds = 900.0 if quick else 3600.0
    rows = _quality_rows(seconds)
    rows += asyncio.run(_cost_rows(60.0 if quick else 180.0, 3 if quick else 5))
    rows += asyncio.run(_mark_rows(2000 if quick else 20000))
    return rows


if __name__ == "__main__":
    print(format_table(run(quick=True)))
