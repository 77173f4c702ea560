"""Regenerate the README's screenshots from a real browser run of the demo.

Runs :class:`~sensocto_lab.app.LabApp` as ``sensocto-lab demo`` does (8 simulated
participants, the scripted baseline → task → recovery protocol), opens the room's
dashboard in headless Chromium and saves, near the end of each condition of the
first cycle (when R has had time to change):

- ``docs/demo-baseline.png``, ``docs/demo-task.png``, ``docs/demo-recovery.png``: the
  whole page, R falling and rising with the condition;
- ``docs/dashboard.png``: the README's picture (the end of the task).

Run: ``python scripts/screenshots.py [--phase-s 45]`` (about three minutes with the
demo's 45-s conditions). Fails if the page reports any error.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

from sensocto_lab.app import DEMO_PROTOCOL, LabApp, LabOptions

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

#: True once the banner names ``label`` and it has run ``at_s`` seconds.
_IN_CONDITION = """([label, at_s]) => {
  const banner = Bokeh.documents[0].get_model_by_name('room-banner');
  const m = banner && banner.text.match(/Condition: <b>([^<]*)<\\/b> · (\\d+):(\\d+)/);
  return !!m && m[1] === label && (+m[2]) * 60 + (+m[3]) >= at_s;
}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--phase-s",
        type=float,
        default=DEMO_PROTOCOL[0][1],
        help="seconds per condition (the demo's: 45)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)  # fmt: skip
    protocol = tuple((label, args.phase_s) for label, _ in DEMO_PROTOCOL)
    data = Path(tempfile.mkdtemp(prefix="sensocto-screenshots-"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="lab", daemon=True)
    thread.start()
    options = LabOptions(
        data_dir=data, port=0, dashboard_port=0, simulate=8, room="demo", protocol=protocol
    )
    lab = asyncio.run_coroutine_threadsafe(LabApp.start(options), loop).result(120)
    errors: list[str] = []
    try:
        room = lab.rooms.room("demo")
        assert lab.dashboards is not None
        url = lab.dashboards.room_url("demo", room.join_code)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url, timeout=180_000)
            timeout = (3 * args.phase_s + 120) * 1000
            shots = {}
            for label, _ in DEMO_PROTOCOL:
                page.wait_for_function(
                    _IN_CONDITION, arg=[label, max(1.0, args.phase_s - 5)], timeout=timeout
                )
                path = args.out / f"demo-{label}.png"
                page.screenshot(path=str(path), full_page=True)
                shots[label] = path
                print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
            shutil.copyfile(shots["task"], args.out / "dashboard.png")
            print(f"wrote {args.out / 'dashboard.png'}")
            browser.close()
    finally:
        asyncio.run_coroutine_threadsafe(lab.close(), loop).result(120)
        loop.call_soon_threadsafe(loop.stop)
        shutil.rmtree(data, ignore_errors=True)
    if errors:
        print("the page reported errors:", *errors[:5], sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
