"""How an engine runs: queue sizes, restarts, attention and load periods, storage settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sensocto_lab.engine.attention import AttentionConfig
from sensocto_lab.engine.load import LoadConfig, LoadSample
from sensocto_lab.engine.novelty import NoveltyConfig
from sensocto_lab.engine.supervisor import RestartPolicy
from sensocto_lab.errors import ConfigError
from sensocto_lab.model import Batch
from sensocto_lab.storage.config import StorageConfig

__all__ = ["EngineConfig", "LoadProbe"]

#: ``probe(loop_lag_s, queue_fill) -> LoadSample``: how the engine measures load.
LoadProbe = Callable[[float, float], LoadSample]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine runs.

    Attributes
    ----------
    inbound_maxsize
        Batches queued per sensor before ``ingest`` waits (back-pressure onto the
        producer instead of unbounded memory).
    restart
        When crashed sensor tasks are restarted and when they are given up on.
    inflight_retries
        How many times the batch a sensor task held when it crashed is processed again
        after the restart before it is failed back to its caller with ``LocalError``.
    attention
        Attention tiers, decay and battery caps (:class:`AttentionConfig`).
    attention_tick_s
        How often focus decay and vanished-viewer cleanup are applied, seconds (clock).
    load
        Load thresholds and hysteresis (:class:`LoadConfig`).
    load_interval_s
        How often load is sampled, seconds (clock).
    load_probe
        ``probe(loop_lag_s, queue_fill) -> LoadSample``; by default
        :class:`SystemProbe` adds system CPU and memory from psutil. Tests inject one.
    storage
        Settings of the default :class:`TieredStore` (ignored when a store is passed in).
    novelty
        Automatic ``novelty`` events from outliers in the slow physiological signals
        (:class:`~sensocto_lab.engine.novelty.NoveltyConfig`); ``None`` turns it off.
    fault
        Test hook: called with each validated batch inside the sensor task, just before
        it is stamped and stored. An exception it raises is a crash of that task
        (tests use it to prove restarts and isolation); ``None`` in production.
    """

    inbound_maxsize: int = 256
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    inflight_retries: int = 1
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    attention_tick_s: float = 1.0
    load: LoadConfig = field(default_factory=LoadConfig)
    load_interval_s: float = 1.0
    load_probe: LoadProbe | None = None
    storage: StorageConfig | None = None
    fault: Callable[[Batch], None] | None = None
    novelty: NoveltyConfig | None = field(default_factory=NoveltyConfig)

    def __post_init__(self) -> None:
        if self.inbound_maxsize < 1:
            raise ConfigError("inbound_maxsize must be at least 1")
        if self.inflight_retries < 0:
            raise ConfigError("inflight_retries must be >= 0")
        if not (self.attention_tick_s > 0 and self.load_interval_s > 0):
            raise ConfigError("attention_tick_s and load_interval_s must be > 0")
