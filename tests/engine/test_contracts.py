"""The engine's typed contract, checked by mypy on small user scripts.

``Engine`` must satisfy every protocol of :mod:`sensocto_lab.engine.contracts` and
``RoomMirror`` the viewer half, and a researcher's ``from sensocto_lab import Engine``
must be the real class to mypy (not ``Any`` through a lazy ``__getattr__``).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]


def _mypy(tmp_path: Path, code: str) -> tuple[str, int]:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(code))
    env_path = os.environ.get("MYPYPATH")
    os.environ["MYPYPATH"] = str(ROOT)
    try:
        out, err, status = api.run(
            [str(script), "--no-incremental", "--follow-imports=silent", "--ignore-missing-imports"]
        )
    finally:
        if env_path is None:
            os.environ.pop("MYPYPATH", None)
        else:
            os.environ["MYPYPATH"] = env_path
    return out + err, status


def test_engine_and_mirror_conform_and_the_public_api_is_typed(tmp_path: Path) -> None:
    out, status = _mypy(
        tmp_path,
        """
        from sensocto_lab import Engine, sync
        from sensocto_lab.engine.contracts import EngineView, IngestSink, LiveEngine
        from sensocto_lab.net.room_mirror import RoomMirror

        def check(engine: Engine, mirror: RoomMirror) -> None:
            live: LiveEngine = engine
            sink: IngestSink = engine
            view: EngineView = engine
            remote_view: EngineView = mirror

        reveal_type(Engine)
        reveal_type(sync.order_parameter)
        """,
    )
    assert status == 0, out
    assert 'Revealed type is "def (' in out and "sensocto_lab.engine.engine.Engine" in out, out
    assert "-> xarray.core.dataarray.DataArray" in out, out  # a submodule, typed too


def test_a_mirror_is_not_an_ingest_sink(tmp_path: Path) -> None:
    out, status = _mypy(
        tmp_path,
        """
        from sensocto_lab.engine.contracts import IngestSink
        from sensocto_lab.net.room_mirror import RoomMirror

        def check(mirror: RoomMirror) -> None:
            sink: IngestSink = mirror
        """,
    )
    assert status == 1 and "incompatible types in assignment" in out.lower(), out
