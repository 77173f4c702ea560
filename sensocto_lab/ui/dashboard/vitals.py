"""What a card says about a participant, computed from recent samples (pure numpy).

- :func:`natural_key` sorts ``sim-lab-2`` before ``sim-lab-10``;
- :func:`breaths_per_minute` counts breaths in a respiration trace;
- :func:`is_flat` tells a detached or dead sensor (a constant trace) from a live one;
- :func:`card_state` is the one table of a card's states, in the order they win:
  disconnected, connecting, stale, flat signal, battery low, live.

No Panel or Bokeh here, so every rule is tested without a browser.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "STATE_STYLE",
    "CardState",
    "Vitals",
    "breaths_per_minute",
    "card_state",
    "is_flat",
    "natural_key",
]

#: Seconds without a new sample after which a card reads "stale".
STALE_S = 5.0
#: Battery percentage below which a card reads "battery low".
LOW_BATTERY_PCT = 20.0
#: A trace whose peak-to-peak over the last FLAT_WINDOW_S is below this reads "flat".
FLAT_PTP = 1e-3
FLAT_WINDOW_S = 5.0
#: Shortest respiration trace a breathing rate is given for, s (two slow breaths).
MIN_BREATH_SPAN_S = 10.0


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key reading runs of digits as numbers: ``p2`` sorts before ``p10``."""
    parts = re.split(r"(\d+)", text)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


def breaths_per_minute(ts_ns: npt.NDArray[np.int64], values: npt.NDArray[Any]) -> float | None:
    """Breaths per minute in a respiration trace, or ``None`` if it is too short or flat.

    Counts upward crossings of the trace's mean with a hysteresis of a quarter of its
    standard deviation (noise near the mean does not count twice), over the span
    between the first and last crossing.

    Parameters
    ----------
    ts_ns
        Sample times, ns, shape ``(n,)``, increasing.
    values
        The respiration signal, shape ``(n,)``.
    """
    y = np.asarray(values, dtype=np.float64).reshape(len(values), -1)[:, 0]
    t = np.asarray(ts_ns, dtype=np.float64) / 1e9
    ok = np.isfinite(y)
    y, t = y[ok], t[ok]
    if len(y) < 4 or t[-1] - t[0] < MIN_BREATH_SPAN_S or is_flat(y):
        return None
    y = y - y.mean()
    band = 0.25 * y.std()
    state = 0  # -1 below the band, +1 above it
    crossings: list[float] = []
    for ti, yi in zip(t, y, strict=True):
        if yi > band:
            if state == -1:
                crossings.append(ti)
            state = 1
        elif yi < -band:
            state = -1
    if len(crossings) < 2:
        return None
    return 60.0 * (len(crossings) - 1) / (crossings[-1] - crossings[0])


def is_flat(values: npt.NDArray[Any], ptp: float = FLAT_PTP) -> bool:
    """Whether a trace is constant (peak-to-peak below ``ptp``); an empty one is not."""
    y = np.asarray(values, dtype=np.float64)
    y = y[np.isfinite(y)]
    return bool(len(y) >= 2 and float(np.ptp(y)) < ptp)


class CardState(enum.Enum):
    """What a card shows about its sensor (see :func:`card_state`)."""

    CONNECTING = "connecting"
    LIVE = "live"
    STALE = "stale"
    FLAT = "flat signal"
    BATTERY_LOW = "battery low"
    DISCONNECTED = "disconnected"


#: Badge colour and card border of each state: each visibly different.
STATE_STYLE: dict[CardState, tuple[str, str]] = {
    CardState.CONNECTING: ("#7f8c8d", "dashed"),
    CardState.LIVE: ("#1e8449", "solid"),
    CardState.STALE: ("#b9770e", "dotted"),
    CardState.FLAT: ("#6c3483", "double"),
    CardState.BATTERY_LOW: ("#c0392b", "solid"),
    CardState.DISCONNECTED: ("#17202a", "dashed"),
}


def card_state(
    *,
    registered: bool,
    last_ns: int | None,
    now_ns: int,
    flat: bool,
    battery: float | None,
    stale_s: float = STALE_S,
    low_battery: float = LOW_BATTERY_PCT,
) -> CardState:
    """A card's state, the first that applies in this order.

    Parameters
    ----------
    registered
        The sensor is known to the engine (else: disconnected).
    last_ns
        Time of its newest sample, ns (``None``: none yet, connecting).
    now_ns
        Now, on the same clock.
    flat
        Its main signal is constant (:func:`is_flat`).
    battery
        Its battery, percent, if it reports one.
    """
    if not registered:
        return CardState.DISCONNECTED
    if last_ns is None:
        return CardState.CONNECTING
    if now_ns - last_ns > stale_s * 1e9:
        return CardState.STALE
    if flat:
        return CardState.FLAT
    if battery is not None and battery < low_battery:
        return CardState.BATTERY_LOW
    return CardState.LIVE


@dataclass(frozen=True, slots=True)
class Vitals:
    """The numbers a card shows; ``None`` where the sensor has not said.

    Attributes
    ----------
    hr_bpm
        Heart rate, beats per minute (newest sample).
    br_per_min
        Breaths per minute (:func:`breaths_per_minute` of the recent respiration).
    battery
        Battery, percent.
    quality
        ``"good"``, ``"flat"`` or ``"no signal"``.
    state
        The card's :class:`CardState`.
    """

    hr_bpm: float | None
    br_per_min: float | None
    battery: float | None
    quality: str
    state: CardState
