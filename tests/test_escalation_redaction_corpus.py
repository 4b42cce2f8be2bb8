"""Redaction end to end: a corpus of credential shapes planted in every place telemetry and the agent
carry text, run through `dcr escalate --dry-run` and through the real google-genai client against
the stub; none may reach the printed payload, the provider's requests, the ledger or the saved
bundle. A control run with redaction switched off shows each planted secret does reach the
payload otherwise, so a clean result means redaction removed it, not that the bundle left it out.
The other way round: ids, hashes, timestamps and ordinary base64 stay.

Each (shape, place) pair gets secrets of its own (seeded), so a leak names where it came from.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import shutil
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from correlate.testing import make_dataset
from correlate.types import CriticalSegment, TraceSpan, TraceView
from escalation import EscalationRequest, escalate
from escalation.bundle import render_trace
from escalation.redact import KINDS, Redactor
from escalation.store import db_path
from mcp_server.cli import build_parser, main
from mcp_server.commands._escalation import request_from_args
from tests.gemini_stub import GeminiStub

S = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000_000_000_000
BASELINE = (T0, T0 + 600 * S)
WINDOW = (T0 + 600 * S, T0 + 1200 * S)
CHUNK = 14  # shapes per dataset: one error span each, so the exemplar trace stays under its line cap


class Gen:
    """Random secrets of a given alphabet, seeded by (shape, place, chunk)."""

    def __init__(self, seed: str) -> None:
        self.r = random.Random(seed)

    def of(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def alnum(self, n: int) -> str:  # always a capital, a digit and a small letter: a token, not a word
        return (
            self.of(string.ascii_uppercase, 1)
            + self.of(string.digits, 1)
            + self.of(string.ascii_lowercase, 1)
            + self.of(string.ascii_letters + string.digits, n - 3)
        )

    def hex(self, n: int) -> str:
        return self.of("0123456789abcdef", n)

    def upper(self, n: int) -> str:
        return self.of(string.ascii_uppercase + string.digits, n)

    def digits(self, n: int) -> str:
        return self.of("123456789", 1) + self.of(string.digits, n - 1)

    def b64(self, nbytes: int) -> str:
        return base64.b64encode(self.r.randbytes(nbytes)).decode()

    def password(self) -> str:
        return f"{self.alnum(6)}-{self.alnum(6)}!{self.digits(2)}"

    def basic(self) -> str:
        return base64.b64encode(f"svc-{self.alnum(4)}:{self.password()}".encode()).decode()


Shape = Callable[[Gen], tuple[str, tuple[str, ...]]]


def _one(make: Callable[[Gen], tuple[str, str]]) -> Shape:
    def shape(g: Gen) -> tuple[str, tuple[str, ...]]:
        text, secret = make(g)
        return text, (secret,)

    return shape


def _pem(g: Gen) -> tuple[str, tuple[str, ...]]:
    a, b = g.b64(48), g.b64(30)
    return f"-----BEGIN RSA PRIVATE KEY-----\n{a}\n{b}\n-----END RSA PRIVATE KEY-----", (a, b)


def _cookie(g: Gen) -> tuple[str, tuple[str, ...]]:
    a, b = g.alnum(32), g.alnum(32)
    return f"Cookie: session={a}; csrftoken={b}", (a, b)


def _sigv4(header: str) -> Shape:
    def shape(g: Gen) -> tuple[str, tuple[str, ...]]:
        key, sig = "AKIA" + g.upper(16), g.hex(64)
        return (
            f"{header}AWS4-HMAC-SHA256 Credential={key}/20240501/eu-west-1/s3/aws4_request, "
            f"SignedHeaders=host, Signature={sig}"
        ), (key, sig)

    return shape


def _presigned(g: Gen) -> tuple[str, tuple[str, ...]]:
    key, sig = "AKIA" + g.upper(16), g.hex(64)
    return f"https://b.s3.amazonaws.com/k?X-Amz-Credential={key}%2F20240501&X-Amz-Signature={sig}", (key, sig)


# name -> factory: the text as it is planted, and the secrets in it that must never leave the machine
SHAPES: dict[str, Shape] = {
    # Authorization in every scheme, with and without the header name
    "basic_in_prose": _one(lambda g: (f"deadlock detected (auth header was Basic {(s := g.basic())})", s)),
    "authorization_basic": _one(lambda g: (f"Authorization: Basic {(s := g.basic())}", s)),
    "proxy_authorization": _one(lambda g: (f"Proxy-Authorization: Basic {(s := g.basic())}", s)),
    "authorization_bearer": _one(lambda g: (f"Authorization: Bearer {(s := g.alnum(40))}", s)),
    "bearer_in_prose": _one(
        lambda g: (f"upstream rejected bearer {(s := g.alnum(24) + '.' + g.alnum(12))}: 401", s)
    ),
    "authorization_json": _one(lambda g: (f'{{"authorization": "Bearer {(s := g.alnum(36))}"}}', s)),
    "authorization_escaped_json": _one(
        lambda g: (f'{{\\"Authorization\\": \\"Bearer {(s := g.alnum(36))}\\"}}', s)
    ),
    "digest_header": _one(
        lambda g: (
            f'Authorization: Digest username="ops", realm="api", nonce="{g.hex(32)}", '
            f'uri="/v1/pay", response="{(s := g.hex(32))}"',
            s,
        )
    ),
    "digest_in_prose": _one(
        lambda g: (f'retry with Digest username="svc", response="{(s := g.hex(32))}", qop=auth', s)
    ),
    "negotiate_header": _one(lambda g: (f"Authorization: Negotiate {(s := g.b64(48))}", s)),
    "negotiate_in_prose": _one(lambda g: (f"kerberos handshake failed: Negotiate {(s := g.b64(48))}", s)),
    "sigv4_header": _sigv4("Authorization: "),
    "sigv4_in_prose": _sigv4("signed request with "),
    # cookies and credential headers
    "cookie": _cookie,
    "set_cookie": _one(lambda g: (f"Set-Cookie: sid={(s := g.alnum(40))}; Path=/; HttpOnly; Secure", s)),
    "cookie_attribute_json": _one(
        lambda g: (f'{{"http.request.header.cookie": ["sid={(s := g.alnum(32))}"]}}', s)
    ),
    "x_api_key_header": _one(lambda g: (f"X-API-Key: {(s := g.alnum(32))}", s)),
    "x_auth_token_header": _one(lambda g: (f"x-auth-token: {(s := g.alnum(32))}", s)),
    # user:password@ in URLs and DSNs, and the other connection-string forms
    "postgres_url": _one(lambda g: (f"postgres://ledger:{(s := g.password())}@db.internal:5432/ledger", s)),
    "postgresql_driver_url": _one(
        lambda g: (f"postgresql+psycopg://app:{(s := g.password())}@pg:5432/orders", s)
    ),
    "mysql_url": _one(lambda g: (f"mysql://root:{(s := g.password())}@mysql:3306/shop", s)),
    "mongodb_srv_url": _one(
        lambda g: (
            f"mongodb+srv://reader:{(s := g.password())}@c0.ab1cd.mongodb.net/orders?retryWrites=true",
            s,
        )
    ),
    "redis_url_no_user": _one(lambda g: (f"redis://:{(s := g.alnum(20))}@cache:6379/0", s)),
    "rediss_url": _one(lambda g: (f"rediss://default:{(s := g.alnum(20))}@cache.example.com:6380", s)),
    "amqp_url": _one(lambda g: (f"amqp://orders:{(s := g.password())}@rabbitmq:5672/%2F", s)),
    "jdbc_postgres_query": _one(
        lambda g: (f"jdbc:postgresql://db:5432/ledger?user=app&password={(s := g.alnum(16))}&ssl=true", s)
    ),
    "jdbc_mysql": _one(lambda g: (f"jdbc:mysql://app:{(s := g.password())}@db:3306/ledger", s)),
    "jdbc_sqlserver": _one(
        lambda g: (f"jdbc:sqlserver://db:1433;databaseName=ledger;user=sa;password={(s := g.alnum(16))};", s)
    ),
    "jdbc_oracle": _one(lambda g: (f"jdbc:oracle:thin:scott/{(s := g.alnum(16))}@//db:1521/ORCL", s)),
    "go_mysql_dsn": _one(lambda g: (f"app:{(s := g.alnum(16))}@tcp(mysql:3306)/shop?parseTime=true", s)),
    "ado_connection_string": _one(
        lambda g: (f"Server=db;Database=ledger;User Id=app;Password={(s := g.alnum(16))};", s)
    ),
    "libpq_keywords": _one(
        lambda g: (f"host=db port=5432 user=app password={(s := g.alnum(16))} dbname=ledger", s)
    ),
    # secrets in query strings
    "query_token": _one(lambda g: (f"GET /oauth/callback?state=ok&token={(s := g.alnum(32))} 302", s)),
    "query_key": _one(
        lambda g: (f"https://maps.example.com/api/geocode?address=x&key={(s := g.alnum(39))}", s)
    ),
    "query_sas_sig": _one(
        lambda g: (f"https://acct.blob.core.windows.net/c/b.bin?sv=2022-11-02&sig={(s := g.alnum(43))}%3D", s)
    ),
    "query_presigned_s3": _presigned,
    # password / secret in key=value, YAML, JSON, SQL and command lines
    "password_key_value": _one(lambda g: (f"login failed password={(s := g.password())} user=bob", s)),
    "passwd_yaml": _one(lambda g: (f"passwd: {(s := g.password())}", s)),
    "json_password_with_spaces": _one(
        lambda g: (f'{{"user": "bob", "password": "{(s := "correct horse " + g.alnum(8))}"}}', s)
    ),
    "json_client_secret": _one(lambda g: (f'{{"client_secret": "{(s := g.alnum(40))}"}}', s)),
    "secret_key_value": _one(lambda g: (f"vault secret={(s := g.alnum(32))} mounted", s)),
    "escaped_json_api_key": _one(lambda g: (f'{{\\"api_key\\": \\"{(s := g.alnum(32))}\\"}}', s)),
    "sql_password": _one(lambda g: (f"ALTER USER app WITH PASSWORD '{(s := g.password())}'", s)),
    "cli_password_flag": _one(
        lambda g: (f"exec mysqld --user=mysql --password {(s := g.password())} --port 3306", s)
    ),
    "curl_user": _one(
        lambda g: (f"curl -u admin:{(s := g.password())} https://internal.example.com/health", s)
    ),
    # provider key shapes (ours and detect-secrets')
    "aws_access_key_id": _one(lambda g: (f"using {(s := 'AKIA' + g.upper(16))} for s3", s)),
    "aws_secret_access_key": _one(lambda g: (f"aws_secret_access_key = {(s := g.alnum(38) + '/+')}", s)),
    "github_classic_token": _one(lambda g: (f"git clone with {(s := 'ghp_' + g.alnum(36))}", s)),
    "github_fine_grained_token": _one(lambda g: ((s := f"github_pat_{g.alnum(22)}_{g.alnum(59)}"), s)),
    "gitlab_token": _one(lambda g: (f"token {(s := 'glpat-' + g.alnum(20))}", s)),
    "slack_bot_token": _one(lambda g: ((s := f"xoxb-{g.digits(12)}-{g.digits(13)}-{g.alnum(24)}"), s)),
    "slack_webhook": _one(
        lambda g: (f"https://hooks.slack.com/services/T{g.upper(8)}/B{g.upper(8)}/{(s := g.alnum(24))}", s)
    ),
    "stripe_live_key": _one(lambda g: ((s := "sk_live_" + g.alnum(24)), s)),
    "stripe_webhook_secret": _one(lambda g: ((s := "whsec_" + g.alnum(32)), s)),
    "openai_project_key": _one(lambda g: ((s := "sk-proj-" + g.alnum(40)), s)),
    "anthropic_key": _one(lambda g: ((s := "sk-ant-api03-" + g.alnum(40)), s)),
    "google_api_key": _one(lambda g: ((s := "AIza" + g.alnum(35)), s)),
    "google_oauth_token": _one(lambda g: ((s := "ya29." + g.alnum(40)), s)),
    "jwt": _one(lambda g: (f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ7g.{g.alnum(4)}{(s := g.alnum(43))}", s)),
    "private_key_block": _pem,
    "sendgrid_key": _one(lambda g: ((s := f"SG.{g.alnum(22)}.{g.alnum(43)}"), s)),
    "npm_token": _one(lambda g: (f"//registry.npmjs.org/:_authToken={(s := 'npm_' + g.alnum(36))}", s)),
    "pypi_token": _one(lambda g: ((s := "pypi-AgEIcHlwaS5vcmc" + g.alnum(70)), s)),
    "twilio_api_key": _one(lambda g: (f"twilio {(s := 'SK' + g.hex(32))}", s)),
    "telegram_bot_token": _one(lambda g: (f"bot {(s := g.digits(9) + ':' + g.alnum(35))}", s)),
    "huggingface_token": _one(lambda g: ((s := "hf_" + g.alnum(34)), s)),
    "azure_storage_key": _one(
        lambda g: (f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={(s := g.b64(66))}", s)
    ),
    "discord_bot_token": _one(lambda g: ((s := f"M{g.alnum(23)}.{g.alnum(6)}.{g.alnum(27)}"), s)),
    "mailchimp_key": _one(lambda g: ((s := g.hex(32) + "-us6"), s)),
    "square_oauth_secret": _one(lambda g: ((s := "sq0csp-" + g.alnum(43)), s)),
}

# attributes whose value alone does not say it is a credential: only the name does
HEADER_SHAPES: dict[str, Callable[[Gen], tuple[Any, str]]] = {
    "http.request.header.authorization": lambda g: ([s := g.alnum(40)], s),
    "http.request.header.proxy-authorization": lambda g: ([s := g.alnum(40)], s),
    "http.request.header.cookie": lambda g: ([f"sid={(s := g.alnum(32))}"], s),
    "http.response.header.set-cookie": lambda g: ([f"sid={(s := g.alnum(32))}; HttpOnly"], s),
    "http.request.header.x-api-key": lambda g: ([s := g.alnum(32)], s),
    "http.request.header.x-amz-security-token": lambda g: ([s := g.b64(60)], s),
    "rpc.grpc.request.metadata.authorization": lambda g: ([s := g.alnum(40)], s),
    "db.password": lambda g: ((s := "plain password " + g.alnum(6)), s),
}

# where the corpus is planted; events and log attributes are not rendered into a bundle today, so
# the control does not expect them there (they are planted so that a change that renders them is caught)
PLACES = (
    "span_attribute",
    "header_attribute",
    "status_message",
    "exception_message",
    "event",
    "log_body",
    "log_attribute",
    "code_file",
    "question",
    "agent_context",
)
NOT_RENDERED = {"event", "log_attribute"}

# evidence that must survive redaction unchanged
EVIDENCE = (
    "4bf92f3577b34da6a3ce929d0e0e4736",  # a trace id
    "00f067aa0ba902b7",  # a span id
    "traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "request 9b2f6c1e-3a4d-4e8f-9c0b-7d1e2f3a4b5c",
    "REQ 9B2F6C1E-3A4D-4E8F-9C0B-7D1E2F3A4B5C",
    "deployed commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "git.commit.sha=9fceb02d0ae598e95dc970b74767f19372d61af8",
    "image sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "Digest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
    "at 2024-05-01T12:00:00.123456Z and 2024-05-01 12:00:00+02:00",
    "grpc body CgsKCWxvY2FsaG9zdBIFCAEQARoNCgtoZWxsbyB3b3JsZA==",
    '{"payload": "EhQKBXNoaXBzEgtBS0lBIHRhZ2dlZBoGCAEQARgB", "encoding": "base64"}',
    "data=CgAKIAZ7Q2LMNOPQRSTU4WxyzQk9PVE1fTE9HX0xFVkVM",  # an AWS key shape inside a longer base64 run
    "basic auth failed for user bob; bearer authentication required; Negotiate failed",
    "password reset requested for user 42; the session token expired",
    "postgres://db.internal:5432/ledger and https://shop.example.com:8443/api/v1/orders?page=2&limit=50",
    "git@github.com:org/repo.git pushed by bob@example.com",
    'password = os.environ["DB_PASSWORD"]',
    "secret = self.secret; token = get_token(request)",
    "api_key: ${API_KEY}",
    "UPDATE balances SET x = $1 WHERE id = $2",
    "lock order:ord-8F3a2c91:payment held 412 ms on node-4",
)
EVIDENCE_ATTRIBUTES: dict[str, Any] = {
    "lock.key": "order:ord-8F3a2c91:payment",
    "cache.key": "cart/u-91Ab7fQ2",
    "messaging.kafka.message.key": "ord-7781",
    "gen_ai.usage.input_tokens": 1234,
    "http.request.header.content-type": ["application/json"],
    "http.request.header.x-request-id": ["4bf92f3577b34da6a3ce929d0e0e4736"],
    "http.request.header.content-length": ["512"],
    "k8s.secret.name": "db-creds",
    "http.request.body.size": 2048,
    "rpc.message.payload": "CgsKCWxvY2FsaG9zdBIFCAEQARoNCgtoZWxsbyB3b3JsZA==",
}


# the corpus, planted ---------------------------------------------------------------------------------


class Planted:
    """One chunk of shapes planted in every place; `secrets[(shape, place)]` are what it planted."""

    def __init__(self, chunk: int, names: list[str]) -> None:
        self.chunk, self.names = chunk, names
        self.secrets: dict[tuple[str, str], tuple[str, ...]] = {}
        self.texts: dict[tuple[str, str], str] = {}

    def text(self, name: str, place: str) -> str:
        text, secrets = SHAPES[name](Gen(f"{name}/{place}/{self.chunk}"))
        self.secrets[(name, place)], self.texts[(name, place)] = secrets, text
        return text

    def headers(self, place: str) -> dict[str, Any]:
        out = {}
        for name, make in HEADER_SHAPES.items():
            value, secret = make(Gen(f"{name}/{place}/{self.chunk}"))
            self.secrets[(name, place)] = (secret,)
            out[name] = value
        return out


def _tid(chunk: int, i: int) -> str:
    return f"{chunk + 1:04x}{i:028x}"


def _sid(i: int, j: int) -> str:
    return f"{i:08x}{j:08x}"


def _healthy(chunk: int, i: int, start: int) -> list[dict[str, Any]]:
    t = _tid(chunk, i)
    return [
        dict(
            trace_id=t,
            span_id=_sid(i, 1),
            name="POST /pay",
            kind="SERVER",
            service_name="frontend",
            start_ns=start,
            end_ns=start + 60 * MS,
            status_code="OK",
            attributes="{}",
            events="[]",
            source_id="src1",
            source_offset=i,
        ),
        dict(
            trace_id=t,
            span_id=_sid(i, 2),
            parent_span_id=_sid(i, 1),
            name="Charge",
            kind="SERVER",
            service_name="payments",
            start_ns=start + 5 * MS,
            end_ns=start + 40 * MS,
            status_code="OK",
            attributes="{}",
            events="[]",
            source_id="src1",
            source_offset=i,
        ),
    ]


# a different first word a log line: log templates (Drain) never merge lines that start differently,
# so each planted secret has a template of its own and the control can show it reaches the payload
_LOG_HEADS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliett",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
)


def plant(chunk: int, names: list[str], code_root: Path) -> Planted:
    """A dataset `corpus<chunk>` and a code file `corpus<chunk>.py` holding the shapes in every place."""
    p = Planted(chunk, names)
    spans: list[dict[str, Any]] = []
    for i in range(8):
        spans += _healthy(chunk, i + 1, BASELINE[0] + (i + 1) * 40 * S)
        spans += _healthy(chunk, 100 + i, WINDOW[0] + (i + 2) * 40 * S)
    start, t = WINDOW[0] + 20 * S, _tid(chunk, 999)
    root_attrs = {
        "http.route": "/pay",
        **{f"corpus.{n}": p.text(n, "span_attribute") for n in names},
        **p.headers("header_attribute"),
        **EVIDENCE_ATTRIBUTES,
    }
    spans.append(
        dict(
            trace_id=t,
            span_id=_sid(999, 0),
            name="POST /pay",
            kind="SERVER",
            service_name="frontend",
            start_ns=start,
            end_ns=start + 2000 * MS,
            status_code="ERROR",
            status_message="charge failed",
            attributes=json.dumps(root_attrs),
            events="[]",
            source_id="src1",
            source_offset=999,
        )
    )
    logs = []
    for j, n in enumerate(names, 1):
        s0 = start + j * 100 * MS
        exc_text = p.text(n, "event")
        event = {
            "time_ns": s0 + 50 * MS,
            "name": "exception",
            "attributes": {
                "exception.type": "ChargeError",
                "exception.message": exc_text,
                "exception.stacktrace": f"Traceback (most recent call last):\nChargeError: {exc_text}",
            },
        }
        spans.append(
            dict(
                trace_id=t,
                span_id=_sid(999, j),
                parent_span_id=_sid(999, 0),
                name=f"Charge {j}",
                kind="CLIENT",
                service_name="payments",
                start_ns=s0,
                end_ns=s0 + 90 * MS,
                status_code="ERROR",
                status_message=p.text(n, "status_message"),
                exception_type="ChargeError",
                exception_message=p.text(n, "exception_message"),
                attributes="{}",
                events=json.dumps([event]),
                source_id="src1",
                source_offset=1000 + j,
            )
        )
        logs.append(
            dict(
                time_ns=s0 + 60 * MS,
                severity_number=17,
                severity_text="ERROR",
                service_name="payments",
                body=f"{_LOG_HEADS[j % len(_LOG_HEADS)]} charge failed: {p.text(n, 'log_body')}",
                trace_id=t,
                span_id=_sid(999, j),
                source_id="src2",
                source_offset=j,
                attributes=json.dumps(p.headers("log_attribute") if j == 1 else {}),
            )
        )
    make_dataset(f"corpus{chunk}", spans, logs)
    code = [f"SAMPLE_{j} = r'''{p.text(n, 'code_file')}'''" for j, n in enumerate(names)]
    (code_root / f"corpus{chunk}.py").write_text("\n".join(code) + "\n")
    return p


def _request_args(p: Planted) -> list[str]:
    ctx = [p.text(n, "agent_context") for n in p.names]
    args = [
        "escalate",
        f"corpus{p.chunk}",
        "--question",
        "Why do charges fail? " + " | ".join(p.text(n, "question") for n in p.names),
        "--start",
        str(WINDOW[0]),
        "--end",
        str(WINDOW[1]),
        "--baseline-start",
        str(BASELINE[0]),
        "--baseline-end",
        str(BASELINE[1]),
        "--file",
        f"corpus{p.chunk}.py",
        "--stuck",
        " ; ".join(ctx[0::3]),
    ]
    for c in ctx[1::3]:
        args += ["--tried", c]
    for c in ctx[2::3]:
        args += ["--finding", c]
    return args


def _request(p: Planted, **kw: Any) -> EscalationRequest:
    """The same request `dcr escalate` builds from those arguments."""
    args = build_parser().parse_args(_request_args(p) + ["--provider", "gemini"])
    return dataclasses.replace(request_from_args(args), **kw)


class _NoRedaction(Redactor):
    def text(self, text: str) -> str:
        return text

    def value(self, name: str, value: Any) -> Any:
        return value


@contextmanager
def _redaction_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with monkeypatch.context() as m:
        m.setattr("escalation.bundle.Redactor", _NoRedaction)
        m.setattr("escalation.preparation.Redactor", _NoRedaction)
        yield


def _log_templates(p: Planted) -> str:
    """The log templates the bundle shows without redaction: correlate's, of the planted lines."""
    from correlate import Window, open_dataset

    with open_dataset(f"corpus{p.chunk}") as ds:
        counts = ds.log_template_counts(Window(*WINDOW), Window(*BASELINE))
    return "\n".join(t.template for t in counts.templates)


