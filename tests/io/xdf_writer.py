"""A small XDF writer for the tests (the layout in RESEARCH's XDF notes), no LabRecorder needed.

``XdfWriter(path)`` writes the magic and a file header; ``stream(...)`` a stream header;
``samples(...)`` a Samples chunk (every timestamp written, or only the first with
``stamp_every=0``); ``offset(...)`` a ClockOffset chunk; ``footer(...)``; ``close()``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

_DTYPES = {
    "float32": "<f4",
    "double64": "<f8",
    "int8": "<i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
}


def varlen(n: int) -> bytes:
    if n < 256:
        return b"\x01" + struct.pack("<B", n)
    if n < 2**32:
        return b"\x04" + struct.pack("<I", n)
    return b"\x08" + struct.pack("<Q", n)


class XdfWriter:
    def __init__(self, path: Path, datetime: str | None = "2026-01-01T10:00:00+0000") -> None:
        self.f = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.f.write(b"XDF:")
        dt = f"<datetime>{datetime}</datetime>" if datetime else ""
        self._chunk(1, f"<?xml version='1.0'?><info><version>1.0</version>{dt}</info>".encode())

    def _chunk(self, tag: int, content: bytes, stream_id: int | None = None) -> None:
        body = struct.pack("<H", tag)
        if stream_id is not None:
            body += struct.pack("<I", stream_id)
        body += content
        self.f.write(varlen(len(body)) + body)

    def stream(
        self,
        sid: int,
        name: str,
        type_: str,
        channels: int | str,
        rate: float | str,
        fmt: str,
        source_id: str = "",
        labels: Sequence[str] | None = None,
        units: Sequence[str] | None = None,
    ) -> None:
        desc = ""
        if labels:
            chans = "".join(
                f"<channel><label>{escape(lab)}</label>"
                f"<unit>{escape(units[i] if units else '')}</unit></channel>"
                for i, lab in enumerate(labels)
            )
            desc = f"<desc><channels>{chans}</channels></desc>"
        xml = (
            f"<?xml version='1.0'?><info><name>{escape(name)}</name><type>{type_}</type>"
            f"<channel_count>{channels}</channel_count><nominal_srate>{rate}</nominal_srate>"
            f"<channel_format>{fmt}</channel_format><source_id>{escape(source_id)}</source_id>"
            f"<hostname>testhost</hostname>{desc}</info>"
        )
        self._chunk(2, xml.encode(), sid)

    def samples(
        self, sid: int, fmt: str, stamps: np.ndarray, values: object, stamp_every: int = 1
    ) -> None:
        out = [varlen(len(stamps))]
        for k, t in enumerate(stamps):
            if (stamp_every and k % stamp_every == 0) or k == 0:
                out.append(b"\x08" + struct.pack("<d", float(t)))
            else:
                out.append(b"\x00")
            if fmt == "string":
                for text in values[k]:  # type: ignore[index]
                    raw = str(text).encode()
                    out.append(varlen(len(raw)) + raw)
            else:
                row = np.asarray(values[k], dtype=_DTYPES[fmt])  # type: ignore[index]
                out.append(row.tobytes())
        self._chunk(3, b"".join(out), sid)

    def offset(self, sid: int, collection_time: float, offset: float) -> None:
        self._chunk(4, struct.pack("<dd", collection_time, offset), sid)

    def footer(self, sid: int, first: float, last: float, count: int) -> None:
        xml = (
            f"<?xml version='1.0'?><info><first_timestamp>{first}</first_timestamp>"
            f"<last_timestamp>{last}</last_timestamp><sample_count>{count}</sample_count></info>"
        )
        self._chunk(6, xml.encode(), sid)

    def close(self) -> None:
        self.f.close()
