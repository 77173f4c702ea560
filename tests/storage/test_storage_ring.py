"""SeriesRing: the newest samples, in order, whatever the batch sizes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensocto_lab.storage.ring import SeriesRing


def _extend(ring: SeriesRing, start: int, n: int, width: int = 1) -> None:
    seq = np.arange(start, start + n, dtype=np.int64)
    values = seq.astype(np.float32) if width == 1 else np.repeat(seq[:, None], width, 1) * 1.0
    ring.extend(seq * 10, values, seq * 10 + 1, seq)


@given(
    hot=st.integers(1, 20),
    warm=st.integers(0, 30),
    sizes=st.lists(st.integers(1, 70), min_size=1, max_size=12),
    n=st.one_of(st.none(), st.integers(0, 80)),
)
def test_latest_is_the_tail_of_everything_appended(
    hot: int, warm: int, sizes: list[int], n: int | None
) -> None:
    ring = SeriesRing(1, np.float32, hot, warm)
    total = 0
    for size in sizes:
        _extend(ring, total, size)
        total += size
    held = min(total, hot + warm)
    assert len(ring) == held
    assert ring.hot_count == min(held, hot) and ring.warm_count == held - ring.hot_count
    k = held if n is None else min(n, held)
    ts, values = ring.latest(n)
    np.testing.assert_array_equal(ts, np.arange(total - k, total) * 10)
    np.testing.assert_array_equal(values, np.arange(total - k, total, dtype=np.float32))
    assert ring.last_seq == total - 1
    assert ring.dropped_max_ts == (None if held == total else (total - held - 1) * 10)
    _, _, recv, seq = ring.snapshot()
    np.testing.assert_array_equal(seq, np.arange(total - held, total))
    np.testing.assert_array_equal(recv, seq * 10 + 1)


def test_vector_ring_and_resize_keep_the_newest() -> None:
    ring = SeriesRing(3, np.float64, 2, 3)
    _extend(ring, 0, 4, width=3)
    _extend(ring, 4, 3, width=3)
    _, values = ring.latest()
    assert values.shape == (5, 3)
    np.testing.assert_array_equal(values[:, 1], np.arange(2, 7))
    small = ring.resized(1, 1)
    np.testing.assert_array_equal(small.latest()[0], [50, 60])
    assert ring.dropped_max_ts == 10 and small.dropped_max_ts == 40
    assert small.limits == (1, 1)
    assert ring.latest()[0].shape == (5,)  # the original is untouched


def test_empty_ring_and_bad_limits() -> None:
    ring = SeriesRing(1, np.float64, 1, 0)
    assert ring.latest()[0].shape == (0,) and ring.last_seq is None
    with pytest.raises(ValueError):
        SeriesRing(1, np.float64, 0, 5)
