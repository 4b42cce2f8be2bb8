"""Everything decided before a model is called, shared by one-shot escalations and conversations.

    prepare(EscalationRequest, deadline=None) -> Prepared   validate, pick the provider, build and save
                                                            the bundle, judge the reasons
    ledger_entry(Prepared, …) -> LedgerEntry                the ledger row of an ask
    result_of(Prepared, …) -> EscalationResult              the result the caller gets
    dry_run_payload(Prepared) -> dict                       what would be sent

`escalation/api.py` (one-shot) and `escalation/conversations.py` (multi-turn) both build on it;
neither imports the other's internals.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any

from escalation.bundle import Bundle, BundleBuilder
from escalation.decide import EscalationSignals, should_escalate
from escalation.errors import BadRequest, DatasetUnavailable, ProviderError
from escalation.functions import DatasetFunctions
from escalation.ledger import LedgerEntry, new_id
from escalation.models import DEFAULT_MODEL, cost_usd, default_budget_tokens, selected_model
from escalation.prompts import (
    FUNCTIONS_INSTRUCTION,
    RESPONSE_SCHEMA,
    SYSTEM_INSTRUCTION,
    analysis_instruction,
    check_analysis_type,
)
from escalation.providers import PROVIDERS, Message, Provider, ProviderReply, ProviderRequest, get_provider
from escalation.providers import default_provider_name as _default_provider
from escalation.redact import Redactor
from escalation.report import render_markdown
from escalation.types import EscalationRequest, EscalationResult, Window
from ingest.dataset import dcr_home

__all__ = [
    "CODE_EXECUTION_TYPES",
    "dataset_functions",
    "system_instruction",
    "DEFAULT_TIMEOUT_S",
    "Prepared",
    "prepare",
    "signals_from",
    "ledger_entry",
    "result_of",
    "dry_run_payload",
]

CODE_EXECUTION_TYPES = ("hypothesis_test", "execution_trace")
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Prepared:
    """Everything decided before the model is called (shared by escalate and conversations)."""

    escalation_id: str
    provider_name: str
    provider: Provider | None  # None for dry runs: nothing is contacted
    model: str
    bundle: Bundle
    request: ProviderRequest
    bundle_path: str
    reasons: tuple[str, ...]
    timeout_s: float


def _validate(req: EscalationRequest) -> None:
    if not isinstance(req.question, str) or not req.question.strip():
        raise BadRequest("the question is empty: say what you want to know")
    check_analysis_type(req.analysis_type)
    if not 1 <= int(req.depth_level) <= 5:
        raise BadRequest(f"depth_level must be 1..5, got {req.depth_level}")
    if req.provider is not None and req.provider not in PROVIDERS:
        raise BadRequest(f"unknown provider {req.provider!r}: use one of {', '.join(PROVIDERS)}")
    if req.budget_tokens is not None and req.budget_tokens < 1000:
        raise BadRequest(f"budget_tokens must be at least 1000, got {req.budget_tokens}")
    if req.window is not None and req.window.end_ns <= req.window.start_ns:
        raise BadRequest("the window ends before it starts: check its start and end")


def _budget(req: EscalationRequest, model: str) -> int:
    if req.budget_tokens:
        return int(req.budget_tokens)
    env = os.environ.get("DCR_BUDGET_TOKENS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise BadRequest(f"DCR_BUDGET_TOKENS={env!r} is not a whole number of tokens") from None
        if value < 1000:
            raise BadRequest(f"DCR_BUDGET_TOKENS must be at least 1000, got {value}")
        return value
    return default_budget_tokens(model)


def _open_session(name: str) -> Any:
    from correlate import CorrelateError, open_dataset

    try:
        return open_dataset(name)
    except CorrelateError as exc:
        raise DatasetUnavailable.of(exc) from None


def signals_from(
    described: dict[str, Any],
    sources: list[Any],
    services: tuple[str, ...],
    window: Window | None,
    files_involved: int,
    attempted_approaches: int,
    stuck_description: str = "",
) -> EscalationSignals:
    """The figures the thresholds judge, from a dataset's description (its services and time
    range) and sources (their sizes): the services given, else the dataset's; the window's span,
    else the dataset's."""
    services = services or tuple(described.get("services") or ())
    span_s = (window.end_ns - window.start_ns) / 1e9 if window else 0.0
    tr = described.get("time_range") or {}
    if not span_s and tr.get("start_ns") is not None and tr.get("end_ns") is not None:
        span_s = (tr["end_ns"] - tr["start_ns"]) / 1e9
    return EscalationSignals(
        files_involved=files_involved,
        trace_bytes=sum(int(s.get("size") or 0) for s in sources if isinstance(s, dict)),
        services_involved=len(services) if not isinstance(services, str) else 1,
        time_span_s=span_s,
        attempted_approaches=attempted_approaches,
        stuck_description=stuck_description,
    )


