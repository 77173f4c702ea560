"""Hostile or broken peers on a real socket (issue #19): numbers out of range, peers
that do not read.

Every bad message gets an error reply by its ref; the channel, the socket and the
other sensors keep working, and what was stored stays stored.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import numpy as np
import pytest
from support.server import JOIN, MS, WAIT, Raw, engine, server
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from sensocto_lab.clock import FakeClock
from sensocto_lab.engine.engine import Engine
from sensocto_lab.net.channels import sensor as channel_module
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.server import IngestServer, serve
from sensocto_lab.net.socket import Socket
from sensocto_lab.protocol.binary import encode_batch
from sensocto_lab.protocol.frames import Message, encode_binary

__all__ = ["engine", "server"]  # fixtures

HUGE = 10**400  # an integer beyond float range (JSON allows it)
FAR = 2**58 + MS  # ms; times 10**6 it wraps int64 to exactly MS * 10**6


def stored_ts(engine: Engine, sensor: str, attr: str) -> list[int]:
    ts, _ = engine.store.latest(sensor, attr)
    return np.asarray(ts).tolist()  # type: ignore[no-any-return]


def hr(value: Any, ms: Any) -> dict[str, Any]:
    return {"attribute_id": "hr", "payload": value, "timestamp": ms}


async def still_works(raw: Raw, topic: str, ms: int) -> None:
    """A valid push on ``topic`` is acknowledged as stored."""
    reply = await raw.request(topic, "measurement", hr(60, ms))
    assert reply == {"status": "ok", "response": {"stored": 1, "duplicates": 0}}


BAD_MEASUREMENTS = [
    (hr(61, 10_000_000_000_000), "invalid_timestamp"),  # int ms beyond int64 ns
    (hr(61, 2**63), "invalid_timestamp"),
    (hr(61, -(2**70)), "invalid_timestamp"),
    (hr(61, FAR), "invalid_timestamp"),
    (hr(61, HUGE), "invalid_timestamp"),
    (hr(HUGE, MS), "invalid_value"),
    (hr(-HUGE, MS), "invalid_value"),
    ({"attribute_id": "acc", "payload": [0, HUGE, 1], "timestamp": MS}, "invalid_value"),
    (
        {"attribute_id": "acc", "payload": {"x": 0, "y": 1, "z": HUGE}, "timestamp": MS},
        "invalid_value",
    ),
    (hr(1e308 * 10, MS), "non_finite_value"),  # inf
    ({"attribute_id": "acc", "payload": [0, 1e300, 1], "timestamp": MS}, "non_finite_value"),
]


async def test_a_measurement_out_of_range_is_refused_and_the_channel_keeps_working(
    server: IngestServer, engine: Engine
) -> None:
    raw, other = await Raw.open(server.url), await Raw.open(server.url)
    await raw.join("sensor:s1")
    await other.join("sensor:s2")
    await still_works(raw, "sensor:s1", MS)
    for i, (payload, reason) in enumerate(BAD_MEASUREMENTS, start=1):
        reply = await raw.request("sensor:s1", "measurement", payload)
        assert reply["status"] == "error", payload
        assert reply["response"]["reason"] == reason, payload
        await still_works(raw, "sensor:s1", MS + i)
        await still_works(other, "sensor:s2", MS + i)
    n = len(BAD_MEASUREMENTS)
    assert stored_ts(engine, "s1", "hr") == [(MS + i) * 10**6 for i in range(n + 1)]
    assert stored_ts(engine, "s2", "hr") == [(MS + i) * 10**6 for i in range(1, n + 1)]
    await asyncio.wait_for(server.close(), WAIT)  # nothing is stuck


def batch_cases() -> list[tuple[Any, str]]:
    good = [hr(60, MS + 100)]
    return [
        # a list of measurements: all or nothing
        ([*good, hr(61, FAR)], "invalid_batch"),
        ([*good, hr(61, 10000000000000)], "invalid_batch"),
        ([*good, hr(61, HUGE)], "invalid_batch"),
        ([*good, hr(HUGE, MS + 101)], "invalid_batch"),
        ({"measurements": [*good, hr(61, 2**63)]}, "invalid_batch"),
        # columnar
        ({"attribute_id": "hr", "timestamps": [MS, FAR], "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "timestamps": [MS, 2**63], "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "timestamps": [HUGE], "values": [1]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "timestamps": [MS, [MS]], "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": HUGE, "dt": 1, "values": [1]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": FAR, "dt": 1, "values": [1]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": MS, "dt": HUGE, "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1e308, "values": [1, 2, 3]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1e300, "values": [1, 2]}, "invalid_timestamp"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1, "values": [1, HUGE]}, "invalid_value"),
        ({"attribute_id": "hr", "t0": MS, "dt": 1, "values": [HUGE]}, "invalid_value"),
        ({"attribute_id": "ecg", "t0": MS, "dt": 1, "values": [1e300]}, "non_finite_value"),
    ]


async def test_a_batch_out_of_range_is_refused_whole(server: IngestServer, engine: Engine) -> None:
    raw, other = await Raw.open(server.url), await Raw.open(server.url)
    await raw.join("sensor:s1")
    await other.join("sensor:s2")
    for i, (payload, reason) in enumerate(batch_cases()):
        reply = await raw.request("sensor:s1", "measurements_batch", payload)
        assert reply["status"] == "error", payload
        assert reply["response"]["reason"] == reason, payload
        if reason == "invalid_batch":
            assert reply["response"]["failed_count"] == 1
        await still_works(raw, "sensor:s1", MS + i)
        await still_works(other, "sensor:s2", MS + i)
    n = len(batch_cases())
    assert stored_ts(engine, "s1", "hr") == [(MS + i) * 10**6 for i in range(n)]
    assert stored_ts(engine, "s1", "ecg") == []


@pytest.mark.parametrize(
    "block",
    [
        encode_batch("ecg", [1.0, 2.0], t0_ns=2**63 - 10, dt_ns=1e9),  # t0 + dt beyond int64
        encode_batch("ecg", [1.0, 2.0], t0_ns=MS * 10**6, dt_ns=1e300),
        encode_batch("ecg", [1.0, 2.0], t0_ns=-(2**63), dt_ns=1e19),
        encode_batch("ecg", [1.0, 2.0], ts=[MS * 10**6, 2**63 - 1]),
    ],
    ids=["t0-wraps", "dt-huge", "dt-wraps", "explicit-far"],
)
async def test_a_binary_batch_out_of_range_is_refused(
    server: IngestServer, engine: Engine, block: bytes
) -> None:
    raw = await Raw.open(server.url)
    await raw.join("sensor:s1")
    ref = raw.ref()
    await raw.send(encode_binary(Message("1", ref, "sensor:s1", "measurements_binary", block)))
    reply = await raw.reply(ref)
    assert reply["status"] == "error"
    assert reply["response"]["reason"] in {"invalid_binary_batch", "invalid_timestamp"}
    await still_works(raw, "sensor:s1", MS)
    assert stored_ts(engine, "s1", "ecg") == []


@pytest.mark.parametrize(
    "params",
    [
        {**JOIN, "sampling_rate": HUGE},
        {**JOIN, "attributes": [{"attribute_id": "hr", "sampling_rate": HUGE}]},
        {**JOIN, "attributes": {"hr": {"type": "hr", "rate_hz": -HUGE}}},
        {**JOIN, "batch_size": 1.5},
    ],
    ids=["sampling_rate", "attribute-rate", "attribute-rate-object", "batch_size"],
)
async def test_join_params_out_of_range_get_a_join_error(
    server: IngestServer, engine: Engine, params: dict[str, Any]
) -> None:
    raw = await Raw.open(server.url)
    reply = await raw.join("sensor:s1", params)
    assert reply["status"] == "error" and reply["response"]["reason"] == "invalid_params"
    assert "s1" not in engine.sensors
    assert (await raw.join("sensor:s1"))["status"] == "ok"  # the socket stays
    await still_works(raw, "sensor:s1", MS)


async def test_a_bug_handling_a_push_refuses_it_and_the_channel_goes_on(
    server: IngestServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever slips past validation (a bug) costs one push, not the channel or socket."""
    original = {
        name: getattr(channel_module, name) for name in ("merge", "sample_from_measurement")
    }

    def broken_once(name: str) -> Any:
        def broken(*args: Any) -> Any:
            monkeypatch.setattr(channel_module, name, original[name])
            raise OverflowError("a bug")

        return broken

    raw = await Raw.open(server.url)
    await raw.join("sensor:s1")
    for i, name in enumerate(original):  # in the ingest task, then in the socket's read
        monkeypatch.setattr(channel_module, name, broken_once(name))
        reply = await raw.request("sensor:s1", "measurement", hr(60, MS + 100 + i))
        assert reply["status"] == "error"
        assert reply["response"]["reason"] == "internal_error"
        await still_works(raw, "sensor:s1", MS + i)
    assert stored_ts(engine, "s1", "hr") == [MS * 10**6, (MS + 1) * 10**6]


