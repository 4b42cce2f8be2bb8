"""Tools to look at a dataset's rows: query_spans (read-only SQL), find_traces (which traces to
look at) and get_trace (one trace's anatomy, in views from a summary down to full spans)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from mcp_server import limits
from mcp_server.tools import spec
from mcp_server.tools.base import (
    CursorArg,
    DatasetArg,
    DocPage,
    JsonObject,
    Page,
    TimeArg,
    document,
    iso,
    iso_end,
    ms,
    paged,
    sparse,
)

__all__ = ["TOOLS", "query_spans", "find_traces", "get_trace", "QueryResult", "TraceResult", "FoundOut"]

SQL_TIMEOUT_S = 30.0


class QueryResult(BaseModel):
    # also row_cap, seconds
    columns: list[str]
    rows: list[list[Any]]
    more_rows: bool
    page: Page


class TraceResult(BaseModel):
    # also trace_id, view, start: named here only what to read
    duration_ms: float
    span_count: int
    error_count: int
    root: str
    services: list[str]
    columns: list[str] = []
    rows: list[Any]
    error_origins: list[list[Any]] = Field([], description="span_id, service, operation, message")
    warnings: list[str] = []
    page: Page


class FoundOut(BaseModel):
    # also window
    total: int
    failing: int
    p50_ms: float = 0
    p95_ms: float = 0
    columns: list[str]
    rows: list[list[Any]]
    sample: JsonObject = Field({}, description="fast, typical, slow: a row each")
    notes: list[str] = []
    page: DocPage


def _jsonable(rows: Any) -> list[list[Any]]:
    # DuckDB hands back Decimal, datetime, UUID, bytes…: the same text form the JSON uses.
    return json.loads(limits.dumps([list(r) for r in rows]))


def query_spans(
    dataset: DatasetArg,
    sql: Annotated[str, Field(description="One SELECT over views spans, logs, traces, service_edges.")],
    limit: Annotated[int, Field(ge=1, le=10_000, description="Row cap.")] = 200,
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, QueryResult]:
    """Run one read-only SQL SELECT (DuckDB) over a dataset: check evidence, ask what the other
    tools do not. Columns: resource dataset://{name}/schema; times are int64 ns. more_rows: more
    rows than limit. page.returned_count < total_count: cut to fit; pass page.next_cursor."""

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

    return paged(cursor, "rows", "query_spans", build, {"dataset": dataset, "sql": sql, "limit": limit})


TraceView = Literal["summary", "topology", "errors", "spans"]
_TOPOLOGY = ["span_id", "depth", "service", "operation", "kind", "start_ms", "ms", "self_ms", "err", "path"]


def _error_text(span: Any) -> str | None:
    exc = span.attributes.get("exception.type")
    text = str(span.status_message or span.attributes.get("exception.message") or "")
    if exc and not text.startswith(str(exc)):
        text = f"{exc}: {text}" if text else str(exc)
    return text or None


def _trace_view(view: Any, kind: str, span_ids: list[str] | None) -> dict[str, Any]:
    """One of get_trace's views of a correlate TraceView (the facts come from correlate.trace_view)."""
    from correlate import trace_view as tv

    head = tv.outline(view)
    out: dict[str, Any] = {
        "trace_id": view.trace_id,
        "view": kind,
        "start": iso(view.start_ns),
        "duration_ms": ms(view.end_ns - view.start_ns),
        "span_count": head["span_count"],
        "error_count": head["error_count"],
        "root": " ".join(head["root"] or ()),
        "services": head["services"],
    }
    t0 = view.start_ns
    if kind == "summary":
        out["columns"] = ["span_id", "service", "operation", "path_ms", "spans"]
        out["rows"] = [[sid, svc, op, ms(ns), n] for sid, svc, op, ns, n in tv.critical_path_rows(view)]
        origins = [s for s, origin in tv.error_spans(view) if origin]
        out["error_origins"] = [[s.span_id, s.service, s.operation, _error_text(s)] for s in origins[:3]]
    elif kind == "topology":
        out["columns"] = _TOPOLOGY
        out["rows"] = [
            [
                s.span_id,
                s.depth,
                s.service,
                s.operation,
                s.kind,
                ms(s.start_ns - t0),
                ms(s.duration_ns),
                ms(s.self_time_ns),
                int(s.status_code == "ERROR"),
                int(s.on_critical_path),
            ]
            for s in view.spans
        ]
    elif kind == "errors":
        out["rows"] = [
            sparse(
                {
                    "span_id": s.span_id,
                    "depth": s.depth,
                    "service": s.service,
                    "operation": s.operation,
                    "kind": s.kind,
                    "start_ms": ms(s.start_ns - t0),
                    "ms": ms(s.duration_ns),
                    "error": _error_text(s),
                    "http_status": s.attributes.get("http.response.status_code")
                    or s.attributes.get("http.status_code"),
                    "origin": origin,
                }
            )
            for s, origin in tv.error_spans(view)
        ]
    else:
        wanted = [i.strip().lower() for i in span_ids or []]
        spans = [s for s in view.spans if not wanted or s.span_id in wanted]
        out["rows"] = [
            sparse(s.to_dict(), drop=("end_ns",) + tuple(k for k in _ZERO_DEFAULTS if not getattr(s, k)))
            for s in spans
        ]
        missing = sorted(set(wanted) - {s.span_id for s in spans})
        if missing:
            out["warnings"] = [f"no span {', '.join(missing)} in this trace (see view=topology)"]
    out["warnings"] = [*(out.get("warnings") or []), *view.warnings]
    return sparse(out)


