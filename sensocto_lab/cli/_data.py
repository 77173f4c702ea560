"""Data directories as the command line sees them: sessions, and what they hold.

``record`` and ``demo`` without ``--data`` make a new dated session directory under
``./sensocto-data/`` (:func:`new_session`), so one run's recordings never mix with
another's; writing into a directory that already holds recordings takes ``--append``
(:func:`check_append`). ``info`` and ``replay`` first ask :func:`require_recordings`,
which says where the sessions are when pointed at their parent. Everything here reads
the store read-only: it creates nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sensocto_lab.cli._fail import USAGE, CliError
from sensocto_lab.cli._text import natural_key, natural_list

__all__ = ["DEFAULT_DATA", "check_append", "new_session", "recorded_sensors", "require_recordings"]

#: Where data goes when no ``--data`` is given (sessions are made inside it).
DEFAULT_DATA = Path("sensocto-data")


def new_session(command: str, room: str, now: dt.datetime | None = None) -> Path:
    """A directory ``sensocto-data/2026-12-04T1530-demo`` not used yet (not created here)."""
    stamp = (now or dt.datetime.now()).strftime("%Y-%m-%dT%H%M")
    name = f"{stamp}-{command}" if room in ("demo", "lab") else f"{stamp}-{command}-{room}"
    path, n = DEFAULT_DATA / name, 1
    while path.exists():
        n += 1
        path = DEFAULT_DATA / f"{name}-{n}"
    return path


def _holds_store(path: Path) -> bool:
    return (path / "wal").is_dir() or (path / "cold").is_dir()


def recorded_sensors(data: Path) -> list[str] | None:
    """Sensors with recordings in ``data`` in natural order; ``None`` if it holds no store."""
    from sensocto_lab.storage.tiered import TieredStore

    if not _holds_store(data):
        return None
    store = TieredStore.open(data, read_only=True)
    try:
        return sorted({s.sensor_id for s in store.series()}, key=natural_key)
    finally:
        store.close()


def sessions_in(data: Path) -> list[str]:
    """Names of the session directories inside ``data``, newest last."""
    if not data.is_dir():
        return []
    names = (p.name for p in data.iterdir() if p.is_dir() and _holds_store(p))
    return sorted(names, key=natural_key)


def require_recordings(data: Path) -> list[str]:
    """The sensors recorded in ``data``; :class:`CliError` naming the fix if there are none."""
    if not data.exists():
        raise CliError(
            f"no data directory at {data}: pass --data with a session directory "
            f"({_where_sessions_are(data)})",
            USAGE,
        )
    sensors = recorded_sensors(data)
    if sensors:
        return sensors
    sessions = sessions_in(data)
    if sessions:
        raise CliError(
            f"{data} holds sessions, not recordings: pass --data {data / sessions[-1]} "
            f"(sessions there: {', '.join(sessions)})",
            USAGE,
        )
    raise CliError(
        f"{data} holds no recordings yet: record a session first "
        f"(`sensocto-lab record --no-auth --simulate 4 --duration 10 --data {data}`)",
        USAGE,
    )


def _where_sessions_are(data: Path) -> str:
    sessions = sessions_in(DEFAULT_DATA)
    if sessions and data != DEFAULT_DATA / sessions[-1]:
        return f"the latest is {DEFAULT_DATA / sessions[-1]}"
    return "record one with `sensocto-lab record`"


def check_append(data: Path, append: bool) -> None:
    """Refuse to record into ``data`` if it holds recordings, unless ``append``."""
    if append:
        return
    sensors = recorded_sensors(data)
    if sensors:
        raise CliError(
            f"{data} already holds the recordings of another session (sensors "
            f"{natural_list(sensors)}): pass --append to add to them, or leave out --data "
            "for a new session directory",
            USAGE,
        )
