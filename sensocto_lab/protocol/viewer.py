"""What viewer channels carry: visibility events in, compact batches out.

Pure, no I/O. A viewer (a dashboard in another process, another kernel) joins
``room:{room_id}`` or ``lens:{viewer_id}`` and reports what it shows:

====================  =========================================  =====================
event                 payload                                    effect
====================  =========================================  =====================
``view_enter``        ``{"sensor_id"}`` or ``{"sensor_ids"}``    those sensors: medium
``view_leave``        ``{"sensor_id"}`` or ``{"sensor_ids"}``    those sensors: low
``focus``             ``{"sensor_id"}`` (``null`` = blur)        that sensor: high; the
                                                                 previous focus: medium
``page_hidden``       ``{"hidden": true|false}``                 every sensor: none while
                                                                 hidden
``set_views``         ``{"views": {sensor_id: level}}``,         exactly these levels
                      optional ``"attributes": {sensor_id:       (``high`` … ``none``), in
                      [attribute_id, ...]}``                     one message (not hidden)
====================  =========================================  =====================

:class:`ViewerState` folds these into ``{sensor_id: AttentionLevel}`` for
``engine.set_views``. The server pushes ``batch`` events whose payload is
:func:`batch_payload` (timestamps as ms floats, so JavaScript's doubles hold them).

Access and what a join tells (both directions, so the server and the Python viewer
client share one definition): :class:`ViewerParams` are the join params
(``code``, ``token``, ``room``, ``viewer_id``, ``user_id``, ``client``,
``backfill``, ``member``); :class:`RoomSnapshot` is the join reply (the room's sensors
with their attributes, kinds and units, recent samples for backfill, the engine's
attention levels, who is watching, and for a member join the user's rooms). Later
the server pushes ``sensor`` (a sensor that appeared, :func:`sensor_payload`) and
``status`` (levels and presence that changed, :func:`status_payload`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensocto_lab.errors import ValidationError
from sensocto_lab.model import AttentionLevel, AttributeInfo, Batch, SensorInfo, check_id

__all__ = [
    "MAX_BACKFILL",
    "VIEWER_EVENTS",
    "RoomSnapshot",
    "ViewerParams",
    "ViewerState",
    "Watcher",
    "batch_from_payload",
    "batch_payload",
    "read_status",
    "sensor_from_payload",
    "sensor_payload",
    "status_payload",
]

#: Events a viewer channel accepts.
VIEWER_EVENTS = frozenset({"view_enter", "view_leave", "focus", "page_hidden", "set_views"})

#: Most recent samples per (sensor, attribute) a join reply carries for backfill.
MAX_BACKFILL = 5000


def _sensor_ids(payload: Mapping[str, Any]) -> list[str]:
    if "sensor_ids" in payload:
        ids = payload["sensor_ids"]
        if not isinstance(ids, list):
            raise ValidationError("sensor_ids must be a list", reason="invalid_payload")
        return [check_id(s, "sensor_id") for s in ids]
    if "sensor_id" in payload:
        return [check_id(payload["sensor_id"], "sensor_id")]
    raise ValidationError("a view event needs sensor_id or sensor_ids", reason="missing_fields")


def _attributes(payload: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(payload, Mapping) or not all(isinstance(v, list) for v in payload.values()):
        raise ValidationError(
            "attributes must map sensor ids to lists of attribute ids", reason="invalid_payload"
        )
    return {
        check_id(s, "sensor_id"): tuple(check_id(a, "attribute_id") for a in attrs)
        for s, attrs in payload.items()
    }


@dataclass(slots=True)
class ViewerState:
    """One viewer's view of its sensors, built from its visibility events.

    ``attributes`` limits what is sent of a sensor to the attributes its view draws
    (``set_views`` only; a sensor without an entry gets all).
    """

    visible: dict[str, AttentionLevel] = field(default_factory=dict)
    focused: str | None = None
    hidden: bool = False
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def copy(self) -> ViewerState:
        """An independent copy (to try an event before keeping it)."""
        return ViewerState(dict(self.visible), self.focused, self.hidden, dict(self.attributes))

    def apply(self, event: str, payload: object) -> None:
        """Fold one viewer event in.

        Raises
        ------
        ValidationError
            ``invalid_event`` for another event, ``invalid_payload``/``missing_fields``/
            ``invalid_sensor_id`` for a payload of the wrong shape. The state is unchanged.
        """
        if event not in VIEWER_EVENTS:
            raise ValidationError(
                f"viewer channels take {', '.join(sorted(VIEWER_EVENTS))}; got {event!r:.40}",
                reason="invalid_event",
            )
        if not isinstance(payload, Mapping):
            raise ValidationError(f"{event} payload must be an object", reason="invalid_payload")
        if event == "set_views":
            self._set_views(payload)
        elif event == "page_hidden":
            hidden = payload.get("hidden", True)
            if not isinstance(hidden, bool):
                raise ValidationError("hidden must be true or false", reason="invalid_payload")
            self.hidden = hidden
        elif event == "focus":
            target = payload.get("sensor_id")
            new = None if target is None else check_id(target, "sensor_id")
            if self.focused is not None and self.focused in self.visible:
                self.visible[self.focused] = AttentionLevel.MEDIUM
            self.focused = new
            if new is not None:
                self.visible[new] = AttentionLevel.HIGH
        else:
            level = AttentionLevel.MEDIUM if event == "view_enter" else AttentionLevel.LOW
            for sensor_id in _sensor_ids(payload):
                if sensor_id == self.focused and event == "view_enter":
                    continue  # already focused, which is more
                if sensor_id == self.focused:
                    self.focused = None
                self.visible[sensor_id] = level

    def _set_views(self, payload: Mapping[str, Any]) -> None:
        views = payload.get("views")
        if not isinstance(views, Mapping):
            raise ValidationError(
                "set_views needs views: {sensor_id: level}", reason="missing_fields"
            )
        visible = {check_id(s, "sensor_id"): AttentionLevel.parse(lv) for s, lv in views.items()}
        attributes = _attributes(payload.get("attributes", {}))
        focused = [s for s, lv in visible.items() if lv is AttentionLevel.HIGH]
        self.visible, self.attributes, self.hidden = visible, attributes, False
        self.focused = focused[0] if len(focused) == 1 else None

    def levels(self) -> dict[str, AttentionLevel]:
        """``{sensor_id: level}`` as this viewer sees them (all none while hidden)."""
        if self.hidden:
            return dict.fromkeys(self.visible, AttentionLevel.NONE)
        return dict(self.visible)


def batch_payload(batch: Batch) -> dict[str, Any]:
    """A stamped batch as the payload of a viewer ``batch`` push.

    ``ts`` are device times in ms since the epoch (floats, µs resolution), ``values`` a
    list (of rows for vector kinds), ``seq`` the first sample's sequence number.
    """
    ts_ms = np.round(batch.ts / 1e6, 3)
    return {
        "sensor_id": batch.sensor_id,
        "attribute_id": batch.attribute_id,
        "ts": ts_ms.tolist(),
        "values": np.asarray(batch.values).tolist(),
        "seq": None if batch.seq is None else int(batch.seq[0]),
    }


def batch_from_payload(payload: object) -> Batch:
    """The batch of a viewer ``batch`` push (inverse of :func:`batch_payload`).

    ``ts`` become int64 ns (µs resolution, as sent), ``values`` float64 of shape
    ``(n,)`` or ``(n, width)``.

    Raises
    ------
    ValidationError
        ``invalid_payload`` for a payload of another shape.
    """
    if not isinstance(payload, Mapping):
        raise ValidationError("a batch payload must be an object", reason="invalid_payload")
    try:
        ts = np.round(np.asarray(payload["ts"], dtype=np.float64) * 1e3).astype(np.int64) * 1000
        values = np.asarray(payload["values"], dtype=np.float64)
        seq0 = payload.get("seq")
        seq = None if seq0 is None else np.arange(int(seq0), int(seq0) + len(ts), dtype=np.int64)
        return Batch(
            check_id(payload["sensor_id"], "sensor_id"),
            check_id(payload["attribute_id"], "attribute_id"),
            ts,
            values,
            seq=seq,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"bad batch payload: {exc}", reason="invalid_payload") from None


def sensor_payload(info: SensorInfo) -> dict[str, Any]:
    """A sensor as a viewer sees it: id, name, type, room and attributes (kind, unit, rate)."""
    return {
        "sensor_id": info.sensor_id,
        "name": info.name,
        "sensor_type": info.sensor_type,
        "room": info.room,
        "attributes": [
            {
                "attribute_id": a.attribute_id,
                "kind": a.kind.name,
                "unit": a.effective_unit,
                "sampling_rate": a.rate_hz,
            }
            for a in info.attributes.values()
        ],
    }


def sensor_from_payload(payload: object) -> SensorInfo:
    """The :class:`SensorInfo` of a :func:`sensor_payload` (kinds resolved by name).

    Raises
    ------
    ValidationError
        ``invalid_payload`` (or ``invalid_*_id``) for a payload of another shape.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("attributes"), list):
        raise ValidationError("a sensor payload needs attributes", reason="invalid_payload")
    attrs = {}
    for a in payload["attributes"]:
        if not isinstance(a, Mapping):
            raise ValidationError("an attribute must be an object", reason="invalid_payload")
        rate = a.get("sampling_rate")
        info = AttributeInfo.of(
            a.get("attribute_id"),  # type: ignore[arg-type]  # checked by AttributeInfo.of
            str(a.get("kind") or ""),
            rate_hz=float(rate) if isinstance(rate, int | float) else None,
            unit=a.get("unit") if isinstance(a.get("unit"), str) else None,
        )
        attrs[info.attribute_id] = info
    return SensorInfo(
        check_id(payload.get("sensor_id"), "sensor_id"),
        attrs,
        name=str(payload.get("name") or ""),
        sensor_type=str(payload.get("sensor_type") or "generic"),
        room=check_id(payload.get("room", "default"), "room"),
    )


