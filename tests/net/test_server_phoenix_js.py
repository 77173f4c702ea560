"""The official Phoenix JavaScript client (npm ``phoenix``) against the real endpoint.

Needs Node and ``npm ci`` in ``tests/js`` (the CI script does it); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from support.server import MS, WAIT, engine

from sensocto_lab.engine.engine import Engine
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.server import serve

__all__ = ["engine"]  # fixture

JS = Path(__file__).resolve().parents[1] / "js"

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (JS / "node_modules" / "phoenix").is_dir(), reason="run `npm ci` in tests/js first"
    ),
]


async def test_phoenix_js_joins_pushes_and_gets_backpressure(engine: Engine) -> None:
    async with serve(engine, config=ServerConfig(tokens=frozenset({"tok"}))) as srv:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(JS / "phoenix_client.mjs"),
            f"ws://127.0.0.1:{srv.port}/socket",
            "tok",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 6 * WAIT)
    assert proc.returncode == 0, (out + err).decode()[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["join"] == {
        "status": "ok",
        "response": {"sensor_id": "js1", "attributes": ["ecg", "hr"]},
    }
    assert result["backpressure"]["attention_level"] == "none"
    assert result["backpressure"]["recommended_batch_size"] == 20
    assert result["measurement"] == {"status": "ok", "response": {"stored": 1, "duplicates": 0}}
    assert result["batch"]["response"]["stored"] == 3
    assert result["binary"]["response"]["stored"] == 3
    assert (
        result["bad"]["status"] == "error"
        and result["bad"]["response"]["reason"] == "invalid_value"
    )
    assert result["marker"]["status"] == "ok" and result["marker"]["response"]["stored"] == 1
    assert result["badMarker"]["response"]["reason"] == "invalid_label"
    events = engine.store.events()
    assert events["label"].tolist() == ["stimulus"] and events["source"].tolist() == ["device"]
    assert events["onset"].iloc[0].value == (MS + 500) * 10**6
    ts, hr = engine.store.latest("js1", "hr")
    assert hr.tolist() == [72.0, 73.0, 74.0, 75.0]
    assert ts.tolist() == [(MS + 1000 * i) * 10**6 for i in range(4)]
    _, ecg = engine.store.latest("js1", "ecg")
    np.testing.assert_array_equal(ecg, np.array([0.5, -0.25, 1.0], dtype=np.float32))
    assert engine.sensors["js1"].name == "JS strap"
