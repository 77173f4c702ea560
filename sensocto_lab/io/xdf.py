"""XDF files (LabRecorder's format) read into a :class:`~sensocto_lab.io.recording.Recording`.

pyxdf does the reading with its defaults: clock offsets applied (a linear fit per
clock segment, resets detected), then regular streams dejittered. pyxdf reads on past
a damaged chunk and only logs it; this module first walks the file's chunk lengths
and stream headers itself (the layout in ``docs/`` and RESEARCH's XDF notes: magic
``XDF:``, then varlen length, uint16 tag, content), so a truncated or corrupt file, an
unknown channel format, a stream without channels or a NaN rate is refused with a
:class:`~sensocto_lab.errors.ValidationError` before anything is returned.

XDF timestamps are the recording machine's LSL clock (seconds since it booted). They
are placed on the epoch by the file header's ``datetime`` (LabRecorder writes the
moment it started): the earliest sample of the file is taken to be at that moment,
and every stamp keeps its distance from it. Without a ``datetime`` the file's
modification time is used; ``start_ns=`` overrides both.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import os
import struct
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError, fromstring

import numpy as np

from sensocto_lab.errors import ValidationError
from sensocto_lab.events import Event
from sensocto_lab.io.recording import (
    Channel,
    Recording,
    Stream,
    channel_kind,
    check_rate,
    monotonic,
    safe_id,
    unique_ids,
)

__all__ = ["FORMATS", "read_xdf"]

#: XDF channel formats and the numpy dtype of their values (``string`` → events).
FORMATS: dict[str, str] = {
    "float32": "float32",
    "double64": "float64",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "string": "object",
}
_TAGS = {1, 2, 3, 4, 5, 6}


def _corrupt(path: Path, what: str) -> ValidationError:
    return ValidationError(f"{path.name} is not a readable XDF file: {what}", reason="corrupt_file")


def _varlen(data: memoryview, pos: int, path: Path) -> tuple[int, int]:
    if pos >= len(data):
        raise _corrupt(path, f"truncated at byte {pos}")
    width = data[pos]
    fmt = {1: "<B", 4: "<I", 8: "<Q"}.get(width)
    if fmt is None:
        raise _corrupt(path, f"bad length field ({width}) at byte {pos}")
    end = pos + 1 + width
    if end > len(data):
        raise _corrupt(path, f"truncated at byte {pos}")
    return struct.unpack_from(fmt, data, pos + 1)[0], end


def _check_header(xml: bytes, stream_id: int, path: Path) -> None:
    try:
        info = fromstring(xml.decode("utf-8", "replace"))
    except ParseError as exc:
        raise _corrupt(path, f"stream {stream_id}'s header is not XML ({exc})") from None
    name = info.findtext("name") or f"stream {stream_id}"
    fmt = (info.findtext("channel_format") or "").strip()
    if fmt not in FORMATS:
        raise ValidationError(
            f"{path.name}: stream {name!r} has channel format {fmt!r}; known: {', '.join(FORMATS)}",
            reason="unknown_channel_format",
        )
    count = (info.findtext("channel_count") or "").strip()
    if not count.isdigit() or int(count) < 1:
        raise ValidationError(
            f"{path.name}: stream {name!r} has {count or 'no'} channels; at least 1 is needed",
            reason="no_channels",
        )
    check_rate((info.findtext("nominal_srate") or "").strip(), f"{path.name}: stream {name!r}")


def scan(path: Path) -> None:
    """Walk every chunk of ``path``; raise :class:`ValidationError` on anything malformed.

    Reasons: ``corrupt_file`` (no magic, a bad length, a chunk running past the end, an
    unknown tag, header XML that does not parse), ``unknown_channel_format``,
    ``no_channels``, ``invalid_rate``.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # .xdfz: the same layout, gzip-compressed
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise _corrupt(path, f"its gzip stream is damaged ({exc})") from None
    data = memoryview(raw)
    if bytes(data[:4]) != b"XDF:":
        raise _corrupt(path, "it does not start with 'XDF:'")
    pos, headers = 4, 0
    while pos < len(data):
        length, pos = _varlen(data, pos, path)
        end = pos + length
        if length < 2 or end > len(data):
            raise _corrupt(path, f"a chunk at byte {pos} runs past the end (truncated?)")
        (tag,) = struct.unpack_from("<H", data, pos)
        if tag not in _TAGS:
            raise _corrupt(path, f"unknown chunk tag {tag} at byte {pos}")
        if tag == 2:
            if length < 6:
                raise _corrupt(path, f"a stream header at byte {pos} is too short")
            (stream_id,) = struct.unpack_from("<I", data, pos + 2)
            _check_header(bytes(data[pos + 6 : end]), stream_id, path)
            headers += 1
        pos = end
    if headers == 0:
        raise ValidationError(f"{path.name} holds no stream", reason="no_streams")


