"""Whose own work got slower: self time per service and operation, before vs after.

Self time is a span's duration minus the time its children cover, so a caller that only waits
for a slower callee keeps its self time: the added latency lands on the callee. A CLIENT span
with an instrumented server child is left out here (its self time is the network gap, see
`network_gaps`); a CLIENT span with no server child (a database, a cache, an outside API)
keeps its whole duration as the caller's own work.

Figures per request: the total self time of an operation in a period divided by the number of
requests (root spans) of that period, so "slower calls" and "more calls" both show.
A service whose operations (most of them, at least two) all slow by a similar factor is
saturated (`cpu_saturation`); one operation that slows is a `latency_regression`. A window
whose typical call is no slower than the baseline's p90 shows more calls of a kind seen before
(WITHIN_BASELINE), and a slice of slow calls counts only well above that p90 (TAIL_MARGIN).
"""

from __future__ import annotations

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    TraceTotals,
    clamp01,
    evidence_sql,
    exemplars,
    fmt_ms,
    lit,
    median_shift,
    new_code_path,
    period_figures,
    rank_shift,
    ranked,
    rate_score,
    ratio_score,
    rows,
    service_totals,
    trace_totals,
)
from correlate.types import Candidate, Evidence, Finding

__all__ = ["NAME", "find_latency_regressions"]

NAME = "latency_attribution"
MAX_CANDIDATES = 4
FLOOR_NS = 100_000  # 0.1 ms: less is noise
SLOWED = 1.3  # an operation counts as slowed at this per-call ratio
TAIL_SHARE = 0.25  # of the window's calls well above the baseline's p90
# "well above": this many times the baseline's p90. Just above it is the baseline's own slow
# tenth, or a slow mode it had, taken more often (1.25-2.0 ranked the real faults alike)
TAIL_MARGIN = 1.5
MIN_CALLS = 5
# a typical call in the window no slower than the baseline's p90 is more calls of a kind the
# baseline had (a periodic flush, a slow branch taken more often), not work that got slower:
# its score counts this much (on real faults, the one such false first was a table scan that has
# slow phases a minute apart; 0.35-0.7 ranked every case alike)
WITHIN_BASELINE = 0.5
LOCAL = "remote_ns IS NULL"


def _ops(ctx: AnalysisContext) -> list[dict]:
    return rows(
        ctx.con,
        f"""WITH tail AS (
              SELECT service, op, quantile_cont(self_ns, 0.9) FILTER (WHERE NOT after) AS p90_b,
                     sum(rk) FILTER (WHERE after) AS rank_sum_a
              FROM ({ranked(ctx.s, "self_ns", f"WHERE {LOCAL}")}) GROUP BY service, op
            )
            SELECT service, op,
               count(*) FILTER (WHERE NOT after) AS n_b, count(*) FILTER (WHERE after) AS n_a,
               avg(self_ns) FILTER (WHERE NOT after) AS mean_b, avg(self_ns) FILTER (WHERE after) AS mean_a,
               quantile_cont(self_ns, 0.5) FILTER (WHERE NOT after) AS p50_b,
               quantile_cont(self_ns, 0.5) FILTER (WHERE after) AS p50_a,
               quantile_cont(self_ns, 0.75) FILTER (WHERE NOT after)
                 - quantile_cont(self_ns, 0.25) FILTER (WHERE NOT after) AS iqr_b,
               quantile_cont(self_ns, 0.75) FILTER (WHERE after)
                 - quantile_cont(self_ns, 0.25) FILTER (WHERE after) AS iqr_a,
               any_value(tail.p90_b) AS p90_b, any_value(tail.rank_sum_a) AS rank_sum_a,
               count(*) FILTER (WHERE NOT after AND self_ns > {TAIL_MARGIN} * tail.p90_b) AS above_tail_b,
               count(*) FILTER (WHERE after AND self_ns > {TAIL_MARGIN} * tail.p90_b) AS above_tail_a,
               coalesce(sum(self_ns) FILTER (WHERE NOT after), 0) AS tot_b,
               coalesce(sum(self_ns) FILTER (WHERE after), 0) AS tot_a
            FROM {ctx.s} JOIN tail USING (service, op) WHERE {LOCAL} GROUP BY service, op""",
    )


