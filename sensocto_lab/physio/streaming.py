"""A streaming R-peak detector for the live path (a heart-rate card, live synchrony).

Pure and sans-I/O: :meth:`StreamingBeats.push` takes the next samples of one ECG
stream (a Polar H10's PMD ECG at 130 Hz, in chunks of any size) and returns the
beats it has settled; :meth:`StreamingBeats.flush` settles the rest at the end.

How it finds the same beats as the offline detector: it runs
:func:`~sensocto_lab.physio.peaks.detect_peaks` (the gradient rule) on a sliding
window of ``window_s`` that ends every ``hop_s``, at fixed sample counts since the
stream began, and keeps from each window only the beats in the stretch from
``margin_s + hop_s`` to ``margin_s`` before its end. The kept stretches tile the
stream, each lies ``margin_s`` away from the window's edge (where the zero-phase
filter and the slope average are still settling), and because the windows are
fixed by sample count, not by how the samples arrived, the beats do not depend on
the chunking at all. A beat is reported ``margin_s + hop_s`` (at most) after it
happened. NaN samples (dropouts) are gaps: beats are found in the gap-free runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensocto_lab.physio.filters import invalid, runs
from sensocto_lab.physio.peaks import PeakSettings, detect_peaks, peak_settings

__all__ = ["StreamingBeats", "StreamingStats"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StreamingStats:
    """Counters of a :class:`StreamingBeats`.

    Attributes
    ----------
    samples
        Samples pushed so far.
    beats
        Beats settled so far.
    windows
        Windows analysed.
    latency_s
        Longest delay between a beat and its report (``margin_s + hop_s``).
    """

    samples: int
    beats: int
    windows: int
    latency_s: float


class StreamingBeats:
    """R-peaks of one ECG stream, fed chunk by chunk.

    Parameters
    ----------
    fs
        Sampling rate in Hz.
    settings
        Detector settings (default: the ``"ecg"`` kind's).
    window_s
        Length of the analysed window, seconds (enough for the 0.75 s slope average
        and a robust median over several beats).
    hop_s
        How often a window is analysed, seconds.
    margin_s
        Distance from the window's ends inside which beats are not taken from it.
    start_ns
        Time of the first sample in ns since the epoch; beats are then reported in
        ns too (``None``: seconds since the first sample).

    Examples
    --------
    >>> det = StreamingBeats(130.0)
    >>> new = det.push(chunk)          # beats settled by this chunk
    >>> det.heart_rate()               # bpm from the latest intervals
    """

    def __init__(
        self,
        fs: float,
        *,
        settings: PeakSettings | None = None,
        window_s: float = 8.0,
        hop_s: float = 1.0,
        margin_s: float = 1.5,
        start_ns: int | None = None,
    ) -> None:
        if not (np.isfinite(fs) and fs > 0):
            raise invalid(f"fs must be a positive number of Hz, got {fs!r}")
        if not (hop_s > 0 and margin_s > 0 and window_s >= hop_s + 2 * margin_s):
            raise invalid(
                "need hop_s > 0, margin_s > 0 and window_s >= hop_s + 2 * margin_s; got "
                f"window_s={window_s!r}, hop_s={hop_s!r}, margin_s={margin_s!r}"
            )
        self.fs = float(fs)
        self.settings = settings or peak_settings("ecg")
        self._w = round(window_s * fs)
        self._hop = round(hop_s * fs)
        self._margin = round(margin_s * fs)
        self._start_ns = start_ns
        self._buf = np.empty(0)
        self._buf_start = 0  # absolute index of self._buf[0]
        self._seen = 0
        self._next_end = self._w  # absolute end of the next window to analyse
        self._accepted_to = 0  # beats before this absolute position are settled
        self._beats: list[float] = []  # absolute sample positions
        self._windows = 0

    def _analyse(self, end: int, accept_hi: int) -> list[float]:
        lo = max(0, end - self._w)
        seg = self._buf[lo - self._buf_start : end - self._buf_start]
        found: list[float] = []
        valid = ~np.isnan(seg)
        for a, b in runs(valid):
            found.extend(
                (lo + a + detect_peaks(seg[a:b], self.fs, settings=self.settings)).tolist()
            )
        self._windows += 1
        distance = self.settings.distance_s * self.fs
        new = []
        for p in found:
            if self._accepted_to <= p < accept_hi and (
                not self._beats or p - self._beats[-1] > distance
            ):
                self._beats.append(p)
                new.append(p)
        self._accepted_to = accept_hi
        return new

    def _out(self, positions: list[float]) -> FloatArray:
        secs = np.asarray(positions, dtype=np.float64) / self.fs
        if self._start_ns is None:
            return secs
        return self._start_ns + np.round(secs * 1e9)

    def push(self, values: npt.ArrayLike) -> FloatArray:
        """Add the next samples; return the beats settled by them.

        Parameters
        ----------
        values
            ``(samples,)`` ECG values following the previous chunk (NaN: dropout).

        Returns
        -------
        numpy.ndarray
            New beat times, seconds since the first sample (or ns since the epoch
            with ``start_ns``), increasing; usually empty or one or two beats.
        """
        x = np.asarray(values, dtype=np.float64).ravel()
        if np.isinf(x).any():
            raise invalid("ECG samples must be finite or NaN (a dropout)", "invalid_signal")
        self._buf = np.concatenate((self._buf, x))
        self._seen += x.size
        new: list[float] = []
        while self._seen >= self._next_end:
            new += self._analyse(self._next_end, self._next_end - self._margin)
            self._next_end += self._hop
        # the earliest sample a later window can need: flush()'s window ends after at
        # least next_end - hop samples, the next regular one at next_end
        keep_from = max(0, self._next_end - self._hop - self._w)
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start :]
            self._buf_start = keep_from
        return self._out(new)

    def flush(self) -> FloatArray:
        """Settle the beats of the stream's last ``margin_s + hop_s`` (its end is real)."""
        if self._seen <= self._accepted_to:
            return self._out([])
        return self._out(self._analyse(self._seen, self._seen + 1))

    @property
    def beats(self) -> FloatArray:
        """Every beat settled so far (as :meth:`push` reports them)."""
        return self._out(self._beats)

    def rr_ms(self, last: int | None = None) -> FloatArray:
        """Intervals between the settled beats in ms (the ``last`` ones), gaps excluded."""
        b = np.asarray(self._beats[-(last + 1) :] if last else self._beats) / self.fs
        d = np.diff(b)
        return d[d <= self.settings.max_interval_s] * 1e3

    def heart_rate(self, last: int = 5) -> float:
        """Heart rate in bpm: 60000 over the median of the ``last`` intervals (NaN if none)."""
        rr = self.rr_ms(last)
        return float(60_000.0 / np.median(rr)) if rr.size else float("nan")

    def statistics(self) -> StreamingStats:
        """Counters: samples, beats, windows, worst-case latency."""
        return StreamingStats(
            self._seen, len(self._beats), self._windows, (self._margin + self._hop) / self.fs
        )
