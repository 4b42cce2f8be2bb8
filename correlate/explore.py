"""Exploration without a row cap: polars LazyFrames over a dataset, query results as Arrow batches.

    ds.scan("spans")          polars.LazyFrame over the span Parquet parts (filters reach row groups)
    ds.scan("traces")         polars.LazyFrame over the derived view, computed once by DuckDB
    ds.arrow(query)           pyarrow.RecordBatchReader: one guarded SELECT, streamed, no row cap
    ds.polars(query)          polars.DataFrame of the same
    ds.export(query, path)    the same batches into a Parquet, Arrow IPC or CSV file (correlate/export.py)

`spans` and `logs` are scanned by polars straight from the files the session's manifest lists,
typed as SPAN_SCHEMA / LOG_SCHEMA. The parts are sorted by (service_name, time) and cut into row
groups that hold one service each (or a few small neighbours: ingest/writer.py's MIN_GROUP_ROWS),
with min/max statistics, so a filter on service_name and
start_ns (time_ns for logs) lets polars skip every row group it does not need, as DuckDB does.

Queries (`arrow`, `polars`, `export`) go through the same guard as `sql()` and run on their own
cursor of the sealed connection: read-only, no file but the dataset's, no setting changed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from correlate import views
from correlate.errors import CorrelateError, map_duckdb_error
from ingest.schema import LOG_SCHEMA, SPAN_SCHEMA

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "BATCH_ROWS",
    "TABLE_SCHEMAS",
    "polars_schema",
    "scan_parquet",
    "check_table",
    "mapped_reader",
    "head",
]

# rows of one streamed batch: a span row with its JSON attributes is ~1 KB, so a batch is tens of
# MB at most (DuckDB's default of 1M rows a batch would be a GB)
BATCH_ROWS = 64 * 1024

TABLE_SCHEMAS = {"spans": SPAN_SCHEMA, "logs": LOG_SCHEMA}


def check_table(table: str) -> str:
    """`table` if it is one of the views, else a CorrelateError naming them."""
    if table not in views.VIEW_NAMES:
        raise CorrelateError(f"no table {table!r} to scan: one of {', '.join(views.VIEW_NAMES)}")
    return table


def polars_schema(schema: pa.Schema) -> pl.Schema:
    """The polars types of an Arrow schema (string -> String, int64 -> Int64, …)."""
    import polars as pl

    # a Table gives a DataFrame; mypy, reading pyarrow as untyped, cannot pick that overload of from_arrow
    return pl.from_arrow(schema.empty_table()).schema  # type: ignore[union-attr]


def scan_parquet(files: Sequence[Path], schema: pa.Schema) -> pl.LazyFrame:
    """A LazyFrame over exactly `files` (no glob, no hive partitions), typed as `schema`."""
    import polars as pl

    typed = polars_schema(schema)
    if not files:
        return pl.LazyFrame(schema=typed)
    return pl.scan_parquet([str(f) for f in files], schema=typed, glob=False, hive_partitioning=False)


def mapped_reader(
    reader: pa.RecordBatchReader, statement: str, on_close: Callable[[], None]
) -> pa.RecordBatchReader:
    """`reader` with DuckDB's errors mapped to SqlError as batches are read; `on_close` (which
    must bear a second call) runs when the batches are exhausted, a read fails, or the reader is
    dropped, read or not."""

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                yield batch
        except CorrelateError:
            raise
        except Exception as exc:  # duckdb.Error, or the OSError pyarrow makes of it
            raise map_duckdb_error(exc, statement) from None
        finally:
            on_close()

    out = pa.RecordBatchReader.from_batches(reader.schema, batches())
    weakref.finalize(out, on_close)  # a generator never started runs no `finally`
    return out


def head(reader: pa.RecordBatchReader, rows: int) -> pa.RecordBatchReader:
    """The first `rows` rows of `reader`; the rest is never read (dropping `reader` ends its query)."""

    def batches() -> Iterator[pa.RecordBatch]:
        left = rows
        try:
            for batch in reader:
                if left <= 0:
                    return
                yield batch.slice(0, left)
                left -= batch.num_rows
        finally:
            reader.close()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())
