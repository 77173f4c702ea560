"""Events next to the samples: validation, the WAL, Parquet, conditions, exactly once.

(The pure :class:`~sensocto_lab.events.Event` rules are tested here too, beside the
store that enforces them.)
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from support.storage import ECG, T0_NS, make_batch

from sensocto_lab.errors import ClosedResourceError, StorageError, ValidationError
from sensocto_lab.events import (
    MAX_LABEL,
    MAX_VALUE_BYTES,
    Event,
    condition_begin,
    condition_end,
)
from sensocto_lab.storage import StorageConfig, TieredStore
from sensocto_lab.storage.event_log import PARTITIONING

CFG = StorageConfig(background=False)
S = 10**9


def _events() -> list[Event]:
    return [
        Event(T0_NS + 2 * S, "stimulus", room="lab", value={"n": 1, "tone": "A"}),
        Event(T0_NS + 1 * S, "start", room="lab", source="protocol"),
        Event(T0_NS + 3 * S, "blink", "novelty", room="hall", sensor="s1", participant="p1"),
        Event(T0_NS + 4 * S, "baseline", "condition", 60.0, room="lab", value=[1, 2.5, None]),
        Event(T0_NS + 5 * S, "session note", source="dashboard", value="hello"),
    ]


def _check(frame: pd.DataFrame, events: list[Event]) -> None:
    """``frame`` is ``events`` sorted by onset, column by column."""
    want = sorted(events, key=lambda e: e.onset_ns)
    assert list(frame.columns) == [
        "onset",
        "duration",
        "label",
        "kind",
        "room",
        "sensor",
        "participant",
        "value",
        "source",
    ]
    assert str(frame["onset"].dtype) == "datetime64[ns, UTC]"
    assert frame["duration"].dtype == np.float64
    assert [t.value for t in frame["onset"]] == [e.onset_ns for e in want]
    assert list(frame["duration"]) == [e.duration_s for e in want]
    for col in ("label", "kind", "room", "sensor", "participant", "value", "source"):
        assert list(frame[col]) == [getattr(e, col) for e in want], col


# -- the Event rules --------------------------------------------------------------------


def test_a_valid_event_is_normalised() -> None:
    e = Event(np.int64(T0_NS), "x", duration_s=2, value={"a": [1, True, None]}).validated()
    assert type(e.onset_ns) is int and type(e.duration_s) is float
    assert str(e) == f"marker 'x' at {T0_NS}"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (Event(T0_NS, ""), "invalid_label"),
        (Event(T0_NS, "x" * (MAX_LABEL + 1)), "invalid_label"),
        (Event(T0_NS, "two\nlines"), "invalid_label"),
        (Event(T0_NS, "bell\x07"), "invalid_label"),
        (Event(math.nan, "x"), "invalid_onset"),  # type: ignore[arg-type]
        (Event(float(T0_NS), "x"), "invalid_onset"),  # type: ignore[arg-type]
        (Event(True, "x"), "invalid_onset"),
        (Event(10**9, "x"), "invalid_onset"),  # 1970
        (Event(10_414_000_000 * S, "x"), "invalid_onset"),  # year 2300
        (Event(T0_NS, "x", "mark"), "invalid_kind"),  # type: ignore[arg-type]
        (Event(T0_NS, "x", source="phone"), "invalid_source"),  # type: ignore[arg-type]
        (Event(T0_NS, "x", duration_s=-1.0), "invalid_duration"),
        (Event(T0_NS, "x", duration_s=math.nan), "invalid_duration"),
        (Event(T0_NS, "x", duration_s=math.inf), "invalid_duration"),
        (Event(T0_NS, "x", value=math.nan), "invalid_value"),
        (Event(T0_NS, "x", value={"a": math.inf}), "invalid_value"),
        (Event(T0_NS, "x", value=(1, 2)), "invalid_value"),
        (Event(T0_NS, "x", value={1: "int key"}), "invalid_value"),
        (Event(T0_NS, "x", value={"a": object()}), "invalid_value"),
        (Event(T0_NS, "x", value="v" * MAX_VALUE_BYTES), "invalid_value"),
        (Event(T0_NS, "x", room="lab\n"), "invalid_room"),
        (Event(T0_NS, "x", sensor="../etc"), "invalid_sensor"),
        (Event(T0_NS, "x", participant=""), "invalid_participant"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_bad_events_are_refused_with_a_reason(event: Event, reason: str) -> None:
    with pytest.raises(ValidationError) as e:
        event.validated()
    assert e.value.reason == reason


def test_a_value_just_under_the_limit_is_fine() -> None:
    Event(T0_NS, "x", value="v" * (MAX_VALUE_BYTES - 2)).validated()  # two quotes


# -- the store ----------------------------------------------------------------------------


def test_events_round_trip_through_wal_parquet_and_reopen(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, CFG)
    events = _events()
    store.append_events(events[:2])
    store.append_events(events[2:])
    assert store.statistics()["events_appended"] == 5
    _check(store.events(), events)  # from the WAL
    store.compact()
    assert store.statistics()["events_compacted"] == 5
    assert list((tmp_path / "wal").glob("*events*")) == []
    _check(store.events(), events)  # from Parquet
    store.append_events([Event(T0_NS, "later, earlier onset")])
    both = store.events()  # Parquet and WAL together, sorted by onset
    assert list(both["label"])[:2] == ["later, earlier onset", "start"]
    store.close()
    reopened = TieredStore.open(tmp_path, CFG)
    _check(reopened.events(), [*events, Event(T0_NS, "later, earlier onset")])
    reopened.close()


def test_events_filter_by_room_kind_and_onset(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, CFG)
    store.append_events(_events())
    assert list(store.events(room="hall")["label"]) == ["blink"]
    assert list(store.events(room=["hall", "lab"])["label"]) == [
        "start",
        "stimulus",
        "blink",
        "baseline",
    ]
    assert list(store.events(kind="novelty")["label"]) == ["blink"]
    window = store.events(start=T0_NS + 2 * S, end=pd.Timestamp(T0_NS + 4 * S, tz="UTC"))
    assert list(window["label"]) == ["stimulus", "blink"]
    store.compact()
    assert list(store.events(room="hall", start=T0_NS)["label"]) == ["blink"]
    store.close()


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, CFG)
    with pytest.raises(ValidationError) as e:
        store.append_events([Event(T0_NS, "fine"), Event(T0_NS, "", room="lab")])
    assert e.value.reason == "invalid_label"
    with pytest.raises(ValidationError):
        store.append_events([Event(T0_NS, "fine"), Event(T0_NS, "x", value={"a": math.nan})])
    store.append_events([])
    assert store.events().empty
    assert store.statistics()["events_appended"] == 0
    assert list((tmp_path / "wal").glob("*events*")) == []
    store.close()
    with pytest.raises(ClosedResourceError):
        store.append_events([Event(T0_NS, "late")])


def test_parquet_layout_that_duckdb_and_pyarrow_read(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, CFG)
    store.append_events(_events())
    store.close()  # compacts
    files = sorted(
        str(p.relative_to(tmp_path / "events")) for p in (tmp_path / "events").rglob("*.parquet")
    )
    assert files == [
        "room=_/date=2026-01-01/part-000000000001-000000000001.parquet",
        "room=hall/date=2026-01-01/part-000000000001-000000000001.parquet",
        "room=lab/date=2026-01-01/part-000000000001-000000000001.parquet",
    ]
    table = ds.dataset(tmp_path / "events", format="parquet", partitioning=PARTITIONING).to_table()
    assert table.schema.field("onset").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.field("duration").type == pa.float64()
    assert set(table.column_names) >= {"label", "kind", "value", "source", "seq", "room"}
    rows = duckdb.sql(
        f"SELECT room, label, epoch_ns(onset), value FROM read_parquet("
        f"'{tmp_path}/events/**/*.parquet', hive_partitioning=true, hive_types_autocast=false) "
        f"ORDER BY onset"
    ).fetchall()
    assert rows[0] == ("lab", "start", T0_NS + S, None)
    assert rows[1] == ("lab", "stimulus", T0_NS + 2 * S, '{"n":1,"tone":"A"}')
    assert rows[-1][0] == "_"  # no room


def test_running_conditions_fold_into_one_row(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, CFG)
    store.append_events(
        [
            condition_begin("baseline", T0_NS, room="lab", value={"order": 1}),
            Event(T0_NS + 5 * S, "tap", room="lab"),
            condition_begin("task", T0_NS + 60 * S, room="lab"),
            condition_begin("task", T0_NS + 61 * S, room="hall"),  # another room's own
        ]
    )
    store.append_events([condition_end("baseline", T0_NS + 60 * S, room="lab")])
    store.compact()  # the end in Parquet with its begin
    store.append_events([condition_end("task", T0_NS + 90 * S, room="lab")])  # WAL
    frame = store.events()
    assert list(zip(frame["label"], frame["room"], strict=True)) == [
        ("baseline", "lab"),
        ("tap", "lab"),
        ("task", "lab"),
        ("task", "hall"),
    ]
    assert list(frame["duration"])[:3] == [60.0, 0.0, 30.0]
    assert math.isnan(frame["duration"].iloc[3])  # still running
    assert frame["value"].iloc[0] == {"order": 1}
    assert frame["value"].iloc[2] is None
    conditions = store.events(kind="condition", start=T0_NS + 30 * S)
    assert list(conditions["label"]) == ["task", "task"]  # by the begin's onset
    store.close()


def test_a_condition_over_midnight_folds_when_reading_from_the_second_day(
    tmp_path: Path,
) -> None:
    store = TieredStore.open(tmp_path, CFG)
    night = T0_NS + 86_400 * S - 60 * S  # 23:59 on the first day
    store.append_events([condition_begin("sleep", night, room="lab")])
    store.append_events([condition_end("sleep", night + 120 * S, room="lab")])
    store.close()  # two date partitions
    reader = TieredStore.open(tmp_path, CFG, read_only=True)
    assert len(list((tmp_path / "events" / "room=lab").iterdir())) == 2
    assert reader.events(start=night + 60 * S).empty  # the begin is before start
    whole = reader.events()
    assert list(whole["duration"]) == [120.0]


def test_history_by_condition_and_participant(tmp_path: Path) -> None:
    store = TieredStore.open(tmp_path, CFG)
    for sensor in ("s1", "s2"):
        store.append(make_batch(sensor, "ecg", ECG, 0, 1024, rate_hz=512), room="lab", kind=ECG)
    store.assign_participant("s1", "p1", role="chest")
    # The task runs from sample 100 to 200 and again from 900 on (still running).
    step = 1_953_125
    store.append_events(
        [
            Event(T0_NS + 100 * step, "task", "condition", 100 * step / 1e9, room="lab"),
            condition_begin("task", T0_NS + 900 * step, room="lab"),
        ]
    )
    ds_ = store.history(attributes=["ecg"])
    assert list(ds_["participant"].values) == ["p1", ""]
    task = store.history(attributes=["ecg"], condition="task")
    times = task["time"].values.astype(np.int64)
    expected = T0_NS + np.r_[np.arange(100, 200), np.arange(900, 1024)] * step
    np.testing.assert_array_equal(times, expected)
    assert list(task["participant"].values) == ["p1", ""]
    with pytest.raises(ValidationError) as e:
        store.history(condition="rest")
    assert e.value.reason == "unknown_condition" and "'task'" in e.value.detail
    store.close()


def test_a_crash_between_parts_and_commit_reads_every_event_once(tmp_path: Path) -> None:
    """Compaction wrote the parts, then the process died before the commit point."""
    store = TieredStore.open(tmp_path, StorageConfig(background=False, compact_on_close=False))
    store.append_events(_events())
    store.close()  # sealed, not compacted
    saved = tmp_path.parent / "wal-before"
    shutil.copytree(tmp_path / "wal", saved)
    store = TieredStore.open(tmp_path, CFG)
    store.compact()
    store.close()
    shutil.rmtree(tmp_path / "wal")
    shutil.copytree(saved, tmp_path / "wal")  # the WAL as it was, parts already there
    reader = TieredStore.open(tmp_path, CFG, read_only=True)
    _check(reader.events(), _events())
    store = TieredStore.open(tmp_path, CFG)
    _check(store.events(), _events())
    store.compact()  # the same part names again, no duplicate
    _check(store.events(), _events())
    store.append_events([Event(T0_NS + 9 * S, "after")])
    assert store.statistics()["events_recovered"] == 5  # replayed from the restored WAL
    store.close()
    assert list(TieredStore.open(tmp_path, CFG, read_only=True).events()["label"])[-1] == "after"


def test_event_seq_continues_across_sessions(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    for label in ("one", "two"):
        store = TieredStore.open(tmp_path, CFG)
        store.append_events([Event(T0_NS, label), Event(T0_NS, label)])
        store.close()
    seqs = sorted(
        s
        for p in (tmp_path / "events").rglob("*.parquet")
        for s in pq.read_table(p)["seq"].to_pylist()
    )
    assert seqs == [0, 1, 2, 3]


def test_a_read_only_store_reads_events_while_another_records(tmp_path: Path) -> None:
    writer = TieredStore.open(tmp_path, CFG)
    writer.append_events(_events()[:2])
    writer.compact()
    writer.append_events(_events()[2:])
    reader = TieredStore.open(tmp_path, CFG, read_only=True)
    _check(reader.events(), _events())
    with pytest.raises(StorageError) as e:
        reader.append_events([Event(T0_NS, "x")])
    assert e.value.reason == "read_only"
    writer.close()


def test_the_event_stream_is_no_samples_stream(tmp_path: Path) -> None:
    from sensocto_lab.storage.wal import list_segments
    from sensocto_lab.storage.wal_read import read_records, read_segment

    store = TieredStore.open(tmp_path, StorageConfig(background=False, compact_on_close=False))
    store.append(make_batch("s1", "ecg", ECG, 0, 8), room="lab", kind=ECG)
    store.append_events([Event(T0_NS, "a"), Event(T0_NS, "b")])
    store.close()
    segs = {s.layout: s for s in list_segments(tmp_path / "wal")}
    assert set(segs) == {"f4x1", "events"} and segs["events"].is_events
    assert read_segment(segs["events"].path).chunks == []  # not mistaken for samples
    batches, torn = read_records(segs["events"].path)
    assert not torn and [b.num_rows for b in batches] == [2]
    assert len(read_segment(segs["f4x1"].path).chunks) == 1
