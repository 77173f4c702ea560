"""The WAL: torn files lose only their last record; replay is idempotent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from support.storage import ACC, ECG, make_batch

from sensocto_lab.errors import StorageError
from sensocto_lab.model import KindSpec
from sensocto_lab.storage import StorageConfig, TieredStore
from sensocto_lab.storage.wal import Chunk, WalWriter, layout_of, list_segments
from sensocto_lab.storage.wal_read import read_segment

NO_THREADS_NO_COMPACT = StorageConfig(background=False, compact_on_close=False)


def _chunk(first_seq: int, n: int = 16) -> Chunk:
    b = make_batch("s1", "ecg", ECG, first_seq, n)
    assert b.recv_ts is not None and b.seq is not None
    return Chunk("lab", "s1", "ecg", "ecg", b.ts, b.recv_ts, b.seq, b.values)


def _write_segment(wal_dir: Path, records: int) -> tuple[Path, list[int]]:
    """A sealed one-file generation; returns its path and each record's end offset."""
    writer = WalWriter(wal_dir, 1)
    ends = []
    for i in range(records):
        writer.write(_chunk(i * 16))
        ends.append(writer.files[next(iter(writer.files))])
    writer.close()
    [seg] = list_segments(wal_dir)
    return seg.path, ends


def test_layout_tags_and_bad_dtype() -> None:
    assert layout_of(np.float32, 1) == "f4x1"
    assert layout_of(np.float64, 3) == "f8x3"
    with pytest.raises(StorageError):
        layout_of(np.int16, 1)


def test_sealed_segment_reads_every_record(tmp_path: Path) -> None:
    path, _ = _write_segment(tmp_path, 5)
    read = read_segment(path)
    assert not read.torn and read.records == 5
    [chunk] = read.chunks  # one series: its records concatenated in order
    np.testing.assert_array_equal(chunk.seq, np.arange(80))
    assert chunk.values[32:48].tobytes() == _chunk(32).values.tobytes()
    assert (chunk.room, chunk.sensor_id, chunk.kind) == ("lab", "s1", "ecg")


def test_torn_file_loses_only_its_last_record(tmp_path: Path) -> None:
    path, ends = _write_segment(tmp_path, 4)
    whole = path.read_bytes()
    # Every cut inside the last record, and a sample of cuts inside the others.
    cuts = list(range(ends[2] + 1, ends[3])) + list(range(1, ends[2], 37))
    for cut in cuts:
        read = read_segment(pa.py_buffer(whole[:cut]))
        complete = sum(1 for e in ends if e <= cut)
        assert read.torn, cut
        assert read.records == complete, cut
        seq = read.chunks[0].seq if read.chunks else np.zeros(0)
        np.testing.assert_array_equal(seq, np.arange(complete * 16))
    for end in ends:  # a cut exactly between records loses nothing
        read = read_segment(pa.py_buffer(whole[:end]))
        assert read.records == ends.index(end) + 1 and not read.torn


def test_store_recovers_a_torn_segment(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, NO_THREADS_NO_COMPACT)
    for i in range(5):
        store.append(make_batch("s1", "ecg", ECG, i * 32, 32), room="lab", kind=ECG)
    store.close()
    [seg] = list_segments(tmp_path / "wal")
    with open(seg.path, "r+b") as f:  # a crash in the middle of the fifth record
        f.truncate(seg.path.stat().st_size - 60)
    recovered = TieredStore.open(tmp_path, NO_THREADS_NO_COMPACT)
    stats = recovered.statistics()
    assert stats["torn_records_dropped"] == 1
    assert stats["samples_recovered"] == 4 * 32
    ts, _ = recovered.latest("s1", "ecg")
    assert ts.shape == (128,)  # the rings are refilled from the WAL
    np.testing.assert_array_equal(
        recovered.read_table("s1", "ecg").column("seq").to_numpy(), np.arange(128)
    )
    recovered.compact()
    assert list_segments(tmp_path / "wal") == []
    assert (tmp_path / "wal" / "torn" / seg.path.name).exists()  # kept for inspection
    recovered.append(make_batch("s1", "ecg", ECG, 128, 32), room="lab", kind=ECG)
    recovered.close()
    again = TieredStore.open(tmp_path, NO_THREADS_NO_COMPACT)
    np.testing.assert_array_equal(
        again.read_table("s1", "ecg").column("seq").to_numpy(), np.arange(160)
    )
    again.close()


