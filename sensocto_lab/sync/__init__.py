"""Group synchrony: phases, the Kuramoto order parameter, phase locking, surrogates.

Pure numpy/scipy/xarray (no engine, no asyncio). Typical use in a notebook::

    from sensocto_lab import sync
    ds = engine.store.history(attributes=["respiration"])
    theta = sync.phases(ds)                  # DataArray (sensor, time), rad
    r = sync.order_parameter(theta)          # DataArray (time,), psi and n as coords
    plv = sync.phase_locking(theta)          # DataArray (sensor, sensor_2)
    test = sync.surrogate_test(ds, n_surrogates=199)   # observed, null, p_value

``sync.synchrony(ds)`` goes from signals to ``R(t)`` in one (faster) step. The
online computer behind the live ``sync:{room}`` sensor is :class:`OnlineSynchrony`.
"""

from sensocto_lab.physio.grid import Signals, as_signals
from sensocto_lab.sync.baseline import minmax_phase
from sensocto_lab.sync.cluster import cluster_phase
from sensocto_lab.sync.connectivity import MEASURES, connectivity
from sensocto_lab.sync.kuramoto import (
    order_parameter,
    phase_locking,
    synchrony,
    windowed_order_parameter,
)
from sensocto_lab.sync.online import OnlineConfig, OnlineSynchrony, SyncEstimate
from sensocto_lab.sync.phase import (
    PEAK_SETTINGS,
    RESPIRATION_BAND,
    PeakSettings,
    detect_peaks,
    event_phase,
    phases,
    phasors,
)
from sensocto_lab.sync.surrogates import surrogate_test
from sensocto_lab.sync.synthetic import OscillatorGroup, oscillator_group

__all__ = [
    "MEASURES",
    "PEAK_SETTINGS",
    "RESPIRATION_BAND",
    "OnlineConfig",
    "OnlineSynchrony",
    "OscillatorGroup",
    "PeakSettings",
    "Signals",
    "SyncEstimate",
    "as_signals",
    "cluster_phase",
    "connectivity",
    "detect_peaks",
    "event_phase",
    "minmax_phase",
    "order_parameter",
    "oscillator_group",
    "phase_locking",
    "phases",
    "phasors",
    "surrogate_test",
    "synchrony",
    "windowed_order_parameter",
]
