"""correlate/evidence.py through the session: exemplar traces, the service-graph change, log
template counts and the code the spans name, checked against figures computed here from the
rows themselves (a recorded scenario, and a dataset of more log lines than any row cap)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from correlate import Window, evidence, open_dataset
from correlate.analyses.log_severity import effective_severity
from correlate.testing import make_dataset
from ingest import ingest_paths

SCENARIO = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios" / "lock_clock_skew"
T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """The lock_clock_skew recording (traces and logs), ingested once; (session, window, baseline)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCR_HOME", str(tmp_path_factory.mktemp("dcr_home")))
        ingest_paths([str(SCENARIO / "traces.jsonl"), str(SCENARIO / "logs.jsonl")], "skew")
        w = json.loads((SCENARIO / "truth.json").read_text())["window"]
        with open_dataset("skew") as ds:
            yield (
                ds,
                Window(w["incident_start_ns"], w["incident_end_ns"]),
                Window(w["baseline_start_ns"], w["baseline_end_ns"]),
            )


def _in(t: int, w: Window) -> bool:
    return w.start_ns <= t < w.end_ns


# log templates -------------------------------------------------------------------------------


def test_log_template_counts_equal_a_direct_count(scenario) -> None:
    ds, w, b = scenario
    got = ds.log_template_counts(w, b)
    rows = ds.fetch("SELECT service_name, severity_number, body, time_ns FROM logs WHERE body IS NOT NULL")
    direct: Counter[tuple[str, int, str]] = Counter()
    for service, number, body, t in rows:
        period = "window" if _in(t, w) else "baseline" if _in(t, b) else None
        if period:
            direct[(service, effective_severity(number, body)[0], period)] += 1
    summed: Counter[tuple[str, int, str]] = Counter()
    for t in got.templates:
        summed[(t.service, t.severity_number, "window")] += t.count
        summed[(t.service, t.severity_number, "baseline")] += t.baseline_count
    assert +summed == +direct
    assert got.lines == sum(n for k, n in direct.items() if k[2] == "window") > 0
    assert got.baseline_lines == sum(n for k, n in direct.items() if k[2] == "baseline") > 0
    assert not got.truncated and got.untemplated == got.baseline_untemplated == 0
    # the first window line of each template is a real line of that service in the window
    for t in got.templates:
        if t.count:
            (n,) = ds.fetch(
                "SELECT count(*) FROM logs WHERE trace_id IS NOT DISTINCT FROM ? AND span_id IS NOT "
                "DISTINCT FROM ? AND source_id = ? AND service_name = ? AND time_ns >= ? AND time_ns < ?",
                [t.trace_id, t.span_id, t.source_id, t.service, w.start_ns, w.end_ns],
            )[0]
            assert n >= 1, t


def test_log_templates_are_the_log_templates_analysis_templates(scenario) -> None:
    ds, w, b = scenario
    got = {(t.service, t.template): t for t in ds.log_template_counts(w, b).templates}
    findings = [f for f in ds.correlate(w, b).findings if f.kind == "log_templates"]
    assert len(findings) >= 3
    for f in findings:
        t = got[(f.service, f.evidence.details["template"])]
        assert (t.count, t.baseline_count) == (f.evidence.after["logs"], f.evidence.before["logs"])
        assert t.severity_number == f.evidence.details["severity_number"]
    # prefixed ids are masked (each failure is not its own template)
    t = got[("payment", "charge for order <ID> aborted: lease for order:<ID> expired before renewal")]
    assert (t.severity, t.count, t.baseline_count, t.severity_inferred) == ("ERROR", 3, 0, False)


def test_each_template_keeps_a_raw_line_its_first_time_and_its_numbers(scenario) -> None:
    ds, w, b = scenario
    got = {(t.service, t.template): t for t in ds.log_template_counts(w, b).templates}
    rows = ds.fetch("SELECT service_name, body, time_ns FROM logs WHERE body IS NOT NULL ORDER BY time_ns")
    renew = got[("lock-service", "renew rejected: lease order:<ID> expired <NUM> ms ago")]
    lines = [
        (body, t)
        for svc, body, t in rows
        if svc == "lock-service" and body.startswith("renew rejected") and _in(t, w)
    ]
    assert (renew.example, renew.example_ns) == lines[0] and renew.first_ns == lines[0][1]
    # the numbers the template masks, lowest and highest: the evidence (302..303 ms expired)
    ago = [int(body.split(" expired ")[1].split()[0]) for body, _ in lines]
    assert renew.values == ((min(ago), max(ago)),)
    heap = got[("notification", "heap after GC: <NUM> MiB used of <NUM> MiB")]
    used = [
        int(body.split(": ")[1].split()[0])
        for svc, body, t in rows
        if svc == "notification" and "heap" in body and _in(t, w)
    ]
    assert heap.values == ((min(used), max(used)), (1024, 1024)) and heap.count == len(used)


