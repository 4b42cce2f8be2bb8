"""`dcr demo`: the bundled scenario ingested, correlated and escalated; offline without a key, Gemini with one."""

from __future__ import annotations

import json

from mcp_server.cli import main
from tests.gemini_stub import DEFAULT_ANALYSIS, GeminiStub
from tests.mcp_helpers import truth


def test_demo_offline_report(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    t = truth()["root_cause"]
    assert "scenario dependency_failure: dataset 'demo-dependency_failure'" in out
    top = next(line for line in out.splitlines() if line.startswith("  1. "))
    assert t["service"] in top and any(m in top for m in t["mechanisms"])
    assert "# Escalation report" in out and "Offline report" in out


def test_demo_json_and_gemini_with_a_key(capsys, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "stub-key")
    monkeypatch.setenv("DCR_GEMINI_BACKOFF_S", "0.01")
    with GeminiStub() as stub:
        monkeypatch.setenv("DCR_GEMINI_BASE_URL", stub.url)
        assert main(["demo", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dataset"]["dataset"] == "demo" and doc["dataset"]["spans"] > 0
    sc = doc["scenario"]
    assert (sc["name"], sc["dataset"]) == ("dependency_failure", "demo-dependency_failure")
    assert sc["ingest"]["spans"] > 0 and sc["ingest"]["rejected"] == 0
    assert sc["correlation"]["candidates"][0]["service"] == truth()["root_cause"]["service"]
    esc = sc["escalation"]
    assert esc["provider"] == "gemini" and esc["analysis"] == DEFAULT_ANALYSIS
    (req,) = stub.generate_requests()
    assert "Requests have been failing or slow since 2025-06-12T09:15:00" in json.dumps(req.json)


def test_demo_unknown_scenario(capsys):
    assert main(["demo", "--scenario", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no scenario 'nope'" in err and "dependency_failure" in err and "Traceback" not in err