_ZERO_DEFAULTS = ("skew_adjustment_ns", "critical_path_ns", "on_critical_path")


def get_trace(
    dataset: DatasetArg,
    trace_id: Annotated[str, Field(description="32 hex, or a unique prefix (8+)")],
    view: TraceView = "summary",
    span_ids: Annotated[list[str] | None, Field(description="view=spans: these only")] = None,
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, TraceResult]:
    """One trace (clock skew adjusted) by view: summary (rows: the critical path, a row a span,
    spans=N: a run of one operation; error_origins), topology (every span depth-first), errors
    (failing spans; origin: errors start there), spans (full, with attributes; span_ids picks).
    Times in ms. Paged: page.returned_count vs total_count, next_cursor."""

    def build() -> dict[str, Any]:
        from correlate import open_dataset

        with open_dataset(dataset) as ds:
            return _trace_view(ds.trace(trace_id), view, span_ids)

    args = {"dataset": dataset, "trace_id": trace_id, "view": view, "span_ids": span_ids}
    return paged(cursor, "rows", "get_trace", build, args)


def find_traces(
    dataset: DatasetArg,
    start: TimeArg = None,
    end: TimeArg = None,
    service: str | None = None,
    operation: Annotated[str | None, Field(description="part of the span name")] = None,
    status: Literal["error", "ok"] | None = None,
    min_ms: Annotated[float | None, Field(ge=0)] = None,
    max_ms: Annotated[float | None, Field(ge=0)] = None,
    order: Literal["slowest", "failing", "fastest", "earliest"] = "slowest",
    limit: Annotated[int, Field(ge=1, le=100)] = 10,
) -> Annotated[CallToolResult, FoundOut]:
    """Traces in a window (default: all) with a span matching service, operation, status and
    duration (no service/operation: the root), ordered; match is that span. With the total, p50/p95
    of the matches and a sample (fast, typical, slow) to compare. Next: get_trace."""

    def build() -> dict[str, Any]:
        from correlate import open_dataset
        from mcp_server.tools.correlation import resolve_window

        with open_dataset(dataset) as ds:
            window, _ = resolve_window(ds.handle.time_range, start, end)
            found = ds.find_traces(
                window,
                service=service,
                operation=operation,
                status=status,
                min_duration_ns=None if min_ms is None else int(min_ms * 1e6),
                max_duration_ns=None if max_ms is None else int(max_ms * 1e6),
                order=order,
                limit=limit,
            )
            notes = list(found.notes)
            if service and not found.total:
                from correlate.scope import unknown_services

                notes += unknown_services(ds.handle.services, [service])

        def row(h: Any) -> list[Any]:
            return [
                h.trace_id,
                iso(h.start_ns),
                ms(h.duration_ns),
                f"{h.root_service} {h.root_operation}",
                h.span_count,
                h.error_count,
                h.match_span_id,
                f"{h.match_service} {h.match_operation}",
                ms(h.match_ns),
            ]

        return sparse(
            {
                "window": {"start": iso(found.window.start_ns), "end": iso_end(found.window.end_ns)},
                "total": found.total,
                "failing": found.failing,
                "p50_ms": ms(found.p50_ns),
                "p95_ms": ms(found.p95_ns),
                "columns": _FOUND,
                "rows": [row(h) for h in found.traces],
                "sample": {k: row(h) for k, h in found.sample.items()},
                "notes": notes,
            }
        )

    return document(build(), "find_traces", "rows")


_FOUND = ["trace_id", "start", "ms", "root", "spans", "errors", "match_span_id", "match", "match_ms"]


TOOLS = [
    spec(query_spans, "Query spans with SQL", read_only=True, idempotent=True),
    spec(find_traces, "Find traces", read_only=True, idempotent=True),
    spec(get_trace, "Get one trace", read_only=True, idempotent=True),
]
