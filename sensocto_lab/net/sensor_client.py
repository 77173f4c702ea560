"""A Python connector: stream a sensor's samples to a sensocto_lab (or Sensocto) endpoint.

Thin asyncio glue over the sans-I/O :class:`~sensocto_lab.protocol.connection.ClientConnection`::

    async with SensorClient(url, "strap-1", {"hr": "hr", "ecg": "ecg"}, token=...) as c:
        await c.send("hr", 62.0)                                # one sample, batched
        await c.send_batch("ecg", values, t0_ms=..., dt_ms=1000 / 130)   # a block
        await c.drain()                                          # everything stored

- **Batching by back-pressure.** Single samples are held per attribute and sent as one
  push when ``recommended_batch_size`` samples are waiting or ``recommended_batch_window``
  ms have passed, as the server's latest ``backpressure_config`` says.
- **Binary or JSON.** Blocks go as binary batch frames (:mod:`.protocol.binary`) by
  default, or as columnar JSON ``measurements_batch`` with ``binary=False``.
- **No loss across reconnects.** Every push is kept until the server's ``ok`` reply
  (sent only once the samples are stored). When the socket drops, the client
  reconnects with exponential back-off, rejoins, and resends what was not
  acknowledged, then what was queued meanwhile. It joins with ``exactly_once``, so the
  server drops samples it already stored: every sample is stored once. This needs
  strictly increasing timestamps per attribute, which :meth:`send` and
  :meth:`send_batch` check.
- Error replies (bad data) are not retried; they are kept in :attr:`errors`. A
  ``rate_limited`` reply is retried after a back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection as WsConnection

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.errors import AuthError, ClosedResourceError, PeerError
from sensocto_lab.net.reconnect import KeepConnected, send_frames
from sensocto_lab.protocol.binary import BINARY_EVENT, encode_batch
from sensocto_lab.protocol.connection import ChannelClosed, ClientConnection, Replied, ServerPushed

__all__ = ["ClientStats", "SensorClient"]

log = logging.getLogger(__name__)

_RETRYABLE = frozenset({"rate_limited"})


@dataclass(slots=True)
class ClientStats:
    """Counters of a :class:`SensorClient`.

    Attributes
    ----------
    samples_queued, samples_acked
        Samples handed to the client, and samples the server confirmed stored (or
        already had: its ``duplicates``).
    duplicates
        Resent samples the server already had (it stored them once, before).
    pushes, resent
        Pushes written to a socket, and how many of them were resends.
    connects
        Successful joins (1 + reconnects).
    """

    samples_queued: int = 0
    samples_acked: int = 0
    duplicates: int = 0
    pushes: int = 0
    resent: int = 0
    connects: int = 0


@dataclass(slots=True)
class _Out:
    seq: int
    event: str
    payload: dict[str, Any] | bytes
    n: int
    sent: int = 0
    #: Resolved with the reply of a push whose caller waits for it (markers).
    replied: asyncio.Future[dict[str, Any]] | None = None


@dataclass(slots=True)
class _Held:
    """Single samples of one attribute waiting to be sent as one push."""

    ts: list[float] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    since: float = 0.0


class SensorClient:
    """Connect a sensor to an endpoint, push its samples, survive reconnects.

    Parameters
    ----------
    url
        The socket URL, e.g. ``ws://127.0.0.1:4000/socket/websocket?vsn=2.0.0``.
    sensor_id
        The sensor; the client joins ``sensocto:sensor:{sensor_id}``.
    attributes
        Attribute id → kind (``{"hr": "hr", "acc": "accelerometer"}``) or a list of ids.
    token
        Ingest token, sent as the join's ``bearer_token``.
    join_params
        Extra join params (``sensor_name``, ``sensor_type``, ``room``, ...).
    binary
        Send blocks as binary batch frames (default) or as columnar JSON.
    clock
        Time source for batch windows and back-off.
    backoff_s
        First and longest wait between reconnect attempts, in seconds.
    max_inflight
        Pushes sent but not yet acknowledged before the client waits for replies.
    """

    def __init__(
        self,
        url: str,
        sensor_id: str,
        attributes: Mapping[str, str] | Sequence[str],
        *,
        token: str | None = None,
        join_params: Mapping[str, Any] | None = None,
        binary: bool = True,
        clock: Clock | None = None,
        backoff_s: tuple[float, float] = (0.05, 2.0),
        max_inflight: int = 64,
    ) -> None:
        self.url = url
        self.sensor_id = sensor_id
        self.topic = f"sensocto:sensor:{sensor_id}"
        attrs = (
            [{"attribute_id": a, "attribute_type": k} for a, k in attributes.items()]
            if isinstance(attributes, Mapping)
            else [{"attribute_id": a} for a in attributes]
        )
        self._params: dict[str, Any] = {
            "connector_id": "sensocto_lab",
            "connector_name": "sensocto_lab python client",
            "sensor_id": sensor_id,
            "sensor_name": sensor_id,
            "sensor_type": "generic",
            "attributes": attrs,
            **(join_params or {}),
            "exactly_once": True,
        }
        if token is not None:
            self._params["bearer_token"] = token
        self.binary = binary
        self.clock = clock or SystemClock()
        self.backoff_s = backoff_s
        self.max_inflight = max_inflight
        self.stats = ClientStats()
        #: Error replies: ``(event, response)`` of pushes the server refused.
        self.errors: list[tuple[str, Any]] = []
        #: The latest ``backpressure_config`` payload from the server.
        self.backpressure: dict[str, Any] = {
            "recommended_batch_size": 1,
            "recommended_batch_window": 100,
        }
        self._seq = itertools.count()
        self._queue: deque[_Out] = deque()
        self._inflight: dict[str, _Out] = {}
        self._held: dict[str, _Held] = {}
        self._last_ts: dict[str, float] = {}
        self._wake_sender = asyncio.Event()  # something to send, or room to send it
        self._progress = asyncio.Event()  # a reply, a requeue or a failure (for drain)
        self._backpressure_changed = asyncio.Event()  # replaced by a fresh one on each change
        self._retry_after = 0.0  # monotonic time before which nothing is resent
        self._conn = KeepConnected(
            url,
            self._session,
            clock=self.clock,
            backoff_s=backoff_s,
            on_lost=self._requeue_inflight,
            on_fatal=self._kick,
            name=f"client:{sensor_id}",
        )
        self._joined = self._conn.joined  # the sender waits on it
        self._closing = False

    # -- lifecycle --------------------------------------------------------------------

    async def connect(self, timeout: float = 10.0) -> SensorClient:
        """Start, and wait until the first join succeeded.

        Raises
        ------
        AuthError
            The server refused the join (e.g. ``unauthorized``); the client stops.
        TimeoutError
            Not joined within ``timeout`` seconds (the client keeps trying).
        """
        await self._conn.start(timeout)
        return self

    async def close(self) -> None:
        """Stop (without draining; call :meth:`drain` first to wait for acknowledgements)."""
        self._closing = True
        await self._conn.stop()

    async def __aenter__(self) -> SensorClient:
        return await self.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        with contextlib.suppress(TimeoutError):
            await self.drain(timeout=10.0)
        await self.close()

    @property
    def connected(self) -> bool:
        """True while joined."""
        return self._joined.is_set()

    @property
    def outstanding(self) -> int:
        """Samples held, queued or unacknowledged."""
        held = sum(len(h.ts) for h in self._held.values())
        return held + sum(o.n for o in self._queue) + sum(o.n for o in self._inflight.values())

    # -- sending ------------------------------------------------------------------------

    def _check_order(self, attribute_id: str, first: float, last: float) -> None:
        previous = self._last_ts.get(attribute_id)
        if previous is not None and first <= previous:
            raise ValueError(
                f"timestamps of {attribute_id!r} must increase: {first} after {previous}"
            )
        self._last_ts[attribute_id] = last

    async def send(self, attribute_id: str, value: Any, timestamp_ms: float | None = None) -> None:
        """Queue one sample (a number, or a list for vector kinds); ms since the epoch.

        Raises
        ------
        ValueError
            A value that is not finite numbers, or a timestamp not after the last one.
        """
        self._check_open()
        _check_finite(value)
        value = np.asarray(value, dtype=np.float64).tolist()
        ts = self.clock.time_ns() / 1e6 if timestamp_ms is None else float(timestamp_ms)
        self._check_order(attribute_id, ts, ts)
        held = self._held.setdefault(attribute_id, _Held())
        if not held.ts:
            held.since = self.clock.monotonic()
        held.ts.append(ts)
        held.values.append(value)
        self.stats.samples_queued += 1
        if len(held.ts) >= int(self.backpressure.get("recommended_batch_size", 1)):
            self._release(attribute_id)
        self._kick()

    async def send_batch(
        self,
        attribute_id: str,
        values: npt.ArrayLike,
        *,
        timestamps_ms: npt.ArrayLike | None = None,
        t0_ms: float | None = None,
        dt_ms: float | None = None,
    ) -> None:
        """Queue a block: explicit ``timestamps_ms``, or ``t0_ms`` and spacing ``dt_ms``."""
        self._check_open()
        vals = np.asarray(values, dtype=np.float64)
        _check_finite(vals)
        n = vals.shape[0]
        if timestamps_ms is not None:
            ts = np.asarray(timestamps_ms, dtype=np.float64)
            if ts.shape != (n,) or (n > 1 and (np.diff(ts) <= 0).any()):
                raise ValueError("timestamps_ms must be n strictly increasing numbers")
        elif t0_ms is not None and dt_ms is not None and dt_ms > 0:
            ts = np.asarray(t0_ms + np.arange(n) * float(dt_ms), dtype=np.float64)
        else:
            raise ValueError("give timestamps_ms, or t0_ms and a positive dt_ms")
        self._check_order(attribute_id, float(ts[0]), float(ts[-1]))
        if self.binary:
            payload: dict[str, Any] | bytes = encode_batch(
                attribute_id, vals, ts=np.round(ts * 1e6).astype(np.int64)
            )
            event = BINARY_EVENT
        else:
            payload = {
                "attribute_id": attribute_id,
                "timestamps": ts.tolist(),
                "values": vals.tolist(),
            }
            event = "measurements_batch"
        self._enqueue(event, payload, n)

    async def mark(
        self, label: str, *, value: Any = None, timestamp_ms: float | None = None
    ) -> dict[str, Any]:
        """Mark a moment on this sensor (a button, a stimulus); returns the server's reply.

        Sent as a ``marker`` push (``docs/protocol.md``, "Markers from devices") in order
        with the data around it, resent after a reconnect until acknowledged. The
        timestamp is ms since the epoch, now by default.

        Raises
        ------
        PeerError
            The server refused it: ``invalid_label``, ``invalid_value``,
            ``invalid_timestamp`` (a marker over the channel's rate is retried after a
            back-off, as data is).
        """
        self._check_open()
        ts = self.clock.time_ns() / 1e6 if timestamp_ms is None else timestamp_ms
        payload: dict[str, Any] = {"label": label, "timestamp": ts}
        if value is not None:
            payload["value"] = value
        replied: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Out(next(self._seq), "marker", payload, 0, replied=replied))
        self._kick()
        return await replied

    async def flush(self) -> None:
        """Send every held single sample now, whatever the batch window says."""
        for attribute_id in list(self._held):
            self._release(attribute_id)

    async def drain(self, timeout: float | None = None) -> None:
        """Flush, then wait until the server acknowledged every sample.

        Raises
        ------
        TimeoutError
            Samples are still outstanding after ``timeout`` seconds.
        """
        await self.flush()

        async def settled() -> None:
            while self._queue or self._inflight:
                if self._fatal is not None:
                    raise self._fatal
                self._progress.clear()
                await self._progress.wait()

        await asyncio.wait_for(settled(), timeout)

    def _check_open(self) -> None:
        if self._closing:
            raise ClosedResourceError("the client is closed", reason="closed")
        if self._fatal is not None:
            raise self._fatal

    def _release(self, attribute_id: str) -> None:
        held = self._held.pop(attribute_id, None)
        if held is None or not held.ts:
            return
        if len(held.ts) == 1:
            payload = {
                "attribute_id": attribute_id,
                "payload": held.values[0],
                "timestamp": held.ts[0],
            }
            self._enqueue("measurement", payload, 1, counted=True)
        else:
            payload = {"attribute_id": attribute_id, "timestamps": held.ts, "values": held.values}
            self._enqueue("measurements_batch", payload, len(held.ts), counted=True)

    def _enqueue(
        self, event: str, payload: dict[str, Any] | bytes, n: int, *, counted: bool = False
    ) -> None:
        self._queue.append(_Out(next(self._seq), event, payload, n))
        if not counted:
            self.stats.samples_queued += n
        self._kick()

    def _set_backpressure(self, payload: dict[str, Any]) -> None:
        self.backpressure = payload
        self._backpressure_changed.set()
        self._backpressure_changed = asyncio.Event()
        self._kick()

    async def wait_backpressure(
        self, attention_level: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait until the server's ``backpressure_config`` says ``attention_level``."""

        async def until() -> dict[str, Any]:
            while self.backpressure.get("attention_level") != attention_level:
                await self._backpressure_changed.wait()
            return self.backpressure

        return await asyncio.wait_for(until(), timeout)

    def _kick(self) -> None:
        self._wake_sender.set()
        self._progress.set()

    # -- the connection loop --------------------------------------------------------------

    @property
    def _fatal(self) -> BaseException | None:
        """The refused join that stopped the client, if one did."""
        return self._conn.fatal

    def _requeue_inflight(self) -> None:
        if self._inflight:
            lost = sorted(self._inflight.values(), key=lambda o: o.seq)
            self._inflight.clear()
            self._queue.extendleft(reversed(lost))
        self._kick()

    async def _session(self, ws: WsConnection) -> None:
        proto = ClientConnection()
        join_ref = proto.join(self.topic, self._params)
        await send_frames(ws, proto)
        tasks = [
            asyncio.create_task(self._sender(ws, proto)),
            asyncio.create_task(self._ticker()),
        ]
        try:
            async for frame in ws:
                if not isinstance(frame, str):
                    continue
                proto.receive_text(frame)
                for event in proto.events_received():
                    if isinstance(event, Replied) and event.ref == join_ref:
                        self._on_join(event)
                    elif isinstance(event, Replied):
                        self._on_reply(event)
                    elif isinstance(event, ServerPushed) and event.event == "backpressure_config":
                        if isinstance(event.payload, dict):
                            self._set_backpressure(event.payload)
                    elif isinstance(event, ChannelClosed):
                        return  # rejoin through a fresh connection
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _on_join(self, reply: Replied) -> None:
        if reply.status != "ok":
            response = reply.response if isinstance(reply.response, dict) else {}
            raise AuthError(
                f"join of {self.topic} refused: {response.get('detail', response)}",
                reason=str(response.get("reason", "join_refused")),
            )
        self.stats.connects += 1
        self._conn.joined_ok()
        self._kick()

    def _on_reply(self, reply: Replied) -> None:
        out = self._inflight.pop(reply.ref, None)
        if out is None:
            return
        response = reply.response if isinstance(reply.response, dict) else {}
        if reply.status == "ok":
            self.stats.samples_acked += out.n
            duplicates = response.get("duplicates", 0)
            self.stats.duplicates += duplicates if isinstance(duplicates, int) else 0
            if out.replied is not None and not out.replied.done():
                out.replied.set_result(response)
        elif response.get("reason") in _RETRYABLE:
            self._queue.appendleft(out)
            self._retry_after = self.clock.monotonic() + self.backoff_s[0]
        else:
            self.errors.append((out.event, response))
            if out.replied is not None and not out.replied.done():
                detail = str(response.get("detail", response))
                out.replied.set_exception(
                    PeerError(detail, reason=str(response.get("reason", "refused")))
                )
        self._kick()

    async def _sender(self, ws: WsConnection, proto: ClientConnection) -> None:
        await self._joined.wait()
        while True:
            self._wake_sender.clear()
            wait = self._retry_after - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)
            while self._queue and len(self._inflight) < self.max_inflight:
                out = self._queue.popleft()
                ref = proto.push(self.topic, out.event, out.payload)
                self._inflight[ref] = out
                self.stats.pushes += 1
                self.stats.resent += out.sent > 0
                out.sent += 1
            await send_frames(ws, proto)
            await self._wake_sender.wait()

    async def _ticker(self) -> None:
        """Release held samples whose batch window has passed."""
        while True:
            window = float(self.backpressure.get("recommended_batch_window", 100)) / 1000
            now = self.clock.monotonic()
            for attribute_id, held in list(self._held.items()):
                if held.ts and now - held.since >= window:
                    self._release(attribute_id)
            await self.clock.sleep(max(window / 4, 0.005))


def _check_finite(value: Any) -> None:
    try:
        ok = bool(np.isfinite(np.asarray(value, dtype=np.float64)).all())
    except (TypeError, ValueError):
        raise ValueError(f"values must be numbers, got {value!r:.40}") from None
    if not ok:
        raise ValueError("values must be finite numbers (no NaN or infinity)")
