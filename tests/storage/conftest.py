"""Fixtures of the storage tests (helpers live in ``storage_helpers``)."""

from storage_helpers import quiet_config, store

__all__ = ["quiet_config", "store"]
