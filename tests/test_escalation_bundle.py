"""The bundle: sections in priority order, exemplar traces, provenance, the token budget and cuts."""

from __future__ import annotations

import re

import pytest

from correlate import CorrelateError, DatasetSession, SqlError, Window, open_dataset
from escalation import EscalationRequest, escalate
from escalation.bundle import SECTION_ORDER, W_NO_CORRELATE, BundleBuilder
from escalation.tokens import ESTIMATE_MARGIN, estimate_tokens
from tests.escalation_data import BASELINE, WINDOW, make_shop, sid, tid


def _req(**kw) -> EscalationRequest:
    return EscalationRequest(
        **{
            **dict(
                question="Why does ledger fail?",
                dataset="shop",
                window=WINDOW,
                baseline=BASELINE,
                provider="offline",
            ),
            **kw,
        }
    )


def _build(req: EscalationRequest, budget: int = 200_000, counter=None):
    with open_dataset("shop") as s:
        return BundleBuilder(req, s, budget_tokens=budget, counter=counter).build()


@pytest.fixture(autouse=True)
def shop() -> None:
    make_shop()


def test_sections_in_priority_order_with_evidence_ids_and_provenance() -> None:
    b = _build(_req())
    keys = [s.key for s in b.sections]
    assert keys == [k for k in SECTION_ORDER if k in keys]
    assert keys[:5] == ["question", "summary", "timeline", "candidates", "traces"] and "provenance" in keys
    text = b.text()
    ids = [int(m) for m in re.findall(r"^\[E(\d+)\]", text, re.M)]
    assert ids == list(range(1, len(ids) + 1))  # every item numbered, in order
    assert "dataset shop" in text and "queries behind these figures are saved beside this request" in text
    assert "SELECT" not in text  # the queries are saved beside the request, not sent
    assert b.queries and all(q.lstrip().upper().startswith(("SELECT", "WITH")) for q in b.queries)
    assert b.cut == () and not b.partial and b.token_method == "estimate"


def test_exemplar_traces_are_compact_with_roles_critical_path_and_ids() -> None:
    b = _build(_req())
    traces = next(s for s in b.sections if s.key == "traces").text
    assert "failing in window" in traces and "(typical before (baseline), median duration of" in traces
    failing = [t for t in b.facts["traces"] if t["errors"]]
    assert failing
    t = failing[0]["trace_id"]
    n = int(t, 16)
    block = traces.split(f"trace {t}")[1].split("\n[E")[0]
    assert re.search(
        r"^\* +\+0\.0 .* frontend POST /pay \[SERVER\]", block, re.M
    )  # root on the critical path
    assert f"ERROR 'lock timeout' span {sid(n, 3)}" in block  # the failing span, with its id
    head = traces.split(f"trace {t}")[1].split("\n")[0]
    assert "starts 2023-11-14T22:" in head  # its absolute start time
    assert "sources" not in head  # one span source: named once, in the provenance
    assert tid(n) == t


def test_log_templates_and_graph_change() -> None:
    b = _build(_req())
    logs = next(s for s in b.sections if s.key == "logs").text
    # correlate's templates (the log_templates analysis's masks), counted by correlate
    line = next(
        x for x in logs.splitlines() if "ERROR ledger: ledger update failed after <NUM> ms: lock timeout" in x
    )
    assert "— 12 in the window, 0 in the baseline (new)" in line
    assert re.search(
        r"; first \d\d:\d\d:\d\d\.\d{3} \"ledger update failed after \d+ ms: lock timeout\"", line
    )
    assert (
        "1 baseline templates absent in the window, e.g. INFO payments: charge <NUM> ok in <NUM> ms" in logs
    )
    graph = next(s for s in b.sections if s.key == "graph").text
    assert re.search(r"payments -> ledger: calls 12 -> 12 .*p95 20.0ms -> 900.0ms \(x45.00\)", graph)


