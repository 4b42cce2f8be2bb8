"""How decoded batches cross from a worker process to the writer without being copied.

    worker: batch ──Arrow IPC file in /dev/shm──► path ──(pickled: a short string)──► writer
    writer: path ──memory map (zero copy)──► batch; the file is unlinked at once

Span and log batches travel in a wire form (`SPAN_WIRE_SCHEMA`, `LOG_WIRE_SCHEMA`): the columns shared by a whole
(resource, scope) group -- service, host, resource and scope attribute texts, source id --
are dictionary-encoded, so their few hundred bytes a span are neither copied per row by the
worker, nor handed over, nor sorted row by row in the writer, nor hashed again by the Parquet
dictionary encoder. The writer stores them as plain string columns (SPAN_SCHEMA).

Pickling a record batch through a pipe costs a serialisation, two copies and a
deserialisation, about as much CPU as writing it to Parquet; a shared-memory file costs one
copy. The file is unlinked as soon as the writer has mapped it (the mapping keeps the data
alive); files of a process that died before that are removed by the next ingest. Without
/dev/shm, or when it is short of room (containers default to 64 MB), batches are pickled.

Files are reused when the writer has a `Recycler`: a mapped file then stays, and goes back to the
recycler once nothing refers to its mapping any more; the next tasks are given such files
(`with_spares`), and a worker writes its batch over one (`_write_over`) instead of into a new
file. tmpfs keeps a file's pages, so the kernel neither allocates and zeroes fresh pages for
every batch nor frees them when the writer lets go of the mapping: about a third of the hand-off's
CPU (docs/benchmarks.md, "Ingest"). A file the task did not use comes back in a parcel of its
own (`Parcel.spare`); a task that fails removes the files it had; the results of tasks nobody
reads any more are removed as they end (`forget`); the recycler removes its files when it is
closed, and those still mapped then as they come back. A mapping holds no file descriptor (the
writer holds hundreds of batches at once). Files still named when the ingest is killed (-9) are
removed by the next ingest, as files in flight always were.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ingest.records import Chunk, Reject
from ingest.schema import LOG_SCHEMA, SPAN_SCHEMA

__all__ = [
    "Parcel",
    "Recycler",
    "forget",
    "with_spares",
    "pack",
    "unpack",
    "clean_stale",
    "SPAN_DICT_COLUMNS",
    "SPAN_WIRE_SCHEMA",
    "LOG_DICT_COLUMNS",
    "LOG_WIRE_SCHEMA",
    "to_wire",
]

_SHM = Path("/dev/shm")
_PREFIX = "dcr-ingest-"
_counter = itertools.count()
_RESERVE_BYTES = 256 * 1024 * 1024


SPAN_DICT_COLUMNS = (
    "service_name",
    "service_version",
    "service_instance_id",
    "host",
    "scope_name",
    "scope_version",
    "resource_attributes",
    "scope_attributes",
    "source_id",
    "kind",  # closed sets: the native scan gives their codes, which index the names as they are
    "status_code",
)
_DICT = pa.dictionary(pa.int32(), pa.string())
SPAN_WIRE_SCHEMA = pa.schema(
    [pa.field(f.name, _DICT) if f.name in SPAN_DICT_COLUMNS else f for f in SPAN_SCHEMA]
)


# a log record's resource and scope columns: ~270 of a log's ~670 Arrow bytes in a Collector dump
LOG_DICT_COLUMNS = (
    "service_name",
    "service_version",
    "host",
    "scope_name",
    "resource_attributes",
    "source_id",
)
LOG_WIRE_SCHEMA = pa.schema(
    [pa.field(f.name, _DICT) if f.name in LOG_DICT_COLUMNS else f for f in LOG_SCHEMA]
)


def to_wire(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A span or log batch (SPAN_SCHEMA / LOG_SCHEMA, or already wire) in its wire schema."""
    wire = LOG_WIRE_SCHEMA if batch.num_columns == len(LOG_SCHEMA) else SPAN_WIRE_SCHEMA  # fixed widths
    if batch.schema.equals(wire):
        return batch
    cols = []
    for f, col in zip(wire, batch.columns, strict=True):
        if f.type == _DICT and col.type != _DICT:
            col = col.cast(pa.string()).dictionary_encode()
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=wire)


