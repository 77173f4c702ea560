"""Storage: hot/warm numpy rings, an Arrow IPC write-ahead log, and a Parquet cold tier.

``TieredStore.open(data_dir)`` is the engine's default store (contract in
:mod:`sensocto_lab.storage.base`); ``StorageConfig`` tunes it; ``SessionInfo`` is what
``store.session`` returns. Modules of this package import each other directly, never
this ``__init__``, so importing any one of them imports no cycle.
"""

from sensocto_lab.storage.base import Store
from sensocto_lab.storage.config import LOAD_SCALES, StorageConfig
from sensocto_lab.storage.session import SessionInfo
from sensocto_lab.storage.tiered import StoredSeries, TieredStore

__all__ = ["LOAD_SCALES", "SessionInfo", "StorageConfig", "Store", "StoredSeries", "TieredStore"]
