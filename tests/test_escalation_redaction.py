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


# code that holds no secret survives byte for byte (issue 18) ----------------------------------

CODE_WITHOUT_SECRETS = [
    'headers = {"Authorization": f"Bearer {PAYMENT_API_KEY}"}',
    'headers = {"Authorization": "Bearer " + token}',
    'headers["Authorization"] = "Bearer " + token',
    "req.headers['Authorization'] = 'Bearer %s' % access_token",
    'conn.request("GET", "/", headers={"Authorization": "Basic {}".format(creds)})',
    "Authorization: Bearer ${API_TOKEN}",
    "Authorization: Bearer <token>",
    'requests.get(url, headers={"X-API-Key": key})',
    '{"X-API-Key": PAYMENT_API_KEY}',
    'session.headers.update({"x-api-key": self.api_key})',
    "api_key = PAYMENT_API_KEY",
    "token = get_token(request)",
    'password = os.environ["DB_PASSWORD"]',
    'client = Client(token=token, password=f"{pw}")',
    'dsn = f"postgres://{user}:{password}@{host}/db"',
    "def charge(order, *, api_key: str) -> Receipt:",
    'log.info("Authorization header missing")',
]


@pytest.mark.parametrize("code", CODE_WITHOUT_SECRETS)
def test_code_without_a_secret_survives_byte_for_byte(code: str) -> None:
    r = Redactor(ips="off", paths="off")
    assert r.text(code) == code and not r.counts


@pytest.mark.parametrize(
    "code",
    [
        'headers = {"Authorization": "Bearer sk_live_9aZ8bY7cX6dW5eV4fU3gT2hS"}',
        'headers = {"Authorization": f"Bearer s3cr3tB34r3rT0k3nValue42"}',
        '{"X-API-Key": "AbCdEf0123456789GhIjKl"}',
        "Authorization: Bearer s3cr3tB34r3rT0k3nValue42",
    ],
)
def test_a_secret_in_code_is_still_redacted(code: str) -> None:
    out = Redactor().text(code)
    assert "<redacted:" in out and "s3cr3t" not in out and "AbCdEf0123" not in out and "9aZ8bY7" not in out


def test_client_addresses_are_masked_by_default_and_infrastructure_stays() -> None:
    r = Redactor()
    assert r.value("client.address", "203.0.113.14") == placeholder("ip_address")
    assert r.value("http.request.header.x-forwarded-for", "198.51.100.7, 10.0.0.2") == placeholder(
        "ip_address"
    )
    assert r.value("server.address", "10.0.3.7") == "10.0.3.7"
    text = "GET from 8.8.8.8 and 2001:4860:4860::8888; db 10.0.3.7:5432, ::1, at 09:15:00"
    assert r.text(text) == (
        "GET from <redacted:ip_address> and <redacted:ip_address>; db 10.0.3.7:5432, ::1, at 09:15:00"
    )
    assert r.snapshot() == {"ip_address": 4}
    assert Redactor(ips="all").text("db 10.0.3.7:5432") == "db <redacted:ip_address>:5432"
    off = Redactor(ips="off")
    assert off.value("client.address", "203.0.113.14") == "203.0.113.14" and off.text("8.8.8.8") == "8.8.8.8"


def test_local_paths_are_configurable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home" / "alice"
    monkeypatch.setenv("HOME", str(home))
    text = f"read {home}/incidents/traces.jsonl and /data/shared/logs.jsonl"
    assert Redactor().text(text) == "read ~/incidents/traces.jsonl and /data/shared/logs.jsonl"
    assert Redactor(paths="all", local_paths=["/data/shared"]).text(text) == (
        "read ~/incidents/traces.jsonl and <local>/logs.jsonl"
    )
    assert Redactor(paths="off").text(text) == text
    monkeypatch.setenv("DCR_REDACT_PATHS", "off")
    monkeypatch.setenv("DCR_REDACT_IPS", "all")
    r = Redactor()
    assert (r.paths, r.ips) == ("off", "all") and r.text(text) == text
