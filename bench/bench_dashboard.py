"""Room dashboards: sample→screen latency in a real browser, and server CPU by visibility.

Two measures, each in one headless Chromium session against one engine + dashboard
server sharing the engine's loop thread (docs/architecture.md#dashboards):

- **latency**: 10 sensors at 20 Hz, out of step with each other as independent
  devices are, all 10 cards visible. Samples carry the server's wall clock as
  their timestamp; the page hooks every card's data source and plot and, when the
  plot next paints after new samples arrived, records ``Date.now() - ts`` per
  sample. Median and p95 over the run (target: median ≤ 50 ms).
- **CPU**: 100 cards (30 with ``quick``) of which about 10 fit the viewport; the
  process's CPU% (psutil) while the dashboard follows visibility (ours: scrolled-out
  cards buffered, not drawn), with scrolled-out cards drawn at the low tier's 100 ms,
  and with every card flushed at the medium rate whatever is seen (baseline: no
  attention); and the engine alone with no dashboard open (reference).

The engine's load level follows its own loop lag and queues only (not the shared
machine's CPU, see :func:`_own_load`). Also writes ``docs/dashboard.png`` (a
simulated, coupled room with its synchrony).
Run: ``python -m bench.bench_dashboard``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from playwright.sync_api import Browser, Page, sync_playwright

from bench._table import Row, format_table
from sensocto_lab.engine.engine import Engine, EngineConfig
from sensocto_lab.engine.load import LoadSample
from sensocto_lab.engine.synchrony import LiveSynchrony
from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo
from sensocto_lab.rooms import RoomStore
from sensocto_lab.sources.simulated import SimulatedGroup
from sensocto_lab.ui.dashboard.server import DashboardServer, serve_dashboards

AREA = "dashboard"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOAD_TIMEOUT_MS = 180_000

#: Records, each time a card's plot is painted, the latency of every sample streamed
#: into it since its last paint (the paint that draws a sample is when it is on screen).
_LATENCY_PROBE = """
() => {
  window.__lat = [];
  const cards = new Map();
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if ((m.name || '').startsWith('card:')) cards.set(m, []);
    }
  }
  for (const [m, fresh] of cards) {
    let seen = m.data.t.length ? m.data.t[m.data.t.length - 1] : 0;
    m.streaming.connect(() => {
      const t = m.data.t;
      for (let i = t.length - 1; i >= 0 && t[i] > seen; i--) fresh.push(t[i]);
      if (t.length) seen = Math.max(seen, t[t.length - 1]);
    });
  }
  let hooked = 0;
  const plots = Bokeh.index.query((v) => Array.isArray(v.model.renderers));
  for (const view of plots) {
    const fresh = view.model.renderers.map((r) => cards.get(r.data_source)).find((f) => f);
    if (!fresh) continue;
    const paint = view._actual_paint;
    view._actual_paint = function (...args) {
      const out = paint.apply(this, args);
      const now = Date.now();
      for (const t of fresh) window.__lat.push(now - t);
      fresh.length = 0;
      return out;
    };
    hooked += 1;
  }
  return hooked;
}
"""


async def _feed(engine: Engine, sensors: list[str], period_s: float, stop: asyncio.Event) -> None:
    """One sample per sensor every ``period_s``, stamped with the server's wall clock.

    Each sensor is an independent device on its own clock: sensor ``i`` of ``n``
    samples at ``start + (k + i/n) * period_s``, so the devices' samples are spread
    evenly over the period (the harder case for a dashboard: sampled all at once,
    they would share every flush). A device that falls behind (the loop was busy)
    sends at once and keeps its schedule, so a stall does not bring devices into step.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def device(i: int, sid: str) -> None:
        k = 0
        while not stop.is_set():
            await asyncio.sleep(max(0.0, start + (k + i / len(sensors)) * period_s - loop.time()))
            now = time.time_ns()
            value = np.array([np.sin(0.5 * np.pi * now / 1e9 + i)])
            await engine.ingest(Batch(sid, "respiration", np.array([now], dtype=np.int64), value))
            k = max(k + 1, int((loop.time() - start) / period_s))

    await asyncio.gather(*(device(i, sid) for i, sid in enumerate(sensors)))


def start_engine(data: str | Path) -> Engine:
    """An engine on its own loop thread, started from a helper thread.

    Sync Playwright keeps an event loop running in this thread, so ``asyncio.run``
    cannot be used here.
    """
    config = EngineConfig(load_probe=_own_load)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, Engine.start(data, config=config, thread=True)).result()


