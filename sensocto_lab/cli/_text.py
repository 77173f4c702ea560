"""Text the command line prints: lists of ids in natural order."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["natural_key", "natural_list"]

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``sim-2`` before ``sim-10``: runs of digits compare as numbers."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(text) if part
    )


def natural_list(ids: Iterable[str]) -> str:
    """``ids`` once each, in natural order, comma-separated (``none`` if there are none)."""
    return ", ".join(sorted(set(ids), key=natural_key)) or "none"
