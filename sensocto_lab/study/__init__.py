"""Studies: many sessions analysed as one, here or on a Dask cluster (``docs/study.md``).

::

    from sensocto_lab import sync
    from sensocto_lab.study import Study

    study = Study.open("data/study-2026")          # or "s3://bucket/study", or a list
    study.summary()                                 # per session: people, samples, conditions
    r = study.apply(sync.synchrony, by=("session", "condition"), attributes=["respiration"])
    test = study.surrogate_test(sync.synchrony, null="pseudo_pairs", n=99)

``study.apply(..., client=Client(...))`` runs a task per session on the cluster's
workers. ``write_study`` records a small simulated study (tests, notebooks, benchmarks).
"""

from sensocto_lab.study.measures import MEASURES, kuramoto, plv
from sensocto_lab.study.study import Study
from sensocto_lab.study.synthetic import DEFAULT_PROTOCOL, write_session, write_study

__all__ = [
    "DEFAULT_PROTOCOL",
    "MEASURES",
    "Study",
    "kuramoto",
    "plv",
    "write_session",
    "write_study",
]
