"""Dashboard parts without a browser: card, observers' message handling, attention mapping."""

from __future__ import annotations

import numpy as np
import pytest
from bokeh.document import Document

from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo
from sensocto_lab.ui.dashboard.cards import SensorCard, main_attribute, plot_values
from sensocto_lab.ui.dashboard.observer import PageObserver, VisibilityObserver, level_for

T0 = 1_767_225_600 * 10**9


def sensor(*kinds: str) -> SensorInfo:
    return SensorInfo("s1", {k: AttributeInfo.of(k) for k in kinds}, name="Ana")


@pytest.mark.parametrize(
    ("ratio", "pointer", "page_visible", "level"),
    [
        (0.5, True, True, AttentionLevel.HIGH),
        (0.0, True, True, AttentionLevel.HIGH),  # pointer on a card means it is seen
        (0.01, False, True, AttentionLevel.MEDIUM),
        (1.0, False, True, AttentionLevel.MEDIUM),
        (0.0, False, True, AttentionLevel.LOW),
        (1.0, True, False, AttentionLevel.NONE),
        (0.0, False, False, AttentionLevel.NONE),
    ],
)
def test_what_is_seen_maps_to_attention(
    ratio: float, pointer: bool, page_visible: bool, level: AttentionLevel
) -> None:
    assert level_for(ratio, pointer, page_visible) is level


def test_the_card_plots_the_main_attribute() -> None:
    assert main_attribute(sensor("ecg", "respiration", "battery")) == "respiration"
    assert main_attribute(sensor("battery", "accelerometer")) == "accelerometer"
    assert main_attribute(sensor("battery")) is None
    acc = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]])
    assert plot_values(acc).tolist() == [5.0, 2.0]
    assert plot_values(np.array([1.5, 2.5])).tolist() == [1.5, 2.5]


def test_card_streams_with_rollover_and_shows_battery() -> None:
    card = SensorCard(sensor("respiration", "battery"))
    assert card.attributes == ["battery", "respiration"]
    assert card.rollover == 200  # 10 Hz nominal × the respiration window of 20 s
    doc = Document()
    card.panel.server_doc(doc)
    for i in range(30):
        ts = T0 + np.arange(10 * i, 10 * i + 10, dtype=np.int64) * 10**8
        card.push(Batch("s1", "respiration", ts, np.arange(10 * i, 10 * i + 10, dtype=float)))
    data = card.source.data
    assert len(data["t"]) == len(data["y"]) == 200
    assert list(data["y"][-3:]) == [297.0, 298.0, 299.0]
    assert data["t"][-1] == pytest.approx((T0 + 299 * 10**8) / 1e6)  # ms for the datetime axis
    card.push(Batch("s1", "battery", np.array([T0]), np.array([55.0])))
    card.push(Batch("s1", "ecg", np.array([T0]), np.array([1.0])))  # not drawn here
    assert card.battery == 55.0 and len(card.source.data["t"]) == 200
    card.set_status(AttentionLevel.HIGH)
    card.set_vitals(card.measure(T0 + 300 * 10**8))
    assert "s1" in card._header.text and "attention high" in card._header.text
    assert "battery 55%" in card._numbers.text


def test_visibility_reports_are_checked_and_clamped() -> None:
    seen: list[tuple[str, float, bool]] = []
    obs = VisibilityObserver(
        SensorCard(sensor("respiration")).panel,
        key="s1",
        on_change=lambda *a: seen.append(a),
    )
    obs._handle_msg({"ratio": 0.4, "pointer": True})
    obs._handle_msg({"ratio": 7, "pointer": False})  # a page cannot see more than all of it
    for bad in [None, "x", {"ratio": "a lot", "pointer": True}, {"pointer": True}]:
        obs._handle_msg(bad)
    assert seen == [("s1", 0.4, True), ("s1", 1.0, False)]
    assert (obs.ratio, obs.pointer) == (1.0, False)


def test_page_reports_visibility_and_lag() -> None:
    visible: list[bool] = []
    lags: list[float] = []
    page = PageObserver(on_visibility=visible.append, on_lag=lags.append)
    page._handle_msg({"visibility": "hidden"})
    page._handle_msg({"visibility": "visible", "lag_ms": 12.5})
    page._handle_msg({"lag_ms": "slow"})
    page._handle_msg(["not", "a", "report"])
    assert visible == [False, True] and lags == [12.5]
    assert page.page_visible


def test_participant_ids_are_shown_as_text_not_markup() -> None:
    info = SensorInfo("s1", {"hr": AttributeInfo.of("hr")}, name="Participant 2")
    card = SensorCard(info, participant="<img src=x onerror=alert(1)>")
    text = card._header.text
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert card.label == "<img src=x onerror=alert(1)>"
    # a device's own name ("Participant 2" for sim-…-1) is never the card's name
    plain = SensorCard(info)
    assert plain.label == "s1" and "Participant" not in plain._header.text
