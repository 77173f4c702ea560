"""Issue #22's table: every mistake a newcomer can make, run as the command they would type.

Each case runs ``sensocto-lab`` as a process and asserts its exit status (not 0 for a
mistake, 0 where it is none), that no ``Traceback`` is printed, that the last line of
stderr names the fix, and that a refused command created nothing on disk. Servers a
case needs listen on 127.0.0.1 ports picked here and are stopped by the fixture.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.storage import RESP, make_batch

from sensocto_lab.storage import StorageConfig, TieredStore

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "sensocto_lab.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
#: The recorded fixture's sensors, in the order the CLI must list them (natural).
SENSORS = ("s1", "s2", "s10")


def cli(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session directory (inside a parent of sessions) with sensors s1, s2, s10."""
    data = tmp_path_factory.mktemp("sessions") / "2026-12-04T1530-record"
    with TieredStore.open(data, StorageConfig(background=False)) as store:
        for i, sensor in enumerate(reversed(SENSORS)):
            store.append(make_batch(sensor, "respiration", RESP, 0, 20 + i), room="lab", kind=RESP)
    made = cli("rooms", "create", "lab", "--data", str(data))
    assert made.returncode == 0, made.stderr
    return data


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tokened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint of a ``serve --token`` process (stopped after the module)."""
    data = tmp_path_factory.mktemp("tokened")
    args = ["serve", "--token", "s3cret", "--no-dashboard", "--port", "0", "--data", str(data)]
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            if line.startswith("ingest endpoint"):
                url = line.split()[2]
            if line.startswith("ready"):
                break
        assert url is not None, f"serve exited with {proc.wait(timeout=60)}"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


# (case id, arguments, exit status, what the last line of stderr must say)
# {data}: a recorded session; {sessions}: its parent; {empty}: an empty directory;
# {new}: a path that must still not exist afterwards; {file}: a plain file;
# {busy}: a port in use; {free}: a port nothing listens on; {tokened}: serve --token.
CASES = [
    ("room id with a space", ["record", "--no-auth", "--duration", "1", "--room", "my lab",
     "--data", "{new}"], 2, "room must be 1-128 characters"),
    ("negative --simulate", ["record", "--no-auth", "--duration", "1", "--simulate", "-1",
     "--data", "{new}"], 2, "give 0 (none) or more"),
    ("--simulate not a number", ["demo", "--simulate", "many", "--data", "{new}"], 2,
     "'many' is not a whole number"),
    ("replay --speed 0", ["replay", "--speed", "0", "--data", "{data}"], 2, "give a factor > 0"),
    ("replay --speed nan", ["replay", "--speed", "nan", "--data", "{data}"], 2, "factor > 0"),
    ("port out of range", ["serve", "--no-auth", "--port", "70000", "--data", "{new}"], 2,
     "give 1-65535, or 0 for any free port"),
    ("--duration 0", ["record", "--no-auth", "--duration", "0", "--data", "{new}"], 2,
     "seconds > 0"),
    ("record without --duration", ["record", "--no-auth", "--data", "{new}"], 2,
     "the following arguments are required: --duration"),
    ("abbreviated --dur", ["record", "--no-auth", "--dur", "5", "--data", "{new}"], 2,
     "did you mean --duration?"),
    ("typo'd flag of rooms add-member", ["rooms", "add-member", "lab", "ana", "--rol", "admin",
     "--data", "{data}"], 2, "did you mean --role?"),
    ("mistyped subcommand", ["serv", "--no-auth"], 2, "did you mean serve?"),
    ("mistyped rooms action", ["rooms", "add-membr", "lab", "ana", "--role", "admin"], 2,
     "did you mean add-member?"),
    ("demo --token", ["demo", "--token", "X", "--data", "{new}"], 2,
     "sensocto-lab serve --token SECRET"),
    ("serve without token or --no-auth", ["serve", "--data", "{new}"], 2,
     "--token SECRET, or accept any device with --no-auth"),
    ("serve --token and --no-auth", ["serve", "--no-auth", "--token", "x", "--data", "{new}"],
     2, "give one of them"),
    ("--dashboard-port with --no-dashboard", ["serve", "--no-auth", "--no-dashboard",
     "--dashboard-port", "5000", "--data", "{new}"], 2, "leave out --dashboard-port"),
    ("--coupling without --simulate", ["serve", "--no-auth", "--coupling", "2", "--data",
     "{new}"], 2, "add --simulate N"),
    ("--basic-auth file missing", ["serve", "--no-auth", "--basic-auth", "users.json",
     "--data", "{new}"], 2, "no file users.json"),
    ("--data is a file", ["info", "--data", "{file}"], 2, "is a file, not a data directory"),
    ("record into another session", ["record", "--no-auth", "--duration", "1", "--data",
     "{data}"], 2, "pass --append to add to them"),
    ("info on a missing directory", ["info", "--data", "{new}"], 2, "no data directory at"),
    ("info on an empty directory", ["info", "--data", "{empty}"], 2,
     "holds no recordings yet: record a session first"),
    ("info on the parent of sessions", ["info", "--data", "{sessions}"], 2,
     "holds sessions, not recordings: pass --data"),
    ("replay an empty directory", ["replay", "--data", "{empty}"], 2, "record a session first"),
    ("replay to http://", ["replay", "--data", "{data}", "--url", "http://127.0.0.1:4000"], 2,
     "use ws://127.0.0.1:4000"),
    ("replay to a URL without a port", ["replay", "--data", "{data}", "--url", "ws://localhost"],
     2, "give the endpoint as ws://HOST:PORT"),
    ("replay to nothing listening", ["replay", "--data", "{data}", "--url",
     "ws://127.0.0.1:{free}"], 1, "connection refused at 127.0.0.1:"),
    ("replay an unrecorded --sensor", ["replay", "--data", "{data}", "--sensor", "s3"], 2,
     "it holds s1, s2, s10 (pass --sensor with one of them)"),
    ("replay to a server wanting a token", ["replay", "--data", "{data}", "--speed", "inf",
     "--url", "{tokened}"], 1, "wants an ingest token: pass --token SECRET"),
    ("dashboard --connect http://", ["dashboard", "--connect", "http://127.0.0.1:4000/room",
     "--port", "0"], 2, "use ws://127.0.0.1:4000"),
    ("dashboard to nothing listening", ["dashboard", "--connect", "ws://127.0.0.1:{free}",
     "--port", "0"], 1, "connection refused at 127.0.0.1:"),
    ("ingest port in use", ["serve", "--no-auth", "--port", "{busy}", "--data", "{new}"], 1,
     "port {busy} is in use: pass --port 0 or stop the other server"),
    ("dashboard port in use", ["demo", "--port", "0", "--dashboard-port", "{busy}", "--data",
     "{new}"], 1, "port {busy} is in use: pass --dashboard-port 0 or stop the other server"),
    ("rooms on a missing directory", ["rooms", "--data", "{new}"], 2, "no data directory at"),
    ("rooms list of an empty directory", ["rooms", "list", "--data", "{empty}"], 0,
     "no rooms in"),
    ("rooms change in a directory without rooms", ["rooms", "new-code", "lab", "--data",
     "{empty}"], 1, "no rooms in"),
    ("rooms: room id with a space", ["rooms", "create", "my lab", "--data", "{empty}"], 2,
     "room must be 1-128 characters"),
    ("rooms assign an unrecorded sensor", ["rooms", "assign", "lab", "s3", "--data", "{data}"],
     1, "it holds s1, s2, s10): check the id, or pass --force"),
    ("rooms assign to a directory without recordings", ["rooms", "assign", "lab", "s1",
     "--data", "{empty}"], 1, "no rooms in"),
    ("rooms unassign a sensor not assigned", ["rooms", "unassign", "lab", "s10", "--data",
     "{data}"], 1, "sensor s10 is not assigned to room lab"),
    ("rooms remove-member of a non-member", ["rooms", "remove-member", "lab", "ana", "--data",
     "{data}"], 1, "ana is not a member of room lab (members: sensocto-lab)"),
    ("rooms --data after the action", ["rooms", "add-member", "lab", "bo", "--data", "{data}"],
     0, "bo (member)"),
    ("dashboard --basic-auth file missing", ["dashboard", "--basic-auth", "users.json"], 2,
     "no file users.json"),
    ("unknown --host", ["serve", "--no-auth", "--port", "0", "--host", "no-such-host.invalid",
     "--data", "{new}"], 1, "unknown --host no-such-host.invalid"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "status", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_mistake_ends_in_one_line_naming_the_fix(
    request: pytest.FixtureRequest, tmp_path: Path, args: list[str], status: int, says: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a directory")
    where = {
        "new": str(tmp_path / "new"),
        "empty": str(tmp_path / "empty"),
        "file": str(tmp_path / "file"),
        "free": str(_free_port()),
    }
    joined = " ".join(args)
    for name in ("data", "sessions", "busy", "tokened"):
        if "{" + name + "}" in joined:
            if name in ("data", "sessions"):
                data = request.getfixturevalue("recorded")
                where["data"], where["sessions"] = str(data), str(data.parent)
            elif name == "busy":
                where["busy"] = str(request.getfixturevalue("busy_port"))
            else:
                where["tokened"] = request.getfixturevalue("tokened")
    run = cli(*[a.format(**where) for a in args], cwd=tmp_path)
    out = run.stdout + run.stderr
    assert "Traceback" not in out and "Exception ignored" not in out, out
    assert run.returncode == status, out
    lines = run.stderr.strip().splitlines()
    if status:
        assert lines, out
        assert says.format(**where) in lines[-1], out
        assert lines[-1].startswith("sensocto-lab"), lines[-1]
        if status == 1:  # a failure while running: that one line and nothing else
            assert len(lines) == 1, out
    else:
        assert says in out
    assert not (tmp_path / "new").exists(), "a refused command created its data directory"
    assert not (tmp_path / "sensocto-data").exists()
    assert not (tmp_path / "empty" / "rooms.sqlite3").exists()


def test_nothing_listening_is_said_within_a_second() -> None:
    from sensocto_lab.cli._fail import CliError
    from sensocto_lab.cli._net import endpoint, reachable

    started = time.monotonic()
    with pytest.raises(CliError, match=r"connection refused at 127\.0\.0\.1"):
        asyncio.run(reachable(endpoint(f"ws://127.0.0.1:{_free_port()}"), "--url"))
    assert time.monotonic() - started < 1.0


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    run = cli("--debug", "info", "--data", str(tmp_path))
    assert run.returncode != 0 and "Traceback" in run.stderr
    after = cli("info", "--data", str(tmp_path), "--debug")
    assert after.returncode != 0 and "Traceback" in after.stderr


def test_info_into_a_closed_pipe_prints_no_traceback(recorded: Path) -> None:
    # `true` exits without reading: every write of info meets a closed pipe
    shell = f"{' '.join(CLI)} info --data '{recorded}' | true"
    run = subprocess.run(shell, shell=True, capture_output=True, text=True, env=ENV, timeout=60)
    assert run.stderr == ""


def test_lists_of_sensors_are_in_natural_order(recorded: Path) -> None:
    run = cli("info", "--data", str(recorded))
    assert run.returncode == 0, run.stderr
    shown = [w.removeprefix("sensor=") for w in run.stdout.split() if w.startswith("sensor=")]
    assert shown == list(SENSORS)


def test_version() -> None:
    from sensocto_lab import __version__

    run = cli("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"sensocto-lab {__version__}"


# (subcommand, what its --help must show)
HELP = [
    ("demo", ["Try the workbench", "(default: 4000)", "(default: 5006)", "rad/s",
              "(default: 1.5)", "(default: 8)", "(default: demo)", "new session directory"]),
    ("serve", ["Run a lab's server", "(default: 4000)", "(default: 5006)", "rad/s",
               "(default: sensocto-data)", "(default: lab)", "--token SECRET"]),
    ("record", ["Record one session", "--duration SECONDS", "(required)", "(default: 4000)"]),
    ("dashboard", ["another process", "(default: ws://127.0.0.1:4000)", "(default: 5006)"]),
    ("rooms", ["List the rooms", "(default: sensocto-data)", "add-member"]),
    ("rooms add-member", ["(default: member)", "(default: sensocto-data)"]),
    ("replay", ["original timestamps", "(default: 1.0)", "(default: ws://127.0.0.1:4000)"]),
    ("info", ["Summarise", "(default: sensocto-data)"]),
]  # fmt: skip


@pytest.mark.parametrize(("command", "shows"), HELP, ids=[h[0] for h in HELP])
def test_help_of_every_subcommand_shows_its_purpose_and_defaults(
    command: str, shows: list[str]
) -> None:
    run = cli(*command.split(), "--help")
    assert run.returncode == 0 and "Traceback" not in run.stderr
    text = " ".join(run.stdout.split())  # as one line: help wraps anywhere
    for part in shows:
        assert part in text, (part, run.stdout)
    assert "default: None" not in text
    if command == "record":
        assert "default: run" not in text
    assert "default: False" not in text and "default: []" not in text
