"""engine: windows, baseline defaults, notes, the --service filter, sampling, failing analyses,
and evidence SQL that reproduces every candidate's figures."""

from __future__ import annotations

import pytest

import correlate.engine as engine
from correlate.analyses.common import AnalysisResult
from correlate.errors import CorrelateError
from correlate.types import Window
from tests.synth_spans import T0_NS, ms, two_periods, window_ms

S = 1_000_000_000


@pytest.mark.parametrize(
    ("time_range", "window", "baseline", "expected"),
    [
        # no window: the whole dataset (end inclusive -> +1); it starts at the window: no baseline
        ((100, 200), None, None, (Window(100, 201), None, [engine.NOTE_NO_BASELINE])),
        # a window in the middle: an equal span right before it
        ((0, 1000), Window(600, 800), None, (Window(600, 800), Window(400, 600), [])),
        # the dataset starts inside the default baseline: shorter baseline, said so
        (
            (500, 1000),
            Window(600, 800),
            None,
            (
                Window(600, 800),
                Window(500, 600),
                ["the baseline is shorter than the window: the dataset starts inside it"],
            ),
        ),
        # an explicit baseline is kept as given
        ((0, 1000), Window(600, 800), Window(0, 100), (Window(600, 800), Window(0, 100), [])),
        # an empty dataset: nothing to analyse
        ((None, None), None, None, (None, None, [engine.NOTE_NO_SPANS])),
    ],
)
def test_resolve_windows(time_range, window, baseline, expected):
    win, base, notes = engine.resolve_windows(time_range, window, baseline)
    assert (win, base, notes) == expected


@pytest.mark.parametrize(
    ("window", "baseline", "message"),
    [
        (Window(5, 5), None, "the window ends before it starts"),
        (Window(5, 9), Window(3, 2), "the baseline ends before it starts"),
        (Window(5, 9), Window(3, 6), "the baseline overlaps the window"),
    ],
)
def test_bad_windows_are_errors_that_name_the_fix(window, baseline, message):
    with pytest.raises(CorrelateError, match=message):
        engine.resolve_windows((0, 10), window, baseline)


def _slow_api(t, after, i):
    root = t.span("web", "GET /", 0, 60 if after else 30)
    c = t.span("web", "GET /api", 1, 50 if after else 20, parent=root, kind="CLIENT")
    t.span("api", "GET /api", 2, (45 if after else 15) + i % 3, parent=c)


# what the synthetic spans lack (statuses, attributes) is said in notes of its own
_LACKS = ("span kinds:", "no span carries", "log severity:")


def _analysis_notes(report) -> tuple[str, ...]:
    return tuple(n for n in report.notes if not n.startswith(_LACKS))


@pytest.fixture
def slow(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, baseline = two_periods(_slow_api)
    with spans.open("slow") as s:
        yield s, window, baseline


def test_default_baseline_is_the_span_before_the_window(slow):
    s, window, baseline = slow
    report = s.correlate(window, None)
    assert report.baseline == baseline
    assert report.candidates[0].service == "api"
    assert _analysis_notes(report) == ()
    assert report.to_dict()["window"] == {"start_ns": window.start_ns, "end_ns": window.end_ns}


def test_the_whole_dataset_has_no_baseline_and_says_so(slow):
    s, *_ = slow
    report = s.correlate()
    assert report.baseline is None
    assert engine.NOTE_NO_BASELINE in report.notes
    assert all(c.score <= 0.5 for c in report.candidates)


def test_a_window_without_spans_is_an_empty_report(slow):
    s, *_ = slow
    report = s.correlate(Window(T0_NS + 1000 * S, T0_NS + 2000 * S), None)
    assert report.candidates == () and engine.NOTE_NO_SPANS in report.notes


def test_the_service_filter_keeps_only_those_services(slow):
    s, window, baseline = slow
    assert [c.service for c in s.correlate(window, baseline, ["web"]).candidates] == []
    assert {c.service for c in s.correlate(window, baseline, ["api"]).candidates} == {"api"}


def test_a_failing_analysis_becomes_a_note(slow, monkeypatch):
    s, window, baseline = slow

    def broken(ctx):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(
        engine, "STANDARD_ANALYSES", (("broken", broken), ("empty", lambda ctx: AnalysisResult()))
    )
    report = s.correlate(window, baseline)
    assert _analysis_notes(report) == ("analysis broken failed: boom",)


def _period_rows(result) -> dict[str, dict]:
    return {r[0]: dict(zip(result.columns[1:], r[1:], strict=True)) for r in result.rows}


def _assert_reproduced(session, report):
    for c in report.candidates:
        if c.analysis == "deploys":
            continue  # restates the deploy finding's versions table
        got = _period_rows(session.sql(c.evidence.sql))
        for period, figures in (("before", c.evidence.before), ("after", c.evidence.after)):
            for key, value in got.get(period, {}).items():
                want = figures[key]
                assert value == pytest.approx(want, rel=1e-6), (c.analysis, period, key)


def test_every_candidates_evidence_sql_reproduces_its_figures(slow):
    s, window, baseline = slow
    report = s.correlate(window, baseline)
    assert report.candidates
    _assert_reproduced(s, report)


def test_sampling_keeps_whole_traces_and_the_sql_carries_the_sample(slow, monkeypatch):
    s, window, baseline = slow
    monkeypatch.setattr(engine, "MAX_WORKING_SPANS", 60)  # 240 spans in both periods: 1 trace in 4
    report = s.correlate(window, baseline)
    assert report.notes[0].startswith("240 spans in the window and baseline: analysed one trace in 4")
    assert "hash(trace_id) % 4 = 0" in report.candidates[0].evidence.sql
    assert report.candidates[0].service == "api"
    _assert_reproduced(s, report)
    calls = report.candidates[0].evidence.after["calls"]
    assert 0 < calls < 40  # a sample of the 40 window traces, each whole


def test_times_in_the_report_are_the_ones_asked(slow):
    s, *_ = slow
    report = s.correlate(window_ms(30_000, 60_000), window_ms(0, 30_000))
    assert report.window.start_ns == ms(30_000) and report.baseline.end_ns == ms(30_000)


def test_a_deploy_at_the_onset_lifts_its_service_and_names_the_deploy(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))

    def build(t, after, i):
        _slow_api(t, after, i)
        for row in t.owner.spans[-3:]:
            row["service_version"] = ("2.0" if after else "1.0") if row["service_name"] == "api" else "7.1"

    spans, window, baseline = two_periods(build)
    with spans.open("deploy") as s:
        report = s.correlate(window, baseline)
    got = [(c.service, c.mechanism) for c in report.candidates[:2]]
    assert got == [("api", "latency_regression"), ("api", "deploy_regression")]
    deploy = report.candidates[1]
    assert deploy.summary.startswith(
        "api changed version 1.0 -> 2.0 at the onset, and then: api GET /api got slower"
    )
    assert deploy.evidence.details["regression"] == "latency_regression"
    assert [f.service for f in report.findings if f.kind == "deploy"] == ["api"]


def test_spans_without_a_service_are_unknown_service(tmp_path, monkeypatch):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))

    def build(t, after, i):
        t.span("web", "GET /", 0, 10, status_code="ERROR" if after else "UNSET", service_name=None)

    spans, window, baseline = two_periods(build)
    with spans.open("anon") as s:
        report = s.correlate(window, baseline)
    assert {c.service for c in report.candidates} == {"unknown_service"}
