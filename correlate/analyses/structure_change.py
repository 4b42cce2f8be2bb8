"""Changed span structure of an operation: children that went missing, or new ones.

For every operation, the share of its calls that have at least one child of each kind
(child service and operation), before vs after. A child that most calls had and now many lack
means code that returns early or throws before it; a child that no call had and now many have
means a new code path (often a deploy). When the operations of a caller and of a service it
calls both change, the deepest one is where the change is: the caller only reacts to what it
got back (scaled by UPSTREAM_FACTOR), unless the caller's change comes first in time (the
skipped or new step starts before the call towards the changed callee: no reaction to an
answer not yet given). Then it is the callee whose change may be a reaction, to being asked
differently: it is scaled by UPSTREAM_FACTOR, and the caller's candidate names the callees it
changed before calling (`changed_before_calling`, which ranking's messenger rule respects).
Children missing after another child failed are error
handling, not a new code path (scaled by AFTER_FAILURE_FACTOR times that share).

A client span (declared, or inferred: its children all run elsewhere) is not a parent here: its
one child is the server it reached, and which server that is depends on the request, not on
code. A child that most calls had counts as missing only when at most KEPT of that share is
left: a workload whose mix shifted moves shares a little, code that stops early moves them far.
Statuses are not needed: a call that stops happening is seen in the tree alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
from correlate.types import Candidate, Evidence

__all__ = ["NAME", "find_structure_changes"]

NAME = "structure_change"
MIN_CALLS = 5
HAD = 0.7  # "most calls had it" in the baseline
NEW = 0.05  # "no call had it" in the baseline
KEPT = 0.6  # "many now lack it": at most this share of the baseline's share is left (else a mix shift)
UPSTREAM_FACTOR = 0.5
LEADER_RATIO = 0.5  # a caller's earlier change this strong relative to a callee's explains it
AFTER_FAILURE_FACTOR = 0.5
MAX_CANDIDATES = 4


def find_structure_changes(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    if not ctx.has_baseline:
        return out
    got = rows(
        ctx.con,
        f"""WITH par AS (
              SELECT service, op, count(*) FILTER (WHERE NOT after) AS n_b, count(*) FILTER (WHERE after) AS n_a
              FROM {ctx.s} WHERE kind NOT IN ('CLIENT', 'PRODUCER') GROUP BY service, op
              HAVING count(*) FILTER (WHERE NOT after) >= {MIN_CALLS} AND count(*) FILTER (WHERE after) >= {MIN_CALLS}
            ), ch AS (
              SELECT p_service AS service, p_op AS op, service AS c_service, op AS c_op,
                     count(DISTINCT pk) FILTER (WHERE NOT after) AS with_b,
                     count(DISTINCT pk) FILTER (WHERE after) AS with_a
              FROM {ctx.s} WHERE p_start_ns IS NOT NULL GROUP BY ALL
            )
            SELECT * FROM ch JOIN par USING (service, op) ORDER BY service, op, c_service, c_op""",
    )
    changes: dict[tuple[str, str], list[dict]] = {}
    for g in got:
        had_b, had_a = g["with_b"] / g["n_b"], g["with_a"] / g["n_a"]
        g["had_b"], g["had_a"] = had_b, had_a
        if had_b >= HAD and had_a <= KEPT * had_b:
            g["change"] = "missing"
            g["score"] = rate_score(g["n_b"] - g["with_b"], g["n_b"], g["n_a"] - g["with_a"], g["n_a"])
        elif had_b <= NEW and had_a > had_b:
            g["change"] = "new"
            g["score"] = rate_score(g["with_b"], g["n_b"], g["with_a"], g["n_a"])
        else:
            continue
        if g["score"] > 0.05:
            changes.setdefault((g["service"], g["op"]), []).append(g)
    ranked = sorted(
        ((max(c["score"] for c in cs), k, cs) for k, cs in changes.items()),
        key=lambda x: (-x[0], x[1]),
    )
    changed_services = {k[0] for _, k, _ in ranked}
    reach = _callees(ctx)
    kept: list[_Change] = []
    for s, (svc, op), cs in ranked[:MAX_CANDIDATES]:
        deeper = (reach.get(svc, set()) & changed_services) - {svc}
        top = max(cs, key=lambda c: c["score"])
        led: set[str] = set()
        if deeper and _precedes(ctx, svc, op, top, deeper, reach) >= 0.5:
            # the change comes before any call into them: it cannot be their answer's effect
            led, deeper = deeper, set()
        if deeper:
            s *= UPSTREAM_FACTOR
        after_failure = _after_failure(ctx, svc, op, top)
        s *= 1.0 - AFTER_FAILURE_FACTOR * after_failure
        kept.append(_Change(clamp01(s), svc, op, cs, sorted(deeper), sorted(led), after_failure))
    for k in _followers(kept):
        out.candidates.append(_candidate(ctx, k))
    return out


@dataclass
class _Change:
    score: float
    service: str
    op: str
    changes: list[dict]
    deeper: list[str]  # deeper services that changed too, whose answers the change may react to
    led: list[str]  # deeper changed services called only after this change (it came first)
    after_failure: float
    callers_first: list[str] = field(default_factory=list)  # callers whose change came first


def _followers(kept: list[_Change]) -> list[_Change]:
    """A change of a service that its caller's change precedes is scaled by UPSTREAM_FACTOR: the
    caller changed before it called (cause precedes effect), so what the service was asked may
    have changed, and one cause upstream explains both. Only a caller's change at least
    LEADER_RATIO as strong counts: a faint change first does not explain a loud one after."""
    out = []
    for k in kept:
        firsts = sorted({c.service for c in kept if k.service in c.led and c.score >= LEADER_RATIO * k.score})
        if firsts:
            k = replace(k, score=k.score * UPSTREAM_FACTOR, callers_first=firsts)
        out.append(k)
    return out


def _precedes(
    ctx: AnalysisContext, svc: str, op: str, change: dict, deeper: set[str], reach: dict[str, set[str]]
) -> float:
    """Of the calls of (svc, op) that make both the changed child call and a call towards a
    deeper changed service, the share where the changed child starts first: in the baseline for
    a child that went missing, in the window for a new one. A step skipped before the callee was
    even asked is no reaction to what the callee answered (cause precedes effect)."""
    targets = sorted(t for t, r in reach.items() if t in deeper or r & deeper) + sorted(deeper)
    got = one_row(
        ctx.con,
        f"""WITH p AS (SELECT tk, sk FROM {ctx.s} WHERE service = ? AND op = ? AND after = ?),
            c AS (SELECT c.tk, c.pk, c.service, c.op, c.start_ns, coalesce(c.remote_service, c.service) AS target
                  FROM {ctx.s} c JOIN p ON c.tk = p.tk AND c.pk = p.sk),
            per AS (SELECT tk, pk, min(start_ns) FILTER (WHERE service = ? AND op = ?) AS changed_ns,
                           min(start_ns) FILTER (WHERE target IN (SELECT unnest(?::VARCHAR[]))
                                                 AND NOT (service = ? AND op = ?)) AS deeper_ns
                    FROM c GROUP BY tk, pk)
            SELECT avg((changed_ns < deeper_ns)::INT) FROM per
            WHERE changed_ns IS NOT NULL AND deeper_ns IS NOT NULL""",
        [
            svc,
            op,
            change["change"] == "new",
            change["c_service"],
            change["c_op"],
            targets,
            change["c_service"],
            change["c_op"],
        ],
    )[0]
    return float(got or 0.0)


def _after_failure(ctx: AnalysisContext, svc: str, op: str, change: dict) -> float:
    """Of the window's calls that lack a missing child, the share where another child failed: the
    code stopped because a call failed (error handling), which error_origin explains better."""
    if change["change"] != "missing":
        return 0.0
    got = one_row(
        ctx.con,
        f"""SELECT avg((n_err_children > 0)::INT) FROM {ctx.s} p
            WHERE after AND service = ? AND op = ?
              AND sk NOT IN (SELECT pk FROM {ctx.s} WHERE service = ? AND op = ? AND pk IS NOT NULL)""",
        [svc, op, change["c_service"], change["c_op"]],
    )[0]
    return float(got or 0.0)


def _callees(ctx: AnalysisContext) -> dict[str, set[str]]:
    """service -> services it reaches through calls in the window."""
    direct: dict[str, set[str]] = {}
    for caller, callee in ctx.con.execute(
        f"SELECT DISTINCT p_service, service FROM {ctx.s} WHERE p_service IS NOT NULL AND p_service <> service"
    ).fetchall():
        direct.setdefault(caller, set()).add(callee)
    reach: dict[str, set[str]] = {}
    for start in direct:
        seen: set[str] = set()
        todo = list(direct[start])
        while todo:
            x = todo.pop()
            if x not in seen:
                seen.add(x)
                todo.extend(direct.get(x, ()))
        reach[start] = seen
    return reach


def _candidate(ctx: AnalysisContext, k: _Change) -> Candidate:
    svc, op, cs = k.service, k.op, k.changes
    top = max(cs, key=lambda c: c["score"])
    q = f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, count(*) AS calls,
       count(*) FILTER (WHERE sk IN (SELECT pk FROM s c WHERE c.service = {lit(top["c_service"])}
                                           AND c.op = {lit(top["c_op"])})) AS calls_with_child
FROM s WHERE service = {lit(svc)} AND op = {lit(op)}
GROUP BY after ORDER BY after"""
    before, after = period_figures(ctx, q)
    order = "n_children ASC" if top["change"] == "missing" else "n_children DESC"
    tids, sids = exemplars(ctx, f"after AND service = {lit(svc)} AND op = {lit(op)}", order=order)
    parts = [
        f"{c['c_service']} {c['c_op']} {fmt_pct(c['had_b'])} -> {fmt_pct(c['had_a'])}"
        for c in sorted(cs, key=lambda c: -c["score"])[:3]
    ]
    summary = f"{svc} {op} changed shape: calls with a child " + "; ".join(parts)
    if k.deeper:
        summary += f" (a service it calls changed too: {', '.join(k.deeper)})"
    if k.callers_first:
        summary += (
            f" (a caller changed first, before calling it: {', '.join(k.callers_first)}; scored by half)"
        )
    ev = Evidence(
        before=before,
        after=after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, q),
        details={
            "changes": [
                {
                    "child_service": c["c_service"],
                    "child_operation": c["c_op"],
                    "change": c["change"],
                    "share_before": round(c["had_b"], 4),
                    "share_after": round(c["had_a"], 4),
                }
                for c in cs
            ],
            "deeper_changed_services": k.deeper,
            # deeper changed services this change precedes: it is no reaction to their answers
            "changed_before_calling": k.led,
            "callers_changed_first": k.callers_first,
            "share_after_a_failed_child": round(k.after_failure, 4),
        },
    )
    return Candidate(svc, op, "code_path_change", round(k.score, 4), summary, ev, NAME)
