"""The incident report as one self-contained HTML file: what a person looks at.

    write_html_report(session, report, path)   -> HtmlReport (path, bytes, what it holds)
    render_html_report(session, report)        -> (html, holds)

Top to bottom: the verdict (top candidates, linked to their evidence), the service map of the
window and the baseline, the waterfall of an example trace of the top candidate beside a baseline
trace with the same root operation, the duration distributions (ECDF) of the operations the top
candidates name, the log templates that changed, the evidence of every candidate, and what could
not be used. Everything comes from the same `CorrelationReport` the ranking produced and from
`correlate.incident`.

No network at view time: styles and the one small script are inline, the charts are SVG (the
distributions are Vega-Lite specs rendered offline to SVG by vl-convert; the waterfall and the
service map are drawn here, since no charting library draws a span waterfall or a small layered
call graph well), and a Content-Security-Policy forbids every fetch. Telemetry text (attributes,
log templates, summaries) passes through the same redactor as the evidence bundle.

Scale: a waterfall shows at most MAX_ROWS spans: the root, the critical path and the error spans
with their ancestors first, then the shallowest spans; every hidden subtree becomes one "folded"
row under its nearest shown ancestor that says how many spans it holds. The file stays under
MAX_BYTES: when the span details would push it over, they are dropped and the page says so.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from correlate.incident import (
    MAX_DURATION_SAMPLES,
    Durations,
    ExamplePair,
    ServiceMap,
    example_pair,
    operation_durations,
    service_map,
)
from correlate.times import format_ns
from correlate.types import Candidate, CorrelationReport, TraceSpan, TraceView
from escalation.errors import EscalationError
from escalation.redact import Redactor
from escalation.types import EscalationRequest, EscalationResult

if TYPE_CHECKING:
    from correlate.session import DatasetSession

__all__ = [
    "HtmlReport",
    "render_html_report",
    "write_html_report",
    "write_for_escalation",
    "default_report_path",
    "waterfall_svg",
    "map_svg",
    "MAX_ROWS",
    "MAX_BYTES",
]

MAX_ROWS = 600  # spans drawn in one waterfall; the rest are folded into counted rows
MAX_BYTES = 5_000_000
DETAIL_BUDGET = 3_000_000  # span details (click a bar) are dropped past this many characters
MAX_CANDIDATES = 10
MAX_DISTRIBUTIONS = 3
ECDF_POINTS = 300
MAX_ATTRS = 40
MAX_ATTR_CHARS = 300
MIN_EDGE_CALLS = 10  # an edge with fewer calls in both periods is not called changed by its count
MAP_LABEL_EDGES = 30
MAP_COLUMN = 12  # services a column of the map holds before it wraps
MAX_MAP_NODES = 120  # services drawn on the map (the candidates and their neighbours first)
MAX_EDGE_ROWS = 2_000  # above this many edges, edge figures live in the table and the tooltips only

ROW_H = 16
WF_WIDTH = 1100
WF_LABEL = 380
PALETTE = (
    "#4e79a7",
    "#59a14f",
    "#9c755f",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#8cd17d",
    "#499894",
    "#86bcb6",
    "#d4a6c8",
    "#a0cbe8",
    "#f1ce63",
    "#79706e",
    "#bab0ac",
)


@dataclass(frozen=True)
class HtmlReport:
    path: str
    bytes: int
    holds: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_report_path(dataset: str) -> Path:
    """$DCR_HOME/reports/<dataset>-<UTC time>.html"""
    from ingest.dataset import dcr_home

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in dataset) or "dataset"
    return dcr_home() / "reports" / f"{safe}-{stamp}.html"


def write_html_report(
    session: DatasetSession,
    report: CorrelationReport,
    path: str | Path,
    *,
    analysis: str | None = None,
    trace_id: str | None = None,
) -> HtmlReport:
    """Render the report and write it to `path` (parents created; written to a temporary name
    and renamed, so a reader never sees half a file)."""
    text, holds = render_html_report(session, report, analysis=analysis, trace_id=trace_id)
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    data = text.encode("utf-8")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return HtmlReport(str(out.resolve()), len(data), holds)


# --------------------------------------------------------------------------------------- page


def render_html_report(
    session: DatasetSession,
    report: CorrelationReport,
    *,
    analysis: str | None = None,
    trace_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """(the HTML text, a summary of what it holds)."""
    red = Redactor()
    notes: list[str] = list(report.notes)
    smap = service_map(session, report)
    drawn_map, map_note = _map_to_draw(smap, {c.service for c in report.candidates[:MAX_CANDIDATES]})
    if map_note:
        notes.append(map_note)
    pair = example_pair(session, report, trace_id)
    if pair.note:
        notes.append(f"waterfall: {pair.note}")
    views: dict[str, TraceView | None] = {"window": None, "baseline": None}
    for role, tid in (("window", pair.window_trace_id), ("baseline", pair.baseline_trace_id)):
        if tid:
            views[role] = session.trace(tid)
    ops = _candidate_operations(report.candidates)
    dists = operation_durations(session, report, ops)
    budget = [DETAIL_BUDGET]
    axis = max((v.end_ns - v.start_ns for v in views.values() if v), default=0)  # one time axis for both
    waterfalls = {
        role: waterfall_svg(v, red, detail_budget=budget, axis_ns=axis) if v else None
        for role, v in views.items()
    }
    for role, wf in waterfalls.items():
        if wf and wf["folded"]:
            notes.append(
                f"{role} waterfall: {wf['folded']:,} of {wf['total']:,} spans folded "
                f"(shown: the critical path, errors, then the shallowest spans)"
            )
        if wf and wf["details_dropped"]:
            notes.append(
                f"{role} waterfall: span details left out to keep the file under {MAX_BYTES // 1_000_000} MB"
            )
    if not report.candidates:
        notes.append("no candidate: nothing in the window differs enough from the baseline")
    log_findings = [f for f in report.findings if f.kind == "log_templates"]
    candidates = report.candidates[:MAX_CANDIDATES]
    highlighted = {c.service: i + 1 for i, c in reversed(list(enumerate(candidates[:3])))}
    parts = [
        _head(report),
        _verdict(report, candidates, red, analysis),
        _section(
            "map", "Service map", _period_line(report) + map_svg(drawn_map, highlighted) + _edge_table(smap)
        ),
        _section("waterfall", "Example trace", _waterfalls(pair, waterfalls, report, red)),
        _section("distributions", "Latency before and after", _distributions(dists, notes, red)),
        _section("logs", "Log templates that changed", _logs(log_findings, red)),
        _section("evidence", "Evidence", _evidence(candidates, red)),
        _section("notes", "What was not used or could not be computed", _notes(notes)),
        _details_script(waterfalls),
        "</main></body></html>",
    ]
    page = "\n".join(parts)
    holds = {
        "dataset": report.dataset,
        "candidates": len(candidates),
        "services": len(smap.nodes),
        "edges": len(smap.edges),
        "waterfalls": {
            role: None
            if wf is None
            else {
                "trace_id": wf["trace_id"],
                "spans": wf["total"],
                "shown": wf["shown"],
                "folded": wf["folded"],
            }
            for role, wf in waterfalls.items()
        },
        "distributions": [f"{d.service} {d.operation}" for d in dists],
        "log_templates": len(log_findings),
        "notes": notes,
        "redacted": red.snapshot(),
    }
    return page, holds


def _candidate_operations(candidates: Sequence[Candidate]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for c in candidates:
        if c.operation and (c.service, c.operation) not in out:
            out.append((c.service, c.operation))
        if len(out) >= MAX_DISTRIBUTIONS:
            break
    return out


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _t(red: Redactor, text: Any) -> str:
    """Telemetry text: redacted, then escaped."""
    return _e(red.text(str(text)) if isinstance(text, str) else text)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2329;background:#fff}
main{max-width:1180px;margin:0 auto;padding:16px 24px 64px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}.muted{color:#667}.small{font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border-bottom:1px solid #e6e8ee;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f5f6fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:320px}
.conf-high{color:#0a7d32;font-weight:600}.conf-medium{color:#9a6700;font-weight:600}.conf-low{color:#8a8f98}
.svgbox{overflow:auto;border:1px solid #e6e8ee;border-radius:4px;margin:6px 0}
.pair{display:grid;grid-template-columns:1fr;gap:12px}
#span-detail{position:sticky;bottom:0;background:#fffbea;border:1px solid #e8d48a;padding:6px 10px;display:none;max-height:40vh;overflow:auto}
.analysis{white-space:pre-wrap;background:#f6f8fa;padding:10px;border-radius:4px;max-height:260px;overflow:auto}
g.span{cursor:pointer}g.span:hover rect.bar{stroke:#000;stroke-width:1}
"""


