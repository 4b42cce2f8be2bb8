"""Time lost between services: the network gap of every call, before vs after.

The gap of a call is its CLIENT span's duration minus the duration of the SERVER span it
caused (both measured on one host each, so clock skew does not enter). Gaps that grow on the
calls INTO one service, while its own server spans do not slow, point at the network (or a
proxy, or a saturated connection pool) in front of that service: `network_delay` on the callee.
"""

from __future__ import annotations

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    clamp01,
    evidence_sql,
    exemplars,
    fmt_ms,
    lit,
    median_shift,
    period_figures,
    ratio_score,
    rows,
    trace_totals,
)
from correlate.types import Candidate, Evidence

__all__ = ["NAME", "find_network_delays"]

NAME = "network_gaps"
FLOOR_NS = 200_000  # gaps under 0.2 ms are loopback noise
MIN_CALLS = 5
CALL = "kind = 'CLIENT' AND remote_ns IS NOT NULL"


def _edges(ctx: AnalysisContext) -> list[dict]:
    return rows(
        ctx.con,
        f"""SELECT remote_service AS callee, service AS caller,
                   count(*) FILTER (WHERE NOT after) AS n_b, count(*) FILTER (WHERE after) AS n_a,
                   avg(dur_ns - remote_ns) FILTER (WHERE NOT after) AS gap_b,
                   avg(dur_ns - remote_ns) FILTER (WHERE after) AS gap_a
            FROM {ctx.s} WHERE {CALL} GROUP BY remote_service, service ORDER BY remote_service, service""",
    )


def _callees(ctx: AnalysisContext) -> list[dict]:
    gap = "dur_ns - remote_ns"
    return rows(
        ctx.con,
        f"""SELECT remote_service AS callee,
                   count(*) FILTER (WHERE NOT after) AS n_b, count(*) FILTER (WHERE after) AS n_a,
                   median({gap}) FILTER (WHERE NOT after) AS p50_b, median({gap}) FILTER (WHERE after) AS p50_a,
                   quantile_cont({gap}, 0.75) FILTER (WHERE NOT after)
                     - quantile_cont({gap}, 0.25) FILTER (WHERE NOT after) AS iqr_b,
                   quantile_cont({gap}, 0.75) FILTER (WHERE after)
                     - quantile_cont({gap}, 0.25) FILTER (WHERE after) AS iqr_a,
                   coalesce(sum({gap}) FILTER (WHERE NOT after), 0) AS tot_b,
                   coalesce(sum({gap}) FILTER (WHERE after), 0) AS tot_a
            FROM {ctx.s} WHERE {CALL} GROUP BY remote_service ORDER BY remote_service""",
    )


def find_network_delays(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    if not ctx.has_baseline:
        return out
    totals = trace_totals(ctx)
    if not totals.n_before or not totals.n_after:
        return out
    ref_ns = max(totals.mean_dur_before_ns or 0.0, 1e6)
    edges: dict[str, list[dict]] = {}
    for e in _edges(ctx):
        edges.setdefault(e["callee"], []).append(e)
    for c in _callees(ctx):
        if c["n_b"] < MIN_CALLS or c["n_a"] < MIN_CALLS:
            continue
        sure = median_shift(c["p50_b"], c["p50_a"], c["iqr_b"], c["iqr_a"], c["n_b"], c["n_a"], FLOOR_NS)
        delta_req = c["tot_a"] / totals.n_after - c["tot_b"] / totals.n_before
        impact = clamp01(delta_req / (0.25 * ref_ns))
        mine = [e for e in edges.get(c["callee"], []) if e["n_a"] and e["n_b"]]
        grown = [e for e in mine if ratio_score(e["gap_b"], e["gap_a"], FLOOR_NS) >= 0.3]
        spread = len(grown) / len(mine) if mine else 0.0
        score = ratio_score(c["p50_b"], c["p50_a"], FLOOR_NS) * sure * (0.3 + 0.7 * impact) * (0.5 + 0.5 * spread)
        if score < 0.05:
            continue
        out.candidates.append(_candidate(ctx, c["callee"], mine, score))
    return out


def _candidate(ctx: AnalysisContext, callee: str, edges: list[dict], score: float) -> Candidate:
    q = f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, count(*) AS calls,
       round(avg(dur_ns - remote_ns)) AS mean_gap_ns, quantile_disc(dur_ns - remote_ns, 0.95) AS p95_gap_ns,
       round(avg(remote_ns)) AS mean_server_ns
FROM s WHERE {CALL} AND remote_service = {lit(callee)}
GROUP BY after ORDER BY after"""
    before, after = period_figures(ctx, q)
    tids, sids = exemplars(ctx, f"after AND {CALL} AND remote_service = {lit(callee)}",
                           order="dur_ns - remote_ns DESC")
    callers = sorted({e["caller"] for e in edges})
    summary = (
        f"calls into {callee} (from {', '.join(callers)}) spend longer between client and server: "
        f"mean gap {fmt_ms(before.get('mean_gap_ns'))} -> {fmt_ms(after.get('mean_gap_ns'))}, while its "
        f"server spans take {fmt_ms(before.get('mean_server_ns'))} -> {fmt_ms(after.get('mean_server_ns'))}"
    )
    per_edge = {
        f"{e['caller']} -> {callee}": {"mean_gap_before_ns": round(e["gap_b"] or 0),
                                       "mean_gap_after_ns": round(e["gap_a"] or 0)}
        for e in edges
    }
    ev = Evidence(before=before, after=after, trace_ids=tids, span_ids=sids, sql=evidence_sql(ctx, q),
                  details={"edges": per_edge})
    return Candidate(callee, None, "network_delay", round(clamp01(score), 4), summary, ev, NAME)

