"""sensocto_lab: record and study the live physiology of groups, from Jupyter.

The public API, imported lazily so that ``import sensocto_lab.sync`` stays light::

    from sensocto_lab import Engine
    engine = await Engine.start(data_dir="data")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "AttentionLevel": "sensocto_lab.model",
    "AttributeInfo": "sensocto_lab.model",
    "Batch": "sensocto_lab.model",
    "BackpressureConfig": "sensocto_lab.model",
    "KINDS": "sensocto_lab.model",
    "LoadLevel": "sensocto_lab.model",
    "SensorInfo": "sensocto_lab.model",
    "FakeClock": "sensocto_lab.clock",
    "SystemClock": "sensocto_lab.clock",
    "Engine": "sensocto_lab.live.engine",
    "EngineConfig": "sensocto_lab.live.engine",
    "SimulatedGroup": "sensocto_lab.live.engine",
    "Overflow": "sensocto_lab.live.bus",
    "SensorState": "sensocto_lab.live.status",
    "SensorStatus": "sensocto_lab.live.status",
    "LiveSynchrony": "sensocto_lab.live.synchrony",
    "OnlineConfig": "sensocto_lab.sync.online",
    "AttentionTracker": "sensocto_lab.live.attention",
    "AttentionConfig": "sensocto_lab.live.attention",
    "LoadMonitor": "sensocto_lab.live.load",
    "LoadConfig": "sensocto_lab.live.load",
    "GroupSimulator": "sensocto_lab.live.simulator",
    "SimConfig": "sensocto_lab.live.simulator",
    "serve": "sensocto_lab.live.server",
    "ServerConfig": "sensocto_lab.live.server",
    "IngestServer": "sensocto_lab.live.server",
    "SensorClient": "sensocto_lab.live.client",
    "ViewerClient": "sensocto_lab.live.viewer_client",
    "BleCapture": "sensocto_lab.live.ble",
    "FakeRadio": "sensocto_lab.live.ble_radio",
    "replay_session": "sensocto_lab.live.replay",
    "TieredStore": "sensocto_lab.storage",
    "StorageConfig": "sensocto_lab.storage",
    "LabApp": "sensocto_lab.app",
    "LabOptions": "sensocto_lab.app",
    "SyncWidget": "sensocto_lab.widgets.sync_widget",
    "StripWidget": "sensocto_lab.widgets.strip",
    "HistoryWidget": "sensocto_lab.widgets.history",
    "serve_dashboards": "sensocto_lab.widgets.panel_server",
    "serve_remote_dashboards": "sensocto_lab.widgets.panel_server",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sensocto_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