def _head(report: CorrelationReport) -> str:
    title = f"dcr incident report: {report.dataset}"
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "font-src 'none'; connect-src 'none'"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>{_e(title)}</h1><p class="muted small">written {_e(datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))}'
        f" by deep-code-reasoning from the same evidence as <code>dcr correlate</code>; correlate took "
        f"{report.seconds:.2f} s</p>"
    )


def _period_line(report: CorrelationReport) -> str:
    w, b = report.window, report.baseline
    base = (
        f"baseline {_e(format_ns(b.start_ns))} to {_e(format_ns(b.end_ns))}"
        if b is not None
        else "no baseline (no data before the window)"
    )
    return (
        f'<p class="small muted">window {_e(format_ns(w.start_ns))} to {_e(format_ns(w.end_ns))}; {base}. '
        "Edge colour: red = errors or p95 up, orange = calls per period changed 2x or more, "
        "grey dashed = calls stopped, blue dashed = new. Thick red outline = a top candidate.</p>"
    )


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _verdict(
    report: CorrelationReport, candidates: Sequence[Candidate], red: Redactor, analysis: str | None
) -> str:
    out = ['<section id="verdict"><h2>Verdict</h2>']
    if analysis:
        out.append(
            f'<details class="analysis-box" open><summary><b>Analysis</b> (the escalation\'s answer; '
            f'scroll for all of it)</summary><div class="analysis">{_t(red, analysis)}</div></details>'
            "<h3>Ranked candidates</h3>"
        )
    if not candidates:
        out.append(
            "<p>No root-cause candidate: the window does not differ enough from the baseline.</p></section>"
        )
        return "".join(out)
    out.append(
        "<table><tr><th>#</th><th>service</th><th>operation</th><th>mechanism</th><th>score</th>"
        "<th>confidence</th><th>summary</th></tr>"
    )
    for i, c in enumerate(candidates, 1):
        conf = c.confidence or ""
        out.append(
            f'<tr class="candidate" data-service="{_e(c.service)}"><td class="num">{i}</td>'
            f'<td><a href="#ev-{i}">{_e(c.service)}</a></td><td>{_t(red, c.operation or "")}</td>'
            f'<td>{_e(c.mechanism)}</td><td class="num">{c.score:.2f}</td>'
            f'<td class="conf-{_e(conf)}">{_e(conf)}</td><td>{_t(red, c.summary)}</td></tr>'
        )
    out.append("</table></section>")
    return "".join(out)


