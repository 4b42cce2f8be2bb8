"""The bundle a model can reason on (issue 18), on the recorded scenarios: the agent's scope does
not filter, a bundle without a window says what it chose and why, each figure has one
definition, every cut is listed, the lock scenario's request is at least 25 % smaller than it was
with every candidate figure and every item the offline report cites still in it, and the offline
report's verdicts on hypotheses written from the scenarios' truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from correlate import Window, open_dataset
from correlate.types import Candidate
from escalation import AgentContext, EscalationRequest, escalate
from escalation.bundle import BundleBuilder, figure_text

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
NAMES = (
    "lock_clock_skew",
    "retry_storm",
    "dependency_failure",
    "deploy_n_plus_one",
    "network_delay",
    "cpu_saturation",
    "queue_redelivery",
)
# `dcr escalate lock_clock_skew --dry-run` over the incident window at the default budget, measured
# before issue 18 (commit c405a73): the request's token count (system instruction and message)
LOCK_REQUEST_TOKENS_BEFORE = 13_823


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenarios ingested once into their own DCR_HOME."""
    from ingest.pipeline import ingest_paths

    home = tmp_path_factory.mktemp("scenario_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCR_HOME", str(home))
        for name in NAMES:
            ingest_paths([str(SCENARIOS / name)], dataset=name, workers=1)
    return home


