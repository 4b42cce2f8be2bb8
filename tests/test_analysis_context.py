"""The supporting analyses: service graph, deploys, attribute contrast, log templates,
critical-path shift."""

from __future__ import annotations

from correlate.analyses.attribute_contrast import find_attribute_contrasts
from correlate.analyses.critical_path_shift import find_critical_path_shifts
from correlate.analyses.deploys import find_deploys
from correlate.analyses.log_templates import find_log_changes, mine_templates, template_like
from correlate.analyses.service_graph import find_service_graph_changes
from tests.synth_spans import analyse, ms, two_periods, window_ms


def _run(tmp_path, monkeypatch, build, analysis, n=30, logs=None):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, baseline = two_periods(build, n=n)
    if logs:
        logs(spans)
    with spans.open("c") as s:
        result = analyse(s, analysis, window, baseline)
        return result, [s.sql(f.evidence.sql) if f.evidence.sql else None for f in result.findings]


def _shop(t, after, i, *, version="1.0", slow_host=False, extra_call=False):
    root = t.span("web", "GET /buy", 0, 300 if slow_host else 50, host="node-1")
    c = t.span("web", "POST /pay", 1, 40, parent=root, kind="CLIENT", host="node-1")
    t.span(
        "pay", "POST /pay", 2, 38, parent=c, service_version=version, host="node-9" if slow_host else "node-2"
    )
    if extra_call:
        c2 = t.span("web", "POST /fraud", 45, 4, parent=root, kind="CLIENT", host="node-1")
        t.span("fraud", "POST /fraud", 46, 2, parent=c2, host="node-3")


def test_service_graph_names_new_edges_and_lists_all(tmp_path, monkeypatch):
    result, reruns = _run(
        tmp_path, monkeypatch, lambda t, a, i: _shop(t, a, i, extra_call=a), find_service_graph_changes
    )
    graph, new = result.findings
    assert graph.evidence.details["edges"] == [["web", "fraud"], ["web", "pay"]]
    assert new.summary == "new edge web -> fraud: 30 calls in the window, none before"
    assert reruns[1].rows == (("after", 30, 0, 30),)


def test_a_new_version_at_the_onset_is_a_deploy(tmp_path, monkeypatch):
    result, _ = _run(
        tmp_path, monkeypatch, lambda t, a, i: _shop(t, a, i, version="2.0" if a else "1.0"), find_deploys
    )
    [f] = result.findings
    assert (f.kind, f.service) == ("deploy", "pay")
    assert f.evidence.details == {
        "new_version": "2.0",
        "old_versions": "1.0",
        "coincides": True,
        "first_seen_ns": ms(30_002),
    }
    assert f.summary.endswith("at the onset")


def test_a_version_already_running_before_is_no_deploy(tmp_path, monkeypatch):
    result, _ = _run(
        tmp_path, monkeypatch, lambda t, a, i: _shop(t, a, i, version="2.0" if i % 2 else "1.0"), find_deploys
    )
    assert result.findings == []


def test_attribute_contrast_finds_the_host_the_slow_requests_share(tmp_path, monkeypatch):
    # in the window a third of the requests go to pay on node-9 and are slow
    result, _ = _run(
        tmp_path,
        monkeypatch,
        lambda t, a, i: _shop(t, a, i, slow_host=a and i % 3 == 0),
        find_attribute_contrasts,
    )
    top = result.findings[0]
    assert top.evidence.details["dimension"] == "host" and top.evidence.details["value"] == "pay on node-9"
    assert top.service == "pay"
    assert top.evidence.after == {"bad_with": 10, "bad": 10, "good_with": 0, "good": 20}


def test_log_templates_mask_numbers_and_ids():
    got = mine_templates(
        [
            "heap after GC: 177 MiB used of 1024 MiB",
            "heap after GC: 210 MiB used of 1024 MiB",
            "order ord_1a2b failed: payment returned 502",
            "order ord_9f9f failed: payment returned 502",
        ]
    )
    assert got[0] == got[1] == "heap after GC: <NUM> MiB used of <NUM> MiB"
    assert got[2] == got[3] == "order <*> failed: payment returned <NUM>"
    assert template_like("order <*> failed: 50%_x") == "order % failed: 50\\%\\_x"


