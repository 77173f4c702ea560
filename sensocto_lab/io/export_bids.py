"""A data directory written as BIDS physiological data (one folder per participant).

Layout (BIDS 1.10, ``beh`` datatype; labels keep only letters and digits)::

    dataset_description.json, participants.tsv
    sub-<p>/beh/sub-<p>_task-<t>_recording-<attr>_physio.tsv.gz      regular series
    sub-<p>/beh/sub-<p>_task-<t>_recording-<attr>_physio.json
    sub-<p>/beh/sub-<p>_task-<t>_recording-<attr>_physioevents.tsv.gz   irregular series
    sub-<p>/beh/sub-<p>_task-<t>_recording-<attr>_physioevents.json
    sub-<p>/beh/sub-<p>_task-<t>_events.tsv (+ .json)

Participants are those of ``store.session`` (who wore which sensor); a sensor nobody
was assigned to is its own participant. One physio file holds one attribute at one
sampling rate (``SamplingFrequency``): its columns are that attribute of each of the
participant's sensors (one per component for vectors), placed on the rate's grid from
the file's first sample, ``n/a`` where a sensor had no sample. Irregular series (RR,
heart-rate notifications, buttons: :mod:`sensocto_lab.io.series`) are not resampled:
they go to ``physioevents`` files, one row per sample with its ``onset``. Every time
(``StartTime``, ``onset``) is in seconds from the export's zero, the earliest sample
or event exported, which each sidecar also gives as ``"sensocto_lab": {"t0": ...}``.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sensocto_lab.errors import ConfigError
from sensocto_lab.io.series import Series, grid, load_series

__all__ = ["BidsExport", "bids_label", "to_bids"]

BIDS_VERSION = "1.10.0"


def bids_label(text: str, fallback: str = "x") -> str:
    """``text`` with everything but ASCII letters and digits removed (a BIDS label)."""
    return re.sub(r"[^A-Za-z0-9]", "", text) or fallback


@dataclass(frozen=True, slots=True)
class BidsExport:
    """What :func:`to_bids` wrote: the dataset's root, its files and participants."""

    root: Path
    files: tuple[Path, ...]
    participants: dict[str, tuple[str, ...]]


def _iso(ns: int) -> str:
    return str(np.datetime64(ns, "ns")) + "Z"


def _write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


def _who(series: list[Series], participants: dict[str, dict[str, Any]]) -> dict[str, str]:
    """sensor → BIDS participant label (unique)."""
    owner: dict[str, str] = {}
    for p, sensors in participants.items():
        for sensor in sensors:
            owner[sensor] = p
    names: dict[str, str] = {}
    labels: dict[str, str] = {}
    for sensor in sorted({s.sensor for s in series}):
        name = owner.get(sensor, sensor)
        if name not in labels:
            label = bids_label(name, "anon")
            while label in labels.values():
                label += "x"
            labels[name] = label
        names[sensor] = labels[name]
    return names


