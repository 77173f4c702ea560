"""Merging consecutive pushes into few batches: order, splits, refusals, size caps."""

from __future__ import annotations

import numpy as np

from sensocto_lab.model import MAX_BATCH_SAMPLES, Batch
from sensocto_lab.protocol.chunks import merge
from sensocto_lab.protocol.sensor import (
    Sample,
    batches_from_measurements,
    sample_from_measurement,
    sensor_info_from_join,
)

MS = 1_767_225_600_000
INFO = sensor_info_from_join(
    "s1", {"attributes": ["hr", {"attribute_id": "acc", "attribute_type": "accelerometer"}]}
)


def _s(attr: str, ms: int, value: object = 1.0) -> Sample:
    return sample_from_measurement(INFO, {"attribute_id": attr, "payload": value, "timestamp": ms})


def test_merge_groups_in_order_and_splits_where_time_goes_back() -> None:
    items = [
        _s("hr", MS),
        _s("acc", MS, [0, 0, 1]),
        _s("hr", MS + 2),
        _s("hr", MS + 1),
        _s("hr", MS + 3),
    ]
    chunks, errors = merge(INFO, items)  # type: ignore[arg-type]
    assert errors == {}
    assert [(c.batch.attribute_id, c.members) for c in chunks] == [
        ("hr", {0: 1, 2: 1}),
        ("acc", {1: 1}),
        ("hr", {3: 1, 4: 1}),
    ]
    assert chunks[0].batch.ts.tolist() == [MS * 10**6, (MS + 2) * 10**6]
    assert chunks[1].batch.values.shape == (1, 3)


def test_merge_refuses_only_the_bad_items() -> None:
    batch = batches_from_measurements(
        INFO, {"attribute_id": "hr", "t0": MS + 10, "dt": 1, "values": [1, 2]}
    )[0]
    items = [_s("hr", MS), _s("hr", 5), _s("hr", MS + 2), batch]
    chunks, errors = merge(INFO, items)
    assert list(errors) == [1] and errors[1].reason == "invalid_timestamp"
    stored = {i for c in chunks for i in c.members}
    assert stored == {0, 2, 3}
    assert sum(len(c.batch) for c in chunks) == 4


def test_merge_caps_chunk_size() -> None:
    n = MAX_BATCH_SAMPLES // 2 + 1
    parts = [
        Batch("s1", "hr", (MS + np.arange(k * n, (k + 1) * n)) * 10**6, np.ones(n)).validated(
            INFO.attributes["hr"].kind
        )
        for k in range(3)
    ]
    chunks, errors = merge(INFO, parts)  # type: ignore[arg-type]
    assert errors == {} and [list(c.members) for c in chunks] == [[0], [1], [2]]