class Deaf:
    """A WebSocket client on a raw TCP socket that, after the handshake, only writes.

    Its receive buffer is small and nothing reads it, so what the server sends backs up
    into the server's own buffers.
    """

    def __init__(self, sock: socket.socket, proto: ClientProtocol) -> None:
        self.sock, self.proto = sock, proto
        self._unsent = b""

    @classmethod
    async def open(cls, url: str) -> Deaf:
        uri = parse_uri(url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (uri.host, uri.port))
        proto = ClientProtocol(uri, max_size=None)
        proto.send_request(proto.connect())
        deaf = cls(sock, proto)
        await deaf.flush()
        while not any(isinstance(e, Response) for e in await deaf.events()):
            pass
        return deaf

    async def flush(self) -> None:
        for data in self.proto.data_to_send():
            await asyncio.get_running_loop().sock_sendall(self.sock, data)

    def send_soon(self, frame: list[Any]) -> None:
        """Frame ``frame``; written by :meth:`write_some`."""
        self.proto.send_text(json.dumps(frame).encode())

    def write_some(self) -> int:
        """Write what the kernel takes now without blocking; bytes written."""
        pending = self._unsent + b"".join(self.proto.data_to_send())
        try:
            sent = self.sock.send(pending)
        except BlockingIOError:
            sent = 0
        self._unsent = pending[sent:]
        return sent

    async def events(self) -> list[Any]:
        data = await asyncio.wait_for(
            asyncio.get_running_loop().sock_recv(self.sock, 1 << 16), WAIT
        )
        if data:
            self.proto.receive_data(data)
        else:
            self.proto.receive_eof()
        return self.proto.events_received()

    def close(self) -> None:
        self.sock.close()


