"""Queue redelivery and backlog: consumers that get the same messages again, and messages
that wait longer in the queue.

Consumer spans are CONSUMER spans (or messaging spans whose operation is process/receive/
deliver). A delivery is a redelivery when its delivery-count attribute (any attribute named like
`…deliver…count…`, e.g. `messaging.servicebus.message.delivery_count`) is above 1, or a boolean
`…redeliver…` attribute is true. Queue wait is the consumer's start minus its producer parent's
end. The candidate is the consuming service: a consumer that does not acknowledge (or keeps
failing) makes the broker redeliver, and the backlog grows behind it.
"""

from __future__ import annotations

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    clamp01,
    confidence,
    evidence_sql,
    exemplars,
    fmt_ms,
    lit,
    median_shift,
    period_figures,
    rate_score,
    ratio_score,
    rows,
)
from correlate.types import Candidate, Evidence

__all__ = ["NAME", "find_queue_backlogs", "CONSUMER", "REDELIVERED"]

NAME = "queue_backlog"
CONSUMER = (
    "(kind = 'CONSUMER' OR (messaging_system IS NOT NULL AND lower(coalesce(messaging_operation, '')) "
    "IN ('process', 'receive', 'deliver')))"
)
DELIVERY_COUNT = (
    'TRY_CAST(regexp_extract(attrs, \'"[^"]*deliver[^"]*count[^"]*"\\s*:\\s*([0-9]+)\', 1) AS BIGINT)'
)
REDELIVERED = (
    f"(coalesce({DELIVERY_COUNT} > 1, false) OR regexp_matches(coalesce(attrs, ''), "
    '\'"[^"]*redeliver[^"]*"\\s*:\\s*true\'))'
)
WAIT = "CASE WHEN p_kind = 'PRODUCER' THEN start_ns - p_end_ns END"
WAIT_FLOOR_NS = 1_000_000


def find_queue_backlogs(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    got = rows(
        ctx.con,
        f"""SELECT service, coalesce(messaging_destination, op) AS queue,
                   count(*) FILTER (WHERE NOT after) AS n_b, count(*) FILTER (WHERE after) AS n_a,
                   count(*) FILTER (WHERE NOT after AND {REDELIVERED}) AS re_b,
                   count(*) FILTER (WHERE after AND {REDELIVERED}) AS re_a,
                   median({WAIT}) FILTER (WHERE NOT after) AS wait_b, median({WAIT}) FILTER (WHERE after) AS wait_a,
                   quantile_cont({WAIT}, 0.75) FILTER (WHERE NOT after)
                     - quantile_cont({WAIT}, 0.25) FILTER (WHERE NOT after) AS iqr_b,
                   quantile_cont({WAIT}, 0.75) FILTER (WHERE after)
                     - quantile_cont({WAIT}, 0.25) FILTER (WHERE after) AS iqr_a,
                   count({WAIT}) FILTER (WHERE NOT after) AS waits_b, count({WAIT}) FILTER (WHERE after) AS waits_a,
                   max({DELIVERY_COUNT}) FILTER (WHERE after) AS max_count_a
            FROM {ctx.s} WHERE {CONSUMER} GROUP BY ALL ORDER BY ALL""",
    )
    for g in got:
        if not g["n_a"]:
            continue
        if ctx.has_baseline and g["re_b"]:
            redelivery = rate_score(g["re_b"], g["n_b"], g["re_a"], g["n_a"])
        else:
            share = g["re_a"] / g["n_a"]
            redelivery = (
                share * confidence(g["re_a"], 3) * (1.0 if ctx.has_baseline else 0.6) if g["re_a"] else 0.0
            )
        waiting = 0.0
        if ctx.has_baseline and g["wait_a"] is not None:
            sure = median_shift(
                g["wait_b"], g["wait_a"], g["iqr_b"], g["iqr_a"], g["waits_b"], g["waits_a"], WAIT_FLOOR_NS
            )
            waiting = ratio_score(g["wait_b"], g["wait_a"], WAIT_FLOOR_NS) * sure * 0.8
        s = clamp01(max(redelivery, waiting) + 0.2 * min(redelivery, waiting))
        if s > 0.05:
            out.candidates.append(_candidate(ctx, g, s))
    return out


def _candidate(ctx: AnalysisContext, g: dict, score: float) -> Candidate:
    svc, queue = g["service"], g["queue"]
    q = f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, count(*) AS deliveries,
       count(*) FILTER (WHERE {REDELIVERED}) AS redeliveries, median({WAIT}) AS median_queue_wait_ns
FROM s WHERE {CONSUMER} AND service = {lit(svc)} AND coalesce(messaging_destination, op) = {lit(queue)}
GROUP BY after ORDER BY after"""
    before, after = period_figures(ctx, q)
    tids, sids = exemplars(
        ctx, f"after AND {CONSUMER} AND {REDELIVERED} AND service = {lit(svc)}", order="start_ns"
    )
    if not tids:
        tids, sids = exemplars(
            ctx, f"after AND {CONSUMER} AND service = {lit(svc)}", order=f"{WAIT} DESC NULLS LAST"
        )
    summary = (
        f"{svc} gets messages of {queue} again and again: {g['re_a']} of {g['n_a']} deliveries are redeliveries "
        f"(before: {g['re_b']} of {g['n_b']}, highest delivery count {g['max_count_a']}); median queue wait "
        f"{fmt_ms(g['wait_b'])} -> {fmt_ms(g['wait_a'])}"
    )
    ev = Evidence(
        before=before,
        after=after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, q),
        details={"queue": queue, "max_delivery_count": g["max_count_a"]},
    )
    return Candidate(svc, None, "queue_backlog", round(score, 4), summary, ev, NAME)
