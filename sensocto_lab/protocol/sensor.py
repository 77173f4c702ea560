"""What sensor channels carry: topics, join params and measurements, as Sensocto sends them.

Pure, no I/O. Turns the JSON of Sensocto's connectors into the model's types, and says
exactly what is wrong when it cannot (a :class:`~sensocto_lab.errors.PeerError` whose
``reason`` is what the error reply carries).

Topics (see :func:`parse_topic`): ``sensor:{id}`` and ``sensocto:sensor:{id}`` (a sensor),
``sensocto:connector:{id}`` (a connector announcing itself), ``room:{id}`` and
``lens:{viewer_id}`` (viewers).

Join params of a sensor channel (all optional; Sensocto's connectors send them all):
``connector_id``, ``connector_name``, ``sensor_id`` (must match the topic),
``sensor_name``, ``sensor_type``, ``attributes``, ``sampling_rate`` (Hz), ``batch_size``,
``bearer_token`` (checked by the server), and our ``room``. ``attributes`` is a list of
ids, a list of objects (``attribute_id``/``id``, ``attribute_type``/``type``,
``sampling_rate``, ``unit``), or an object mapping ids to a type string or such an object.

Measurements: ``measurement`` is one sample ``{"attribute_id", "payload", "timestamp"}``
(timestamp in ms since the epoch; payload a number, a list for vector kinds, or an object
keyed by the kind's component names). ``measurements_batch`` is a list of those (or
``{"measurements": [...]}``), or the columnar form ``{"attribute_id", "timestamps":
[ms...] | "t0": ms, "dt": ms, "values": [...]}``. A batch is all or nothing: if any item is
invalid nothing is stored and the error has reason ``invalid_batch`` and a ``failed_count``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from sensocto_lab.errors import PeerError, ProtocolError, UnknownSensorError, ValidationError
from sensocto_lab.model import (
    MAX_BATCH_SAMPLES,
    MAX_MS,
    AttributeInfo,
    Batch,
    KindSpec,
    SensorInfo,
    check_id,
    is_finite_number,
    ms_to_ns,
)

__all__ = [
    "BatchError",
    "Sample",
    "Topic",
    "TopicKind",
    "attribute_from_update",
    "batch_from_measurement",
    "batches_from_measurements",
    "declaration_conflict",
    "parse_topic",
    "sample_from_measurement",
    "sensor_info_from_join",
]

_FLOAT_MAX = sys.float_info.max

TopicKind = Literal["sensor", "connector", "room", "lens"]

_PREFIXES: tuple[tuple[str, TopicKind], ...] = (
    ("sensocto:sensor:", "sensor"),
    ("sensocto:connector:", "connector"),
    ("sensor:", "sensor"),
    ("room:", "room"),
    ("lens:", "lens"),
)


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed channel topic: what kind of channel, and whose id."""

    kind: TopicKind
    id: str


def parse_topic(topic: str) -> Topic:
    """Recognise a channel topic.

    Raises
    ------
    ProtocolError
        ``unknown_topic`` for a topic of no known kind.
    ValidationError
        ``invalid_sensor_id`` (etc.) when the id is not a usable identifier.
    """
    for prefix, kind in _PREFIXES:
        if topic.startswith(prefix):
            what = {"sensor": "sensor_id", "connector": "connector_id", "room": "room"}.get(
                kind, "viewer_id"
            )
            return Topic(kind, check_id(topic[len(prefix) :], what))
    raise ProtocolError(
        f"unknown topic {topic!r:.80}; use sensor:{{id}}, sensocto:sensor:{{id}}, "
        "sensocto:connector:{id}, room:{id} or lens:{viewer_id}",
        reason="unknown_topic",
    )


