"""The curated public API: every exported name resolves, and light imports stay light."""

from __future__ import annotations

import subprocess
import sys

import sensocto_lab


def test_every_exported_name_resolves() -> None:
    for name in sensocto_lab.__all__:
        assert getattr(sensocto_lab, name) is not None, name


def test_importing_the_pure_core_does_not_pull_in_the_engine_or_ui() -> None:
    code = (
        "import sys, sensocto_lab.model, sensocto_lab.sync; "
        "print(','.join(m for m in ('websockets', 'panel', 'bleak', 'sensocto_lab.engine', "
        "'sensocto_lab.net', 'sensocto_lab.ui') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_stub_lists_exactly_what_the_package_exports() -> None:
    from pathlib import Path

    stub = Path(sensocto_lab.__file__).with_suffix(".pyi").read_text()
    lines = [line for line in stub.splitlines() if line.startswith(("from ", "import "))]
    named = {line.split(" as ")[-1].strip() for line in lines}
    assert named == set(sensocto_lab.__all__)
    assert {"Engine", "SimulatedGroup", "SyncWidget", "sync", "scan", "Event"} <= named
