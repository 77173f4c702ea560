"""The import and export subcommands, through the real ``sensocto-lab`` parser."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyedflib
import pytest

from sensocto_lab.cli.interop import run_export, run_import
from sensocto_lab.cli.main import build_parser


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _edf(path: Path) -> None:
    header = {
        "label": "Resp",
        "dimension": "a.u.",
        "sample_frequency": 10,
        "physical_min": -2.0,
        "physical_max": 2.0,
        "digital_min": -32768,
        "digital_max": 32767,
        "transducer": "",
        "prefilter": "",
    }
    pyedflib.highlevel.write_edf(str(path), [np.sin(np.arange(100) / 5)], [header])


def test_import_then_export_each_format(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _edf(tmp_path / "belt.edf")
    data = tmp_path / "data"
    args = _parse(["import", str(tmp_path / "belt.edf"), "--data", str(data), "--room", "lab"])
    assert args.command == "import"
    assert run_import(args) == 0
    assert "1 series, 100 samples" in capsys.readouterr().out
    assert run_import(args) == 0
    assert "already imported" in capsys.readouterr().out

    assert (
        run_export(_parse(["export", str(data), "--to", "edf", "--out", str(tmp_path / "o.edf")]))
        == 0
    )
    assert pyedflib.EdfReader(str(tmp_path / "o.edf")).getNSamples()[0] == 100
    out = tmp_path / "bids"
    assert (
        run_export(_parse(["export", str(data), "--to", "bids", "--out", str(out), "--task", "t1"]))
        == 0
    )
    assert (out / "sub-belt/beh/sub-belt_task-t1_recording-Resp_physio.tsv.gz").is_file()
    assert (
        run_export(_parse(["export", str(data), "--to", "csv", "--out", str(tmp_path / "c")])) == 0
    )
    assert (tmp_path / "c/lab/belt/Resp.csv").is_file()


def test_errors_are_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad.edf").write_bytes(b"junk" * 100)
    assert (
        run_import(_parse(["import", str(tmp_path / "bad.edf"), "--data", str(tmp_path / "d")]))
        == 1
    )
    assert "bad.edf" in capsys.readouterr().err
    args = _parse(["export", str(tmp_path / "none"), "--to", "csv", "--out", str(tmp_path / "c")])
    assert run_export(args) == 1
