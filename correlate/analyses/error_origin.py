"""Where errors start: the deepest erroring spans whose own children all succeeded.

An erroring span with an erroring child only passes an error on; the one at the bottom is
where it began. Aggregated by service and operation, before vs after, with the exception
types and messages. A span at the bottom that calls something uninstrumented (a CLIENT span
with no server child: a database, a cache, a third-party API) names a failing dependency;
errors that reach the callers in other services are propagation. Two origins put the error
on the callee instead: a client that gave up while its server span was still working (a
timeout), and a client call to a traced service (its peer attribute names one) that left no
server span at all (refused, unreachable, crashed).
"""

from __future__ import annotations

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    clamp01,
    evidence_sql,
    exemplars,
    fmt_pct,
    lit,
    one_row,
    period_figures,
    rate_score,
    rows,
)
from correlate.types import Candidate, Evidence, Finding

__all__ = ["NAME", "find_error_origins"]

NAME = "error_origin"
MAX_CANDIDATES = 5
MAX_FINDINGS = 5
ORIGIN = "err AND n_err_children = 0"
# a client that gave up while its server was still working (a timeout): the wait was the callee's
GAVE_UP = "kind = 'CLIENT' AND remote_ns IS NOT NULL AND remote_ns * 10 >= dur_ns * 9"
# a client call to a traced service that left no server span (refused, unreachable, crashed):
# the callee, named by the client's peer attribute, is what failed
UNANSWERED = "kind = 'CLIENT' AND remote_ns IS NULL AND peer_service IS DISTINCT FROM service"


def blamed(rel: str) -> str:
    """The service an origin span puts the error on, over the working spans `rel`."""
    return (
        f"(CASE WHEN {ORIGIN} AND {GAVE_UP} THEN remote_service "
        f"WHEN {ORIGIN} AND {UNANSWERED} AND peer_service IN (SELECT DISTINCT service FROM {rel}) "
        f"THEN peer_service ELSE service END)"
    )


def _mode(counts: dict | None) -> str | None:
    """The most frequent value, the smallest among equals: DuckDB's mode() picks any of a tie, and
    which one changed from run to run with its threads (two errors seen once each)."""
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counts else None


def _groups(ctx: AnalysisContext) -> list[dict]:
    out = rows(
        ctx.con,
        f"""
        WITH o AS (
          SELECT s.* REPLACE ({blamed(ctx.s)} AS service),
                 {ORIGIN} AS origin, {ORIGIN} AND {GAVE_UP} AS gave_up,
                 {ORIGIN} AND {UNANSWERED} AND {blamed(ctx.s)} <> s.service AS unanswered
          FROM {ctx.s} s
        ), failing AS (
          SELECT count(*) AS n FROM {ctx.t} WHERE after AND root_err
        )
        SELECT service, op,
               count(*) FILTER (WHERE NOT after) AS calls_b, count(*) FILTER (WHERE after) AS calls_a,
               count(*) FILTER (WHERE NOT after AND origin) AS origin_b,
               count(*) FILTER (WHERE after AND origin) AS origin_a,
               count(*) FILTER (WHERE after AND origin AND p_err AND p_service <> service) AS crossed_a,
               count(*) FILTER (WHERE after AND origin AND kind IN ('CLIENT', 'PRODUCER')
                                AND remote_ns IS NULL) AS leaf_client_a,
               count(*) FILTER (WHERE after AND gave_up) AS gave_up_a,
               count(*) FILTER (WHERE after AND unanswered) AS unanswered_a,
               count(DISTINCT trace_id) FILTER (WHERE after AND origin) AS traces_a,
               histogram(exception_type) FILTER (WHERE after AND origin) AS exception_type,
               histogram(err_msg) FILTER (WHERE after AND origin) AS message,
               histogram(coalesce(peer_service, db_system)) FILTER (WHERE after AND origin) AS peer,
               (SELECT n FROM failing) AS failing_traces_a
        FROM o GROUP BY service, op HAVING count(*) FILTER (WHERE after AND origin) > 0
        """,
    )
    for g in out:
        for key in ("exception_type", "message", "peer"):
            g[key] = _mode(g[key])
    return out


def _root_failures(ctx: AnalysisContext, service: str, op: str) -> int:
    """Failing-root traces of the window that contain an origin of (service, op)."""
    return one_row(
        ctx.con,
        f"""SELECT count(*) FROM {ctx.t} t WHERE t.after AND t.root_err AND t.trace_id IN (
              SELECT trace_id FROM {ctx.s} WHERE after AND {ORIGIN} AND {blamed(ctx.s)} = ? AND op = ?)""",
        [service, op],
    )[0]


