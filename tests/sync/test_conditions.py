"""Analysis by condition and around events, on a simulated protocol and synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sensocto_lab.errors import ValidationError
from sensocto_lab.sources.simulator import GroupSimulator, SimConfig
from sensocto_lab.sync.conditions import by_condition, epochs, segments

T0 = 1_767_225_600 * 10**9
SEC = 10**9


def events_frame(rows: list[tuple[float, float, str, str]]) -> pd.DataFrame:
    """A ``store.events()``-shaped table from ``(onset_s, duration_s, label, kind)`` rows."""
    return pd.DataFrame(
        {
            "onset": pd.to_datetime([T0 + round(o * SEC) for o, _, _, _ in rows], utc=True),
            "duration": [d for _, d, _, _ in rows],
            "label": [lab for _, _, lab, _ in rows],
            "kind": [k for _, _, _, k in rows],
        }
    )


def simulated_protocol(schedule: list[tuple[str, float, float]], n: int = 8, seed: int = 1):
    """Respiration of a group run through ``(label, seconds, K)`` steps, and its events."""
    sim = GroupSimulator(n, 0.0, seed, start_ns=T0, config=SimConfig(respiration_hz=10.0))
    ts: list[np.ndarray] = []
    values: list[np.ndarray] = []
    rows = []
    at = 0.0
    for label, seconds, k in schedule:
        sim.set_coupling(k)
        rows.append((at, seconds, label, "condition"))
        at += seconds
        step = sim.advance_to(T0 + round(at * SEC))
        resp = list(step.select("respiration"))
        ts.append(resp[0].ts)
        values.append(np.stack([np.asarray(b.values, dtype=np.float64) for b in resp]))
    time = np.concatenate(ts).astype("datetime64[ns]")
    da = xr.DataArray(
        np.concatenate(values, axis=1),
        dims=("sensor", "time"),
        coords={"sensor": list(sim.sensor_ids), "time": time},
        attrs={"units": "1", "rate_hz": 10.0},
    )
    return xr.Dataset({"respiration": da}), events_frame(rows)


def test_segments_cut_each_condition_and_an_open_one_runs_to_the_end() -> None:
    time = (T0 + np.arange(100) * SEC).astype("datetime64[ns]")
    ds = xr.Dataset({"hr": (("sensor", "time"), np.arange(200.0).reshape(2, 100))},
                    coords={"sensor": ["a", "b"], "time": time})
    events = events_frame(
        [(10, 20, "task", "condition"), (5, 0, "bell", "marker"), (50, 10, "task", "condition"),
         (70, float("nan"), "recovery", "condition")]
    )
    pieces = segments(ds, events)
    assert set(pieces) == {"task", "recovery"}
    assert [p.sizes["time"] for p in pieces["task"]] == [20, 10]
    assert pieces["task"][1]["hr"].values[0, 0] == 50.0  # [onset, onset + duration)
    assert pieces["recovery"][0].sizes["time"] == 30  # open: to the end of the data
    assert set(segments(ds, events, condition="recovery")) == {"recovery"}
    outside = events_frame([(500, 10, "late", "condition")])
    assert segments(ds, outside) == {"late": []}


def test_by_condition_finds_the_coupled_task_and_not_the_uncoupled_baseline() -> None:
    ds, events = simulated_protocol([("baseline", 60, 0.0), ("task", 60, 3.0)])
    table = by_condition(ds, events, n_surrogates=199, seed=0).set_index("condition")
    assert list(table.columns) == ["measure", "value", "n", "ci_low", "ci_high", "p_value"]
    task, base = table.loc["task"], table.loc["baseline"]
    assert task["value"] > base["value"] + 0.2
    assert task["p_value"] < 0.01
    assert base["p_value"] > 0.05
    for row in (task, base):
        assert row["ci_low"] <= row["value"] <= row["ci_high"] and row["n"] == 6
    assert table.loc["task", "measure"] == "synchrony_R"


def test_by_condition_takes_any_measure_without_a_p_value() -> None:
    ds, events = simulated_protocol([("baseline", 30, 0.0), ("task", 30, 3.0)], n=3)

    def mean_breath(piece: xr.Dataset) -> float:
        return float(piece["respiration"].mean())

    table = by_condition(ds, events, measure=mean_breath)
    assert table["measure"].tolist() == ["mean_breath", "mean_breath"]
    assert table["p_value"].isna().all() and (table["n"] == 1).all()
    expected = float(ds["respiration"].isel(time=slice(0, 300)).mean())
    assert table.set_index("condition").loc["baseline", "value"] == pytest.approx(expected)


def test_epochs_recover_a_known_heart_rate_response_on_a_lag_grid() -> None:
    # hr at 2 Hz: 60 bpm plus a 10 bpm bump 2-6 s after each bell (a boxcar, so exact).
    t_s = np.arange(0, 200, 0.5)
    bells = [20.0, 75.0, 130.0]
    hr = np.full((2, t_s.size), 60.0)
    for b in bells:
        hr[:, (t_s >= b + 2) & (t_s < b + 6)] += 10.0
    hr[1] += 5.0
    ds = xr.Dataset(
        {"hr": (("sensor", "time"), hr, {"units": "bpm", "rate_hz": 2.0})},
        coords={"sensor": ["a", "b"], "time": (T0 + t_s * SEC).astype("datetime64[ns]")},
    )
    events = events_frame([(b, 0, "bell", "marker") for b in bells] + [(50, 0, "other", "marker")])
    got = epochs(ds, events, label="bell", tmin=-5, tmax=20, attribute="hr")
    assert got.dims == ("epoch", "sensor", "lag") and got.sizes["epoch"] == 3
    assert got["lag"].values[0] == -5.0 and got["lag"].values[-1] == 20.0
    assert got.sizes["lag"] == 51 and got.attrs["units"] == "bpm"
    mean = got.mean("epoch")
    assert float(mean.sel(sensor="a", lag=3.0)) == 70.0
    assert float(mean.sel(sensor="a", lag=-1.0)) == 60.0
    assert float(mean.sel(sensor="b", lag=10.0)) == 65.0
    corrected = epochs(ds, events, attribute="hr", baseline=(-5, 0))
    assert float(corrected.mean("epoch").sel(sensor="b", lag=4.0)) == 10.0


def test_epochs_leave_nan_outside_the_data_and_across_gaps() -> None:
    t_s = np.arange(0, 30.0)
    values = np.arange(30.0)
    values[12:18] = np.nan  # a 7 s gap
    da = xr.DataArray(values, dims=("time",), coords={"time": (T0 + t_s * SEC).astype(
        "datetime64[ns]")}, name="hr")
    events = events_frame([(2, 0, "bell", "marker"), (14, 0, "bell", "marker")])
    got = epochs(da, events, tmin=-5, tmax=5, fs=2.0)
    first, second = got.isel(sensor=0).values
    assert np.isnan(first[:6]).all() and first[10] == 2.0 and first[11] == 2.5  # interpolated
    assert np.isnan(second[10])  # inside the gap
    with pytest.raises(ValidationError):
        epochs(da, events, tmin=3, tmax=1)
