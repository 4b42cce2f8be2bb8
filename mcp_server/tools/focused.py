"""The seed's focused analyses, each a thin wrapper over escalation with its own schema:
trace_execution_path, hypothesis_test, cross_system_impact, performance_bottleneck.

Each turns its arguments into the question, the code scope and the analysis type of one
escalation; the answer is escalate_analysis's. What the agent already holds goes into the request's
context as its partial findings, which the bundle numbers as hypotheses (H1, …) for the model, or
the offline report, to judge against the evidence: the hypothesis of hypothesis_test first, a code
path's suspected issues, and `partial_findings` (every focused tool takes them).
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from mcp_server.tools import spec
from mcp_server.tools.base import DatasetArg, TimeArg, document
from mcp_server.tools.escalation import (
    DEFAULT_TIME_BUDGET_S,
    ClaudeContext,
    CodeScopeIn,
    EscalationOut,
    build_request,
    entry_point_text,
    run_escalation,
)

__all__ = [
    "TOOLS",
    "trace_execution_path",
    "hypothesis_test",
    "cross_system_impact",
    "performance_bottleneck",
]


# what the agent found so far, judged against the data
FindingsArg = list[str] | None


class EntryPoint(BaseModel):
    file: str
    line: int | None = None
    function_name: str | None = None


class ChangeScope(BaseModel):
    files: list[str]
    service_names: list[str] = []


class CodePath(BaseModel):
    entry_point: EntryPoint
    suspected_issues: list[str] = []


async def _escalate(
    tool: str,
    question: str,
    analysis_type: str,
    scope: CodeScopeIn,
    dataset: str | None,
    start: str | None,
    end: str | None,
    *,
    depth_level: int = 3,
    findings: list[str] | None = None,
) -> CallToolResult:
    context = ClaudeContext(stuck_description=question, partial_findings=findings or [], code_scope=scope)
    req = build_request(
        question=question,
        context=context,
        analysis_type=analysis_type,
        dataset=dataset,
        start=start,
        end=end,
        depth_level=depth_level,
        time_budget_seconds=DEFAULT_TIME_BUDGET_S,
    )
    return document(await run_escalation(req, DEFAULT_TIME_BUDGET_S), tool)


def _ep(ep: EntryPoint) -> str:
    return entry_point_text(ep.model_dump(exclude_none=True))


async def trace_execution_path(
    entry_point: EntryPoint,
    max_depth: Annotated[int, Field(ge=1, le=50)] = 10,
    include_data_flow: bool = True,
    partial_findings: FindingsArg = None,
    dataset: DatasetArg | None = None,
    start: TimeArg = None,
    end: TimeArg = None,
) -> Annotated[CallToolResult, EscalationOut]:
    """Follow a request from an entry point through the code and the traces (which function runs
    on which service, in what order, how long) and mark where execution departs from what the
    code intends. As escalate_analysis with analysis_type execution_trace."""
    where = _ep(entry_point)
    question = (
        f"Trace the execution path from {where}, following calls up to {max_depth} levels deep"
        + (", and track how data flows and is transformed along it" if include_data_flow else "")
        + ". Where does the actual execution depart from what the code intends?"
    )
    scope = CodeScopeIn(files=[entry_point.file], entry_points=[where])
    return await _escalate(
        "trace_execution_path",
        question,
        "execution_trace",
        scope,
        dataset,
        start,
        end,
        findings=partial_findings,
    )


async def hypothesis_test(
    hypothesis: str,
    test_approach: str,
    code_scope: CodeScopeIn | None = None,
    partial_findings: FindingsArg = None,
    dataset: DatasetArg | None = None,
    start: TimeArg = None,
    end: TimeArg = None,
) -> Annotated[CallToolResult, EscalationOut]:
    """Test one theory about the bug against the evidence and the code: supported, refuted or
    undecided, and by which evidence. As escalate_analysis with analysis_type hypothesis_test."""
    question = f"Test this hypothesis: {hypothesis}\nSuggested approach: {test_approach}"
    return await _escalate(
        "hypothesis_test",
        question,
        "hypothesis_test",
        code_scope or CodeScopeIn(),
        dataset,
        start,
        end,
        findings=[hypothesis, *(partial_findings or [])],
    )


async def cross_system_impact(
    change_scope: ChangeScope,
    impact_types: list[Literal["breaking", "performance", "behavioral"]] | None = None,
    partial_findings: FindingsArg = None,
    dataset: DatasetArg | None = None,
    start: TimeArg = None,
    end: TimeArg = None,
) -> Annotated[CallToolResult, EscalationOut]:
    """Which services and calls a change to these files affects across service boundaries, and
    how (breaking, performance, behavioral), from the service graph and traces. As
    escalate_analysis with analysis_type cross_system."""
    kinds = ", ".join(impact_types or ["breaking", "performance", "behavioral"])
    services = f" (services {', '.join(change_scope.service_names)})" if change_scope.service_names else ""
    question = (
        f"What is the {kinds} impact across service boundaries of changing "
        f"{', '.join(change_scope.files)}{services}? Name the callers and calls affected."
    )
    scope = CodeScopeIn(files=change_scope.files, service_names=change_scope.service_names)
    return await _escalate(
        "cross_system_impact", question, "cross_system", scope, dataset, start, end, findings=partial_findings
    )


async def performance_bottleneck(
    code_path: CodePath,
    profile_depth: Annotated[int, Field(ge=1, le=5)] = 3,
    partial_findings: FindingsArg = None,
    dataset: DatasetArg | None = None,
    start: TimeArg = None,
    end: TimeArg = None,
) -> Annotated[CallToolResult, EscalationOut]:
    """Where time goes on a code path: critical path, self time, N+1 fan-out, waits, saturation,
    each cause's share of the added latency; profile_depth: analysis depth. As escalate_analysis
    with analysis_type performance."""
    where = _ep(code_path.entry_point)
    suspects = "; ".join(code_path.suspected_issues)
    question = f"Find the performance bottlenecks on the path starting at {where}." + (
        f" Suspected: {suspects}." if suspects else ""
    )
    scope = CodeScopeIn(files=[code_path.entry_point.file], entry_points=[where])
    return await _escalate(
        "performance_bottleneck",
        question,
        "performance",
        scope,
        dataset,
        start,
        end,
        depth_level=profile_depth,
        findings=[*code_path.suspected_issues, *(partial_findings or [])],
    )


TOOLS = [
    spec(fn, title, read_only=False, idempotent=False, open_world=True)
    for fn, title in (
        (trace_execution_path, "Trace an execution path"),
        (hypothesis_test, "Test a hypothesis"),
        (cross_system_impact, "Cross-system impact"),
        (performance_bottleneck, "Performance bottleneck"),
    )
]
