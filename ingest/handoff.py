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
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ingest.records import Chunk, Reject
from ingest.schema import LOG_SCHEMA, SPAN_SCHEMA

__all__ = [
    "Parcel",
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


def _shm_ok() -> bool:
    return _SHM.is_dir() and os.access(_SHM, os.W_OK)


def _spill(batch: pa.RecordBatch | None) -> str | pa.RecordBatch | None:
    if batch is None or not batch.num_rows or not _shm_ok():
        return batch
    # parent pid first: the writer process that will map it (and whose death makes it stale)
    path = _SHM / f"{_PREFIX}{os.getppid()}-{os.getpid()}-{next(_counter)}.arrow"
    try:
        if _free_bytes() < 4 * batch.nbytes + _RESERVE_BYTES:
            return batch  # a small /dev/shm (containers): leave room for others, pickle this one
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
            writer.write_batch(batch)
    except OSError:  # full after all: the pipe still works
        path.unlink(missing_ok=True)
        return batch
    return str(path)


def _free_bytes() -> int:
    st = os.statvfs(_SHM)
    return st.f_bavail * st.f_frsize


def pack(chunk: Chunk) -> Parcel:
    """In the worker: the chunk with its batches written to shared memory."""
    return Parcel(_spill(chunk.spans), _spill(chunk.logs), chunk.rejects)


def _map(obj: str | pa.RecordBatch | None) -> pa.RecordBatch | None:
    if not isinstance(obj, str):
        return obj
    try:
        source = pa.memory_map(obj)
        batch = pa.ipc.open_file(source).get_batch(0)  # zero copy: buffers point into the mapping
    finally:
        os.unlink(obj)
    return batch


def unpack(parcel: Parcel) -> Chunk:
    """In the writer: the chunk back, its batches mapped (not copied)."""
    return Chunk(spans=_map(parcel.spans), logs=_map(parcel.logs), rejects=parcel.rejects)


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
