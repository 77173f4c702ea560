"""The data model: attribute kinds, sensors, batches of samples, validation.

Pure: no I/O, no asyncio. Every other layer builds on these types.

Time is carried as ``int64`` nanoseconds since the Unix epoch, UTC. ``ts`` is the
device's clock (what the sensor says the sample was taken at); ``recv_ts`` is our
clock when the sample arrived. Values are numpy arrays, one row per sample:
shape ``(n,)`` for scalar kinds, ``(n, width)`` for vector kinds (accelerometer,
quaternion, skeleton, ...).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sensocto_lab.errors import ValidationError

__all__ = [
    "KINDS",
    "MAX_BATCH_SAMPLES",
    "MAX_MS",
    "AttentionLevel",
    "AttributeInfo",
    "BackpressureConfig",
    "Batch",
    "KindSpec",
    "LoadLevel",
    "SensorInfo",
    "check_id",
    "is_finite_number",
    "ms_to_ns",
    "resolve_kind",
]

#: Largest number of samples one batch may carry (a guard against floods, ~4 MB of float64).
MAX_BATCH_SAMPLES = 500_000

#: ``ts`` outside [2000-01-01, 2100-01-01) is a device clock error, not a sample time.
_TS_MIN_NS = 946_684_800 * 10**9
_TS_MAX_NS = 4_102_444_800 * 10**9

#: Largest ``|ms|`` whose ns fit int64, fraction and all (year 2262): beyond it
#: ``ms * 10**6`` wraps around, and a far-future time would come out as any other.
MAX_MS = (2**63 - 1) // 1_000_000 - 1

_FLOAT_MAX = sys.float_info.max

#: Matched whole (``fullmatch``): ``$`` would also accept a trailing newline.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")


def check_id(value: object, what: str) -> str:
    """Return ``value`` if it is a usable identifier, else raise :class:`ValidationError`.

    Identifiers become topic names and Parquet partition directories, so they are
    limited to 1–128 characters of ``[A-Za-z0-9_.:-]`` starting with a letter or digit.
    """
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise ValidationError(
            f"{what} must be 1-128 characters of letters, digits, '_', '.', ':' or '-', "
            f"got {value!r:.80}",
            reason=f"invalid_{what}",
        )
    return value


def ms_to_ns(ms: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Convert milliseconds since the epoch (int or float, as connectors send) to int64 ns.

    Exact for integer ms; for float ms the whole milliseconds are converted exactly and
    only the fraction is rounded (``ms * 1e6`` in float64 would be off by up to 128 ns
    at today's epoch values, where doubles are 256 ns apart).

    Raises
    ------
    ValidationError
        ``invalid_timestamp`` for ms beyond ``±MAX_MS`` (or NaN), whose ns int64
        cannot hold: they would wrap around silently.
    """
    arr = np.asarray(ms)
    if arr.dtype.kind in "iuf" and not ((arr >= -MAX_MS) & (arr <= MAX_MS)).all():
        raise ValidationError(
            f"timestamps must be ms since the epoch within +-{MAX_MS} (int64 ns)",
            reason="invalid_timestamp",
        )
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64) * 1_000_000
    arr = arr.astype(np.float64)
    whole = np.floor(arr)
    return whole.astype(np.int64) * 1_000_000 + np.round((arr - whole) * 1e6).astype(np.int64)


