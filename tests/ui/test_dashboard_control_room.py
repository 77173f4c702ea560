"""The room dashboard as an experiment's control room, in real Chromium.

One engine on its own loop thread with a simulated group of 4 (room ``lab``, its live
synchrony) and five hand-fed sensors in the states a card must tell apart (flat, low
battery, stale, connecting, disconnected); one dashboard server without login (so a
code holder runs the experiment, see ``ui/dashboard/controls.py``). Every page fails
its test on a page or console error (``support.browser``). Waits are on page
conditions or engine state, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect
from support.browser import (
    TIMEOUT_S,
    browser,
    check_page,
    new_page,
    page,
    start_engine,
    wait_until,
)

from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.synchrony import LiveSynchrony
from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo
from sensocto_lab.rooms import Room, RoomStore
from sensocto_lab.sources.simulated import SimulatedGroup
from sensocto_lab.ui.dashboard.room import RoomDashboard
from sensocto_lab.ui.dashboard.server import DashboardServer, serve_dashboards

__all__ = ["browser", "page"]  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIM = [f"sim-lab-{i}" for i in range(4)]
HAND = ["s2", "s3", "s4", "s5", "s10"]
MS = TIMEOUT_S * 1000


@dataclass
class Lab:
    engine: Engine
    server: DashboardServer
    rooms: RoomStore
    room: Room

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` on the engine's loop and return what it returned."""

        async def run() -> Any:
            return fn()

        return self.engine.call(run)

    def events(self) -> pd.DataFrame:
        return self.call(lambda: self.engine.store.events(room="lab"))

    def dashboard(self) -> RoomDashboard:
        """The one open dashboard (earlier tests' closed pages are cleaned up first)."""
        dashes = wait_until(
            "exactly one dashboard",
            lambda: len(d := list(self.server.context.dashboards.values())) == 1 and d,
        )
        return dashes[0]

    def url(self) -> str:
        return self.server.room_url("lab", self.room.join_code)


async def _feed_by_hand(engine: Engine, stop: asyncio.Event) -> None:
    """s2 flat, s10 on a low battery, s3 only for its first second, s5 until unregistered;
    s4 never (connecting)."""
    start = time.time_ns()
    while not stop.is_set():
        now = time.time_ns()
        ts = np.array([now], dtype=np.int64)
        breath = np.sin(2 * np.pi * 0.25 * ts / 1e9)
        feeds = {"s2": np.array([0.5]), "s10": breath}
        if now - start < 1e9:
            feeds["s3"] = breath
        if "s5" in engine.sensors:
            feeds["s5"] = breath
        for sid, values in feeds.items():
            battery = 10.0 if sid == "s10" else 90.0
            try:
                await engine.ingest(Batch(sid, "respiration", ts, values))
                await engine.ingest(Batch(sid, "battery", ts, np.array([battery])))
            except Exception:  # s5 unregistered meanwhile: it is meant to stop
                continue
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    data: Path = tmp_path_factory.mktemp("control-room")
    engine = start_engine(data)
    attrs = {"respiration": AttributeInfo.of("respiration"), "battery": AttributeInfo.of("battery")}
    for sid in HAND:
        engine.call(engine.register_sensor, SensorInfo(sid, attrs, room="lab"))
    rooms = RoomStore(data)
    room = rooms.create_room("lab", "Breathing lab", owner="ana")

    async def start() -> tuple[DashboardServer, LiveSynchrony, asyncio.Event, asyncio.Task[None]]:
        group = await SimulatedGroup.start(engine, len(SIM), room="lab", coupling=2.0, seed=3)
        for sid in group.sensor_ids:
            rooms.assign_sensor("lab", sid, by="ana")
        await engine.assign_participant("sim-lab-1", "P-ana")
        sync = await LiveSynchrony.start(engine, "lab")
        stop = asyncio.Event()
        feeder = asyncio.get_running_loop().create_task(_feed_by_hand(engine, stop))
        server = await serve_dashboards(engine, rooms=rooms)
        server.context.synchrony["lab"] = sync  # type: ignore[attr-defined]
        return server, sync, stop, feeder

    server, sync, stop, feeder = engine.call(start)
    try:
        yield Lab(engine, server, rooms, room)
    finally:

        async def finish() -> None:
            stop.set()
            await feeder
            await server.stop()
            await sync.close()

        engine.call(finish)
        engine.close_sync()
        rooms.close()


def _card_state(page: Page, sensor: str) -> str:
    return str(page.locator(f"[data-sensor='{sensor}'] .card-state").get_attribute("data-state"))


