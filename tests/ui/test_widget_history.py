"""HistoryWidget: R(t) and its surrogate band reach the browser as sent; bad series refused."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sensocto_lab.errors import ValidationError
from sensocto_lab.ui.notebook.history import HistoryWidget, seconds_since_start


def test_datetime_times_become_seconds_from_start_and_band_is_broadcast() -> None:
    time = np.datetime64("2026-01-01T00:00:00", "ns") + np.arange(5) * np.timedelta64(500, "ms")
    r = np.array([0.1, 0.4, 0.9, 0.8, 0.2])
    w = HistoryWidget(time, r, band_hi=0.5, band_label="95th pct of 200 surrogates")
    np.testing.assert_allclose(np.frombuffer(w.t, np.float32), [0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(np.frombuffer(w.r, np.float32), r, rtol=1e-6)
    np.testing.assert_allclose(np.frombuffer(w.band_hi, np.float32), [0.5] * 5)
    np.testing.assert_allclose(np.frombuffer(w.band_lo, np.float32), [0.0] * 5)
    assert w.band_label == "95th pct of 200 surrogates"


def test_from_dataarray_and_int_ns_times() -> None:
    ns = 1_767_225_600 * 10**9 + np.arange(4, dtype=np.int64) * 10**9
    assert list(seconds_since_start(ns)) == [0.0, 1.0, 2.0, 3.0]
    da = xr.DataArray([0.2, 0.3, 0.4], dims="time", coords={"time": [10.0, 11.0, 13.0]})
    w = HistoryWidget.from_dataarray(da, band_hi=[0.5, 0.5, 0.6], band_lo=[0.1, 0.1, 0.1])
    np.testing.assert_allclose(np.frombuffer(w.t, np.float32), [0.0, 1.0, 3.0])
    np.testing.assert_allclose(np.frombuffer(w.band_hi, np.float32), [0.5, 0.5, 0.6])


def test_no_band_sends_empty_band_buffers() -> None:
    w = HistoryWidget([0.0, 1.0], [0.5, 0.6])
    assert w.band_hi == b"" and w.band_lo == b""


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"time": [0.0, 1.0], "r": [0.5]}, "invalid_shape"),
        ({"time": [0.0, 1.0], "r": [0.5, 1.5]}, "invalid_r"),
        ({"time": [1.0, 0.0], "r": [0.5, 0.5]}, "unordered_timestamps"),
        ({"time": [0.0, 1.0], "r": [0.5, np.nan]}, "non_finite_value"),
        ({"time": [0.0, 1.0], "r": [0.5, 0.5], "band_hi": [0.2, 0.2, 0.2]}, "invalid_shape"),
        ({"time": [0.0, 1.0], "r": [0.5, 0.5], "band_hi": 0.2, "band_lo": 0.3}, "invalid_band"),
        ({"time": [0.0, 1.0], "r": [0.5, 0.5], "band_lo": 0.3}, "missing_fields"),
    ],
)
def test_bad_series_is_refused_and_previous_data_kept(kwargs: dict, reason: str) -> None:
    w = HistoryWidget([0.0, 1.0, 2.0], [0.1, 0.2, 0.3], band_hi=0.4)
    before = (w.t, w.r, w.band_hi, w.band_lo)
    with pytest.raises(ValidationError) as info:
        w.set_series(**kwargs)
    assert info.value.reason == reason
    assert (w.t, w.r, w.band_hi, w.band_lo) == before


def test_time_without_r_is_refused() -> None:
    with pytest.raises(ValidationError):
        HistoryWidget([0.0, 1.0])


def test_panel_twin_carries_the_series() -> None:
    pn = pytest.importorskip("panel")
    w = HistoryWidget([0.0, 1.0, 2.0], [0.1, 0.5, 0.9], band_hi=0.4, title="session 3")
    twin = pn.panel(w)
    assert (twin.t, twin.r, twin.band_hi, twin.title) == (w.t, w.r, w.band_hi, "session 3")
    w.set_series([0.0, 1.0], [0.2, 0.3])
    np.testing.assert_allclose(np.frombuffer(twin.r, np.float32), [0.2, 0.3])
    assert twin.band_hi == b""
