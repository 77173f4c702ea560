"""Helpers shared by the storage tests: deterministic stamped batches, store fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sensocto_lab.model import KINDS, Batch, KindSpec
from sensocto_lab.storage import StorageConfig, TieredStore

T0_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
ECG = KINDS["ecg"]
ACC = KINDS["accelerometer"]
RESP = KINDS["respiration"]


def make_batch(
    sensor: str,
    attribute: str,
    kind: KindSpec,
    first_seq: int,
    n: int,
    rate_hz: float = 512.0,
    t0_ns: int = T0_NS,
) -> Batch:
    """``n`` samples from ``first_seq``, values a function of seq (so tests can recompute).

    Timestamps are ``t0 + seq / rate``; values are quantised like an ADC and use every
    bit pattern class (negative, fractional) so bit-equality is a real check.
    """
    seq = np.arange(first_seq, first_seq + n, dtype=np.int64)
    ts = t0_ns + np.round(seq * (1e9 / rate_hz)).astype(np.int64)
    base = np.sin(seq * 0.05) * 1.7 + (seq % 7) * 0.013
    if kind.width == 1:
        values = base.astype(kind.dtype)
    else:
        values = np.stack([base * (j + 1) - j for j in range(kind.width)], axis=1).astype(
            kind.dtype
        )
    recv = ts[-1] + 5_000_000
    return Batch(sensor, attribute, ts, values).stamped(int(recv), first_seq)


@pytest.fixture
def quiet_config() -> StorageConfig:
    """No background threads: the test decides when to fsync and compact."""
    return StorageConfig(background=False)


@pytest.fixture
def store(tmp_path: Path, quiet_config: StorageConfig) -> Iterator[TieredStore]:
    s = TieredStore.open(tmp_path / "data", quiet_config)
    yield s
    s.close()
