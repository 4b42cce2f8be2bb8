"""Finding traces and reading them first (issue 17): find_traces over a window's spans, trace-id
prefixes, the critical path one row per span, where errors start, and notes on a question's scope."""

from __future__ import annotations

import pytest

from correlate.errors import CorrelateError, TraceNotFound
from correlate.scope import unknown_services
from correlate.trace_view import critical_path_rows, error_spans, outline
from tests.synth_spans import MS, SpanSet, TraceBuilder, window_ms


def _shop() -> SpanSet:
    """20 checkout traces a second apart; every 5th fails in pricing; durations grow with i; one
    trace of an N+1 loop (8 catalog SELECTs in a row); ids of the form <i:02x>c0ffee…"""
    b = SpanSet()
    for i in range(20):
        t = TraceBuilder(b, f"{i:02x}c0ffee" + "0" * 23 + "1", start_ms=i * 1000)
        fails = i % 5 == 4
        root = t.span("frontend", "POST /api/checkout", 0, 50 + i, status_code="ERROR" if fails else "UNSET")
        call = t.span("checkout", "POST /v1/quotes", 2, 40 + i, parent=root, kind="CLIENT")
        server = t.span(
            "pricing", "POST /v1/quotes", 3, 38 + i, parent=call, status_code="ERROR" if fails else "UNSET"
        )
        t.span(
            "pricing",
            "SELECT tax_rates",
            5,
            10,
            parent=server,
            kind="CLIENT",
            status_code="ERROR" if fails else "UNSET",
            status_message="connection refused" if fails else None,
        )
    loop = TraceBuilder(b, "fe" + "1" * 30, start_ms=30_000)
    root = loop.span("checkout", "POST /v1/checkout", 0, 100)
    for k in range(8):
        loop.span("catalog", "SELECT products", 10 + 10 * k, 9, parent=root, kind="CLIENT")
    return b


@pytest.fixture
def shop():
    with _shop().open("shop") as ds:
        yield ds


def test_find_traces_filters_orders_and_samples(shop):
    found = shop.find_traces(service="pricing", status="error", order="failing", limit=2)
    assert found.total == 4 and found.failing == 4 and len(found.traces) == 2
    assert all(h.match_service == "pricing" and h.error_count == 3 for h in found.traces)
    assert set(found.sample) == {"fast", "typical", "slow"}
    assert found.sample["fast"].match_ns <= found.sample["typical"].match_ns <= found.sample["slow"].match_ns

    slowest = shop.find_traces(limit=3)  # no service: the roots
    assert slowest.total == 21 and [h.match_operation for h in slowest.traces][0] == "POST /v1/checkout"
    assert [h.match_ns for h in slowest.traces] == sorted((h.match_ns for h in slowest.traces), reverse=True)
    assert slowest.traces[0].span_count == 9 and slowest.traces[0].service_count == 2

    by_op = shop.find_traces(operation="select products")  # a part of the name, any case
    assert by_op.total == 1 and by_op.traces[0].matched == 8

    in_range = shop.find_traces(service="frontend", min_duration_ns=60 * MS, max_duration_ns=64 * MS)
    assert in_range.total == 5 and all(60 * MS <= h.match_ns <= 64 * MS for h in in_range.traces)

    early = shop.find_traces(window_ms(0, 5000), order="earliest")  # spans that start in the window
    assert [h.trace_id[:2] for h in early.traces] == ["00", "01", "02", "03", "04"]

    none = shop.find_traces(service="paymentservice")
    assert none.total == 0 and not none.traces and "paymentservice" in none.notes[0]
    with pytest.raises(CorrelateError, match="order 'newest'"):
        shop.find_traces(order="newest")


def test_failing_order_reports_the_erroring_span_and_its_duration():
    b = SpanSet()
    t = TraceBuilder(b, "ab" * 16, start_ms=0)
    root = t.span("frontend", "GET /", 0, 100)
    t.span("db", "SELECT slow", 1, 80, parent=root, kind="CLIENT")
    t.span("db", "SELECT broken", 90, 5, parent=root, kind="CLIENT", status_code="ERROR")
    with b.open("failing") as ds:
        hit = ds.find_traces(service="db", order="failing").traces[0]
        slowest = ds.find_traces(service="db").traces[0]
    assert (hit.match_operation, hit.match_ns) == ("SELECT broken", 5 * MS)
    assert (slowest.match_operation, slowest.match_ns) == ("SELECT slow", 80 * MS)