def _evidence(candidates: Sequence[Candidate], red: Redactor) -> str:
    if not candidates:
        return '<p class="muted">No candidates.</p>'
    out = []
    for i, c in enumerate(candidates, 1):
        ev = c.evidence
        rows = "".join(
            f'<tr><td>{_e(k)}</td><td class="num">{_fmt(ev.before.get(k))}</td><td class="num">{_fmt(ev.after.get(k))}</td></tr>'
            for k in dict.fromkeys([*ev.before, *ev.after])
        )
        figs = (
            f'<table style="width:auto"><tr><th>figure</th><th>baseline</th><th>window</th></tr>{rows}</table>'
            if rows
            else ""
        )
        details = (
            json.dumps(red.mapping(ev.details), indent=1, sort_keys=True, default=str) if ev.details else ""
        )
        traces = ", ".join(f"<code>{_e(t)}</code>" for t in ev.trace_ids[:5])
        out.append(
            f'<div class="evidence" id="ev-{i}"><h3>#{i} {_e(c.service)} {_t(red, c.operation or "")}: '
            f"{_e(c.mechanism)} ({c.score:.2f}{', ' + _e(c.confidence) if c.confidence else ''})</h3>"
            f"<p>{_t(red, c.summary)}</p>{figs}"
            + (f'<p class="small">example traces: {traces}</p>' if traces else "")
            + (f"<details><summary>details</summary><pre>{_e(details)}</pre></details>" if details else "")
            + (
                f"<details><summary>SQL that reproduces the figures</summary><pre>{_t(red, ev.sql)}</pre></details>"
                if ev.sql
                else ""
            )
            + "</div>"
        )
    return "".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return _e(f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}")
    if isinstance(v, int):
        return _e(f"{v:,}")
    return _e(v)


def _ms(ns: float | None) -> str:
    if ns is None:
        return "-"
    ms = ns / 1e6
    return f"{ms:.3g} ms" if ms < 100 else f"{ms:,.0f} ms"


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return '<p class="muted">Everything the analyses look for was present.</p>'
    return "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in dict.fromkeys(notes)) + "</ul>"


def _logs(findings: Sequence[Any], red: Redactor) -> str:
    if not findings:
        return '<p class="muted">No log template changed between the baseline and the window (or the dataset has no logs).</p>'
    rows = "".join(
        f"<tr><td>{_e(f.service)}</td><td><code>{_t(red, (f.evidence.details or {}).get('template', ''))}</code></td>"
        f'<td class="num">{_fmt(f.evidence.before.get("logs"))}</td><td class="num">{_fmt(f.evidence.after.get("logs"))}</td>'
        f"<td>{_t(red, f.summary)}</td></tr>"
        for f in findings
    )
    return (
        "<table><tr><th>service</th><th>template</th><th>baseline</th><th>window</th><th>change</th></tr>"
        f"{rows}</table>"
    )


# --------------------------------------------------------------------------------------- service map


def _colour(service: str) -> str:
    return PALETTE[int(hashlib.blake2s(service.encode(), digest_size=2).hexdigest(), 16) % len(PALETTE)]


def _edge_style(
    e: Any, has_baseline: bool, seconds: tuple[float, float] | None = None
) -> tuple[str, str, str]:
    """(class, stroke colour, dash array) for an edge by its change; `seconds`: the lengths of the
    baseline and the window, to compare calls a second."""
    if e.calls_a == 0:
        return "stopped", "#9aa0a6", "6 4"
    if has_baseline and e.calls_b == 0:
        return "new", "#1f6feb", "6 4"
    rate_b = e.errors_b / e.calls_b if e.calls_b else 0.0
    rate_a = e.errors_a / e.calls_a
    slower = e.p95_b_ns and e.p95_a_ns and e.p95_a_ns >= 2 * e.p95_b_ns
    if (rate_a - rate_b >= 0.05 and e.errors_a) or slower:
        return "worse", "#d1242f", ""
    if has_baseline and e.calls_b and max(e.calls_a, e.calls_b) >= MIN_EDGE_CALLS and seconds:
        rate_b, rate_a = e.calls_b / seconds[0], e.calls_a / seconds[1]  # calls a second: periods may differ
        if rate_a >= 2 * rate_b or rate_b >= 2 * rate_a:
            return "calls", "#e36209", ""
    return "same", "#8c959f", ""