def test_cards_show_participants_numbers_and_states_in_natural_order(lab: Lab, page: Page) -> None:
    page.set_viewport_size({"width": 1800, "height": 1400})
    page.goto(lab.url())
    page.get_by_text("P-ana", exact=True).wait_for(timeout=MS)  # the participant, not the sensor
    order = wait_until(
        "every card drawn",
        lambda: (
            (
                ids := page.locator("[data-sensor]").evaluate_all(
                    "els => els.map(e => e.dataset.sensor)"
                )
            )
            and len(ids) == len(SIM) + len(HAND)
            and ids
        ),
    )
    assert order == ["s2", "s3", "s4", "s5", "s10", *SIM]  # 2 before 10
    assert page.get_by_text("Participant 1").count() == 0  # the simulator's names are not shown
    states = {
        "s2": "flat",
        "s3": "stale",
        "s4": "connecting",
        "s10": "battery_low",
        "sim-lab-0": "live",
    }
    for sensor, state in states.items():
        expect(page.locator(f"[data-sensor='{sensor}'] .card-state")).to_have_attribute(
            "data-state", state, timeout=MS
        )
    # live numbers: heart rate and breathing rate of a simulated participant
    numbers = page.locator("[data-numbers='sim-lab-0']")
    expect(numbers).to_contain_text(r"bpm", timeout=MS)
    expect(numbers).to_have_text(re.compile(r"\d+ bpm · \d+\.\d br/min · battery \d+%"), timeout=MS)
    lab.engine.call(lab.engine.unregister_sensor, "s5")
    expect(page.locator("[data-sensor='s5'] .card-state")).to_have_attribute(
        "data-state", "disconnected", timeout=MS
    )
    # each state looks different: its own badge colour
    colours = page.locator(".card-state").evaluate_all(
        "els => Object.fromEntries(els.map(e =>"
        " [e.dataset.state, getComputedStyle(e).backgroundColor]))"
    )
    wanted = {"flat", "stale", "connecting", "battery_low", "live", "disconnected"}
    assert wanted <= set(colours) and len({colours[s] for s in wanted}) == len(wanted)


def test_waveform_per_card_and_for_all_cards(lab: Lab, page: Page) -> None:
    page.set_viewport_size({"width": 1800, "height": 1400})
    page.goto(lab.url())
    page.locator(".waveform-sim-lab-0 select").wait_for(timeout=MS)
    dash = lab.dashboard()
    page.locator(".waveform-sim-lab-0 select").select_option(label="ECG")
    wait_until("sim-lab-0 draws its ECG", lambda: dash.cards["sim-lab-0"].attribute == "ecg")
    # 130 Hz: more samples in the browser than 20 s of 20 Hz respiration ever holds
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('card:sim-lab-0').data.t.length > 400",
        timeout=MS,
    )
    assert dash.cards["sim-lab-1"].attribute == "respiration"
    page.locator(".waveform-all select").select_option(label="RR tachogram")
    wait_until(
        "every simulated card draws RR", lambda: all(dash.cards[s].attribute == "rr" for s in SIM)
    )
    assert dash.cards["s2"].attribute == "respiration"  # it has no RR: unchanged
    wait_until(
        "RR intervals (ms) on the page",
        lambda: (
            300
            < page.evaluate(
                "() => { const y = Bokeh.documents[0].get_model_by_name('card:sim-lab-2').data.y;"
                " return y.length ? y[y.length - 1] : 0 }"
            )
            < 2000
        ),
    )


def _n_events(lab: Lab, **match: Any) -> int:
    frame = lab.events()
    for key, value in match.items():
        frame = frame[frame[key] == value]
    return len(frame)


def test_markers_from_button_presets_and_shortcut_reach_every_viewer(
    lab: Lab, browser: Browser
) -> None:
    a, b = new_page(browser, 1600, 1000), new_page(browser, 1600, 1000)
    try:
        for pg in (a, b):
            pg.goto(lab.url())
            pg.get_by_role("button", name="Mark (m)").wait_for(timeout=MS)
        before = _n_events(lab, kind="marker", source="dashboard")
        label = "<img src=x onerror=alert(1)>"
        a.get_by_placeholder("marker label").fill(label)
        a.get_by_role("button", name="Mark (m)").click()
        wait_until(
            "the marker stored", lambda: _n_events(lab, label=label, source="dashboard") == 1
        )
        # the other viewer sees it, as text (escaped), in the list and on R(t)
        b.get_by_text(label).wait_for(timeout=MS)
        b.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('room-marks').data.x.length >= 1",
            timeout=MS,
        )
        a.get_by_role("button", name="bell", exact=True).click()
        wait_until(
            "the preset stored", lambda: _n_events(lab, label="bell", source="dashboard") == 1
        )
        a.get_by_placeholder("marker label").fill("")
        a.get_by_text("Breathing lab").click()  # out of the text field: keys are shortcuts
        a.keyboard.press("m")
        wait_until(
            "the shortcut's marker", lambda: _n_events(lab, label="marker", source="dashboard") == 1
        )
        b.get_by_text("bell").first.wait_for(timeout=MS)
        assert _n_events(lab, kind="marker", source="dashboard") == before + 3
        stored = lab.events()
        mine = stored[stored["source"] == "dashboard"]
        assert all(v == {"by": "guest"} for v in mine["value"])
    finally:
        for pg in (a, b):
            pg.close()
            check_page(pg)


