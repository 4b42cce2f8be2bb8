"""`dcr trace`: the tree, the critical path and warnings as text and as JSON."""

from __future__ import annotations

import json

import pytest

from correlate.testing import make_dataset
from mcp_server.cli import main

MS = 1_000_000
T = "ab" * 16


@pytest.fixture
def data(dcr_home):
    make_dataset(
        "d",
        [
            dict(
                trace_id=T,
                span_id="1" * 16,
                name="GET /checkout",
                service_name="front",
                start_ns=0,
                end_ns=100 * MS,
                status_code="UNSET",
                kind="SERVER",
                host="h1",
                attributes='{"http.route": "/checkout", "http.request.method": "GET"}',
            ),
            dict(
                trace_id=T,
                span_id="2" * 16,
                parent_span_id="1" * 16,
                name="charge",
                service_name="payment",
                start_ns=90 * MS,
                end_ns=130 * MS,
                status_code="ERROR",
                kind="SERVER",
                host="h2",
                exception_type="TimeoutError",
                status_message="deadline exceeded",
            ),
            dict(
                trace_id=T,
                span_id="3" * 16,
                parent_span_id="2" * 16,
                name="SELECT",
                service_name="payment",
                start_ns=95 * MS,
                end_ns=105 * MS,
                status_code="UNSET",
                kind="CLIENT",
                host="h2",
                db_statement="SELECT 1",
            ),
        ],
    )


def test_text(data, capsys):
    assert main(["trace", "d", T]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"trace {T}: 3 spans, 100.000ms, started 1970-01-01T00:00:00.000000Z"
    # payment was shifted by -60 ms (centred in front's 60 ms gap), its db child moved with it
    assert lines[3] == (
        "  *     +0.000ms    100.000ms     60.000ms -      front: GET /checkout  "
        "[http.request.method=GET  http.route=/checkout]"
    )
    assert lines[4] == (
        "  *    +30.000ms     40.000ms     30.000ms ERROR    payment: charge  "
        "[exception.type=TimeoutError  status.message=deadline exceeded]"
    )
    assert lines[5] == "  *    +35.000ms     10.000ms     10.000ms -          payment: SELECT"
    assert lines[6] == "critical path:"
    assert len(lines) == 7 + 5  # front, charge, SELECT, charge, front
    assert err == (
        "warning: span 2222222222222222 (payment charge): clock skew: this span's timestamps were "
        "adjusted by -60ms (host h2 vs parent host h1)\n"
    )


def test_a_single_span_trace_says_span(dcr_home, capsys):
    make_dataset(
        "one",
        [
            dict(
                trace_id=T,
                span_id="1" * 16,
                name="GET /",
                service_name="front",
                start_ns=0,
                end_ns=5 * MS,
                status_code="UNSET",
                kind="SERVER",
            )
        ],
    )
    assert main(["trace", "one", T]) == 0
    assert (
        capsys.readouterr().out.splitlines()[0]
        == f"trace {T}: 1 span, 5.000ms, started 1970-01-01T00:00:00.000000Z"
    )


def test_json(data, capsys):
    assert main(["trace", "d", T, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["trace_id"] == T and doc["span_count"] == 3 and doc["duration_ns"] == 100 * MS
    assert [(s["span_id"][0], s["depth"], s["self_time_ns"]) for s in doc["spans"]] == [
        ("1", 0, 60 * MS),
        ("2", 1, 30 * MS),
        ("3", 2, 10 * MS),
    ]
    assert doc["critical_path"] == [
        {
            "span_id": "1" * 16,
            "service": "front",
            "operation": "GET /checkout",
            "start_ns": 0,
            "end_ns": 30 * MS,
        },
        {
            "span_id": "2" * 16,
            "service": "payment",
            "operation": "charge",
            "start_ns": 30 * MS,
            "end_ns": 35 * MS,
        },
        {
            "span_id": "3" * 16,
            "service": "payment",
            "operation": "SELECT",
            "start_ns": 35 * MS,
            "end_ns": 45 * MS,
        },
        {
            "span_id": "2" * 16,
            "service": "payment",
            "operation": "charge",
            "start_ns": 45 * MS,
            "end_ns": 70 * MS,
        },
        {
            "span_id": "1" * 16,
            "service": "front",
            "operation": "GET /checkout",
            "start_ns": 70 * MS,
            "end_ns": 100 * MS,
        },
    ]
    assert len(doc["warnings"]) == 1 and "clock skew" in doc["warnings"][0]
    assert doc["spans"][1]["skew_adjustment_ns"] == -60 * MS


def test_missing_trace_exit_2(data, capsys):
    assert main(["trace", "d", "f" * 32]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dcr: no spans of trace") and err.count("\n") == 1
