"""error_origin: the deepest erroring span whose children succeeded, before vs after."""

from __future__ import annotations

import pytest

from correlate.analyses.error_origin import find_error_origins
from tests.synth_spans import analyse, module_session, two_periods


def tid(i: int) -> str:
    return f"{i + 1:032x}"


def _checkout(t, after: bool, i: int) -> None:
    """web GET /checkout -> web POST /pay (client) -> pay POST /pay -> pay SELECT (db client).
    After the onset every odd request's SELECT is refused and the error climbs to the root.
    Every 4th request (both periods) also has a harmless 404 on web GET /missing."""
    fail = after and i % 2 == 1
    st = "ERROR" if fail else "UNSET"
    root = t.span("web", "GET /checkout", 0, 40, status_code=st)
    c = t.span("web", "POST /pay", 2, 30, parent=root, kind="CLIENT", status_code=st)
    srv = t.span("pay", "POST /pay", 3, 28, parent=c, status_code=st)
    t.span(
        "pay",
        "SELECT",
        5,
        20,
        parent=srv,
        kind="CLIENT",
        db_system="postgresql",
        status_code=st,
        status_message="connection refused" if fail else None,
    )
    if i % 4 == 0:
        t.span(
            "web",
            "GET /missing",
            35,
            1,
            parent=root,
            kind="INTERNAL",
            status_code="ERROR",
            status_message="not found",
        )


@pytest.fixture(scope="module")
def checkout_result(tmp_path_factory):
    spans, window, baseline = two_periods(_checkout)
    with module_session(tmp_path_factory, spans, "errors") as s:
        yield analyse(s, find_error_origins, window, baseline), s, window, baseline


def test_the_failing_dependency_is_the_origin(checkout_result):
    result, *_ = checkout_result
    got = [(c.service, c.operation, c.mechanism, c.score) for c in result.candidates]
    # rate 0/40 -> 20/40: effect 1 - (1/42)/(21/42) = 0.9524, z = 5.2 (significance 1);
    # all 20 failing requests carry it (reach 1): 0.9524 * (0.55 + 0.45 * 1)
    assert got == [
        ("pay", "SELECT", "dependency_failure", 0.9524),
        ("pay", "SELECT", "error_propagation", round(0.9524 * 0.85, 4)),
    ]
    ev = result.candidates[0].evidence
    assert ev.before == {"calls": 40, "origin_errors": 0, "origin_error_rate": 0.0}
    assert ev.after == {"calls": 40, "origin_errors": 20, "origin_error_rate": 0.5}
    assert ev.trace_ids == (tid(41), tid(43), tid(45))
    assert ev.details["message"] == "connection refused"
    assert ev.details["failing_requests_with_origin"] == 20


def test_a_constant_trickle_of_errors_is_a_finding_not_a_candidate(checkout_result):
    result, *_ = checkout_result
    assert [(f.service, f.operation) for f in result.findings] == [("web", "GET /missing")]
    assert "10 errors start here in the window (10 before)" in result.findings[0].summary


def test_the_evidence_sql_reproduces_the_figures(checkout_result):
    result, session, *_ = checkout_result
    ev = result.candidates[0].evidence
    got = session.sql(ev.sql)
    assert got.columns == ("period", "calls", "origin_errors")
    assert got.rows == (("before", 40, 0), ("after", 40, 20))


def _timeouts(t, after: bool, i: int) -> None:
    """api calls inv; after the onset inv takes 500 ms and api gives up at 400 ms (a timeout on
    api's client span only: inv's server span keeps working and succeeds)."""
    root = t.span("api", "POST /order", 0, 450 if after else 30)
    dur = 400 if after else 10
    c = t.span(
        "api",
        "POST /reserve",
        1,
        dur,
        parent=root,
        kind="CLIENT",
        status_code="ERROR" if after else "UNSET",
        status_message="timed out after 400 ms" if after else None,
    )
    t.span("inv", "POST /reserve", 2, 500 if after else 8, parent=c)


