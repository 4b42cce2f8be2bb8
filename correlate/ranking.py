"""Ranking the analyses' candidates into one list, without blaming the messenger.

The analyses already measure change (after vs before), so a service that was as slow or as
failing in the baseline scores low where it is found. Ranking then applies, in this order:

1. duplicates: one candidate per (service, operation, mechanism), the highest score wins;
2. messengers: a candidate whose service calls (directly or not) a service with a candidate of
   the same family (latency or errors) at least MESSENGER_RATIO as strong is scaled down by
   MESSENGER_FACTOR: the caller shows what the callee does; except for callees its evidence
   says it changed before calling (`changed_before_calling`: cause precedes effect);
   and a network_delay candidate whose grown edges are all calls from callers whose own work
   slowed as strongly is scaled the same way (a starved caller stretches its client spans);
   and so are the candidates (but new errors) of a service whose error lines stopped (a
   `recovered` finding): the end of a failure changes shape and times with no new fault;
3. deploys: a service whose `service.version` changed at the onset (a `deploy` finding that
   coincides) has its candidates raised by DEPLOY_LIFT of the distance to 1, and gains a
   `deploy_regression` candidate just under its best one, when that best one is real
   (>= DEPLOY_MIN_SCORE): a deploy alone is not a cause;
4. corroboration: a service that several analyses point at gains a little (CORROBORATION per
   other analysis, capped), so independent evidence outranks one loud figure.

Sorted by score, then service, operation and mechanism for a stable order. Each candidate then
gets a `confidence` (high / medium / low) from its score and the best other service's score:
a strong change that stands alone is trusted more than the same score with a rival beside it.

Candidates marked `standing` in their evidence (a fault the baseline already holds, such as an
error on every call in both periods) are no change: they take no part in the steps above and
come after every change that scores at least CHANGE_FLOOR, with low confidence; a change
fainter than that is no better evidence than an error on every call, and comes after them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from correlate.types import Candidate, Evidence, Finding

__all__ = [
    "rank",
    "LATENCY_FAMILY",
    "ERROR_FAMILY",
    "MESSENGER_FACTOR",
    "MESSENGER_RATIO",
    "DEPLOY_LIFT",
    "DEPLOY_MIN_SCORE",
    "CORROBORATION",
    "NO_BASELINE_CAP",
    "confidence_level",
]

# code_path_change is in both: a caller skips steps after a slow or failing callee answered
LATENCY_FAMILY = frozenset(
    {
        "latency_regression",
        "cpu_saturation",
        "network_delay",
        "n_plus_one",
        "retry_storm",
        "queue_backlog",
        "timeout_cascade",
        "code_path_change",
    }
)
ERROR_FAMILY = frozenset(
    {"error_propagation", "dependency_failure", "timeout_cascade", "code_path_change", "lock_expiry"}
)
MESSENGER_FACTOR = 0.5
MESSENGER_RATIO = 0.5  # a callee candidate this strong relative to the caller's explains it
DEPLOY_LIFT = 0.35
DEPLOY_MIN_SCORE = 0.2
CORROBORATION = 0.05
CORROBORATION_MAX = 0.15
NO_BASELINE_CAP = 0.5  # with nothing to compare against, no candidate claims more than this
HIGH_SCORE = 0.6
MEDIUM_SCORE = 0.3
RIVAL_RATIO = 0.7  # another service this close makes a clear candidate only low
# a change scored under this is within what a healthy system shows (bench/rca.py's healthy
# control peaks at 0.06): a fault the baseline already holds (`standing`) comes before it
CHANGE_FLOOR = 0.1


def rank(
    candidates: Iterable[Candidate], findings: Sequence[Finding], *, has_baseline: bool = True
) -> tuple[list[Candidate], list[Finding]]:
    """The candidates in rank order, and the findings (unchanged, in analysis order)."""
    cands = _dedupe(candidates)
    # a fault the baseline already holds is no change: it neither explains nor corroborates one
    standing = [c for c in cands if c.evidence.details.get("standing")]
    cands = [c for c in cands if not c.evidence.details.get("standing")]
    cands = _discount_messengers(cands, _call_graph(findings))
    cands = _discount_gaps_of_busy_callers(cands)
    cands = _discount_recovered(cands, {f.service for f in findings if f.evidence.details.get("recovered")})
    cands = _lift_deploys(
        cands, [f for f in findings if f.kind == "deploy" and f.evidence.details.get("coincides")]
    )
    cands = _corroborate(cands)
    if not has_baseline:
        cands = [replace(c, score=round(min(c.score, NO_BASELINE_CAP), 4)) for c in cands]
    cands.sort(key=lambda c: (-c.score, c.service, c.operation or "", c.mechanism))
    standing.sort(key=lambda c: (-c.score, c.service, c.operation or "", c.mechanism))
    changes = _with_confidence(cands)
    real = [c for c in changes if c.score >= CHANGE_FLOOR]
    faint = changes[len(real) :]
    held = [
        replace(
            c,
            confidence="low",
            summary=c.summary + f" (no change: ranked after every change scoring {CHANGE_FLOOR:g} or more)",
        )
        for c in standing
    ]
    return real + held + faint, list(findings)


def confidence_level(score: float, rival_score: float) -> str:
    """How far to trust a candidate as the cause: high when its change is strong (HIGH_SCORE);
    medium when it is clear (MEDIUM_SCORE) and no other service comes within RIVAL_RATIO of it;
    else low. The thresholds were set on real recorded faults (nezha-dev); how often the first
    candidate is right at each level is measured by bench/realfaults.py (docs/diagnosis.md)."""
    if score >= HIGH_SCORE and rival_score < score:
        return "high"
    if score >= MEDIUM_SCORE and rival_score < RIVAL_RATIO * score:
        return "medium"
    return "low"


def _with_confidence(cands: list[Candidate]) -> list[Candidate]:
    best: dict[str, float] = {}
    for c in cands:
        best[c.service] = max(best.get(c.service, 0.0), c.score)
    out = []
    for c in cands:
        rival = max((s for svc, s in best.items() if svc != c.service), default=0.0)
        out.append(replace(c, confidence=confidence_level(c.score, rival)))
    return out


def _dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    best: dict[tuple[str, str | None, str], Candidate] = {}
    for c in candidates:
        key = (c.service, c.operation, c.mechanism)
        if key not in best or c.score > best[key].score:
            best[key] = c
    return list(best.values())


def _call_graph(findings: Sequence[Finding]) -> dict[str, set[str]]:
    """caller -> every service it reaches, from the `service_graph` finding's `edges`."""
    direct: dict[str, set[str]] = {}
    for f in findings:
        if f.kind == "service_graph":
            for caller, callee in f.evidence.details.get("edges", ()):
                if caller != callee:
                    direct.setdefault(caller, set()).add(callee)
    reach: dict[str, set[str]] = {}
    for start in direct:
        seen: set[str] = set()
        todo = list(direct[start])
        while todo:
            s = todo.pop()
            if s in seen or s == start:
                continue
            seen.add(s)
            todo.extend(direct.get(s, ()))
        reach[start] = seen
    return reach


