"""The public types of `escalation/` (re-exported by `escalation.api` and the package).

Frozen dataclasses; `to_dict()` gives the JSON shape `dcr … --json` and the MCP tools print.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from correlate.types import Window

__all__ = [
    "ANALYSIS_TYPES",
    "SUMMARY_FORMATS",
    "CodeScope",
    "AgentContext",
    "EscalationRequest",
    "EscalationResult",
    "ConversationTurn",
    "ConversationStatus",
    "ConversationSummary",
    "Window",
]

ANALYSIS_TYPES = ("execution_trace", "cross_system", "performance", "hypothesis_test")
SUMMARY_FORMATS = ("detailed", "concise", "actionable")


class _Dict:
    # every subclass is a dataclass: this declaration (no value) tells the checker what asdict() needs
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CodeScope(_Dict):
    files: tuple[str, ...] = ()
    entry_points: tuple[str, ...] = ()  # "path/to/file.py:func" or a function name
    service_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentContext(_Dict):
    stuck_description: str = ""
    attempted_approaches: tuple[str, ...] = ()
    partial_findings: tuple[str, ...] = ()
    code_scope: CodeScope = CodeScope()


@dataclass(frozen=True)
class EscalationRequest(_Dict):
    question: str
    dataset: str | None = None
    window: Window | None = None  # None: the dataset's whole time range
    baseline: Window | None = None  # None: correlate picks the time before the window
    services: tuple[str, ...] = ()
    context: AgentContext = AgentContext()
    analysis_type: str = "cross_system"  # one of ANALYSIS_TYPES
    depth_level: int = 3  # 1..5: thinking effort
    files: tuple[str, ...] = ()  # extra code files to include (same rules as code_scope.files)
    provider: str | None = None  # "gemini" | "offline" | "fake"; None: gemini with a key, else offline
    time_budget_seconds: float | None = None  # the model call's timeout
    dry_run: bool = False  # build the bundle, contact nothing, return what would be sent
    budget_tokens: int | None = None  # None: DCR_BUDGET_TOKENS, else sized to the model


@dataclass(frozen=True)
class EscalationResult(_Dict):
    escalation_id: str
    provider: str
    model: str
    analysis_type: str
    dataset: str | None
    question: str
    analysis: dict[str, Any]  # the structured answer (prompts.RESPONSE_SCHEMA shape)
    report_markdown: str
    checked_by_model: bool  # False for the offline report
    bundle_tokens: int
    bundle_sections: dict[str, int]  # section key -> tokens, in bundle order
    token_method: str  # "provider" (countTokens) or "estimate"
    budget_tokens: int
    cut: tuple[str, ...]  # what did not fit, one line each
    redactions: dict[str, int]  # kind -> count (never the values)
    partial: bool  # True when something was cut or an input was unavailable
    warnings: tuple[str, ...]
    usage: dict[str, int]  # input_tokens, output_tokens, thinking_tokens
    cost_usd: float
    latency_s: float
    bundle_path: str | None  # the saved bundle (what was, or would be, sent)
    dry_run_payload: dict[str, Any] | None = None  # for dry runs: the exact request body
    session_id: str | None = None  # set for conversation starts
    # the functions the model called within its turn (query_spans, get_trace): id Q1…, name,
    # redacted arguments, outcome, rows, characters, whether cut (each also a ledger row)
    function_calls: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ConversationTurn(_Dict):
    session_id: str
    turn: int  # 1 for the start, 2… for continues
    question: str
    status: str  # "ok" or "failed"
    analysis: dict[str, Any]
    report_markdown: str
    provider: str
    model: str
    checked_by_model: bool
    usage: dict[str, int]
    cost_usd: float
    latency_s: float
    turns_left: int
    warnings: tuple[str, ...] = ()
    escalation: EscalationResult | None = None  # the bundle facts, on the first turn


@dataclass(frozen=True)
class ConversationStatus(_Dict):
    session_id: str
    state: str  # "active", "finalized" or "expired"
    dataset: str | None
    analysis_type: str
    provider: str
    model: str
    question: str  # the opening question
    created_at: str  # ISO-8601 UTC
    updated_at: str
    expires_at: str
    turns: int  # completed model turns
    failed_turns: int  # user turns whose model call failed (retry with continue)
    max_turns: int
    total_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class ConversationSummary(_Dict):
    session_id: str
    summary_format: str  # one of SUMMARY_FORMATS
    summary_markdown: str
    analysis: dict[str, Any]  # the last structured answer, root causes merged over turns
    turns: int
    cost_usd: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
