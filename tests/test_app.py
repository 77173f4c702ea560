"""The one composition root: LabApp, and the ``panel serve`` path through it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensocto_lab.app import LabOptions, close_panel_context, panel_context
from sensocto_lab.cli.main import main
from sensocto_lab.errors import ConfigError
from sensocto_lab.rooms import LAB_USER, RoomStore
from sensocto_lab.ui.dashboard.pages import DashboardContext


async def test_panel_serve_builds_the_lab_like_the_cli_so_rooms_assign_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENSOCTO_LAB_DATA", str(tmp_path))
    monkeypatch.setenv("SENSOCTO_LAB_SIMULATE", "2")
    monkeypatch.delenv("SENSOCTO_LAB_CONNECT", raising=False)
    monkeypatch.delenv("SENSOCTO_LAB_ROOM", raising=False)
    try:
        ctx = await panel_context()
        assert ctx is await panel_context()  # one lab per server loop
        assert isinstance(ctx, DashboardContext)
        assert {"sim-lab-0", "sim-lab-1"} <= set(ctx.engine.sensors)
        rooms = RoomStore(tmp_path)
        try:
            # the same default room as the CLI, owned by the lab user
            owners = [m.user_id for m in rooms.members("lab") if m.role.label == "owner"]
            assert owners == [LAB_USER]
            assert rooms.sensors("lab") == ["sim-lab-0", "sim-lab-1"]
        finally:
            rooms.close()
        status = main(["rooms", "--data", str(tmp_path), "assign", "lab", "sim-lab-1", "--force"])
        assert status == 0, capsys.readouterr()
    finally:
        await close_panel_context()


def test_environment_options_are_checked() -> None:
    opts = LabOptions.from_env({"SENSOCTO_LAB_DATA": "d", "SENSOCTO_LAB_SIMULATE": "3"})
    assert (opts.data_dir, opts.simulate, opts.room, opts.port) == (Path("d"), 3, "lab", None)
    with pytest.raises(ConfigError) as info:
        LabOptions.from_env({"SENSOCTO_LAB_SIMULATE": "many"})
    assert "SENSOCTO_LAB_SIMULATE" in info.value.detail
