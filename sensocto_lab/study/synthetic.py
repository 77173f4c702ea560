"""Small simulated studies on disk: data directories with a protocol of conditions.

For tests, benchmarks and the study notebook. Each session is an ordinary data
directory (``docs/storage.md``): respiration of a few participants written through
:meth:`TieredStore.append <sensocto_lab.storage.tiered.TieredStore.append>`, one
condition event per protocol step through ``append_events``, and the participants in
``session.json``. Breathing comes from :func:`sensocto_lab.sync.oscillator_group`
(a noisy Kuramoto group at a chosen coupling per condition), not from the engine's
``GroupSimulator``: ``study`` sits below ``sources`` in the layer table
(``docs/architecture.md``), and a protocol of a few minutes is written in milliseconds
this way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sensocto_lab.clock import FakeClock
from sensocto_lab.events import Event
from sensocto_lab.model import KINDS, Batch
from sensocto_lab.storage.config import StorageConfig
from sensocto_lab.storage.tiered import TieredStore
from sensocto_lab.sync import oscillator_group

__all__ = ["DEFAULT_PROTOCOL", "STUDY_START_NS", "write_session", "write_study"]

#: ``(condition, seconds, coupling K in rad/s)``: a baseline without coupling, a coupled task.
DEFAULT_PROTOCOL: tuple[tuple[str, float, float], ...] = (
    ("baseline", 60.0, 0.0),
    ("task", 60.0, 4.0),
)
#: 2026-01-05 09:00 UTC, ns: the first session's start.
STUDY_START_NS = 1_767_603_600 * 10**9


def write_session(
    data_dir: str | os.PathLike[str],
    *,
    name: str,
    participants: int = 4,
    protocol: Sequence[tuple[str, float, float]] = DEFAULT_PROTOCOL,
    fs: float = 10.0,
    seed: int = 0,
    start_ns: int = STUDY_START_NS,
    room: str = "lab",
) -> Path:
    """Record one simulated session into ``data_dir`` (created; must not hold a store).

    Parameters
    ----------
    data_dir
        The session's data directory.
    name
        The session's name in ``session.json``; participants are ``{name}-p{i}`` and
        sensors ``s{i}``.
    participants
        Group size.
    protocol
        ``(condition, duration in s, coupling K in rad/s)`` in order, back to back.
    fs
        Respiration sampling rate, Hz.
    seed
        Seed of the group's randomness.
    start_ns
        Session start, ns since the epoch (UTC).
    room
        Room of the sensors and conditions.

    Returns
    -------
    pathlib.Path
        ``data_dir``.
    """
    path = Path(data_dir)
    rng = np.random.default_rng(seed)
    kind = KINDS["respiration"]
    config = StorageConfig(background=False)
    sensors = [f"s{i}" for i in range(participants)]
    with TieredStore.open(path, config=config, clock=FakeClock(start_ns)) as store:
        store.update_session(name=name)
        for i, sensor in enumerate(sensors):
            store.assign_participant(sensor, f"{name}-p{i}")
        t0 = start_ns
        seq = 0
        events = []
        for label, seconds, coupling in protocol:
            group = oscillator_group(participants, seconds, fs, coupling=coupling, seed=rng)
            steps = group.signals.shape[1]
            ts = t0 + np.round(np.arange(steps) * 1e9 / fs).astype(np.int64)
            for i, sensor in enumerate(sensors):
                batch = Batch(sensor, "respiration", ts, group.signals[i].astype(np.float32))
                store.append(batch.stamped(int(ts[-1]), seq), room=room, kind=kind)
                seq += steps
            events.append(
                Event(t0, label, "condition", float(seconds), room=room, source="protocol")
            )
            t0 += round(seconds * 1e9)
        store.append_events(events)
        store.update_session(end=t0)
    return path


def write_study(
    root: str | os.PathLike[str],
    sessions: int = 12,
    *,
    participants: int = 4,
    protocol: Sequence[tuple[str, float, float]] = DEFAULT_PROTOCOL,
    fs: float = 10.0,
    seed: int = 0,
) -> list[Path]:
    """Record ``sessions`` simulated sessions as ``{root}/session-{k:03d}``, a day apart.

    Parameters are as for :func:`write_session`; session ``k`` is seeded ``seed + k``.

    Returns
    -------
    list of pathlib.Path
        The sessions' data directories.
    """
    base = Path(root)
    return [
        write_session(
            base / f"session-{k:03d}",
            name=f"session-{k:03d}",
            participants=participants,
            protocol=protocol,
            fs=fs,
            seed=seed + k,
            start_ns=STUDY_START_NS + k * 86_400 * 10**9,
        )
        for k in range(sessions)
    ]
