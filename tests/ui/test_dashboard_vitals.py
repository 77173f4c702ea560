"""What a card and the room panel compute, without a browser: states, numbers, R per condition."""

from __future__ import annotations

import numpy as np
import pytest

from sensocto_lab.clock import FakeClock, TokenBucket
from sensocto_lab.events import Event, condition_begin, condition_end
from sensocto_lab.model import AttributeInfo, Batch, SensorInfo
from sensocto_lab.ui.dashboard.cards import SensorCard
from sensocto_lab.ui.dashboard.controls import format_status
from sensocto_lab.ui.dashboard.roompanel import RoomPanel, Span, condition_means
from sensocto_lab.ui.dashboard.vitals import (
    CardState,
    breaths_per_minute,
    card_state,
    is_flat,
    natural_key,
)

T0 = 1_767_225_600 * 10**9
S = 10**9


def test_cards_sort_naturally() -> None:
    ids = ["sim-lab-10", "sim-lab-2", "sim-lab-1", "p10", "p9", "sim-lab-0"]
    assert sorted(ids, key=natural_key) == [
        "p9", "p10", "sim-lab-0", "sim-lab-1", "sim-lab-2", "sim-lab-10",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "state"),
    [
        ({"registered": False, "last_ns": T0}, CardState.DISCONNECTED),
        ({"last_ns": None}, CardState.CONNECTING),
        ({"last_ns": T0 - 6 * S}, CardState.STALE),
        ({"last_ns": T0, "flat": True}, CardState.FLAT),
        ({"last_ns": T0, "battery": 12.0}, CardState.BATTERY_LOW),
        ({"last_ns": T0, "battery": 80.0}, CardState.LIVE),
        ({"last_ns": T0 - 6 * S, "flat": True, "battery": 5.0}, CardState.STALE),  # order wins
    ],
)
def test_card_states_in_the_order_they_win(kwargs: dict, state: CardState) -> None:
    args = {"registered": True, "now_ns": T0, "flat": False, "battery": None, **kwargs}
    assert card_state(**args) is state