def _layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer of each node over the call graph with back edges ignored."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a != b:
            succ.setdefault(a, []).append(b)
    state: dict[str, int] = {}
    order: list[str] = []
    back: set[tuple[str, str]] = set()

    def visit(start: str) -> None:  # iterative DFS: post-order, back edges noted
        stack = [(start, iter(succ.get(start, ())))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ.get(nxt, ()))))

    indeg = {n: 0 for n in succ}
    for bs in succ.values():
        for b in bs:
            indeg[b] = indeg.get(b, 0) + 1
    for n in sorted(succ, key=lambda n: (indeg.get(n, 0) > 0, n)):
        if n not in state:
            visit(n)
    layer = {n: 0 for n in succ}
    for node in reversed(order):  # topological order of the DAG without back edges
        for nxt in succ.get(node, ()):
            if (node, nxt) not in back:
                layer[nxt] = max(layer[nxt], layer[node] + 1)
    return layer


def _seconds(smap: ServiceMap) -> tuple[float, float] | None:
    if smap.baseline is None:
        return None
    return (
        (smap.baseline.end_ns - smap.baseline.start_ns) / 1e9 or 1.0,
        (smap.window.end_ns - smap.window.start_ns) / 1e9 or 1.0,
    )


def _map_to_draw(smap: ServiceMap, keep: set[str]) -> tuple[ServiceMap, str]:
    """At most MAX_MAP_NODES services: the candidates, their callers and callees, then the
    busiest; the edges among them. The note says what was left out (the edge table keeps all)."""
    if len(smap.nodes) <= MAX_MAP_NODES:
        return smap, ""
    chosen = set(list(keep)[:MAX_MAP_NODES])
    for e in smap.edges:
        if len(chosen) >= MAX_MAP_NODES:
            break
        if e.caller in keep or e.callee in keep:
            chosen.update({e.caller, e.callee})
    for n in sorted(smap.nodes, key=lambda n: (-(n.spans_a + n.spans_b), n.service)):
        if len(chosen) >= MAX_MAP_NODES:
            break
        chosen.add(n.service)
    nodes = tuple(n for n in smap.nodes if n.service in chosen)
    edges = tuple(e for e in smap.edges if e.caller in chosen and e.callee in chosen)
    note = (
        f"service map: {len(smap.nodes) - len(nodes):,} of {len(smap.nodes):,} services and "
        f"{len(smap.edges) - len(edges):,} edges not drawn (kept: the candidates, their callers and callees, "
        f"then the busiest); the edge table lists up to {MAX_EDGE_ROWS:,} edges"
    )
    return ServiceMap(smap.window, smap.baseline, nodes, edges), note