def _stored_bytes(home: Path) -> bytes:
    """Everything escalation wrote under DCR_HOME (the ledger with its WAL, saved bundles), not the datasets."""
    return b"\n".join(
        f.read_bytes()
        for f in sorted(home.rglob("*"))
        if f.is_file() and "datasets" not in f.relative_to(home).parts
    )


def _forget_escalations(home: Path) -> None:
    for f in home.glob("escalation.sqlite*"):
        f.unlink()
    shutil.rmtree(home / "escalations", ignore_errors=True)


def _leaks(p: Planted, sinks: dict[str, bytes]) -> list[str]:
    return [
        f"{shape} in {place} -> {sink}"
        for (shape, place), secrets in p.secrets.items()
        for sink, data in sinks.items()
        for s in secrets
        if s.encode() in data
    ]


# the tests --------------------------------------------------------------------------------------------


def test_the_corpus_has_at_least_40_shapes_short_enough_to_reach_the_bundle() -> None:
    assert len(SHAPES) + len(HEADER_SHAPES) >= 40
    for name, make in SHAPES.items():
        text, secrets = make(Gen(name))
        assert len(text) <= 200, name  # a status message is clipped at 200 characters
        assert secrets and all(len(s) >= 8 and s in text for s in secrets), name


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_shape_is_redacted_in_text(name: str) -> None:
    text, secrets = SHAPES[name](Gen(name))
    r = Redactor()
    out = r.text(f"before\n{text}\nafter")
    assert not [s for s in secrets if s in out], out
    assert out.startswith("before\n") and out.endswith("\nafter") and r.counts
    assert set(r.counts) <= set(KINDS)


