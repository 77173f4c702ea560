"""SyncWidget: what is sent decodes to what was fed; bad input is refused and changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from sensocto_lab.clock import FakeClock
from sensocto_lab.errors import ValidationError
from sensocto_lab.ui.notebook.sync_widget import SyncWidget, order_parameter


def _widget(**kwargs: object) -> tuple[SyncWidget, FakeClock]:
    clock = FakeClock()
    return SyncWidget(clock=clock, schedule=lambda d, f: None, **kwargs), clock  # type: ignore[arg-type]


def test_order_parameter_of_aligned_and_opposed_phases() -> None:
    assert order_parameter([0.3] * 5) == pytest.approx(1.0)
    assert order_parameter([0.0, np.pi]) == pytest.approx(0.0, abs=1e-12)
    assert order_parameter([]) == 0.0


def test_phases_and_r_decode_to_what_was_sent() -> None:
    w, _ = _widget()
    rng = np.random.default_rng(1)
    phases = rng.uniform(-np.pi, np.pi, 12)
    w.update(phases=phases, labels=[f"p{i}" for i in range(12)])
    w.flush()
    np.testing.assert_allclose(np.frombuffer(w.phases, np.float32), phases, rtol=1e-6)
    assert w.r == pytest.approx(order_parameter(phases), rel=1e-5)
    assert w.labels == [f"p{i}" for i in range(12)]


def test_explicit_r_wins_and_history_strip_keeps_only_the_window() -> None:
    w, clock = _widget(window_s=10.0)
    for i in range(30):  # one update a second for 30 s
        w.update(r=i / 30, phases=[0.0, 1.0])
        clock.advance(1.0)
    w.flush()
    t = np.frombuffer(w.r_t, np.float32)
    v = np.frombuffer(w.r_v, np.float32)
    assert t[-1] == 0.0 and t[0] >= -10.0
    assert len(t) == 11  # seconds 19..29 inclusive
    np.testing.assert_allclose(v, np.arange(19, 30) / 30, rtol=1e-6)
    assert w.r == pytest.approx(29 / 30)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({}, "missing_fields"),
        ({"r": 1.5}, "invalid_r"),
        ({"r": float("nan")}, "invalid_r"),
        ({"r": True}, "invalid_r"),
        ({"r": "0.5"}, "invalid_r"),
        ({"phases": [0.0, np.inf]}, "non_finite_value"),
        ({"phases": [[0.0, 1.0]]}, "invalid_shape"),
        ({"phases": ["a", "b"]}, "invalid_value"),
        ({"phases": [0.0, 1.0], "labels": ["only one"]}, "invalid_shape"),
    ],
)
def test_bad_input_is_refused_and_state_is_kept(kwargs: dict, reason: str) -> None:
    w, _ = _widget()
    w.update(phases=[0.1, 0.2], labels=["a", "b"])
    w.flush()
    before = (w.r, w.phases, w.r_v, list(w.labels))
    with pytest.raises(ValidationError) as info:
        w.update(**kwargs)
    assert info.value.reason == reason
    w.flush()
    assert (w.r, w.phases, w.r_v, list(w.labels)) == before


def test_time_going_backwards_is_refused() -> None:
    w, _ = _widget()
    w.update(r=0.5, t=100.0)
    with pytest.raises(ValidationError) as info:
        w.update(r=0.6, t=99.0)
    assert info.value.reason == "unordered_timestamps"


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window_s"):
        SyncWidget(window_s=0)


def test_panel_twin_follows_the_widget() -> None:
    pytest.importorskip("panel")
    import panel as pn

    w, clock = _widget(title="room A")
    w.update(phases=[0.0, 0.5, 1.0])
    w.flush()
    twin = pn.panel(w)
    assert twin.title == "room A"
    assert twin.phases == w.phases
    clock.advance(1)
    w.update(phases=[2.0, 2.0, 2.0])
    w.flush()
    assert twin.r == pytest.approx(1.0)
    np.testing.assert_allclose(np.frombuffer(twin.phases, np.float32), [2.0, 2.0, 2.0])
    assert "render" in twin._esm and "phase-circle" in twin._esm


def test_numpy_scalars_are_numbers() -> None:
    w, _ = _widget()
    w.update(r=np.float32(0.25))
    w.flush()
    assert w.r == pytest.approx(0.25)
