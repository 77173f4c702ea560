"""What the store does not keep about a series: its unit, nominal rate and original label.

The store keeps each series' kind (``docs/storage.md``); a file import or an LSL
recording knows more (an EEG channel's ``uV``, its 512 Hz, the label ``"Fp1"``). That
goes into small JSON sidecars under ``{data_dir}/interop/`` (one per import, one per
LSL stream), written atomically, and :func:`series_meta` gathers them for the
exporters. A directory without sidecars exports with the kinds' units and rates
estimated from the timestamps.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from sensocto_lab.errors import StorageError

__all__ = ["INTEROP_DIR", "read_json", "series_meta", "write_json"]

INTEROP_DIR = "interop"


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` atomically (a temporary fsynced, then renamed over it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(f"cannot write {path.name}: {exc}", reason="write_failed") from exc


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON document at ``path``, or None when there is none or it does not parse."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def series_meta(data_dir: str | os.PathLike[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(sensor, attribute): {"unit", "rate_hz", "label"}}`` from every sidecar."""
    root = Path(data_dir) / INTEROP_DIR
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(root.rglob("*.json")) if root.is_dir() else ():
        doc = read_json(path)
        for row in (doc or {}).get("series", []):
            with contextlib.suppress(KeyError, TypeError):
                out[(str(row["sensor"]), str(row["attribute"]))] = {
                    "unit": str(row.get("unit") or ""),
                    "rate_hz": float(row.get("rate_hz") or 0.0),
                    "label": str(row.get("label") or row["attribute"]),
                }
    return out
