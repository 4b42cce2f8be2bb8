"""The correlation tools: timeline (when did it start: the onset, and the window and baseline to
ask about) and correlate (ranked root-cause candidates with evidence, as `dcr correlate --json`)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from correlate.times import format_ns
from mcp_server.tools import spec
from mcp_server.tools.base import (
    CursorArg,
    DatasetArg,
    JsonObject,
    JsonObjects,
    Page,
    ServicesArg,
    TimeArg,
    ToolError,
    iso,
    iso_end,
    ms,
    paged,
    parse_window,
    sparse,
)

__all__ = ["TOOLS", "timeline", "correlate", "resolve_window", "CorrelateOut", "TimelineOut"]


_WINDOW = "start, end (ISO), start_ns, end_ns"
_CANDIDATE = (
    "best first: service, operation, mechanism, score, confidence (trust as THE cause), summary, "
    "evidence {before, after, trace_ids, span_ids, details}"
)


class CorrelateOut(BaseModel):
    # also dataset, services, seconds, html_report
    window: JsonObject = Field(description=_WINDOW)
    baseline: JsonObject = Field({}, description=_WINDOW)
    candidates: JsonObjects = Field(description=_CANDIDATE)
    findings: JsonObjects = Field(description="kind, service, operation, summary")
    notes: list[str] = []
    page: Page


class TimelineOut(BaseModel):
    # also window, bucket_0 (the time of bucket 0)
    bucket_s: float
    columns: list[str]
    services: JsonObjects = Field(description="service, rows")
    changes: JsonObject = Field({}, description="columns, rows; strongest first")
    onset: JsonObject = Field({}, description="at, because, correlate: the window and baseline to pass")
    notes: list[str] = []
    page: Page


def _bounds_check(name: str, ns: int, ds_start: int | None, ds_end: int | None) -> None:
    if ds_start is None or ds_end is None:
        return
    if name.endswith("start") and ns > ds_end:
        raise ToolError(
            f"{name} {format_ns(ns)} is after the dataset's last span ({format_ns(ds_end)}): "
            f"pick a time in {format_ns(ds_start)}..{format_ns(ds_end)}"
        )
    if name.endswith("end") and ns <= ds_start:
        raise ToolError(
            f"{name} {format_ns(ns)} is before the dataset's first span ({format_ns(ds_start)}): "
            f"pick a time in {format_ns(ds_start)}..{format_ns(ds_end)}"
        )


def resolve_window(
    time_range: tuple[int | None, int | None],
    start: str | None,
    end: str | None,
    baseline_start: str | None = None,
    baseline_end: str | None = None,
) -> tuple[Any, Any]:
    """(window, baseline) as correlate Windows, each None when not given; ToolError names the bound.

    A lone start runs to the dataset's end, a lone end from the dataset's start.
    """
    from correlate.types import Window

    ds_start, ds_end = time_range
    s, e = parse_window(start, end)
    for name, ns in (("start", s), ("end", e)):
        if ns is not None:
            _bounds_check(name, ns, ds_start, ds_end)
    window = None
    if s is not None or e is not None:
        s = s if s is not None else ds_start
        e = e if e is not None else (ds_end + 1 if ds_end is not None else None)
        if s is None or e is None:
            raise ToolError("the dataset has no spans, so a window cannot be completed: give start and end")
        if e <= s:
            raise ToolError(f"end ({format_ns(e)}) must be after start ({format_ns(s)})")
        window = Window(s, e)
    bs, be = parse_window(baseline_start, baseline_end, ("baseline_start", "baseline_end"))
    if (bs is None) != (be is None):
        missing = "baseline_end" if be is None else "baseline_start"
        raise ToolError(
            f"{missing} is missing: give both baseline bounds, or neither (the time before the window)"
        )
    baseline = None if bs is None or be is None else Window(bs, be)  # both or neither (above)
    if baseline is not None:
        win_start = window.start_ns if window else ds_start
        if win_start is not None and baseline.end_ns > win_start:
            raise ToolError(
                f"baseline_end ({format_ns(baseline.end_ns)}) must be at or before the window's start "
                f"({format_ns(win_start)}): the baseline is the normal period before the incident"
            )
    return window, baseline


def _window(w: dict[str, int] | None) -> dict[str, Any] | None:
    if w is None:
        return None
    return {**w, "start": iso(w["start_ns"]), "end": iso(w["end_ns"])}


HtmlReportArg = Annotated[bool, Field(description="also write an HTML report for your user")]


_METRICS = {"error_rate": "error_rate", "latency_ns": "latency_ms", "requests_per_s": "requests_per_s"}


def _figure(metric: str, value: float) -> float | int | None:
    return ms(value) if metric == "latency_ns" else float(f"{value:.3g}")


def timeline(
    dataset: DatasetArg,
    start: TimeArg = None,
    end: TimeArg = None,
    services: ServicesArg = None,
    buckets: Annotated[int, Field(ge=6, le=120)] = 40,
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, TimelineOut]:
    """Find the onset before correlate: per service and bucket requests, errors, p50/p95 ms;
    change points per operation (error rate, latency, request rate); the onset with the window and
    baseline to pass to correlate. Paged by service: page.returned_count vs total_count, next_cursor."""

    def build() -> dict[str, Any]:
        from correlate import open_dataset

        with open_dataset(dataset) as ds:
            window, _ = resolve_window(ds.handle.time_range, start, end)
            t = ds.timeline(window, tuple(services or ()), buckets)
            notes = list(t.notes)
            if services:
                from correlate.scope import unknown_services

                notes += unknown_services(ds.handle.services, services)
        t0 = t.window.start_ns // t.bucket_ns * t.bucket_ns

        def at(ns: int) -> int:
            return (ns - t0) // t.bucket_ns

        out: dict[str, Any] = {
            "window": {"start": iso(t.window.start_ns), "end": iso_end(t.window.end_ns)},
            "bucket_s": t.bucket_ns / 1e9,
            "columns": ["bucket", "requests", "errors", "p50_ms", "p95_ms"],
            "services": [
                {
                    "service": s.service,
                    "rows": [[at(b), n, e, ms(p50), ms(p95)] for b, n, e, p50, p95 in s.rows],
                }
                for s in t.services
            ],
            "notes": notes,
        }
        out["bucket_0"] = iso(t0)
        if t.changes:
            out["changes"] = {
                "columns": ["service", "operation", "metric", "bucket", "at", "before", "after", "strength"],
                "rows": [
                    [
                        c.service,
                        c.operation,
                        _METRICS[c.metric],
                        at(c.at_ns),
                        iso(c.at_ns),
                        _figure(c.metric, c.before),
                        _figure(c.metric, c.after),
                        c.strength,
                    ]
                    for c in t.changes
                ],
            }
        if t.onset is not None:
            o = t.onset
            # the exclusive end rounded up (the last span kept); baseline_end is the window's start
            # and rounds down with it, so it stays at or before the start
            args = {"start": iso(o.window.start_ns), "end": iso_end(o.window.end_ns)}
            if o.baseline is not None:
                args |= {"baseline_start": iso(o.baseline.start_ns), "baseline_end": iso(o.baseline.end_ns)}
            out["onset"] = {
                "at": iso(o.at_ns),
                "because": [
                    f"{c.service} {c.operation or '(all)'} {_METRICS[c.metric]} "
                    f"{_figure(c.metric, c.before)} -> {_figure(c.metric, c.after)}"
                    for c in o.because[:3]
                ],
                "correlate": args,
            }
        return sparse(out)

    args = {"dataset": dataset, "start": start, "end": end, "services": services, "buckets": buckets}
    return paged(cursor, "services", "timeline", build, args)


IncludeSqlArg = Annotated[bool, Field(description="full evidence: sql, findings' figures")]


def _slim_candidates(candidates: list[dict[str, Any]], include_sql: bool) -> list[dict[str, Any]]:
    """Candidates without null or empty fields (nor the analysis's name, nor sql unless asked); a
    candidate whose evidence repeats an earlier one's says which (0-based) instead."""
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, c in enumerate(candidates):
        c = sparse(c, () if include_sql else ("sql", "analysis"))
        key = repr(c.get("evidence"))
        if "evidence" in c and key in seen:
            c["evidence"] = f"as candidates[{seen[key]}]"
        seen.setdefault(key, i)
        out.append(c)
    return out


def _slim_finding(f: dict[str, Any]) -> dict[str, Any]:
    """A finding as its kind, where and its summary (which carries its figures), and a trace."""
    keep = {k: f.get(k) for k in ("kind", "service", "operation", "summary")}
    keep["trace_ids"] = list((f.get("evidence") or {}).get("trace_ids") or [])[:1]
    return sparse(keep)


def correlate(
    dataset: DatasetArg,
    start: TimeArg = None,
    end: TimeArg = None,
    baseline_start: TimeArg = None,
    baseline_end: TimeArg = None,
    services: ServicesArg = None,
    include_sql: IncludeSqlArg = False,
    cursor: CursorArg = None,
    html_report: HtmlReportArg = False,
) -> Annotated[CallToolResult, CorrelateOut]:
    """Ranked root-cause candidates (service, operation, mechanism) for a window against a
    baseline, with before/after figures and trace_ids; find the window with timeline. Times ISO-8601
    (UTC if no offset) or epoch s/ms/ns; default: all data, baseline as long before. Read notes.
    findings are paged: page.returned_count vs total_count, next_cursor."""

    def build() -> dict[str, Any]:
        from correlate import open_dataset

        with open_dataset(dataset) as ds:
            window, baseline = resolve_window(ds.handle.time_range, start, end, baseline_start, baseline_end)
            report = ds.correlate(window, baseline, tuple(services or ()))
            notes = list(report.notes)
            if report.window.end_ns > report.window.start_ns:
                notes += ds.scope_notes(report.window, report.baseline, tuple(services or ()))
            page = None
            if html_report:
                from escalation.html_report import default_report_path, write_html_report

                page = write_html_report(ds, report, default_report_path(dataset)).path
        d = report.to_dict()
        has_sql = any(x["evidence"].get("sql") for x in (*d["candidates"], *d["findings"]))
        if has_sql and not include_sql:
            notes.append(
                "evidence sql and the findings' figures and details left out: include_sql=true adds them"
            )
        d["candidates"] = _slim_candidates(d["candidates"], include_sql)
        d["findings"] = [f if include_sql else _slim_finding(f) for f in d["findings"]]
        d["notes"] = notes
        d["html_report"] = page
        d["window"] = _window(d["window"])
        d["baseline"] = _window(d["baseline"])
        return sparse(d) | {"candidates": d["candidates"]}

    args = {
        "dataset": dataset,
        "start": start,
        "end": end,
        "baseline_start": baseline_start,
        "baseline_end": baseline_end,
        "services": services,
        "include_sql": include_sql,
    }
    return paged(cursor, "findings", "correlate", build, args, also=("candidates",))


TOOLS = [
    spec(timeline, "Timeline of an incident", read_only=True, idempotent=True),
    spec(correlate, "Correlate an incident", read_only=True, idempotent=True),
]
