"""Replay a recorded session back through an ingest endpoint, at real or faster speed.

Each recorded sensor becomes a :class:`~sensocto_lab.net.sensor_client.SensorClient`,
joined to its recorded room, that pushes its samples with their original device
timestamps, paced so that device time advances ``speed`` times faster than wall
time. What arrives at the other end is
what was recorded, sample for sample. Asking for a sensor that was not recorded is an
error (:class:`~sensocto_lab.errors.UnknownSensorError`), not an empty replay; a tqdm
bar (samples sent, rate) shows progress when asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sensocto_lab.errors import ConfigError, UnknownSensorError
from sensocto_lab.net.sensor_client import SensorClient
from sensocto_lab.storage.tiered import TieredStore
from sensocto_lab.sync._progress import progress_bar

__all__ = ["replay_session"]

#: Device-time span sent per push, in ms (a tenth of a second keeps pacing smooth).
STEP_MS = 100.0


@dataclass(slots=True)
class _Series:
    room: str
    sensor: str
    attribute: str
    ts_ms: npt.NDArray[np.float64]
    values: npt.NDArray[Any]
    pos: int = 0


def _load(data_dir: Path, sensors: Sequence[str] | None) -> list[_Series]:
    store = TieredStore.open(data_dir, read_only=True)
    try:
        recorded = store.series()
        missing = set(sensors or ()) - {s.sensor_id for s in recorded}
        if missing:
            raise UnknownSensorError(
                f"no recordings of sensor {', '.join(sorted(missing))} in {data_dir}",
                reason="unknown_sensor",
            )
        out = []
        for stored in recorded:
            sensor, attribute = stored.sensor_id, stored.attribute_id
            if sensors and sensor not in sensors:
                continue
            table = store.read_table(sensor, attribute)
            if table.num_rows == 0:
                continue
            col = table.column("value").combine_chunks()
            values = (
                col.flatten().to_numpy().reshape(table.num_rows, -1)
                if hasattr(col, "flatten")
                else col.to_numpy()
            )
            ts = table.column("ts").cast("int64").to_numpy() / 1e6
            out.append(_Series(stored.room, sensor, attribute, ts, values))
        return out
    finally:
        store.close()


async def replay_session(
    data_dir: str | Path,
    *,
    url: str,
    token: str | None = None,
    speed: float = 1.0,
    sensors: Sequence[str] | None = None,
    progress: bool | None = None,
) -> int:
    """Push every recorded sample of ``data_dir`` to the endpoint at ``url``.

    Parameters
    ----------
    data_dir
        A sensocto_lab data directory.
    url
        The endpoint's socket URL (``ws://host:port/socket/websocket``).
    token
        Ingest token, if the endpoint wants one.
    speed
        Device time per wall time: 1 replays in real time, 10 ten times faster,
        ``float('inf')`` as fast as the endpoint accepts.
    sensors
        Only these sensors (default: all).
    progress
        Show a tqdm bar of samples sent (on stderr); ``None`` shows one only inside a
        Jupyter kernel.

    Returns
    -------
    int
        Samples sent and acknowledged as stored by the endpoint.

    Raises
    ------
    UnknownSensorError
        A sensor of ``sensors`` has no recordings in ``data_dir``.
    StorageError
        ``data_dir`` holds no store (``reason="no_store"``).
    """
    if not speed > 0:
        raise ConfigError("speed must be > 0")
    series = await asyncio.to_thread(_load, Path(data_dir), sensors)
    if not series:
        return 0
    by_sensor: dict[str, list[_Series]] = {}
    for s in series:
        by_sensor.setdefault(s.sensor, []).append(s)
    clients = {
        sensor: SensorClient(
            url,
            sensor,
            [s.attribute for s in group],
            token=token,
            join_params={"room": group[0].room},
        )
        for sensor, group in by_sensor.items()
    }
    t0 = min(float(s.ts_ms[0]) for s in series)
    t_end = max(float(s.ts_ms[-1]) for s in series)
    sent = 0
    bar = None
    try:
        for client in clients.values():
            await client.connect()
        # once joined: a refused or failed connection shows no bar at all
        bar = progress_bar(sum(len(s.ts_ms) for s in series), "replay", progress)
        bar.unit, bar.unit_scale = "sample", True
        wall0 = time.monotonic()
        step = t0
        while step <= t_end:
            step += STEP_MS
            for s in series:
                stop = int(np.searchsorted(s.ts_ms, step, side="left"))
                if stop > s.pos:
                    await clients[s.sensor].send_batch(
                        s.attribute, s.values[s.pos : stop], timestamps_ms=s.ts_ms[s.pos : stop]
                    )
                    sent += stop - s.pos
                    bar.update(stop - s.pos)
                    s.pos = stop
            delay = wall0 + (step - t0) / 1000 / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        for client in clients.values():
            await client.drain()
    finally:
        if bar is not None:
            bar.close()
        for client in clients.values():
            await client.close()
    return sent
