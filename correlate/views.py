"""The views every query sees: `spans`, `logs`, `traces`, `service_edges`.

    spans          SPAN_SCHEMA columns, over the span Parquet files the manifest lists
    logs           LOG_SCHEMA columns, over the log Parquet files the manifest lists
    traces         one row a trace (root service/operation, start, end, duration, errors, services)
    service_edges  caller_service -> callee_service from parent/child spans on different services

`spans` and `logs` read Parquet directly so that filters on service_name / start_ns / time_ns
reach the row-group statistics. `traces` and `service_edges` are plain views over `spans`
until something asks for them; `materialize()` then computes each once into a table of the
in-memory database and points the view at it (see `DatasetSession.ensure_materialized`).
A dataset with no span (or log) files gets an empty view of the right column types.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from ingest.schema import LOG_SCHEMA, SPAN_SCHEMA

__all__ = [
    "BASE_VIEWS",
    "DERIVED_VIEWS",
    "VIEW_NAMES",
    "TRACES_SQL",
    "SERVICE_EDGES_SQL",
    "duckdb_type",
    "parquet_view_sql",
    "empty_view_sql",
    "source_view_sql",
    "DERIVED_SQL",
    "DESCRIPTIONS",
]

BASE_VIEWS = ("spans", "logs")
DERIVED_VIEWS = ("traces", "service_edges")
VIEW_NAMES = BASE_VIEWS + DERIVED_VIEWS
DESCRIPTIONS = {
    "spans": "one row a span (ingest/schema.py SPAN_SCHEMA), read from the dataset's Parquet parts",
    "logs": "one row a log record (LOG_SCHEMA), read from the dataset's Parquet parts",
    "traces": "one row a trace: root service/operation, start, end, duration, errors, services",
    "service_edges": "caller_service -> callee_service: calls, errors, p50/p95/p99 of the callee spans",
}

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.int16(): "SMALLINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    try:
        return _DUCK_TYPES[arrow_type]
    except KeyError:
        raise ValueError(f"no DuckDB type for Arrow type {arrow_type}") from None


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parquet_view_sql(view: str, schema: pa.Schema, files: Sequence[Path]) -> str:
    cols = ", ".join(_quote_ident(n) for n in schema.names)
    file_list = ", ".join(_quote_str(str(f)) for f in files)
    return f"CREATE OR REPLACE VIEW {view} AS SELECT {cols} FROM read_parquet([{file_list}])"


def empty_view_sql(view: str, schema: pa.Schema) -> str:
    cols = ", ".join(f"CAST(NULL AS {duckdb_type(f.type)}) AS {_quote_ident(f.name)}" for f in schema)
    return f"CREATE OR REPLACE VIEW {view} AS SELECT {cols} WHERE false"


def source_view_sql(view: str, files: Sequence[Path]) -> str:
    schema = {"spans": SPAN_SCHEMA, "logs": LOG_SCHEMA}[view]
    return parquet_view_sql(view, schema, files) if files else empty_view_sql(view, schema)


# One row a trace. The root is the earliest span without a parent; a trace made only of
# orphans (its root was never received) takes its earliest span instead.
TRACES_SQL = """
SELECT
    trace_id,
    arg_min(service_name, struct_pack(orphan := parent_span_id IS NOT NULL, s := start_ns)) AS root_service,
    arg_min(name, struct_pack(orphan := parent_span_id IS NOT NULL, s := start_ns)) AS root_operation,
    min(start_ns) AS start_ns,
    max(end_ns) AS end_ns,
    max(end_ns) - min(start_ns) AS duration_ns,
    bool_or(status_code = 'ERROR') AS has_error,
    count(*) FILTER (WHERE status_code = 'ERROR') AS error_count,
    count(*) AS span_count,
    count(DISTINCT service_name) AS service_count,
    list(DISTINCT service_name ORDER BY service_name) AS services
FROM spans
GROUP BY trace_id
"""

# Caller -> callee across services: a child span whose parent span is on another service.
# Latency figures are the callee (child) span's duration in ns.
SERVICE_EDGES_SQL = """
SELECT
    p.service_name AS caller_service,
    c.service_name AS callee_service,
    count(*) AS calls,
    count(*) FILTER (WHERE c.status_code = 'ERROR') AS errors,
    count(*) FILTER (WHERE c.status_code = 'ERROR') / count(*) AS error_rate,
    CAST(quantile_cont(c.duration_ns, 0.5) AS BIGINT) AS p50_ns,
    CAST(quantile_cont(c.duration_ns, 0.95) AS BIGINT) AS p95_ns,
    CAST(quantile_cont(c.duration_ns, 0.99) AS BIGINT) AS p99_ns
FROM (SELECT trace_id, parent_span_id, service_name, status_code, duration_ns
      FROM spans WHERE parent_span_id IS NOT NULL) AS c
JOIN (SELECT trace_id, span_id, service_name FROM spans) AS p
  ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
WHERE p.service_name IS DISTINCT FROM c.service_name
GROUP BY ALL
"""

DERIVED_SQL = {"traces": TRACES_SQL, "service_edges": SERVICE_EDGES_SQL}
