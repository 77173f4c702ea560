"""``Study``: many sessions analysed as one (``docs/study.md``).

``Study.open(root)`` catalogues the sessions under a root (:mod:`.catalogue`);
``apply`` runs a measure over every session or condition (:mod:`.run`), here or on a
Dask cluster; ``surrogate_test`` tests the study against pseudo-pairs, shifts or
phase randomisation (:mod:`.nulls`). Nothing is read until asked for, and sessions
are read one at a time (serially) or on the workers (with a client), so the memory
of the calling process does not grow with the size of the study.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from sensocto_lab.errors import ValidationError
from sensocto_lab.study import nulls
from sensocto_lab.study.catalogue import Catalogue, SessionRef, catalogue, summary
from sensocto_lab.study.run import FAILURE_COLUMNS, Task, measure_name, run_tasks
from sensocto_lab.study.source import open_session
from sensocto_lab.sync import synchrony

__all__ = ["Study"]

Measure = Callable[[Any], Any]
_BY = ("session", "condition")


def _by_condition(by: str | Sequence[str]) -> bool:
    keys = (by,) if isinstance(by, str) else tuple(by)
    unknown = sorted(set(keys) - set(_BY))
    if unknown:
        raise ValidationError(
            f"by must name 'session' and/or 'condition', got {unknown}", reason="invalid_by"
        )
    return "condition" in keys


class Study:
    """The sessions of a study and the analyses over them.

    Make one with :meth:`open`. Tables are pandas DataFrames; ``session`` is each
    session's id in the study (its directory relative to the root).

    Attributes
    ----------
    failures
        The failures of the last :meth:`apply` or :meth:`surrogate_test`
        (``session``, ``condition``, ``reason``, ``message``); empty when all ran.
    """

    def __init__(self, found: Catalogue) -> None:
        self._cat = found
        self.failures = pd.DataFrame(columns=list(FAILURE_COLUMNS))

    @classmethod
    def open(cls, root_or_urls: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> Study:
        """Catalogue a study: every data directory under a root, or an explicit list.

        Parameters
        ----------
        root_or_urls
            A directory holding sessions at any depth (each found by its
            ``session.json``), or a list of session directories; local paths or fsspec
            URLs (``s3://bucket/study``, ``memory://study``). Nothing is copied.

        Returns
        -------
        Study
            With :attr:`problems` listing what could not be catalogued.
        """
        return cls(catalogue(root_or_urls))

    def __repr__(self) -> str:
        return f"<Study {len(self._cat.sessions)} sessions, {len(self._cat.problems)} problems>"

    def __len__(self) -> int:
        return len(self._cat.sessions)

    # -- the catalogue -------------------------------------------------------------------

    @property
    def refs(self) -> list[SessionRef]:
        """The sessions, sorted by id."""
        return list(self._cat.sessions)

    @property
    def problems(self) -> pd.DataFrame:
        """What could not be catalogued or read (``session``, ``path``, ``reason``, ``message``).

        Reasons: ``missing_session_json``, ``corrupt_session``, ``duplicate_name`` (both
        sessions are kept), ``unreadable_parquet`` (after :meth:`summary`).
        """
        return pd.DataFrame(self._cat.problems, columns=["session", "path", "reason", "message"])

    @cached_property
    def sessions(self) -> pd.DataFrame:
        """One row per session: ``session``, ``name``, ``path``, ``start``, ``end`` (UTC),
        ``rooms``, ``notes``, ``software_version``."""

        def stamp(ns: int | None) -> pd.Timestamp:
            return pd.NaT if ns is None else pd.Timestamp(ns, unit="ns", tz="UTC")

        rows = [
            {
                "session": r.session,
                "name": r.info.name,
                "path": r.location,
                "start": stamp(r.info.start_ns),
                "end": stamp(r.info.end_ns),
                "rooms": list(r.info.rooms),
                "notes": r.info.notes,
                "software_version": r.info.software_version,
            }
            for r in self._cat.sessions
        ]
        cols = ["session", "name", "path", "start", "end", "rooms", "notes", "software_version"]
        return pd.DataFrame(rows, columns=cols)

    @cached_property
    def participants(self) -> pd.DataFrame:
        """One row per (session, participant, sensor): ``role`` as in ``session.json``."""
        rows = [
            {"session": r.session, "participant": p, "sensor": s, "role": role}
            for r in self._cat.sessions
            for p, sensors in r.info.participants.items()
            for s, role in sensors.items()
        ]
        return pd.DataFrame(rows, columns=["session", "participant", "sensor", "role"])

    @cached_property
    def events(self) -> pd.DataFrame:
        """Every session's events (``TieredStore.events()`` columns) with a ``session`` column.

        Read session by session; one that cannot be read is a problem, not an error.
        """
        frames = []
        for r in self._cat.sessions:
            try:
                ev = open_session(r.location).events()
            except Exception as exc:
                self._cat.problem(r.session, r.location, "unreadable_events", str(exc)[:300])
                continue
            ev.insert(0, "session", r.session)
            frames.append(ev)
        if not frames:
            return pd.DataFrame(columns=["session", "onset", "duration", "label", "kind"])
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per session: ``participants``, ``sensors``, ``attributes``, ``duration_s`` (s),
        ``samples`` (compacted samples of every series) and ``conditions``.

        One DuckDB query over the hive layout of every local session (pyarrow on an
        fsspec filesystem for URLs); a session with an unreadable Parquet file gets NaN
        counts and a row in :attr:`problems`.
        """
        return summary(self._cat)

    # -- analyses ------------------------------------------------------------------------

    def _tasks(self, attributes: Sequence[str] | None, by_condition: bool) -> list[Task]:
        attrs = None if attributes is None else tuple(attributes)
        return [Task(r.session, r.location, attrs, by_condition) for r in self._cat.sessions]

    def apply(
        self,
        measure: Measure,
        by: str | Sequence[str] = _BY,
        attributes: Sequence[str] | None = None,
        client: Any = None,
        *,
        name: str | None = None,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Run ``measure`` on each session's (or each condition's) history; one tidy table.

        Parameters
        ----------
        measure
            A function of one segment's ``xarray.Dataset`` (``store.history`` output,
            with its ``participant`` coordinate): ``sync.synchrony``, or your own. What
            it returns is reduced to rows as :mod:`sensocto_lab.study.tidy` documents
            (a number, dict, Series, DataFrame, DataArray or Dataset).
        by
            ``("session", "condition")`` (default): a segment per recorded condition;
            ``"session"``: the whole session (``condition`` is None).
        attributes
            Attributes to read (``None``: all); read fewer for speed.
        client
            ``None``: run here, one session after another, with a tqdm bar. A
            ``distributed.Client``: a task per session on its workers, each reading its
            own session, so no data passes through this process.
        name
            Column of a scalar result (default: the function's name, ``value`` for a
            lambda).
        progress
            Show the bar (``None``: only in a notebook).

        Returns
        -------
        pandas.DataFrame
            ``session``, ``condition``, then ``sensor``/``participant`` (per-person
            results) or ``sensor``, ``sensor_2``, ``participant``, ``participant_2``
            (per pair) where the measure gives them, then the measure's columns;
            sorted by session, conditions in recorded order. Failures are in
            :attr:`failures` and ``result.attrs["failures"]`` (a list of records).
        """
        tasks = self._tasks(attributes, _by_condition(by))
        rows, failures = run_tasks(
            tasks,
            measure,
            measure_name(measure, name),
            client=client,
            progress=progress,
            explicit=name is not None,
        )
        self.failures = failures
        rows.attrs["failures"] = failures.to_dict("records")
        return rows

    def surrogate_test(
        self,
        measure: Measure = synchrony,
        null: nulls.Null = "pseudo_pairs",
        n: int = 99,
        *,
        attribute: str = "respiration",
        by: str | Sequence[str] = _BY,
        seed: int | None = 0,
        min_shift_s: float = 10.0,
        client: Any = None,
        name: str | None = None,
    ) -> pd.DataFrame:
        """Test the study mean of ``measure`` against a study-level null, per condition.

        Parameters
        ----------
        measure
            A function of a segment's Dataset reduced to one number per session (its
            rows are averaged); default ``sync.synchrony`` (mean Kuramoto ``R``).
        null
            ``"pseudo_pairs"`` (groups of people from different sessions),
            ``"shift"`` (circular shifts per person) or ``"fourier"`` (phase
            randomisation per person); see :mod:`sensocto_lab.study.nulls`.
        n
            Null draws (99 gives p-values in steps of 0.01).
        attribute
            The signal the measure reads (sessions are put on its regular grid).
        by
            As for :meth:`apply`.
        seed
            Seed of the draws: the same seed gives the same table, here or on a cluster.
        min_shift_s
            Smallest lag of ``"shift"``, s.
        client
            As for :meth:`apply`.
        name
            As for :meth:`apply`.

        Returns
        -------
        pandas.DataFrame
            Per condition: ``sessions``, ``observed``, ``null_mean``, ``null_sd``,
            ``null_q025``, ``null_q975``, ``p_value``, ``n``, ``null`` and
            ``null_values`` (the draws, an array). Sessions that could not be read
            for a condition are left out of it and listed in :attr:`failures`.
        """
        if n < 1:
            raise ValidationError(f"n must be >= 1, got {n}", reason="invalid_parameter")
        col = measure_name(measure, name)
        rng = np.random.default_rng(seed)
        conditions: list[str | None] = [None]
        if _by_condition(by):
            conditions = list(dict.fromkeys(c for cs in self.summary()["conditions"] for c in cs))
        failures: list[dict[str, Any]] = []
        rows = []
        for cond in conditions:
            segs, metas = self._segments(attribute, cond, client, failures)
            if len(segs) < 2:
                failures.append(
                    {"session": None, "condition": cond, "reason": "too_few_sessions",
                     "message": f"{len(segs)} readable session(s) in {cond!r}"}
                )  # fmt: skip
                continue
            draws = nulls.make_draws(metas, null, n, rng, min_shift_s)
            args = (measure, col, attribute)
            if client is None:
                observed = nulls.observed_of(segs, *args)
                values = nulls.null_chunk(segs, draws, null, *args)
            else:
                size = max(1, -(-n // (4 * max(1, len(client.nthreads())))))
                obs = client.submit(nulls.observed_of, segs, *args, pure=False)
                chunks = [
                    client.submit(nulls.null_chunk, segs, draws[i : i + size], null, *args,
                                  pure=False)
                    for i in range(0, n, size)
                ]  # fmt: skip
                observed = obs.result()
                values = [v for part in client.gather(chunks) for v in part]
            rows.append(
                nulls.summarise(cond, observed, np.asarray(values, float), null, len(metas))
            )
        self.failures = pd.DataFrame(failures, columns=list(FAILURE_COLUMNS))
        return nulls.frame(rows)

    def _segments(
        self, attribute: str, cond: str | None, client: Any, failures: list[dict[str, Any]]
    ) -> tuple[list[Any], list[nulls.Meta]]:
        """Each session's segment (local objects, or futures on the cluster) and its shape."""
        refs = self._cat.sessions
        segs: list[Any] = []
        metas: list[nulls.Meta] = []
        if client is None:
            for r in refs:
                try:
                    seg = nulls.read_segment(r.location, r.session, attribute, cond)
                except Exception as exc:
                    failures.append(_fail(r.session, cond, exc))
                    continue
                segs.append(seg)
                metas.append(nulls.meta_of(seg))
            return segs, metas
        futures = [
            client.submit(nulls.read_segment, r.location, r.session, attribute, cond, pure=False)
            for r in refs
        ]
        shapes = [client.submit(nulls.meta_of, f, pure=False) for f in futures]
        for r, f, m in zip(refs, futures, shapes, strict=True):
            try:
                metas.append(m.result())
            except Exception as exc:
                failures.append(_fail(r.session, cond, exc))
                continue
            segs.append(f)
        return segs, metas


def _fail(session: str, condition: Any, exc: BaseException) -> dict[str, Any]:
    return {
        "session": session,
        "condition": condition,
        "reason": getattr(exc, "reason", None) or type(exc).__name__,
        "message": f"{type(exc).__name__}: {str(exc)[:500]}",
    }
