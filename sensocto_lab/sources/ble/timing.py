"""Pure timing policy of BLE capture: the RR beat clock and the PMD device clock.

See :mod:`sensocto_lab.sources.ble.capture` for how each attribute is stamped.
"""

from __future__ import annotations

import collections

import numpy as np
import numpy.typing as npt

from sensocto_lab.protocol import pmd

__all__ = ["DeviceClock", "RrTimeline"]


class RrTimeline:
    """Stamps RR intervals on a continuous beat clock (see the module docstring).

    Beats are placed by their durations on a relative clock; an offset maps it to
    wall time. A beat cannot end after the notification that reports it arrives, so
    each arrival is an upper bound on the offset: it starts at the first arrival and
    is tightened whenever a notification shows it was too late (that one interval is
    then stamped short). Lost notifications leave the clock behind: when every one
    of the last ``window`` notifications ended more than ``max_slack_ns`` before its
    arrival, or one ended more than ``max_lag_ns`` before, the offset is raised.

    Parameters
    ----------
    max_lag_ns
        Re-anchor at once when the newest beat lies this far before arrival (default
        3 s: notifications come about once a second, a beat at 30 bpm is 2 s long).
    window, max_slack_ns
        Raise the offset by the smallest slack when all of the last ``window``
        notifications (default 8) had more than ``max_slack_ns`` (default 0.5 s).
    """

    def __init__(
        self, max_lag_ns: int = 3 * 10**9, window: int = 8, max_slack_ns: int = 5 * 10**8
    ) -> None:
        self._max_lag = max_lag_ns
        self._max_slack = max_slack_ns
        self._slacks: collections.deque[int] = collections.deque(maxlen=window)
        self._rel = 0  # relative beat clock: ns of all intervals placed so far
        self._offset: int | None = None
        self._last: int | None = None

    def place(self, rr_ms: npt.NDArray[np.float64], recv_ns: int) -> npt.NDArray[np.int64]:
        """Timestamps (ns) of the beats ending each interval in ``rr_ms``, shape ``(k,)``."""
        durations = np.round(np.asarray(rr_ms, dtype=np.float64) * 1e6).astype(np.int64)
        if durations.size == 0:
            return np.empty(0, dtype=np.int64)
        rel = self._rel + np.cumsum(durations)
        self._rel = int(rel[-1])
        newest = recv_ns - self._rel  # the offset putting the newest beat at arrival
        if self._offset is None or newest - self._offset > self._max_lag:
            self._offset = newest
            self._slacks.clear()
        self._offset = min(self._offset, newest)
        self._slacks.append(newest - self._offset)
        if len(self._slacks) == self._slacks.maxlen and min(self._slacks) > self._max_slack:
            self._offset += min(self._slacks)
            self._slacks.clear()
        ts = rel + self._offset
        if self._last is not None:
            ts = np.maximum(ts, self._last)
        self._last = int(ts[-1])
        return ts


class DeviceClock:
    """Maps PMD device timestamps (ns since 2000-01-01) to ns since the Unix epoch.

    Parameters
    ----------
    tolerance_ns
        A device time within this of our clock is trusted as is; a mapped time further
        than this from arrival re-anchors the offset (default 5 s).
    """

    def __init__(self, tolerance_ns: int = 5 * 10**9) -> None:
        self._tol = tolerance_ns
        self._offset: int | None = None

    def to_unix(self, device_ns: int, recv_ns: int) -> int:
        """The Unix time (ns) of device time ``device_ns``, seen arriving at ``recv_ns``."""
        unix = device_ns + pmd.POLAR_EPOCH_UNIX_NS
        if self._offset is None or abs(unix + self._offset - recv_ns) > self._tol:
            self._offset = 0 if abs(unix - recv_ns) <= self._tol else recv_ns - unix
        return unix + self._offset
