"""The catalogue: sessions, participants, events, summary; bad directories; fsspec URLs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from conftest import FS, PARTICIPANTS, SESSIONS

from sensocto_lab.study import Study, kuramoto


def test_open_finds_every_session_by_its_session_json(study_root: Path) -> None:
    study = Study.open(study_root)
    assert len(study) == SESSIONS
    assert list(study.sessions["session"]) == [f"session-{k:03d}" for k in range(SESSIONS)]
    assert study.problems.empty
    assert (study.sessions["start"].diff().dropna() == pd.Timedelta(days=1)).all()
    people = study.participants
    assert len(people) == SESSIONS * PARTICIPANTS
    assert set(people.loc[people["session"] == "session-001", "participant"]) == {
        f"session-001-p{i}" for i in range(PARTICIPANTS)
    }


def test_summary_counts_samples_sensors_and_conditions(study_root: Path) -> None:
    summary = Study.open(study_root).summary()
    assert list(summary.columns) == [
        "session", "name", "participants", "sensors", "attributes", "duration_s", "samples",
        "conditions",
    ]  # fmt: skip
    assert (summary["participants"] == PARTICIPANTS).all()
    assert (summary["sensors"] == PARTICIPANTS).all()
    assert (summary["samples"] == PARTICIPANTS * 60 * FS).all()
    assert (summary["duration_s"] == 60.0).all()
    assert all(c == ["baseline", "task"] for c in summary["conditions"])
    assert all(a == ["respiration"] for a in summary["attributes"])


def test_events_of_all_sessions_carry_the_session(study_root: Path) -> None:
    events = Study.open(study_root).events
    assert len(events) == 2 * SESSIONS
    assert set(events["label"]) == {"baseline", "task"}
    assert events.groupby("session").size().eq(2).all()


def test_sessions_at_any_depth_and_an_explicit_list(study_root: Path, tmp_path: Path) -> None:
    nested = tmp_path / "root"
    shutil.copytree(study_root / "session-000", nested / "site-a" / "s")
    shutil.copytree(study_root / "session-001", nested / "site-b" / "s")
    assert list(Study.open(nested).sessions["session"]) == ["site-a/s", "site-b/s"]
    listed = Study.open([nested / "site-b" / "s", nested / "site-a" / "s"])
    assert list(listed.sessions["session"]) == ["site-a/s", "site-b/s"]


def test_a_directory_without_session_json_is_reported_and_the_rest_catalogued(
    copy_study: Path,
) -> None:
    (copy_study / "session-002" / "session.json").unlink()
    study = Study.open(copy_study)
    assert len(study) == SESSIONS - 1
    problems = study.problems
    assert list(problems["reason"]) == ["missing_session_json"]
    assert list(problems["session"]) == ["session-002"]
    assert len(study.summary()) == SESSIONS - 1


def test_a_corrupt_session_json_is_reported(copy_study: Path) -> None:
    (copy_study / "session-003" / "session.json").write_text("{not json")
    study = Study.open(copy_study)
    assert len(study) == SESSIONS - 1
    assert list(study.problems["reason"]) == ["corrupt_session"]


def test_two_sessions_with_the_same_name_are_both_kept_and_reported(copy_study: Path) -> None:
    doc = json.loads((copy_study / "session-001" / "session.json").read_text())
    doc["name"] = "session-000"
    (copy_study / "session-001" / "session.json").write_text(json.dumps(doc))
    study = Study.open(copy_study)
    assert len(study) == SESSIONS
    problems = study.problems
    assert set(problems["reason"]) == {"duplicate_name"}
    assert set(problems["session"]) == {"session-000", "session-001"}
    result = study.apply(kuramoto, by="session", progress=False)
    assert list(result["session"]) == [f"session-{k:03d}" for k in range(SESSIONS)]


def _tear(session_dir: Path) -> Path:
    part = sorted((session_dir / "cold").rglob("*.parquet"))[0]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    return part


def test_a_torn_parquet_file_is_named_and_the_rest_summarised(copy_study: Path) -> None:
    _tear(copy_study / "session-004")
    study = Study.open(copy_study)
    summary = study.summary().set_index("session")
    assert pd.isna(summary.loc["session-004", "samples"])
    assert (summary.drop("session-004")["samples"] == PARTICIPANTS * 60 * FS).all()
    problems = study.problems
    assert list(problems["reason"]) == ["unreadable_parquet"]
    assert list(problems["session"]) == ["session-004"]
    result = study.apply(kuramoto, progress=False)
    assert set(result["session"]) == {f"session-{k:03d}" for k in range(SESSIONS - 1)}
    assert set(study.failures["session"]) == {"session-004"}
    assert "parquet" in study.failures["message"].iloc[0].lower()


@pytest.fixture
def memory_study(study_root: Path) -> Iterator[str]:
    fs = fsspec.filesystem("memory")
    url = "memory://study-test"
    if fs.exists("/study-test"):
        fs.rm("/study-test", recursive=True)
    for f in sorted(study_root.rglob("*")):
        if f.is_file() and f.name != "LOCK":
            fs.pipe(f"/study-test/{f.relative_to(study_root).as_posix()}", f.read_bytes())
    yield url
    fs.rm("/study-test", recursive=True)


def test_a_study_behind_an_fsspec_url_reads_the_same(study_root: Path, memory_study: str) -> None:
    local, remote = Study.open(study_root), Study.open(memory_study)
    assert list(remote.sessions["session"]) == list(local.sessions["session"])
    assert remote.sessions["path"].str.startswith("memory://").all()
    pd.testing.assert_frame_equal(remote.summary(), local.summary())
    pd.testing.assert_frame_equal(
        remote.events.drop(columns="session"), local.events.drop(columns="session")
    )
    a = local.apply(kuramoto, attributes=["respiration"], progress=False)
    b = remote.apply(kuramoto, attributes=["respiration"], progress=False)
    assert remote.failures.empty
    pd.testing.assert_frame_equal(a, b)


def test_summary_counts_series_of_every_kind(tmp_path: Path) -> None:
    import numpy as np

    from sensocto_lab.model import KINDS, Batch
    from sensocto_lab.storage.config import StorageConfig
    from sensocto_lab.storage.tiered import TieredStore

    ts = 1_767_603_600 * 10**9 + np.arange(50, dtype=np.int64) * 10**8
    with TieredStore.open(tmp_path / "mixed", config=StorageConfig(background=False)) as s:
        s.append(Batch("001", "accelerometer", ts, np.ones((50, 3), np.float32)).stamped(0, 0),
                 room="r", kind=KINDS["accelerometer"])  # fmt: skip
        s.append(Batch("1", "hr", ts, np.ones(50)).stamped(0, 50), room="r", kind=KINDS["hr"])
    row = Study.open(tmp_path).summary().iloc[0]
    assert row["sensors"] == 2  # "001" and "1" are two sensors
    assert row["attributes"] == ["accelerometer", "hr"] and row["samples"] == 100
    assert row["conditions"] == []