@pytest.mark.parametrize("name", sorted(HEADER_SHAPES))
def test_credential_attributes_are_redacted_by_name(name: str) -> None:
    value, secret = HEADER_SHAPES[name](Gen(name))
    r = Redactor()
    out = r.mapping({name: value, "http.route": "/pay"})
    assert secret not in json.dumps(out) and out["http.route"] == "/pay"
    kind = next(iter(r.counts))
    assert kind == (
        "auth_header"
        if "authorization" in name
        else "cookie"
        if "cookie" in name
        else "api_key_header"
        if "header" in name
        else "secret_attribute"
    )


@pytest.mark.parametrize("text", EVIDENCE)
def test_evidence_stays(text: str) -> None:
    r = Redactor()
    assert r.text(text) == text and not r.counts


def test_evidence_attributes_stay() -> None:
    r = Redactor()
    assert r.mapping(EVIDENCE_ATTRIBUTES) == EVIDENCE_ATTRIBUTES and not r.counts


def test_an_excerpt_that_starts_inside_a_key_block_is_redacted() -> None:
    body = [base64.b64encode(bytes(range(i, i + 48))).decode() for i in range(3)]
    excerpt = (
        "\n".join(f"  {n} | {line}" for n, line in enumerate(body, 20)) + "\n  23 | -----END PRIVATE KEY-----"
    )
    out = Redactor().text(excerpt)
    assert not [b for b in body if b in out] and "<redacted:private_key>" in out


