"""The series of a data directory as the exporters need them: samples, unit, rate, regularity.

The store keeps every sample as it arrived (``TieredStore.read_table``). An exporter
also needs to know whether a series is *regular* (a fixed rate, as EDF and BIDS
physio files require) or *irregular* (RR intervals, heart-rate notifications,
buttons, markers), and its unit. :func:`load_series` decides that once for all
exporters: a series is regular when it has a nominal rate (from the interop sidecars
of :mod:`sensocto_lab.io.meta`, else the median interval of its timestamps) and at
least 95 % of its intervals lie within 10 % of ``1 / rate``; the kinds ``rr``, ``hr``,
``hrv`` and ``button`` are irregular by nature and never resampled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from sensocto_lab.errors import StorageError
from sensocto_lab.io.meta import series_meta
from sensocto_lab.model import KINDS, KindSpec
from sensocto_lab.storage.session import SessionInfo
from sensocto_lab.storage.tiered import TieredStore

__all__ = ["IRREGULAR_KINDS", "Series", "grid", "grid_index", "load_series", "regular_rate"]

#: Kinds whose samples come when something happens, not on a clock.
IRREGULAR_KINDS = frozenset({"rr", "hr", "hrv", "button"})


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """One stored (sensor, attribute) with what an exporter writes about it.

    Attributes
    ----------
    room, sensor, attribute
        Where it is stored.
    kind
        Its model kind.
    label, unit
        The original channel label and physical unit (the kind's unit if unknown).
    rate_hz
        Its sampling rate in Hz if it is regular, else 0.
    ts
        ``int64`` ns since the epoch, shape ``(n,)``.
    values
        float64, shape ``(n, width)`` (one column per component).
    columns
        One name per column: the attribute, or ``{attribute}_{component}``.
    """

    room: str
    sensor: str
    attribute: str
    kind: KindSpec
    label: str
    unit: str
    rate_hz: float
    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    columns: tuple[str, ...]

    @property
    def regular(self) -> bool:
        """True when the series has a fixed sampling rate."""
        return self.rate_hz > 0


def regular_rate(kind: str, nominal: float, ts: npt.NDArray[np.int64]) -> float:
    """The series' rate in Hz if it is regular (module docstring), else 0."""
    if kind in IRREGULAR_KINDS or len(ts) < 3:
        return 0.0
    dts = np.diff(ts).astype(np.float64)
    rate = nominal if nominal > 0 else (1e9 / float(np.median(dts)) if np.median(dts) > 0 else 0)
    if rate <= 0:
        return 0.0
    if nominal <= 0:  # estimated: a whole number of Hz when it is within 0.5 % of one
        rounded = round(rate)
        rate = float(rounded) if rounded and abs(rate - rounded) < 0.005 * rate else rate
    period = 1e9 / rate
    on_time = np.abs(dts - period) <= 0.1 * period
    return float(rate) if on_time.mean() >= 0.95 else 0.0


def grid(
    ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64], rate: float, start_ns: int, n: int
) -> npt.NDArray[np.float64]:
    """``values`` placed on the grid ``start_ns + i / rate`` (``n`` rows), NaN where empty.

    The series' first sample goes to the grid point nearest it and every later one
    keeps its distance from the first in whole periods (rounded), so a series whose
    clock is half a period off the grid keeps one sample per point (the whole series
    moves by at most half a period). Later samples win a point; samples before
    ``start_ns`` or past the end are dropped.
    """
    out = np.full((n, values.shape[1]), np.nan)
    idx = grid_index(ts, rate, start_ns)
    keep = (idx >= 0) & (idx < n)
    out[idx[keep]] = values[keep]
    return out


def grid_index(ts: npt.NDArray[np.int64], rate: float, start_ns: int) -> npt.NDArray[np.int64]:
    """Each stamp's grid point (``start_ns + i / rate``), as :func:`grid` places it."""
    if not len(ts):
        return np.empty(0, np.int64)
    first = int(np.floor((int(ts[0]) - start_ns) * (rate / 1e9) + 0.5))
    return first + np.round((ts - ts[0]) * (rate / 1e9)).astype(np.int64)


def load_series(
    data_dir: str | os.PathLike[str],
    room: str | None = None,
    sensors: list[str] | None = None,
) -> tuple[list[Series], pd.DataFrame, SessionInfo]:
    """Every series of ``data_dir`` (of ``room``, of ``sensors``), its events and session.

    Opens the store read-only (an engine may be recording into it). Raises
    :class:`StorageError` (``no_store``) when ``data_dir`` holds no store and
    ``no_data`` when nothing matches.
    """
    store = TieredStore.open(Path(data_dir), read_only=True)
    meta = series_meta(data_dir)
    out: list[Series] = []
    for s in store.series():
        if (room is not None and s.room != room) or (
            sensors is not None and s.sensor_id not in sensors
        ):
            continue
        table = store.read_table(s.sensor_id, s.attribute_id)
        if table.num_rows == 0:
            continue
        kind = KINDS.get(s.kind, KINDS["numeric"])
        ts = table["ts"].cast("int64").to_numpy()
        raw = table["value"]
        if kind.is_vector:
            flat = raw.combine_chunks().flatten().to_numpy(zero_copy_only=False)
            values = np.asarray(flat, dtype=np.float64).reshape(-1, kind.width)
            columns = tuple(f"{s.attribute_id}_{c}" for c in kind.components)
        else:
            values = raw.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, 1)
            columns = (s.attribute_id,)
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        info: dict[str, Any] = meta.get((s.sensor_id, s.attribute_id), {})
        out.append(
            Series(
                room=s.room,
                sensor=s.sensor_id,
                attribute=s.attribute_id,
                kind=kind,
                label=info.get("label") or s.attribute_id,
                unit=info.get("unit") or kind.unit,
                rate_hz=regular_rate(kind.name, float(info.get("rate_hz") or 0.0), ts),
                ts=ts,
                values=values,
                columns=columns,
            )
        )
    if not out:
        where = f" of room {room!r}" if room else ""
        raise StorageError(f"{data_dir} holds no samples{where} to export", reason="no_data")
    events = store.events(room=room)
    return out, events, store.session
