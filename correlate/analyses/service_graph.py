"""How the services call each other, and what changed: new or vanished edges, calls per
request, error rate per edge.

An edge is a parent span on one service with a child span on another. One finding
(`service_graph`) carries every edge in `details["edges"]` (the ranking uses it to tell callers
from callees); further findings name each edge that appeared, vanished, or whose calls per
request or error rate moved.
"""

from __future__ import annotations

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    evidence_sql,
    fmt_pct,
    lit,
    rows,
    trace_totals,
)
from correlate.types import Evidence, Finding

__all__ = ["NAME", "find_service_graph_changes"]

NAME = "service_graph"
CALLS_RATIO = 2.0  # calls per request moved by at least this factor
MIN_CALLS = 5


def _edges(ctx: AnalysisContext) -> list[dict]:
    return rows(
        ctx.con,
        f"""SELECT p_service AS caller, service AS callee,
                   count(*) FILTER (WHERE NOT after) AS calls_b, count(*) FILTER (WHERE after) AS calls_a,
                   count(*) FILTER (WHERE NOT after AND err) AS errors_b,
                   count(*) FILTER (WHERE after AND err) AS errors_a
            FROM {ctx.s} WHERE p_service IS NOT NULL AND p_service <> service
            GROUP BY p_service, service ORDER BY p_service, service""",
    )


def _edge_query(caller: str, callee: str) -> str:
    return f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, count(*) AS calls,
       count(*) FILTER (WHERE err) AS errors,
       (SELECT count(*) FROM s r WHERE r.p_start_ns IS NULL AND r.after = s.after) AS requests
FROM s WHERE p_service = {lit(caller)} AND service = {lit(callee)}
GROUP BY after ORDER BY after"""


def find_service_graph_changes(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    edges = _edges(ctx)
    totals = trace_totals(ctx)
    out.findings.append(
        Finding(
            kind=NAME,
            summary=f"{len(edges)} caller -> callee edges between services",
            evidence=Evidence(details={"edges": [[e["caller"], e["callee"]] for e in edges]}),
        )
    )
    if not ctx.has_baseline or not totals.n_before or not totals.n_after:
        return out
    for e in edges:
        summary = _change(e, totals.n_before, totals.n_after)
        if summary is None:
            continue
        q = _edge_query(e["caller"], e["callee"])
        out.findings.append(
            Finding(
                kind=NAME,
                service=e["callee"],
                operation=None,
                summary=summary,
                evidence=Evidence(
                    before={"calls": e["calls_b"], "errors": e["errors_b"], "requests": totals.n_before},
                    after={"calls": e["calls_a"], "errors": e["errors_a"], "requests": totals.n_after},
                    sql=evidence_sql(ctx, q),
                    details={"caller": e["caller"], "callee": e["callee"]},
                ),
            )
        )
    return out


def _change(e: dict, n_b: int, n_a: int) -> str | None:
    edge = f"{e['caller']} -> {e['callee']}"
    if e["calls_b"] == 0 and e["calls_a"] >= MIN_CALLS:
        return f"new edge {edge}: {e['calls_a']} calls in the window, none before"
    if e["calls_a"] == 0 and e["calls_b"] >= MIN_CALLS:
        return f"edge {edge} vanished: {e['calls_b']} calls before, none in the window"
    if min(e["calls_a"], e["calls_b"]) < MIN_CALLS:
        return None
    per_b = e["calls_b"] / n_b
    per_a = e["calls_a"] / n_a
    parts = []
    if per_a >= CALLS_RATIO * per_b or per_b >= CALLS_RATIO * per_a:
        parts.append(f"calls per request {per_b:.2f} -> {per_a:.2f}")
    rate_b = e["errors_b"] / e["calls_b"]
    rate_a = e["errors_a"] / e["calls_a"]
    if rate_a - rate_b >= 0.05 and e["errors_a"] >= MIN_CALLS:
        parts.append(f"error rate {fmt_pct(rate_b)} -> {fmt_pct(rate_a)}")
    return f"edge {edge}: " + ", ".join(parts) if parts else None
