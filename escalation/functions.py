"""Functions the model may call within its turn: `query_spans` and `get_trace` over the dataset.

As HolmesGPT lets its model call its tools, the Gemini provider offers these two as function
declarations; when the model calls one, `DatasetFunctions` runs it through correlate's sealed
dataset session (`DatasetSession.sql`: one read-only SELECT, a row cap and a time limit, no file
or network access; `DatasetSession.trace`: one trace, a unique id prefix accepted) and hands
back a result that passed the same redaction as the bundle, cut to a size:

    DCR_FUNCTION_CALLS         calls a turn may make (default 8; 0 offers no function)
    DCR_FUNCTION_RESULT_CHARS  characters of one result at most (default 8,000)
    MAX_ROWS                   rows of a query at most (100)

Every call is kept in `calls` (for the ledger: name, redacted arguments, outcome, rows,
characters, whether it was cut, seconds) and gets an id, Q1, Q2, …, the model cites like an
evidence id. A call past the budget is refused with a message that says to answer now.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from escalation.redact import Redactor

__all__ = [
    "FUNCTION_NAMES",
    "DECLARATIONS",
    "MAX_ROWS",
    "FunctionCall",
    "DatasetFunctions",
    "max_calls",
    "max_result_chars",
]

FUNCTION_NAMES = ("query_spans", "get_trace")
MAX_ROWS = 100
DEFAULT_CALLS = 8
DEFAULT_RESULT_CHARS = 8_000
SQL_TIMEOUT_S = 20.0

# Gemini schema (OpenAPI subset, the response schema's dialect)
DECLARATIONS: list[dict[str, Any]] = [
    {
        "name": "query_spans",
        "description": (
            "Run one read-only SQL SELECT (DuckDB) over the dataset's views: spans (trace_id, span_id, "
            "parent_span_id, service_name, name, kind, start_ns, end_ns, duration_ns, status_code, "
            "status_message, host_name, attributes JSON, events JSON, …), logs (time_ns, service_name, "
            "severity_number, body, trace_id, span_id, …), traces (one row a trace: root_service, "
            "root_operation, start_ns, duration_ns, has_error, error_count, services) and service_edges. "
            "Times are int64 nanoseconds since the epoch. Returns at most 100 rows."
        ),
        "parameters": {
            "type": "OBJECT",
            "properties": {
                "sql": {"type": "STRING", "description": "One SELECT statement."},
                "limit": {"type": "INTEGER", "description": "Rows to return, 1..100 (default 50)."},
            },
            "required": ["sql"],
        },
    },
    {
        "name": "get_trace",
        "description": (
            "One trace as a compact span tree: per span its offset and duration in ms from the trace "
            "start, self time, service, operation, host, errors with their messages, '*' on the "
            "critical path, clock-skew adjustments."
        ),
        "parameters": {
            "type": "OBJECT",
            "properties": {
                "trace_id": {
                    "type": "STRING",
                    "description": "32 hex characters, or a unique prefix of at least 8.",
                }
            },
            "required": ["trace_id"],
        },
    },
]


def max_calls() -> int:
    try:
        return max(0, int(os.environ.get("DCR_FUNCTION_CALLS") or DEFAULT_CALLS))
    except ValueError:
        return DEFAULT_CALLS


def max_result_chars() -> int:
    try:
        return max(500, int(os.environ.get("DCR_FUNCTION_RESULT_CHARS") or DEFAULT_RESULT_CHARS))
    except ValueError:
        return DEFAULT_RESULT_CHARS


@dataclass
class FunctionCall:
    """One call the model made, as the ledger records it (never a secret: arguments redacted)."""

    id: str  # Q1, Q2, …
    name: str
    args: dict[str, Any]
    outcome: str  # ok | error | refused
    rows: int = 0  # rows returned (query_spans) or spans (get_trace)
    chars: int = 0  # characters of the result sent
    truncated: bool = False  # cut to the row cap or to the character limit
    error: str = ""
    seconds: float = 0.0

    @property
    def summary(self) -> str:
        arg = self.args.get("sql") or self.args.get("trace_id") or ""
        arg = " ".join(str(arg).split())
        head = f"({arg[:160]}{'…' if len(arg) > 160 else ''})"
        if self.outcome != "ok":
            return f"{head}: {self.outcome}: {self.error[:200]}"
        return (
            f"{head}: {self.rows} {'rows' if self.name == 'query_spans' else 'spans'}, {self.chars:,} characters"
            + (", cut" if self.truncated else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}


@dataclass
class DatasetFunctions:
    """The functions of one turn over one dataset. Call it as `runner(name, args)`; close it."""

    dataset: str
    max_calls: int = field(default_factory=max_calls)
    max_chars: int = field(default_factory=max_result_chars)
    local_paths: Sequence[str] = ()
    calls: list[FunctionCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.redactor = Redactor(local_paths=self.local_paths)
        self._session: Any = None

    @property
    def declarations(self) -> list[dict[str, Any]]:
        return DECLARATIONS if self.max_calls > 0 else []

    @property
    def spent(self) -> bool:
        return sum(1 for c in self.calls if c.outcome != "refused") >= self.max_calls

    def __call__(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """The response payload of one call (redacted); the call is recorded in `calls`."""
        cid = f"Q{len(self.calls) + 1}"
        shown = self.redactor.value("args", json.loads(json.dumps(args or {}, default=str)))
        from correlate import CorrelateError

        started = time.monotonic()
        if name not in FUNCTION_NAMES:
            return self._done(FunctionCall(cid, name, shown, "error", error=f"no function {name!r}"), started)
        if self.spent:
            msg = f"the budget of {self.max_calls} calls is spent: answer with the evidence you have"
            return self._done(FunctionCall(cid, name, shown, "refused", error=msg), started)
        try:
            if name == "query_spans":
                text, n, cut = self._query(str(args.get("sql") or ""), args.get("limit"))
            else:
                text, n, cut = self._trace(str(args.get("trace_id") or ""))
        except CorrelateError as exc:  # a refused or failing query is the model's to read, not ours to raise
            msg = self.redactor.text(str(exc))[:500]
            return self._done(FunctionCall(cid, name, shown, "error", error=msg), started)
        text = self.redactor.text(text)
        if len(text) > self.max_chars:
            text = text[: self.max_chars - 1] + "…"
            cut = True
        call = FunctionCall(cid, name, shown, "ok", rows=n, chars=len(text), truncated=cut)
        return self._done(call, started, text)

    def _done(self, call: FunctionCall, started: float, result: str | None = None) -> dict[str, Any]:
        call.seconds = round(time.monotonic() - started, 6)
        self.calls.append(call)
        if result is None:
            return {"id": call.id, "error": call.error}
        payload: dict[str, Any] = {"id": call.id, "result": result}
        if call.truncated:
            payload["note"] = (
                f"cut to {MAX_ROWS} rows or {self.max_chars:,} characters: narrow the query (fewer columns, "
                "a WHERE, an aggregate)"
            )
        return payload

    def _open(self) -> Any:
        if self._session is None:
            from correlate import open_dataset

            self._session = open_dataset(self.dataset)
        return self._session

    def _query(self, sql: str, limit: Any) -> tuple[str, int, bool]:
        try:
            n = int(limit) if limit is not None else 50
        except (TypeError, ValueError):
            n = 50
        n = min(MAX_ROWS, max(1, n))
        r = self._open().sql(sql, limit=n, timeout_s=SQL_TIMEOUT_S)
        lines = [json.dumps(list(r.columns), ensure_ascii=False)]
        for row in r.rows:
            # a JSON text (attributes, events) is redacted as the structure it is, name by name, as
            # the bundle redacts a span's attributes: the rules would misread its escaped quotes
            values = [
                self.redactor.value(str(c), _parsed(_plain(v))) for c, v in zip(r.columns, row, strict=False)
            ]
            lines.append(json.dumps(values, ensure_ascii=False, default=str))
        if r.truncated:
            lines.append(f"… more rows than {n}")
        return "\n".join(lines), len(r.rows), bool(r.truncated)

    def _trace(self, trace_id: str) -> tuple[str, int, bool]:
        from escalation.bundle import render_trace

        session = self._open()
        view = session.trace(trace_id.strip().lower())
        sources = session.trace_sources(view.trace_id)
        clipped: list[str] = []
        text, _ = render_trace(view, "asked by the model", sources, self.redactor, clipped=clipped)
        return text, len(view.spans), bool(clipped) or "more spans (the trace is longer" in text

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _parsed(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in "{[" and v[-1:] in "}]":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _plain(v: Any) -> Any:
    """A DuckDB value as JSON holds it (lists and maps kept, the rest as text when not a number)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)
