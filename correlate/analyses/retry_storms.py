"""Retry storms: the same client call repeated under one parent, with failures or timeouts.

A parent span that makes MIN_ATTEMPTS or more CLIENT calls of one operation to one target
(the service of the server child, else the peer, else the span name), at least one of them
failing, retried. Counted as a share of the parent operation's calls, before vs after. The
candidate names the target: the service the storm lands on, whose slowness or failures the
callers answer with more load; the callers are in the evidence.
"""

from __future__ import annotations

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    clamp01,
    evidence_sql,
    exemplars,
    lit,
    period_figures,
    rate_score,
    rows,
    top_scored,
)
from correlate.types import Candidate, Evidence

__all__ = ["NAME", "find_retry_storms", "MIN_ATTEMPTS", "TARGET"]

NAME = "retry_storms"
MIN_ATTEMPTS = 3
MAX_CANDIDATES = 3
TARGET = "coalesce(remote_service, peer_service, op)"
STORM = f"n >= {MIN_ATTEMPTS} AND n_err >= 1"


def _attempts(spans: str) -> str:
    return f"""SELECT after, trace_id, pk, service, p_service, p_op, op, {TARGET} AS target,
       count(*) AS n, count(*) FILTER (WHERE err) AS n_err
FROM {spans} WHERE kind = 'CLIENT' AND p_start_ns IS NOT NULL
GROUP BY after, trace_id, pk, service, p_service, p_op, op, target"""


def find_retry_storms(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    got = rows(
        ctx.con,
        f"""WITH a AS ({_attempts(ctx.s)})
        SELECT target, list(DISTINCT service ORDER BY service) AS callers,
               count(*) FILTER (WHERE NOT after) AS parents_b, count(*) FILTER (WHERE after) AS parents_a,
               count(*) FILTER (WHERE NOT after AND {STORM}) AS storms_b,
               count(*) FILTER (WHERE after AND {STORM}) AS storms_a,
               coalesce(sum(n) FILTER (WHERE after AND {STORM}), 0) AS attempts_a,
               max(n) FILTER (WHERE after) AS max_attempts_a,
               bool_or(target IN (SELECT service FROM {ctx.s})) AS instrumented
        FROM a GROUP BY target HAVING count(*) FILTER (WHERE after AND {STORM}) > 0""",
    )
    best = top_scored(
        got,
        lambda g: rate_score(g["storms_b"], g["parents_b"], g["storms_a"], g["parents_a"]),
        lambda g: (g["target"],),
        MAX_CANDIDATES,
    )
    for s, g in best:
        out.candidates.append(_candidate(ctx, g, s))
    return out


def _candidate(ctx: AnalysisContext, g: dict, score: float) -> Candidate:
    target = g["target"]
    q = f"""WITH a AS ({_attempts("s")})
SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, count(*) AS calling_parents,
       count(*) FILTER (WHERE {STORM}) AS parents_retrying, sum(n) AS attempts,
       sum(n_err) AS failed_attempts
FROM a WHERE target = {lit(target)}
GROUP BY after ORDER BY after"""
    before, after = period_figures(ctx, q)
    tids, sids = exemplars(ctx, f"after AND kind = 'CLIENT' AND err AND {TARGET} = {lit(target)}")
    callers = ", ".join(g["callers"])
    mean = g["attempts_a"] / g["storms_a"]
    summary = (
        f"{callers} retry calls to {target}: {g['storms_a']} of {g['parents_a']} calling spans make "
        f"{mean:.1f} attempts on average with failures (before: {g['storms_b']} of {g['parents_b']})"
    )
    # an uninstrumented target (a peer name) cannot hold a candidate of its own: the caller owns it
    service = target if g["instrumented"] else g["callers"][0]
    ev = Evidence(
        before=before,
        after=after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, q),
        details={"callers": g["callers"], "target": target, "max_attempts": g["max_attempts_a"]},
    )
    return Candidate(service, None, "retry_storm", round(clamp01(score), 4), summary, ev, NAME)