class AttentionLevel(enum.IntEnum):
    """How closely someone is watching a sensor; ordered so ``max`` picks the strongest.

    ``HIGH``: focused or pinned; ``MEDIUM``: visible in a viewport; ``LOW``: loaded but
    scrolled out; ``NONE``: nobody, or the tab is hidden.
    """

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        """The wire name: ``"high"``, ``"medium"``, ``"low"`` or ``"none"``."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: object) -> AttentionLevel:
        """Accept a level, its wire name or its integer value."""
        if isinstance(value, AttentionLevel):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
            return cls(value)
        raise ValidationError(
            f"attention level must be one of high, medium, low, none; got {value!r:.40}",
            reason="invalid_attention_level",
        )


class LoadLevel(enum.IntEnum):
    """How busy this machine is, from CPU, event-loop lag, queue depths and memory."""

    NORMAL = 0
    ELEVATED = 1
    HIGH = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        """The wire name: ``"normal"``, ``"elevated"``, ``"high"`` or ``"critical"``."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class BackpressureConfig:
    """How a device is told to batch (Sensocto's payload; docs/architecture.md#attention).

    Attributes
    ----------
    attention_level
        The sensor's current level.
    batch_window_ms
        Longest time the device should hold samples before sending, in milliseconds.
    batch_size
        Number of samples the device should gather before sending.
    timestamp_ms
        When this config was computed (ms since the epoch, our clock).
    load_level
        The system load level that stretched the window.
    """

    attention_level: AttentionLevel
    batch_window_ms: int
    batch_size: int
    timestamp_ms: int
    load_level: LoadLevel = LoadLevel.NORMAL

    def to_payload(self) -> dict[str, Any]:
        """The ``backpressure_config`` push payload, as Sensocto's channel sends it."""
        return {
            "attention_level": self.attention_level.label,
            "recommended_batch_window": self.batch_window_ms,
            "recommended_batch_size": self.batch_size,
            "load_level": self.load_level.label,
            "timestamp": self.timestamp_ms,
        }


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What one attribute kind is.

    Attributes
    ----------
    name
        Canonical kind name (``"ecg"``, ``"hr"``, ...).
    width
        Values per sample: 1 for scalars (stored as ``(n,)``), else ``(n, width)``.
    unit
        Physical unit of the values.
    rate_hz
        Nominal sampling rate; 0 for event-like kinds (button).
    hot_limit, warm_limit
        Samples kept in the hot and warm in-memory rings (before load scaling).
    dtype
        numpy dtype values are stored in.
    components
        Names of the vector components (empty for scalars).
    """

    name: str
    width: int
    unit: str
    rate_hz: float
    hot_limit: int = 50
    warm_limit: int = 100
    dtype: str = "float64"
    components: tuple[str, ...] = ()
    description: str = ""

    @property
    def is_vector(self) -> bool:
        """True when samples are rows of ``width`` values."""
        return self.width > 1


def _xyz(prefix: str = "") -> tuple[str, ...]:
    return tuple(f"{prefix}{c}" for c in "xyz")


#: Every attribute kind the engine knows, by canonical name.
KINDS: Mapping[str, KindSpec] = {
    s.name: s
    for s in (
        KindSpec("ecg", 1, "mV", 130.0, 150, 500, "float32", description="electrocardiogram"),
        KindSpec("hr", 1, "bpm", 1.0, description="heart rate"),
        KindSpec("rr", 1, "ms", 1.0, description="RR / inter-beat interval"),
        KindSpec("hrv", 1, "ms", 0.2, description="heart-rate variability (RMSSD)"),
        KindSpec("respiration", 1, "a.u.", 10.0, 100, 300, description="breathing signal"),
        KindSpec("spo2", 1, "%", 1.0, description="blood oxygen saturation"),
        KindSpec("accelerometer", 3, "m/s^2", 50.0, dtype="float32", components=_xyz()),
        KindSpec("gyroscope", 3, "deg/s", 50.0, dtype="float32", components=_xyz()),
        KindSpec("quaternion", 4, "1", 50.0, dtype="float32", components=("w", "x", "y", "z")),
        KindSpec(
            "skeleton",
            99,
            "1",
            30.0,
            1,
            0,
            "float32",
            tuple(f"{a}{i}" for i in range(33) for a in "xyz"),
            "33 pose landmarks x, y, z (normalised image coordinates)",
        ),
        KindSpec("geolocation", 3, "deg,deg,m", 1.0, components=("lat", "lon", "alt")),
        KindSpec("battery", 1, "%", 1 / 60, description="battery level"),
        KindSpec("temperature", 1, "degC", 1.0),
        KindSpec("button", 1, "1", 0.0, description="button press (button id or 0/1)"),
        KindSpec("numeric", 1, "1", 1.0, description="any other numeric signal"),
    )
}

_ALIASES: Mapping[str, str] = {
    "heartrate": "hr",
    "heart_rate": "hr",
    "heart-rate": "hr",
    "ibi": "rr",
    "rr_interval": "rr",
    "rri": "rr",
    "resp": "respiration",
    "breathing": "respiration",
    "breath": "respiration",
    "acc": "accelerometer",
    "accel": "accelerometer",
    "imu": "accelerometer",
    "gyro": "gyroscope",
    "quat": "quaternion",
    "orientation": "quaternion",
    "pose": "skeleton",
    "geo": "geolocation",
    "gps": "geolocation",
    "location": "geolocation",
    "temp": "temperature",
    "battery_level": "battery",
    "oxygen": "spo2",
}


def resolve_kind(attribute_id: str, attribute_type: str | None = None) -> KindSpec:
    """Find the kind of an attribute from its declared type or, failing that, its id.

    Sensocto connectors name attributes freely (``"heartrate"``, ``"ecg"``, ``"imu"``);
    an explicit ``attribute_type`` wins, known aliases map to canonical kinds, and
    anything else is a generic ``numeric`` scalar.
    """
    for candidate in (attribute_type, attribute_id):
        if not candidate:
            continue
        key = candidate.strip().lower()
        key = _ALIASES.get(key, key)
        if key in KINDS:
            return KINDS[key]
    return KINDS["numeric"]


@dataclass(frozen=True, slots=True)
class AttributeInfo:
    """One attribute of a sensor: an id, its kind, and how it is sampled."""

    attribute_id: str
    kind: KindSpec
    rate_hz: float | None = None
    unit: str | None = None

    @classmethod
    def of(
        cls,
        attribute_id: str,
        kind: str | None = None,
        *,
        rate_hz: float | None = None,
        unit: str | None = None,
    ) -> AttributeInfo:
        """Build an attribute, resolving ``kind`` (or the id) to a :class:`KindSpec`."""
        check_id(attribute_id, "attribute_id")
        return cls(attribute_id, resolve_kind(attribute_id, kind), rate_hz, unit)

    @property
    def effective_rate_hz(self) -> float:
        """The declared rate, or the kind's nominal rate."""
        return self.rate_hz if self.rate_hz is not None else self.kind.rate_hz

    @property
    def effective_unit(self) -> str:
        """The declared unit, or the kind's unit."""
        return self.unit or self.kind.unit


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """A sensor: who it is, where it belongs, and what it measures.

    ``room`` is the room whose dashboards show it and the ``room=`` partition its data
    is stored under.
    """

    sensor_id: str
    attributes: Mapping[str, AttributeInfo] = field(default_factory=dict)
    name: str = ""
    sensor_type: str = "generic"
    room: str = "default"
    connector_id: str = ""

    def __post_init__(self) -> None:
        check_id(self.sensor_id, "sensor_id")
        check_id(self.room, "room")

    def with_attribute(self, attribute: AttributeInfo) -> SensorInfo:
        """A copy with ``attribute`` added (or replaced)."""
        attrs = dict(self.attributes)
        attrs[attribute.attribute_id] = attribute
        return dataclasses.replace(self, attributes=attrs)

    def without_attribute(self, attribute_id: str) -> SensorInfo:
        """A copy with ``attribute_id`` removed."""
        attrs = {k: v for k, v in self.attributes.items() if k != attribute_id}
        return dataclasses.replace(self, attributes=attrs)


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """Consecutive samples of one (sensor, attribute).

    Attributes
    ----------
    sensor_id, attribute_id
        Whose samples these are.
    ts
        ``int64`` ns since the epoch (device clock), shape ``(n,)``, non-decreasing.
    values
        shape ``(n,)`` for scalar kinds or ``(n, width)`` for vector kinds.
    recv_ts
        ``int64`` ns arrival time per sample, set by :meth:`stamped`; ``None`` before.
    seq
        ``int64`` per-(sensor, attribute) sequence numbers, set by :meth:`stamped`.
    """

    sensor_id: str
    attribute_id: str
    ts: npt.NDArray[np.int64]
    values: npt.NDArray[Any]
    recv_ts: npt.NDArray[np.int64] | None = None
    seq: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def __str__(self) -> str:
        n = len(self)
        span = (int(self.ts[-1]) - int(self.ts[0])) / 1e9 if n else 0.0
        return f"Batch({self.sensor_id}/{self.attribute_id}, n={n}, span={span:.3f}s)"

    def stamped(self, recv_ns: int, first_seq: int) -> Batch:
        """This batch with arrival time ``recv_ns`` and sequence numbers from ``first_seq``."""
        n = len(self)
        return dataclasses.replace(
            self,
            recv_ts=np.full(n, recv_ns, dtype=np.int64),
            seq=np.arange(first_seq, first_seq + n, dtype=np.int64),
        )

    def validated(self, kind: KindSpec) -> Batch:
        """Check this batch against ``kind`` and return it with values in the kind's dtype.

        Raises
        ------
        ValidationError
            Empty or oversized batch, mismatched lengths, wrong value shape, non-finite
            values (NaN/inf), timestamps out of range or going backwards. The reason
            names the rule broken.
        """
        ts = np.asarray(self.ts)
        if ts.ndim != 1 or not np.issubdtype(ts.dtype, np.integer):
            raise ValidationError(
                "timestamps must be a 1-D integer array", reason="invalid_timestamp"
            )
        n = ts.shape[0]
        if n == 0:
            raise ValidationError("a batch must hold at least one sample", reason="empty_batch")
        if n > MAX_BATCH_SAMPLES:
            raise ValidationError(
                f"a batch may hold at most {MAX_BATCH_SAMPLES} samples, got {n}",
                reason="batch_too_large",
            )
        try:
            with np.errstate(over="ignore"):  # beyond the dtype's range: inf, refused below
                values = np.asarray(self.values, dtype=kind.dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValidationError(
                f"{kind.name} values must be numbers: {exc}", reason="invalid_value"
            ) from None
        expected = (n,) if kind.width == 1 else (n, kind.width)
        if kind.width == 1 and values.shape == (n, 1):
            values = values.reshape(n)
        if values.shape != expected:
            raise ValidationError(
                f"{kind.name} values for {n} samples must have shape {expected}, "
                f"got {values.shape}",
                reason="invalid_shape",
            )
        if not np.isfinite(values).all():
            raise ValidationError(
                f"{kind.name} values must be finite numbers (no NaN or infinity)",
                reason="non_finite_value",
            )
        ts = ts.astype(np.int64, copy=False)
        if ts.min() < _TS_MIN_NS or ts.max() >= _TS_MAX_NS:
            raise ValidationError(
                "timestamps must be ms since the epoch between 2000 and 2100",
                reason="invalid_timestamp",
            )
        if n > 1 and (np.diff(ts) < 0).any():
            raise ValidationError(
                "timestamps within a batch must not go backwards", reason="unordered_timestamps"
            )
        return dataclasses.replace(self, ts=ts, values=values)

    @classmethod
    def from_samples(
        cls,
        sensor_id: str,
        attribute_id: str,
        timestamps_ms: npt.ArrayLike,
        values: npt.ArrayLike,
    ) -> Batch:
        """Build an unvalidated batch from wire-style samples (ms timestamps)."""
        ts_arr = np.asarray(timestamps_ms)
        if ts_arr.dtype == object or not np.issubdtype(ts_arr.dtype, np.number):
            raise ValidationError(
                "timestamps must be numbers (ms since the epoch)", reason="invalid_timestamp"
            )
        if not np.isfinite(ts_arr.astype(np.float64)).all():
            raise ValidationError("timestamps must be finite", reason="invalid_timestamp")
        ts = ms_to_ns(ts_arr).reshape(-1)
        try:
            vals = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValidationError(
                f"values must be numbers: {exc}", reason="invalid_value"
            ) from None
        return cls(sensor_id, attribute_id, ts, vals)


def is_finite_number(value: object) -> bool:
    """True for an int or float (not bool) that is finite.

    An int must be within float range (JSON integers have no bound; one beyond it
    would make ``float()`` and numpy raise ``OverflowError``).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return -_FLOAT_MAX <= value <= _FLOAT_MAX
    return math.isfinite(value)