def test_conditions_begin_and_end_on_every_viewer(lab: Lab, browser: Browser) -> None:
    a, b = new_page(browser, 1600, 1000), new_page(browser, 1600, 1000)
    try:
        for pg in (a, b):
            pg.goto(lab.url())
            pg.get_by_text("No condition running").wait_for(timeout=MS)
        a.locator(".condition-pick select").select_option("task")
        a.get_by_role("button", name="Begin condition").click()
        wait_until(
            "the condition running",
            lambda: lab.call(lambda: lab.engine.conditions("lab")) == ["task"],
        )
        b.locator(".room-condition", has_text="task").wait_for(timeout=MS)
        b.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('room-spans').data.left.length >= 1",
            timeout=MS,
        )
        a.get_by_role("button", name="End condition").click()
        wait_until("no condition", lambda: lab.call(lambda: lab.engine.conditions("lab")) == [])
        b.get_by_text("No condition running").wait_for(timeout=MS)
        task = lab.events()
        task = task[(task["label"] == "task") & (task["kind"] == "condition")]
        assert len(task) == 1 and task["source"].iloc[0] == "dashboard"
        assert task["duration"].iloc[0] > 0
        a.get_by_role("button", name="End condition").click()  # nothing running: said, not raised
        a.get_by_text("no condition is running").wait_for(timeout=MS)
        b.get_by_text("R per condition").wait_for(timeout=MS)
        b.locator("[data-condition='task']").wait_for(timeout=MS)
    finally:
        for pg in (a, b):
            pg.close()
            check_page(pg)


def test_a_thousand_clicks_a_second_record_a_handful(
    lab: Lab, page: Page, caplog: pytest.LogCaptureFixture
) -> None:
    page.goto(lab.url())
    button = page.get_by_role("button", name="Mark (m)")
    button.wait_for(timeout=MS)
    page.get_by_placeholder("marker label").fill("burst")
    dash = lab.dashboard()
    assert dash.controls is not None
    started = time.monotonic()
    button.evaluate("b => { for (let i = 0; i < 1000; i++) b.click() }")
    wait_until(
        "every click handled",
        lambda: (
            dash.controls is not None
            and dash.controls.limit.refused + _n_events(lab, label="burst") >= 1000
        ),
    )
    took = time.monotonic() - started
    recorded = _n_events(lab, label="burst")
    assert 1 <= recorded <= 5 + 5 * took + 1, (recorded, took)
    # the refusal is logged (the page's message may already show a later, admitted press)
    assert any("too many presses" in r.getMessage() for r in caplog.records)


def test_focus_view_shows_one_participant_and_raises_its_attention(lab: Lab, page: Page) -> None:
    page.goto(lab.url())
    page.get_by_text("P-ana", exact=True).click()
    page.locator("[data-focus='sim-lab-1']").wait_for(timeout=MS)
    wait_until(
        "the focused sensor high",
        lambda: lab.call(lambda: lab.engine.attention.level("sim-lab-1")) == AttentionLevel.HIGH,
    )
    for kind in ("respiration", "ecg", "hr", "rr", "accelerometer"):
        page.wait_for_function(
            "(name) => Bokeh.documents[0].get_model_by_name(name).data.t.length > 0",
            arg=f"focus:{kind}",
            timeout=MS,
        )
    # minutes of history: more than the card's 20 s of respiration
    page.mouse.move(2, 2)
    page.keyboard.press("Escape")
    page.locator("[data-focus='sim-lab-1']").wait_for(state="hidden", timeout=MS)
    wait_until(
        "back to what its card reports",
        lambda: lab.call(lambda: lab.engine.attention.level("sim-lab-1")) < AttentionLevel.HIGH,
    )


#: The R(t) plot's time tick labels as laid out on screen: ``[left, right, text]`` in px.
_TICK_LABELS = """() => {
  const plot = [...Bokeh.index.query((v) => Array.isArray(v.model.renderers)
    && v.model.renderers.some((r) => r.data_source && r.data_source.name === "room-sync"))][0];
  if (!plot) return [];  // not drawn yet: asked again
  const axis = [...plot.renderer_views.values()].find((v) => v.model.type === "DatetimeAxis");
  if (!axis) return [];
  const [sx] = axis.scoords(axis.tick_coords.major);
  const labels = axis.compute_labels(axis.tick_coords.major[0]);
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = axis.visuals.major_label_text.font_value();
  return labels.items.map((item, i) => {
    const w = ctx.measureText(item.text).width;
    return [sx[i] - w / 2, sx[i] + w / 2, item.text];
  });
}"""


