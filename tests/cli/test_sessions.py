"""Sessions don't mix: ``record`` and ``demo`` without ``--data`` make a new dated directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
RECORD = ["record", "--no-auth", "--no-dashboard", "--port", "0", "--simulate", "1"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sensocto_lab.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=120,
    )


def test_each_record_gets_its_own_session_and_adding_to_one_takes_append(tmp_path: Path) -> None:
    first = cli(*RECORD, "--duration", "0.5", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = cli(*RECORD, "--duration", "0.5", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    sessions = sorted((tmp_path / "sensocto-data").iterdir())
    assert len(sessions) == 2
    for session, run in zip(sessions, (first, second), strict=True):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d{4}-record(-\d+)?", session.name)
        assert f"data directory   {session.resolve()}" in run.stdout  # where it went

    refused = cli(*RECORD, "--duration", "0.5", "--data", str(sessions[0]), cwd=tmp_path)
    assert refused.returncode == 2 and "pass --append" in refused.stderr
    added = cli(*RECORD, "--duration", "0.5", "--data", str(sessions[0]), "--append", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    # a lab's server carries its directory over from run to run
    again = cli("serve", *RECORD[1:], "--duration", "0.5", "--data", str(sessions[0]), cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_demo_without_data_makes_a_demo_session(tmp_path: Path) -> None:
    run = cli("demo", "--no-dashboard", "--port", "0", "--simulate", "1", "--duration", "0.5",
              cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (session,) = (tmp_path / "sensocto-data").iterdir()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d{4}-demo", session.name)
    assert f"data kept in {session.relative_to(tmp_path)}" in run.stdout


def test_record_with_failed_writes_exits_1_and_says_the_recording_has_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno
    import itertools

    from sensocto_lab.cli.main import main
    from sensocto_lab.storage import wal

    real = wal.os.pwritev
    calls = itertools.count()

    def full_after_a_while(fd: int, buffers: Any, offset: int) -> int:
        if next(calls) >= 20:  # the disk fills up mid-recording
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, buffers, offset)

    monkeypatch.setattr(wal.os, "pwritev", full_after_a_while)
    argv = ["record", "--no-auth", "--no-dashboard", "--port", "0", "--simulate", "2"]
    status = main([*argv, "--duration", "2", "--data", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "writes failed while recording" in err and "Traceback" not in err
