"""Entry point of the compaction worker process (``python -m``; see ``compactor``).

A module of its own so that the worker's answers pickle their classes under
``sensocto_lab.storage.compactor``, as the store expects, not under ``__main__``.
"""

import sys

from sensocto_lab.storage.compactor import serve

if __name__ == "__main__":
    serve(int(sys.argv[1]))