def find_latency_regressions(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    totals = trace_totals(ctx)
    ops = _ops(ctx)
    if not ops or not totals.n_after:
        return out
    if not ctx.has_baseline:
        return _without_baseline(ops, totals)
    per_service = service_totals(ctx)
    scored: list[tuple[float, dict]] = []
    for g in ops:
        # per request that touches the service, weighed against those requests' duration
        st = per_service.get(g["service"], totals)
        g["ref_ns"] = max(st.median_dur_before_ns or st.mean_dur_before_ns or 0.0, 1e6)
        g["n_req_b"], g["n_req_a"] = max(st.n_before, 1), max(st.n_after, 1)
        g["req_b"] = g["tot_b"] / g["n_req_b"]
        g["req_a"] = g["tot_a"] / g["n_req_a"]
        g["delta_req"] = g["req_a"] - g["req_b"]
        # per call by the median: one slow outlier in a small sample is not a regression
        g["call_ratio"] = (
            max(g["p50_a"] or 0, FLOOR_NS) / max(g["p50_b"] or 0, FLOOR_NS) if g["n_b"] else None
        )
        if g["n_b"] < MIN_CALLS or g["n_a"] < MIN_CALLS:
            continue
        slower_calls = g["call_ratio"] is not None and g["call_ratio"] >= SLOWED
        if not slower_calls:
            tail = _tail_score(g)  # the typical call kept its speed; did a slice of them slow?
            if tail >= 0.02:
                g["tail"] = True
                scored.append((tail, g))
            continue  # else more calls at the same speed: the patterns and the service graph say why
        calls_b, calls_a = g["n_b"] / g["n_req_b"], g["n_a"] / g["n_req_a"]
        typical_b, typical_a = g["p50_b"] * calls_b, g["p50_a"] * calls_a  # median-based, per request
        impact = clamp01((typical_a - typical_b) / (0.25 * g["ref_ns"]))
        s = ratio_score(typical_b, typical_a, FLOOR_NS) * _significance(g) * (0.3 + 0.7 * impact)
        if g["p90_b"] is not None and g["p50_a"] <= g["p90_b"]:
            s *= WITHIN_BASELINE
        if s > 0:
            scored.append((s, g))
    scored.sort(key=lambda x: (-x[0], x[1]["service"], x[1]["op"]))
    saturated = _saturated_services(ops)
    for svc, (s, info) in saturated.items():
        out.candidates.append(_service_candidate(ctx, svc, s, info, "cpu_saturation"))
        out.candidates.append(_service_candidate(ctx, svc, s * 0.8, info, "latency_regression"))
    for s, g in scored[:MAX_CANDIDATES]:
        if g["service"] in saturated:
            s *= 0.7  # the service-wide candidate says it better
        out.candidates.append(_op_candidate(ctx, g, s, *new_code_path(ctx, g["service"], g["op"])))
    return out


def _tail_score(g: dict) -> float:
    """A slice of the calls slowed while the median did not: the share of the window's calls well
    above the baseline's p90 (TAIL_MARGIN times it) against the baseline's share there, as a rate
    change, weighed by the mean time it adds to a request. Needs that share to reach TAIL_SHARE
    and the slow calls to be real work."""
    share = g["above_tail_a"] / g["n_a"]
    if share < TAIL_SHARE or (g["p90_b"] or 0) < FLOOR_NS:
        return 0.0
    impact = clamp01(g["delta_req"] / (0.25 * g["ref_ns"]))
    return rate_score(g["above_tail_b"], g["n_b"], g["above_tail_a"], g["n_a"]) * impact


def _significance(g: dict) -> float:
    """How surely the calls got slower: the median shift, or a rank test where the window's spread
    (a contended CPU makes some calls very slow) hides a shift that every rank shows."""
    by_median = median_shift(g["p50_b"], g["p50_a"], g["iqr_b"], g["iqr_a"], g["n_b"], g["n_a"], FLOOR_NS)
    return max(by_median, rank_shift(g.get("rank_sum_a"), g["n_b"], g["n_a"]))


def _saturated_services(ops: list[dict]) -> dict[str, tuple[float, dict]]:
    by_svc: dict[str, list[dict]] = {}
    for g in ops:
        if g["n_b"] >= MIN_CALLS and g["n_a"] >= MIN_CALLS and g.get("call_ratio") is not None:
            by_svc.setdefault(g["service"], []).append(g)
    out: dict[str, tuple[float, dict]] = {}
    for svc, gs in by_svc.items():
        # operations of real weight only (>= 0.1 ms a call before): a counter bump is not work
        gs = [g for g in gs if (g["p50_b"] or 0) >= FLOOR_NS]
        if len(gs) < 2:
            continue
        slowed = [g for g in gs if g["call_ratio"] >= SLOWED]
        if len(slowed) / len(gs) < 0.6 or len(slowed) < 2:
            continue
        req_b = sum(g["p50_b"] * g["n_b"] for g in gs) / gs[0]["n_req_b"]
        req_a = sum(g["p50_a"] * g["n_a"] for g in gs) / gs[0]["n_req_a"]
        impact = clamp01((req_a - req_b) / (0.25 * gs[0]["ref_ns"]))
        spread = len(slowed) / len(gs)
        sig = max(_significance(g) for g in slowed)
        s = ratio_score(req_b, req_a, FLOOR_NS) * sig * (0.3 + 0.7 * impact) * (0.6 + 0.4 * spread)
        out[svc] = (
            s,
            {
                "ops": len(gs),
                "slowed_ops": len(slowed),
                "req_b": req_b,
                "req_a": req_a,
                "ratios": {g["op"]: round(g["call_ratio"], 3) for g in gs},
            },
        )
    return out


def _op_query(service: str, op: str | None) -> str:
    where = f"service = {lit(service)}" + (f" AND op = {lit(op)}" if op is not None else "")
    return f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, count(*) AS calls,
       round(avg(self_ns)) AS mean_self_ns, quantile_disc(self_ns, 0.5) AS p50_self_ns,
       quantile_disc(self_ns, 0.95) AS p95_self_ns, sum(self_ns) AS total_self_ns,
       (SELECT count(*) FROM s r WHERE r.p_start_ns IS NULL AND r.after = s.after) AS requests
FROM s WHERE {where} AND {LOCAL}
GROUP BY after ORDER BY after"""


def _per_request(d: dict) -> float | None:
    if not d.get("requests"):
        return None
    return d["total_self_ns"] / d["requests"]


def _shown_changes(before: dict, after: dict) -> dict:
    """The changes the summary states, from the figures it shows (one definition each): the mean
    self time per request (the period's total over its requests) after minus before, and the
    median self time a call (p50_self_ns) after over before. Scoring uses its own estimates."""
    out: dict[str, float] = {}
    b, a = _per_request(before), _per_request(after)
    if a is not None and b is not None:
        out["delta_self_per_request_ns"] = round(a - b)
    if before.get("p50_self_ns") and after.get("p50_self_ns") is not None:
        out["p50_self_ratio"] = round(after["p50_self_ns"] / before["p50_self_ns"], 3)
    return out


def _op_candidate(
    ctx: AnalysisContext, g: dict, score: float, new_share: float, new_caller: str | None
) -> Candidate:
    service, op = g["service"], g["op"]
    q = _op_query(service, op)
    before, after = period_figures(ctx, q)
    tids, sids = exemplars(
        ctx, f"after AND {LOCAL} AND service = {lit(service)} AND op = {lit(op)}", order="self_ns DESC"
    )
    summary = (
        f"{service} {op} got slower in its own work: median self time {fmt_ms(before.get('p50_self_ns'))} -> "
        f"{fmt_ms(after.get('p50_self_ns'))} a call (mean per request {fmt_ms(_per_request(before))} -> "
        f"{fmt_ms(_per_request(after))})"
    )
    if g.get("tail"):
        summary = (
            f"a slice of {service} {op} calls got slower: {g['above_tail_a']} of {g['n_a']} calls "
            f"({100 * g['above_tail_a'] / g['n_a']:.0f}%, against {g['above_tail_b']} of {g['n_b']} before) take over "
            f"{TAIL_MARGIN}x the baseline's p90 of {fmt_ms(g['p90_b'])}; p95 self time {fmt_ms(before.get('p95_self_ns'))} -> {fmt_ms(after.get('p95_self_ns'))}"
        )
    ev = Evidence(
        before=before,
        after=after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, q),
        details=_shown_changes(before, after),
    )
    if new_caller and new_share >= 0.5 and new_caller != service:
        # most of this work runs on a code path that did not run before: whoever calls it now changed
        ev.details["new_caller"] = new_caller
        summary += f"; {100 * new_share:.0f}% of these calls run under an operation first called in the window, by {new_caller}"
        return Candidate(new_caller, None, "latency_regression", round(clamp01(score), 4), summary, ev, NAME)
    return Candidate(service, op, "latency_regression", round(clamp01(score), 4), summary, ev, NAME)


def _service_candidate(ctx: AnalysisContext, svc: str, score: float, info: dict, mechanism: str) -> Candidate:
    q = _op_query(svc, None)
    before, after = period_figures(ctx, q)
    tids, sids = exemplars(ctx, f"after AND {LOCAL} AND service = {lit(svc)}", order="self_ns DESC")
    summary = (
        f"every operation of {svc} slowed ({info['slowed_ops']} of {info['ops']} at least {SLOWED}x): "
        f"mean self time {fmt_ms(before.get('mean_self_ns'))} -> {fmt_ms(after.get('mean_self_ns'))} a call, "
        f"{fmt_ms(_per_request(before))} -> {fmt_ms(_per_request(after))} a request"
    )
    ev = Evidence(
        before=before,
        after=after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, q),
        details={"per_call_ratio_by_operation": info["ratios"], **_shown_changes(before, after)},
    )
    return Candidate(svc, None, mechanism, round(clamp01(score), 4), summary, ev, NAME)


def _mean_over(mean_ns: float | None, calls: int) -> str:
    """'mean 12 ms a call over 40 calls'; a single call is just its time."""
    return (
        f"{fmt_ms(mean_ns)} in its only call"
        if calls == 1
        else f"mean {fmt_ms(mean_ns)} a call over {calls} calls"
    )


def _without_baseline(ops: list[dict], totals: TraceTotals) -> AnalysisResult:
    """No baseline: no change to measure; the largest own-time consumers, as findings."""
    out = AnalysisResult()
    total = sum(g["tot_a"] for g in ops) or 1
    for g in sorted(ops, key=lambda g: -g["tot_a"])[:5]:
        share = g["tot_a"] / total
        out.findings.append(
            Finding(
                kind=NAME,
                service=g["service"],
                operation=g["op"],
                summary=(
                    f"{g['service']} {g['op']} takes {100 * share:.0f}% of all self time in the window "
                    f"({_mean_over(g['mean_a'], g['n_a'])})"
                ),
                evidence=Evidence(
                    after={
                        "calls": g["n_a"],
                        "mean_self_ns": round(g["mean_a"] or 0),
                        "share_of_self_time": round(share, 4),
                    }
                ),
            )
        )
    return out
