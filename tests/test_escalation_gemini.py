"""The Gemini provider through the real google-genai client against the local REST stub."""

from __future__ import annotations

import json
import time

import httpx2 as httpx  # the HTTP library google-genai uses here
import pytest

from escalation import (
    EscalationRequest,
    MalformedReply,
    MissingApiKey,
    ProviderError,
    ProviderTimeout,
    continue_conversation,
    escalate,
    ledger_stats,
    start_conversation,
)
from escalation.models import DEFAULT_MODEL, MODELS, cost_usd
from escalation.prompts import RESPONSE_SCHEMA
from escalation.providers.base import Message, ProviderRequest
from escalation.providers.gemini import GeminiProvider, map_genai_error, retry_hint_s
from mcp_server.cli import main
from tests.conftest import STUB_KEY
from tests.escalation_data import BASELINE, WINDOW, make_shop
from tests.gemini_stub import DEFAULT_ANALYSIS, GeminiStub


def _level(thinking: dict) -> str:
    return thinking.get("thinkingLevel") or thinking.get("thinking_level")


def _req(**kw) -> EscalationRequest:
    base = dict(
        question="Why do payments fail?", dataset="shop", window=WINDOW, baseline=BASELINE, provider="gemini"
    )
    return EscalationRequest(**{**base, **kw})


def test_request_shape_system_instruction_schema_thinking_and_key(stub: GeminiStub) -> None:
    make_shop()
    result = escalate(_req(analysis_type="performance", depth_level=5))
    gen = stub.generate_requests()
    assert len(gen) == 1
    r = gen[0]
    assert r.path == f"/v1beta/models/{DEFAULT_MODEL}:generateContent"
    assert r.headers["x-goog-api-key"] == STUB_KEY
    body = r.json
    assert "senior distributed-systems engineer" in body["systemInstruction"]["parts"][0]["text"]
    assert "Analysis type: performance" in body["systemInstruction"]["parts"][0]["text"]
    cfg = body["generationConfig"]
    assert cfg["responseMimeType"] == "application/json"
    assert set(cfg["responseSchema"]["required"]) == set(RESPONSE_SCHEMA["required"])
    # google-genai 3.6 writes this field in snake case; proto JSON accepts both spellings
    assert _level(cfg["thinkingConfig"]) == "HIGH"
    # no code execution for performance; the dataset's functions (query_spans, get_trace) offered
    assert [list(t) for t in body["tools"]] == [["functionDeclarations"]]
    assert [c["role"] for c in body["contents"]] == ["user"]
    text = body["contents"][0]["parts"][0]["text"]
    assert "## Ranked root-cause candidates" in text and "Why do payments fail?" in text
    # the answer is parsed, usage and cost recorded
    assert result.analysis == DEFAULT_ANALYSIS
    assert result.usage == {"input_tokens": 1200, "output_tokens": 300, "thinking_tokens": 800}
    assert result.cost_usd == pytest.approx(cost_usd(DEFAULT_MODEL, 1200, 300, 800))
    assert result.checked_by_model and result.provider == "gemini"
    assert result.token_method == "provider"  # countTokens was used
    assert any(x.action == "countTokens" for x in stub.received)


def test_code_execution_tool_for_hypothesis_test_and_thinking_from_depth(stub: GeminiStub) -> None:
    escalate(_req(dataset=None, window=None, baseline=None, analysis_type="hypothesis_test", depth_level=1))
    body = stub.generate_requests()[-1].json
    assert body["tools"] == [{"codeExecution": {}}]
    assert _level(body["generationConfig"]["thinkingConfig"]) == "LOW"


def test_dry_run_payload_equals_what_the_client_sends(stub: GeminiStub, monkeypatch) -> None:
    make_shop()
    dry = escalate(_req(dry_run=True, analysis_type="execution_trace"))
    assert stub.received == []  # a dry run contacts nothing
    live = escalate(_req(analysis_type="execution_trace"))
    sent = stub.generate_requests()[0]
    assert dry.dry_run_payload is not None
    assert "/" + dry.dry_run_payload["path"] == sent.path
    assert dry.dry_run_payload["body"] == sent.json
    assert dry.dry_run_payload["token_count"] > 0 and live.bundle_tokens > 0


def test_dry_run_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    make_shop()
    result = escalate(_req(dry_run=True))
    assert result.dry_run_payload and result.dry_run_payload["body"]["contents"]


def test_multi_turn_history_is_sent(stub: GeminiStub) -> None:
    make_shop()
    first = start_conversation(_req())
    second_answer = {**DEFAULT_ANALYSIS, "summary": "turn two"}
    stub.reply(second_answer)
    turn = continue_conversation(first.session_id, "Is the lock held by payments?")
    assert turn.turn == 2 and turn.analysis["summary"] == "turn two"
    body = stub.generate_requests()[-1].json
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert json.loads(body["contents"][1]["parts"][0]["text"]) == DEFAULT_ANALYSIS
    assert "Is the lock held by payments?" in body["contents"][2]["parts"][0]["text"]
    assert body["systemInstruction"] == stub.generate_requests()[0].json["systemInstruction"]


