"""The data-directory lock: one writing store per data directory, across processes.

Two stores writing one directory would interleave WAL generations, compact each
other's segments and delete files the other still writes. A writable
:class:`~sensocto_lab.storage.tiered.TieredStore` therefore holds an exclusive advisory
lock (``flock``) on ``{data_dir}/LOCK`` from open to close. The kernel drops the lock
when its holder exits, however it exits (``kill -9`` included), so a crash never leaves
a stale lock behind. The file holds the holder's pid, for the error a second opener
gets. Read-only stores take no lock: reading while another process records is safe.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sensocto_lab.errors import StorageError

__all__ = ["LOCK_FILE", "DirLock"]

LOCK_FILE = "LOCK"


class DirLock:
    """An exclusive ``flock`` on ``{data_dir}/LOCK``, held until :meth:`release`.

    Use :meth:`acquire`. Locks of one file conflict across processes and across
    separate acquisitions in one process alike.
    """

    __slots__ = ("_fd", "path")

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> DirLock:
        """Lock ``data_dir`` (which must exist) for this process, without waiting.

        Raises
        ------
        StorageError
            Another store holds the lock (``reason="data_dir_locked"``; the message
            names the holder's pid), or the lock file cannot be opened.
        """
        path = data_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open the lock file {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StorageError(
                f"the data directory {data_dir} is in use by another store (pid {holder}); "
                "close that engine or store first, or read it without writing: "
                "TieredStore.open(data_dir, read_only=True)",
                reason="data_dir_locked",
            ) from exc
        try:
            # Who holds it, for the message above; the lock itself is the flock.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # a full disk must not stop the lock from working
        return cls(path, fd)

    def release(self) -> None:
        """Unlock (idempotent). The file stays: removing it could race a new opener."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
