"""Writing a query's whole result to a file, batch by batch: Parquet, Arrow IPC or CSV.

    DuckDB ──► RecordBatchReader (BATCH_ROWS a batch) ──► writer ──► FILE.tmp ──► FILE

The sealed session refuses `COPY … TO`, so the rows are written here, from Python: one batch
(for Parquet, one row group) in memory at a time, whatever the result's size. The file appears whole or not at all: the batches
go to a temporary file beside it, renamed over FILE at the end (removed on an error or Ctrl-C).

    parquet   zstd; DuckDB's batches (a few thousand rows each) gathered into row groups of up to
              ROW_GROUP_BYTES: a row group a batch made thousands of row groups, whose metadata
              (min/max of every column, long JSON texts included) the writer holds until it
              closes, so memory crept up with the rows; with these groups it stays flat
              (bench/explore.py measures the peak). Column types as DuckDB gives them
    arrow     Arrow IPC file format ("Feather v2"), zstd-compressed buffers: pyarrow.ipc.open_file,
              polars.read_ipc / scan_ipc
    csv       a header line, then the rows; NULL is an empty field; lists, structs and maps as JSON
              text, intervals as text (CSV has no such types)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from correlate.errors import CorrelateError

__all__ = ["FORMATS", "format_for", "write_reader"]

FORMATS = ("parquet", "arrow", "csv")
ROW_GROUP_BYTES = 16 * 1024 * 1024  # Arrow bytes gathered before a Parquet row group is written
ROW_GROUP_ROWS = 256 * 1024
_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".csv": "csv",
}


def format_for(path: str | Path) -> str | None:
    """The format a file name implies by its suffix (.parquet, .arrow/.feather/.ipc, .csv), else None."""
    return _SUFFIXES.get(Path(path).suffix.lower())


def write_reader(reader: pa.RecordBatchReader, path: str | Path, fmt: str) -> tuple[int, int]:
    """Write every batch of `reader` to `path` in `fmt`; (rows, bytes). Atomic: see the module doc."""
    if fmt not in FORMATS:
        raise CorrelateError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        rows = _WRITERS[fmt](reader, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows, path.stat().st_size


def _parquet(reader: pa.RecordBatchReader, path: Path) -> int:
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
        rows = 0
        for table in _row_groups(reader):
            writer.write_table(table, row_group_size=table.num_rows)
            rows += table.num_rows
        return rows


def _row_groups(reader: pa.RecordBatchReader) -> Iterator[pa.Table]:
    """`reader`'s batches gathered into tables of up to ROW_GROUP_BYTES / ROW_GROUP_ROWS."""
    held: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in reader:
        held.append(batch)
        rows, size = rows + batch.num_rows, size + batch.nbytes
        if rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            yield pa.Table.from_batches(held, reader.schema)
            held, rows, size = [], 0, 0
    if held or rows == 0:
        yield pa.Table.from_batches(held, reader.schema)


def _arrow(reader: pa.RecordBatchReader, path: Path) -> int:
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, reader.schema, options=options) as writer:
        return _each(reader, writer.write_batch)


def _csv(reader: pa.RecordBatchReader, path: Path) -> int:
    import pyarrow.csv as csv

    schema = _csv_schema(reader.schema)
    with csv.CSVWriter(str(path), schema) as writer:
        return _each(reader, lambda batch: writer.write_batch(_csv_batch(batch, schema)))


def _each(reader: pa.RecordBatchReader, write: Callable[[pa.RecordBatch], Any]) -> int:
    rows = 0
    for batch in reader:
        write(batch)
        rows += batch.num_rows
    return rows


def _as_text(t: pa.DataType) -> bool:
    """Types pyarrow's CSV writer cannot write: nested ones and intervals."""
    return pa.types.is_nested(t) or pa.types.is_interval(t)


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, pa.string()) if _as_text(f.type) else f for f in schema])


def _csv_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema.equals(schema):
        return batch
    columns = [_text_column(col) if _as_text(col.type) else col for col in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _text_column(col: pa.Array) -> pa.Array:
    def text(v: Any) -> str | None:
        if v is None:
            return None
        if pa.types.is_interval(col.type):
            return str(v)
        return json.dumps(v, ensure_ascii=False, default=str)

    return pa.array([text(v) for v in col.to_pylist()], pa.string())


_WRITERS: dict[str, Callable[[pa.RecordBatchReader, Path], int]] = {
    "parquet": _parquet,
    "arrow": _arrow,
    "csv": _csv,
}
