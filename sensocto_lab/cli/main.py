"""The ``sensocto-lab`` command: demo, serve, record, dashboard, rooms, replay, info, import,
export, study.

One module per subcommand group (:mod:`.serve` for demo/serve/record,
:mod:`.dashboard`, :mod:`.rooms`, :mod:`.replay`, :mod:`.info`, :mod:`.interop`,
:mod:`.study`); each adds
its parser and sets ``run``, which this module calls. Whatever a user can get wrong ends in one
line saying what happened and what to do (:mod:`._fail`), exit status 2 for a mistake
in the arguments and 1 for a failure while running; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections.abc import Sequence

from sensocto_lab.cli import _args, dashboard, info, interop, replay, rooms, serve, study
from sensocto_lab.cli._fail import explain

__all__ = ["main"]

PROG = "sensocto-lab"


def build_parser() -> _args.Parser:
    """The whole command line, subcommands and all."""
    from sensocto_lab import __version__

    parser = _args.Parser(
        prog=PROG,
        description="Record and study the live physiology of groups.",
        epilog=f"`{PROG} COMMAND --help` tells what a command does and its options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show the Python traceback too"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parsers(sub)
    dashboard.add_parser(sub)
    rooms.add_parser(sub)
    replay.add_parser(sub)
    info.add_parser(sub)
    interop.add_parsers(sub)
    study.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sensocto-lab`` command; returns the exit status."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:  # with the usage of the subcommand they were given to, not the top's
            args._parser.unrecognized(extras)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    prog = args._parser.prog
    try:
        result = args.run(args)
        status = asyncio.run(result) if inspect.iscoroutine(result) else result
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return int(status)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `sensocto-lab info | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SystemExit as exc:  # a usage error found after parsing, already printed
        return exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:
        if args.debug:
            raise
        message, status = explain(exc)
        print(f"{prog}: {message}", file=sys.stderr)
        return status