def find_error_origins(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    scored = []
    for g in _groups(ctx):
        base = rate_score(g["origin_b"], g["calls_b"], g["origin_a"], g["calls_a"])
        scored.append((base, g))
    scored.sort(key=lambda x: (-x[0], -x[1]["origin_a"], x[1]["service"], x[1]["op"]))
    rest = []
    for base, g in scored[:MAX_CANDIDATES]:
        if base <= 0.0:
            rest.append(g)
            continue
        out.candidates.extend(_candidates(ctx, base, g))
    rest.extend(g for _, g in scored[MAX_CANDIDATES:])
    # the usual errors, most frequent first: context for the reader, not a change
    rest.sort(key=lambda g: (-g["origin_a"], g["service"], g["op"]))
    out.findings.extend(_finding(g) for g in rest[:MAX_FINDINGS])
    return out


def _finding(g: dict) -> Finding:
    return Finding(
        kind=NAME,
        service=g["service"],
        operation=g["op"],
        summary=(
            f"{g['service']} {g['op']}: {g['origin_a']} "
            f"{'error starts' if g['origin_a'] == 1 else 'errors start'} here in the window "
            f"({g['origin_b']} before), not a change"
        ),
    )


def _error_text(exception_type: str | None, message: str | None, limit: int = 120) -> str:
    """'Type: message' for a summary, the type once: SDKs' record_exception already writes the
    status message as 'Type: message'. Cut at `limit` characters with an ellipsis."""
    kind = exception_type or "error"
    if not message:
        text = exception_type or "no error message recorded"
    elif exception_type and message.startswith(exception_type):
        text = message
    else:
        text = f"{kind}: {message}"
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _candidates(ctx: AnalysisContext, base: float, g: dict) -> list[Candidate]:
    service, op = g["service"], g["op"]
    root_fail = _root_failures(ctx, service, op)
    failing = g["failing_traces_a"] or 0
    reach = root_fail / failing if failing else 0.0
    crossed = g["crossed_a"] / g["origin_a"]
    leaf = g["leaf_client_a"] / g["origin_a"]
    score = clamp01(base * (0.55 + 0.45 * max(reach, crossed)))
    q = f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, count(*) AS calls,
       count(*) FILTER (WHERE {ORIGIN}) AS origin_errors
FROM s WHERE {blamed("s")} = {lit(service)} AND op = {lit(op)}
GROUP BY after ORDER BY after"""
    before, after = period_figures(ctx, q)
    for d in (before, after):
        if d.get("calls"):
            d["origin_error_rate"] = round(d["origin_errors"] / d["calls"], 6)
    tids, sids = exemplars(ctx, f"after AND {ORIGIN} AND {blamed(ctx.s)} = {lit(service)} AND op = {lit(op)}")
    what = _error_text(g["exception_type"], g["message"])
    rate_b = before.get("origin_error_rate")
    versus = f"against {fmt_pct(rate_b)} before" if rate_b is not None else "with no baseline to compare"
    summary = (
        f"{service} {op} is where errors start: {g['origin_a']} of {g['calls_a']} calls "
        f"({fmt_pct(after.get('origin_error_rate'))}) fail with no failing child, "
        f"{versus}; "
        f"{root_fail} failing requests carry it ({what})"
    )
    gave_up = g["gave_up_a"] / g["origin_a"]
    unanswered = g["unanswered_a"] / g["origin_a"]
    details = {
        "exception_type": g["exception_type"],
        "message": g["message"],
        "peer": g["peer"],
        "failing_requests_with_origin": root_fail,
        "failing_requests": failing,
        "share_crossing_services": round(crossed, 4),
        "share_uninstrumented_dependency": round(leaf, 4),
        "share_callers_gave_up": round(gave_up, 4),
        "share_unanswered": round(unanswered, 4),
    }
    ev = Evidence(
        before=before, after=after, trace_ids=tids, span_ids=sids, sql=evidence_sql(ctx, q), details=details
    )
    secondary: str | None = None
    short = _error_text(g["exception_type"], g["message"], 100)
    if gave_up >= 0.5:
        primary, secondary = "latency_regression", "timeout_cascade"
        summary = (
            f"callers give up waiting for {service} {op}: {g['gave_up_a']} calls time out while its server span "
            f"is still working ({short}); {root_fail} failing requests carry it"
        )
    elif unanswered >= 0.5:
        primary, secondary = "dependency_failure", "error_propagation"
        summary = (
            f"calls to {service} ({op}) fail without an answer from it: {g['unanswered_a']} client calls left no "
            f"{service} span ({short}); {root_fail} failing requests carry it"
        )
    elif leaf >= 0.5:
        primary, secondary = "dependency_failure", "error_propagation"
    else:
        primary = "error_propagation"  # the service's own code fails
    out = [Candidate(service, op, primary, round(score, 4), summary, ev, NAME)]
    if secondary:  # the same origin read the other way, a little lower
        out.append(Candidate(service, op, secondary, round(score * 0.85, 4), summary, ev, NAME))
    return out
