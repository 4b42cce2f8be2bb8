"""The offline provider: a deterministic report from the bundle's facts, no model involved.

It is the default without an API key. It ranks root causes as `correlate` ranked its
candidates (the top candidate first), attaches the evidence the bundle holds about each
(exemplar traces, log templates, service-graph edges, code excerpts), and proposes the fix and
the test that fit the mechanism. Every report says plainly that no model checked it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from escalation.models import OFFLINE_MODEL
from escalation.providers.base import ProviderReply, ProviderRequest, Usage
from escalation.tokens import estimate_tokens

__all__ = ["OfflineProvider", "NOT_CHECKED"]

NOT_CHECKED = "Offline report: built from the evidence by rules, NOT checked by a model."

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


def _fact_text(fact: dict[str, Any]) -> str:
    return json.dumps(fact, ensure_ascii=False, default=str).lower()


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9_.-]{3,}", text.lower())} - {
        "the",
        "and",
        "for",
        "with",
        "why",
        "what",
    }


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
        cands = [c for c in facts.get("candidates", []) if not c.get("finding")]
        causes = [self._cause(c, facts) for c in cands[:5]]
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
        fixes = []
        for c in cands[:3]:
            files = self._files_for(c.get("service"), facts)
            fixes.append(
                {
                    "description": f"{c.get('service')}/{c.get('operation') or '-'}: "
                    f"{_FIX.get(c.get('mechanism', ''), 'Fix the operation the evidence points at.')}",
                    "files": files,
                    "risk": "unverified: no model checked this fix",
                }
            )
        tests = []
        for c in cands[:3]:
            tests.append(
                {
                    "description": f"After the fix, re-run the correlation on a new capture: candidate "
                    f"{c.get('service')}/{c.get('mechanism')} should drop out of the ranking.",
                    "command": f"dcr correlate {facts.get('dataset') or 'DATASET'}",
                    "expected": f"no {c.get('mechanism')} candidate for {c.get('service')}",
                }
            )
        if facts.get("code"):
            tests.append(
                {
                    "description": "Add a regression test that exercises the referenced lines in "
                    + ", ".join(x["path"] for x in facts["code"][:3]),
                    "command": "",
                    "expected": "fails before the fix, passes after",
                }
            )
        top = causes[0] if causes else None
        summary = NOT_CHECKED + (
            f" The strongest candidate is {top['title']} (correlate score {top['confidence']:.2f})."
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
            "root_causes": causes,
            "fixes": fixes,
            "tests_to_run": tests,
            "open_questions": questions,
            "checked_by_model": False,
        }

    def _cause(self, c: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
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
            if f" {service}:" in lg.get("template", "") and lg.get("count", 0) > lg.get("baseline_count", 0):
                evidence.append(lg["evidence_id"])
                support.append(
                    f"log '{lg['template'][:120]}' {lg['count']}x (baseline {lg['baseline_count']}x)"
                )
        for e in facts.get("graph", []):
            if service in (e.get("caller"), e.get("callee")) and e.get("change"):
                evidence.append(e["evidence_id"])
                support.append(f"edge {e['caller']}->{e['callee']}: {e['change']}")
        for code in facts.get("code", []):
            if service and service.lower().replace("-", "_") in code["path"].lower().replace("-", "_"):
                evidence.append(code["evidence_id"])
        explanation = str(c.get("summary") or "")
        if support:
            if explanation and not explanation.endswith((".", "!", "?")):
                explanation += "."
            explanation += " Supporting evidence: " + "; ".join(support[:4]) + "."
        return {
            "title": f"{c.get('mechanism')} in {service}/{c.get('operation') or '-'}",
            "service": service,
            "operation": c.get("operation") or "",
            "mechanism": c.get("mechanism") or "",
            "confidence": round(float(c.get("score") or 0.0), 3),
            "explanation": explanation,
            "evidence": list(dict.fromkeys(evidence)),
        }

    def _causes_without_candidates(self, facts: dict[str, Any]) -> list[dict[str, Any]]:
        causes = []
        for t in facts.get("traces", []):
            if t.get("error_spans"):
                deepest = t["error_spans"][-1]  # depth-first order: the last error is the deepest
                causes.append(
                    {
                        "title": f"error starting in {deepest['service']}/{deepest['operation']}",
                        "service": deepest["service"],
                        "operation": deepest["operation"],
                        "mechanism": "error_propagation",
                        "confidence": 0.3,
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

    def _files_for(self, service: Any, facts: dict[str, Any]) -> list[str]:
        key = str(service or "").lower().replace("-", "_")
        files = [
            c["path"] for c in facts.get("code", []) if key and key in c["path"].lower().replace("-", "_")
        ]
        return files or [c["path"] for c in facts.get("code", [])[:2]]

    def _follow_up(self, facts: dict[str, Any], question: str) -> str:
        words = _words(question)
        hits = []
        for key in ("candidates", "traces", "logs", "graph", "code"):
            for f in facts.get(key, []):
                overlap = words & _words(_fact_text(f))
                if overlap:
                    hits.append((len(overlap), f.get("evidence_id", ""), key))
        hits.sort(key=lambda h: (-h[0], h[1]))
        if not hits:
            return f"Follow-up '{question[:120]}': nothing in the bundle mentions it."
        return (
            f"Follow-up '{question[:120]}': the bundle items that mention it are "
            + ", ".join(f"{eid} ({key})" for _, eid, key in hits[:6])
            + "."
        )
