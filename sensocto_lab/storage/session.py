"""Session metadata: the ``session.json`` sidecar of a data directory.

What a recording was: its name, when it started and ended, its rooms, which
participant wore which sensor (and in what role), free-text notes, and the version
of sensocto_lab that recorded it. :class:`SessionInfo` is the immutable value;
:func:`load` and :func:`save` are the file's edge. ``save`` is atomic and durable (a
temporary, fsynced, renamed over the old file, the directory fsynced), so a crash
leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from sensocto_lab.errors import StorageError, ValidationError
from sensocto_lab.model import check_id
from sensocto_lab.storage.health import Health, storage_error
from sensocto_lab.storage.wal import fsync_dir

__all__ = ["SESSION_FILE", "SessionInfo", "SessionKeeper", "check_text", "load", "save"]

log = logging.getLogger(__name__)

SESSION_FILE = "session.json"
_FORMAT = 1
_MAX_TEXT = {"name": 256, "role": 64, "notes": 65_536}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # newlines and tabs are fine in notes


def check_text(value: object, what: str) -> str:
    """``value`` if it is a string of at most the field's length without control characters."""
    limit = _MAX_TEXT[what]
    if not isinstance(value, str) or len(value) > limit or _CONTROL.search(value):
        raise ValidationError(
            f"{what} must be text of at most {limit} characters, got {value!r:.60}",
            reason=f"invalid_{what}",
        )
    return value


