"""Compaction of one sealed WAL generation into Parquet, in this process or a worker's.

:func:`compact_generation` reads a generation's WAL files, groups their records by
series and writes each series' parts, and the generation's events as event parts
(:mod:`.event_log`). It leaves the commit point and the WAL files alone: the store
commits the generation and deletes its files once this returns.

The store's background compactor runs it in a :class:`CompactionWorker`, a process of
its own. Reading tens of thousands of WAL records and writing a part per series is
mostly Python-level work that holds the GIL; in a thread it stalled the engine's event
loop by 100–250 ms each time. In another process it costs the loop nothing. The worker
ends itself when the store's process dies (even by ``kill -9``), and parts are written
under temporary names unique to the writing process, so a worker that outlives a crash
by a moment can never mix its bytes into the next process's files.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

import sensocto_lab.storage.cold as cold
import sensocto_lab.storage.event_log as event_log
from sensocto_lab.errors import StorageError
from sensocto_lab.model import KINDS
from sensocto_lab.storage.wal import EVENTS_LAYOUT, Chunk, concat_chunks
from sensocto_lab.storage.wal_read import read_records, read_segment

__all__ = ["Compacted", "CompactionWorker", "ParquetSettings", "compact_generation", "serve"]

#: How often a worker checks that the process that started it is still alive, in s.
_PARENT_POLL_S = 0.05
#: The worker's nice increment: compaction is background work, and on a small machine
#: the engine's process must win the CPU when both want it.
_NICENESS = 10
#: How long :meth:`CompactionWorker.close` waits for the worker to end, in s.
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ParquetSettings:
    """How parts are written (from :class:`~sensocto_lab.storage.config.StorageConfig`)."""

    compression: str
    compression_level: int | None
    row_group_samples: int
    workers: int


@dataclass(frozen=True, slots=True)
class Compacted:
    """What compacting one generation did: files written, samples, events, torn WAL files.

    ``torn`` are the WAL files that ended in an unreadable record; the store keeps
    them (in ``wal/torn/``) instead of deleting them.
    """

    files: int
    samples: int
    torn: tuple[Path, ...]
    events: int = 0


def compact_generation(
    paths: list[Path],
    cold_dir: Path,
    events_dir: Path,
    generation: int,
    settings: ParquetSettings,
) -> Compacted:
    """Write the samples and events of one generation's WAL ``paths`` as Parquet parts.

    Idempotent: the parts are named by ``generation``, so compacting it again (after
    a crash before the commit) writes the same files, byte for byte.

    Raises
    ------
    StorageError
        A part could not be written.
    """
    groups: dict[tuple[str, str, str, str], list[Chunk]] = {}
    torn: list[Path] = []
    events: list[pa.RecordBatch] = []
    for p in paths:
        if p.name.endswith(f"-{EVENTS_LAYOUT}.arrows"):
            batches, cut = read_records(p)
            events += batches
            if cut:
                torn.append(p)
            continue
        read = read_segment(p)
        if read.torn:
            torn.append(p)
        for c in read.chunks:
            groups.setdefault((c.room, c.sensor_id, c.attribute_id, c.kind), []).append(c)
    merged = [concat_chunks(chunks) for chunks in groups.values()]

    def write(c: Chunk) -> int:
        return len(
            cold.write_part(
                cold_dir,
                c.room,
                c.sensor_id,
                c.attribute_id,
                KINDS.get(c.kind, KINDS["numeric"]),
                (generation, generation),
                c.ts,
                c.recv_ts,
                c.seq,
                c.values,
                compression=settings.compression,
                compression_level=settings.compression_level,
                row_group_samples=settings.row_group_samples,
            )
        )

    # Series are written in parallel: encoding releases the GIL and the fsyncs (one
    # per file and directory) overlap instead of queueing.
    workers = min(settings.workers, len(merged)) or 1
    with ThreadPoolExecutor(workers, thread_name_prefix="sensocto-parquet") as pool:
        files = sum(pool.map(write, merged))
    n_events = 0
    if events:
        table = pa.Table.from_batches(events, event_log.WAL_SCHEMA)
        files += len(
            event_log.write_parts(events_dir, table, generation, compression=settings.compression)
        )
        n_events = table.num_rows
    return Compacted(files, sum(len(c) for c in merged), tuple(torn), n_events)


def _watch_parent(parent: int) -> None:
    """End this worker as soon as the process that started it is gone."""
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def serve(parent: int) -> None:
    """The worker's loop: compact each request read from stdin, answer on stdout.

    A request is a pickled ``(paths, cold_dir, events_dir, generation, settings)``; the answer a
    pickled ``("ok", Compacted)`` or ``("error", (reason, message))``. Ends at end of input.
    """
    threading.Thread(
        target=_watch_parent, args=(parent,), name="sensocto-parent-watch", daemon=True
    ).start()
    os.nice(_NICENESS)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the answers
    while True:
        try:
            paths, cold_dir, events_dir, generation, settings = pickle.load(requests)
        except EOFError:
            return
        answer: tuple[str, Any]
        try:
            answer = (
                "ok",
                compact_generation(paths, cold_dir, events_dir, generation, settings),
            )
        except Exception as exc:  # every failure goes back to the store, which retries
            reason = getattr(exc, "reason", "storage_error")
            answer = ("error", (reason, f"{type(exc).__name__}: {exc}"))
        pickle.dump(answer, answers)
        answers.flush()


class CompactionWorker:
    """One worker process that runs :func:`compact_generation`, started ahead or on first use.

    Not thread-safe: the store's compactor thread is its only user. The worker is a
    fresh interpreter (``python -m sensocto_lab.storage._compact_worker``) talking pickles
    over its stdin/stdout: no fork of a process with threads (pyarrow's among them),
    and, unlike ``multiprocessing``, no re-import of the caller's ``__main__``, so a
    script without a ``__main__`` guard works. The first call pays the interpreter
    start and pyarrow's import, once.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker process now, without waiting for it to be ready (idempotent).

        Raises
        ------
        StorageError
            The process could not be started.
        """
        if self._proc is not None:
            return
        try:
            self._proc = self._spawn()
        except OSError as exc:
            raise StorageError(f"cannot start the compaction worker: {exc}") from exc

    def _spawn(self) -> subprocess.Popen[bytes]:
        root = str(Path(__file__).resolve().parents[2])  # where sensocto_lab is imported from
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        return subprocess.Popen(
            [sys.executable, "-m", "sensocto_lab.storage._compact_worker", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # Its own process group, so a Ctrl-C at a terminal reaches the store's
            # process, not a compaction; the same session (not start_new_session), as
            # with autogrouping the scheduler weighs nice only within one session.
            process_group=0,
        )

    def compact(
        self,
        paths: list[Path],
        cold_dir: Path,
        events_dir: Path,
        generation: int,
        settings: ParquetSettings,
    ) -> Compacted:
        """:func:`compact_generation` in the worker process; waits for it.

        Raises
        ------
        StorageError
            A part could not be written, or the worker died (the next call starts a
            new one).
        """
        self.start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            pickle.dump((paths, cold_dir, events_dir, generation, settings), proc.stdin)
            proc.stdin.flush()
            status, result = pickle.load(proc.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self.close()
            raise StorageError(f"the compaction worker died: {exc!r}") from exc
        if status != "ok":
            reason, message = result
            raise StorageError(
                f"compacting generation {generation} failed: {message}", reason=reason
            )
        done: Compacted = result
        return done

    def close(self) -> None:
        """Stop the worker process (idempotent); it ends at the end of its input."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
