"""latency_attribution: self time per service and operation, before vs after."""

from __future__ import annotations

from correlate.analyses.latency_attribution import find_latency_regressions
from tests.synth_spans import analyse, two_periods


def _request(t, service_ms: float, op: str = "GET /a") -> None:
    """web GET /a -> web client -> api `op` (its own work `service_ms`, after a 5 ms db call).

    web  |-------------------------------------|      0 .. service+8
    web   |-client--------------------------|         1 .. service+7
    api     |-db 5-|---- own work ------|             1.5 .. service+6.5
    """
    server = service_ms + 5
    root = t.span("web", op, 0, server + 3)
    c = t.span("web", op, 1, server + 1, parent=root, kind="CLIENT")
    srv = t.span("api", op, 1.5, server, parent=c)
    t.span("api", "SELECT", 1.5, 5, parent=srv, kind="CLIENT", db_system="postgresql")


def test_the_callee_that_slowed_is_named_not_its_waiting_caller(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    # own work 10..14 ms (8 requests each) before, 40..44 ms after
    spans, window, baseline = two_periods(lambda t, after, i: _request(t, (40 if after else 10) + i % 5))
    with spans.open("slow") as s:
        result = analyse(s, find_latency_regressions, window, baseline)
        got = [(c.service, c.operation, c.mechanism, c.score) for c in result.candidates]
        # medians 12 -> 42 ms a request: 1 - 12/42 = 0.7143; the shift is 72 standard errors
        # (significance 1); it adds 30 ms to 20 ms requests (impact 1)
        assert got == [("api", "GET /a", "latency_regression", 0.7143)]
        ev = result.candidates[0].evidence
        assert ev.before["calls"] == 40 and ev.after["calls"] == 40
        assert ev.before["p50_self_ns"] == 12_000_000 and ev.after["p50_self_ns"] == 42_000_000
        # the slowest own work first (44 ms: i = 44, 49, …), earliest first among equals
        assert ev.trace_ids == (f"{45:032x}", f"{50:032x}", f"{55:032x}")
        reproduced = s.sql(ev.sql)
        assert (
            dict(zip(reproduced.columns, reproduced.rows[1], strict=True))["mean_self_ns"]
            == ev.after["mean_self_ns"]
        )


def test_the_same_speed_is_no_candidate(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, baseline = two_periods(lambda t, after, i: _request(t, 10 + i % 5))
    with spans.open("same") as s:
        assert analyse(s, find_latency_regressions, window, baseline).candidates == []


def test_every_operation_slowing_alike_is_saturation(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))

    def build(t, after, i):
        _request(t, (3.0 if after else 1.0) * (10 + i % 5), op="GET /a" if i % 2 else "GET /b")

    spans, window, baseline = two_periods(build)
    with spans.open("cpu") as s:
        result = analyse(s, find_latency_regressions, window, baseline)
    top = result.candidates[0]
    assert (top.service, top.operation, top.mechanism) == ("api", None, "cpu_saturation")
    # the db call did not slow; two of three operations at 3x is "every operation" enough (>= 60%)
    assert top.evidence.details["per_call_ratio_by_operation"] == {
        "GET /a": 3.0,
        "GET /b": 3.0,
        "SELECT": 1.0,
    }
    assert ("api", None, "latency_regression") in [
        (c.service, c.operation, c.mechanism) for c in result.candidates
    ]
    assert {c.service for c in result.candidates} == {"api"}


def test_without_a_baseline_the_largest_consumers_are_findings(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, _ = two_periods(lambda t, after, i: _request(t, 20))
    with spans.open("nobase") as s:
        result = analyse(s, find_latency_regressions, window, None)
    assert result.candidates == []
    # api GET /a: 20 ms of own work of 5 + 20 + 3 + (client: 0) ... the largest share
    assert result.findings[0].service == "api" and result.findings[0].operation == "GET /a"
    assert result.findings[0].evidence.after["mean_self_ns"] == 20_000_000


def test_a_slice_of_slow_calls_is_found_though_the_median_held(tmp_path, monkeypatch):
    from correlate.analyses.common import rate_score

    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    # after the onset 2 in 5 calls (i % 5 in 0, 1) take 100 ms of own work; the rest 10..14 ms as before
    spans, window, baseline = two_periods(
        lambda t, after, i: _request(t, 100 if after and i % 5 < 2 else 10 + i % 5)
    )
    with spans.open("tail") as s:
        result = analyse(s, find_latency_regressions, window, baseline)
    [c] = result.candidates
    assert (c.service, c.operation, c.mechanism) == ("api", "GET /a", "latency_regression")
    assert c.summary.startswith(
        "a slice of api GET /a calls got slower: 16 of 40 calls (40%, against 0 of 40 before) "
        "take over 1.5x the baseline's p90 of 14.0 ms"
    )
    # none of 40 that far above p90 before, 16 of 40 after; the added time outweighs the 20 ms
    # requests (impact 1)
    assert c.score == round(rate_score(0, 40, 16, 40), 4)


def test_more_calls_in_a_slow_mode_the_baseline_had_is_no_slice_that_slowed(tmp_path, monkeypatch):
    """A baseline whose slowest fifth already took 40-42 ms (a periodic flush, say): a window with
    twice as many such calls, a little slower (42-44 ms, all above the baseline's p90), has no
    slice far above it."""
    monkeypatch.setenv("DCR_HOME", str(tmp_path))

    def build(t, after, i):
        if after and i % 5 < 2:
            _request(t, 42 + i % 3)
        elif not after and i % 5 == 0:
            _request(t, 40 + i % 3)
        else:
            _request(t, 10 + i % 5)

    spans, window, baseline = two_periods(build)
    with spans.open("mode") as s:
        assert analyse(s, find_latency_regressions, window, baseline).candidates == []


def test_a_median_within_the_baselines_usual_range_weighs_half(tmp_path, monkeypatch):
    """Two operations whose typical call went from ~10 to ~30 ms: one had calls of 30 ms in a
    fifth of its baseline (so its window's median is inside the baseline's p90), the other
    never. The first is more calls of a kind seen before, and scores WITHIN_BASELINE of the other."""
    from correlate.analyses.latency_attribution import WITHIN_BASELINE

    monkeypatch.setenv("DCR_HOME", str(tmp_path))

    def build(t, after, i):
        seen = 30 if (after and i % 5 < 3) or (not after and i % 5 == 0) else 10 + i % 3
        new = 30 if after and i % 5 < 3 else 10 + i % 3
        _request(t, seen, op="GET /seen")
        _request(t, new, op="GET /new")

    spans, window, baseline = two_periods(build)
    with spans.open("mix") as s:
        result = analyse(s, find_latency_regressions, window, baseline)
    by_op = {c.operation: c for c in result.candidates if c.mechanism == "latency_regression"}
    assert (
        by_op["GET /seen"].evidence.before["p50_self_ns"] == by_op["GET /new"].evidence.before["p50_self_ns"]
    )
    assert by_op["GET /seen"].score == round(WITHIN_BASELINE * by_op["GET /new"].score, 4)


def test_a_single_call_is_not_called_a_mean_over_1_calls(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, _ = two_periods(
        lambda t, after, i: t.span("solo", "GET /once", 0, 1000) if after else None, n=1
    )
    with spans.open("solo2") as s:
        result = analyse(s, find_latency_regressions, window, None)
    assert [f.summary for f in result.findings] == [
        "solo GET /once takes 100% of all self time in the window (1000 ms in its only call)"
    ]
