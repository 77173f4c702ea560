"""sensocto_lab: record and study the live physiology of groups, from Jupyter.

The public API, listed (and typed) in ``__init__.pyi`` and imported lazily, so that
``import sensocto_lab.sync`` stays light and ``from sensocto_lab import Engine`` is the
real class to mypy and editors::

    from sensocto_lab import Engine, SimulatedGroup, SyncWidget, sync
    engine = await Engine.start(data_dir="data")
"""

import lazy_loader as _lazy

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
