"""The import-layer rule of DESIGN §3 / STYLE §3, checked by parsing every module.

Arrows point one way: ``model`` ← ``protocol``, ``storage``, ``physio`` ← ``sync`` ← ``live`` ←
``widgets`` ← ``app`` ← ``cli``, ``panel_apps``. Pure layers also stay free of I/O libraries.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sensocto_lab"

#: layer -> sensocto_lab layers it may import
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "clock": set(),
    "model": {"errors"},
    "protocol": {"model", "errors"},
    "storage": {"model", "errors", "clock"},
    "physio": {"errors"},
    "sync": {"model", "errors", "physio"},
    "live": {"model", "errors", "clock", "protocol", "storage", "physio", "sync"},
    "widgets": {"model", "errors", "clock", "protocol", "storage", "physio", "sync", "live"},
    "app": {"model", "errors", "clock", "protocol", "storage", "physio", "sync", "live", "widgets"},
    "cli": {
        "model",
        "errors",
        "clock",
        "protocol",
        "storage",
        "physio",
        "sync",
        "live",
        "widgets",
        "app",
    },
}

#: layers that must not import these outside libraries (I/O-free core)
FORBIDDEN_LIBS: dict[str, set[str]] = {
    "model": {"asyncio", "websockets", "bleak", "pyarrow", "panel", "bokeh"},
    "protocol": {"asyncio", "websockets", "bleak", "pyarrow", "panel", "bokeh"},
    "sync": {"asyncio", "websockets", "bleak", "panel", "bokeh", "neurokit2"},
    "physio": {"asyncio", "websockets", "bleak", "panel", "bokeh", "pyarrow"},
    "storage": {"websockets", "bleak", "panel", "bokeh"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_module_respects_layers(path: Path) -> None:
    layer = _layer(path)
    allowed = ALLOWED.get(layer, set(ALLOWED["cli"]))
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "sensocto_lab" and len(parts) > 1:
            target = parts[1]
            assert target == layer or target in allowed, (
                f"{path.relative_to(ROOT)} ({layer}) imports {name}; allowed: {sorted(allowed)}"
            )
        assert parts[0] not in FORBIDDEN_LIBS.get(layer, set()), (
            f"{path.relative_to(ROOT)} is in the I/O-free layer {layer} but imports {name}"
        )


def test_bleak_is_imported_by_one_module_only() -> None:
    users = [p for p in MODULES if any(n.split(".")[0] == "bleak" for n in _imports(p))]
    assert len(users) <= 1, users
