"""Rooms: who may watch which sensors, entered with a join code.

A room groups sensors for a dashboard. People are members with a role (owner,
admin, member); anyone holding the room's join code may join as a member. Which
sessions are watching right now (presence) is kept in memory only: it is gone
after a restart, which is what presence means. Rooms, members and sensor
assignments persist in ``{data_dir}/rooms.sqlite3`` (stdlib :mod:`sqlite3`).

Join codes are 10 symbols of Crockford's base32 (no I, L, O, U: nothing to
misread aloud or on a projector), 50 bits from :mod:`secrets`, shown as
``ABCDE-FGHJK``. Guessing is limited per client: after ``max_failures`` wrong
codes within ``window_s`` seconds (on an injected clock) further tries are
refused with :class:`~sensocto_lab.errors.LimitExceeded` until the window passes.

Every mutating call takes ``by``, the user asking, and checks their role against
:data:`PERMISSIONS`; a refusal raises :class:`~sensocto_lab.errors.AuthError` with
reason ``forbidden`` and changes nothing.
"""

from __future__ import annotations

import collections
import enum
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sensocto_lab.clock import Clock, SystemClock
from sensocto_lab.errors import AuthError, ClosedResourceError, LimitExceeded, ValidationError
from sensocto_lab.model import check_id

__all__ = [
    "CODE_ALPHABET",
    "LAB_USER",
    "PERMISSIONS",
    "Action",
    "Member",
    "Presence",
    "Role",
    "Room",
    "RoomStore",
    "format_code",
    "new_join_code",
    "normalize_code",
]

#: The user id under which the lab itself (``sensocto-lab serve``, ``sensocto-lab rooms``)
#: owns the rooms it creates and manages them.
LAB_USER = "sensocto-lab"

#: Crockford's base32 symbols: digits and letters without I, L, O, U.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Symbols per join code: 10 × 5 bits = 50 bits of entropy.
CODE_LENGTH = 10
#: What people type by mistake, read the way Crockford's decoding reads it.
_CODE_CONFUSABLES = str.maketrans({"I": "1", "L": "1", "O": "0"})


class Role(enum.IntEnum):
    """A member's role in a room; ordered so a higher role can do what a lower one can."""

    MEMBER = 1
    ADMIN = 2
    OWNER = 3

    @property
    def label(self) -> str:
        """The stored name: ``"member"``, ``"admin"`` or ``"owner"``."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: object) -> Role:
        """Accept a role or its name."""
        if isinstance(value, Role):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise ValidationError(
            f"role must be one of owner, admin, member; got {value!r:.40}", reason="invalid_role"
        )


class Action(enum.Enum):
    """Things a member may ask to do in a room."""

    VIEW = "view"
    RENAME = "rename"
    DELETE = "delete"
    MANAGE_MEMBERS = "manage_members"
    ASSIGN_SENSORS = "assign_sensors"
    ROTATE_CODE = "rotate_code"


#: The least role allowed to perform each action.
PERMISSIONS: Mapping[Action, Role] = {
    Action.VIEW: Role.MEMBER,
    Action.RENAME: Role.ADMIN,
    Action.DELETE: Role.OWNER,
    Action.MANAGE_MEMBERS: Role.ADMIN,
    Action.ASSIGN_SENSORS: Role.ADMIN,
    Action.ROTATE_CODE: Role.ADMIN,
}


@dataclass(frozen=True, slots=True)
class Room:
    """A room as stored.

    Attributes
    ----------
    room_id
        Identifier (also the ``room=`` partition of the room's recordings).
    name
        Display name.
    join_code
        The current join code, normalised (no dash).
    created_ns
        Creation time, ns since the epoch.
    """

    room_id: str
    name: str
    join_code: str
    created_ns: int

    def __str__(self) -> str:
        return f"Room({self.room_id}, {self.name!r})"


@dataclass(frozen=True, slots=True)
class Member:
    """A user's membership of a room."""

    room_id: str
    user_id: str
    role: Role
    joined_ns: int


@dataclass(frozen=True, slots=True)
class Presence:
    """One session watching a room now."""

    room_id: str
    viewer_id: str
    user_id: str
    since_ns: int


def new_join_code() -> str:
    """A fresh join code: ``CODE_LENGTH`` symbols of :data:`CODE_ALPHABET` from :mod:`secrets`."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """Read a typed code: case, spaces and dashes ignored; I/L read as 1 and O as 0.

    Raises
    ------
    ValidationError
        ``invalid_join_code`` if what remains is not ``CODE_LENGTH`` base32 symbols.
    """
    if not isinstance(text, str):
        raise ValidationError("a join code must be text", reason="invalid_join_code")
    code = "".join(text.split()).replace("-", "").upper().translate(_CODE_CONFUSABLES)
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        raise ValidationError(
            f"a join code is {CODE_LENGTH} letters and digits, like ABCDE-12345",
            reason="invalid_join_code",
        )
    return code


def format_code(code: str) -> str:
    """Show a code as two groups of five: ``ABCDE-FGHJK``."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


class _GuessLimiter:
    """Per-client sliding window of failed join-code attempts (clock-driven)."""

    def __init__(self, clock: Clock, max_failures: int, window_s: float) -> None:
        self._clock = clock
        self._max = max_failures
        self._window = window_s
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, client: str) -> collections.deque[float]:
        now = self._clock.monotonic()
        q = self._failures.get(client)
        if q is None:
            return collections.deque()
        while q and now - q[0] >= self._window:
            q.popleft()
        if not q:
            del self._failures[client]
        return q

    def check(self, client: str) -> None:
        q = self._recent(client)
        if len(q) >= self._max:
            wait = self._window - (self._clock.monotonic() - q[0])
            raise LimitExceeded(
                f"too many wrong join codes; try again in {max(wait, 0.0):.0f} s",
                reason="too_many_attempts",
            )

    def fail(self, client: str) -> None:
        self._recent(client)
        self._failures.setdefault(client, collections.deque()).append(self._clock.monotonic())


_SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    room_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    join_code TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    joined_ns INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE IF NOT EXISTS room_sensors (
    sensor_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE
);
"""


class RoomStore:
    """Rooms, members, sensor assignments (persisted) and presence (in memory).

    Thread-safe: calls are serialised by a lock, so the Panel server, the engine
    loop and a notebook may share one store.

    Parameters
    ----------
    data_dir
        Directory of ``rooms.sqlite3`` (created if missing).
    clock
        Time source for timestamps and the guessing limit.
    max_failures, window_s
        At most ``max_failures`` wrong join codes per client within ``window_s`` seconds.
    """

    FILENAME = "rooms.sqlite3"

    def __init__(
        self,
        data_dir: str | Path,
        *,
        clock: Clock | None = None,
        max_failures: int = 5,
        window_s: float = 60.0,
    ) -> None:
        self.path = Path(data_dir) / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock or SystemClock()
        self._limiter = _GuessLimiter(self._clock, max_failures, window_s)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)
        self._presence: dict[str, Presence] = {}

    # -- plumbing -------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; rolled back (nothing changed) on error."""
        with self._lock:
            if self._db is None:
                raise ClosedResourceError("the room store is closed", reason="closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database; later calls raise :class:`ClosedResourceError`."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> RoomStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _room_row(row: tuple[str, str, str, int]) -> Room:
        return Room(row[0], row[1], row[2], int(row[3]))

    def _get(self, db: sqlite3.Connection, room_id: str) -> Room:
        row = db.execute(
            "SELECT room_id, name, join_code, created_ns FROM rooms WHERE room_id = ?", (room_id,)
        ).fetchone()
        if row is None:
            raise ValidationError(f"there is no room {room_id!r:.80}", reason="unknown_room")
        return self._room_row(row)

    def _role(self, db: sqlite3.Connection, room_id: str, user_id: str) -> Role | None:
        row = db.execute(
            "SELECT role FROM members WHERE room_id = ? AND user_id = ?", (room_id, user_id)
        ).fetchone()
        return None if row is None else Role.parse(row[0])

    def _require(self, db: sqlite3.Connection, room_id: str, user_id: str, action: Action) -> Role:
        self._get(db, room_id)
        role = self._role(db, room_id, user_id)
        needed = PERMISSIONS[action]
        if role is None or role < needed:
            raise AuthError(
                f"{user_id!r:.80} may not {action.value.replace('_', ' ')} in room "
                f"{room_id!r:.80} (needs {needed.label})",
                reason="forbidden",
            )
        return role

    def _unique_code(self, db: sqlite3.Connection) -> str:
        while True:
            code = new_join_code()
            if db.execute("SELECT 1 FROM rooms WHERE join_code = ?", (code,)).fetchone() is None:
                return code

    # -- rooms ----------------------------------------------------------------------

    def create_room(self, room_id: str, name: str = "", *, owner: str) -> Room:
        """Create a room owned by ``owner`` with a fresh join code.

        Raises
        ------
        ValidationError
            ``invalid_room`` / ``invalid_user_id`` for unusable ids, ``room_exists`` if
            the id is taken.
        """
        check_id(room_id, "room")
        check_id(owner, "user_id")
        now = self._clock.time_ns()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM rooms WHERE room_id = ?", (room_id,)).fetchone():
                raise ValidationError(f"room {room_id!r} already exists", reason="room_exists")
            room = Room(room_id, name or room_id, self._unique_code(db), now)
            db.execute(
                "INSERT INTO rooms VALUES (?, ?, ?, ?)",
                (room.room_id, room.name, room.join_code, room.created_ns),
            )
            db.execute(
                "INSERT INTO members VALUES (?, ?, ?, ?)", (room_id, owner, Role.OWNER.label, now)
            )
        return room

    def room(self, room_id: str) -> Room:
        """The room ``room_id``; ``ValidationError('unknown_room')`` if there is none."""
        with self._tx() as db:
            return self._get(db, room_id)

    def rooms(self, user_id: str | None = None) -> list[Room]:
        """All rooms, or those ``user_id`` is a member of, by id."""
        with self._tx() as db:
            if user_id is None:
                rows = db.execute(
                    "SELECT room_id, name, join_code, created_ns FROM rooms ORDER BY room_id"
                ).fetchall()
            else:
                rows = db.execute(
                    "SELECT r.room_id, r.name, r.join_code, r.created_ns FROM rooms r "
                    "JOIN members m ON m.room_id = r.room_id WHERE m.user_id = ? "
                    "ORDER BY r.room_id",
                    (user_id,),
                ).fetchall()
        return [self._room_row(r) for r in rows]

    def rename_room(self, room_id: str, name: str, *, by: str) -> Room:
        """Give a room a new display name (admin or owner)."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ValidationError("a room name is 1-200 characters", reason="invalid_name")
        with self._tx() as db:
            self._require(db, room_id, by, Action.RENAME)
            db.execute("UPDATE rooms SET name = ? WHERE room_id = ?", (name.strip(), room_id))
            return self._get(db, room_id)

    def delete_room(self, room_id: str, *, by: str) -> None:
        """Delete a room, its memberships and sensor assignments (owner only).

        Recordings are not touched: they stay under ``room={room_id}`` in storage.
        """
        with self._tx() as db:
            self._require(db, room_id, by, Action.DELETE)
            db.execute("DELETE FROM rooms WHERE room_id = ?", (room_id,))
        with self._lock:
            for viewer, p in list(self._presence.items()):
                if p.room_id == room_id:
                    del self._presence[viewer]

    def rotate_code(self, room_id: str, *, by: str) -> str:
        """Replace the room's join code (old one stops working); returns the new code."""
        with self._tx() as db:
            self._require(db, room_id, by, Action.ROTATE_CODE)
            code = self._unique_code(db)
            db.execute("UPDATE rooms SET join_code = ? WHERE room_id = ?", (code, room_id))
        return code

    # -- join codes -------------------------------------------------------------------

    def check_code(self, room_id: str, code: str, *, client: str) -> Room:
        """Check that ``code`` opens ``room_id``, counting a wrong code against ``client``.

        ``client`` is whoever is guessing (an IP address, a session): each gets
        ``max_failures`` wrong tries per window.

        Raises
        ------
        LimitExceeded
            ``too_many_attempts`` while ``client`` is locked out (the code is not checked).
        AuthError
            ``invalid_join_code`` for a wrong or malformed code, or an unknown room
            (indistinguishable, so room ids cannot be probed).
        """
        with self._lock:
            self._limiter.check(client)
            try:
                typed = normalize_code(code)
                with self._tx() as db:
                    room = self._get(db, room_id)
                if not secrets.compare_digest(typed, room.join_code):
                    raise AuthError("wrong join code", reason="invalid_join_code")
            except (ValidationError, AuthError):
                self._limiter.fail(client)
                raise AuthError(
                    "that join code does not open this room", reason="invalid_join_code"
                ) from None
            return room

    def join(self, code: str, user_id: str, *, client: str, room_id: str | None = None) -> Room:
        """Join the room whose code is ``code`` as a member (keeping a higher role).

        With ``room_id`` the code must be that room's; without, the code finds the room.
        Raises as :meth:`check_code`.
        """
        check_id(user_id, "user_id")
        with self._lock:
            if room_id is not None:
                room = self.check_code(room_id, code, client=client)
            else:
                room = self.find_by_code(code, client=client)
            with self._tx() as db:
                db.execute(
                    "INSERT OR IGNORE INTO members VALUES (?, ?, ?, ?)",
                    (room.room_id, user_id, Role.MEMBER.label, self._clock.time_ns()),
                )
            return room

    def find_by_code(self, code: str, *, client: str) -> Room:
        """The room whose join code is ``code`` (typed forgivingly); limited as :meth:`check_code`.

        Raises
        ------
        LimitExceeded
            ``too_many_attempts`` while ``client`` is locked out.
        AuthError
            ``invalid_join_code`` if no room has that code.
        """
        with self._lock:
            return self._find_by_code_locked(code, client)

    def _find_by_code_locked(self, code: str, client: str) -> Room:
        self._limiter.check(client)
        try:
            typed = normalize_code(code)
        except ValidationError:
            typed = ""
        with self._tx() as db:
            row = db.execute(
                "SELECT room_id, name, join_code, created_ns FROM rooms WHERE join_code = ?",
                (typed,),
            ).fetchone()
        if row is None:
            self._limiter.fail(client)
            raise AuthError("no room has that join code", reason="invalid_join_code")
        return self._room_row(row)

    # -- members --------------------------------------------------------------------

    def members(self, room_id: str) -> list[Member]:
        """The room's members, highest role first."""
        with self._tx() as db:
            self._get(db, room_id)
            rows = db.execute(
                "SELECT room_id, user_id, role, joined_ns FROM members WHERE room_id = ?",
                (room_id,),
            ).fetchall()
        out = [Member(r[0], r[1], Role.parse(r[2]), int(r[3])) for r in rows]
        return sorted(out, key=lambda m: (-m.role, m.user_id))

    def role_of(self, room_id: str, user_id: str) -> Role | None:
        """``user_id``'s role in the room, or ``None`` if not a member."""
        with self._tx() as db:
            self._get(db, room_id)
            return self._role(db, room_id, user_id)

    def can(self, room_id: str, user_id: str, action: Action) -> bool:
        """Whether ``user_id`` may perform ``action`` in the room."""
        role = self.role_of(room_id, user_id)
        return role is not None and role >= PERMISSIONS[action]

    def set_role(self, room_id: str, user_id: str, role: Role | str, *, by: str) -> Member:
        """Add ``user_id`` or change their role.

        Admins manage members and admins; only the owner may grant or take away
        ownership, and a room always keeps at least one owner.
        """
        check_id(user_id, "user_id")
        new = Role.parse(role)
        now = self._clock.time_ns()
        with self._tx() as db:
            mine = self._require(db, room_id, by, Action.MANAGE_MEMBERS)
            old = self._role(db, room_id, user_id)
            if Role.OWNER in (new, old) and mine < Role.OWNER:
                raise AuthError("only an owner may change ownership", reason="forbidden")
            if old is Role.OWNER and new is not Role.OWNER:
                self._keep_an_owner(db, room_id)
            db.execute(
                "INSERT INTO members VALUES (?, ?, ?, ?) ON CONFLICT(room_id, user_id) "
                "DO UPDATE SET role = excluded.role",
                (room_id, user_id, new.label, now),
            )
            row = db.execute(
                "SELECT joined_ns FROM members WHERE room_id = ? AND user_id = ?",
                (room_id, user_id),
            ).fetchone()
        return Member(room_id, user_id, new, int(row[0]))

    def remove_member(self, room_id: str, user_id: str, *, by: str) -> None:
        """Remove ``user_id`` from the room (admins; anyone may leave; owners only by an owner)."""
        with self._tx() as db:
            old = self._role(db, room_id, user_id)
            if by != user_id:
                mine = self._require(db, room_id, by, Action.MANAGE_MEMBERS)
                if old is Role.OWNER and mine < Role.OWNER:
                    raise AuthError("only an owner may remove an owner", reason="forbidden")
            else:
                self._get(db, room_id)
            if old is None:
                return
            if old is Role.OWNER:
                self._keep_an_owner(db, room_id)
            db.execute("DELETE FROM members WHERE room_id = ? AND user_id = ?", (room_id, user_id))

    @staticmethod
    def _keep_an_owner(db: sqlite3.Connection, room_id: str) -> None:
        (owners,) = db.execute(
            "SELECT COUNT(*) FROM members WHERE room_id = ? AND role = ?",
            (room_id, Role.OWNER.label),
        ).fetchone()
        if owners <= 1:
            raise ValidationError("a room must keep at least one owner", reason="last_owner")

    # -- sensors --------------------------------------------------------------------

    def assign_sensor(self, room_id: str, sensor_id: str, *, by: str) -> None:
        """Show ``sensor_id`` in this room (moving it from any other room)."""
        check_id(sensor_id, "sensor_id")
        with self._tx() as db:
            self._require(db, room_id, by, Action.ASSIGN_SENSORS)
            db.execute(
                "INSERT INTO room_sensors VALUES (?, ?) ON CONFLICT(sensor_id) "
                "DO UPDATE SET room_id = excluded.room_id",
                (sensor_id, room_id),
            )

    def unassign_sensor(self, room_id: str, sensor_id: str, *, by: str) -> None:
        """Stop showing ``sensor_id`` in this room."""
        with self._tx() as db:
            self._require(db, room_id, by, Action.ASSIGN_SENSORS)
            db.execute(
                "DELETE FROM room_sensors WHERE room_id = ? AND sensor_id = ?", (room_id, sensor_id)
            )

    def sensors(self, room_id: str) -> list[str]:
        """Ids of the sensors assigned to the room, sorted."""
        with self._tx() as db:
            self._get(db, room_id)
            rows = db.execute(
                "SELECT sensor_id FROM room_sensors WHERE room_id = ? ORDER BY sensor_id",
                (room_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def room_of_sensor(self, sensor_id: str) -> str | None:
        """The room a sensor is assigned to, if any."""
        with self._tx() as db:
            row = db.execute(
                "SELECT room_id FROM room_sensors WHERE sensor_id = ?", (sensor_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    # -- presence -------------------------------------------------------------------

    def enter(self, room_id: str, viewer_id: str, user_id: str) -> Presence:
        """Record that session ``viewer_id`` of ``user_id`` is watching.

        The caller has checked access (a join code, or membership): guests who
        presented the code are present without being members.
        """
        with self._tx() as db:
            self._get(db, room_id)
        with self._lock:
            p = Presence(room_id, viewer_id, user_id, self._clock.time_ns())
            self._presence[viewer_id] = p
            return p

    def leave(self, viewer_id: str) -> None:
        """The session ``viewer_id`` stopped watching (unknown ids are ignored)."""
        with self._lock:
            self._presence.pop(viewer_id, None)

    def present(self, room_id: str) -> list[Presence]:
        """Sessions watching the room now, oldest first."""
        with self._lock:
            return sorted(
                (p for p in self._presence.values() if p.room_id == room_id),
                key=lambda p: (p.since_ns, p.viewer_id),
            )