@dataclass(frozen=True, slots=True)
class Watcher:
    """One session watching a room (a dashboard tab, a kernel)."""

    viewer_id: str
    user_id: str


def status_payload(
    levels: Mapping[str, AttentionLevel], present: Sequence[Watcher]
) -> dict[str, Any]:
    """A ``status`` push: the engine's level per sensor of the room, and who is watching."""
    return {
        "levels": {s: lv.label for s, lv in sorted(levels.items())},
        "present": [{"viewer_id": w.viewer_id, "user_id": w.user_id} for w in present],
    }


def _status(payload: Mapping[str, Any]) -> tuple[dict[str, AttentionLevel], list[Watcher]]:
    levels = payload.get("levels", {})
    present = payload.get("present", [])
    if not isinstance(levels, Mapping) or not isinstance(present, list):
        raise ValidationError("status needs levels and present", reason="invalid_payload")
    try:
        watchers = [Watcher(str(p["viewer_id"]), str(p["user_id"])) for p in present]
    except (KeyError, TypeError):
        raise ValidationError("present: [{viewer_id, user_id}]", reason="invalid_payload") from None
    return {str(s): AttentionLevel.parse(lv) for s, lv in levels.items()}, watchers


@dataclass(frozen=True, slots=True)
class RoomSnapshot:
    """What a viewer channel's join reply tells: the room as it is now.

    Attributes
    ----------
    viewer_id
        Under which id the engine counts this viewer's attention.
    room_id, name
        The room (``None`` for an unrestricted lens joined with a token).
    sensors
        The room's sensors by id (its synchrony sensor ``sync:{room}`` among them).
    recent
        The newest stored samples per (sensor, attribute), as many as the join's
        ``backfill`` asked for (at most :data:`MAX_BACKFILL`).
    levels
        The engine's attention level per sensor of the room (over all its viewers).
    present
        Who is watching the room now.
    member_rooms
        For a ``member`` join: the rooms its user is a member of (id → name).
    """

    viewer_id: str
    room_id: str | None = None
    name: str = ""
    sensors: Mapping[str, SensorInfo] = field(default_factory=dict)
    recent: Sequence[Batch] = ()
    levels: Mapping[str, AttentionLevel] = field(default_factory=dict)
    present: Sequence[Watcher] = ()
    member_rooms: Mapping[str, str] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """The join reply's ``response``."""
        return {
            "member_rooms": [{"room_id": r, "name": n} for r, n in self.member_rooms.items()],
            "viewer_id": self.viewer_id,
            "room": self.room_id,
            "name": self.name,
            "sensors": [sensor_payload(info) for _, info in sorted(self.sensors.items())],
            "recent": [batch_payload(b) for b in self.recent],
            **status_payload(self.levels, self.present),
        }

    @classmethod
    def from_payload(cls, payload: object) -> RoomSnapshot:
        """Read a join reply's ``response``.

        Raises
        ------
        ValidationError
            ``invalid_payload`` for a reply of another shape.
        """
        if not isinstance(payload, Mapping) or not isinstance(payload.get("viewer_id"), str):
            raise ValidationError("a viewer join reply needs viewer_id", reason="invalid_payload")
        sensors = [sensor_from_payload(s) for s in payload.get("sensors", [])]
        levels, present = _status(payload)
        room = payload.get("room")
        try:
            member_rooms = {
                check_id(r["room_id"], "room"): str(r["name"])
                for r in payload.get("member_rooms", [])
            }
        except (KeyError, TypeError):
            raise ValidationError(
                "member_rooms: [{room_id, name}]", reason="invalid_payload"
            ) from None
        return cls(
            viewer_id=payload["viewer_id"],
            room_id=None if room is None else check_id(room, "room"),
            name=str(payload.get("name") or ""),
            sensors={s.sensor_id: s for s in sensors},
            recent=[batch_from_payload(b) for b in payload.get("recent", [])],
            levels=levels,
            present=present,
            member_rooms=member_rooms,
        )


