"""TieredStore: round trips through every tier, rings, load scaling, bad input."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import xarray as xr
from support.storage import ACC, ECG, RESP, T0_NS, make_batch

from sensocto_lab.clock import FakeClock
from sensocto_lab.errors import ClosedResourceError, ValidationError
from sensocto_lab.model import KINDS, Batch, KindSpec
from sensocto_lab.storage import StorageConfig, Store, StoredSeries, TieredStore, cold


def _record(
    store: TieredStore, sensor: str, attr: str, kind, batches: int, n: int = 64
) -> list[Batch]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(batches):
        b = make_batch(sensor, attr, kind, i * n, n)
        store.append(b, room="lab", kind=kind)
        out.append(b)
    return out


def _assert_same(table: pa.Table, batches: list[Batch]) -> None:
    """Every sample comes back once, in order, bit-equal."""
    ts = np.concatenate([b.ts for b in batches])
    values = np.concatenate([b.values for b in batches])
    recv = np.concatenate([b.recv_ts for b in batches if b.recv_ts is not None])
    seq = np.concatenate([b.seq for b in batches if b.seq is not None])
    assert table.num_rows == ts.shape[0]
    np.testing.assert_array_equal(table.column("seq").to_numpy(), seq)
    np.testing.assert_array_equal(table.column("ts").cast(pa.int64()).to_numpy(), ts)
    np.testing.assert_array_equal(table.column("recv_ts").cast(pa.int64()).to_numpy(), recv)
    col = table.column("value").combine_chunks()
    got = (
        col.flatten().to_numpy().reshape(values.shape)
        if isinstance(col.type, pa.FixedSizeListType)
        else col.to_numpy()
    )
    assert got.dtype == values.dtype
    assert got.tobytes() == values.tobytes()


def test_is_a_store(store: TieredStore) -> None:
    assert isinstance(store, Store)


@pytest.mark.parametrize("kind", [ECG, ACC, RESP], ids=lambda k: k.name)
def test_round_trip_through_wal_only(store: TieredStore, kind: KindSpec) -> None:
    batches = _record(store, "s1", kind.name, kind, 10)
    assert store.statistics()["samples_compacted"] == 0
    _assert_same(store.read_table("s1", kind.name), batches)


@pytest.mark.parametrize("kind", [ECG, ACC, RESP], ids=lambda k: k.name)
def test_round_trip_after_compaction(store: TieredStore, kind: KindSpec) -> None:
    batches = _record(store, "s1", kind.name, kind, 10)
    store.compact()
    stats = store.statistics()
    assert stats["samples_compacted"] == 640
    assert stats["segments_pending"] == 0
    assert list((store.data_dir / "wal").glob("seg-*.arrows")) == []
    _assert_same(store.read_table("s1", kind.name), batches)


def test_round_trip_mixed_tiers_and_reopen(tmp_path: Path) -> None:
    cfg = StorageConfig(background=False)
    store = TieredStore.open(tmp_path, cfg)
    batches = _record(store, "s1", "ecg", ECG, 5)
    store.compact()  # generation 1 → Parquet
    for i in range(5, 9):  # generation 2 stays in the WAL
        b = make_batch("s1", "ecg", ECG, i * 64, 64)
        store.append(b, room="lab", kind=ECG)
        batches.append(b)
    _assert_same(store.read_table("s1", "ecg"), batches)
    ds = store.history(["s1"], ["ecg"])
    assert ds["ecg"].shape == (1, 9 * 64)
    assert ds["ecg"].values.tobytes() == np.concatenate([b.values for b in batches]).tobytes()
    store.close()  # compacts the rest
    reopened = TieredStore.open(tmp_path, cfg)
    _assert_same(reopened.read_table("s1", "ecg"), batches)
    reopened.close()


def test_history_shape_units_and_nan_where_missing(store: TieredStore) -> None:
    a = make_batch("a", "ecg", ECG, 0, 4)
    b = make_batch("b", "ecg", ECG, 2, 4)  # overlaps a at seq 2, 3
    acc = make_batch("a", "acc", ACC, 0, 3)
    for batch, kind in ((a, ECG), (b, ECG), (acc, ACC)):
        store.append(batch, room="lab", kind=kind)
    ds = store.history()
    assert list(ds["sensor"].values) == ["a", "b"]
    assert ds["ecg"].dims == ("sensor", "time")
    assert ds["acc"].dims == ("sensor", "time", "component")
    assert list(ds["component"].values) == ["x", "y", "z"]
    assert ds["ecg"].attrs == {"units": "mV", "kind": "ecg", "rate_hz": ECG.rate_hz}
    assert ds.sizes["time"] == 6  # union of seq 0..5 timestamps
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    ecg = ds["ecg"].values
    assert np.isnan(ecg[0, 4:]).all() and np.isnan(ecg[1, :2]).all()
    np.testing.assert_array_equal(ecg[0, :4], a.values)
    np.testing.assert_array_equal(ecg[1, 2:], b.values)
    assert np.isnan(ds["acc"].values[1]).all()


def test_history_time_range_and_selection(store: TieredStore) -> None:
    _record(store, "s1", "ecg", ECG, 4)
    _record(store, "s2", "ecg", ECG, 4)
    store.compact()
    start = T0_NS + 100 * 1953125
    end = np.datetime64(T0_NS + 200 * 1953125, "ns")
    ds = store.history(["s2"], ["ecg"], start, end)
    assert list(ds["sensor"].values) == ["s2"]
    times = ds["time"].values.astype(np.int64)
    assert times[0] == start and times[-1] < end.astype(np.int64) and times.shape == (100,)


def test_history_keeps_samples_with_equal_timestamps(store: TieredStore) -> None:
    ts = np.full(3, T0_NS, dtype=np.int64)
    batch = Batch("s1", "hr", ts, np.array([60.0, 61.0, 62.0])).stamped(T0_NS, 0)
    store.append(batch, room="lab", kind=KINDS["hr"])
    ds = store.history()
    assert ds.sizes["time"] == 3
    np.testing.assert_array_equal(ds["hr"].values[0], [60.0, 61.0, 62.0])


def test_history_lazy_matches_eager(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, StorageConfig(background=False, dask_chunk_samples=100))
    _record(store, "s1", "ecg", ECG, 6)
    store.compact()
    _record(store, "s2", "ecg", ECG, 3)
    eager = store.history()
    lazy = store.history(lazy=True)
    assert lazy["ecg"].chunks is not None
    np.testing.assert_array_equal(lazy["ecg"].values, eager["ecg"].values)
    np.testing.assert_array_equal(lazy["time"].values, eager["time"].values)
    store.close()


def test_latest_reads_rings_newest_last(store: TieredStore) -> None:
    batches = _record(store, "s1", "ecg", ECG, 20, n=50)  # 1000 samples > 150 + 500
    ts, _ = store.latest("s1", "ecg")
    assert ts.shape == (650,)
    all_ts = np.concatenate([b.ts for b in batches])
    np.testing.assert_array_equal(ts, all_ts[-650:])
    ts5, v5 = store.latest("s1", "ecg", 5)
    np.testing.assert_array_equal(ts5, all_ts[-5:])
    np.testing.assert_array_equal(v5, batches[-1].values[-5:])
    assert store.statistics()["rings"]["s1/ecg"] == {"hot": 150, "warm": 500}
    empty_ts, _ = store.latest("nobody", "ecg")
    assert empty_ts.shape == (0,)


def test_skeleton_keeps_one_sample(store: TieredStore) -> None:
    sk = KINDS["skeleton"]
    _record(store, "cam", "pose", sk, 3, n=4)
    _, values = store.latest("cam", "pose")
    assert values.shape == (1, 99)
    assert store.statistics()["rings"]["cam/pose"] == {"hot": 1, "warm": 0}


def test_load_scale_shrinks_memory_but_loses_nothing(store: TieredStore) -> None:
    batches = _record(store, "s1", "ecg", ECG, 20, n=50)
    full = store.statistics()["ring_bytes"]
    store.set_load_scale(0.05)
    assert store.statistics()["rings"]["s1/ecg"] == {"hot": 7, "warm": 25}
    assert store.statistics()["ring_bytes"] < full / 10
    batches += _record_more(store, 20, 10)
    ts, _ = store.latest("s1", "ecg")
    assert ts.shape == (32,)
    _assert_same(store.read_table("s1", "ecg"), batches)
    store.compact()
    _assert_same(store.read_table("s1", "ecg"), batches)
    store.set_load_scale(1.0)
    assert store.statistics()["rings"]["s1/ecg"]["hot"] == 32  # grows back as samples arrive
    with pytest.raises(ValidationError):
        store.set_load_scale(0)


def _record_more(store: TieredStore, first_batch: int, count: int, n: int = 50) -> list[Batch]:
    out = []
    for i in range(first_batch, first_batch + count):
        b = make_batch("s1", "ecg", ECG, i * n, n)
        store.append(b, room="lab", kind=ECG)
        out.append(b)
    return out


def test_bad_batches_are_refused_and_lose_nothing(store: TieredStore) -> None:
    good = make_batch("s1", "ecg", ECG, 0, 8)
    store.append(good, room="lab", kind=ECG)
    unstamped = Batch("s1", "ecg", good.ts, good.values)
    with pytest.raises(ValidationError) as e1:
        store.append(unstamped, room="lab", kind=ECG)
    assert e1.value.reason == "unstamped_batch"
    with pytest.raises(ValidationError) as e2:
        store.append(make_batch("s1", "ecg", ACC, 8, 8), room="lab", kind=ACC)
    assert e2.value.reason == "kind_mismatch"
    wrong_shape = Batch("s1", "ecg", good.ts, np.zeros((8, 2))).stamped(T0_NS, 8)
    with pytest.raises(ValidationError) as e3:
        store.append(wrong_shape, room="lab", kind=ECG)
    assert e3.value.reason == "invalid_shape"
    with pytest.raises(ValidationError) as e4:
        store.append(make_batch("../etc", "ecg", ECG, 0, 8), room="lab", kind=ECG)
    assert e4.value.reason == "invalid_sensor_id"
    with pytest.raises(ValidationError):
        store.history(start="not a time")
    _assert_same(store.read_table("s1", "ecg"), [good])
    assert store.statistics()["samples_appended"] == 8


def test_closed_store_refuses_appends_but_reads(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, StorageConfig(background=False))
    b = make_batch("s1", "ecg", ECG, 0, 8)
    store.append(b, room="lab", kind=ECG)
    store.close()
    store.close()  # idempotent
    with pytest.raises(ClosedResourceError):
        store.append(make_batch("s1", "ecg", ECG, 8, 8), room="lab", kind=ECG)
    _assert_same(store.read_table("s1", "ecg"), [b])


def test_segments_rotate_by_age_and_size(tmp_path: Path) -> None:
    clock = FakeClock()
    cfg = StorageConfig(background=False, segment_max_age_s=10, segment_max_bytes=50_000)
    store = TieredStore.open(tmp_path, cfg, clock=clock)
    _record(store, "s1", "ecg", ECG, 2)
    assert store.statistics()["segments_pending"] == 0
    clock.advance(11)
    store.append(make_batch("s1", "ecg", ECG, 128, 64), room="lab", kind=ECG)
    assert store.statistics()["segments_pending"] == 1  # sealed by age
    for i in range(3, 40):
        store.append(make_batch("s1", "ecg", ECG, i * 64, 64), room="lab", kind=ECG)
    assert store.statistics()["segments_pending"] >= 2  # sealed by size
    store.compact()
    assert store.read_table("s1", "ecg").num_rows == 40 * 64
    store.close()


def test_stats_report_lag_and_wal_bytes(tmp_path: Path) -> None:
    clock = FakeClock()
    store = TieredStore.open(tmp_path, StorageConfig(background=False), clock=clock)
    assert store.statistics()["storage_lag_s"] == 0.0
    store.append(make_batch("s1", "ecg", ECG, 0, 64), room="lab", kind=ECG)
    clock.advance(2.5)
    stats = store.statistics()
    assert stats["storage_lag_s"] == pytest.approx(2.5)
    assert stats["wal_bytes"] > 64 * 20
    store.flush()
    assert store.statistics()["storage_lag_s"] == 0.0
    store.close()


def test_background_threads_compact_without_being_asked(tmp_path: Path) -> None:
    cfg = StorageConfig(segment_max_bytes=1, compaction_poll_s=0.01, fsync_interval_s=0.01)
    store = TieredStore.open(tmp_path, cfg)
    batches = _record(store, "s1", "ecg", ECG, 6)  # every append seals the generation before
    assert store.wait_compacted(timeout=30)
    assert store.statistics()["generations_compacted"] >= 5
    assert list((tmp_path / "cold").rglob("*.parquet"))
    _assert_same(store.read_table("s1", "ecg"), batches)
    store.close()
    assert store.statistics()["segments_pending"] == 0


def test_series_and_next_seq_span_every_tier(tmp_path: Path) -> None:
    cfg = StorageConfig(background=False)
    store = TieredStore.open(tmp_path, cfg)
    _record(store, "s1", "ecg", ECG, 3)
    store.append(make_batch("s2", "acc", ACC, 0, 5), room="hall", kind=ACC)
    assert store.next_seq("s1", "ecg") == 192
    assert store.next_seq("nobody", "ecg") == 0
    store.close()  # everything to Parquet; the new store's rings start empty
    reopened = TieredStore.open(tmp_path, cfg)
    assert reopened.series() == [
        StoredSeries("lab", "s1", "ecg", "ecg"),
        StoredSeries("hall", "s2", "acc", "accelerometer"),
    ]
    assert reopened.next_seq("s1", "ecg") == 192  # from the Parquet statistics
    assert reopened.next_seq("s2", "acc") == 5
    reopened.close()


def test_large_selections_become_lazy_on_their_own(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, StorageConfig(background=False, lazy_threshold_samples=100))
    _record(store, "s1", "ecg", ECG, 4)
    store.compact()
    assert store.history(end=T0_NS + 50 * 1953125)["ecg"].chunks is None  # 50 samples: numpy
    big = store.history()
    assert big["ecg"].chunks is not None
    np.testing.assert_array_equal(big["ecg"].values, store.history(lazy=False)["ecg"].values)
    store.close()


def _same_dataset(a: xr.Dataset, b: xr.Dataset) -> None:
    np.testing.assert_array_equal(a["time"].values, b["time"].values)
    for name in b.data_vars:
        assert a[name].values.tobytes() == b[name].values.tobytes()


def test_recent_windows_are_served_from_memory_exactly(store: TieredStore) -> None:
    _record(store, "s1", "ecg", ECG, 20, n=50)  # 1000 samples, ring holds 650
    store.compact()
    _record_more(store, 20, 2)  # and some still in the WAL
    start = T0_NS + 800 * 1953125
    before = store.statistics()["histories_from_memory"]
    recent = store.history(["s1"], ["ecg"], start)
    assert store.statistics()["histories_from_memory"] == before + 1
    assert recent.sizes["time"] == 300
    _same_dataset(recent, store.history(None, None, start))  # the files say the same
    old = store.history(["s1"], ["ecg"], T0_NS + 100 * 1953125)  # older than the ring
    assert store.statistics()["histories_from_memory"] == before + 1
    assert old.sizes["time"] == 1000


def test_memory_is_not_trusted_when_an_evicted_sample_is_later(store: TieredStore) -> None:
    """A device clock that jumps back: the ring lacks a sample inside the window."""
    late = Batch("s1", "hr", np.array([T0_NS + 10**12]), np.array([99.0])).stamped(T0_NS, 0)
    store.append(late, room="lab", kind=KINDS["hr"])
    for i in range(1, 200):  # hr keeps 150; the late sample falls out
        b = Batch("s1", "hr", np.array([T0_NS + i * 10**9]), np.array([60.0])).stamped(T0_NS, i)
        store.append(b, room="lab", kind=KINDS["hr"])
    before = store.statistics()["histories_from_memory"]
    ds = store.history(["s1"], ["hr"], T0_NS + 150 * 10**9)
    assert store.statistics()["histories_from_memory"] == before
    assert ds.sizes["time"] == 51 and ds["hr"].values[0, -1] == 99.0


def test_memory_is_not_trusted_over_an_earlier_session(tmp_path: Path) -> None:
    cfg = StorageConfig(background=False)
    first = TieredStore.open(tmp_path, cfg)
    first.append(make_batch("s1", "ecg", ECG, 0, 10, t0_ns=T0_NS + 10**12), room="l", kind=ECG)
    first.close()
    second = TieredStore.open(tmp_path, cfg)  # the device clock now reads earlier
    second.append(make_batch("s1", "ecg", ECG, 10, 10), room="l", kind=ECG)
    ds = second.history(["s1"], ["ecg"], T0_NS)
    assert ds.sizes["time"] == 20
    assert second.statistics()["histories_from_memory"] == 0
    second.close()


def test_appends_and_reads_proceed_while_a_compaction_is_stuck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compaction blocked mid-way (slow disk) neither stalls appends nor hides samples."""
    inside, release = threading.Event(), threading.Event()
    real_write_part = cold.write_part

    def gated(*args: Any, **kwargs: Any) -> list[Path]:
        inside.set()
        assert release.wait(30)
        return real_write_part(*args, **kwargs)

    monkeypatch.setattr(cold, "write_part", gated)
    store = TieredStore.open(tmp_path, StorageConfig(background=False))
    batches = _record(store, "s1", "ecg", ECG, 4)
    compactor = threading.Thread(target=store.compact)
    compactor.start()
    assert inside.wait(30)
    batches += _record_more(store, 4, 4, n=64)  # returns while the compactor is stuck
    _assert_same(store.read_table("s1", "ecg"), batches)  # generation 1 still from the WAL
    assert store.history(["s1"], ["ecg"])["ecg"].shape == (1, 8 * 64)
    release.set()
    compactor.join(30)
    assert not compactor.is_alive()
    store.compact()
    _assert_same(store.read_table("s1", "ecg"), batches)
    store.close()


def test_last_ts_from_rings_and_from_parquet_after_reopen(tmp_path: Path) -> None:
    cfg = StorageConfig(background=False)
    store = TieredStore.open(tmp_path, cfg)
    assert store.last_ts("s1", "ecg") is None
    batches = _record(store, "s1", "ecg", ECG, 3)
    newest = max(int(np.asarray(b.ts).max()) for b in batches)
    assert store.last_ts("s1", "ecg") == newest
    store.close()  # compacts everything to Parquet
    reopened = TieredStore.open(tmp_path, cfg)
    assert reopened.latest("s1", "ecg")[0].shape == (0,)  # rings empty: footer statistics answer
    assert reopened.last_ts("s1", "ecg") == newest
    assert reopened.last_ts("s1", "resp") is None
    reopened.close()
