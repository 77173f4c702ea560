"""BLE capture: a backend interface, the bleak backend, a fake radio, and the capture loop."""
