"""``sensocto-lab rooms``: the rooms, join codes, members and sensors of a data directory.

Who may watch a room is decided by its join code and its members (see
:mod:`sensocto_lab.rooms`); this is how a researcher manages them without
Python. It works beside a running ``sensocto-lab serve`` on the same directory: the
room store is SQLite in WAL mode and the endpoint and dashboards read it on every
request, so a new member, a new code or an assigned sensor counts at once.

Changes are made as ``--as USER`` (default: the lab account that owns the rooms
``serve`` creates) and checked against that user's role in the room, as they would
be for anyone else. Listing creates nothing; ``assign`` takes a sensor recorded in the
directory (``--force`` for one that has not connected yet); removing a member who is
not one, or unassigning a sensor that is not assigned, is an error, not a silent no-op.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sensocto_lab.cli import _args
from sensocto_lab.cli._data import DEFAULT_DATA, recorded_sensors
from sensocto_lab.cli._fail import USAGE, CliError
from sensocto_lab.cli._text import natural_key, natural_list

if TYPE_CHECKING:  # imported when run: ``--help`` and the other commands do without them
    from sensocto_lab.rooms import Room, RoomStore

__all__ = ["add_parser", "run"]

#: The file of the room store in a data directory (``RoomStore.FILENAME``).
ROOMS_FILE = "rooms.sqlite3"


def _where(p: argparse.ArgumentParser, *, default: Any) -> None:
    """``--data`` and ``--as``, before the action or after it (``default`` SUPPRESS after)."""
    p.add_argument(
        "--data",
        type=_args.data_dir,
        default=DEFAULT_DATA if default is None else default,
        metavar="DIR",
        help="data directory" + ("" if default is None else f" (default: {DEFAULT_DATA})"),
    )
    p.add_argument(
        "--as",
        dest="by",
        type=_args.identifier("user"),
        default=None if default is None else default,
        metavar="USER",
        help="who makes the change (default: the lab account, owner of the rooms serve makes)",
    )


def add_parser(sub: Any) -> None:
    """Add the ``rooms`` command and its actions to the CLI's subparsers ``sub``."""
    rooms = _args.add_command(
        sub,
        "rooms",
        "list and manage rooms, join codes, members and sensor assignments",
        "List the rooms of a data directory (the default action), or change one: its name, "
        "join code, members and the sensors it shows. Works while serve runs on the same "
        "directory; changes count at once.",
    )
    _where(rooms, default=None)
    rooms.set_defaults(run=run)
    acts = rooms.add_subparsers(dest="action", metavar="ACTION")
    room_id = _args.identifier("room")
    user_id = _args.identifier("user")
    sensor_id = _args.identifier("sensor")

    def action(name: str, what: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = acts.add_parser(
            name, help=what, description=what[0].upper() + what[1:] + "."
        )
        _where(p, default=argparse.SUPPRESS)
        p.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="on an error, show the Python traceback too",
        )
        return p

    action("list", "every room with its code, members and sensors (the default)")
    create = action("create", "make a new room, owned by --as")
    create.add_argument("room", type=room_id, help="room id")
    create.add_argument("--name", default="", help="display name (default: the room id)")
    rename = action("rename", "give a room a new display name")
    rename.add_argument("room", type=room_id, help="room id")
    rename.add_argument("name", help="the new display name")
    for name, what in (("delete", "delete a room (not its recordings)"),
                       ("new-code", "replace a room's join code")):  # fmt: skip
        action(name, what).add_argument("room", type=room_id, help="room id")
    member = action("add-member", "add a member, or change their role")
    member.add_argument("room", type=room_id, help="room id")
    member.add_argument("user", type=user_id, help="user id")
    member.add_argument(
        "--role", default="member", choices=("member", "admin", "owner"), help="their role"
    )
    gone = action("remove-member", "remove a member")
    gone.add_argument("room", type=room_id, help="room id")
    gone.add_argument("user", type=user_id, help="user id")
    assign = action("assign", "show a recorded sensor in a room")
    assign.add_argument("room", type=room_id, help="room id")
    assign.add_argument("sensor", type=sensor_id, help="sensor id")
    assign.add_argument(
        "--force",
        action="store_true",
        help="assign a sensor that has no recordings here yet (one that will connect later)",
    )
    unassign = action("unassign", "stop showing a sensor in a room")
    unassign.add_argument("room", type=room_id, help="room id")
    unassign.add_argument("sensor", type=sensor_id, help="sensor id")