def _reasons(req: EscalationRequest, bundle: Bundle) -> tuple[str, ...]:
    signals = signals_from(
        bundle.facts.get("summary") or {},
        list(bundle.facts.get("sources") or []),
        tuple(req.services),
        req.window,
        len(set(req.files) | set(req.context.code_scope.files)),
        len(req.context.attempted_approaches),
        req.context.stuck_description,
    )
    decision = should_escalate(signals)
    return decision.reasons or ("asked by the agent (no threshold crossed)",)


def dataset_functions(dataset: str | None) -> DatasetFunctions | None:
    """The functions the model may call over `dataset` within a turn (None without a dataset, or
    with DCR_FUNCTION_CALLS=0)."""
    if not dataset:
        return None
    runner = DatasetFunctions(dataset)
    return runner if runner.max_calls > 0 else None


def system_instruction(analysis_type: str, functions: DatasetFunctions | None = None) -> str:
    text = f"{SYSTEM_INSTRUCTION}\n{analysis_instruction(analysis_type)}"
    if functions is not None:
        text += "\n" + FUNCTIONS_INSTRUCTION.format(
            max_calls=functions.max_calls, max_chars=functions.max_chars
        )
    return text


def _user_message(bundle: Bundle, question: str) -> str:
    # the question is also in the bundle's first section, where it was counted; redact it again here
    return f"{bundle.text()}\n\n## The question to answer\n{Redactor().text(question)}"


def _save(escalation_id: str, request: ProviderRequest, queries: tuple[str, ...] = ()) -> str:
    """The request as it is sent, `<id>.md`, and beside it the queries behind its figures,
    `<id>.queries.sql` (kept on this machine, not sent: the model cannot run them)."""
    folder = dcr_home() / "escalations"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{escalation_id}.md"
    text = [f"<!-- system instruction -->\n{request.system_instruction}"]
    text += [f"<!-- {m.role} -->\n{m.text}" for m in request.messages]
    _write(path, "\n\n".join(text) + "\n")
    if queries:
        redactor = Redactor()
        _write(
            folder / f"{escalation_id}.queries.sql",
            f"-- the queries behind the figures of escalation {escalation_id} (run with 'dcr sql DATASET …')\n\n"
            + "\n\n".join(f"{redactor.text(q.strip())};" for q in queries)
            + "\n",
        )
    return str(path)