def server_side(server: IngestServer, client: socket.socket) -> Socket:
    """The server's socket of ``client``."""
    port = client.getsockname()[1]
    found = [s for s in server.sockets if s.remote_address and s.remote_address[1] == port]
    assert isinstance(found[0], Socket)
    return found[0]


def echo(ref: str) -> list[Any]:
    """A 60 kB ping on the deaf peer's channel: echoed in full."""
    return ["1", ref, "sensor:deaf", "ping", {"p": "x" * 60_000}]


def heartbeat(ref: str) -> list[Any]:
    """A 45-byte heartbeat: a tiny frame, a tiny reply (rate_limited beyond the burst)."""
    return [None, ref, "phoenix", "heartbeat", {}]


@pytest.mark.parametrize(
    ("frame", "per_turn"), [(echo, 1), (heartbeat, 200)], ids=["pings", "tiny"]
)
async def test_a_peer_that_does_not_read_is_held_back_then_closed(
    engine: Engine, frame: Any, per_turn: int
) -> None:
    """It floods frames that are answered and reads nothing: the server stops reading
    from it once its unsent bytes pass the bound, closes it (1008) when it stays deaf,
    and a healthy sensor on another connection is acknowledged throughout."""
    clock = FakeClock()
    bound = 256 * 1024
    config = ServerConfig.open(send_buffer_bytes=bound, send_timeout_s=30.0)
    async with serve(engine, config=config, clock=clock) as srv:
        healthy = await Raw.open(srv.url)
        await healthy.join("sensor:ok")
        deaf = await Deaf.open(srv.url)
        held = server_side(srv, deaf.sock)
        deaf.proto.send_text(json.dumps(["1", "1", "sensor:deaf", "phx_join", JOIN]).encode())
        turns = 0
        while held.statistics().write_pauses == 0:  # until the server's buffer is full
            turns += 1
            for k in range(per_turn):
                deaf.proto.send_text(json.dumps(frame(f"{turns}.{k}")).encode())
            deaf.write_some()
            await asyncio.sleep(0)  # the server reads and answers
            assert turns < 20_000, "the server never filled its send buffer"
        for extra in range(200):  # 12 MB (pings) more: the server reads none of it
            for k in range(per_turn):
                deaf.proto.send_text(json.dumps(frame(f"x{extra}.{k}")).encode())
            deaf.write_some()
            await asyncio.sleep(0)
        stats = held.statistics()
        assert not stats.reading
        assert stats.send_buffer <= bound + 2 * config.max_frame_bytes, stats
        assert stats.frames_queued <= 300 and stats.write_pauses == 1, stats
        await still_works(healthy, "sensor:ok", MS)

        clock.advance(config.send_timeout_s)  # the stall watchdog closes it
        closes: list[Frame] = []
        while not closes:  # now read it all: the echoes, then the close frame
            closes = [
                e for e in await deaf.events() if isinstance(e, Frame) and e.opcode is Opcode.CLOSE
            ]
        close = Close.parse(closes[0].data)
        assert close.code == 1008 and close.reason.startswith("peer does not read")
        deaf.close()
        await asyncio.wait_for(held.closed, WAIT)
        assert held not in srv.sockets
        await still_works(healthy, "sensor:ok", MS + 1)


