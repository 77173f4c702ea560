"""``sensocto-lab demo``, ``serve`` and ``record``: a lab in this process.

All three run the engine, the ingest endpoint (with ``/health``) and the room
dashboards through :class:`~sensocto_lab.app.LabApp`; they differ in what they are
for. ``demo`` shows the workbench on simulated data, open to any device; ``serve``
is a lab's long-running server, whose data directory (rooms, recordings) carries over
from run to run; ``record`` records one session for a fixed time, then stops.
``demo`` and ``record`` without ``--data`` make a new dated session directory.

Every option is checked, and the ports probed, before anything is created on disk;
a directory made for a run that then fails to start is removed again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sensocto_lab.cli import _args
from sensocto_lab.cli._data import DEFAULT_DATA, check_append, new_session
from sensocto_lab.cli._net import check_free

__all__ = ["add_parsers", "run", "run_until_stopped"]

#: Defaults of options whose "given or not" matters (they are ``None`` when not given).
DASHBOARD_PORT = 5006
COUPLING = 1.5

_PURPOSE = {
    "demo": (
        "try the workbench: a simulated room, its dashboard and an open ingest endpoint",
        "Try the workbench on simulated data: a room of coupled participants, its dashboard "
        "and an ingest endpoint that any device may join (no token). Data goes into a new "
        "session directory under ./sensocto-data/ unless --data is given. Ctrl-C stops.",
    ),
    "serve": (
        "run a lab: engine, ingest endpoint for devices (token required), dashboards",
        "Run a lab's server until Ctrl-C: the engine, the ingest endpoint devices push to "
        "(they must present a --token, or pass --no-auth) and the room dashboards. Its "
        "data directory (rooms, join codes, recordings) carries over from run to run.",
    ),
    "record": (
        "record one session for --duration seconds, then stop",
        "Record one session for --duration seconds, then flush and stop: the same engine, "
        "endpoint and dashboards as serve. Data goes into a new session directory under "
        "./sensocto-data/ unless --data is given.",
    ),
}


def add_parsers(sub: Any) -> None:
    """Add ``demo``, ``serve`` and ``record`` to the CLI's subparsers ``sub``."""
    for command in ("demo", "serve", "record"):
        summary, description = _PURPOSE[command]
        p = _args.add_command(sub, command, summary, description)
        _add_options(p, command)
        p.set_defaults(run=run)


def _add_options(p: argparse.ArgumentParser, command: str) -> None:
    demo = command == "demo"
    session = command in ("demo", "record")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument(
        "--port", type=_args.port, default=4000, help="port of the ingest endpoint, 0 = any free"
    )
    p.add_argument(
        "--dashboard-port",
        type=_args.port,
        default=None,
        metavar="PORT",
        help=f"port of the room dashboards, 0 = any free (default: {DASHBOARD_PORT})",
    )
    p.add_argument("--no-dashboard", action="store_true", help="run without the room dashboards")
    p.add_argument(
        "--data",
        type=_args.data_dir,
        default=None if session else DEFAULT_DATA,
        metavar="DIR",
        help="data directory"
        + (f" (default: a new session directory in ./{DEFAULT_DATA}/)" if session else ""),
    )
    if session:
        p.add_argument(
            "--append",
            action="store_true",
            help="record into a --data directory that already holds another session's data",
        )
    p.add_argument(
        "--simulate",
        type=_args.count,
        default=8 if demo else 0,
        metavar="N",
        help="simulated participants (coupled breathing and heartbeats), 0 = none",
    )
    p.add_argument(
        "--room",
        type=_args.identifier("room"),
        default="demo" if demo else "lab",
        help="room of the simulated participants and of devices that name none",
    )
    p.add_argument(
        "--coupling",
        type=_args.finite,
        default=None,
        metavar="K",
        help=f"coupling of the simulated group, in rad/s (default: {COUPLING})",
    )
    token_help = f"ingest token devices must present (repeatable); {command} needs one or --no-auth"
    p.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="SECRET",
        help=argparse.SUPPRESS if demo else token_help,
    )
    p.add_argument(
        "--no-auth",
        action="store_true",
        help=argparse.SUPPRESS if demo else "accept any device, without a token",
    )
    p.add_argument(
        "--basic-auth",
        type=_args.basic_auth,
        default=None,
        metavar="PASSWORD|FILE",
        help="dashboards ask who is watching: one shared password, or a JSON file of user → "
        "password (Panel's basic auth); members of a room open it without its code",
    )
    if command == "record":
        p.add_argument(
            "--duration",
            type=_args.positive_seconds,
            required=True,
            metavar="SECONDS",
            help="how long to record, in seconds",
        )
    else:
        p.add_argument(
            "--duration",
            type=_args.positive_seconds,
            default=None,
            metavar="SECONDS",
            help="stop after this many seconds (default: run until Ctrl-C)",
        )


