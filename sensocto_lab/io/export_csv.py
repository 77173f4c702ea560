"""A data directory written as plain CSV: one file per series, one for the events.

Every sample exactly as stored, regular or not (RR, heart-rate notifications and
buttons stay one row per sample at its own time; nothing is resampled):
``{out}/{room}/{sensor}/{attribute}.csv`` with the columns ``time_ns`` (ns since the
epoch, UTC), ``time_utc`` (ISO 8601) and one column per component, and
``{out}/events.csv`` with ``onset_ns``, ``onset_utc``, ``duration_s``, ``label``,
``kind``, ``room``, ``sensor``, ``participant``, ``value`` (JSON), ``source``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sensocto_lab.io.series import load_series

__all__ = ["to_csv"]


def to_csv(
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    room: str | None = None,
    *,
    sensors: list[str] | None = None,
) -> list[Path]:
    """Write every series (of ``room``, of ``sensors``) and the events as CSV in ``out``.

    Returns the files written (see the module docstring for their columns).
    """
    series, events, _ = load_series(data_dir, room, sensors)
    root = Path(out)
    files: list[Path] = []
    for s in series:
        folder = root / s.room / s.sensor.replace(":", "_")
        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(s.values, columns=list(s.columns))
        frame.insert(
            0, "time_utc", pd.to_datetime(s.ts, utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        )
        frame.insert(0, "time_ns", s.ts)
        path = folder / f"{s.attribute}.csv"
        frame.to_csv(path, index=False)
        files.append(path)
    root.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "onset_ns": [t.value for t in events["onset"]],
            "onset_utc": [t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t in events["onset"]],
            "duration_s": events["duration"].to_numpy(dtype=np.float64),
            "label": events["label"],
            "kind": events["kind"],
            "room": events["room"],
            "sensor": events["sensor"],
            "participant": events["participant"],
            "value": [
                None if v is None else json.dumps(v, ensure_ascii=False) for v in events["value"]
            ],
            "source": events["source"],
        }
    )
    path = root / "events.csv"
    table.to_csv(path, index=False)
    files.append(path)
    return files
