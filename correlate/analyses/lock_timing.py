"""Locks and leases against their TTL: leases that ran out before their holder renewed them.

Lock or lease operations are spans whose name says lock, lease or mutex. A lease expired when
a span of such an operation reports no time left (an attribute named like `…remaining…` or
`…left…` at or below zero, e.g. `lock.lease.remaining_ms`), or fails with a message about an
expired or lost lease. The holder is the service that asked: the caller of a SERVER span, the
service of any other span. The lock service that refuses an expired lease is the messenger.

An expiry is a definite event, not a statistic: none before and some now is a strong signal
even in a small sample.
"""

from __future__ import annotations

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    clamp01,
    confidence,
    evidence_sql,
    exemplars,
    lit,
    period_figures,
    rate_score,
    rows,
)
from correlate.types import Candidate, Evidence

__all__ = ["NAME", "find_lease_expiries", "LOCK_OP", "EXPIRED", "HOLDER", "REMAINING"]

NAME = "lock_timing"
LOCK_OP = "attrs IS NOT NULL AND regexp_matches(op, '(?i)lock|lease|mutex')"
REMAINING = (
    'TRY_CAST(regexp_extract(attrs, \'"[^"]*(remaining|left)[^"]*"\\s*:\\s*(-?[0-9.]+)\', 2) AS DOUBLE)'
)
EXPIRED = (
    f"(coalesce({REMAINING} <= 0, false) OR (err AND regexp_matches(lower(coalesce(err_msg, '')), "
    "'expire|lease|lock lost|lost lock')))"
)
HOLDER = "(CASE WHEN kind = 'SERVER' AND p_service IS NOT NULL THEN p_service ELSE service END)"


def _events(spans: str) -> str:
    """Lock operation spans with their holder and whether they show an expiry; expiries are
    counted by request (distinct trace), so the holder's failure and the server's refusal of one
    renewal count once."""
    return f"""SELECT after, trace_id, span_id, {HOLDER} AS holder, op, {EXPIRED} AS expired, kind
FROM {spans} WHERE {LOCK_OP}"""


def find_lease_expiries(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    got = rows(
        ctx.con,
        f"""WITH e AS ({_events(ctx.s)})
        SELECT holder, count(*) FILTER (WHERE NOT after AND kind <> 'SERVER') AS ops_b,
               count(*) FILTER (WHERE after AND kind <> 'SERVER') AS ops_a,
               count(DISTINCT trace_id) FILTER (WHERE NOT after AND expired) AS expired_b,
               count(DISTINCT trace_id) FILTER (WHERE after AND expired) AS expired_a,
               mode(op ORDER BY op) FILTER (WHERE after AND expired) AS op
        FROM e GROUP BY holder HAVING count(*) FILTER (WHERE after AND expired) > 0""",
    )
    for g in got:
        if ctx.has_baseline and g["expired_b"] > 0:
            s = rate_score(g["expired_b"], max(g["ops_b"], 1), g["expired_a"], max(g["ops_a"], 1))
        else:
            # none before (or no baseline): each expiry is a fact; a few make it certain
            s = (0.35 + 0.6 * confidence(g["expired_a"], 3)) * (1.0 if ctx.has_baseline else 0.6)
        if s > 0.02:
            out.candidates.append(_candidate(ctx, g, clamp01(s)))
    return out


def _candidate(ctx: AnalysisContext, g: dict, score: float) -> Candidate:
    holder = g["holder"]
    q = f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period,
       count(*) FILTER (WHERE kind <> 'SERVER') AS lock_calls,
       count(DISTINCT trace_id) FILTER (WHERE {EXPIRED}) AS requests_with_expired_lease,
       min({REMAINING}) AS min_remaining
FROM s WHERE {LOCK_OP} AND {HOLDER} = {lit(holder)}
GROUP BY after ORDER BY after"""
    before, after = period_figures(ctx, q)
    tids, sids = exemplars(ctx, f"after AND {LOCK_OP} AND {EXPIRED} AND {HOLDER} = {lit(holder)}")
    summary = (
        f"{holder}'s lock leases run out before it renews them: {g['expired_a']} requests hit an expired lease "
        f"on {g['op']}" + (f" (before: {g['expired_b']})" if ctx.has_baseline else "")
    )
    lowest = after.get("min_remaining")
    if lowest is not None:  # the attribute's own name carries the unit (lock.lease.remaining_ms)
        key = ctx.con.execute(
            f"""SELECT regexp_extract(attrs, '"([^"]*(remaining|left)[^"]*)"\\s*:\\s*-?[0-9.]', 1)
                FROM {ctx.s} WHERE after AND {LOCK_OP} AND {HOLDER} = ? AND {REMAINING} = ? LIMIT 1""",
            [holder, lowest],
        ).fetchone()
        figure = int(lowest) if float(lowest).is_integer() else lowest
        summary += f", lowest {key[0] if key and key[0] else 'time left'} reported: {figure}"
    ev = Evidence(
        before=before,
        after=after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, q),
        details={"operation": g["op"]},
    )
    return Candidate(holder, g["op"], "lock_expiry", round(score, 4), summary, ev, NAME)