def map_svg(smap: ServiceMap, highlighted: dict[str, int]) -> str:
    """The service map as SVG: one `g.svc-node` a service, one `g.svc-edge` a caller -> callee."""
    names = [n.service for n in smap.nodes]
    if not names:
        return '<p class="muted">No spans in the window or the baseline.</p>'
    pairs = [(e.caller, e.callee) for e in smap.edges]
    layer = _layers(names, pairs)
    cols: dict[int, list[str]] = {}
    for name in sorted(names):
        cols.setdefault(layer[name], []).append(name)
    preds: dict[str, list[str]] = {}
    for a, b in pairs:
        preds.setdefault(b, []).append(a)
    pos: dict[str, int] = {}
    for k in sorted(cols):  # barycentre ordering against the previous column
        if k > 0:
            cols[k].sort(
                key=lambda n: (
                    sum(pos.get(p, 0) for p in preds.get(n, [])) / max(1, len(preds.get(n, []))),
                    n,
                )
            )
        for i, name in enumerate(cols[k]):
            pos[name] = i
    # a layer taller than MAP_COLUMN services wraps into several columns side by side
    columns = [
        members[i : i + MAP_COLUMN]
        for k in sorted(cols)
        for members in [cols[k]]
        for i in range(0, len(members), MAP_COLUMN)
    ]
    nw, nh, gx, gy, pad = 190, 50, 110, 26, 20
    rows = max(len(v) for v in columns)
    width = pad * 2 + len(columns) * nw + (len(columns) - 1) * gx
    height = pad * 2 + rows * nh + (rows - 1) * gy + 20
    xy: dict[str, tuple[float, float]] = {}
    for k, members in enumerate(columns):
        off = (rows - len(members)) * (nh + gy) / 2
        for i, name in enumerate(members):
            xy[name] = (pad + k * (nw + gx), pad + off + i * (nh + gy))
    has_b = smap.baseline is not None
    out = [
        f'<div class="svgbox"><svg id="service-map" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-size="11" font-family="sans-serif">',
        "<defs>"
        + "".join(
            f'<marker id="arr-{c}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="{col}"/></marker>'
            for c, col in (
                ("stopped", "#9aa0a6"),
                ("new", "#1f6feb"),
                ("worse", "#d1242f"),
                ("calls", "#e36209"),
                ("same", "#8c959f"),
            )
        )
        + "</defs>",
    ]
    label_edges = len(smap.edges) <= MAP_LABEL_EDGES
    for e in smap.edges:
        if e.caller not in xy or e.callee not in xy:
            continue
        cls, col, dash = _edge_style(e, has_b, _seconds(smap))
        (x1, y1), (x2, y2) = xy[e.caller], xy[e.callee]
        if e.caller == e.callee:
            continue
        if x2 > x1:
            sx, sy, tx, ty = x1 + nw, y1 + nh / 2, x2, y2 + nh / 2
            d = f"M{sx:.0f},{sy:.0f} C{sx + gx / 2:.0f},{sy:.0f} {tx - gx / 2:.0f},{ty:.0f} {tx:.0f},{ty:.0f}"
        else:  # a call back to an earlier column: arc under the boxes
            sx, sy, tx, ty = x1 + nw / 2, y1 + nh, x2 + nw / 2, y2 + nh
            d = f"M{sx:.0f},{sy:.0f} C{sx:.0f},{sy + 40:.0f} {tx:.0f},{ty + 40:.0f} {tx:.0f},{ty:.0f}"
        tip = _edge_text(e, has_b)
        label = ""
        if label_edges:
            mx, my = (sx + tx) / 2, (sy + ty) / 2 - 4
            label = (
                f'<text x="{mx:.0f}" y="{my:.0f}" text-anchor="middle" fill="{col}" '
                f'paint-order="stroke" stroke="#fff" stroke-width="3">{_e(_edge_short(e, has_b))}</text>'
            )
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        width_px = 1.2 + min(3.0, math.log10(1 + e.calls_a + e.calls_b))
        out.append(
            f'<g class="svc-edge edge-{cls}" data-caller="{_e(e.caller)}" data-callee="{_e(e.callee)}">'
            f'<title>{_e(tip)}</title><path d="{d}" fill="none" stroke="{col}" stroke-width="{width_px:.1f}"'
            f'{dash_attr} marker-end="url(#arr-{cls})"/>{label}</g>'
        )
    for n in smap.nodes:
        x, y = xy[n.service]
        rank = highlighted.get(n.service)
        gone = n.spans_a == 0
        stroke = "#d1242f" if rank else ("#9aa0a6" if gone else "#57606a")
        sw = 3.5 if rank else 1.2
        dash = ' stroke-dasharray="5 3"' if gone else ""
        fill = "#f6f8fa" if gone else "#ffffff"
        sub = _node_text(n, has_b)
        badge = (
            (
                f'<circle cx="{x + nw - 4}" cy="{y + 4}" r="10" fill="#d1242f"/>'
                f'<text x="{x + nw - 4}" y="{y + 8}" text-anchor="middle" fill="#fff" font-weight="700">'
                f"{rank}</text>"
            )
            if rank
            else ""
        )
        out.append(
            f'<g class="svc-node{" candidate" if rank else ""}{" stopped" if gone else ""}" '
            f'data-service="{_e(n.service)}"><title>{_e(n.service)}: {_e(sub)}</title>'
            f'<rect x="{x}" y="{y}" width="{nw}" height="{nh}" rx="6" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{sw}"{dash}/><rect x="{x}" y="{y}" width="6" height="{nh}" rx="2" '
            f'fill="{_colour(n.service)}"/>'
            f'<text x="{x + 12}" y="{y + 19}" font-size="12" font-weight="600">{_e(_clip(n.service, 26))}</text>'
            f'<text x="{x + 12}" y="{y + 37}" fill="#57606a" font-size="10">{_e(_clip(sub, 36))}</text>{badge}</g>'
        )
    out.append("</svg></div>")
    return "".join(out)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _rate(errors: int, calls: int) -> str:
    return f"{100 * errors / calls:.0f}%" if calls else "-"


def _node_text(n: Any, has_b: bool) -> str:
    if n.spans_a == 0:
        return f"no spans in window ({n.spans_b} before)"
    if not has_b:
        return f"{n.spans_a} spans, err {_rate(n.errors_a, n.spans_a)}"
    return f"spans {n.spans_b}→{n.spans_a}, p95 {_ms(n.p95_b_ns)}→{_ms(n.p95_a_ns)}"


def _edge_short(e: Any, has_b: bool) -> str:
    if not has_b:
        return f"{e.calls_a} calls, err {_rate(e.errors_a, e.calls_a)}"
    return f"{e.calls_b}→{e.calls_a}, err {_rate(e.errors_b, e.calls_b)}→{_rate(e.errors_a, e.calls_a)}"


def _edge_text(e: Any, has_b: bool) -> str:
    if not has_b:
        return (
            f"{e.caller} → {e.callee}: {e.calls_a} calls in the window, error rate "
            f"{_rate(e.errors_a, e.calls_a)}, p95 {_ms(e.p95_a_ns)}"
        )
    return (
        f"{e.caller} → {e.callee}: calls {e.calls_b} → {e.calls_a}, error rate {_rate(e.errors_b, e.calls_b)} → "
        f"{_rate(e.errors_a, e.calls_a)}, p95 {_ms(e.p95_b_ns)} → {_ms(e.p95_a_ns)}"
    )


