"""``Study.apply``: any measure's result reduced to one tidy table; failures per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import PARTICIPANTS, SESSIONS

from sensocto_lab import sync
from sensocto_lab.errors import ValidationError
from sensocto_lab.storage.tiered import TieredStore
from sensocto_lab.study import Study, kuramoto, plv

ALL = [f"session-{k:03d}" for k in range(SESSIONS)]


def test_synchrony_by_session_and_condition_matches_a_plain_loop(study_root: Path) -> None:
    study = Study.open(study_root)
    result = study.apply(sync.synchrony, attributes=["respiration"], progress=False)
    assert study.failures.empty and result.attrs["failures"] == []
    assert list(result.columns) == ["session", "condition", "R"]
    assert list(result["session"]) == [s for s in ALL for _ in range(2)]
    assert list(result["condition"]) == ["baseline", "task"] * SESSIONS
    for row in result.itertuples():
        store = TieredStore.open(study_root / row.session, read_only=True)
        ds = store.history(attributes=["respiration"], condition=row.condition)
        assert pytest.approx(float(sync.synchrony(ds).mean())) == row.R
    by = result.groupby("condition")["R"].mean()
    assert by["task"] > 0.9 and by["baseline"] < 0.7


def test_by_session_reads_the_whole_session(study_root: Path) -> None:
    result = Study.open(study_root).apply(lambda ds: ds.sizes["time"], by="session")
    assert list(result.columns) == ["session", "condition", "value"]
    assert result["condition"].isna().all()
    assert (result["value"] == 600).all()


def test_every_kind_of_result_becomes_rows(study_root: Path) -> None:
    study = Study.open([study_root / "session-000"])

    def dict_measure(ds: xr.Dataset) -> dict[str, float]:
        return {"n": float(ds.sizes["sensor"]), "mean": float(ds["respiration"].mean())}

    one = study.apply(dict_measure, by="session")
    assert list(one.columns) == ["session", "condition", "n", "mean"]
    assert one["n"].tolist() == [PARTICIPANTS]

    series = study.apply(lambda ds: pd.Series({"a": 1.0, "b": 2.0}), by="session")
    assert series[["a", "b"]].values.tolist() == [[1.0, 2.0]]

    def frame(ds: xr.Dataset) -> pd.DataFrame:
        return pd.DataFrame({"k": [1, 2, 3]}, index=pd.Index(["x", "y", "z"], name="item"))

    table = study.apply(frame, by="session")
    assert table["item"].tolist() == ["x", "y", "z"] and table["k"].tolist() == [1, 2, 3]

    per_person = study.apply(lambda ds: ds["respiration"].std("time"), name="sd", by="session")
    assert list(per_person.columns) == ["session", "condition", "sensor", "participant", "sd"]
    assert per_person["participant"].tolist() == [f"session-000-p{i}" for i in range(3)]

    pairs = study.apply(plv, by="session")
    assert len(pairs) == PARTICIPANTS * (PARTICIPANTS - 1) // 2
    assert pairs["participant"].str.startswith("session-000-p").all()
    assert ((pairs["plv"] >= 0) & (pairs["plv"] <= 1)).all()

    both = study.apply(
        lambda ds: xr.Dataset({"m": ds["respiration"].mean("time"), "s": ds["respiration"].std()}),
        by="session",
    )
    assert list(both.columns) == ["session", "condition", "sensor", "participant", "m", "s"]
    assert both["s"].nunique() == 1


def test_a_result_that_cannot_be_reduced_is_that_segments_failure(study_root: Path) -> None:
    study = Study.open([study_root / "session-000"])
    out = study.apply(lambda ds: ds["respiration"].expand_dims(extra=2), by="session")
    assert out.empty
    assert study.failures["reason"].tolist() == ["TypeError"]
    assert "cannot reduce dims" in study.failures["message"].iloc[0]


def test_a_measure_that_raises_on_one_session_fails_only_that_session(study_root: Path) -> None:
    def fragile(ds: xr.Dataset) -> float:
        if "session-002-p0" in ds["participant"].values:
            raise ValueError("bad electrode")
        return kuramoto(ds)

    study = Study.open(study_root)
    result = study.apply(fragile, progress=False)
    assert sorted(set(result["session"])) == [s for s in ALL if s != "session-002"]
    failures = study.failures
    assert failures["session"].tolist() == ["session-002", "session-002"]
    assert failures["condition"].tolist() == ["baseline", "task"]
    assert failures["reason"].tolist() == ["ValueError"] * 2
    assert "bad electrode" in failures["message"].iloc[0]
    assert result.attrs["failures"][0]["session"] == "session-002"


def test_a_session_without_conditions_is_reported_when_split_by_condition(
    tmp_path: Path, study_root: Path
) -> None:
    from sensocto_lab.study import write_session

    write_session(tmp_path / "plain", name="plain", participants=2, protocol=[("x", 10.0, 0.0)])
    for part in (tmp_path / "plain" / "events").rglob("*.parquet"):
        part.unlink()
    study = Study.open([tmp_path / "plain", study_root / "session-000"])
    result = study.apply(kuramoto)
    # ids are paths relative to the list's common parent
    assert {s.rsplit("/", 1)[-1] for s in result["session"]} == {"session-000"}
    assert study.failures["reason"].tolist() == ["LookupError"]
    assert study.failures["session"].iloc[0].endswith("plain")


def test_by_must_name_session_or_condition(study_root: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Study.open(study_root).apply(kuramoto, by=("session", "room"))
    assert info.value.reason == "invalid_by"


def test_a_measure_gets_the_condition_segment_only(study_root: Path) -> None:
    spans = Study.open([study_root / "session-001"]).apply(
        lambda ds: {
            "start": float(ds["time"].values[0].astype("int64")),
            "n": float(ds.sizes["time"]),
        }
    )
    assert spans["n"].tolist() == [300.0, 300.0]
    assert np.diff(spans["start"].to_numpy())[0] == pytest.approx(30e9)


def test_a_condition_recorded_twice_is_read_as_both_spans(tmp_path: Path) -> None:
    from sensocto_lab.study import write_session

    protocol = [("baseline", 10.0, 0.0), ("task", 10.0, 4.0), ("baseline", 10.0, 0.0)]
    write_session(tmp_path / "abab", name="abab", participants=2, protocol=protocol)
    result = Study.open([tmp_path / "abab"]).apply(lambda ds: ds.sizes["time"], name="n")
    assert result.set_index("condition")["n"].to_dict() == {"baseline": 200, "task": 100}
