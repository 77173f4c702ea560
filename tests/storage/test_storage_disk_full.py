"""A full disk: appends either land durably in a readable WAL file or raise, and recover.

The disk is a real 1 MiB tmpfs where the machine lets the tests mount one (as root in
most sandboxes), filled with a filler file until the kernel answers ENOSPC; elsewhere
the same tests inject ENOSPC at the WAL's writes. Tests marked ``inject_*`` inject it
at the two exact points on every machine: a file's first write (the one carrying the
IPC stream's schema) and part-way through a record (a short write, then ENOSPC).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from support.storage import ECG, make_batch

import sensocto_lab.storage.cold as cold
import sensocto_lab.storage.wal as wal
from sensocto_lab.errors import StorageError
from sensocto_lab.events import Event
from sensocto_lab.model import Batch
from sensocto_lab.storage import StorageConfig, TieredStore

CFG = StorageConfig(background=False)
T0 = 1_767_225_600 * 10**9


class Disk:
    """A small disk to fill and free: a real tmpfs, or injected ENOSPC on WAL writes."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self._monkeypatch = monkeypatch
        root.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)],
            capture_output=True,
            check=False,
        )
        self._mounted = done.returncode == 0
        self.real = self._mounted
        self._filler = root / "filler"
        self._full = False
        self._real_pwritev = os.pwritev

    def fill(self) -> None:
        if self.real:
            with open(self._filler, "ab") as f:
                chunk = b"\0" * 65536
                while True:
                    try:
                        f.write(chunk)
                        f.flush()
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
                        break
                try:  # the last page may still take a few bytes
                    while True:
                        os.write(f.fileno(), b"\0")
                except OSError:
                    pass
        else:
            self._monkeypatch.setattr(wal.os, "pwritev", _enospc)
        self._full = True

    def free(self) -> None:
        if self.real:
            self._filler.unlink()
        else:
            self._monkeypatch.setattr(wal.os, "pwritev", self._real_pwritev)
        self._full = False

    def unmount(self) -> None:
        if self._mounted:
            subprocess.run(["umount", "-l", str(self.root)], check=False)


def _enospc(*args: Any) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


def _half_a_part(table: pa.Table, where: Any, **options: Any) -> None:
    where.write(b"PAR1 and then the disk was full")
    where.flush()
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    d = Disk(tmp_path / "disk", monkeypatch)
    yield d
    d.unmount()


def _ecg(first: int, n: int) -> Batch:
    return make_batch("s1", "ecg", ECG, first, n)


def _assert_exactly(store: TieredStore, acked: list[Batch]) -> None:
    """The store holds exactly the acknowledged samples, in order, bit-equal."""
    table = store.read_table("s1", "ecg")
    seq = np.concatenate([b.seq for b in acked if b.seq is not None])
    np.testing.assert_array_equal(table.column("seq").to_numpy(), seq)
    values = np.concatenate([b.values for b in acked])
    assert table.column("value").to_numpy().tobytes() == values.tobytes()
    ts = np.concatenate([b.ts for b in acked])
    np.testing.assert_array_equal(table.column("ts").cast(pa.int64()).to_numpy(), ts)


def _no_absolute_paths(message: str, root: Path) -> None:
    assert str(root) not in message
    assert not any(word.strip("'\"").startswith("/") for word in message.split()), message


def _append_refused(store: TieredStore, batch: Batch) -> StorageError:
    with pytest.raises(StorageError) as e:
        store.append(batch, room="lab", kind=ECG)
    return e.value


def test_full_disk_at_a_new_segments_first_write_acknowledges_nothing_unreadable(
    disk: Disk,
) -> None:
    data = disk.root / "data"
    store = TieredStore.open(data, CFG)
    disk.fill()
    refused = _append_refused(store, _ecg(0, 1024))
    assert refused.reason == "disk_full"
    health = store.statistics()["health"]
    assert health["state"] == "failing" and health["reason"] == "disk_full"
    assert np.datetime64(health["since"].rstrip("Z")) > np.datetime64("2020-01-01")
    _no_absolute_paths(health["message"], disk.root)
    _no_absolute_paths(store.statistics()["last_error"], disk.root)
    disk.free()
    acked = []
    for i in range(10):  # what the issue lost: 10 acknowledged batches of 1024
        b = _ecg(1024 + i * 1024, 1024)
        store.append(b, room="lab", kind=ECG)
        acked.append(b)
    assert store.statistics()["health"]["state"] == "ok"
    assert store.statistics()["last_error"] is not None  # kept for the record
    _assert_exactly(store, acked)
    store.close()
    assert not (data / "wal" / "torn").exists()
    reopened = TieredStore.open(data, CFG, read_only=True)
    _assert_exactly(reopened, acked)


