"""One writer per data directory, across processes; read-only readers need no lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.storage import ECG, make_batch

from sensocto_lab.errors import StorageError
from sensocto_lab.storage import StorageConfig, TieredStore
from sensocto_lab.storage.lock import LOCK_FILE

QUIET = StorageConfig(background=False)

#: A second process that tries to open the store for writing and reports what happened.
OPENER = """
import sys
from sensocto_lab.errors import StorageError
from sensocto_lab.storage import StorageConfig, TieredStore
try:
    store = TieredStore.open(sys.argv[1], StorageConfig(background=False))
except StorageError as exc:
    print(exc.reason, exc.detail)
    sys.exit(3)
store.close()
print("opened")
"""


def _open_elsewhere(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", OPENER, str(data)], capture_output=True, text=True, timeout=120
    )


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = TieredStore.open(data, QUIET)
    store.append(make_batch("s1", "ecg", ECG, 0, 64), room="lab", kind=ECG)
    refused = _open_elsewhere(data)
    assert refused.returncode == 3, refused.stderr
    assert refused.stdout.startswith("data_dir_locked ")
    assert f"pid {os.getpid()}" in refused.stdout
    assert "read_only=True" in refused.stdout  # says what to do instead
    store.close()
    opened = _open_elsewhere(data)  # close released it
    assert (opened.returncode, opened.stdout.strip()) == (0, "opened"), opened.stderr
    with TieredStore.open(data, QUIET) as again:
        assert again.read_table("s1", "ecg").num_rows == 64


def test_a_second_store_in_one_process_is_refused_too(tmp_path: Path) -> None:
    with TieredStore.open(tmp_path, QUIET):
        with pytest.raises(StorageError) as err:
            TieredStore.open(tmp_path, QUIET)
        assert err.value.reason == "data_dir_locked"
    assert (tmp_path / LOCK_FILE).exists()  # kept: deleting it could race a new opener


def test_a_store_that_fails_to_open_leaves_the_directory_unlocked(tmp_path: Path) -> None:
    (tmp_path / "wal").mkdir()
    (tmp_path / "wal" / "COMPACTED").write_text("not a number\n")
    with pytest.raises(StorageError):
        TieredStore.open(tmp_path, QUIET)
    (tmp_path / "wal" / "COMPACTED").write_text("0\n")
    TieredStore.open(tmp_path, QUIET).close()


def test_read_only_reads_every_tier_while_another_store_records(tmp_path: Path) -> None:
    writer = TieredStore.open(tmp_path, QUIET)
    for i in range(4):
        writer.append(make_batch("s1", "ecg", ECG, i * 32, 32), room="lab", kind=ECG)
        if i == 1:
            writer.compact()  # the first 64 samples in Parquet, the rest in the WAL
    reader = TieredStore.open(tmp_path, read_only=True)
    assert [(s.sensor_id, s.attribute_id, s.kind) for s in reader.series()] == [
        ("s1", "ecg", "ecg")
    ]
    np.testing.assert_array_equal(
        reader.read_table("s1", "ecg").column("seq").to_numpy(), np.arange(128)
    )
    writer.compact()  # the writer moves the commit point under the open reader
    writer.append(make_batch("s1", "ecg", ECG, 128, 32), room="lab", kind=ECG)
    assert reader.history(["s1"], ["ecg"])["ecg"].shape == (1, 160)
    for call in (
        lambda: reader.append(make_batch("s1", "ecg", ECG, 160, 1), room="lab", kind=ECG),
        reader.flush,
        reader.compact,
        lambda: reader.next_seq("s1", "ecg"),
    ):
        with pytest.raises(StorageError) as err:
            call()
        assert err.value.reason == "read_only"
    reader.close()
    writer.close()
    assert not list((tmp_path / "wal").glob("seg-*"))  # the reader left the writer's files


def test_read_only_needs_a_store(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as err:
        TieredStore.open(tmp_path / "nothing", read_only=True)
    assert err.value.reason == "no_store"


def test_info_runs_on_a_directory_a_store_records_into(tmp_path: Path) -> None:
    with TieredStore.open(tmp_path, QUIET) as writer:
        writer.append(make_batch("s1", "ecg", ECG, 0, 100), room="lab", kind=ECG)
        writer.compact()
        writer.append(make_batch("s1", "ecg", ECG, 100, 28), room="lab", kind=ECG)
        out = subprocess.run(
            [sys.executable, "-m", "sensocto_lab.cli", "info", "--json", "--data", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stdout)
        assert [(r["sensor"], r["samples"]) for r in summary["series"]] == [("s1", 128)]
        # info wrote nothing: the uncompacted generation is still the writer's to compact
        assert writer.statistics()["samples_compacted"] == 100
        writer.append(make_batch("s1", "ecg", ECG, 128, 1), room="lab", kind=ECG)