def _edge_table(smap: ServiceMap) -> str:
    if not smap.edges:
        return ""
    edges = sorted(smap.edges, key=lambda e: -(e.calls_a + e.calls_b))[:MAX_EDGE_ROWS]
    more = len(smap.edges) - len(edges)
    has_b = smap.baseline is not None
    rows = "".join(
        f'<tr class="edge-row"><td>{_e(e.caller)}</td><td>{_e(e.callee)}</td><td>{_e(_edge_style(e, has_b, _seconds(smap))[0])}</td>'
        f'<td class="num">{e.calls_b:,}</td><td class="num">{e.calls_a:,}</td>'
        f'<td class="num">{_rate(e.errors_b, e.calls_b)}</td><td class="num">{_rate(e.errors_a, e.calls_a)}</td>'
        f'<td class="num">{_ms(e.p95_b_ns)}</td><td class="num">{_ms(e.p95_a_ns)}</td></tr>'
        for e in edges
    )
    title = "every edge" if not more else f"the {len(edges):,} busiest edges ({more:,} more not listed)"
    return (
        f"<details><summary>{title}</summary><table><tr><th>caller</th><th>callee</th><th>change</th>"
        "<th>calls (baseline)</th><th>calls (window)</th><th>errors (baseline)</th><th>errors (window)</th>"
        f"<th>p95 (baseline)</th><th>p95 (window)</th></tr>{rows}</table></details>"
    )


# --------------------------------------------------------------------------------------- waterfall


