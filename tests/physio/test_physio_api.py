"""The curated physio and sync namespaces resolve, and importing them stays light."""

from __future__ import annotations

import subprocess
import sys

from sensocto_lab import physio, sync


def test_every_exported_name_resolves() -> None:
    for module in (physio, sync):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"


def test_importing_sync_and_physio_does_not_load_neurokit2() -> None:
    code = (
        "import sys, sensocto_lab.sync, sensocto_lab.physio; "
        "print(','.join(m for m in ('neurokit2', 'hypyp', 'multiSyncPy', 'mne', "
        "'sensocto_lab.engine') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
