"""A file's recording stored in a data directory, exactly like recorded data.

``import_file(path, data_dir, room="lab")`` reads an XDF or EDF file, validates every
batch against its kind *before* the store is opened (a bad file stores nothing), then
appends the samples with :meth:`TieredStore.append` and the markers with
:meth:`TieredStore.append_events`, so ``history``, synchrony and replay read an
imported session as they read a live one (same Parquet layout, ``docs/storage.md``).

The file's SHA-256 is recorded in ``{data_dir}/interop/imports/{sha}.json`` (with each
series' unit, rate and label, see :mod:`sensocto_lab.io.meta`): importing the same
file again changes nothing and returns the first import's result with
``skipped=True``. The record is written as ``"writing"`` before the first append and
``"done"`` after the last, so an import cut short (a crash, a full disk) is reported
(``StorageError`` reason ``import_incomplete``) instead of being stored twice.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sensocto_lab.errors import StorageError, ValidationError
from sensocto_lab.io.edf import read_edf
from sensocto_lab.io.meta import INTEROP_DIR, read_json, write_json
from sensocto_lab.io.recording import Recording
from sensocto_lab.io.xdf import read_xdf
from sensocto_lab.model import Batch, KindSpec, check_id
from sensocto_lab.storage.config import StorageConfig
from sensocto_lab.storage.tiered import TieredStore

__all__ = ["ImportResult", "import_file", "read_file"]

#: Samples per stored batch (the model allows 500 000).
CHUNK = 100_000
_READERS = {".xdf": read_xdf, ".xdfz": read_xdf, ".edf": read_edf, ".bdf": read_edf}


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import stored.

    Attributes
    ----------
    source, sha256
        The file's name and content hash.
    room
        The room it was stored under.
    series
        ``(sensor, attribute)`` pairs stored.
    samples, events
        How many samples (over all series) and events were stored.
    skipped
        True when the file had been imported before and nothing was stored now.
    notes
        What the reader changed or left out.
    """

    source: str
    sha256: str
    room: str
    series: tuple[tuple[str, str], ...]
    samples: int
    events: int
    skipped: bool = False
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        what = "already imported" if self.skipped else "imported"
        return (
            f"{self.source} {what}: {len(self.series)} series, {self.samples} samples, "
            f"{self.events} events in room {self.room!r}"
        )


def read_file(path: str | os.PathLike[str]) -> Recording:
    """Read an XDF or EDF/BDF file by its suffix (:class:`ValidationError` for others)."""
    file = Path(path)
    reader = _READERS.get(file.suffix.lower())
    if reader is None:
        raise ValidationError(
            f"cannot import {file.name}: known suffixes are {', '.join(_READERS)}",
            reason="unknown_format",
        )
    if not file.is_file():
        raise ValidationError(f"no file {file}", reason="no_such_file")
    return reader(file)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _batches(recording: Recording) -> list[tuple[Batch, KindSpec]]:
    """Every channel's samples as validated batches of at most :data:`CHUNK` samples."""
    out = []
    for stream in recording.streams:
        for col, channel in enumerate(stream.channels):
            values = stream.values[:, col]
            for lo in range(0, len(stream), CHUNK):
                batch = Batch(
                    stream.sensor_id,
                    channel.attribute_id,
                    stream.ts[lo : lo + CHUNK],
                    values[lo : lo + CHUNK],
                )
                try:
                    out.append((batch.validated(channel.kind), channel.kind))
                except ValidationError as exc:
                    raise ValidationError(
                        f"{recording.source}: {stream.name}/{channel.label}: {exc.detail}",
                        reason=exc.reason,
                    ) from exc
    return out


def _result_of(doc: dict[str, Any]) -> ImportResult:
    return ImportResult(
        source=str(doc["source"]),
        sha256=str(doc["sha256"]),
        room=str(doc["room"]),
        series=tuple((str(r["sensor"]), str(r["attribute"])) for r in doc["series"]),
        samples=int(doc["samples"]),
        events=int(doc["events"]),
        skipped=True,
        notes=tuple(doc.get("notes", ())),
    )


def import_file(
    path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    *,
    room: str = "default",
    recording: Recording | None = None,
) -> ImportResult:
    """Store the file at ``path`` in ``data_dir`` as recorded data of ``room``.

    Parameters
    ----------
    path
        An ``.xdf``, ``.edf`` or ``.bdf`` file.
    data_dir
        The data directory (created if needed). No engine may be recording into it
        (the store's lock: :class:`StorageError` ``data_dir_locked``).
    room
        The room the samples and events are stored under.
    recording
        The file already read (by :func:`read_xdf` / :func:`read_edf` with options).

    Returns
    -------
    ImportResult
        With ``skipped=True`` (and nothing stored) when this file was imported before.

    Raises
    ------
    ValidationError
        The file cannot be read or breaks the model (nothing is stored).
    StorageError
        The store cannot be written, or an earlier import of this file was cut short
        (``import_incomplete``).
    """
    check_id(room, "room")
    file = Path(path)
    if not file.is_file():
        raise ValidationError(f"no file {file}", reason="no_such_file")
    sha = _sha256(file)
    record = Path(data_dir) / INTEROP_DIR / "imports" / f"{sha}.json"
    previous = read_json(record)
    if previous is not None:
        if previous.get("state") == "done":
            return _result_of(previous)
        raise StorageError(
            f"an earlier import of {file.name} into {data_dir} was cut short; its samples "
            f"may be partly stored (delete {record.name} to import again anyway)",
            reason="import_incomplete",
        )
    rec = recording if recording is not None else read_file(file)
    batches = _batches(rec)
    events = [replace(e, room=room).validated() for e in rec.events]
    if not batches and not events:
        raise ValidationError(f"{file.name} holds nothing to import", reason="no_data")
    doc: dict[str, Any] = {
        "source": rec.source,
        "sha256": sha,
        "format": rec.format,
        "room": room,
        "state": "writing",
        "imported_at_ns": time.time_ns(),
        "start_ns": rec.start_ns,
        "series": rec.summary(),
        "samples": int(sum(len(b) for b, _ in batches)),
        "events": len(events),
        "notes": list(rec.notes),
        "streams": [
            {"name": s.name, "sensor": s.sensor_id, "type": s.stream_type, **_plain(s.info)}
            for s in rec.streams
        ],
    }
    # No background threads: nothing to fsync or compact while appending, and the
    # close compacts in this process instead of starting the compaction worker.
    store = TieredStore.open(data_dir, StorageConfig(background=False))
    try:
        write_json(record, doc)
        recv = store.session.start_ns or time.time_ns()
        for batch, kind in batches:
            seq = store.next_seq(batch.sensor_id, batch.attribute_id)
            store.append(batch.stamped(recv, seq), room=room, kind=kind)
        if events:
            store.append_events(events)
        store.flush()
    finally:
        store.close()
    write_json(record, {**doc, "state": "done"})
    return ImportResult(
        rec.source,
        sha,
        room,
        tuple((r["sensor"], r["attribute"]) for r in doc["series"]),
        doc["samples"],
        len(events),
        notes=rec.notes,
    )


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in info.items():
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
