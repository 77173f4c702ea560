"""How every ``sensocto-lab`` parser is made, and the checked types of its options.

Every value a user types is checked here, while the arguments are parsed, so a
mistake is a usage error (exit status 2, the subcommand's usage and one line naming
the fix) before anything is created on disk or started.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "HelpFormatter",
    "Parser",
    "add_command",
    "basic_auth",
    "count",
    "data_dir",
    "finite",
    "identifier",
    "port",
    "positive_seconds",
    "speed",
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show.

    ``None``, ``False`` and ``[]`` mean "not given" (a flag off, a repeatable option
    unused): ``(default: None)`` would tell a newcomer nothing, so options whose
    default needs words say it in their help instead. Required options say so.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.required and action.option_strings:
            return f"{text} (required)"
        default = action.default
        if (
            "%(default)" in text
            or "(default:" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == []
            or default == argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser that names the nearest known option for a mistyped one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(_parser=self)
        self._given: list[str] = []

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        """Say a mistyped option first: it is why a required one seems missing.

        Only a parser without subcommands sees just its own arguments; the others'
        include their subcommand's, which are not strays.
        """
        if self._subparsers is None and "unrecognized" not in message:
            known = self._known()
            strays = [a for a in self._given if a.startswith("--") and a.split("=")[0] not in known]
            if strays:
                self.unrecognized(strays)
        wrong = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if wrong:  # a mistyped command or action: name the nearest
            choices = re.findall(r"'([^']*)'", wrong.group(2))
            close = difflib.get_close_matches(wrong.group(1), choices, n=1)
            if close:
                message = f"{message}: did you mean {close[0]}?"
        super().error(message)

    def _known(self) -> set[str]:
        return {s for a in self._actions for s in a.option_strings}

    def unrecognized(self, extras: Sequence[str]) -> NoReturn:
        """Refuse ``extras`` with this parser's usage, suggesting a close option."""
        hints = []
        for arg in extras:
            if arg.startswith("-"):
                name = arg.split("=", 1)[0]
                close = difflib.get_close_matches(name, sorted(self._known()), n=1)
                if close:
                    hints.append(close[0])
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        super().error(f"unrecognized arguments: {' '.join(extras)}{hint}; see {self.prog} --help")


def add_command(sub: Any, name: str, summary: str, description: str) -> Parser:
    """A subcommand ``name``: ``summary`` in the command list, ``description`` in its help."""
    parser: Parser = sub.add_parser(name, help=summary, description=description)
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on an error, show the Python traceback too",
    )
    return parser


def _typed(name: str, check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: ``check`` raises ValueError with a sentence saying what is wrong."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def _number(text: str, kind: type = float) -> Any:
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{text!r} is not {what}") from None


def _count(text: str) -> int:
    n = _number(text, int)
    if n < 0:
        raise ValueError(f"{n} is negative: give 0 (none) or more")
    return int(n)


def _port(text: str) -> int:
    n = _number(text, int)
    if not 0 <= n <= 65535:
        raise ValueError(f"{n} is not a port: give 1-65535, or 0 for any free port")
    return int(n)


def _positive_seconds(text: str) -> float:
    s = _number(text)
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"{text} is not a duration: give a number of seconds > 0")
    return float(s)


def _speed(text: str) -> float:
    s = _number(text)
    if not s > 0:  # also refuses nan; inf is "as fast as the endpoint takes"
        raise ValueError(f"{text} is not a speed: give a factor > 0 (1 = real time, inf = at once)")
    return float(s)


def _finite(text: str) -> float:
    s = _number(text)
    if not math.isfinite(s):
        raise ValueError(f"{text} is not a finite number")
    return float(s)


count = _typed("count", _count)
port = _typed("port", _port)
positive_seconds = _typed("seconds", _positive_seconds)
speed = _typed("speed", _speed)
finite = _typed("number", _finite)


def identifier(what: str) -> Callable[[str], str]:
    """An argparse type for a room, sensor or user id (the model's rule, ``check_id``)."""
    from sensocto_lab.errors import ValidationError
    from sensocto_lab.model import check_id

    def check(text: str) -> str:
        try:
            return check_id(text, what)
        except ValidationError as exc:
            raise ValueError(exc.detail) from None

    return _typed(what, check)


def data_dir(text: str) -> Path:
    """``--data``: a directory path (it need not exist yet); refuses a plain file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a data directory")
    return path


data_dir.__name__ = "directory"


def basic_auth(text: str) -> str:
    """``--basic-auth``: a password, or a JSON file of user → password that must exist."""
    if text.endswith(".json") and not Path(text).is_file():
        raise argparse.ArgumentTypeError(
            f"no file {text}: give a JSON file of user → password, or one shared password"
        )
    return text


basic_auth.__name__ = "password or file"
