"""The process the crash test kills: records ECG at 512 Hz and reports each stored batch.

Runs in a child started by a multiprocessing ``forkserver`` (so it starts in
milliseconds with numpy and pyarrow already imported). After every ``append``
returns, it sends ``(ecg_next_seq, acc_next_seq, events_next)`` over the pipe: those
samples, and events ``e0 .. e{events_next - 1}`` (two per ``append_events``, every
fourth batch), are acknowledged, so after a ``SIGKILL`` they must all be on disk.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from pathlib import Path

from support.storage import ACC, ECG, make_batch

from sensocto_lab.events import Event
from sensocto_lab.storage import StorageConfig, TieredStore

#: Samples per ECG batch; 64 batches a second make 512 Hz.
ECG_BATCH = 8
#: Accelerometer samples per batch (50 Hz, rounded up: it is a second series, not a clock).
ACC_BATCH = 1

CHILD_CONFIG = StorageConfig(
    fsync_interval_s=0.05,
    segment_max_age_s=0.1,
    compaction_poll_s=0.02,
)


def record(
    conn: Connection, data_dir: str, ecg_seq: int, acc_seq: int, event_n: int, paced: bool
) -> None:
    """Open the store (recovering the last crash), then record until killed.

    ``paced`` records in real time at 512 Hz; otherwise as fast as possible, as when
    a device flushes its backlog, so the kill lands mid-write more often.
    """
    store = TieredStore.open(Path(data_dir), CHILD_CONFIG)
    conn.send(("ready", ecg_seq, acc_seq, event_n))
    period = ECG_BATCH / 512.0
    next_tick = time.monotonic()
    while True:
        store.append(make_batch("p1", "ecg", ECG, ecg_seq, ECG_BATCH), room="lab", kind=ECG)
        ecg_seq += ECG_BATCH
        store.append(
            make_batch("p1", "acc", ACC, acc_seq, ACC_BATCH, rate_hz=64.0), room="lab", kind=ACC
        )
        acc_seq += ACC_BATCH
        if ecg_seq % (4 * ECG_BATCH) == 0:
            onset = int(store.latest("p1", "ecg", 1)[0][0])
            store.append_events(
                [Event(onset, f"e{event_n}", room="lab"), Event(onset, f"e{event_n + 1}")]
            )
            event_n += 2
        conn.send(("ack", ecg_seq, acc_seq, event_n))
        next_tick += period
        delay = next_tick - time.monotonic()
        if paced and delay > 0:
            time.sleep(delay)  # pacing the recording at 512 Hz, not waiting for a result
