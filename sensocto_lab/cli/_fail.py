"""What the command line says when something goes wrong: one line, and what to do.

:func:`explain` maps an exception a user can cause (a mistake in the arguments, a
port in use, a full disk, nothing listening at a URL, our own
:class:`~sensocto_lab.errors.SensoctoError`) to one sentence and an exit status:
:data:`USAGE` (2) for a mistake in how the command was called, :data:`RUNTIME` (1)
for what went wrong while it ran. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import errno
import sqlite3

__all__ = ["RUNTIME", "USAGE", "CliError", "explain"]

#: Exit status of a mistake in the arguments (as argparse's own).
USAGE = 2
#: Exit status of a failure while running.
RUNTIME = 1


class CliError(Exception):
    """A failure the command line has already put into words (``message``, ``status``)."""

    def __init__(self, message: str, status: int = RUNTIME) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def explain(exc: BaseException) -> tuple[str, int]:
    """One line saying what happened and what to do, and the exit status."""
    from sensocto_lab.errors import ConfigError, SensoctoError

    exc = _leaf(exc)
    if isinstance(exc, CliError):
        return exc.message, exc.status
    cause = exc.__cause__
    if isinstance(exc, SensoctoError):
        if isinstance(cause, OSError) and _os_hint(cause):
            return _os_message(cause), RUNTIME
        if exc.reason == "data_dir_locked":
            held = exc.detail.split(";")[0]  # "the data directory X is in use by ... (pid N)"
            return (
                f"{held}: stop it, or pass --data with another directory (info and rooms "
                "read a directory while it records)",
                RUNTIME,
            )
        if exc.reason == "disk_full":  # the storage on main names it so, cause or not
            return f"{exc.detail}: {_HINTS[errno.ENOSPC]}", RUNTIME
        if exc.reason == "no_store":
            return f"{exc.detail}: pass --data with a directory that holds recordings", RUNTIME
        return exc.detail, USAGE if isinstance(exc, ConfigError) else RUNTIME
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return (
            f"the Python package {exc.name} is not installed: pip install 'sensocto-lab[ui]' "
            "for the dashboards (or pass --no-dashboard), 'sensocto-lab[ble]' for BLE straps",
            RUNTIME,
        )
    if isinstance(exc, TimeoutError):
        return f"timed out: {exc}" if str(exc) else "timed out", RUNTIME
    if isinstance(exc, OSError):
        return _os_message(exc), RUNTIME
    if isinstance(exc, sqlite3.Error):  # the room store: unwritable, full, or damaged
        return (
            f"the room store (rooms.sqlite3) failed: {exc}: check that --data is writable "
            "and its disk has space",
            RUNTIME,
        )
    return (
        f"internal error: {type(exc).__name__}: {exc} (a bug: run again with --debug and "
        "report the traceback)",
        RUNTIME,
    )


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


_HINTS = {
    errno.EADDRINUSE: "pass --port 0 (any free port) or stop the other server",
    errno.EADDRNOTAVAIL: "pass --host with an address of this machine (e.g. 127.0.0.1)",
    errno.EACCES: "pass --data with a directory you may write to (or a port above 1023)",
    errno.EPERM: "pass --data with a directory you may write to",
    errno.ENOSPC: "free some space, or pass --data with a directory on another disk",
    errno.EDQUOT: "free some space, or pass --data with a directory on another disk",
    errno.EROFS: "pass --data with a directory on a writable disk",
    errno.ECONNREFUSED: "is the engine running there? start it with `sensocto-lab serve`",
    errno.EMFILE: "too many open files: raise the limit with `ulimit -n 4096`",
}


def _os_hint(exc: OSError) -> str | None:
    return _HINTS.get(exc.errno or -1)


def _os_message(exc: OSError) -> str:
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        what = f"{what}: {exc.filename}"
    hint = _os_hint(exc)
    return f"{what}: {hint}" if hint else what