def test_a_root_in_the_window_that_fails_the_filters_is_no_match():
    b = SpanSet()
    bad = TraceBuilder(b, "cd" * 16, start_ms=0)  # its root errs, its child is fine
    root = bad.span("frontend", "GET /", 0, 50, status_code="ERROR")
    bad.span("db", "SELECT", 1, 10, parent=root, kind="CLIENT")
    good = TraceBuilder(b, "ef" * 16, start_ms=1000)
    root = good.span("frontend", "GET /", 0, 40)
    good.span("db", "SELECT", 1, 10, parent=root, kind="CLIENT", status_code="ERROR")
    outside = TraceBuilder(b, "0f" * 16, start_ms=5000)  # its root starts before the window
    root = outside.span("frontend", "GET /", 0, 3000)
    outside.span("db", "SELECT", 2500, 10, parent=root, kind="CLIENT")
    with b.open("roots") as ds:
        ok = ds.find_traces(window_ms(0, 4000), status="ok")
        err = ds.find_traces(window_ms(0, 4000), status="error")
        late = ds.find_traces(window_ms(6000, 9000), status="ok")
    assert [h.trace_id for h in ok.traces] == ["ef" * 16]
    assert [h.trace_id for h in err.traces] == ["cd" * 16]
    assert [(h.trace_id, h.match_operation) for h in late.traces] == [("0f" * 16, "SELECT")]


def test_trace_ids_by_unique_prefix(shop):
    view = shop.trace("03c0ffee")
    assert view.trace_id.startswith("03c0ffee") and len(view.spans) == 4
    assert shop.trace("FE111111").trace_id == "fe" + "1" * 30  # any case
    with pytest.raises(CorrelateError, match="too short"):
        shop.trace("03c0ff")
    with pytest.raises(TraceNotFound):
        shop.trace("abcdef0123")


def test_an_ambiguous_prefix_names_the_traces_and_a_query():
    b = SpanSet()
    for i in range(5):
        b.trace(start_ms=i).span("web", "GET /", 0, 1)  # ids 000…01 to 000…05
    with b.open("amb") as ds:
        with pytest.raises(CorrelateError) as err:
            ds.trace("00000000")
        assert err.value.kind == "invalid_input" and "more than 3 traces start with it" in str(err.value)
        assert (
            err.value.remedy.action == "run_sql"
            and "starts_with(trace_id, '00000000')" in err.value.remedy.args["sql"]
        )
        # a 16-hex id is a 64-bit id first: stored left-padded
        assert ds.trace("0000000000000003").trace_id == "0" * 31 + "3"


def test_the_critical_path_one_row_per_span_and_where_errors_start(shop):
    loop = shop.trace("fe111111")
    rows = critical_path_rows(loop)
    assert [(svc, op, n) for _, svc, op, _, n in rows] == [
        ("checkout", "POST /v1/checkout", 1),
        ("catalog", "SELECT products", 8),
    ]
    assert sum(ns for *_, ns, _ in rows) == 100 * MS  # the path covers the trace
    head = outline(loop)
    assert head["root"] == ("checkout", "POST /v1/checkout") and head["span_count"] == 9
    assert head["services"] == ["checkout", "catalog"] and head["error_count"] == 0

    failing = shop.trace("04c0ffee")
    errs = error_spans(failing)
    assert [(s.operation, origin) for s, origin in errs] == [
        ("POST /api/checkout", False),
        ("POST /v1/quotes", False),
        ("SELECT tax_rates", True),
    ]


def test_scope_notes(shop):
    notes = shop.scope_notes(
        window_ms(15_000, 60_000), window_ms(-20_000, 15_000), ["paymentservice", "pricing"]
    )
    text = " | ".join(notes)
    assert "service 'paymentservice' is not in the dataset" in text
    assert "the window runs past the data" in text and "the baseline starts before the data" in text
    assert "thin window: 5 traces in it for these services" in text  # pricing serves no root
    assert unknown_services(["payment", "frontend"], ["paymentservice"]) == [
        "service 'paymentservice' is not in the dataset, so nothing of it was analysed (closest: payment)"
    ]
    assert shop.scope_notes(window_ms(0, 31_000)) == [
        "thin window: 21 requests in it; figures rest on few calls "
        "(widen it: the timeline shows where requests are)"
    ]