def _family(mechanism: str) -> set[str]:
    fams = set()
    if mechanism in LATENCY_FAMILY:
        fams.add("latency")
    if mechanism in ERROR_FAMILY:
        fams.add("errors")
    return fams


def _discount_messengers(cands: list[Candidate], reach: dict[str, set[str]]) -> list[Candidate]:
    out = []
    for c in cands:
        # a change that starts before the calls into a callee is no reaction to its answers
        callees = reach.get(c.service, set()) - set(c.evidence.details.get("changed_before_calling") or ())
        fam = _family(c.mechanism)
        stronger = any(
            d.service in callees and d.score >= MESSENGER_RATIO * c.score and fam & _family(d.mechanism)
            for d in cands
        )
        out.append(replace(c, score=round(c.score * MESSENGER_FACTOR, 4)) if stronger else c)
    return out


def _discount_gaps_of_busy_callers(cands: list[Candidate]) -> list[Candidate]:
    """A network_delay candidate whose grown edges all come from callers whose own work slowed
    at least as strongly: a caller starved of CPU stretches its client spans (the gap is timed
    on its clock), so the wire is not what changed. Scaled by MESSENGER_FACTOR."""
    own_work: dict[str, float] = {}
    for c in cands:
        if c.mechanism in ("cpu_saturation", "latency_regression") and c.analysis == "latency_attribution":
            own_work[c.service] = max(own_work.get(c.service, 0.0), c.score)
    out = []
    for c in cands:
        if c.mechanism == "network_delay":
            callers = c.evidence.details.get("callers_into") or []
            if (
                callers
                and not c.evidence.details.get("callees_out_of")
                and all(own_work.get(a, 0.0) >= MESSENGER_RATIO * c.score for a in callers)
            ):
                c = replace(c, score=round(c.score * MESSENGER_FACTOR, 4))
        out.append(c)
    return out


