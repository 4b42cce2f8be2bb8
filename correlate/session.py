"""A read-only DuckDB session over one dataset: the object every consumer of `correlate/` holds.

    with open_dataset("checkout") as ds:
        ds.con                      duckdb connection with views spans, logs, traces, service_edges
        ds.sql(query)               SqlResult: one sandboxed SELECT, row cap, time limit
        ds.trace(trace_id)          TraceView: tree, self times, critical path, skew warnings
        ds.correlate(window, ...)   CorrelationReport (correlate.engine.run_correlation)
        ds.summary()                counts, time range, services, top operations
        ds.timeline(window)         requests, errors, p50/p95 per service over time; change points, onset
        ds.find_traces(window, …)   the traces whose spans match a service/operation/status/duration
        ds.scope_notes(window, …)   unknown service names, thin windows, windows past the data
        ds.exemplar_traces(window, baseline)       slowest / failing / typical trace ids, with their role
        ds.trace_sources(trace_id)                 the sources a trace's spans came from
        ds.service_graph_change(window, baseline)  calls, errors, p95 per caller -> callee edge
        ds.log_template_counts(window, baseline)   log templates per service and level, exact counts
        ds.service_activity(window, baseline)      spans, requests, failures, traces per service
        ds.code_locations(window) / ds.stack_traces(window)   code the window's spans point at
        ds.scan("spans")            polars LazyFrame over the Parquet parts (a snapshot of the files)
        ds.arrow(query)             pyarrow RecordBatchReader: the whole result, streamed, no cap
        ds.polars(query)            polars DataFrame of the whole result
        ds.export(query, path)      the whole result into a Parquet / Arrow / CSV file
        ds.columns()                each view's columns and DuckDB types

The connection is locked down after the views are created, in this order (the order matters:
DuckDB refuses to change `allowed_paths` once external access is off, and refuses every
setting once the configuration is locked):

    1. connect in memory, extensions neither auto-installed nor auto-loaded, memory/threads set
    2. create the views over the Parquet files the manifest lists
    3. allowed_paths := exactly those files (views keep reading them)
    4. enable_external_access := false (no other file, no network, no INSTALL/LOAD/ATTACH)
    5. lock_configuration := true (no SET/RESET/PRAGMA can undo 3-4)
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from correlate import explore, views
from correlate.errors import (
    CorrelateError,
    DatasetNotFound,
    DatasetUnusable,
    Kind,
    QueryCancelled,
    QueryTimeout,
    SqlError,
    map_duckdb_error,
)
from correlate.sql_guard import check_query
from correlate.types import (
    CodeLocation,
    CorrelationReport,
    ExemplarTrace,
    ExportResult,
    LogTemplateCounts,
    ServiceActivity,
    ServiceGraphChange,
    SqlResult,
    StackTrace,
    TraceView,
    Window,
)
from ingest.dataset import DatasetHandle, open_handle

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from correlate.find import FoundTraces
    from correlate.timeline import Timeline

__all__ = ["DatasetSession", "open_dataset", "DEFAULT_MEMORY_LIMIT", "DEFAULT_THREADS"]

# A 2-core machine shared with other work: two threads, and a memory limit that keeps the
# process well under 2 GB RSS (DuckDB spills to a private temp folder beyond it).
DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_THREADS = 2


def open_dataset(name: str, *, memory_limit: str | None = None, threads: int | None = None) -> DatasetSession:
    """Open dataset `name` read-only; DatasetNotFound lists the known names."""
    from ingest.errors import BadDatasetName, IngestError, Remedy
    from ingest.errors import DatasetNotFound as IngestDatasetNotFound

    try:
        handle = open_handle(name)
    except IngestDatasetNotFound as exc:
        raise DatasetNotFound(exc.name, exc.known) from None
    except BadDatasetName as exc:  # the name cannot be used as given: the caller's input
        raise CorrelateError(str(exc), kind=Kind.INVALID_INPUT) from None
    except IngestError as exc:  # a later layout; a dataset locked while an old one was upgraded
        raise DatasetUnusable(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise CorrelateError(
            f"cannot read the manifest of dataset {name!r}: {exc}",
            "; remove it and ingest it again: {}",
            remedy=Remedy("remove_dataset", {"dataset": name}),
        ) from None
    return DatasetSession(handle, memory_limit=memory_limit, threads=threads)


class DatasetSession:
    """One dataset opened read-only in an in-memory DuckDB. Close it (or use `with`)."""

    def __init__(
        self, handle: DatasetHandle, *, memory_limit: str | None = None, threads: int | None = None
    ) -> None:
        self.name = handle.name
        self.handle = handle
        self._tmpdir = tempfile.mkdtemp(prefix="dcr-duckdb-")
        # a session never closed still removes its spill folder when collected or at exit
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        self._materialized: set[str] = set()
        self._lock = threading.Lock()
        self._sql_lock = threading.Lock()
        self._cancelled = threading.Event()
        self._cursors: set[Any] = set()  # streams of arrow()/polars()/export() still open
        try:
            self.con, self._user = _connect(
                handle, memory_limit or DEFAULT_MEMORY_LIMIT, threads or DEFAULT_THREADS, self._tmpdir
            )
        except BaseException:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise

    # context manager -------------------------------------------------------------------

    def __enter__(self) -> DatasetSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for cursor in list(getattr(self, "_cursors", ())):
            cursor.close()
        for con in (getattr(self, "_user", None), getattr(self, "con", None)):
            if con is not None:
                con.close()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    # views -----------------------------------------------------------------------------

    def ensure_materialized(self, *names: str, con: Any = None) -> None:
        """Compute derived views (`traces`, `service_edges`) once into tables; later reads are cheap.

        `con` is the connection (or cursor) to run on, so that a caller's interrupt reaches it.
        """
        con = con if con is not None else self.con
        for name in names:
            if name not in views.DERIVED_SQL:
                raise ValueError(f"not a derived view: {name!r} (one of {', '.join(views.DERIVED_VIEWS)})")
            with self._lock:
                if name in self._materialized:
                    continue
                table = f"_dcr_{name}"
                try:
                    con.execute(f"CREATE OR REPLACE TABLE {table} AS {views.DERIVED_SQL[name]}")
                    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {table}")
                except Exception as exc:
                    raise _map(exc, "") from None
                self._materialized.add(name)

    # queries ---------------------------------------------------------------------------

    def sql(self, query: str, *, limit: int = 1000, timeout_s: float | None = 30.0) -> SqlResult:
        """Run one read-only SELECT; at most `limit` rows, interrupted after `timeout_s` (None: no
        time limit; `interrupt()` still stops it). `limit=0` asks for the columns only: no row is
        fetched and nothing counts as truncated."""
        if limit < 0:
            raise SqlError(f"row limit must be >= 0, got {limit}")
        with self._sql_lock:  # one user query at a time on the dedicated connection
            self._cancelled.clear()
            statement = check_query(self._user, query)
            return self._run_user_query(statement, limit, timeout_s)

    def interrupt(self) -> None:
        """Stop the query `sql()` is running, from another thread (a Ctrl-C handler): that call
        raises QueryCancelled. Nothing happens when no query runs."""
        self._cancelled.set()
        self._user.interrupt()

    def _run_user_query(self, statement: str, limit: int, timeout_s: float | None) -> SqlResult:
        started = time.monotonic()
        user = self._user
        fired = threading.Event()

        def interrupt() -> None:
            fired.set()
            user.interrupt()

        timer = threading.Timer(timeout_s, interrupt) if timeout_s is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            derived = [n for n in views.DERIVED_VIEWS if _mentions(statement, n)]
            self.ensure_materialized(*derived, con=user)
            # execute() streams: fetchmany stops the work after limit + 1 rows
            cursor = user.execute(statement)
            columns = tuple(d[0] for d in (cursor.description or ()))
            rows = cursor.fetchmany(limit + 1) if limit else []
            user.abort()  # drop the rest of a capped result: the connection is free again
        except CorrelateError as exc:
            raise self._stopped_or(exc, fired, timeout_s) from None
        except Exception as exc:
            raise self._stopped_or(_map(exc, statement), fired, timeout_s) from None
        finally:
            if timer is not None:
                timer.cancel()
        truncated = len(rows) > limit
        return SqlResult(
            columns=columns,
            rows=tuple(tuple(r) for r in rows[:limit]),
            truncated=truncated,
            row_cap=limit,
            seconds=round(time.monotonic() - started, 6),
        )

    def _stopped_or(
        self, exc: CorrelateError, fired: threading.Event, timeout_s: float | None
    ) -> CorrelateError:
        if fired.is_set():
            return QueryTimeout(timeout_s or 0.0)
        if self._cancelled.is_set():
            return QueryCancelled()
        return exc

    # exploration: no row cap ---------------------------------------------------------------

    def scan(self, table: str = "spans") -> pl.LazyFrame:
        """A polars LazyFrame over `table` (spans, logs, traces or service_edges).

        spans and logs: polars reads the dataset's Parquet parts itself, typed as SPAN_SCHEMA /
        LOG_SCHEMA. The parts are sorted by service and time, one service a row group (a few
        small ones may share one), so a
        `filter(pl.col("service_name") == s, pl.col("start_ns").is_between(a, b))` reads only
        the row groups that can hold those rows (`time_ns` for logs).

        traces and service_edges are derived: DuckDB computes them now (once a session, as for
        `sql()`), and the LazyFrame is over that in-memory Arrow table.

        A snapshot: the LazyFrame reads the files this session's manifest listed, fixed at this
        call. Part files are never rewritten, so a collect later gives the same rows; an ingest
        since then is not seen (open the dataset again for it), and a collect after the dataset
        was removed fails with a polars error naming the missing file."""
        import polars as pl

        table = explore.check_table(table)
        if table in explore.TABLE_SCHEMAS:
            files = self.handle.span_files if table == "spans" else self.handle.log_files
            return explore.scan_parquet(files, explore.TABLE_SCHEMAS[table])
        with self._cursor() as cursor:
            self.ensure_materialized(table, con=cursor)
            try:
                data = cursor.sql(f"SELECT * FROM {table}").to_arrow_table()
            except Exception as exc:
                raise _map(exc, "") from None
        # a Table gives a DataFrame; mypy, reading pyarrow as untyped, cannot pick that overload of from_arrow
        return pl.from_arrow(data).lazy()  # type: ignore[union-attr]

    def arrow(self, query: str, *, batch_rows: int = explore.BATCH_ROWS) -> pa.RecordBatchReader:
        """The whole result of one read-only SELECT, streamed: `batch_rows` rows a batch, no row
        cap, no time limit. The same guard as `sql()`; a refused or failing query raises SqlError,
        here or while the batches are read. Read it to the end or drop it: it holds a cursor."""
        return self._stream_on(self._open_cursor(), query, batch_rows)

    def polars(self, query: str) -> pl.DataFrame:
        """The whole result of one read-only SELECT as a polars DataFrame (see `arrow`)."""
        import polars as pl

        # a Table gives a DataFrame (see scan)
        return pl.from_arrow(self.arrow(query).read_all())  # type: ignore[return-value]

    def export(
        self,
        query: str,
        path: str | Path,
        *,
        format: str | None = None,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> ExportResult:
        """Write the whole result of one read-only SELECT to `path` (its first `limit` rows when
        given), batch by batch, in bounded memory: parquet, arrow (IPC file) or csv, by default
        from the file's suffix. The file appears whole or not at all (correlate/export.py);
        QueryTimeout after `timeout_s`."""
        from correlate import export

        fmt = format or export.format_for(path)
        if fmt not in export.FORMATS:
            raise CorrelateError(
                f"no export format for {str(path)!r}: name one of {', '.join(export.FORMATS)} "
                "or end the file name in .parquet, .arrow or .csv"
            )
        if limit is not None and limit < 0:
            raise SqlError(f"row limit must be >= 0, got {limit}")
        started = time.monotonic()
        cursor = self._open_cursor()
        fired = threading.Event()

        # started before the query: DuckDB runs it up to its first batch when the reader is made
        def interrupt() -> None:
            fired.set()
            cursor.interrupt()

        timer = threading.Timer(timeout_s or 0.0, interrupt)
        timer.daemon = True
        if timeout_s is not None:
            timer.start()
        reader = None
        try:
            reader = self._stream_on(cursor, query, explore.BATCH_ROWS)
            if limit is not None:
                reader = explore.head(reader, limit)
            rows, size = export.write_reader(reader, path, fmt)
        except SqlError:
            if fired.is_set():
                raise QueryTimeout(timeout_s or 0.0) from None
            raise
        finally:
            timer.cancel()
            if reader is not None:
                reader.close()
        return ExportResult(
            path=str(path), format=fmt, rows=rows, bytes=size, seconds=round(time.monotonic() - started, 6)
        )

    def columns(self) -> dict[str, list[tuple[str, str]]]:
        """Each view's (column, DuckDB type) in order: what `.schema` and completion show."""
        names = ", ".join(f"'{v}'" for v in views.VIEW_NAMES)
        out: dict[str, list[tuple[str, str]]] = {v: [] for v in views.VIEW_NAMES}
        for table, column, dtype in self.fetch(
            f"SELECT table_name, column_name, data_type FROM information_schema.columns "
            f"WHERE table_name IN ({names}) ORDER BY table_name, ordinal_position"
        ):
            out[table].append((column, dtype))
        return out

    def _stream_on(self, cursor: Any, query: str, batch_rows: int) -> pa.RecordBatchReader:
        """The reader of one guarded query on `cursor`, a cursor of its own (the same views and
        fences as the session's); the cursor closes when the reader is done or dropped, or here
        when the query fails."""
        try:
            statement = check_query(cursor, query)
            derived = [n for n in views.DERIVED_VIEWS if _mentions(statement, n)]
            self.ensure_materialized(*derived, con=cursor)
            reader = cursor.sql(statement).to_arrow_reader(batch_rows)
        except BaseException as exc:
            self._close_cursor(cursor)
            if isinstance(exc, Exception):
                raise _map(exc, query) from None
            raise
        return explore.mapped_reader(reader, statement, lambda: self._close_cursor(cursor))

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        cursor = self._open_cursor()
        try:
            yield cursor
        finally:
            self._close_cursor(cursor)

    def _open_cursor(self) -> Any:
        cursor = self.con.cursor()
        with self._lock:
            self._cursors.add(cursor)
        return cursor

    def _close_cursor(self, cursor: Any) -> None:
        """Close a stream's cursor once (a reader's end and its finalizer may both ask)."""
        with self._lock:
            if cursor not in self._cursors:
                return
            self._cursors.discard(cursor)
        cursor.close()

    def trace(self, trace_id: str) -> TraceView:
        """The span tree of one trace with self times, critical path and warnings."""
        from correlate.trace_view import load_trace

        return load_trace(self, trace_id)

    def correlate(
        self,
        window: Window | None = None,
        baseline: Window | None = None,
        services: Sequence[str] = (),
    ) -> CorrelationReport:
        """Ranked root-cause candidates for `window` against `baseline` (see correlate.engine)."""
        from correlate.engine import run_correlation

        return run_correlation(self, window, baseline, services)

    def summary(self) -> dict[str, Any]:
        """Counts, time range, services and the busiest operations of the dataset."""
        from correlate.summary import dataset_summary

        return dataset_summary(self)

    def timeline(
        self, window: Window | None = None, services: Sequence[str] = (), max_buckets: int = 60
    ) -> Timeline:
        """Requests, errors, p50/p95 per service in round buckets, change points and the onset
        (correlate/timeline.py)."""
        from correlate.timeline import timeline

        return timeline(self, window, services, max_buckets)

    def find_traces(self, window: Window | None = None, **filters: Any) -> FoundTraces:
        """Traces with a span in `window` that matches service, operation, status and duration,
        ordered, with a fast/typical/slow sample (correlate/find.py)."""
        from correlate.find import find_traces

        return find_traces(self, window, **filters)

    def scope_notes(
        self, window: Window, baseline: Window | None = None, services: Sequence[str] = ()
    ) -> list[str]:
        """Notes on a question's scope: unknown services, a thin window, bounds past the data
        (correlate/scope.py)."""
        from correlate.scope import scope_notes

        return scope_notes(self, window, baseline, services)

    # evidence beside the candidates (correlate/evidence.py) -------------------------------

    def exemplar_traces(
        self, window: Window, baseline: Window | None = None, services: Sequence[str] = ()
    ) -> tuple[ExemplarTrace, ...]:
        """The window's slowest, most erroring and median-duration traces and the baseline's
        median-duration one, each with its role and the query that picked it."""
        from correlate import evidence

        return evidence.exemplar_traces(self, window, baseline, services)

    def trace_sources(self, trace_id: str) -> tuple[str, ...]:
        """The source ids (ingested files) the spans of one trace came from."""
        from correlate import evidence

        return evidence.trace_sources(self, trace_id)

    def service_graph_change(self, window: Window, baseline: Window | None = None) -> ServiceGraphChange:
        """Calls, errors and p95 of every caller -> callee edge in the window and the baseline."""
        from correlate import evidence

        return evidence.service_graph_change(self, window, baseline)

    def log_template_counts(
        self,
        window: Window,
        baseline: Window | None = None,
        services: Sequence[str] = (),
        *,
        redact: Callable[[str], str] | None = None,
    ) -> LogTemplateCounts:
        """Log templates (the log_templates analysis's) per service and level, with exact counts
        in the window and the baseline; `redact` is applied to each text before templating."""
        from correlate import evidence

        return evidence.log_template_counts(self, window, baseline, services, redact=redact)

    def service_activity(self, window: Window, baseline: Window | None = None) -> ServiceActivity:
        """Spans, requests (failed ones too) and traces per service in the window and the baseline."""
        from correlate import evidence

        return evidence.service_activity(self, window, baseline)

    def code_locations(self, window: Window) -> tuple[CodeLocation, ...]:
        """The code places the window's spans name, those with the most errors first."""
        from correlate import evidence

        return evidence.code_locations(self, window)

    def stack_traces(self, window: Window) -> tuple[StackTrace, ...]:
        """Stack traces of exception events on the window's spans."""
        from correlate import evidence

        return evidence.stack_traces(self, window)

    def fetch(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Internal queries (trusted SQL) with duckdb errors mapped."""
        try:
            return self.con.execute(query, list(params)).fetchall()
        except Exception as exc:
            raise _map(exc, query) from None


# ---------------------------------------------------------------------------------------


def _connect(handle: DatasetHandle, memory_limit: str, threads: int, tmpdir: str) -> tuple[Any, Any]:
    """(connection for internal queries, connection for user queries), both locked down."""
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "memory_limit": memory_limit,
        "threads": threads,
        "temp_directory": tmpdir,
        "errors_as_json": True,
    }
    try:
        con = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:
        raise CorrelateError(f"cannot start DuckDB: {_map(exc, '')}") from None
    try:
        # a setting of the parquet extension, so not in `config`; GLOBAL: a plain SET holds for this
        # connection alone, and the cursors (user queries, streams) would read every footer again
        con.execute("SET GLOBAL parquet_metadata_cache = true")
        files = {"spans": handle.span_files, "logs": handle.log_files}
        missing = [f for fs in files.values() for f in fs if not f.is_file()]
        if missing:
            raise CorrelateError(
                f"dataset {handle.name!r} is damaged: {missing[0]} is listed in its manifest but missing; "
                "re-ingest it"
            )
        for view in views.BASE_VIEWS:
            con.execute(views.source_view_sql(view, files[view]))
        for view in views.DERIVED_VIEWS:
            con.execute(f"CREATE OR REPLACE VIEW {view} AS {views.DERIVED_SQL[view]}")
        for view in views.VIEW_NAMES:  # bind each once: a schema mismatch shows here, not later
            con.execute(f"SELECT * FROM {view} LIMIT 0").fetchall()
        # user queries get their own connection so that an interrupt stops only them; errors as
        # JSON carry the error position (a per-connection setting, so set before the lock)
        user = con.cursor()
        user.execute("SET errors_as_json = true")
        allowed = sorted({str(f) for fs in files.values() for f in fs})
        con.execute("SET allowed_paths = ?", [allowed])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except CorrelateError:
        con.close()
        raise
    except duckdb.Error as exc:
        con.close()
        raise CorrelateError(f"cannot open dataset {handle.name!r}: {_map(exc, '')}; re-ingest it") from None
    return con, user


def _map(exc: BaseException, query: str) -> CorrelateError:
    if isinstance(exc, CorrelateError):
        return exc
    return map_duckdb_error(exc, query)


def _mentions(statement: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", statement, re.IGNORECASE) is not None
