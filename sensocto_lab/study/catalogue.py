"""The catalogue of a study: which sessions there are, and what each one holds.

A session is a data directory (``docs/storage.md``) found by its ``session.json``.
Under a local root the catalogue is DuckDB over the files: ``glob`` finds the
``session.json`` files, and one ``read_parquet`` over the hive layout
(``cold/room=/sensor=/attribute=/date=``, ``events/room=/date=``, partition values
read as strings) counts samples and conditions of every session at once; no Python
walk of the tree. Behind an fsspec URL (``s3://``, ``memory://``) the same is done
with the filesystem's ``glob`` and pyarrow datasets on it.

Problems do not stop a catalogue: a directory with data but no ``session.json``, an
unreadable ``session.json``, two sessions with the same name, an unreadable Parquet
file each become a row of :attr:`Catalogue.problems` (``session``, ``path``,
``reason``, ``message``), and the rest of the study is catalogued.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

import sensocto_lab.storage.session as session_file
from sensocto_lab.errors import StorageError
from sensocto_lab.storage.session import SessionInfo
from sensocto_lab.study.source import is_remote, local_path

if TYPE_CHECKING:
    import duckdb

__all__ = ["Catalogue", "SessionRef", "catalogue"]

_COLD = "cold/room=*/sensor=*/attribute=*/date=*/*.parquet"
_EVENTS = "events/room=*/date=*/*.parquet"
SUMMARY_COLUMNS = (
    "session", "name", "participants", "sensors", "attributes", "duration_s", "samples",
    "conditions",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SessionRef:
    """One session of a study.

    Attributes
    ----------
    session
        Its id in the study: the directory's path relative to the study root (or to
        the common parent of an explicit list), unique even when names are not.
    location
        Local path or fsspec URL of the data directory.
    info
        Its ``session.json``.
    """

    session: str
    location: str
    info: SessionInfo


@dataclass(slots=True)
class Catalogue:
    """The sessions of a study and what went wrong finding them."""

    sessions: list[SessionRef]
    problems: list[dict[str, str]] = field(default_factory=list)

    def problem(self, session: str, path: str, reason: str, message: str) -> None:
        """Record a problem (once: reading the same session again adds nothing)."""
        row = {"session": session, "path": path, "reason": reason, "message": message}
        if row not in self.problems:
            self.problems.append(row)


def _connect() -> duckdb.DuckDBPyConnection:
    import duckdb

    # no progress bar: the catalogue is a library call, its callers print what they like
    con = duckdb.connect(config={"threads": 2})
    con.execute("SET enable_progress_bar = false")
    return con


def _sql_list(items: Sequence[str]) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def _data_marker(path: str) -> str | None:
    """``"cold"`` or ``"events"`` for a Parquet part of a store's layout, else None."""
    if not path.endswith(".parquet"):
        return None
    for marker in ("cold", "events"):
        if f"/{marker}/room=" in path:
            return marker
    return None


def _dir_of(path: str, marker: str) -> str:
    return path[: path.rindex(f"/{marker}/")]


def _ids(dirs: Sequence[str], root: str | None) -> list[str]:
    if not dirs:
        return []
    if root is None:
        remote = [d for d in dirs if is_remote(d)]
        if remote and len(remote) < len(dirs):
            return list(dirs)  # a mix of URLs and paths: the full locations are the ids
        split = [d.split("/") for d in dirs]
        common: list[str] = []
        for parts in zip(*split, strict=False):
            if len(set(parts)) != 1:
                break
            common.append(parts[0])
        if len(common) >= min(len(p) for p in split):  # one is another's parent, or alone
            common = common[: min(len(p) for p in split) - 1]
        root = "/".join(common)
    base = root.rstrip("/")
    return [d[len(base) + 1 :] if d.startswith(base + "/") else d for d in dirs]


def _norm(location: str | os.PathLike[str]) -> str:
    text = os.fspath(location)
    if is_remote(text):
        return text.rstrip("/")
    return str(local_path(text).resolve()).replace(os.sep, "/")


