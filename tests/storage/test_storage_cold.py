"""The cold tier: hive-partitioned Parquet that pyarrow, DuckDB and polars read as is."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from support.storage import ACC, ECG, T0_NS, make_batch

from sensocto_lab.clock import FakeClock
from sensocto_lab.model import KINDS, Batch
from sensocto_lab.storage import StorageConfig, TieredStore

DAY_NS = 86_400 * 10**9


def _recorded(tmp_path: Path) -> TieredStore:
    store = TieredStore.open(tmp_path, StorageConfig(background=False))
    for sensor in ("p1", "p2"):
        for i in range(4):
            store.append(make_batch(sensor, "ecg", ECG, i * 128, 128), room="lab", kind=ECG)
        store.append(make_batch(sensor, "acc", ACC, 0, 10), room="lab", kind=ACC)
    store.compact()
    return store


def test_layout_columns_and_metadata(tmp_path: Path) -> None:
    store = _recorded(tmp_path)
    parts = sorted((tmp_path / "cold").rglob("*.parquet"))
    rel = {p.relative_to(tmp_path / "cold").parent.as_posix() for p in parts}
    assert rel == {
        f"room=lab/sensor={s}/attribute={a}/date=2026-01-01"
        for s in ("p1", "p2")
        for a in ("ecg", "acc")
    }
    ecg = pq.read_table(tmp_path / "cold/room=lab/sensor=p1/attribute=ecg/date=2026-01-01")
    assert ecg.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert ecg.schema.field("recv_ts").type == pa.timestamp("ns", tz="UTC")
    assert ecg.schema.field("value").type == pa.float32()
    assert ecg.schema.field("seq").type == pa.int64()
    acc = pq.read_table(next(p for p in parts if "attribute=acc" in str(p)))
    assert acc.schema.field("value").type == pa.list_(pa.float32(), 3)
    assert b'"unit": "mV"' in (ecg.schema.metadata or {})[b"sensocto"]
    assert not list((tmp_path / "cold").rglob("*.tmp"))
    store.close()


def test_duckdb_reads_the_dataset_directly(tmp_path: Path) -> None:
    store = _recorded(tmp_path)
    cold = tmp_path / "cold"
    # Scalar and vector attributes have different `value` types: glob one attribute.
    ecg_glob = f"{cold}/*/*/attribute=ecg/**/*.parquet"
    rows = duckdb.sql(
        f"SELECT sensor, attribute, count(*) AS n, min(seq) AS lo, max(seq) AS hi "
        f"FROM read_parquet('{ecg_glob}', hive_partitioning=true) GROUP BY ALL ORDER BY sensor"
    ).fetchall()
    assert rows == [("p1", "ecg", 512, 0, 511), ("p2", "ecg", 512, 0, 511)]
    ecg = duckdb.sql(
        f"SELECT value FROM read_parquet('{ecg_glob}', hive_partitioning=true) "
        f"WHERE sensor = 'p2' ORDER BY seq"
    ).fetchnumpy()["value"]
    expected = make_batch("p2", "ecg", ECG, 0, 512).values
    assert np.asarray(ecg, dtype=np.float32).tobytes() == expected.tobytes()
    acc = duckdb.sql(
        f"SELECT value FROM read_parquet('{cold}/*/*/attribute=acc/**/*.parquet', "
        f"hive_partitioning=true) WHERE sensor = 'p1' ORDER BY seq LIMIT 1"
    ).fetchall()
    np.testing.assert_array_equal(acc[0][0], make_batch("p1", "acc", ACC, 0, 1).values[0])
    store.close()


def test_duckdb_reads_all_scalar_attributes_with_one_glob(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, StorageConfig(background=False))
    store.append(make_batch("p1", "ecg", ECG, 0, 100), room="lab", kind=ECG)
    store.append(make_batch("p1", "hr", KINDS["hr"], 0, 5, rate_hz=1), room="lab", kind=KINDS["hr"])
    store.close()  # compacts on close
    glob = f"{tmp_path / 'cold'}/**/*.parquet"
    rows = duckdb.sql(
        f"SELECT attribute, count(*), epoch_ns(min(ts)) "
        f"FROM read_parquet('{glob}', hive_partitioning=true) GROUP BY ALL ORDER BY attribute"
    ).fetchall()
    assert rows == [("ecg", 100, T0_NS), ("hr", 5, T0_NS)]


def test_polars_and_pyarrow_dataset_read_it_too(tmp_path: Path) -> None:
    store = _recorded(tmp_path)
    cold = tmp_path / "cold"
    counts = (
        pl.scan_parquet(f"{cold}/*/*/attribute=ecg/**/*.parquet", hive_partitioning=True)
        .group_by("sensor")
        .agg(pl.len())
        .sort("sensor")
        .collect()
    )
    assert counts.rows() == [("p1", 512), ("p2", 512)]
    table = ds.dataset(cold, format="parquet", partitioning="hive").to_table(
        filter=(ds.field("attribute") == "acc") & (ds.field("sensor") == "p1")
    )
    assert table.num_rows == 10
    store.close()


def test_quantised_ecg_takes_few_bytes_per_sample(tmp_path: Path) -> None:
    """Delta-encoded 512 Hz timestamps and dictionary-coded µV values: ≤ 6 B a sample."""
    store = TieredStore.open(tmp_path, StorageConfig(background=False))
    rng = np.random.default_rng(1)
    n, batch = 512 * 60, 64
    t = np.arange(n) / 512.0
    microvolts = np.round(
        1000 * np.sin(2 * np.pi * 1.2 * t) ** 15 + 80 * np.sin(2 * np.pi * 0.3 * t)
    ) + rng.integers(-8, 8, n)
    ecg_mv = (microvolts / 1000).astype(np.float32)
    ts = T0_NS + np.arange(n, dtype=np.int64) * 1_953_125
    for i in range(0, n, batch):
        b = Batch("p1", "ecg", ts[i : i + batch], ecg_mv[i : i + batch])
        store.append(b.stamped(int(ts[i + batch - 1]) + 30_000_000, i), room="lab", kind=ECG)
    store.compact()
    size = sum(p.stat().st_size for p in (tmp_path / "cold").rglob("*.parquet"))
    assert size / n <= 6.0, f"{size / n:.2f} B/sample"
    meta = pq.ParquetFile(next((tmp_path / "cold").rglob("*.parquet"))).metadata
    encodings = {
        meta.schema.column(i).name: meta.row_group(0).column(i).encodings for i in range(4)
    }
    assert "DELTA_BINARY_PACKED" in encodings["ts"]
    assert "RLE_DICTIONARY" in encodings["value"]
    store.close()


def test_unquantised_values_use_byte_stream_split(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, StorageConfig(background=False))
    rng = np.random.default_rng(2)
    ts = T0_NS + np.arange(2000, dtype=np.int64) * 100_000_000
    resp = Batch("p1", "resp", ts, rng.standard_normal(2000)).stamped(T0_NS, 0)
    store.append(resp, room="lab", kind=KINDS["respiration"])
    store.compact()
    meta = pq.ParquetFile(next((tmp_path / "cold").rglob("*.parquet"))).metadata
    assert "BYTE_STREAM_SPLIT" in meta.row_group(0).column(2).encodings
    assert store.read_table("p1", "resp").column("value").to_numpy().tobytes() == (
        resp.values.tobytes()
    )
    store.close()


def test_samples_across_midnight_go_to_two_dates(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, StorageConfig(background=False))
    midnight = T0_NS + DAY_NS
    ts = midnight + np.arange(-5, 5, dtype=np.int64) * 10**9
    b = Batch("p1", "hr", ts, np.arange(10, dtype=np.float64) + 60).stamped(int(ts[-1]), 0)
    store.append(b, room="lab", kind=KINDS["hr"])
    store.compact()
    days = sorted(p.parent.name for p in (tmp_path / "cold").rglob("*.parquet"))
    assert days == ["date=2026-01-01", "date=2026-01-02"]
    np.testing.assert_array_equal(
        store.read_table("p1", "hr").column("seq").to_numpy(), np.arange(10)
    )
    second_day = store.history(start=midnight)
    assert second_day.sizes["time"] == 5
    store.close()


def test_retention_deletes_old_dates_only(tmp_path: Path) -> None:
    clock = FakeClock(start_ns=T0_NS + 10 * DAY_NS)
    store = TieredStore.open(
        tmp_path, StorageConfig(background=False, retention_days=5), clock=clock
    )
    for day in (0, 8):
        ts = T0_NS + day * DAY_NS + np.arange(3, dtype=np.int64) * 10**9
        b = Batch("p1", "hr", ts, np.full(3, 60.0)).stamped(int(ts[-1]), day * 3)
        store.append(b, room="lab", kind=KINDS["hr"])
    store.compact()
    days = sorted(p.parent.name for p in (tmp_path / "cold").rglob("*.parquet"))
    assert days == ["date=2026-01-09"]
    assert store.read_table("p1", "hr").num_rows == 3
    store.close()


def test_a_copied_cold_tier_is_read_and_never_overwritten(tmp_path: Path) -> None:
    first = TieredStore.open(tmp_path / "a", StorageConfig(background=False))
    first.append(make_batch("p1", "ecg", ECG, 0, 64), room="lab", kind=ECG)
    first.close()
    shutil.copytree(tmp_path / "a" / "cold", tmp_path / "b" / "cold")  # no WAL, no commit file
    second = TieredStore.open(tmp_path / "b", StorageConfig(background=False))
    assert second.read_table("p1", "ecg").num_rows == 64
    second.append(make_batch("p1", "ecg", ECG, 64, 64), room="lab", kind=ECG)
    second.compact()
    np.testing.assert_array_equal(
        second.read_table("p1", "ecg").column("seq").to_numpy(), np.arange(128)
    )
    assert len(list((tmp_path / "b" / "cold").rglob("*.parquet"))) == 2
    second.close()


def _numeric_looking(tmp_path: Path) -> TieredStore:
    """Sensors ``001`` and ``1`` (and a room ``7``): two sensors, not one integer."""
    store = TieredStore.open(tmp_path, StorageConfig(background=False))
    store.append(make_batch("001", "ecg", ECG, 0, 10), room="7", kind=ECG)
    store.append(make_batch("1", "ecg", ECG, 0, 20), room="7", kind=ECG)
    store.compact()
    return store


def test_numeric_looking_ids_stay_distinct_strings_in_the_store(tmp_path: Path) -> None:
    store = _numeric_looking(tmp_path)
    assert [(s.room, s.sensor_id) for s in store.series()] == [("7", "001"), ("7", "1")]
    ds_ = store.history(attributes=["ecg"])
    assert list(ds_["sensor"].values) == ["001", "1"]
    assert store.read_table("001", "ecg").num_rows == 10
    assert store.read_table("1", "ecg").num_rows == 20
    store.close()


def test_numeric_looking_ids_stay_strings_for_pyarrow_polars_and_duckdb(tmp_path: Path) -> None:
    from sensocto_lab.storage.cold import PARTITION_SCHEMA, dataset

    store = _numeric_looking(tmp_path)
    cold = tmp_path / "cold"
    # pyarrow: the store's typed partitioning (what docs/storage.md shows).
    table = dataset(cold).to_table()
    assert table.schema.field("sensor").type == pa.string()
    assert table.schema.field("room").type == pa.string()
    assert sorted(table.group_by("sensor").aggregate([("seq", "count")]).to_pylist(), key=str) == [
        {"sensor": "001", "seq_count": 10},
        {"sensor": "1", "seq_count": 20},
    ]
    # Without it pyarrow infers integers and merges the two: why the schema is needed.
    inferred = ds.dataset(cold, format="parquet", partitioning="hive").to_table()
    assert pa.types.is_integer(inferred.schema.field("sensor").type)
    # polars: hive_schema with every partition column a string.
    hive = {name: pl.String for name in PARTITION_SCHEMA.names}
    counts = (
        pl.scan_parquet(f"{cold}/**/*.parquet", hive_partitioning=True, hive_schema=hive)
        .group_by("sensor", "room")
        .agg(pl.len())
        .sort("sensor")
        .collect()
    )
    assert counts.rows() == [("001", "7", 10), ("1", "7", 20)]
    # DuckDB: hive_types_autocast=false keeps partition values as VARCHAR.
    rows = duckdb.sql(
        f"SELECT sensor, room, typeof(sensor), count(*) FROM read_parquet("
        f"'{cold}/**/*.parquet', hive_partitioning=true, hive_types_autocast=false) "
        f"GROUP BY ALL ORDER BY sensor"
    ).fetchall()
    assert rows == [("001", "7", "VARCHAR", 10), ("1", "7", "VARCHAR", 20)]
    store.close()
