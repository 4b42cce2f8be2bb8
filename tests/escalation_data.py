"""Small datasets and a secret corpus for the escalation tests.

`make_shop(name, secrets=…)` writes a three-service dataset (frontend -> payments -> ledger)
with a baseline of healthy traces and a window in which ledger's UPDATE fails and payments
retries it; the secrets are planted in span attributes, exception events, logs and a code file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from correlate.testing import make_dataset
from correlate.types import Window

__all__ = ["SECRETS", "T0", "BASELINE", "WINDOW", "make_shop", "tid", "sid"]

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
MS = 1_000_000
BASELINE = Window(T0, T0 + 600 * S)
WINDOW = Window(T0 + 600 * S, T0 + 1200 * S)

# kind -> (where it is planted as text, the secret value that must never leave the machine)
SECRETS: dict[str, tuple[str, str]] = {
    "auth_header": ("Authorization: Bearer s3cr3tB34r3rT0k3nValue42", "s3cr3tB34r3rT0k3nValue42"),
    "cookie": ("Cookie: sessionid=9f8e7d6c5b4a39281706abcdef", "9f8e7d6c5b4a39281706abcdef"),
    "api_key_header": ("x-api-key: AbCdEf0123456789GhIjKl", "AbCdEf0123456789GhIjKl"),
    "url_password": ("postgres://ledger:Pa55w0rdLedger99@db.internal:5432/ledger", "Pa55w0rdLedger99"),
    "connection_string_password": (
        "Server=db;Database=ledger;User Id=app;Password=C0nnStr1ngPwd77;",
        "C0nnStr1ngPwd77",
    ),
    "query_token": ("GET /callback?code=ok&access_token=QsT0k3nAbc123Xyz789", "QsT0k3nAbc123Xyz789"),
    "aws_access_key": ("aws key AKIAZ7Q2LMNOPQRSTU4W in config", "AKIAZ7Q2LMNOPQRSTU4W"),
    "aws_secret_key": (
        "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY1",
        "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY1",
    ),
    "google_api_key": (
        "gemini key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
    ),
    "google_oauth_token": (
        "token ya29.a0AfH6SMBx3dEfGhIjKlMnOpQrStUvWxYz0123",
        "ya29.a0AfH6SMBx3dEfGhIjKlMnOpQrStUvWxYz0123",
    ),
    "gcp_service_account_key_id": (
        '"private_key_id": "0123456789abcdef0123456789abcdef01234567"',
        "0123456789abcdef0123456789abcdef01234567",
    ),
    "github_token": (
        "GITHUB ghp_R4nd0mT0k3nV4lu3F0rT3st1ngABCDEF12",
        "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngABCDEF12",
    ),
    "gitlab_token": ("gitlab glpat-Zz9Yy8Xx7Ww6Vv5Uu4Tt", "glpat-Zz9Yy8Xx7Ww6Vv5Uu4Tt"),
    "slack_token": (
        "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    "slack_webhook": (
        "hook https://hooks.slack.com/services/T0AAAA1/B0BBBB2/XyZxYzXyZxYz123",
        "XyZxYzXyZxYz123",
    ),
    "stripe_key": ("stripe sk_live_51HqLyjWDarjtT1zdp7dcABCD", "sk_live_51HqLyjWDarjtT1zdp7dcABCD"),
    "openai_key": ("openai sk-proj-AbC123dEf456GhI789jKl012MnO345", "sk-proj-AbC123dEf456GhI789jKl012MnO345"),
    "anthropic_key": ("claude sk-ant-api03-Qw3rTy7UiOp1AsDfGhJkL", "sk-ant-api03-Qw3rTy7UiOp1AsDfGhJkL"),
    "jwt": (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    "private_key": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7Pr1v4t3K3yM4t3r14l\n"
        "-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAx7Pr1v4t3K3yM4t3r14l",
    ),
    "sendgrid_key": (
        "SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq",
    ),
    "npm_token": (
        "//registry.npmjs.org/:_authToken=npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    ),
    "secret_assignment": ("db_password = 'Hunter2IsNotSafe'", "Hunter2IsNotSafe"),
}
# planted as attribute values under telling names (caught by name + entropy)
ATTR_SECRETS = {
    "app.session.token": "Tk_9a8B7c6D5e4F3g2H1",
    "db.password": "plainpass-123",
    "service.client_secret": "Cl13ntS3cr3tV4lu3Xy",
}


def tid(i: int) -> str:
    return f"{i:032x}"


def sid(i: int, j: int) -> str:
    return f"{i:08x}{j:08x}"


def _trace(i: int, start: int, failing: bool, secrets: bool) -> list[dict[str, Any]]:
    t = tid(i)
    ledger_ms = 900 if failing else 20
    attrs: dict[str, Any] = {"http.route": "/pay", "http.response.status_code": 500 if failing else 200}
    pay_attrs: dict[str, Any] = {"rpc.method": "Charge"}
    events: list[dict[str, Any]] = []
    if secrets:
        for key, (text, _) in SECRETS.items():
            pay_attrs[f"note.{key}"] = text
        pay_attrs.update(ATTR_SECRETS)
        attrs["http.request.header.authorization"] = "Bearer s3cr3tB34r3rT0k3nValue42"
    if failing:
        stack = (
            'Traceback (most recent call last):\n  File "/srv/app/ledger/db.py", line 12, in update\n'
            "psycopg.errors.LockNotAvailable: lock timeout"
        )
        if secrets:
            stack += "\n" + "\n".join(text for text, _ in SECRETS.values())
        events = [
            {
                "time_ns": start + 900 * MS,
                "name": "exception",
                "attributes": {
                    "exception.type": "LockNotAvailable",
                    "exception.message": "lock timeout",
                    "exception.stacktrace": stack,
                },
            }
        ]
    rows = [
        dict(
            trace_id=t,
            span_id=sid(i, 1),
            parent_span_id=None,
            name="POST /pay",
            kind="SERVER",
            service_name="frontend",
            start_ns=start,
            end_ns=start + (ledger_ms + 60) * MS,
            status_code="ERROR" if failing else "OK",
            attributes=json.dumps(attrs),
            events="[]",
            http_route="/pay",
            source_id="src1",
            source_offset=i,
        ),
        dict(
            trace_id=t,
            span_id=sid(i, 2),
            parent_span_id=sid(i, 1),
            name="Charge",
            kind="SERVER",
            service_name="payments",
            start_ns=start + 10 * MS,
            end_ns=start + (ledger_ms + 40) * MS,
            status_code="ERROR" if failing else "OK",
            attributes=json.dumps(pay_attrs),
            events="[]",
            code_filepath="/srv/app/payments/charge.py",
            code_lineno=7,
            code_function="charge",
            source_id="src1",
            source_offset=i,
        ),
        dict(
            trace_id=t,
            span_id=sid(i, 3),
            parent_span_id=sid(i, 2),
            name="UPDATE balances",
            kind="CLIENT",
            service_name="ledger",
            start_ns=start + 20 * MS,
            end_ns=start + (ledger_ms + 20) * MS,
            status_code="ERROR" if failing else "OK",
            status_message="lock timeout" + (" " + SECRETS["jwt"][0] if secrets and failing else ""),
            attributes=json.dumps({"db.system": "postgresql", "db.statement": "UPDATE balances SET x = $1"}),
            events=json.dumps(events),
            db_system="postgresql",
            db_statement="UPDATE balances SET x = $1",
            exception_type="LockNotAvailable" if failing else None,
            exception_message="lock timeout" if failing else None,
            source_id="src1",
            source_offset=i,
        ),
    ]
    return rows


def make_shop(name: str = "shop", *, secrets: bool = False, traces: int = 12) -> None:
    spans: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    for i in range(traces):
        start = BASELINE.start_ns + (i + 1) * 40 * S
        spans += _trace(i + 1, start, failing=False, secrets=False)
        logs.append(
            dict(
                time_ns=start + 5 * MS,
                severity_number=9,
                severity_text="INFO",
                service_name="payments",
                body=f"charge {i} ok in 20 ms",
                trace_id=tid(i + 1),
                span_id=sid(i + 1, 2),
                source_id="src2",
                source_offset=i,
            )
        )
    for i in range(traces):
        n = 100 + i
        start = WINDOW.start_ns + (i + 1) * 40 * S
        spans += _trace(n, start, failing=i % 2 == 0, secrets=secrets)
        body = f"ledger update failed after {900 + i} ms: lock timeout"
        if secrets:
            body += " | " + " | ".join(text for text, _ in SECRETS.values())
        logs.append(
            dict(
                time_ns=start + 950 * MS,
                severity_number=17,
                severity_text="ERROR",
                service_name="ledger",
                body=body,
                trace_id=tid(n),
                span_id=sid(n, 3),
                source_id="src2",
                source_offset=100 + i,
                attributes=json.dumps(ATTR_SECRETS if secrets else {}),
            )
        )
    make_dataset(name, spans, logs)


def write_code_tree(root: Path, *, secrets: bool = False) -> None:
    """A small repository the telemetry's code paths point into (payments/charge.py, ledger/db.py)."""
    (root / "payments").mkdir(parents=True, exist_ok=True)
    (root / "ledger").mkdir(parents=True, exist_ok=True)
    lines = [f"# line {n}" for n in range(1, 7)] + ["def charge(amount):", "    return ledger.update(amount)"]
    if secrets:
        lines += [f"# {text}" for text, _ in SECRETS.values() if "\n" not in text]
        lines += [f'{k.replace(".", "_").upper()} = "{v}"' for k, v in ATTR_SECRETS.items()]
    (root / "payments" / "charge.py").write_text("\n".join(lines) + "\n")
    (root / "ledger" / "db.py").write_text(
        "\n".join(f"# db line {n}" for n in range(1, 12))
        + "\ndef update(x):\n    cur.execute('UPDATE balances SET x = %s', x)\n"
    )
