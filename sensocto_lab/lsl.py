"""``sensocto_lab.lsl``: Lab Streaming Layer from a notebook.

``lsl.streams()`` lists the visible streams; ``await lsl.record_lsl(engine, ...)`` and
``await lsl.publish_lsl(engine, room=...)`` are
:mod:`sensocto_lab.sources.lsl`'s (see there for what they do).
"""

from sensocto_lab.sources.lsl import (
    ClockMap,
    LslPublisher,
    LslRecording,
    publish_lsl,
    record_lsl,
    streams,
)

__all__ = ["ClockMap", "LslPublisher", "LslRecording", "publish_lsl", "record_lsl", "streams"]