def _opt_str(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise ValidationError(
        f"join param {key} must be a string, got {value!r:.40}", reason="invalid_params"
    )


def _rate(value: object, what: str) -> float | None:
    if value is None:
        return None
    if is_finite_number(value) and float(value) > 0:  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    raise ValidationError(
        f"{what} must be a positive number (Hz), got {value!r:.40}", reason="invalid_params"
    )


def _attribute(spec: object, key: str | None, default_rate: float | None) -> AttributeInfo:
    if isinstance(spec, str) and key is None:
        return AttributeInfo.of(spec, rate_hz=default_rate)
    if isinstance(spec, str) and key is not None:
        return AttributeInfo.of(key, spec, rate_hz=default_rate)
    if isinstance(spec, Mapping):
        attr_id = key if key is not None else spec.get("attribute_id", spec.get("id"))
        kind = spec.get("attribute_type", spec.get("type", spec.get("kind")))
        if kind is not None and not isinstance(kind, str):
            raise ValidationError(
                f"attribute type must be a string, got {kind!r:.40}", reason="invalid_params"
            )
        rate = _rate(spec.get("sampling_rate", spec.get("rate_hz")), "sampling_rate")
        unit = spec.get("unit")
        return AttributeInfo.of(
            attr_id,  # check_id (inside) refuses non-strings
            kind,
            rate_hz=rate if rate is not None else default_rate,
            unit=unit if isinstance(unit, str) else None,
        )
    raise ValidationError(
        "an attribute is an id, or an object with attribute_id and attribute_type; "
        f"got {spec!r:.60}",
        reason="invalid_params",
    )


def sensor_info_from_join(
    sensor_id: str, params: Mapping[str, Any], *, room: str = "default"
) -> SensorInfo:
    """Build the :class:`SensorInfo` a sensor channel's join params describe.

    Parameters
    ----------
    sensor_id
        The id from the topic.
    params
        The join payload (see the module docstring).
    room
        Room used when the params name none.

    Raises
    ------
    ValidationError
        ``invalid_sensor_id`` when ``params["sensor_id"]`` differs from the topic's,
        ``invalid_params`` for a param of the wrong type, ``invalid_attribute_id`` for
        an unusable attribute id.
    """
    given = _opt_str(params, "sensor_id")
    if given is not None and given != sensor_id:
        raise ValidationError(
            f"join param sensor_id {given!r:.40} does not match the topic's {sensor_id!r}",
            reason="invalid_sensor_id",
        )
    default_rate = _rate(params.get("sampling_rate"), "sampling_rate")
    batch_size = params.get("batch_size")
    if batch_size is not None and not (
        isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1
    ):
        raise ValidationError(
            f"batch_size must be a positive integer, got {batch_size!r:.40}",
            reason="invalid_params",
        )
    raw = params.get("attributes") or []
    if isinstance(raw, Mapping):
        attrs = [_attribute(spec, key, default_rate) for key, spec in raw.items()]
    elif isinstance(raw, list):
        attrs = [_attribute(spec, None, default_rate) for spec in raw]
    else:
        raise ValidationError("attributes must be a list or an object", reason="invalid_params")
    return SensorInfo(
        sensor_id=sensor_id,
        attributes={a.attribute_id: a for a in attrs},
        name=_opt_str(params, "sensor_name") or sensor_id,
        sensor_type=_opt_str(params, "sensor_type") or "generic",
        room=_opt_str(params, "room") or room,
        connector_id=_opt_str(params, "connector_id") or "",
    )


def declaration_conflict(held: SensorInfo, wanted: SensorInfo) -> str | None:
    """How a join's declaration of a sensor contradicts the one held, or None.

    A sensor's declaration belongs to whoever holds it first: a second joiner may
    declare the same (a reconnect does) or more attributes, but not another room or
    another kind for an attribute (the holder's pushes would then be refused).
    """
    if wanted.room != held.room:
        return f"room {wanted.room!r} (it is in {held.room!r})"
    for attr_id, attr in wanted.attributes.items():
        mine = held.attributes.get(attr_id)
        if mine is not None and mine.kind.name != attr.kind.name:
            return f"{attr_id} as {attr.kind.name!r} (it is {mine.kind.name!r})"
    return None


def attribute_from_update(payload: object) -> tuple[str, AttributeInfo | str]:
    """Read an ``update_attributes`` push.

    Returns ``("register", AttributeInfo)`` or ``("unregister", attribute_id)``.

    Raises
    ------
    ValidationError
        ``missing_fields`` without ``action``/``attribute_id``, ``invalid_action`` for
        another action, ``invalid_attribute_id`` for an unusable id.
    """
    if not isinstance(payload, Mapping) or "action" not in payload or "attribute_id" not in payload:
        raise ValidationError(
            "update_attributes needs action and attribute_id", reason="missing_fields"
        )
    action = payload["action"]
    attr_id = check_id(payload["attribute_id"], "attribute_id")
    if action == "unregister":
        return "unregister", attr_id
    if action != "register":
        raise ValidationError(
            f"action must be register or unregister, got {action!r:.40}", reason="invalid_action"
        )
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise ValidationError("metadata must be an object", reason="invalid_params")
    return "register", _attribute(dict(metadata), attr_id, None)


# --- measurements ------------------------------------------------------------------------


class BatchError(ValidationError):
    """A ``measurements_batch`` with invalid items; nothing of it was stored.

    ``failed_count`` items were invalid; ``first`` is the error of the first of them.
    """

    def __init__(self, failed_count: int, total: int, first: PeerError) -> None:
        super().__init__(
            f"{failed_count} of {total} measurements are invalid, nothing was stored; "
            f"first: {first.reason}: {first.detail}",
            reason="invalid_batch",
        )
        self.failed_count = failed_count
        self.first = first


def _kind(info: SensorInfo, attribute_id: object) -> tuple[str, KindSpec]:
    if not isinstance(attribute_id, str):
        raise ValidationError(
            f"attribute_id must be a string, got {attribute_id!r:.40}",
            reason="invalid_attribute_id",
        )
    attr = info.attributes.get(attribute_id)
    if attr is None:
        raise UnknownSensorError(
            f"attribute {attribute_id!r:.40} is not registered on sensor {info.sensor_id}; "
            "declare it in the join params or with update_attributes",
            reason="invalid_attribute_id",
        )
    return attribute_id, attr.kind


def _value(kind: KindSpec, payload: object) -> Any:
    if isinstance(payload, Mapping):
        if not kind.components:
            raise ValidationError(f"{kind.name} payload must be a number", reason="invalid_value")
        try:
            return [payload[c] for c in kind.components]
        except KeyError as exc:
            raise ValidationError(
                f"{kind.name} payload object needs keys {', '.join(kind.components)}; "
                f"missing {exc}",
                reason="invalid_value",
            ) from None
    return payload


def _one(info: SensorInfo, item: object) -> Batch:
    """One wire sample as a validated one-sample batch."""
    if not isinstance(item, Mapping):
        raise ValidationError("a measurement is an object", reason="invalid_payload")
    missing = [k for k in ("attribute_id", "payload", "timestamp") if k not in item]
    if missing:
        raise ValidationError(
            f"measurement is missing {', '.join(missing)}", reason="missing_fields"
        )
    attr_id, kind = _kind(info, item["attribute_id"])
    ts = item["timestamp"]
    if not is_finite_number(ts):
        raise ValidationError(
            f"timestamp must be a number of ms since the epoch, got {ts!r:.40}",
            reason="invalid_timestamp",
        )
    value = _value(kind, item["payload"])
    _check_numbers(value)
    return Batch.from_samples(info.sensor_id, attr_id, [ts], [value]).validated(kind)


def _check_numbers(value: object) -> None:
    """Refuse booleans, strings and nested junk that numpy would quietly convert."""
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValidationError(
                "values must be finite numbers (no NaN or infinity)", reason="non_finite_value"
            )
        if not is_finite_number(v):
            raise ValidationError(
                f"value must be a number or a list of numbers, got {value!r:.40}",
                reason="invalid_value",
            )


def batch_from_measurement(info: SensorInfo, payload: object) -> Batch:
    """A ``measurement`` push as a validated one-sample :class:`Batch`.

    Raises
    ------
    ValidationError, UnknownSensorError
        With reasons ``missing_fields``, ``invalid_attribute_id``, ``invalid_timestamp``,
        ``invalid_value``, ``non_finite_value``, ``invalid_shape``.
    """
    return _one(info, payload)


def _grouped(info: SensorInfo, items: list[Any]) -> list[Batch] | None:
    """Fast path for a list of well-formed samples: arrays per attribute, or None."""
    try:
        attrs = [it["attribute_id"] for it in items]
        stamps = np.asarray([it["timestamp"] for it in items])
        raw = [it["payload"] for it in items]
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if stamps.dtype.kind not in "if" or any(type(a) is not str for a in attrs):
        return None  # an id that is not a string (a list is not even hashable)
    batches = []
    distinct = list(dict.fromkeys(attrs))
    order = np.asarray(attrs) if len(distinct) > 1 else None
    for attr_id in distinct:
        if attr_id not in info.attributes:
            return None
        kind = info.attributes[attr_id].kind
        idx = None if order is None else np.flatnonzero(order == attr_id)
        vals_raw = raw if idx is None else [raw[i] for i in idx]
        try:
            vals = np.asarray(vals_raw)
        except (ValueError, OverflowError):
            return None  # ragged rows
        if vals.dtype.kind not in "if":
            return None
        ts = stamps if idx is None else stamps[idx]
        batches.append(
            _sorted(Batch.from_samples(info.sensor_id, attr_id, ts, vals)).validated(kind)
        )
    return batches


def _sorted(batch: Batch) -> Batch:
    """Samples of one attribute in timestamp order (connectors may interleave them)."""
    if len(batch) > 1 and (np.diff(batch.ts) < 0).any():
        order = np.argsort(batch.ts, kind="stable")
        return Batch(batch.sensor_id, batch.attribute_id, batch.ts[order], batch.values[order])
    return batch


def _columnar(info: SensorInfo, payload: Mapping[str, Any]) -> Batch:
    attr_id, kind = _kind(info, payload.get("attribute_id"))
    values = payload["values"]
    if not isinstance(values, list):
        raise ValidationError("values must be a list", reason="invalid_value")
    n = len(values)
    if n > MAX_BATCH_SAMPLES:
        raise ValidationError(
            f"a batch may hold at most {MAX_BATCH_SAMPLES} samples", reason="batch_too_large"
        )
    try:
        vals = np.asarray(values)
    except (ValueError, OverflowError):
        vals = np.asarray([], dtype=object)  # ragged rows
    if vals.dtype.kind not in "if":
        raise ValidationError("values must be numbers (or rows of numbers)", reason="invalid_value")
    if "timestamps" in payload:
        try:
            stamps = np.asarray(payload["timestamps"])
        except (ValueError, OverflowError):
            stamps = np.asarray([], dtype=object)  # ragged rows
        if stamps.dtype.kind not in "if" or stamps.shape != (n,):
            raise ValidationError(
                f"timestamps must be {n} numbers (ms since the epoch)", reason="invalid_timestamp"
            )
    elif "t0" in payload and "dt" in payload:
        t0, dt = payload["t0"], payload["dt"]
        if not (is_finite_number(t0) and is_finite_number(dt)):
            raise ValidationError(
                f"t0 and dt must be numbers (ms), got {t0!r:.40} and {dt!r:.40}",
                reason="invalid_timestamp",
            )
        with np.errstate(over="ignore"):  # inf is refused as a timestamp
            stamps = t0 + np.arange(n, dtype=np.float64) * float(dt)
    else:
        raise ValidationError(
            "a columnar batch needs timestamps, or t0 and dt (ms)", reason="missing_fields"
        )
    return Batch.from_samples(info.sensor_id, attr_id, stamps, vals).validated(kind)


def batches_from_measurements(info: SensorInfo, payload: object) -> list[Batch]:
    """A ``measurements_batch`` push as validated batches, one per attribute, all or none.

    Raises
    ------
    BatchError
        Reason ``invalid_batch`` with ``failed_count`` when any item of a list is invalid.
    ValidationError, UnknownSensorError
        For a columnar batch (it is one item) or a payload of the wrong shape.
    """
    if isinstance(payload, Mapping) and "values" in payload:
        return [_columnar(info, payload)]
    items = payload.get("measurements") if isinstance(payload, Mapping) else payload
    if not isinstance(items, list) or not items:
        raise ValidationError(
            "measurements_batch is a non-empty list of measurements, or a columnar object",
            reason="invalid_payload",
        )
    if len(items) > MAX_BATCH_SAMPLES:
        raise ValidationError(
            f"a batch may hold at most {MAX_BATCH_SAMPLES} samples", reason="batch_too_large"
        )
    try:
        fast = _grouped(info, items)
    except PeerError:
        fast = None  # find out which items are at fault below
    if fast is not None:
        return fast
    singles: list[Batch] = []
    failures: list[PeerError] = []
    for item in items:
        try:
            singles.append(_one(info, item))
        except PeerError as exc:
            failures.append(exc)
    if failures:
        raise BatchError(len(failures), len(items), failures[0])
    return _concat(singles)


def _concat(singles: list[Batch]) -> list[Batch]:
    by_attr: dict[str, list[Batch]] = {}
    for b in singles:
        by_attr.setdefault(b.attribute_id, []).append(b)
    out = []
    for attr_id, parts in by_attr.items():
        merged = Batch(
            parts[0].sensor_id,
            attr_id,
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.values for p in parts]),
        )
        out.append(_sorted(merged))
    return out


