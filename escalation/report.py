"""The analysis (RESPONSE_SCHEMA shape) as Markdown for people and agents."""

from __future__ import annotations

from typing import Any

__all__ = ["render_markdown"]


def render_markdown(
    analysis: dict[str, Any],
    *,
    provider: str,
    model: str,
    checked_by_model: bool,
    title: str = "Escalation report",
    warnings: tuple[str, ...] = (),
    cut: tuple[str, ...] = (),
    function_calls: tuple[dict[str, Any], ...] = (),
) -> str:
    out = [f"# {title}", ""]
    if not checked_by_model:
        out += ["> **Offline report: built from the evidence by rules, not checked by a model.**", ""]
    out += [f"_provider {provider}, model {model}_", "", str(analysis.get("summary") or "").strip(), ""]
    if isinstance(analysis.get("confidence"), (int, float)):
        out += [f"Overall confidence: {float(analysis['confidence']):.2f}", ""]
    causes = analysis.get("root_causes") or []
    if causes:
        out.append("## Root causes (most likely first)")
        for i, c in enumerate(causes, 1):
            ev = _ids(c.get("evidence")) or "none cited"
            rid = f"{c['id']} " if c.get("id") else ""
            out.append(
                f"{i}. {rid}**{c.get('title', '?')}** (confidence {float(c.get('confidence') or 0):.2f}; "
                f"evidence {ev})"
            )
            if c.get("explanation"):
                out.append(f"   {c['explanation']}")
        out.append("")
    chain = analysis.get("causal_chain") or []
    if chain:
        out.append("## Causal chain (trigger to symptom)")
        for step in chain:
            where = " ".join(str(x) for x in (step.get("service"), step.get("operation")) if x)
            ev = _ids(step.get("evidence"))
            out.append(
                f"- {str(step.get('role', '?')).replace('_', ' ')}{': ' + where if where else ''}: "
                f"{step.get('description', '')}{f' ({ev})' if ev else ''}"
            )
        out.append("")
    verdicts = analysis.get("hypotheses") or []
    if verdicts:
        out.append("## The agent's hypotheses")
        for h in verdicts:
            ev = _ids(h.get("evidence"))
            out.append(
                f"- {h.get('id', '?')}: **{h.get('verdict', '?')}**: {h.get('explanation', '')}{f' ({ev})' if ev else ''}"
            )
        out.append("")
    ruled = analysis.get("ruled_out") or []
    if ruled:
        out.append("## Ruled out")
        for r in ruled:
            ev = _ids(r.get("evidence"))
            out.append(f"- {r.get('what', '')}: {r.get('why', '')}{f' ({ev})' if ev else ''}")
        out.append("")
    for key, head in (("fixes", "Fixes"), ("tests_to_run", "Tests to run")):
        items = analysis.get(key) or []
        if items:
            out.append(f"## {head}")
            for it in items:
                rc = f"[{it['root_cause']}] " if it.get("root_cause") else ""
                line = f"- {rc}{it.get('description', '')}"
                if it.get("files"):
                    line += f" (files: {', '.join(it['files'])})"
                if it.get("command"):
                    line += f" `{it['command']}`"
                if it.get("expected"):
                    line += f"; expect: {it['expected']}"
                out.append(line)
            out.append("")
    nxt = analysis.get("next_data") or []
    if nxt:
        out.append("## Data to collect next")
        for d in nxt:
            line = f"- {d.get('what', '')}: {d.get('why', '')}"
            if d.get("how"):
                line += f" ({d['how']})"
            out.append(line)
        out.append("")
    calls = function_calls
    if calls:
        out.append("## Data the model asked for (function calls)")
        for c in calls:
            out.append(f"- {c.get('id', '?')} {c.get('name', '?')} {c.get('summary', '')}")
        out.append("")
    if analysis.get("open_questions"):
        out.append("## Open questions")
        out += [f"- {q}" for q in analysis["open_questions"]]
        out.append("")
    if cut:
        out.append("## Cut from the bundle (did not fit the token budget)")
        out += [f"- {c}" for c in cut]
        out.append("")
    if warnings:
        out.append("## Warnings")
        out += [f"- {w}" for w in warnings]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _ids(ids: Any) -> str:
    return ", ".join(str(x) for x in ids or [] if x)