def test_log_changes_new_rising_and_climbing(tmp_path, monkeypatch):
    def logs(spans):
        for k in range(30):
            spans.log("pay", 1000 * k + 5, f"charge ok {k}")  # steady: no finding
            spans.log("pay", 30_000 + 1000 * k + 5, f"charge ok {k}")
            spans.log("mail", 30_000 + 1000 * k + 7, f"heap after GC: {100 + 20 * k} MiB used of 1024 MiB")
            spans.log("mail", 1000 * k + 7, "heap after GC: 100 MiB used of 1024 MiB")
        for k in range(4):
            spans.log("pay", 40_000 + k, f"lease {k} expired before renewal", severity="ERROR")

    result, reruns = _run(tmp_path, monkeypatch, lambda t, a, i: _shop(t, a, i), find_log_changes, logs=logs)
    summaries = [f.summary for f in result.findings]
    assert (
        summaries[0]
        == 'new ERROR log in pay: "lease <NUM> expired before renewal" (4 times in the window, never before)'
    )
    assert summaries[1] == (
        "a number in mail's log climbs through the window: "
        '"heap after GC: <NUM> MiB used of <NUM> MiB" from 100 to 680'
    )
    assert len(summaries) == 2
    assert reruns[0].rows == (("after", 4),)


def test_critical_path_shift_names_what_requests_now_wait_for(tmp_path, monkeypatch):
    def build(t, after, i):
        root = t.span("web", "GET /", 0, 120 if after else 30)
        c = t.span("web", "GET /api", 1, 110 if after else 20, parent=root, kind="CLIENT")
        t.span("api", "GET /api", 2, 108 if after else 18, parent=c)

    result, _ = _run(tmp_path, monkeypatch, build, find_critical_path_shifts)
    top = result.findings[0]
    assert (top.service, top.operation) == ("api", "GET /api")
    # api's own span on the path: 18 -> 108 ms a request (30 sampled requests each side)
    assert top.evidence.before["critical_path_ns_per_request"] == 18_000_000
    assert top.evidence.after["critical_path_ns_per_request"] == 108_000_000
    assert top.evidence.after["sampled_requests"] == 30


def test_without_a_baseline_the_onset_is_found_and_suggested(tmp_path, monkeypatch):
    from correlate.analyses.onset import find_onset

    monkeypatch.setenv("DCR_HOME", str(tmp_path))

    def build(t, after, i):  # 120 requests, one a second; from the 60th on, every one fails
        t.span("web", "GET /", 0, 20 + i % 7, status_code="ERROR" if after else "UNSET")

    spans, window, baseline = two_periods(build, n=60)
    with spans.open("onset") as s:
        whole = window_ms(0, 120_000)
        [f] = analyse(s, find_onset, whole, None).findings
        assert f.evidence.details["onset_ns"] == ms(60_000)
        assert f.evidence.before == {
            "requests": 60,
            "error_rate": 0.0,
            "geometric_mean_duration_ns": f.evidence.before["geometric_mean_duration_ns"],
        }
        assert f.evidence.after["requests"] == 60 and f.evidence.after["error_rate"] == 1.0
        assert "rerun with --start 2023-11-14T22:14:20.000Z" in f.summary
        assert (
            analyse(s, find_onset, window, baseline).findings == []
        )  # a baseline was given: nothing to suggest
        report = s.correlate()  # the whole dataset: the note carries the suggestion
        onset = next(f for f in report.findings if f.kind == "onset").evidence.details["onset_ns"]
        assert abs(onset - ms(60_000)) <= 2 * (report.window.end_ns - report.window.start_ns) // 60
        assert any(n.startswith("the requests change at 2023-11-14T22:14:") for n in report.notes)


def test_no_onset_in_steady_traffic(tmp_path, monkeypatch):
    from correlate.analyses.onset import find_onset

    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, *_ = two_periods(
        lambda t, after, i: t.span(
            "web", "GET /", 0, 20 + i % 7, status_code="ERROR" if i % 10 == 0 else "UNSET"
        ),
        n=60,
    )
    with spans.open("steady") as s:
        assert analyse(s, find_onset, window_ms(0, 120_000), None).findings == []
