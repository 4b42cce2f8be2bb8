"""The correlate tool: ranked root-cause candidates with evidence, as `dcr correlate --json`."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from correlate.times import format_ns
from mcp_server.tools import spec
from mcp_server.tools.base import (
    CursorArg,
    DatasetArg,
    Obj,
    Objs,
    Page,
    ServicesArg,
    TimeArg,
    ToolError,
    iso,
    paged,
    parse_window,
)

__all__ = ["TOOLS", "correlate", "resolve_window", "CorrelateOut"]


_WINDOW = "start_ns, end_ns (exclusive), start, end (ISO)"
_CANDIDATE = (
    "best first: service, operation, mechanism, score 0..1, confidence "
    "(high/medium/low: trust as THE cause), summary, analysis, "
    "evidence {before, after (figures), trace_ids (get_trace), span_ids, sql (query_spans), details}"
)


class CorrelateOut(BaseModel):
    dataset: str
    window: Obj(_WINDOW)
    baseline: Obj(_WINDOW + "; null: no data before the window") | None
    services: list[str]
    candidates: Objs(_CANDIDATE)
    findings: Objs("paged: kind, summary, service, operation, evidence")
    notes: list[str]
    seconds: float
    html_report: str | None = None
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
    baseline = None if bs is None else Window(bs, be)
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


HtmlReportArg = Annotated[
    bool, Field(description="Also write an HTML report for your user; path in html_report.")
]


def correlate(
    dataset: DatasetArg,
    start: TimeArg = None,
    end: TimeArg = None,
    baseline_start: TimeArg = None,
    baseline_end: TimeArg = None,
    services: ServicesArg = None,
    cursor: CursorArg = None,
    html_report: HtmlReportArg = False,
) -> Annotated[CallToolResult, CorrelateOut]:
    """Call it first on an incident: ranked root-cause candidates (service, operation, mechanism
    such as error_propagation or retry_storm) for a window against a baseline, with before/after
    figures, example trace_ids and a reproducing sql. Times:
    ISO-8601 (UTC if no offset) or epoch s/ms/ns; default: the whole dataset, baseline the same
    length before. findings are paged: page.returned_count vs total_count, next_cursor."""

    def build() -> dict[str, Any]:
        from correlate import open_dataset

        with open_dataset(dataset) as ds:
            window, baseline = resolve_window(ds.handle.time_range, start, end, baseline_start, baseline_end)
            report = ds.correlate(window, baseline, tuple(services or ()))
            page = None
            if html_report:
                from escalation.html_report import default_report_path, write_html_report

                page = write_html_report(ds, report, default_report_path(dataset)).path
        d = report.to_dict()
        d["html_report"] = page
        d["window"] = _window(d["window"])
        d["baseline"] = _window(d["baseline"])
        return d

    return paged(cursor, "findings", "correlate", build)


TOOLS = [
    spec(correlate, "Correlate an incident", read_only=True, idempotent=True),
]