def test_service_activity_counts_requests_as_the_timeline_does(scenario) -> None:
    ds, w, b = scenario
    got = evidence.service_activity(ds, w, b)
    spans = ds.fetch(
        "SELECT trace_id, span_id, parent_span_id, service_name, kind, status_code, start_ns FROM spans"
    )
    service = {(r[0], r[1]): r[3] for r in spans}
    want: Counter[tuple[str, bool, str]] = Counter()
    for tid, _sid, parent, svc, kind, status, start in spans:
        period = True if _in(start, w) else False if _in(start, b) else None
        if period is None:
            continue
        want[(svc, period, "spans")] += 1
        if service.get((tid, parent)) != svc or kind in ("SERVER", "CONSUMER"):
            want[(svc, period, "requests")] += 1
            want[(svc, period, "failed")] += status == "ERROR"
    for s in got.services:
        for period, fig in ((True, s.window), (False, s.baseline)):
            assert (fig.spans, fig.requests, fig.failed_requests) == (
                want[(s.service, period, "spans")],
                want[(s.service, period, "requests")],
                want[(s.service, period, "failed")],
            ), s.service
    assert got.total.spans == sum(s.window.spans for s in got.services) > 0
    assert got.baseline_total is not None and got.baseline_total.requests == sum(
        s.baseline.requests for s in got.services if s.baseline
    )
    assert [s.window.requests for s in got.services] == sorted(
        (s.window.requests for s in got.services), reverse=True
    )
    assert ds.sql(got.sql).rows


def test_the_log_query_runs_as_it_is_in_dcr_sql(scenario) -> None:
    ds, w, b = scenario
    got = ds.log_template_counts(w, b)
    res = ds.sql(got.sql, limit=100_000)
    assert sum(r[4] for r in res.rows) == got.lines + got.baseline_lines and not res.truncated


def test_a_services_filter_keeps_their_lines_only(scenario) -> None:
    ds, w, b = scenario
    got = ds.log_template_counts(w, b, ["payment", "lock-service"])
    assert {t.service for t in got.templates} == {"payment", "lock-service"}
    (n,) = ds.fetch(
        "SELECT count(*) FROM logs WHERE service_name IN ('payment', 'lock-service') AND body IS NOT NULL "
        "AND time_ns >= ? AND time_ns < ?",
        [w.start_ns, w.end_ns],
    )[0]
    assert got.lines == n == sum(t.count for t in got.templates)


def test_redact_sees_every_text_before_it_is_templated(scenario) -> None:
    ds, w, b = scenario
    seen: list[str] = []

    def redact(text: str) -> str:
        seen.append(text)
        return text.replace("lease", "<redacted:lease>")

    got = ds.log_template_counts(w, b, redact=redact)
    (distinct,) = ds.fetch(
        "SELECT count(*) FROM (SELECT DISTINCT service_name, time_ns >= ? AND time_ns < ?, body "
        "FROM logs WHERE body IS NOT NULL AND ((time_ns >= ? AND time_ns < ?) OR "
        "(time_ns >= ? AND time_ns < ?)))",
        [w.start_ns, w.end_ns, w.start_ns, w.end_ns, b.start_ns, b.end_ns],
    )[0]
    assert len(seen) == distinct
    assert not any("lease " in t.template for t in got.templates)
    assert any("<redacted:lease>" in t.template for t in got.templates)


@pytest.fixture
def many_lines(dcr_home):
    """More log lines a period than the bundle used to read (20,000): 46,000 in the window,
    30,001 in the baseline; the ERROR lines carry no severity (it is read from their text)."""
    w, b = Window(T0 + 600 * S, T0 + 1200 * S), Window(T0, T0 + 600 * S)
    logs = [
        dict(
            time_ns=w.start_ns + i * 1000,
            service_name="api",
            severity_number=9,
            severity_text="INFO",
            body=f"GET /api/items/{i % 50} took {i % 7} ms",
            source_id="s1",
        )
        for i in range(25_000)
    ]
    logs += [
        dict(
            time_ns=w.start_ns + i * 1000 + 1,
            service_name="api",
            body="ERROR db timeout after 30 s",
            trace_id=f"{i + 1:032x}",
            span_id=f"{i + 1:016x}",
            source_id="s1",
        )
        for i in range(21_000)
    ]
    logs += [
        dict(
            time_ns=b.start_ns + i * 1000,
            service_name="cache",
            severity_number=9,
            body=f"cache miss for key {i % 3}",
            source_id="s2",
        )
        for i in range(30_001)
    ]
    make_dataset("many", [], logs)
    with open_dataset("many") as ds:
        yield ds, w, b


