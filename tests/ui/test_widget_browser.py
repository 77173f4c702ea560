"""The synchrony widget rendered by a real Panel server in Debian's chromium.

The page shows ``pn.panel(SyncWidget)``: the same ESM that runs in JupyterLab, here under
Panel's AnyWidget shim. We check that the phase circle has one dot per participant, that
the gauge shows R, and that a later ``widget.update`` reaches the open page.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("panel")
playwright_sync = pytest.importorskip("playwright.sync_api")

import panel as pn  # noqa: E402

from sensocto_lab.ui.notebook.sync_widget import SyncWidget, order_parameter  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class PanelServer:
    """``pn.serve`` on port 0, run on a thread of its own, stopped and joined on close."""

    def __init__(self, app: Any) -> None:
        self._ready: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._main, args=(app,), daemon=True)
        self._thread.start()
        got = self._ready.get(timeout=60)
        if isinstance(got, BaseException):
            raise got
        self.server = got
        self.port: int = got.port

    def _main(self, app: Any) -> None:
        from tornado.ioloop import IOLoop

        asyncio.set_event_loop(asyncio.new_event_loop())
        loop = IOLoop.current()
        try:
            server = pn.serve(
                {"sync": app},
                port=0,
                address="127.0.0.1",
                start=False,
                show=False,
                loop=loop,
            )
            server.start()
        except BaseException as exc:  # report to the test instead of dying silently
            self._ready.put(exc)
            return
        self._ready.put(server)
        loop.start()
        loop.close(all_fds=True)

    def close(self) -> None:
        loop = self.server.io_loop
        loop.add_callback(self.server.stop)
        loop.add_callback(loop.stop)
        self._thread.join(30)
        assert not self._thread.is_alive()


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        yield page
        browser.close()


def test_sync_widget_renders_dots_and_gauge_in_a_panel_page(browser_page: Any) -> None:
    widget = SyncWidget(title="simulated room")
    phases = np.linspace(0.0, 1.2, 8)
    widget.update(phases=phases, labels=[f"p{i}" for i in range(8)])
    widget.flush()
    twin = pn.panel(widget)
    server = PanelServer(twin)
    try:
        page = browser_page
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{server.port}/sync")
        dots = page.locator("svg[data-role=phase-circle] circle.sl-dot")
        dots.first.wait_for(timeout=30_000)
        assert dots.count() == 8
        gauge = page.locator("svg[data-role=gauge]")
        assert gauge.get_attribute("data-r") == f"{order_parameter(phases):.3f}"
        assert page.get_by_text(f"R = {order_parameter(phases):.2f}").count() == 1
        assert page.locator("canvas[data-role=r-strip]").count() == 1

        # A live update reaches the open page (through the twin, on Panel's thread).
        widget.update(phases=np.zeros(5))
        widget.flush()
        page.wait_for_function(
            "() => { const q = (root) => root.querySelector('svg[data-role=gauge]') ||"
            " [...root.querySelectorAll('*')].map(e => e.shadowRoot && q(e.shadowRoot))"
            ".find(Boolean); const g = q(document); return g && g.dataset.r === '1.000'; }",
            timeout=30_000,
        )
        assert dots.count() == 5
        assert errors == []
    finally:
        server.close()


class _RecordingEngine:
    """What MarkerPad uses of an engine (``loop``, ``mark``), recording on a loop thread."""

    def __init__(self) -> None:
        from sensocto_lab.engine.host import EngineHost

        self.host = EngineHost().start()
        self.loop = self.host.loop
        self.labels: queue.Queue[str] = queue.Queue()

    async def mark(self, label: str, **kwargs: Any) -> Any:
        from sensocto_lab.events import Event

        self.labels.put(label)
        return Event(1_767_225_600 * 10**9, label, "marker", room=kwargs.get("room"))


def test_marker_pad_presses_and_keys_reach_python_and_markers_are_drawn(
    browser_page: Any,
) -> None:
    import pandas as pd

    from sensocto_lab.ui.notebook.history import HistoryWidget
    from sensocto_lab.ui.notebook.marker_pad import MarkerPad

    engine = _RecordingEngine()
    pad = MarkerPad(engine, room="lab", presets=["bell", "talk"])
    t0 = 1_767_225_600 * 10**9
    history = HistoryWidget(t0 + np.arange(60) * 10**9, np.linspace(0, 1, 60))
    history.show_events(
        pd.DataFrame(
            {
                "onset": pd.to_datetime([t0, t0 + 10 * 10**9, t0 + 30 * 10**9], utc=True),
                "duration": [20.0, 0.0, float("nan")],
                "label": ["baseline", "bell", "task"],
                "kind": ["condition", "marker", "condition"],
            }
        )
    )
    server = PanelServer(pn.Column(pad, history))
    try:
        page = browser_page
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{server.port}/sync")
        buttons = page.locator("button[data-role=preset]")
        buttons.first.wait_for(timeout=30_000)
        assert buttons.count() == 2
        buttons.nth(1).click()
        assert engine.labels.get(timeout=30) == "talk"
        field = page.locator("input[data-role=free-text]")
        field.fill("door opens")
        field.press("Enter")
        assert engine.labels.get(timeout=30) == "door opens"
        page.locator(".sl-marker-pad").press("1")
        assert engine.labels.get(timeout=30) == "bell"
        assert page.locator("canvas[data-role=history]").get_attribute("data-events") == "3"
        assert errors == []
    finally:
        server.close()
        engine.host.close()
        pad.close()
        history.close()
