"""Running a measure over every session of a study, here or on a Dask cluster.

One task per session: it opens the session from its location (so on a cluster each
worker reads its own session's Parquet and only the measure's rows travel back),
reads each segment (the whole session, or each condition), calls the measure and
turns what it returned into rows (:mod:`.tidy`). Whatever goes wrong stays with its
session: a session that cannot be read, a measure that raises on one segment, a
worker that dies more often than the scheduler allows (``KilledWorker``), each is a
row of the failures table (``session``, ``condition``, ``reason``, ``message``) and
the rest of the study is computed. A worker that dies once is not a failure: the
scheduler runs the task again on another worker.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sensocto_lab.study.source import condition_spans, open_session
from sensocto_lab.study.tidy import to_rows

__all__ = ["FAILURE_COLUMNS", "Task", "measure_name", "run_tasks", "session_rows"]

FAILURE_COLUMNS = ("session", "condition", "reason", "message")
Measure = Callable[[Any], Any]
_FOREVER = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class Task:
    """One session's work: where it is and what to read of it."""

    session: str
    location: str
    attributes: tuple[str, ...] | None
    by_condition: bool


def measure_name(measure: Any, name: str | None = None) -> str:
    """The column a measure's scalar result goes into."""
    if name:
        return name
    text = getattr(measure, "__name__", "")
    return "value" if not text or text.startswith("<") else str(text)


def _failure(session: str, condition: Any, exc: BaseException) -> dict[str, Any]:
    where = traceback.extract_tb(exc.__traceback__)
    last = f" (in {where[-1].name})" if where else ""
    return {
        "session": session,
        "condition": condition,
        "reason": getattr(exc, "reason", None) or type(exc).__name__,
        "message": f"{type(exc).__name__}: {str(exc)[:500]}{last}",
    }


def segments(reader: Any, task: Task) -> list[tuple[str | None, dict[str, Any]]]:
    """Each segment of a session: its condition and the ``history`` arguments reading it.

    Conditions come in order of first onset (``[(None, {})]``: the whole session). A
    condition recorded once is read as its time range (``start``/``end``): the same
    samples as ``condition=``, without reading the events again for each condition.
    """
    if not task.by_condition:
        return [(None, {})]
    ev = reader.events()
    cond = ev[ev["kind"] == "condition"]
    out: list[tuple[str | None, dict[str, Any]]] = []
    for label in dict.fromkeys(cond["label"]):
        spans = condition_spans(ev, label)
        if len(spans) == 1:
            lo, hi = spans[0]
            out.append((label, {"start": lo, "end": None if hi == _FOREVER else hi}))
        else:
            out.append((label, {"condition": label}))
    return out


def session_rows(
    task: Task, measure: Measure, name: str, explicit: bool = False
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Rows of one session and its failures (never raises for the session's own faults)."""
    failures: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    try:
        reader = open_session(task.location)
        labels = segments(reader, task)
    except Exception as exc:
        return pd.DataFrame(), [_failure(task.session, None, exc)]
    if not labels:
        missing = LookupError("the session records no condition")
        return pd.DataFrame(), [_failure(task.session, None, missing)]
    attrs = None if task.attributes is None else list(task.attributes)
    for label, where in labels:
        try:
            ds = reader.history(attributes=attrs, **where)
            who = {}
            if "participant" in ds.coords:
                who = {
                    str(s): str(p)
                    for s, p in zip(ds["sensor"].values, ds["participant"].values, strict=True)
                    if str(p)
                }
            rows = to_rows(measure(ds), name, who, explicit=explicit)
        except Exception as exc:
            failures.append(_failure(task.session, label, exc))
            continue
        rows.insert(0, "condition", label)
        rows.insert(0, "session", task.session)
        frames.append(rows)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out, failures


def run_tasks(
    tasks: Sequence[Task],
    measure: Measure,
    name: str,
    *,
    client: Any = None,
    progress: bool | None = None,
    explicit: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every task; return ``(rows, failures)``, both sorted by session.

    ``client=None`` runs in this process with a tqdm bar; a ``distributed.Client``
    runs one task per session on its workers.
    """
    from sensocto_lab.sync._progress import progress_bar

    results: dict[str, tuple[pd.DataFrame, list[dict[str, Any]]]] = {}
    with progress_bar(len(tasks), "sessions", progress) as bar:
        if client is None:
            for task in tasks:
                results[task.session] = session_rows(task, measure, name, explicit)
                bar.update(1)
        else:
            from distributed import as_completed

            futures = {
                client.submit(session_rows, task, measure, name, explicit, pure=False): task
                for task in tasks
            }
            for future in as_completed(futures):
                task = futures[future]
                try:
                    results[task.session] = future.result()
                except Exception as exc:  # the worker died too often, or was lost
                    reason = "killed_worker" if type(exc).__name__ == "KilledWorker" else None
                    fail = _failure(task.session, None, exc)
                    fail["reason"] = reason or fail["reason"]
                    results[task.session] = (pd.DataFrame(), [fail])
                bar.update(1)
    frames = [results[t.session][0] for t in tasks if not results[t.session][0].empty]
    failures = [f for t in tasks for f in results[t.session][1]]
    rows = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["session", "condition"])
    )
    return rows, pd.DataFrame(failures, columns=list(FAILURE_COLUMNS))
