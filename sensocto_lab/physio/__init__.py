"""Heart and breath on xarray: beats, intervals, heart rate, HRV, breathing rate, RSA, quality.

Pure numpy/scipy/xarray with neurokit2 underneath for what it does well (PPG and
respiration processing, artefact correction, HRV indices); R-peaks come from our
own detector (:mod:`sensocto_lab.physio.peaks`), which finds neurokit2's beats
and runs over a whole group in one pass. :mod:`sensocto_lab.sync` builds on the
pure parts (grid, filters, peaks); this package never imports ``sync``. Typical
use in a notebook::

    from sensocto_lab import physio
    ds = engine.store.history(attributes=["ecg", "respiration"])
    b = physio.beats(ds, kind="ecg")          # (sensor, beat) datetime64[ns]
    hr = physio.heart_rate(b, fs=4)           # (sensor, time) bpm, even
    table = physio.hrv(b).to_dataframe()      # SDNN, RMSSD, ..., SD2 per sensor
    rate = physio.respiration_rate(ds)        # breaths/min
    flags = physio.quality(ds["ecg"])         # "ok" / "missing" / "flat" / "clipped"

neurokit2 is imported on first use of a function that needs it, so ``import
sensocto_lab.sync`` stays light.
"""

from sensocto_lab.physio.beats import beats, beats_from_rr, heart_rate, ibi
from sensocto_lab.physio.filters import RESPIRATION_BAND, bandpass, butter_sos
from sensocto_lab.physio.grid import Signals, as_signals
from sensocto_lab.physio.hrv import HRV_INDICES, correct_beats, hrv, rsa
from sensocto_lab.physio.peaks import PEAK_SETTINGS, PeakSettings, detect_peaks
from sensocto_lab.physio.quality import FLAGS, exclude, quality
from sensocto_lab.physio.respiration import respiration_rate
from sensocto_lab.physio.streaming import StreamingBeats, StreamingStats
from sensocto_lab.physio.synthetic import SimulatedECG, simulate_ecg

__all__ = [
    "FLAGS",
    "HRV_INDICES",
    "PEAK_SETTINGS",
    "RESPIRATION_BAND",
    "PeakSettings",
    "Signals",
    "SimulatedECG",
    "StreamingBeats",
    "StreamingStats",
    "as_signals",
    "bandpass",
    "beats",
    "beats_from_rr",
    "butter_sos",
    "correct_beats",
    "detect_peaks",
    "exclude",
    "heart_rate",
    "hrv",
    "ibi",
    "quality",
    "respiration_rate",
    "rsa",
    "simulate_ecg",
]