def test_r_time_axis_labels_do_not_overlap(lab: Lab, page: Page) -> None:
    page.goto(lab.url())
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.some(d =>"
        " (d.get_model_by_name('room-sync')?.data.t.length ?? 0) > 4)",
        timeout=MS,
    )
    def laid_out() -> list[list[Any]] | None:  # ticks at their places, not all at 0 yet
        b = page.evaluate(_TICK_LABELS)
        return b if len(b) >= 2 and len({round(box[0]) for box in b}) == len(b) else None

    boxes = wait_until("two R(t) tick labels laid out", laid_out)
    boxes.sort()
    assert all(a[1] + 4 <= b[0] for a, b in itertools.pairwise(boxes)), boxes
    assert all(len(text) == 8 and text.count(":") == 2 for _l, _r, text in boxes)  # HH:MM:SS


def test_a_demoted_admin_is_refused_and_a_code_holder_is_a_viewer(
    lab: Lab, page: Page, caplog: pytest.LogCaptureFixture
) -> None:
    lab.rooms.set_role("lab", "bob", "admin", by="ana")

    async def start() -> DashboardServer:
        return await serve_dashboards(
            lab.engine, rooms=lab.rooms, basic_auth="pw", cookie_secret="a-test-cookie-secret"
        )

    server = lab.engine.call(start)
    try:
        page.goto(server.room_url("lab"))
        page.get_by_placeholder("username").fill("bob")
        page.get_by_placeholder("password").fill("pw")
        page.get_by_role("button", name="Login").click()
        page.get_by_role("button", name="Mark (m)").wait_for(timeout=MS)
        before = len(lab.events())
        lab.rooms.set_role("lab", "bob", "member", by="ana")
        with caplog.at_level(logging.WARNING, logger="sensocto_lab.ui.dashboard.controls"):
            page.get_by_role("button", name="Mark (m)").click()
            page.get_by_text("refused: only the room's owner or admins").wait_for(timeout=MS)
            page.get_by_role("button", name="Begin condition").click()
            wait_until(
                "two refusals logged",
                lambda: sum("refused" in r.message for r in caplog.records) >= 2,
            )
        assert len(lab.events()) == before  # nothing recorded
        # logged in but only holding the code: a plain viewer, no controls
        page.context.clear_cookies()
        page.goto(server.room_url("lab", lab.room.join_code))
        page.get_by_placeholder("username").fill("mallory")
        page.get_by_placeholder("password").fill("pw")
        page.get_by_role("button", name="Login").click()
        page.get_by_text("viewer", exact=False).first.wait_for(timeout=MS)
        page.get_by_text("P-ana", exact=True).wait_for(timeout=MS)
        assert page.get_by_role("button", name="Mark (m)").count() == 0
        page.keyboard.press("m")  # the shortcut does nothing for a viewer
        page.get_by_text("Watching now").wait_for(timeout=MS)
        assert len(lab.events()) == before
    finally:
        lab.engine.call(server.stop)


def test_the_lobby_lists_a_members_rooms_with_live_counts_at_lobby(lab: Lab, page: Page) -> None:
    async def start() -> DashboardServer:
        return await serve_dashboards(
            lab.engine, rooms=lab.rooms, basic_auth="pw", cookie_secret="a-test-cookie-secret"
        )

    server = lab.engine.call(start)
    try:
        page.goto(server.url + "lobby")
        page.get_by_placeholder("username").fill("ana")
        page.get_by_placeholder("password").fill("pw")
        page.get_by_role("button", name="Login").click()
        page.get_by_role("link", name="Breathing lab").wait_for(timeout=MS)
        shown = len(SIM) + len(HAND) - ("s5" not in lab.engine.sensors)
        page.get_by_text(f"{shown} sensors · 0 watching").wait_for(timeout=MS)
        viewer = new_page(page.context.browser)  # type: ignore[arg-type]
        try:
            viewer.goto(lab.url())
            viewer.get_by_text("P-ana", exact=True).wait_for(timeout=MS)
            page.get_by_text(f"{shown} sensors · 1 watching").wait_for(timeout=MS)  # live
        finally:
            viewer.close()
            check_page(viewer)
        page.get_by_placeholder("ABCDE-12345").wait_for(timeout=MS)  # and the code box
    finally:
        lab.engine.call(server.stop)
