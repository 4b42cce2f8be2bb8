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
) -> str:
    out = [f"# {title}", ""]
    if not checked_by_model:
        out += ["> **Offline report: built from the evidence by rules, not checked by a model.**", ""]
    out += [f"_provider {provider}, model {model}_", "", str(analysis.get("summary") or "").strip(), ""]
    causes = analysis.get("root_causes") or []
    if causes:
        out.append("## Root causes (most likely first)")
        for i, c in enumerate(causes, 1):
            ev = ", ".join(c.get("evidence") or []) or "none cited"
            out.append(
                f"{i}. **{c.get('title', '?')}** (confidence {float(c.get('confidence') or 0):.2f}; "
                f"evidence {ev})"
            )
            if c.get("explanation"):
                out.append(f"   {c['explanation']}")
        out.append("")
    for key, head in (("fixes", "Fixes"), ("tests_to_run", "Tests to run")):
        items = analysis.get(key) or []
        if items:
            out.append(f"## {head}")
            for it in items:
                line = f"- {it.get('description', '')}"
                if it.get("files"):
                    line += f" (files: {', '.join(it['files'])})"
                if it.get("command"):
                    line += f" `{it['command']}`"
                if it.get("expected"):
                    line += f"; expect: {it['expected']}"
                out.append(line)
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
