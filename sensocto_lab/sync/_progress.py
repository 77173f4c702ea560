"""Progress bars for long analyses: shown when asked, or by default inside a notebook."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def _in_notebook() -> bool:
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def progress_bar(total: int, desc: str, show: bool | None) -> tqdm:
    """A tqdm bar over ``total`` steps; ``show=None`` shows it only in a Jupyter kernel."""
    return tqdm(total=total, desc=desc, disable=not (_in_notebook() if show is None else show))
