"""Pick a BLE radio by name and scan for heart-rate straps with it."""

from __future__ import annotations

import sys

from sensocto_lab.errors import LocalError
from sensocto_lab.sources.ble.backend import BleBackend, BleDevice
from sensocto_lab.sources.ble.bleak_backend import BleakBackend
from sensocto_lab.sources.ble.fake import FakeRadio

__all__ = ["resolve_backend", "scan"]


def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


async def resolve_backend(backend: str | BleBackend = "auto") -> BleBackend:
    """Turn ``"bleak"``, ``"fake"`` or ``"auto"`` into a backend instance.

    ``"auto"`` uses bleak when an adapter is usable. Without one it falls back to the
    fake radio **only inside a notebook kernel**, and prints that it did so; anywhere
    else it raises, so a lab script never records a replay by mistake.

    Raises
    ------
    LocalError
        ``no_ble_adapter`` for ``"auto"`` outside a notebook with no adapter;
        ``invalid_backend`` for an unknown name.
    """
    if not isinstance(backend, str):
        return backend
    if backend == "bleak":
        return BleakBackend()
    if backend == "fake":
        return FakeRadio()
    if backend != "auto":
        raise LocalError(
            f"BLE backend must be 'auto', 'bleak', 'fake' or a BleBackend, got {backend!r}",
            reason="invalid_backend",
        )
    why_not = await BleakBackend.available()
    if why_not is None:
        return BleakBackend()
    if _in_notebook():
        print(f"{why_not}: using the fake radio (a replayed Polar H10 session) instead.")
        return FakeRadio()
    raise LocalError(
        f"{why_not}; pass backend='fake' to replay a recording", reason="no_ble_adapter"
    )


async def scan(timeout: float = 5.0, *, backend: str | BleBackend = "auto") -> list[BleDevice]:
    """Devices advertising the Heart Rate service (0x180D) or Polar PMD, strongest first.

    Parameters
    ----------
    timeout
        Seconds to listen for advertisements.
    backend
        ``"auto"``, ``"bleak"``, ``"fake"`` or a :class:`BleBackend` (see
        :func:`resolve_backend`).
    """
    radio = await resolve_backend(backend)
    devices = await radio.scan(timeout)
    return sorted((d for d in devices if d.is_heart_rate), key=lambda d: -d.rssi)
