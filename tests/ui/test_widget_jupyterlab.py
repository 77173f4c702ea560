"""The synchrony widget in a real JupyterLab (Debian's chromium), fed from the kernel.

JupyterLab runs on a free port with a throw-away notebook; the test runs its cells with
the keyboard and checks that anywidget's front end renders our ESM (one dot per
participant, the gauge's R) and that a later ``update`` in the kernel reaches the page.
"""

from __future__ import annotations

import queue
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sensocto_lab.ui.notebook.sync_widget import order_parameter

nbformat = pytest.importorskip("nbformat")
playwright_sync = pytest.importorskip("playwright.sync_api")
pytest.importorskip("jupyterlab")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

CELLS = [
    "import numpy as np\n"
    "from sensocto_lab.ui.notebook.sync_widget import SyncWidget\n"
    "w = SyncWidget(title='lab check')\n"
    "w.update(phases=np.linspace(0.0, 1.0, 6))\n"
    "w.flush()\n"
    "w",
    "w.update(phases=np.zeros(3))\nw.flush()",
]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in CELLS],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, tmp_path / "check.ipynb")
    token = secrets.token_hex(16)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    urls: queue.Queue[str] = queue.Queue()

    def read_log() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if found:
                urls.put(f"http://127.0.0.1:{found.group(1)}")

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        base = urls.get(timeout=120)
        yield f"{base}/lab/tree/check.ipynb?token={token}"
    finally:
        proc.terminate()
        proc.wait(60)
        reader.join(30)


def test_sync_widget_renders_and_updates_in_jupyterlab(lab: str) -> None:
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(lab)
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
            # Run once the kernel is up, from the first cell.
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
            page.locator(".jp-Notebook .jp-Cell .jp-InputArea-prompt").first.click()
            page.keyboard.press("Shift+Enter")
            page.locator(".jp-InputPrompt", has_text="[1]").wait_for(timeout=120_000)
            dots = page.locator("svg[data-role=phase-circle] circle.sl-dot")
            dots.first.wait_for(timeout=120_000)
            assert dots.count() == 6
            gauge = page.locator("svg[data-role=gauge]")
            expected = order_parameter(np.linspace(0.0, 1.0, 6))
            assert gauge.get_attribute("data-r") == f"{expected:.3f}"
            page.keyboard.press("Shift+Enter")
            page.wait_for_function(
                "() => document.querySelector('svg[data-role=gauge]').dataset.r === '1.000'",
                timeout=60_000,
            )
            assert dots.count() == 3
        finally:
            browser.close()
