"""A pad of marker buttons for a notebook: presets, free text, keyboard shortcuts.

``pad = MarkerPad(engine, room="lab", presets=["bell", "talk", "laugh"])`` shows one
button per preset (number keys 1-9 press them while the pad has focus), a text field
(Enter marks its text) and the last marks made. Each press sets the synced ``press``
trait to ``{"type": "mark", "label": ..., "n": ...}`` (JSON; a trait rather than a
custom message, because Panel's AnyWidget shim has no ``model.send``); the pad
calls ``engine.mark(label, room=..., source="notebook")`` on the engine's loop
(``engine/host.py: submit_to``), so a busy cell or a threaded engine changes nothing.
The same JavaScript runs in a Panel page (:meth:`MarkerPad.__panel__`).
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
from collections.abc import Sequence
from typing import Any

import anywidget
import traitlets

from sensocto_lab.engine.host import submit_to
from sensocto_lab.errors import ConfigError, SensoctoError
from sensocto_lab.events import MAX_LABEL, Event
from sensocto_lab.ui.notebook._wire import esm_source, panel_twin

__all__ = ["MarkerPad"]

_SYNCED = ("presets", "title", "recent", "error", "count", "press")
#: How many of the last marks the pad lists.
RECENT = 5


class MarkerPad(anywidget.AnyWidget):
    """Buttons and a text field that record markers through the engine.

    Parameters
    ----------
    engine
        A started engine (anything with ``loop`` and ``mark``, as
        :class:`~sensocto_lab.engine.engine.Engine`).
    room
        Room of the markers (``None``: none).
    presets
        Labels of the buttons, at most 9 (keys 1-9).
    sensor, participant
        What the markers concern, if one sensor or participant.
    title
        Shown above the buttons.

    Synced state
    ------------
    ``presets``, ``title``; ``recent`` (the last :data:`RECENT` labels marked, newest
    last), ``count`` (marks recorded), ``error`` (why the last press was refused, or "").
    """

    _esm = esm_source("marker_pad")

    presets = traitlets.List(traitlets.Unicode(), default_value=[]).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    recent = traitlets.List(traitlets.Unicode(), default_value=[]).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    count = traitlets.Int(0).tag(sync=True)
    press = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        engine: Any,
        room: str | None = None,
        presets: Sequence[str] = ("bell",),
        *,
        sensor: str | None = None,
        participant: str | None = None,
        title: str = "markers",
    ) -> None:
        labels = [str(p) for p in presets]
        if len(labels) > 9 or any(not (0 < len(p) <= MAX_LABEL) for p in labels):
            raise ConfigError("presets are at most 9 labels of 1-256 characters")
        super().__init__(presets=labels, title=title)
        self._engine = engine
        self.room, self.sensor, self.participant = room, sensor, participant
        self._lock = threading.Lock()
        self.marks: list[Event] = []
        self.on_msg(self._on_msg)
        self.observe(self._on_press, names="press")

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "mark":
            self.mark(str(content.get("label", "")).strip())

    def _on_press(self, change: dict[str, Any]) -> None:
        try:
            content = json.loads(change["new"] or "null")
        except ValueError:
            return
        self._on_msg(self, content, None)

    def mark(self, label: str, value: Any = None) -> concurrent.futures.Future[Event]:
        """Record ``label`` now, as a press would; returns the future of the stored event.

        A refused mark (empty label, engine closed...) shows in ``error``; the future
        then holds the exception.
        """
        coro = self._engine.mark(
            label,
            room=self.room,
            sensor=self.sensor,
            participant=self.participant,
            value=value,
            source="notebook",
        )
        try:
            future = submit_to(self._engine.loop, coro)
        except SensoctoError as exc:
            self.error = str(exc)
            failed: concurrent.futures.Future[Event] = concurrent.futures.Future()
            failed.set_exception(exc)
            return failed
        future.add_done_callback(self._done)
        return future

    def _done(self, future: concurrent.futures.Future[Event]) -> None:
        exc = future.exception()
        if exc is not None:
            self.error = str(exc)
            return
        event = future.result()
        with self._lock:
            self.marks.append(event)
            recent = [e.label for e in self.marks[-RECENT:]]
            count = len(self.marks)
        with self.hold_sync():
            self.error = ""
            self.recent = recent
            self.count = count

    def __panel__(self) -> Any:
        """This pad as a Panel component (same JavaScript, kept in step)."""
        twin = panel_twin(self, "marker_pad", _SYNCED, width=480, height=120)
        # A press comes back through the twin's ``press`` parameter (the one way both
        # hosts carry a browser change to Python).
        twin.param.watch(lambda event: setattr(self, "press", event.new), "press")
        return twin
