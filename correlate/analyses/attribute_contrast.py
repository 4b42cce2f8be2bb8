"""Which attribute values the slow or failing requests of the window have in common (BubbleUp).

A request (trace) of the window is bad when its root failed or it took longer than the
baseline's p95 for its root operation (the window's p90 without a baseline). For each value of
a few dimensions (service.version, host, HTTP route, database statement, peer), the share of
bad requests that touch it is compared with the share of the other requests OF THE SAME ROOT
OPERATION (so a value is not "over-represented" merely because one kind of request went bad),
weighted by the bad requests of each root operation; values at least MIN_LIFT more common
among the bad ones are findings, the strongest first; a version or host value names the
service it belongs to (`Finding.service`).
"""

from __future__ import annotations

from correlate.analyses.common import AnalysisContext, AnalysisResult, fmt_pct, one_row, rows
from correlate.analyses.n_plus_one import STATEMENT_SHAPE
from correlate.types import Evidence, Finding

__all__ = ["NAME", "find_attribute_contrasts", "MIN_LIFT", "DIMENSIONS"]

NAME = "attribute_contrast"
MIN_LIFT = 0.3
MIN_BAD = 5
MAX_FINDINGS = 5
# dimension -> (value expression over the working spans, whether a value names one service)
DIMENSIONS = {
    "service.version": ("service || ' ' || version", True),
    "host": ("service || ' on ' || host", True),
    "http.route": ("service || ' ' || http_route", False),
    "db.statement": (f"service || ': ' || {STATEMENT_SHAPE}", False),
    "peer.service": ("service || ' -> ' || peer_service", False),
}
_COLUMN = {
    "service.version": "version",
    "host": "host",
    "http.route": "http_route",
    "db.statement": "db_statement",
    "peer.service": "peer_service",
}


def _bad(ctx: AnalysisContext) -> str:
    if ctx.has_baseline:
        threshold = f"""(SELECT root_service, root_op, quantile_cont(dur_ns, 0.95) AS limit_ns
                         FROM {ctx.t} WHERE NOT after GROUP BY ALL)"""
    else:
        threshold = f"""(SELECT root_service, root_op, quantile_cont(dur_ns, 0.90) AS limit_ns
                         FROM {ctx.t} WHERE after GROUP BY ALL)"""
    return f"""SELECT t.trace_id, coalesce(t.root_err, false) OR t.dur_ns > coalesce(l.limit_ns, 9e18) AS is_bad
FROM {ctx.t} t LEFT JOIN {threshold} l USING (root_service, root_op) WHERE t.after"""


def find_attribute_contrasts(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    dims = " UNION ALL ".join(
        f"SELECT DISTINCT trace_id, '{d}' AS dim, {expr} AS val, service FROM {ctx.s} "
        f"WHERE after AND {_COLUMN[d]} IS NOT NULL"
        for d, (expr, _) in DIMENSIONS.items()
    )
    got = rows(
        ctx.con,
        f"""WITH bad AS ({_bad(ctx)}),
            strata AS (SELECT t.root_service, t.root_op, count(*) FILTER (WHERE is_bad) AS n_bad,
                              count(*) FILTER (WHERE NOT is_bad) AS n_good
                       FROM bad JOIN {ctx.t} t USING (trace_id) GROUP BY ALL
                       HAVING count(*) FILTER (WHERE is_bad) >= 3 AND count(*) FILTER (WHERE NOT is_bad) >= 5),
            d AS ({dims}),
            per AS (SELECT dim, val, any_value(d.service) AS service, t.root_service, t.root_op,
                           count(*) FILTER (WHERE is_bad) AS bad_with, count(*) FILTER (WHERE NOT is_bad) AS good_with,
                           arg_max(trace_id, is_bad::INT) AS example
                    FROM d JOIN bad USING (trace_id) JOIN {ctx.t} t USING (trace_id) GROUP BY ALL)
        SELECT dim, val, any_value(service) AS service, sum(bad_with) AS bad_with, sum(good_with) AS good_with,
               sum(st.n_bad) AS n_bad, sum(st.n_good) AS n_good,
               sum(st.n_bad * (bad_with / st.n_bad - good_with / st.n_good)) / sum(st.n_bad) AS lift,
               arg_max(example, bad_with) AS example
        FROM per JOIN strata st USING (root_service, root_op) GROUP BY dim, val""",
    )
    total_bad = one_row(ctx.con, f"SELECT count(*) FILTER (WHERE is_bad) FROM ({_bad(ctx)})")[0]
    scored = []
    for g in got:
        if not g["n_bad"] or g["bad_with"] < MIN_BAD:
            continue
        # strata where the value never appears do not count against it; scale by the bad requests covered
        lift = g["lift"] * g["n_bad"] / max(total_bad, 1)
        if lift >= MIN_LIFT:
            scored.append((lift, g["bad_with"] / g["n_bad"], g["good_with"] / max(g["n_good"], 1), g))
    scored.sort(key=lambda x: (-x[0], x[3]["dim"], x[3]["val"]))
    for lift, share_bad, share_good, g in scored[:MAX_FINDINGS]:
        names_service = DIMENSIONS[g["dim"]][1]
        out.findings.append(
            Finding(
                kind=NAME,
                service=g["service"] if names_service else None,
                summary=(
                    f"{g['dim']} {g['val'][:120]} is in {fmt_pct(share_bad)} of the {g['n_bad']} slow or failing "
                    f"requests against {fmt_pct(share_good)} of the other {g['n_good']}"
                ),
                evidence=Evidence(
                    after={
                        "bad_with": g["bad_with"],
                        "bad": g["n_bad"],
                        "good_with": g["good_with"],
                        "good": g["n_good"],
                    },
                    trace_ids=(g["example"],),
                    details={
                        "dimension": g["dim"],
                        "value": g["val"],
                        "lift": round(lift, 4),
                        "supports": g["service"] if names_service else None,
                    },
                ),
            )
        )
    return out
