"""``sensocto-lab study``: summarise a study and run a measure over it (``docs/study.md``).

::

    sensocto-lab study summary ROOT [--out summary.csv]
    sensocto-lab study apply ROOT --measure kuramoto --by condition --out results.csv
                                  [--scheduler tcp://HOST:8786]

``ROOT`` is a directory of sessions or an fsspec URL (``s3://bucket/study``). ``apply``
writes one tidy table (CSV, or Parquet when ``--out`` ends in ``.parquet``); with
``--scheduler`` the sessions are read and measured on that Dask cluster's workers.
Sessions that fail are listed on stderr (and in ``--failures FILE`` if given); the exit
status is then 1, with the rest of the table written. Problems found cataloguing the
study (a directory without ``session.json``, duplicate names) are warnings on stderr.

``python -m sensocto_lab.cli.study`` runs the same commands on their own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sensocto_lab.cli import _args

__all__ = ["add_parser", "main", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``study`` command and its actions to the CLI's subparsers ``sub``."""
    from sensocto_lab.study.measures import MEASURES

    study = _args.add_command(
        sub,
        "study",
        "summarise a study of many sessions, run measures on it",
        "A study is many sessions (data directories with a session.json) under one root, "
        "a directory or an fsspec URL. `summary` lists them; `apply` runs a measure over "
        "every session and condition, here or on a Dask scheduler, into one table.",
    )
    study.set_defaults(run=run)
    acts = study.add_subparsers(dest="action", metavar="ACTION", required=True)
    summary = acts.add_parser("summary", help="per session: people, sensors, samples, conditions")
    summary.add_argument("root", help="directory (or fsspec URL) holding the sessions")
    summary.add_argument("--out", type=Path, default=None, help="also write the table (CSV)")
    apply = acts.add_parser("apply", help="run a measure over every session (or condition)")
    apply.add_argument("root", help="directory (or fsspec URL) holding the sessions")
    apply.add_argument("--measure", choices=sorted(MEASURES), default="kuramoto")
    apply.add_argument(
        "--by",
        choices=("condition", "session"),
        default="condition",
        help="a row per session and condition (default), or per whole session",
    )
    apply.add_argument("--out", type=Path, required=True, help="results (.csv or .parquet)")
    apply.add_argument("--failures", type=Path, default=None, help="write failures here (CSV)")
    apply.add_argument(
        "--scheduler", default=None, metavar="ADDR", help="a Dask scheduler, tcp://HOST:PORT"
    )
    return study


def _warn_problems(study: Any) -> None:
    for p in study.problems.itertuples():
        print(f"sensocto-lab study: {p.session}: {p.reason}: {p.message}", file=sys.stderr)


def _write(frame: Any, out: Path) -> None:
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)


def run(args: argparse.Namespace) -> int:
    """Do the ``study`` action of ``args``; return the exit status."""
    import pandas as pd

    from sensocto_lab.study import Study
    from sensocto_lab.study.measures import MEASURES

    root = str(args.root)
    if "://" not in root and not Path(root).is_dir():
        print(f"sensocto-lab study: no directory {root}", file=sys.stderr)
        return 2
    study = Study.open(root)
    if args.action == "summary":
        table = study.summary()
        _warn_problems(study)
        with pd.option_context("display.width", 160, "display.max_rows", 200):
            print(table.to_string(index=False))
        if args.out is not None:
            _write(table, args.out)
        return 0
    measure, attributes = MEASURES[args.measure]
    by = ("session", "condition") if args.by == "condition" else ("session",)
    _warn_problems(study)
    if args.scheduler:
        from distributed import Client

        with Client(args.scheduler) as client:
            table = study.apply(measure, by=by, attributes=attributes, client=client)
    else:
        table = study.apply(measure, by=by, attributes=attributes, progress=sys.stderr.isatty())
    _write(table, args.out)
    failures = study.failures
    if args.failures is not None:
        failures.to_csv(args.failures, index=False)
    for f in failures.itertuples():
        where = f.session if f.condition is None else f"{f.session} / {f.condition}"
        print(f"sensocto-lab study: {where}: {f.reason}: {f.message}", file=sys.stderr)
    print(
        f"{len(table)} rows from {len(study)} sessions to {args.out}"
        + (f"; {len(failures)} failed" if len(failures) else "")
    )
    return 1 if len(failures) else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m sensocto_lab.cli.study ACTION ...``: the ``study`` command on its own."""
    parser = _args.Parser(prog="sensocto-lab")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["study", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    raise SystemExit(main())
