"""A sensor channel fed arbitrary JSON in every field, through a real server and socket.

Every ``measurement``, ``measurements_batch`` and ``measurements_binary`` push, whatever
its fields hold (huge integers, NaN, strings, nesting, missing or extra fields, broken
binary headers), gets a reply; a valid push after it is acknowledged; and the store
gains exactly the samples an ``ok`` reply counted (none for an ``error``). 200 examples;
``--fuzz-long`` runs 100 000.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.engine import MemoryStore
from support.server import MS, WAIT, Raw

from sensocto_lab.engine.engine import Engine
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.server import IngestServer, serve
from sensocto_lab.protocol.binary import MAGIC, encode_batch
from sensocto_lab.protocol.frames import Message, encode_binary

TOPIC = "sensor:fz"
JOIN = {
    "attributes": [
        {"attribute_id": "hr", "attribute_type": "hr"},
        {"attribute_id": "ecg", "attribute_type": "ecg"},
        {"attribute_id": "acc", "attribute_type": "accelerometer"},
    ]
}
#: Every reason docs/protocol.md lists for a sensor push (internal_error is a bug).
REASONS = {
    "invalid_payload",
    "invalid_binary_batch",
    "invalid_attribute_id",
    "missing_fields",
    "invalid_value",
    "non_finite_value",
    "invalid_shape",
    "invalid_timestamp",
    "unordered_timestamps",
    "batch_too_large",
    "invalid_batch",
    "empty_batch",
}
EDGES = [10**400, -(10**400), 2**63, 2**64, -(2**63) - 1, 10**13, 2**58 + MS, 2**62, -1, 0]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGES),
    st.floats(),  # NaN and infinities too (sent as the literals the standard codec reads)
    st.text(max_size=6),
)
anything = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def mostly(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``plausible`` three times in four, else anything (so that some pushes are stored)."""
    return st.one_of(plausible, plausible, plausible, anything)


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about one time in ``n`` (integers would favour their bounds)."""
    return st.sampled_from([True] + [False] * (n - 1))


attribute = mostly(st.sampled_from(["hr", "ecg", "acc", "hr", "ecg", "acc", "nope"]))
timestamp = mostly(st.integers(MS - 10**6, MS + 10**9) | st.floats(MS - 1e6, MS + 1e9))
number = st.floats(-1e3, 1e3) | st.integers(-1000, 1000)
value = mostly(
    number
    | st.lists(number, min_size=3, max_size=3)
    | st.fixed_dictionaries({"x": number, "y": number, "z": number})
)


@st.composite
def fields(draw: st.DrawFn, **strategies: st.SearchStrategy[Any]) -> dict[str, Any]:
    """An object with these fields (each plausible or arbitrary), now and then one
    missing or some more."""
    out = {k: draw(s) for k, s in strategies.items() if draw(one_in(20)) is False}
    if draw(one_in(10)):
        out.update(draw(st.dictionaries(st.text(max_size=6), anything, max_size=2)))
    return out


def good_value(attr: object) -> st.SearchStrategy[Any]:
    """A valid payload for ``attr``'s kind (acc: x, y, z; the others: a number)."""
    if attr == "acc":
        return st.lists(number, min_size=3, max_size=3) | st.fixed_dictionaries(
            {"x": number, "y": number, "z": number}
        )
    return number


@st.composite
def measurement(draw: st.DrawFn) -> dict[str, Any]:
    attr = draw(attribute)
    return draw(
        fields(attribute_id=st.just(attr), payload=mostly(good_value(attr)), timestamp=timestamp)
    )


@st.composite
def columnar(draw: st.DrawFn) -> dict[str, Any]:
    attr, n = draw(attribute), draw(st.integers(0, 6))
    stamps = st.lists(st.integers(MS, MS + 10**9), min_size=n, max_size=n).map(sorted)
    timing = draw(
        st.fixed_dictionaries({"timestamps": mostly(stamps)})
        | st.fixed_dictionaries({"t0": timestamp, "dt": mostly(st.floats(0, 1e4))})
    )
    values = mostly(st.lists(mostly(good_value(attr)), min_size=n, max_size=n))
    return draw(
        fields(
            attribute_id=st.just(attr), values=values, **{k: st.just(v) for k, v in timing.items()}
        )
    )


batch = mostly(
    st.lists(measurement(), max_size=4)
    | st.fixed_dictionaries({"measurements": mostly(st.lists(measurement(), max_size=4))})
    | columnar()
)
int64 = st.integers(-(2**63), 2**63 - 1)
stamp_ns = st.one_of(*[st.integers(MS * 10**6, (MS + 10**9) * 10**6)] * 3, int64)


