"""The endpoint's WebSocket transport: frames in one read, fragments, pings, closes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
from support.server import JOIN, MS, WAIT, Raw, engine, server
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from sensocto_lab.engine.engine import Engine
from sensocto_lab.net import socket as socket_module
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.server import IngestServer, serve

__all__ = ["engine", "server"]  # fixtures


class Wire:
    """A client that writes many frames with one socket write (``websockets`` Sans-I/O)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.proto: ClientProtocol | None = None

    @classmethod
    async def open(cls, url: str) -> Wire:
        uri = parse_uri(url)
        wire = cls(*await asyncio.open_connection(uri.host, uri.port))
        wire.proto = proto = ClientProtocol(uri)
        proto.send_request(proto.connect())
        wire.flush()
        while not any(isinstance(e, Response) for e in await wire.events()):
            pass
        return wire

    def flush(self) -> None:
        assert self.proto is not None
        self.writer.write(b"".join(self.proto.data_to_send()))

    def send_all(self, frames: list[list[Any]]) -> None:
        """Frame every message, then write them all at once."""
        assert self.proto is not None
        for frame in frames:
            self.proto.send_text(json.dumps(frame).encode())
        self.flush()

    async def events(self) -> list[Any]:
        assert self.proto is not None
        data = await asyncio.wait_for(self.reader.read(1 << 16), WAIT)
        if data:
            self.proto.receive_data(data)
        else:
            self.proto.receive_eof()
        return self.proto.events_received()

    async def messages(self, n: int) -> list[list[Any]]:
        got: list[list[Any]] = []
        while len(got) < n:
            got += [json.loads(e.data) for e in await self.events() if isinstance(e, Frame)]
        return got

    def close(self) -> None:
        self.writer.close()


async def test_frames_of_one_read_are_handled_in_order(engine: Engine) -> None:
    """A join and 300 pushes in one write: the pushes wait for the join (it is awaited)
    and go past a full channel queue (reading pauses), each answered in order."""
    async with serve(engine, config=ServerConfig.open(channel_queue=2)) as srv:
        wire = await Wire.open(srv.url)
        pushes = [
            [
                "1",
                str(i),
                "sensor:s1",
                "measurement",
                {"attribute_id": "hr", "payload": i, "timestamp": MS + i},
            ]
            for i in range(2, 302)
        ]
        wire.send_all([["1", "1", "sensor:s1", "phx_join", JOIN], *pushes])
        replies = [m for m in await wire.messages(302) if m[3] == "phx_reply"]
        while len(replies) < 301:
            replies += [m for m in await wire.messages(1) if m[3] == "phx_reply"]
        assert [m[1] for m in replies] == [str(i) for i in range(1, 302)]
        assert all(m[4]["status"] == "ok" for m in replies)
        _, values = engine.store.latest("s1", "hr")  # the newest, as many as the ring holds
        assert np.asarray(values).tolist() == [float(i) for i in range(2, 302)][-len(values) :]
        assert engine.health()["sensors"][0]["samples"] == 300
        wire.close()


async def test_a_fragmented_message_is_one_frame(server: IngestServer) -> None:
    raw = await Raw.open(server.url)
    await raw.join("sensor:s1")
    await raw.ws.send(['["1","7","sensor:s1",', '"ping",{"n":', "1}]"])
    assert await raw.reply("7") == {"status": "ok", "response": {"n": 1}}
    header = b"\x00\x01\x01\x09\x08" + b"18" + b"sensor:s1" + b"ping_bin"
    await raw.ws.send([header[:7], header[7:]])  # binary, fragmented: an unknown event
    assert (await raw.reply("8"))["response"]["reason"] == "invalid_event"


async def test_pings_are_answered(server: IngestServer) -> None:
    raw = await Raw.open(server.url)
    pong = await raw.ws.ping(b"are you there")
    await asyncio.wait_for(pong, WAIT)


async def test_text_that_is_not_utf8_closes_the_socket_with_1007(server: IngestServer) -> None:
    raw, other = await Raw.open(server.url), await Raw.open(server.url)
    await other.join("sensor:s2")
    await raw.ws.send(b'["1","2","phoenix","heartbeat",{"x":"\xff"}]', text=True)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(raw.ws.recv(), WAIT)
    assert raw.ws.close_code == 1007
    assert (await other.request("sensor:s2", "ping", {}))["status"] == "ok"  # others stay