def test_budget_cuts_lower_priority_sections_first_and_lists_them() -> None:
    full = _build(_req())
    budget = full.tokens // 3
    b = _build(_req(), budget=budget)
    assert b.tokens <= budget * (1 - ESTIMATE_MARGIN) + 5
    assert b.partial and b.cut
    kept = [s.key for s in b.sections]
    assert kept[0] == "question"
    cut_keys = [c.split(":", 1)[0] for c in b.cut]
    assert "provenance" in cut_keys
    # strict priority: nothing after the first cut section survives
    first_cut = SECTION_ORDER.index(cut_keys[0])
    assert all(SECTION_ORDER.index(k) <= first_cut for k in kept)
    assert cut_keys == [k for k in SECTION_ORDER[first_cut:] if k in cut_keys]
    assert re.match(r"\w+: \d+ of \d+ items \([\d,]+ tokens\): ", b.cut[0])


def test_budget_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DCR_BUDGET_TOKENS", "2000")
    r = escalate(_req())
    assert r.budget_tokens == 2000 and r.bundle_tokens <= 2000 and r.partial and r.cut
    assert "## Cut from the bundle" in r.report_markdown


def test_provider_counter_is_honoured_and_repacks_when_the_estimate_ran_low() -> None:
    calls: list[int] = []

    def counter(text: str) -> int:  # a "provider" that counts twice what we estimate
        calls.append(1)
        return 2 * estimate_tokens(text)

    full = _build(_req())
    budget = full.tokens
    b = _build(_req(), budget=budget, counter=counter)
    assert b.token_method == "provider" and b.tokens <= budget and len(calls) >= 2 and b.cut


def test_a_window_without_spans_is_a_warning_not_an_error() -> None:
    empty = Window(WINDOW.end_ns + 3600 * 10**9, WINDOW.end_ns + 4200 * 10**9)
    b = _build(_req(window=empty, baseline=WINDOW))
    assert W_NO_CORRELATE in b.warnings and b.partial
    text = b.text()
    assert "note: no spans in the window" in text and "candidate #" not in text
    # the rest is still built: the baseline's typical trace shows what normal looked like
    assert "(typical before (baseline), median duration of frontend POST /pay)" in text


def test_other_correlate_errors_are_not_swallowed(monkeypatch) -> None:
    def broken(self, *a, **k):
        raise CorrelateError("query failed: disk full")

    monkeypatch.setattr(DatasetSession, "correlate", broken)
    with pytest.raises(CorrelateError, match="disk full"):
        escalate(_req())


@pytest.mark.parametrize(
    "method",
    ["summary", "exemplar_traces", "trace", "service_graph_change", "log_template_counts", "code_locations"],
)
def test_an_error_saying_not_available_is_not_turned_into_a_warning(monkeypatch, method) -> None:
    def broken(self, *a, **k):  # a real DuckDB error whose text happens to say "not available"
        raise SqlError("IO Error: file spans/part-0.parquet not available")

    monkeypatch.setattr(DatasetSession, method, broken)
    with pytest.raises(SqlError, match="not available"):
        _build(_req())


def test_capped_log_counts_are_named_in_the_warnings_and_the_logs_section(monkeypatch) -> None:
    # the shop logs 24 distinct texts, one line each; the 5 first by text are baseline lines
    monkeypatch.setattr("correlate.evidence.MAX_LOG_TEXTS", 5)
    b = _build(_req())
    capped = [w for w in b.warnings if w.startswith("log counts are lower bounds")]
    assert capped == [
        "log counts are lower bounds: 24 distinct log texts, only the 5 most frequent were "
        "templated; 12 window lines and 7 baseline lines are in no template's count"
    ]
    assert b.partial
    logs = next(s for s in b.sections if s.key == "logs").text
    assert logs.startswith(f"note: {capped[0]}")


def test_the_bundle_runs_no_query_of_its_own() -> None:
    import inspect

    import escalation.bundle

    source = inspect.getsource(escalation.bundle)
    assert not re.search(r"\b(SELECT|FROM spans|FROM logs|FROM traces)\b", source)
    assert ".sql(" not in source and ".fetch(" not in source and "mcp_server" not in source


def test_unknown_dataset_names_the_known_ones() -> None:
    from escalation import DatasetUnavailable

    with pytest.raises(DatasetUnavailable, match="known datasets: shop"):
        escalate(_req(dataset="nope"))


def test_estimator_counts_digits_and_words() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello world") == 2
    assert estimate_tokens("12345") == 5  # Gemini splits numbers into digits
    assert estimate_tokens("internationalization") == 2  # long words split about every 10 letters
    assert estimate_tokens("a.b") == 3
