"""The ledger: migrations applied once, one row per escalation and turn, `dcr stats` by day/type/model."""

from __future__ import annotations

import json

import pytest

from escalation import EscalationRequest, escalate, ledger_stats
from escalation.decide import EscalationSignals, EscalationThresholds, should_escalate
from escalation.store import MIGRATIONS, connect, migrate
from mcp_server.cli import main
from tests.escalation_data import BASELINE, WINDOW, make_shop


def test_migrating_twice_is_a_no_op() -> None:
    con = connect()  # applies every migration
    try:
        names = [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY name")]
        assert names == [n for n, _ in MIGRATIONS] and names[0].startswith("m001_")
        assert migrate(con) == []
        assert [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY name")] == names
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
    connect().close()  # a second open does not fail on existing tables


def test_every_escalation_is_recorded_with_reasons_sections_and_redactions() -> None:
    make_shop("shop", secrets=True)
    escalate(
        EscalationRequest(
            question="why?",
            dataset="shop",
            window=WINDOW,
            baseline=BASELINE,
            provider="offline",
            analysis_type="performance",
        )
    )
    escalate(EscalationRequest(question="why?", dataset="shop", provider="offline", dry_run=True))
    con = connect()
    try:
        rows = [dict(r) for r in con.execute("SELECT * FROM ledger ORDER BY created_at")]
    finally:
        con.close()
    assert [(r["kind"], r["outcome"], r["analysis_type"]) for r in rows] == [
        ("escalation", "ok", "performance"),
        ("dry_run", "dry_run", "cross_system"),
    ]
    first = rows[0]
    assert first["dataset"] == "shop" and first["model"] == "offline-report-v1"
    assert json.loads(first["reasons"])  # why it was escalated (a threshold, or asked)
    sections = json.loads(first["bundle_sections"])
    assert (
        list(sections)[:4] == ["question", "summary", "timeline", "candidates"] and first["bundle_tokens"] > 0
    )
    assert json.loads(first["redactions"]).get("jwt", 0) >= 1
    assert first["output_tokens"] > 0 and first["latency_s"] >= 0


def test_stats_by_day_type_and_model(capsys) -> None:
    for t in ("performance", "performance", "cross_system"):
        escalate(EscalationRequest(question="q", provider="offline", analysis_type=t))
    s = ledger_stats()
    assert s["total"]["calls"] == 3 and s["total"]["ok"] == 3
    assert {r["analysis_type"]: r["calls"] for r in s["by_type"]} == {"cross_system": 1, "performance": 2}
    assert [(r["model"], r["calls"]) for r in s["by_model"]] == [("offline-report-v1", 3)]
    assert len(s["by_day"]) == 1 and s["by_day"][0]["calls"] == 3
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["calls"] == 3
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 ledger rows: 3 ok, 0 failed, 0 dry runs") and "by analysis type" in out
    header, row = out.split("by model\n")[1].splitlines()[:2]
    assert row.startswith("  offline-report-v1 (offline) ")
    assert len(header) == len(row) and header.endswith("avg_latency_s")  # the columns line up


# should_escalate: one row a case (signals, expected decision, expected reason count)
CASES = [
    (EscalationSignals(), False, 0),
    (EscalationSignals(files_involved=51), True, 1),
    (EscalationSignals(files_involved=50), False, 0),
    (EscalationSignals(trace_bytes=101 * 2**20), True, 1),
    (EscalationSignals(services_involved=4), True, 1),
    (EscalationSignals(services_involved=3), False, 0),
    (EscalationSignals(time_span_s=3601), True, 1),
    (EscalationSignals(attempted_approaches=6), True, 1),
    (EscalationSignals(files_involved=60, services_involved=5, attempted_approaches=9), True, 3),
]


@pytest.mark.parametrize(("signals", "escalate_", "n"), CASES)
def test_should_escalate_thresholds(signals: EscalationSignals, escalate_: bool, n: int) -> None:
    d = should_escalate(signals, EscalationThresholds())
    assert d.escalate is escalate_ and len(d.reasons) == n


def test_should_escalate_reasons_and_configuration(monkeypatch) -> None:
    d = should_escalate(EscalationSignals(services_involved=5, time_span_s=7200))
    assert d.reasons == ("5 services involved (more than 3)", "time span 2.00 h (more than 1.00 h)")
    monkeypatch.setenv("DCR_ESCALATE_MAX_SERVICES", "10")
    monkeypatch.setenv("DCR_ESCALATE_MIN_REASONS", "2")
    d = should_escalate(EscalationSignals(services_involved=5, time_span_s=7200))
    assert not d.escalate and d.reasons == ("time span 2.00 h (more than 1.00 h)",)
    assert should_escalate(EscalationSignals(files_involved=10), EscalationThresholds(max_files=5)).escalate
