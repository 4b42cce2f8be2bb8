"""The model asks for more within its turn: query_spans and get_trace offered to Gemini as
function declarations, run through correlate's sealed dataset session, their results redacted
and cut as the bundle is, every call in the ledger; end to end through the real google-genai
client against the local Gemini stand-in (tests/gemini_stub.py)."""

from __future__ import annotations

import json

import pytest

from escalation import EscalationRequest, escalate, ledger_stats
from escalation.functions import FUNCTION_NAMES, DatasetFunctions
from escalation.store import connect
from tests.escalation_data import BASELINE, SECRETS, WINDOW, make_shop, tid
from tests.gemini_stub import DEFAULT_ANALYSIS, GeminiStub

FAILING = tid(100)  # the window's first trace fails in ledger (tests/escalation_data.py)
QUERY = "SELECT trace_id, span_id, service_name, status_message, attributes FROM spans WHERE status_code = 'ERROR' ORDER BY start_ns LIMIT 4"


def _req(**kw) -> EscalationRequest:
    base = dict(
        question="Why does ledger fail?", dataset="shop", window=WINDOW, baseline=BASELINE, provider="gemini"
    )
    return EscalationRequest(**{**base, **kw})


def _ledger() -> list[dict]:
    con = connect()
    try:
        return [dict(r) for r in con.execute("SELECT * FROM ledger ORDER BY created_at, rowid")]
    finally:
        con.close()


def test_a_tool_calling_turn_end_to_end(stub: GeminiStub) -> None:
    make_shop(secrets=True)
    stub.call("query_spans", {"sql": QUERY, "limit": 10})
    stub.call("get_trace", {"trace_id": FAILING.upper()})
    stub.reply(usage=(3000, 400, 100))
    result = escalate(_req())
    assert result.analysis == DEFAULT_ANALYSIS and result.checked_by_model

    first, second, third = stub.generate_requests()
    # offered as function declarations, with the instruction that says how to use them
    decls = [d["name"] for t in first.json["tools"] for d in t.get("functionDeclarations", [])]
    assert decls == list(FUNCTION_NAMES)
    assert first.json["toolConfig"]["functionCallingConfig"]["mode"] == "AUTO"
    assert "You may call query_spans" in first.json["systemInstruction"]["parts"][0]["text"]
    # the model's call goes back as it came (its thought signature too), then the result, by id
    model_turn, answer = second.json["contents"][1:]
    assert model_turn["role"] == "model" and model_turn["parts"][0]["functionCall"]["name"] == "query_spans"
    assert model_turn["parts"][0]["thoughtSignature"]
    [response] = stub.function_responses(second)
    assert answer["role"] == "user" and response["id"] == model_turn["parts"][0]["functionCall"]["id"]
    rows = response["response"]["result"].splitlines()
    assert json.loads(rows[0]) == ["trace_id", "span_id", "service_name", "status_message", "attributes"]
    assert len(rows) == 5 and json.loads(rows[1])[2] in ("frontend", "payments", "ledger")
    assert response["response"]["id"] == "Q1"
    # the second call: the trace as the bundle renders it
    trace = stub.function_responses(third)[-1]["response"]
    assert trace["id"] == "Q2" and trace["result"].startswith(
        f"trace {FAILING} (asked by the model): starts "
    )
    assert "ledger UPDATE balances [CLIENT] ERROR '" in trace["result"] and "lock timeout" in trace["result"]
    # the results passed the bundle's redaction: no planted secret reached the stand-in
    sent = stub.all_bytes().decode()
    leaked = [kind for kind, (_, secret) in SECRETS.items() if secret in sent]
    assert leaked == []
    assert "<redacted:" in response["response"]["result"] + trace["result"]
    # usage over the three rounds; every call in the result and the ledger
    assert result.usage == {"input_tokens": 5000, "output_tokens": 440, "thinking_tokens": 200}
    assert [(c["id"], c["name"], c["outcome"]) for c in result.function_calls] == [
        ("Q1", "query_spans", "ok"),
        ("Q2", "get_trace", "ok"),
    ]
    assert result.function_calls[0]["rows"] == 4 and not result.function_calls[0]["truncated"]
    assert "## Data the model asked for (function calls)" in result.report_markdown
    rows = _ledger()
    calls = [r for r in rows if r["kind"] == "function_call"]
    assert [json.loads(r["detail"])["name"] for r in calls] == ["query_spans", "get_trace"]
    assert all(r["parent_id"] == result.escalation_id and r["outcome"] == "ok" for r in calls)
    assert json.loads(calls[0]["detail"])["args"]["sql"] == QUERY
    stats = ledger_stats()
    assert stats["total"]["calls"] == 1 and stats["total"]["function_calls"] == 2


