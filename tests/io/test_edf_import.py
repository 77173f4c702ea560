"""read_edf on files pyedflib writes, and import_file into a data directory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyedflib
import pytest
from xdf_writer import XdfWriter

from sensocto_lab.errors import StorageError, ValidationError
from sensocto_lab.io import import_file, read_edf
from sensocto_lab.io.meta import series_meta
from sensocto_lab.storage import TieredStore

START = dt.datetime(2026, 1, 2, 9, 30, 0)
START_NS = int(START.replace(tzinfo=dt.UTC).timestamp()) * 10**9


def write_edf(path: Path, n_seconds: int = 10, annotations: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    signals = {
        "ECG": (256, "mV", rng.normal(0, 0.5, 256 * n_seconds)),
        "Resp": (32, "a.u.", np.sin(np.arange(32 * n_seconds) / 10)),
        "Temp Ü": (1, "degC", 36 + rng.random(n_seconds)),
    }
    headers = [
        {
            "label": label,
            "dimension": unit,
            "sample_frequency": rate,
            "physical_min": float(np.floor(x.min()) - 1),
            "physical_max": float(np.ceil(x.max()) + 1),
            "digital_min": -32768,
            "digital_max": 32767,
            "transducer": "",
            "prefilter": "",
        }
        for label, (rate, unit, x) in signals.items()
    ]
    header = {"startdate": START}
    if annotations:
        header["annotations"] = [[1.5, 0, "tone"], [4.0, 2.5, "task"]]
    pyedflib.highlevel.write_edf(
        str(path), [x for _, _, x in signals.values()], headers, header=header
    )
    return {label: x for label, (_, _, x) in signals.items()}


def test_read_edf_keeps_rates_units_values_and_annotations(tmp_path: Path) -> None:
    truth = write_edf(tmp_path / "night.edf")
    rec = read_edf(tmp_path / "night.edf")
    assert rec.start_ns == START_NS
    by_label = {s.name: s for s in rec.streams}
    # EDF headers are ASCII: pyedflib's writer spelled "Ü" as "Ae".
    truth["Temp Ae"] = truth.pop("Temp Ü")
    assert set(by_label) == set(truth)
    assert by_label["ECG"].rate_hz == 256 and by_label["ECG"].channels[0].unit == "mV"
    assert by_label["Resp"].rate_hz == 32 and len(by_label["Resp"]) == 320
    assert by_label["Temp Ae"].channels[0].attribute_id == "Temp_Ae"
    for label, x in truth.items():
        s = by_label[label]
        info = s.info
        resolution = (info["physical_max"] - info["physical_min"]) / 65535
        assert np.abs(s.values[:, 0] - x).max() <= resolution
        assert s.ts[1] - s.ts[0] == round(1e9 / s.rate_hz)
        assert s.ts[0] == START_NS
    assert [(e.label, e.duration_s) for e in rec.events] == [("tone", 0.0), ("task", 2.5)]
    assert rec.events[0].onset_ns == START_NS + 1_500_000_000
    assert {s.sensor_id for s in rec.streams} == {"night"}


def test_corrupt_edf_is_refused(tmp_path: Path) -> None:
    write_edf(tmp_path / "a.edf")
    raw = (tmp_path / "a.edf").read_bytes()
    (tmp_path / "cut.edf").write_bytes(raw[:300])
    with pytest.raises(ValidationError) as err:
        read_edf(tmp_path / "cut.edf")
    assert err.value.reason == "corrupt_file"
    (tmp_path / "junk.edf").write_bytes(b"not an edf" * 100)
    with pytest.raises(ValidationError):
        read_edf(tmp_path / "junk.edf")


def test_import_stores_like_recorded_data_and_only_once(tmp_path: Path) -> None:
    truth = write_edf(tmp_path / "night.edf")
    data = tmp_path / "data"
    first = import_file(tmp_path / "night.edf", data, room="sleep")
    assert not first.skipped and first.events == 2
    assert first.samples == sum(len(x) for x in truth.values())
    again = import_file(tmp_path / "night.edf", data, room="sleep")
    assert again.skipped and again.samples == first.samples

    store = TieredStore.open(data, read_only=True)
    table = store.read_table("night", "ECG")
    assert table.num_rows == len(truth["ECG"])  # stored once, not twice
    np.testing.assert_allclose(table["value"].to_numpy(), truth["ECG"], atol=1e-4)
    ds = store.history(sensors=["night"], attributes=["Resp"])
    assert int(ds["Resp"].notnull().sum()) == len(truth["Resp"])
    events = store.events(room="sleep")
    assert list(events["label"]) == ["tone", "task"]
    assert set(events["source"]) == {"import"}
    assert {s.room for s in store.series()} == {"sleep"}
    meta = series_meta(data)
    assert meta[("night", "ECG")] == {"unit": "mV", "rate_hz": 256.0, "label": "ECG"}


def test_a_bad_file_stores_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    w = XdfWriter(tmp_path / "nan.xdf")
    w.stream(1, "S", "EEG", 2, 10, "double64", "s")
    w.samples(1, "double64", np.arange(5) / 10, [[1, 2], [3, np.nan], [5, 6], [7, 8], [9, 0]])
    w.close()
    with pytest.raises(ValidationError) as err:
        import_file(tmp_path / "nan.xdf", data)
    assert err.value.reason == "non_finite_value"
    assert not data.exists()
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValidationError):
        import_file(tmp_path / "x.txt", data)


def test_an_import_cut_short_is_reported_not_doubled(tmp_path: Path) -> None:
    write_edf(tmp_path / "n.edf")
    data = tmp_path / "data"
    first = import_file(tmp_path / "n.edf", data)
    record = data / "interop" / "imports" / f"{first.sha256}.json"
    record.write_text(record.read_text().replace('"state": "done"', '"state": "writing"'))
    with pytest.raises(StorageError) as err:
        import_file(tmp_path / "n.edf", data)
    assert err.value.reason == "import_incomplete"


def test_import_of_xdf_with_markers(tmp_path: Path) -> None:
    w = XdfWriter(tmp_path / "s.xdf")
    w.stream(1, "Resp", "Respiration", 1, 10, "float32", "belt-1", ["resp"], ["a.u."])
    w.samples(1, "float32", 50 + np.arange(100) / 10, np.ones((100, 1)))
    w.stream(2, "Markers", "Markers", 1, 0, "string", "m")
    w.samples(2, "string", np.array([51.0, 55.0]), [["go"], ["stop"]])
    w.close()
    result = import_file(tmp_path / "s.xdf", tmp_path / "d", room="lab")
    assert result.series == (("belt-1", "resp"),)
    store = TieredStore.open(tmp_path / "d", read_only=True)
    assert store.read_table("belt-1", "resp").num_rows == 100
    ev = store.events(room="lab")
    assert list(ev["label"]) == ["go", "stop"]
    gap = (ev["onset"].iloc[1] - ev["onset"].iloc[0]).total_seconds()
    assert gap == pytest.approx(4.0, abs=1e-6)