# --- one sample per push (merged into batches by :mod:`.chunks`) ----------------------------


class Sample(NamedTuple):
    """One ``measurement``, checked for fields and types only (ranges: :func:`.chunks.merge`).

    ``ts_ns`` is the timestamp in ns since the epoch (by
    :func:`~sensocto_lab.model.ms_to_ns`); ``value`` a number or a row of numbers.
    A named tuple, not a frozen dataclass: one is made per one-sample push, and the
    dataclass's ``__init__`` cost three times as much.
    """

    attribute_id: str
    ts_ns: int
    value: Any


def sample_from_measurement(info: SensorInfo, payload: object) -> Sample:
    """The cheap part of checking a ``measurement`` (no numpy): fields, types, finiteness.

    Raises
    ------
    ValidationError, UnknownSensorError
        ``missing_fields``, ``invalid_attribute_id``, ``invalid_timestamp``,
        ``invalid_value``, ``non_finite_value``. Ranges and shapes are checked when
        samples are merged into a batch (:func:`.chunks.merge`).
    """
    # One sample per frame is the hot path: exact type checks first (JSON gives plain
    # dicts, ints and floats), the general checks only for anything else.
    if type(payload) is not dict and not isinstance(payload, Mapping):
        raise ValidationError("a measurement is an object", reason="invalid_payload")
    try:
        attribute_id, ts, raw = payload["attribute_id"], payload["timestamp"], payload["payload"]
    except KeyError:
        missing = [k for k in ("attribute_id", "payload", "timestamp") if k not in payload]
        raise ValidationError(
            f"measurement is missing {', '.join(missing)}", reason="missing_fields"
        ) from None
    attr_id, kind = _kind(info, attribute_id)
    if type(ts) is int and -MAX_MS <= ts <= MAX_MS:
        ts_ns = ts * 1_000_000  # exact, fast; the range is checked when merging
    elif type(ts) is not int and is_finite_number(ts):
        ts_ns = int(ms_to_ns(ts))  # refuses ms whose ns int64 cannot hold
    else:
        raise ValidationError(
            f"timestamp must be a number of ms since the epoch (|ms| <= {MAX_MS}), got {ts!r:.40}",
            reason="invalid_timestamp",
        )
    if (type(raw) is int and -_FLOAT_MAX <= raw <= _FLOAT_MAX) or (
        type(raw) is float and math.isfinite(raw)
    ):
        value = raw
    else:
        value = _value(kind, raw)
        _check_numbers(value)
    return Sample(attr_id, ts_ns, value)
