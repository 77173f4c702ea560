"""Events: markers, conditions and novelty, recorded next to the samples.

Pure data and validation, no I/O. An :class:`Event` is a moment (``onset_ns``) or a
span (``duration_s``) with a label, optionally tied to a room, a sensor or a
participant, and a small JSON ``value``. The store writes them to its WAL with the
same durability promise as samples (``TieredStore.append_events``) and returns them
as a table (``TieredStore.events``).

Conditions (spans of a session, e.g. ``"baseline"`` then ``"task"``) are events of
kind ``"condition"``. One that is already over is one event with its duration. One
that is still running is recorded as it begins, so a crash cannot lose it:

* at the start, :func:`condition_begin` — kind ``"condition"``, duration 0 and
  ``value={"phase": "begin"}`` (the caller's value, if any, under ``"value"``);
* at the end, :func:`condition_end` — the same label, room, sensor and participant,
  onset at the end, ``value={"phase": "end"}``.

``TieredStore.events()`` folds each begin with the next end of the same (label,
room, sensor, participant) into one row: the begin's onset, the span as duration,
the caller's value. A begin without an end yet (a condition still running, or ended
by a crash) shows with duration NaN; an end without a begin is kept as it is.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from sensocto_lab.errors import ValidationError
from sensocto_lab.model import check_id

__all__ = [
    "EVENT_KINDS",
    "EVENT_SOURCES",
    "MAX_LABEL",
    "MAX_VALUE_BYTES",
    "ONSET_MAX_NS",
    "ONSET_MIN_NS",
    "PHASE_BEGIN",
    "PHASE_END",
    "Event",
    "EventKind",
    "EventSource",
    "condition_begin",
    "condition_end",
    "condition_phase",
    "encode_value",
]

EventKind = Literal["marker", "condition", "novelty"]
EventSource = Literal["notebook", "dashboard", "device", "protocol", "import"]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
EVENT_SOURCES: tuple[str, ...] = get_args(EventSource)

#: Longest label, in characters.
MAX_LABEL = 256
#: Largest ``value``, as UTF-8 JSON.
MAX_VALUE_BYTES = 4096
#: Onsets must fall in [2000-01-01, 2200-01-01) UTC, in ns since the epoch.
ONSET_MIN_NS = 946_684_800 * 10**9
ONSET_MAX_NS = 7_258_118_400 * 10**9
PHASE_BEGIN = "begin"
PHASE_END = "end"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def encode_value(value: Any) -> str:
    """``value`` as compact JSON, or :class:`ValidationError` (``invalid_value``).

    Only what JSON carries unchanged is accepted: dicts with string keys, lists,
    strings, finite numbers, booleans and ``None`` (a tuple, a non-string key or a
    numpy scalar would come back as something else), at most ``MAX_VALUE_BYTES``.
    """
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        same = json.loads(text) == value
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(
            f"an event value must be small JSON with finite numbers: {exc}",
            reason="invalid_value",
        ) from exc
    if not same:
        raise ValidationError(
            "an event value must be plain JSON (dict with str keys, list, str, number, "
            f"bool, None); {value!r:.60} would not read back the same",
            reason="invalid_value",
        )
    size = len(text.encode())
    if size > MAX_VALUE_BYTES:
        raise ValidationError(
            f"an event value takes at most {MAX_VALUE_BYTES} bytes as JSON, got {size}",
            reason="invalid_value",
        )
    return text


@dataclass(frozen=True, slots=True)
class Event:
    """One marker, condition or novelty.

    Attributes
    ----------
    onset_ns
        When, in ns since the epoch (UTC, the engine's clock).
    label
        What, 1–``MAX_LABEL`` characters without control characters.
    kind
        ``"marker"`` (a moment), ``"condition"`` (a span of the session, see the
        module docstring) or ``"novelty"`` (something unexpected).
    duration_s
        Length of the span in s; 0 for a moment. Finite, >= 0.
    room, sensor, participant
        What the event concerns (identifiers as for samples), or None.
    value
        Small JSON (see :func:`encode_value`).
    source
        Who recorded it.
    """

    onset_ns: int
    label: str
    kind: EventKind = "marker"
    duration_s: float = 0.0
    room: str | None = None
    sensor: str | None = None
    participant: str | None = None
    value: Any = None
    source: EventSource = "notebook"

    def __str__(self) -> str:
        where = "/".join(x for x in (self.room, self.sensor, self.participant) if x)
        return f"{self.kind} {self.label!r} at {self.onset_ns}" + (f" ({where})" if where else "")

    def validated(self) -> Event:
        """This event with normalised types, or :class:`ValidationError`.

        Reasons: ``invalid_onset``, ``invalid_label``, ``invalid_kind``,
        ``invalid_duration``, ``invalid_source``, ``invalid_value``, and
        ``invalid_room`` / ``invalid_sensor`` / ``invalid_participant`` from
        :func:`~sensocto_lab.model.check_id`.
        """
        onset = self.onset_ns
        if type(onset) is not int and (  # the usual case first: numbers' ABCs are slow
            isinstance(onset, bool) or not isinstance(onset, numbers.Integral)
        ):
            raise ValidationError(
                f"an event onset is int ns since the epoch, got {onset!r:.40}",
                reason="invalid_onset",
            )
        onset = int(onset)
        if not ONSET_MIN_NS <= onset < ONSET_MAX_NS:
            raise ValidationError(
                f"an event onset must fall in the years 2000-2199, got {onset} ns",
                reason="invalid_onset",
            )
        label = self.label
        if not isinstance(label, str) or not 1 <= len(label) <= MAX_LABEL:
            raise ValidationError(
                f"an event label is 1-{MAX_LABEL} characters, got {label!r:.60}",
                reason="invalid_label",
            )
        if _CONTROL.search(label):
            raise ValidationError(
                f"an event label has no control characters, got {label!r:.60}",
                reason="invalid_label",
            )
        if self.kind not in EVENT_KINDS:
            raise ValidationError(
                f"event kind must be one of {', '.join(EVENT_KINDS)}, got {self.kind!r:.40}",
                reason="invalid_kind",
            )
        if self.source not in EVENT_SOURCES:
            raise ValidationError(
                f"event source must be one of {', '.join(EVENT_SOURCES)}, got {self.source!r:.40}",
                reason="invalid_source",
            )
        duration = self.duration_s
        if (
            isinstance(duration, bool)
            or not isinstance(duration, int | float)
            or not math.isfinite(duration)
            or duration < 0
        ):
            raise ValidationError(
                f"an event duration is finite seconds >= 0, got {duration!r:.40}",
                reason="invalid_duration",
            )
        for what in ("room", "sensor", "participant"):
            ident = getattr(self, what)
            if ident is not None:
                check_id(ident, what)
        value = self.value
        plain = value is None or type(value) is bool  # JSON as they are, and tiny
        plain = plain or (type(value) is int and abs(value) < 2**53)
        plain = plain or (type(value) is float and math.isfinite(value))
        if not plain:
            encode_value(value)
        if type(self.onset_ns) is int and type(duration) is float:
            return self  # already normalised: the store and the engine validate again
        return replace(self, onset_ns=onset, duration_s=float(duration))


def condition_begin(
    label: str,
    onset_ns: int,
    *,
    room: str | None = None,
    sensor: str | None = None,
    participant: str | None = None,
    value: Any = None,
    source: EventSource = "notebook",
) -> Event:
    """The event that opens a running condition (see the module docstring)."""
    inner: dict[str, Any] = {"phase": PHASE_BEGIN}
    if value is not None:
        inner["value"] = value
    return Event(onset_ns, label, "condition", 0.0, room, sensor, participant, inner, source)


def condition_end(
    label: str,
    onset_ns: int,
    *,
    room: str | None = None,
    sensor: str | None = None,
    participant: str | None = None,
    source: EventSource = "notebook",
) -> Event:
    """The event that closes the running condition ``label`` at ``onset_ns``."""
    value = {"phase": PHASE_END}
    return Event(onset_ns, label, "condition", 0.0, room, sensor, participant, value, source)


def condition_phase(kind: str, value: Any) -> str | None:
    """``"begin"`` / ``"end"`` for the two halves of a running condition, else None."""
    if kind == "condition" and isinstance(value, dict):
        phase = value.get("phase")
        if phase in (PHASE_BEGIN, PHASE_END) and set(value) <= {"phase", "value"}:
            return str(phase)
    return None