class _Errors(logging.Handler):
    """Collects what pyxdf logs as errors (it reads past damage instead of raising)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _first(info: dict[str, Any], key: str, default: str = "") -> str:
    value = info.get(key)
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return default


def _channel_meta(info: dict[str, Any], n: int) -> list[tuple[str, str]]:
    """(label, unit) per channel from ``desc/channels/channel``, ``ch{i}`` / '' without."""
    out = [(f"ch{i}", "") for i in range(n)]
    try:
        channels = info["desc"][0]["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        return out
    for i, ch in enumerate(channels[:n]):
        if isinstance(ch, dict):
            out[i] = (_first(ch, "label", f"ch{i}") or f"ch{i}", _first(ch, "unit"))
    return out


def _start_ns(header: dict[str, Any] | None, path: Path) -> int:
    text = _first((header or {}).get("info") or {}, "datetime") if header else ""
    if text:
        for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S"):
            try:
                when = dt.datetime.strptime(text.strip(), fmt)
            except ValueError:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return int(when.timestamp()) * 10**9 + when.microsecond * 1000
    return os.stat(path).st_mtime_ns


def read_xdf(
    path: str | os.PathLike[str], *, start_ns: int | None = None, **pyxdf_options: Any
) -> Recording:
    """Read an XDF file into a :class:`Recording`.

    Parameters
    ----------
    path
        The ``.xdf`` file.
    start_ns
        Epoch time of the file's earliest sample, ns (default: the header's
        ``datetime``, see the module docstring).
    **pyxdf_options
        Passed to ``pyxdf.load_xdf`` (default: its own: clock sync with reset
        handling, dejitter).

    Returns
    -------
    Recording
        One :class:`Stream` per numeric stream with samples (its dtype kept; sensor id
        from ``source_id``, else the name; channel labels and units from ``desc``),
        one marker :class:`Event` (``source="import"``) per sample of a string stream
        (channels joined by ``" | "``), and ``notes`` naming skipped empty streams.

    Raises
    ------
    ValidationError
        The file is damaged or breaks the format (see :func:`scan` for the reasons).
    """
    import pyxdf

    file = Path(path)
    scan(file)
    catcher = _Errors()
    logger = logging.getLogger("pyxdf")
    logger.addHandler(catcher)
    try:
        streams, header = pyxdf.load_xdf(str(file), **pyxdf_options)
    except (ValueError, KeyError, IndexError, struct.error, ParseError, OSError) as exc:
        raise _corrupt(file, f"pyxdf could not read it ({exc})") from exc
    finally:
        logger.removeHandler(catcher)
    if catcher.messages:
        raise _corrupt(file, catcher.messages[0])

    notes: list[str] = []
    kept = []
    for s in streams:
        info = s["info"]
        name = _first(info, "name", f"stream{info.get('stream_id')}")
        if len(s["time_stamps"]) == 0:
            notes.append(f"stream {name!r} has no samples and was skipped")
            continue
        kept.append(s)
    firsts = [float(s["time_stamps"][0]) for s in kept]
    t0 = min(firsts) if firsts else 0.0
    epoch0 = _start_ns(header, file) if start_ns is None else int(start_ns)

    numeric = [s for s in kept if _first(s["info"], "channel_format") != "string"]
    sensor_ids = unique_ids(
        safe_id(_first(s["info"], "source_id") or _first(s["info"], "name"), f"stream{i}")
        for i, s in enumerate(numeric)
    )
    out: list[Stream] = []
    events: list[Event] = []
    for s in kept:
        info = s["info"]
        name = _first(info, "name", "stream")
        stamps = np.asarray(s["time_stamps"], dtype=np.float64)
        ts = epoch0 + np.round((stamps - t0) * 1e9).astype(np.int64)
        ts, moved = monotonic(ts)
        if moved:
            notes.append(f"stream {name!r}: {moved} stamps stepped back and were held")
        offsets = {
            "clock_times": [float(x) for x in s.get("clock_times", [])],
            "clock_values": [float(x) for x in s.get("clock_values", [])],
        }
        if _first(info, "channel_format") == "string":
            for onset, sample in zip(ts.tolist(), s["time_series"], strict=True):
                label = " | ".join(str(v) for v in sample).strip()
                if not label:
                    continue
                events.append(
                    Event(int(onset), _clean_label(label), value={"stream": name}, source="import")
                )
            continue
        sensor_id = sensor_ids[numeric.index(s)]
        values = np.asarray(s["time_series"])
        meta = _channel_meta(info, values.shape[1])
        attrs = unique_ids(safe_id(label, f"ch{i}") for i, (label, _) in enumerate(meta))
        stype = _first(info, "type")
        channels = tuple(
            Channel(label, attr, unit, channel_kind(label, stype, values.dtype))
            for (label, unit), attr in zip(meta, attrs, strict=True)
        )
        out.append(
            Stream(
                name=name,
                sensor_id=sensor_id,
                stream_type=stype,
                rate_hz=check_rate(_first(info, "nominal_srate", "0"), f"stream {name!r}"),
                ts=ts,
                values=values,
                channels=channels,
                info={
                    "source_id": _first(info, "source_id"),
                    "hostname": _first(info, "hostname"),
                    "channel_format": _first(info, "channel_format"),
                    "effective_srate": float(info.get("effective_srate") or 0.0),
                    "lsl_t0_s": t0,
                    **offsets,
                },
            )
        )
    if not out and not events:
        raise ValidationError(f"{file.name} holds no samples and no markers", reason="no_data")
    events.sort(key=lambda e: e.onset_ns)
    return Recording(file.name, "xdf", epoch0, tuple(out), tuple(events), tuple(notes))


def _clean_label(text: str) -> str:
    """A marker's text as an event label: control characters to spaces, ≤ 256 characters."""
    cleaned = "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)
    return cleaned[:256]