def read_status(payload: object) -> tuple[dict[str, AttentionLevel], list[Watcher]]:
    """Read a ``status`` push: (levels by sensor, watchers).

    Raises
    ------
    ValidationError
        ``invalid_payload`` for a payload of another shape.
    """
    if not isinstance(payload, Mapping):
        raise ValidationError("status must be an object", reason="invalid_payload")
    return _status(payload)


@dataclass(frozen=True, slots=True)
class ViewerParams:
    """A viewer channel's join params.

    Attributes
    ----------
    code
        The room's join code: opens that room only (checked whenever given).
    token
        A viewer (admin) token: opens any room, or an unrestricted lens.
    room
        The room of a ``lens:`` join (a ``room:`` join's room is its topic). A lens
        joined with a code but no room finds the room by the code.
    viewer_id
        The viewer's id for a ``room:`` join (a ``lens:`` join's is its topic).
    user_id
        Who is watching, for the room's presence list.
    client
        Who is typing codes, relayed by a trusted dashboard (one that presents a
        token) so that one guesser does not lock the others out.
    backfill
        Recent samples per (sensor, attribute) wanted in the join reply.
    member
        Let ``user_id``'s membership open the room instead of a code. Only a trusted
        dashboard (one that presents a token) may ask: it vouches that its user logged
        in. A ``lens:`` join with ``member`` and no room opens no room; its reply lists
        the user's rooms.
    """

    code: str | None = None
    token: str | None = None
    room: str | None = None
    viewer_id: str | None = None
    user_id: str = "guest"
    client: str | None = None
    backfill: int = 0
    member: bool = False

    def to_params(self) -> dict[str, Any]:
        """The join params (``None`` fields left out, ``member`` only when asked)."""
        out: dict[str, Any] = {"user_id": self.user_id, "backfill": self.backfill}
        if self.member:
            out["member"] = True
        for key in ("code", "token", "room", "viewer_id", "client"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ViewerParams:
        """Read join params (``bearer_token`` is read as ``token``).

        Raises
        ------
        ValidationError
            ``invalid_params`` for a param of the wrong type, ``invalid_*`` for a bad id.
        """

        def text(key: str) -> str | None:
            value = params.get(key)
            if value is None or isinstance(value, str):
                return value
            raise ValidationError(f"{key} must be a string", reason="invalid_params")

        backfill = params.get("backfill", 0)
        if isinstance(backfill, bool) or not isinstance(backfill, int) or backfill < 0:
            raise ValidationError("backfill must be a count of samples", reason="invalid_params")
        member = params.get("member", False)
        if not isinstance(member, bool):
            raise ValidationError("member must be true or false", reason="invalid_params")
        room, viewer = text("room"), text("viewer_id")
        return cls(
            code=text("code"),
            token=text("token") or text("bearer_token"),
            room=None if room is None else check_id(room, "room"),
            viewer_id=None if viewer is None else check_id(viewer, "viewer_id"),
            user_id=text("user_id") or "guest",
            client=text("client"),
            backfill=min(backfill, MAX_BACKFILL),
            member=member,
        )