def test_full_disk_part_way_through_a_segment_keeps_it_readable(disk: Disk) -> None:
    data = disk.root / "data"
    store = TieredStore.open(data, CFG)
    acked = [_ecg(0, 64), _ecg(64, 64)]
    for b in acked:
        store.append(b, room="lab", kind=ECG)
    disk.fill()
    refused = _append_refused(store, _ecg(128, 4096))  # 64 KiB: more than a page's slack
    assert refused.reason == "disk_full"
    disk.free()
    for first in (128, 4224):
        b = _ecg(first, 4096)
        store.append(b, room="lab", kind=ECG)
        acked.append(b)
    _assert_exactly(store, acked)
    store.close()
    assert not (data / "wal" / "torn").exists()
    _assert_exactly(TieredStore.open(data, CFG, read_only=True), acked)


def test_full_disk_refuses_events_and_keeps_the_acknowledged_ones(disk: Disk) -> None:
    data = disk.root / "data"
    store = TieredStore.open(data, CFG)
    disk.fill()
    with pytest.raises(StorageError) as e:
        store.append_events([Event(T0, "lost")])
    assert e.value.reason == "disk_full"
    disk.free()
    store.append_events([Event(T0 + 1, "kept")])
    assert list(store.events()["label"]) == ["kept"]
    store.close()
    assert list(TieredStore.open(data, CFG, read_only=True).events()["label"]) == ["kept"]


def test_a_store_that_cannot_open_on_a_full_disk_says_so(disk: Disk) -> None:
    if not disk.real:  # injection covers only the WAL; open writes session.json first
        disk._monkeypatch.setattr("sensocto_lab.storage.session.os.fsync", lambda fd: _enospc())
    disk.fill()
    with pytest.raises(StorageError) as e:
        TieredStore.open(disk.root / "data", CFG)
    assert e.value.reason == "disk_full"
    assert "No space left on device" in str(e.value)
    disk.free()
    if not disk.real:
        disk._monkeypatch.undo()
    store = TieredStore.open(disk.root / "data", CFG)  # the failed open left no lock
    store.append(_ecg(0, 8), room="lab", kind=ECG)
    store.close()
    assert not list((disk.root / "data").rglob("*.tmp"))


def test_close_after_failed_compaction_leaves_no_temporaries_and_loses_nothing(
    disk: Disk,
) -> None:
    data = disk.root / "data"
    store = TieredStore.open(data, CFG)
    acked = [_ecg(i * 4096, 4096) for i in range(4)]
    for b in acked:
        store.append(b, room="lab", kind=ECG)
    disk.fill()
    if not disk.real:  # injection: the Parquet writer runs out of space part-way
        disk._monkeypatch.setattr(cold.pq, "write_table", _half_a_part)
    with pytest.raises(StorageError) as e:
        store.close()  # compacting on close needs space for Parquet
    assert e.value.reason == "disk_full"
    assert not list(data.rglob("*.tmp"))
    assert store.statistics()["health"]["state"] == "failing"
    disk.free()
    if not disk.real:
        disk._monkeypatch.undo()
    reopened = TieredStore.open(data, CFG)  # the WAL kept everything
    _assert_exactly(reopened, acked)
    reopened.close()
    assert list((data / "cold").rglob("*.parquet"))
    _assert_exactly(TieredStore.open(data, CFG, read_only=True), acked)


# -- ENOSPC injected at the two exact write points, on every machine ------------------


def _inject(monkeypatch: pytest.MonkeyPatch, fail: Callable[[Any, list[Any], int], int]) -> None:
    monkeypatch.setattr(wal.os, "pwritev", fail)


def test_inject_enospc_at_a_files_first_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TieredStore.open(tmp_path, CFG)
    _inject(monkeypatch, lambda fd, parts, offset: _enospc())
    assert _append_refused(store, _ecg(0, 64)).reason == "disk_full"
    monkeypatch.undo()
    acked = [_ecg(64, 64), _ecg(128, 64)]
    for b in acked:
        store.append(b, room="lab", kind=ECG)
    _assert_exactly(store, acked)
    store.close()
    assert not (tmp_path / "wal" / "torn").exists()
    _assert_exactly(TieredStore.open(tmp_path, CFG, read_only=True), acked)


def test_inject_enospc_part_way_through_a_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short write (half the record reaches the file), then ENOSPC for the rest."""
    store = TieredStore.open(tmp_path, CFG)
    acked = [_ecg(0, 64)]
    store.append(acked[0], room="lab", kind=ECG)
    real = os.pwritev

    def half(fd: int, parts: list[Any], offset: int) -> int:
        data = b"".join(bytes(p) for p in parts)
        return os.pwrite(fd, data[: len(data) // 2], offset)

    def refuse(fd: int, data: Any, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    _inject(monkeypatch, half)
    monkeypatch.setattr(wal.os, "pwrite", refuse)
    assert _append_refused(store, _ecg(64, 64)).reason == "disk_full"
    monkeypatch.undo()
    assert os.pwritev is real
    for first in (128, 192):
        b = _ecg(first, 64)
        store.append(b, room="lab", kind=ECG)
        acked.append(b)
    _assert_exactly(store, acked)
    store.close()
    _assert_exactly(TieredStore.open(tmp_path, CFG, read_only=True), acked)
