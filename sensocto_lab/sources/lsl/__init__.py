"""Lab Streaming Layer in and out: list streams, record them, publish a room.

``streams()`` lists what is visible; ``await record_lsl(engine, predicate, room=...)``
records matching streams (also later ones) as sensors and marker events;
``await publish_lsl(engine, room=...)`` pushes a room's sensors, synchrony and events
to LSL outlets. pylsl is imported when one of them runs.
"""

from sensocto_lab.sources.lsl.discovery import ClockMap, streams
from sensocto_lab.sources.lsl.inlet import LslRecording, record_lsl
from sensocto_lab.sources.lsl.outlet import LslPublisher, publish_lsl

__all__ = ["ClockMap", "LslPublisher", "LslRecording", "publish_lsl", "record_lsl", "streams"]
