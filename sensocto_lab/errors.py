"""The exception tree of sensocto_lab.

Every error says whose fault it was and carries a machine-readable ``reason``
(the string a Phoenix ``phx_reply`` sends back as ``{"reason": ...}``)::

    SensoctoError                      base; .reason (str), .detail (str)
    ├── PeerError                      the other side sent something we refuse
    │   ├── ProtocolError              a frame that is not Phoenix Channels v2
    │   ├── ValidationError            samples/params that break the model's rules
    │   ├── AuthError                  missing or wrong token, bad origin
    │   ├── LimitExceeded              frame too large, rate limit, flood
    │   └── UnknownSensorError         a sensor or attribute that is not registered
    └── LocalError                     our side cannot do what was asked
        ├── ConfigError                a setting or argument given to us is out of range
        ├── ClosedResourceError        engine, store, socket or channel already closed
        ├── SensorFailedError          a sensor task kept crashing and was stopped
        └── StorageError               the WAL or cold tier could not be written/read

Peer errors are answered (an ``error`` reply) and the engine carries on; local
errors are bugs or shutdown races and are raised to the caller.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ClosedResourceError",
    "ConfigError",
    "LimitExceeded",
    "LocalError",
    "PeerError",
    "ProtocolError",
    "SensoctoError",
    "SensorFailedError",
    "StorageError",
    "UnknownSensorError",
    "ValidationError",
]


class SensoctoError(Exception):
    """Base of every sensocto_lab error.

    Parameters
    ----------
    detail
        A sentence a person can read: what was wrong and, where useful, what to do.
    reason
        A short machine-readable code (``snake_case``), sent to peers as the reply reason.
    """

    default_reason = "error"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason or self.default_reason

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class PeerError(SensoctoError):
    """The peer (device, connector, viewer, caller's data) is at fault."""

    default_reason = "bad_request"


class ProtocolError(PeerError):
    """A frame that does not follow Phoenix Channels v2 (bad JSON, wrong shape)."""

    default_reason = "protocol_error"


class ValidationError(PeerError):
    """Samples or parameters that break the data model (NaN, wrong shape, unknown kind)."""

    default_reason = "invalid_payload"


class AuthError(PeerError):
    """Missing or wrong ingest token, or a disallowed origin."""

    default_reason = "unauthorized"


class LimitExceeded(PeerError):
    """A frame too large, a rate limit hit, or a flood of messages."""

    default_reason = "limit_exceeded"


class UnknownSensorError(PeerError):
    """A sensor or attribute that is not registered with the engine."""

    default_reason = "unknown_sensor"


class LocalError(SensoctoError):
    """Our own side cannot do what was asked."""

    default_reason = "internal_error"


class ConfigError(LocalError, ValueError):
    """A configuration value or argument given to us in code is out of range.

    Raised where the engine, a store, a source or a widget is set up, never for what a
    peer sends (that is a :class:`ValidationError`). Also a :class:`ValueError`, so
    plain Python callers can catch it as one.
    """

    default_reason = "invalid_config"


class ClosedResourceError(LocalError):
    """The engine, store, socket or channel has been closed."""

    default_reason = "closed"


class SensorFailedError(LocalError):
    """A sensor task kept crashing after restarts and has been stopped."""

    default_reason = "sensor_failed"


class StorageError(LocalError):
    """The write-ahead log or the cold tier could not be written or read."""

    default_reason = "storage_error"
