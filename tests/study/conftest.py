"""A small simulated study on disk, shared by the study tests (written once per module)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sensocto_lab.study import write_study

#: 30 s of uncoupled then 30 s of strongly coupled breathing, 3 people, 10 Hz.
PROTOCOL = (("baseline", 30.0, 0.0), ("task", 30.0, 4.0))
SESSIONS = 5
PARTICIPANTS = 3
FS = 10.0


@pytest.fixture(scope="module")
def study_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine study root (do not change it: copy it with :func:`copy_study`)."""
    root = tmp_path_factory.mktemp("study")
    write_study(root, SESSIONS, participants=PARTICIPANTS, protocol=PROTOCOL, fs=FS, seed=7)
    return root


@pytest.fixture
def copy_study(study_root: Path, tmp_path: Path) -> Path:
    """A copy of the study root that a test may damage."""
    dest = tmp_path / "copy"
    shutil.copytree(study_root, dest)
    return dest
