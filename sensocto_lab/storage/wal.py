"""The write-ahead log: Arrow IPC stream segments, written before ``append`` returns.

Layout: ``{data_dir}/wal/seg-{generation:012d}-{layout}.arrows``. A *generation* is
what is sealed and compacted as one unit; it has one IPC stream file per value layout
(``f4x1`` = float32 scalars, ``f4x3`` = float32 3-vectors, ...) because an IPC stream
has one schema. Each appended batch is one record batch with columns ``ts``,
``recv_ts``, ``seq`` (int64 ns / counters) and ``value`` (the kind's dtype, a
fixed-size list for vectors); room, sensor, attribute and kind ride along as the record
batch's custom metadata. A *group record* (:meth:`WalWriter.write_group`) holds the
batches of many series that one call appended, concatenated, in one record batch whose
only custom metadata, ``group``, lists each piece as a line ``room sensor attribute kind
n`` (ids hold no spaces or newlines): one record and one write for all of them. Events
(:mod:`.event_log`) have a stream of their own in each generation,
``seg-{generation:012d}-events.arrows``, one record per ``append_events``.

Speed: a record's IPC header (its flatbuffer metadata) depends only on the series and
the number of samples. The first record of each (series, layout, length) goes through
pyarrow's IPC writer and its header is kept; later ones are that header plus the
arrays' own memory in one ``pwritev``, with no pyarrow objects built per append. The
file is byte for byte what pyarrow would write (a test holds it to that).

Durability: every record is handed to the OS with one positional write before
:meth:`WalWriter.write` returns, so a killed process loses nothing; :meth:`WalWriter.sync`
(the store's fsync thread) makes it survive power loss. A write that fails is cut back
off the file, so the next record follows the last complete one; if the failed write was
a file's first (the one that carries the stream's schema), the file is removed and the
next write starts it afresh, so no acknowledged record can land in a file without its
schema. Readers (:mod:`.wal_read`) stop at the first record they cannot read: after a
crash only the torn last record of a file is lost; a torn group record is dropped whole
(none of its batches was acknowledged: the write had not returned), every record before
it is kept.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from sensocto_lab.errors import StorageError
from sensocto_lab.storage.health import storage_error

__all__ = [
    "EVENTS_LAYOUT",
    "GROUP_KEY",
    "META_KEYS",
    "Chunk",
    "SegmentFile",
    "WalWriter",
    "concat_chunks",
    "fsync_dir",
    "layout_of",
    "list_segments",
]

log = logging.getLogger(__name__)

_SEG_RE = re.compile(r"^seg-(\d{12})-(f[48]x\d+|events)\.arrows$")
#: The layout tag of a generation's event stream.
EVENTS_LAYOUT = "events"
META_KEYS = (b"room", b"sensor", b"attribute", b"kind")
#: The custom metadata key of a group record: one ``room sensor attribute kind n`` line a piece.
GROUP_KEY = b"group"


@dataclass(frozen=True, slots=True, eq=False)
class Chunk:
    """Consecutive samples of one series as numpy arrays (one WAL record, or more).

    ``ts``, ``recv_ts`` and ``seq`` are ``int64`` of shape ``(n,)`` (ns since the
    epoch, ns since the epoch, counter); ``values`` is ``(n,)`` or ``(n, width)``.
    """

    room: str
    sensor_id: str
    attribute_id: str
    kind: str
    ts: npt.NDArray[np.int64]
    recv_ts: npt.NDArray[np.int64]
    seq: npt.NDArray[np.int64]
    values: npt.NDArray[Any]

    def __len__(self) -> int:
        return int(self.ts.shape[0])


def concat_chunks(chunks: list[Chunk]) -> Chunk:
    """One chunk of the samples of ``chunks`` (one series, in order): no copy for one."""
    if len(chunks) == 1:
        return chunks[0]
    c = chunks[0]
    return Chunk(
        c.room,
        c.sensor_id,
        c.attribute_id,
        c.kind,
        np.concatenate([c.ts for c in chunks]),
        np.concatenate([c.recv_ts for c in chunks]),
        np.concatenate([c.seq for c in chunks]),
        np.concatenate([c.values for c in chunks]),
    )


@dataclass(frozen=True, slots=True)
class SegmentFile:
    """One WAL file: its generation, value layout (or ``"events"``) and path."""

    generation: int
    layout: str
    path: Path

    @property
    def is_events(self) -> bool:
        """True for a generation's event stream (read with :func:`read_records`)."""
        return self.layout == EVENTS_LAYOUT


