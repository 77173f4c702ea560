"""``sensocto-lab study summary|apply`` (the command on its own, as the main CLI wires it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import PARTICIPANTS, SESSIONS

from sensocto_lab.cli.study import main

ROOT = Path(__file__).resolve().parents[2]


def test_summary_prints_a_row_per_session(
    study_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = study_root.parent / "summary.csv"
    assert main(["summary", str(study_root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("session-0") >= SESSIONS
    table = pd.read_csv(out)
    assert (table["participants"] == PARTICIPANTS).all() and len(table) == SESSIONS


def test_apply_writes_the_tidy_table(study_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    assert main(["apply", str(study_root), "--measure", "kuramoto", "--by", "condition",
                 "--out", str(out)]) == 0  # fmt: skip
    table = pd.read_csv(out)
    assert list(table.columns) == ["session", "condition", "kuramoto"]
    assert len(table) == 2 * SESSIONS
    by = table.groupby("condition")["kuramoto"].mean()
    assert by["task"] > by["baseline"]


def test_apply_names_failed_sessions_and_exits_1(copy_study: Path, tmp_path: Path) -> None:
    part = sorted((copy_study / "session-001" / "cold").rglob("*.parquet"))[0]
    part.write_bytes(b"PAR1 torn")
    out, failed = tmp_path / "r.parquet", tmp_path / "failed.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "sensocto_lab.cli.study", "apply", str(copy_study), "--out",
         str(out), "--by", "session", "--failures", str(failed)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "session-001" in proc.stderr
    assert set(pd.read_parquet(out)["session"]) == {
        f"session-{k:03d}" for k in range(SESSIONS) if k != 1
    }
    assert pd.read_csv(failed)["session"].tolist() == ["session-001"]


def test_a_missing_root_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", str(tmp_path / "nowhere")]) == 2
    assert "no directory" in capsys.readouterr().err