def to_bids(
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    room: str | None = None,
    *,
    task: str = "rest",
    sensors: list[str] | None = None,
) -> BidsExport:
    """Write the recorded series and events of ``data_dir`` as a BIDS dataset in ``out``.

    Parameters
    ----------
    data_dir
        A data directory (read-only; an engine may still be recording into it).
    out
        The dataset's root folder (created; files already there are overwritten).
    room, sensors
        Only these (``None``: all).
    task
        The BIDS task label (letters and digits).

    Returns
    -------
    BidsExport
        Every file written and each participant's sensors. See the module docstring
        for the layout and what happens to irregular series.
    """
    if bids_label(task, "") != task:
        raise ConfigError(f"a BIDS task label is letters and digits only, got {task!r}")
    series, events, session = load_series(data_dir, room, sensors)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    who = _who(series, {p: dict(s) for p, s in session.participants.items()})
    t0 = min(int(s.ts[0]) for s in series)
    if len(events):
        t0 = min(t0, int(events["onset"].min().value))
    files: list[Path] = []
    stamp = {"sensocto_lab": {"t0": _iso(t0), "t0_ns": t0}}

    groups: dict[tuple[str, str, bool, float], list[Series]] = defaultdict(list)
    for s in series:
        groups[(who[s.sensor], s.attribute, s.regular, s.rate_hz)].append(s)
    used: dict[tuple[str, str], int] = defaultdict(int)
    for (sub, attr, regular, rate), members in sorted(groups.items()):
        folder = root / f"sub-{sub}" / "beh"
        folder.mkdir(parents=True, exist_ok=True)
        rec = bids_label(attr, "signal")
        suffix = "physio" if regular else "physioevents"
        used[(sub, rec + suffix)] += 1
        if used[(sub, rec + suffix)] > 1:
            rec += f"{round(rate)}Hz"
        stem = f"sub-{sub}_task-{task}_recording-{rec}_{suffix}"
        multi = len(members) > 1
        cols = [f"{m.sensor}_{c}" if multi else c for m in members for c in m.columns]
        units = {
            c: {"Units": m.unit}
            for m in members
            for c in ([f"{m.sensor}_{x}" if multi else x for x in m.columns])
        }
        sidecar: dict[str, Any] = {}
        if regular:
            start = min(int(m.ts[0]) for m in members)
            end = max(int(m.ts[-1]) for m in members)
            n = round((end - start) * rate / 1e9) + 1
            table = np.hstack([grid(m.ts, m.values, rate, start, n) for m in members])
            frame = pd.DataFrame(table, columns=cols)
            sidecar = {"SamplingFrequency": rate, "StartTime": (start - t0) / 1e9, "Columns": cols}
        else:
            onset = np.concatenate([m.ts for m in members])
            rows = np.full((len(onset), len(cols)), np.nan)
            at = 0
            col = 0
            for m in members:
                rows[at : at + len(m.ts), col : col + m.values.shape[1]] = m.values
                at += len(m.ts)
                col += m.values.shape[1]
            order = np.argsort(onset, kind="stable")
            frame = pd.DataFrame(rows[order], columns=cols)
            frame.insert(0, "onset", (onset[order] - t0) / 1e9)
            cols = ["onset", *cols]
            units["onset"] = {"Units": "s", "Description": "seconds from t0"}
            sidecar = {"Columns": cols}
        sidecar.update(units)
        sidecar["Description"] = f"{attr} of {', '.join(m.sensor for m in members)}" + (
            "" if regular else " as recorded (irregular, not resampled)"
        )
        sidecar.update(stamp)
        tsv = folder / f"{stem}.tsv.gz"
        frame.to_csv(tsv, sep="\t", header=False, index=False, na_rep="n/a", compression="gzip")
        files += [tsv, _write_json(folder / f"{stem}.json", sidecar)]

    participants: dict[str, list[str]] = defaultdict(list)
    for sensor, sub in who.items():
        participants[sub].append(sensor)
    for sub, owned in participants.items():
        files += _events(root / f"sub-{sub}" / "beh", sub, task, owned, events, t0)
    files.append(
        _write_json(
            root / "dataset_description.json",
            {
                "Name": session.name or "sensocto_lab recording",
                "BIDSVersion": BIDS_VERSION,
                "DatasetType": "raw",
                "GeneratedBy": [{"Name": "sensocto_lab"}],
            },
        )
    )
    part = pd.DataFrame({"participant_id": [f"sub-{p}" for p in sorted(participants)]})
    part.to_csv(root / "participants.tsv", sep="\t", index=False)
    files.append(root / "participants.tsv")
    return BidsExport(root, tuple(files), {p: tuple(s) for p, s in participants.items()})


def _events(
    folder: Path, sub: str, task: str, owned: list[str], events: pd.DataFrame, t0: int
) -> list[Path]:
    """The participant's ``_events.tsv`` (+ ``.json``): events of the room and of its sensors."""
    if len(events):
        mine = events["sensor"].isna() | events["sensor"].isin(owned)
        rows = events[mine]
    else:
        rows = events
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "onset": [(t.value - t0) / 1e9 for t in rows["onset"]] if len(rows) else [],
            "duration": list(rows["duration"]) if len(rows) else [],
            "trial_type": list(rows["label"]) if len(rows) else [],
            "kind": list(rows["kind"]) if len(rows) else [],
            "value": [
                "n/a" if v is None else json.dumps(v, ensure_ascii=False) for v in rows["value"]
            ]
            if len(rows)
            else [],
        }
    )
    stem = folder / f"sub-{sub}_task-{task}_events"
    table.to_csv(f"{stem}.tsv", sep="\t", index=False, na_rep="n/a")
    doc = {
        "onset": {"Units": "s", "Description": "seconds from t0"},
        "duration": {"Units": "s", "Description": "n/a while a condition is still running"},
        "trial_type": {"Description": "the event's label"},
        "kind": {"Description": "marker, condition or novelty"},
        "value": {"Description": "the event's JSON value"},
    }
    return [Path(f"{stem}.tsv"), _write_json(Path(f"{stem}.json"), doc)]
