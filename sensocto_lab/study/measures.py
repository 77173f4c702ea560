"""Named measures for the command line (``sensocto-lab study apply --measure NAME``).

Each is a function of a segment's Dataset, as :meth:`Study.apply
<sensocto_lab.study.Study.apply>` takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import xarray as xr

from sensocto_lab import sync

__all__ = ["MEASURES", "kuramoto", "plv"]


def kuramoto(ds: xr.Dataset) -> float:
    """Time-mean Kuramoto order parameter ``R`` of the respiration (dimensionless, 0–1)."""
    return float(sync.synchrony(ds, attribute="respiration", progress=False).mean(skipna=True))


def plv(ds: xr.Dataset) -> xr.DataArray:
    """Phase-locking value of every pair's respiration (dims ``sensor``, ``sensor_2``)."""
    theta = sync.phases(ds, attribute="respiration")
    out = sync.phase_locking(theta)
    return out.rename("plv")


#: ``name -> (measure, attributes it reads)``.
MEASURES: dict[str, tuple[Callable[[Any], Any], list[str]]] = {
    "kuramoto": (kuramoto, ["respiration"]),
    "plv": (plv, ["respiration"]),
}
