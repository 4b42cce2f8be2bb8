"""Multi-turn escalations: start, continue, finalize, status, and a list to resume one after a reset."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from mcp_server.tools import spec
from mcp_server.tools.base import (
    CursorArg,
    DatasetArg,
    DocPage,
    JsonObject,
    JsonObjects,
    Page,
    ServicesArg,
    TimeArg,
    document,
    paged,
    structured,
)
from mcp_server.tools.escalation import ANALYSIS_DOC, AnalysisType, ClaudeContext, build_request

__all__ = [
    "TOOLS",
    "start_conversation",
    "continue_conversation",
    "finalize_conversation",
    "get_conversation_status",
    "list_conversations",
]

SessionArg = Annotated[str, Field(description="see list_conversations")]


class TurnOut(BaseModel):
    # also provider, model, cost_usd, escalation_id, bundle_path
    session_id: str
    status: str = Field(description="ok or failed (retry: empty message)")
    analysis: JsonObject = Field(description=ANALYSIS_DOC)
    checked_by_model: bool
    turns_left: int
    warnings: list[str]
    page: DocPage


class SummaryOut(BaseModel):
    # also session_id, summary_format, turns, cost_usd
    summary_markdown: str
    analysis: JsonObject = Field(description="root causes merged over all turns; " + ANALYSIS_DOC)
    warnings: list[str]
    page: DocPage


class StatusOut(BaseModel):
    # also session_id, dataset, analysis_type, provider, model, question, created_at, updated_at,
    # total_tokens, cost_usd
    state: str = Field(description="active, finalized or expired")
    turns: int
    failed_turns: int
    max_turns: int
    expires_at: str


class ConversationList(BaseModel):
    conversations: JsonObjects = Field(description="as get_conversation_status")
    page: Page


def _turn(turn: Any) -> dict[str, Any]:
    d = turn.to_dict()
    esc = d.pop("escalation", None) or {}
    for drop in ("report_markdown", "usage", "question", "latency_s"):
        d.pop(drop, None)
    # a first turn repeats its escalation's warnings: each once, in order
    d["warnings"] = list(dict.fromkeys([*(esc.get("warnings") or []), *(d.get("warnings") or [])]))
    d["escalation_id"], d["bundle_path"] = esc.get("escalation_id"), esc.get("bundle_path")
    return d


async def _in_thread(fn: Any, *args: Any) -> Any:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(fn, *args)


async def start_conversation(
    claude_context: ClaudeContext,
    analysis_type: AnalysisType = "cross_system",
    initial_question: str | None = None,
    dataset: DatasetArg | None = None,
    start: TimeArg = None,
    end: TimeArg = None,
    services: ServicesArg = None,
) -> Annotated[CallToolResult, TurnOut]:
    """Start a multi-turn analysis over escalate_analysis's evidence; answers initial_question
    (default: stuck_description). Follow up with continue_conversation, end with
    finalize_conversation; sessions survive restarts (list_conversations)."""
    req = build_request(
        question=initial_question,
        context=claude_context,
        analysis_type=analysis_type,
        dataset=dataset,
        start=start,
        end=end,
        services=services,
        time_budget_seconds=None,
    )
    from escalation.api import start_conversation as start_

    return document(_turn(await _in_thread(start_, req)), "start_conversation")


async def continue_conversation(
    session_id: SessionArg,
    message: Annotated[str, Field(description="follow-up or new finding; empty retries a failed turn")],
) -> Annotated[CallToolResult, TurnOut]:
    """Ask a follow-up: the model keeps the evidence and earlier answers and updates its ranked
    root causes. status=failed (the model call failed): call again with an empty message to retry."""
    from escalation.api import continue_conversation as continue_

    return document(_turn(await _in_thread(continue_, session_id, message)), "continue_conversation")


async def finalize_conversation(
    session_id: SessionArg,
    summary_format: Literal["detailed", "concise", "actionable"] = "detailed",
) -> Annotated[CallToolResult, SummaryOut]:
    """Close a conversation and get its summary: detailed (root causes, fixes, tests, questions),
    concise or actionable (next steps in order); root causes merged over all turns."""
    from escalation.api import finalize_conversation as finalize_

    d = (await _in_thread(finalize_, session_id, summary_format)).to_dict()
    d["warnings"] = list(d.get("warnings") or [])
    return document(d, "finalize_conversation")


def get_conversation_status(session_id: SessionArg) -> Annotated[CallToolResult, StatusOut]:
    """State of one conversation (active, finalized, expired), turns used and left, cost: check it
    before continuing a conversation you did not start here."""
    from escalation.api import conversation_status

    return structured(conversation_status(session_id).to_dict())


def list_conversations(
    state: Literal["active", "finalized", "expired"] | None = None,
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, ConversationList]:
    """List escalation conversations, newest first, to resume one after your context was cleared
    (continue_conversation with its session_id). Paged: page.returned_count vs total_count,
    next_cursor."""

    def build() -> dict[str, Any]:
        from escalation.api import list_conversations as list_

        rows = [c.to_dict() for c in list_()]
        return {"conversations": [c for c in rows if state is None or c["state"] == state]}

    return paged(cursor, "conversations", "list_conversations", build, {"state": state})


TOOLS = [
    spec(start_conversation, "Start a conversation", read_only=False, idempotent=False, open_world=True),
    spec(
        continue_conversation, "Continue a conversation", read_only=False, idempotent=False, open_world=True
    ),
    spec(finalize_conversation, "Finalize a conversation", read_only=False, idempotent=False),
    spec(get_conversation_status, "Conversation status", read_only=True, idempotent=True),
    spec(list_conversations, "List conversations", read_only=True, idempotent=True),
]