def layout_of(dtype: npt.DTypeLike, width: int) -> str:
    """The layout tag of values of ``dtype`` and ``width``, e.g. ``"f4x1"``."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise StorageError(f"WAL stores float32 or float64 values, not {dt}", reason="bad_dtype")
    return f"f{dt.itemsize}x{width}"


def _value_type(layout: str) -> pa.DataType:
    itemsize, width = layout[1:].split("x")
    scalar = pa.float32() if itemsize == "4" else pa.float64()
    return scalar if width == "1" else pa.list_(scalar, int(width))


def _schema(layout: str) -> pa.Schema:
    return pa.schema(
        [
            ("ts", pa.int64()),
            ("recv_ts", pa.int64()),
            ("seq", pa.int64()),
            ("value", _value_type(layout)),
        ]
    )


def _wrap(values: npt.NDArray[Any]) -> pa.Array:
    """A zero-copy Arrow view of a contiguous 1-D int64/float array (no type inference)."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), values.shape[0], [None, pa.py_buffer(values)]
    )


def _value_array(values: npt.NDArray[Any]) -> pa.Array:
    if values.ndim == 1:
        return _wrap(values)
    return pa.FixedSizeListArray.from_arrays(_wrap(values.reshape(-1)), values.shape[1])


def list_segments(wal_dir: Path) -> list[SegmentFile]:
    """Every WAL file in ``wal_dir``, oldest generation first."""
    found = []
    for entry in os.scandir(wal_dir):
        m = _SEG_RE.match(entry.name)
        if m and entry.is_file():
            found.append(SegmentFile(int(m.group(1)), m.group(2), Path(entry.path)))
    found.sort(key=lambda s: (s.generation, s.layout))
    return found


#: Record headers a writer keeps (per series and batch length) before starting afresh.
_HEADERS_MAX = 4096
_PADDING = bytes(8)
_CONTINUATION = 0xFFFFFFFF


def _body_parts(chunk: Chunk) -> list[Any]:
    """The body of ``chunk``'s IPC record: its four buffers as bytes, each padded to 8."""
    arrays = (
        np.ascontiguousarray(chunk.ts, dtype=np.int64),
        np.ascontiguousarray(chunk.recv_ts, dtype=np.int64),
        np.ascontiguousarray(chunk.seq, dtype=np.int64),
        np.ascontiguousarray(chunk.values),
    )
    parts: list[Any] = [a.data.cast("B") for a in arrays]  # len() in bytes
    tail = arrays[3].nbytes % 8  # int64 columns are always whole words
    if tail:
        parts.append(_PADDING[tail:])
    return parts


def _record_header(written: bytes, body: int) -> bytes | None:
    """The header of the record batch message that ends ``written`` with ``body`` bytes.

    An encapsulated IPC message is ``0xFFFFFFFF``, an int32 metadata length, the
    (8-byte padded) flatbuffer metadata, then its body; ``written`` may start with the
    schema message (no body). ``None`` if the framing is not as expected.
    """
    pos = 0
    while pos + 8 <= len(written):
        marker, size = struct.unpack_from("<Ii", written, pos)
        if marker != _CONTINUATION or size <= 0:
            return None
        end = pos + 8 + size
        if end + body == len(written):
            return written[pos:end]
        pos = end
    return None


