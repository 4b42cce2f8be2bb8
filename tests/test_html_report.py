"""The HTML incident report: folding big traces, the service map, and every scenario of the
library loaded from disk in real headless Chromium (Debian's `chromium`, driven by Playwright
through executable_path: never a browser download)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from correlate import Window, open_dataset
from correlate.incident import MapEdge, MapNode, ServiceMap
from correlate.types import CorrelationReport, TraceSpan, TraceView
from escalation.html_report import (
    MAX_BYTES,
    MAX_MAP_NODES,
    MAX_ROWS,
    map_svg,
    waterfall_svg,
    write_html_report,
)
from escalation.redact import Redactor
from ingest import ingest_paths

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
NAMES = sorted(p.name for p in SCENARIOS.iterdir() if (p / "truth.json").is_file())
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def big_trace(n: int, *, fan: int = 6) -> TraceView:
    """A trace of `n` spans: a tree `fan` wide, the first child of each span on the critical path,
    every 97th span an error, and one chain 40 deep."""
    spans: list[TraceSpan] = []
    t0 = 1_700_000_000_000_000_000

    def add(i: int, parent: int | None, depth: int, cp: bool) -> None:
        spans.append(
            TraceSpan(
                span_id=f"{i:016x}",
                parent_span_id=None if parent is None else f"{parent:016x}",
                service=f"svc{i % 7}",
                operation=f"op{i % 13}",
                kind="INTERNAL",
                host=None,
                start_ns=t0 + i * 1000,
                end_ns=t0 + i * 1000 + 50_000_000 // (depth + 1),
                duration_ns=50_000_000 // (depth + 1),
                self_time_ns=1000,
                depth=depth,
                status_code="ERROR" if i % 97 == 0 and i else "UNSET",
                status_message=None,
                attributes={"i": i, "token": "ghp_" + "a1B2c3D4" * 5},
                on_critical_path=cp,
            )
        )

    add(0, None, 0, True)
    depth_of = {0: 0}
    cp = {0}
    for i in range(1, n):
        parent = (i - 1) // fan if i > 40 else i - 1  # a chain 40 deep first, then a wide tree
        depth_of[i] = depth_of[parent] + 1
        on = parent in cp and (i - 1) % fan == 0 if i > 40 else True
        if on:
            cp.add(i)
        add(i, parent, depth_of[i], on)
    by_parent: dict[str | None, list[TraceSpan]] = {}
    for s in spans:
        by_parent.setdefault(s.parent_span_id, []).append(s)
    ordered: list[TraceSpan] = []
    stack = [spans[0]]
    while stack:  # depth-first, as TraceView keeps them
        s = stack.pop()
        ordered.append(s)
        stack.extend(reversed(by_parent.get(s.span_id, [])))
    return TraceView(
        trace_id="ab" * 16,
        spans=tuple(ordered),
        critical_path=(),
        warnings=(),
        start_ns=t0,
        end_ns=max(s.end_ns for s in spans),
    )


def test_a_20000_span_trace_is_folded_never_dropped():
    view = big_trace(20_000)
    wf = waterfall_svg(view, Redactor())
    svg = wf["svg"]
    bars = len(re.findall(r'<g class="span[" ]', svg))
    folded = sum(int(n) for n in re.findall(r'<g class="folded" data-count="(\d+)"', svg))
    assert wf["total"] == 20_000
    assert bars == wf["shown"] <= MAX_ROWS
    assert wf["shown"] + wf["folded"] == 20_000 and folded == wf["folded"]
    shown_ids = set(re.findall(r'data-span-id="([0-9a-f]+)"', svg))
    assert {s.span_id for s in view.spans if s.on_critical_path} <= shown_ids  # the path is always drawn
    assert {s.span_id for s in view.spans if s.status_code == "ERROR"} & shown_ids
    # every shown span's parent is shown: the tree reads without gaps
    parents = {s.span_id: s.parent_span_id for s in view.spans}
    assert all(parents[sid] is None or parents[sid] in shown_ids for sid in shown_ids)
    assert "ghp_" not in json.dumps(wf["details"])  # attribute values are redacted like the bundle


def test_a_small_trace_is_drawn_whole():
    view = big_trace(50)
    wf = waterfall_svg(view, Redactor())
    assert (wf["shown"], wf["folded"]) == (50, 0)
    assert 'class="folded"' not in wf["svg"]


def test_the_map_keeps_a_service_whose_calls_stopped_and_marks_the_candidates():
    w, b = Window(10, 20), Window(0, 10)
    smap = ServiceMap(
        w,
        b,
        nodes=(
            MapNode("front", 10, 10, 0, 0, 5e6, 6e6),
            MapNode("api", 10, 10, 0, 4, 3e6, 9e6),
            MapNode("gone", 8, 0, 0, 0, 1e6, None),
            MapNode("new", 0, 5, 0, 0, None, 1e6),
        ),
        edges=(
            MapEdge("front", "api", 10, 10, 0, 4, 3e6, 9e6),
            MapEdge("api", "gone", 8, 0, 0, 0, 1e6, None),
            MapEdge("api", "new", 0, 5, 0, 0, None, 1e6),
            MapEdge("api", "front", 2, 2, 0, 0, 1e6, 1e6),  # a call back up: drawn, not a layout loop
        ),
    )
    svg = map_svg(smap, {"api": 1})
    nodes = re.findall(r'<g class="svc-node([^"]*)" data-service="([^"]+)"', svg)
    assert sorted(n for _, n in nodes) == ["api", "front", "gone", "new"]
    cls = {n: c for c, n in nodes}
    assert "candidate" in cls["api"] and "stopped" in cls["gone"] and "candidate" not in cls["front"]
    edges = dict(
        ((c, e), k)
        for k, c, e in re.findall(
            r'<g class="svc-edge edge-(\w+)" data-caller="([^"]+)" data-callee="([^"]+)"', svg
        )
    )
    assert edges[("front", "api")] == "worse"
    assert edges[("api", "gone")] == "stopped"
    assert edges[("api", "new")] == "new"


# --------------------------------------------------------------------------------------- on the library


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Every scenario: its dataset, correlate report and written HTML page."""
    home = tmp_path_factory.mktemp("dcr_home_html")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCR_HOME", str(home))
        for name in NAMES:
            folder = SCENARIOS / name
            truth = json.loads((folder / "truth.json").read_text())
            ingest_paths([str(folder / "traces.jsonl"), str(folder / "logs.jsonl")], name)
            w = truth["window"]
            window = Window(w["incident_start_ns"], w["incident_end_ns"])
            baseline = Window(w["baseline_start_ns"], w["baseline_end_ns"])
            with open_dataset(name) as ds:
                report = ds.correlate(window, baseline)
                page = write_html_report(ds, report, home / "reports" / f"{name}.html")
                services = {
                    r[0]
                    for r in ds.sql(
                        f"SELECT DISTINCT service_name FROM spans WHERE (start_ns >= {window.start_ns} AND start_ns < "
                        f"{window.end_ns}) OR (start_ns >= {baseline.start_ns} AND start_ns < {baseline.end_ns})",
                        limit=10_000,
                    ).rows
                }
            out[name] = (truth, report, page, services)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_each_scenario_report_holds_what_it_claims(reports, name):
    truth, report, page, services = reports[name]
    text = Path(page.path).read_text(encoding="utf-8")
    assert page.bytes == len(text.encode()) < MAX_BYTES
    assert page.holds["services"] == len(services)
    # nothing that fetches (telemetry may hold URLs as text; the browser test watches the network too)
    assert not re.search(
        r"<script[^>]+src|<link|<img|<iframe|(src|href)=\"(https?:)?//|url\((https?:)?//", text
    ), name
    assert "default-src 'none'" in text
    root = truth.get("root_cause")
    if root is not None:  # the verdict names the culprit first, linked to its evidence
        first = re.search(r'<tr class="candidate" data-service="([^"]+)">', text)
        assert first and first.group(1) == root["service"] == report.candidates[0].service
        assert 'href="#ev-1"' in text and 'id="ev-1"' in text
        assert page.holds["waterfalls"]["window"] is not None
    assert "What was not used or could not be computed" in text


