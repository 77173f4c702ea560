"""Study benchmarks: many sessions analysed as one, here and on a two-process cluster.

- **serial apply vs a plain loop**: ``study.apply(sync.synchrony, ...)`` over every
  session and condition, next to the loop a user would write: open each session
  read-only, read its conditions, ``history(condition=)`` and ``synchrony`` each.
- **cluster vs serial**: the same ``apply`` on a ``LocalCluster`` of two worker
  processes (one thread each), started and warmed before timing.
- **history vs pq.read_table**: one session-hour of 8 sensors at 20 Hz read as xarray
  through ``history()``, next to ``pq.read_table`` of the same Parquet files.
- **peak RSS**: a fresh process opens a study and runs ``apply`` serially; its peak
  resident memory (``ru_maxrss``), for a study and one twice its size.
- **summary of 1000 sessions**: ``study.summary()`` over 1000 tiny sessions (copies of
  one), after ``Study.open``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._table import Row, format_table
from sensocto_lab import sync
from sensocto_lab.storage.tiered import TieredStore
from sensocto_lab.study import Study, write_session, write_study

AREA = "study"
ROOT = Path(__file__).resolve().parents[1]


def _best(fn: object, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def _plain_loop(root: Path) -> list[float]:
    out = []
    for d in sorted(p.parent for p in root.glob("*/session.json")):
        store = TieredStore.open(d, read_only=True)
        ev = store.events()
        for label in dict.fromkeys(ev.loc[ev["kind"] == "condition", "label"]):
            ds = store.history(attributes=["respiration"], condition=label)
            out.append(float(sync.synchrony(ds, progress=False).mean()))
    return out


def _apply_rows(root: Path, quick: bool) -> list[Row]:
    study = Study.open(root)
    repeats = 5 if quick else 9

    def serial() -> None:
        study.apply(sync.synchrony, attributes=["respiration"], progress=False)

    # interleaved, median of each: the machine is shared and its load comes and goes,
    # so a best-of-n compares one lucky moment with another
    studies, loops = [], []
    for _ in range(repeats):
        studies.append(_best(serial, 1))
        loops.append(_best(lambda: _plain_loop(root), 1))
    t_study, t_loop = statistics.median(studies), statistics.median(loops)
    rows = [
        Row(AREA, f"s (median), serial apply(sync.synchrony), {len(study)} sessions x 2 conditions",
            t_study, t_loop, "plain loop over TieredStore.open(...).history(condition=)",
            "<= 1.1x", t_study <= 1.1 * t_loop, higher_is_better=False),
    ]  # fmt: skip
    from distributed import Client, LocalCluster

    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
            dashboard_address=None, env=env,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        study.apply(sync.synchrony, attributes=["respiration"], client=client)  # warm up

        def spread() -> None:
            study.apply(sync.synchrony, attributes=["respiration"], client=client)

        t_cluster = _best(spread, repeats)
    rows.append(
        Row(AREA, "speed-up, LocalCluster 2 worker processes vs serial apply (x)",
            t_study / t_cluster, None, "", ">= 1.6x (2 shared cores)",
            t_study / t_cluster >= 1.6)
    )  # fmt: skip
    return rows


def _read_rows(tmp: Path, quick: bool) -> list[Row]:
    import pyarrow.parquet as pq

    hour = tmp / "hour"
    seconds = 900.0 if quick else 3600.0
    write_session(hour, name="hour", participants=8, protocol=[("rest", seconds, 0.0)], fs=20.0)
    files = sorted((hour / "cold").rglob("*.parquet"))
    store = TieredStore.open(hour, read_only=True)

    def ours() -> None:
        store.history(attributes=["respiration"]).load()

    def theirs() -> None:
        for f in files:
            t = pq.read_table(f, columns=["ts", "value"])
            t.column("ts").to_numpy()
            t.column("value").to_numpy()

    t_ours, t_pq = _best(ours, 5), _best(theirs, 5)
    return [
        Row(AREA, f"s to read 8 sensors x {seconds / 60:g} min at 20 Hz via history()", t_ours,
            t_pq, "pq.read_table of the same files (ts, value to numpy)", "<= 1.5x",
            t_ours <= 1.5 * t_pq, higher_is_better=False)
    ]  # fmt: skip


_CHILD = """
import resource, sys
from sensocto_lab import sync
from sensocto_lab.study import Study
study = Study.open(sys.argv[1])
study.apply(sync.synchrony, attributes=["respiration"], progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


#: What a LocalCluster's nannies leave in this process's environment for their workers.
_CLUSTER_ENV = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED", "__DASK_PARENT_PID")  # fmt: skip


def _rss_mb(root: Path) -> float:
    """Peak RSS of a fresh process (a notebook's), not of one a cluster left settings in."""
    env = {k: v for k, v in os.environ.items() if k not in _CLUSTER_ENV}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root)], capture_output=True, text=True, env=env,
        check=True, timeout=600,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def _rss_rows(small: Path, tmp: Path, n: int) -> list[Row]:
    big = tmp / "big"
    shutil.copytree(small, big / "a")
    shutil.copytree(small, big / "b")
    a, b = _rss_mb(small), _rss_mb(big)
    return [
        Row(AREA, f"peak RSS of the calling process, serial apply, {n} sessions (MB)", a,
            None, "", "< 300 MB", a < 300, higher_is_better=False),
        Row(AREA, f"peak RSS of the calling process, serial apply, {2 * n} sessions (MB)", b,
            a, f"the same for {n} sessions", "< 300 MB", b < 300, higher_is_better=False),
    ]  # fmt: skip


def _summary_rows(tmp: Path, sessions: int) -> list[Row]:
    one = tmp / "tiny-one"
    write_session(one, name="tiny", participants=2, protocol=[("a", 5.0, 0.0), ("b", 5.0, 1.0)])
    (one / "LOCK").unlink(missing_ok=True)
    root = tmp / "many"
    doc = json.loads((one / "session.json").read_text())
    for k in range(sessions):
        d = root / f"s{k:04d}"
        shutil.copytree(one, d)
        doc["name"] = f"tiny-{k:04d}"
        (d / "session.json").write_text(json.dumps(doc))
    start = time.perf_counter()
    study = Study.open(root)
    t_open = time.perf_counter() - start
    t_summary = _best(study.summary, 3)
    assert len(study.summary()) == sessions
    return [
        Row(AREA, f"s, Study.open of {sessions} tiny sessions", t_open, None, "", "", None,
            higher_is_better=False),
        Row(AREA, f"s, study.summary() of {sessions} tiny sessions", t_summary, None, "",
            "<= 2 s", t_summary <= 2.0, higher_is_better=False),
    ]  # fmt: skip


def run(quick: bool = False) -> list[Row]:
    """Every study measure (quick: 8 sessions of 2 x 60 s, a 15-minute read)."""
    n = 8 if quick else 24
    seconds = 60.0 if quick else 180.0
    protocol = (("baseline", seconds, 0.0), ("task", seconds, 4.0))
    with tempfile.TemporaryDirectory(prefix="bench-study-") as name:
        tmp = Path(name)
        root = tmp / "study"
        write_study(root, n, participants=4, protocol=protocol, fs=10.0, seed=0)
        for lock in root.glob("*/LOCK"):
            lock.unlink()
        rows = _rss_rows(root, tmp, n)
        rows += _apply_rows(root, quick)
        rows += _read_rows(tmp, quick)
        rows += _summary_rows(tmp, 1000)
    return rows


if __name__ == "__main__":
    print(format_table(run(quick="--quick" in sys.argv)))
