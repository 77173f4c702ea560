"""The sans-I/O server and client connections, without sockets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensocto_lab.errors import ProtocolError, ValidationError
from sensocto_lab.protocol.channel import ChannelState
from sensocto_lab.protocol.connection import (
    ChannelClosed,
    ChannelReplaced,
    ClientConnection,
    FrameRejected,
    Heartbeat,
    JoinRequested,
    LeaveRequested,
    Pushed,
    Replied,
    ServerConnection,
    ServerPushed,
)
from sensocto_lab.protocol.frames import Message, encode_binary


def frames(conn: ServerConnection) -> list[list[object]]:
    return [json.loads(f) for f in conn.data_to_send()]


def joined(topic: str = "sensor:a") -> ServerConnection:
    conn = ServerConnection()
    conn.receive_text(json.dumps(["1", "1", topic, "phx_join", {}]))
    (join,) = conn.events_received()
    assert isinstance(join, JoinRequested)
    conn.accept_join(join, {"hello": 1})
    assert frames(conn) == [
        ["1", "1", topic, "phx_reply", {"status": "ok", "response": {"hello": 1}}]
    ]
    return conn


def test_heartbeat_is_answered_by_the_connection() -> None:
    conn = ServerConnection()
    conn.receive_text('[null,"5","phoenix","heartbeat",{}]')
    assert conn.events_received() == [Heartbeat("5")]
    assert frames(conn) == [[None, "5", "phoenix", "phx_reply", {"status": "ok", "response": {}}]]


def test_join_push_leave() -> None:
    conn = joined()
    assert conn.state("sensor:a") is ChannelState.JOINED
    conn.receive_text('["1","2","sensor:a","ping",{"x":1}]')
    (push,) = conn.events_received()
    assert push == Pushed("sensor:a", "ping", {"x": 1}, "1", "2")
    conn.reply(push, "ok", {"x": 1})
    assert frames(conn)[0][:4] == ["1", "2", "sensor:a", "phx_reply"]
    conn.receive_text('["1","3","sensor:a","phx_leave",{}]')
    assert conn.events_received() == [LeaveRequested("sensor:a", "1")]
    assert frames(conn)[0][4] == {"status": "ok", "response": {}}
    assert conn.state("sensor:a") is ChannelState.CLOSED


def test_push_before_join_gets_unmatched_topic() -> None:
    conn = ServerConnection()
    conn.receive_text('["1","2","sensor:a","measurement",{}]')
    (event,) = conn.events_received()
    assert isinstance(event, FrameRejected) and event.error.reason == "unmatched_topic"
    (reply,) = frames(conn)
    assert reply[1] == "2" and reply[4]["status"] == "error"  # type: ignore[index]
    assert reply[4]["response"]["reason"] == "unmatched_topic"  # type: ignore[index]


def test_push_while_joining_is_refused() -> None:
    conn = ServerConnection()
    conn.receive_text('["1","1","sensor:a","phx_join",{}]')
    conn.receive_text('["1","2","sensor:a","measurement",{}]')
    join, rejected = conn.events_received()
    assert isinstance(join, JoinRequested)
    assert isinstance(rejected, FrameRejected) and rejected.error.reason == "unmatched_topic"


def test_rejected_join_closes_the_channel() -> None:
    conn = ServerConnection()
    conn.receive_text('["1","1","sensor:a","phx_join",{}]')
    (join,) = conn.events_received()
    conn.reject_join(join, ValidationError("nope", reason="unauthorized"))
    (reply,) = frames(conn)
    assert reply[4] == {"status": "error", "response": {"reason": "unauthorized", "detail": "nope"}}
    assert conn.state("sensor:a") is ChannelState.CLOSED


def test_second_join_replaces_the_first() -> None:
    conn = joined()
    conn.receive_text('["9","9","sensor:a","phx_join",{}]')
    replaced, join = conn.events_received()
    assert replaced == ChannelReplaced("sensor:a", "1")
    assert isinstance(join, JoinRequested) and join.join_ref == "9"
    (close,) = frames(conn)
    assert close == ["1", "1", "sensor:a", "phx_close", {}]


def test_closing_one_channel_keeps_the_others() -> None:
    conn = joined("sensor:a")
    conn.receive_text('["2","2","sensor:b","phx_join",{}]')
    (join_b,) = conn.events_received()
    conn.accept_join(join_b)
    conn.data_to_send()
    assert conn.close_channel("sensor:a", error=ValidationError("bad", reason="x"))
    assert frames(conn) == [["1", "1", "sensor:a", "phx_error", {"reason": "x", "detail": "bad"}]]
    assert not conn.push("sensor:a", "e", {})
    assert conn.push("sensor:b", "backpressure_config", {"n": 1})
    assert frames(conn) == [["2", None, "sensor:b", "backpressure_config", {"n": 1}]]
    assert conn.joined_topics == ["sensor:b"]


def test_oversize_frame_is_answered_by_ref() -> None:
    conn = joined()
    conn.max_frame = 100
    conn.receive_text('["1","7","sensor:a","measurement",{"pad":"' + "x" * 200 + '"}]')
    (event,) = conn.events_received()
    assert isinstance(event, FrameRejected) and event.error.reason == "frame_too_large"
    (reply,) = frames(conn)
    assert reply[1] == "7" and reply[4]["response"]["reason"] == "frame_too_large"  # type: ignore[index]
    conn.receive_bytes(encode_binary(Message("1", "8", "sensor:a", "b", b"x" * 200)))
    (event,) = conn.events_received()
    assert isinstance(event, FrameRejected) and event.ref == "8"
    assert frames(conn)[0][4]["response"]["reason"] == "frame_too_large"  # type: ignore[index]


def test_broken_json_with_readable_header_gets_a_reply() -> None:
    conn = joined()
    conn.receive_text('["1","4","sensor:a","measurement",{"payload": nope}]')
    (event,) = conn.events_received()
    assert isinstance(event, FrameRejected) and event.error.reason == "invalid_json"
    assert frames(conn)[0][1] == "4"


def test_clients_cannot_send_phx_events_or_other_phoenix_events() -> None:
    conn = joined()
    conn.receive_text('["1","5","sensor:a","phx_reply",{}]')
    conn.receive_text('[null,"6","phoenix","nap",{}]')
    events = conn.events_received()
    assert [e.error.reason for e in events] == ["invalid_event", "invalid_event"]  # type: ignore[union-attr]
    assert conn.state("sensor:a") is ChannelState.JOINED


def test_binary_push_on_joined_channel() -> None:
    conn = joined()
    conn.receive_bytes(encode_binary(Message("1", "3", "sensor:a", "measurements_binary", b"abc")))
    assert conn.events_received() == [Pushed("sensor:a", "measurements_binary", b"abc", "1", "3")]


@given(st.text(max_size=120))
def test_any_text_yields_an_event(text: str) -> None:
    conn = joined()
    conn.receive_text(text)
    events = conn.events_received()
    assert len(events) >= 1
    for frame in conn.data_to_send():
        assert len(json.loads(frame)) == 5


@given(st.binary(max_size=120))
def test_any_bytes_yield_an_event(data: bytes) -> None:
    conn = joined()
    conn.receive_bytes(data)
    assert len(conn.events_received()) == 1


def test_binary_frame_sliced_at_every_byte_never_raises() -> None:
    frame = encode_binary(Message("1", "3", "sensor:a", "measurements_binary", b"\x00" * 8))
    for cut in range(len(frame) + 1):
        conn = joined()
        conn.receive_bytes(frame[:cut])
        (event,) = conn.events_received()
        header_len = 5 + 1 + 1 + 8 + 19
        assert isinstance(event, Pushed) == (cut >= header_len)


def test_a_conversation_yields_events_in_order() -> None:
    script = [
        '[null,"1","phoenix","heartbeat",{}]',
        '["2","2","room:r","phx_join",{}]',
        '["2","3","room:r","view_enter",{"sensor_id":"a"}]',
        "garbage",
    ]

    def run(conn: ServerConnection) -> list[str]:
        kinds = []
        for text in script:
            conn.receive_text(text)
            for e in conn.events_received():
                kinds.append(type(e).__name__)
                if isinstance(e, JoinRequested):
                    conn.accept_join(e)
        return kinds

    assert run(ServerConnection()) == ["Heartbeat", "JoinRequested", "Pushed", "FrameRejected"]


def test_client_and_server_talk() -> None:
    client, server = ClientConnection(), ServerConnection()

    def pump() -> None:
        for frame in client.data_to_send():
            if isinstance(frame, bytes):
                server.receive_bytes(frame)
            else:
                server.receive_text(frame)
        for event in server.events_received():
            if isinstance(event, JoinRequested):
                server.accept_join(event, {"welcome": True})
                server.push(event.topic, "backpressure_config", {"recommended_batch_size": 5})
            elif isinstance(event, Pushed):
                server.reply(event, "ok", {"n": len(event.payload)})
        for text in server.data_to_send():
            client.receive_text(text)

    with pytest.raises(ProtocolError):
        client.push("sensor:a", "measurement", {})
    ref = client.join("sensor:a", {"sensor_name": "A"})
    pump()
    assert client.state("sensor:a") is ChannelState.JOINED
    assert client.events_received() == [
        Replied("sensor:a", ref, "ok", {"welcome": True}),
        ServerPushed("sensor:a", "backpressure_config", {"recommended_batch_size": 5}),
    ]
    ref = client.push("sensor:a", "measurements_binary", b"12345")
    pump()
    assert client.events_received() == [Replied("sensor:a", ref, "ok", {"n": 5})]
    server.close_channel("sensor:a")
    for text in server.data_to_send():
        client.receive_text(text)
    assert client.events_received() == [ChannelClosed("sensor:a", False, {})]
    assert client.state("sensor:a") is ChannelState.CLOSED


def test_client_ignores_pushes_of_an_old_join() -> None:
    client = ClientConnection()
    ref = client.join("sensor:a", {})
    client.receive_text(
        json.dumps([ref, ref, "sensor:a", "phx_reply", {"status": "ok", "response": {}}])
    )
    client.receive_text(json.dumps(["old", None, "sensor:a", "backpressure_config", {}]))
    client.receive_text(json.dumps(["old", "old", "sensor:a", "phx_close", {}]))
    assert [type(e) for e in client.events_received()] == [Replied]
    assert client.state("sensor:a") is ChannelState.JOINED


def test_refuse_answers_text_and_binary_frames_by_ref() -> None:
    from sensocto_lab.errors import LimitExceeded

    conn = joined()
    err = LimitExceeded("slow down", reason="rate_limited")
    conn.refuse('["1","5","sensor:a","measurement",{}]', err)
    conn.refuse(encode_binary(Message("1", "6", "sensor:a", "measurements_binary", b"")), err)
    conn.refuse(b"\x09", err)
    assert [e.ref for e in conn.events_received()] == ["5", "6", None]  # type: ignore[union-attr]
    replies = frames(conn)
    assert [r[1] for r in replies] == ["5", "6"]
    assert all(r[4]["response"]["reason"] == "rate_limited" for r in replies)  # type: ignore[index]