def _own_load(loop_lag_s: float, queue_fill: float) -> LoadSample:
    """Load from the engine's own loop lag and queues, not the shared machine's CPU.

    On a machine shared with other jobs, system CPU would put the engine in a high
    load level and stretch every flush interval by design; that is load policy, not
    dashboard latency, so the benchmark leaves it out.
    """
    return LoadSample(cpu=0.0, loop_lag_s=loop_lag_s, queue_fill=queue_fill, memory=0.0)


@contextmanager
def _lab(
    n: int, period_s: float, lens_options: dict[str, Any] | None = None
) -> Iterator[tuple[Engine, DashboardServer, str]]:
    """An engine on its own loop thread with ``n`` fed sensors in room ``bench``, served."""
    with tempfile.TemporaryDirectory() as data:
        engine = start_engine(data)
        sensors = [f"b{i:03d}" for i in range(n)]
        attrs = {"respiration": AttributeInfo.of("respiration", rate_hz=1 / period_s)}
        for sid in sensors:
            engine.call(engine.register_sensor, SensorInfo(sid, attrs, room="bench"))
        rooms = RoomStore(data)
        room = rooms.create_room("bench", "Benchmark room", owner="bench")

        async def start() -> tuple[DashboardServer, asyncio.Event, asyncio.Task[None]]:
            stop = asyncio.Event()
            feeder = asyncio.get_running_loop().create_task(_feed(engine, sensors, period_s, stop))
            server = await serve_dashboards(engine, rooms=rooms, lens_options=lens_options)
            return server, stop, feeder

        server, stop, feeder = engine.call(start)
        try:
            yield engine, server, server.room_url("bench", room.join_code)
        finally:

            async def finish() -> None:
                stop.set()
                await feeder
                await server.stop()

            engine.call(finish)
            engine.close_sync()
            rooms.close()


def _open(browser: Browser, url: str, first_card: str, width: int = 1600) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(url, timeout=LOAD_TIMEOUT_MS)
    page.get_by_text(first_card, exact=True).wait_for(timeout=LOAD_TIMEOUT_MS)
    return page


def _wait_levels(
    engine: Engine, want: AttentionLevel, count: int = 1, timeout_s: float = 60.0
) -> None:
    """Wait until ``count`` sensors are at ``want`` or above (the page's observers reported)."""

    async def seen() -> int:
        return sum(len(engine.attention.sensors_at(lv)) for lv in AttentionLevel if lv >= want)

    deadline = time.monotonic() + timeout_s
    while engine.call(seen) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} sensors reached {want.label}")
        time.sleep(0.05)


def _latency(browser: Browser, seconds: float) -> tuple[float, float, int]:
    with _lab(10, 0.05) as (engine, _server, url):
        page = _open(browser, url, "b000")
        # every card drawn: a card that is not yet streams its backlog when it is
        _wait_levels(engine, AttentionLevel.MEDIUM, count=10)
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
        if page.evaluate(_LATENCY_PROBE) != 10:
            raise RuntimeError("the probe did not find the 10 card plots")
        page.wait_for_timeout(seconds * 1000)  # measuring for a fixed window is the point
        lat = [float(x) for x in page.evaluate("() => window.__lat")]
        page.close()
    if not lat:
        raise RuntimeError("no samples reached the page")
    return statistics.median(lat), float(np.percentile(lat, 95)), len(lat)


#: Lens options of the CPU variants: ours (visible cards drawn), scrolled-out cards
#: drawn at the low tier's 100 ms too, and every card at 50 ms whatever is seen.
_VARIANTS: dict[str, dict[str, Any] | None] = {
    "ours": None,
    "low_drawn": {"flush_ms": None},
    "every_card": {"flush_ms": lambda _level: 50.0},
}


def _cpu(browser: Browser | None, n: int, seconds: float, variant: str = "ours") -> float:
    """Process CPU% over ``seconds``: ``n`` sensors at 10 Hz and (if ``browser``) a dashboard."""
    options = _VARIANTS[variant]
    every_card = variant == "every_card"
    with _lab(n, 0.1, options) as (engine, _server, url):
        page = None
        if browser is not None:
            page = _open(browser, url, "b000", width=1000)
            if not every_card:  # the baseline streams whatever the page reports
                _wait_levels(engine, AttentionLevel.MEDIUM)
        proc = psutil.Process()
        proc.cpu_percent()
        time.sleep(seconds)  # a fixed window of load is what is being measured
        cpu = proc.cpu_percent()
        if page is not None:
            page.close()
    return cpu


