"""The evidence bundle: what the model reads, condensed to a token budget and redacted.

Sections, in priority order (a later section is cut before an earlier one):

    question      the question and the agent's context: stuck, attempts (A1…), hypotheses (H1…),
                  code scope
    summary       the dataset, the analysed window and baseline (given, proposed from the onset,
                  or the whole dataset without a baseline, and why), requests per service, and
                  how to read the figures (one definition each, stated once)
    timeline      change points of errors, latency and requests per service, and the onset
    candidates    ranked root-cause candidates and supporting findings, with their figures
    traces        exemplar traces, compact, critical path marked with '*', cited spans with ids
    graph         how the service graph changed between baseline and window
    logs          log templates with counts, a raw timestamped line each, first seen
    code          code excerpts: the functions around the referenced lines
    provenance    dataset and source files (the queries behind the figures are saved beside the
                  request, not sent)

Every item carries an evidence id (`[E7]`) the model cites. Items are packed in order until the
budget is reached; what does not fit, and every text clipped to a length, is listed in `cut`.
Every item is redacted before it is counted, so counts and cuts describe exactly what is sent.

The figures come from the correlate session's methods (exemplar traces, requests per service,
the service-graph change, log template counts, the code the spans name: `correlate/evidence.py`;
change points and the onset: `correlate/timeline.py`); the bundle chooses, orders, renders and
cuts, and runs no query of its own.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from correlate.types import (
    Candidate,
    CorrelationReport,
    LogTemplate,
    LogTemplateCounts,
    ServiceActivity,
    TraceSpan,
    TraceView,
    Window,
)
from escalation.code_context import CodeContext, CodeRef, refs_from_stacktrace
from escalation.redact import Redactor
from escalation.tokens import ESTIMATE_MARGIN, estimate_tokens
from escalation.types import EscalationRequest

if TYPE_CHECKING:
    from correlate.session import DatasetSession
    from correlate.timeline import Timeline

__all__ = [
    "periods_for",
    "Section",
    "Bundle",
    "BundleBuilder",
    "SECTION_ORDER",
    "SECTION_TITLES",
    "render_trace",
    "figure_text",
    "hypothesis_ids",
    "attempt_ids",
]

SECTION_ORDER = (
    "question",
    "summary",
    "timeline",
    "candidates",
    "traces",
    "graph",
    "logs",
    "code",
    "provenance",
)
SECTION_TITLES = {
    "question": "Question and agent context",
    "summary": "Dataset, window and baseline",
    "timeline": "Timeline: when requests, errors and latency changed",
    "candidates": "Ranked root-cause candidates (from correlate) and findings",
    "traces": "Exemplar traces ('*' = on the critical path; times in ms from the trace start)",
    "graph": "Service graph change (baseline -> window)",
    "logs": "Log templates with counts (window, baseline)",
    "code": "Code excerpts ('>' marks referenced lines)",
    "provenance": "Provenance",
}
# titles that would name a baseline, for a bundle without one
TITLES_WITHOUT_BASELINE = {
    "summary": "Dataset and window (no baseline)",
    "graph": "Service graph in the window (no baseline to compare with)",
    "logs": "Log templates with counts in the window (no baseline)",
}

# Constant warning texts (tests compare them).
W_NO_CORRELATE = "no correlation: the window has no spans, so the bundle has no ranked candidates"
W_NO_DATASET = "no dataset given: the bundle holds only the question, context and code"
W_OVER_BUDGET = "the bundle is over the token budget even after cutting: shorten the question and context"

MAX_TRACE_LINES = 60
MAX_TRACE_WARNINGS = 3
MAX_VALUE_CHARS = 300  # an attribute value
MAX_MESSAGE_CHARS = 300  # a span's status message
MAX_DETAILS_CHARS = 1_200  # a candidate's details
MAX_TEMPLATE_CHARS = 400
MAX_TEMPLATES = 40
MAX_SERVICES = 30  # services listed with their requests
MAX_CHANGES = 8  # change points listed
SHORT_SHARE = 0.02  # a span shorter than this share of its trace is folded into its parent's line
# an edge whose error rate moved less than this and whose p95 stayed within this factor is listed
# with the other steady edges in one item
STEADY_ERRORS = 0.01
STEADY_P95 = 1.5
# attributes that say nothing about a fault and repeat on every span (client identity, transport
# details); the rest are shown on error, cited and critical spans
NOISE_ATTRIBUTES = frozenset(
    {
        "user_agent.original",
        "user_agent.name",
        "user_agent.version",
        "client.address",
        "client.port",
        "url.scheme",
        "network.peer.port",
        "network.protocol.name",
        "network.protocol.version",
        "network.transport",
        "network.type",
        "thread.id",
        "thread.name",
    }
)
# how the bundle names the roles of correlate's exemplar traces (EXEMPLAR_ROLES)
ROLE_TEXT = {
    "slowest": "slowest in window",
    "failing": "failing in window",
    "typical": "typical in window",
    "baseline_typical": "typical before (baseline)",
}
_LEVEL_RANK = {
    name: rank for rank, name in enumerate(("", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"))
}


def hypothesis_ids(n: int) -> list[str]:
    """The ids the request gives the agent's partial findings: H1, H2, …"""
    return [f"H{i}" for i in range(1, n + 1)]


def attempt_ids(n: int) -> list[str]:
    """The ids the request gives the agent's attempted approaches: A1, A2, …"""
    return [f"A{i}" for i in range(1, n + 1)]


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    text: str
    tokens: int
    items_total: int
    items_kept: int


@dataclass(frozen=True)
class Bundle:
    sections: tuple[Section, ...]
    cut: tuple[str, ...]
    redactions: dict[str, int]
    warnings: tuple[str, ...]
    tokens: int  # the whole rendered text
    budget_tokens: int
    token_method: str  # "provider" or "estimate"
    facts: dict[str, Any]  # structured, redacted facts (the offline provider reasons on these)
    partial: bool
    queries: tuple[str, ...] = ()  # the SQL behind the figures: saved beside the request, not sent

    def text(self) -> str:
        return render_sections(self.sections)

    def section_tokens(self) -> dict[str, int]:
        return {s.key: s.tokens for s in self.sections}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["text"] = self.text()
        return d


@dataclass
class _Item:
    text: str
    tokens: int
    label: str  # how `cut` names it
    fact: dict[str, Any] | None = None  # recorded in facts when kept
    more: list[dict[str, Any]] = field(default_factory=list)  # further facts under the same id


def render_sections(sections: Sequence[Section]) -> str:
    return "\n\n".join(f"## {s.title}\n{s.text}" for s in sections if s.text)


def _ms(ns: int | float | None) -> str:
    return "?" if ns is None else f"{ns / 1e6:,.1f}ms"