def test_a_client_that_gave_up_blames_the_callee(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, baseline = two_periods(_timeouts, n=20)
    with spans.open("timeouts") as s:
        result = analyse(s, find_error_origins, window, baseline)
    top = result.candidates[0]
    assert (top.service, top.operation, top.mechanism) == ("inv", "POST /reserve", "latency_regression")
    assert top.evidence.details["share_callers_gave_up"] == 1.0
    assert top.summary.startswith("callers give up waiting for inv POST /reserve: 20 calls time out")
    assert [c.mechanism for c in result.candidates] == ["latency_regression", "timeout_cascade"]


REFUSED = (
    "ConnectionRefusedError: [Errno 111] connection refused by inv-0.internal:8080 "
    "after 3 attempts (backoff 100/200/400 ms)"
)


def _down(t, after: bool, i: int) -> None:
    """web calls inv; after the onset inv is down: web's client span fails, refused, with no inv span."""
    root = t.span("web", "GET /stock", 0, 20, status_code="ERROR" if after else "UNSET")
    c = t.span(
        "web",
        "POST /stock",
        1,
        2 if after else 15,
        parent=root,
        kind="CLIENT",
        peer_service="inv",
        status_code="ERROR" if after else "UNSET",
        status_message=REFUSED if after else None,
        exception_type="ConnectionRefusedError" if after else None,
    )
    if not after:
        t.span("inv", "POST /stock", 2, 12, parent=c)


def test_a_call_to_a_traced_service_that_left_no_span_blames_that_service(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, baseline = two_periods(_down, n=20)
    with spans.open("down") as s:
        result = analyse(s, find_error_origins, window, baseline)
        top = result.candidates[0]
        assert (top.service, top.operation, top.mechanism) == ("inv", "POST /stock", "dependency_failure")
        assert top.evidence.details["share_unanswered"] == 1.0
        assert top.summary.startswith(
            "calls to inv (POST /stock) fail without an answer from it: 20 client calls"
        )
        # the type once, the long message cut at 100 characters with an ellipsis (was cut mid-word, silently)
        assert f"no inv span ({REFUSED[:99].rstrip()}…); 20 failing requests" in top.summary
        assert top.summary.count("ConnectionRefusedError") == 1
        # its SQL puts the errors on inv too: 20 origins in the window, none before
        assert s.sql(top.evidence.sql).rows == (("before", 20, 0), ("after", 20, 20))


def test_error_text_prefixes_the_type_only_when_the_message_lacks_it():
    from correlate.analyses.error_origin import _error_text

    assert _error_text("ValueError", "ValueError: bad x") == "ValueError: bad x"
    assert _error_text("ValueError", "bad x") == "ValueError: bad x"
    assert _error_text(None, "connection refused") == "error: connection refused"
    assert _error_text("TimeoutError", None) == "TimeoutError"
    assert _error_text(None, None) == "no error message recorded"  # was a bare "(error)"
    cut = _error_text(None, "x" * 300)
    assert len(cut) == 120 and cut.endswith("…")


def test_without_a_baseline_the_summary_says_so_plainly(tmp_path, monkeypatch):
    """Was 'against no baseline before'."""
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, _ = two_periods(_down, n=20)
    with spans.open("nobase") as s:
        result = analyse(s, find_error_origins, window, None)
    top = result.candidates[0]
    assert "20 of 20 calls (100.0%) fail with no failing child, with no baseline to compare; " in top.summary
    assert "no baseline before" not in top.summary


def test_a_single_error_finding_reads_in_the_singular(tmp_path, monkeypatch):
    def one_404(t, after: bool, i: int) -> None:
        root = t.span("web", "GET /", 0, 10)
        fail = i % 20 == 3  # one error in each period: usual, a finding
        t.span(
            "web",
            "GET /missing",
            1,
            1,
            parent=root,
            kind="INTERNAL",
            status_code="ERROR" if fail else "UNSET",
            status_message="not found" if fail else None,
        )

    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, baseline = two_periods(one_404, n=20)
    with spans.open("one") as s:
        result = analyse(s, find_error_origins, window, baseline)
    summaries = [f.summary for f in result.findings] + [c.summary for c in result.candidates]
    assert "web GET /missing: 1 error starts here in the window (1 before), not a change" in summaries, (
        summaries
    )


def test_a_tie_between_messages_is_broken_the_same_way_every_run(tmp_path, monkeypatch):
    """Two 'not found' messages seen equally often: DuckDB's mode() returned either, so the offline
    report changed between runs under load. The most frequent wins, then the smallest text."""
    from correlate.analyses.error_origin import _mode

    assert _mode({"product 8999 not found": 1, "product 1039 not found": 1}) == "product 1039 not found"
    assert _mode({"b": 3, "a": 1}) == "b" and _mode(None) is None and _mode({}) is None

    def lookups(t, after: bool, i: int) -> None:
        root = t.span("web", "GET /p", 0, 10)
        fail = after and i % 10 in (1, 2)
        msg = f"product {'8999' if i % 10 == 1 else '1039'} not found" if fail else None
        t.span(
            "web",
            "GetProduct",
            1,
            5,
            parent=root,
            kind="CLIENT",
            status_code="ERROR" if fail else "UNSET",
            status_message=msg,
        )

    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, baseline = two_periods(lookups, n=40)
    with spans.open("tie") as s:
        seen = set()
        for _ in range(5):
            result = analyse(s, find_error_origins, window, baseline)
            seen.add(result.candidates[0].evidence.details["message"])
    assert seen == {"product 1039 not found"}