@pytest.fixture
def home(library: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DCR_HOME", str(library))
    monkeypatch.setenv("DCR_CODE_ROOTS", str(library))  # no code of this repository in the bundles
    return library


def _truth(name: str) -> dict:
    return json.loads((SCENARIOS / name / "truth.json").read_text())


def _periods(name: str) -> tuple[Window, Window]:
    w = _truth(name)["window"]
    return (
        Window(w["incident_start_ns"], w["incident_end_ns"]),
        Window(w["baseline_start_ns"], w["baseline_end_ns"]),
    )


def _req(name: str, *, window: bool = True, **kw) -> EscalationRequest:
    w, b = _periods(name)
    base = dict(question="What is the root cause?", dataset=name, provider="offline")
    if window:
        base.update(window=w)
    return EscalationRequest(**{**base, **kw})


def _build(req: EscalationRequest):
    with open_dataset(req.dataset) as s:
        return BundleBuilder(req, s, budget_tokens=974_848).build()


def _item(text: str, eid: str) -> str:
    """The text of one evidence item."""
    m = re.search(rf"^\[{eid}\] .*?(?=^\[E\d+\] |^## |\Z)", text, re.M | re.S)
    assert m, eid
    return m.group(0)


# 1. the agent's scope says where to look first, never what to hide ---------------------------


def test_the_agents_scope_does_not_filter_the_candidates(home: Path) -> None:
    from mcp_server.tools.escalation import ClaudeContext, CodeScopeIn, build_request

    req = build_request(
        question="Why do checkouts fail?",
        context=ClaudeContext(
            stuck_description="checkout and frontend return 502",
            code_scope=CodeScopeIn(service_names=["checkout", "frontend"]),
        ),
        analysis_type="cross_system",
        dataset="retry_storm",
        start="2025-06-12T09:15:00Z",
        end="2025-06-12T09:30:00Z",
    )
    assert req.services == () and req.context.code_scope.service_names == ("checkout", "frontend")
    b = _build(req)
    cands = [c for c in b.facts["candidates"] if not c.get("finding")]
    assert cands[0]["service"] == "inventory" and cands[0]["operation"] == "UPDATE stock"
    assert any(c["mechanism"] == "retry_storm" for c in cands) and len(cands) >= 6
    text = b.text()
    assert (
        "services checkout, frontend (where the agent looked first; the evidence below covers every service)"
        in text
    )
    assert (
        "note: the agent looked at checkout, frontend first; the strongest candidates are elsewhere: inventory (#1, #2)"
        in text
    )


def test_an_asked_services_filter_says_what_it_left_out(home: Path) -> None:
    b = _build(_req("retry_storm", services=("checkout", "frontend")))
    assert {c["service"] for c in b.facts["candidates"] if not c.get("finding")} <= {"checkout", "frontend"}
    assert (
        "services filter (asked): checkout, frontend: candidates, exemplar traces and logs of these only; "
        "5 candidates on other services left out, the strongest #1 inventory / UPDATE stock latency_regression "
        "(score 0.93, confidence high)"
    ) in b.text()


# 2. no window: the onset proposes one, or the whole dataset without a baseline, said so ------


def test_without_a_window_the_onset_proposes_window_and_baseline(home: Path) -> None:
    b = _build(_req("lock_clock_skew", window=False))
    onset = b.facts["window"]["start_ns"]
    assert b.facts["window"]["origin"] == "onset" and b.facts["baseline"]["origin"] == "onset"
    assert (
        b.facts["baseline"]["end_ns"] == onset
        and abs(onset - _truth("lock_clock_skew")["onset_ns"]) <= 60 * 10**9
    )
    summary = next(s for s in b.sections if s.key == "summary").text
    assert "proposed, as no window was given: it starts at the onset 2025-06-12T09:14:30.000Z" in summary
    assert (
        "baseline 2025-06-12T09:00:00.000015Z .. 2025-06-12T09:14:30.000000Z (870 s): proposed: the time before the onset"
        in summary
    )
    timeline = next(s for s in b.sections if s.key == "timeline").text
    assert (
        "onset 09:14:30.000" in timeline
        and "change point 09:14:30.000 payment POST /v1/charges: latency" in timeline
    )
    assert b.facts["candidates"][0]["service"] == "payment"


def test_without_a_window_or_an_onset_nothing_is_called_baseline(home: Path) -> None:
    b = _build(_req("network_delay", window=False))
    assert (
        b.facts["window"]["origin"] == "whole" and b.facts["baseline"] is None and not b.facts["has_baseline"]
    )
    text = b.text()
    assert (
        "the whole dataset: no window was given and the timeline shows no change in errors or latency" in text
    )
    assert (
        "no baseline: nothing before the window to compare with, so every figure below is the window's alone"
        in text
    )
    # no other line speaks of a baseline, and no figure is compared with one
    said = [x for x in text.splitlines() if re.search(r"(?i)baseline|\(before", x)]
    assert said == [
        "## Dataset and window (no baseline)",
        "no baseline: nothing before the window to compare with, so every figure below is the window's alone",
        "note: no baseline: the dataset has no data before the window, so figures are not compared",
        "## Service graph in the window (no baseline to compare with)",
        "## Log templates with counts in the window (no baseline)",
    ]
    assert not re.search(r"(\d|ms|%|n/a) -> [-\d]", text)
    assert "## Service graph change (baseline -> window)" not in text


# 3. one definition per figure, stated once, used everywhere ----------------------------------


def test_every_figure_of_every_candidate_is_in_the_bundle_as_defined(home: Path) -> None:
    req = _req("lock_clock_skew")
    b = _build(req)
    text = b.text()
    assert text.count("how to read the figures:") == 1  # the definitions, once
    with open_dataset("lock_clock_skew") as s:
        report = s.correlate(*_periods("lock_clock_skew"))
    by_rank = {c["rank"]: c["evidence_id"] for c in b.facts["candidates"] if "rank" in c}
    for rank, c in enumerate(report.candidates, 1):
        assert rank in by_rank, f"candidate #{rank} is not in the bundle"
        item = _item(text, by_rank[rank])
        for period in (c.evidence.before, c.evidence.after, c.evidence.details):
            for k, v in period.items():
                assert figure_text(k, v) in item, (rank, k, v, item)


def test_latency_figures_share_their_denominators(home: Path) -> None:
    with open_dataset("retry_storm") as s:
        report = s.correlate(*_periods("retry_storm"))
    c: Candidate = report.candidates[0]
    before, after, details = c.evidence.before, c.evidence.after, c.evidence.details
    per_request = (after["total_self_ns"] / after["requests"], before["total_self_ns"] / before["requests"])
    assert details["delta_self_per_request_ns"] == round(per_request[0] - per_request[1])
    assert details["p50_self_ratio"] == round(after["p50_self_ns"] / before["p50_self_ns"], 3)
    from correlate.analyses.common import fmt_ms

    assert f"(mean per request {fmt_ms(per_request[1])} -> {fmt_ms(per_request[0])})" in c.summary


def test_whole_dataset_counts_are_not_under_the_windows_heading(home: Path) -> None:
    summary = next(s for s in _build(_req("lock_clock_skew")).sections if s.key == "summary").text
    assert summary.startswith("dataset lock_clock_skew (all of it): 804 spans in 76 traces")
    assert "in the window: 449 spans (21 ERROR), 170 requests (9 failed), 46 traces" in summary
    assert "in the baseline: 355 spans (0 ERROR), 127 requests (0 failed), 30 traces" in summary
    assert "payment 8 -> 9 (0 -> 3 failed)" in summary


# 4. every cut is listed ----------------------------------------------------------------------


def test_clipped_texts_and_missing_code_files_are_declared(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import escalation.bundle as bundle

    monkeypatch.setattr(bundle, "MAX_VALUE_CHARS", 40)
    monkeypatch.setattr(bundle, "MAX_SERVICES", 4)
    monkeypatch.setattr(bundle, "MAX_DETAILS_CHARS", 60)
    b = _build(_req("lock_clock_skew"))
    assert b.partial
    assert any(
        re.search(r"span \w+ attribute db.query.text: clipped to 40 of \d+ characters", c) for c in b.cut
    ), b.cut
    assert "summary: 7 of 11 services not listed by name (the fewest requests)" in b.cut
    assert any(re.match(r"candidate #\d+ details: clipped to 60 of [\d,]+ characters", c) for c in b.cut)
    for clip in b.cut:
        assert clip.split(":")[0]  # each names what it clipped
    missing = [w for w in b.warnings if "code files the telemetry names are not under the code roots" in w]
    assert missing and "/app/payment/locks.py" in missing[0]
    assert "note: " + missing[0] in b.text()


# 5. the lock scenario: smaller, with every figure and every cited item -------------------------


def test_the_lock_request_is_a_quarter_smaller_with_every_figure_and_cited_item(home: Path, capsys) -> None:
    from mcp_server.cli import main

    args = ["escalate", "lock_clock_skew", "-q", "Why do payments fail since 09:15?"]
    args += ["--start", "2025-06-12T09:15Z", "--end", "2025-06-12T09:30Z", "--dry-run", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    tokens = out["dry_run_payload"]["token_count"]
    assert tokens <= 0.75 * LOCK_REQUEST_TOKENS_BEFORE, tokens
    sent = out["dry_run_payload"]["body"]["contents"][0]["parts"][0]["text"]
    # every figure of every candidate (checked item by item above), here in the request itself
    with open_dataset("lock_clock_skew") as s:
        report = s.correlate(*_periods("lock_clock_skew"))
    for c in report.candidates:
        for period in (c.evidence.before, c.evidence.after, c.evidence.details):
            for k, v in period.items():
                assert figure_text(k, v) in sent, (c.mechanism, k, v)
    # every item the offline report cites is in the request
    r = escalate(_req("lock_clock_skew", question="Why do payments fail since 09:15?"))
    a = r.analysis
    cited = {
        e
        for part in ("root_causes", "causal_chain", "hypotheses", "ruled_out")
        for x in a[part]
        for e in x.get("evidence") or []
    }
    assert cited and all(f"[{e}] " in sent for e in cited), sorted(e for e in cited if f"[{e}] " not in sent)
    assert "SELECT trace_id" not in sent and "FROM traces" not in sent  # the queries stay beside the request
    queries = Path(r.bundle_path).with_suffix(".queries.sql")
    assert queries.read_text().count("SELECT") >= 5


# 6. log templates, exemplars ------------------------------------------------------------------


def test_log_templates_keep_their_evidence(home: Path) -> None:
    logs = next(s for s in _build(_req("lock_clock_skew")).sections if s.key == "logs").text
    renew = next(x for x in logs.splitlines() if "renew rejected" in x)
    assert "WARN lock-service: renew rejected: lease order:<ID> expired <NUM> ms ago" in renew
    assert "— 3 in the window, 0 in the baseline (new); <NUM> values 302..303; first 09:18:55.803" in renew
    assert '"renew rejected: lease order:ord_698d16c5 expired 302 ms ago"' in renew


def test_exemplars_show_cited_spans_the_same_root_before_and_their_start(home: Path) -> None:
    b = _build(_req("lock_clock_skew"))
    traces = next(s for s in b.sections if s.key == "traces").text
    cited = {sid for c in b.facts["candidates"] if not c.get("finding") for sid in c.get("span_ids", [])}
    shown = [t for t in b.facts["traces"]]
    in_shown: set[str] = set()
    with open_dataset("lock_clock_skew") as s:
        for t in shown:
            in_shown |= {x.span_id for x in s.trace(t["trace_id"]).spans}
    for sid in cited & in_shown:
        assert re.search(rf"span {sid}\b", traces), sid
    assert "(typical before (baseline), median duration of frontend POST /api/checkout)" in traces
    assert len(re.findall(r"^\[E\d+\] trace [0-9a-f]{32} \(.*\): starts 2025-06-12T", traces, re.M)) == len(
        shown
    )
    assert "user_agent" not in traces and "client.address" not in traces and "url.scheme" not in traces


# the answer the agent needs: verdicts on hypotheses written from the scenarios' truth ----------

VERDICTS = {
    "retry_storm": [
        ("inventory's UPDATE stock got slower", "supported"),
        ("checkout retries to inventory multiply its load", "supported"),
        ("payment is failing", "contradicted"),
        ("the network between checkout and inventory is slow", "contradicted"),
        ("the CDN cache misbehaves", "untested"),
    ],
    "lock_clock_skew": [
        ("payment's lock lease expires before it is renewed", "supported"),
        ("the clock of payment's host is skewed", "supported"),
        ("catalog's CPU is saturated", "contradicted"),
        ("a memory leak in the marketing job", "untested"),
    ],
    "dependency_failure": [
        ("pricing cannot reach its tax database: connection refused", "supported"),
        ("users' GetUser got slower", "contradicted"),
        ("checkout has a bug that returns 502", "contradicted"),
    ],
    "deploy_n_plus_one": [
        ("the checkout deploy added an N+1 query pattern", "supported"),
        ("catalog's database is down", "contradicted"),
    ],
    "network_delay": [
        ("calls into users got slower on the network", "supported"),
        ("users' GetUser handler got slower in its own code", "contradicted"),
    ],
    "cpu_saturation": [
        ("catalog's CPU is saturated", "supported"),
        ("the clock of catalog's host is not skewed", "supported"),  # a denial, and no skew is found
    ],
    "queue_redelivery": [
        ("notification never settles order-events messages, so they are redelivered", "supported"),
        ("frontend is the problem", "contradicted"),
    ],
}


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_the_offline_report_judges_hypotheses_written_from_the_truth(home: Path, name: str) -> None:
    truth = _truth(name)["root_cause"]
    hypotheses = VERDICTS[name]
    w, b = _periods(name)
    r = escalate(
        _req(
            name,
            baseline=b,
            context=AgentContext(
                partial_findings=tuple(h for h, _ in hypotheses), attempted_approaches=("restarted frontend",)
            ),
        )
    )
    a = r.analysis
    got = [(h["id"], h["verdict"]) for h in a["hypotheses"]]
    assert got == [(f"H{i}", v) for i, (_, v) in enumerate(hypotheses, 1)], [
        h["explanation"] for h in a["hypotheses"]
    ]
    for h in a["hypotheses"]:
        if h["verdict"] != "untested":
            assert h["evidence"] and all(re.fullmatch(r"E\d+", e) for e in h["evidence"])
    # the rest of the answer the agent acts on
    assert a["root_causes"][0]["service"] == truth["service"] and a["root_causes"][0]["id"] == "R1"
    assert a["root_causes"][0]["confidence"] in (0.8, 0.5, 0.2)  # correlate's confidence, not its score
    assert 0 < a["confidence"] <= 1
    assert [s["role"] for s in a["causal_chain"]].count("root_cause") == 1
    assert all(f["root_cause"] in {c["id"] for c in a["root_causes"]} for f in a["fixes"] + a["tests_to_run"])
    assert a["next_data"] and all(d["what"] and d["why"] for d in a["next_data"])
    contradicted = [h["id"] for h in a["hypotheses"] if h["verdict"] == "contradicted"]
    assert [x["what"].split(":")[0] for x in a["ruled_out"]][: len(contradicted)] == contradicted
    if truth["service"] != "frontend":
        assert any(x["what"].startswith("A1:") for x in a["ruled_out"])  # restarting a symptom
    md = r.report_markdown
    assert "## The agent's hypotheses" in md and "## Causal chain (trigger to symptom)" in md


def test_the_offline_fix_cites_the_code_where_the_retry_loop_lives(
    home: Path, tmp_path: Path, monkeypatch
) -> None:
    code = tmp_path / "code"
    (code / "checkout").mkdir(parents=True)
    (code / "inventory").mkdir()
    (code / "checkout" / "clients.py").write_text(
        "def reserve(order):\n    for attempt in range(4):\n        try:\n            return post(order, timeout=0.4)\n"
        "        except Timeout:\n            continue  # retry at once\n    raise ReservationError(order)\n"
    )
    (code / "inventory" / "stock.py").write_text(
        "def reserve(skus):\n    return db.execute('UPDATE stock SET reserved = reserved + 1 WHERE sku = ANY(%s)', skus)\n"
    )
    monkeypatch.setenv("DCR_CODE_ROOTS", str(code))
    r = escalate(_req("retry_storm", files=("inventory/stock.py", "checkout/clients.py")))
    a = r.analysis
    storm = next(c for c in a["root_causes"] if c["mechanism"] == "retry_storm")
    fix = next(f for f in a["fixes"] if f["root_cause"] == storm["id"])
    assert fix["files"] == ["checkout/clients.py"] and fix["description"].startswith("checkout: Cap retries")
    sent = Path(r.bundle_path).read_text()
    eid = re.search(r"^\[(E\d+)\] file checkout/clients.py", sent, re.M).group(1)
    assert eid in storm["evidence"] and "The mechanism lives in checkout/clients.py" in storm["explanation"]
