"""A view of a recorded R(t) against its surrogate band.

Give it the order parameter over time and, optionally, the band that chance alone
produces (e.g. the 5th and 95th percentile of R over circular-shift surrogates): the band
is shaded, R is drawn on top, and stretches where R rises above the band are marked.
Static data: set once with :meth:`HistoryWidget.set_series` (or in the constructor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import traitlets

from sensocto_lab.errors import ValidationError
from sensocto_lab.ui.notebook._events import EventLayer
from sensocto_lab.ui.notebook._wire import as_f32_1d, esm_source, f32_bytes, panel_twin

__all__ = ["HistoryWidget", "seconds_since_start"]

_SYNCED = (
    "t", "r", "band_lo", "band_hi", "band_label", "title", "px_width", "px_height", "events",
    "t_ref",
)


def seconds_since_start(time: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Times as float seconds since the first one.

    Accepts ``datetime64`` (e.g. an xarray ``time`` coordinate), ``int64`` ns since the
    epoch, or float seconds.
    """
    arr = np.asarray(time)
    if arr.ndim != 1:
        raise ValidationError(f"time must be 1-D, got shape {arr.shape}", reason="invalid_shape")
    if len(arr) == 0:
        return np.zeros(0)
    if np.issubdtype(arr.dtype, np.datetime64):
        ns = arr.astype("datetime64[ns]").astype(np.int64)
        return (ns - ns[0]) / 1e9
    if np.issubdtype(arr.dtype, np.integer):
        return (arr.astype(np.int64) - int(arr[0])) / 1e9
    secs = as_f32_1d(arr, "time").astype(np.float64)
    return secs - secs[0]


def _epoch_s(time: npt.ArrayLike) -> float:
    """The first time as seconds since the epoch (float seconds are taken as such)."""
    arr = np.asarray(time)
    if len(arr) == 0:
        return 0.0
    if np.issubdtype(arr.dtype, np.datetime64):
        return int(arr[:1].astype("datetime64[ns]").astype(np.int64)[0]) / 1e9
    if np.issubdtype(arr.dtype, np.integer):
        return int(arr[0]) / 1e9
    return float(arr[0])


class HistoryWidget(EventLayer):
    """Recorded R(t) with a shaded surrogate band.

    Parameters
    ----------
    time
        Sample times (``datetime64``, ``int64`` ns or float seconds), shape ``(n,)``.
    r
        Order parameter at those times, in [0, 1], shape ``(n,)``.
    band_hi, band_lo
        Upper and lower edge of the chance band at those times (scalars are broadcast);
        ``band_lo`` defaults to 0 when only ``band_hi`` is given.
    band_label
        What the band is, for the legend.
    title
        Shown above the plot.
    width, height
        Canvas size in CSS pixels.
    """

    _esm = esm_source("history")

    t = traitlets.Bytes(b"").tag(sync=True)
    r = traitlets.Bytes(b"").tag(sync=True)
    band_lo = traitlets.Bytes(b"").tag(sync=True)
    band_hi = traitlets.Bytes(b"").tag(sync=True)
    band_label = traitlets.Unicode("surrogate band").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    px_width = traitlets.Int(640).tag(sync=True)
    px_height = traitlets.Int(240).tag(sync=True)

    def __init__(
        self,
        time: npt.ArrayLike | None = None,
        r: npt.ArrayLike | None = None,
        *,
        band_hi: npt.ArrayLike | None = None,
        band_lo: npt.ArrayLike | None = None,
        band_label: str = "surrogate 95th percentile",
        title: str = "",
        width: int = 640,
        height: int = 240,
    ) -> None:
        self._feeds = []
        super().__init__(title=title, px_width=width, px_height=height)
        if time is not None or r is not None:
            if time is None or r is None:
                raise ValidationError("give both time and r", reason="missing_fields")
            self.set_series(time, r, band_hi=band_hi, band_lo=band_lo, band_label=band_label)

    @classmethod
    def from_dataarray(cls, r: Any, **kwargs: Any) -> HistoryWidget:
        """From a 1-D :class:`xarray.DataArray` of R with a ``time`` coordinate."""
        if r.ndim != 1 or "time" not in r.coords:
            raise ValidationError(
                "expected a 1-D DataArray with a 'time' coordinate", reason="invalid_shape"
            )
        return cls(r["time"].values, r.values, **kwargs)

    def set_series(
        self,
        time: npt.ArrayLike,
        r: npt.ArrayLike,
        *,
        band_hi: npt.ArrayLike | None = None,
        band_lo: npt.ArrayLike | None = None,
        band_label: str | None = None,
    ) -> None:
        """Show R over ``time`` with an optional band (see the class parameters).

        Raises
        ------
        ValidationError
            Mismatched lengths, non-finite values, R outside [0, 1] or a band whose lower
            edge lies above its upper edge. The widget keeps its previous data then.
        """
        secs = seconds_since_start(time)
        origin = _epoch_s(time)
        rv = as_f32_1d(r, "r")
        n = len(secs)
        if len(rv) != n:
            raise ValidationError(f"{n} times but {len(rv)} R values", reason="invalid_shape")
        if n and (rv.min() < -1e-6 or rv.max() > 1 + 1e-6):
            raise ValidationError("R values must lie in [0, 1]", reason="invalid_r")
        if n > 1 and (np.diff(secs) < 0).any():
            raise ValidationError("time must not go backwards", reason="unordered_timestamps")
        hi = lo = np.zeros(0, np.float32)
        if band_hi is not None:
            hi = self._band(band_hi, n, "band_hi")
            lo = np.zeros(n, np.float32) if band_lo is None else self._band(band_lo, n, "band_lo")
            if (lo > hi + 1e-6).any():
                raise ValidationError("band_lo lies above band_hi", reason="invalid_band")
        elif band_lo is not None:
            raise ValidationError("band_lo needs band_hi", reason="missing_fields")
        with self.hold_sync():
            self.t = f32_bytes(secs)
            self.t_ref = origin
            self.r = f32_bytes(rv)
            self.band_hi = f32_bytes(hi)
            self.band_lo = f32_bytes(lo)
            if band_label is not None:
                self.band_label = band_label

    @staticmethod
    def _band(values: npt.ArrayLike, n: int, what: str) -> npt.NDArray[np.float32]:
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(n, float(arr))
        out = as_f32_1d(arr, what)
        if len(out) != n:
            raise ValidationError(
                f"{what} has {len(out)} values for {n} times", reason="invalid_shape"
            )
        return out

    def __panel__(self) -> Any:
        """This widget as a Panel component (same JavaScript, kept in step)."""
        return panel_twin(
            self, "history", _SYNCED, width=self.px_width + 20, height=self.px_height + 50
        )