def test_attributes_are_redacted_before_they_are_clipped() -> None:
    secret = Gen("clip").basic()
    span = TraceSpan(
        "00f067aa0ba902b7",
        None,
        "frontend",
        "POST /pay",
        "SERVER",
        None,
        0,
        10 * MS,
        10 * MS,
        10 * MS,
        0,
        "ERROR",
        "x" * 180 + f" auth header was Basic {secret}",
        {"note": "y" * 220 + f" auth header was Basic {secret}"},
        True,
    )
    view = TraceView(
        "4bf92f3577b34da6a3ce929d0e0e4736",
        (span,),
        (CriticalSegment(span.span_id, "frontend", "POST /pay", 0, 10 * MS),),
        (),
        0,
        10 * MS,
    )
    r = Redactor()
    text, fact = render_trace(view, "failing", ["src1"], r)
    assert secret[:8] not in text + json.dumps(fact) and r.counts["auth_header"] == 2


def test_no_planted_secret_leaves_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], dcr_home: Path
) -> None:
    monkeypatch.setenv("DCR_CODE_ROOTS", str(tmp_path))
    names = sorted(SHAPES)
    chunks = [names[i : i + CHUNK] for i in range(0, len(names), CHUNK)]
    leaks: list[str] = []
    unseen: list[str] = []
    lost: list[str] = []
    planted = 0
    for k, chunk in enumerate(chunks):
        p = plant(k, chunk, tmp_path)
        args = _request_args(p)

        # control: without redaction every secret planted where the bundle renders reaches the payload
        with _redaction_off(monkeypatch):
            assert main(args + ["--dry-run"]) == 0
        plain = capsys.readouterr().out
        _forget_escalations(dcr_home)  # the control's unredacted bundle and ledger row are not under test
        templates = _log_templates(p)
        for (shape, place), secrets in p.secrets.items():
            if place in NOT_RENDERED:
                continue
            for s in secrets:
                masked = place == "log_body" and s not in templates
                if (
                    s not in plain and not masked
                ):  # log templates mask numbers and ids, and merge similar lines
                    unseen.append(f"{shape} in {place}")

        # dry run: the printed body; a real run: what google-genai sent to the endpoint
        assert main(args + ["--dry-run"]) == 0
        out = capsys.readouterr()
        dry = (out.out + out.err).encode()
        assert main(args + ["--dry-run", "--json"]) == 0  # the result's echo of the question too
        dry += capsys.readouterr().out.encode()
        monkeypatch.setenv("GEMINI_API_KEY", "stub-key")
        with GeminiStub() as stub:
            monkeypatch.setenv("DCR_GEMINI_BASE_URL", stub.url)
            result = escalate(_request(p))
            sent = stub.all_bytes()
            assert stub.generate_requests(), "nothing was sent"
        monkeypatch.delenv("GEMINI_API_KEY")
        leaks += _leaks(
            p,
            {
                "dry-run output": dry,
                "provider request": sent,
                "ledger and saved bundle": _stored_bytes(dcr_home),
            },
        )
        assert result.redactions and set(result.redactions) <= set(KINDS)
        assert Path(result.bundle_path or "").parent == dcr_home / "escalations"
        lost += [t for t in EVIDENCE_ATTRIBUTES.values() if isinstance(t, str) and t not in out.out]
        lost += [t for t in (_tid(k, 999), _sid(999, 1)) if t not in out.out]
        planted += sum(len(s) for s in p.secrets.values())
    assert not unseen, f"the control did not carry these to the payload: {unseen}"
    assert not leaks, f"{len(leaks)} of {planted} planted secrets left the machine: {leaks}"
    assert not lost, f"evidence lost to redaction: {lost}"
    assert planted >= 40 * 8


def test_the_ledger_records_kinds_and_counts_never_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    monkeypatch.setenv("DCR_CODE_ROOTS", str(tmp_path))
    p = plant(0, sorted(SHAPES)[:CHUNK], tmp_path)
    result = escalate(_request(p, provider="offline", dry_run=True))
    con = sqlite3.connect(db_path())
    (raw,) = con.execute("SELECT redactions FROM ledger WHERE id = ?", (result.escalation_id,)).fetchone()
    con.close()
    recorded = json.loads(raw)
    assert recorded == result.redactions and sum(recorded.values()) >= len(p.names)
    assert all(k in KINDS and isinstance(n, int) and n > 0 for k, n in recorded.items())
