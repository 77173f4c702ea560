"""Heart and breath on xarray: beats, intervals, heart rate, HRV, breathing rate, RSA.

Pure numpy/scipy/xarray with neurokit2 underneath for what it does well (PPG and
respiration processing, artefact correction, HRV indices); R-peaks come from our
own detector (:mod:`sensocto_lab.physio.peaks`), which finds neurokit2's beats
faster. :mod:`sensocto_lab.sync` builds on the pure parts (filters, peaks).
"""

from sensocto_lab.physio.filters import RESPIRATION_BAND, bandpass, butter_sos
from sensocto_lab.physio.peaks import PEAK_SETTINGS, PeakSettings, detect_peaks

__all__ = [
    "PEAK_SETTINGS",
    "RESPIRATION_BAND",
    "PeakSettings",
    "bandpass",
    "butter_sos",
    "detect_peaks",
]
