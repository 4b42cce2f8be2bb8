"""What the model is told: the system instruction, per-analysis-type instructions, the schema.

Evidence items in the bundle carry ids (`[E1]`, `[E2]`, …); the schema asks the model to cite
them, so every root cause can be traced back to a trace, span, query or file.
"""

from __future__ import annotations

from typing import Any

from escalation.errors import BadRequest
from escalation.types import ANALYSIS_TYPES

__all__ = [
    "SYSTEM_INSTRUCTION",
    "ANALYSIS_INSTRUCTIONS",
    "RESPONSE_SCHEMA",
    "analysis_instruction",
    "check_analysis_type",
    "FOLLOW_UP_INSTRUCTION",
    "SUMMARY_INSTRUCTIONS",
]

SYSTEM_INSTRUCTION = """\
You are a senior distributed-systems engineer helping a coding agent that is stuck on a bug
spanning several services. You receive an evidence bundle condensed from the real telemetry
(traces, logs, service graph) and the code that matters, plus what the agent already tried.

Rules:
- Reason from the evidence. Cite evidence ids like E3 for every claim; say when a claim is a
  guess. Do not repeat approaches the agent already tried unless the evidence says they were
  applied wrongly.
- Rank root causes by how well the evidence supports them; confidence is 0..1 and honest.
- Distinguish the cause from its symptoms: a service that times out because its dependency is
  slow is a symptom.
- Values like <redacted:jwt> were removed before sending; never ask for them.
- Fixes name files and functions when the code excerpts show them; tests say what to run and
  what result would confirm or refute the root cause.
- Answer with JSON that matches the response schema, nothing else.
"""

ANALYSIS_INSTRUCTIONS: dict[str, str] = {
    "execution_trace": (
        "Analysis type: execution_trace. Follow the request through the exemplar traces and the code "
        "excerpts step by step: which function runs on which service, in which order, with what "
        "timing. Mark where the actual execution departs from what the code intends. Use the code "
        "execution tool to replay small pieces of logic when that settles a question."
    ),
    "cross_system": (
        "Analysis type: cross_system. Focus on interactions between services: error propagation, "
        "retries, timeouts, queue hand-offs, changed call edges in the service graph. Identify the "
        "service where the failure starts and the path it takes to the user-facing symptom."
    ),
    "performance": (
        "Analysis type: performance. Focus on where time goes: critical paths, self time, fan-out "
        "(N+1 patterns), lock or queue waits, saturation. Compare before and after figures and "
        "quantify each root cause's share of the added latency."
    ),
    "hypothesis_test": (
        "Analysis type: hypothesis_test. The agent's partial findings are hypotheses. For each, say "
        "whether the evidence supports, refutes or cannot decide it, and which evidence ids decide "
        "it. Use the code execution tool to check arithmetic on the figures (rates, percentiles, "
        "timings) rather than estimating. Propose the cheapest experiment that would settle what "
        "remains open."
    ),
}

FOLLOW_UP_INSTRUCTION = (
    "This is a follow-up in the same investigation. Answer the new question using the bundle and "
    "the earlier answers; update the ranked root causes if the new question changes them."
)

SUMMARY_INSTRUCTIONS: dict[str, str] = {
    "detailed": "Summarise the whole investigation: root causes with evidence, fixes, tests, open questions.",
    "concise": "Summarise the investigation in at most five sentences: the root cause and the fix.",
    "actionable": "List only what to do next: fixes in order, each with the test that confirms it.",
}

_STR = {"type": "STRING"}
_STRS = {"type": "ARRAY", "items": _STR}

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "OBJECT",
    "properties": {
        "summary": {"type": "STRING", "description": "Two or three sentences: what is wrong and why."},
        "root_causes": {
            "type": "ARRAY",
            "description": "Ranked, most likely first.",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "title": _STR,
                    "service": _STR,
                    "operation": _STR,
                    "mechanism": _STR,
                    "confidence": {"type": "NUMBER", "description": "0..1"},
                    "explanation": _STR,
                    "evidence": {**_STRS, "description": "Evidence ids from the bundle, e.g. E3."},
                },
                "required": ["title", "confidence", "explanation", "evidence"],
            },
        },
        "fixes": {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {"description": _STR, "files": _STRS, "risk": _STR},
                "required": ["description"],
            },
        },
        "tests_to_run": {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {"description": _STR, "command": _STR, "expected": _STR},
                "required": ["description"],
            },
        },
        "open_questions": _STRS,
    },
    "required": ["summary", "root_causes", "fixes", "tests_to_run", "open_questions"],
}


def check_analysis_type(analysis_type: str) -> str:
    if analysis_type not in ANALYSIS_TYPES:
        raise BadRequest(f"unknown analysis type {analysis_type!r}: use one of {', '.join(ANALYSIS_TYPES)}")
    return analysis_type


def analysis_instruction(analysis_type: str) -> str:
    return ANALYSIS_INSTRUCTIONS[check_analysis_type(analysis_type)]