def catalogue(
    root_or_locations: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> Catalogue:
    """Find the sessions of a root, or take an explicit list of data directories.

    Parameters
    ----------
    root_or_locations
        A directory (path or fsspec URL) holding sessions at any depth, or a list of
        session directories.

    Returns
    -------
    Catalogue
        Sessions sorted by id, and the problems found.
    """
    if isinstance(root_or_locations, str | os.PathLike):
        root: str | None = _norm(root_or_locations)
        assert root is not None
        # One walk of the tree (DuckDB's glob), its files sorted out here: a glob per
        # pattern would walk it once each (0.2 s against 1.1 s for 1000 sessions).
        files = _glob(root, ["**"])
        dirs = sorted(
            {posixpath.dirname(f) for f in files if f.endswith("/" + session_file.SESSION_FILE)}
        )
        data_dirs = {_dir_of(f, m) for f in files if (m := _data_marker(f)) is not None}
    else:
        root = None
        dirs = sorted({_norm(x) for x in root_or_locations})
        data_dirs = set(dirs)
    ids = _ids(dirs, root) if dirs else []
    found = Catalogue([])
    for sid, d in zip(ids, dirs, strict=True):
        try:
            info = _load_info(d)
        except StorageError as exc:
            found.problem(sid, d, exc.reason or "corrupt_session", str(exc))
            continue
        if info is None:
            found.problem(sid, d, "missing_session_json", f"{sid} has no session.json")
            continue
        found.sessions.append(SessionRef(sid, d, info))
    orphans = sorted(data_dirs - set(dirs))
    for sid, d in zip(_ids(orphans, root), orphans, strict=True):
        found.problem(sid, d, "missing_session_json", f"{sid} holds data but no session.json")
    by_name: dict[str, list[str]] = {}
    for ref in found.sessions:
        if ref.info.name:
            by_name.setdefault(ref.info.name, []).append(ref.session)
    for name, sids in sorted(by_name.items()):
        if len(sids) > 1:
            for sid in sids:
                others = ", ".join(s for s in sids if s != sid)
                found.problem(
                    sid,
                    next(r.location for r in found.sessions if r.session == sid),
                    "duplicate_name",
                    f"{sid} is named {name!r} like {others}; both kept, told apart by path",
                )
    return found


def _glob(root: str, patterns: Sequence[str]) -> list[str]:
    if is_remote(root):
        import fsspec

        fs, path = fsspec.core.url_to_fs(root)
        protocol = root.split("://", 1)[0]
        out = []
        for pattern in patterns:
            for p in fs.glob(f"{str(path).rstrip('/')}/{pattern}"):
                text = str(p)
                out.append(text if "://" in text else f"{protocol}://{text.lstrip('/')}")
        return sorted(out)
    con = _connect()
    try:
        globs = _sql_list([f"{root}/{p}" for p in patterns])
        rows = con.sql(f"SELECT file FROM glob({globs})").fetchall()
    finally:
        con.close()
    return sorted(str(r[0]).replace(os.sep, "/") for r in rows)


def _load_info(location: str) -> SessionInfo | None:
    if not is_remote(location):
        return session_file.load(local_path(location))
    import fsspec

    try:
        with fsspec.open(f"{location}/{session_file.SESSION_FILE}", "r") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read session.json: {exc}", reason="corrupt_session") from exc
    try:
        return SessionInfo.from_json(doc)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StorageError(
            f"session.json is not a session document: {exc}", reason="corrupt_session"
        ) from exc


# -- summary ---------------------------------------------------------------------------


def _series_local(locations: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per dir: sensors, attributes, samples, first and last ts; and its condition labels.

    The sessions' globs are listed one by one: DuckDB plans that faster than one
    recursive ``**`` glob under the root (measured: 1.7 s against 3.9 s for 1000).
    Only ``ts`` and the partition columns are read, so parts of different kinds
    (``value`` float or a fixed-size list) need no ``union_by_name``, which would
    read every file's schema first (2.5 times slower over 1000 sessions).
    """
    con = _connect()
    try:
        cold = _sql_list([f"{d}/{_COLD}" for d in locations])
        series = con.sql(
            f"""
            SELECT regexp_extract(filename, '^(.*)/cold/room=', 1) AS dir,
                   count(DISTINCT sensor) AS sensors,
                   list_sort(list_distinct(list(attribute))) AS attributes,
                   count(*) AS samples, epoch_ns(min(ts)) AS first_ns, epoch_ns(max(ts)) AS last_ns
            FROM read_parquet({cold}, hive_partitioning = true, hive_types_autocast = false,
                              filename = true)
            GROUP BY ALL
            """
        ).df()
        events = _sql_list([f"{d}/{_EVENTS}" for d in locations])
        try:
            conds = con.sql(
                f"""
                SELECT regexp_extract(filename, '^(.*)/events/room=', 1) AS dir,
                       list_sort(list_distinct(list(label))) AS conditions
                FROM read_parquet({events}, hive_partitioning = true,
                                  hive_types_autocast = false, filename = true)
                WHERE kind = 'condition'
                GROUP BY ALL
                """
            ).df()
        except Exception as exc:  # no event file at all is not an error
            if "No files found" not in str(exc):
                raise
            conds = pd.DataFrame({"dir": [], "conditions": []})
    finally:
        con.close()
    return series, conds


def _series_remote(location: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sensocto_lab.study.source import RemoteSession

    reader = RemoteSession(location)
    rows: list[dict[str, Any]] = []
    for (sensor, attr), parts in _grouped(reader.parts()).items():
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        t = ds.dataset(parts, format="parquet", filesystem=reader._pafs).to_table(columns=["ts"])
        ts = t.column("ts").cast("int64")
        mm = pc.min_max(ts)
        rows.append(
            {
                "dir": location,
                "sensor": sensor,
                "attribute": attr,
                "samples": t.num_rows,
                "first_ns": mm["min"].as_py(),
                "last_ns": mm["max"].as_py(),
            }
        )
    ev = reader.events()
    labels = sorted(set(ev.loc[ev["kind"] == "condition", "label"]))
    per = pd.DataFrame(rows)
    if per.empty:
        return per, pd.DataFrame({"dir": [location], "conditions": [labels]})
    one = {
        "dir": location,
        "sensors": per["sensor"].nunique(),
        "attributes": sorted(set(per["attribute"])),
        "samples": int(per["samples"].sum()),
        "first_ns": int(per["first_ns"].min()),
        "last_ns": int(per["last_ns"].max()),
    }
    return pd.DataFrame([one]), pd.DataFrame({"dir": [location], "conditions": [labels]})


def _grouped(parts: Sequence[Any]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for p in parts:
        out.setdefault((p.sensor, p.attribute), []).append(p.path)
    return out


def summary(cat: Catalogue) -> pd.DataFrame:
    """Per session: participants, sensors, attributes, duration, samples and conditions.

    ``duration_s`` is the session's end minus start from ``session.json`` where both
    are known, else the span of its sample timestamps, in s; ``samples`` counts the
    compacted (Parquet) samples of all series; ``attributes`` and ``conditions`` are
    sorted lists. A session whose files cannot be read gets NaN counts here and a
    problem (``reason="unreadable_parquet"``) in ``cat.problems``.
    """
    refs = cat.sessions
    local = [r.location for r in refs if not is_remote(r.location)]
    series_parts, cond_parts = [], []
    if local:
        try:
            s, c = _series_local(local)
            series_parts.append(s)
            cond_parts.append(c)
        except Exception:  # one bad file fails the whole query: find which session it is
            for r in refs:
                if not is_remote(r.location):
                    _one(cat, r, _series_local, [r.location], series_parts, cond_parts)
    for r in refs:
        if is_remote(r.location):
            _one(cat, r, _series_remote, r.location, series_parts, cond_parts)
    series = (
        pd.concat(series_parts)
        if series_parts
        else pd.DataFrame(columns=["dir", "sensors", "attributes", "samples", "first_ns"])
    )
    conds = pd.concat(cond_parts) if cond_parts else pd.DataFrame(columns=["dir", "conditions"])
    by_dir = {row["dir"]: row for row in series.to_dict("records")}
    cond_of = {d: list(c) for d, c in zip(conds["dir"], conds["conditions"], strict=True)}
    bad = {p["path"] for p in cat.problems if p["reason"] == "unreadable_parquet"}
    rows = []
    for r in refs:
        g = by_dir.get(r.location)
        info = r.info
        unread = r.location in bad
        if info.start_ns is not None and info.end_ns is not None:
            duration = (info.end_ns - info.start_ns) / 1e9
        elif g is not None:
            duration = (int(g["last_ns"]) - int(g["first_ns"])) / 1e9
        else:
            duration = float("nan")
        rows.append(
            {
                "session": r.session,
                "name": info.name,
                "participants": len(info.participants),
                "sensors": float("nan") if unread else 0 if g is None else int(g["sensors"]),
                "attributes": [] if g is None else [str(a) for a in g["attributes"]],
                "duration_s": duration,
                "samples": float("nan") if unread else 0 if g is None else int(g["samples"]),
                "conditions": sorted(cond_of.get(r.location, [])),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _one(
    cat: Catalogue,
    ref: SessionRef,
    reader: Any,
    arg: Any,
    series_parts: list[pd.DataFrame],
    cond_parts: list[pd.DataFrame],
) -> None:
    try:
        s, c = reader(arg)
    except Exception as exc:
        cat.problem(ref.session, ref.location, "unreadable_parquet", _short(exc))
        return
    series_parts.append(s)
    cond_parts.append(c)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0][:300] if text else type(exc).__name__
