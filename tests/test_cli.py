"""The ``sensocto-lab`` command, run as a researcher would: as real processes."""

from __future__ import annotations

import json
import os
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

from sensocto_lab.cli.main import main

pytestmark = pytest.mark.timeout(300)

CLI = [sys.executable, "-m", "sensocto_lab.cli"]
#: The processes run this worktree's code, whatever the venv has installed.
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """Start the CLI; yield once it printed where everything is (name -> value)."""
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV
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
        env=ENV,
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
        env=ENV,
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
        replay = subprocess.run(
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
            text=True,
            env=ENV,
        )
    # it says what it sent, sensors in natural order
    assert replay.stdout.startswith("replayed "), replay.stdout
    assert "(sim-trial-0, sim-trial-1" in replay.stdout, replay.stdout
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
    # what the process holds once started is out of the collector's full passes
    assert health["gc"]["frozen"] > 10_000 and len(health["gc"]["collections"]) == 3


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


def _rooms(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``sensocto-lab rooms --data DATA ARGS`` as a process."""
    return subprocess.run(
        [*CLI, "rooms", "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )


def _shown_code(out: str) -> str:
    return next(line.split()[-1] for line in out.splitlines() if "join code" in line)


def test_rooms_manages_codes_members_and_sensors_with_roles_checked(tmp_path: Path) -> None:
    made = _rooms(tmp_path, "create", "lab", "--name", "Breathing lab")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("lab  Breathing lab") and "sensocto-lab (owner)" in made.stdout
    code = _shown_code(made.stdout)

    admin = _rooms(tmp_path, "add-member", "lab", "ana", "--role", "admin")
    assert "ana (admin)" in admin.stdout, admin.stderr
    assigned = _rooms(tmp_path, "--as", "ana", "assign", "lab", "strap-1", "--force")
    assert "sensors    strap-1" in assigned.stdout, assigned.stderr
    rotated = _rooms(tmp_path, "--as", "ana", "new-code", "lab")
    assert _shown_code(rotated.stdout) != code

    refused = _rooms(tmp_path, "--as", "mallory", "rename", "lab", "Mine now")
    assert refused.returncode == 1 and "may not rename" in refused.stderr
    denied = _rooms(tmp_path, "--as", "ana", "delete", "lab")  # deleting is the owner's
    assert denied.returncode == 1 and "needs owner" in denied.stderr
    listed = _rooms(tmp_path)
    assert "lab  Breathing lab" in listed.stdout and _shown_code(listed.stdout) != code

    gone = _rooms(tmp_path, "delete", "lab")
    assert gone.returncode == 0 and "recordings stay" in gone.stdout
    assert _rooms(tmp_path, "list").stdout == ""
    missing = _rooms(tmp_path / "nowhere")
    assert missing.returncode == 2 and "no data directory" in missing.stderr


async def test_a_new_code_counts_at_once_on_a_running_engine_with_a_login(tmp_path: Path) -> None:
    from sensocto_lab.errors import AuthError
    from sensocto_lab.net.viewer_client import ViewerClient, socket_url

    engine_args = ["--token", "t", "--port", "0", "--dashboard-port", "0", "--room", "lab"]
    with running("serve", *engine_args, "--basic-auth", "pw", "--data", str(tmp_path)) as (
        _,
        engine,
    ):
        # its dashboards ask who is watching, on a login page served from here
        with urllib.request.urlopen(engine["dashboard"], timeout=30) as login:
            assert urllib.parse.urlsplit(login.url).path == "/login"
            assert b"Log in to see your rooms" in login.read()
        endpoint = socket_url(engine["ingest endpoint"].split()[0])
        old = _shown_code(_rooms(tmp_path, "list").stdout)
        new = _shown_code(_rooms(tmp_path, "new-code", "lab").stdout)
        async with ViewerClient(endpoint, "room:lab", code=new) as viewer:
            assert viewer.snapshot is not None and viewer.snapshot.room_id == "lab"
        refused = ViewerClient(endpoint, "room:lab", code=old)
        with pytest.raises(AuthError, match="does not open"):
            await refused.connect(timeout=30)
        await refused.close()
