"""The room admin's controls: markers, conditions, and the recording status strip.

Who gets them is the context's decision (:meth:`Context.can_control`): a room's owner
or admin in the room store; a session holding only the join code is a plain viewer,
except on a dashboard server that asks nobody to log in (``sensocto-lab demo``, a lab
machine): there whoever holds the code runs the experiment. The check is made again
on every press, so a page whose admin was demoted meanwhile (or a crafted message
from a viewer's page) is refused, logged, and records nothing.

Markers are recorded with ``engine.mark(label, room=..., source="dashboard")``,
conditions with ``begin_condition`` / ``end_condition`` (see
:mod:`sensocto_lab.engine.experiment`); everything appears on every viewer's page
through the room's ``events:{room}`` topic, not through this page. Presses are
rate-limited per session (a :class:`~sensocto_lab.clock.TokenBucket`), so a key held
down or a script clicking 1000 times a second records a handful of markers, not
a thousand.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from html import escape
from typing import Any

import panel as pn
from bokeh.models.widgets import Div

from sensocto_lab.clock import Clock, TokenBucket
from sensocto_lab.engine.contracts import Experimenting
from sensocto_lab.errors import SensoctoError
from sensocto_lab.events import Event

__all__ = ["Controls", "format_status"]

_log = logging.getLogger(__name__)

#: Preset marker labels and the conditions offered (any label can be typed too).
MARKER_PRESETS = ("bell", "artifact", "note")
CONDITION_PRESETS = ("baseline", "task", "recovery")


def format_status(status: dict[str, Any]) -> str:
    """The recording status strip's HTML from :meth:`Context.recording_status`'s dict."""

    def size(n: float | None) -> str:
        if n is None:
            return "–"
        for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
            if n < 1024 or unit == "TiB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1024
        return "–"

    secs = int(status.get("duration_s") or 0)
    lag = status.get("storage_lag_s")
    dropped = int(status.get("dropped") or 0)
    colour = "#1e8449" if dropped == 0 else "#c0392b"
    return (
        "<div class='recording-status' style='font-size:12px;background:#f4f6f7;padding:3px 8px;"
        "border-radius:4px'>"
        f"<b style='color:#c0392b'>● REC</b> "
        f"{secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d} · "
        f"samples stored <b>{int(status.get('samples') or 0):,}</b> · "
        f"storage lag {'–' if lag is None else f'{lag:.2f} s'} · "
        f"free disk {size(status.get('free_bytes'))} · "
        f"<span style='color:{colour}'>dropped {dropped}</span></div>"
    )


class Controls:
    """One session's admin controls (built only for a session allowed them).

    Parameters
    ----------
    room_id
        The room marked.
    user
        Who is pressing (recorded in each marker's value as ``{"by": user}``).
    experiment
        The engine's experiment calls.
    allowed
        Asked on every press: may this session still control the room?
    clock
        For the rate limit.
    run
        Runs a coroutine as a task of the session (errors are logged there).
    on_document
        Runs a callable as the session's next document tick (to show the outcome).
    """

    def __init__(
        self,
        *,
        room_id: str,
        user: str,
        experiment: Experimenting,
        allowed: Callable[[], bool],
        clock: Clock,
        run: Callable[[Coroutine[Any, Any, None]], None],
        on_document: Callable[[Callable[[], None]], None],
        marker_presets: Sequence[str] = MARKER_PRESETS,
        condition_presets: Sequence[str] = CONDITION_PRESETS,
    ) -> None:
        self.room_id = room_id
        self.user = user
        self._experiment = experiment
        self._allowed = allowed
        self._run = run
        self._on_document = on_document
        self.limit = TokenBucket(5.0, 5, clock)  # 5 presses at once, then 5 a second
        #: Presses refused because the session may not control the room.
        self.refused = 0
        self.label = pn.widgets.TextInput(placeholder="marker label", width=160)
        self.mark_button = pn.widgets.Button(label="Mark (m)", color="danger", width=90)
        self.mark_button.on_click(lambda _e: self.press_mark())
        presets = []
        for text in marker_presets:
            button = pn.widgets.Button(label=text, width=70)
            button.on_click(functools.partial(self._preset, text))
            presets.append(button)
        self.condition = pn.widgets.Select(
            options=list(condition_presets), width=110, css_classes=["condition-pick"]
        )
        self.condition_text = pn.widgets.TextInput(placeholder="or another condition", width=150)
        self.begin_button = pn.widgets.Button(label="Begin condition", color="primary", width=120)
        self.end_button = pn.widgets.Button(label="End condition", width=110)
        self.begin_button.on_click(lambda _e: self.press_begin())
        self.end_button.on_click(lambda _e: self.press_end())
        self.message = Div(text="", width=420, styles={"font-size": "12px"})
        self.status = Div(text="", width=760, name="recording-status")
        self.panel = pn.Column(
            pn.Row(self.label, self.mark_button, *presets, pn.Spacer(width=12),
                   self.condition, self.condition_text, self.begin_button, self.end_button),
            pn.Row(pn.pane.Bokeh(self.status, margin=0), pn.pane.Bokeh(self.message, margin=0)),
            styles={"background": "#fdf2e9", "border-radius": "6px", "padding": "2px"},
        )  # fmt: skip

    # -- presses -------------------------------------------------------------------------

    def _preset(self, text: str, _event: object) -> None:
        self.press_mark(text)

    def _admit(self, what: str) -> bool:
        """Whether a press goes ahead: the session may control the room, and not too fast."""
        if not self._allowed():
            self.refused += 1
            _log.warning(
                "room %s: %s by %s refused: not an admin of the room", self.room_id, what, self.user
            )
            self._say("refused: only the room's owner or admins can do that", error=True)
            return False
        if not self.limit.take():
            if self.limit.refused % 100 == 1:
                _log.warning(
                    "room %s: %s by %s refused: too many presses", self.room_id, what, self.user
                )
            self._say("too fast: wait a moment", error=True)
            return False
        return True

    def press_mark(self, label: str | None = None) -> None:
        """Record a marker (``label``, else the label field's text, else ``"marker"``)."""
        text = (
            label if label is not None else (self.label.value_input or self.label.value or "")
        ).strip()
        text = text or "marker"
        if not self._admit(f"marker {text!r}"):
            return
        self._run(self._call(f"marker {text}", self._experiment.mark(
            text, room=self.room_id, value={"by": self.user}, source="dashboard")))  # fmt: skip

    def press_begin(self) -> None:
        """Begin the condition typed (else the one picked)."""
        typed = (self.condition_text.value_input or self.condition_text.value or "").strip()
        text = typed or str(self.condition.value or "")
        if not text or not self._admit(f"condition {text!r}"):
            return
        self._run(self._call(f"began {text}", self._experiment.begin_condition(
            text, room=self.room_id, value={"by": self.user}, source="dashboard")))  # fmt: skip

    def press_end(self) -> None:
        """End the condition begun last."""
        if not self._admit("end of condition"):
            return
        self._run(self._call("ended", self._experiment.end_condition(
            room=self.room_id, source="dashboard")))  # fmt: skip

    async def _call(self, what: str, call: Coroutine[Any, Any, Event]) -> None:
        try:
            event = await call
        except SensoctoError as exc:
            self._say(exc.detail, error=True)
        except asyncio.CancelledError:
            raise
        else:
            self._say(f"{what} ({event.label})" if what in ("ended",) else what)

    def _say(self, text: str, *, error: bool = False) -> None:
        colour = "#c0392b" if error else "#1e8449"
        html = f"<span class='control-message' style='color:{colour}'>{escape(text)}</span>"

        def show() -> None:
            self.message.text = html

        self._on_document(show)