@dataclass
class Parcel:
    """A chunk in transit: batches as shared-memory file paths (or the batches themselves)."""

    spans: str | pa.RecordBatch | None
    logs: str | pa.RecordBatch | None
    rejects: list[Reject] = field(default_factory=list)
    spare: list[str] = field(default_factory=list)  # reusable files the task was given and did not use


class Recycler:
    """The writer's reusable hand-off files: each comes back (`release`) when the last reference
    to its mapping goes, and is given to a later task (`take`). At most `keep` wait here (each
    holds a batch's worth of /dev/shm); more are removed, and so is every file after `close`.

    `release` runs in a finalizer: in any thread, and inside a garbage collection that an
    allocation anywhere can start, `take`'s own included. So it takes no lock: it queues the
    path (SimpleQueue.put is safe there), and `take` and `close` sort the queue out under theirs."""

    def __init__(self, keep: int) -> None:
        self._lock = threading.Lock()
        self._back: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._free: list[str] = []
        self._keep = keep
        self._closed = False

    def take(self, n: int) -> tuple[str, ...]:
        """Up to `n` files, now the caller's."""
        with self._lock:
            self._sort_back()
            given = tuple(self._free.pop() for _ in range(min(n, len(self._free))))
        return given

    def release(self, path: str) -> None:
        self._back.put(path)
        if self._closed:  # close() may have emptied the queue already: nobody would take it
            _unlink_queued(self._back)

    def close(self) -> None:
        """Remove the waiting files; those still mapped are removed when they come back."""
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        _unlink_queued(self._back)
        for path in free:
            _unlink(path)

    def _sort_back(self) -> None:
        while True:
            try:
                path = self._back.get_nowait()
            except queue.Empty:
                return
            if len(self._free) < self._keep:
                self._free.append(path)
            else:
                _unlink(path)


def _unlink_queued(q: queue.SimpleQueue[str]) -> None:
    while True:
        try:
            _unlink(q.get_nowait())
        except queue.Empty:
            return


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def forget(parcels: Iterable[Parcel]) -> None:
    """Remove the files of parcels nobody will unpack (an ingest that stopped early)."""
    for parcel in parcels:
        for obj in (parcel.spans, parcel.logs, *parcel.spare):
            if isinstance(obj, str):
                _unlink(obj)


# in a decoding process, while a task runs under with_spares: the files it may write its batches
# over, and those it has written (removed if it fails: nobody will map them)
_spare: list[str] = []
_written: list[str] | None = None


def with_spares(
    spare: tuple[str, ...], fn: Callable[..., tuple[list[Parcel], int]], *args: object
) -> tuple[list[Parcel], int]:
    """In a worker: `fn(*args)` (a task whose parcels come from `pack`) writing its batches over
    the files in `spare`; those it did not use come back in a last, empty parcel. A task that
    fails removes every file it was given or wrote."""
    global _written
    _spare[:] = spare
    _written = []
    try:
        parcels, n = fn(*args)
    except BaseException:
        for path in (*_spare, *_written):
            _unlink(path)
        raise
    finally:
        left, _spare[:], _written = _spare[:], [], None
    if left:
        parcels = [*parcels, Parcel(None, None, spare=left)]
    return parcels, n


def _shm_ok() -> bool:
    return _SHM.is_dir() and os.access(_SHM, os.W_OK)


