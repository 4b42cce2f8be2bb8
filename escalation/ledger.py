"""The ledger: every escalation, conversation turn, finalize, dry run and function call, measured.

Rows carry why it was escalated, the analysis type, dataset, bundle tokens per section,
redaction counts (by kind, never values), model, input/output/thinking tokens, cost estimate,
latency and outcome. A function the model called within a turn (query_spans, get_trace) is a
row of kind 'function_call' whose parent_id is that escalation or turn, with its redacted
arguments and result size in `detail`. `ledger_stats()` summarises the model calls by day,
analysis type and model, and counts the function calls apart (`dcr stats`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from escalation.store import connect, now_iso

__all__ = ["LedgerEntry", "record", "record_function_calls", "ledger_stats", "new_id"]


def new_id(prefix: str = "esc") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class LedgerEntry:
    kind: str  # escalation | turn | finalize | dry_run
    provider: str
    model: str
    outcome: str  # ok | failed | dry_run
    id: str = field(default_factory=new_id)
    session_id: str | None = None
    turn: int | None = None
    dataset: str | None = None
    analysis_type: str | None = None
    reasons: Sequence[str] = ()
    bundle_tokens: int = 0
    bundle_sections: Mapping[str, int] = field(default_factory=dict)
    token_method: str | None = None
    cut: int = 0
    redactions: Mapping[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None
    bundle_path: str | None = None
    parent_id: str | None = None  # a function call's escalation or turn
    detail: Mapping[str, Any] = field(default_factory=dict)  # a function call: name, arguments, result size


def record(entry: LedgerEntry) -> str:
    created = now_iso()
    con = connect()
    try:
        con.execute(
            "INSERT INTO ledger (id, kind, session_id, turn, created_at, day, dataset, analysis_type, provider, model, "
            "reasons, bundle_tokens, bundle_sections, token_method, cut, redactions, input_tokens, output_tokens, "
            "thinking_tokens, cost_usd, latency_s, attempts, outcome, error, bundle_path, parent_id, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.id,
                entry.kind,
                entry.session_id,
                entry.turn,
                created,
                created[:10],
                entry.dataset,
                entry.analysis_type,
                entry.provider,
                entry.model,
                json.dumps(list(entry.reasons)),
                entry.bundle_tokens,
                json.dumps(dict(entry.bundle_sections)),
                entry.token_method,
                entry.cut,
                json.dumps(dict(entry.redactions)),
                entry.input_tokens,
                entry.output_tokens,
                entry.thinking_tokens,
                entry.cost_usd,
                round(entry.latency_s, 6),
                entry.attempts,
                entry.outcome,
                entry.error,
                entry.bundle_path,
                entry.parent_id,
                json.dumps(dict(entry.detail), default=str),
            ),
        )
    finally:
        con.close()
    return entry.id


_SUMS = (
    "count(*) AS calls, sum(outcome = 'ok') AS ok, sum(outcome = 'failed') AS failed, "
    "sum(outcome = 'dry_run') AS dry_runs, sum(input_tokens) AS input_tokens, "
    "sum(output_tokens) AS output_tokens, sum(thinking_tokens) AS thinking_tokens, "
    "round(sum(cost_usd), 6) AS cost_usd, round(avg(latency_s), 3) AS avg_latency_s, "
    "sum(bundle_tokens) AS bundle_tokens"
)


def record_function_calls(parent: LedgerEntry, calls: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per function the model called within `parent`'s turn (kind 'function_call'):
    outcome ok / error / refused, its seconds, and in `detail` the function, its redacted
    arguments, the rows and characters it returned and whether they were cut."""
    ids = []
    for c in calls:
        ids.append(
            record(
                LedgerEntry(
                    kind="function_call",
                    provider=parent.provider,
                    model=parent.model,
                    outcome=str(c.get("outcome") or "ok"),
                    session_id=parent.session_id,
                    turn=parent.turn,
                    dataset=parent.dataset,
                    analysis_type=parent.analysis_type,
                    latency_s=float(c.get("seconds") or 0.0),
                    error=c.get("error") or None,
                    parent_id=parent.id,
                    detail={k: c.get(k) for k in ("id", "name", "args", "rows", "chars", "truncated")},
                )
            )
        )
    return ids


def ledger_stats() -> dict[str, Any]:
    """Totals, and the same figures by day, by analysis type and by model; redactions by kind."""
    con = connect()
    try:

        def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(r) for r in con.execute(sql).fetchall()]

        # model calls; the functions a model called are counted apart
        calls = "FROM ledger WHERE kind <> 'function_call'"
        total = rows(f"SELECT {_SUMS} {calls}")[0]
        total["function_calls"] = con.execute(
            "SELECT count(*) FROM ledger WHERE kind = 'function_call'"
        ).fetchone()[0]
        by_day = rows(f"SELECT day, {_SUMS} {calls} GROUP BY day ORDER BY day")
        by_type = rows(
            f"SELECT coalesce(analysis_type, '-') AS analysis_type, {_SUMS} {calls} GROUP BY 1 ORDER BY 1"
        )
        by_model = rows(f"SELECT model, provider, {_SUMS} {calls} GROUP BY model, provider ORDER BY model")
        redactions: dict[str, int] = {}
        for (raw,) in con.execute("SELECT redactions FROM ledger"):
            for kind, n in json.loads(raw or "{}").items():
                redactions[kind] = redactions.get(kind, 0) + int(n)
        recent = rows(
            "SELECT id, kind, created_at, dataset, analysis_type, provider, model, outcome, "
            f"bundle_tokens, cost_usd, latency_s, reasons, error {calls} "
            "ORDER BY created_at DESC LIMIT 10"
        )
    finally:
        con.close()
    for r in recent:
        r["reasons"] = json.loads(r["reasons"] or "[]")
    for r in [total, *by_day, *by_type, *by_model]:
        for k, v in r.items():
            if v is None and k != "day":
                r[k] = 0
    return {
        "total": total,
        "by_day": by_day,
        "by_type": by_type,
        "by_model": by_model,
        "redactions": dict(sorted(redactions.items())),
        "recent": recent,
    }
