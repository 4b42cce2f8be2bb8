"""The agent's experience (issue 17): progressive disclosure of a trace, find_traces, the timeline,
a slim correlate with notes that say what went wrong, cursors bound to their query, trace-id
prefixes, and argument errors that show the expected shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_server import limits
from tests.mcp_helpers import BASELINE, INCIDENT, call, error_text, ingest_scenario, ok, run_client
from tests.synth_spans import SpanSet, TraceBuilder

pytestmark = pytest.mark.parametrize("mode", ["legacy"])


def _chars(result: Any) -> tuple[int, int]:
    """(characters of the text copy, of the structured copy)."""
    return len(result.content[0].text), len(limits.dumps(result.structured_content))


def _checkout_of_100_spans() -> SpanSet:
    """One checkout as real services trace it, 100 spans: frontend -> checkout -> cart, users,
    pricing, inventory (a reservation loop over 40 items, one SELECT and one UPDATE each),
    payment (lock, gateway, unlock), notification; HTTP and DB attributes on every span."""
    b = SpanSet()
    t = TraceBuilder(b, "9f3c2a71" + "5e" * 12, start_ms=0)
    http = {"http.request.method": "POST", "server.port": 8080, "http.response.status_code": 200}

    def attrs(**more: Any) -> str:
        return json.dumps({**http, **more})

    root = t.span("frontend", "POST /api/checkout", 0, 900, attributes=attrs(**{"url.path": "/api/checkout"}))
    call_ = t.span("frontend", "POST /v1/checkout", 1, 897, parent=root, kind="CLIENT", attributes=attrs())
    co = t.span("checkout", "POST /v1/checkout", 2, 895, parent=call_, attributes=attrs())
    at = 3.0
    for svc, op, db in (
        ("cart", "cart.v1.CartService/GetCart", "HGETALL cart"),
        ("users", "users.v1.UserService/GetUser", "SELECT users"),
        ("pricing", "POST /v1/quotes", "SELECT tax_rates"),
    ):
        c = t.span("checkout", op, at, 12, parent=co, kind="CLIENT", attributes=attrs())
        s = t.span(svc, op, at + 0.5, 11, parent=c, attributes=attrs())
        t.span(
            svc,
            db,
            at + 1,
            9,
            parent=s,
            kind="CLIENT",
            attributes=attrs(**{"db.statement": db + " WHERE id = $1"}),
        )
        at += 13
    c = t.span("checkout", "POST /v1/reservations", at, 600, parent=co, kind="CLIENT", attributes=attrs())
    inv = t.span("inventory", "POST /v1/reservations", at + 0.5, 599, parent=c, attributes=attrs())
    for k in range(40):  # the loop: 80 spans
        q = at + 1 + 14.9 * k
        stmt = {"db.system": "postgresql", "db.statement": "SELECT qty FROM stock WHERE sku = $1"}
        t.span("inventory", "SELECT stock", q, 4, parent=inv, kind="CLIENT", attributes=attrs(**stmt))
        stmt = {"db.system": "postgresql", "db.statement": "UPDATE stock SET qty = qty - $1 WHERE sku = $2"}
        t.span("inventory", "UPDATE stock", q + 4.5, 10, parent=inv, kind="CLIENT", attributes=attrs(**stmt))
    at += 601
    c = t.span("checkout", "POST /v1/charges", at, 200, parent=co, kind="CLIENT", attributes=attrs())
    pay = t.span(
        "payment", "POST /v1/charges", at + 0.5, 199, parent=c, status_code="ERROR", attributes=attrs()
    )
    t.span("payment", "acquire lock", at + 1, 3, parent=pay, kind="CLIENT", attributes=attrs())
    t.span(
        "payment",
        "POST /v1/payment_intents",
        at + 5,
        190,
        parent=pay,
        kind="CLIENT",
        status_code="ERROR",
        status_message="card gateway timed out after 190 ms",
        attributes=attrs(**{"exception.type": "httpx.ReadTimeout"}),
    )
    t.span("payment", "release lock", at + 196, 2, parent=pay, kind="CLIENT", attributes=attrs())
    t.span("checkout", "send order-events", at + 201, 2, parent=co, kind="PRODUCER", attributes=attrs())
    assert len(b.spans) == 100
    return b


def test_get_trace_views_of_a_100_span_trace(mode):
    from correlate.testing import make_dataset

    b = _checkout_of_100_spans()
    make_dataset("big", b.spans)
    args = {"dataset": "big", "trace_id": "9f3c2a71"}  # a prefix, as the reports print ids
    result = run_client(mode, lambda c: c.call_tool("get_trace", args))
    summary = ok(result)
    text, structured = _chars(result)
    assert text == structured < 5_000, (text, structured)  # the summary of 100 spans
    assert summary["span_count"] == 100 and summary["error_count"] == 2
    assert summary["root"] == "frontend POST /api/checkout" and summary["services"][0] == "frontend"
    ops = [r[2] for r in summary["rows"]]
    assert "SELECT stock" in ops and len(summary["rows"]) < 30  # a row a span, runs folded
    loop = [r for r in summary["rows"] if r[2] in ("SELECT stock", "UPDATE stock")]
    assert [(r[2], r[3], r[4]) for r in loop] == [("SELECT stock", 160, 40), ("UPDATE stock", 400, 40)]
    assert summary["error_origins"] == [
        [
            summary["error_origins"][0][0],
            "payment",
            "POST /v1/payment_intents",
            "httpx.ReadTimeout: card gateway timed out after 190 ms",
        ]
    ]

    topo = ok(call(mode, "get_trace", {**args, "view": "topology"}))
    assert len(topo["rows"]) == 100 and topo["columns"][:4] == ["span_id", "depth", "service", "operation"]
    assert topo["rows"][0][1] == 0 and "attributes" not in json.dumps(topo)
    errors = ok(call(mode, "get_trace", {**args, "view": "errors"}))["rows"]
    assert [(e["operation"], e.get("origin", False)) for e in errors] == [
        ("POST /v1/charges", False),
        ("POST /v1/payment_intents", True),
    ]
    sid = errors[1]["span_id"]
    one = ok(call(mode, "get_trace", {**args, "view": "spans", "span_ids": [sid, "feedfacefeedface"]}))
    (span,) = one["rows"]
    assert span["attributes"]["exception.type"] == "httpx.ReadTimeout"
    assert "host" not in span and "skew_adjustment_ns" not in span  # null and empty fields dropped
    assert any("feedfacefeedface" in w for w in one["warnings"])


def test_a_trace_id_prefix_that_is_not_unique_names_a_query(mode):
    b = SpanSet()
    for i in range(3):
        TraceBuilder(b, f"abcdef12{i:024x}", start_ms=i).span("web", "GET /", 0, 1)
    from correlate.testing import make_dataset

    make_dataset("amb", b.spans)
    text = error_text(call(mode, "get_trace", {"dataset": "amb", "trace_id": "abcdef12"}))
    assert (
        "3 traces start with it" in text and 'query_spans {"dataset": "amb", "sql": "SELECT trace_id' in text
    )
    assert "dcr " not in text


def test_find_traces_then_get_trace(mode):
    ingest_scenario()
    out = ok(
        call(mode, "find_traces", {"dataset": "shop", **INCIDENT, "service": "pricing", "status": "error"})
    )
    assert out["total"] == out["failing"] >= 5 and out["columns"][0] == "trace_id"
    assert all(r[7].startswith("pricing ") for r in out["rows"]) and set(out["sample"]) == {
        "fast",
        "typical",
        "slow",
    }
    first = out["rows"][0][0]
    assert ok(call(mode, "get_trace", {"dataset": "shop", "trace_id": first[:8]}))["trace_id"] == first
    none = ok(call(mode, "find_traces", {"dataset": "shop", "service": "pricingservice"}))
    assert none["total"] == 0 and any("closest: pricing" in n for n in none["notes"])


def test_the_timeline_finds_the_onset_and_hands_correlate_its_window(mode):
    ingest_scenario()
    result = run_client(mode, lambda c: c.call_tool("timeline", {"dataset": "shop"}))
    tl = ok(result)
    assert tl["columns"] == ["bucket", "requests", "errors", "p50_ms", "p95_ms"] and tl["bucket_s"] == 60
    assert {s["service"] for s in tl["services"]} >= {"pricing", "checkout", "frontend"}
    assert all(isinstance(v, (int, float)) for s in tl["services"] for r in s["rows"] for v in r)
    assert tl["changes"]["rows"] and tl["changes"]["rows"][0][2] in (
        "error_rate",
        "latency_ms",
        "requests_per_s",
    )
    onset = tl["onset"]
    assert "2025-06-12T09:1" in onset["at"] and onset["because"]
    out = ok(call(mode, "correlate", {"dataset": "shop", **onset["correlate"]}))
    assert out["candidates"][0]["service"] == "pricing"
    assert sum(_chars(result)) < 20_000


def test_the_onsets_window_end_keeps_the_last_span_when_read_again(mode):
    import ingest
    from correlate.testing import make_dataset
    from mcp_server.tools.base import iso_end, parse_bound

    b = SpanSet()
    for i in range(240):  # a request every 10 s for 40 minutes; errors from minute 25
        t = b.trace(start_ms=i * 10_000 + (0.0007 if i == 239 else 0))  # the last at a sub-µs time
        t.span("web", "GET /pay", 0, 20, status_code="ERROR" if i >= 150 else "UNSET")
    make_dataset("subus", b.spans)
    last = ingest.open_handle("subus").time_range[1]  # the dataset's last instant
    assert last is not None and last % 1000 == 700
    tl = ok(call(mode, "timeline", {"dataset": "subus"}))
    args = tl["onset"]["correlate"]
    assert parse_bound(args["end"], "end") == last - 700 + 1000  # not last - 700, before it
    assert parse_bound(tl["window"]["end"], "end") == last - 700 + 1000
    assert parse_bound(args["baseline_end"], "baseline_end") <= parse_bound(args["start"], "start")
    out = ok(call(mode, "correlate", {"dataset": "subus", **args}))  # taken back as it was given
    assert out["candidates"] and out["candidates"][0]["service"] == "web"
    assert (iso_end(1000), iso_end(1001), iso_end(None)) == (
        "1970-01-01T00:00:00.000001Z",
        "1970-01-01T00:00:00.000002Z",
        None,
    )


def test_correlate_is_slim_and_says_what_went_wrong(mode):
    ingest_scenario()
    result = run_client(mode, lambda c: c.call_tool("correlate", {"dataset": "shop", **INCIDENT, **BASELINE}))
    out = ok(result)
    assert _chars(result)[0] < 10_000
    assert all("sql" not in c.get("evidence", {}) for c in out["candidates"])
    assert all(set(f) <= {"kind", "service", "operation", "summary", "trace_ids"} for f in out["findings"])
    wrong = ok(call(mode, "correlate", {"dataset": "shop", **INCIDENT, "services": ["paymentservice"]}))
    assert wrong["candidates"] == [] and any(
        "'paymentservice' is not in the dataset" in n and "closest: payment" in n for n in wrong["notes"]
    )
    past = ok(
        call(
            mode,
            "correlate",
            {"dataset": "shop", "start": "2025-06-12T09:25:00Z", "end": "2025-06-12T10:00:00Z"},
        )
    )
    notes = " | ".join(past["notes"])
    assert "the window runs past the data" in notes and "thin window" in notes


def test_a_cursor_is_bound_to_its_query(mode, monkeypatch):
    ingest_scenario()
    monkeypatch.setenv("MAX_MCP_OUTPUT_TOKENS", "1500")
    sql = "SELECT span_id, name FROM spans ORDER BY 1"
    first = ok(call(mode, "query_spans", {"dataset": "shop", "sql": sql}))
    cursor = first["page"]["next_cursor"]
    assert cursor
    text = error_text(call(mode, "query_spans", {"dataset": "shop", "sql": sql + " DESC", "cursor": cursor}))
    assert "belongs to a query_spans call with other arguments (dataset, limit, sql)" in text
    again = ok(call(mode, "query_spans", {"dataset": "shop", "sql": sql, "cursor": cursor}))
    assert again["rows"][0] != first["rows"][0]


def test_focused_tools_pass_the_agents_findings_to_the_request(mode):
    """The hypothesis and the agent's partial findings reach the bundle (and so the model or the
    offline report, which judges them against the evidence)."""
    ingest_scenario()
    args = {
        "hypothesis": "checkout's retry loop overloads pricing",
        "test_approach": "compare pricing's call rate before and after 09:15",
        "partial_findings": ["pricing SELECT tax_rates fails with connection refused"],
        "dataset": "shop",
        **INCIDENT,
    }
    out = ok(call(mode, "hypothesis_test", args))
    bundle = open(out["bundle_path"], encoding="utf-8").read()
    assert args["hypothesis"] in bundle and args["partial_findings"][0] in bundle
    out = ok(
        call(
            mode,
            "performance_bottleneck",
            {
                "code_path": {
                    "entry_point": {"file": "checkout/app.py"},
                    "suspected_issues": ["N+1 in cart"],
                },
                "partial_findings": ["p95 doubled at 09:15"],
                "dataset": "shop",
            },
        )
    )
    bundle = open(out["bundle_path"], encoding="utf-8").read()
    assert "N+1 in cart" in bundle and "p95 doubled at 09:15" in bundle