def run(args: argparse.Namespace) -> int:
    """Do the ``rooms`` action of ``args``; print what the room is now."""
    from sensocto_lab.rooms import LAB_USER, RoomStore

    data: Path = args.data
    args.action = args.action or "list"
    if not data.exists():
        raise CliError(
            f"no data directory at {data}: pass --data with the directory serve uses", USAGE
        )
    if args.action != "create" and not (data / ROOMS_FILE).exists():
        # nothing to list or change: say so, and leave the directory as it is
        first = (
            f"no rooms in {data} yet: make one with `sensocto-lab rooms create ROOM --data {data}`"
        )
        if args.action == "list":
            print(first, file=sys.stderr)
            return 0
        raise CliError(f"{first}, or pass --data with the directory serve uses")
    if args.action == "assign" and not args.force:
        _check_recorded(data, args.sensor)
    with RoomStore(data) as rooms:
        room = _change(rooms, args, args.by or LAB_USER)
        shown = rooms.rooms() if room is None else [room]
        shown.sort(key=lambda r: natural_key(r.room_id))
        if not shown and args.action == "list":
            print(f"no rooms in {data}", file=sys.stderr)
        for one in shown:
            _print_room(rooms, one)
    return 0


def _check_recorded(data: Path, sensor: str) -> None:
    """Refuse to assign ``sensor`` unless ``data`` holds recordings of it."""
    recorded = recorded_sensors(data)
    if recorded is None:
        raise CliError(
            f"{data} holds no recordings, so no sensor {sensor}: pass --force to assign a "
            "sensor that will connect later"
        )
    if sensor not in recorded:
        raise CliError(
            f"no sensor {sensor} in the recordings of {data} (it holds "
            f"{natural_list(recorded)}): check the id, or pass --force for a sensor that will "
            "connect later"
        )


def _change(rooms: RoomStore, args: argparse.Namespace, by: str) -> Room | None:
    """Make the change ``args`` ask for; the room to show after it (``None``: all)."""
    action = args.action
    if action == "list":
        return None
    if action == "create":
        return rooms.create_room(args.room, args.name, owner=by)
    if action == "delete":
        rooms.delete_room(args.room, by=by)
        print(f"room {args.room} deleted (its recordings stay in the data directory)")
        return None
    if action == "rename":
        rooms.rename_room(args.room, args.name, by=by)
    elif action == "new-code":
        rooms.rotate_code(args.room, by=by)
    elif action == "add-member":
        rooms.set_role(args.room, args.user, args.role, by=by)
    elif action == "remove-member":
        rooms.room(args.room)  # an unknown room is said as such first
        if rooms.role_of(args.room, args.user) is None:
            members = natural_list(m.user_id for m in rooms.members(args.room))
            raise CliError(f"{args.user} is not a member of room {args.room} (members: {members})")
        rooms.remove_member(args.room, args.user, by=by)
    elif action == "assign":
        rooms.assign_sensor(args.room, args.sensor, by=by)
    elif action == "unassign":
        assigned = rooms.sensors(args.room)
        if args.sensor not in assigned:
            raise CliError(
                f"sensor {args.sensor} is not assigned to room {args.room} (assigned: "
                f"{natural_list(assigned)})"
            )
        rooms.unassign_sensor(args.room, args.sensor, by=by)
    return rooms.room(args.room)


def _print_room(rooms: RoomStore, room: Room) -> None:
    from sensocto_lab.rooms import format_code

    members = ", ".join(f"{m.user_id} ({m.role.label})" for m in rooms.members(room.room_id))
    sensors = natural_list(rooms.sensors(room.room_id))
    if sensors == "none":
        sensors = "none assigned"
    print(f"{room.room_id}  {room.name}")
    print(f"    join code  {format_code(room.join_code)}")
    print(f"    members    {members or 'none'}")
    print(f"    sensors    {sensors} (plus those recorded under the room)")
