"""The demo tells a story: ``LabApp`` with the scripted protocol, in real Chromium.

Baseline (uncoupled) → task (coupled) → recovery, with the simulated group's
coupling following the condition, so the room's R is low in the baseline and high
in the task; the page shows the condition and R and reports no error meanwhile
(the demo's room page once threw a Bokeh "reference isn't known" within seconds).
The phases here are shorter than the demo's 45 s; waits are on the page and the lab.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page
from support.browser import TIMEOUT_S, browser, page, wait_until

from sensocto_lab.app import DEMO_COUPLING, LabApp, LabOptions

__all__ = ["browser", "page"]  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROTOCOL = (("baseline", 20.0), ("task", 30.0), ("recovery", 20.0))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[LabApp, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="demo", daemon=True)
    thread.start()
    options = LabOptions(
        data_dir=tmp_path, port=0, dashboard_port=0, simulate=8, room="demo", protocol=PROTOCOL
    )
    lab = asyncio.run_coroutine_threadsafe(LabApp.start(options), loop).result(TIMEOUT_S)
    try:
        yield lab, loop
    finally:
        asyncio.run_coroutine_threadsafe(lab.close(), loop).result(TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _banner(page: Page, label: str) -> None:
    page.locator(".room-condition", has_text=f"Condition: {label}").wait_for(
        timeout=(PROTOCOL[0][1] + PROTOCOL[1][1] + TIMEOUT_S) * 1000
    )


def test_r_falls_and_rises_with_the_protocol(
    demo: tuple[LabApp, asyncio.AbstractEventLoop], page: Page
) -> None:
    lab, loop = demo
    assert lab.group is not None and lab.dashboards is not None
    room = lab.rooms.room("demo")
    page.goto(lab.dashboards.room_url("demo", room.join_code))
    _banner(page, "baseline")

    async def coupling_now() -> tuple[list[str], float]:
        assert lab.group is not None
        return lab.engine.conditions("demo"), lab.group.coupling

    def follows() -> bool:
        """The group's coupling is the one of the condition running now."""
        running, k = asyncio.run_coroutine_threadsafe(coupling_now(), loop).result(TIMEOUT_S)
        return bool(running) and k == DEMO_COUPLING[running[-1]]

    wait_until("coupling follows the baseline", follows)

    def shown_r() -> float:
        return float(
            page.evaluate(
                "() => { const y = Bokeh.documents[0].get_model_by_name('room-sync').data.y;"
                " return y.length ? y[y.length - 1] : -1 }"
            )
        )

    low = wait_until("R low in the baseline", lambda: 0 <= (r := shown_r()) < 0.7 and r)
    _banner(page, "task")
    wait_until("coupling follows the task", follows)
    high = wait_until("R high in the task", lambda: (r := shown_r()) > 0.85 and r, timeout=60)
    assert high > low
    page.get_by_text("bell").first.wait_for(timeout=TIMEOUT_S * 1000)  # the protocol's marker
    _banner(page, "recovery")
    wait_until("coupling follows the recovery", follows)
    page.locator("[data-condition='baseline']").wait_for(timeout=TIMEOUT_S * 1000)
    page.locator("[data-condition='task']").wait_for(timeout=TIMEOUT_S * 1000)

    async def read() -> object:
        return lab.engine.store.events(room="demo")

    events = asyncio.run_coroutine_threadsafe(read(), loop).result(TIMEOUT_S)
    conditions = events[events["kind"] == "condition"]
    assert list(conditions["label"][:3]) == ["baseline", "task", "recovery"]
    assert set(conditions["source"]) == {"protocol"}