def _spill(batch: pa.RecordBatch | None) -> str | pa.RecordBatch | None:
    if batch is None or not batch.num_rows or not _shm_ok():
        return batch
    if _free_bytes() < 4 * batch.nbytes + _RESERVE_BYTES:
        return batch  # a small /dev/shm (containers): leave room for others, pickle this one
    while _spare:
        got = _write(_spare.pop(), batch, _write_over)
        if got is not None:
            return got
    # parent pid first: the writer process that will map it (and whose death makes it stale)
    path = str(_SHM / f"{_PREFIX}{os.getppid()}-{os.getpid()}-{next(_counter)}.arrow")
    got = _write(path, batch, _write_new)
    return batch if got is None else got


def _write(
    path: str, batch: pa.RecordBatch, how: Callable[[str, pa.RecordBatch], None]
) -> str | pa.RecordBatch | None:
    """`batch` written to `path` by `how` -> the path; the batch itself when /dev/shm is full
    (the pipe still works); None when the file is gone (a spare removed meanwhile: not ours)."""
    try:
        how(path, batch)
    except FileNotFoundError:
        return None
    except OSError:
        _unlink(path)
        return batch
    except BaseException:
        _unlink(path)
        raise
    return _wrote(path)


def _write_new(path: str, batch: pa.RecordBatch) -> None:
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)


def _wrote(path: str) -> str:
    if _written is not None:
        _written.append(path)
    return path


def _write_over(path: str, batch: pa.RecordBatch) -> None:
    """`batch` as the Arrow IPC file at `path`, written over the file's pages (not truncated
    first, which would free them), then cut to its length."""
    fd = os.open(path, os.O_RDWR)
    try:
        # buffered: a short write is written on (pa.PythonFile takes no notice of one)
        with open(fd, "r+b", closefd=False) as raw:
            with pa.ipc.new_file(pa.PythonFile(raw, mode="w"), batch.schema) as writer:
                writer.write_batch(batch)
            raw.flush()
            size = raw.tell()
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def _free_bytes() -> int:
    st = os.statvfs(_SHM)
    return st.f_bavail * st.f_frsize


def pack(chunk: Chunk) -> Parcel:
    """In the worker: the chunk with its batches written to shared memory."""
    return Parcel(_spill(chunk.spans), _spill(chunk.logs), chunk.rejects)


def _map(obj: str | pa.RecordBatch | None, recycler: Recycler | None) -> pa.RecordBatch | None:
    if not isinstance(obj, str):
        return obj
    if recycler is None:
        try:
            source = pa.memory_map(obj)
            return pa.ipc.open_file(source).get_batch(0)  # zero copy: buffers point into the mapping
        finally:
            os.unlink(obj)
    try:
        with pa.memory_map(obj) as source:  # closed at once: the mapping holds no descriptor
            whole = source.read_buffer()
    except BaseException:
        _unlink(obj)
        raise
    # the batch's buffers are slices of a py_buffer over `view`, so they hold `view` as long as
    # any of them lives: `view` goes, and the file back to the recycler, only when nothing can
    # read the mapping any more
    view = memoryview(whole)
    del whole
    weakref.finalize(view, recycler.release, obj)
    return pa.ipc.open_file(pa.py_buffer(view)).get_batch(0)


def unpack(parcel: Parcel, recycler: Recycler | None = None) -> Chunk:
    """In the writer: the chunk back, its batches mapped (not copied); with a `recycler`, their
    files go back to it when their batches are gone (else they are removed at once), as do the
    parcel's spare files."""
    for path in parcel.spare:
        if recycler is None:
            _unlink(path)
        else:
            recycler.release(path)
    return Chunk(spans=_map(parcel.spans, recycler), logs=_map(parcel.logs, recycler), rejects=parcel.rejects)


def clean_stale() -> None:
    """Remove hand-off files whose writer process no longer exists (a kill -9 mid-ingest)."""
    if not _SHM.is_dir():
        return
    for f in _SHM.glob(f"{_PREFIX}*.arrow"):
        try:
            pid = int(f.name[len(_PREFIX) :].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue
