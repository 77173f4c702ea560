"""The ``sensocto-lab`` command, run as a researcher would: as real processes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sensocto_lab.cli import main

pytestmark = pytest.mark.timeout(300)

CLI = [sys.executable, "-m", "sensocto_lab.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """Start the CLI; yield once it printed where everything is (name -> value)."""
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: dict[str, str] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            name, _, value = line.partition("  ")
            if name.strip():
                lines[name.strip()] = value.strip()
            if line.startswith("ready"):
                break
        else:
            raise AssertionError(f"exited with {proc.wait()} before it was up: {lines}")
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            rest = proc.communicate(timeout=60)[0]
            assert proc.returncode == 0, rest


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        return json.loads(resp.read())


def _info(data: Path) -> dict:
    out = subprocess.run(
        [*CLI, "info", "--json", "--data", str(data)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def test_serve_refuses_to_run_open_without_saying_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--data", "unused"]) == 2
    assert "--token" in capsys.readouterr().err


def test_record_then_info_then_replay_reproduces_the_session(tmp_path: Path) -> None:
    rec = tmp_path / "recorded"
    subprocess.run(
        [
            *CLI,
            "record",
            "--no-auth",
            "--no-dashboard",
            "--port",
            "0",
            "--simulate",
            "2",
            "--room",
            "trial",
            "--duration",
            "3",
            "--data",
            str(rec),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    summary = _info(rec)
    series = {
        (r["room"], r["sensor"], r["attribute"]): r["samples"]
        for r in summary["series"]
        if r["sensor"].startswith("sim-")  # the room's live synchrony is recorded too
    }
    assert {s for _, s, _ in series} == {"sim-trial-0", "sim-trial-1"}
    assert series[("trial", "sim-trial-0", "respiration")] > 0
    assert {room for room, _, _ in series} == {"trial"}

    copy = tmp_path / "replayed"
    port = _free_port()
    with running("serve", "--no-auth", "--no-dashboard", "--port", str(port), "--data", str(copy)):
        subprocess.run(
            [
                *CLI,
                "replay",
                "--data",
                str(rec),
                "--speed",
                "1000",
                "--url",
                f"ws://127.0.0.1:{port}/socket/websocket",
            ],
            check=True,
            timeout=120,
            capture_output=True,
        )
    replayed = {
        (r["room"], r["sensor"], r["attribute"]): r["samples"]
        for r in _info(copy)["series"]
        if r["sensor"].startswith("sim-")
    }
    assert replayed == series


def test_health_reports_sensors_attention_load_and_storage_lag(tmp_path: Path) -> None:
    with running(
        "serve",
        "--token",
        "s3cret",
        "--no-dashboard",
        "--port",
        "0",
        "--simulate",
        "3",
        "--data",
        str(tmp_path),
    ) as (_, lines):
        health = _get_json(lines["health"])
    ids = {s["id"] for s in health["sensors"]}
    assert ids == {"sim-lab-0", "sim-lab-1", "sim-lab-2", "sync:lab"}
    assert {s["attention"] for s in health["sensors"]} <= {"none", "low", "medium", "high"}
    assert health["load"] in {"normal", "elevated", "high", "critical"}
    assert health["storage"]["storage_lag_s"] >= 0


def test_demo_serves_the_room_dashboard_and_the_endpoint(tmp_path: Path) -> None:
    with running("demo", "--port", "0", "--dashboard-port", "0", "--data", str(tmp_path)) as (
        _,
        lines,
    ):
        assert "no token required" in lines["ingest endpoint"]
        with urllib.request.urlopen(lines["dashboard"], timeout=30) as resp:
            assert resp.status == 200
            assert b"bokeh" in resp.read().lower()
        health = _get_json(lines["health"])
    assert len([s for s in health["sensors"] if s["id"].startswith("sim-demo-")]) == 8
    assert "sync:demo" in {s["id"] for s in health["sensors"]}


def test_dashboard_serves_the_rooms_of_an_engine_in_another_process(tmp_path: Path) -> None:
    engine_args = ["--no-auth", "--no-dashboard", "--port", "0", "--simulate", "2"]
    with running("serve", *engine_args, "--data", str(tmp_path)) as (_, engine):
        endpoint = engine["ingest endpoint"].split()[0]
        with running("dashboard", "--connect", endpoint, "--port", "0") as (_, dash):
            assert dash["engine"] == endpoint + "?vsn=2.0.0"
            lobby = dash["dashboard"].split()[0]
            with urllib.request.urlopen(lobby, timeout=30) as resp:
                assert resp.status == 200
                assert b"bokeh" in resp.read().lower()
        # who is watching must log in first, on a page served from here
        auth = ["--basic-auth", "pw"]
        with (
            running("dashboard", "--connect", endpoint, "--port", "0", *auth) as (_, dash),
            urllib.request.urlopen(dash["dashboard"].split()[0], timeout=30) as login,
        ):
            assert urllib.parse.urlsplit(login.url).path == "/login"
            assert b"Log in to see your rooms" in login.read()
