"""Tools to look at a dataset's rows: query_spans (read-only SQL) and get_trace (one trace's anatomy)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from mcp_server import limits
from mcp_server.tools import spec
from mcp_server.tools.base import CursorArg, DatasetArg, Objs, Page, iso, paged

__all__ = ["TOOLS", "query_spans", "get_trace", "QueryResult", "TraceResult"]

SQL_TIMEOUT_S = 30.0


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_cap: int
    more_rows: bool = Field(description="the query had more rows than limit")
    seconds: float
    page: Page


class TraceResult(BaseModel):
    trace_id: str
    start: str | None
    end: str | None
    duration_ns: int
    span_count: int
    critical_path: Objs("span_id, service, operation, start_ns, end_ns")
    warnings: list[str]
    spans: Objs("depth-first: span_id, parent_span_id, service, operation, start_ns, duration_ns, …")
    page: Page


def _jsonable(rows: Any) -> list[list[Any]]:
    # DuckDB hands back Decimal, datetime, UUID, bytes…: the same text form the JSON uses.
    return json.loads(limits.dumps([list(r) for r in rows]))


def query_spans(
    dataset: DatasetArg,
    sql: Annotated[str, Field(description="One SELECT over views spans, logs, traces, service_edges.")],
    limit: Annotated[int, Field(ge=1, le=10_000, description="Row cap.")] = 200,
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, QueryResult]:
    """Run one read-only SQL SELECT (DuckDB dialect) over a dataset: check a
    candidate's evidence (each has a reproducing sql) or ask what correlate does not. Columns:
    resource dataset://{name}/schema. Times are int64 ns (start_ns, end_ns, duration_ns).
    more_rows=true: more rows than limit. page.returned_count < page.total_count: the answer was
    cut to fit the output limit; pass page.next_cursor."""

    def build() -> dict[str, Any]:
        from correlate import open_dataset

        with open_dataset(dataset) as ds:
            r = ds.sql(sql, limit=limit, timeout_s=SQL_TIMEOUT_S)
        return {
            "columns": list(r.columns),
            "rows": _jsonable(r.rows),
            "row_cap": r.row_cap,
            "more_rows": r.truncated,
            "seconds": r.seconds,
        }

    return paged(cursor, "rows", "query_spans", build)


def get_trace(
    dataset: DatasetArg,
    trace_id: Annotated[str, Field(description="32 hex characters.")],
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, TraceResult]:
    """One trace as a span tree: timings after clock-skew adjustment, self time, errors, the
    critical path and warnings. Use it on trace_ids a correlate candidate cites. Large traces are
    paged: compare page.returned_count with span_count, pass page.next_cursor."""

    def build() -> dict[str, Any]:
        from correlate import open_dataset

        with open_dataset(dataset) as ds:
            view = ds.trace(trace_id.strip().lower())
        d = view.to_dict()
        return {
            "trace_id": d["trace_id"],
            "start": iso(d["start_ns"]),
            "end": iso(d["end_ns"]),
            "duration_ns": d["end_ns"] - d["start_ns"],
            "span_count": len(d["spans"]),
            "critical_path": d["critical_path"],
            "warnings": list(d["warnings"]),
            "spans": [{k: v for k, v in s.items() if k != "end_ns"} for s in d["spans"]],
        }

    return paged(cursor, "spans", "get_trace", build)


TOOLS = [
    spec(query_spans, "Query spans with SQL", read_only=True, idempotent=True),
    spec(get_trace, "Get one trace", read_only=True, idempotent=True),
]
