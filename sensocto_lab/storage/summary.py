"""A summary of a data directory: which series it holds, how many samples, what span.

Used by ``sensocto-lab info`` and ``replay``. It opens the store like the engine does
(recovering what a crash left) and reads each series once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sensocto_lab.storage import cold
from sensocto_lab.storage.config import StorageConfig
from sensocto_lab.storage.tiered import TieredStore

__all__ = ["series_of", "summarize"]


def series_of(store: TieredStore, data_dir: Path) -> list[tuple[str, str, str]]:
    """Every ``(room, sensor, attribute)`` recorded, from the cold tier and the rings."""
    found: dict[tuple[str, str], str] = {}
    for part in cold.list_parts(data_dir / "cold"):
        found[(part.sensor_id, part.attribute_id)] = part.room
    for key in store.stats()["rings"]:
        sensor, attribute = key.split("/", 1)
        found.setdefault((sensor, attribute), "")
    return sorted((room, s, a) for (s, a), room in found.items())


def summarize(data_dir: str | Path) -> dict[str, Any]:
    """Samples, time span and bytes on disk per series of ``data_dir``.

    Returns
    -------
    dict
        ``samples`` (total), ``bytes`` (files under ``data_dir``) and ``series``: a
        list of ``{room, sensor, attribute, samples, start, end}`` with ISO-8601 UTC
        times of the first and last device timestamps.
    """
    path = Path(data_dir)
    store = TieredStore.open(path, StorageConfig(background=False))
    try:
        rows = []
        for room, sensor, attribute in series_of(store, path):
            table = store.read_table(sensor, attribute)
            ts = table.column("ts").cast("int64").to_numpy()
            rows.append(
                {
                    "room": room,
                    "sensor": sensor,
                    "attribute": attribute,
                    "samples": int(table.num_rows),
                    "start": str(np.datetime64(int(ts[0]), "ns")) if len(ts) else None,
                    "end": str(np.datetime64(int(ts[-1]), "ns")) if len(ts) else None,
                }
            )
    finally:
        store.close()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {"samples": sum(r["samples"] for r in rows), "bytes": size, "series": rows}
