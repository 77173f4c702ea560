"""session.json: created on the first writable open, changed atomically, read by readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.storage import ECG, T0_NS, make_batch

import sensocto_lab
from sensocto_lab.clock import FakeClock
from sensocto_lab.errors import StorageError, ValidationError
from sensocto_lab.events import Event
from sensocto_lab.storage import SessionInfo, StorageConfig, TieredStore

CFG = StorageConfig(background=False)


def _doc(data_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((data_dir / "session.json").read_text())


def test_the_first_writable_open_starts_the_session(tmp_path: Path) -> None:
    clock = FakeClock(start_ns=T0_NS)
    store = TieredStore.open(tmp_path, CFG, clock=clock)
    info = store.session
    assert isinstance(info, SessionInfo)
    assert info.start_ns == T0_NS and info.end_ns is None
    assert info.software_version == sensocto_lab.__version__
    doc = _doc(tmp_path)
    assert doc["start"] == "2026-01-01T00:00:00.000000000Z" and doc["start_ns"] == T0_NS
    store.close()
    clock.advance(3600)
    again = TieredStore.open(tmp_path, CFG, clock=clock)  # the same session continues
    assert again.session.start_ns == T0_NS
    again.close()


def test_participants_notes_end_and_rooms_are_kept(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, CFG)
    store.append(make_batch("s1", "ecg", ECG, 0, 8), room="lab", kind=ECG)
    store.append(make_batch("s2", "ecg", ECG, 0, 8), room="hall", kind=ECG)
    store.append_events([Event(T0_NS, "start", room="stage")])
    store.assign_participant("s1", "p1", role="chest")
    store.assign_participant("s3", "p1")
    store.assign_participant("s2", "p2", role="wrist")
    store.update_session(name="pilot 3", notes="two dyads\nquiet room")
    store.update_session(end=T0_NS + 10**12)
    doc = _doc(tmp_path)  # on disk when the calls return
    assert doc["participants"] == {"p1": {"s1": "chest", "s3": None}, "p2": {"s2": "wrist"}}
    assert doc["rooms"] == ["hall", "lab", "stage"]
    assert (doc["name"], doc["notes"], doc["end_ns"]) == (
        "pilot 3",
        "two dyads\nquiet room",
        T0_NS + 10**12,
    )
    store.assign_participant("s1", "p2", role="chest")  # moved: one participant per sensor
    info = store.session
    assert info.participant_of("s1") == "p2" and info.role_of("s1") == "chest"
    assert dict(info.participants["p1"]) == {"s3": None}
    reader = TieredStore.open(tmp_path, CFG, read_only=True)
    assert reader.session.participant_of("s1") == "p2"  # the file, as the writer left it
    store.close()
    assert not list(tmp_path.glob("session.json*.tmp"))
    reopened = TieredStore.open(tmp_path, CFG)
    assert reopened.session == info
    reopened.close()


def test_bad_session_input_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, CFG)
    before = (tmp_path / "session.json").read_bytes()
    with pytest.raises(ValidationError) as e1:
        store.assign_participant("s1", "p 1")
    assert e1.value.reason == "invalid_participant"
    with pytest.raises(ValidationError) as e2:
        store.assign_participant("s1\n", "p1")
    assert e2.value.reason == "invalid_sensor_id"
    with pytest.raises(ValidationError) as e3:
        store.update_session(name="x" * 300)
    assert e3.value.reason == "invalid_name"
    with pytest.raises(ValidationError):
        store.update_session(end="not a time")
    assert (tmp_path / "session.json").read_bytes() == before
    store.close()
    reader = TieredStore.open(tmp_path, CFG, read_only=True)
    with pytest.raises(StorageError) as e4:
        reader.assign_participant("s1", "p1")
    assert e4.value.reason == "read_only"


def test_a_corrupt_session_file_is_a_clear_error(tmp_path: Path) -> None:
    TieredStore.open(tmp_path, CFG).close()
    (tmp_path / "session.json").write_text("{not json")
    with pytest.raises(StorageError) as e:
        TieredStore.open(tmp_path, CFG)
    assert e.value.reason == "corrupt_session"
    (tmp_path / "session.json").unlink()
    TieredStore.open(tmp_path, CFG).close()  # the failed open released the lock


def test_a_directory_without_session_reads_as_an_empty_one(tmp_path: Path) -> None:
    TieredStore.open(tmp_path, CFG).close()
    (tmp_path / "session.json").unlink()  # recorded before sessions were kept
    assert TieredStore.open(tmp_path, CFG, read_only=True).session == SessionInfo()
