"""Storage health: what failed last, and whether the store is failing now.

Pure bookkeeping (the clock is injected, no I/O). Each part of the store that writes
(``wal`` appends, ``fsync``, ``compaction``, ``session``) reports its failures and its
successes; the store is ``failing`` while any part's last attempt failed, and ``ok``
again once every failed part has succeeded since. The last error is kept after
recovery, for the record. Messages never carry absolute paths: ``/health`` may be
shown to people who should not learn the machine's directory layout.

:func:`storage_error` turns an :class:`OSError` into the
:class:`~sensocto_lab.errors.StorageError` the store raises, with ``reason="disk_full"``
when the disk (or quota) is full, so callers can tell that from a bug.
"""

from __future__ import annotations

import errno
import re
import threading
from dataclasses import dataclass
from typing import Any

from sensocto_lab.clock import Clock
from sensocto_lab.errors import StorageError

__all__ = ["DISK_FULL", "Failure", "Health", "scrub_paths", "storage_error"]

#: ``StorageError.reason`` of a write refused for lack of space (ENOSPC, EDQUOT).
DISK_FULL = "disk_full"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: An absolute path inside a message (quoted or bare), up to whitespace or a quote.
_ABS_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\":]+/)*[^\s'\":]*")


def scrub_paths(message: str) -> str:
    """``message`` with every absolute path reduced to its last component."""
    return _ABS_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "/", message)


def storage_error(action: str, exc: BaseException) -> StorageError:
    """The :class:`StorageError` for ``action`` (e.g. ``"cannot write the WAL"``) failing.

    ``reason`` is ``"disk_full"`` for ENOSPC/EDQUOT, else ``"storage_error"``; the
    message is ``"{action}: {strerror}"`` without the OS's absolute file name.
    """
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError):
        code = exc.errno
        why = exc.strerror or str(exc)
    else:  # pyarrow reports an OSError of its own writes as ArrowException text
        code = errno.ENOSPC if "No space left on device" in str(exc) else None
        why = str(exc)
    reason = DISK_FULL if code in _FULL_ERRNOS else "storage_error"
    return StorageError(f"{action}: {scrub_paths(why)}", reason=reason)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed storage operation: which part, why, what it said, when (ns)."""

    component: str
    reason: str
    message: str
    at_ns: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``/health``."""
        return {
            "component": self.component,
            "reason": self.reason,
            "message": self.message,
            "at": _iso(self.at_ns),
        }


def _iso(ns: int) -> str:
    import numpy as np

    return str(np.datetime64(ns, "ns").astype("datetime64[ms]")) + "Z"


class Health:
    """The store's health state, fed by its parts (thread-safe)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failing: dict[str, Failure] = {}
        self.last_error: Failure | None = None

    def failed(self, component: str, exc: BaseException) -> Failure:
        """Record that ``component`` failed with ``exc``; returns the record."""
        reason = getattr(exc, "reason", "storage_error")
        detail = getattr(exc, "detail", None) or str(exc)
        failure = Failure(component, reason, scrub_paths(detail), self._clock.time_ns())
        with self._lock:
            self._failing.setdefault(component, failure)  # keep when it started failing
            self.last_error = failure
        return failure

    def succeeded(self, component: str) -> None:
        """Record that ``component`` worked again (cheap when nothing is failing)."""
        if self._failing:
            with self._lock:
                self._failing.pop(component, None)

    @property
    def ok(self) -> bool:
        """True when no part's last attempt failed."""
        return not self._failing

    def snapshot(self) -> dict[str, Any]:
        """``{"state": "ok" | "failing", "reason", "since", "message", "failing": [...]}``.

        ``reason``, ``since`` and ``message`` describe the earliest failure that is
        still failing (``None`` when ok); ``failing`` lists every failing part.
        """
        with self._lock:
            failing = sorted(self._failing.values(), key=lambda f: f.at_ns)
        first = failing[0] if failing else None
        return {
            "state": "failing" if failing else "ok",
            "reason": None if first is None else first.reason,
            "since": None if first is None else _iso(first.at_ns),
            "message": None if first is None else first.message,
            "failing": [f.to_dict() for f in failing],
        }
