"""The study on a real Dask cluster: two worker processes, the same tables as serially.

Workers are separate processes: they import this worktree's code through PYTHONPATH,
and each reads its own session's Parquet from the location it is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dask
import pandas as pd
import pytest
import xarray as xr
from conftest import SESSIONS

from sensocto_lab import sync
from sensocto_lab.study import Study, kuramoto, plv

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # A worker that dies twice on one task fails it (KilledWorker) instead of looping.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            env=env,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_serial_and_distributed_apply_give_the_same_table(
    study_root: Path, client: distributed.Client
) -> None:
    study = Study.open(study_root)
    serial = study.apply(sync.synchrony, attributes=["respiration"], progress=False)
    spread = study.apply(sync.synchrony, attributes=["respiration"], client=client)
    assert study.failures.empty
    assert len(serial) == 2 * SESSIONS
    pd.testing.assert_frame_equal(serial, spread)
    pairs_serial = study.apply(plv, by="session")
    pairs_spread = study.apply(plv, by="session", client=client)
    pd.testing.assert_frame_equal(pairs_serial, pairs_spread)


def test_the_tasks_ran_in_the_worker_processes(
    study_root: Path, client: distributed.Client
) -> None:
    result = Study.open(study_root).apply(lambda ds: os.getpid(), by="session", client=client)
    pids = set(result["value"])
    assert os.getpid() not in pids
    workers = client.run(os.getpid)
    assert pids <= set(workers.values())


def test_a_measure_that_raises_on_one_session_is_reported_from_the_cluster(
    study_root: Path, client: distributed.Client
) -> None:
    def fragile(ds: xr.Dataset) -> float:
        if "session-001-p0" in ds["participant"].values:
            raise RuntimeError("clipped signal")
        return kuramoto(ds)

    study = Study.open(study_root)
    result = study.apply(fragile, client=client)
    assert "session-001" not in set(result["session"])
    assert len(result) == 2 * (SESSIONS - 1)
    assert study.failures["session"].tolist() == ["session-001"] * 2
    assert "clipped signal" in study.failures["message"].iloc[0]


def test_a_worker_killed_mid_task_is_retried_and_the_result_is_complete(
    study_root: Path, tmp_path: Path, client: distributed.Client
) -> None:
    marker = tmp_path / "killed-once"

    def dies_once(ds: xr.Dataset) -> float:
        if "session-002-p0" in ds["participant"].values and not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies in the middle of the task
        return kuramoto(ds)

    study = Study.open(study_root)
    result = study.apply(dies_once, client=client)
    assert marker.exists()
    assert study.failures.empty
    expected = study.apply(kuramoto)
    pd.testing.assert_frame_equal(result.rename(columns={"dies_once": "kuramoto"}), expected)
    client.wait_for_workers(2, timeout=60)


def test_a_task_that_kills_every_worker_is_named_and_the_rest_computed(
    study_root: Path, client: distributed.Client
) -> None:
    def always_dies(ds: xr.Dataset) -> float:
        if "session-003-p0" in ds["participant"].values:
            os._exit(1)
        return kuramoto(ds)

    study = Study.open(study_root)
    result = study.apply(always_dies, client=client)
    assert set(result["session"]) == {f"session-{k:03d}" for k in range(SESSIONS) if k != 3}
    failures = study.failures
    assert failures["session"].tolist() == ["session-003"]
    assert failures["reason"].tolist() == ["killed_worker"]
    client.wait_for_workers(2, timeout=60)


def test_serial_and_distributed_surrogate_tests_are_equal(
    study_root: Path, client: distributed.Client
) -> None:
    study = Study.open(study_root)
    serial = study.surrogate_test(kuramoto, null="pseudo_pairs", n=8, seed=3)
    spread = study.surrogate_test(kuramoto, null="pseudo_pairs", n=8, seed=3, client=client)
    pd.testing.assert_frame_equal(
        serial.drop(columns="null_values"), spread.drop(columns="null_values")
    )
    for a, b in zip(serial["null_values"], spread["null_values"], strict=True):
        assert list(a) == list(b)


def test_the_cli_runs_on_a_scheduler_by_address(
    study_root: Path, tmp_path: Path, client: distributed.Client
) -> None:
    from sensocto_lab.cli.study import main

    out = tmp_path / "results.csv"
    address = client.scheduler.address
    assert main(["apply", str(study_root), "--out", str(out), "--scheduler", address]) == 0
    table = pd.read_csv(out)
    expected = Study.open(study_root).apply(kuramoto)
    pd.testing.assert_series_equal(table["kuramoto"], expected["kuramoto"])
