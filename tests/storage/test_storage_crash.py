"""kill -9 at random moments: every acknowledged sample and event survives, every file opens.

A child process records ECG (512 Hz), an accelerometer and events into one data directory,
with a 50 ms fsync interval and segments sealed and compacted every 100 ms, so kills
land during appends, fsyncs, rotations and compactions alike; one trial in four
records as fast as it can (a device's backlog). The parent waits for a random number
of acknowledgements over a pipe, sends SIGKILL, then reopens the store: each series
must hold exactly ``0..M-1`` with ``M`` at least the acknowledged count, bit-equal to
what was sent, and every acknowledged event must be there exactly once. The next
child continues in the same directory, so every trial also recovers the previous
trials' leftovers. (A record reaches the file in one
``pwritev``, which SIGKILL cannot cut; torn records, as a power loss leaves them,
are tested by truncation in ``test_storage_wal.py``.)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import storage_crash_child
from support.storage import ACC, ECG, make_batch

from sensocto_lab.model import KindSpec
from sensocto_lab.storage import StorageConfig, TieredStore
from sensocto_lab.storage.wal import list_segments
from sensocto_lab.storage.wal_read import read_records, read_segment

TRIALS = 20
RECV_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def forkserver() -> mp.context.ForkServerContext:
    ctx = mp.get_context("forkserver")
    # The server does not see the tests' sys.path; preload the heavy imports it can find
    # (children get the test's sys.path and import the two small helper modules).
    ctx.set_forkserver_preload(["sensocto_lab.storage", "pytest"])
    return ctx


def _recv(conn: mp.connection.Connection) -> tuple[str, int, int, int]:
    if not conn.poll(RECV_TIMEOUT_S):
        raise AssertionError("the recording child stopped reporting")
    msg: tuple[str, int, int, int] = conn.recv()
    return msg


def _check_events(store: TieredStore, acked: int) -> int:
    """Events ``e0 .. e{n-1}``, each exactly once, ``n`` at least the acknowledged count."""
    labels = list(store.events()["label"])
    n = len(labels)
    assert n >= acked, f"{acked - n} acknowledged events lost"
    assert sorted(labels, key=lambda x: int(x[1:])) == [f"e{i}" for i in range(n)]
    assert n % 2 == 0  # a call's events are one WAL record: all or none
    return n


def _check_series(
    store: TieredStore, attr: str, kind: KindSpec, acked: int, rate_hz: float, batch: int
) -> int:
    table = store.read_table("p1", attr)
    n = table.num_rows
    assert n >= acked, f"{attr}: {acked - n} acknowledged samples lost"
    np.testing.assert_array_equal(table.column("seq").to_numpy(), np.arange(n))
    expected = make_batch("p1", attr, kind, 0, n, rate_hz=rate_hz)
    np.testing.assert_array_equal(table.column("ts").cast(pa.int64()).to_numpy(), expected.ts)
    col = table.column("value").combine_chunks()
    got = col.flatten().to_numpy() if kind.width > 1 else col.to_numpy()
    assert got.tobytes() == expected.values.tobytes()
    # A sample the child had not acknowledged may survive, but only whole batches.
    assert n % batch == 0
    return n


def _check_files_open(data_dir: Path) -> None:
    for path in [
        *(data_dir / "cold").rglob("*.parquet"),
        *(data_dir / "events").rglob("*.parquet"),
    ]:
        pq.read_table(path)
    for seg in list_segments(data_dir / "wal"):
        # never raise; a torn tail is reported, not fatal
        read_records(seg.path) if seg.is_events else read_segment(seg.path)


@pytest.mark.soak
@pytest.mark.timeout(240)
def test_sigkill_at_random_moments_loses_no_acknowledged_sample(
    tmp_path: Path, forkserver: mp.context.ForkServerContext
) -> None:
    rng = random.Random(20261122)
    data_dir = tmp_path / "data"
    ecg_n = acc_n = events_n = 0
    for trial in range(TRIALS):
        parent, child = forkserver.Pipe(duplex=False)
        proc = forkserver.Process(
            target=storage_crash_child.record,
            args=(child, str(data_dir), ecg_n, acc_n, events_n, trial % 4 != 3),
        )
        proc.start()
        child.close()
        assert _recv(parent)[0] == "ready"
        acks = rng.randint(2, 40)
        acked = (ecg_n, acc_n, events_n)
        for _ in range(acks):
            _, ecg_acked, acc_acked, events_acked = _recv(parent)
            acked = (ecg_acked, acc_acked, events_acked)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(RECV_TIMEOUT_S)
        assert proc.exitcode == -signal.SIGKILL, f"trial {trial}: child ended {proc.exitcode}"
        parent.close()

        _check_files_open(data_dir)
        # The kill released the child's lock on the directory with the process.
        store = TieredStore.open(data_dir, StorageConfig(background=False, compact_on_close=False))
        ecg_n = _check_series(store, "ecg", ECG, acked[0], 512.0, storage_crash_child.ECG_BATCH)
        acc_n = _check_series(store, "acc", ACC, acked[1], 64.0, storage_crash_child.ACC_BATCH)
        events_n = _check_events(store, acked[2])
        if trial % 2:
            store.compact()  # half the trials continue from Parquet, half from the WAL
            ecg_again = _check_series(
                store, "ecg", ECG, acked[0], 512.0, storage_crash_child.ECG_BATCH
            )
            assert ecg_again == ecg_n
            assert _check_events(store, acked[2]) == events_n
        # Closed without compacting: the next child recovers what this child left behind.
        store.close()
    assert ecg_n > 0 and acc_n > 0 and events_n > 0