def _discount_recovered(cands: list[Candidate], recovered: set[str | None]) -> list[Candidate]:
    """A service whose error lines stopped in the window (a `recovered` finding) ended a failure
    the baseline held: it now does its whole work, so its calls change shape and take longer
    with no new fault. Its candidates other than new errors are scaled by MESSENGER_FACTOR."""
    out = []
    for c in cands:
        if c.service in recovered and c.mechanism not in ("error_propagation", "dependency_failure"):
            c = replace(
                c,
                score=round(c.score * MESSENGER_FACTOR, 4),
                summary=c.summary
                + " (its error lines stopped in the window: it recovered from a failure; scored by half)",
            )
        out.append(c)
    return out


def _lift_deploys(cands: list[Candidate], deploys: Sequence[Finding]) -> list[Candidate]:
    deployed = {f.service: f for f in deploys if f.service}
    if not deployed:
        return cands
    real = {c.service for c in cands if c.score >= DEPLOY_MIN_SCORE}  # judged before the lift
    out = []
    for c in cands:
        if c.service in deployed and c.mechanism != "deploy_regression":
            c = replace(c, score=round(c.score + (1.0 - c.score) * DEPLOY_LIFT, 4))
        out.append(c)
    for svc, f in sorted(deployed.items()):
        own = [c for c in out if c.service == svc and c.mechanism != "deploy_regression"]
        if not own:
            continue
        top = max(own, key=lambda c: c.score)
        if svc not in real:
            continue
        d = f.evidence.details
        summary = (
            f"{svc} changed version {d.get('old_versions') or '(none)'} -> {d.get('new_version')} at the onset, "
            f"and then: {top.summary}"
        )
        ev = Evidence(
            before=f.evidence.before,
            after=f.evidence.after,
            trace_ids=top.evidence.trace_ids or f.evidence.trace_ids,
            span_ids=top.evidence.span_ids or f.evidence.span_ids,
            sql=f.evidence.sql,
            details={**d, "regression": top.mechanism},
        )
        out.append(
            Candidate(
                svc, top.operation, "deploy_regression", round(top.score * 0.97, 4), summary, ev, "deploys"
            )
        )
    return out


def _corroborate(cands: list[Candidate]) -> list[Candidate]:
    analyses: dict[str, set[str]] = {}
    for c in cands:
        # a deploy_regression candidate restates another candidate: it corroborates nothing
        if c.score >= DEPLOY_MIN_SCORE and c.mechanism != "deploy_regression":
            analyses.setdefault(c.service, set()).add(c.analysis)
    out = []
    for c in cands:
        others = (
            0 if c.mechanism == "deploy_regression" else len(analyses.get(c.service, set()) - {c.analysis})
        )
        bonus = min(CORROBORATION * others, CORROBORATION_MAX)
        out.append(replace(c, score=round(min(1.0, c.score + (1.0 - c.score) * bonus), 4)) if bonus else c)
    return out
