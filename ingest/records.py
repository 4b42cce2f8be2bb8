"""What a reader hands to the dataset writer: chunks of rows and rejects.

A reader is `read(stream, source) -> Iterator[Chunk]` (see `ingest/formats.py` for the
registry). It never raises on a bad record: the record becomes a `Reject` and the good
records beside it still come out in `Chunk.spans` / `Chunk.logs`, which are Arrow record
batches with exactly `SPAN_SCHEMA` / `LOG_SCHEMA`.

`RowBuilder` is the simple way to produce such batches from Python values, one row at a
time; hot paths may build columns themselves as long as the schema matches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest import arrays
from ingest.schema import LOG_SCHEMA, SPAN_SCHEMA

__all__ = [
    "Reject",
    "Chunk",
    "SourceInfo",
    "RowBuilder",
    "span_builder",
    "log_builder",
    "batch_from_columns",
    "reject_reason",
    "shift_offsets",
    "shift_chunk",
]


@dataclass(frozen=True)
class SourceInfo:
    """One input as the readers see it. `source_id` is what rows carry as provenance."""

    source_id: str
    path: str  # as the user gave it ("-" for stdin)


@dataclass(frozen=True)
class Reject:
    """A record that could not be ingested, kept verbatim with where it was and why."""

    source: str  # the path as given
    offset: int  # line number (1-based) or byte offset, as the reader documents
    reason: str  # one line, constant wording where possible
    raw: bytes  # the record verbatim (truncated by the writer if huge)
    unit: str = "line"  # "line", "byte" or "record"


@dataclass
class Chunk:
    spans: pa.RecordBatch | None = None
    logs: pa.RecordBatch | None = None
    rejects: list[Reject] = field(default_factory=list)


def reject_reason(exc: Exception) -> str:
    """A reject's reason from an exception: its first line, at most 300 characters."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def batch_from_columns(schema: pa.Schema, cols: dict[str, pa.Array], n: int) -> pa.RecordBatch:
    """A batch of `schema` from the columns a reader built (any it did not: n nulls)."""
    arrays = [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class RowBuilder:
    """Accumulates rows as dicts of column -> Python value; missing columns are NULL."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self._names = schema.names
        self._cols: dict[str, list[Any]] = {n: [] for n in self._names}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(self, row: Mapping[str, Any]) -> None:
        unknown = row.keys() - self._cols.keys()
        if unknown:
            raise KeyError(f"unknown columns {sorted(unknown)}")
        for name in self._names:
            self._cols[name].append(row.get(name))
        self._n += 1

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def flush(self) -> pa.RecordBatch | None:
        """The rows added since the last flush as one batch (None when there are none)."""
        if not self._n:
            return None
        batch = pa.RecordBatch.from_pydict(self._cols, schema=self.schema)
        self._cols = {n: [] for n in self._names}
        self._n = 0
        return batch


def span_builder() -> RowBuilder:
    return RowBuilder(SPAN_SCHEMA)


def log_builder() -> RowBuilder:
    return RowBuilder(LOG_SCHEMA)


def shift_offsets(batch: pa.RecordBatch | None, by: int) -> pa.RecordBatch | None:
    """`batch` with `by` added to its source_offset (a part's line or record numbers counted from
    the whole input's start)."""
    if batch is None or not by:
        return batch
    i = batch.schema.get_field_index("source_offset")
    return batch.set_column(i, "source_offset", pc.add(batch.column(i), arrays.int64(by)))


def shift_chunk(chunk: Chunk, by: int, unit: str | None = None) -> Chunk:
    """`chunk` counted `by` lines (or records) further: its rows' source_offset and its rejects'
    offsets (only those in `unit`, when given: a document's "record" rejects move, its "byte"
    ones are offsets in the file already). A range's or block's chunk, put where it is in the
    whole input."""
    if not by:
        return chunk
    rejects = [
        dataclasses.replace(r, offset=r.offset + by) if unit is None or r.unit == unit else r
        for r in chunk.rejects
    ]
    return Chunk(spans=shift_offsets(chunk.spans, by), logs=shift_offsets(chunk.logs, by), rejects=rejects)
