"""Study-level null distributions: pseudo-pairs across sessions, shifts, phase randomisation.

The statistic is the study mean of a measure over sessions, per condition: each
session's segment is put on its own regular grid (:func:`sensocto_lab.sync.as_signals`),
the measure is applied to it (reduced to one number as :mod:`.tidy` describes, then
averaged over rows) and the sessions' values are averaged. One null draw replaces
every session's group by a group that shares its signals' structure but not their
coupling:

- ``"pseudo_pairs"`` (Moulder et al. 2018, *Psychological Methods* 23:757): a group of
  the same size made of participants of *different* sessions, people who never met,
  each signal from its own segment's start, cut to the shortest;
- ``"shift"``: each participant's signal circularly shifted by its own random lag of
  at least ``min_shift_s``;
- ``"fourier"``: each participant's signal phase-randomised (same amplitude spectrum).

The p-value is ``(1 + #(null >= observed)) / (1 + n)``. The draws (who is paired
with whom, the lags, the seeds) are made up front from ``seed``, so a run on a Dask
cluster gives the same numbers as a serial one; on a cluster each session's segment
is read on a worker and the null draws run where the segments are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from sensocto_lab.errors import ValidationError
from sensocto_lab.study.source import open_session
from sensocto_lab.study.tidy import to_rows
from sensocto_lab.sync import as_signals

__all__ = [
    "NULL_COLUMNS",
    "Meta",
    "Null",
    "Segment",
    "make_draws",
    "meta_of",
    "null_chunk",
    "observed_of",
    "read_segment",
    "scalar_of",
]

Null = Literal["pseudo_pairs", "shift", "fourier"]
NULL_COLUMNS = (
    "condition", "sessions", "observed", "null_mean", "null_sd", "null_q025", "null_q975",
    "p_value", "n", "null", "null_values",
)  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class Segment:
    """One session's condition on a regular grid: ``values`` ``(participants, samples)``."""

    session: str
    values: npt.NDArray[np.float64]
    fs: float
    participants: tuple[str, ...]


def read_segment(location: str, session: str, attribute: str, condition: str | None) -> Segment:
    """Read one session's ``attribute`` in ``condition`` onto its regular grid."""
    reader = open_session(location)
    ds = reader.history(attributes=[attribute], condition=condition)
    sig = as_signals(ds, attribute=attribute)
    names = ds["participant"].values if "participant" in ds.coords else ds["sensor"].values
    who = tuple(str(p) or str(s) for p, s in zip(names, ds["sensor"].values, strict=True))
    return Segment(session, sig.values, float(sig.fs), who)


def to_dataset(
    values: npt.NDArray[np.float64], fs: float, who: Sequence[str], attribute: str
) -> xr.Dataset:
    """A history-like Dataset of a grid: dims ``(sensor, time)``, time from the epoch."""
    time = (np.arange(values.shape[1]) * (1e9 / fs)).round().astype("datetime64[ns]")
    return xr.Dataset(
        {attribute: (("sensor", "time"), values, {"units": "a.u.", "rate_hz": fs})},
        coords={
            "sensor": np.array(list(who), dtype=object),
            "time": time,
            "participant": ("sensor", np.array(list(who), dtype=object)),
        },
    )


def scalar_of(result: Any, name: str) -> float:
    """One number of a measure's result: the mean of its ``name`` column (or only column)."""
    rows = to_rows(result, name)
    keys = {"sensor", "sensor_2", "participant", "participant_2"}
    cols = [name] if name in rows.columns else [c for c in rows.columns if c not in keys]
    if len(cols) != 1:
        raise ValidationError(
            f"a null needs a measure with one value column, got {cols}", reason="not_scalar"
        )
    return float(np.nanmean(rows[cols[0]].to_numpy(dtype=np.float64)))


def observed_of(
    segments: Sequence[Segment], measure: Callable[[Any], Any], name: str, attribute: str
) -> float:
    """The study statistic of the real groups: the mean over sessions of the measure."""
    values = [
        scalar_of(measure(to_dataset(s.values, s.fs, s.participants, attribute)), name)
        for s in segments
    ]
    return float(np.nanmean(values))


