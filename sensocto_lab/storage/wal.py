"""The write-ahead log: Arrow IPC stream segments, written before ``append`` returns.

Layout: ``{data_dir}/wal/seg-{generation:012d}-{layout}.arrows``. A *generation* is
what is sealed and compacted as one unit; it has one IPC stream file per value layout
(``f4x1`` = float32 scalars, ``f4x3`` = float32 3-vectors, ...) because an IPC stream
has one schema. Each appended batch is one record batch with columns ``ts``,
``recv_ts``, ``seq`` (int64 ns / counters) and ``value`` (the kind's dtype, a
fixed-size list for vectors); room, sensor, attribute and kind ride along as the record
batch's custom metadata.

Speed: a record's IPC header (its flatbuffer metadata) depends only on the series and
the number of samples. The first record of each (series, layout, length) goes through
pyarrow's IPC writer and its header is kept; later ones are that header plus the
arrays' own memory in one ``pwritev``, with no pyarrow objects built per append. The
file is byte for byte what pyarrow would write (a test holds it to that).

Durability: every record is handed to the OS with one positional write before
:meth:`WalWriter.write` returns, so a killed process loses nothing; :meth:`WalWriter.sync`
(the store's fsync thread) makes it survive power loss. A write that fails is cut back
off the file, so the next record follows the last complete one. Readers stop at the
first record they cannot read: after a crash only the torn last record of a file is lost.
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

__all__ = [
    "Chunk",
    "SegmentFile",
    "SegmentRead",
    "WalWriter",
    "concat_chunks",
    "fsync_dir",
    "layout_of",
    "list_segments",
    "read_segment",
]

log = logging.getLogger(__name__)

_SEG_RE = re.compile(r"^seg-(\d{12})-(f[48]x\d+)\.arrows$")
_META_KEYS = (b"room", b"sensor", b"attribute", b"kind")


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
    """One WAL file: its generation, value layout and path."""

    generation: int
    layout: str
    path: Path


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


def _values_of(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    """One numpy array of a value column: ``(n,)``, or ``(n, width)`` for vectors."""
    if isinstance(column.type, pa.FixedSizeListType):
        width = column.type.list_size
        flat = pa.concat_arrays(column.chunks).flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(-1, width)
    return column.to_numpy()


def list_segments(wal_dir: Path) -> list[SegmentFile]:
    """Every WAL file in ``wal_dir``, oldest generation first."""
    found = []
    for entry in os.scandir(wal_dir):
        m = _SEG_RE.match(entry.name)
        if m and entry.is_file():
            found.append(SegmentFile(int(m.group(1)), m.group(2), Path(entry.path)))
    found.sort(key=lambda s: (s.generation, s.layout))
    return found


@dataclass(frozen=True, slots=True)
class SegmentRead:
    """What one WAL file holds.

    Attributes
    ----------
    chunks
        One :class:`Chunk` per (room, sensor, attribute, kind), its samples in the
        order they were written.
    records
        Complete records read.
    torn
        True when the file ends in a record that cannot be read (a crash mid-write,
        or a file cut before its schema): that record, and only that one, is lost.
    """

    chunks: list[Chunk]
    records: int
    torn: bool


def _group(batches: dict[tuple[str, ...], list[pa.RecordBatch]]) -> list[Chunk]:
    chunks = []
    for (room, sensor, attribute, kind), group in batches.items():
        # ChunkedArray.to_numpy concatenates once; combine_chunks first is ~3x slower.
        cols = pa.Table.from_batches(group).columns
        chunks.append(
            Chunk(
                room,
                sensor,
                attribute,
                kind,
                cols[0].to_numpy(),
                cols[1].to_numpy(),
                cols[2].to_numpy(),
                _values_of(cols[3]),
            )
        )
    return chunks


def read_segment(
    source: Path | pa.Buffer, keep: Callable[[str, str], bool] | None = None
) -> SegmentRead:
    """Read every complete record of one WAL file (or of a buffer holding a prefix of it).

    Never raises for a damaged file: reading stops at the first record that cannot be
    read, and :attr:`SegmentRead.torn` says so. ``keep(sensor_id, attribute_id)``, if
    given, selects the series to convert (the others are skipped, but counted).
    """
    buf = pa.memory_map(str(source)) if isinstance(source, Path) else pa.BufferReader(source)
    groups: dict[tuple[str, ...], list[pa.RecordBatch]] = {}
    names: dict[tuple[bytes, ...], tuple[str, ...]] = {}
    records = 0
    torn = False
    with buf:
        try:
            reader = pa.ipc.open_stream(buf)
        except (pa.ArrowInvalid, OSError):
            return SegmentRead([], 0, True)  # cut before the schema was fully written
        while True:
            try:
                batch, meta = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError):
                torn = True
                break
            records += 1
            if batch.num_rows:
                raw = tuple(meta.values())  # written in _META_KEYS order
                key = names.get(raw)
                if key is None:
                    key = names[raw] = tuple(meta[k].decode() for k in _META_KEYS)
                if keep is None or keep(key[1], key[2]):
                    groups.setdefault(key, []).append(batch)
    return SegmentRead(_group(groups), records, torn)


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


class _Stream:
    """One open IPC stream file of the current generation.

    ``size`` is the length of the complete records on disk; the descriptor is closed
    by :meth:`WalWriter.sync` once the file is sealed and fsynced.
    """

    __slots__ = ("fd", "path", "schema", "sink", "size", "started", "writer")

    def __init__(self, path: Path, layout: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self.size = 0
        self.started = False  # a record went through the IPC writer (the schema is out)
        self.schema = _schema(layout)
        self.sink = _RecordSink()
        try:
            self.writer = pa.ipc.new_stream(self.sink, self.schema)
            self.emit()
        except BaseException:
            os.close(self.fd)
            raise

    def emit(self, parts: list[Any] | None = None) -> int:
        """Write ``parts`` (default: what the IPC writer produced) with one ``pwritev``.

        On failure the file is cut back to its last complete record. Returns bytes.
        """
        if parts is None:
            parts = self.sink.take()
        total = sum(len(p) for p in parts)
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
            meta = pa.KeyValueMetadata(
                dict(zip(_META_KEYS, (k.encode() for k in key), strict=True))
            )
            self._meta[key] = meta
        try:
            stream = self._streams.get(layout)
            if stream is None:
                path = self.wal_dir / f"seg-{self.generation:012d}-{layout}.arrows"
                stream = _Stream(path, layout)
                with self._sync_lock:
                    self._streams[layout] = stream
                    self._dir_dirty = True
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
            raise StorageError(f"cannot write the WAL in {self.wal_dir}: {exc}") from exc
        self.bytes += written
        return written

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
                raise StorageError(f"cannot fsync the WAL in {self.wal_dir}: {exc}") from exc
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
