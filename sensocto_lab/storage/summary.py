"""A summary of a data directory: which series it holds, how many samples, what span.

Used by ``sensocto-lab info``. It opens the store read-only, so it works on a directory
an engine is recording into (and changes nothing there), and reads each series once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sensocto_lab.storage.tiered import TieredStore

__all__ = ["summarize"]


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
    store = TieredStore.open(path, read_only=True)
    try:
        rows = []
        for series in store.series():
            table = store.read_table(series.sensor_id, series.attribute_id)
            ts = table.column("ts").cast("int64").to_numpy()
            rows.append(
                {
                    "room": series.room,
                    "sensor": series.sensor_id,
                    "attribute": series.attribute_id,
                    "kind": series.kind,
                    "samples": int(table.num_rows),
                    "start": str(np.datetime64(int(ts[0]), "ns")) if len(ts) else None,
                    "end": str(np.datetime64(int(ts[-1]), "ns")) if len(ts) else None,
                }
            )
    finally:
        store.close()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {"samples": sum(r["samples"] for r in rows), "bytes": size, "series": rows}