def test_counts_above_twenty_thousand_lines_are_exact(many_lines) -> None:
    ds, w, b = many_lines
    got = ds.log_template_counts(w, b)
    by = {(t.service, t.severity, t.template): t for t in got.templates}
    assert by[("api", "INFO", "GET /api/items/<NUM> took <NUM> ms")].count == 25_000
    err = by[("api", "ERROR", "ERROR db timeout after <NUM> s")]
    assert (err.count, err.baseline_count, err.severity_inferred) == (21_000, 0, True)
    assert (err.trace_id, err.span_id, err.source_id) == (f"{1:032x}", f"{1:016x}", "s1")  # the first line
    miss = by[("cache", "INFO", "cache miss for key <NUM>")]
    assert (miss.count, miss.baseline_count, miss.trace_id) == (0, 30_001, None)
    assert (got.lines, got.baseline_lines, got.texts, got.truncated) == (46_000, 30_001, 354, False)
    assert (
        ds.fetch("SELECT count(*) FROM logs WHERE time_ns >= ? AND time_ns < ?", [w.start_ns, w.end_ns])[0][0]
        == got.lines
    )


def test_texts_beyond_the_cap_are_counted_as_untemplated(many_lines) -> None:
    ds, w, b = many_lines
    got = evidence.log_template_counts(ds, w, b, max_texts=100)
    assert got.truncated and (got.texts, got.texts_cap) == (354, 100)
    # the 100 most frequent (service, period, text) groups, computed here
    groups: Counter[tuple[str, bool, str]] = Counter()
    for service, body, t in ds.fetch("SELECT service_name, body, time_ns FROM logs"):
        groups[(service, _in(t, w), body)] += 1
    kept = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0][2], kv[0][0], not kv[0][1]))[:100]
    kept_w = sum(n for (_, after, _), n in kept if after)
    kept_b = sum(n for (_, after, _), n in kept if not after)
    assert sum(t.count for t in got.templates) == kept_w == got.lines - got.untemplated
    assert (
        sum(t.baseline_count for t in got.templates)
        == kept_b
        == got.baseline_lines - got.baseline_untemplated
    )
    assert (got.lines, got.baseline_lines) == (46_000, 30_001) and got.untemplated > 0


# service graph -------------------------------------------------------------------------------


def _p95(values: list[int]) -> float:
    """quantile_cont(0.95): linear between the two nearest ranks."""
    v = sorted(values)
    pos = (len(v) - 1) * 0.95
    lo = int(pos)
    return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (pos - lo)


def test_service_graph_change_equals_the_edges_counted_here(scenario) -> None:
    ds, w, b = scenario
    got = ds.service_graph_change(w, b)
    spans = ds.fetch(
        "SELECT trace_id, span_id, parent_span_id, service_name, start_ns, status_code, duration_ns "
        "FROM spans"
    )
    service = {(r[0], r[1]): r[3] for r in spans}
    calls: dict[tuple[str, str, str], list[tuple[bool, int]]] = defaultdict(list)
    for tid, _sid, parent, svc, start, status, dur in spans:
        caller = service.get((tid, parent))
        if parent is None or caller is None or caller == svc:
            continue
        period = "w" if _in(start, w) else "b" if _in(start, b) else None
        if period:
            calls[(caller, svc, period)].append((status == "ERROR", dur))
    edges = {(e.caller, e.callee): e for e in got.edges}
    assert set(edges) == {(a, c) for a, c, _ in calls}
    for (caller, callee, period), xs in calls.items():
        e = edges[(caller, callee)]
        fig = e.window if period == "w" else e.baseline
        assert fig is not None and fig.calls == len(xs) and fig.errors == sum(x[0] for x in xs)
        assert abs(fig.p95_ns - _p95([x[1] for x in xs])) <= 1
        assert (
            fig.seconds == ((w if period == "w" else b).end_ns - (w if period == "w" else b).start_ns) / 1e9
        )
    for e in got.edges:
        assert e.status == ("both" if e.window and e.baseline else "new" if e.window else "gone")
        if e.status == "both":
            assert e.calls_ratio == pytest.approx(e.window.calls_per_s / e.baseline.calls_per_s)
    assert any(e.window and e.window.errors for e in got.edges)
    assert ds.sql(got.sql).rows[0][:2] == (got.edges[0].caller, got.edges[0].callee)