def _iso(ns: int | None) -> str | None:
    return None if ns is None else str(np.datetime64(ns, "ns")) + "Z"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a recording was (immutable; the store hands out a new one on each change).

    Attributes
    ----------
    name, notes
        Free text ('' when unset).
    start_ns, end_ns
        ns since the epoch (UTC): when the data directory was first opened for writing,
        and when the session was ended (``None`` while it runs, or for a directory
        recorded before sessions were kept).
    rooms
        Every room a sample or event was recorded in, sorted.
    participants
        ``{participant: {sensor_id: role or None}}``; a sensor belongs to one
        participant at a time.
    software_version
        ``sensocto_lab.__version__`` of the store that created the session.
    """

    name: str = ""
    start_ns: int | None = None
    end_ns: int | None = None
    rooms: tuple[str, ...] = ()
    participants: Mapping[str, Mapping[str, str | None]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    notes: str = ""
    software_version: str = ""

    def participant_of(self, sensor_id: str) -> str | None:
        """The participant ``sensor_id`` is assigned to, or None."""
        for participant, sensors in self.participants.items():
            if sensor_id in sensors:
                return participant
        return None

    def role_of(self, sensor_id: str) -> str | None:
        """The role of ``sensor_id`` on its participant, or None."""
        for sensors in self.participants.values():
            if sensor_id in sensors:
                return sensors[sensor_id]
        return None

    def with_assignment(self, sensor_id: str, participant: str, role: str | None) -> SessionInfo:
        """This session with ``sensor_id`` worn by ``participant`` (moved if it was another's)."""
        check_id(sensor_id, "sensor_id")
        check_id(participant, "participant")
        if role is not None:
            check_text(role, "role")
        out: dict[str, dict[str, str | None]] = {}
        for p, sensors in self.participants.items():
            kept = {s: r for s, r in sensors.items() if s != sensor_id}
            if kept or p == participant:
                out[p] = kept
        out.setdefault(participant, {})[sensor_id] = role
        return replace(self, participants=_frozen(out))

    def with_rooms(self, rooms: set[str]) -> SessionInfo:
        """This session with ``rooms`` added."""
        return replace(self, rooms=tuple(sorted(set(self.rooms) | rooms)))

    def to_json(self) -> dict[str, Any]:
        """The ``session.json`` document (times as ns and as ISO-8601 UTC)."""
        return {
            "format": _FORMAT,
            "name": self.name,
            "start": _iso(self.start_ns),
            "start_ns": self.start_ns,
            "end": _iso(self.end_ns),
            "end_ns": self.end_ns,
            "rooms": list(self.rooms),
            "participants": {p: dict(s) for p, s in self.participants.items()},
            "notes": self.notes,
            "software_version": self.software_version,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SessionInfo:
        """Parse a ``session.json`` document (raises ``KeyError``/``TypeError`` if malformed)."""
        parts = doc.get("participants") or {}
        return cls(
            name=str(doc.get("name") or ""),
            start_ns=None if doc.get("start_ns") is None else int(doc["start_ns"]),
            end_ns=None if doc.get("end_ns") is None else int(doc["end_ns"]),
            rooms=tuple(sorted(str(r) for r in doc.get("rooms") or ())),
            participants=_frozen({str(p): dict(s) for p, s in parts.items()}),
            notes=str(doc.get("notes") or ""),
            software_version=str(doc.get("software_version") or ""),
        )


def _frozen(
    participants: Mapping[str, Mapping[str, str | None]],
) -> Mapping[str, Mapping[str, str | None]]:
    return MappingProxyType({p: MappingProxyType(dict(s)) for p, s in participants.items()})


def load(data_dir: Path) -> SessionInfo | None:
    """The session of ``data_dir``, or None if it has no ``session.json``.

    Raises
    ------
    StorageError
        The file cannot be read or is not a session (``reason="corrupt_session"``).
    """
    path = data_dir / SESSION_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error(f"cannot read {SESSION_FILE}", exc) from exc
    try:
        return SessionInfo.from_json(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StorageError(
            f"{SESSION_FILE} is not a session document: {exc}", reason="corrupt_session"
        ) from exc


def save(data_dir: Path, info: SessionInfo) -> None:
    """Write ``info`` to ``{data_dir}/session.json`` atomically and durably.

    Raises
    ------
    StorageError
        It could not be written (``reason="disk_full"`` when out of space); the old
        file, if any, is unchanged.
    """
    path = data_dir / SESSION_FILE
    tmp = path.with_name(f"{SESSION_FILE}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(info.to_json(), f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(data_dir)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise storage_error(f"cannot write {SESSION_FILE}", exc) from exc


class SessionKeeper:
    """The session of a writable store: held in memory, saved on every change.

    Thread-safe. Rooms are passed in by the store (those of its series), so a new
    room costs the append path nothing; they reach the file with the next change
    or at close.
    """

    def __init__(self, data_dir: Path, health: Health) -> None:
        self._dir = data_dir
        self._health = health
        self._lock = threading.Lock()
        self._info = SessionInfo()
        self._rooms_saved: set[str] = set()

    def start(self, now_ns: int, version: str, rooms: set[str]) -> None:
        """Continue the directory's session, or start one at ``now_ns`` (and save it)."""
        found = load(self._dir) or SessionInfo(start_ns=now_ns, software_version=version)
        with self._lock:
            self._info = found
        self.change(lambda info: info, rooms, force=True)

    def current(self, rooms: set[str]) -> SessionInfo:
        """The session with ``rooms`` included."""
        with self._lock:
            return self._info.with_rooms(rooms)

    def change(
        self,
        change: Callable[[SessionInfo], SessionInfo],
        rooms: set[str],
        *,
        quiet: bool = False,
        force: bool = False,
    ) -> None:
        """Apply ``change`` and save, if anything changed (or ``force``).

        Raises
        ------
        StorageError
            The file could not be written (recorded in the health); with ``quiet`` it
            is logged instead, and the session in memory stays as it was.
        """
        with self._lock:
            updated = change(self._info).with_rooms(rooms)
            same = updated == self._info and set(updated.rooms) == self._rooms_saved
            if same and not force:
                return
            try:
                save(self._dir, updated)
            except StorageError as exc:
                self._health.failed("session", exc)
                if not quiet:
                    raise
                log.warning("%s", exc)
                return
            self._health.succeeded("session")
            self._info = updated
            self._rooms_saved = set(updated.rooms)