def _room_panel(browser: Browser, seconds: float, n: int = 64) -> tuple[float, float]:
    """Phase-circle redraws per second and main-thread busy fraction, ``n`` participants."""
    with tempfile.TemporaryDirectory() as data:
        engine = start_engine(data)
        rooms = RoomStore(data)
        room = rooms.create_room("big", "64 participants", owner="bench")

        async def start() -> tuple[DashboardServer, LiveSynchrony]:
            await SimulatedGroup.start(engine, n, room="big", coupling=1.0, seed=2)
            sync = await LiveSynchrony.start(engine, "big")
            server = await serve_dashboards(engine, rooms=rooms)
            server.context.synchrony["big"] = sync  # type: ignore[attr-defined]
            return server, sync

        server, sync = engine.call(start)
        try:
            page = _open(browser, server.room_url("big", room.join_code), "sim-big-0", 1600)
            page.wait_for_function(
                "() => Bokeh.documents[0].get_model_by_name('room-phases').data.x.length > 0",
                timeout=LOAD_TIMEOUT_MS,
            )
            page.evaluate(
                "() => { window.__phase = 0; const m = Bokeh.documents[0]"
                ".get_model_by_name('room-phases'); m.properties.data.change.connect("
                "() => { window.__phase += 1 }) }"
            )
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")

            def task_s() -> float:
                metrics = cdp.send("Performance.getMetrics")["metrics"]
                return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))

            busy0, t0 = task_s(), time.monotonic()
            page.wait_for_timeout(seconds * 1000)  # measuring for a fixed window is the point
            busy1, t1 = task_s(), time.monotonic()
            hz = float(page.evaluate("() => window.__phase")) / (t1 - t0)
            page.close()
        finally:

            async def finish() -> None:
                await sync.close()
                await server.stop()

            engine.call(finish)
            engine.close_sync()
            rooms.close()
    return hz, (busy1 - busy0) / (t1 - t0)


def run(quick: bool = False) -> list[Row]:
    """Measure latency and CPU; ``quick`` shortens the windows and uses 30 cards."""
    # pages closed while their sessions still stream make Panel log each lost message
    logging.getLogger("panel").setLevel(logging.ERROR)
    window = 5.0 if quick else 15.0
    rows: list[Row] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            median, p95, n = _latency(browser, window)
            rows += [
                Row(AREA, f"sample→screen latency median, ms (10 plots × 20 Hz out of step, "
                    f"{n} samples)", median, target="<= 35 ms", met=median <= 35,
                    higher_is_better=False),
                Row(AREA, "sample→screen latency p95, ms", p95, target="<= 50 ms", met=p95 <= 50,
                    higher_is_better=False),
            ]  # fmt: skip
            for n_cards, limit in ((30, 0.5),) if quick else ((30, 0.5), (100, 0.3)):
                engine_only = _cpu(None, n_cards, window)
                ours = _cpu(browser, n_cards, window)
                low_drawn = _cpu(browser, n_cards, window, "low_drawn")
                baseline = _cpu(browser, n_cards, window, "every_card")
                ratio = ours / baseline if baseline else float("inf")
                rows += [
                    Row(AREA, f"server CPU %, {n_cards} cards, ~10 visible", ours, baseline,
                        "every card streamed (no attention)", target=f"<= {limit}x",
                        met=ratio <= limit, higher_is_better=False),
                    Row(AREA, f"server CPU %, {n_cards} cards, scrolled-out ones drawn every "
                        "100 ms", low_drawn, baseline, "every card streamed (no attention)",
                        higher_is_better=False),
                    Row(AREA, f"server CPU %, {n_cards} sensors, no dashboard open",
                        engine_only, higher_is_better=False),
                ]  # fmt: skip
            hz, busy = _room_panel(browser, window)
            rows += [
                Row(AREA, "room panel redraws/s, 64 participants", hz, target=">= 10 Hz",
                    met=hz >= 10),
                Row(AREA, "browser main thread busy, %, 64 participants", 100 * busy,
                    target="<= 50 %", met=busy <= 0.5, higher_is_better=False),
            ]  # fmt: skip
        finally:
            browser.close()
    return rows


if __name__ == "__main__":
    print(format_table(run()))
