"""Browser-side observers that turn what a person sees into attention.

See docs/architecture.md#dashboards.

- :class:`VisibilityObserver` wraps one card: an IntersectionObserver and pointer
  enter/leave in the page send ``{ratio, pointer}`` at most every 100 ms.
- :class:`PageObserver` reports ``document.visibilityState`` and the page's render
  lag (see ``page.js``); the server sets :attr:`PageObserver.stamp` on each
  flush so the page can time it.

:func:`level_for` maps what the observers report to an
:class:`~sensocto_lab.model.AttentionLevel`: focused → HIGH, visible → MEDIUM,
scrolled out → LOW, page hidden → NONE.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import param
from panel.custom import Child, JSComponent  # type: ignore[attr-defined]

from sensocto_lab.model import AttentionLevel

__all__ = ["PageObserver", "VisibilityObserver", "level_for"]

_HERE = Path(__file__).resolve().parent

#: Keys the page reports (``page.js``); any other message key is ignored.
SHORTCUTS = frozenset({"m", "Escape"})


def level_for(ratio: float, pointer: bool, page_visible: bool) -> AttentionLevel:
    """The attention a card gets from its on-screen state.

    Parameters
    ----------
    ratio
        Fraction of the card inside the viewport, 0–1.
    pointer
        Whether the pointer is over the card (focus).
    page_visible
        Whether the page itself is visible (``document.visibilityState``).
    """
    if not page_visible:
        return AttentionLevel.NONE
    if pointer:
        return AttentionLevel.HIGH
    if ratio > 0:
        return AttentionLevel.MEDIUM
    return AttentionLevel.LOW


class VisibilityObserver(JSComponent):
    """Wraps a card and reports how visible and focused it is, and clicks on it.

    ``on_change(key, ratio, pointer)`` is called (on the server's loop) for every
    report; ``key`` names the card (its sensor id). ``on_click(key)`` (optional) for a
    click on the card outside its own widgets.
    """

    object = Child(doc="The card being observed.")
    key = param.String(default="", doc="Which card this is (its sensor id).")
    interval_ms = param.Integer(default=100, bounds=(10, None), doc="Least time between reports.")

    _esm = _HERE / "visibility.js"

    def __init__(
        self,
        object: Any,
        *,
        on_change: Callable[[str, float, bool], None],
        on_click: Callable[[str], None] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(object=object, **params)  # type: ignore[no-untyped-call]
        self._on_change = on_change
        self._on_click = on_click
        #: Last report: fraction of the card in the viewport (0–1), pointer over it.
        self.ratio = 0.0
        self.pointer = False

    def _handle_msg(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("click") is True:
            if self._on_click is not None:
                self._on_click(self.key)
            return
        try:
            ratio = min(max(float(data["ratio"]), 0.0), 1.0)
            pointer = bool(data["pointer"])
        except (KeyError, TypeError, ValueError):
            return  # a malformed report from a page is ignored, never fatal
        self.ratio, self.pointer = ratio, pointer
        self._on_change(self.key, ratio, pointer)


class PageObserver(JSComponent):
    """Reports the page's visibility, render lag and keyboard shortcuts; invisible itself.

    ``on_visibility(visible)`` is called when the page is shown or hidden (and once
    when it has drawn: the first report), ``on_lag(lag_ms)`` with the page's render
    lag every ``report_ms``, ``on_key(key)`` for a shortcut key (``"m"``, ``"Escape"``)
    pressed outside a text field.
    """

    stamp = param.Number(default=0.0, doc="Server wall clock (ms) of the last flush.")
    report_ms = param.Integer(default=500, bounds=(50, None), doc="How often lag is reported.")

    _esm = _HERE / "page.js"

    def __init__(
        self,
        *,
        on_visibility: Callable[[bool], None],
        on_lag: Callable[[float], None],
        on_key: Callable[[str], None] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)  # type: ignore[no-untyped-call]
        self._on_visibility = on_visibility
        self._on_lag = on_lag
        self._on_key = on_key
        #: Last reported ``document.visibilityState != "hidden"``.
        self.page_visible = True

    def _handle_msg(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if data.get("key") in SHORTCUTS and self._on_key is not None:
            self._on_key(str(data["key"]))
        if "visibility" in data:
            self.page_visible = data["visibility"] != "hidden"
            self._on_visibility(self.page_visible)
        if "lag_ms" in data:
            try:
                lag = float(data["lag_ms"])
            except (TypeError, ValueError):
                return
            self._on_lag(lag)
