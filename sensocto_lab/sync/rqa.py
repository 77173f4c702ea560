"""Multidimensional recurrence quantification (mdRQA) without the T×T matrix.

Two samples ``i < j`` of the group's state ``x(t) ∈ R^N`` (each signal z-scored,
population SD, as multiSyncPy) recur when ``‖x(i) − x(j)‖ < r``. The recurrence
plot's diagonals are scanned one at a time (offset ``d = j − i``), so memory is
``O(N·T)`` instead of multiSyncPy's ``T×T`` distance matrix (73 GB for 64 signals
× 1 h at 25 Hz); with ``max_offset`` only the band ``1 ≤ d ≤ max_offset`` is
scanned, which is also ``max_offset / T`` of the time (banded mdRQA).

The measures follow multiSyncPy's ``rqa_metrics`` on the upper triangle without
the main diagonal: ``rec`` recurrent share of the cells scanned, ``det`` share of
recurrent points on diagonal lines of at least ``min_length``, ``mean_length``
the mean length of *all* diagonal lines (multiSyncPy counts lines of length 1 too;
the classic L averages lines ≥ ``min_length``, returned as ``mean_line_det``) and
``max_length``.

References
----------
Wallot, Roepstorff & Mønster (2016), Multidimensional recurrence quantification
analysis (MdRQA). *Front. Psychol.* 7:1835. multiSyncPy ``recurrence_matrix`` +
``rqa_metrics``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import xarray as xr

from sensocto_lab.physio.filters import invalid
from sensocto_lab.sync._progress import progress_bar

__all__ = ["rqa"]

FloatArray = npt.NDArray[np.float64]

#: Recurrence cells held at once (a block of diagonals; bounds memory).
BLOCK_CELLS = 4_000_000


def _embed(x: FloatArray, dimension: int | None, delay: int | None) -> FloatArray:
    if not (dimension and delay):
        return x
    length = x.shape[1] - delay * (dimension - 1)
    if length < 2:
        raise invalid("the embedding leaves fewer than two samples")
    return np.concatenate([x[:, k * delay : k * delay + length] for k in range(dimension)])


def _lines(rec: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Lengths of the runs of True in each row of ``rec`` (concatenated)."""
    padded = np.zeros((rec.shape[0], rec.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = rec
    edges = np.diff(padded, axis=1)
    starts = np.flatnonzero(edges.ravel() == 1)
    ends = np.flatnonzero(edges.ravel() == -1)
    return (ends - starts).astype(np.int64)


def rqa(
    signals: xr.DataArray | npt.ArrayLike,
    radius: float,
    *,
    normalise: bool = True,
    min_length: int = 2,
    max_offset: int | None = None,
    embedding_dimension: int | None = None,
    embedding_delay: int | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """mdRQA measures of a group's joint state, scanned diagonal by diagonal.

    Parameters
    ----------
    signals
        ``(sensor, time)`` raw signals, NaN-free (drop or bridge gaps first).
    radius
        Euclidean distance below which two states recur (in z-scores with
        ``normalise``).
    normalise
        z-score each signal first (mean 0, population SD 1), as multiSyncPy.
    min_length
        Shortest diagonal line that counts as deterministic.
    max_offset
        Scan only diagonals ``1 … max_offset`` samples off the main one (banded
        mdRQA: recurrences within ``max_offset`` samples); ``None``: all.
    embedding_dimension, embedding_delay
        Optional time-delay embedding (copies of the signals shifted by multiples of
        the delay, in samples), as multiSyncPy.
    progress
        tqdm bar over the diagonals (``None``: only in a notebook).

    Returns
    -------
    xarray.Dataset
        Scalars ``rec``, ``det``, ``mean_length``, ``max_length``, ``mean_line_det``
        and ``cells`` (cells scanned); attrs ``radius``, ``max_offset``.
    """
    x = np.asarray(signals.values if isinstance(signals, xr.DataArray) else signals, float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise invalid(f"expected (sensors, samples), got shape {x.shape}", "invalid_signal")
    if np.isnan(x).any():
        raise invalid("mdRQA needs gap-free signals (drop or bridge the gaps)", "invalid_signal")
    if radius <= 0 or min_length < 1:
        raise invalid(f"need radius > 0 and min_length >= 1, got {radius!r}, {min_length!r}")
    if normalise:
        with np.errstate(invalid="ignore", divide="ignore"):
            x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    x = _embed(x, embedding_dimension, embedding_delay)
    n = x.shape[1]
    last = n - 1 if max_offset is None else min(int(max_offset), n - 1)
    if last < 1:
        raise invalid(f"max_offset must be >= 1, got {max_offset!r}")
    r2 = float(radius) ** 2
    histogram = np.zeros(n + 1, dtype=np.int64)
    cells = 0
    xt = np.ascontiguousarray(x.T)  # (time, dims): a diagonal is a difference of row slices
    with progress_bar(last, "mdRQA diagonals", progress) as bar:
        d = 1
        while d <= last:
            # a block of offsets, each diagonal padded with False to the longest one's
            # length (padding ends a line, as the plot's edge does)
            count = max(1, min(last - d + 1, BLOCK_CELLS // max(1, n - d)))
            rec = np.zeros((count, n - d), dtype=bool)
            for k, off in enumerate(range(d, d + count)):
                diff = xt[off:] - xt[: n - off]
                rec[k, : n - off] = np.einsum("ij,ij->i", diff, diff) < r2
                cells += n - off
            np.add.at(histogram, _lines(rec), 1)
            bar.update(count)
            d += count
    lengths = np.arange(n + 1)
    points = int((histogram * lengths).sum())
    n_lines = int(histogram.sum())
    det_points = int((histogram[min_length:] * lengths[min_length:]).sum())
    det_lines = int(histogram[min_length:].sum())
    return xr.Dataset(
        {
            "rec": ((), points / cells, {"units": "1", "long_name": "recurrence rate"}),
            "det": ((), det_points / points if points else 0.0, {"units": "1"}),
            "mean_length": ((), points / n_lines if n_lines else 0.0, {"units": "samples"}),
            "max_length": ((), int(np.flatnonzero(histogram).max()) if n_lines else 0),
            "mean_line_det": (
                (),
                det_points / det_lines if det_lines else 0.0,
                {"units": "samples"},
            ),
            "cells": ((), cells),
        },
        attrs={
            "method": "mdRQA by diagonals (Wallot et al. 2016; multiSyncPy rqa_metrics)",
            "radius": radius,
            "min_length": min_length,
            "max_offset": last,
        },
    )
