"""to_edf, to_bids and to_csv on a data directory recorded here, read back independently."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyedflib
import pytest

from sensocto_lab.errors import StorageError
from sensocto_lab.events import Event
from sensocto_lab.io import to_bids, to_csv, to_edf
from sensocto_lab.model import KINDS, Batch
from sensocto_lab.storage import TieredStore

T0 = 1_767_225_600 * 10**9 + 250_000_000  # 2026-01-01T00:00:00.25Z


def _put(store: TieredStore, sensor: str, attr: str, kind: str, ts, values, room="lab") -> None:
    spec = KINDS[kind]
    batch = Batch(sensor, attr, np.asarray(ts, np.int64), np.asarray(values)).validated(spec)
    seq = store.next_seq(sensor, attr)
    store.append(batch.stamped(T0, seq), room=room, kind=spec)


@pytest.fixture
def data_dir(tmp_path: Path) -> dict:
    rng = np.random.default_rng(5)
    path = tmp_path / "data"
    store = TieredStore.open(path)
    truth = {}
    for i, sensor in enumerate(["strap-a", "strap-b"]):
        n = 130 * 10
        ts = T0 + i * 10**8 + np.round(np.arange(n) * (1e9 / 130)).astype(np.int64)
        ecg = rng.normal(0, 1, n).astype(np.float32)
        if i == 1:  # a 1 s gap in strap-b's ECG
            keep = np.ones(n, bool)
            keep[300:430] = False
            ts, ecg = ts[keep], ecg[keep]
        _put(store, sensor, "ecg", "ecg", ts, ecg)
        truth[(sensor, "ecg")] = (ts, ecg.astype(np.float64))
        acc_ts = T0 + np.arange(500) * 20_000_000
        acc = rng.normal(0, 9.81, (500, 3)).astype(np.float32)
        _put(store, sensor, "accelerometer", "accelerometer", acc_ts, acc)
        truth[(sensor, "accelerometer")] = (acc_ts, acc.astype(np.float64))
        rr_ms = rng.uniform(600, 1100, 12)
        rr_ts = T0 + np.cumsum(rr_ms * 1e6).astype(np.int64)
        _put(store, sensor, "rr", "rr", rr_ts, rr_ms)
        truth[(sensor, "rr")] = (rr_ts, rr_ms)
    store.append_events(
        [
            Event(T0 + 2 * 10**9, "bell", room="lab", source="notebook"),
            Event(T0 + 3 * 10**9, "task", kind="condition", duration_s=4.0, room="lab"),
            Event(T0 + 5 * 10**9, "cough", room="lab", sensor="strap-b"),
        ]
    )
    store.assign_participant("strap-a", "P01")
    store.assign_participant("strap-b", "P02")
    store.close()
    return {"path": path, "truth": truth}


def test_edf_reads_back_with_annotations_within_resolution(data_dir: dict, tmp_path: Path) -> None:
    result = to_edf(data_dir["path"], tmp_path / "out.edf", room="lab")
    assert any("rr: irregular" in s for s in result.skipped)  # not resampled
    reader = pyedflib.EdfReader(str(tmp_path / "out.edf"))
    try:
        start = reader.getStartdatetime()
        start_ns = int(pd.Timestamp(start, tz="UTC").value)
        assert start_ns == T0 // 10**9 * 10**9  # EDF starts on a whole second
        transducers = [reader.getTransducer(i) for i in range(reader.signals_in_file)]
        assert len(transducers) == 2 * (1 + 3)
        for i, transducer in enumerate(transducers):
            sensor, column = transducer.split()[1].split("/")
            attr = "accelerometer" if column.startswith("accelerometer") else column
            ts, values = data_dir["truth"][(sensor, attr)]
            col = "xyz".index(column[-1]) if attr == "accelerometer" else 0
            truth = values if values.ndim == 1 else values[:, col]
            rate = reader.getSampleFrequency(i)
            assert rate == (130 if attr == "ecg" else 50)
            got = reader.readSignal(i)
            first = int(np.floor((ts[0] - start_ns) * rate / 1e9 + 0.5))  # halves up
            idx = first + np.round((ts - ts[0]) * rate / 1e9).astype(int)
            pmin, pmax = reader.getPhysicalMinimum(i), reader.getPhysicalMaximum(i)
            resolution = (pmax - pmin) / 65535
            assert np.abs(got[idx] - truth).max() <= resolution, (transducer, got[:6], truth[:6])
        onsets, durations, texts = reader.readAnnotations()
    finally:
        reader.close()
    labels = list(texts)
    assert labels[:3] == ["bell", "task", "cough"]
    assert onsets[0] == pytest.approx((T0 + 2 * 10**9 - start_ns) / 1e9, abs=1e-4)
    assert durations[1] == pytest.approx(4.0)
    gap_notes = [t for t in labels if t.startswith("no data: strap-b:ecg")]
    assert gap_notes, labels  # the gap and the late start are named, not hidden


_PHYSIO = re.compile(
    r"sub-[A-Za-z0-9]+_task-[A-Za-z0-9]+_recording-[A-Za-z0-9]+_(physio|physioevents)\.tsv\.gz"
)
_EVENTS = re.compile(r"sub-[A-Za-z0-9]+_task-[A-Za-z0-9]+_events\.tsv")


def test_bids_names_sidecars_and_values(data_dir: dict, tmp_path: Path) -> None:
    out = tmp_path / "bids"
    result = to_bids(data_dir["path"], out, room="lab", task="hyper")
    assert set(result.participants) == {"P01", "P02"}
    assert json.loads((out / "dataset_description.json").read_text())["BIDSVersion"]
    assert (out / "participants.tsv").read_text().split() == [
        "participant_id",
        "sub-P01",
        "sub-P02",
    ]
    physio = sorted(p for p in out.rglob("*.tsv.gz"))
    assert {p.name for p in physio} >= {
        "sub-P01_task-hyper_recording-ecg_physio.tsv.gz",
        "sub-P02_task-hyper_recording-rr_physioevents.tsv.gz",
    }
    for path in physio:
        assert _PHYSIO.fullmatch(path.name), path.name
        assert path.parent.name == "beh" and path.parent.parent.name.startswith("sub-")
        sidecar = json.loads(path.with_name(path.name.replace(".tsv.gz", ".json")).read_text())
        assert "Columns" in sidecar
        with gzip.open(path, "rt") as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        assert all(len(r) == len(sidecar["Columns"]) for r in rows)
        assert all(x == "n/a" or np.isfinite(float(x)) for x in rows[0])  # no header row
        for column in sidecar["Columns"]:
            assert "Units" in sidecar[column]
        if path.name.endswith("_physio.tsv.gz"):
            assert sidecar["SamplingFrequency"] in (130, 50)
            assert isinstance(sidecar["StartTime"], float)
    # Values: P02's ECG on its 130 Hz grid, n/a in its gap.
    ecg = out / "sub-P02/beh/sub-P02_task-hyper_recording-ecg_physio.tsv.gz"
    side = json.loads(ecg.with_name(ecg.name.replace(".tsv.gz", ".json")).read_text())
    table = pd.read_csv(ecg, sep="\t", header=None, na_values="n/a")
    ts, values = data_dir["truth"][("strap-b", "ecg")]
    t0 = side["sensocto_lab"]["t0_ns"]
    idx = np.round((ts - ts[0]) * 130 / 1e9).astype(int)
    np.testing.assert_allclose(table[0].to_numpy()[idx], values, rtol=1e-6)
    assert table[0].isna().sum() == 130
    # RR stays one row per beat at its own onset.
    rr = pd.read_csv(
        out / "sub-P01/beh/sub-P01_task-hyper_recording-rr_physioevents.tsv.gz",
        sep="\t",
        header=None,
    )
    ts, values = data_dir["truth"][("strap-a", "rr")]
    np.testing.assert_allclose(rr[0], (ts - t0) / 1e9, atol=1e-9)
    np.testing.assert_allclose(rr[1], values)
    # Events: the room's for both, the cough only for strap-b's participant.
    for sub, labels in (("P01", ["bell", "task"]), ("P02", ["bell", "task", "cough"])):
        path = out / f"sub-{sub}/beh/sub-{sub}_task-hyper_events.tsv"
        assert _EVENTS.fullmatch(path.name)
        ev = pd.read_csv(path, sep="\t")
        assert list(ev.columns[:3]) == ["onset", "duration", "trial_type"]
        assert list(ev["trial_type"]) == labels


def test_csv_keeps_every_sample_as_stored(data_dir: dict, tmp_path: Path) -> None:
    files = to_csv(data_dir["path"], tmp_path / "csv")
    assert len(files) == 6 + 1
    rr = pd.read_csv(tmp_path / "csv/lab/strap-a/rr.csv")
    ts, values = data_dir["truth"][("strap-a", "rr")]
    np.testing.assert_array_equal(rr["time_ns"], ts)
    np.testing.assert_allclose(rr["rr"], values)
    acc = pd.read_csv(tmp_path / "csv/lab/strap-b/accelerometer.csv")
    assert list(acc.columns) == [
        "time_ns",
        "time_utc",
        "accelerometer_x",
        "accelerometer_y",
        "accelerometer_z",
    ]
    events = pd.read_csv(tmp_path / "csv/events.csv")
    assert list(events["label"]) == ["bell", "task", "cough"]


def test_nothing_to_export_is_a_clear_error(data_dir: dict, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as err:
        to_csv(data_dir["path"], tmp_path / "x", room="nowhere")
    assert err.value.reason == "no_data"
    with pytest.raises(StorageError):
        to_edf(tmp_path / "no-store", tmp_path / "x.edf")
