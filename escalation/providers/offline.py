"""The offline provider: a deterministic report from the bundle's facts, no model involved.

It is the default without an API key. It fills the same response schema a model fills, by rules:

- root causes as `correlate` ranked its candidates (the top one first), each with the evidence
  the bundle holds about it (exemplar traces, log templates, service-graph edges, code) and
  correlate's confidence (high 0.8, medium 0.5, low 0.2), not its score, as the confidence;
- a verdict on each of the agent's hypotheses (H1, …): the services, operations and mechanisms
  it names are matched against the candidates and the figures of those services
  (`judge_hypothesis`);
- what the evidence rules out (contradicted hypotheses, attempts aimed at a symptom), the causal
  chain from trigger to symptom, the next data to collect and an overall confidence;
- fixes and tests by mechanism, each linked to its root cause, citing the code where the
  mechanism lives (the callers' retry loop for a retry storm, not the service that suffers it).

Every report says plainly that no model checked it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from escalation.models import OFFLINE_MODEL
from escalation.providers.base import ProviderReply, ProviderRequest, Usage
from escalation.tokens import estimate_tokens

__all__ = ["OfflineProvider", "NOT_CHECKED", "judge_hypothesis", "mechanisms_named"]

NOT_CHECKED = "Offline report: built from the evidence by rules, NOT checked by a model."

CONFIDENCE_VALUE = {"high": 0.8, "medium": 0.5, "low": 0.2}

_FIX = {
    "error_propagation": "Handle the failing call where the error starts: validate its input, return a typed error, "
    "and stop callers from turning it into a generic 5xx.",
    "dependency_failure": "Make the failing dependency healthy again (roll back its last change or fail over), and "
    "add a circuit breaker with a fallback in the caller.",
    "latency_regression": "Find what changed on this operation (deploy, query plan, payload size) and revert or "
    "optimise it; compare the before/after spans' self time.",
    "network_delay": "Check the network path between caller and callee (DNS, connection pool, cross-zone hops); "
    "reuse connections and co-locate the services.",
    "cpu_saturation": "Reduce CPU work on the hot host (profile the self time), or scale out the instances.",
    "code_path_change": "Review the new code path the spans show and restore the previous behaviour behind a flag.",
    "n_plus_one": "Batch the repeated calls into one query or request (load the collection at once).",
    "retry_storm": "Cap retries with exponential backoff and jitter, add a retry budget, and make the callee shed "
    "load instead of timing out.",
    "timeout_cascade": "Give each hop a deadline shorter than its caller's and propagate it; fail fast instead of "
    "waiting for the full timeout.",
    "clock_skew": "Synchronise the hosts' clocks (NTP/chrony) and stop comparing timestamps across hosts.",
    "lock_expiry": "Make the lock lease longer than the work it guards (or renew it), and fence writes with a "
    "token so an expired holder cannot write.",
    "queue_backlog": "Scale the consumers or reduce the per-message work; alert on queue age.",
    "deploy_regression": "Roll back the new version and bisect the change between the two versions.",
}

# what to collect next, by mechanism
_NEXT_DATA = {
    "error_propagation": ("the exception and stack trace where the errors start", "to see the failing line"),
    "dependency_failure": (
        "the failing dependency's own logs and health over the window",
        "to tell a dependency outage from a caller's misconfiguration",
    ),
    "latency_regression": (
        "a profile or query plan of the slowed operation, and its deploys and config changes",
        "to find what made its own work slower",
    ),
    "network_delay": (
        "network metrics between caller and callee (RTT, retransmits, DNS times)",
        "to place the added time on the path, not in either service",
    ),
    "cpu_saturation": (
        "CPU and run-queue metrics of the hot hosts",
        "to confirm saturation and find its source",
    ),
    "code_path_change": (
        "the diff or config change that changed the operation's children",
        "to find the new code path",
    ),
    "n_plus_one": ("the queries per request with their parameters", "to confirm one query per item"),
    "retry_storm": (
        "the callers' retry settings (attempts, backoff, timeout) and the callee's concurrency limits",
        "to size a retry budget",
    ),
    "timeout_cascade": ("the timeout of every hop on the path", "to find the hop whose deadline is too long"),
    "clock_skew": (
        "NTP/chrony offset of the skewed host over the window",
        "to date the clock step and confirm it against the onset",
    ),
    "lock_expiry": (
        "the lock service's lease table and renew log, with both hosts' clocks",
        "to see which clock decided the expiry",
    ),
    "queue_backlog": (
        "queue depth, message age and delivery counts over the window",
        "to tell a slow consumer from a settle failure",
    ),
    "deploy_regression": ("the change list between the two versions", "to bisect the regression"),
}

# words that name a mechanism in an agent's hypothesis
_MECHANISM_WORDS: dict[str, tuple[str, ...]] = {
    "lock_expiry": (r"\block", r"\blease", r"\bttl\b", r"\bmutex", r"\brenew"),
    "clock_skew": (r"\bclock", r"\bskew", r"\bntp\b", r"\bchrony", r"time drift", r"\bdrift"),
    "retry_storm": (r"\bretr(y|ies|ying)", r"\bbackoff", r"thundering herd"),
    "timeout_cascade": (r"\btime ?outs?\b", r"\btimed out", r"\bdeadline"),
    "latency_regression": (r"\bslow", r"\blatency", r"takes? longer", r"\bregress"),
    "n_plus_one": (r"\bn ?\+ ?1\b", r"per item", r"one query per", r"repeated quer"),
    "deploy_regression": (r"\bdeploy", r"\brelease", r"\bversion", r"\brollout", r"\bupgrade"),
    "cpu_saturation": (r"\bcpu\b", r"\bsaturat", r"\boverload", r"\bthrottl", r"\bhot loop"),
    "network_delay": (r"\bnetwork", r"\bpacket", r"\bdns\b", r"\brouting", r"\bbandwidth", r"\blink\b"),
    "queue_backlog": (
        r"\bqueue",
        r"\bbacklog",
        r"\bredeliver",
        r"consumer lag",
        r"dead.?letter",
        r"\bsettle",
    ),
    "code_path_change": (r"code path", r"early return", r"empty cache", r"\bbranch\b", r"feature flag"),
    "dependency_failure": (
        r"connection refused",
        r"\brefus",
        r"\bunreachable",
        r"\bunavailable",
        r"\boutage",
        r"\bcannot reach",
        r"\bcan't reach",
        r"\bdown\b",
    ),
    "error_propagation": (r"\berrors?\b", r"\bexceptions?\b", r"\bfail", r"\b5\d\d\b", r"\bbug\b"),
}
# mechanisms close enough that a hypothesis naming one is about the other
_RELATED = {
    "latency_regression": {"cpu_saturation", "n_plus_one", "timeout_cascade", "lock_expiry"},
    "timeout_cascade": {"latency_regression", "retry_storm"},
    "retry_storm": {"timeout_cascade"},
    "deploy_regression": {"code_path_change", "n_plus_one", "latency_regression"},
    "code_path_change": {"deploy_regression", "queue_backlog"},
    "dependency_failure": {"error_propagation"},
    "error_propagation": {"dependency_failure"},
    "lock_expiry": {"clock_skew"},
    "queue_backlog": {"code_path_change"},
    "cpu_saturation": {"latency_regression"},
}
# what says too little on its own: a hypothesis that names only these about a service is judged by
# that service's figures
_GENERIC = {"error_propagation", "latency_regression"}
# a hypothesis that denies ("… is not skewed", "… has nothing to do with it"); "never settles" and
# "cannot reach" are claims, not denials
_NEGATION = re.compile(
    r"(?i)\b(?:(?:is|are|was|were|does|do|did|has|have)\s+not|isn't|aren't|wasn't|weren't|doesn't|don't|"
    r"didn't|hasn't|haven't|not (?:the cause|involved|related|responsible)|nothing to do with|unrelated)\b"
)


def _fact_text(fact: dict[str, Any]) -> str:
    return json.dumps(fact, ensure_ascii=False, default=str).lower()


_STOP = frozenset(
    ("the", "and", "for", "with", "why", "what", "about", "how", "does", "this", "that", "from")
)


def _words(text: str) -> set[str]:
    """The words of `text` (3 characters or more) for matching a question to the bundle: a name
    joined by '-', '.' or '_' (tax-db-replica-3, psycopg.OperationalError) whole and in its parts,
    so that "the replica" finds it too."""
    out: set[str] = set()
    for token in re.findall(r"[a-z0-9_.-]+", text.lower()):
        token = token.strip("._-")
        out.add(token)
        out.update(re.split(r"[._-]+", token))
    return {w for w in out if len(w) >= 3} - _STOP


def mechanisms_named(text: str) -> set[str]:
    """The mechanisms (correlate's vocabulary) a text names."""
    low = text.lower()
    return {m for m, pats in _MECHANISM_WORDS.items() if any(re.search(p, low) for p in pats)}


def _norm(name: str) -> str:
    return re.sub(r"[-_ ]+", "", name.lower())


def _named(text: str, names: list[str]) -> list[str]:
    """The names (services, operations) a text mentions, as a word, tolerant of '-'/'_'."""
    low = text.lower()
    flat = _norm(text)
    out = []
    for n in names:
        if not n:
            continue
        if re.search(r"(?<![\w-])" + re.escape(n.lower()) + r"(?![\w-])", low) or (
            len(n) > 5 and _norm(n) in flat and " " not in n
        ):
            out.append(n)
    return out


def _candidates(facts: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in facts.get("candidates", []) if not c.get("finding")]


def _home(c: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """The services whose code holds the mechanism: a retry storm lives in its callers' retry
    loops, a timeout cascade in the callers' deadlines; everything else in the service itself."""
    mech, service = c.get("mechanism"), str(c.get("service") or "")
    if mech == "retry_storm":
        callers = [str(x) for x in (c.get("details") or {}).get("callers") or []]
        if callers:
            return callers
    if mech == "timeout_cascade":
        callers = [e["caller"] for e in facts.get("graph", []) if e.get("callee") == service]
        if callers:
            return list(dict.fromkeys(callers))
    return [service] if service else []


def _services(facts: dict[str, Any]) -> list[str]:
    got = [s["service"] for s in facts.get("services", []) if s.get("service")]
    if not got:
        got = [
            s.get("service") for s in (facts.get("summary") or {}).get("services") or [] if s.get("service")
        ]
    return [str(s) for s in got]


def judge_hypothesis(text: str, facts: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(verdict, explanation, evidence ids) for one of the agent's hypotheses, by rules:

    - it names services, operations or mechanisms the bundle holds candidates for: supported
      when a candidate of medium or high confidence matches, contradicted when only weak ones do
      while a high-confidence candidate elsewhere explains the incident;
    - it blames services whose figures did not change (no candidate, no more failures, steady
      edges) or that only fail because what they call fails: contradicted, with those figures;
    - it names a mechanism no candidate shows while a high-confidence candidate explains the
      incident: contradicted; anything the telemetry cannot speak to: untested.
    A negation ("… is not the cause") turns supported and contradicted around."""
    cands = [c for c in _candidates(facts) if (c.get("score") or 0) >= 0.005]
    services = _services(facts)
    named_services = set(_named(text, services))
    ops = list(dict.fromkeys(str(c.get("operation") or "") for c in cands))
    named_ops = set(_named(text, [o for o in ops if o]))
    mechs = mechanisms_named(text)
    specific = mechs - _GENERIC or mechs
    negated = bool(_NEGATION.search(text))
    top = cands[0] if cands else None

    def flip(verdict: str, why: str, ev: list[str]) -> tuple[str, str, list[str]]:
        if negated and verdict in ("supported", "contradicted"):
            verdict = "contradicted" if verdict == "supported" else "supported"
            why = f"(it says the opposite) {why}"
        return verdict, why, list(dict.fromkeys(e for e in ev if e))

    if not named_services and not named_ops and not mechs:
        return "untested", "it names no service, operation or mechanism the telemetry covers", []

    def matches(c: dict[str, Any], wanted: set[str]) -> bool:
        svc = {str(c.get("service") or ""), *_home(c, facts)}
        if named_services and not (svc & named_services):
            return False
        if named_ops and str(c.get("operation") or "") not in named_ops:
            return False
        if wanted:
            mech = str(c.get("mechanism") or "")
            return mech in wanted or bool(_RELATED.get(mech, set()) & wanted)
        return True

    hits = [c for c in cands if matches(c, specific)]
    strong = [c for c in hits if c.get("confidence") in ("high", "medium")]
    if strong:
        c = strong[0]
        return flip(
            "supported",
            f"correlate's candidate #{c.get('rank')} {c.get('service')}/{c.get('operation') or '-'} "
            f"({c.get('mechanism')}, confidence {c.get('confidence')}): {c.get('summary')}",
            [x.get("evidence_id", "") for x in strong[:3]] + _support_ids(c, facts)[:2],
        )
    elsewhere = top is not None and top.get("confidence") in ("high", "medium") and not matches(top, specific)
    if hits:
        c = hits[0]
        if elsewhere:
            assert top is not None
            return flip(
                "contradicted",
                f"only a weak candidate matches (#{c.get('rank')}, confidence {c.get('confidence')}), while "
                f"#{top.get('rank')} {top.get('service')}/{top.get('operation') or '-'} ({top.get('mechanism')}, "
                f"confidence {top.get('confidence')}) explains the incident",
                [c.get("evidence_id", ""), top.get("evidence_id", "")],
            )
        return (
            "untested",
            f"only a weak candidate matches (#{c.get('rank')} {c.get('service')}/{c.get('operation') or '-'}, "
            f"{c.get('mechanism')}, confidence {c.get('confidence')}): the evidence neither confirms nor rules it out",
            [c.get("evidence_id", "")],
        )
    if named_services or named_ops:
        other = [c for c in cands if matches(c, set()) and c.get("confidence") in ("high", "medium")]
        if other and specific:  # the named place changed, by another mechanism than the one named
            c = other[0]
            return flip(
                "contradicted",
                f"{c.get('service')}/{c.get('operation') or '-'} changed, but correlate reads it as "
                f"{c.get('mechanism')} (#{c.get('rank')}, confidence {c.get('confidence')}: {c.get('summary')}), "
                f"not {', '.join(sorted(specific))}",
                [c.get("evidence_id", "")],
            )
    if named_services:
        return flip(*_judge_services(sorted(named_services), facts, top))
    if mechs and top is not None and top.get("confidence") == "high":
        return flip(
            "contradicted",
            f"no candidate shows {', '.join(sorted(specific))}; #{top.get('rank')} {top.get('service')}/"
            f"{top.get('operation') or '-'} ({top.get('mechanism')}, confidence high) explains the incident",
            [top.get("evidence_id", "")],
        )
    return (
        "untested",
        f"no candidate shows {', '.join(sorted(specific))}, and none explains the incident surely",
        [],
    )


def _judge_services(
    named: list[str], facts: dict[str, Any], top: dict[str, Any] | None
) -> tuple[str, str, list[str]]:
    """A hypothesis that blames services no candidate names: what their own figures say."""
    rows = {s["service"]: s for s in facts.get("services", [])}
    edges = facts.get("graph", [])
    ev: list[str] = []
    said: list[str] = []
    symptom = False
    for name in named:
        r = rows.get(name)
        if r is not None:
            before, after = r.get("baseline_failed"), r.get("failed") or 0
            if before is None:
                said.append(f"{name}: {after} failed of {r.get('requests')} requests")
            else:
                said.append(
                    f"{name}: requests {r.get('baseline_requests')} -> {r.get('requests')}, failed {before} -> {after}"
                )
            if after and after > (before or 0):
                symptom = True
        for e in edges:
            if name == e.get("caller") and e.get("change") and (e.get("err_delta") or 0) > 0:
                ev.append(e.get("evidence_id", ""))
                said.append(f"{name} calls {e['callee']}, whose errors rose ({e['change']})")
            elif name in (e.get("caller"), e.get("callee")):
                ev.append(e.get("evidence_id", ""))
    if top is not None:
        ev.append(top.get("evidence_id", ""))
        where = (
            f"#{top.get('rank')} {top.get('service')}/{top.get('operation') or '-'} ({top.get('mechanism')})"
        )
    else:
        where = ""
    if symptom and top is not None:
        return (
            "contradicted",
            f"{', '.join(named)} fail(s) only as a symptom: no candidate starts there ({'; '.join(said)}); the "
            f"failures start at {where}",
            ev,
        )
    if top is not None and top.get("confidence") in ("high", "medium"):
        return (
            "contradicted",
            f"{', '.join(named)} did not change in a way that explains the incident ({'; '.join(said) or 'no figures'}); "
            f"the evidence points at {where}",
            ev,
        )
    return "untested", f"no candidate names {', '.join(named)} and none explains the incident surely", ev


def _support_ids(c: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """Evidence beyond the candidate: traces, logs and edges about its service."""
    service = str(c.get("service") or "")
    ids = []
    for t in facts.get("traces", []):
        if set(c.get("trace_ids") or []) & {t.get("trace_id")}:
            ids.append(t["evidence_id"])
    for lg in facts.get("logs", []):
        if lg.get("service") == service and lg.get("count", 0) > (lg.get("baseline_count") or 0):
            ids.append(lg["evidence_id"])
    return ids


class OfflineProvider:
    name = "offline"
    model = OFFLINE_MODEL

    def count_tokens(self, request: ProviderRequest) -> int | None:
        return None

    def generate(self, request: ProviderRequest) -> ProviderReply:
        facts = request.bundle_facts
        follow_up = sum(1 for m in request.messages if m.role == "user") > 1
        analysis = self._analysis(facts)
        if follow_up:
            question = request.messages[-1].text.split("Follow-up question: ", 1)[-1]
            analysis["summary"] = self._follow_up(facts, question) + " " + analysis["summary"]
        text = json.dumps(analysis, ensure_ascii=False)
        usage = Usage(sum(estimate_tokens(m.text) for m in request.messages), estimate_tokens(text), 0)
        return ProviderReply(text, analysis, usage, self.model, checked_by_model=False)

    # the analysis ----------------------------------------------------------------------------

    def _analysis(self, facts: dict[str, Any]) -> dict[str, Any]:
        cands = [c for c in _candidates(facts) if (c.get("score") or 0) >= 0.005][:5]
        causes = [self._cause(c, facts, f"R{i}") for i, c in enumerate(cands, 1)]
        seen: dict[str, int] = {}  # summary -> first cause number: one origin read as two mechanisms
        for i, (c, cause) in enumerate(zip(cands, causes, strict=False), 1):
            text = str(c.get("summary") or "")
            if text and text in seen:
                k = seen[text]
                cause["explanation"] = (
                    f"The same evidence as root cause {k} ({causes[k - 1]['title']}), "
                    f"read as {cause['mechanism']}."
                )
            else:
                seen.setdefault(text, i)
        if not causes:
            causes = self._causes_without_candidates(facts)
        distinct = [
            (c, r) for c, r in zip(cands, causes, strict=False) if not r["explanation"].startswith("The same")
        ]
        fixes, tests = [], []
        for c, cause in distinct[:3]:
            files = self._files_for(c, facts)
            fixes.append(
                {
                    "root_cause": cause["id"],
                    "description": f"{', '.join(_home(c, facts)) or c.get('service')}: "
                    f"{_FIX.get(c.get('mechanism', ''), 'Fix the operation the evidence points at.')}",
                    "files": files,
                    "risk": "unverified: no model checked this fix",
                }
            )
            tests.append(
                {
                    "root_cause": cause["id"],
                    "description": f"After the fix, re-run the correlation on a new capture: candidate "
                    f"{c.get('service')}/{c.get('mechanism')} should drop out of the ranking.",
                    "command": f"dcr correlate {facts.get('dataset') or 'DATASET'}",
                    "expected": f"no {c.get('mechanism')} candidate for {c.get('service')}",
                }
            )
        if facts.get("code") and causes:
            files = (
                fixes[0]["files"] if fixes and fixes[0]["files"] else [x["path"] for x in facts["code"][:3]]
            )
            tests.append(
                {
                    "root_cause": causes[0]["id"],
                    "description": "Add a regression test that exercises the referenced lines in "
                    + ", ".join(files),
                    "command": "",
                    "expected": "fails before the fix, passes after",
                }
            )
        top = causes[0] if causes else None
        hypotheses = []
        for h in facts.get("hypotheses", []):
            verdict, why, ev = judge_hypothesis(str(h.get("text") or ""), facts)
            hypotheses.append({"id": h.get("id"), "verdict": verdict, "explanation": why, "evidence": ev})
        confidence = top["confidence"] if top else 0.0
        if top and not facts.get("has_baseline", True):
            confidence = round(confidence * 0.75, 3)  # nothing compared: less sure
        summary = NOT_CHECKED + (
            f" The strongest candidate is {top['title']} (correlate's confidence {top['confidence']:.2f})."
            if top
            else " The bundle holds no root-cause candidate and no failing trace."
        )
        questions = [
            "Does the top candidate's mechanism match what the code does at the referenced lines? "
            "(needs a model or a human: not checked offline)"
        ]
        # a second candidate in the top one's service is more of the same story, not another problem
        if len(cands) > 1 and cands[1].get("service") != cands[0].get("service"):
            questions.append(
                f"Is {cands[1].get('service')}/{cands[1].get('mechanism')} a separate problem or a "
                f"symptom of the top candidate?"
            )
        return {
            "summary": summary,
            "confidence": confidence,
            "root_causes": causes,
            "causal_chain": self._chain(cands, causes, facts),
            "hypotheses": hypotheses,
            "ruled_out": self._ruled_out(facts, hypotheses, cands),
            "fixes": fixes,
            "tests_to_run": tests,
            "next_data": self._next_data(facts, cands, hypotheses),
            "open_questions": questions,
            "checked_by_model": False,
        }

    def _cause(self, c: dict[str, Any], facts: dict[str, Any], cid: str) -> dict[str, Any]:
        service = str(c.get("service") or "")
        evidence = [c["evidence_id"]] if c.get("evidence_id") else []
        support: list[str] = []
        for t in facts.get("traces", []):
            if set(c.get("trace_ids") or []) & {t.get("trace_id")} or any(
                e.get("service") == service for e in t.get("error_spans", [])
            ):
                evidence.append(t["evidence_id"])
                errs = [e for e in t.get("error_spans", []) if e.get("service") == service]
                if errs:
                    support.append(
                        f"trace {t['trace_id'][:8]}… ({t.get('role')}) fails in {service}: "
                        f"{errs[0].get('message') or errs[0].get('operation')}"
                    )
        for lg in facts.get("logs", []):
            if f" {service}:" in lg.get("template", "") and lg.get("count", 0) > (
                lg.get("baseline_count") or 0
            ):
                evidence.append(lg["evidence_id"])
                support.append(
                    f"log '{lg['template'][:120]}' {lg['count']}x"
                    + (f" (baseline {lg['baseline_count']}x)" if lg.get("baseline_count") is not None else "")
                )
        for e in facts.get("graph", []):
            if service in (e.get("caller"), e.get("callee")) and e.get("change"):
                evidence.append(e["evidence_id"])
                support.append(f"edge {e['caller']}->{e['callee']}: {e['change']}")
        code = self._code_for(c, facts)
        evidence += [x["evidence_id"] for x in code]
        explanation = str(c.get("summary") or "")
        if support:
            if explanation and not explanation.endswith((".", "!", "?")):
                explanation += "."
            explanation += " Supporting evidence: " + "; ".join(support[:4]) + "."
        if code:
            explanation += f" The mechanism lives in {', '.join(x['path'] for x in code[:2])}."
        conf = CONFIDENCE_VALUE.get(str(c.get("confidence") or ""))
        return {
            "id": cid,
            "title": f"{c.get('mechanism')} in {service}/{c.get('operation') or '-'}",
            "service": service,
            "operation": c.get("operation") or "",
            "mechanism": c.get("mechanism") or "",
            # correlate's confidence in it as THE cause; its score (how strong the change is) when
            # correlate gave none
            "confidence": conf if conf is not None else round(float(c.get("score") or 0.0), 3),
            "explanation": explanation,
            "evidence": list(dict.fromkeys(evidence)),
        }

    def _code_for(self, c: dict[str, Any], facts: dict[str, Any]) -> list[dict[str, Any]]:
        """The code excerpts where the candidate's mechanism lives, best first: files of the
        services that hold it (`_home`), those whose text shows the mechanism first."""
        homes = [_norm(s) for s in _home(c, facts)]
        pats = _MECHANISM_WORDS.get(str(c.get("mechanism") or ""), ())
        scored = []
        for i, code in enumerate(facts.get("code", [])):
            path = _norm(code.get("path", ""))
            in_home = any(h and h in path for h in homes)
            if not in_home:
                continue
            text = str(code.get("text") or "").lower()
            shows = any(re.search(p, text) for p in pats)
            scored.append((-int(shows), i, code))
        return [code for _, _, code in sorted(scored, key=lambda x: x[:2])]

    def _files_for(self, c: dict[str, Any], facts: dict[str, Any]) -> list[str]:
        files = [x["path"] for x in self._code_for(c, facts)]
        return files or [x["path"] for x in facts.get("code", [])[:2]]

    def _chain(
        self, cands: list[dict[str, Any]], causes: list[dict[str, Any]], facts: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Trigger -> root cause -> propagation -> symptom, from the candidates and the graph: a
        change event (clock step, deploy) on the root cause's service is its trigger; the callers
        whose errors or latency rose carry it up to the entry service, the symptom."""
        if not cands:
            return []
        root = cands[0]
        service = str(root.get("service") or "")
        chain: list[dict[str, Any]] = []
        for c in cands[1:]:
            if c.get("mechanism") in ("clock_skew", "deploy_regression") and c.get("service") == service:
                chain.append(
                    {
                        "role": "trigger",
                        "service": c.get("service"),
                        "operation": c.get("operation") or "",
                        "description": str(c.get("summary") or ""),
                        "evidence": [c.get("evidence_id")],
                    }
                )
                break
        else:
            onset = [t for t in facts.get("timeline", []) if t.get("onset")]
            if onset:
                chain.append(
                    {
                        "role": "trigger",
                        "service": onset[0].get("service"),
                        "operation": onset[0].get("operation") or "",
                        "description": "the onset: the first change the timeline shows (what changed first is "
                        "not in the telemetry)",
                        "evidence": [t["evidence_id"] for t in onset[:3]],
                    }
                )
        chain.append(
            {
                "role": "root_cause",
                "service": service,
                "operation": root.get("operation") or "",
                "description": str(root.get("summary") or ""),
                "evidence": [causes[0]["evidence"][0]] if causes and causes[0]["evidence"] else [],
            }
        )
        for c in cands[1:4]:
            if c.get("service") == service and c.get("mechanism") not in ("clock_skew", "deploy_regression"):
                if c.get("same_as") or str(c.get("summary")) == str(root.get("summary")):
                    continue
                chain.append(
                    {
                        "role": "propagation",
                        "service": service,
                        "operation": c.get("operation") or "",
                        "description": str(c.get("summary") or ""),
                        "evidence": [c.get("evidence_id")],
                    }
                )
        # up the graph: callers whose calls into the affected service got worse
        seen = {service}
        current = [*_home(root, facts), service]
        edges = [
            e
            for e in facts.get("graph", [])
            if (e.get("err_delta") or 0) > 0 or (e.get("p95_ratio") or 0) >= 1.5
        ]
        while current:
            nxt = []
            for e in edges:
                if e.get("callee") in current and e.get("caller") not in seen:
                    seen.add(e["caller"])
                    nxt.append(e["caller"])
                    chain.append(
                        {
                            "role": "propagation",
                            "service": e["caller"],
                            "operation": "",
                            "description": f"{e['caller']} -> {e['callee']}: {e.get('change')}",
                            "evidence": [e.get("evidence_id")],
                        }
                    )
            current = nxt
        if len(chain) > 1 and chain[-1]["role"] == "propagation" and chain[-1]["service"] != service:
            chain[-1]["role"] = "symptom"
        return chain

    def _ruled_out(
        self, facts: dict[str, Any], hypotheses: list[dict[str, Any]], cands: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        texts = {h["id"]: h["text"] for h in facts.get("hypotheses", [])}
        out = [
            {
                "what": f"{h['id']}: {texts.get(h['id'], '')}",
                "why": h["explanation"],
                "evidence": h["evidence"],
            }
            for h in hypotheses
            if h["verdict"] == "contradicted"
        ]
        root = cands[0] if cands else None
        for a in facts.get("attempted", []):
            text = str(a.get("text") or "")
            named = set(_named(text, _services(facts)))
            if (
                root is None
                or not named
                or str(root.get("service")) in named
                or set(_home(root, facts)) & named
            ):
                continue
            out.append(
                {
                    "what": f"{a.get('id')}: {text}",
                    "why": f"it acts on {', '.join(sorted(named))}, not on where the evidence places the cause "
                    f"({root.get('service')}/{root.get('operation') or '-'}, {root.get('mechanism')})",
                    "evidence": [root.get("evidence_id")],
                }
            )
        return out

    def _next_data(
        self, facts: dict[str, Any], cands: list[dict[str, Any]], hypotheses: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        out = []
        for c in cands[:2]:
            what, why = _NEXT_DATA.get(str(c.get("mechanism")), ("", ""))
            if what:
                out.append({"what": f"{what} ({c.get('service')})", "why": why, "how": ""})
        if not facts.get("has_baseline", True):
            out.append(
                {
                    "what": "telemetry from before the incident",
                    "why": "nothing was compared: a baseline tells a change from what was always so",
                    "how": "ingest an earlier capture, or give --start at the onset",
                }
            )
        for h in hypotheses:
            if h["verdict"] == "untested":
                out.append(
                    {
                        "what": f"data that speaks to {h['id']}",
                        "why": h["explanation"],
                        "how": "the component it names, instrumented or its logs ingested",
                    }
                )
        return out

    def _causes_without_candidates(self, facts: dict[str, Any]) -> list[dict[str, Any]]:
        causes = []
        for t in facts.get("traces", []):
            if t.get("error_spans"):
                deepest = t["error_spans"][-1]  # depth-first order: the last error is the deepest
                causes.append(
                    {
                        "id": "R1",
                        "title": f"error starting in {deepest['service']}/{deepest['operation']}",
                        "service": deepest["service"],
                        "operation": deepest["operation"],
                        "mechanism": "error_propagation",
                        "confidence": 0.2,
                        "explanation": f"No ranked candidates were available; trace {t['trace_id'][:8]}… fails first in "
                        f"{deepest['service']} ({deepest.get('message') or 'no message'}).",
                        "evidence": [t["evidence_id"]],
                    }
                )
                break
        if causes:
            return causes
        slower = sorted(
            (e for e in facts.get("graph", []) if (e.get("p95_ratio") or 0) >= 1.5),
            key=lambda e: -e["p95_ratio"],
        )
        if slower:
            e = slower[0]
            causes.append(
                {
                    "id": "R1",
                    "title": f"latency added on the call {e['caller']} -> {e['callee']}",
                    "service": e["callee"],
                    "operation": "",
                    "mechanism": "latency_regression",
                    "confidence": 0.2,
                    "explanation": f"No ranked candidates were available; the call {e['caller']} -> {e['callee']} has "
                    f"the largest p95 increase (x{e['p95_ratio']:.2f}) between baseline and window.",
                    "evidence": [e["evidence_id"]],
                }
            )
        return causes

    def _follow_up(self, facts: dict[str, Any], question: str) -> str:
        words = _words(question)
        hits = []
        for key in ("candidates", "traces", "logs", "graph", "code"):
            for f in facts.get(key, []):
                overlap = words & _words(_fact_text(f))
                if overlap:
                    hits.append((len(overlap), f.get("evidence_id", ""), key))
        hits.sort(key=lambda h: (-h[0], h[1]))
        best: dict[str, tuple[int, str, str]] = {}
        for h in hits:  # an item once, where it matched best
            best.setdefault(h[1], h)
        hits = list(best.values())
        if not hits:
            return f"Follow-up '{question[:120]}': nothing in the bundle mentions it."
        return (
            f"Follow-up '{question[:120]}': the bundle items that mention it are "
            + ", ".join(f"{eid} ({key})" for _, eid, key in hits[:6])
            + "."
        )
