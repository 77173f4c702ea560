"""History as xarray: series of samples placed on one shared time axis.

Storage hands this module one :class:`SeriesSource` per (sensor, attribute); it
returns an :class:`xarray.Dataset` with one variable per attribute, dims
``("sensor", "time")`` (vectors add a component dim), ``time`` the union of every
sample's device timestamp (``datetime64[ns]``, UTC) and NaN where a sensor has no
sample at that time. No sample is lost: when one series has several samples with the
same timestamp, the time axis repeats that timestamp as often as needed.

Large selections are built lazily: only the timestamps are read up front (to lay out
the time axis) and values are read per time chunk when Dask computes them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.model import KindSpec

__all__ = ["Loader", "SeriesSource", "build_dataset"]

#: ``load(start_ns, end_ns, with_values)`` → ``(ts, values or None)``, sorted by time.
Loader = Callable[[int | None, int | None, bool], tuple[npt.NDArray[np.int64], Any]]


@dataclass(frozen=True, slots=True)
class SeriesSource:
    """One (sensor, attribute) and how to read its samples in a time range."""

    sensor_id: str
    attribute_id: str
    kind: KindSpec
    load: Loader


def _occurrence(ts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """For sorted ``ts``, how many earlier samples share each sample's timestamp."""
    idx = np.arange(ts.shape[0], dtype=np.int64)
    if ts.shape[0] == 0:
        return idx
    return idx - np.maximum.accumulate(np.where(_distinct(ts), idx, 0))


