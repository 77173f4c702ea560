"""Storage health: failing while a part fails, ok once each has succeeded, no paths."""

from __future__ import annotations

import errno

from sensocto_lab.clock import FakeClock
from sensocto_lab.errors import StorageError
from sensocto_lab.storage.health import Health, scrub_paths, storage_error


def test_os_errors_become_storage_errors_with_a_reason_and_no_path() -> None:
    full = storage_error("cannot write", OSError(errno.ENOSPC, "No space left", "/srv/x/wal/a"))
    assert isinstance(full, StorageError) and full.reason == "disk_full"
    assert full.detail == "cannot write: No space left"
    quota = storage_error("cannot write", OSError(errno.EDQUOT, "Quota exceeded"))
    assert quota.reason == "disk_full"
    denied = storage_error("cannot write", PermissionError(errno.EACCES, "Permission denied"))
    assert denied.reason == "storage_error"
    assert scrub_paths("cannot open '/home/ann/data/wal/seg-1.arrows': gone") == (
        "cannot open 'seg-1.arrows': gone"
    )
    assert scrub_paths("ECG in mV/s at 1/2 rate") == "ECG in mV/s at 1/2 rate"


def test_failing_until_every_failed_part_succeeds_and_the_last_error_stays() -> None:
    clock = FakeClock(start_ns=1_767_225_600 * 10**9)
    health = Health(clock)
    assert health.snapshot()["state"] == "ok" and health.last_error is None
    health.failed("wal", StorageError("cannot write /srv/data/wal/x", reason="disk_full"))
    clock.advance(5)
    health.failed("compaction", StorageError("part failed"))
    snap = health.snapshot()
    assert snap["state"] == "failing" and snap["reason"] == "disk_full"
    assert snap["since"] == "2026-01-01T00:00:00.000Z"
    assert snap["message"] == "cannot write x"
    assert [f["component"] for f in snap["failing"]] == ["wal", "compaction"]
    health.succeeded("wal")
    assert health.snapshot()["reason"] == "storage_error"  # compaction still failing
    health.succeeded("compaction")
    assert health.snapshot()["state"] == "ok"
    assert health.last_error is not None and health.last_error.component == "compaction"