def _sig(x: float, digits: int = 4) -> str:
    """`x` to `digits` significant digits (at least the whole number), thousands separated."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ms_figure(ns: float) -> str:
    return f"{_sig(ns / 1e6)}ms"


def figure_text(key: str, value: Any) -> str:
    """How the bundle writes one figure of a candidate: `_ns` values in ms to 4 significant
    digits (the name without `_ns`), other numbers to 4 significant digits, lists and maps
    compactly. The one definition tests compare the bundle with."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        if key.endswith("_ns"):
            return _ms_figure(value)
        if isinstance(value, int):
            return str(value)
        return _sig(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_figure_name(k)} {figure_text(k, v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + "; ".join(figure_text(key, v) for v in value) + "]"
    return str(value)


def _figure_name(key: str) -> str:
    return key[:-3] if key.endswith("_ns") else key


def _clock(ns: int | None, day_of: int | None = None) -> str:
    """A time as HH:MM:SS.mmm when it falls on the day of `day_of`, else ISO-8601."""
    from correlate.times import format_ns

    if ns is None:
        return "?"
    iso = format_ns(int(ns)) or "?"
    if day_of is not None and (format_ns(int(day_of)) or "")[:10] == iso[:10]:
        return iso[11:23]
    return iso[:23] + "Z"


def _window_text(w: Window | None) -> str:
    if w is None:
        return "none"
    from correlate.times import format_ns

    return f"{format_ns(w.start_ns)} .. {format_ns(w.end_ns)} ({(w.end_ns - w.start_ns) / 1e9:,.0f} s)"


def _duration_text(ns: int) -> str:
    s = ns / 1e9
    return f"{s / 60:,.1f} min" if s >= 120 else f"{s:,.0f} s"


def periods_for(
    timeline: Timeline, window: Window | None, baseline: Window | None
) -> tuple[Window | None, Window | None]:
    """The window and baseline a bundle compares: those asked for, else the timeline's onset
    proposes them (a baseline asked for is kept), else (None, baseline): the whole dataset."""
    if window is None and timeline.onset is not None:
        return timeline.onset.window, baseline if baseline is not None else timeline.onset.baseline
    return window, baseline


class BundleBuilder:
    """Builds one bundle. `session` is a correlate DatasetSession (or a test double), or None."""

    def __init__(
        self,
        req: EscalationRequest,
        session: DatasetSession | None,
        *,
        budget_tokens: int,
        counter: Callable[[str], int | None] | None = None,
        code: CodeContext | None = None,
    ) -> None:
        self.req = req
        self.session = session
        self.budget_tokens = budget_tokens
        self.counter = counter
        self.code = code or CodeContext()
        local = [str(r) for r in self.code.roots]
        manifest = getattr(getattr(session, "handle", None), "manifest", None) or {}
        for src in manifest.get("sources", []) if isinstance(manifest, dict) else []:
            path = str(src.get("path") or "")
            if os.path.isabs(path):
                local.append(os.path.dirname(path))
        local.append(str(os.environ.get("DCR_HOME") or ""))
        self.redactor = Redactor(local_paths=[p for p in local if p])  # counts what is sent
        # facts stay local (offline provider); not counted twice
        self._facts_redactor = Redactor(local_paths=[p for p in local if p])
        self.warnings: list[str] = []
        self.clipped: list[str] = []  # texts clipped to a length: listed in `cut`
        self.partial = False
        self._eid = 0
        self.facts: dict[str, Any] = {"dataset": req.dataset, "analysis_type": req.analysis_type}
        self.window: Window | None = req.window
        self.baseline: Window | None = req.baseline
        self.window_origin = "given" if req.window is not None else "whole"
        self.baseline_origin = "given" if req.baseline is not None else "correlate"
        self.timeline: Timeline | None = None
        self.report: CorrelationReport | None = None
        self.activity: ServiceActivity | None = None
        self.queries: list[str] = []
        self._trace_code_refs: list[CodeRef] = []
        self._cited_spans: set[str] = set()
        self._hidden: list[tuple[int, Candidate]] = []  # candidates outside a services filter
        self._multi_source = False
        self._counts: LogTemplateCounts | None = None

    @property
    def _ds(self) -> DatasetSession:
        """The session: the sections that read it are built only when there is one (`build`)."""
        assert self.session is not None
        return self.session

    @property
    def _win(self) -> Window:
        """The window, for the sections built only once there is one."""
        assert self.window is not None
        return self.window

    # items ---------------------------------------------------------------------------------

    def _item(self, text: str, label: str, fact: dict[str, Any] | None = None, *, eid: bool = True) -> _Item:
        text = self.redactor.text(text)
        label = self._facts_redactor.text(label)  # `cut` names it in the result and the report
        if eid:
            self._eid += 1
            text = f"[E{self._eid}] {text}"
            if fact is not None:
                fact = {**fact, "evidence_id": f"E{self._eid}"}
        return _Item(text, estimate_tokens(text) + 1, label, fact)

    def _redacted(self, name: str, value: Any) -> Any:
        """A structured value redacted by its keys and content before it is clipped, so that
        clipping never leaves the head of a secret the rules could no longer recognise."""
        return self.redactor.value(name, _jsonable(value))

    def _clip(self, value: Any, n: int, what: str) -> str:
        """`value` as one line of at most `n` characters; a clip is recorded for `cut`."""
        s = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        s = s.replace("\n", "\\n")
        if len(s) <= n:
            return s
        self.clipped.append(f"{what}: clipped to {n:,} of {len(s):,} characters")
        return s[: n - 1] + "…"

    # the build -----------------------------------------------------------------------------

    def build(self) -> Bundle:
        groups: dict[str, list[_Item]] = {"question": self._question()}
        if self.session is None:
            self.warnings.append(W_NO_DATASET)
        else:
            summary = self._summary_data()
            groups["timeline"] = self._timeline()  # proposes the window when none was given
            groups["candidates"] = self._candidates()
            groups["summary"] = self._summary(summary)
            groups["traces"] = self._traces()
            groups["graph"] = self._graph()
            groups["logs"] = self._logs()
        groups["code"] = self._code()
        groups["provenance"] = self._provenance()
        return self._pack(groups)

    def _title(self, key: str) -> str:
        if self.session is not None and self.baseline is None and key in TITLES_WITHOUT_BASELINE:
            return TITLES_WITHOUT_BASELINE[key]
        return SECTION_TITLES[key]

    def _pack(self, groups: dict[str, list[_Item]]) -> Bundle:
        limit = (
            int(self.budget_tokens * (1 - ESTIMATE_MARGIN)) if self.counter is None else self.budget_tokens
        )
        for _ in range(6):
            sections, cut, kept = self._fit(groups, limit)
            text = render_sections(sections)
            counted = self.counter(text) if self.counter else None
            if counted is None:
                total, method = estimate_tokens(text), "estimate"
                break
            total, method = counted, "provider"
            if counted <= self.budget_tokens:
                break
            # the estimate ran low: aim the estimate at the budget scaled by the measured ratio, repack
            limit = min(limit - 1, int(estimate_tokens(text) * self.budget_tokens / counted * 0.97))
        if total > self.budget_tokens:
            self.warnings.append(W_OVER_BUDGET)
        facts = dict(self.facts)
        if self.session is not None:
            facts["has_baseline"] = self.baseline is not None
            facts["window"] = (
                None if self.window is None else {**asdict(self.window), "origin": self.window_origin}
            )
            facts["baseline"] = (
                None if self.baseline is None else {**asdict(self.baseline), "origin": self.baseline_origin}
            )
        for key, items in kept.items():
            facts[key] = [f for i in items for f in ([i.fact] if i.fact is not None else []) + i.more]
        cut = cut + list(dict.fromkeys(self.clipped))
        if cut:
            self.partial = True
        return Bundle(
            sections=tuple(sections),
            cut=tuple(cut),
            redactions=self.redactor.snapshot(),
            warnings=tuple(dict.fromkeys(self.warnings + [r.warning() for r in self.code.refusals])),
            tokens=total,
            budget_tokens=self.budget_tokens,
            token_method=method,
            facts=facts,
            partial=self.partial,
            queries=tuple(dict.fromkeys(q for q in self.queries if q)),
        )

    def _fit(self, groups: dict[str, list[_Item]], limit: int) -> tuple[list[Section], list[str], dict]:
        used = 0
        sections: list[Section] = []
        cut: list[str] = []
        kept: dict[str, list[_Item]] = {}
        full = False  # strict priority: once an item does not fit, everything after it is cut
        for key in SECTION_ORDER:
            items = groups.get(key) or []
            if not items:
                continue
            title = self._title(key)
            header = estimate_tokens(f"## {title}\n") + 2
            chosen: list[_Item] = []
            for i, item in enumerate(items):
                cost = item.tokens + (header if not chosen else 0)
                if full or (used + cost > limit and not (key == "question" and i == 0)):
                    full = True
                    rest = items[i:]
                    cut.append(
                        f"{key}: {len(rest)} of {len(items)} items ({sum(x.tokens for x in rest):,} tokens): "
                        + ", ".join(x.label for x in rest[:8])
                        + (" …" if len(rest) > 8 else "")
                    )
                    break
                chosen.append(item)
                used += cost
            kept[key] = chosen
            if chosen:
                text = "\n".join(i.text for i in chosen)
                sections.append(
                    Section(key, title, text, estimate_tokens(text) + header, len(items), len(chosen))
                )
        return sections, cut, kept

    # question --------------------------------------------------------------------------------

    def _question(self) -> list[_Item]:
        req, ctx = self.req, self.req.context
        lines = [f"Question ({req.analysis_type}, depth {req.depth_level}): {req.question.strip()}"]
        if ctx.stuck_description:
            lines.append(f"Where the agent is stuck: {ctx.stuck_description.strip()}")
        items = [self._item("\n".join(lines), "question", eid=False)]
        a_ids, h_ids = attempt_ids(len(ctx.attempted_approaches)), hypothesis_ids(len(ctx.partial_findings))
        for i, a in zip(a_ids, ctx.attempted_approaches, strict=True):
            items.append(self._item(f"{i} already tried: {a}", f"attempted approach {i}", eid=False))
        for i, f in zip(h_ids, ctx.partial_findings, strict=True):
            items.append(
                self._item(f"{i} (the agent's hypothesis, to judge): {f}", f"hypothesis {i}", eid=False)
            )
        scope = ctx.code_scope
        if scope.files or scope.entry_points or scope.service_names:
            parts = [
                f"files {', '.join(scope.files)}" if scope.files else "",
                f"entry points {', '.join(scope.entry_points)}" if scope.entry_points else "",
                f"services {', '.join(scope.service_names)} (where the agent looked first; the evidence "
                "below covers every service)"
                if scope.service_names
                else "",
            ]
            items.append(
                self._item("Code scope: " + "; ".join(p for p in parts if p), "code scope", eid=False)
            )
        self.facts["question"] = self._facts_redactor.text(req.question)
        self.facts["attempted"] = [
            {"id": i, "text": self._facts_redactor.text(a)}
            for i, a in zip(a_ids, ctx.attempted_approaches, strict=True)
        ]
        self.facts["hypotheses"] = [
            {"id": i, "text": self._facts_redactor.text(f)}
            for i, f in zip(h_ids, ctx.partial_findings, strict=True)
        ]
        self.facts["scope_services"] = list(scope.service_names)
        return items

    # summary ---------------------------------------------------------------------------------

    def _summary_data(self) -> dict[str, Any]:
        summary = dict(self._ds.summary())
        self.facts["summary"] = self._facts_redactor.value("summary", _jsonable(summary))
        return summary

    def _summary(self, summary: dict[str, Any]) -> list[_Item]:
        from correlate.times import format_ns

        services = summary.get("services") or []
        start, end = summary.get("start_ns"), summary.get("end_ns")
        lines = [
            f"dataset {self.req.dataset} (all of it): {summary.get('spans', 0):,} spans in "
            f"{summary.get('traces', 0):,} traces ({summary.get('error_spans', 0):,} with status ERROR), "
            f"{summary.get('logs', 0):,} log lines, {len(services)} services, "
            f"{format_ns(start) if start is not None else '?'} .. {format_ns(end) if end is not None else '?'}"
        ]
        lines += self._period_lines()
        if self.report is not None and self.activity is not None:
            lines += self._activity_lines()
        lines.append(self._legend())
        return [self._item("\n".join(lines), "dataset summary", eid=False)]

    def _period_lines(self) -> list[str]:
        w, b = self.window, self.baseline
        if w is None:
            return ["window: none (the dataset has no spans)"]
        onset = self.timeline.onset if self.timeline is not None else None
        if self.window_origin == "given":
            lines = [f"window {_window_text(w)}: given"]
        elif self.window_origin == "onset" and onset is not None:
            lines = [
                f"window {_window_text(w)}: proposed, as no window was given: it starts at the onset "
                f"{_clock(onset.at_ns)} (the strongest change in errors or latency, timeline below) and "
                "runs to the end of the data"
            ]
        else:
            lines = [
                f"window {_window_text(w)}: the whole dataset: no window was given and the timeline "
                "shows no change in errors or latency to start one at"
            ]
        if b is None:
            lines.append(
                "no baseline: nothing before the window to compare with, so every figure below is the "
                "window's alone"
            )
        elif self.baseline_origin == "given":
            lines.append(f"baseline {_window_text(b)}: given")
        elif self.baseline_origin == "onset":
            lines.append(
                f"baseline {_window_text(b)}: proposed: the time before the onset, as long as the window "
                "or as the data allows"
            )
        else:
            lines.append(
                f"baseline {_window_text(b)}: the time right before the window, as long as it or as the "
                "data allows (picked by correlate)"
            )
        if self.req.services:
            lines.append(self._filter_line())
        return lines

    def _filter_line(self) -> str:
        line = f"services filter (asked): {', '.join(self.req.services)}: candidates, exemplar traces and logs of these only"
        if self._hidden:
            top_rank, top = self._hidden[0]
            line += (
                f"; {len(self._hidden)} candidates on other services left out, the strongest #{top_rank} "
                f"{top.service} / {top.operation or '-'} {top.mechanism} (score {top.score:.2f}, "
                f"confidence {top.confidence or 'n/a'})"
            )
        return line

    def _activity_lines(self) -> list[str]:
        a = self.activity
        assert a is not None
        has_b = a.baseline_total is not None

        def period(p: Any) -> str:
            return (
                f"{p.spans:,} spans ({p.error_spans:,} ERROR), {p.requests:,} requests "
                f"({p.failed_requests:,} failed), {p.traces:,} traces"
            )

        lines = [f"in the window: {period(a.total)}"]
        if has_b:
            lines.append(f"in the baseline: {period(a.baseline_total)}")
        rows = []
        for s in a.services[:MAX_SERVICES]:
            if has_b and s.baseline is not None:
                row = f"{s.service} {s.baseline.requests} -> {s.window.requests}"
                if s.baseline.failed_requests or s.window.failed_requests:
                    row += f" ({s.baseline.failed_requests} -> {s.window.failed_requests} failed)"
            else:
                row = f"{s.service} {s.window.requests}"
                if s.window.failed_requests:
                    row += f" ({s.window.failed_requests} failed)"
            rows.append(row)
        head = (
            "requests per service (failed ones when any), baseline -> window: "
            if has_b
            else ("requests per service (failed ones when any): ")
        )
        lines.append(head + "; ".join(rows))
        if len(a.services) > MAX_SERVICES:
            rest = a.services[MAX_SERVICES:]
            lines.append(
                f"… {len(rest)} more services with {sum(s.window.requests for s in rest):,} requests in the window"
            )
            self.clipped.append(
                f"summary: {len(rest)} of {len(a.services)} services not listed by name (the fewest requests)"
            )
        self.facts["services"] = [
            {
                "service": s.service,
                "requests": s.window.requests,
                "failed": s.window.failed_requests,
                "baseline_requests": s.baseline.requests if s.baseline else None,
                "baseline_failed": s.baseline.failed_requests if s.baseline else None,
            }
            for s in a.services
        ]
        return lines

    def _legend(self) -> str:
        if self.baseline is None:
            return (
                "how to read the figures: each is the window's; durations in ms (4 significant digits); "
                "self time = a span's duration minus the time its children cover; per request = the "
                "window's total over its requests (root spans); p50/p95 = over the calls; score 0..1 = how "
                "strong the pattern is; confidence = how far to trust it as the cause"
            )
        return (
            "how to read the figures: 'a -> b' is baseline -> window, a single value is the window's; "
            "durations in ms (4 significant digits); self time = a span's duration minus the time its "
            "children cover; per request = a period's total over its requests (root spans); p50/p95 = over "
            "the calls; ratios are window over baseline; score 0..1 = how strong the change is; "
            "confidence = how far to trust it as the cause"
        )

    # timeline --------------------------------------------------------------------------------

    def _timeline(self) -> list[_Item]:
        tl = self._ds.timeline()
        self.timeline = tl
        window, baseline = periods_for(tl, self.req.window, self.req.baseline)
        if self.req.window is None and tl.onset is not None:
            self.window = window
            self.window_origin = "onset"
            if self.req.baseline is None:
                self.baseline = baseline
                self.baseline_origin = "onset"
        elif self.req.window is None:
            self.window_origin = "whole"
        items = []
        day = tl.window.start_ns
        head = f"buckets of {_duration_text(tl.bucket_ns)} over the whole dataset"
        if tl.onset is not None:
            head += f"; onset {_clock(tl.onset.at_ns, day)}"
            if self.req.window is not None:
                delta = tl.onset.at_ns - self.req.window.start_ns
                where = "at" if abs(delta) < tl.bucket_ns else "after" if delta > 0 else "before"
                head += (
                    f" ({_duration_text(abs(delta))} {where} the given window's start)"
                    if where != "at"
                    else " (at the given window's start)"
                )
        else:
            head += "; no change point in errors or latency"
        for note in tl.notes:
            head += f"; {note}"
        items.append(self._item(head, "timeline", eid=False))
        facts = []
        for c in tl.changes[:MAX_CHANGES]:
            what = {
                "latency_ns": "latency (geometric mean of its requests)",
                "error_rate": "error rate",
                "requests_per_s": "requests a second",
            }[c.metric]
            if c.metric == "latency_ns":
                figs = f"{_ms_figure(c.before)} -> {_ms_figure(c.after)}"
            elif c.metric == "error_rate":
                figs = f"{c.before:.1%} -> {c.after:.1%}"
            else:
                figs = f"{_sig(c.before, 3)} -> {_sig(c.after, 3)}"
            text = (
                f"change point {_clock(c.at_ns, day)} {c.service}"
                f"{' ' + c.operation if c.operation else ''}: {what} {figs} (strength {c.strength:g})"
            )
            fact = {
                "at_ns": c.at_ns,
                "service": c.service,
                "operation": c.operation,
                "metric": c.metric,
                "before": c.before,
                "after": c.after,
                "onset": tl.onset is not None and abs(c.at_ns - tl.onset.at_ns) <= tl.bucket_ns,
            }
            item = self._item(text, f"change point {c.service} {c.metric}", fact)
            facts.append(item)
        if len(tl.changes) > MAX_CHANGES:
            self.clipped.append(
                f"timeline: {len(tl.changes) - MAX_CHANGES} of {len(tl.changes)} change points not listed (the weakest)"
            )
        return items + facts

    # candidates ------------------------------------------------------------------------------

    def _candidates(self) -> list[_Item]:
        from correlate.engine import NOTE_NO_SPANS

        # correlated over every service: a filter (asked, never the agent's scope) picks what is
        # shown, and the bundle says what it left out
        report = self._ds.correlate(self.window, self.baseline, ())
        self.report = report
        self.window = report.window if report.window.end_ns > report.window.start_ns else self.window
        if report.baseline is not None:
            self.baseline = report.baseline
        elif self.req.baseline is None:
            self.baseline = None
        if self.window is not None:
            self.activity = self._ds.service_activity(self.window, self.baseline)
            self.queries.append(self.activity.sql)
        keep = set(self.req.services)
        ranked = list(enumerate(report.candidates, 1))
        findings = list(report.findings)
        if keep:
            self._hidden = [(r, c) for r, c in ranked if c.service not in keep]
            ranked = [(r, c) for r, c in ranked if c.service in keep]
            findings = [f for f in findings if f.service is None or f.service in keep]
        if NOTE_NO_SPANS in report.notes:  # nothing to rank: say so beside the notes
            self.warnings.append(W_NO_CORRELATE)
            self.partial = True
        items: list[_Item] = []
        shown: dict[tuple[Any, ...], tuple[int, _Item]] = {}
        zero: list[str] = []
        has_b = report.baseline is not None
        for rank, c in ranked:
            ev = c.evidence
            self.queries.append(ev.sql)
            if round(c.score, 2) <= 0:
                zero.append(f"#{rank} {c.service} / {c.operation or '-'} {c.mechanism}")
                continue
            fact = {
                "rank": rank,
                "service": c.service,
                "operation": c.operation,
                "mechanism": c.mechanism,
                "score": c.score,
                "confidence": c.confidence,
                "summary": self._facts_redactor.text(c.summary),
                "trace_ids": list(ev.trace_ids[:3]),
                "span_ids": list(ev.span_ids[:3]),
                "before": self._facts_redactor.value("before", _jsonable(ev.before)),
                "after": self._facts_redactor.value("after", _jsonable(ev.after)),
                "details": self._facts_redactor.value("details", _jsonable(ev.details)),
                "analysis": c.analysis,
            }
            self._cited_spans.update(ev.span_ids[:3])
            same = (
                c.service,
                c.operation,
                c.summary,
                json.dumps(ev.before, sort_keys=True, default=str),
                json.dumps(ev.after, sort_keys=True, default=str),
            )
            if same in shown:  # one origin read as two mechanisms: one item, both readings
                first_rank, item = shown[same]
                item.text += (
                    f"\n  also read as {c.mechanism} (#{rank}, score {c.score:.2f}, confidence "
                    f"{c.confidence or 'n/a'}): the same figures"
                )
                item.tokens = estimate_tokens(item.text) + 1
                item.more.append(
                    {**fact, "evidence_id": (item.fact or {}).get("evidence_id"), "same_as": first_rank}
                )
                continue
            item = self._item(
                self._candidate_text(rank, c, has_b), f"candidate #{rank} {c.service}/{c.mechanism}", fact
            )
            shown[same] = (rank, item)
            items.append(item)
        if zero:
            items.append(
                self._item(
                    f"note: {len(zero)} candidates scored 0.00 and are left out: "
                    + "; ".join(zero[:6])
                    + (" …" if len(zero) > 6 else ""),
                    "zero-score candidates",
                    eid=False,
                )
            )
        scope = set(self.req.context.code_scope.service_names)
        top = [(r, c) for r, c in ranked[:3] if round(c.score, 2) > 0]
        if scope and top and top[0][1].service not in scope:
            out: dict[str, list[str]] = {}
            for r, c in top:
                if c.service not in scope:
                    out.setdefault(c.service, []).append(f"#{r}")
            where = ", ".join(f"{svc} ({', '.join(rs)})" for svc, rs in out.items())
            items.append(
                self._item(
                    f"note: the agent looked at {', '.join(sorted(scope))} first; the strongest candidates are "
                    f"elsewhere: {where}",
                    "scope note",
                    eid=False,
                )
            )
        logged = self._listed_templates()
        for f in findings:
            self.queries.append(f.evidence.sql)
            if f.kind == "log_templates" and (f.service, f.evidence.details.get("template")) in logged:
                continue  # the logs section lists it, with its counts, first line and example
            where = " ".join(x for x in (f.service, f.operation) if x)
            text = f"finding {f.kind}{' (' + where + ')' if where else ''}: {f.summary}"
            if f.evidence.trace_ids:
                text += f"  traces {', '.join(f.evidence.trace_ids[:2])}"
            fact = {
                "kind": f.kind,
                "service": f.service,
                "operation": f.operation,
                "summary": self._facts_redactor.text(f.summary),
                "finding": True,
            }
            items.append(self._item(text, f"finding {f.kind}", fact))
        for note in report.notes:
            items.append(self._item(f"note: {note}", "note", eid=False))
        return items

    def _log_counts(self) -> LogTemplateCounts | None:
        """The window's log templates (once: the candidates and the logs section both read them)."""
        if self.window is None:
            return None
        if self._counts is None:
            # templated from redacted texts: masking a number inside a secret would leave a piece of
            # it the rules no longer recognise
            self._counts = self._ds.log_template_counts(
                self.window, self.baseline, tuple(self.req.services), redact=self.redactor.text
            )
            self.queries.append(self._counts.sql)
        return self._counts

    def _listed_templates(self) -> set[tuple[str, str]]:
        counts = self._log_counts()
        if counts is None:
            return set()
        return {(t.service, t.template) for t in self._ranked_templates(counts)[:MAX_TEMPLATES]}

    @staticmethod
    def _ranked_templates(counts: LogTemplateCounts) -> list[LogTemplate]:
        return sorted(
            (t for t in counts.templates if t.count),
            key=lambda t: (-_LEVEL_RANK.get(t.severity, 0), -(t.count - t.baseline_count), _template_line(t)),
        )

    def _candidate_text(self, rank: int, c: Candidate, has_baseline: bool) -> str:
        ev = c.evidence
        text = (
            f"#{rank} {c.service} / {c.operation or '-'}: {c.mechanism}, confidence {c.confidence or 'n/a'}, "
            f"score {c.score:.2f}\n  {c.summary}"
        )
        before = self._redacted("before", ev.before) if has_baseline else {}
        after = self._redacted("after", ev.after)
        figures = _figures(before, after)
        if figures:
            text += f"\n  figures: {figures}"
        if ev.details:
            details = self._redacted("details", ev.details)
            shown = "; ".join(f"{_figure_name(k)} {figure_text(k, v)}" for k, v in details.items())
            text += f"\n  details: {self._clip(shown, MAX_DETAILS_CHARS, f'candidate #{rank} details')}"
        if ev.trace_ids:
            text += f"\n  traces {', '.join(ev.trace_ids[:2])}"
            if ev.span_ids:
                text += f"; spans {', '.join(ev.span_ids[:3])}"
        return text

    # traces ----------------------------------------------------------------------------------

    def _exemplar_ids(self) -> list[tuple[str, str]]:
        chosen: list[tuple[str, str]] = []
        seen: set[str] = set()

        def add(tid: Any, role: str) -> None:
            if not (isinstance(tid, str) and re.fullmatch(r"[0-9a-f]{32}", tid)):
                return
            if tid in seen:  # one trace in several roles: render it once, name every role
                i = next(n for n, (t, _) in enumerate(chosen) if t == tid)
                chosen[i] = (tid, f"{chosen[i][1]}; {role}")
                return
            seen.add(tid)
            chosen.append((tid, role))

        if self.report:
            shown = [c for c in self.report.candidates if round(c.score, 2) > 0]
            if self.req.services:
                shown = [c for c in shown if c.service in set(self.req.services)]
            for c in shown[:2]:
                rank = self.report.candidates.index(c) + 1
                for tid in c.evidence.trace_ids[:1]:
                    add(tid, f"example of candidate #{rank}")
        for ex in self._ds.exemplar_traces(self._win, self.baseline, tuple(self.req.services)):
            self.queries.append(ex.sql)
            role = ROLE_TEXT[ex.role]
            if ex.role in ("typical", "baseline_typical") and ex.root:
                role += f", median duration of {ex.root}"
            add(ex.trace_id, role)
        return chosen

    def _traces(self) -> list[_Item]:
        if self.window is None:
            return []
        items = []
        manifest = getattr(getattr(self.session, "handle", None), "manifest", None) or {}
        span_sources = (
            [s for s in manifest.get("sources", []) if s.get("spans")] if isinstance(manifest, dict) else []
        )
        self._multi_source = len(span_sources) > 1
        shapes: dict[tuple[Any, ...], str] = {}  # a trace's shape -> the evidence id that shows it
        attrs_shown: set[str] = set()  # attributes shown once in the bundle, not again
        for tid, role in self._exemplar_ids():
            view = self._ds.trace(tid)
            sources = self._ds.trace_sources(tid) if self._multi_source else ()
            shape = _shape(view)
            # the same request failing (or not) the same way: one line; never the baseline's, the
            # request done well that the others are compared with
            if shape in shapes and "baseline" not in role:
                text, fact = render_trace_line(
                    view,
                    role,
                    sources,
                    shapes[shape],
                    self.redactor,
                    cited=self._cited_spans,
                    attrs_shown=attrs_shown,
                )
            else:
                text, fact = render_trace(
                    view,
                    role,
                    sources,
                    self.redactor,
                    cited=self._cited_spans,
                    clipped=self.clipped,
                    attrs_shown=attrs_shown,
                )
            fact["role"] = role
            item = self._item(text, f"trace {tid[:8]}… ({role})", fact)
            shapes.setdefault(shape, (item.fact or {}).get("evidence_id", ""))
            items.append(item)
            self._trace_code_refs.extend(_code_refs_from_view(view))
        return items

    # service graph ---------------------------------------------------------------------------

    def _graph(self) -> list[_Item]:
        if self.window is None:
            return []
        change = self._ds.service_graph_change(self.window, self.baseline)
        if not change.edges:
            return []
        self.queries.append(change.sql)
        rows = []
        for e in change.edges:
            a, b = e.window, e.baseline
            weight, label = {"new": (1e9, "new in the window"), "gone": (1e9, "gone in the window")}.get(
                e.status, (0.0, "")
            )
            line = f"{e.caller} -> {e.callee}: "
            fact: dict[str, Any] = {"caller": e.caller, "callee": e.callee, "change": label}
            err_delta, p95_ratio = 0.0, 1.0
            if a and b:
                rate_ratio, err_delta, p95_ratio = (
                    e.calls_ratio or 0.0,
                    e.error_rate_delta or 0.0,
                    e.p95_ratio or 0.0,
                )
                weight = abs(rate_ratio - 1) + abs(err_delta) * 10 + abs(p95_ratio - 1)
                line += (
                    f"calls {b.calls:,} -> {a.calls:,} (rate x{rate_ratio:.2f}), errors {b.error_rate:.1%} -> "
                    f"{a.error_rate:.1%}, p95 {_ms(b.p95_ns)} -> {_ms(a.p95_ns)} (x{p95_ratio:.2f})"
                )
                fact["change"] = f"calls x{rate_ratio:.2f}, errors {err_delta:+.1%}, p95 x{p95_ratio:.2f}"
                fact.update(
                    rate_ratio=round(rate_ratio, 3),
                    err_delta=round(err_delta, 4),
                    p95_ratio=round(p95_ratio, 3),
                    errors=a.errors,
                    baseline_errors=b.errors,
                )
            elif a:
                line += f"{a.calls:,} calls ({a.calls_per_s:,.3g}/s), {a.error_rate:.1%} errors, p95 {_ms(a.p95_ns)}"
                fact.update(errors=a.errors)
            elif b:
                line += f"{b.calls:,} calls in the baseline, none in the window"
            if label:
                line += f"  [{label}]"
            busy = (-(a.calls if a else 0), -(b.calls if b else 0))
            steady = (
                bool(a and b) and abs(err_delta) < STEADY_ERRORS and 1 / STEADY_P95 <= p95_ratio <= STEADY_P95
            )
            rows.append(((-weight, *busy), line, fact, steady))
        rows.sort(key=lambda r: r[0])
        items = [
            self._item(t, f"edge {f['caller']}->{f['callee']}", f) for _, t, f, steady in rows if not steady
        ]
        quiet = [(t, f) for _, t, f, steady in rows if steady]
        if quiet:  # one item: their names and the range of their changes
            facts = [f for _, f in quiet]
            text = (
                f"{len(quiet)} edges without a notable change (errors within {STEADY_ERRORS:.0%} points, p95 "
                f"within x{STEADY_P95:g}; calls x{min(f['rate_ratio'] for f in facts):.2f}.."
                f"x{max(f['rate_ratio'] for f in facts):.2f}, p95 x{min(f['p95_ratio'] for f in facts):.2f}.."
                f"x{max(f['p95_ratio'] for f in facts):.2f}): "
                + ", ".join(f"{f['caller']} -> {f['callee']}" for f in facts)
            )
            item = self._item(text, f"{len(quiet)} steady edges", facts[0])
            item.more = [{**f, "evidence_id": (item.fact or {}).get("evidence_id")} for f in facts[1:]]
            items.append(item)
        return items

    # logs ------------------------------------------------------------------------------------

    def _logs(self) -> list[_Item]:
        if self.window is None:
            return []
        counts = self._log_counts()
        assert counts is not None
        items = []
        has_b = self.baseline is not None
        day = self.window.start_ns
        if counts.truncated:
            note = _capped_logs_text(counts)
            self.warnings.append(note)
            self.partial = True
            items.append(self._item(f"note: {note}", "capped log counts", eid=False))
        sources = {t.source_id for t in counts.templates if t.source_id}
        if len(sources) == 1:
            items.append(
                self._item(
                    f"every line below comes from source {next(iter(sources))}", "log source", eid=False
                )
            )
        ranked = self._ranked_templates(counts)
        for t in ranked[:MAX_TEMPLATES]:
            tpl = self._clip(
                _template_line(t), MAX_TEMPLATE_CHARS, f"log template {_template_line(t)[:40]!r}"
            )
            new = has_b and not t.baseline_count
            text = f"{tpl} — {t.count:,} in the window"
            if has_b:
                text += f", {t.baseline_count:,} in the baseline" + (" (new)" if new else "")
            if t.severity_inferred:
                text += " (level read from the text)"
            ranges = [f"{_sig(lo)}..{_sig(hi)}" if lo != hi else _sig(lo) for lo, hi in t.values]
            if any(lo != hi for lo, hi in t.values):
                text += f"; <NUM> values {', '.join(ranges)}"
            if t.example is not None:
                what = "first" if t.count else "e.g."
                example = self._clip(t.example, MAX_TEMPLATE_CHARS, f"log example {_template_line(t)[:40]!r}")
                text += f"; {what} {_clock(t.example_ns, day)} {json.dumps(example, ensure_ascii=False)}"
            refs = [f"trace {t.trace_id}" if t.trace_id else "", f"span {t.span_id}" if t.span_id else ""]
            if len(sources) > 1 and t.source_id:
                refs.append(f"source {t.source_id}")
            if any(refs):
                text += " " + " ".join(r for r in refs if r)
            items.append(
                self._item(
                    text,
                    f"log template {_template_line(t)[:40]!r}",
                    {
                        "template": _template_line(t),
                        "service": t.service,
                        "severity": t.severity,
                        "count": t.count,
                        "baseline_count": t.baseline_count if has_b else None,
                        "first_ns": t.first_ns,
                        "trace_id": t.trace_id,
                    },
                )
            )
        if len(ranked) > MAX_TEMPLATES:
            self.clipped.append(
                f"logs: {len(ranked) - MAX_TEMPLATES} of {len(ranked)} templates not listed (the lowest levels "
                "and smallest rises)"
            )
        gone = [_template_line(t) for t in counts.templates if not t.count]
        if gone and has_b:
            items.append(
                self._item(
                    f"{len(gone)} baseline templates absent in the window, e.g. "
                    + "; ".join(self._clip(t, 160, "absent log template") for t in gone[:3]),
                    "absent templates",
                )
            )
        return items

    # code ------------------------------------------------------------------------------------

    def _code(self) -> list[_Item]:
        scope = self.req.context.code_scope
        refs = [CodeRef(p, None, "file") for p in self.req.files]
        refs += [CodeRef(p, None, "code_scope") for p in scope.files]
        for ep in scope.entry_points:
            path, _, where = ep.rpartition(":")
            if path:
                refs.append(
                    CodeRef(path, int(where), "entry_point")
                    if where.isdigit()
                    else CodeRef(path, None, "entry_point", where)
                )
        refs += self._trace_code_refs
        if self.session is not None and self.window is not None:
            refs += self._telemetry_code_refs()
        items = []
        for ex in self.code.excerpts(refs):
            head = f"file {ex.path} ({ex.total_lines} lines; referenced by {', '.join(ex.origins)}"
            head += f"; {', '.join(ex.evidence[:3])})" if ex.evidence else ")"
            items.append(
                self._item(
                    f"{head}\n{ex.text}",
                    f"code {ex.path}",
                    {"path": ex.path, "lines": list(ex.lines), "origins": list(ex.origins), "text": ex.text},
                )
            )
        missing = self.code.missing_telemetry_paths
        if missing:
            roots = os.pathsep.join(str(r) for r in self.code.roots)
            note = (
                f"{len(missing)} code files the telemetry names are not under the code roots "
                f"({roots}; set DCR_CODE_ROOTS): {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}"
            )
            items.append(self._item(f"note: {note}", "missing code files", eid=False))
            self.warnings.append(self.redactor.text(note))
        return items

    def _telemetry_code_refs(self) -> list[CodeRef]:
        refs = [
            CodeRef(c.path, c.line, "span", c.function, f"trace {c.trace_id} span {c.span_id}")
            for c in self._ds.code_locations(self._win)
        ]
        for st in self._ds.stack_traces(self._win):
            refs += refs_from_stacktrace(st.text, f"trace {st.trace_id} span {st.span_id}")[:6]
        return refs

    # provenance ------------------------------------------------------------------------------

    def _provenance(self) -> list[_Item]:
        items = []
        if self.session is not None:
            manifest = getattr(getattr(self.session, "handle", None), "manifest", None) or {}
            lines = [f"dataset {self.req.dataset}"]
            for src in manifest.get("sources", []):
                lines.append(
                    f"source {src.get('source_id')}: {src.get('path')} ({src.get('format')}, "
                    f"{src.get('size', 0):,} bytes, sha256 {str(src.get('sha256', ''))[:12]}, "
                    f"{src.get('spans', 0)} spans, {src.get('logs', 0)} logs)"
                )
            self.facts["sources"] = self._facts_redactor.value(
                "sources", _jsonable(manifest.get("sources", []))
            )
            queries = [q for q in dict.fromkeys(self.queries) if q]
            if queries:
                lines.append(
                    f"the {len(queries)} queries behind these figures are saved beside this request on the "
                    "agent's machine (not sent)"
                )
            items.append(self._item("\n".join(lines), "sources", eid=False))
        return items


# rendering helpers -------------------------------------------------------------------------


def _figures(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Each figure once: 'name before -> after' when the baseline has it, else 'name after'."""
    parts = []
    for k in dict.fromkeys([*after, *before]):
        if k in before and k in after:
            parts.append(f"{_figure_name(k)} {figure_text(k, before[k])} -> {figure_text(k, after[k])}")
        elif k in after:
            parts.append(f"{_figure_name(k)} {figure_text(k, after[k])}")
        else:
            parts.append(f"{_figure_name(k)} {figure_text(k, before[k])} -> none")
    return "; ".join(parts)


def _template_line(t: LogTemplate) -> str:
    """How a template reads in the bundle and its facts: level, service, text."""
    return f"{t.severity} {t.service}: {t.template}"


def _capped_logs_text(counts: LogTemplateCounts) -> str:
    lost = [
        f"{n:,} {p} lines"
        for n, p in ((counts.untemplated, "window"), (counts.baseline_untemplated, "baseline"))
        if n
    ]
    return (
        f"log counts are lower bounds: {counts.texts:,} distinct log texts, only the {counts.texts_cap:,} most "
        f"frequent were templated; {' and '.join(lost) or 'no lines'} are in no template's count"
    )


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


def _code_refs_from_view(view: TraceView) -> list[CodeRef]:
    refs = []
    for s in view.spans:
        a = s.attributes or {}
        path = a.get("code.file.path") or a.get("code.filepath")
        if isinstance(path, str) and (s.status_code == "ERROR" or s.on_critical_path):
            line = a.get("code.line.number") or a.get("code.lineno")
            refs.append(
                CodeRef(
                    path,
                    int(str(line)) if str(line).isdigit() else None,
                    "span",
                    a.get("code.function.name") or a.get("code.function"),
                    f"trace {view.trace_id} span {s.span_id}",
                )
            )
    return refs


def _shown_attributes(s: TraceSpan, message: str, redactor: Redactor) -> dict[str, Any]:
    """A span's attributes without the noise and without what its line already says: the
    operation name (method, route, rpc service and method), the status message, the host and
    port a full URL holds."""
    raw = s.attributes or {}
    said = f"{s.operation} {message}"
    url = str(raw.get("url.full") or "")
    attrs = {}
    for k, v in raw.items():
        k = str(k)
        if k in NOISE_ATTRIBUTES:
            continue
        v = redactor.value(k, v)  # only what is shown is redacted: the counts are of what is sent
        text = v if isinstance(v, str) else json.dumps(v, default=str)
        if not text:
            continue
        if k in ("exception.message", "exception.type", "http.request.method", "url.template", "http.route"):
            if text in said:
                continue
        if k in ("rpc.service", "rpc.method", "rpc.system") and (k == "rpc.system" or text in s.operation):
            if k != "rpc.system" or raw.get("rpc.service"):
                continue
        if k == "error.type" and text == str(raw.get("http.response.status_code")):
            continue
        if k == "url.path" and text == raw.get("http.route"):
            continue
        if k in ("server.address", "server.port") and url and text in url:
            continue
        if k in ("db.operation.name", "db.collection.name") and text in str(raw.get("db.query.text") or ""):
            continue
        attrs[k] = v
    return attrs


def _value_text(value: Any) -> str:
    """An attribute value as one line of text."""
    s = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return s.replace("\n", "\\n")


def _shape(view: TraceView) -> tuple[Any, ...]:
    """What a trace shows, for telling two exemplars apart: its root, its error spans, and the
    operations that hold most of its critical path."""
    spans = view.spans
    root = (spans[0].service, spans[0].operation) if spans else ("", "")
    errors = tuple(sorted({(s.service, s.operation) for s in spans if s.status_code == "ERROR"}))
    dur = max(1, view.end_ns - view.start_ns)
    heavy = tuple(sorted({(s.service, s.operation) for s in spans if s.critical_path_ns >= 0.25 * dur}))
    return root, errors, heavy


def render_trace_line(
    view: TraceView,
    role: str,
    sources: Iterable[str],
    same_as: str,
    redactor: Redactor,
    *,
    cited: Iterable[str] = (),
    attrs_shown: set[str] | None = None,
) -> tuple[str, dict]:
    """One line for a trace of the same shape as one shown already (`same_as`, its evidence id),
    and a line for each span of it in `cited`, with its id (and attributes not shown before)."""
    from correlate.times import format_ns

    spans = view.spans
    errors = [s for s in spans if s.status_code == "ERROR"]
    crit = max(spans, key=lambda s: s.critical_path_ns, default=None)
    dur = view.end_ns - view.start_ns
    text = (
        f"trace {view.trace_id} ({role}): starts {format_ns(view.start_ns)}, {_ms(dur)}, {len(spans)} spans, "
        f"{len(errors)} errors; the same shape as {same_as} (root, failing spans and the operations that "
        "hold its critical path)"
    )
    if crit is not None:
        text += f"; most of its critical path: {crit.service} {crit.operation} {_ms(crit.critical_path_ns)}"
    sources = list(sources)
    if sources:
        text += f"; sources {', '.join(sources)}"
    cited = set(cited)
    for s in spans:
        if s.span_id not in cited:
            continue
        text += (
            f"\n  cited span {s.span_id}: +{(s.start_ns - view.start_ns) / 1e6:,.1f} {_ms(s.duration_ns)} "
            f"(self {_ms(s.self_time_ns)}) {s.service} {s.operation} [{s.kind}]{' on ' + s.host if s.host else ''}"
        )
        if s.status_code == "ERROR":
            text += f" ERROR {redactor.text(s.status_message or '')!r}"
        attrs = {
            k: _value_text(v)
            for k, v in _shown_attributes(s, redactor.text(s.status_message or ""), redactor).items()
        }
        key = json.dumps([s.service, s.operation, attrs], ensure_ascii=False, sort_keys=True)
        if attrs and (attrs_shown is None or key not in attrs_shown):
            text += f"\n    attrs {json.dumps(attrs, ensure_ascii=False)}"
            if attrs_shown is not None:
                attrs_shown.add(key)
    fact = {
        "trace_id": view.trace_id,
        "start_ns": view.start_ns,
        "duration_ns": dur,
        "spans": len(spans),
        "errors": len(errors),
        "error_spans": [
            {"service": s.service, "operation": s.operation, "message": redactor.text(s.status_message or "")}
            for s in errors[:5]
        ],
        "critical_path": [f"{c.service} {c.operation}" for c in view.critical_path[:12]],
        "hosts": sorted({s.host for s in spans if s.host}),
        "same_as": same_as,
    }
    return text, fact


def render_trace(
    view: TraceView,
    role: str,
    sources: Iterable[str],
    redactor: Redactor,
    *,
    cited: Iterable[str] = (),
    clipped: list[str] | None = None,
    attrs_shown: set[str] | None = None,
) -> tuple[str, dict]:
    """A compact, indented span tree; '*' marks the critical path; spans shorter than SHORT_SHARE
    of the trace are folded into one line under their parent; repeated siblings collapsed. Error
    spans, the spans in `cited` (the candidates' spans) and the two longest on the critical path
    show their id and attributes; attributes already in `attrs_shown` (an operation's, shown in an
    earlier trace) are not repeated. Clipped values are named in `clipped`."""
    spans = list(view.spans)
    cited = set(cited)
    errors = [s for s in spans if s.status_code == "ERROR"]
    services = sorted({s.service for s in spans})
    dur = view.end_ns - view.start_ns
    from correlate.times import format_ns

    sources = list(sources)
    head = (
        f"trace {view.trace_id} ({role}): starts {format_ns(view.start_ns)}, {_ms(dur)}, {len(spans)} spans, "
        f"{len(errors)} errors, services {', '.join(services)}"
    )
    if sources:
        head += f"; sources {', '.join(sources)}"
    lines = [head]

    def clip(value: Any, n: int, what: str) -> str:
        s = _value_text(value)
        if len(s) <= n:
            return s
        if clipped is not None:
            clipped.append(f"trace {view.trace_id[:8]}… {what}: clipped to {n:,} of {len(s):,} characters")
        return s[: n - 1] + "…"

    # redacted before clipped: a clipped secret is no longer one the rules recognise
    messages = {
        s.span_id: clip(
            redactor.text(s.status_message or ""), MAX_MESSAGE_CHARS, f"span {s.span_id} status message"
        )
        for s in spans
        if s.status_code == "ERROR" or s.span_id in cited
    }
    crit = sorted((s for s in spans if s.on_critical_path), key=lambda s: -s.self_time_ns)
    detailed = {s.span_id for s in errors} | (cited & {s.span_id for s in spans})
    detailed.update(s.span_id for s in crit[:2])
    # the tree: children in order; a span is kept when it matters or holds a span that does
    kids: dict[str | None, list[int]] = {}
    ids = {s.span_id for s in spans}
    for i, s in enumerate(spans):
        parent = s.parent_span_id if s.parent_span_id in ids and s.parent_span_id != s.span_id else None
        kids.setdefault(parent, []).append(i)
    short = max(1, dur) * SHORT_SHARE
    keep = [False] * len(spans)
    pos = {s.span_id: i for i, s in enumerate(spans)}
    for i in range(len(spans) - 1, -1, -1):  # depth-first order: children after their parent
        s = spans[i]
        keep[i] = keep[i] or (
            s.status_code == "ERROR" or s.span_id in detailed or s.duration_ns >= short or s.depth <= 1
        )
        if keep[i] and s.parent_span_id in pos:
            keep[pos[s.parent_span_id]] = True
    shown = 0

    def line_of(s: TraceSpan) -> str:
        pad = "  " * s.depth
        mark = "*" if s.on_critical_path else " "
        off = f"+{(s.start_ns - view.start_ns) / 1e6:,.1f}"
        line = (
            f"{mark} {pad}{off} {_ms(s.duration_ns)} (self {_ms(s.self_time_ns)}) {s.service} {s.operation} "
            f"[{s.kind}]{' on ' + s.host if s.host else ''}"
        )
        msg = messages.get(s.span_id, "")
        if s.status_code == "ERROR":
            line += f" ERROR {msg!r} span {s.span_id}" if msg else f" ERROR span {s.span_id}"
        elif s.span_id in cited:
            line += f" span {s.span_id} (cited)"
        if s.skew_adjustment_ns:
            line += f" (clock skew adjusted {_ms(s.skew_adjustment_ns)})"
        return line

    def emit(i: int) -> None:
        nonlocal shown
        s = spans[i]
        lines.append(line_of(s))
        shown += 1
        if s.span_id in detailed and s.attributes:
            msg = messages.get(s.span_id, "")
            attrs = {
                k: clip(v, MAX_VALUE_CHARS, f"span {s.span_id} attribute {k}")
                for k, v in _shown_attributes(s, msg, redactor).items()
            }
            key = json.dumps([s.service, s.operation, attrs], ensure_ascii=False, sort_keys=True)
            if attrs and (attrs_shown is None or key not in attrs_shown):
                lines.append(f"  {'  ' * s.depth}   attrs {json.dumps(attrs, ensure_ascii=False)}")
                if attrs_shown is not None:
                    attrs_shown.add(key)
        children = kids.get(s.span_id, [])
        j = 0
        while j < len(children):
            if len(lines) >= MAX_TRACE_LINES:
                return
            c = children[j]
            if not keep[c]:  # a run of short spans: one line
                run = []
                while j < len(children) and not keep[children[j]]:
                    run.append(children[j])
                    j += 1
                folded = [x for r in run for x in _subtree(r)]
                ops = list(dict.fromkeys(f"{spans[x].service} {spans[x].operation}" for x in run))
                lines.append(
                    f"  {'  ' * (s.depth + 1)}… {len(folded)} short spans (each < {_ms(short)}; "
                    f"{_ms(sum(spans[x].duration_ns for x in run))} in all): {', '.join(ops[:3])}"
                    + (" …" if len(ops) > 3 else "")
                )
                shown += len(folded)
                continue
            # repeated kept siblings (same service and operation, none special): one line
            k = j + 1
            cs = spans[c]
            while (
                k < len(children)
                and keep[children[k]]
                and _same(spans[children[k]], cs)
                and not _special(spans[children[k]], detailed)
                and not _special(cs, detailed)
            ):
                k += 1
            if k - j > 1:
                group = children[j:k]
                total = sum(spans[x].duration_ns for x in group)
                mark = "*" if any(spans[x].on_critical_path for x in group) else " "
                lines.append(
                    f"{mark} {'  ' * cs.depth}+{(cs.start_ns - view.start_ns) / 1e6:,.1f} {k - j}x {cs.service} "
                    f"{cs.operation} [{cs.kind}] avg {_ms(total / (k - j))}, total {_ms(total)}"
                )
                shown += sum(len(_subtree(x)) for x in group)
                j = k
                continue
            emit(c)
            j += 1

    def _subtree(i: int) -> list[int]:
        out = [i]
        for c in kids.get(spans[i].span_id, []):
            out += _subtree(c)
        return out

    for root in kids.get(None, []):
        if len(lines) >= MAX_TRACE_LINES:
            break
        emit(root)
    if shown < len(spans):
        lines.append(
            f"  … {len(spans) - shown} more spans (the trace is longer than {MAX_TRACE_LINES} lines)"
        )
        if clipped is not None:
            clipped.append(
                f"trace {view.trace_id[:8]}…: {len(spans) - shown} of {len(spans)} spans not shown "
                f"(at most {MAX_TRACE_LINES} lines a trace)"
            )
    for w in view.warnings[:MAX_TRACE_WARNINGS]:
        lines.append(f"  warning: {w}")
    if len(view.warnings) > MAX_TRACE_WARNINGS:
        lines.append(f"  … {len(view.warnings) - MAX_TRACE_WARNINGS} more warnings")
        if clipped is not None:
            clipped.append(
                f"trace {view.trace_id[:8]}…: {len(view.warnings) - MAX_TRACE_WARNINGS} of "
                f"{len(view.warnings)} warnings not shown"
            )
    fact = {
        "trace_id": view.trace_id,
        "start_ns": view.start_ns,
        "duration_ns": dur,
        "spans": len(spans),
        "errors": len(errors),
        "error_spans": [
            {"service": s.service, "operation": s.operation, "message": messages.get(s.span_id, "")}
            for s in errors[:5]
        ],
        "critical_path": [f"{c.service} {c.operation}" for c in view.critical_path[:12]],
        "hosts": sorted({s.host for s in spans if s.host}),
    }
    return "\n".join(lines), fact


def _same(a: TraceSpan, b: TraceSpan) -> bool:
    return a.service == b.service and a.operation == b.operation and a.depth == b.depth


def _special(s: TraceSpan, detailed: set[str]) -> bool:
    return s.on_critical_path or s.status_code == "ERROR" or s.span_id in detailed
