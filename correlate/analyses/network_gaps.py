"""Time lost between services: the network gap of every call, before vs after.

The gap of a call is its CLIENT span's duration minus the duration of the SERVER span it
caused (each measured on one host, so clock skew does not enter). An edge (caller -> callee)
whose gaps grew, surely (a median-shift test) and clearly (at least GROWN of the ratio score),
lost time on the wire. The service that the grown edges have in common is where the network is
bad: a slow path INTO a service grows every edge that calls it; a delayed pod grows its edges
both ways. Each service's share of the grown edges' added time (edges it is the callee of, and
half of those it is the caller of, all of them when every call it makes grew) decides: above MIN_SHARE makes a `network_delay` candidate,
scaled by that share.

Edges whose window gap is OUTLIER_RATIO times the typical gap of every call in the system are
far off without a baseline to compare (one too thin, or one the delay already covers): the
same shared-endpoint rule names a service, scored below a measured change.
"""

from __future__ import annotations

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    TraceTotals,
    clamp01,
    confidence,
    evidence_sql,
    exemplars,
    fmt_ms,
    lit,
    median_shift,
    one_row,
    period_figures,
    ratio_score,
    rows,
    trace_totals,
)
from correlate.types import Candidate, Evidence

__all__ = ["NAME", "find_network_delays", "GROWN", "MIN_SHARE"]

NAME = "network_gaps"
FLOOR_NS = 200_000  # gaps under 0.2 ms are loopback noise
MIN_CALLS = 3  # per edge and period
GROWN = 0.3
MIN_SHARE = 0.5
OUTLIER_RATIO = 20.0  # a median gap this many times the system's typical gap is far off, baseline or not
OUTLIER_FACTOR = 0.7
FAN_OUT = 3  # a caller whose calls to at least this many services all grew is their common end
CALL = "kind = 'CLIENT' AND remote_ns IS NOT NULL"
GAP = "dur_ns - remote_ns"


def _edges(ctx: AnalysisContext) -> list[dict]:
    return rows(
        ctx.con,
        f"""SELECT service AS caller, remote_service AS callee,
                   count(*) FILTER (WHERE NOT after) AS n_b, count(*) FILTER (WHERE after) AS n_a,
                   median({GAP}) FILTER (WHERE NOT after) AS p50_b, median({GAP}) FILTER (WHERE after) AS p50_a,
                   quantile_cont({GAP}, 0.75) FILTER (WHERE NOT after)
                     - quantile_cont({GAP}, 0.25) FILTER (WHERE NOT after) AS iqr_b,
                   quantile_cont({GAP}, 0.75) FILTER (WHERE after)
                     - quantile_cont({GAP}, 0.25) FILTER (WHERE after) AS iqr_a,
                   coalesce(sum({GAP}) FILTER (WHERE NOT after), 0) AS tot_b,
                   coalesce(sum({GAP}) FILTER (WHERE after), 0) AS tot_a
            FROM {ctx.s} WHERE {CALL} AND service <> remote_service
            GROUP BY service, remote_service ORDER BY service, remote_service""",
    )


