"""Run every benchmark and print one table: ``python -m bench [--quick] [area ...]``.

Each ``bench/bench_<area>.py`` measures ours next to the baseline its issue names, in
this same run, so the ratio column compares like with like on this machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import sys
import traceback
from pathlib import Path

from bench._table import Row, format_table

AREAS = (
    "engine",
    "storage",
    "ingest",
    "events",
    "sync",
    "physio",
    "ble",
    "dashboard",
    "lsl",
    "import",
    "study",
    "widgets",
)


def _machine() -> str:
    import psutil

    mem = psutil.virtual_memory().total / 2**30
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores {cpu}, {mem:.0f} GiB, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "areas", nargs="*", metavar="area", help=f"one of {', '.join(AREAS)}; default: all"
    )
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute each)")
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.areas) - set(AREAS))
    if unknown:
        parser.error(f"unknown area(s) {unknown}; choose from {', '.join(AREAS)}")

    rows: list[Row] = []
    failed: list[str] = []
    for area in args.areas or AREAS:
        name = f"bench.bench_{area}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        print(f"running {area} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(module.run(quick=args.quick))
        except Exception:
            traceback.print_exc()
            failed.append(area)

    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"Measured {when} on {_machine()}{' (quick)' if args.quick else ''}.\n\n"
    text += format_table(rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
