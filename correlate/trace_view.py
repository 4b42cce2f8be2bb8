"""`DatasetSession.trace(trace_id)`: load one trace and run the trace-anatomy pipeline.

    rows (spans view) -> SpanRecord -> build_tree -> adjust_clock_skew -> critical_path
                      -> self time, depth -> TraceView

The order matters: the critical path and self times use skew-adjusted times, and the
adjuster needs the repaired tree (orphans promoted) to know each span's parent.

A trace id may be given as the reports print it: any stored form (`trace_id_candidates`), or a
prefix of at least MIN_PREFIX hex characters that only one trace of the dataset starts with. A
16-hex id is a 64-bit id first (stored left-padded with zeros); only when no such trace exists is
it read as a prefix.

What a reader wants first of a trace (`outline`, `critical_path_rows`, `error_spans`): its root,
size, errors and services, the critical path one row per span (the spans of one call path in one
row: an N+1 loop is a row a statement with its count), and the failing spans with where errors
start.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from correlate.clock_skew import adjust_clock_skew
from correlate.critical_path import critical_path
from correlate.errors import CorrelateError, Kind, Remedy, TraceNotFound
from correlate.trace_tree import SpanRecord, TraceTree, build_tree
from correlate.types import CriticalSegment, TraceSpan, TraceView

__all__ = [
    "MIN_PREFIX",
    "load_trace",
    "resolve_trace_id",
    "trace_id_candidates",
    "records_from_rows",
    "build_view",
    "self_time_ns",
    "outline",
    "critical_path_rows",
    "error_spans",
]

MIN_PREFIX = 8  # hex characters a trace-id prefix needs
_HEX = re.compile(r"[0-9a-f]+")

_COLUMNS = (
    "span_id",
    "parent_span_id",
    "service_name",
    "name",
    "kind",
    "host",
    "start_ns",
    "end_ns",
    "status_code",
    "status_message",
    "attributes",
    "links",
    "exception_type",
    "exception_message",
)
_QUERY = f"SELECT trace_id, {', '.join(_COLUMNS)} FROM spans WHERE trace_id IN ({{marks}}) ORDER BY start_ns, span_id"


def trace_id_candidates(text: str) -> list[str]:
    """The stored forms `text` may have: hex in any case, 64-bit padded, base64, or Jaeger's hash."""
    raw = str(text).strip()
    out = [raw.lower()]
    try:
        from ingest.normalize import norm_trace_id

        out.append(norm_trace_id(raw))
    except ValueError:
        pass
    try:  # Jaeger files with ids that are not hex (test fixtures) are stored hashed
        from ingest.jaeger import jaeger_id

        out.append(jaeger_id(raw, 32, "trace id")[0])
    except (ImportError, ValueError):
        pass
    return list(dict.fromkeys(out))


