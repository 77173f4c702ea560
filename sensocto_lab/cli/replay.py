"""``sensocto-lab replay``: push a recorded session back through an ingest endpoint."""

from __future__ import annotations

import argparse
import time
from typing import Any

from sensocto_lab.cli import _args
from sensocto_lab.cli._data import DEFAULT_DATA, require_recordings
from sensocto_lab.cli._fail import USAGE, CliError
from sensocto_lab.cli._net import endpoint, reachable
from sensocto_lab.cli._text import natural_list

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``replay`` to the CLI's subparsers ``sub``."""
    p = _args.add_command(
        sub,
        "replay",
        "push a recorded session back through an engine's ingest endpoint",
        "Push every sample of a recorded session to an engine's ingest endpoint (e.g. "
        "`sensocto-lab serve` on another data directory) with its original timestamps, "
        "paced by --speed; each recorded sensor joins as a device of its recorded room.",
    )
    p.add_argument(
        "--data", type=_args.data_dir, default=DEFAULT_DATA, metavar="DIR", help="session to read"
    )
    p.add_argument(
        "--url",
        type=endpoint,
        default=endpoint("ws://127.0.0.1:4000"),
        help="the engine's endpoint: ws://HOST:PORT or its full socket URL "
        "(default: ws://127.0.0.1:4000)",
    )
    p.add_argument(
        "--token", default=None, metavar="SECRET", help="ingest token, if the endpoint wants one"
    )
    p.add_argument(
        "--speed",
        type=_args.speed,
        default=1.0,
        metavar="FACTOR",
        help="device time per wall time: 1 = real time, 10 = ten times faster, inf = at once",
    )
    p.add_argument(
        "--sensor",
        action="append",
        type=_args.identifier("sensor"),
        default=None,
        metavar="ID",
        help="replay only this sensor (repeatable; default: every recorded one)",
    )
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Replay ``args.data`` to ``args.url``; print what was sent."""
    from sensocto_lab.errors import AuthError, UnknownSensorError
    from sensocto_lab.sources.replay import replay_session

    recorded = require_recordings(args.data)
    unknown = set(args.sensor or ()) - set(recorded)
    if unknown:
        raise CliError(
            f"no sensor {natural_list(unknown)} in {args.data}: it holds "
            f"{natural_list(recorded)} (pass --sensor with one of them)",
            USAGE,
        )
    await reachable(args.url, "--url")
    started = time.monotonic()
    try:
        sent = await replay_session(
            args.data,
            url=args.url.url,
            token=args.token,
            speed=args.speed,
            sensors=args.sensor,
            progress=True,
        )
    except UnknownSensorError as exc:  # recorded meanwhile? say what is there now
        raise CliError(
            f"{exc.detail} (pass --sensor with one of {natural_list(recorded)})"
        ) from None
    except AuthError as exc:
        if exc.reason != "unauthorized":
            raise
        fix = "check --token" if args.token else "pass --token SECRET (as given to serve)"
        at = f"{args.url.host}:{args.url.port}"
        raise CliError(f"the endpoint at {at} wants an ingest token: {fix}") from None
    except TimeoutError:
        raise CliError(
            f"{args.url.host}:{args.url.port} accepts connections but no engine answered: "
            "is --url the ingest endpoint (serve's --port, default 4000), not a dashboard?"
        ) from None
    shown = args.sensor or recorded
    print(
        f"replayed {sent} samples of {len(set(shown))} sensors ({natural_list(shown)}) "
        f"to {args.url.url} in {time.monotonic() - started:.1f} s"
    )
    return 0
