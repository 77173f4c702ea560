"""``sensocto-lab info``: what a data directory holds, series by series."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sensocto_lab.cli import _args
from sensocto_lab.cli._data import DEFAULT_DATA, require_recordings
from sensocto_lab.cli._text import natural_key

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``info`` to the CLI's subparsers ``sub``."""
    p = _args.add_command(
        sub,
        "info",
        "summarise a data directory: its series, samples and time spans",
        "Summarise a data directory: every recorded series (room, sensor, attribute) with "
        "its samples and first and last timestamps. Reads only; works while an engine "
        "records into it.",
    )
    p.add_argument(
        "--data", type=_args.data_dir, default=DEFAULT_DATA, metavar="DIR", help="data directory"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary of ``args.data``."""
    from sensocto_lab.storage.summary import summarize

    require_recordings(args.data)
    summary: dict[str, Any] = summarize(args.data)
    summary["series"].sort(
        key=lambda r: (natural_key(r["room"]), natural_key(r["sensor"]), r["attribute"])
    )
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