async def test_a_sensor_joined_elsewhere_cannot_be_redeclared(
    server: IngestServer, engine: Engine
) -> None:
    device, intruder = await Raw.open(server.url), await Raw.open(server.url)
    assert (await device.join("sensor:s1", {**JOIN, "room": "lab"}))["status"] == "ok"
    other_kind = {**JOIN, "room": "lab", "attributes": [{"attribute_id": "hr", "type": "ecg"}]}
    for params in ({**JOIN, "room": "elsewhere"}, JOIN, other_kind):
        for topic in ("sensor:s1", "sensocto:sensor:s1"):
            reply = await intruder.join(topic, params)
            assert reply["status"] == "error", (topic, params)
            assert reply["response"]["reason"] == "sensor_in_use"
    info = engine.sensors["s1"]
    assert info.room == "lab" and info.attributes["hr"].kind.name == "hr"
    await still_works(device, "sensor:s1", MS)  # not kind_mismatch
    # the same declaration (a reconnect) and more attributes may join beside it
    same = {**JOIN, "room": "lab"}
    assert (await intruder.join("sensor:s1", same))["status"] == "ok"
    more = {**same, "attributes": [{"attribute_id": "spo2", "type": "spo2"}]}
    third = await Raw.open(server.url)
    assert (await third.join("sensor:s1", more))["status"] == "ok"
    await still_works(device, "sensor:s1", MS + 1)
    # once nobody else holds it, it may be declared anew
    held = list(server.sockets)
    for raw in (device, intruder, third):
        await raw.close()
    await asyncio.wait_for(asyncio.gather(*(s.closed for s in held)), WAIT)  # torn down
    newcomer = await Raw.open(server.url)
    assert (await newcomer.join("sensor:s1", {**JOIN, "room": "elsewhere"}))["status"] == "ok"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # devices, the Python clients, Node
        ("http://localhost:5006", True),
        ("http://localhost", True),
        ("https://127.0.0.1:8888", True),
        ("http://[::1]:4000", True),
        ("http://evil.example", False),
        ("http://localhost.evil.example", False),
        ("http://localhost:5006.evil.example", False),
        ("http://127.0.0.1.evil.example:80", False),
        ("null", False),  # a sandboxed page or a file://
    ],
)
async def test_cross_origin_pages_are_refused_by_default(
    engine: Engine, origin: str | None, allowed: bool
) -> None:
    async with serve(engine, config=ServerConfig.open()) as srv:
        if allowed:
            raw = await Raw.open(srv.url, origin=origin)
            assert (await raw.join("sensor:s1"))["status"] == "ok"
        else:
            with pytest.raises(InvalidStatus) as info:
                await Raw.open(srv.url, origin=origin)
            assert info.value.response.status_code == 403
            assert "s1" not in engine.sensors


