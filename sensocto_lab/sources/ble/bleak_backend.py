"""The real radio, through bleak: the only module of the package that imports bleak."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sensocto_lab.errors import ClosedResourceError
from sensocto_lab.sources.ble.backend import BleDevice, NotifyCallback

if TYPE_CHECKING:
    from bleak import BleakClient

__all__ = ["BleakBackend"]


class BleakBackend:
    """The real radio, through bleak (imported here, lazily, and nowhere else).

    Parameters
    ----------
    connect_timeout
        Seconds to wait for a connection and service discovery.
    client_backend
        A bleak client backend class (bleak's ``backend=``); ``None`` lets bleak pick
        the platform's (BlueZ, CoreBluetooth, WinRT).
    """

    name = "bleak"

    def __init__(self, connect_timeout: float = 20.0, client_backend: type | None = None) -> None:
        self._timeout = connect_timeout
        self._client_backend = client_backend
        self._client: BleakClient | None = None

    @staticmethod
    async def available() -> str | None:
        """``None`` when a usable adapter is present, else why not (a sentence)."""
        try:
            from bleak import BleakScanner
        except ImportError:
            return "bleak is not installed (pip install 'sensocto_lab[ble]')"
        try:
            async with BleakScanner():
                pass
        except Exception as exc:  # bleak raises backend-specific errors here
            return f"no usable Bluetooth adapter ({type(exc).__name__}: {exc})"
        return None

    async def scan(self, timeout: float) -> list[BleDevice]:
        from bleak import BleakScanner

        found = await BleakScanner.discover(timeout=timeout, return_adv=True)
        return [
            BleDevice(
                device.address,
                device.name or adv.local_name or "",
                adv.rssi,
                tuple(u.lower() for u in adv.service_uuids),
            )
            for device, adv in found.values()
        ]

    async def connect(self, address: str, on_disconnect: Callable[[], None]) -> None:
        from bleak import BleakClient

        client = BleakClient(
            address,
            disconnected_callback=lambda _client: on_disconnect(),
            timeout=self._timeout,
            backend=self._client_backend,
        )
        await client.connect()
        self._client = client

    def _connected(self) -> BleakClient:
        if self._client is None:
            raise ClosedResourceError("not connected to a BLE device", reason="not_connected")
        return self._client

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.disconnect()

    def has_characteristic(self, uuid: str) -> bool:
        return self._connected().services.get_characteristic(uuid) is not None

    async def start_notify(self, uuid: str, callback: NotifyCallback) -> None:
        await self._connected().start_notify(uuid, lambda _char, data: callback(bytes(data)))

    async def read_gatt_char(self, uuid: str) -> bytes:
        return bytes(await self._connected().read_gatt_char(uuid))

    async def write_gatt_char(self, uuid: str, data: bytes) -> None:
        await self._connected().write_gatt_char(uuid, data, response=True)
