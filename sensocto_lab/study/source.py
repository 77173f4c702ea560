"""Reading one session of a study: a local data directory or one behind an fsspec URL.

A local directory (a path, or a ``file://`` URL) is read by the store itself,
``TieredStore.open(dir, read_only=True)``: Parquet and any WAL not yet compacted,
exactly once (``docs/storage.md``). A directory behind another fsspec URL
(``s3://``, ``gcs://``, ``memory://``) is read from its Parquet parts only, through
pyarrow datasets on the fsspec filesystem, so nothing is copied to local disk; a
session still being recorded there (WAL files) is read without its newest samples.

Everything here is a plain function of a location string, so a Dask worker can call
it with the location alone and read its session itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

import sensocto_lab.storage.event_log as event_log
import sensocto_lab.storage.session as session_file
from sensocto_lab.errors import StorageError, ValidationError
from sensocto_lab.model import KINDS, KindSpec
from sensocto_lab.storage.history import SeriesSource, build_dataset
from sensocto_lab.storage.session import SessionInfo

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["SessionReader", "condition_spans", "is_remote", "local_path", "open_session"]


class SessionReader(Protocol):
    """What a study needs of one session (``TieredStore`` read-only satisfies it)."""

    @property
    def session(self) -> SessionInfo: ...

    def history(
        self,
        *,
        attributes: list[str] | None = None,
        start: Any = None,
        end: Any = None,
        condition: str | None = None,
    ) -> xr.Dataset: ...

    def events(self) -> pd.DataFrame: ...


def is_remote(location: str) -> bool:
    """Whether ``location`` is an fsspec URL other than ``file://``."""
    return "://" in location and not location.startswith("file://")


def local_path(location: str) -> Path:
    """The local path of a path or ``file://`` URL."""
    return Path(location.removeprefix("file://"))


def open_session(location: str) -> SessionReader:
    """A reader of the session at ``location`` (see the module docstring).

    Raises
    ------
    StorageError
        Nothing readable is there (``reason="no_store"``).
    """
    if is_remote(location):
        return RemoteSession(location)
    from sensocto_lab.storage.tiered import TieredStore

    return TieredStore.open(local_path(location), read_only=True)


def condition_spans(events: pd.DataFrame, label: str) -> list[tuple[int, int]]:
    """``[(start_ns, end_ns), ...]`` of condition ``label`` in a session's events.

    The same rule as ``history(condition=)``: a running condition (duration NaN)
    lasts until the end of time.

    Raises
    ------
    ValidationError
        No such condition (``reason="unknown_condition"``).
    """
    frame = events[events["kind"] == "condition"]
    rows = frame[frame["label"] == label]
    if rows.empty:
        known = ", ".join(map(repr, sorted(set(frame["label"])))) or "none"
        raise ValidationError(
            f"no condition {label!r:.60} was recorded; known conditions: {known}",
            reason="unknown_condition",
        )
    onset = np.asarray(rows["onset"].array.asi8, dtype=np.int64)
    duration = rows["duration"].to_numpy(dtype=np.float64)
    span = np.round(np.nan_to_num(duration) * 1e9).astype(np.int64)
    ends = np.where(np.isnan(duration), np.iinfo(np.int64).max, onset + span)
    return [(int(a), int(b)) for a, b in zip(onset, ends, strict=True)]


@dataclass(frozen=True, slots=True)
class _Part:
    sensor: str
    attribute: str
    path: str


