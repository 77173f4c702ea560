"""Room dashboards of an engine in another process, in a real browser.

The engine is ``sensocto-lab serve --simulate 6`` in a subprocess (its endpoint on a
free port, devices need a token); the dashboard server runs in this process on its
own loop thread, connected over the endpoint; Chromium opens its pages. What the
page shows must drive the *engine process's* attention levels (read from its
``/health``), and a session without the room's code must get nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page
from support.browser import (
    TIMEOUT_S,
    browser,
    card_points,
    card_sources,
    check_page,
    listening,
    new_page,
    page,
    wait_for_card_data,
    wait_until,
)

from sensocto_lab.rooms import LAB_USER
from sensocto_lab.ui.dashboard.server import DashboardServer, serve_remote_dashboards

__all__ = ["browser", "page"]  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SENSORS = [f"sim-lab-{i}" for i in range(6)]
T = TypeVar("T")


@dataclass
class Remote:
    """The engine process, and the dashboard server of this process connected to it."""

    engine: subprocess.Popen[str]
    endpoint: str
    health_url: str
    code: str
    server: DashboardServer
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT_S)

    def levels(self) -> dict[str, str]:
        """The engine process's attention level per simulated sensor."""
        with urllib.request.urlopen(self.health_url, timeout=10) as resp:
            health = json.loads(resp.read())
        return {s["id"]: s["attention"] for s in health["sensors"] if s["id"] in SENSORS}