class _RecordSink:
    """Collects the buffers the IPC writer emits for one message, to write them at once.

    One ``pwritev`` per record (not one write per buffer, no joined copy) is faster,
    and if it fails the file can be cut back to the last complete record, so a failed
    append leaves no half-record that a later record would follow. The buffers are
    written before :meth:`WalWriter.write` returns, while the batch they point into
    is still alive, so they are kept without copying.
    """

    closed = False

    def __init__(self) -> None:
        self._parts: list[Any] = []
        self._pos = 0

    def write(self, data: Any) -> int:
        size = len(data)
        self._parts.append(data)
        self._pos += size
        return size

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def take(self) -> list[Any]:
        parts, self._parts = self._parts, []
        return parts

    def skip(self, size: int) -> None:
        """Count ``size`` bytes written to the file past the IPC writer (its offsets stay true)."""
        self._pos += size

    def rewind(self, pos: int) -> None:
        """Forget what a failed write emitted: the file ends at ``pos`` again."""
        self._parts = []
        self._pos = pos


class _Stream:
    """One open IPC stream file of the current generation.

    ``size`` is the length of the complete records on disk; the descriptor is closed
    by :meth:`WalWriter.sync` once the file is sealed and fsynced.
    """

    __slots__ = ("fd", "path", "schema", "sink", "size", "started", "writer")

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self.size = 0
        # A record is on disk, and with it the schema: pyarrow's stream writer emits
        # the schema with the first record, not when it is created.
        self.started = False
        self.schema = schema
        self.sink = _RecordSink()
        try:
            self.writer = pa.ipc.new_stream(self.sink, self.schema)
            self.emit()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and remove the file (nothing in it was acknowledged)."""
        os.close(self.fd)
        try:
            self.path.unlink()
        except OSError:  # it stays empty and unread: a reader sees a file without records
            log.warning("could not remove the unused WAL file %s", self.path.name)

    def emit(self, parts: list[Any] | None = None) -> int:
        """Write ``parts`` (default: what the IPC writer produced) with one ``pwritev``.

        On failure the file is cut back to its last complete record. Returns bytes.
        """
        if parts is None:
            parts = self.sink.take()
        total = sum(len(p) for p in parts)
        if total == 0:
            return 0
        try:
            # Positional: after a failed write the next one lands where it belongs.
            done = os.pwritev(self.fd, parts, self.size)
            if done < total:  # short write (rare): finish it from a joined copy
                rest = memoryview(b"".join(bytes(p) for p in parts))
                while done < total:
                    done += os.pwrite(self.fd, rest[done:], self.size + done)
        except OSError:
            os.ftruncate(self.fd, self.size)
            raise
        self.size += total
        return total


class WalWriter:
    """Appends records to the current generation's files; seals generations.

    Not thread-safe for writers: the store calls :meth:`write`, :meth:`seal` and
    :meth:`close` under its own lock. :meth:`sync` may run concurrently from the fsync
    thread without blocking them: it only fsyncs file descriptors, and closes the
    files of sealed generations once they are on disk.

    Parameters
    ----------
    wal_dir
        Directory of the segment files (created if missing).
    generation
        Number of the first generation to write; must be above every existing one.
    """

    def __init__(self, wal_dir: Path, generation: int) -> None:
        self.wal_dir = wal_dir
        wal_dir.mkdir(parents=True, exist_ok=True)
        self.generation = generation
        self.bytes = 0  # bytes written to the current generation
        self._streams: dict[str, _Stream] = {}
        self._unsynced: list[int] = []  # descriptors of sealed files awaiting their last fsync
        self._dir_dirty = False
        self._sync_lock = threading.Lock()  # guards the lists of descriptors
        self._fsync_lock = threading.Lock()  # one sync() at a time
        self._meta: dict[tuple[str, str, str, str], pa.KeyValueMetadata] = {}
        #: IPC record header by (series, layout, samples): all a header depends on
        self._headers: dict[tuple[tuple[str, str, str, str], str, int], bytes] = {}

    @property
    def files(self) -> dict[Path, int]:
        """Path and committed size (bytes of complete records) of each open file."""
        return {s.path: s.size for s in self._streams.values()}

    def write(self, chunk: Chunk) -> int:
        """Write one record to the OS; return the bytes it took.

        Raises
        ------
        StorageError
            The file could not be created or written (disk full, permissions).
        """
        layout = layout_of(
            chunk.values.dtype, 1 if chunk.values.ndim == 1 else chunk.values.shape[1]
        )
        key = (chunk.room, chunk.sensor_id, chunk.attribute_id, chunk.kind)
        meta = self._meta.get(key)
        if meta is None:
            meta = pa.KeyValueMetadata(dict(zip(META_KEYS, (k.encode() for k in key), strict=True)))
            self._meta[key] = meta
        stream = None
        try:
            stream = self._stream(layout, _schema)
            n = len(chunk)
            header = self._headers.get((key, layout, n)) if stream.started else None
            if header is not None:
                # The same series and length as a record written before: the same
                # header, byte for byte, so only the arrays change (written in place).
                parts = [header, *_body_parts(chunk)]
                written = stream.emit(parts)
                stream.sink.skip(written)
            else:
                written = self._write_through_arrow(stream, chunk, (key, layout, n), meta)
        except (OSError, pa.ArrowException) as exc:
            if stream is not None:
                self._recover_from_failed_write(layout, stream)
            raise storage_error(f"cannot write the WAL file of {layout}", exc) from exc
        self.bytes += written
        return written

    def write_group(self, chunks: list[Chunk]) -> int:
        """Write ``chunks`` (one value layout, any series) as one record; return its bytes.

        Group commit: the batches a caller gathered (the engine's, of one loop turn) go
        to the OS in one record and one ``pwritev``, with :meth:`write`'s promise for all
        of them together: with the OS when this returns, or :class:`StorageError` and the
        file as it was (none of them written). One chunk is written as :meth:`write` does.
        """
        if len(chunks) == 1:
            return self.write(chunks[0])
        first = chunks[0].values
        width = 1 if first.ndim == 1 else first.shape[1]
        layout = layout_of(first.dtype, width)
        for c in chunks:
            v = c.values
            if v.dtype != first.dtype or (1 if v.ndim == 1 else v.shape[1]) != width:
                raise StorageError("a group record holds one value layout", reason="bad_dtype")
        lines = "".join(
            f"{c.room} {c.sensor_id} {c.attribute_id} {c.kind} {c.ts.shape[0]}\n" for c in chunks
        )
        meta = pa.KeyValueMetadata({GROUP_KEY: lines.encode()})

        def group(stream: _Stream) -> None:
            columns = [
                np.concatenate([c.ts for c in chunks]),
                np.concatenate([c.recv_ts for c in chunks]),
                np.concatenate([c.seq for c in chunks]),
            ]
            values = np.concatenate([c.values for c in chunks])
            batch = pa.RecordBatch.from_arrays(
                [*(_wrap(a) for a in columns), _value_array(values)], schema=stream.schema
            )
            stream.writer.write_batch(batch, custom_metadata=meta)

        return self._write_one(layout, _schema, group)

    def write_record(self, layout: str, batch: pa.RecordBatch) -> int:
        """Write one record of a stream other than samples' (``EVENTS_LAYOUT``).

        The same promise as :meth:`write`: with the OS when this returns, or raises
        :class:`StorageError` and leaves the file as it was.
        """
        return self._write_one(
            layout, lambda _: batch.schema, lambda stream: stream.writer.write_batch(batch)
        )

    def _write_one(
        self,
        layout: str,
        schema: Callable[[str], pa.Schema],
        write: Callable[[_Stream], None],
    ) -> int:
        """``write`` one record into the stream of ``layout`` and hand it to the OS.

        On failure the file is put back as it was (:meth:`_recover_from_failed_write`)
        and :class:`StorageError` is raised; returns the bytes written.
        """
        stream = None
        try:
            stream = self._stream(layout, schema)
            write(stream)
            written = stream.emit()
            stream.started = True
        except (OSError, pa.ArrowException) as exc:
            if stream is not None:
                self._recover_from_failed_write(layout, stream)
            raise storage_error(f"cannot write the WAL file of {layout}", exc) from exc
        self.bytes += written
        return written

    def _stream(self, layout: str, schema: Callable[[str], pa.Schema]) -> _Stream:
        stream = self._streams.get(layout)
        if stream is None:
            path = self.wal_dir / f"seg-{self.generation:012d}-{layout}.arrows"
            stream = _Stream(path, schema(layout))
            with self._sync_lock:
                self._streams[layout] = stream
                self._dir_dirty = True
        return stream

    def _recover_from_failed_write(self, layout: str, stream: _Stream) -> None:
        """After a failed write, make the next write land in a readable file.

        ``emit`` has cut the file back to its complete records. If none went out yet,
        the IPC writer believes the schema is written though the file is empty: the
        file is dropped, and the next write starts a new one (schema first).
        """
        if stream.started:
            stream.sink.rewind(stream.size)
            return
        with self._sync_lock:
            if self._streams.get(layout) is stream:
                del self._streams[layout]
        stream.discard()

    def _write_through_arrow(
        self,
        stream: _Stream,
        chunk: Chunk,
        header_key: tuple[tuple[str, str, str, str], str, int],
        meta: pa.KeyValueMetadata,
    ) -> int:
        """Write ``chunk`` with pyarrow's IPC writer, and keep its record header."""
        batch = pa.RecordBatch.from_arrays(
            [_wrap(chunk.ts), _wrap(chunk.recv_ts), _wrap(chunk.seq), _value_array(chunk.values)],
            schema=stream.schema,
        )
        stream.writer.write_batch(batch, custom_metadata=meta)
        parts = stream.sink.take()
        written = stream.emit(parts)
        stream.started = True
        body = sum(len(p) for p in _body_parts(chunk))
        header = _record_header(b"".join(bytes(p) for p in parts), body)
        if header is not None:
            if len(self._headers) >= _HEADERS_MAX:
                self._headers.clear()
            self._headers[header_key] = header
        return written

    def seal(self) -> int | None:
        """End the current generation (its files get an end-of-stream marker).

        Returns the sealed generation's number, or ``None`` if it holds nothing; the
        next :meth:`write` starts generation + 1.
        """
        if not self._streams:
            return None
        sealed = self.generation
        with self._sync_lock:
            streams, self._streams = self._streams, {}
            for s in streams.values():
                try:
                    s.writer.close()
                    s.emit()
                except (OSError, pa.ArrowException) as exc:
                    # The records are complete; only the end-of-stream marker is missing.
                    log.warning("could not end WAL file %s cleanly: %s", s.path.name, exc)
                self._unsynced.append(s.fd)
        self.generation += 1
        self.bytes = 0
        return sealed

    def sync(self) -> None:
        """fsync every open and newly sealed file (and the directory after new files).

        Raises
        ------
        StorageError
            An fsync failed; the data may not be durable.
        """
        # One sync at a time: descriptors are closed only here, so none that this sync
        # holds can be closed under it. The list lock is held just to take the lists,
        # so appends (which seal and open files) never wait for an fsync.
        with self._fsync_lock:
            with self._sync_lock:
                fds = [s.fd for s in self._streams.values()] + self._unsynced
                sealed, self._unsynced = self._unsynced, []
                dir_dirty, self._dir_dirty = self._dir_dirty, False
            try:
                for fd in fds:
                    os.fsync(fd)
                if dir_dirty:
                    fsync_dir(self.wal_dir)
            except OSError as exc:
                with self._sync_lock:
                    self._unsynced = sealed + self._unsynced
                    self._dir_dirty = self._dir_dirty or dir_dirty
                raise storage_error("cannot fsync the WAL", exc) from exc
            for fd in sealed:
                os.close(fd)

    def close(self) -> int | None:
        """Seal the current generation and fsync everything; return the sealed number."""
        sealed = self.seal()
        self.sync()
        return sealed


def fsync_dir(path: Path) -> None:
    """fsync a directory so that files created or renamed in it survive a power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