async def test_closing_the_server_closes_sockets_with_1001(engine: Engine) -> None:
    srv = await serve(engine, config=ServerConfig.open())
    raw = await Raw.open(srv.url)
    await raw.join("sensor:s1")
    await srv.close()
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(raw.ws.recv(), WAIT)
    assert raw.ws.close_code == 1001
    assert not srv.sockets


async def test_frames_fed_one_byte_at_a_time(engine: Engine) -> None:
    """Data frames, a ping, a fragmented message and a frame over 64 KiB, one byte a write."""
    async with serve(engine, config=ServerConfig.open()) as srv:
        wire = await Wire.open(srv.url)
        assert wire.proto is not None
        wire.send_all([["1", "1", "sensor:s1", "phx_join", JOIN]])
        await wire.messages(1)
        proto = wire.proto
        sample = {"attribute_id": "hr", "payload": 1, "timestamp": MS}
        push = ["1", "2", "sensor:s1", "measurement", sample]
        proto.send_text(json.dumps(push).encode())
        proto.send_ping(b"p")
        proto.send_text(b'["1","3","sensor:s1",', fin=False)
        proto.send_continuation(b'"ping",{}]', fin=True)
        values = list(range(9000))  # a frame of ~75 kB: a 64-bit length
        batch = {"attribute_id": "ecg", "t0": MS, "dt": 1.0, "values": values}
        proto.send_text(json.dumps(["1", "4", "sensor:s1", "measurements_batch", batch]).encode())
        for byte in b"".join(proto.data_to_send()):
            wire.writer.write(bytes([byte]))
        await wire.writer.drain()
        replies: dict[str, Any] = {}
        pongs = 0
        while len(replies) < 3 or not pongs:
            for event in await wire.events():
                if event.opcode is Opcode.PONG:
                    pongs += 1
                elif isinstance(event, Frame):
                    msg = json.loads(event.data)
                    replies[msg[1]] = msg[4]
        assert replies["2"]["response"] == {"stored": 1, "duplicates": 0}
        assert replies["3"] == {"status": "ok", "response": {}}
        assert replies["4"]["response"] == {"stored": 9000, "duplicates": 0}
        wire.close()


@pytest.mark.parametrize(
    "frame",
    [
        b"\x81\x02{}",  # not masked
        b"\xc1\x80\x00\x00\x00\x00",  # a reserved bit
        b"\x83\x80\x00\x00\x00\x00",  # a reserved opcode
        b"\x01\x80\x00\x00\x00\x00\x81\x80\x00\x00\x00\x00",  # a new message amid fragments
    ],
    ids=["unmasked", "rsv1", "opcode", "unfinished"],
)
async def test_invalid_frames_close_the_socket_with_1002(
    server: IngestServer, frame: bytes
) -> None:
    wire = await Wire.open(server.url)
    assert wire.proto is not None
    wire.writer.write(frame)
    closes: list[Frame] = []
    while not closes:
        closes = [e for e in await wire.events() if e.opcode is Opcode.CLOSE]
    assert Close.parse(closes[0].data).code == 1002
    wire.close()


async def test_a_bug_in_a_join_closes_that_socket_with_1011(
    server: IngestServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(info: Any) -> None:
        raise RuntimeError("a bug")

    raw = await Raw.open(server.url)
    with monkeypatch.context() as patch:
        patch.setattr(engine, "register_sensor", broken)
        await raw.send(["1", "1", "sensor:s1", "phx_join", JOIN])
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(raw.ws.recv(), WAIT)
    assert raw.ws.close_code == 1011
    other = await Raw.open(server.url)
    assert (await other.join("sensor:s1"))["status"] == "ok"


async def test_a_peer_that_ignores_our_close_is_cut_off(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket_module, "_CLOSE_TIMEOUT_S", 0.1)
    srv = await serve(engine, config=ServerConfig.open())
    wire = await Wire.open(srv.url)  # reads nothing more, answers nothing
    await asyncio.wait_for(srv.close(), WAIT)  # waits for the socket to be cut
    assert not srv.sockets
    wire.close()