def test_the_budget_holds_and_the_last_round_may_not_call(stub: GeminiStub, monkeypatch) -> None:
    make_shop()
    monkeypatch.setenv("DCR_FUNCTION_CALLS", "1")
    monkeypatch.setenv("DCR_FUNCTION_RESULT_CHARS", "600")
    stub.calls([("query_spans", {"sql": "SELECT * FROM spans"}), ("get_trace", {"trace_id": FAILING})])
    stub.reply()
    result = escalate(_req())
    first, second = stub.generate_requests()
    assert (
        "at most 1 calls, each result cut to 600 characters"
        in first.json["systemInstruction"]["parts"][0]["text"]
    )
    big, refused = stub.function_responses(second)
    assert len(big["response"]["result"]) == 600 and "narrow the query" in big["response"]["note"]
    assert "budget of 1 calls is spent" in refused["response"]["error"]
    assert second.json["toolConfig"]["functionCallingConfig"]["mode"] == "NONE"  # answer now
    assert [(c["outcome"], c["truncated"]) for c in result.function_calls] == [
        ("ok", True),
        ("refused", False),
    ]
    outcomes = [r["outcome"] for r in _ledger() if r["kind"] == "function_call"]
    assert outcomes == ["ok", "refused"]


def test_the_sealed_session_refuses_and_the_model_reads_why(dcr_home) -> None:
    make_shop()
    run = DatasetFunctions("shop", max_calls=5, max_chars=2000)
    try:
        bad = run("query_spans", {"sql": "DROP TABLE spans"})
        outside = run("query_spans", {"sql": "SELECT * FROM read_text('/etc/passwd')"})
        missing = run("get_trace", {"trace_id": "f" * 32})
        unknown = run("rm_rf", {})
        ok = run("query_spans", {"sql": "SELECT count(*) AS n FROM spans", "limit": 500})
    finally:
        run.close()
    assert bad["error"] and outside["error"] and missing["error"] and "no function" in unknown["error"]
    assert "file system operations are disabled" in outside["error"]  # the session is sealed
    assert ok["result"].splitlines() == ['["n"]', "[72]"]
    assert [c.outcome for c in run.calls] == ["error", "error", "error", "error", "ok"]
    assert [c.id for c in run.calls] == ["Q1", "Q2", "Q3", "Q4", "Q5"]


def test_no_dataset_no_functions_and_none_when_switched_off(stub: GeminiStub, monkeypatch) -> None:
    escalate(_req(dataset=None, window=None, baseline=None))
    assert "tools" not in stub.generate_requests()[-1].json
    make_shop()
    monkeypatch.setenv("DCR_FUNCTION_CALLS", "0")
    escalate(_req())
    body = stub.generate_requests()[-1].json
    assert "tools" not in body and "You may call" not in body["systemInstruction"]["parts"][0]["text"]


@pytest.mark.parametrize("analysis_type", ["hypothesis_test", "execution_trace"])
def test_code_execution_and_functions_in_one_turn(stub: GeminiStub, analysis_type: str) -> None:
    make_shop()
    dry = escalate(_req(analysis_type=analysis_type, dry_run=True))
    escalate(_req(analysis_type=analysis_type))
    body = stub.generate_requests()[-1].json
    assert body == dry.dry_run_payload["body"]  # the dry run shows the declarations as sent
    tools = body["tools"]
    assert any("codeExecution" in t for t in tools) and any("functionDeclarations" in t for t in tools)
    assert body["toolConfig"]["includeServerSideToolInvocations"] is True
