"""``sensocto-lab import`` and ``sensocto-lab export``: lab files in and out of a data directory.

::

    sensocto-lab import session.xdf --data DIR --room lab      # XDF, EDF, BDF
    sensocto-lab export DIR --to edf  --out night.edf [--room lab]
    sensocto-lab export DIR --to bids --out bids/ --task rest [--room lab]
    sensocto-lab export DIR --to csv  --out csv/ [--room lab]

The parsers are added to the main command by :func:`add_parsers`; :func:`run_import`
and :func:`run_export` do the work (see :mod:`sensocto_lab.io` for what each format
keeps and what it does with irregular series).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sensocto_lab.cli import _args
from sensocto_lab.cli._data import DEFAULT_DATA

__all__ = ["add_parsers", "run_export", "run_import"]


def add_parsers(sub: Any) -> None:
    """Add ``import`` and ``export`` to the ``sensocto-lab`` subcommands ``sub``."""
    imp = _args.add_command(
        sub,
        "import",
        "store an XDF or EDF/BDF file in a data directory",
        "Store XDF (LabRecorder) and EDF/EDF+/BDF files in a data directory, as recorded "
        "data: the same Parquet layout, sensors and events, so history, synchrony and "
        "replay work on them. Importing the same file again stores nothing.",
    )
    imp.add_argument("files", nargs="+", type=Path, help="the .xdf / .edf / .bdf files")
    imp.add_argument(
        "--data", type=_args.data_dir, default=DEFAULT_DATA, metavar="DIR", help="data directory"
    )
    room = _args.identifier("room")
    imp.add_argument("--room", type=room, default="default", help="room to store under")
    imp.set_defaults(run=run_import)
    exp = _args.add_command(
        sub,
        "export",
        "write a data directory as EDF+, BIDS or CSV",
        "Write a data directory's recordings for the lab's other tools: EDF+ (one signal per "
        "sensor-attribute, events as annotations), BIDS physiological data (one file per "
        "participant and rate, events.tsv) or CSV. Irregular series (RR, HR notifications) "
        "are never resampled: EDF+ leaves them out and says so, BIDS writes them as events.",
    )
    exp.add_argument("data", type=_args.data_dir, help="data directory")
    exp.add_argument("--to", choices=("edf", "bids", "csv"), required=True, help="format")
    exp.add_argument("--out", type=Path, required=True, help="file (edf) or folder (bids, csv)")
    exp.add_argument("--room", type=room, default=None, help="only this room")
    exp.add_argument("--task", default="rest", help="BIDS task label (letters and digits)")
    exp.set_defaults(run=run_export)


def run_import(args: argparse.Namespace) -> int:
    """Import every file of ``args.files``; 0 when all were stored (or already were)."""
    from sensocto_lab.errors import SensoctoError
    from sensocto_lab.io import import_file

    status = 0
    for path in args.files:
        try:
            result = import_file(path, args.data, room=args.room)
        except SensoctoError as exc:
            print(f"sensocto-lab import: {path.name}: {exc.detail}", file=sys.stderr)
            status = 1
            continue
        print(result)
        for note in result.notes:
            print(f"    note: {note}")
    return status


def run_export(args: argparse.Namespace) -> int:
    """Export ``args.data`` to ``args.to`` at ``args.out``; print what was written."""
    from sensocto_lab.errors import SensoctoError
    from sensocto_lab.io import to_bids, to_csv, to_edf

    try:
        if args.to == "edf":
            edf = to_edf(args.data, args.out, room=args.room)
            print(f"{edf.path}: {len(edf.signals)} signals, {edf.annotations} annotations")
            for why in edf.skipped:
                print(f"    left out: {why}")
        elif args.to == "bids":
            bids = to_bids(args.data, args.out, room=args.room, task=args.task)
            print(f"{bids.root}: {len(bids.files)} files, participants {sorted(bids.participants)}")
        else:
            files = to_csv(args.data, args.out, room=args.room)
            print(f"{args.out}: {len(files)} files")
    except SensoctoError as exc:
        print(f"sensocto-lab export: {exc.detail}", file=sys.stderr)
        return 1
    return 0
