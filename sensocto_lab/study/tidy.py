"""Turning what a measure returns into rows of a tidy table.

A measure is any function of a segment's :class:`xarray.Dataset`. What it returns
becomes rows with the measure's columns (the caller adds ``session`` and
``condition``):

===============================  ======================================================
returned                         rows
===============================  ======================================================
a number (or 0-d array)          one row, column ``name``
a dict of numbers                one row, a column per key
a pandas Series                  one row, a column per index label
a pandas DataFrame               its rows; a named index becomes a column
an xarray DataArray              ``time`` averaged away (NaN skipped); then 0-d: one
                                 row, column ``name`` (the array's name unless one
                                 was given); dim
                                 ``sensor``: a row per sensor (``sensor``,
                                 ``participant``); dims ``sensor``, ``sensor_2``: a row
                                 per pair above the diagonal (``sensor``,
                                 ``sensor_2``, ``participant``, ``participant_2``)
an xarray Dataset                each data variable as a DataArray, merged on the
                                 sensor/pair columns
===============================  ======================================================

So ``sync.synchrony`` (``R(t)``) gives one row with the session's mean ``R``, and
``sync.phase_locking`` a row per pair. Anything else raises ``TypeError``, which the
study reports as that segment's failure.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["to_rows"]

_PAIR = ("sensor", "sensor_2")


def to_rows(
    result: Any, name: str, who: dict[str, str] | None = None, *, explicit: bool = False
) -> pd.DataFrame:
    """The rows of one measure's ``result`` (see the module docstring).

    ``name`` is the column of a scalar; a DataArray's own name wins over it unless
    ``explicit`` (the caller chose the name).

    ``who`` maps sensors to participants, for results that lost the segment's
    ``participant`` coordinate (``sync.phases`` output does).
    """
    rows = _rows(result, name, explicit)
    if who:
        for s_col, p_col in (("sensor", "participant"), ("sensor_2", "participant_2")):
            if s_col in rows.columns and p_col in rows.columns:
                same = rows[p_col].astype(str) == rows[s_col].astype(str)
                mapped = rows[s_col].astype(str).map(who).fillna(rows[p_col])
                rows[p_col] = rows[p_col].where(~same, mapped)
    return rows


def _rows(result: Any, name: str, explicit: bool) -> pd.DataFrame:
    if isinstance(result, xr.Dataset):
        frames = [_dataarray_rows(result[v], str(v)) for v in result.data_vars]
        if not frames:
            raise TypeError("the measure returned an empty Dataset")
        out = frames[0]
        for f in frames[1:]:
            keys = [c for c in out.columns if c in f.columns and c in _KEYS]
            out = out.merge(f, on=keys, how="outer") if keys else pd.concat([out, f], axis=1)
        return out
    if isinstance(result, xr.DataArray):
        own = result.name is None or explicit
        return _dataarray_rows(result, name if own else str(result.name))
    if isinstance(result, pd.DataFrame):
        frame = result.copy()
        if any(n is not None for n in frame.index.names):
            frame = frame.reset_index()
        else:
            frame = frame.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        return frame
    if isinstance(result, pd.Series):
        return pd.DataFrame([{str(k): _scalar(v, str(k)) for k, v in result.items()}])
    if isinstance(result, dict):
        return pd.DataFrame([{str(k): _scalar(v, str(k)) for k, v in result.items()}])
    return pd.DataFrame([{name: _scalar(result, name)}])


_KEYS = {"sensor", "sensor_2", "participant", "participant_2"}


def _scalar(value: Any, what: str) -> Any:
    if isinstance(value, xr.DataArray):
        value = value.values
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise TypeError(f"{what}: expected a number, got an array of shape {value.shape}")
        value = value.item()
    if isinstance(value, bool | numbers.Number | str) or value is None:
        return value
    raise TypeError(f"{what}: expected a number, got {type(value).__name__}")


def _participants(da: xr.DataArray, dim: str) -> list[str]:
    sensors = [str(s) for s in da[dim].values] if dim in da.coords else []
    coord = "participant" if dim == "sensor" else "participant_2"
    if coord in da.coords and da[coord].dims == (dim,):
        return [str(p) or s for p, s in zip(da[coord].values, sensors, strict=True)]
    return sensors


def _dataarray_rows(da: xr.DataArray, name: str) -> pd.DataFrame:
    if "time" in da.dims:
        da = da.mean("time", skipna=True)
    dims = tuple(str(d) for d in da.dims)
    if dims == ():
        return pd.DataFrame([{name: float(da.values)}])
    if dims == ("sensor",):
        numbers = [str(i) for i in range(da.sizes["sensor"])]
        sensors = [str(s) for s in da["sensor"].values] if "sensor" in da.coords else numbers
        return pd.DataFrame(
            {
                "sensor": sensors,
                "participant": _participants(da, "sensor") or sensors,
                name: np.asarray(da.values, dtype=np.float64),
            }
        )
    if set(dims) == set(_PAIR):
        da = da.transpose(*_PAIR)
        values = np.asarray(da.values, dtype=np.float64)
        a = [str(s) for s in da["sensor"].values]
        b = [str(s) for s in da["sensor_2"].values]
        pa_, pb = _participants(da, "sensor") or a, _participants(da, "sensor_2") or b
        i, j = np.triu_indices(len(a), k=1, m=len(b))
        return pd.DataFrame(
            {
                "sensor": [a[k] for k in i],
                "sensor_2": [b[k] for k in j],
                "participant": [pa_[k] for k in i],
                "participant_2": [pb[k] for k in j],
                name: values[i, j],
            }
        )
    raise TypeError(
        f"{name}: cannot reduce dims {dims} to rows; return time, sensor or "
        "(sensor, sensor_2) dims, or a number, dict, Series or DataFrame"
    )
