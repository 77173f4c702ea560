"""What the command line says for each kind of failure (``sensocto_lab.cli._fail``)."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from sensocto_lab.cli._fail import RUNTIME, USAGE, CliError, explain
from sensocto_lab.errors import AuthError, ConfigError, StorageError


def _storage_error_from(cause: OSError) -> StorageError:
    try:
        raise StorageError(f"cannot open the store in lab-data: {cause}") from cause
    except StorageError as exc:
        return exc


CASES = [
    (CliError("port 4000 is in use: pass --port 0", USAGE), USAGE, "pass --port 0"),
    (ConfigError("speed must be > 0"), USAGE, "speed must be > 0"),
    (AuthError("a valid ingest token is needed"), RUNTIME, "a valid ingest token is needed"),
    (OSError(errno.EADDRINUSE, "address already in use"), RUNTIME, "pass --port 0"),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/x"), RUNTIME,
     "Permission denied: /srv/x: pass --data with a directory you may write to"),
    (OSError(errno.ENOSPC, "No space left on device", "wal/seg-1"), RUNTIME,
     "No space left on device: wal/seg-1: free some space"),
    (_storage_error_from(OSError(errno.ENOSPC, "No space left on device")), RUNTIME,
     "free some space, or pass --data"),
    (_storage_error_from(OSError(errno.EROFS, "Read-only file system")), RUNTIME,
     "writable disk"),
    (StorageError("the WAL could not be written", reason="disk_full"), RUNTIME,
     "free some space, or pass --data"),
    (StorageError("no store in x", reason="no_store"), RUNTIME, "pass --data with a directory"),
    (StorageError("the data directory d is in use by another store (pid 7); close that engine "
                  "or store first, or read it without writing: TieredStore.open(...)",
                  reason="data_dir_locked"), RUNTIME, "(pid 7): stop it, or pass --data"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), RUNTIME,
     "sensocto-lab serve"),
    (TimeoutError("not joined within 10 s"), RUNTIME, "timed out: not joined within 10 s"),
    (sqlite3.OperationalError("database or disk is full"), RUNTIME, "its disk has space"),
    (ExceptionGroup("unhandled", [OSError(errno.ENOSPC, "No space left on device")]), RUNTIME,
     "free some space"),
    (RuntimeError("oops"), RUNTIME, "internal error: RuntimeError: oops (a bug: run again with "
                                    "--debug"),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "status", "says"), CASES, ids=[repr(c[0])[:40] for c in CASES])
def test_each_failure_is_one_line_with_what_to_do(
    exc: BaseException, status: int, says: str
) -> None:
    message, got = explain(exc)
    assert got == status
    assert says in message
    assert "\n" not in message