def test_breathing_rate_of_a_noisy_breath_and_none_for_flat_or_short() -> None:
    rng = np.random.default_rng(0)
    ts = T0 + np.arange(0, 30 * 20, dtype=np.int64) * (S // 20)  # 30 s at 20 Hz
    y = np.sin(2 * np.pi * 0.25 * (ts - T0) / S) + 0.1 * rng.standard_normal(len(ts))
    assert breaths_per_minute(ts, y) == pytest.approx(15.0, abs=0.6)
    assert breaths_per_minute(ts, np.full(len(ts), 0.3)) is None
    assert breaths_per_minute(ts[:100], y[:100]) is None  # 5 s is too short
    assert is_flat(np.full(10, 2.0)) and not is_flat(y) and not is_flat(np.zeros(0))


def test_a_card_goes_from_connecting_to_live_to_flat_to_stale() -> None:
    kinds = ("respiration", "hr", "battery")
    card = SensorCard(SensorInfo("s1", {k: AttributeInfo.of(k) for k in kinds}))
    assert card.measure(T0).state is CardState.CONNECTING
    ts = T0 + np.arange(0, 400, dtype=np.int64) * (S // 20)
    card.push(Batch("s1", "respiration", ts, np.sin(2 * np.pi * 0.25 * (ts - T0) / S)))
    card.push(Batch("s1", "hr", ts[-1:], np.array([71.0])))
    card.push(Batch("s1", "battery", ts[-1:], np.array([80.0])))
    now = int(ts[-1])
    v = card.measure(now)
    assert v.state is CardState.LIVE and v.hr_bpm == 71.0 and v.quality == "good"
    assert v.br_per_min == pytest.approx(15.0, abs=1.0)
    flat_ts = now + np.arange(1, 121, dtype=np.int64) * (S // 20)
    card.push(Batch("s1", "respiration", flat_ts, np.zeros(120)))
    assert card.measure(int(flat_ts[-1])).state is CardState.FLAT
    assert card.measure(int(flat_ts[-1]) + 6 * S).state is CardState.STALE
    card.push(Batch("s1", "battery", flat_ts[-1:], np.array([9.0])))
    card.push(Batch("s1", "respiration", flat_ts[-1:] + S, np.array([0.5])))
    assert card.measure(int(flat_ts[-1]) + S, registered=False).state is CardState.DISCONNECTED
    card.set_vitals(card.measure(int(flat_ts[-1]) + S))
    assert "flat signal" in card._header.text or "battery low" in card._header.text


def test_r_per_condition_pools_blocks_of_every_occurrence() -> None:
    t = T0 + np.arange(0, 120 * 2, dtype=np.int64) * (S // 2)  # 120 s at 2 Hz
    r = np.where((t - T0) < 60 * S, 0.3, 0.9)
    spans = [Span("baseline", T0, T0 + 60 * S), Span("task", T0 + 60 * S, None)]
    out = condition_means(t, r, spans, now_ns=T0 + 120 * S)
    assert out["baseline"][0] == pytest.approx(0.3) and out["baseline"][2] == 12
    assert out["task"][0] == pytest.approx(0.9) and out["task"][1] == pytest.approx(0.0)
    noisy = r + np.random.default_rng(1).normal(0, 0.05, len(r))
    mean, half, k = condition_means(t, noisy, spans, now_ns=T0 + 120 * S)["baseline"]
    assert 0 < half < 0.05 and abs(mean - 0.3) < 2 * half + 0.01 and k == 12


def test_the_room_panel_draws_conditions_and_markers_escaped() -> None:
    panel = RoomPanel({}, has_sync=True, now_ms=T0 / 1e6)
    panel.on_event(condition_begin("task", T0, room="lab"))
    panel.on_event(Event(T0 + S, "<script>alert(1)</script>", room="lab", source="dashboard"))
    panel.tick(T0 + 5 * S)
    assert "Condition: <b>task</b> · 0:05" in panel.banner.text
    assert "<script>" not in panel.recent.text and "&lt;script&gt;" in panel.recent.text
    assert panel.spans.data["right"] == [(T0 + 5 * S) / 1e6]
    assert panel.marks.data["x"] == [(T0 + S) / 1e6]
    panel.on_event(condition_end("task", T0 + 7 * S, room="lab"))
    panel.tick(T0 + 9 * S)
    assert "No condition running" in panel.banner.text
    assert panel.spans.data["right"] == [(T0 + 7 * S) / 1e6]


def test_the_phase_circle_moves_participants_on_between_estimates() -> None:
    panel = RoomPanel({"a": "#111111", "b": "#222222"}, has_sync=True, now_ms=T0 / 1e6)
    panel.set_phases(T0, ["a", "b"], np.array([0.0, np.pi / 2]))
    panel.set_phases(T0 + S // 2, ["a", "b"], np.array([0.5, np.pi / 2 + 0.5]))  # 1 rad/s
    panel.move_phases(T0 + S)  # half a second after the newest estimate
    x, y = np.array(panel.phase_source.data["x"]), np.array(panel.phase_source.data["y"])
    assert np.allclose(np.arctan2(y, x), [1.0, np.pi / 2 + 1.0])
    assert panel.phase_source.data["colour"] == ["#111111", "#222222"]


def test_presses_are_rate_limited_on_the_clock() -> None:
    clock = FakeClock()
    limit = TokenBucket(5.0, 5, clock)
    assert sum(limit.take() for _ in range(1000)) == 5 and limit.refused == 995
    clock.advance(1.0)
    assert sum(limit.take() for _ in range(1000)) == 5


def test_the_status_strip_reads_like_a_recorder() -> None:
    text = format_status(
        {"duration_s": 3725, "samples": 1234567, "storage_lag_s": 0.25,
         "free_bytes": 3 * 2**30, "dropped": 0}
    )  # fmt: skip
    assert "1:02:05" in text and "1,234,567" in text and "0.25 s" in text
    assert "3.0 GiB" in text and "dropped 0" in text