def test_retries_429_with_the_retry_hint_then_500_then_success(stub: GeminiStub) -> None:
    stub.fail(429, retry_delay="0.3s")
    stub.fail(500)
    stub.reply()
    prov = GeminiProvider()
    req = ProviderRequest("sys", (Message("user", "hi"),), "cross_system", 3, RESPONSE_SCHEMA, timeout_s=10)
    reply = prov.generate(req)
    assert reply.attempts == 3
    assert prov.sleeps[0] >= 0.3  # the server's hint is honoured
    assert prov.sleeps[1] < 0.3  # then plain backoff (0.01 s base, jitter)
    assert len(stub.generate_requests()) == 3


def test_retry_after_header_is_a_hint_too(stub: GeminiStub) -> None:
    stub.fail(503, retry_after="0.2")
    stub.reply()
    prov = GeminiProvider()
    prov.generate(ProviderRequest("s", (Message("user", "x"),), "cross_system", 3, RESPONSE_SCHEMA))
    assert prov.sleeps and prov.sleeps[0] >= 0.2


def test_gives_up_after_retries_exit_1_bundle_saved_ledger_failed(
    stub: GeminiStub, monkeypatch, capsys
) -> None:
    make_shop()
    monkeypatch.setenv("DCR_GEMINI_RETRIES", "2")
    for _ in range(3):
        stub.fail(500)
    code = main(["escalate", "shop", "--question", "why?", "--provider", "gemini"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Gemini error 500 after 3 attempt(s)" in err and "bundle saved:" in err
    saved = err.split("bundle saved: ", 1)[1].split(")")[0]
    assert "## Ranked root-cause candidates" in open(saved, encoding="utf-8").read()
    assert ledger_stats()["total"]["failed"] == 1


def test_400_is_not_retried(stub: GeminiStub) -> None:
    stub.fail(400)
    prov = GeminiProvider()
    with pytest.raises(ProviderError, match="rejected") as exc:
        prov.generate(ProviderRequest("s", (Message("user", "x"),), "cross_system", 3, RESPONSE_SCHEMA))
    assert exc.value.status == 400 and exc.value.attempts == 1 and len(stub.generate_requests()) == 1


def test_timeout(stub: GeminiStub) -> None:
    stub.slow(3.0)
    prov = GeminiProvider()
    t0 = time.monotonic()
    with pytest.raises(ProviderTimeout, match="timeout"):
        prov.generate(
            ProviderRequest("s", (Message("user", "x"),), "cross_system", 3, RESPONSE_SCHEMA, timeout_s=1)
        )
    assert time.monotonic() - t0 < 2.9


def test_malformed_http_body(stub: GeminiStub) -> None:
    stub.raw(200, b"{this is not json")
    with pytest.raises(MalformedReply):
        GeminiProvider().generate(
            ProviderRequest("s", (Message("user", "x"),), "cross_system", 3, RESPONSE_SCHEMA)
        )


def test_answer_text_that_is_not_the_schema_json(stub: GeminiStub) -> None:
    stub.text_reply("I think it is the database.")
    with pytest.raises(MalformedReply, match="not the JSON"):
        GeminiProvider().generate(
            ProviderRequest("s", (Message("user", "x"),), "cross_system", 3, RESPONSE_SCHEMA)
        )


def test_missing_key_names_the_variable(capsys) -> None:
    with pytest.raises(MissingApiKey, match="GEMINI_API_KEY"):
        escalate(EscalationRequest(question="q", provider="gemini"))
    assert main(["escalate", "nope", "--question", "q", "--provider", "gemini"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GEMINI_API_KEY" in err[0]


def test_every_foreign_error_is_mapped() -> None:
    from google.genai import errors as gerrors

    foreign = [
        gerrors.ClientError(404, {"error": {"code": 404, "message": "no model", "status": "NOT_FOUND"}}),
        gerrors.ServerError(503, {"error": {"code": 503, "message": "down", "status": "UNAVAILABLE"}}),
        gerrors.UnknownApiResponseError("bad"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        RuntimeError("other"),
    ]
    mapped = [map_genai_error(e, DEFAULT_MODEL, 1) for e in foreign]
    assert all(isinstance(m, ProviderError) for m in mapped)
    assert "DCR_MODEL" in str(mapped[0]) and isinstance(mapped[3], ProviderTimeout)
    assert isinstance(mapped[2], MalformedReply) and "DCR_GEMINI_BASE_URL" in str(mapped[4])


def test_retry_hint_parsing() -> None:
    from google.genai import errors as gerrors

    e = gerrors.ClientError(
        429,
        {
            "error": {
                "code": 429,
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
            }
        },
    )
    assert retry_hint_s(e) == 17.0
    assert retry_hint_s(gerrors.ClientError(429, {"error": {"code": 429}})) is None


def test_model_table_has_the_default_with_window_and_prices() -> None:
    m = MODELS[DEFAULT_MODEL]
    assert m.context_window_tokens == 1_048_576 and m.input_usd_per_mtok > 0
    # above 200k tokens the long-prompt rates apply
    assert cost_usd(DEFAULT_MODEL, 300_000, 0) > 1.5 * cost_usd(DEFAULT_MODEL, 200_000, 0)


def test_unreachable_service_is_retried_then_named(monkeypatch) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    monkeypatch.setenv("DCR_GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    prov = GeminiProvider(retries=2, backoff_s=0.01)
    with pytest.raises(ProviderError, match="cannot reach Gemini.*DCR_GEMINI_BASE_URL") as exc:
        prov.generate(ProviderRequest("s", (Message("user", "x"),), "cross_system", 3, RESPONSE_SCHEMA))
    assert exc.value.attempts == 3 and len(prov.sleeps) == 2
