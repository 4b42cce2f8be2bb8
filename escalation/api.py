"""The Python API of `escalation/`: what the CLI and the MCP tools call. Stable. What is decided
before a model is called lives in `escalation/preparation.py`, shared with conversations.

    escalate(EscalationRequest, deadline=None) -> EscalationResult   (deadline: see ProviderRequest)
    should_escalate(EscalationSignals) -> EscalationDecision
    start_conversation(EscalationRequest) -> ConversationTurn
    continue_conversation(session_id, message) -> ConversationTurn   ("" retries a failed turn)
    finalize_conversation(session_id, summary_format="detailed") -> ConversationSummary
    conversation_status(session_id) -> ConversationStatus
    list_conversations() -> list[ConversationStatus]
    ledger_stats() -> dict

Errors: `escalation.errors` (EscalationError and its subclasses).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from escalation.decide import EscalationDecision, EscalationSignals, EscalationThresholds, should_escalate
from escalation.errors import DatasetUnavailable, ProviderError, ProviderTimeout
from escalation.ledger import LedgerEntry, ledger_stats, new_id, record, record_function_calls
from escalation.preparation import Prepared, dry_run_payload, ledger_entry, prepare, result_of, signals_from
from escalation.providers import get_provider
from escalation.types import (
    AgentContext,
    CodeScope,
    ConversationStatus,
    ConversationSummary,
    ConversationTurn,
    EscalationRequest,
    EscalationResult,
    Window,
)

__all__ = [
    "CodeScope",
    "AgentContext",
    "EscalationRequest",
    "EscalationResult",
    "EscalationSignals",
    "EscalationThresholds",
    "EscalationDecision",
    "ConversationTurn",
    "ConversationStatus",
    "ConversationSummary",
    "Window",
    "escalate",
    "escalate_within",
    "timeout_warning",
    "should_escalate",
    "should_escalate_for",
    "start_conversation",
    "continue_conversation",
    "finalize_conversation",
    "conversation_status",
    "list_conversations",
    "ledger_stats",
]


def should_escalate_for(
    dataset: str | None,
    *,
    services: tuple[str, ...] = (),
    window: Window | None = None,
    files_involved: int = 0,
    attempted_approaches: int = 0,
) -> EscalationDecision:
    """should_escalate with the dataset's own figures (trace bytes, services, time span), as an
    escalation of that dataset judges them; DatasetUnavailable when it cannot be opened."""
    described: dict[str, Any] = {}
    sources: list[Any] = []
    if dataset:
        from ingest.dataset import open_handle
        from ingest.errors import IngestError

        try:
            described = open_handle(dataset).manifest
        except IngestError as exc:
            raise DatasetUnavailable.of(exc) from None
        sources = list(described.get("sources") or [])
    return should_escalate(
        signals_from(described, sources, tuple(services), window, files_involved, attempted_approaches)
    )


def escalate(req: EscalationRequest, *, deadline: float | None = None) -> EscalationResult:
    """Build the bundle, ask the provider (unless dry_run), record the ledger row. `deadline`
    (time.monotonic()): the caller stops waiting then, and so does the model call."""
    p = prepare(req, deadline=deadline)
    if req.dry_run:
        payload = dry_run_payload(p)
        record(ledger_entry(p, req, "dry_run", "dry_run"))
        return result_of(p, req, None, 0.0, payload)
    return _ask(p, req)


def timeout_warning(budget_s: float) -> str:
    return (
        f"the model did not answer within the time budget ({budget_s:g} s): this is the offline report "
        "from the same evidence; ask again with a larger budget for the model's analysis"
    )


def escalate_within(req: EscalationRequest, budget_s: float | None) -> EscalationResult:
    """escalate(req) with `budget_s` seconds in all for the model: when it has not answered by then
    (its call is cut at the deadline and no retry starts after it), the offline report from the
    same bundle, marked partial, with a warning that says so. The CLI and the MCP tools share it."""
    if budget_s is None or req.dry_run:
        return escalate(req)
    deadline = time.monotonic() + budget_s
    p = prepare(req, deadline=deadline)
    try:
        return _ask(p, req)
    except ProviderTimeout:
        pass  # recorded as failed in the ledger by _ask
    offline = get_provider("offline")
    p = dataclasses.replace(
        p, escalation_id=new_id(), provider_name="offline", provider=offline, model=offline.model
    )
    result = _ask(p, req)
    return dataclasses.replace(result, partial=True, warnings=(timeout_warning(budget_s), *result.warnings))


def _ask(p: Prepared, req: EscalationRequest) -> EscalationResult:
    """Ask the prepared provider; the ledger row either way."""
    assert p.provider is not None
    started = time.monotonic()
    functions = p.request.functions if p.provider_name == "gemini" else None
    try:
        reply = p.provider.generate(p.request)
    except ProviderError as exc:
        exc.bundle_path = p.bundle_path
        entry = ledger_entry(
            p,
            req,
            "escalation",
            "failed",
            latency_s=time.monotonic() - started,
            error=str(exc),
            attempts=exc.attempts,
        )
        record(entry)
        _record_calls(entry, functions)
        raise
    finally:
        if functions is not None:
            functions.close()
    latency = time.monotonic() - started
    result = result_of(p, req, reply, latency)
    entry = ledger_entry(
        p,
        req,
        "escalation",
        "ok",
        input_tokens=result.usage["input_tokens"],
        output_tokens=result.usage["output_tokens"],
        thinking_tokens=result.usage["thinking_tokens"],
        cost_usd=result.cost_usd,
        latency_s=latency,
        attempts=reply.attempts,
    )
    record(entry)
    record_function_calls(entry, reply.function_calls)
    return result


def _record_calls(entry: LedgerEntry, functions: Any) -> None:
    """The functions a failed turn called before it failed: each a ledger row too."""
    calls = getattr(functions, "calls", None)
    if calls:
        record_function_calls(entry, [c.to_dict() for c in calls])


# conversations: implemented in escalation.conversations (imported lazily to keep this module small)


def start_conversation(req: EscalationRequest) -> ConversationTurn:
    from escalation.conversations import start

    return start(req)


def continue_conversation(session_id: str, message: str) -> ConversationTurn:
    from escalation.conversations import continue_

    return continue_(session_id, message)


def finalize_conversation(session_id: str, summary_format: str = "detailed") -> ConversationSummary:
    from escalation.conversations import finalize

    return finalize(session_id, summary_format)


def conversation_status(session_id: str) -> ConversationStatus:
    from escalation.conversations import status

    return status(session_id)


def list_conversations() -> list[ConversationStatus]:
    from escalation.conversations import list_all

    return list_all()
