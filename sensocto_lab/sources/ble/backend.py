"""The one small interface every BLE radio implements, and what a scan finds.

:class:`~sensocto_lab.sources.ble.bleak_backend.BleakBackend` (a real adapter) and
:class:`~sensocto_lab.sources.ble.fake.FakeRadio` (a replayed strap) implement it; they
import this module and nothing of each other's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sensocto_lab.protocol import gatt

__all__ = ["BleBackend", "BleDevice", "NotifyCallback"]


@dataclass(frozen=True, slots=True)
class BleDevice:
    """A device seen advertising during a scan.

    Attributes
    ----------
    address
        What :class:`BleCapture` connects to (a MAC address, or a UUID on macOS).
    name
        Advertised local name (``"Polar H10 1A2B3C4D"``), or ``""``.
    rssi
        Signal strength, dBm.
    service_uuids
        Advertised 128-bit service UUIDs, lower case.
    """

    address: str
    name: str
    rssi: int
    service_uuids: tuple[str, ...] = ()

    @property
    def is_heart_rate(self) -> bool:
        """Whether it advertises the Heart Rate or the Polar PMD service."""
        return bool({gatt.HEART_RATE_SERVICE_UUID, gatt.PMD_SERVICE_UUID} & set(self.service_uuids))

    def __str__(self) -> str:
        return f"{self.name or '(no name)'} [{self.address}] {self.rssi} dBm"


NotifyCallback = Callable[[bytes], None]


@runtime_checkable
class BleBackend(Protocol):
    """One BLE central talking to one peripheral at a time.

    Callbacks (``on_disconnect``, notification callbacks) may be called from any
    thread; the caller makes them thread-safe. ``name`` says which radio it is
    (``"bleak"``, ``"fake"``) for output.
    """

    name: str

    async def scan(self, timeout: float) -> list[BleDevice]:
        """Devices seen advertising within ``timeout`` seconds."""
        ...

    async def connect(self, address: str, on_disconnect: Callable[[], None]) -> None:
        """Connect and discover services; ``on_disconnect`` is called if the link drops."""
        ...

    async def disconnect(self) -> None:
        """Close the link (no error when already closed)."""
        ...

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the connected device offers the characteristic ``uuid``."""
        ...

    async def start_notify(self, uuid: str, callback: NotifyCallback) -> None:
        """Subscribe to notifications/indications of ``uuid``."""
        ...

    async def read_gatt_char(self, uuid: str) -> bytes:
        """Read the value of ``uuid``."""
        ...

    async def write_gatt_char(self, uuid: str, data: bytes) -> None:
        """Write ``data`` to ``uuid`` with response."""
        ...
