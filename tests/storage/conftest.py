"""Fixtures of the storage tests (helpers live in ``support.storage``)."""

from support.storage import quiet_config, store

__all__ = ["quiet_config", "store"]