def _json_obj(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _follows_from(parent_id: str | None, links: Any) -> tuple[str | None, bool]:
    """(parent id, whether the parent reference is FOLLOWS_FROM)."""
    ff_targets = [
        link.get("span_id")
        for link in (links if isinstance(links, list) else [])
        if isinstance(link, dict) and str(link.get("type", "")).upper() == "FOLLOWS_FROM"
    ]
    if parent_id is not None:
        return parent_id, parent_id in ff_targets
    return None, False


def records_from_rows(rows: Iterable[tuple[Any, ...]]) -> list[SpanRecord]:
    out = []
    for row in rows:
        r = dict(zip(_COLUMNS, row, strict=True))
        attrs = _json_obj(r["attributes"])
        attrs = dict(attrs) if isinstance(attrs, dict) else {}
        if r["exception_type"] and "exception.type" not in attrs:
            attrs["exception.type"] = r["exception_type"]
        if r["exception_message"] and "exception.message" not in attrs:
            attrs["exception.message"] = r["exception_message"]
        parent, ff = _follows_from(r["parent_span_id"], _json_obj(r["links"]))
        start = int(r["start_ns"] or 0)
        end = int(r["end_ns"] if r["end_ns"] is not None else start)
        out.append(
            SpanRecord(
                span_id=r["span_id"],
                parent_span_id=parent,
                service=r["service_name"] or "",
                operation=r["name"] or "",
                start_ns=start,
                end_ns=max(start, end),
                host=r["host"],
                kind=r["kind"] or "UNSPECIFIED",
                status_code=r["status_code"] or "UNSET",
                status_message=r["status_message"],
                attributes=attrs,
                follows_from=ff,
            )
        )
    return out


def self_time_ns(span: SpanRecord, children: Iterable[SpanRecord]) -> int:
    """The span's duration minus the union of its children's time inside it."""
    pieces = sorted(
        (max(c.start_ns, span.start_ns), min(c.end_ns, span.end_ns))
        for c in children
        if c.end_ns > span.start_ns and c.start_ns < span.end_ns
    )
    covered = 0
    cur_lo, cur_hi = 0, None  # the interval being merged (cur_lo is read only once cur_hi is set)
    for lo, hi in pieces:
        if cur_hi is None or lo > cur_hi:
            if cur_hi is not None:
                covered += cur_hi - cur_lo
            cur_lo, cur_hi = lo, hi
        else:
            cur_hi = max(cur_hi, hi)
    if cur_hi is not None:
        covered += cur_hi - cur_lo
    return span.duration_ns - covered


def build_view(trace_id: str, tree: TraceTree) -> TraceView:
    skew = adjust_clock_skew(tree)
    spans: Mapping[str, SpanRecord] = skew.spans
    cp = critical_path(tree, spans)
    on_path = set(cp.spans)
    out: list[TraceSpan] = []
    warnings = list(tree.warnings)
    for sid, depth in tree.depth_first():
        rec = spans[sid]
        span_warnings = tree.span_warnings.get(sid, ()) + skew.span_warnings.get(sid, ())
        warnings.extend(f"span {sid} ({rec.service} {rec.operation}): {w}" for w in span_warnings)
        out.append(
            TraceSpan(
                span_id=sid,
                parent_span_id=tree.parent[sid],
                service=rec.service,
                operation=rec.operation,
                kind=rec.kind,
                host=rec.host,
                start_ns=rec.start_ns,
                end_ns=rec.end_ns,
                duration_ns=rec.duration_ns,
                self_time_ns=self_time_ns(rec, (spans[c] for c in tree.children.get(sid, ()))),
                depth=depth,
                status_code=rec.status_code,
                status_message=rec.status_message,
                attributes=dict(rec.attributes),
                on_critical_path=sid in on_path,
                skew_adjustment_ns=skew.delta_ns.get(sid, 0),
                warnings=span_warnings,
                critical_path_ns=cp.exclusive_ns.get(sid, 0),
            )
        )
    segments = tuple(
        CriticalSegment(
            span_id=s.span_id,
            service=spans[s.span_id].service,
            operation=spans[s.span_id].operation,
            start_ns=s.start_ns,
            end_ns=s.end_ns,
        )
        for s in cp.segments
    )
    return TraceView(
        trace_id=trace_id,
        spans=tuple(out),
        critical_path=segments,
        warnings=tuple(warnings),
        start_ns=min((s.start_ns for s in out), default=0),
        end_ns=max((s.end_ns for s in out), default=0),
    )


def resolve_trace_id(session: Any, text: str) -> str | None:
    """The one stored trace id that starts with `text` (MIN_PREFIX..31 hex characters), None when
    none does or `text` is no such prefix; CorrelateError (invalid_input) when several do."""
    prefix = str(text).strip().lower()
    if not (MIN_PREFIX <= len(prefix) < 32 and _HEX.fullmatch(prefix)):
        return None
    rows = session.fetch(
        "SELECT DISTINCT trace_id FROM spans WHERE starts_with(trace_id, ?) ORDER BY 1 LIMIT 4", [prefix]
    )
    if len(rows) > 1:
        shown = ", ".join(r[0] for r in rows[:3]) + (", …" if len(rows) > 3 else "")
        raise CorrelateError(
            f"trace id prefix {prefix!r} is not unique in dataset {session.name!r}: "
            f"{'more than 3' if len(rows) > 3 else len(rows)} traces start with it ({shown}); "
            "give more characters",
            " (list them with: {})",
            remedy=Remedy(
                "run_sql",
                {
                    "dataset": session.name,
                    "sql": f"SELECT trace_id, root_service, duration_ns FROM traces "
                    f"WHERE starts_with(trace_id, '{prefix}')",
                },
            ),
            kind=Kind.INVALID_INPUT,
        )
    return rows[0][0] if rows else None


def load_trace(session: Any, trace_id: str) -> TraceView:
    candidates = trace_id_candidates(trace_id)
    marks = ", ".join("?" for _ in candidates)
    rows = session.fetch(_QUERY.format(marks=marks), candidates)
    if not rows:
        found = resolve_trace_id(session, trace_id)
        if found is not None:
            rows = session.fetch(_QUERY.format(marks="?"), [found])
    if not rows:
        raw = str(trace_id).strip().lower()
        if _HEX.fullmatch(raw) and len(raw) < MIN_PREFIX:
            raise CorrelateError(
                f"trace id {raw!r} is too short: give the whole id or a prefix of at least "
                f"{MIN_PREFIX} hex characters",
                kind=Kind.INVALID_INPUT,
            )
        raise TraceNotFound(str(trace_id), session.name)
    found = rows[0][0]
    return build_view(found, build_tree(records_from_rows(r[1:] for r in rows if r[0] == found)))


# ---- what to read first ---------------------------------------------------------------------


def outline(view: TraceView) -> dict[str, Any]:
    """root (service, operation), span and error counts, services in order of first appearance."""
    root = view.spans[0] if view.spans else None
    return {
        "root": None if root is None else (root.service, root.operation),
        "span_count": len(view.spans),
        "error_count": sum(1 for s in view.spans if s.status_code == "ERROR"),
        "services": list(dict.fromkeys(s.service for s in view.spans)),
    }


def critical_path_rows(view: TraceView) -> list[tuple[str, str, str, int, int]]:
    """The critical path one row per span, in the order the path first reaches each span, with
    the spans of one call path (the same service and operation, reached through the same
    operations from the root) in one row, so an N+1 loop is a row a statement with its count:
    (first span id, service, operation, ns on the path, spans in the row)."""
    on_path: dict[str, int] = {}
    for seg in view.critical_path:
        on_path[seg.span_id] = on_path.get(seg.span_id, 0) + (seg.end_ns - seg.start_ns)
    spans = {s.span_id: s for s in view.spans}
    keys: dict[str, tuple[str, ...]] = {}

    def call_path(sid: str) -> tuple[str, ...]:
        if sid not in keys:
            s = spans[sid]
            up = call_path(s.parent_span_id) if s.parent_span_id in spans else ()
            keys[sid] = (*up, s.service, s.operation)
        return keys[sid]

    rows: dict[tuple[str, ...], list[Any]] = {}
    for sid, ns in on_path.items():
        if sid not in spans:
            continue
        key = call_path(sid)
        if key in rows:
            rows[key][3] += ns
            rows[key][4] += 1
        else:
            rows[key] = [sid, spans[sid].service, spans[sid].operation, ns, 1]
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows.values()]


def error_spans(view: TraceView) -> list[tuple[TraceSpan, bool]]:
    """The spans whose status is ERROR, depth-first, each with whether errors start there (no
    span below it fails)."""
    parent = {s.span_id: s.parent_span_id for s in view.spans}
    failing = {s.span_id for s in view.spans if s.status_code == "ERROR"}
    above_a_failure: set[str] = set()
    for sid in failing:
        up = parent.get(sid)
        while up is not None and up not in above_a_failure:
            above_a_failure.add(up)
            up = parent.get(up)
    return [(s, s.span_id not in above_a_failure) for s in view.spans if s.span_id in failing]
