"""Deploys: a `service.version` that the window has and the baseline had not.

A new version first seen close to the window's start (the last ONSET_BEFORE of the baseline
up to the first ONSET_AFTER of the window) and carrying at least MIN_SHARE of the service's
spans in the window "coincides with the onset"; the ranking then raises that service's
candidates and adds a `deploy_regression` one. The deploy itself is a finding: a deploy
with no regression is no cause.
"""

from __future__ import annotations

from correlate.analyses.common import AnalysisContext, AnalysisResult, evidence_sql, iso, lit, rows
from correlate.types import Evidence, Finding

__all__ = ["NAME", "find_deploys", "ONSET_BEFORE", "ONSET_AFTER", "MIN_SHARE"]

NAME = "deploy"
ONSET_BEFORE = 0.10  # of the window's length, before its start
ONSET_AFTER = 0.25  # of the window's length, after its start
MIN_SHARE = 0.2


def find_deploys(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    if not ctx.has_baseline:
        return out
    got = rows(
        ctx.con,
        f"""SELECT service, version, count(*) FILTER (WHERE NOT after) AS n_b, count(*) FILTER (WHERE after) AS n_a,
                   min(start_ns) AS first_ns, arg_min(trace_id, start_ns) AS first_trace,
                   arg_min(span_id, start_ns) AS first_span
            FROM {ctx.s} WHERE version IS NOT NULL GROUP BY service, version ORDER BY service, version""",
    )
    by_svc: dict[str, list[dict]] = {}
    for r in got:
        by_svc.setdefault(r["service"], []).append(r)
    span = ctx.window.end_ns - ctx.window.start_ns
    lo = ctx.window.start_ns - int(ONSET_BEFORE * span)
    hi = ctx.window.start_ns + int(ONSET_AFTER * span)
    for svc, versions in by_svc.items():
        total_a = sum(v["n_a"] for v in versions)
        old = sorted(v["version"] for v in versions if v["n_b"] > 0)
        for v in versions:
            share_a = v["n_a"] / total_a if total_a else 0.0
            if v["n_b"] > 0 or not old or share_a < MIN_SHARE:
                continue  # not new, or nothing to change from, or too little of the traffic
            coincides = lo <= v["first_ns"] < hi
            out.findings.append(_finding(ctx, svc, v, old, share_a, coincides))
    return out


def _finding(
    ctx: AnalysisContext, svc: str, v: dict, old: list[str], share_a: float, coincides: bool
) -> Finding:
    q = f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, version, count(*) AS spans,
       min(start_ns) AS first_ns
FROM s WHERE service = {lit(svc)}
GROUP BY after, version ORDER BY after, version"""
    when = iso(v["first_ns"])
    summary = (
        f"{svc} runs a new version {v['version']} (before: {', '.join(old)}) on {100 * share_a:.0f}% of its "
        f"spans in the window, first seen {when}" + (", at the onset" if coincides else ", not at the onset")
    )
    return Finding(
        kind=NAME,
        service=svc,
        summary=summary,
        evidence=Evidence(
            before={"versions": old},
            after={"new_version": v["version"], "share": round(share_a, 4), "first_seen_ns": v["first_ns"]},
            trace_ids=(v["first_trace"],),
            span_ids=(v["first_span"],),
            sql=evidence_sql(ctx, q),
            details={
                "new_version": v["version"],
                "old_versions": ", ".join(old),
                "coincides": coincides,
                "first_seen_ns": v["first_ns"],
            },
        ),
    )
