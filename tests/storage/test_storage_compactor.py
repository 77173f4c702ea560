"""Compaction in a worker process: same files as in-process, failures reported, no orphans."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.storage import ACC, ECG, make_batch

from sensocto_lab.clock import FakeClock
from sensocto_lab.errors import StorageError
from sensocto_lab.storage import StorageConfig, TieredStore
from sensocto_lab.storage.compactor import CompactionWorker, ParquetSettings, compact_generation
from sensocto_lab.storage.wal import list_segments

SETTINGS = ParquetSettings("zstd", None, 1_048_576, 2)
NO_COMPACT = StorageConfig(background=False, compact_on_close=False)


def _sealed_generation(data: Path) -> list[Path]:
    """A data dir with one sealed WAL generation of two series; its files."""
    with TieredStore.open(data, NO_COMPACT) as store:
        for i in range(4):
            store.append(make_batch("s1", "ecg", ECG, i * 64, 64), room="lab", kind=ECG)
            store.append(make_batch("s2", "acc", ACC, i * 8, 8), room="lab", kind=ACC)
    return [s.path for s in list_segments(data / "wal")]


def _parts(cold: Path) -> dict[str, bytes]:
    return {str(p.relative_to(cold)): p.read_bytes() for p in sorted(cold.rglob("*.parquet"))}


def test_the_worker_writes_what_in_process_compaction_writes(tmp_path: Path) -> None:
    paths = _sealed_generation(tmp_path)
    here = compact_generation(paths, tmp_path / "here", tmp_path / "events", 1, SETTINGS)
    worker = CompactionWorker()
    try:
        there = worker.compact(paths, tmp_path / "there", tmp_path / "events", 1, SETTINGS)
        again = worker.compact(
            paths, tmp_path / "there", tmp_path / "events", 1, SETTINGS
        )  # one process, reused
    finally:
        worker.close()
    assert here == there == again
    assert (here.files, here.samples, here.torn) == (2, 4 * 64 + 4 * 8, ())
    assert _parts(tmp_path / "here") == _parts(tmp_path / "there")
    assert not list((tmp_path / "there").rglob("*.tmp"))


def test_a_failure_in_the_worker_is_a_storage_error_and_the_worker_lives_on(
    tmp_path: Path,
) -> None:
    paths = _sealed_generation(tmp_path)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cold directory should be")
    worker = CompactionWorker()
    try:
        with pytest.raises(StorageError, match="compacting generation 1 failed"):
            worker.compact(paths, blocked, blocked.parent / "events", 1, SETTINGS)
        assert worker.compact(paths, tmp_path / "cold", tmp_path / "events", 1, SETTINGS).files == 2
    finally:
        worker.close()


def test_a_dead_worker_is_reported_and_replaced(tmp_path: Path) -> None:
    paths = _sealed_generation(tmp_path)
    worker = CompactionWorker()
    try:
        worker.compact(paths, tmp_path / "cold", tmp_path / "events", 1, SETTINGS)
        assert worker._proc is not None
        worker._proc.kill()
        worker._proc.wait()
        with pytest.raises(StorageError, match="worker died"):
            worker.compact(paths, tmp_path / "cold", tmp_path / "events", 1, SETTINGS)
        assert worker.compact(paths, tmp_path / "cold", tmp_path / "events", 1, SETTINGS).files == 2
    finally:
        worker.close()


#: A store's process that starts its worker, reports the worker's pid, then is killed.
PARENT = """
import sys
import threading
from pathlib import Path
from sensocto_lab.storage.compactor import CompactionWorker, ParquetSettings
from sensocto_lab.storage.wal import list_segments
data = Path(sys.argv[1])
worker = CompactionWorker()
paths = [s.path for s in list_segments(data / "wal")]
settings = ParquetSettings("zstd", None, 1_048_576, 1)
worker.compact(paths, data / "cold", data / "events", 1, settings)
print(worker._proc.pid, flush=True)
sys.stdin.read()  # until the test kills this process
"""


def test_the_worker_ends_when_its_store_process_is_killed(tmp_path: Path) -> None:
    _sealed_generation(tmp_path)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        worker_pid = int(parent.stdout.readline())
        pidfd = os.pidfd_open(worker_pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    try:
        # The pidfd becomes readable when the worker exits: wait on that event.
        readable, _, _ = select.select([pidfd], [], [], 30)
        assert readable, "the compaction worker outlived its store's process"
    finally:
        os.close(pidfd)


def test_background_compaction_runs_in_the_worker(tmp_path: Path) -> None:
    cfg = StorageConfig(segment_max_bytes=1, compaction_poll_s=0.01)
    store = TieredStore.open(tmp_path, cfg)
    for i in range(3):
        store.append(make_batch("s1", "ecg", ECG, i * 32, 32), room="lab", kind=ECG)
    assert store.wait_compacted(timeout=60)
    proc = store._generations.worker._proc
    assert proc is not None and proc.poll() is None and proc.pid != os.getpid()
    store.close()
    assert proc.poll() is not None  # close stopped it
    assert store.read_table("s1", "ecg").num_rows == 96


def test_the_worker_is_started_ahead_once_the_first_generation_is_half_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    cfg = StorageConfig(segment_max_age_s=10, compaction_poll_s=3600)  # woken, never polling
    store = TieredStore.open(tmp_path, cfg, clock=clock)
    started = threading.Event()
    monkeypatch.setattr(store._generations.worker, "start", started.set)
    store.append(make_batch("s1", "ecg", ECG, 0, 32), room="lab", kind=ECG)
    clock.advance(4)
    store.append(make_batch("s1", "ecg", ECG, 32, 32), room="lab", kind=ECG)
    assert not started.is_set()  # 4 s of 10: the compactor was not woken
    clock.advance(2)
    store.append(make_batch("s1", "ecg", ECG, 64, 32), room="lab", kind=ECG)
    assert started.wait(30), "the compactor did not start its worker at half the segment age"
    store.close()


def test_opening_deletes_parts_a_dead_writer_left_half_written(tmp_path: Path) -> None:
    with TieredStore.open(tmp_path) as store:  # compacts on close: a real part directory
        store.append(make_batch("s1", "ecg", ECG, 0, 64), room="lab", kind=ECG)
    part = next((tmp_path / "cold").rglob("*.parquet"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = part.with_name(f"{part.name}.{dead.pid}.tmp")
    # A writer still at work: another live process (this store's own temporaries go
    # on close, as nothing of this process writes them any more).
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    live = part.with_name(f"{part.name}.{other.pid}.tmp")
    orphan.write_bytes(b"half a part")
    live.write_bytes(b"being written")
    try:
        with TieredStore.open(tmp_path, NO_COMPACT) as store:
            assert store.statistics()["stale_temporaries_removed"] == 1
            assert len(store.history(sensors=["s1"]).time) == 64
        assert not orphan.exists() and live.exists()
    finally:
        assert other.stdin is not None
        other.stdin.close()
        other.wait()