def find_network_delays(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    totals = trace_totals(ctx)
    if not totals.n_after:
        return out
    edges = _edges(ctx)
    out.candidates.extend(_outliers(ctx, edges, totals))
    if not ctx.has_baseline or not totals.n_before:
        return out
    ref_ns = max(totals.mean_dur_before_ns or 0.0, 1e6)
    grown = []
    for e in edges:
        if e["n_b"] < MIN_CALLS or e["n_a"] < MIN_CALLS:
            continue
        e["ratio"] = ratio_score(e["p50_b"], e["p50_a"], FLOOR_NS)
        e["sure"] = median_shift(e["p50_b"], e["p50_a"], e["iqr_b"], e["iqr_a"], e["n_b"], e["n_a"], FLOOR_NS)
        e["delta"] = max(e["tot_a"] / totals.n_after - e["tot_b"] / totals.n_before, 0.0)
        if e["ratio"] >= GROWN and e["sure"] > 0:
            grown.append(e)
    compared = [e for e in edges if e["n_b"] >= MIN_CALLS and e["n_a"] >= MIN_CALLS]
    for svc, mine, share in _shared_endpoints(grown, compared):
        n = sum(e["n_a"] for e in mine)
        ratio = sum(e["ratio"] * e["n_a"] for e in mine) / n
        sure = sum(e["sure"] * e["n_a"] for e in mine) / n
        impact = clamp01(sum(e["delta"] for e in mine) / (0.25 * ref_ns))
        score = ratio * sure * (0.3 + 0.7 * impact) * share
        if score >= 0.05:
            out.candidates.append(_candidate(ctx, svc, mine, score))
    return out


def _shared_endpoints(edges: list[dict], every: list[dict]) -> list[tuple[str, list[dict], float]]:
    """The services that edges with added time (`delta`) have in common: (service, its edges,
    its share of the added time) for each whose share passes MIN_SHARE.

    A slow path is more often in front of the callee: as caller a service counts half, so one
    grown edge names its callee, and a pod delayed both ways still names itself. A caller
    whose every outgoing edge (of `every` edge with enough calls; at least FAN_OUT of them)
    grew takes the whole of them and its callees half: its client side is the one thing those
    calls share (a starved CPU, a slow egress)."""
    added = sum(e["delta"] for e in edges)
    if not edges or added <= 0:
        return []
    grown = {(e["caller"], e["callee"]) for e in edges}
    fan_out: dict[str, list[bool]] = {}
    for e in every:
        fan_out.setdefault(e["caller"], []).append((e["caller"], e["callee"]) in grown)
    whole = {svc for svc, hits in fan_out.items() if len(hits) >= FAN_OUT and all(hits)}
    out = []
    for svc in sorted({e["caller"] for e in edges} | {e["callee"] for e in edges}):
        mine = [e for e in edges if svc in (e["caller"], e["callee"])]
        share = sum(e["delta"] * _weight(e, svc, whole) for e in mine) / added
        if share > MIN_SHARE:
            out.append((svc, mine, share))
    return out


def _weight(e: dict, svc: str, whole: set[str]) -> float:
    """How much of an edge's added time goes to `svc`, one of its ends: the callee's by default,
    half to the caller; the other way round when the caller's every call grew."""
    callee_side = e["callee"] == svc
    if e["caller"] in whole:
        return 0.5 if callee_side else 1.0
    return 1.0 if callee_side else 0.5


def _outliers(ctx: AnalysisContext, edges: list[dict], totals: TraceTotals) -> list[Candidate]:
    """Edges whose gap in the window is far beyond what calls in this system take on the wire,
    baseline or not: a delay already present in a short baseline, or a baseline too thin to
    compare an edge with, still shows against the typical gap of every call (the median over
    all edges of both periods). Scored below a measured change (OUTLIER_FACTOR)."""
    typical = one_row(
        ctx.con, f"SELECT median({GAP}) FROM {ctx.s} WHERE {CALL} AND service <> remote_service"
    )[0]
    if typical is None:
        return []
    typical = max(float(typical), FLOOR_NS)
    ref_ns = max(totals.mean_dur_after_ns or 0.0, 1e6)
    far = []
    for e in edges:
        if e["n_a"] < MIN_CALLS or e["p50_a"] is None or e["p50_a"] < OUTLIER_RATIO * typical:
            continue
        if ctx.has_baseline and e["n_b"] >= MIN_CALLS and (e["p50_b"] or 0) < OUTLIER_RATIO * typical:
            continue  # a baseline that can be compared, and was normal: the comparison speaks for it
        e = {
            **e,
            "ratio": ratio_score(typical, e["p50_a"], FLOOR_NS),
            "typical_ns": typical,
            "delta": max(e["tot_a"] - typical * e["n_a"], 0.0) / totals.n_after,
        }
        far.append(e)
    out = []
    for svc, mine, share in _shared_endpoints(far, [e for e in edges if e["n_a"] >= MIN_CALLS]):
        impact = clamp01(sum(e["delta"] for e in mine) / (0.25 * ref_ns))
        n = sum(e["n_a"] for e in mine)
        ratio = sum(e["ratio"] * e["n_a"] for e in mine) / n
        score = OUTLIER_FACTOR * ratio * confidence(n, 5.0) * (0.3 + 0.7 * impact) * share
        if score >= 0.05:
            out.append(_candidate(ctx, svc, mine, score, typical_ns=typical))
    return out


def _candidate(
    ctx: AnalysisContext, svc: str, edges: list[dict], score: float, typical_ns: float | None = None
) -> Candidate:
    into = sorted(e["caller"] for e in edges if e["callee"] == svc)
    out_of = sorted(e["callee"] for e in edges if e["caller"] == svc)
    q = f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, count(*) AS calls,
       median({GAP}) AS median_gap_ns, quantile_disc({GAP}, 0.95) AS p95_gap_ns, median(remote_ns) AS median_server_ns
FROM s WHERE {CALL} AND service <> remote_service AND (remote_service = {lit(svc)} OR service = {lit(svc)})
GROUP BY after ORDER BY after"""
    before, after = period_figures(ctx, q)
    tids, sids = exemplars(
        ctx,
        f"after AND {CALL} AND (remote_service = {lit(svc)} OR service = {lit(svc)})",
        order=f"{GAP} DESC",
    )
    paths = ([f"into {svc} from {', '.join(into)}"] if into else []) + (
        [f"out of {svc} to {', '.join(out_of)}"] if out_of else []
    )

    def shift(key: str) -> str:  # 'before -> after', or the window's alone without a baseline
        now = fmt_ms(after.get(key))
        return f"{fmt_ms(before.get(key))} -> {now}" if ctx.has_baseline else now

    summary = (
        f"calls {' and '.join(paths)} spend longer between client and server: median gap "
        f"{shift('median_gap_ns')}, while the server spans take {shift('median_server_ns')}"
    )
    if typical_ns is not None:
        summary += f"; calls elsewhere in the system typically spend {fmt_ms(typical_ns)} there"
    per_edge = {
        f"{e['caller']} -> {e['callee']}": (
            {"median_gap_before_ns": e["p50_b"], "median_gap_after_ns": e["p50_a"]}
            if ctx.has_baseline
            else {"median_gap_ns": e["p50_a"]}
        )
        for e in edges
    }
    ev = Evidence(
        before=before,
        after=after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, q),
        details={
            "edges": per_edge,
            "callers_into": into,
            "callees_out_of": out_of,
            **({"typical_gap_ns": round(typical_ns)} if typical_ns else {}),
        },
    )
    return Candidate(svc, None, "network_delay", round(clamp01(score), 4), summary, ev, NAME)
