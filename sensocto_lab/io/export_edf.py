"""A data directory written as one EDF+ file (pyedflib), events as annotations.

One EDF signal per regular sensor-attribute (per component for vectors), at its own
rate, on the file's one timeline. EDF is continuous and has no "missing": a signal
that starts late, ends early or has a gap is padded with its nearest value, and each
padded span is named in an annotation ``"no data: <label>"``, so nothing is made up
silently. Irregular series (RR, heart-rate notifications, buttons; see
:mod:`sensocto_lab.io.series`) have no rate an EDF signal could carry: they are left
out and listed in the result (:func:`~sensocto_lab.io.to_csv` and
:func:`~sensocto_lab.io.to_bids` keep them as they are). A signal whose rate is not a
whole number of samples per data record (``record_s``) is left out the same way.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sensocto_lab.errors import ConfigError, StorageError
from sensocto_lab.io.series import Series, grid, load_series

__all__ = ["EdfExport", "edf_number", "to_edf"]

_MAX_GAP_NOTES = 1000


@dataclass(frozen=True, slots=True)
class EdfExport:
    """What :func:`to_edf` wrote.

    Attributes
    ----------
    path
        The EDF+ file.
    signals
        ``(label, "sensor/attribute[/component]", rate_hz)`` per EDF signal.
    skipped
        ``"sensor/attribute: why"`` for each series left out.
    annotations
        How many annotations were written (events and padded spans).
    """

    path: Path
    signals: tuple[tuple[str, str, float], ...]
    skipped: tuple[str, ...]
    annotations: int


def edf_number(x: float, up: bool) -> float:
    """``x`` rounded outward (up or down) to a number whose text fits EDF's 8 characters."""
    for digits in range(8, 0, -1):
        text = f"{x:.{digits}g}"
        if len(text) <= 8:
            value = float(text)
            if (value >= x) if up else (value <= x):
                return value
            step = 10.0 ** (np.floor(np.log10(abs(value) or 1.0)) - digits + 1)
            value = float(f"{value + (step if up else -step):.{digits}g}")
            if len(f"{value:.{digits}g}") <= 8 and ((value >= x) if up else (value <= x)):
                return value
    raise ConfigError(f"{x} cannot be written as an EDF physical limit", reason="edf_range")


