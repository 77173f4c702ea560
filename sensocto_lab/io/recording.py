"""The neutral in-memory recording that every reader returns and the importer stores.

A file read by :func:`~sensocto_lab.io.read_xdf` or :func:`~sensocto_lab.io.read_edf`
becomes a :class:`Recording`: streams of samples (each with its own rate, one or more
channels sharing timestamps) and a list of :class:`~sensocto_lab.events.Event` (XDF
string streams, EDF+ annotations). Timestamps are ``int64`` ns since the epoch (UTC),
as everywhere in the model (``docs/architecture.md``, "Model"), so a recording can be
stored exactly like data the engine recorded.

Each channel is given the sensor and attribute ids it will be stored under, made safe
for :func:`~sensocto_lab.model.check_id` (:func:`safe_id`); the original names stay
in ``Channel.label`` and ``Stream.name``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sensocto_lab.errors import ValidationError
from sensocto_lab.events import Event
from sensocto_lab.model import KINDS, KindSpec, resolve_kind

__all__ = ["Channel", "Recording", "Stream", "channel_kind", "safe_id", "unique_ids"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]+")


def safe_id(name: object, fallback: str) -> str:
    """``name`` as an identifier :func:`~sensocto_lab.model.check_id` accepts.

    Accents are folded to ASCII (``"Müller"`` → ``"Muller"``), every other character
    outside ``[A-Za-z0-9_.:-]`` becomes ``_``, a leading separator is dropped and the
    result is cut to 128 characters; a name with nothing usable left gives ``fallback``.
    """
    text = unicodedata.normalize("NFKD", str(name or "")).encode("ascii", "ignore").decode()
    text = _UNSAFE.sub("_", text).lstrip("_.:-")[:128].rstrip("_")
    return text or fallback


def unique_ids(names: Iterable[str]) -> list[str]:
    """``names`` with repeats made distinct by a ``-2``, ``-3``, ... suffix."""
    seen: dict[str, int] = {}
    out: list[str] = []
    taken: set[str] = set()
    for name in names:
        candidate = name
        while candidate in taken:
            seen[name] = seen.get(name, 1) + 1
            candidate = f"{name[:120]}-{seen[name]}"
        taken.add(candidate)
        out.append(candidate)
    return out


def channel_kind(label: str, stream_type: str, dtype: np.dtype[Any]) -> KindSpec:
    """The scalar kind a channel is stored as.

    A known scalar kind named by the channel label or the stream type (``"ECG"`` →
    ``ecg``) when its dtype holds the channel's values exactly; otherwise ``numeric``
    (float64), so numbers are kept as they were sent.
    """
    for candidate in (label, stream_type):
        kind = resolve_kind(candidate)
        if kind.name != "numeric" and kind.width == 1 and np.can_cast(dtype, kind.dtype, "safe"):
            return kind
    return KINDS["numeric"]


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel of a stream.

    Attributes
    ----------
    label
        The name the file gave it (``"Fp1"``, ``"ECG I"``), or ``ch{i}``.
    attribute_id
        The attribute it is stored as (safe, unique within the sensor).
    unit
        Physical unit as the file gives it ('' when unknown).
    kind
        The model kind it is stored as (see :func:`channel_kind`).
    """

    label: str
    attribute_id: str
    unit: str
    kind: KindSpec


@dataclass(frozen=True, slots=True, eq=False)
class Stream:
    """Samples of channels that share timestamps (an XDF stream, an EDF signal).

    Attributes
    ----------
    name
        The stream's or signal's name in the file.
    sensor_id
        The sensor its channels are stored under.
    stream_type
        The content type (``"EEG"``, ``"ECG"``), '' when unknown.
    rate_hz
        Nominal sampling rate in Hz; 0 for an irregular stream.
    ts
        ``int64`` ns since the epoch, shape ``(n,)``, non-decreasing.
    values
        Shape ``(n, len(channels))``, in the file's numeric dtype.
    channels
        One :class:`Channel` per column of ``values``.
    info
        What else the file says about the stream (source id, host, clock offsets).
    """

    name: str
    sensor_id: str
    stream_type: str
    rate_hz: float
    ts: npt.NDArray[np.int64]
    values: npt.NDArray[Any]
    channels: tuple[Channel, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def __str__(self) -> str:
        return (
            f"Stream({self.name!r} → {self.sensor_id}, {len(self.channels)} ch, "
            f"{self.rate_hz:g} Hz, n={len(self)})"
        )


@dataclass(frozen=True, slots=True, eq=False)
class Recording:
    """What a file held, in the model's terms.

    Attributes
    ----------
    source
        The file's name (no directories).
    format
        ``"xdf"`` or ``"edf"``.
    start_ns
        The recording's start, ns since the epoch (UTC).
    streams
        Sampled streams (empty ones are left out and named in ``notes``).
    events
        Markers and annotations (``source="import"``).
    notes
        What the reader changed or left out, one sentence each.
    """

    source: str
    format: str
    start_ns: int
    streams: tuple[Stream, ...]
    events: tuple[Event, ...]
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"Recording({self.source!r}, {len(self.streams)} streams, {len(self.events)} events)"

    def summary(self) -> list[dict[str, Any]]:
        """One row per channel: sensor, attribute, label, unit, kind, rate and samples."""
        return [
            {
                "stream": s.name,
                "sensor": s.sensor_id,
                "attribute": c.attribute_id,
                "label": c.label,
                "unit": c.unit,
                "kind": c.kind.name,
                "rate_hz": s.rate_hz,
                "samples": len(s),
            }
            for s in self.streams
            for c in s.channels
        ]


def check_rate(rate: object, where: str) -> float:
    """A nominal rate in Hz (finite, >= 0), or :class:`ValidationError` ``invalid_rate``."""
    try:
        value = float(rate)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value < 0:
        raise ValidationError(
            f"{where}: the sampling rate must be a finite number of Hz >= 0, got {rate!r:.40}",
            reason="invalid_rate",
        )
    return value


def monotonic(ts: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], int]:
    """``ts`` made non-decreasing (each stamp at least the one before) and how many moved.

    Clock-corrected and dejittered stamps can step back by a little at a segment's
    border; the model needs them in order (as LSL's ``proc_monotonize`` does).
    """
    fixed = np.maximum.accumulate(ts) if len(ts) else ts
    return fixed, int(np.count_nonzero(fixed != ts))
