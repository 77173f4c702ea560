"""``sensocto-lab rooms``: the rooms, join codes, members and sensors of a data directory.

Who may watch a room is decided by its join code and its members (see
:mod:`sensocto_lab.rooms`); this is how a researcher manages them without
Python. It works beside a running ``sensocto-lab serve`` on the same directory: the
room store is SQLite in WAL mode and the endpoint and dashboards read it on every
request, so a new member, a new code or an assigned sensor counts at once.

Changes are made as ``--as USER`` (default: the lab account that owns the rooms
``serve`` creates) and checked against that user's role in the room, as they would
be for anyone else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when run: ``--help`` and the other commands do without them
    from sensocto_lab.rooms import Room, RoomStore

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, default_data: Path) -> None:
    """Add the ``rooms`` command and its actions to the CLI's subparsers ``sub``."""
    rooms = sub.add_parser(
        "rooms", help="list and manage rooms, join codes, members and sensor assignments"
    )
    rooms.add_argument("--data", type=Path, default=default_data, help="data directory")
    rooms.add_argument(
        "--as",
        dest="by",
        default=None,
        metavar="USER",
        help="who makes the change (default: the lab account, owner of the rooms serve makes)",
    )
    acts = rooms.add_subparsers(dest="action", metavar="ACTION")
    acts.add_parser("list", help="every room with its code, members and sensors (default)")
    create = acts.add_parser("create", help="a new room, owned by --as")
    create.add_argument("room")
    create.add_argument("--name", default="", help="display name (default: the room id)")
    rename = acts.add_parser("rename", help="give a room a new display name")
    rename.add_argument("room")
    rename.add_argument("name")
    acts.add_parser("delete", help="delete a room (not its recordings)").add_argument("room")
    acts.add_parser("new-code", help="replace a room's join code").add_argument("room")
    member = acts.add_parser("add-member", help="add a member, or change their role")
    member.add_argument("room")
    member.add_argument("user")
    member.add_argument("--role", default="member", choices=("member", "admin", "owner"))
    gone = acts.add_parser("remove-member", help="remove a member")
    gone.add_argument("room")
    gone.add_argument("user")
    for name, what in (("assign", "show a sensor in a room"), ("unassign", "stop showing it")):
        one = acts.add_parser(name, help=what)
        one.add_argument("room")
        one.add_argument("sensor")


def run(args: argparse.Namespace) -> int:
    """Do the ``rooms`` action of ``args``; print what the room is now."""
    from sensocto_lab.errors import SensoctoError
    from sensocto_lab.rooms import LAB_USER, RoomStore

    if not args.data.exists():
        print(f"sensocto-lab rooms: no data directory at {args.data}", file=sys.stderr)
        return 2
    by = args.by or LAB_USER
    with RoomStore(args.data) as rooms:
        try:
            room = _change(rooms, args, by)
        except SensoctoError as exc:
            print(f"sensocto-lab rooms: {exc.detail}", file=sys.stderr)
            return 1
        for shown in rooms.rooms() if room is None else [room]:
            _print_room(rooms, shown)
    return 0


def _change(rooms: RoomStore, args: argparse.Namespace, by: str) -> Room | None:
    """Make the change ``args`` ask for; the room to show after it (``None``: all)."""
    action = args.action or "list"
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
        rooms.remove_member(args.room, args.user, by=by)
    elif action == "assign":
        rooms.assign_sensor(args.room, args.sensor, by=by)
    elif action == "unassign":
        rooms.unassign_sensor(args.room, args.sensor, by=by)
    return rooms.room(args.room)


def _print_room(rooms: RoomStore, room: Room) -> None:
    from sensocto_lab.rooms import format_code

    members = ", ".join(f"{m.user_id} ({m.role.label})" for m in rooms.members(room.room_id))
    sensors = ", ".join(rooms.sensors(room.room_id)) or "none assigned"
    print(f"{room.room_id}  {room.name}")
    print(f"    join code  {format_code(room.join_code)}")
    print(f"    members    {members or 'none'}")
    print(f"    sensors    {sensors} (plus those recorded under the room)")
