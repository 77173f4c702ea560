"""The coalescer: at most max_hz flushes, last state never lost; checked on real comm messages."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import comm
import numpy as np
import pytest
from comm.base_comm import BaseComm

from sensocto_lab.clock import FakeClock
from sensocto_lab.ui.notebook._coalesce import Coalescer
from sensocto_lab.ui.notebook.strip import StripWidget
from sensocto_lab.ui.notebook.sync_widget import SyncWidget


class ManualSchedule:
    """Deferred callbacks kept in a list and run by the test when the fake clock says so."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.pending.append((self.clock.monotonic() + delay, callback))

    def run_due(self) -> int:
        due = [(t, f) for t, f in self.pending if t <= self.clock.monotonic() + 1e-12]
        self.pending = [(t, f) for t, f in self.pending if t > self.clock.monotonic() + 1e-12]
        for _, f in due:
            f()
        return len(due)


class RecordingComm(BaseComm):
    """A comm that keeps every message ipywidgets publishes (no kernel needed)."""

    def __init__(self, **kwargs: Any) -> None:
        self.sent: list[tuple[str, dict[str, Any], list[Any]]] = []
        super().__init__(**kwargs)

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
        **keys: Any,
    ) -> None:
        self.sent.append((msg_type, data or {}, list(buffers or [])))

    def updates(self) -> list[dict[str, Any]]:
        return [d for t, d, _ in self.sent if t == "comm_msg" and d.get("method") == "update"]


@pytest.fixture
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    yield


def test_flushes_at_most_max_hz_and_always_sends_the_last_request() -> None:
    clock = FakeClock()
    schedule = ManualSchedule(clock)
    seen: list[int] = []
    state = {"value": 0}
    c = Coalescer(lambda: seen.append(state["value"]), max_hz=15, clock=clock, schedule=schedule)
    for i in range(1, 2001):  # 2000 requests over 2 s
        state["value"] = i
        c.request()
        clock.advance(0.001)
        schedule.run_due()
    clock.advance(1.0)
    schedule.run_due()
    assert seen[-1] == 2000
    assert len(seen) <= 2 * 15 + 1
    assert len(seen) >= 2 * 15 - 1  # it does keep sending while fed
    stats = c.statistics()
    assert (stats.requests, stats.flushes, stats.failures) == (2000, len(seen), 0)


def test_first_request_is_sent_without_delay_and_idle_means_no_flush() -> None:
    clock = FakeClock()
    schedule = ManualSchedule(clock)
    seen: list[float] = []
    c = Coalescer(lambda: seen.append(clock.monotonic()), clock=clock, schedule=schedule)
    assert schedule.run_due() == 0
    c.request()
    assert schedule.pending[0][0] == clock.monotonic()
    schedule.run_due()
    assert seen == [0.0]
    clock.advance(10)
    schedule.run_due()
    assert seen == [0.0]


def test_a_failing_flush_is_counted_and_later_requests_still_flush() -> None:
    clock = FakeClock()
    schedule = ManualSchedule(clock)
    calls: list[int] = []

    def flush() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("view gone")

    c = Coalescer(flush, clock=clock, schedule=schedule)
    c.request()
    schedule.run_due()
    clock.advance(1)
    c.request()
    schedule.run_due()
    assert len(calls) == 2
    assert c.statistics().failures == 1
    assert isinstance(c.last_error, RuntimeError)


def test_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="max_hz"):
        Coalescer(lambda: None, max_hz=0)


def test_requests_from_many_threads_end_in_one_final_flush_on_the_timer_thread() -> None:
    done = threading.Event()
    count = {"n": 0}
    lock = threading.Lock()

    def flush() -> None:
        with lock:
            count["n"] += 1
        done.set()

    c = Coalescer(flush, max_hz=1000)  # no loop running here: timer threads

    def feed() -> None:
        for _ in range(200):
            c.request()

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done.wait(10)
    c.flush_now()
    assert c.statistics().requests == 800
    assert 1 <= count["n"] <= 800


def test_sync_widget_sends_at_most_15_comm_updates_per_second(recording_comm: None) -> None:
    clock = FakeClock()
    schedule = ManualSchedule(clock)
    w = SyncWidget(clock=clock, schedule=schedule)
    rng = np.random.default_rng(0)
    for _ in range(1000):  # 1000 updates over 1 s of fake time
        w.update(phases=rng.uniform(0, 2 * np.pi, 8))
        clock.advance(0.001)
        schedule.run_due()
    clock.advance(1)
    schedule.run_due()
    updates = w.comm.updates()
    assert 1 <= len(updates) <= 16
    # The last message carries the last phases as a binary buffer, not a JSON list.
    _, data, buffers = next(m for m in reversed(w.comm.sent) if m[1].get("method") == "update")
    paths = [p[0] for p in data["buffer_paths"]]
    assert "phases" in paths
    assert bytes(buffers[paths.index("phases")]) == w.phases
    assert np.frombuffer(w.phases, np.float32).size == 8


def test_strip_widget_update_message_carries_float32_buffers(recording_comm: None) -> None:
    clock = FakeClock()
    schedule = ManualSchedule(clock)
    w = StripWidget(clock=clock, schedule=schedule)
    ts = clock.time_ns() + np.arange(50, dtype=np.int64) * 10_000_000
    w.update("s1/respiration", ts, np.sin(np.arange(50) / 5), unit="a.u.")
    schedule.run_due()
    (update,) = w.comm.updates()
    _, data, buffers = next(m for m in w.comm.sent if m[1].get("method") == "update")
    paths = [p[0] for p in data["buffer_paths"]]
    assert {"times", "values"} <= set(paths)
    values = np.frombuffer(bytes(buffers[paths.index("values")]), np.float32)
    np.testing.assert_allclose(values, np.sin(np.arange(50) / 5), rtol=1e-6)
    assert update["state"]["channels"] == ["s1/respiration"]


def test_repr_mimebundle_names_the_widget_model(recording_comm: None) -> None:
    w = SyncWidget(schedule=lambda d, f: None)
    bundle, _ = w._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == w.model_id == w.comm.comm_id
    # The comm was opened with the full state, the ESM among it.
    opened = [d for t, d, _ in w.comm.sent if t == "comm_open"]
    assert opened and "render" in opened[0]["state"]["_esm"]