async def test_allowed_origins_can_be_widened(engine: Engine) -> None:
    config = ServerConfig.open(allowed_origins=("https://lab.example:*", None))
    async with serve(engine, config=config) as srv:
        assert await Raw.open(srv.url, origin="https://lab.example:8443")
        with pytest.raises(InvalidStatus):
            await Raw.open(srv.url, origin="http://localhost:5006")  # not listed now
    async with serve(engine, config=ServerConfig.open(allowed_origins=None)) as srv:
        assert await Raw.open(srv.url, origin="http://evil.example")  # any


async def get_health(port: int, path: str = "/health", headers: str = "") -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split()[1] == b"200"
    return json.loads(body)  # type: ignore[no-any-return]


async def test_health_tells_ids_and_details_only_to_a_token_and_never_paths(
    engine: Engine, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_stats = engine.store.statistics
    where = f"{tmp_path}/data/wal/000012.wal"
    monkeypatch.setattr(  # the store failed a write, and says where
        engine.store,
        "statistics",
        lambda: {**store_stats(), "last_error": f"[Errno 28] No space left: '{where}'"},
    )
    config = ServerConfig(tokens=frozenset({"sekrit"}), viewer_tokens=frozenset({"admin"}))
    async with serve(engine, config=config) as srv:
        raw = await Raw.open(srv.url + "&token=sekrit")
        await raw.join("sensor:secret-strap", {**JOIN, "room": "secret-room"})
        await raw.join("sensor:other")
        for anonymous in (
            await get_health(srv.port),
            await get_health(srv.port, "/health?token=wrong"),
            await get_health(srv.port, headers="Authorization: Bearer wrong\r\n"),
        ):
            assert anonymous == {
                "state": "running",
                "sensors": 2,
                "sensor_states": {"running": 2},
                "load": "normal",
                "storage_lag_s": anonymous["storage_lag_s"],
                "storage_state": "error",
            }
            text = json.dumps(anonymous)
            assert "secret" not in text and "other" not in text and str(tmp_path) not in text
        for full in (
            await get_health(srv.port, "/health?token=sekrit"),
            await get_health(srv.port, headers="Authorization: Bearer admin\r\n"),
        ):
            assert {s["id"] for s in full["sensors"]} == {"secret-strap", "other"}
            assert {s["room"] for s in full["sensors"]} == {"secret-room", "default"}
            assert full["storage"]["last_error"] == "[Errno 28] No space left: '000012.wal'"
            assert str(tmp_path) not in json.dumps(full)


async def test_a_bug_reading_a_frame_closes_that_socket_with_1011_not_silently(
    server: IngestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, other = await Raw.open(server.url), await Raw.open(server.url)
    await other.join("sensor:s2")
    held = server_side(server, raw.ws.transport.get_extra_info("socket"))
    monkeypatch.setattr(held.proto, "receive_text", lambda text: 1 / 0)
    await raw.send(["1", "1", "sensor:s1", "phx_join", JOIN])
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(raw.ws.recv(), WAIT)
    assert raw.ws.close_code == 1011  # a close frame, not a cut connection
    await still_works(other, "sensor:s2", MS)