def test_without_a_baseline_no_edge_is_new(scenario) -> None:
    ds, w, _ = scenario
    got = ds.service_graph_change(w)
    assert got.edges and all(
        e.status == "" and e.baseline is None and e.calls_ratio is None for e in got.edges
    )


# exemplar traces, sources, code ---------------------------------------------------------------


def test_exemplar_traces_are_the_ones_picked_here(scenario) -> None:
    ds, w, b = scenario
    got = ds.exemplar_traces(w, b)
    assert [e.role for e in got] == ["slowest", "failing", "typical", "baseline_typical"]
    traces: dict[str, list[int]] = {}
    for tid, start, end, err in ds.fetch(
        "SELECT trace_id, start_ns, end_ns, status_code = 'ERROR' FROM spans"
    ):
        t = traces.setdefault(tid, [start, end, 0])
        t[0], t[1], t[2] = min(t[0], start), max(t[1], end), t[2] + bool(err)

    roots = dict(ds.fetch("SELECT trace_id, root_service || ' ' || root_operation FROM traces"))

    def typical(period: Window, root: str) -> str:
        durs = sorted(
            (t[1] - t[0], tid) for tid, t in traces.items() if _in(t[0], period) and roots[tid] == root
        )
        d = [x[0] for x in durs]
        mid = (d[(len(d) - 1) // 2] + d[len(d) // 2]) / 2
        return min(durs, key=lambda x: (abs(x[0] - mid), x[1]))[1]

    in_w = {tid: t for tid, t in traces.items() if _in(t[0], w)}
    role = {e.role: e.trace_id for e in got}
    assert role["slowest"] == min(in_w, key=lambda tid: (-(in_w[tid][1] - in_w[tid][0]), tid))
    assert (
        role["failing"] == min(in_w, key=lambda tid: (-in_w[tid][2], in_w[tid][0], tid))
        and in_w[role["failing"]][2]
    )
    # the typical traces do what the failing one does (its root), in the window and before it
    root = roots[role["failing"]]
    assert root == "frontend POST /api/checkout"
    assert role["typical"] == typical(w, root) and role["baseline_typical"] == typical(b, root)
    for e in got:
        assert ds.sql(e.sql).rows == ((e.trace_id,),)
        assert e.root == roots[e.trace_id] and e.start_ns == traces[e.trace_id][0]


def test_exemplars_through_a_service(scenario) -> None:
    ds, w, _ = scenario
    for e in ds.exemplar_traces(w, None, ["lock-service"]):
        assert e.role != "baseline_typical"
        assert "lock-service" in {s.service for s in ds.trace(e.trace_id).spans}


def test_trace_sources(scenario) -> None:
    ds, w, b = scenario
    tid = ds.exemplar_traces(w, b)[0].trace_id
    direct = sorted({r[0] for r in ds.fetch("SELECT source_id FROM spans WHERE trace_id = ?", [tid])})
    assert list(ds.trace_sources(tid)) == direct and direct
    assert ds.trace_sources("0" * 32) == ()


def test_code_locations_and_stack_traces(scenario) -> None:
    ds, w, _ = scenario
    locs = ds.code_locations(w)
    assert locs
    for c in locs:
        n, errs = ds.fetch(
            "SELECT count(*), count(*) FILTER (WHERE status_code = 'ERROR') FROM spans "
            "WHERE code_filepath = ? AND code_lineno IS NOT DISTINCT FROM ? AND code_function IS NOT "
            "DISTINCT FROM ? AND start_ns >= ? AND start_ns < ?",
            [c.path, c.line, c.function, w.start_ns, w.end_ns],
        )[0]
        assert (c.spans, c.error_spans) == (n, errs)
        assert (
            ds.fetch(
                "SELECT code_filepath FROM spans WHERE trace_id = ? AND span_id = ?", [c.trace_id, c.span_id]
            )[0][0]
            == c.path
        )
    assert [(-c.error_spans, -c.spans) for c in locs] == sorted((-c.error_spans, -c.spans) for c in locs)
    stacks = ds.stack_traces(w)
    events = ds.fetch(
        "SELECT events FROM spans WHERE exception_type IS NOT NULL AND start_ns >= ? AND start_ns < ?",
        [w.start_ns, w.end_ns],
    )
    expected = sum(
        1
        for (ev,) in events
        for e in json.loads(ev or "[]")
        if isinstance((e.get("attributes") or {}).get("exception.stacktrace"), str)
    )
    assert len(stacks) == expected > 0
    assert all(s.text and len(s.trace_id) == 32 for s in stacks)
