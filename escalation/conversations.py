"""Multi-turn escalations, stored in SQLite so they survive a restart.

A session keeps its bundle (redacted, as sent), system instruction, model and every turn.
- TTL: `DCR_CONVERSATION_TTL_S` (default 86400) after the last activity;
- at most `DCR_CONVERSATION_MAX_TURNS` model turns (default 20);
- turns on one session are serialised by a lock that lives as long as the process running
  the turn (an flock on `$DCR_HOME/conversations/<id>.lock`, `ingest/lockfile.py`): a second
  continue waits for the first, in this process or another one, and a process that crashes
  or is killed mid-turn frees it at once (the table's `lease_token`/`lease_until` are unused);
- the user's turn is written before the model is called; when the call fails it stays,
  marked failed, and `continue_(session_id, "")` (or the same message again) retries it.
  A turn left pending by a process that ended mid-turn is marked failed by the next continue.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from escalation.errors import (
    BadRequest,
    ConversationBusy,
    ConversationExpired,
    ConversationFull,
    ConversationNotFound,
    ProviderError,
    Remedy,
)
from escalation.ledger import LedgerEntry, new_id, record, record_function_calls
from escalation.models import cost_usd
from escalation.preparation import Prepared, dataset_functions, ledger_entry, prepare, result_of
from escalation.prompts import FOLLOW_UP_INSTRUCTION, RESPONSE_SCHEMA, SUMMARY_INSTRUCTIONS
from escalation.providers import Message, ProviderReply, ProviderRequest, get_provider
from escalation.redact import Redactor
from escalation.report import render_markdown
from escalation.store import connect, now_iso, transaction
from escalation.types import (
    SUMMARY_FORMATS,
    ConversationStatus,
    ConversationSummary,
    ConversationTurn,
    EscalationRequest,
)
from ingest import lockfile
from ingest.dataset import dcr_home

__all__ = ["start", "continue_", "finalize", "status", "list_all", "ttl_s", "max_turns"]

LOCK_POLL_S = 0.05
ABANDONED = (
    "the process running this turn ended before the model answered (a crash or a kill): "
    "continue with an empty message to retry it"
)


def ttl_s() -> float:
    return float(os.environ.get("DCR_CONVERSATION_TTL_S") or 86_400)


def max_turns() -> int:
    return int(os.environ.get("DCR_CONVERSATION_MAX_TURNS") or 20)


def _usage_cost(provider: str, reply: ProviderReply) -> float:
    if provider != "gemini":
        return 0.0
    u = reply.usage
    return cost_usd(reply.model, u.input_tokens, u.output_tokens, u.thinking_tokens)


# start ---------------------------------------------------------------------------------------


def start(req: EscalationRequest) -> ConversationTurn:
    if req.dry_run:
        raise BadRequest(
            "a conversation cannot be a dry run",
            ": see the bundle with {}",
            remedy=Remedy("escalate", {"dataset": req.dataset, "dry_run": True}),
        )
    p = prepare(req)
    sid = f"conv_{uuid.uuid4().hex[:16]}"
    fd = lockfile.acquire(_lock_path(sid), 0.0, _LOCK_BY)  # new: nobody else can hold it
    try:
        _insert(sid, req, p)
        return _run_turn(sid, 1, prepared=p, req=req)
    finally:
        lockfile.release(fd)


def _insert(sid: str, req: EscalationRequest, p: Prepared) -> None:
    now = time.time()
    con = connect()
    try:
        with transaction(con):
            con.execute(
                "INSERT INTO conversations (id, created_at, updated_at, expires_at, state, dataset, analysis_type, "
                "depth_level, provider, model, question, system_instruction, bundle_text, bundle_facts, "
                "escalation_id, max_turns, timeout_s) VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    now_iso(now),
                    now_iso(now),
                    now + ttl_s(),
                    req.dataset,
                    req.analysis_type,
                    req.depth_level,
                    p.provider_name,
                    p.model,
                    Redactor().text(req.question),
                    p.request.system_instruction,
                    p.request.messages[0].text,
                    json.dumps(p.bundle.facts, default=str),
                    p.escalation_id,
                    max_turns(),
                    p.timeout_s,
                ),
            )
            _add_message(con, sid, 1, "user", p.request.messages[0].text, "pending")
    finally:
        con.close()


# continue ------------------------------------------------------------------------------------


def continue_(session_id: str, message: str) -> ConversationTurn:
    row, fd = _acquire(session_id)
    try:
        msgs = _messages(session_id)
        last_user = next((m for m in reversed(msgs) if m["role"] == "user"), None)
        retry = (
            last_user is not None
            and last_user["status"] == "failed"
            and (not message.strip() or message.strip() == last_user["question"])
        )
        if not retry and not message.strip():
            raise BadRequest("the message is empty (an empty message retries a failed turn; there is none)")
        done = sum(1 for m in msgs if m["role"] == "model" and m["status"] == "ok")
        if not retry and done >= row["max_turns"]:
            raise ConversationFull(
                f"conversation {session_id} reached its {row['max_turns']} turns",
                ": finalize it ({}) or raise DCR_CONVERSATION_MAX_TURNS",
                remedy=Remedy("finalize_conversation", {"session_id": session_id}),
            )
        con = connect()
        try:
            with transaction(con):
                if retry:
                    assert last_user is not None  # a retry is of the last user turn
                    seq = last_user["seq"]
                    con.execute(
                        "UPDATE messages SET status = 'pending', error = NULL WHERE session_id = ? AND seq = ?",
                        (session_id, seq),
                    )
                else:
                    seq = max((m["seq"] for m in msgs), default=0) + 1
                    redactor = Redactor()
                    text = f"{FOLLOW_UP_INSTRUCTION}\n\nFollow-up question: {redactor.text(message.strip())}"
                    _add_message(con, session_id, seq, "user", text, "pending")
        finally:
            con.close()
        turn_no = 1 + sum(1 for m in msgs if m["role"] == "user" and m["seq"] < seq)
        return _run_turn(session_id, seq, turn_no=turn_no)
    finally:
        lockfile.release(fd)


_LOCK_BY = "conversation turn"


def _lock_path(session_id: str) -> Path:
    return dcr_home() / "conversations" / f"{session_id}.lock"  # an id of the table: no path of its own


def _acquire(session_id: str) -> tuple[sqlite3.Row, int]:
    """Take the session's turn lock (its row, the lock's descriptor); wait while another turn
    holds it, at most as long as a turn may take (two model timeouts and some)."""
    row = _row(session_id)
    try:
        fd = lockfile.acquire(
            _lock_path(session_id), float(row["timeout_s"]) * 2 + 30, _LOCK_BY, poll_s=LOCK_POLL_S
        )
    except lockfile.LockHeld as exc:
        raise ConversationBusy(
            f"conversation {session_id} is busy with another turn, {exc.holder}",
            ": try again when it ends (see {})",
            remedy=Remedy("conversation_status", {"session_id": session_id}),
        ) from None
    try:
        _fail_abandoned(session_id)
        return _row(session_id), fd
    except BaseException:
        lockfile.release(fd)
        raise


def _fail_abandoned(session_id: str) -> None:
    """Under the lock no turn is running: a pending one was left by a process that ended mid-turn."""
    con = connect()
    try:
        with transaction(con):
            con.execute(
                "UPDATE messages SET status = 'failed', error = ? WHERE session_id = ? AND "
                "status = 'pending'",
                (ABANDONED, session_id),
            )
    finally:
        con.close()


# one model turn ------------------------------------------------------------------------------


def _run_turn(
    session_id: str,
    seq: int,
    *,
    prepared: Prepared | None = None,
    req: EscalationRequest | None = None,
    turn_no: int = 1,
) -> ConversationTurn:
    row = _row(session_id)
    msgs = [m for m in _messages(session_id) if m["status"] == "ok" or m["seq"] == seq]
    history = tuple(Message(m["role"], m["text"]) for m in msgs if m["seq"] <= seq)
    # the functions the model may call within the turn, when the session's instruction offers them
    functions = (
        dataset_functions(row["dataset"])
        if row["provider"] == "gemini" and "You may call query_spans" in row["system_instruction"]
        else None
    )
    request = ProviderRequest(
        system_instruction=row["system_instruction"],
        messages=history,
        analysis_type=row["analysis_type"],
        depth_level=row["depth_level"],
        response_schema=RESPONSE_SCHEMA,
        code_execution=row["analysis_type"] in ("hypothesis_test", "execution_trace"),
        timeout_s=float(row["timeout_s"]),
        bundle_facts=json.loads(row["bundle_facts"]),
        functions=functions,
    )
    provider = (
        prepared.provider
        if prepared is not None and prepared.provider is not None
        else get_provider(row["provider"], row["model"])
    )
    question = _question_of(msgs[-1]["text"]) if msgs else row["question"]
    started = time.monotonic()
    try:
        reply = provider.generate(request)
    except ProviderError as exc:
        latency = time.monotonic() - started
        _finish(session_id, seq, None, str(exc))
        entry = (
            ledger_entry(
                prepared,
                req,
                "escalation",
                "failed",
                latency_s=latency,
                error=str(exc),
                attempts=exc.attempts,
            )
            if prepared and req
            else LedgerEntry(
                kind="turn",
                provider=row["provider"],
                model=row["model"],
                outcome="failed",
                session_id=session_id,
                turn=turn_no,
                dataset=row["dataset"],
                analysis_type=row["analysis_type"],
                latency_s=latency,
                error=str(exc),
                attempts=exc.attempts,
            )
        )
        if prepared:
            entry = dataclasses.replace(entry, session_id=session_id, turn=1)
            exc.bundle_path = prepared.bundle_path
        record(entry)
        if functions is not None and functions.calls:
            record_function_calls(entry, [c.to_dict() for c in functions.calls])
        raise
    finally:  # the functions' DuckDB session is closed whatever ends the turn, as api._ask does
        if functions is not None:
            functions.close()
    latency = time.monotonic() - started
    _finish(session_id, seq, reply, None)
    cost = _usage_cost(row["provider"], reply)
    u = reply.usage
    escalation = None
    if prepared and req:
        escalation = result_of(prepared, req, reply, latency, session_id=session_id)
        entry = ledger_entry(
            prepared,
            req,
            "escalation",
            "ok",
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            thinking_tokens=u.thinking_tokens,
            cost_usd=cost,
            latency_s=latency,
            attempts=reply.attempts,
        )
        entry = dataclasses.replace(entry, session_id=session_id, turn=1)
        record(entry)
    else:
        entry = LedgerEntry(
            kind="turn",
            provider=row["provider"],
            model=reply.model,
            outcome="ok",
            session_id=session_id,
            turn=turn_no,
            dataset=row["dataset"],
            analysis_type=row["analysis_type"],
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            thinking_tokens=u.thinking_tokens,
            cost_usd=cost,
            latency_s=latency,
            attempts=reply.attempts,
            reasons=("conversation follow-up",),
        )
        record(entry)
    record_function_calls(entry, reply.function_calls)
    done = sum(1 for m in _messages(session_id) if m["role"] == "model" and m["status"] == "ok")
    md = render_markdown(
        reply.analysis,
        provider=row["provider"],
        model=reply.model,
        checked_by_model=reply.checked_by_model,
        title=f"Conversation {session_id}, turn {turn_no}",
        function_calls=reply.function_calls,
    )
    return ConversationTurn(
        session_id=session_id,
        turn=turn_no,
        question=question,
        status="ok",
        analysis=reply.analysis,
        report_markdown=md,
        provider=row["provider"],
        model=reply.model,
        checked_by_model=reply.checked_by_model,
        usage=u.to_dict(),
        cost_usd=cost,
        latency_s=round(latency, 6),
        turns_left=max(0, row["max_turns"] - done),
        warnings=escalation.warnings if escalation else (),
        escalation=escalation,
    )


def _question_of(text: str) -> str:
    marker = "Follow-up question: "
    if marker in text:
        return text.split(marker, 1)[1]
    marker = "## The question to answer\n"
    return text.rsplit(marker, 1)[1] if marker in text else text[-500:]


def _finish(session_id: str, seq: int, reply: ProviderReply | None, error: str | None) -> None:
    now = time.time()
    con = connect()
    try:
        with transaction(con):
            if reply is None:
                con.execute(
                    "UPDATE messages SET status = 'failed', error = ? WHERE session_id = ? AND seq = ?",
                    (error, session_id, seq),
                )
            else:
                con.execute(
                    "UPDATE messages SET status = 'ok' WHERE session_id = ? AND seq = ?", (session_id, seq)
                )
                # the model's answer goes right after its question; later seqs shift if a retry filled a gap
                taken = {
                    r[0] for r in con.execute("SELECT seq FROM messages WHERE session_id = ?", (session_id,))
                }
                if seq + 1 in taken:
                    con.execute(
                        "UPDATE messages SET seq = seq + 1000000 WHERE session_id = ? AND seq > ?",
                        (session_id, seq),
                    )
                    con.execute(
                        "UPDATE messages SET seq = seq - 1000000 + 1 WHERE session_id = ? AND seq > 1000000",
                        (session_id,),
                    )
                _add_message(
                    con,
                    session_id,
                    seq + 1,
                    "model",
                    reply.text,
                    "ok",
                    json.dumps(reply.analysis, default=str),
                )
            con.execute(
                "UPDATE conversations SET updated_at = ?, expires_at = ? WHERE id = ?",
                (now_iso(now), now + ttl_s(), session_id),
            )
    finally:
        con.close()


def _add_message(
    con: sqlite3.Connection,
    sid: str,
    seq: int,
    role: str,
    text: str,
    status: str,
    analysis: str | None = None,
) -> None:
    con.execute(
        "INSERT INTO messages (session_id, seq, role, text, status, analysis, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sid, seq, role, text, status, analysis, now_iso()),
    )


# reading -------------------------------------------------------------------------------------


def _start_again(row: sqlite3.Row) -> Remedy:
    return Remedy("start_conversation", {"dataset": row["dataset"]} if row["dataset"] else {})


def _row(session_id: str, *, allow_expired: bool = False) -> sqlite3.Row:
    con = connect()
    try:
        row = con.execute("SELECT * FROM conversations WHERE id = ?", (session_id,)).fetchone()
    finally:
        con.close()
    if row is None:
        raise ConversationNotFound(session_id)
    if not allow_expired and row["expires_at"] < time.time():
        raise ConversationExpired(
            f"conversation {session_id} expired (no activity for DCR_CONVERSATION_TTL_S = {ttl_s():g} s)",
            ": start a new one ({})",
            remedy=_start_again(row),
        )
    if not allow_expired and row["state"] == "finalized":
        raise ConversationExpired(
            f"conversation {session_id} is finalized", ": start a new one ({})", remedy=_start_again(row)
        )
    return row


def _messages(session_id: str) -> list[dict[str, Any]]:
    con = connect()
    try:
        rows = con.execute(
            "SELECT * FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
        ).fetchall()
    finally:
        con.close()
    out = []
    for r in rows:
        d = dict(r)
        d["question"] = _question_of(d["text"]) if d["role"] == "user" else ""
        out.append(d)
    return out


def _status(row: sqlite3.Row) -> ConversationStatus:
    msgs = _messages(row["id"])
    con = connect()
    try:
        agg = con.execute(
            "SELECT coalesce(sum(input_tokens + output_tokens + thinking_tokens), 0), "
            "coalesce(sum(cost_usd), 0) FROM ledger WHERE session_id = ?",
            (row["id"],),
        ).fetchone()
    finally:
        con.close()
    state = row["state"] if row["state"] == "finalized" or row["expires_at"] >= time.time() else "expired"
    return ConversationStatus(
        session_id=row["id"],
        state=state,
        dataset=row["dataset"],
        analysis_type=row["analysis_type"],
        provider=row["provider"],
        model=row["model"],
        question=row["question"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=now_iso(row["expires_at"]),
        turns=sum(1 for m in msgs if m["role"] == "model" and m["status"] == "ok"),
        failed_turns=sum(1 for m in msgs if m["role"] == "user" and m["status"] == "failed"),
        max_turns=row["max_turns"],
        total_tokens=int(agg[0]),
        cost_usd=round(float(agg[1]), 6),
    )


def status(session_id: str) -> ConversationStatus:
    return _status(_row(session_id, allow_expired=True))


def list_all() -> list[ConversationStatus]:
    con = connect()
    try:
        rows = con.execute("SELECT * FROM conversations ORDER BY created_at DESC").fetchall()
    finally:
        con.close()
    return [_status(r) for r in rows]


# finalize ------------------------------------------------------------------------------------


def finalize(session_id: str, summary_format: str = "detailed") -> ConversationSummary:
    if summary_format not in SUMMARY_FORMATS:
        raise BadRequest(
            f"unknown summary format {summary_format!r}: use one of {', '.join(SUMMARY_FORMATS)}"
        )
    row = _row(session_id)
    models = [m for m in _messages(session_id) if m["role"] == "model" and m["status"] == "ok"]
    if not models:
        raise BadRequest(
            f"conversation {session_id} has no answered turn yet: continue it (an empty message "
            "retries the failed turn) before finalizing"
        )
    analyses = [json.loads(m["analysis"] or "{}") for m in models]
    merged = _merge(analyses)
    md = _summary_markdown(merged, summary_format, row, len(models))
    now = time.time()
    con = connect()
    try:
        with transaction(con):
            con.execute(
                "UPDATE conversations SET state = 'finalized', updated_at = ? WHERE id = ?",
                (now_iso(now), session_id),
            )
        cost = float(
            con.execute(
                "SELECT coalesce(sum(cost_usd), 0) FROM ledger WHERE session_id = ?", (session_id,)
            ).fetchone()[0]
        )
    finally:
        con.close()
    record(
        LedgerEntry(
            kind="finalize",
            provider=row["provider"],
            model=row["model"],
            outcome="ok",
            id=new_id(),
            session_id=session_id,
            dataset=row["dataset"],
            analysis_type=row["analysis_type"],
            reasons=(f"finalize {summary_format}",),
        )
    )
    return ConversationSummary(
        session_id=session_id,
        summary_format=summary_format,
        summary_markdown=md,
        analysis=merged,
        turns=len(models),
        cost_usd=round(cost, 6),
    )


def _merge(analyses: list[dict[str, Any]]) -> dict[str, Any]:
    """The last answer, with root causes from earlier turns it dropped kept at the end."""
    last = dict(analyses[-1])
    seen = {str(c.get("title", "")).lower() for c in last.get("root_causes") or []}
    extra = []
    for a in analyses[:-1]:
        for c in a.get("root_causes") or []:
            key = str(c.get("title", "")).lower()
            if key not in seen:
                seen.add(key)
                extra.append({**c, "explanation": f"(from an earlier turn) {c.get('explanation', '')}"})
    last["root_causes"] = list(last.get("root_causes") or []) + extra
    return last


def _summary_markdown(a: dict[str, Any], fmt: str, row: sqlite3.Row, turns: int) -> str:
    checked = row["provider"] != "offline"
    head = f"# Conversation {row['id']} ({turns} turns, {row['analysis_type']})\n\n"
    head += f"_{SUMMARY_INSTRUCTIONS[fmt]}_\n\n"
    if not checked:
        head += "> **Offline report: built from the evidence by rules, not checked by a model.**\n\n"
    causes = a.get("root_causes") or []
    if fmt == "concise":
        top = causes[0] if causes else {}
        fix = (a.get("fixes") or [{}])[0].get("description", "no fix proposed")
        return head + (
            f"Root cause: {top.get('title', 'none found')} (confidence "
            f"{float(top.get('confidence') or 0):.2f}). Fix: {fix}\n"
        )
    if fmt == "actionable":
        lines = [head + "## Next steps"]
        tests = a.get("tests_to_run") or []
        for i, f in enumerate(a.get("fixes") or [], 1):
            t = tests[i - 1] if i - 1 < len(tests) else {}
            lines.append(
                f"{i}. {f.get('description', '')}"
                + (f" (files: {', '.join(f['files'])})" if f.get("files") else "")
            )
            if t:
                lines.append(
                    f"   confirm: {t.get('description', '')}"
                    + (f" `{t['command']}`" if t.get("command") else "")
                )
        return "\n".join(lines) + "\n"
    return (
        head
        + render_markdown(
            a, provider=row["provider"], model=row["model"], checked_by_model=checked, title="Summary"
        ).split("\n", 1)[1]
    )
