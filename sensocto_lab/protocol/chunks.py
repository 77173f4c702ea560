"""Many pushes, few ingests: merging the work of consecutive pushes into few batches.

Pure, no I/O. A sensor channel validates each push as it arrives
(:mod:`sensocto_lab.protocol.sensor`) and stores what queued up meanwhile in as few
``engine.ingest`` calls as it can: :func:`merge` gathers the items of consecutive pushes
(one-sample :class:`~sensocto_lab.protocol.sensor.Sample` s and validated batches) into
time-ordered chunks per attribute and says which push each sample came from, so every
push still gets its own reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sensocto_lab.errors import PeerError, ValidationError
from sensocto_lab.model import MAX_BATCH_SAMPLES, Batch, KindSpec, SensorInfo
from sensocto_lab.protocol.sensor import Sample

__all__ = ["Chunk", "merge"]


@dataclass(slots=True)
class Chunk:
    """Consecutive, time-ordered samples of one attribute from several pushes.

    ``members`` maps the index of each contributing item to its number of samples.
    """

    batch: Batch
    members: dict[int, int]


class _Open:
    """A chunk being gathered: segments of arrays and runs of single samples."""

    def __init__(self, attribute_id: str) -> None:
        self.attribute_id = attribute_id
        self.ts: list[Any] = []
        self.values: list[Any] = []
        self.singles_ts: list[int] = []
        self.singles_values: list[Any] = []
        self.members: dict[int, int] = {}
        self.last_ts = -(2**63)
        self.n = 0
        self.has_singles = False

    def add(self, index: int, item: Sample | Batch) -> None:
        self.n += _len(item)
        if isinstance(item, Sample):
            self.has_singles = True
            self.singles_ts.append(item.ts_ns)
            self.singles_values.append(item.value)
            self.members[index] = 1
            self.last_ts = item.ts_ns
        else:
            self._close_singles()
            self.ts.append(item.ts)
            self.values.append(item.values)
            self.members[index] = len(item)
            self.last_ts = int(item.ts[-1])

    def _close_singles(self) -> None:
        if self.singles_ts:
            self.ts.append(np.asarray(self.singles_ts, dtype=np.int64))
            self.values.append(np.asarray(self.singles_values, dtype=np.float64))
            self.singles_ts, self.singles_values = [], []

    def build(self, sensor_id: str) -> Batch:
        self._close_singles()
        ts = self.ts[0] if len(self.ts) == 1 else np.concatenate(self.ts)
        values = self.values[0] if len(self.values) == 1 else np.concatenate(self.values)
        return Batch(sensor_id, self.attribute_id, ts, values)


def _len(item: Sample | Batch) -> int:
    return 1 if isinstance(item, Sample) else len(item)


def _first_ts(item: Sample | Batch) -> int:
    return item.ts_ns if isinstance(item, Sample) else int(item.ts[0])


def merge(
    info: SensorInfo, items: list[Sample | Batch]
) -> tuple[list[Chunk], dict[int, PeerError]]:
    """Merge the items of consecutive pushes into few validated batches, in order.

    ``Batch`` items must already be validated (as :func:`batches_from_measurements`
    returns them); :class:`Sample` items are validated here, many at a time.

    Items of one attribute join a chunk while their timestamps do not go backwards;
    otherwise a new chunk starts, so every chunk is a valid batch and chunks keep the
    arrival order. A chunk that fails validation is checked item by item: the faulty
    items are returned as errors (by index), the others still form chunks.

    Returns
    -------
    chunks
        Validated batches with the items (index → samples) they hold.
    errors
        Index → error of the items that were refused.
    """
    opened: list[_Open] = []
    current: dict[str, _Open] = {}
    for index, item in enumerate(items):
        chunk = current.get(item.attribute_id)
        if (
            chunk is None
            or _first_ts(item) < chunk.last_ts
            or chunk.n + _len(item) > MAX_BATCH_SAMPLES
        ):
            chunk = current[item.attribute_id] = _Open(item.attribute_id)
            opened.append(chunk)
        chunk.add(index, item)
    chunks: list[Chunk] = []
    errors: dict[int, PeerError] = {}
    for chunk in opened:
        kind = info.attributes[chunk.attribute_id].kind
        try:
            batch = chunk.build(info.sensor_id)
            # validated batches, ordered and size-capped by the chunking, stay valid
            chunks.append(
                Chunk(batch.validated(kind) if chunk.has_singles else batch, chunk.members)
            )
            continue
        except (PeerError, ValueError):
            pass
        good: list[Sample | Batch] = []
        where: list[int] = []
        for index in chunk.members:
            item = items[index]
            try:
                if isinstance(item, Sample):
                    Batch(
                        info.sensor_id,
                        item.attribute_id,
                        np.asarray([item.ts_ns], dtype=np.int64),
                        np.asarray([item.value], dtype=np.float64),
                    ).validated(kind)
                good.append(item)
                where.append(index)
            except (PeerError, ValueError) as exc:
                errors[index] = (
                    exc
                    if isinstance(exc, PeerError)
                    else ValidationError(str(exc), reason="invalid_value")
                )
        if len(good) == len(chunk.members):  # each fine alone: keep them apart
            chunks.extend(_alone(info, items, where, kind))
        elif good:
            sub, sub_errors = merge(info, good)
            for c in sub:
                c.members = {where[i]: n for i, n in c.members.items()}
            chunks.extend(sub)
            errors.update({where[i]: e for i, e in sub_errors.items()})
    return chunks, errors


def _alone(
    info: SensorInfo, items: list[Sample | Batch], indices: list[int], kind: KindSpec
) -> list[Chunk]:
    chunks = []
    for index in indices:
        one = _Open(items[index].attribute_id)
        one.add(index, items[index])
        chunks.append(Chunk(one.build(info.sensor_id).validated(kind), one.members))
    return chunks
