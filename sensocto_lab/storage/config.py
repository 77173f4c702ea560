"""How the tiered store is tuned: ring limits, WAL durability, segment rotation, Parquet.

Pure data; no I/O. Every number has a default that suits a laptop recording a room of
a few dozen sensors, and every one can be changed per store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sensocto_lab.errors import ValidationError
from sensocto_lab.model import KindSpec

__all__ = ["LOAD_SCALES", "StorageConfig"]

#: The in-memory scale for each load level, normal → critical (``docs/storage.md``).
LOAD_SCALES: tuple[float, ...] = (1.0, 0.5, 0.2, 0.05)


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Settings of a :class:`~sensocto_lab.storage.tiered.TieredStore`.

    Attributes
    ----------
    ring_limits
        ``{kind name: (hot, warm)}`` samples kept in memory per (sensor, attribute),
        overriding the kind's :attr:`~sensocto_lab.model.KindSpec.hot_limit` and
        ``warm_limit`` (ECG 150/500, default 50/100, skeleton 1/0).
    fsync_interval_s
        Seconds between fsyncs of the open WAL segments by the background thread. A
        power loss can lose at most this much acknowledged data; a killed process
        loses nothing (the bytes are already with the OS when ``append`` returns).
    segment_max_bytes, segment_max_age_s
        A WAL generation is sealed (and queued for compaction into Parquet) once its
        files hold this many bytes or it is this many seconds old.
    compaction_poll_s
        How often the background compactor looks for sealed or over-age segments.
    compaction_workers
        Series of one generation written to Parquet in parallel.
    compact_on_close
        :meth:`close` compacts the WAL so that the whole recording is in Parquet
        (readable by DuckDB, polars, ...) when it returns; ``False`` leaves that to
        the next open (a faster close).
    background
        Run the fsync and compaction threads. With ``False`` nothing happens behind
        the caller's back: :meth:`flush` and :meth:`compact` do the work (tests, tools).
    parquet_compression, parquet_compression_level
        Codec of the cold tier (``"zstd"`` by default).
    row_group_samples
        Largest Parquet row group, in samples.
    lazy_threshold_samples
        ``history(lazy=None)`` returns Dask-backed arrays once the selection holds more
        samples than this; below it the arrays are plain numpy.
    dask_chunk_samples
        Length of the time chunks of lazy history arrays.
    retention_days
        Cold partitions whose date is older than this many days are deleted by the
        compactor; ``None`` keeps everything.
    """

    ring_limits: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    fsync_interval_s: float = 1.0
    segment_max_bytes: int = 64 * 1024 * 1024
    segment_max_age_s: float = 60.0
    compaction_poll_s: float = 1.0
    compaction_workers: int = 4
    compact_on_close: bool = True
    background: bool = True
    parquet_compression: str = "zstd"
    parquet_compression_level: int | None = None
    row_group_samples: int = 1_048_576
    lazy_threshold_samples: int = 20_000_000
    dask_chunk_samples: int = 2_000_000
    retention_days: float | None = None

    def __post_init__(self) -> None:
        positive = {
            "fsync_interval_s": self.fsync_interval_s,
            "segment_max_bytes": self.segment_max_bytes,
            "segment_max_age_s": self.segment_max_age_s,
            "compaction_poll_s": self.compaction_poll_s,
            "compaction_workers": self.compaction_workers,
            "row_group_samples": self.row_group_samples,
            "lazy_threshold_samples": self.lazy_threshold_samples,
            "dask_chunk_samples": self.dask_chunk_samples,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValidationError(
                    f"StorageConfig.{name} must be positive, got {value!r}",
                    reason="invalid_config",
                )
        if self.retention_days is not None and not self.retention_days > 0:
            raise ValidationError(
                f"StorageConfig.retention_days must be positive or None, "
                f"got {self.retention_days!r}",
                reason="invalid_config",
            )
        for kind, limits in self.ring_limits.items():
            if len(limits) != 2 or min(limits) < 0 or limits[0] < 1:
                raise ValidationError(
                    f"ring limits of {kind!r} must be (hot >= 1, warm >= 0), got {limits!r}",
                    reason="invalid_config",
                )

    def limits(self, kind: KindSpec, scale: float = 1.0) -> tuple[int, int]:
        """The ``(hot, warm)`` ring sizes of ``kind`` under load ``scale``.

        Both tiers shrink with the scale; hot never drops below one sample, so
        :meth:`~sensocto_lab.storage.tiered.TieredStore.latest` always has the newest.
        """
        hot, warm = self.ring_limits.get(kind.name, (kind.hot_limit, kind.warm_limit))
        return max(1, int(hot * scale)), max(0, int(warm * scale))
