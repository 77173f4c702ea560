"""StripWidget: channels, windows, decimation, and refusal of bad samples."""

from __future__ import annotations

import numpy as np
import pytest

from sensocto_lab.errors import ValidationError
from sensocto_lab.model import Batch
from sensocto_lab.ui.notebook.strip import StripWidget

T0 = 1_767_225_600 * 10**9  # 2026-01-01 in ns


def _widget(**kwargs: object) -> StripWidget:
    return StripWidget(schedule=lambda d, f: None, **kwargs)  # type: ignore[arg-type]


def _channels(w: StripWidget) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    t = np.frombuffer(w.times, np.float32)
    v = np.frombuffer(w.values, np.float32)
    o = w.offsets
    return {name: (t[o[i] : o[i + 1]], v[o[i] : o[i + 1]]) for i, name in enumerate(w.channels)}


def test_two_channels_at_different_rates_decode_to_what_was_sent() -> None:
    w = _widget(window_s=10.0)
    ecg_ts = T0 + np.arange(130 * 5, dtype=np.int64) * (10**9 // 130)
    resp_ts = T0 + np.arange(50, dtype=np.int64) * 10**8
    ecg = np.sin(np.arange(len(ecg_ts)) / 7.0)
    resp = np.cos(np.arange(50) / 3.0)
    w.update("a/ecg", ecg_ts, ecg, unit="mV")
    w.update("a/respiration", resp_ts, resp)
    w.flush()
    chans = _channels(w)
    assert w.channels == ["a/ecg", "a/respiration"]
    assert w.units == ["mV", ""]
    np.testing.assert_allclose(chans["a/ecg"][1], ecg, rtol=1e-6)
    np.testing.assert_allclose(chans["a/respiration"][1], resp, rtol=1e-6)
    newest = max(ecg_ts[-1], resp_ts[-1])
    np.testing.assert_allclose(chans["a/ecg"][0], (ecg_ts - newest) / 1e9, atol=1e-6)


def test_old_samples_leave_the_window_and_long_windows_are_decimated() -> None:
    w = _widget(window_s=2.0, max_points=100)
    ts = T0 + np.arange(1000, dtype=np.int64) * 10_000_000  # 100 Hz for 10 s
    for chunk in np.array_split(np.arange(1000), 20):
        w.update("x", ts[chunk], chunk.astype(float))
    held_ts, held_v = w.window("x")
    assert held_ts[0] >= ts[-1] - 2 * 10**9 and held_ts[-1] == ts[-1]
    assert len(held_v) == 201
    w.flush()
    t, v = _channels(w)["x"]
    assert len(v) <= 100
    assert v[-1] == 999.0  # the newest point is always drawn
    assert t[-1] == 0.0 and t[0] >= -2.0


def test_update_batch_names_the_lane_and_needs_a_component_for_vectors() -> None:
    w = _widget()
    ts = T0 + np.arange(3, dtype=np.int64)
    w.update_batch(Batch("s1", "hr", ts, np.array([60.0, 61.0, 62.0])))
    acc = Batch("s1", "accelerometer", ts, np.arange(9, dtype=float).reshape(3, 3))
    with pytest.raises(ValidationError) as info:
        w.update_batch(acc)
    assert info.value.reason == "invalid_shape"
    w.update_batch(acc, component=2)
    w.flush()
    chans = _channels(w)
    assert list(chans) == ["s1/hr", "s1/accelerometer[2]"]
    np.testing.assert_allclose(chans["s1/accelerometer[2]"][1], [2.0, 5.0, 8.0])


@pytest.mark.parametrize(
    ("ts", "values", "reason"),
    [
        (np.array([1.5, 2.5]), [1.0, 2.0], "invalid_timestamp"),
        (np.array([T0, T0 + 1]), [1.0], "invalid_shape"),
        (np.array([T0, T0 + 1]), [1.0, np.nan], "non_finite_value"),
        (np.array([T0 + 1, T0]), [1.0, 2.0], "unordered_timestamps"),
        (np.array([T0 - 5]), [1.0], "unordered_timestamps"),  # before what the lane holds
    ],
)
def test_bad_samples_are_refused_and_nothing_is_lost(ts, values, reason) -> None:
    w = _widget()
    w.update("x", np.array([T0, T0 + 10]), [1.0, 2.0])
    with pytest.raises(ValidationError) as info:
        w.update("x", ts, values)
    assert info.value.reason == reason
    held_ts, held_v = w.window("x")
    np.testing.assert_array_equal(held_ts, [T0, T0 + 10])
    np.testing.assert_array_equal(held_v, [1.0, 2.0])


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"window_s": -1.0}, "window_s"), ({"max_points": 1}, "max_points")]
)
def test_bad_settings_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StripWidget(**kwargs)


def test_panel_twin_follows_the_strip() -> None:
    pn = pytest.importorskip("panel")
    w = _widget()
    twin = pn.panel(w)
    w.update("x", np.array([T0, T0 + 10]), [1.0, 2.0], unit="mV")
    w.flush()
    assert twin.channels == ["x"] and twin.units == ["mV"]
    np.testing.assert_allclose(np.frombuffer(twin.values, np.float32), [1.0, 2.0])
