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
        "print(','.join(m for m in ('websockets', 'panel', 'bleak', 'sensocto_lab.live') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
