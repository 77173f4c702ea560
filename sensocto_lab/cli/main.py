"""The ``sensocto-lab`` command: demo, serve, record, dashboard, rooms, replay, info.

``demo`` and ``serve`` run the engine, the Phoenix Channels ingest endpoint (with
``/health``) and the room dashboards in one process; ``record`` runs a session for a
fixed time; ``dashboard`` serves the room dashboards of an engine in another process
over its endpoint; ``rooms`` manages rooms, join codes, members and sensor
assignments (:mod:`sensocto_lab.cli.rooms`); ``replay`` pushes a stored session back
through an endpoint; ``info`` summarises a data directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sensocto_lab.cli import rooms as cli_rooms

__all__ = ["main"]

DEFAULT_DATA = Path("sensocto-data")


def _add_serve_options(p: argparse.ArgumentParser, *, demo: bool) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4000, help="ingest endpoint port (0 = any free)")
    p.add_argument("--dashboard-port", type=int, default=5006, help="dashboard port (0 = any free)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory")
    p.add_argument(
        "--simulate",
        type=int,
        default=8 if demo else 0,
        metavar="N",
        help="add a simulated group of N coupled participants",
    )
    p.add_argument("--room", default="demo" if demo else "lab", help="room for simulated sensors")
    p.add_argument("--coupling", type=float, default=1.5, help="simulated group coupling K")
    p.add_argument(
        "--token",
        action="append",
        default=[],
        help="ingest token devices must present (repeatable); serve refuses to run without one "
        "unless --no-auth is given",
    )
    p.add_argument("--no-auth", action="store_true", help="accept devices without a token")
    p.add_argument("--no-dashboard", action="store_true", help="run without the Panel dashboards")
    _add_login_option(p, "; members of a room open it without its code")
    p.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: run)"
    )


def _add_login_option(p: argparse.ArgumentParser, members: str) -> None:
    p.add_argument(
        "--basic-auth",
        default=None,
        metavar="PASSWORD|FILE",
        help="dashboards ask who is watching: one shared password, or a JSON file of user → "
        f"password (Panel's basic auth){members}",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sensocto-lab", description="Record and study the live physiology of groups."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve_options(
        sub.add_parser("demo", help="simulated room + dashboard + ingest endpoint on localhost"),
        demo=True,
    )
    _add_serve_options(
        sub.add_parser("serve", help="engine, ingest endpoint and dashboards"), demo=False
    )
    rec = sub.add_parser("record", help="record a session for a fixed time, then stop")
    _add_serve_options(rec, demo=False)
    dash = sub.add_parser(
        "dashboard", help="room dashboards of an engine in another process (over its endpoint)"
    )
    dash.add_argument(
        "--connect",
        default="ws://127.0.0.1:4000",
        metavar="URL",
        help="the engine's endpoint (default ws://127.0.0.1:4000)",
    )
    dash.add_argument(
        "--token", default=None, help="a viewer token of the engine (optional: rooms take codes)"
    )
    _add_login_option(dash, "; with --token, members of a room open it without its code")
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dash.add_argument("--port", type=int, default=5006, help="dashboard port (0 = any free)")
    dash.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: run)"
    )
    cli_rooms.add_parser(sub, DEFAULT_DATA)
    rep = sub.add_parser("replay", help="replay a stored session through an ingest endpoint")
    rep.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory to read")
    rep.add_argument(
        "--url",
        default="ws://127.0.0.1:4000/socket/websocket",
        help="endpoint to push to (default ws://127.0.0.1:4000/socket/websocket)",
    )
    rep.add_argument("--token", default=None, help="ingest token for the endpoint")
    rep.add_argument("--speed", type=float, default=1.0, help="1 = real time, 10 = 10x faster")
    rep.add_argument("--sensor", action="append", default=None, help="only these sensors")
    inf = sub.add_parser("info", help="summarise a data directory")
    inf.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory")
    inf.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sensocto-lab`` command."""
    args = _parser().parse_args(argv)
    if args.command in ("demo", "serve", "record"):
        if args.command == "demo":
            args.no_auth = True
        elif not args.token and not args.no_auth:
            print(
                "sensocto-lab: give devices a token with --token SECRET, or accept any device "
                "with --no-auth",
                file=sys.stderr,
            )
            return 2
        if args.command == "record" and args.duration is None:
            print("sensocto-lab record: --duration SECONDS is required", file=sys.stderr)
            return 2
        return asyncio.run(_serve(args))
    if args.command == "dashboard":
        return asyncio.run(_dashboard(args))
    if args.command == "rooms":
        return cli_rooms.run(args)
    if args.command == "replay":
        return asyncio.run(_replay(args))
    if args.command == "info":
        return _info(args)
    raise AssertionError(args.command)


async def _serve(args: argparse.Namespace) -> int:
    from sensocto_lab.app import LabApp, LabOptions

    options = LabOptions(
        data_dir=args.data,
        host=args.host,
        port=args.port,
        dashboard_port=None if args.no_dashboard else args.dashboard_port,
        tokens=frozenset(args.token),
        auth=not args.no_auth,
        simulate=args.simulate,
        room=args.room,
        coupling=args.coupling,
        basic_auth=args.basic_auth,
    )
    async with await LabApp.start(options) as app:
        await _run_until_stopped(app.describe(), args.duration)
        print("stopping: flushing storage ...", flush=True)
    print(f"data kept in {args.data}", flush=True)
    return 0


async def _dashboard(args: argparse.Namespace) -> int:
    from sensocto_lab.net.viewer_client import socket_url
    from sensocto_lab.ui.dashboard.server import login_options, serve_remote_dashboards

    server = await serve_remote_dashboards(
        args.connect,
        token=args.token,
        port=args.port,
        address=args.host,
        **login_options(args.basic_auth),
    )
    try:
        await _run_until_stopped(
            [
                f"engine           {socket_url(args.connect)}",
                f"dashboard        {server.url}  (enter a room's join code)",
                f"room page        {server.url}room?room=ROOM&code=CODE",
            ],
            args.duration,
        )
    finally:
        await server.stop()
    return 0


async def _run_until_stopped(lines: Sequence[str], duration: float | None) -> None:
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


async def _replay(args: argparse.Namespace) -> int:
    from sensocto_lab.sources.replay import replay_session

    sent = await replay_session(
        args.data, url=args.url, token=args.token, speed=args.speed, sensors=args.sensor
    )
    print(f"replayed {sent} samples to {args.url}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from sensocto_lab.storage.summary import summarize

    if not args.data.exists():
        print(f"sensocto-lab info: no data directory at {args.data}", file=sys.stderr)
        return 2
    summary: dict[str, Any] = summarize(args.data)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"data directory {args.data}: {summary['samples']} samples, {summary['bytes']} bytes")
    for row in summary["series"]:
        print(
            f"  room={row['room']} sensor={row['sensor']} attribute={row['attribute']} "
            f"samples={row['samples']} from {row['start']} to {row['end']}"
        )
    return 0