def _shifted(v: npt.NDArray[np.float64], lags: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    return np.stack([np.roll(row, int(k)) for row, k in zip(v, lags, strict=True)])


def _fourier(v: npt.NDArray[np.float64], seed: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    out = np.empty_like(v)
    for i, row in enumerate(v):
        gaps = np.isnan(row)
        mean = float(np.nanmean(row))
        spec = np.fft.rfft(np.where(gaps, mean, row) - mean)
        phase = np.asarray(rng.uniform(0, 2 * np.pi, spec.shape[0]), dtype=np.float64)
        phase[0] = 0.0
        if row.shape[0] % 2 == 0:
            phase[-1] = 0.0
        out[i] = np.fft.irfft(np.abs(spec) * np.exp(1j * phase), n=row.shape[0]) + mean
        out[i, gaps] = np.nan
    return out


def null_chunk(
    segments: Sequence[Segment],
    draws: Sequence[Any],
    null: Null,
    measure: Callable[[Any], Any],
    name: str,
    attribute: str,
) -> list[float]:
    """The study statistic of each draw (see :func:`make_draws` for what a draw is)."""
    out = []
    for draw in draws:
        values = []
        for k, seg in enumerate(segments):
            if null == "pseudo_pairs":
                picks = draw[k]
                length = min(segments[s].values.shape[1] for s, _ in picks)
                v = np.stack([segments[s].values[p, :length] for s, p in picks])
                who = [f"{segments[s].session}/{segments[s].participants[p]}" for s, p in picks]
            elif null == "shift":
                v, who = _shifted(seg.values, draw[k]), list(seg.participants)
            else:
                v, who = _fourier(seg.values, int(draw[k])), list(seg.participants)
            values.append(scalar_of(measure(to_dataset(v, seg.fs, who, attribute)), name))
        out.append(float(np.nanmean(values)))
    return out


def meta_of(segment: Segment) -> Meta:
    """What a draw needs to know of a segment: session, participants, samples, rate (Hz)."""
    return Meta(segment.session, len(segment.participants), segment.values.shape[1], segment.fs)


@dataclass(frozen=True, slots=True)
class Meta:
    """The shape of a :class:`Segment` (what :func:`make_draws` needs; small to ship)."""

    session: str
    participants: int
    samples: int
    fs: float


def make_draws(
    metas: Sequence[Meta], null: Null, n: int, rng: np.random.Generator, min_shift_s: float
) -> list[Any]:
    """``n`` draws: per session, who (pseudo-pairs), lags (shift) or a seed (fourier).

    Raises
    ------
    ValidationError
        Too few sessions for pseudo-groups of a session's size
        (``reason="too_few_sessions"``), a segment too short for the shifts
        (``reason="recording_too_short"``), or sessions sampled at different rates
        (``reason="mixed_rates"``).
    """
    rates = sorted({m.fs for m in metas})
    if len(rates) > 1:
        raise ValidationError(
            f"sessions are on different grids ({rates} Hz); resample them to one rate first",
            reason="mixed_rates",
        )
    draws: list[Any] = []
    if null == "pseudo_pairs":
        biggest = max(m.participants for m in metas)
        if biggest > len(metas) - 1:
            raise ValidationError(
                f"pseudo-groups of {biggest} people from different sessions need at least "
                f"{biggest + 1} sessions, the study has {len(metas)}",
                reason="too_few_sessions",
            )
        for _ in range(n):
            draw = []
            for k, m in enumerate(metas):
                others = [j for j in range(len(metas)) if j != k]
                chosen = rng.choice(others, size=m.participants, replace=False)
                draw.append([(int(j), int(rng.integers(metas[j].participants))) for j in chosen])
            draws.append(draw)
    elif null == "shift":
        lows = [int(np.ceil(min_shift_s * m.fs)) for m in metas]
        for m, lo in zip(metas, lows, strict=True):
            if m.samples - 2 * lo < 1:
                raise ValidationError(
                    f"{m.session}: {m.samples / m.fs:g} s is too short for shifts of at least "
                    f"{min_shift_s:g} s",
                    reason="recording_too_short",
                )
        for _ in range(n):
            draws.append(
                [
                    rng.integers(lo, m.samples - lo, size=m.participants, endpoint=True)
                    for m, lo in zip(metas, lows, strict=True)
                ]
            )
    elif null == "fourier":
        draws = [rng.integers(0, 2**63 - 1, size=len(metas)) for _ in range(n)]
    else:
        raise ValidationError(
            f"null must be 'pseudo_pairs', 'shift' or 'fourier', got {null!r:.40}",
            reason="invalid_parameter",
        )
    return draws


def summarise(
    condition: Any, observed: float, null_values: npt.NDArray[np.float64], null: str, sessions: int
) -> dict[str, Any]:
    """One result row (columns :data:`NULL_COLUMNS`)."""
    finite = null_values[np.isfinite(null_values)]
    return {
        "condition": condition,
        "sessions": sessions,
        "observed": observed,
        "null_mean": float(np.mean(finite)) if finite.size else np.nan,
        "null_sd": float(np.std(finite, ddof=1)) if finite.size > 1 else np.nan,
        "null_q025": float(np.quantile(finite, 0.025)) if finite.size else np.nan,
        "null_q975": float(np.quantile(finite, 0.975)) if finite.size else np.nan,
        "p_value": float((1 + np.sum(finite >= observed)) / (1 + null_values.size)),
        "n": int(null_values.size),
        "null": null,
        "null_values": null_values,
    }


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The table :meth:`sensocto_lab.study.Study.surrogate_test` returns."""
    return pd.DataFrame(rows, columns=list(NULL_COLUMNS))
