"""Storage: hot/warm numpy rings, an Arrow IPC write-ahead log, and a Parquet cold tier.

``TieredStore.open(data_dir)`` is the engine's default store (contract in
:mod:`sensocto_lab.storage.base`); ``StorageConfig`` tunes it.
"""

from sensocto_lab.storage.base import Store
from sensocto_lab.storage.config import LOAD_SCALES, StorageConfig
from sensocto_lab.storage.tiered import StoredSeries, TieredStore

__all__ = ["LOAD_SCALES", "StorageConfig", "Store", "StoredSeries", "TieredStore"]
