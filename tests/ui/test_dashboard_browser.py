"""Room dashboards in a real browser: access, attention following the page, live data.

One engine (on its own loop thread; docs/architecture.md#dashboards) with 30 sensors fed at
10 Hz, one
dashboard server on that loop, one headless Chromium for the module. Waits are on
conditions (engine state, page state) with generous timeouts, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page
from support.browser import (
    TIMEOUT_S,
    browser,
    card_newest,
    card_points,
    card_sources,
    check_page,
    listening,
    new_page,
    page,
    start_engine,
    wait_until,
)

from sensocto_lab.engine.engine import Engine
from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo
from sensocto_lab.rooms import Room, RoomStore
from sensocto_lab.ui.dashboard.server import DashboardServer, serve_dashboards

__all__ = ["browser", "page"]  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SENSORS = [f"p{i:02d}" for i in range(30)]
H, M, L, N = (
    AttentionLevel.HIGH,
    AttentionLevel.MEDIUM,
    AttentionLevel.LOW,
    AttentionLevel.NONE,
)


@dataclass
class Lab:
    engine: Engine
    server: DashboardServer
    room: Room

    def levels(self) -> dict[str, AttentionLevel]:
        """The engine's level per sensor, read on the engine's loop."""

        async def read() -> dict[str, AttentionLevel]:
            return {s: self.engine.attention.level(s) for s in SENSORS}

        return self.engine.call(read)

    def viewers(self) -> frozenset[str]:
        async def read() -> frozenset[str]:
            return frozenset(self.engine.attention.viewer_ids)

        return self.engine.call(read)


async def _feed(engine: Engine, stop: asyncio.Event) -> None:
    """Breathing-like samples for every sensor, 2 samples per sensor every 100 ms."""
    k = 0
    while not stop.is_set():
        now = time.time_ns()
        ts = np.array([now - 50_000_000, now], dtype=np.int64)
        for i, sid in enumerate(SENSORS):
            values = np.sin(2 * np.pi * 0.25 * (ts / 1e9) + i)
            await engine.ingest(Batch(sid, "respiration", ts, values))
            if k % 50 == 0:
                await engine.ingest(Batch(sid, "battery", ts[-1:], np.array([90.0 - i])))
        k += 1
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    data: Path = tmp_path_factory.mktemp("dashboard")
    engine = start_engine(data)
    attrs = {"respiration": AttributeInfo.of("respiration"), "battery": AttributeInfo.of("battery")}
    for sid in SENSORS:
        engine.call(engine.register_sensor, SensorInfo(sid, attrs, room="lab"))
    rooms = RoomStore(data)
    room = rooms.create_room("lab", "Breathing lab", owner="ana")

    async def start() -> tuple[DashboardServer, asyncio.Event, asyncio.Task[None]]:
        stop = asyncio.Event()
        feeder = asyncio.get_running_loop().create_task(_feed(engine, stop))
        return await serve_dashboards(engine, rooms=rooms), stop, feeder

    server, stop, feeder = engine.call(start)
    try:
        yield Lab(engine, server, room)
    finally:

        async def finish() -> None:
            stop.set()
            await feeder
            await server.stop()

        engine.call(finish)
        engine.close_sync()
        rooms.close()


def test_a_session_without_the_join_code_sees_no_data(lab: Lab, page: Page) -> None:
    page.goto(lab.server.room_url("lab"))
    page.get_by_text("Join a room").wait_for(timeout=TIMEOUT_S * 1000)
    page.get_by_placeholder("ABCDE-12345").fill("AAAAA-AAAAA")
    page.get_by_role("button", name="Join").click()
    page.get_by_text("that join code does not open this room").wait_for(timeout=TIMEOUT_S * 1000)
    page.goto(lab.server.room_url("lab", "ZZZZZ-ZZZZZ"))
    page.get_by_text("that join code does not open this room").wait_for(timeout=TIMEOUT_S * 1000)
    assert page.get_by_text(SENSORS[0], exact=True).count() == 0
    assert card_sources(page) == 0
    assert lab.server.context.dashboards == {}
    assert all(level == N for level in lab.levels().values())


def test_attention_follows_what_the_page_shows(lab: Lab, page: Page) -> None:
    page.goto(lab.server.room_url("lab", lab.room.join_code))
    page.get_by_text(SENSORS[0], exact=True).wait_for(timeout=TIMEOUT_S * 1000)
    assert len(lab.server.context.dashboards) == 1

    # visible → medium, scrolled out → low
    levels = wait_until(
        "every card reported: visible ones medium, the rest low",
        lambda: (lv := lab.levels())[SENSORS[0]] == M and N not in lv.values() and lv,
    )
    assert levels[SENSORS[-1]] == L and set(levels.values()) == {M, L}

    # data keeps arriving on a visible card
    first = wait_until("data on the first card", lambda: card_points(page, SENSORS[0]) > 0)
    page.wait_for_function(
        "([name, n]) => Bokeh.documents[0].get_model_by_name(name).data.t.length > n",
        arg=[f"card:{SENSORS[0]}", first],
        timeout=TIMEOUT_S * 1000,
    )

    # focused (pointer) → high
    page.get_by_text(SENSORS[1], exact=True).hover()
    wait_until("focused card high", lambda: lab.levels()[SENSORS[1]] == H)

    # scroll to the end: the last card becomes visible, the first scrolled out
    page.mouse.move(2, 2)
    page.get_by_text(SENSORS[-1], exact=True).scroll_into_view_if_needed()
    wait_until(
        "last card shown, first scrolled out",
        lambda: (lv := lab.levels())[SENSORS[-1]] >= M and lv[SENSORS[0]] == L,
    )
    # the newest sample, not the count: a card that caught up holds a full window
    last = wait_until("data on the last card", lambda: card_newest(page, SENSORS[-1]) > 0)
    wait_until("new data on the last card", lambda: card_newest(page, SENSORS[-1]) > last)

    # page hidden → none
    page.evaluate(
        "() => { Object.defineProperty(document, 'visibilityState',"
        " {value: 'hidden', configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')) }"
    )
    wait_until("every sensor none", lambda: set(lab.levels().values()) == {N})
    assert len(lab.viewers()) == 1  # hidden is still a viewer

    # closed → viewer removed
    page.close()
    wait_until("viewer removed", lambda: not lab.viewers())
    wait_until("dashboard closed", lambda: not lab.server.context.dashboards)


def test_a_browser_that_falls_behind_is_sent_less_until_it_keeps_up(lab: Lab, page: Page) -> None:
    page.goto(lab.server.room_url("lab", lab.room.join_code))
    page.get_by_text(SENSORS[0], exact=True).wait_for(timeout=TIMEOUT_S * 1000)
    (dashboard,) = wait_until("the session's dashboard", lambda: lab.server.context.dashboards)
    lens = lab.server.context.dashboards[dashboard].lens
    wait_until("data on the first card", lambda: card_points(page, SENSORS[0]) > 0)
    assert lens.statistics().slowdown == 1.0

    # a page whose main thread is busy 400 ms of every 450 paints late: its lens slows down
    page.evaluate(
        "() => { window.__busy = setInterval(() => {"
        " const end = Date.now() + 400; while (Date.now() < end) {} }, 450) }"
    )
    wait_until("the lens slowed down", lambda: lens.statistics().slowdown >= 2.0)
    # once it keeps up again, the lens relaxes back to the tiers' own intervals
    page.evaluate("() => clearInterval(window.__busy)")
    wait_until("back to full rate", lambda: lens.statistics().slowdown == 1.0)
    newest = card_newest(page, SENSORS[0])
    wait_until("data still arriving", lambda: card_newest(page, SENSORS[0]) > newest)


def test_panel_serve_entry_points_lobby_to_room(
    browser: Browser, tmp_path: Path, unused_tcp_port: int
) -> None:
    """``panel serve panel_apps/room.py panel_apps/lobby.py``: code in the lobby, room opens."""
    port = unused_tcp_port
    env = dict(
        os.environ,
        SENSOCTO_LAB_DATA=str(tmp_path),
        SENSOCTO_LAB_SIMULATE="3",
        SENSOCTO_LAB_ROOM="demo",
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", "panel_apps/room.py", "panel_apps/lobby.py",
         "--port", str(port), "--address", "127.0.0.1",
         "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    page = new_page(browser)
    try:
        wait_until("the panel server", lambda: listening(port))
        page.goto(f"http://127.0.0.1:{port}/lobby")
        page.get_by_text("Enter the join code").wait_for(timeout=TIMEOUT_S * 1000)
        with RoomStore(tmp_path) as rooms:  # the first session created the room
            code = rooms.room("demo").join_code
        page.get_by_placeholder("ABCDE-12345").fill("wrong")
        page.get_by_role("button", name="Open room").click()
        page.get_by_text("no room has that join code").wait_for(timeout=TIMEOUT_S * 1000)
        page.get_by_placeholder("ABCDE-12345").fill(code.lower())
        page.get_by_role("button", name="Open room").click()
        page.get_by_text("Open demo").click()
        page.get_by_text("sim-demo-0", exact=True).wait_for(timeout=TIMEOUT_S * 1000)
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('card:sim-demo-0').data.t.length > 0",
            timeout=TIMEOUT_S * 1000,
        )
    finally:
        page.close()
        proc.terminate()
        proc.wait(timeout=30)
    check_page(page)


def test_a_member_logged_in_by_panel_auth_needs_no_code(lab: Lab, page: Page) -> None:
    """Also: the login page, like every page, fetches nothing from outside (``page``)."""

    async def start() -> DashboardServer:
        return await serve_dashboards(
            lab.engine,
            rooms=lab.server.context.rooms,
            basic_auth="lab-password",
            cookie_secret="a-test-cookie-secret",
        )

    server = lab.engine.call(start)
    try:
        for user, sees_room in (("ana", True), ("mallory", False)):
            page.context.clear_cookies()
            page.goto(server.room_url("lab"))
            page.get_by_placeholder("username").fill(user)
            page.get_by_placeholder("password").fill("lab-password")
            page.get_by_role("button", name="Login").click()
            if sees_room:  # the room's owner: straight to the dashboard
                page.get_by_text(SENSORS[0], exact=True).wait_for(timeout=TIMEOUT_S * 1000)
            else:  # logged in, but not a member: the code is still needed
                page.get_by_text("Join a room").wait_for(timeout=TIMEOUT_S * 1000)
                assert page.get_by_text(SENSORS[0], exact=True).count() == 0
            page.goto(server.url)  # the lobby lists the user's rooms
            listed = page.get_by_role("link", name=lab.room.name)
            if sees_room:
                listed.wait_for(timeout=TIMEOUT_S * 1000)
            else:
                page.get_by_text("none", exact=True).wait_for(timeout=TIMEOUT_S * 1000)
                assert listed.count() == 0
    finally:
        lab.engine.call(server.stop)
