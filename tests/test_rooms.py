"""Rooms, join codes, roles, sensor assignment and presence (sensocto_lab/rooms.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensocto_lab.clock import FakeClock
from sensocto_lab.errors import AuthError, ClosedResourceError, LimitExceeded, ValidationError
from sensocto_lab.rooms import (
    CODE_ALPHABET,
    Action,
    Role,
    RoomStore,
    format_code,
    new_join_code,
    normalize_code,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[RoomStore]:
    with RoomStore(tmp_path, clock=clock, max_failures=3, window_s=60.0) as s:
        yield s


def test_codes_are_unambiguous_and_carry_at_least_40_bits() -> None:
    codes = {new_join_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert set(code) <= set(CODE_ALPHABET)
        assert not set(code) & set("ILOU")
        assert len(code) * math.log2(len(CODE_ALPHABET)) >= 40


def test_typed_codes_are_read_forgivingly() -> None:
    code = "0123456789"
    assert normalize_code(" o12-3456 789 ") == code
    assert normalize_code(format_code("ABCDE1L1I0").lower()) == "ABCDE11110"
    for bad in ["", "ABC", "ABCDE-FGHJ!", "U" * 10]:
        with pytest.raises(ValidationError) as err:
            normalize_code(bad)
        assert err.value.reason == "invalid_join_code"


@given(st.text(max_size=30))
def test_normalize_code_accepts_or_raises_a_documented_error(text: str) -> None:
    try:
        code = normalize_code(text)
    except ValidationError as exc:
        assert exc.reason == "invalid_join_code"
    else:
        assert len(code) == 10 and set(code) <= set(CODE_ALPHABET)


def test_rooms_persist_across_restarts(tmp_path: Path, clock: FakeClock) -> None:
    with RoomStore(tmp_path, clock=clock) as s:
        room = s.create_room("lab-1", "Breathing lab", owner="ana")
        s.set_role("lab-1", "ben", Role.ADMIN, by="ana")
        s.assign_sensor("lab-1", "strap-7", by="ben")
    assert (tmp_path / "rooms.sqlite3").exists()
    with RoomStore(tmp_path, clock=clock) as s:
        assert s.room("lab-1") == room
        assert [(m.user_id, m.role) for m in s.members("lab-1")] == [
            ("ana", Role.OWNER),
            ("ben", Role.ADMIN),
        ]
        assert s.sensors("lab-1") == ["strap-7"]
        assert s.room_of_sensor("strap-7") == "lab-1"
        # join codes stay valid after a restart
        assert s.join(room.join_code, "cy", client="c").room_id == "lab-1"


def test_create_rename_delete(store: RoomStore) -> None:
    store.create_room("a", owner="ana")
    store.create_room("b", "Room B", owner="ben")
    assert [r.room_id for r in store.rooms()] == ["a", "b"]
    assert [r.room_id for r in store.rooms("ana")] == ["a"]
    assert store.rename_room("a", "  Morning group ", by="ana").name == "Morning group"
    with pytest.raises(ValidationError) as err:
        store.create_room("a", owner="cy")
    assert err.value.reason == "room_exists"
    with pytest.raises(ValidationError):
        store.create_room("bad room", owner="cy")
    with pytest.raises(ValidationError):
        store.rename_room("a", " ", by="ana")
    store.delete_room("a", by="ana")
    assert [r.room_id for r in store.rooms()] == ["b"]
    with pytest.raises(ValidationError) as err:
        store.room("a")
    assert err.value.reason == "unknown_room"


def test_permissions_by_role(store: RoomStore) -> None:
    room = store.create_room("r", owner="ana")
    store.join(room.join_code, "mo", client="c1")
    store.set_role("r", "ad", "admin", by="ana")
    assert store.role_of("r", "mo") is Role.MEMBER
    assert store.can("r", "mo", Action.VIEW) and not store.can("r", "mo", Action.RENAME)
    assert not store.can("r", "nobody", Action.VIEW)

    def refused(call: object) -> None:
        assert callable(call)
        with pytest.raises(AuthError) as err:
            call()
        assert err.value.reason == "forbidden"

    refused(lambda: store.rename_room("r", "x", by="mo"))
    refused(lambda: store.assign_sensor("r", "s1", by="mo"))
    refused(lambda: store.set_role("r", "zed", Role.MEMBER, by="mo"))
    refused(lambda: store.rotate_code("r", by="mo"))
    refused(lambda: store.delete_room("r", by="ad"))
    refused(lambda: store.set_role("r", "ad", Role.OWNER, by="ad"))
    refused(lambda: store.remove_member("r", "ana", by="ad"))
    refused(lambda: store.rename_room("r", "x", by="stranger"))
    # nothing changed by the refusals
    assert store.room("r").name == "r" and store.sensors("r") == []
    assert store.role_of("r", "ad") is Role.ADMIN

    store.assign_sensor("r", "s1", by="ad")
    store.set_role("r", "zed", Role.MEMBER, by="ad")
    store.remove_member("r", "zed", by="ad")
    store.remove_member("r", "mo", by="mo")  # anyone may leave
    assert {m.user_id for m in store.members("r")} == {"ana", "ad"}


def test_a_room_keeps_an_owner(store: RoomStore) -> None:
    store.create_room("r", owner="ana")
    with pytest.raises(ValidationError) as err:
        store.set_role("r", "ana", Role.ADMIN, by="ana")
    assert err.value.reason == "last_owner"
    with pytest.raises(ValidationError):
        store.remove_member("r", "ana", by="ana")
    store.set_role("r", "ben", Role.OWNER, by="ana")
    store.remove_member("r", "ana", by="ben")
    assert store.role_of("r", "ana") is None
    assert store.role_of("r", "ben") is Role.OWNER


def test_join_keeps_a_higher_role_and_rotation_retires_the_old_code(store: RoomStore) -> None:
    room = store.create_room("r", owner="ana")
    assert store.join(format_code(room.join_code).lower(), "ana", client="c").room_id == "r"
    assert store.role_of("r", "ana") is Role.OWNER
    new = store.rotate_code("r", by="ana")
    assert new != room.join_code
    with pytest.raises(AuthError) as err:
        store.join(room.join_code, "ben", client="c")
    assert err.value.reason == "invalid_join_code"
    assert store.check_code("r", new, client="c").room_id == "r"
    assert store.find_by_code(format_code(new).lower(), client="c").room_id == "r"
    with pytest.raises(AuthError):
        store.find_by_code("nonsense", client="c")


def test_wrong_codes_are_rate_limited_per_client(store: RoomStore, clock: FakeClock) -> None:
    room = store.create_room("r", owner="ana")
    other = store.create_room("other", owner="ana")
    for guess in ["AAAAA-AAAAA", "not a code", other.join_code]:
        with pytest.raises(AuthError):
            store.check_code("r", guess, client="mallory")
    # locked out: even the right code is refused without being checked
    with pytest.raises(LimitExceeded) as err:
        store.check_code("r", room.join_code, client="mallory")
    assert err.value.reason == "too_many_attempts"
    with pytest.raises(LimitExceeded):
        store.join(room.join_code, "mallory", client="mallory")
    # an unknown room looks like a wrong code (no probing), other clients are not affected
    with pytest.raises(AuthError):
        store.check_code("nope", room.join_code, client="eve")
    assert store.check_code("r", room.join_code, client="alice").room_id == "r"
    clock.advance(60.0)
    assert store.check_code("r", room.join_code, client="mallory").room_id == "r"
    assert store.role_of("r", "mallory") is None


def test_presence_is_per_session(store: RoomStore, clock: FakeClock) -> None:
    room = store.create_room("r", owner="ana")
    store.join(room.join_code, "ben", client="c")
    with pytest.raises(ValidationError):
        store.enter("nope", "v0", "ana")
    store.enter("r", "v1", "ana")
    clock.advance(1.0)
    store.enter("r", "v2", "ben")
    assert [(p.viewer_id, p.user_id) for p in store.present("r")] == [("v1", "ana"), ("v2", "ben")]
    store.leave("v1")
    store.leave("v-unknown")
    assert [p.viewer_id for p in store.present("r")] == ["v2"]
    store.delete_room("r", by="ana")
    assert store.present("r") == []


def test_closed_store_refuses(tmp_path: Path) -> None:
    s = RoomStore(tmp_path)
    s.close()
    s.close()
    with pytest.raises(ClosedResourceError):
        s.rooms()