def start_engine_process(data: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``sensocto-lab serve`` with a simulated room; returns it and what it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensocto_lab.cli", "serve", "--simulate", str(len(SENSORS)),
         "--room", "lab", "--token", "device-token", "--no-dashboard", "--port", "0",
         "--data", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    said: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        key, _, value = line.partition("  ")
        said[key.strip()] = value.strip()
        if line.startswith("ready"):
            return proc, said
    raise AssertionError(f"the engine exited with {proc.wait()}: {said}")


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    engine, said = start_engine_process(tmp_path_factory.mktemp("engine"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dashboard-loop", daemon=True)
    thread.start()
    try:
        endpoint = said["ingest endpoint"].split()[0]
        code = re.search(r"join code (\S+)", said["room"])
        assert code is not None, said
        server = asyncio.run_coroutine_threadsafe(serve_remote_dashboards(endpoint), loop).result(
            TIMEOUT_S
        )
        lab = Remote(engine, endpoint, said["health"], code.group(1), server, loop)
        yield lab
        lab.run(server.stop())
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT_S)
        loop.close()
        engine.send_signal(signal.SIGINT)
        out = engine.communicate(timeout=TIMEOUT_S)[0]
        assert engine.returncode == 0, out


def test_wrong_or_no_code_gets_no_data(remote: Remote, page: Page) -> None:
    page.goto(remote.server.room_url("lab"))
    page.get_by_text("Join a room").wait_for(timeout=TIMEOUT_S * 1000)
    page.get_by_role("button", name="Join").click()  # no code at all
    page.get_by_text("that join code does not open this room").wait_for(timeout=TIMEOUT_S * 1000)
    page.goto(remote.server.room_url("lab", "ZZZZZ-ZZZZZ"))
    page.get_by_text("that join code does not open this room").wait_for(timeout=TIMEOUT_S * 1000)
    assert page.get_by_text(SENSORS[0], exact=True).count() == 0
    assert card_sources(page) == 0
    assert remote.server.context.dashboards == {}
    assert set(remote.levels().values()) == {"none"}


def test_cards_get_data_and_attention_follows_in_the_engine_process(
    remote: Remote, browser: Browser
) -> None:
    # small enough that some cards are scrolled out
    page = new_page(browser, 900, 420)
    try:
        page.goto(remote.server.room_url("lab", remote.code))
        page.get_by_text(SENSORS[0], exact=True).wait_for(timeout=TIMEOUT_S * 1000)
        page.get_by_text("Room synchrony R").wait_for(timeout=TIMEOUT_S * 1000)
        page.get_by_text("Watching now (1)").wait_for(timeout=TIMEOUT_S * 1000)

        # the first card is visible (medium), some card is scrolled out (low)
        wait_until(
            "visible cards medium, scrolled-out ones low",
            lambda: (lv := remote.levels())[SENSORS[0]] == "medium" and "low" in lv.values(),
        )
        first = wait_until("data on the first card", lambda: card_points(page, SENSORS[0]) > 0)
        wait_for_card_data(page, SENSORS[0], first)

        # focused (pointer) → high
        page.get_by_text(SENSORS[1], exact=True).hover()
        wait_until("focused card high", lambda: remote.levels()[SENSORS[1]] == "high")

        # scroll to the last card: it is shown and gets data, the first scrolls out
        page.mouse.move(2, 2)
        page.get_by_text(SENSORS[-1], exact=True).scroll_into_view_if_needed()
        wait_until(
            "last card shown, first scrolled out",
            lambda: (
                (lv := remote.levels())[SENSORS[-1]] in ("medium", "high")
                and lv[SENSORS[0]] == "low"
            ),
        )
        wait_for_card_data(page, SENSORS[-1])

        # page hidden → none
        page.evaluate(
            "() => { Object.defineProperty(document, 'visibilityState',"
            " {value: 'hidden', configurable: true});"
            " document.dispatchEvent(new Event('visibilitychange')) }"
        )
        wait_until("every sensor none", lambda: set(remote.levels().values()) == {"none"})
        assert len(remote.server.context.dashboards) == 1
    finally:
        page.close()
    check_page(page)
    wait_until("dashboard closed", lambda: not remote.server.context.dashboards)


def test_the_lobby_finds_the_room_by_its_code(remote: Remote, page: Page) -> None:
    page.goto(remote.server.url)
    page.get_by_text("Enter the join code").wait_for(timeout=TIMEOUT_S * 1000)
    page.get_by_placeholder("ABCDE-12345").fill("wrong")
    page.get_by_role("button", name="Open room").click()
    page.get_by_text("no room has that join code").wait_for(timeout=TIMEOUT_S * 1000)
    open_from_the_lobby(page, remote.code.lower())


def test_with_a_token_members_logged_in_by_panel_auth_need_no_code(
    remote: Remote, page: Page
) -> None:
    """The engine's room store says who is a member; the trusted dashboard vouches for logins."""
    server = remote.run(
        serve_remote_dashboards(
            remote.endpoint,
            token="device-token",
            basic_auth="lab-password",
            cookie_secret="a-test-cookie-secret",
        )
    )
    try:
        for user, member in ((LAB_USER, True), ("mallory", False)):
            page.context.clear_cookies()
            page.goto(server.url)
            page.get_by_placeholder("username").fill(user)
            page.get_by_placeholder("password").fill("lab-password")
            page.get_by_role("button", name="Login").click()
            page.get_by_text("Your rooms").wait_for(timeout=TIMEOUT_S * 1000)
            if member:  # the lobby lists the room; its link opens it without the code
                page.get_by_role("link", name="lab").click()
                page.get_by_text(SENSORS[0], exact=True).wait_for(timeout=TIMEOUT_S * 1000)
                wait_for_card_data(page, SENSORS[0])
            else:  # no rooms listed, and the room's page asks for the code
                page.get_by_text("none", exact=True).wait_for(timeout=TIMEOUT_S * 1000)
                page.goto(server.room_url("lab"))
                page.get_by_text("Join a room").wait_for(timeout=TIMEOUT_S * 1000)
                assert page.get_by_text(SENSORS[0], exact=True).count() == 0
                assert card_sources(page) == 0
    finally:
        remote.run(server.stop())


def test_panel_serve_entry_points_reach_the_engine_by_env(
    remote: Remote, page: Page, unused_tcp_port: int
) -> None:
    """``SENSOCTO_LAB_CONNECT=ws://... panel serve panel_apps/room.py panel_apps/lobby.py``."""
    port = unused_tcp_port
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", "panel_apps/room.py", "panel_apps/lobby.py",
         "--port", str(port), "--address", "127.0.0.1",
         "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=root, env={**os.environ, "SENSOCTO_LAB_CONNECT": remote.endpoint},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until("the panel server", lambda: listening(port))
        page.goto(f"http://127.0.0.1:{port}/lobby")
        open_from_the_lobby(page, remote.code)
    finally:
        page.close()  # before its server goes: a page left talking to none logs an error
        proc.terminate()
        proc.wait(timeout=30)


def open_from_the_lobby(page: Page, code: str) -> None:
    """On the lobby page: the code gives the room's link, which opens it with live cards."""
    page.get_by_placeholder("ABCDE-12345").fill(code)
    page.get_by_role("button", name="Open room").click()
    page.get_by_text("Open lab").click()
    page.get_by_text(SENSORS[0], exact=True).wait_for(timeout=TIMEOUT_S * 1000)
    wait_for_card_data(page, SENSORS[0])
