"""Helpers of the browser tests (no tests here): Debian's Chromium, waits, page probes.

Waits are on conditions with generous timeouts, never fixed sleeps. Every page made by
the ``page`` fixture or :func:`new_page` fails its test on an uncaught page error or a
console error (a Bokeh "reference ... isn't known" is one): :func:`check_page`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from sensocto_lab.engine.engine import Engine

TIMEOUT_S = 60.0


def start_engine(data: str | Path) -> Engine:
    """An engine on its own loop thread, started from a helper thread.

    Sync Playwright keeps an event loop running in the main thread once started, so
    ``asyncio.run`` cannot be used there.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, Engine.start(data, thread=True)).result()


def wait_until(what: str, condition: Callable[[], Any], timeout: float = TIMEOUT_S) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def new_page(browser: Browser, width: int = 1280, height: int = 800) -> Page:
    """A page that records requests leaving 127.0.0.1, page errors and console errors.

    What it recorded is checked by :func:`check_page` (the ``page`` fixture does).
    """
    pg = browser.new_page(viewport={"width": width, "height": height})
    outside: list[str] = []
    errors: list[str] = []
    pg.on("request", lambda r: outside.append(r.url) if "127.0.0.1" not in r.url else None)
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.on(
        "console",
        lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    pg.__dict__["_lab_outside"] = outside
    pg.__dict__["_lab_errors"] = errors
    return pg


def check_page(pg: Page) -> None:
    """Fail if ``pg`` fetched from outside this machine, threw, or logged an error."""
    outside: list[str] = pg.__dict__.get("_lab_outside", [])
    errors: list[str] = pg.__dict__.get("_lab_errors", [])
    assert outside == [], f"the dashboard fetched from outside this server: {outside[:3]}"
    assert errors == [], f"the page reported errors: {errors[:5]}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    pg = new_page(browser)
    yield pg
    if not pg.is_closed():
        pg.close()
    check_page(pg)


def card_points(page: Page, sensor: str) -> int:
    """Samples the page's Bokeh data source of ``sensor``'s card holds."""
    return int(
        page.evaluate(
            "(name) => { const m = Bokeh.documents[0].get_model_by_name(name);"
            " return m ? m.data.t.length : -1 }",
            f"card:{sensor}",
        )
    )


def card_newest(page: Page, sensor: str) -> float:
    """The newest sample time (ms) on ``sensor``'s card; -1 if it has none.

    Unlike the count of samples, it grows once the card holds a full window.
    """
    return float(
        page.evaluate(
            "(name) => { const t = Bokeh.documents[0].get_model_by_name(name).data.t;"
            " return t.length ? t[t.length - 1] : -1 }",
            f"card:{sensor}",
        )
    )


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def card_sources(page: Page) -> int:
    """How many cards' data sources the page's documents hold (0: no room was shown)."""
    return int(
        page.evaluate(
            "() => Bokeh.documents.flatMap(d => [...d.all_models])"
            ".filter(m => (m.name || '').startsWith('card:')).length"
        )
    )


def wait_for_card_data(page: Page, sensor: str, more_than: int = 0) -> None:
    """Wait until ``sensor``'s card holds more than ``more_than`` samples."""
    page.wait_for_function(
        "([name, n]) => Bokeh.documents[0].get_model_by_name(name).data.t.length > n",
        arg=[f"card:{sensor}", more_than],
        timeout=TIMEOUT_S * 1000,
    )
