"""N+1 queries: many sibling CLIENT spans with the same normalised statement under one parent.

Statements are normalised by replacing quoted strings and numbers with `?`, so
`SELECT … WHERE id = 7` and `… id = 8` are one shape; spans without a statement use their
name, its numbers replaced too (`GET /items/7`). A parent with at least MIN_REPEAT such siblings, few of them failing (repeats that fail
are retries, see `retry_storms`), is one N+1 occurrence. Compared as a share of the parent
operation's calls, before vs after, and weighed by the time those queries add to a request.
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
    period_figures,
    rate_score,
    rows,
    top_scored,
    trace_totals,
)
from correlate.types import Candidate, Evidence

__all__ = ["NAME", "find_n_plus_one", "STATEMENT_SHAPE", "MIN_REPEAT"]

NAME = "n_plus_one"
MIN_REPEAT = 5
MAX_CANDIDATES = 3
_NUMBERS = "'\\b[0-9]+(\\.[0-9]+)?\\b'"
# the statement with quoted strings and numbers as `?`; without one, the span name with its
# numbers as `?` (clients that name spans by URL: GET /items/7 and GET /items/8 are one shape)
STATEMENT_SHAPE = (
    f"coalesce(regexp_replace(regexp_replace(db_statement, '''[^'']*''', '?', 'g'), {_NUMBERS}, '?', 'g'), "
    f"regexp_replace(op, {_NUMBERS}, '?', 'g'))"
)


def _siblings(spans: str) -> str:
    return f"""SELECT after, trace_id, pk, service, p_service, p_op, {STATEMENT_SHAPE} AS shape,
       count(*) AS n, count(*) FILTER (WHERE err) AS n_err, sum(dur_ns) AS tot_ns
FROM {spans} WHERE kind = 'CLIENT' AND p_start_ns IS NOT NULL
GROUP BY after, trace_id, pk, service, p_service, p_op, shape"""


def find_n_plus_one(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    totals = trace_totals(ctx)
    got = rows(
        ctx.con,
        f"""WITH sib AS ({_siblings(ctx.s)}),
        parents AS (SELECT service AS p_service, op AS p_op, count(*) FILTER (WHERE NOT after) AS calls_b,
                           count(*) FILTER (WHERE after) AS calls_a FROM {ctx.s} GROUP BY service, op)
        SELECT service, sib.p_service, sib.p_op, shape, any_value(parents.calls_b) AS calls_b,
               any_value(parents.calls_a) AS calls_a,
               count(*) FILTER (WHERE NOT after AND {_is_np1()}) AS np1_b,
               count(*) FILTER (WHERE after AND {_is_np1()}) AS np1_a,
               coalesce(sum(tot_ns) FILTER (WHERE NOT after AND {_is_np1()}), 0) AS tot_b,
               coalesce(sum(tot_ns) FILTER (WHERE after AND {_is_np1()}), 0) AS tot_a,
               avg(n) FILTER (WHERE after AND {_is_np1()}) AS mean_n_a
        FROM sib JOIN parents USING (p_service, p_op)
        GROUP BY service, sib.p_service, sib.p_op, shape
        HAVING count(*) FILTER (WHERE after AND {_is_np1()}) > 0""",
    )
    if not got or not totals.n_after:
        return out
    ref_ns = max(totals.mean_dur_before_ns or totals.mean_dur_after_ns or 0.0, 1e6)

    def score(g: dict) -> float:
        base = rate_score(g["np1_b"], g["calls_b"], g["np1_a"], g["calls_a"])
        delta = g["tot_a"] / totals.n_after - (g["tot_b"] / totals.n_before if totals.n_before else 0.0)
        return base * (0.4 + 0.6 * clamp01(delta / (0.25 * ref_ns)))

    best = top_scored(got, score, lambda g: (g["service"], g["p_op"], g["shape"]), MAX_CANDIDATES)
    for s, g in best:
        out.candidates.append(_candidate(ctx, g, s, _new_caller(ctx, g)))
    return out


def _new_caller(ctx: AnalysisContext, g: dict) -> str | None:
    """When the loop's operation never ran in the baseline, the service that now calls it."""
    if g["calls_b"] > 0:
        return None
    caller = (
        ctx.con.execute(
            f"""SELECT p_service FROM {ctx.s} WHERE after AND service = ? AND op = ? AND p_service <> service
            GROUP BY p_service ORDER BY count(*) DESC, p_service LIMIT 1""",
            [g["p_service"], g["p_op"]],
        ).fetchone()
        if ctx.has_baseline
        else None
    )
    return caller[0] if caller else None


def _is_np1() -> str:
    return f"n >= {MIN_REPEAT} AND n_err * 4 < n"


def _candidate(ctx: AnalysisContext, g: dict, score: float, new_caller: str | None) -> Candidate:
    q = f"""WITH sib AS ({_siblings("s")})
SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period,
       count(*) FILTER (WHERE {_is_np1()}) AS parents_with_n_plus_one,
       round(avg(n) FILTER (WHERE {_is_np1()}), 2) AS mean_queries_per_parent,
       sum(tot_ns) FILTER (WHERE {_is_np1()}) AS total_query_ns
FROM sib WHERE service = {lit(g["service"])} AND p_service = {lit(g["p_service"])} AND p_op = {lit(g["p_op"])}
  AND shape = {lit(g["shape"])}
GROUP BY after ORDER BY after"""
    before, after = period_figures(ctx, q)
    tids, sids = exemplars(
        ctx,
        f"after AND kind = 'CLIENT' AND service = {lit(g['service'])} AND p_op = {lit(g['p_op'])} "
        f"AND {STATEMENT_SHAPE} = {lit(g['shape'])}",
        order="trace_id, start_ns",
    )
    mean_n = g["mean_n_a"] or 0
    summary = (
        f"{g['service']} issues `{g['shape'][:80]}` {mean_n:.0f} times per {g['p_op']} in {g['np1_a']} of "
        f"{g['calls_a']} calls (before: {g['np1_b']} of {g['calls_b']}), "
        f"{fmt_ms(g['tot_a'] / max(g['np1_a'], 1))} of queries each"
    )
    ev = Evidence(
        before=before,
        after=after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, q),
        details={"statement": g["shape"], "parent_operation": g["p_op"], "parent_service": g["p_service"]},
    )
    if new_caller:
        # the loop is old code that only runs because someone new calls it: that caller changed
        summary += f"; {g['p_op']} never ran before the window and is now called by {new_caller}"
        ev.details["new_caller"] = new_caller
        return Candidate(new_caller, None, "n_plus_one", round(clamp01(score), 4), summary, ev, NAME)
    return Candidate(g["service"], g["p_op"], "n_plus_one", round(clamp01(score), 4), summary, ev, NAME)
