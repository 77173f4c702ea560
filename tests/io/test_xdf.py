"""read_xdf against pyxdf's own reading of files written here, and refusals of bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyxdf
from xdf_writer import XdfWriter

from sensocto_lab.errors import ValidationError
from sensocto_lab.io import read_xdf

T0_EPOCH_NS = 1_767_261_600 * 10**9  # 2026-01-01T10:00:00Z, the writer's header datetime
FORMATS = ["float32", "double64", "int8", "int16", "int32", "int64"]


def _lab_file(path: Path) -> Path:
    """Three numeric streams, a marker stream, an empty stream; offsets and a clock reset."""
    rng = np.random.default_rng(1)
    w = XdfWriter(path)
    # EEG, 4 channels at 100 Hz on a remote clock 100 s behind the recorder, jittered.
    w.stream(1, "EEG", "EEG", 4, 100, "float32", "eeg-1", ["Fp1", "Fp2", "Cz", "Oz"], ["uV"] * 4)
    t = 1000.0 + np.arange(500) / 100 + rng.normal(0, 2e-4, 500)
    eeg = rng.standard_normal((500, 4)).astype(np.float32)
    for lo in range(0, 500, 100):
        w.samples(1, "float32", t[lo : lo + 100], eeg[lo : lo + 100])
        w.offset(1, float(t[lo]), 100.0 + 1e-4 * lo / 100)
    # ACC, int16, with a clock reset half way: the device restarts (30 s) and its clock
    # starts again near 0.
    w.stream(2, "Müller ACC", "Accelerometer", 3, 50, "int16", "", None, None)
    acc = rng.integers(-3000, 3000, (200, 3), dtype=np.int16)
    before = 2000.0 + np.arange(100) / 50
    after = 3.0 + np.arange(100) / 50
    w.samples(2, "int16", before, acc[:100], stamp_every=0)
    for k in range(5):
        w.offset(2, 2000.0 + k * 0.5, -900.0)
    for k in range(5):
        w.offset(2, 3.0 + k * 0.5, 1127.0 - 0.001)
    w.samples(2, "int16", after, acc[100:], stamp_every=0)
    # Markers, irregular strings.
    w.stream(3, "Markers", "Markers", 1, 0, "string", "mk-1")
    w.samples(3, "string", np.array([1001.0, 1002.5, 1003.25]), [["start"], ["tone"], [""]])
    w.offset(3, 1000.0, 100.0)
    w.offset(3, 1004.0, 100.0)
    # Empty stream: a header and nothing else.
    w.stream(4, "Empty", "EEG", 2, 256, "double64", "empty-1")
    w.footer(1, float(t[0]), float(t[-1]), 500)
    w.close()
    return path


def test_read_xdf_matches_pyxdf_value_by_value(tmp_path: Path) -> None:
    path = _lab_file(tmp_path / "lab.xdf")
    rec = read_xdf(path)
    ref, _ = pyxdf.load_xdf(str(path))
    by_name = {s["info"]["name"][0]: s for s in ref}
    t0 = min(float(s["time_stamps"][0]) for s in ref if len(s["time_stamps"]))

    assert [s.name for s in rec.streams] == ["EEG", "Müller ACC"]
    assert any("Empty" in note for note in rec.notes)
    for stream in rec.streams:
        theirs = by_name[stream.name]
        assert stream.values.dtype == theirs["time_series"].dtype
        np.testing.assert_array_equal(stream.values, theirs["time_series"])
        expected = T0_EPOCH_NS + np.round((theirs["time_stamps"] - t0) * 1e9).astype(np.int64)
        np.testing.assert_array_equal(stream.ts, np.maximum.accumulate(expected))
    eeg, acc = rec.streams
    assert eeg.sensor_id == "eeg-1"
    assert [c.label for c in eeg.channels] == ["Fp1", "Fp2", "Cz", "Oz"]
    assert [c.unit for c in eeg.channels] == ["uV"] * 4
    assert eeg.rate_hz == 100.0
    assert acc.sensor_id == "Muller_ACC"  # made safe for check_id, the name kept
    assert [c.attribute_id for c in acc.channels] == ["ch0", "ch1", "ch2"]
    # The offsets were applied: EEG on the recorder clock is ~1100 s, markers too.
    assert eeg.info["clock_values"][0] == pytest.approx(100.0)
    # The clock reset was handled: the ACC stream stays in order and continuous-ish.
    assert (np.diff(acc.ts) >= 0).all()
    # Recorder time: 1100 + k/50 before the reset, 1130 + k/50 after it.
    assert (acc.ts[100] - acc.ts[99]) / 1e9 == pytest.approx(1130.0 - 1101.98, abs=0.01)
    assert (acc.ts[199] - acc.ts[100]) / 1e9 == pytest.approx(99 / 50, abs=0.01)
    assert (acc.ts[0] - eeg.ts[0]) / 1e9 == pytest.approx(0.0, abs=0.01)
    labels = [e.label for e in rec.events]
    assert labels == ["start", "tone"]  # the empty marker carries no label and is left out
    assert all(e.source == "import" for e in rec.events)
    marker_ts = by_name["Markers"]["time_stamps"]
    assert rec.events[0].onset_ns == T0_EPOCH_NS + round((marker_ts[0] - t0) * 1e9)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_numeric_format_reads_as_it_was_written(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"{fmt}.xdf"
    w = XdfWriter(path)
    w.stream(7, "S", "Misc", 2, 10, fmt, "s-1")
    info = np.iinfo(fmt.replace("double64", "float64")) if fmt.startswith("int") else None
    if info is not None:
        data = np.array([[info.min, info.max], [0, -1], [1, 2]], dtype=fmt)
    else:
        data = np.array([[1.5, -2.25], [3.0e10, 1e-7], [0, 7]])
    w.samples(7, fmt, 5.0 + np.arange(3) / 10, data)
    w.close()
    (stream,) = read_xdf(path).streams
    ref, _ = pyxdf.load_xdf(str(path))
    np.testing.assert_array_equal(stream.values, ref[0]["time_series"])
    assert stream.values.dtype == ref[0]["time_series"].dtype


def _one_stream(path: Path, channels: int | str = 1, rate: float | str = 10, fmt: str = "float32"):
    w = XdfWriter(path)
    w.stream(1, "S", "EEG", channels, rate, fmt, "s")
    if fmt in ("float32", "double64") and str(channels) == "1":
        w.samples(1, fmt, np.arange(20) / 10.0, np.zeros((20, 1)))
    w.close()
    return path


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"fmt": "float16"}, "unknown_channel_format"),
        ({"channels": 0}, "no_channels"),
        ({"rate": "nan"}, "invalid_rate"),
        ({"rate": -5}, "invalid_rate"),
    ],
)
def test_bad_stream_headers_are_refused(tmp_path: Path, kwargs: dict, reason: str) -> None:
    path = _one_stream(tmp_path / "bad.xdf", **kwargs)
    with pytest.raises(ValidationError) as err:
        read_xdf(path)
    assert err.value.reason == reason


def test_truncated_and_corrupt_files_are_refused(tmp_path: Path) -> None:
    good = _one_stream(tmp_path / "good.xdf")
    assert len(read_xdf(good).streams) == 1
    raw = good.read_bytes()
    for n in (len(raw) - 1, len(raw) - 30, 40, 3):
        cut = tmp_path / f"cut{n}.xdf"
        cut.write_bytes(raw[:n])
        with pytest.raises(ValidationError) as err:
            read_xdf(cut)
        assert err.value.reason in ("corrupt_file", "no_streams"), n
    flipped = bytearray(raw)
    flipped[4] = 3  # a length field of 3 bytes does not exist
    bad = tmp_path / "flipped.xdf"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValidationError, match="length"):
        read_xdf(bad)
    (tmp_path / "empty.xdf").write_bytes(b"")
    with pytest.raises(ValidationError):
        read_xdf(tmp_path / "empty.xdf")


def test_a_file_with_only_empty_streams_is_refused(tmp_path: Path) -> None:
    w = XdfWriter(tmp_path / "e.xdf")
    w.stream(1, "S", "EEG", 2, 10, "float32", "s")
    w.close()
    with pytest.raises(ValidationError) as err:
        read_xdf(tmp_path / "e.xdf")
    assert err.value.reason == "no_data"


def test_names_with_nothing_usable_fall_back_to_their_position(tmp_path: Path) -> None:
    w = XdfWriter(tmp_path / "jp.xdf")
    w.stream(1, "脳波", "EEG", 2, 10, "float32", "", ["α", "β"], ["µV", "µV"])
    w.samples(1, "float32", np.arange(3) / 10, np.ones((3, 2)))
    w.close()
    (stream,) = read_xdf(tmp_path / "jp.xdf").streams
    assert stream.sensor_id == "stream0" and stream.name == "脳波"
    assert [(c.attribute_id, c.label, c.unit) for c in stream.channels] == [
        ("ch0", "α", "µV"),
        ("ch1", "β", "µV"),
    ]


def test_gzipped_xdfz_reads_like_xdf(tmp_path: Path) -> None:
    import gzip

    plain = _lab_file(tmp_path / "lab.xdf")
    packed = tmp_path / "lab.xdfz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = read_xdf(plain), read_xdf(packed)
    for x, y in zip(a.streams, b.streams, strict=True):
        np.testing.assert_array_equal(x.values, y.values)
        np.testing.assert_array_equal(x.ts, y.ts)
    packed.write_bytes(gzip.compress(plain.read_bytes())[:-20])
    with pytest.raises(ValidationError):
        read_xdf(packed)
