"""Which traces to look at: `find_traces` over the spans of a window.

    find_traces(session, window=None, service=None, operation=None, status=None,
                min_duration_ns=None, max_duration_ns=None, order="slowest", limit=20) -> FoundTraces

A trace is found when one of its spans in the window matches every filter given: the service
(exact), the operation (a case-insensitive part of the span name), the status ("error": status
ERROR, "ok": any other) and the duration range. With no service and no operation, the spans that
match are the trace's roots (a trace whose root is outside the window has none; then any of its
spans counts). Each trace carries its match: the longest matching span (an erroring one first
when `order` is "failing"), its id and duration.

The spans read are those that start in the window (not the whole-dataset `traces` view), so a
trace that crosses the window's edges shows the part inside it. Beside the list, ordered by
`order` and cut at `limit`: how many traces matched, the median and p95 duration of their matches,
and a comparative sample (the fastest, the typical one nearest the median, the slowest), as
HolmesGPT's Tempo tools offer, to compare a slow trace with a normal one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from correlate.errors import CorrelateError, Kind
from correlate.types import Window

if TYPE_CHECKING:
    from correlate.session import DatasetSession

__all__ = ["ORDERS", "STATUSES", "TraceHit", "FoundTraces", "find_traces"]

ORDERS = ("slowest", "failing", "fastest", "earliest")
STATUSES = ("error", "ok")
MAX_LIMIT = 500

_ORDER_SQL = {
    "slowest": "match_ns DESC, trace_id",
    "failing": "error_count DESC, match_ns DESC, trace_id",
    "fastest": "match_ns, trace_id",
    "earliest": "start_ns, trace_id",
}


@dataclass(frozen=True)
class TraceHit:
    trace_id: str
    start_ns: int
    duration_ns: int  # first span start to last span end, of the spans in the window
    root_service: str
    root_operation: str
    span_count: int
    error_count: int
    service_count: int
    match_span_id: str  # the longest matching span (the longest erroring one, ordered by failing)
    match_service: str
    match_operation: str
    match_ns: int
    matched: int  # spans of the trace that match

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FoundTraces:
    window: Window
    order: str
    total: int  # traces that match
    failing: int  # of them, traces with at least one span in error
    p50_ns: float | None  # of the matches' durations
    p95_ns: float | None
    traces: tuple[TraceHit, ...]  # by `order`, at most `limit`
    sample: dict[str, TraceHit] = field(default_factory=dict)  # fast, typical, slow
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": asdict(self.window),
            "order": self.order,
            "total": self.total,
            "failing": self.failing,
            "p50_ns": self.p50_ns,
            "p95_ns": self.p95_ns,
            "traces": [t.to_dict() for t in self.traces],
            "sample": {k: v.to_dict() for k, v in self.sample.items()},
            "notes": list(self.notes),
        }


def find_traces(
    session: DatasetSession,
    window: Window | None = None,
    *,
    service: str | None = None,
    operation: str | None = None,
    status: str | None = None,
    min_duration_ns: int | None = None,
    max_duration_ns: int | None = None,
    order: str = "slowest",
    limit: int = 20,
) -> FoundTraces:
    if order not in ORDERS:
        raise CorrelateError(f"order {order!r}: use one of {', '.join(ORDERS)}", kind=Kind.INVALID_INPUT)
    if status is not None and status not in STATUSES:
        raise CorrelateError(f"status {status!r}: use one of {', '.join(STATUSES)}", kind=Kind.INVALID_INPUT)
    if not 1 <= limit <= MAX_LIMIT:
        raise CorrelateError(f"limit {limit}: use 1..{MAX_LIMIT}", kind=Kind.INVALID_INPUT)
    if min_duration_ns is not None and max_duration_ns is not None and max_duration_ns < min_duration_ns:
        raise CorrelateError("the duration range is empty: max below min", kind=Kind.INVALID_INPUT)
    start, end = session.handle.time_range
    if window is None:
        if start is None or end is None:
            return FoundTraces(Window(0, 1), order, 0, 0, None, None, (), {}, ("the dataset has no spans",))
        window = Window(start, end + 1)

    where: list[str] = []
    params: list[Any] = []
    if service:
        where.append("service_name = ?")
        params.append(service)
    if operation:
        where.append("contains(lower(name), lower(?))")
        params.append(operation)
    if status == "error":
        where.append("err")
    elif status == "ok":
        where.append("NOT err")
    if min_duration_ns is not None:
        where.append("duration_ns >= ?")
        params.append(int(min_duration_ns))
    if max_duration_ns is not None:
        where.append("duration_ns <= ?")
        params.append(int(max_duration_ns))
    roots_only = not service and not operation
    cond = " AND ".join(where) or "true"
    # the match: roots when no service/operation is named (any span when the trace has no root in
    # the window); a trace whose root is in the window but fails the filters does not match
    pick = "(err, duration_ns)" if order == "failing" else "duration_ns"
    rooted = (
        "SELECT trace_id FROM s WHERE parent_span_id IS NULL" if roots_only else "SELECT NULL WHERE false"
    )
    rows = session.fetch(
        f"""WITH s AS (SELECT trace_id, span_id, parent_span_id, service_name, name, start_ns, end_ns,
                              duration_ns, coalesce(status_code = 'ERROR', false) AS err
                       FROM spans WHERE start_ns >= ? AND start_ns < ?),
                 c AS (SELECT *, {"parent_span_id IS NULL" if roots_only else "true"} AS pref FROM s WHERE {cond}),
                 m AS (SELECT trace_id, arg_max(span_id, {pick}) AS match_span_id,
                              arg_max(service_name, {pick}) AS match_service,
                              arg_max(name, {pick}) AS match_operation,
                              arg_max(duration_ns, {pick}) AS match_ns, count(*) AS matched
                       FROM c WHERE pref OR trace_id NOT IN ({rooted})
                       GROUP BY trace_id),
                 t AS (SELECT trace_id, min(start_ns) AS start_ns, max(end_ns) - min(start_ns) AS duration_ns,
                              arg_min(service_name, struct_pack(o := parent_span_id IS NOT NULL, s := start_ns)) AS rs,
                              arg_min(name, struct_pack(o := parent_span_id IS NOT NULL, s := start_ns)) AS ro,
                              count(*) AS span_count, count(*) FILTER (WHERE err) AS error_count,
                              count(DISTINCT service_name) AS service_count
                       FROM s WHERE trace_id IN (SELECT trace_id FROM m) GROUP BY trace_id),
                 j AS (SELECT t.*, m.* EXCLUDE (trace_id),
                              row_number() OVER (ORDER BY match_ns, trace_id) AS rk,
                              row_number() OVER (ORDER BY {_ORDER_SQL[order]}) AS ork,
                              count(*) OVER () AS n,
                              count(*) FILTER (WHERE error_count > 0) OVER () AS failing,
                              quantile_cont(match_ns, 0.5) OVER () AS p50,
                              quantile_cont(match_ns, 0.95) OVER () AS p95
                       FROM t JOIN m USING (trace_id))
            SELECT trace_id, start_ns, duration_ns, rs, ro, span_count, error_count, service_count,
                   match_span_id, match_service, match_operation, match_ns, matched,
                   rk, ork, n, failing, p50, p95
            FROM j WHERE ork <= ? OR rk = 1 OR rk = n OR rk = (n + 1) // 2
            ORDER BY ork""",
        [window.start_ns, window.end_ns, *params, limit],
    )
    hits = []
    sample: dict[str, TraceHit] = {}
    total = failing = 0
    p50 = p95 = None
    for row in rows:
        hit = TraceHit(
            trace_id=row[0],
            start_ns=int(row[1]),
            duration_ns=int(row[2]),
            root_service=row[3] or "",
            root_operation=row[4] or "",
            span_count=int(row[5]),
            error_count=int(row[6]),
            service_count=int(row[7]),
            match_span_id=row[8],
            match_service=row[9] or "",
            match_operation=row[10] or "",
            match_ns=int(row[11]),
            matched=int(row[12]),
        )
        rk, ork, n = int(row[13]), int(row[14]), int(row[15])
        total, failing, p50, p95 = n, int(row[16]), float(row[17]), float(row[18])
        if ork <= limit:
            hits.append(hit)
        for role, at in (("fast", 1), ("typical", (n + 1) // 2), ("slow", n)):
            if rk == at:
                sample[role] = hit
    notes = []
    if not total:
        notes.append("no trace in the window has a span that matches" + _filters(service, operation, status))
    return FoundTraces(
        window,
        order,
        total,
        failing,
        p50,
        p95,
        tuple(hits),
        {k: sample[k] for k in ("fast", "typical", "slow") if k in sample} if total >= 3 else {},
        tuple(notes),
    )


def _filters(service: str | None, operation: str | None, status: str | None) -> str:
    parts = [f"service {service!r}" if service else "", f"operation ~ {operation!r}" if operation else ""]
    parts.append(f"status {status}" if status else "")
    shown = ", ".join(p for p in parts if p)
    return f" ({shown})" if shown else ""