def test_a_report_without_baseline_says_so(dcr_home):
    folder = SCENARIOS / "network_delay"
    ingest_paths([str(folder / "traces.jsonl")], "nb")
    with open_dataset("nb") as ds:
        report = ds.correlate()  # whole dataset: no data before it
        page = write_html_report(ds, report, dcr_home / "nb.html")
    assert isinstance(report, CorrelationReport) and report.baseline is None
    assert page.holds["waterfalls"]["baseline"] is None
    assert any("no baseline" in n for n in page.holds["notes"])


def _browser():
    """Playwright's sync API and Debian's chromium, or a skip (a failure under CI=true)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - installed by the test extra
        sync_playwright = None
    missing = None
    if sync_playwright is None:
        missing = "playwright is not installed: pip install -e '.[test]'"
    elif not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing = "Debian's chromium is not installed: apt-get install chromium (.ci/run does)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    return sync_playwright


def test_every_scenario_renders_in_headless_chromium(reports, tmp_path):
    sync_playwright = _browser()
    exe = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=BROWSER_ARGS)
        try:
            for name in NAMES:
                _, report, page_info, services = reports[name]
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                requests: list[str] = []
                page.on(
                    "console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None
                )
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("request", lambda r, requests=requests: requests.append(r.url))
                page.goto(Path(page_info.path).as_uri())
                page.wait_for_load_state("load")
                assert errors == [], (name, errors)
                assert [u for u in requests if not u.startswith("file:")] == [], name
                drawn = page.eval_on_selector_all("g.svc-node", "els => els.map(e => e.dataset.service)")
                assert sorted(drawn) == sorted(services), name
                wf = page_info.holds["waterfalls"]["window"]
                if wf is not None:
                    bars = page.locator(".wf-window g.span").count()
                    folded = page.eval_on_selector_all(
                        ".wf-window g.folded", "els => els.reduce((n, e) => n + Number(e.dataset.count), 0)"
                    )
                    assert bars == wf["shown"] and bars + folded == wf["spans"], name
                    page.locator(".wf-window g.span rect.bar").first.click(
                        timeout=5000
                    )  # a click shows the span's attributes
                    detail = page.locator("#span-detail")
                    assert detail.is_visible() and '"service"' in detail.inner_text(), name
                shot = tmp_path / f"{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000, name
                page.close()
        finally:
            browser.close()


# --------------------------------------------------------------------------------------- the faces


def test_dcr_report_writes_the_page_and_says_what_it_holds(dcr_home, capsys):
    from mcp_server.cli import main

    ingest_paths([str(SCENARIOS / "dependency_failure")], "shop")
    window = ["--start", "2025-06-12T09:15:00Z", "--end", "2025-06-12T09:30:00Z"]
    assert main(["report", "shop", *window, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (
        Path(out["path"]).parent == dcr_home / "reports" and Path(out["path"]).stat().st_size == out["bytes"]
    )
    assert out["holds"]["candidates"] >= 1 and out["holds"]["waterfalls"]["baseline"] is not None
    target = dcr_home / "elsewhere" / "incident.html"
    assert main(["report", "shop", *window, "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target.resolve()) and target.is_file()
    assert main(["report", "shop", "--trace", "0" * 32]) == 2  # an unknown trace: one line, exit 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dcr: ") and "\n" not in err and "0" * 32 in err


def test_the_mcp_tools_return_the_page_when_asked(dcr_home):
    from tests.mcp_helpers import INCIDENT, call, ok

    ingest_paths([str(SCENARIOS / "dependency_failure")], "shop")
    plain = ok(call("auto", "correlate", {"dataset": "shop", **INCIDENT}))
    assert plain.get("html_report") is None
    out = ok(call("auto", "correlate", {"dataset": "shop", **INCIDENT, "html_report": True}))
    page = Path(out["html_report"])
    assert page.is_file() and page.parent == dcr_home / "reports"
    assert out["candidates"][0]["service"] in page.read_text(encoding="utf-8")
    esc = ok(
        call(
            "auto",
            "escalate_analysis",
            {
                "claude_context": {
                    "attempted_approaches": [],
                    "partial_findings": [],
                    "stuck_description": "502s",
                    "code_scope": {"files": []},
                },
                "dataset": "shop",
                **INCIDENT,
                "html_report": True,
            },
        )
    )
    text = Path(esc["html_report"]).read_text(encoding="utf-8")
    assert "Analysis" in text and "Offline report" in text


def test_a_map_of_hundreds_of_services_is_capped_and_says_so(dcr_home):
    """400 services: the map draws at most MAX_MAP_NODES, the busiest and the candidates first, and
    the notes say how many were left out; the file stays small."""
    t0 = 1_750_000_020 * 1_000_000_000
    lines = []
    for i in range(40):
        tid, start = f"{i + 1:032x}", t0 + i * 10_000_000_000
        root = {
            "traceId": tid,
            "spanId": f"{i + 1:08x}00000000",
            "name": "GET /",
            "kind": 2,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 50_000_000),
        }
        by = {"gateway": [root]}
        for j in range(400):
            slow = i >= 20 and j == 7  # svc-007 gets slow in the second half
            by.setdefault(f"svc-{j:03d}", []).append(
                {
                    "traceId": tid,
                    "spanId": f"{i + 1:08x}{j + 1:08x}",
                    "parentSpanId": root["spanId"],
                    "name": "work",
                    "kind": 2,
                    "startTimeUnixNano": str(start + 1_000_000),
                    "endTimeUnixNano": str(start + (40_000_000 if slow else 2_000_000)),
                }
            )
        lines.append(
            json.dumps(
                {
                    "resourceSpans": [
                        {
                            "resource": {
                                "attributes": [{"key": "service.name", "value": {"stringValue": s}}]
                            },
                            "scopeSpans": [{"spans": spans}],
                        }
                        for s, spans in by.items()
                    ]
                }
            )
        )
    dump = dcr_home / "wide.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    ingest_paths([str(dump)], "wide")
    with open_dataset("wide") as ds:
        report = ds.correlate(
            Window(t0 + 200_000_000_000, t0 + 400_000_000_000), Window(t0, t0 + 200_000_000_000)
        )
        page = write_html_report(ds, report, dcr_home / "wide.html")
    text = Path(page.path).read_text(encoding="utf-8")
    drawn = re.findall(r'<g class="svc-node[^"]*" data-service="([^"]+)"', text)
    assert page.holds["services"] == 401 and len(drawn) == MAX_MAP_NODES
    assert report.candidates and report.candidates[0].service in drawn
    assert any("services and" in n and "not drawn" in n for n in page.holds["notes"])
    assert page.bytes < MAX_BYTES


def _hostile_dump(path: Path) -> None:
    """Spans and logs whose strings try to end the page's script, open a comment state, or carry
    secrets into the page."""
    t0 = 1_750_000_020 * 1_000_000_000
    evil = "</script><script>alert(1)</script><!--<script>"
    lines, logs = [], []
    for i in range(60):
        tid, start = f"{i + 1:032x}", t0 + i * 10_000_000_000
        slow = i >= 30
        root = {
            "traceId": tid,
            "spanId": f"{i + 1:08x}00000000",
            "name": "GET /",
            "kind": 2,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 60_000_000),
            "attributes": [{"key": "note", "value": {"stringValue": evil}}],
        }
        child = {
            "traceId": tid,
            "spanId": f"{i + 1:08x}00000001",
            "parentSpanId": root["spanId"],
            "name": evil + " password=hunterSecretPass",
            "kind": 2,
            "startTimeUnixNano": str(start + 1_000_000),
            "endTimeUnixNano": str(start + (50_000_000 if slow else 3_000_000)),
            "status": {"code": 2} if slow else {},
        }
        lines.append(
            json.dumps(
                {
                    "resourceSpans": [
                        {
                            "resource": {
                                "attributes": [{"key": "service.name", "value": {"stringValue": svc}}]
                            },
                            "scopeSpans": [{"spans": [s]}],
                        }
                        for svc, s in (("gate", root), ("db-svc", child))
                    ]
                }
            )
        )
        if slow:
            logs.append(
                json.dumps(
                    {
                        "resourceLogs": [
                            {
                                "resource": {
                                    "attributes": [
                                        {"key": "service.name", "value": {"stringValue": "db-svc"}}
                                    ]
                                },
                                "scopeLogs": [
                                    {
                                        "logRecords": [
                                            {
                                                "timeUnixNano": str(start + 2_000_000),
                                                "severityNumber": 17,
                                                "traceId": tid,
                                                "spanId": child["spanId"],
                                                "body": {
                                                    "stringValue": "login failed password=hunterSecretPass Authorization: "
                                                    "Basic dXNlcjpwYXNzd29yZDEyMzQ1Ng=="
                                                },
                                            }
                                        ]
                                    }
                                ],
                            }
                        ]
                    }
                )
            )
    path.write_text("\n".join(lines + logs) + "\n")


def test_hostile_telemetry_neither_breaks_the_page_nor_leaks_a_secret(dcr_home, tmp_path):
    _hostile_dump(dcr_home / "evil.jsonl")
    ingest_paths([str(dcr_home / "evil.jsonl")], "evil")
    t0 = 1_750_000_020 * 1_000_000_000
    with open_dataset("evil") as ds:
        report = ds.correlate(
            Window(t0 + 300_000_000_000, t0 + 600_000_000_000), Window(t0, t0 + 300_000_000_000)
        )
        page = write_html_report(ds, report, dcr_home / "evil.html")
    text = Path(page.path).read_text(encoding="utf-8")
    assert report.candidates
    for secret in ("hunterSecretPass", "dXNlcjpwYXNzd29yZDEyMzQ1Ng"):  # not in SQL, headings or data
        assert secret not in text
    blob = text.split('<script type="application/json" id="span-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in blob and ">" not in blob  # nothing in the data can end or comment out the script
    assert "<script>alert(1)" not in text
    sync_playwright = _browser()
    exe = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=BROWSER_ARGS)
        try:
            p = browser.new_page()
            errors: list[str] = []
            dialogs: list[str] = []
            p.on("pageerror", lambda e: errors.append(str(e)))
            p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            p.goto(Path(page.path).as_uri())
            assert errors == [] and dialogs == []
            p.locator(".wf-window g.span rect.bar").first.click(timeout=5000)
            assert '"service"' in p.locator("#span-detail").inner_text()
        finally:
            browser.close()


def test_escalate_html_shows_the_periods_the_bundle_compared(dcr_home, capsys):
    from mcp_server.cli import main

    ingest_paths([str(SCENARIOS / "retry_storm")], "rs")
    with open_dataset("rs") as ds:
        onset = ds.timeline().onset
    assert onset is not None  # the scenario has one: the bundle proposes its window
    out = dcr_home / "rs.html"
    assert (
        main(["escalate", "rs", "-q", "why is checkout slow?", "--provider", "offline", "--html", str(out)])
        == 0
    )
    capsys.readouterr()
    text = out.read_text(encoding="utf-8")
    from correlate.times import format_ns

    assert f"window {format_ns(onset.window.start_ns)} to" in text
