"""What the model is told: the system instruction, per-analysis-type instructions, the schema.

Evidence items in the bundle carry ids (`[E1]`, `[E2]`, …); the schema asks the model to cite
them, so every root cause can be traced back to a trace, span, query or file. The agent's
hypotheses (H1, …) and attempts (A1, …) have ids too: the answer gives each hypothesis a verdict,
lists what is ruled out, the causal chain from trigger to symptom, the next data to collect, an
overall confidence, and links every fix and test to the root cause (R1, …) it addresses.
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
    "FUNCTIONS_INSTRUCTION",
    "VERDICTS",
    "CHAIN_ROLES",
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
- Give root causes ids R1, R2, … (most likely first); every fix and test names the root cause it
  addresses. The causal chain runs from the trigger (what changed first) to the user-facing
  symptom; mark the trigger, the root cause (the defect to fix, where the mechanism lives) and
  the symptoms apart.
- The agent's hypotheses (H1, …) each get a verdict: supported, contradicted or untested, with
  the evidence ids that decide it. Put what the evidence rules out (attempts A1, … included) in
  ruled_out, and what to collect next in next_data. confidence is yours, overall, 0..1.
- Answer with JSON that matches the response schema, nothing else.
"""

# added to the system instruction when the model may call functions (escalation/functions.py)
FUNCTIONS_INSTRUCTION = """You may call query_spans (one read-only SQL SELECT, DuckDB dialect, over the views spans, logs,
traces and service_edges; times are int64 ns) and get_trace (one trace as a span tree) to check
what the bundle does not show: at most {max_calls} calls, each result cut to {max_chars:,} characters
and redacted as the bundle is. Each result has an id (Q1, Q2, …) you cite like an evidence id.
Call only when a figure you need is missing; then answer with the JSON."""

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
        "Analysis type: hypothesis_test. The agent's hypotheses (H1, …) are what to judge: for each, "
        "say whether the evidence supports it, contradicts it or leaves it untested, and which "
        "evidence ids decide it. Use the code execution tool to check arithmetic on the figures "
        "(rates, percentiles, timings) rather than estimating. Propose the cheapest experiment that "
        "would settle what remains open (next_data)."
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

_EVIDENCE = {**_STRS, "description": "Evidence ids from the bundle (E3) or function results (Q1)."}
VERDICTS = ("supported", "contradicted", "untested")
CHAIN_ROLES = ("trigger", "root_cause", "propagation", "symptom")

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "OBJECT",
    "properties": {
        "summary": {"type": "STRING", "description": "Two or three sentences: what is wrong and why."},
        "confidence": {"type": "NUMBER", "description": "Overall confidence in the top root cause, 0..1."},
        "root_causes": {
            "type": "ARRAY",
            "description": "Ranked, most likely first.",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "id": {"type": "STRING", "description": "R1, R2, … in rank order."},
                    "title": _STR,
                    "service": _STR,
                    "operation": _STR,
                    "mechanism": _STR,
                    "confidence": {"type": "NUMBER", "description": "0..1"},
                    "explanation": _STR,
                    "evidence": _EVIDENCE,
                },
                "required": ["id", "title", "confidence", "explanation", "evidence"],
            },
        },
        "causal_chain": {
            "type": "ARRAY",
            "description": "From the trigger to the user-facing symptom, in order.",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "role": {"type": "STRING", "enum": list(CHAIN_ROLES)},
                    "service": _STR,
                    "operation": _STR,
                    "description": _STR,
                    "evidence": _EVIDENCE,
                },
                "required": ["role", "description", "evidence"],
            },
        },
        "hypotheses": {
            "type": "ARRAY",
            "description": "A verdict on each of the agent's hypotheses (H1, …), in their order.",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "id": _STR,
                    "verdict": {"type": "STRING", "enum": list(VERDICTS)},
                    "explanation": _STR,
                    "evidence": _EVIDENCE,
                },
                "required": ["id", "verdict", "explanation", "evidence"],
            },
        },
        "ruled_out": {
            "type": "ARRAY",
            "description": "Approaches and explanations the evidence rules out (attempts A1, … too).",
            "items": {
                "type": "OBJECT",
                "properties": {"what": _STR, "why": _STR, "evidence": _EVIDENCE},
                "required": ["what", "why"],
            },
        },
        "fixes": {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "root_cause": {"type": "STRING", "description": "The id of the root cause it fixes."},
                    "description": _STR,
                    "files": _STRS,
                    "risk": _STR,
                },
                "required": ["root_cause", "description"],
            },
        },
        "tests_to_run": {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "root_cause": {"type": "STRING", "description": "The id of the root cause it checks."},
                    "description": _STR,
                    "command": _STR,
                    "expected": _STR,
                },
                "required": ["root_cause", "description"],
            },
        },
        "next_data": {
            "type": "ARRAY",
            "description": "What to collect next to settle what is open, and why.",
            "items": {
                "type": "OBJECT",
                "properties": {"what": _STR, "why": _STR, "how": _STR},
                "required": ["what", "why"],
            },
        },
        "open_questions": _STRS,
    },
    "required": [
        "summary",
        "confidence",
        "root_causes",
        "causal_chain",
        "hypotheses",
        "ruled_out",
        "fixes",
        "tests_to_run",
        "next_data",
        "open_questions",
    ],
}


def check_analysis_type(analysis_type: str) -> str:
    if analysis_type not in ANALYSIS_TYPES:
        raise BadRequest(f"unknown analysis type {analysis_type!r}: use one of {', '.join(ANALYSIS_TYPES)}")
    return analysis_type


def analysis_instruction(analysis_type: str) -> str:
    return ANALYSIS_INSTRUCTIONS[check_analysis_type(analysis_type)]
