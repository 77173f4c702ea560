"""Group synchrony: phases, Kuramoto and cluster-phase order, pairwise connectivity, nulls.

Pure numpy/scipy/xarray (no engine, no asyncio). Typical use in a notebook::

    from sensocto_lab import sync
    ds = engine.store.history(attributes=["respiration"])
    theta = sync.phases(ds)                  # DataArray (sensor, time), rad
    r = sync.order_parameter(theta)          # DataArray (time,), psi and n as coords
    rho = sync.cluster_phase(theta)          # rho_group(t), rho, rho_k (Richardson 2012)
    plv = sync.phase_locking(theta)          # DataArray (sensor, sensor_2)
    wpli = sync.connectivity(ds, "wpli")     # any of sync.MEASURES, hypyp's conventions
    test = sync.surrogate_test(ds, n_surrogates=199)   # observed, null, p_value

Group measures on raw signals: ``symbolic_entropy``, ``rqa`` (mdRQA, diagonal by
diagonal), ``spectral_synchrony`` (Welch coherence, sum-normalised CSD); dyads:
``windowed_cross_correlation`` (Boker 2002), ``rolling_correlation``; nulls for any
measure: ``null_test`` (shift, Fourier, window shuffle), ``pseudo_pair_test``,
``kuramoto_weak_null``. By experiment condition and around events: ``segments``,
``by_condition`` (a tidy table with CI and surrogate p-value per condition), ``epochs``
(event-locked windows, as MNE's Epochs). See docs/measures.md for the table of measures.

``sync.synchrony(ds)`` goes from signals to ``R(t)`` in one (faster) step. The
online computer behind the live ``sync:{room}`` sensor is :class:`OnlineSynchrony`.
"""

from sensocto_lab.physio.grid import Signals, as_signals
from sensocto_lab.sync.baseline import minmax_phase
from sensocto_lab.sync.cluster import cluster_phase
from sensocto_lab.sync.conditions import (
    by_condition,
    condition_spans,
    epochs,
    segments,
    synchrony_R,
)
from sensocto_lab.sync.connectivity import MEASURES, connectivity
from sensocto_lab.sync.dyadic import rolling_correlation, windowed_cross_correlation
from sensocto_lab.sync.group import kuramoto_weak_null, symbolic_entropy
from sensocto_lab.sync.kuramoto import (
    order_parameter,
    phase_locking,
    synchrony,
    windowed_order_parameter,
)
from sensocto_lab.sync.nulls import null_test, pseudo_pair_test, window_shuffle
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
from sensocto_lab.sync.rqa import rqa
from sensocto_lab.sync.spectral import spectral_synchrony
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
    "by_condition",
    "cluster_phase",
    "condition_spans",
    "connectivity",
    "detect_peaks",
    "epochs",
    "event_phase",
    "kuramoto_weak_null",
    "minmax_phase",
    "null_test",
    "order_parameter",
    "oscillator_group",
    "phase_locking",
    "phases",
    "phasors",
    "pseudo_pair_test",
    "rolling_correlation",
    "rqa",
    "segments",
    "spectral_synchrony",
    "surrogate_test",
    "symbolic_entropy",
    "synchrony",
    "synchrony_R",
    "window_shuffle",
    "windowed_cross_correlation",
    "windowed_order_parameter",
]
