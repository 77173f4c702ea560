"""What the LSL pieces share: stream listing, channel formats, descriptions, the clock map.

Lab Streaming Layer (pylsl over liblsl) is discovered by multicast; where it must stay
on one machine, liblsl reads the file named by the ``LSLAPICFG`` environment variable
(``ResolveScope = machine``, as ``bench/lsl_api.cfg``) when it first loads, so set it
before the first LSL call. pylsl is imported only inside the functions here and in
:mod:`~sensocto_lab.sources.lsl.inlet` / :mod:`~sensocto_lab.sources.lsl.outlet`.

LSL stamps samples with ``local_clock()`` (monotonic seconds of the machine that
pushed them; an inlet's ``time_correction()`` maps them onto this machine's). The
engine's clock is ns since the epoch. :class:`ClockMap` is the one conversion: it
measures ``engine.clock.time_ns() − local_clock()`` once and keeps it, so every
stamp converts with the same offset and the mapping can be redone offline from the
stored ``epoch_offset_ns`` and ``lsl_offset`` samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    import pylsl

__all__ = ["FORMAT_NAMES", "ClockMap", "channel_desc", "format_name", "streams"]

#: liblsl channel format codes → names (``pylsl.cf_*``).
FORMAT_NAMES: dict[int, str] = {
    1: "float32",
    2: "double64",
    3: "string",
    4: "int32",
    5: "int16",
    6: "int8",
    7: "int64",
}
#: numpy dtypes of the numeric formats.
DTYPES: dict[str, str] = {
    "float32": "float32",
    "double64": "float64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "int64": "int64",
}


def format_name(code: int) -> str:
    """The channel format's name (``"float32"``, ``"string"``, ...), or ``"undefined"``."""
    return FORMAT_NAMES.get(int(code), "undefined")


def streams(timeout: float = 1.0) -> pd.DataFrame:
    """The LSL streams visible now, one row each.

    Parameters
    ----------
    timeout
        How long to listen for streams, s.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``type``, ``source_id``, ``channels``, ``rate`` (Hz, 0 for
        irregular), ``format``, ``host`` and ``uid``, sorted by name.
    """
    import pylsl

    rows = [
        {
            "name": info.name(),
            "type": info.type(),
            "source_id": info.source_id(),
            "channels": info.channel_count(),
            "rate": info.nominal_srate(),
            "format": format_name(info.channel_format()),
            "host": info.hostname(),
            "uid": info.uid(),
        }
        for info in pylsl.resolve_streams(wait_time=timeout)
    ]
    columns = ["name", "type", "source_id", "channels", "rate", "format", "host", "uid"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["name", "source_id"], ignore_index=True)


def channel_desc(info: pylsl.StreamInfo) -> list[tuple[str, str]]:
    """``(label, unit)`` per channel from ``desc/channels/channel``; ``ch{i}`` / '' without."""
    n = info.channel_count()
    out = [(f"ch{i}", "") for i in range(n)]
    channel = info.desc().child("channels").child("channel")
    for i in range(n):
        if channel.empty():
            break
        label = channel.child_value("label").strip() or f"ch{i}"
        out[i] = (label, channel.child_value("unit").strip())
        channel = channel.next_sibling("channel")
    return out


def set_channel_desc(info: pylsl.StreamInfo, labels: list[str], units: list[str]) -> None:
    """Write ``desc/channels/channel`` (label, unit, type) into an outlet's info."""
    channels = info.desc().append_child("channels")
    for label, unit in zip(labels, units, strict=True):
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)


@dataclass(frozen=True, slots=True)
class ClockMap:
    """LSL ``local_clock()`` seconds ↔ engine ns since the epoch (module docstring).

    Attributes
    ----------
    epoch_offset_ns
        ``engine time − local_clock()``, ns.
    """

    epoch_offset_ns: int

    @classmethod
    def measure(cls, now_ns: Callable[[], int]) -> ClockMap:
        """Measure the offset (best of 5 reads, the one bracketed most tightly)."""
        import pylsl

        best: tuple[float, int] | None = None
        for _ in range(5):
            a = pylsl.local_clock()
            engine = now_ns()
            b = pylsl.local_clock()
            offset = engine - round((a + b) / 2 * 1e9)
            if best is None or b - a < best[0]:
                best = (b - a, offset)
        assert best is not None
        return cls(best[1])

    def to_ns(self, lsl_s: npt.NDArray[np.float64], correction_s: float = 0.0) -> Any:
        """LSL stamps (s, on the sender's clock) plus ``correction_s`` → int64 engine ns."""
        local = np.asarray(lsl_s, dtype=np.float64) + correction_s
        return self.epoch_offset_ns + np.round(local * 1e9).astype(np.int64)

    def to_lsl(self, ts_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Engine ns → LSL ``local_clock()`` seconds on this machine."""
        return (np.asarray(ts_ns, dtype=np.int64) - self.epoch_offset_ns) / 1e9
