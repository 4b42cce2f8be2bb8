"""Escalation tools: should_escalate and escalate_analysis, and what the conversation and focused
tools share with them (the seed's claude_context, building an EscalationRequest, the time budget).

The time budget is the package's (escalation.api.escalate_within): the model call gets the
deadline and no retry starts after it; past it the answer is the offline report built from the
same evidence, marked partial, with a warning that names time_budget_seconds here.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from mcp_server.tools import spec
from mcp_server.tools.base import (
    DatasetArg,
    DocPage,
    JsonObject,
    ServicesArg,
    TimeArg,
    ToolError,
    document,
    structured,
)
from mcp_server.tools.correlation import HtmlReportArg

__all__ = [
    "TOOLS",
    "ClaudeContext",
    "AnalysisType",
    "EscalationOut",
    "should_escalate",
    "escalate_analysis",
    "build_request",
    "run_escalation",
    "entry_point_text",
]

AnalysisType = Literal["execution_trace", "cross_system", "performance", "hypothesis_test"]
DEFAULT_TIME_BUDGET_S = 60.0
TIMEOUT_WARNING = (
    "the model did not answer within time_budget_seconds: this is the offline report from the same "
    "evidence; call again with a larger time_budget_seconds for the model's analysis"
)
TIMEOUT_PREFIX = "the model did not answer within the time budget"  # escalation.api.timeout_warning
ANALYSIS_DOC = "summary, root_causes, fixes, tests_to_run, open_questions"


class CodeScopeIn(BaseModel):
    files: list[str] = Field(default=[], description="under DCR_CODE_ROOTS")
    entry_points: list[str | dict[str, Any]] = Field(
        default=[], description="'path:function', 'path:line' or {file, line, function_name}"
    )
    service_names: list[str] = []


class ClaudeContext(BaseModel):
    # What the agent knows; the escalated model is told not to repeat what was tried.

    attempted_approaches: list[str] = []
    partial_findings: list[Any] = []
    stuck_description: str
    code_scope: CodeScopeIn = CodeScopeIn()


class EscalationOut(BaseModel):
    # also escalation_id, provider, model, cut, cost_usd, html_report: named here only what to read
    analysis: JsonObject = Field(description=ANALYSIS_DOC)
    checked_by_model: bool
    partial: bool
    warnings: list[str]
    bundle_path: str | None
    page: DocPage


class DecisionOut(BaseModel):
    # also signals, thresholds
    escalate: bool
    reasons: list[str]
    evidence: str = Field(description="clear, unclear, none, unknown")
    against: list[str]


def entry_point_text(ep: str | dict[str, Any]) -> str:
    if isinstance(ep, str):
        return ep
    where = ep.get("function_name") or ep.get("line") or ""
    return f"{ep.get('file', '')}:{where}" if ep.get("file") else str(where)


def _finding_text(f: Any) -> str:
    return f if isinstance(f, str) else json.dumps(f, ensure_ascii=False, default=str)


def build_request(
    *,
    question: str | None,
    context: ClaudeContext | None,
    analysis_type: str,
    dataset: str | None = None,
    start: str | None = None,
    end: str | None = None,
    services: list[str] | None = None,
    depth_level: int = 3,
    time_budget_seconds: float | None = DEFAULT_TIME_BUDGET_S,
    files: list[str] | None = None,
) -> Any:
    """An EscalationRequest from tool arguments; ToolError names a bad argument."""
    from escalation.api import AgentContext, CodeScope, EscalationRequest

    ctx = context or ClaudeContext(stuck_description="")
    text = (question or "").strip() or ctx.stuck_description.strip()
    if not text:
        raise ToolError("say what you want to know: give question or claude_context.stuck_description")
    window = None
    if dataset and (start or end):
        from ingest.dataset import open_handle
        from mcp_server.tools.correlation import resolve_window

        window, _ = resolve_window(open_handle(dataset).time_range, start, end)
    scope = ctx.code_scope
    agent = AgentContext(
        stuck_description=ctx.stuck_description,
        attempted_approaches=tuple(ctx.attempted_approaches),
        partial_findings=tuple(_finding_text(f) for f in ctx.partial_findings),
        code_scope=CodeScope(
            files=tuple(scope.files),
            entry_points=tuple(entry_point_text(e) for e in scope.entry_points),
            service_names=tuple(scope.service_names),
        ),
    )
    return EscalationRequest(
        question=text,
        dataset=dataset,
        window=window,
        services=tuple(services or ()),  # code_scope.service_names orders the bundle, never filters it
        context=agent,
        analysis_type=analysis_type,
        depth_level=depth_level,
        files=tuple(files or ()),
        time_budget_seconds=time_budget_seconds,
    )


async def run_escalation(req: Any, budget_s: float | None, *, html: bool = False) -> dict[str, Any]:
    """escalation.escalate_within on a worker thread: the model's answer within `budget_s`, else the
    offline report from the same evidence, marked partial (the policy is the package's). With
    `html`, also the incident as an HTML page with the analysis at its top (`html_report`: its path)."""
    import functools

    import anyio.to_thread

    from escalation.api import escalate_within

    result = await anyio.to_thread.run_sync(functools.partial(escalate_within, req, budget_s))
    out = _result_dict(result)
    if html and req.dataset:
        from escalation.html_report import default_report_path, write_for_escalation

        page = await anyio.to_thread.run_sync(
            functools.partial(write_for_escalation, req, result, default_report_path(req.dataset))
        )
        out["html_report"] = page.path
    if out["partial"] and out["warnings"] and out["warnings"][0].startswith(TIMEOUT_PREFIX):
        out["warnings"][0] = TIMEOUT_WARNING  # named as the agent names it: time_budget_seconds
    return out


def _result_dict(result: Any) -> dict[str, Any]:
    d = result.to_dict()
    for drop in ("report_markdown", "bundle_sections", "dry_run_payload", "usage", "question", "session_id"):
        d.pop(drop, None)
    d["warnings"] = list(d.get("warnings") or [])
    d["cut"] = list(d.get("cut") or [])
    return d


def should_escalate(
    files_involved: Annotated[int, Field(ge=0)] = 0,
    attempted_approaches: Annotated[int, Field(ge=0)] = 0,
    dataset: DatasetArg | None = None,
    services: ServicesArg = None,
    start: TimeArg = None,
    end: TimeArg = None,
) -> Annotated[CallToolResult, DecisionOut]:
    """Is this problem too big for your own context? Any threshold crossed (over 50 files, 100 MB
    of traces, 3 services, 1 h of time span, 5 attempts) is a reason; with a dataset, weighed
    against correlate's evidence for the window: one high-confidence candidate outweighs size.
    escalate=true: call escalate_analysis."""

    def decide() -> dict[str, Any]:
        from escalation.api import should_escalate_for
        from escalation.decide import weigh_evidence

        window = None
        if dataset:
            from ingest.dataset import open_handle
            from mcp_server.tools.correlation import resolve_window

            window, _ = resolve_window(open_handle(dataset).time_range, start, end)
        decision = should_escalate_for(
            dataset,
            services=tuple(services or ()),
            window=window,
            files_involved=files_involved,
            attempted_approaches=attempted_approaches,
        )
        if dataset:
            decision = weigh_evidence(decision, dataset, window, tuple(services or ()))
        return decision.to_dict()

    return structured(decide())


async def escalate_analysis(
    claude_context: ClaudeContext,
    analysis_type: AnalysisType = "cross_system",
    depth_level: Annotated[int, Field(ge=1, le=5, description="1 quick .. 5 deepest")] = 3,
    time_budget_seconds: Annotated[float, Field(ge=1, le=3600)] = DEFAULT_TIME_BUDGET_S,
    question: str | None = None,
    dataset: DatasetArg | None = None,
    start: TimeArg = None,
    end: TimeArg = None,
    html_report: HtmlReportArg = False,
) -> Annotated[CallToolResult, EscalationOut]:
    """Hand a problem you are stuck on to a large-context model (Gemini; without a key an offline
    report) with the window's evidence (candidates, traces, logs, graph) and the code in
    code_scope, after correlate and your own attempts. Past time_budget_seconds: the offline
    report, partial=true."""
    req = build_request(
        question=question,
        context=claude_context,
        analysis_type=analysis_type,
        dataset=dataset,
        start=start,
        end=end,
        depth_level=depth_level,
        time_budget_seconds=time_budget_seconds,
    )
    return document(await run_escalation(req, time_budget_seconds, html=html_report), "escalate_analysis")


TOOLS = [
    spec(should_escalate, "Should I escalate?", read_only=True, idempotent=True),
    spec(escalate_analysis, "Escalate the analysis", read_only=False, idempotent=False, open_world=True),
]
