"""Redaction: a corpus of secret kinds planted in span attributes, exception events, logs and
code files; none reaches the request body the (real) google-genai client sends to the stub."""

from __future__ import annotations

from pathlib import Path

import pytest

from escalation import AgentContext, EscalationRequest, escalate
from escalation.redact import Redactor, placeholder
from escalation.store import db_path
from tests.escalation_data import ATTR_SECRETS, BASELINE, SECRETS, WINDOW, make_shop, write_code_tree
from tests.gemini_stub import GeminiStub


def test_the_corpus_has_at_least_20_kinds() -> None:
    assert len(SECRETS) + len(ATTR_SECRETS) >= 20


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_secret_kind_is_replaced_by_a_typed_placeholder(kind: str) -> None:
    text, secret = SECRETS[kind]
    r = Redactor()
    out = r.text(f"before\n{text}\nafter")  # header values run to the end of their line
    assert secret not in out
    assert "<redacted:" in out and out.startswith("before\n") and out.endswith("\nafter")
    assert sum(r.counts.values()) >= 1
    assert secret not in repr(r.snapshot())


def test_placeholders_are_typed_and_counted() -> None:
    r = Redactor()
    out = r.text(f"{SECRETS['jwt'][0]} and {SECRETS['aws_access_key'][0]}")
    assert placeholder("jwt") in out and placeholder("aws_access_key") in out
    assert r.snapshot()["jwt"] == 1 and r.snapshot()["aws_access_key"] == 1


def test_names_that_say_secret_are_redacted_in_mappings_but_ordinary_values_stay() -> None:
    r = Redactor()
    out = r.mapping(
        {
            **ATTR_SECRETS,
            "http.route": "/pay",
            "gen_ai.usage.input_tokens": 1234,
            "cache.key_count": "17",
            "http.request.header.cookie": "a=b",
            "lock.key": "order:ord-8F3a2c91:payment",
            "cache.key": "cart/u-91Ab7fQ2",
        }
    )
    for name in ATTR_SECRETS:
        assert out[name].startswith("<redacted:"), name
    assert out["http.route"] == "/pay" and out["gen_ai.usage.input_tokens"] == 1234
    assert out["cache.key_count"] == "17"
    assert out["lock.key"] == "order:ord-8F3a2c91:payment" and out["cache.key"] == "cart/u-91Ab7fQ2"
    assert out["http.request.header.cookie"] == placeholder("cookie")


def test_redaction_is_idempotent_on_placeholders() -> None:
    r = Redactor()
    once = r.text(SECRETS["auth_header"][0] + " " + SECRETS["query_token"][0])
    n = sum(r.counts.values())
    assert r.text(once) == once
    assert sum(r.counts.values()) == n


def test_no_planted_secret_reaches_the_request_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_shop("leaky", secrets=True)
    write_code_tree(tmp_path, secrets=True)
    monkeypatch.setenv("DCR_CODE_ROOTS", str(tmp_path))
    monkeypatch.setenv("GEMINI_API_KEY", "stub-key")
    with GeminiStub() as stub:
        monkeypatch.setenv("DCR_GEMINI_BASE_URL", stub.url)
        result = escalate(
            EscalationRequest(
                question=f"why does ledger fail? the agent saw {SECRETS['stripe_key'][0]}",
                dataset="leaky",
                window=WINDOW,
                baseline=BASELINE,
                provider="gemini",
                files=("payments/charge.py",),
                context=AgentContext(
                    stuck_description=SECRETS["github_token"][0],
                    partial_findings=(SECRETS["url_password"][0],),
                ),
            )
        )
        sent = stub.all_bytes()
        bodies = [r.body for r in stub.generate_requests()]
    assert bodies, "nothing was sent"
    assert b"payments/charge.py" in bodies[0] and b"lock timeout" in bodies[0]  # the evidence is there
    leaked = [k for k, (_, secret) in SECRETS.items() if secret.encode() in sent]
    leaked += [k for k, secret in ATTR_SECRETS.items() if secret.encode() in sent]
    assert not leaked, f"secrets reached the request: {leaked}"
    assert b"<redacted:" in bodies[0]
    kinds = set(result.redactions)
    assert {
        "jwt",
        "aws_access_key",
        "google_api_key",
        "private_key",
        "url_password",
        "auth_header",
        "query_token",
        "github_token",
        "slack_token",
        "stripe_key",
        "openai_key",
    } <= kinds
    # the ledger and the saved bundle hold counts, never values
    stored = db_path().read_bytes() + Path(result.bundle_path or "").read_bytes()
    assert not [k for k, (_, secret) in SECRETS.items() if secret.encode() in stored]
