"""The WAL: torn files lose only their last record (a group record whole); replay is idempotent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from support.storage import ACC, ECG, RESP, make_batch

from sensocto_lab.errors import StorageError, ValidationError
from sensocto_lab.model import Batch, KindSpec
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


def _group_items(first: int) -> list[tuple[Batch, str, KindSpec]]:
    """One loop turn's worth of appends: three series of two layouts, s1/ecg twice."""
    return [
        (make_batch("s1", "ecg", ECG, first, 16), "lab", ECG),
        (make_batch("s2", "ecg", ECG, first, 5), "lab", ECG),
        (make_batch("s3", "resp", RESP, first, 10, rate_hz=10.0), "lab", RESP),
        (make_batch("s1", "ecg", ECG, first + 16, 16), "lab", ECG),
        (make_batch("s4", "acc", ACC, first, 3), "hall", ACC),
    ]


def test_a_group_commit_is_one_record_per_layout_and_recovers_sample_exact(
    tmp_path: Path,
) -> None:
    store = TieredStore.open(tmp_path, NO_THREADS_NO_COMPACT)
    store.append(make_batch("s1", "ecg", ECG, 0, 16), room="lab", kind=ECG)  # a plain record
    assert store.append_many([(b, r, k) for b, r, k in _group_items(16)]) == [None] * 5
    assert store.statistics()["batches_appended"] == 6
    store.close()
    reads = {seg.layout: read_segment(seg.path) for seg in list_segments(tmp_path / "wal")}
    # f4x1: the plain record and one group record; f8x1 and f4x3: one record each
    assert {k: (r.records, r.torn) for k, r in reads.items()} == {
        "f4x1": (2, False),
        "f8x1": (1, False),
        "f4x3": (1, False),
    }
    again = TieredStore.open(tmp_path, NO_THREADS_NO_COMPACT)
    expected = {
        ("s1", "ecg"): make_batch("s1", "ecg", ECG, 0, 48),
        ("s2", "ecg"): make_batch("s2", "ecg", ECG, 16, 5),
        ("s3", "resp"): make_batch("s3", "resp", RESP, 16, 10, rate_hz=10.0),
        ("s4", "acc"): make_batch("s4", "acc", ACC, 16, 3),
    }
    for (sensor, attr), want in expected.items():
        table = again.read_table(sensor, attr)
        assert want.seq is not None
        np.testing.assert_array_equal(table.column("seq").to_numpy(), want.seq)
        np.testing.assert_array_equal(table.column("ts").cast(pa.int64()).to_numpy(), want.ts)
        col = table.column("value").combine_chunks()
        got = col.flatten().to_numpy() if want.values.ndim > 1 else col.to_numpy()
        assert got.tobytes() == want.values.tobytes()  # bit-exact
    assert {s.room for s in again.series() if s.sensor_id == "s4"} == {"hall"}
    ts, _ = again.latest("s1", "ecg")
    assert ts.shape == (48,)  # the rings are refilled from the group record too
    again.close()


def test_a_torn_group_record_is_dropped_whole_and_nothing_before_it(tmp_path: Path) -> None:
    writer = WalWriter(tmp_path, 1)
    writer.write(_chunk(0))
    writer.write(_chunk(16))
    [path] = writer.files
    before = writer.files[path]
    group = [
        Chunk("lab", s, "ecg", "ecg", b.ts, b.recv_ts, b.seq, b.values)
        for s, b in (
            ("s1", make_batch("s1", "ecg", ECG, 32, 16)),
            ("s2", make_batch("s2", "ecg", ECG, 0, 7)),
        )
        if b.recv_ts is not None and b.seq is not None
    ]
    writer.write_group(group)
    end = writer.files[path]
    writer.close()
    whole = path.read_bytes()
    for cut in range(before + 1, end):  # every cut inside the group record
        read = read_segment(pa.py_buffer(whole[:cut]))
        assert read.torn and read.records == 2, cut
        [chunk] = read.chunks  # nothing of s2, nothing of the group's s1 piece
        np.testing.assert_array_equal(chunk.seq, np.arange(32))
    read = read_segment(pa.py_buffer(whole[:end]))
    assert read.records == 3 and not read.torn
    got = {c.sensor_id: c.seq for c in read.chunks}
    np.testing.assert_array_equal(got["s1"], np.arange(48))
    np.testing.assert_array_equal(got["s2"], np.arange(7))


def test_a_failed_group_write_acknowledges_none_of_the_group(tmp_path: Path) -> None:
    """The group's write is cut short (file size limit): every batch in it is refused."""
    resource = pytest.importorskip("resource")
    import signal

    store = TieredStore.open(tmp_path, NO_THREADS_NO_COMPACT)
    store.append(make_batch("s1", "ecg", ECG, 0, 16), room="lab", kind=ECG)
    [seg] = list_segments(tmp_path / "wal")
    limit = seg.path.stat().st_size + 100  # less than the group record
    group = [
        (make_batch(s, "ecg", ECG, 16 if s == "s1" else 0, 64), "lab", ECG) for s in ("s1", "s2")
    ]
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        results = store.append_many(group)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert all(isinstance(r, StorageError) for r in results)
    assert store.statistics()["batches_appended"] == 1
    assert store.read_table("s2", "ecg").num_rows == 0
    assert store.append_many(group) == [None, None]  # the retry
    store.close()
    read = read_segment(seg.path)
    assert not read.torn and read.records == 2
    got = {c.sensor_id: c.seq for c in read.chunks}
    np.testing.assert_array_equal(got["s1"], np.arange(80))
    np.testing.assert_array_equal(got["s2"], np.arange(64))


def test_a_group_refuses_only_its_bad_batches(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, NO_THREADS_NO_COMPACT)
    good = make_batch("s1", "ecg", ECG, 0, 8)
    unstamped = Batch("s2", "ecg", good.ts, good.values)
    results = store.append_many(
        [
            (good, "lab", ECG),
            (unstamped, "lab", ECG),
            (make_batch("s1", "ecg", ECG, 8, 8), "lab", ACC),
        ]
    )
    assert results[0] is None
    assert isinstance(results[1], ValidationError) and results[1].reason == "unstamped_batch"
    assert isinstance(results[2], ValidationError) and results[2].reason == "invalid_shape"
    kinds = store.append_many(
        [
            (make_batch("n1", "x", ECG, 0, 4), "lab", ECG),
            (make_batch("n1", "x", RESP, 4, 4), "lab", RESP),
        ]
    )
    assert kinds[0] is None
    assert isinstance(kinds[1], ValidationError) and kinds[1].reason == "kind_mismatch"
    np.testing.assert_array_equal(
        store.read_table("s1", "ecg").column("seq").to_numpy(), np.arange(8)
    )
    store.close()
