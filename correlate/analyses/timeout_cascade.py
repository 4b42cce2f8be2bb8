"""Timeouts cascading up: a timeout at the bottom of a trace that times out its callers too.

A span times out when it fails with a timeout/deadline message or exception, or HTTP 408/504.
The deepest one (no child timed out) is where the cascade starts; when it is a CLIENT call, the
service it waited for (its server child's service, else the peer) is the slow one. A cascade is
a trace in which timeouts reach at least two services. Compared before vs after.
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

__all__ = ["NAME", "find_timeout_cascades", "TIMED_OUT"]

NAME = "timeout_cascade"
MAX_CANDIDATES = 2
TIMED_OUT = (
    "(err AND (regexp_matches(lower(coalesce(err_msg, '') || ' ' || coalesce(exception_type, '')), "
    "'time[d]?[ _-]?out|deadline') OR coalesce(http_status_code IN (408, 504), false)))"
)
WAITED_FOR = "coalesce(remote_service, peer_service, service)"


def _marked(spans: str) -> str:
    return f"""WITH m AS (SELECT *, {TIMED_OUT} AS timed_out FROM {spans}),
ch AS (SELECT tk, pk AS sk, bool_or(timed_out) AS child_timed_out
       FROM m WHERE pk IS NOT NULL GROUP BY ALL),
tr AS (SELECT trace_id, count(DISTINCT service) FILTER (WHERE timed_out) AS services_timed_out
       FROM m GROUP BY trace_id),
d AS (SELECT m.*, {WAITED_FOR} AS waited_for, tr.services_timed_out,
             m.timed_out AND NOT coalesce(ch.child_timed_out, false) AS deepest
      FROM m LEFT JOIN ch USING (tk, sk) JOIN tr USING (trace_id))"""


def find_timeout_cascades(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    got = rows(
        ctx.con,
        f"""{_marked(ctx.s)},
        roots AS (SELECT count(*) FILTER (WHERE NOT after) AS req_b, count(*) FILTER (WHERE after) AS req_a
                  FROM {ctx.t})
        SELECT waited_for, any_value(req_b) AS req_b, any_value(req_a) AS req_a,
               count(DISTINCT trace_id) FILTER (WHERE NOT after AND deepest AND services_timed_out >= 2) AS casc_b,
               count(DISTINCT trace_id) FILTER (WHERE after AND deepest AND services_timed_out >= 2) AS casc_a,
               max(services_timed_out) FILTER (WHERE after AND deepest) AS max_services,
               list(DISTINCT service ORDER BY service) FILTER (WHERE after AND deepest) AS callers
        FROM d, roots WHERE deepest GROUP BY waited_for
        HAVING count(*) FILTER (WHERE after AND services_timed_out >= 2) > 0""",
    )
    best = top_scored(
        got,
        lambda g: rate_score(g["casc_b"], g["req_b"], g["casc_a"], g["req_a"]),
        lambda g: (g["waited_for"],),
        MAX_CANDIDATES,
    )
    for s, g in best:
        out.candidates.append(_candidate(ctx, g, s))
    return out


def _candidate(ctx: AnalysisContext, g: dict, score: float) -> Candidate:
    svc = g["waited_for"]
    q = f"""{_marked("s")}
SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period,
       count(DISTINCT trace_id) FILTER (WHERE deepest AND services_timed_out >= 2) AS cascading_traces,
       count(*) FILTER (WHERE timed_out) AS timed_out_spans,
       max(services_timed_out) AS max_services_timed_out
FROM d WHERE trace_id IN (SELECT trace_id FROM d WHERE deepest AND waited_for = {lit(svc)})
GROUP BY after ORDER BY after"""
    before, after = period_figures(ctx, q)
    tids, sids = exemplars(ctx, f"after AND {TIMED_OUT} AND {WAITED_FOR} = {lit(svc)}", order="start_ns")
    summary = (
        f"timeouts waiting for {svc} cascade up through {g['max_services']} services in {g['casc_a']} of "
        f"{g['req_a']} requests (before: {g['casc_b']} of {g['req_b']}); first to give up: "
        f"{', '.join(g['callers'] or [])}"
    )
    ev = Evidence(
        before=before,
        after=after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, q),
        details={"first_callers": g["callers"]},
    )
    return Candidate(svc, None, "timeout_cascade", round(clamp01(score), 4), summary, ev, NAME)
