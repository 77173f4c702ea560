"""The import rules of ``docs/architecture.md``, checked by parsing every module.

Arrows point one way: ``errors``, ``clock`` ← ``model`` ← ``protocol``, ``storage``, ``sync``,
``physio`` ← ``engine`` ← ``net``, ``sources`` ← ``ui`` ← ``app`` ← ``cli``, ``panel_apps``;
pure layers stay free of I/O libraries; and no module of the package takes part in an import
cycle (every import counts, also those inside functions or under ``TYPE_CHECKING``: a cycle
hidden from the interpreter is still two modules that cannot be understood apart).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sensocto_lab"

_BASE = {"errors", "clock", "model", "events"}
#: layer -> sensocto_lab layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "clock": set(),
    "model": {"errors"},
    "events": {"errors", "model"},
    "rooms": {"errors", "clock", "model"},
    "protocol": _BASE,
    "storage": _BASE,
    "physio": _BASE,
    "sync": _BASE | {"physio"},
    "io": _BASE | {"storage"},
    "engine": _BASE | {"protocol", "storage", "sync", "physio"},
    "net": _BASE | {"protocol", "storage", "sync", "physio", "engine", "rooms"},
    "sources": _BASE | {"protocol", "storage", "sync", "physio", "engine", "net", "io"},
    "lsl": _BASE | {"protocol", "storage", "sync", "physio", "engine", "net", "io", "sources"},
    "study": _BASE | {"storage", "sync", "physio", "io"},
    "ui": _BASE
    | {"protocol", "storage", "sync", "physio", "engine", "net", "sources", "rooms", "io"},
}
ALLOWED["app"] = set().union(*ALLOWED.values()) | set(ALLOWED)
ALLOWED["cli"] = ALLOWED["app"] | {"app"}

#: layers that must not import these outside libraries (I/O-free core)
_IO = {"asyncio", "websockets", "bleak", "pyarrow", "panel", "bokeh"}
FORBIDDEN_LIBS: dict[str, set[str]] = {
    "model": _IO,
    "events": _IO,
    "protocol": _IO,
    "sync": (_IO - {"pyarrow"}) | {"neurokit2"},  # neurokit2 lives under physio
    "physio": _IO,
    "storage": {"websockets", "bleak", "panel", "bokeh"},
    "engine": {"websockets", "bleak", "panel", "bokeh"},
    "rooms": {"asyncio", "websockets", "bleak", "panel", "bokeh"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = sorted(PKG.rglob("*.py"))
NAMES = {_module_name(p): p for p in MODULES}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, resolved to package modules where it names one."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                names.add(sub if sub in NAMES else module)
    return names


GRAPH: dict[str, set[str]] = {
    name: {m for m in _imports(path) if m in NAMES and m != name} for name, path in NAMES.items()
}


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


@pytest.mark.parametrize("module", sorted(NAMES), ids=str)
def test_module_respects_layers(module: str) -> None:
    layer = _layer(module)
    if not layer:
        return  # the package root re-exports the public API
    allowed = ALLOWED.get(layer)
    assert allowed is not None, f"{module}: layer {layer!r} is not in the layer table"
    for name in _imports(NAMES[module]):
        parts = name.split(".")
        if parts[0] == "sensocto_lab" and len(parts) > 1:
            target = parts[1]
            assert target == layer or target in allowed, (
                f"{module} ({layer}) imports {name}; allowed: {sorted(allowed)}"
            )
        assert parts[0] not in FORBIDDEN_LIBS.get(layer, set()), (
            f"{module} is in the I/O-free layer {layer} but imports {name}"
        )


def test_the_engine_imports_no_edge_layer() -> None:
    edges = {"net", "sources", "ui", "app", "cli"}
    for module in NAMES:
        if _layer(module) == "engine":
            bad = {m for m in GRAPH[module] if _layer(m) in edges}
            assert not bad, f"{module} imports {sorted(bad)}"


def test_no_import_cycle_in_the_package() -> None:
    assert find_cycle(GRAPH) is None


def test_the_checks_fail_on_a_cycle_and_on_an_upward_import() -> None:
    synthetic = {
        "sensocto_lab.engine.engine": {"sensocto_lab.engine.bus"},
        "sensocto_lab.engine.bus": {"sensocto_lab.ui.dashboard.pages"},
        "sensocto_lab.ui.dashboard.pages": {"sensocto_lab.engine.engine"},
    }
    cycle = find_cycle(synthetic)
    assert cycle is not None and cycle[0] == cycle[-1] and len(cycle) == 4
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert "ui" not in ALLOWED["engine"]


def test_bleak_is_imported_by_one_module_only() -> None:
    users = [m for m, p in NAMES.items() if any(n.split(".")[0] == "bleak" for n in _imports(p))]
    assert len(users) <= 1, users


def test_no_module_is_over_650_lines() -> None:
    long = {m: n for m, p in NAMES.items() if (n := len(p.read_text().splitlines())) > 650}
    assert not long, long