def _distinct(sorted_ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Mask of the first sample of each run of equal timestamps in sorted ``sorted_ts``."""
    first = np.ones(sorted_ts.shape[0], dtype=bool)
    np.not_equal(sorted_ts[1:], sorted_ts[:-1], out=first[1:])
    return first


def _time_axis(all_ts: Sequence[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    """Sorted union of timestamps, each repeated as often as the series repeating it most.

    Every input is sorted, so a stable sort of their concatenation is a cheap merge
    (numpy's hash-based ``unique`` is far slower on a sensor-hour).
    """
    if not all_ts:
        return np.zeros(0, dtype=np.int64)
    if all(_distinct(t).all() for t in all_ts):
        merged = all_ts[0] if len(all_ts) == 1 else np.sort(np.concatenate(all_ts), kind="stable")
        return merged[_distinct(merged)]
    values, counts = [], []
    for t in all_ts:
        starts = np.flatnonzero(_distinct(t))
        values.append(t[starts])
        counts.append(np.diff(np.r_[starts, t.shape[0]]))
    order = np.argsort(np.concatenate(values), kind="stable")
    merged, cnt = np.concatenate(values)[order], np.concatenate(counts)[order]
    bounds = np.flatnonzero(_distinct(merged))
    return np.repeat(merged[bounds], np.maximum.reduceat(cnt, bounds))


def _positions(axis: npt.NDArray[np.int64], ts: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    pos = np.searchsorted(axis, ts, side="left")
    if not _distinct(ts).all():
        pos += _occurrence(ts)
    return pos


def _place(
    axis: npt.NDArray[np.int64], ts: npt.NDArray[np.int64], values: Any, kind: KindSpec
) -> npt.NDArray[Any]:
    """The series' values on ``axis`` (NaN where it has no sample), in the kind's dtype."""
    if ts.shape == axis.shape and np.array_equal(ts, axis):
        return np.array(values, dtype=kind.dtype)  # the series is the axis: one copy
    shape = (axis.shape[0],) if kind.width == 1 else (axis.shape[0], kind.width)
    out = np.full(shape, np.nan, dtype=kind.dtype)
    if ts.shape[0]:
        out[_positions(axis, ts)] = values
    return out


def _chunk_bounds(axis: npt.NDArray[np.int64], size: int) -> list[tuple[int, int]]:
    """Split the axis in chunks of about ``size`` that never split equal timestamps."""
    bounds = [0]
    while bounds[-1] < axis.shape[0]:
        nxt = bounds[-1] + size
        if nxt >= axis.shape[0]:
            bounds.append(axis.shape[0])
            break
        # Move the cut to the first index of its timestamp's run.
        bounds.append(max(int(np.searchsorted(axis, axis[nxt], side="left")), bounds[-1] + 1))
    return list(itertools.pairwise(bounds))


def _lazy_block(source: SeriesSource, axis_chunk: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    ts, values = source.load(int(axis_chunk[0]), int(axis_chunk[-1]) + 1, True)
    return _place(axis_chunk, ts, values, source.kind)


def _component_dims(sources: Sequence[SeriesSource]) -> dict[str, str]:
    """Dim name of the components of each vector attribute.

    ``"component"`` when every vector attribute in the selection has the same
    components, else ``"component_{attribute}"`` so differing sizes do not clash.
    """
    comps = {s.attribute_id: s.kind.components for s in sources if s.kind.width > 1}
    if len(set(comps.values())) <= 1:
        return dict.fromkeys(comps, "component")
    return {a: f"component_{a}" for a in comps}


def build_dataset(
    sources: Sequence[SeriesSource],
    sensors: Sequence[str],
    start: int | None,
    end: int | None,
    *,
    lazy: bool,
    chunk_samples: int,
) -> xr.Dataset:
    """Lay ``sources`` out as a Dataset (see the module docstring).

    Parameters
    ----------
    sources
        The series to include.
    sensors
        The ``sensor`` coordinate, in order (sensors without data get NaN rows).
    start, end
        Time range in ns since the epoch, ``[start, end)``; ``None`` is open.
    lazy
        Return Dask arrays whose chunks read values on compute.
    chunk_samples
        Time-chunk length of lazy arrays.
    """
    loaded: dict[tuple[str, str], tuple[npt.NDArray[np.int64], Any]] = {
        (s.sensor_id, s.attribute_id): s.load(start, end, not lazy) for s in sources
    }
    axis = _time_axis([ts for ts, _ in loaded.values()])
    by_attr: dict[str, dict[str, SeriesSource]] = {}
    for s in sources:
        by_attr.setdefault(s.attribute_id, {})[s.sensor_id] = s
    comp_dims = _component_dims(sources)
    data_vars: dict[str, xr.Variable] = {}
    coords: dict[str, Any] = {
        "sensor": np.array(list(sensors), dtype=object),
        "time": axis.view("datetime64[ns]"),
    }
    for attr, per_sensor in sorted(by_attr.items()):
        kind = next(iter(per_sensor.values())).kind
        dims: tuple[str, ...] = ("sensor", "time")
        if kind.width > 1:
            dims += (comp_dims[attr],)
            coords[comp_dims[attr]] = list(kind.components or range(kind.width))
        rows = []
        for sensor in sensors:
            source = per_sensor.get(sensor)
            if lazy:
                rows.append(_lazy_row(source, axis, kind, chunk_samples))
            elif source is None:
                rows.append(_place(axis, np.zeros(0, np.int64), None, kind))
            else:
                ts, values = loaded[(sensor, attr)]
                rows.append(_place(axis, ts, values, kind))
        if lazy:
            import dask.array as da

            data: Any = da.stack(rows) if rows else np.zeros((0, *axis.shape), kind.dtype)
        else:
            data = np.stack(rows) if rows else np.zeros((0, *axis.shape), kind.dtype)
        data_vars[attr] = xr.Variable(
            dims,
            data,
            attrs={"units": kind.unit, "kind": kind.name, "rate_hz": kind.rate_hz},
        )
    return xr.Dataset(
        data_vars,
        coords=coords,
        attrs={"time_zone": "UTC", "time_is": "device clock (ts)"},
    )


def _lazy_row(
    source: SeriesSource | None, axis: npt.NDArray[np.int64], kind: KindSpec, chunk_samples: int
) -> Any:
    import dask.array as da
    from dask.delayed import delayed

    tail = () if kind.width == 1 else (kind.width,)
    if source is None or axis.shape[0] == 0:
        return da.full((axis.shape[0], *tail), np.nan, dtype=kind.dtype)
    blocks = [
        da.from_delayed(
            delayed(_lazy_block)(source, axis[lo:hi]),
            shape=(hi - lo, *tail),
            dtype=kind.dtype,
        )
        for lo, hi in _chunk_bounds(axis, chunk_samples)
    ]
    return da.concatenate(blocks)
