"""Importing an XDF file: import_file next to pyxdf's load plus a plain Parquet write.

The file: one 64-channel float32 EEG at 512 Hz (60 s quick, 10 min full; a lab's
hour is six times the full run) with a marker stream, written here in the XDF layout
(RESEARCH's XDF notes). The baseline is what a script without us does: pyxdf's
``load_xdf`` then one ``pyarrow.parquet.write_table`` of the samples (time plus one
column per channel). Ours is ``import_file``: the same pyxdf load, every batch
validated, appended to the store's WAL (one series per channel with ts, recv_ts,
seq) and compacted into the Parquet cold tier when the store closes, so history,
sync and replay can read it.
"""

from __future__ import annotations

import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._table import Row, format_table

CHANNELS, RATE = 64, 512


def _varlen(n: int) -> bytes:
    return b"\x01" + struct.pack("<B", n) if n < 256 else b"\x08" + struct.pack("<Q", n)


def write_xdf(path: Path, seconds: int) -> int:
    """A 64-ch float32 512 Hz stream and a marker stream; returns the samples written."""
    rng = np.random.default_rng(0)
    n = seconds * RATE

    def chunk(tag: int, body: bytes, sid: int | None = None) -> bytes:
        head = struct.pack("<H", tag) + (b"" if sid is None else struct.pack("<I", sid))
        return _varlen(len(head) + len(body)) + head + body

    with open(path, "wb") as f:
        f.write(b"XDF:")
        f.write(
            chunk(
                1,
                b"<info><version>1.0</version><datetime>2026-01-01T10:00:00+0000</datetime></info>",
            )
        )
        f.write(
            chunk(
                2,
                (
                    f"<info><name>EEG</name><type>EEG</type><channel_count>{CHANNELS}"
                    f"</channel_count><nominal_srate>{RATE}</nominal_srate><channel_format>"
                    "float32</channel_format><source_id>amp</source_id></info>"
                ).encode(),
                1,
            )
        )
        f.write(
            chunk(
                2,
                b"<info><name>Markers</name><type>Markers</type><channel_count>1"
                b"</channel_count><nominal_srate>0</nominal_srate><channel_format>string"
                b"</channel_format><source_id>mk</source_id></info>",
                2,
            )
        )
        per = RATE  # one chunk per second, every stamp written
        row = np.dtype([("flag", "u1"), ("t", "<f8"), ("v", "<f4", (CHANNELS,))])
        for second in range(seconds):
            block = np.empty(per, dtype=row)
            block["flag"] = 8
            block["t"] = 100.0 + second + np.arange(per) / RATE
            block["v"] = rng.standard_normal((per, CHANNELS)).astype(np.float32)
            f.write(chunk(3, _varlen(per) + block.tobytes(), 1))
            f.write(chunk(4, struct.pack("<dd", 100.0 + second, 0.0), 1))
            if second % 10 == 0:
                text = f"trial{second}".encode()
                sample = b"\x08" + struct.pack("<d", 100.0 + second) + _varlen(len(text)) + text
                f.write(chunk(3, _varlen(1) + sample, 2))
                f.write(chunk(4, struct.pack("<dd", 100.0 + second, 0.0), 2))
    return n


def _baseline(path: Path, out: Path) -> float:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pyxdf

    start = time.perf_counter()
    streams, _ = pyxdf.load_xdf(str(path))
    eeg = next(s for s in streams if s["info"]["name"][0] == "EEG")
    columns = {"time": pa.array(eeg["time_stamps"])}
    for c in range(CHANNELS):
        columns[f"ch{c}"] = pa.array(eeg["time_series"][:, c])
    pq.write_table(pa.table(columns), out)
    return time.perf_counter() - start


def _ours(path: Path, data: Path) -> float:
    from sensocto_lab.io import import_file

    start = time.perf_counter()
    import_file(path, data, room="bench")
    return time.perf_counter() - start


def run(quick: bool = False) -> list[Row]:
    """Time an XDF import both ways, in this run."""
    seconds = 60 if quick else 600
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eeg.xdf"
        samples = write_xdf(path, seconds)
        base = _baseline(path, Path(tmp) / "base.parquet")
        ours = _ours(path, Path(tmp) / "data")
    values = samples * CHANNELS / 1e6
    what = f"import {CHANNELS}-ch {RATE} Hz XDF, {seconds} s ({values:.1f} M values), s"
    return [
        Row("import", what, ours, base, "pyxdf.load_xdf + pyarrow Parquet write",
            target="speed >= 0.5x (ours <= 2x)", met=ours <= 2 * base, higher_is_better=False),
    ]  # fmt: skip


if __name__ == "__main__":
    print(format_table(run()))