def _check(args: argparse.Namespace) -> None:
    """Refuse options that contradict each other or do nothing here (usage errors)."""
    usage: argparse.ArgumentParser = args._parser
    if args.command == "demo":
        if args.token or args.no_auth:
            usage.error(
                "demo accepts any device without a token; for tokens run "
                "`sensocto-lab serve --token SECRET`"
            )
    elif args.token and args.no_auth:
        usage.error("--no-auth accepts any device, so --token would do nothing: give one of them")
    elif not args.token and not args.no_auth:
        usage.error("give devices a token with --token SECRET, or accept any device with --no-auth")
    if args.no_dashboard and (args.dashboard_port is not None or args.basic_auth):
        usage.error("--no-dashboard runs no dashboards: leave out --dashboard-port/--basic-auth")
    if args.coupling is not None and not args.simulate:
        usage.error("--coupling sets the simulated group's coupling: add --simulate N")


async def run(args: argparse.Namespace) -> int:
    """Check everything, then run the lab until stopped, ``--duration`` or Ctrl-C."""
    from sensocto_lab.app import DEMO_PROTOCOL, LabApp, LabOptions

    _check(args)
    dashboard_port = None if args.no_dashboard else _or(args.dashboard_port, DASHBOARD_PORT)
    check_free(args.host, args.port, "--port")
    if dashboard_port is not None:
        check_free(args.host, dashboard_port, "--dashboard-port")
    data: Path = args.data or new_session(args.command, args.room)
    if args.command in ("demo", "record"):
        check_append(data, args.append)
    made = _first_missing(data)
    options = LabOptions(
        data_dir=data,
        host=args.host,
        port=args.port,
        dashboard_port=dashboard_port,
        tokens=frozenset(args.token),
        auth=args.command != "demo" and not args.no_auth,
        simulate=args.simulate,
        room=args.room,
        coupling=_or(args.coupling, COUPLING),
        basic_auth=args.basic_auth,
        # the demo tells a story: baseline uncoupled, a coupled task, recovery, repeating
        protocol=DEMO_PROTOCOL if args.command == "demo" else (),
    )
    try:
        app = await LabApp.start(options)
    except BaseException:
        if made is not None:  # a failed start leaves no half-made directory behind
            shutil.rmtree(made, ignore_errors=True)
        raise
    async with app:
        await run_until_stopped(app.describe(), args.duration)
        print("stopping: flushing storage ...", flush=True)
        failed_writes = int(app.engine.store.statistics().get("write_errors", 0))
    print(f"data kept in {data}  (see it: sensocto-lab info --data {data})", flush=True)
    if failed_writes:  # a recording with holes must not look like a clean one
        print(
            f"sensocto-lab {args.command}: {failed_writes} writes failed while recording "
            "(disk full?): the recording has gaps; those pushes got storage_error replies",
            file=sys.stderr,
        )
        return 1
    return 0


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of ``path`` that does not exist yet (``None``: it exists)."""
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


async def run_until_stopped(lines: Sequence[str], duration: float | None) -> None:
    """Print ``lines`` and "ready", then wait for Ctrl-C, SIGTERM or ``duration`` seconds."""
    # What is alive once everything has started (modules, Panel, Bokeh, ~200k objects)
    # lives as long as the process: out of the garbage collector's full passes, which
    # otherwise stall the engine's loop ~100 ms each time they scan it. Objects are
    # still freed when their last reference goes; only cycles among them would stay.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # after the start: the Panel server installs a SIGINT handler that stops the
    # loop outright; ours shuts down in order (and flushes storage) instead
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    for line in lines:
        print(line, flush=True)
    print("ready            press Ctrl-C to stop", flush=True)
    if duration is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    else:
        await stop.wait()