def _write(path: Any, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def prepare(req: EscalationRequest, *, deadline: float | None = None) -> Prepared:
    """Validate, pick the provider, build and save the bundle; contacts a model only to count tokens
    (and not past `deadline`, a time.monotonic() after which the caller no longer waits)."""
    _validate(req)
    name = req.provider or _default_provider()
    provider = None if req.dry_run else get_provider(name)  # MissingApiKey before any work
    model = (
        provider.model
        if provider is not None
        else (selected_model() if name == "gemini" else get_provider(name).model)
    )
    sizing_model = model if name == "gemini" else (selected_model() or DEFAULT_MODEL)
    timeout_s = float(req.time_budget_seconds or os.environ.get("DCR_GEMINI_TIMEOUT_S") or DEFAULT_TIMEOUT_S)
    count_warnings: list[str] = []
    counter = None
    if provider is not None and hasattr(provider, "count_text"):

        def counter(text: str) -> int | None:
            left = 60.0 if deadline is None else deadline - time.monotonic()
            if left <= 0.1:
                return None  # out of time: estimate
            try:
                return provider.count_text(text, min(timeout_s, 60.0, left))
            except ProviderError as exc:
                count_warnings.append(f"countTokens failed, token counts are estimates: {exc}")
                return None

    session = _open_session(req.dataset) if req.dataset else None
    try:
        bundle = BundleBuilder(
            req, session, budget_tokens=_budget(req, sizing_model), counter=counter
        ).build()
    finally:
        if session is not None and hasattr(session, "close"):
            session.close()
    if count_warnings:
        bundle = dataclasses.replace(bundle, warnings=bundle.warnings + tuple(dict.fromkeys(count_warnings)))
    functions = dataset_functions(req.dataset)
    request = ProviderRequest(
        system_instruction=system_instruction(req.analysis_type, functions),
        messages=(Message("user", _user_message(bundle, req.question.strip())),),
        analysis_type=req.analysis_type,
        depth_level=int(req.depth_level),
        response_schema=RESPONSE_SCHEMA,
        code_execution=req.analysis_type in CODE_EXECUTION_TYPES,
        timeout_s=timeout_s,
        bundle_facts=bundle.facts,
        deadline=deadline,
        functions=functions,
    )
    eid = new_id()
    return Prepared(
        eid,
        name,
        provider,
        model,
        bundle,
        request,
        _save(eid, request, bundle.queries),
        _reasons(req, bundle),
        timeout_s,
    )


def ledger_entry(p: Prepared, req: EscalationRequest, kind: str, outcome: str, **kw: Any) -> LedgerEntry:
    b = p.bundle
    return LedgerEntry(
        kind=kind,
        provider=p.provider_name,
        model=p.model,
        outcome=outcome,
        id=kw.pop("id", p.escalation_id),
        dataset=req.dataset,
        analysis_type=req.analysis_type,
        reasons=p.reasons,
        bundle_tokens=b.tokens,
        bundle_sections=b.section_tokens(),
        token_method=b.token_method,
        cut=len(b.cut),
        redactions=b.redactions,
        bundle_path=p.bundle_path,
        **kw,
    )


def result_of(
    p: Prepared,
    req: EscalationRequest,
    reply: ProviderReply | None,
    latency_s: float,
    dry_run_payload: dict[str, Any] | None = None,
    session_id: str | None = None,
) -> EscalationResult:
    b = p.bundle
    usage = reply.usage.to_dict() if reply else {"input_tokens": 0, "output_tokens": 0, "thinking_tokens": 0}
    analysis = reply.analysis if reply else {}
    checked = reply.checked_by_model if reply else False
    model = reply.model if reply else p.model
    cost = (
        cost_usd(model, usage["input_tokens"], usage["output_tokens"], usage["thinking_tokens"])
        if p.provider_name == "gemini"
        else 0.0
    )  # offline and fake cost nothing
    md = (
        render_markdown(
            analysis,
            provider=p.provider_name,
            model=model,
            checked_by_model=checked,
            warnings=b.warnings,
            cut=b.cut,
            function_calls=reply.function_calls,
        )
        if reply
        else ""
    )
    return EscalationResult(
        escalation_id=p.escalation_id,
        provider=p.provider_name,
        model=model,
        analysis_type=req.analysis_type,
        # the question as the model got it: printed and saved results hold no secret either
        dataset=req.dataset,
        question=Redactor().text(req.question),
        analysis=analysis,
        report_markdown=md,
        checked_by_model=checked,
        bundle_tokens=b.tokens,
        bundle_sections=b.section_tokens(),
        token_method=b.token_method,
        budget_tokens=b.budget_tokens,
        cut=b.cut,
        redactions=b.redactions,
        partial=b.partial,
        warnings=b.warnings,
        usage=usage,
        cost_usd=cost,
        latency_s=round(latency_s, 6),
        bundle_path=p.bundle_path,
        dry_run_payload=dry_run_payload,
        session_id=session_id,
        function_calls=tuple(reply.function_calls) if reply else (),
    )


def dry_run_payload(p: Prepared) -> dict[str, Any]:
    """Exactly what would be sent (the generateContent body after redaction) and its token count."""
    from escalation.providers.gemini import request_body
    from escalation.tokens import estimate_tokens

    body = request_body(p.request, p.model if p.provider_name == "gemini" else selected_model())
    tokens = estimate_tokens(p.request.system_instruction) + sum(
        estimate_tokens(m.text) for m in p.request.messages
    )
    return {
        **body,
        "provider": p.provider_name,
        "model": p.model,
        "token_count": tokens,
        "token_method": "estimate",
        "note": "dry run: nothing was sent"
        + (
            ""
            if p.provider_name == "gemini"
            else f"; provider {p.provider_name} sends nothing, this is what gemini would receive"
        ),
    }