class RemoteSession:
    """A session's Parquet parts behind an fsspec URL (see the module docstring)."""

    def __init__(self, url: str) -> None:
        import fsspec
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        self.url = url.rstrip("/")
        fs, path = fsspec.core.url_to_fs(self.url)
        self._fs = fs
        self._root = str(path).rstrip("/")
        self._pafs = PyFileSystem(FSSpecHandler(fs))
        if not fs.exists(f"{self._root}/cold") and not fs.exists(f"{self._root}/events"):
            raise StorageError(f"no store at {url}", reason="no_store")

    @property
    def session(self) -> SessionInfo:
        """The session's ``session.json``, or an empty :class:`SessionInfo`."""
        try:
            with self._fs.open(f"{self._root}/{session_file.SESSION_FILE}", "r") as f:
                return SessionInfo.from_json(json.load(f))
        except FileNotFoundError:
            return SessionInfo()
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise StorageError(
                f"{session_file.SESSION_FILE} is not a session document: {exc}",
                reason="corrupt_session",
            ) from exc

    def parts(self) -> list[_Part]:
        """The session's sample parts, sorted by sensor, attribute and name."""
        pattern = f"{self._root}/cold/room=*/sensor=*/attribute=*/date=*/part-*.parquet"
        found = []
        for p in sorted(self._fs.glob(pattern)):
            keys = dict(seg.split("=", 1) for seg in str(p).split("/") if "=" in seg)
            found.append(_Part(keys["sensor"], keys["attribute"], str(p)))
        return sorted(found, key=lambda x: (x.sensor, x.attribute, x.path))

    def _kind(self, path: str) -> KindSpec:
        meta = pq.read_schema(path, filesystem=self._pafs).metadata or {}
        info = json.loads(meta.get(b"sensocto", b"{}"))
        return KINDS.get(info.get("kind", "numeric"), KINDS["numeric"])

    def history(
        self,
        *,
        attributes: list[str] | None = None,
        start: int | None = None,
        end: int | None = None,
        condition: str | None = None,
    ) -> xr.Dataset:
        """As ``TieredStore.history(attributes=, start=, end=, condition=)``, from Parquet.

        ``start`` and ``end`` are ns since the epoch, ``[start, end)``.
        """
        spans = None if condition is None else condition_spans(self.events(), condition)
        by_series: dict[tuple[str, str], list[str]] = {}
        for part in self.parts():
            if attributes is None or part.attribute in attributes:
                by_series.setdefault((part.sensor, part.attribute), []).append(part.path)
        sources = [
            SeriesSource(sensor, attr, self._kind(paths[-1]), self._loader(paths, spans))
            for (sensor, attr), paths in by_series.items()
        ]
        sensors = sorted({sensor for sensor, _ in by_series})
        out = build_dataset(sources, sensors, start, end, lazy=False, chunk_samples=2_000_000)
        info = self.session
        who = [info.participant_of(str(x)) or "" for x in out["sensor"].values]
        return out.assign_coords(participant=("sensor", np.array(who, dtype=object)))

    def _loader(self, paths: list[str], spans: list[tuple[int, int]] | None) -> Any:
        def load(start: int | None, end: int | None, with_values: bool) -> tuple[Any, Any]:
            try:
                t = ds.dataset(paths, format="parquet", filesystem=self._pafs).to_table(
                    columns=["ts", "value", "seq"]
                )
            except (OSError, pa.ArrowException) as exc:
                raise StorageError(f"cannot read Parquet parts at {self.url}: {exc}") from exc
            ts = t.column("ts").combine_chunks().cast(pa.int64()).to_numpy()
            col = t.column("value").combine_chunks()
            if isinstance(col.type, pa.FixedSizeListType):
                values = col.flatten().to_numpy().reshape(len(ts), col.type.list_size)
            else:
                values = col.to_numpy()
            seq = t.column("seq").to_numpy()
            keep = np.ones(len(ts), dtype=bool)
            if start is not None:
                keep &= ts >= start
            if end is not None:
                keep &= ts < end
            if spans is not None:
                inside = np.zeros(len(ts), dtype=bool)
                for lo, hi in spans:
                    inside |= (ts >= lo) & (ts < hi)
                keep &= inside
            ts, values, seq = ts[keep], values[keep], seq[keep]
            order = np.lexsort((seq, ts))
            return ts[order], values[order] if with_values else None

        return load

    def events(self) -> pd.DataFrame:
        """As ``TieredStore.events()``, from the Parquet event parts."""
        files = sorted(self._fs.glob(f"{self._root}/events/room=*/date=*/part-*.parquet"))
        if not files:
            return event_log.to_frame(event_log.WAL_SCHEMA.empty_table(), None, None, None, None)
        try:
            found = ds.dataset(
                [str(f) for f in files],
                format="parquet",
                filesystem=self._pafs,
                partitioning=event_log.PARTITIONING,
                partition_base_dir=f"{self._root}/events",
            ).to_table()
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot read the events at {self.url}: {exc}") from exc
        room = found.column("room")
        room = pc.if_else(pc.equal(room, event_log.NO_ROOM), pa.scalar(None, pa.string()), room)
        found = found.drop_columns(["room", "date"]).append_column("room", room)
        found = found.set_column(0, "onset", found.column("onset").cast(pa.int64()))
        table = found.select(event_log.WAL_SCHEMA.names).cast(event_log.WAL_SCHEMA)
        return event_log.to_frame(table, None, None, None, None)