@pytest.mark.parametrize("committed", [False, True], ids=["before-commit", "after-commit"])
def test_replay_after_crash_mid_compaction_has_no_duplicates(
    tmp_path: Path, committed: bool
) -> None:
    data = tmp_path / "data"
    store = TieredStore.open(data, NO_THREADS_NO_COMPACT)
    for i in range(4):
        store.append(make_batch("s1", "ecg", ECG, i * 32, 32), room="lab", kind=ECG)
        store.append(make_batch("s1", "acc", ACC, i * 4, 4), room="lab", kind=ACC)
    store.close()
    saved = tmp_path / "wal-before"
    shutil.copytree(data / "wal", saved)
    with TieredStore.open(data, NO_THREADS_NO_COMPACT) as compacting:
        compacting.compact()
    parts = sorted((data / "cold").rglob("*.parquet"))
    assert len(parts) == 2
    # Put the crash back: the segments were not deleted (and maybe not committed).
    for f in saved.glob("seg-*.arrows"):
        shutil.copy(f, data / "wal" / f.name)
    if not committed:
        os.remove(data / "wal" / "COMPACTED")
    crashed = TieredStore.open(data, NO_THREADS_NO_COMPACT)
    for attr, n in (("ecg", 128), ("acc", 16)):
        seq = crashed.read_table("s1", attr).column("seq").to_numpy()
        np.testing.assert_array_equal(seq, np.arange(n))
        assert crashed.history(["s1"], [attr])[attr].shape[1] == n
    crashed.compact()
    assert sorted((data / "cold").rglob("*.parquet")) == parts  # same names, rewritten
    assert not list((data / "cold").rglob("*.tmp"))
    np.testing.assert_array_equal(
        crashed.read_table("s1", "ecg").column("seq").to_numpy(), np.arange(128)
    )
    crashed.close()


def test_unwritable_wal_is_a_storage_error_and_loses_nothing_written(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, NO_THREADS_NO_COMPACT)
    store.append(make_batch("s1", "ecg", ECG, 0, 8), room="lab", kind=ECG)
    store.compact()
    # The next generation's file cannot be created (works even as root).
    (tmp_path / "wal" / "seg-000000000002-f4x1.arrows").mkdir()
    with pytest.raises(StorageError):
        store.append(make_batch("s1", "ecg", ECG, 8, 8), room="lab", kind=ECG)
    np.testing.assert_array_equal(
        store.read_table("s1", "ecg").column("seq").to_numpy(), np.arange(8)
    )
    assert store.statistics()["samples_appended"] == 8
    (tmp_path / "wal" / "seg-000000000002-f4x1.arrows").rmdir()
    store.append(make_batch("s1", "ecg", ECG, 8, 8), room="lab", kind=ECG)  # recovers
    store.close()


def test_failed_write_leaves_no_half_record(tmp_path: Path) -> None:
    """A write cut short (here: file size limit) is undone, so later records stay readable."""
    resource = pytest.importorskip("resource")
    import signal

    store = TieredStore.open(tmp_path, NO_THREADS_NO_COMPACT)
    store.append(make_batch("s1", "ecg", ECG, 0, 32), room="lab", kind=ECG)
    [seg] = list_segments(tmp_path / "wal")
    limit = seg.path.stat().st_size + 100  # the next record is larger than 100 bytes
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(StorageError):
            store.append(make_batch("s1", "ecg", ECG, 32, 32), room="lab", kind=ECG)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    store.append(make_batch("s1", "ecg", ECG, 32, 32), room="lab", kind=ECG)  # the retry
    store.close()
    read = read_segment(seg.path)
    assert not read.torn and read.records == 2
    np.testing.assert_array_equal(read.chunks[0].seq, np.arange(64))


def _arrow_stream(chunks: list[Chunk]) -> bytes:
    """The IPC stream pyarrow alone writes for ``chunks`` (one layout), with our metadata."""
    first = chunks[0]
    width = 1 if first.values.ndim == 1 else first.values.shape[1]
    value_type = pa.from_numpy_dtype(first.values.dtype)
    schema = pa.schema(
        [
            ("ts", pa.int64()),
            ("recv_ts", pa.int64()),
            ("seq", pa.int64()),
            ("value", value_type if width == 1 else pa.list_(value_type, width)),
        ]
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for c in chunks:
            values = (
                pa.array(c.values)
                if width == 1
                else pa.FixedSizeListArray.from_arrays(pa.array(c.values.reshape(-1)), width)
            )
            batch = pa.RecordBatch.from_arrays(
                [pa.array(c.ts), pa.array(c.recv_ts), pa.array(c.seq), values], schema=schema
            )
            meta = {"room": c.room, "sensor": c.sensor_id, "attribute": c.attribute_id}
            writer.write_batch(batch, custom_metadata={**meta, "kind": c.kind})
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("kind", [ECG, ACC], ids=["scalar", "vector"])
def test_records_are_byte_for_byte_what_pyarrow_writes(tmp_path: Path, kind: KindSpec) -> None:
    """Repeated (series, length) records reuse a header; the file must not change by it."""
    chunks = []
    seq = 0
    # Lengths repeat (cached headers), are odd (padded values) and vary; two series.
    for n in (5, 5, 8, 5, 1, 8, 1, 5, 7, 7):
        for sensor in ("s1", "s2"):
            b = make_batch(sensor, "x", kind, seq, n)
            assert b.recv_ts is not None and b.seq is not None
            chunks.append(Chunk("lab", sensor, "x", kind.name, b.ts, b.recv_ts, b.seq, b.values))
        seq += n
    writer = WalWriter(tmp_path, 1)
    for c in chunks:
        writer.write(c)
    writer.close()
    [seg] = list_segments(tmp_path)
    assert seg.path.read_bytes() == _arrow_stream(chunks)
    read = read_segment(seg.path)
    assert not read.torn and read.records == len(chunks)