def _choose(view: TraceView, max_rows: int) -> tuple[set[str], dict[str, list[TraceSpan]]]:
    """The span ids to draw and, per shown span, the hidden spans folded under it."""
    spans = view.spans
    by_id = {s.span_id: s for s in spans}
    parent = {s.span_id: (s.parent_span_id if s.parent_span_id in by_id else None) for s in spans}
    shown: set[str] = set()

    def take(start: str) -> None:  # a span and its ancestors
        chain = []
        sid: str | None = start
        while sid is not None and sid not in shown:
            chain.append(sid)
            sid = parent[sid]
        if len(shown) + len(chain) <= max_rows:
            shown.update(chain)

    roots = [s.span_id for s in spans if parent[s.span_id] is None]
    for sid in roots[: max_rows // 10 or 1]:
        take(sid)
    for s in spans:
        if s.on_critical_path:
            take(s.span_id)
    errs = [s for s in spans if s.status_code == "ERROR"]
    for s in errs[: max_rows // 4]:
        take(s.span_id)
    for s in sorted(spans, key=lambda s: s.depth):  # then breadth-first by depth, in document order
        if len(shown) >= max_rows:
            break
        if s.span_id not in shown and (parent[s.span_id] is None or parent[s.span_id] in shown):
            shown.add(s.span_id)
    folded: dict[str, list[TraceSpan]] = {}
    for s in spans:
        if s.span_id in shown:
            continue
        anc = parent[s.span_id]
        while anc is not None and anc not in shown:
            anc = parent[anc]
        folded.setdefault(anc or "", []).append(s)
    return shown, folded


def waterfall_svg(
    view: TraceView,
    red: Redactor,
    *,
    max_rows: int = MAX_ROWS,
    detail_budget: list[int] | None = None,
    axis_ns: int | None = None,
) -> dict[str, Any]:
    """One trace as bars on a time axis from its start: one `g.span` a shown span, one `g.folded`
    row per hidden subtree (its `data-count` says how many spans it holds). `axis_ns`: the length
    of the axis (default the trace's), so that two traces drawn with the same one compare by eye.
    Returns the SVG and its counts."""
    shown, folded = _choose(view, max_rows)
    children: dict[str | None, list[TraceSpan]] = {}
    ids = {s.span_id for s in view.spans}
    for s in view.spans:
        if s.span_id in shown:
            children.setdefault(s.parent_span_id if s.parent_span_id in ids else None, []).append(s)
    rows: list[tuple[str, Any]] = []

    def emit(s: TraceSpan) -> None:
        stack: list[tuple[str, Any]] = [("span", s)]
        while stack:
            what, item = stack.pop()
            rows.append((what, item))
            if what == "span":
                pending: list[tuple[str, Any]] = [("span", c) for c in children.get(item.span_id, [])]
                if folded.get(item.span_id):
                    pending.append(("fold", (item, folded[item.span_id])))
                stack.extend(reversed(pending))

    for s in children.get(None, []):
        emit(s)
    if folded.get(""):
        rows.append(("fold", (None, folded[""])))
    t0 = view.start_ns
    t1 = t0 + max(axis_ns or 0, view.end_ns - view.start_ns, 1)
    span_w = WF_WIDTH - WF_LABEL - 20

    def x(t: int) -> float:
        return WF_LABEL + span_w * (t - t0) / (t1 - t0)

    height = 24 + len(rows) * ROW_H + 8
    out = [
        f'<svg class="waterfall" xmlns="http://www.w3.org/2000/svg" width="{WF_WIDTH}" height="{height}" '
        f'viewBox="0 0 {WF_WIDTH} {height}" font-size="11" font-family="sans-serif" '
        f'data-trace-id="{_e(view.trace_id)}">'
    ]
    for k in range(5):  # time axis
        tx = WF_LABEL + span_w * k / 4
        out.append(
            f'<line x1="{tx:.1f}" y1="16" x2="{tx:.1f}" y2="{height}" stroke="#eef0f4"/>'
            f'<text x="{tx:.1f}" y="12" text-anchor="middle" fill="#57606a">{_ms((t1 - t0) * k / 4)}</text>'
        )
    details: dict[str, Any] = {}
    budget = detail_budget if detail_budget is not None else [DETAIL_BUDGET]
    dropped = False
    for i, (what, item) in enumerate(rows):
        y = 24 + i * ROW_H
        if what == "span":
            s = item  # a TraceSpan
            err = s.status_code == "ERROR"
            fill = "#d1242f" if err else _colour(s.service)
            bx, bw = x(s.start_ns), max(1.5, x(s.end_ns) - x(s.start_ns))
            label = f"{s.service} {red.text(s.operation)}"
            cp = (
                f'<rect x="{bx:.1f}" y="{y + ROW_H - 4}" width="{bw:.1f}" height="2" fill="#111"/>'
                if s.on_critical_path
                else ""
            )
            mark = "★ " if s.on_critical_path else ""
            out.append(
                f'<g class="span{" cp" if s.on_critical_path else ""}{" err" if err else ""}" '
                f'data-span-id="{_e(s.span_id)}"><title>{_e(label)} · {_ms(s.duration_ns)}'
                f"{' · ERROR' if err else ''}{' · on the critical path' if s.on_critical_path else ''}</title>"
                f'<text x="{4 + min(s.depth, 20) * 10}" y="{y + 11}" fill="{"#d1242f" if err else "#1d2329"}">'
                f"{_e(mark + _clip(label, 52 - min(s.depth, 20)))}</text>"
                f'<rect class="bar" x="{bx:.1f}" y="{y + 2}" width="{bw:.1f}" height="{ROW_H - 6}" '
                f'fill="{fill}" rx="2"/>{cp}</g>'
            )
            if not dropped:
                d = _span_detail(s, red)
                cost = len(json.dumps(d, default=str))
                if cost > budget[0]:
                    dropped = True
                else:
                    budget[0] -= cost
                    details[s.span_id] = d
        else:
            owner, hidden = item
            lo = min(h.start_ns for h in hidden)
            hi = max(h.end_ns for h in hidden)
            depth = (owner.depth + 1) if owner is not None else 0
            bx, bw = x(lo), max(1.5, x(hi) - x(lo))
            services = sorted({h.service for h in hidden})
            errs = sum(1 for h in hidden if h.status_code == "ERROR")
            text = f"▸ {len(hidden):,} spans folded ({', '.join(services[:3])}{'…' if len(services) > 3 else ''})"
            out.append(
                f'<g class="folded" data-count="{len(hidden)}"><title>{_e(text)}'
                f"{f'; {errs} with errors' if errs else ''}</title>"
                f'<text x="{4 + min(depth, 20) * 10}" y="{y + 11}" fill="#57606a" font-style="italic">'
                f"{_e(_clip(text, 56 - min(depth, 20)))}</text>"
                f'<rect x="{bx:.1f}" y="{y + 4}" width="{bw:.1f}" height="{ROW_H - 9}" fill="#c9ced6" '
                f'stroke="{"#d1242f" if errs else "none"}"/></g>'
            )
    out.append("</svg>")
    n_folded = sum(len(v) for v in folded.values())
    return {
        "svg": "".join(out),
        "trace_id": view.trace_id,
        "total": len(view.spans),
        "shown": len(shown),
        "folded": n_folded,
        "details": details,
        "details_dropped": dropped,
        "duration_ns": view.end_ns - view.start_ns,
        "warnings": list(view.warnings),
    }


def _span_detail(s: TraceSpan, red: Redactor) -> dict[str, Any]:
    attrs = dict(list(s.attributes.items())[:MAX_ATTRS]) if s.attributes else {}
    clean = {
        k: (v[:MAX_ATTR_CHARS] + "…" if isinstance(v, str) and len(v) > MAX_ATTR_CHARS else v)
        for k, v in red.mapping(attrs).items()
    }
    return {
        "service": s.service,
        "operation": red.text(s.operation),
        "kind": s.kind,
        "host": s.host,
        "duration_ms": round(s.duration_ns / 1e6, 3),
        "self_ms": round(s.self_time_ns / 1e6, 3),
        "status": s.status_code,
        "status_message": red.text(s.status_message) if s.status_message else None,
        "critical_path": s.on_critical_path,
        "attributes": clean,
        **(
            {"dropped_attributes": len(s.attributes) - MAX_ATTRS}
            if s.attributes and len(s.attributes) > MAX_ATTRS
            else {}
        ),
    }


def _waterfalls(
    pair: ExamplePair, waterfalls: dict[str, dict[str, Any] | None], report: CorrelationReport, red: Redactor
) -> str:
    if waterfalls["window"] is None:
        return f'<p class="muted">No example trace: {_e(pair.note)}.</p>'
    top = report.candidates[0] if report.candidates else None
    intro = (
        f'<p class="small">Root operation <code>{_e(pair.root_service)} {_t(red, pair.root_operation)}</code>'
        + (f", an example trace of candidate #1 ({_e(top.service)}, {_e(top.mechanism)})" if top else "")
        + ". Both traces share one time axis. ★ and the black underline mark the critical path; red bars are "
        "errors; click a bar for its attributes.</p>"
    )
    out = [intro, '<div class="pair">']
    for role in ("window", "baseline"):
        wf = waterfalls[role]
        if wf is None:
            out.append(
                f'<div><h3>Baseline</h3><p class="muted">{_e(pair.note or "no baseline trace")}.</p></div>'
            )
            continue
        fold = f", {wf['folded']:,} folded" if wf["folded"] else ""
        warn = "".join(f"<li>{_e(w)}</li>" for w in wf["warnings"][:5])
        out.append(
            f'<div class="wf-{role}"><h3>{"Window" if role == "window" else "Baseline"}: trace <code>{_e(wf["trace_id"])}</code>'
            f" ({_ms(wf['duration_ns'])}, {wf['total']:,} spans, {wf['shown']:,} shown{fold})</h3>"
            + (f'<ul class="small muted">{warn}</ul>' if warn else "")
            + f'<div class="svgbox" data-role="{role}">{wf["svg"]}</div></div>'
        )
    out.append('</div><div id="span-detail"></div>')
    return "".join(out)


def _details_script(waterfalls: dict[str, dict[str, Any] | None]) -> str:
    data = {role: (wf["details"] if wf else {}) for role, wf in waterfalls.items()}
    # inside <script> only "<" can end the block or open a comment state ("<!--<script"): none is left
    blob = (
        json.dumps(data, default=str, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    return (
        f'<script type="application/json" id="span-data">{blob}</script>'
        "<script>(function(){var data=JSON.parse(document.getElementById('span-data').textContent);"
        "var panel=document.getElementById('span-detail');if(!panel)return;"
        "document.querySelectorAll('.svgbox[data-role]').forEach(function(box){"
        "box.addEventListener('click',function(ev){var g=ev.target.closest('g.span');if(!g)return;"
        "var d=(data[box.dataset.role]||{})[g.dataset.spanId];panel.style.display='block';"
        "panel.textContent=d?JSON.stringify(d,null,1):'no details kept for this span';});});})();</script>"
    )


# --------------------------------------------------------------------------------------- distributions


def _ecdf(values: Sequence[int]) -> list[tuple[float, float]]:
    n = len(values)
    if not n:
        return []
    step = max(1, n // ECDF_POINTS)
    idx = list(range(0, n, step))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return [(values[i] / 1e6, (i + 1) / n) for i in idx]


def _distributions(dists: Sequence[Durations], notes: list[str], red: Redactor) -> str:
    if not dists:
        return '<p class="muted">No candidate names an operation, so there is no latency distribution to compare.</p>'
    import vl_convert

    out = []
    for d in dists:
        if d.sampled:
            notes.append(
                f"latency of {d.service} {d.operation}: an even sample of {MAX_DURATION_SAMPLES:,} spans a "
                f"period (of {d.counts.get('baseline', 0):,} and {d.counts.get('window', 0):,})"
            )
        values: list[dict[str, Any]] = [  # the Vega-Lite data rows
            {"ms": ms, "share": p, "period": f"baseline ({len(d.baseline_ns):,})"}
            for ms, p in _ecdf(d.baseline_ns)
        ]
        values += [
            {"ms": ms, "share": p, "period": f"window ({len(d.window_ns):,})"} for ms, p in _ecdf(d.window_ns)
        ]
        if not values:
            out.append(
                f'<h3>{_e(d.service)} {_t(red, d.operation)}</h3><p class="muted">no spans in either period</p>'
            )
            continue
        positive = all(v["ms"] > 0 for v in values)
        spec = {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "width": 520,
            "height": 200,
            "data": {"values": values},
            "mark": {"type": "line", "interpolate": "step-after"},
            "encoding": {
                "x": {
                    "field": "ms",
                    "type": "quantitative",
                    "title": "duration (ms)",
                    "scale": {"type": "log"} if positive else {},
                },
                "y": {
                    "field": "share",
                    "type": "quantitative",
                    "title": "share of spans at or below",
                    "axis": {"format": "%"},
                },
                "color": {
                    "field": "period",
                    "type": "nominal",
                    "title": None,
                    "scale": {"range": ["#8c959f", "#d1242f"]},
                },
            },
        }
        svg = vl_convert.vegalite_to_svg(spec)
        out.append(
            f'<div class="dist" data-service="{_e(d.service)}"><h3>{_e(d.service)} <code>{_t(red, d.operation)}</code>'
            f'</h3><p class="small muted">median {_ms(_median(d.baseline_ns))} → {_ms(_median(d.window_ns))}; '
            f"p95 {_ms(_q(d.baseline_ns, 0.95))} → {_ms(_q(d.window_ns, 0.95))}</p>{svg}</div>"
        )
    return "".join(out)


def _median(v: Sequence[int]) -> float | None:
    return _q(v, 0.5)


def _q(v: Sequence[int], q: float) -> float | None:
    if not v:
        return None
    return float(v[min(len(v) - 1, int(q * len(v)))])


def write_for_escalation(
    request: EscalationRequest, result: EscalationResult, path: str | Path
) -> HtmlReport:
    """The report of an escalation: the window, baseline and services its bundle compared (a
    request without a window gets the timeline's onset, as the bundle does), with the analysis
    (the model's, or the offline report) at the top."""
    from correlate import open_dataset
    from escalation.bundle import periods_for

    if not request.dataset:
        raise EscalationError("an HTML report needs a dataset: this escalation has none")
    with open_dataset(request.dataset) as ds:
        window, baseline = request.window, request.baseline
        if window is None:
            window, baseline = periods_for(ds.timeline(), window, baseline)
        report = ds.correlate(window, baseline, request.services)
        return write_html_report(ds, report, path, analysis=result.report_markdown)