@st.composite
def binary(draw: st.DrawFn) -> bytes:
    """A batch block from arbitrary fields, maybe with its header or length broken."""
    attr = draw(mostly(st.sampled_from(["hr", "ecg", "acc", "nope"])))
    attr = attr if isinstance(attr, str) and len(attr.encode()) < 2**16 else "hr"
    n = draw(st.integers(1, 5))
    w = draw(st.sampled_from([3 if attr == "acc" else 1] * 3 + [1, 2, 3]))
    values = np.asarray(
        draw(st.lists(st.floats(width=32), min_size=n * w, max_size=n * w)), dtype=np.float32
    ).reshape(n, w)
    if draw(st.booleans()):
        block = encode_batch(attr, values, ts=draw(st.lists(stamp_ns, min_size=n, max_size=n)))
    else:
        dt = draw(mostly(st.floats(0, 1e9)).map(lambda d: d if isinstance(d, float) else -1.0))
        block = encode_batch(attr, values, t0_ns=draw(stamp_ns), dt_ns=dt)
    if draw(one_in(4)):  # break it: a header field, or the length
        at = draw(st.integers(0, len(block)))
        block = block[:at] + draw(st.binary(max_size=4)) + block[at + draw(st.integers(0, 4)) :]
    if draw(one_in(10)):
        block = MAGIC + draw(st.binary(max_size=40))
    return block


pushes = st.one_of(
    st.tuples(st.just("measurement"), mostly(measurement())),
    st.tuples(st.just("measurements_batch"), batch),
    st.tuples(st.just("measurements_binary"), binary()),
)


class Lab:
    """A real engine (with a store that counts what it got) and server, on their own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = MemoryStore()
        self.engine = Engine(store=self.store, thread=False)
        self.valid = 0
        self._counted: dict[tuple[str, str], int] = {}  # batches counted, per series
        self._samples = 0

    def stored(self) -> int:
        """Samples the store holds (counting only the batches new since last asked)."""
        for key, got in self.store.batches.items():
            done = self._counted.get(key, 0)
            self._samples += sum(len(b) for b in got[done:])
            self._counted[key] = len(got)
        return self._samples

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 2 * WAIT))

    async def start(self) -> None:
        await self.engine.__aenter__()
        config = ServerConfig.open(rate_per_s=1e9, burst=10**9)  # the fuzzer is fast
        self.server: IngestServer = await serve(self.engine, config=config)
        self.raw = await Raw.open(self.server.url)
        assert (await self.raw.join(TOPIC, JOIN))["status"] == "ok"

    async def stop(self) -> None:
        await self.raw.close()
        await self.server.close()
        await self.engine.__aexit__(None, None, None)

    async def push(self, event: str, payload: Any) -> dict[str, Any]:
        """Send one push; its reply, after checking the store gained what it counts."""
        before = self.stored()
        ref = self.raw.ref()
        if isinstance(payload, bytes):
            await self.raw.send(encode_binary(Message("1", ref, TOPIC, event, payload)))
        else:
            await self.raw.send(json.dumps(["1", ref, TOPIC, event, payload]))
        reply = await self.raw.reply(ref)
        stored = reply["response"]["stored"] if reply["status"] == "ok" else 0
        assert self.stored() - before == stored, (event, payload, reply)
        return reply

    async def one(self, event: str, payload: Any) -> None:
        reply = await self.push(event, payload)
        if reply["status"] == "error":
            assert reply["response"]["reason"] in REASONS, reply
            assert reply["response"]["detail"]
        self.valid += 1  # the channel still works
        ok = await self.push(
            "measurement",
            {"attribute_id": "hr", "payload": 60, "timestamp": MS + 10**10 + self.valid},
        )
        assert ok == {"status": "ok", "response": {"stored": 1, "duplicates": 0}}


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    lab.run(lab.start())
    yield lab
    lab.run(lab.stop())
    lab.loop.close()


def test_any_push_is_answered_and_stores_what_it_acknowledges(lab: Lab, fuzz_examples: int) -> None:
    @settings(
        max_examples=fuzz_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(pushes)
    def one(push: tuple[str, Any]) -> None:
        lab.run(lab.one(*push))

    one()
    for (_, attr), got in lab.store.batches.items():  # what was stored is sane
        for b in got:
            assert ((b.ts >= 946_684_800 * 10**9) & (b.ts < 4_102_444_800 * 10**9)).all(), attr
            assert np.isfinite(b.values).all(), attr
    assert lab.store.samples("fz") >= lab.valid