def _limits(col: npt.NDArray[np.float64]) -> tuple[float, float]:
    finite = col[np.isfinite(col)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    pad = max((hi - lo) * 1e-3, abs(hi) * 1e-6, 1e-6)
    return edf_number(lo - pad, up=False), edf_number(hi + pad, up=True)


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.view(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _hold(col: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """NaNs filled with the previous value (the first ones with the first value)."""
    ok = np.isfinite(col)
    if not ok.any():
        return np.zeros_like(col)
    idx = np.where(ok, np.arange(len(col)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = col[idx]
    out[: np.argmax(ok)] = col[np.argmax(ok)]
    return out


def _labels(names: list[tuple[str, str]]) -> list[str]:
    """EDF labels (16 characters): the column alone where no other sensor has it, else
    ``sensor:column``, cut with a ``~i`` suffix where two would read the same."""
    counts: dict[str, int] = {}
    for _, column in names:
        counts[column] = counts.get(column, 0) + 1
    out: list[str] = []
    for i, (sensor, column) in enumerate(names):
        name = column if counts[column] == 1 else f"{sensor}:{column}"
        label = name[:16]
        if label in out:
            tag = f"~{i}"
            label = name[: 16 - len(tag)] + tag
        out.append(label)
    return out


def to_edf(
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    room: str | None = None,
    *,
    sensors: list[str] | None = None,
    record_s: int = 1,
) -> EdfExport:
    """Write the recorded series of ``data_dir`` (of ``room``) to the EDF+ file ``out``.

    Parameters
    ----------
    data_dir
        A data directory (read-only; an engine may still be recording into it).
    out
        The ``.edf`` file to write (its folder must exist).
    room, sensors
        Only these (``None``: all).
    record_s
        Length of an EDF data record, s: every exported rate times it must be whole.

    Returns
    -------
    EdfExport
        The signals written (label, source, rate) and the series left out, with why
        (see the module docstring for what EDF does with irregular series and gaps).
        The file starts at the whole second at or before the first sample; each
        signal is placed as :func:`~sensocto_lab.io.series.grid` says; values are
        stored as 16-bit integers between each signal's physical limits (resolution
        ``(pmax − pmin) / 65535``).
    """
    import pyedflib

    if record_s < 1:
        raise ConfigError("record_s must be a whole number of seconds >= 1")
    series, events, _ = load_series(data_dir, room, sensors)
    kept: list[Series] = []
    skipped: list[str] = []
    for s in series:
        per_record = s.rate_hz * record_s
        if not s.regular:
            skipped.append(f"{s.sensor}/{s.attribute}: irregular (no fixed rate)")
        elif abs(per_record - round(per_record)) > 1e-6 * per_record:
            skipped.append(f"{s.sensor}/{s.attribute}: {s.rate_hz:g} Hz is not whole per record")
        else:
            kept.append(s)
    if not kept:
        raise StorageError("no regular series to write as EDF signals", reason="no_data")
    # Whole seconds: pyedflib 0.1.42 scales EDF+'s subsecond start wrongly both ways.
    start_ns = min(int(s.ts[0]) for s in kept) // 10**9 * 10**9
    end_ns = max(int(s.ts[-1]) for s in kept)
    n_records = max(1, int(np.ceil((end_ns - start_ns) / 1e9 / record_s + 1e-9)))

    columns: list[npt.NDArray[np.float64]] = []
    headers: list[dict[str, str | int | float | None]] = []
    sources: list[tuple[str, float]] = []
    gaps: list[tuple[float, float, str]] = []
    names: list[tuple[str, str]] = []
    for s in kept:
        n = round(s.rate_hz * record_s) * n_records
        placed = grid(s.ts, s.values, s.rate_hz, start_ns, n)
        for c, column in enumerate(s.columns):
            col = placed[:, c]
            names.append((s.sensor, column))
            sources.append((f"{s.sensor}/{column}", s.rate_hz))
            lo, hi = _limits(col)
            headers.append(
                {
                    "label": "",
                    "dimension": s.unit[:8],
                    "sample_frequency": s.rate_hz,
                    "physical_min": lo,
                    "physical_max": hi,
                    "digital_min": -32768,
                    "digital_max": 32767,
                    "transducer": f"sensocto {s.sensor}/{column}"[:80],
                    "prefilter": "",
                }
            )
            columns.append(np.clip(_hold(col), lo, hi))
        for a, b in _runs(np.asarray(~np.isfinite(placed).all(axis=1))):
            gaps.append((a / s.rate_hz, (b - a) / s.rate_hz, f"{s.sensor}:{s.attribute}"))
    for header, label in zip(headers, _labels(names), strict=True):
        header["label"] = label

    path = Path(out)
    writer = pyedflib.EdfWriter(str(path), len(columns), file_type=pyedflib.FILETYPE_EDFPLUS)
    annotations = 0
    try:
        if record_s != 1:
            writer.setDatarecordDuration(record_s)
        writer.setSignalHeaders(headers)
        start = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=start_ns // 10**9)
        writer.setStartdatetime(start)
        writer.setRecordingAdditional("sensocto_lab_export")
        writer.writeSamples(columns)
        for row in events.itertuples():
            onset = (row.onset.value - start_ns) / 1e9
            if onset < 0:
                continue
            span = float(row.duration) if np.isfinite(row.duration) else -1.0
            writer.writeAnnotation(onset, span, str(row.label))
            annotations += 1
        for onset, span, label in gaps[:_MAX_GAP_NOTES]:
            writer.writeAnnotation(onset, span, f"no data: {label}")
            annotations += 1
    finally:
        writer.close()
    signals = tuple(
        (str(h["label"]), src, rate) for h, (src, rate) in zip(headers, sources, strict=True)
    )
    return EdfExport(path, signals, tuple(skipped), annotations)
