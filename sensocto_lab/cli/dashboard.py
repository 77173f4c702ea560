"""``sensocto-lab dashboard``: the room dashboards of an engine running in another process."""

from __future__ import annotations

import argparse
from typing import Any

from sensocto_lab.cli import _args
from sensocto_lab.cli._net import check_free, endpoint, reachable
from sensocto_lab.cli.serve import run_until_stopped

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``dashboard`` to the CLI's subparsers ``sub``."""
    p = _args.add_command(
        sub,
        "dashboard",
        "serve the room dashboards of an engine running elsewhere (over its endpoint)",
        "Serve the lobby and room dashboards of an engine that runs in another process "
        "(`sensocto-lab serve`), reached over its ingest endpoint. Rooms open with their "
        "join code; with --token and --basic-auth, members open theirs after logging in.",
    )
    p.add_argument(
        "--connect",
        type=endpoint,
        default=endpoint("ws://127.0.0.1:4000"),
        metavar="URL",
        help="the engine's endpoint: ws://HOST:PORT or its full socket URL "
        "(default: ws://127.0.0.1:4000)",
    )
    p.add_argument(
        "--token", default=None, help="a viewer token of the engine (optional: rooms take codes)"
    )
    p.add_argument(
        "--basic-auth",
        type=_args.basic_auth,
        default=None,
        metavar="PASSWORD|FILE",
        help="dashboards ask who is watching: one shared password, or a JSON file of user → "
        "password (Panel's basic auth); with --token, members of a room open it without its "
        "code",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=_args.port, default=5006, help="dashboard port, 0 = any free")
    p.add_argument(
        "--duration",
        type=_args.positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Serve the dashboards until stopped."""
    from sensocto_lab.ui.dashboard.server import login_options, serve_remote_dashboards

    check_free(args.host, args.port, "--port")
    await reachable(args.connect, "--connect")
    server = await serve_remote_dashboards(
        args.connect.url,
        token=args.token,
        port=args.port,
        address=args.host,
        **login_options(args.basic_auth),
    )
    try:
        await run_until_stopped(
            [
                f"engine           {args.connect.url}",
                f"dashboard        {server.url}  (enter a room's join code)",
                f"room page        {server.url}room?room=ROOM&code=CODE",
            ],
            args.duration,
        )
    finally:
        await server.stop()
    return 0
