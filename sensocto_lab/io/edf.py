"""EDF, EDF+ and BDF files read into a :class:`~sensocto_lab.io.recording.Recording`.

pyedflib reads the file. Each signal keeps its own rate and its physical values and
unit (``physical = (digital − dmin)·(pmax − pmin)/(dmax − dmin) + pmin``); all
signals of one file are one sensor (the file's name, made safe), one attribute per
signal label. EDF+ annotations become marker events (``source="import"``) with their
onset and duration. EDF gives the start as a local date and time without a zone; it
is read as UTC (pass ``start_ns=`` for another zone).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np

from sensocto_lab.errors import ValidationError
from sensocto_lab.events import Event
from sensocto_lab.io.recording import (
    Channel,
    Recording,
    Stream,
    channel_kind,
    check_rate,
    safe_id,
    unique_ids,
)

__all__ = ["read_edf"]


def read_edf(
    path: str | os.PathLike[str], *, start_ns: int | None = None, sensor_id: str | None = None
) -> Recording:
    """Read an EDF/EDF+/BDF file into a :class:`Recording`.

    Parameters
    ----------
    path
        The ``.edf`` / ``.bdf`` file.
    start_ns
        Epoch time of the first data record, ns (default: the header's start, as UTC).
    sensor_id
        The sensor every signal is stored under (default: the file's stem, made safe).

    Returns
    -------
    Recording
        One single-channel :class:`Stream` per signal (float64 physical values, the
        header's physical dimension as unit, its own rate), and the annotations as
        marker events.

    Raises
    ------
    ValidationError
        ``corrupt_file`` (pyedflib cannot read it: truncated, bad header),
        ``no_channels`` (no signal), ``invalid_rate`` (a signal without a usable rate).
    """
    import pyedflib

    file = Path(path)
    try:
        reader = pyedflib.EdfReader(str(file))
    except (OSError, ValueError) as exc:
        raise ValidationError(
            f"{file.name} is not a readable EDF file: {exc}", reason="corrupt_file"
        ) from exc
    try:
        n = reader.signals_in_file
        if n == 0:
            raise ValidationError(f"{file.name} has no signals", reason="no_channels")
        if start_ns is None:
            when = reader.getStartdatetime().replace(tzinfo=dt.UTC)
            start_ns = int(when.timestamp()) * 10**9 + when.microsecond * 1000
        sensor = sensor_id or safe_id(file.stem, "edf")
        labels = [reader.getLabel(i).strip() for i in range(n)]
        attrs = unique_ids(safe_id(label, f"ch{i}") for i, label in enumerate(labels))
        streams = []
        for i in range(n):
            rate = check_rate(reader.getSampleFrequency(i), f"{file.name}: signal {labels[i]!r}")
            if rate <= 0:
                raise ValidationError(
                    f"{file.name}: signal {labels[i]!r} has no sampling rate",
                    reason="invalid_rate",
                )
            values = np.asarray(reader.readSignal(i), dtype=np.float64)
            ts = start_ns + np.round(np.arange(len(values)) * (1e9 / rate)).astype(np.int64)
            unit = reader.getPhysicalDimension(i).strip()
            label = labels[i] or f"ch{i}"
            channel = Channel(label, attrs[i], unit, channel_kind(label, "", values.dtype))
            streams.append(
                Stream(
                    name=label,
                    sensor_id=sensor,
                    stream_type=reader.getTransducer(i).strip(),
                    rate_hz=rate,
                    ts=ts,
                    values=values.reshape(-1, 1),
                    channels=(channel,),
                    info={
                        "physical_min": float(reader.getPhysicalMinimum(i)),
                        "physical_max": float(reader.getPhysicalMaximum(i)),
                        "digital_min": int(reader.getDigitalMinimum(i)),
                        "digital_max": int(reader.getDigitalMaximum(i)),
                        "prefilter": reader.getPrefilter(i).strip(),
                    },
                )
            )
        onsets, durations, texts = reader.readAnnotations()
    except OSError as exc:
        raise ValidationError(
            f"{file.name} is not a readable EDF file: {exc}", reason="corrupt_file"
        ) from exc
    finally:
        reader.close()
    events = []
    for onset, duration, text in zip(onsets, durations, texts, strict=True):
        label = "".join(" " if ord(c) < 32 else c for c in str(text)).strip()[:256]
        if not label:
            continue
        span = float(duration) if np.isfinite(duration) and duration > 0 else 0.0
        events.append(
            Event(start_ns + round(float(onset) * 1e9), label, duration_s=span, source="import")
        )
    events.sort(key=lambda e: e.onset_ns)
    return Recording(file.name, "edf", start_ns, tuple(streams), tuple(events))
