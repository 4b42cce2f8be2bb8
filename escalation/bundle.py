"""The evidence bundle: what the model reads, condensed to a token budget and redacted.

Sections, in priority order (a later section is cut before an earlier one):

    question      the question and the agent's context (stuck, attempts, findings, code scope)
    summary       the dataset: counts, time range, services, the analysed window and baseline
    candidates    ranked root-cause candidates and supporting findings, with their evidence
    traces        exemplar traces, compact, critical path marked with '*'
    graph         how the service graph changed between baseline and window
    logs          log templates with counts (window and baseline)
    code          code excerpts with line numbers
    provenance    dataset, source files, the queries behind the figures

Every item carries an evidence id (`[E7]`) the model cites. Items are packed in order until the
budget is reached; what does not fit is listed in `cut`. Every item is redacted before it is
counted, so counts and cuts describe exactly what is sent.

The figures come from the correlate session (`correlate/evidence.py`: exemplar traces, the
service-graph change, log template counts, the code the spans name); the bundle chooses,
orders, renders and cuts, and runs no query of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from correlate.types import CorrelationReport, LogTemplate, LogTemplateCounts, TraceView, Window
from escalation.code_context import CodeContext, CodeRef, refs_from_stacktrace
from escalation.redact import Redactor
from escalation.tokens import ESTIMATE_MARGIN, estimate_tokens
from escalation.types import EscalationRequest

if TYPE_CHECKING:
    from correlate.session import DatasetSession

__all__ = ["Section", "Bundle", "BundleBuilder", "SECTION_ORDER", "SECTION_TITLES", "render_trace"]

SECTION_ORDER = ("question", "summary", "candidates", "traces", "graph", "logs", "code", "provenance")
SECTION_TITLES = {
    "question": "Question and agent context",
    "summary": "Dataset summary",
    "candidates": "Ranked root-cause candidates (from correlate) and findings",
    "traces": "Exemplar traces ('*' = on the critical path; times in ms from the trace start)",
    "graph": "Service graph change (baseline -> window)",
    "logs": "Log templates with counts (window, baseline)",
    "code": "Code excerpts ('>' marks referenced lines)",
    "provenance": "Provenance",
}

# Constant warning texts (tests compare them).
W_NO_CORRELATE = "no correlation: the window has no spans, so the bundle has no ranked candidates"
W_NO_DATASET = "no dataset given: the bundle holds only the question, context and code"
W_OVER_BUDGET = "the bundle is over the token budget even after cutting: shorten the question and context"

MAX_TRACE_LINES = 60
MAX_VALUE_CHARS = 240
MAX_TEMPLATES = 40
MAX_STACK_LINES = 14

# how the bundle names the roles of correlate's exemplar traces (EXEMPLAR_ROLES)
ROLE_TEXT = {
    "slowest": "slowest in window",
    "failing": "failing in window",
    "typical": "typical in window (median duration)",
    "baseline_typical": "typical before (baseline, median duration)",
}
_LEVEL_RANK = {
    name: rank for rank, name in enumerate(("", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"))
}


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


def render_sections(sections: Sequence[Section]) -> str:
    return "\n\n".join(f"## {s.title}\n{s.text}" for s in sections if s.text)


def _ms(ns: int | float | None) -> str:
    return "?" if ns is None else f"{ns / 1e6:,.1f}ms"


def _clip(value: Any, n: int = MAX_VALUE_CHARS) -> str:
    s = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    s = s.replace("\n", "\\n")
    return s if len(s) <= n else s[: n - 1] + "…"


def _window_text(w: Window | None) -> str:
    if w is None:
        return "none"
    from correlate.times import format_ns

    return f"{format_ns(w.start_ns)} .. {format_ns(w.end_ns)} ({(w.end_ns - w.start_ns) / 1e9:,.0f} s)"


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
        self.redactor = Redactor()  # counts what is sent
        self._facts_redactor = Redactor()  # facts stay local (offline provider); not counted twice
        self.warnings: list[str] = []
        self.partial = False
        self._eid = 0
        self.facts: dict[str, Any] = {"dataset": req.dataset, "analysis_type": req.analysis_type}
        self.window: Window | None = req.window
        self.baseline: Window | None = req.baseline
        self.report: CorrelationReport | None = None
        self.queries: list[str] = []
        self._trace_code_refs: list[CodeRef] = []

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

    # the build -----------------------------------------------------------------------------

    def build(self) -> Bundle:
        groups: dict[str, list[_Item]] = {"question": self._question()}
        if self.session is None:
            self.warnings.append(W_NO_DATASET)
        else:
            summary = self._summary_data()
            groups["candidates"] = self._candidates()  # correlate picks the window when none was given
            groups["summary"] = self._summary(summary)
            groups["traces"] = self._traces()
            groups["graph"] = self._graph()
            groups["logs"] = self._logs()
        groups["code"] = self._code()
        groups["provenance"] = self._provenance()
        return self._pack(groups)

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
        for key, items in kept.items():
            facts[key] = [i.fact for i in items if i.fact is not None]
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
            header = estimate_tokens(f"## {SECTION_TITLES[key]}\n") + 2
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
                    Section(
                        key,
                        SECTION_TITLES[key],
                        text,
                        estimate_tokens(text) + header,
                        len(items),
                        len(chosen),
                    )
                )
        return sections, cut, kept

    # question --------------------------------------------------------------------------------

    def _question(self) -> list[_Item]:
        req, ctx = self.req, self.req.context
        lines = [f"Question ({req.analysis_type}, depth {req.depth_level}): {req.question.strip()}"]
        if ctx.stuck_description:
            lines.append(f"Where the agent is stuck: {ctx.stuck_description.strip()}")
        items = [self._item("\n".join(lines), "question", eid=False)]
        for a in ctx.attempted_approaches:
            items.append(self._item(f"Already tried: {a}", "attempted approach", eid=False))
        for f in ctx.partial_findings:
            items.append(self._item(f"Agent's partial finding: {f}", "partial finding", eid=False))
        scope = ctx.code_scope
        if scope.files or scope.entry_points or scope.service_names:
            items.append(
                self._item(
                    "Code scope: "
                    + "; ".join(
                        p
                        for p in (
                            f"files {', '.join(scope.files)}" if scope.files else "",
                            f"entry points {', '.join(scope.entry_points)}" if scope.entry_points else "",
                            f"services {', '.join(scope.service_names)}" if scope.service_names else "",
                        )
                        if p
                    ),
                    "code scope",
                    eid=False,
                )
            )
        self.facts["question"] = self._facts_redactor.text(req.question)
        self.facts["attempted"] = [self._facts_redactor.text(a) for a in ctx.attempted_approaches]
        self.facts["partial_findings"] = [self._facts_redactor.text(f) for f in ctx.partial_findings]
        return items

    # summary ---------------------------------------------------------------------------------

    def _summary_data(self) -> dict[str, Any]:
        summary = dict(self.session.summary())
        self.facts["summary"] = self._facts_redactor.value("summary", _jsonable(summary))
        return summary

    def _summary(self, summary: dict[str, Any]) -> list[_Item]:
        lines = [
            f"dataset {self.req.dataset}",
            f"window {_window_text(self.window)}",
            f"baseline {_window_text(self.baseline) if self.baseline else 'chosen by correlate'}",
        ]
        if self.req.services:
            lines.append(f"services filter: {', '.join(self.req.services)}")
        for k, v in summary.items():
            if k in ("name", "dataset"):
                continue
            lines.append(f"{k}: {_clip(self._redacted(k, v), 600)}")
        return [self._item("\n".join(lines), "dataset summary", eid=False)]

    # candidates ------------------------------------------------------------------------------

    def _candidates(self) -> list[_Item]:
        from correlate.engine import NOTE_NO_SPANS

        report = self.session.correlate(self.window, self.baseline, tuple(self.req.services))
        self.report = report
        self.window = report.window
        if report.baseline is not None:
            self.baseline = report.baseline
        if NOTE_NO_SPANS in report.notes:  # nothing to rank: say so beside the notes
            self.warnings.append(W_NO_CORRELATE)
            self.partial = True
        items = []
        for rank, c in enumerate(report.candidates, 1):
            ev = c.evidence
            text = (
                f"candidate #{rank} score {c.score:.2f} (confidence {c.confidence or 'n/a'}): {c.service} / {c.operation or '-'} — {c.mechanism}. "
                f"{c.summary}"
            )
            if ev.before or ev.after:
                text += (
                    f"\n    before {_clip(self._redacted('before', ev.before), 400)}"
                    f"\n    after {_clip(self._redacted('after', ev.after), 400)}"
                )
            if ev.details:
                text += f"\n    details {_clip(self._redacted('details', ev.details), 400)}"
            if ev.trace_ids:
                text += f"\n    traces {', '.join(ev.trace_ids[:3])}"
            if ev.span_ids:
                text += f"  spans {', '.join(ev.span_ids[:3])}"
            fact = {
                "rank": rank,
                "service": c.service,
                "operation": c.operation,
                "mechanism": c.mechanism,
                "score": c.score,
                "summary": self._facts_redactor.text(c.summary),
                "trace_ids": list(ev.trace_ids[:3]),
                "before": self._facts_redactor.value("before", _jsonable(ev.before)),
                "after": self._facts_redactor.value("after", _jsonable(ev.after)),
                "analysis": c.analysis,
            }
            items.append(self._item(text, f"candidate #{rank} {c.service}/{c.mechanism}", fact))
        for f in report.findings:
            text = f"finding {f.kind}: {f.service or '-'} / {f.operation or '-'}: {f.summary}"
            if f.evidence.trace_ids:
                text += f"  traces {', '.join(f.evidence.trace_ids[:2])}"
            fact = {
                "kind": f.kind,
                "service": f.service,
                "operation": f.operation,
                "summary": self._facts_redactor.text(f.summary),
            }
            items.append(self._item(text, f"finding {f.kind}", {**fact, "finding": True}))
        for note in report.notes:
            items.append(self._item(f"note: {note}", "note", eid=False))
        return items

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
            for rank, c in enumerate(self.report.candidates[:2], 1):
                for tid in c.evidence.trace_ids[:1]:
                    add(tid, f"example of candidate #{rank}")
        for ex in self.session.exemplar_traces(self.window, self.baseline, tuple(self.req.services)):
            self.queries.append(ex.sql)
            add(ex.trace_id, ROLE_TEXT[ex.role])
        return chosen

    def _traces(self) -> list[_Item]:
        items = []
        for tid, role in self._exemplar_ids():
            view = self.session.trace(tid)
            sources = self.session.trace_sources(tid)
            text, fact = render_trace(view, role, sources, self.redactor)
            fact["role"] = role
            items.append(self._item(text, f"trace {tid[:8]}… ({role})", fact))
            self._trace_code_refs.extend(_code_refs_from_view(view))
        return items

    # service graph ---------------------------------------------------------------------------

    def _graph(self) -> list[_Item]:
        change = self.session.service_graph_change(self.window, self.baseline)
        if not change.edges:
            return []
        self.queries.append(change.sql)
        rows = []
        for e in change.edges:
            a, b = e.window, e.baseline
            weight, label = {"new": (1e9, "NEW"), "gone": (1e9, "GONE")}.get(e.status, (0.0, ""))
            line = f"{e.caller} -> {e.callee}"
            if a:
                line += (
                    f"  window: {a.calls_per_s:,.2f} calls/s, {a.error_rate:.1%} errors, p95 {_ms(a.p95_ns)}"
                )
            if b:
                line += f"  | baseline: {b.calls_per_s:,.2f} calls/s, {b.error_rate:.1%} errors, p95 {_ms(b.p95_ns)}"
            fact: dict[str, Any] = {"caller": e.caller, "callee": e.callee, "change": label}
            if a and b:
                rate_ratio, err_delta, p95_ratio = (
                    e.calls_ratio or 0.0,
                    e.error_rate_delta or 0.0,
                    e.p95_ratio or 0.0,
                )
                weight = abs(rate_ratio - 1) + abs(err_delta) * 10 + abs(p95_ratio - 1)
                fact["change"] = label = (
                    f"calls x{rate_ratio:.2f}, errors {err_delta:+.1%}, p95 x{p95_ratio:.2f}"
                )
                fact.update(
                    rate_ratio=round(rate_ratio, 3),
                    err_delta=round(err_delta, 4),
                    p95_ratio=round(p95_ratio, 3),
                )
            busy = (-(a.calls if a else 0), -(b.calls if b else 0))
            rows.append(((-weight, *busy), f"{line}  [{label}]" if label else line, fact))
        rows.sort(key=lambda r: r[0])
        return [self._item(t, f"edge {f['caller']}->{f['callee']}", f) for _, t, f in rows]

    # logs ------------------------------------------------------------------------------------

    def _logs(self) -> list[_Item]:
        # templated from redacted texts: masking a number inside a secret would leave a piece of it
        # the rules no longer recognise
        counts = self.session.log_template_counts(
            self.window, self.baseline, tuple(self.req.services), redact=self.redactor.text
        )
        self.queries.append(counts.sql)
        items = []
        if counts.truncated:
            note = _capped_logs_text(counts)
            self.warnings.append(note)
            self.partial = True
            items.append(self._item(f"note: {note}", "capped log counts", eid=False))
        seen = [t for t in counts.templates if t.count]
        ranked = sorted(
            seen,
            key=lambda t: (-_LEVEL_RANK.get(t.severity, 0), -(t.count - t.baseline_count), _template_line(t)),
        )
        for t in ranked[:MAX_TEMPLATES]:
            tpl = _template_line(t)
            text = f"{t.count}x (baseline {t.baseline_count}x) {_clip(tpl, 400)}"
            if t.severity_inferred:
                text += " (level read from the text)"
            refs = [
                f"trace {t.trace_id}" if t.trace_id else "",
                f"span {t.span_id}" if t.span_id else "",
                f"source {t.source_id}" if t.source_id else "",
            ]
            if any(refs):
                text += "  e.g. " + " ".join(r for r in refs if r)
            items.append(
                self._item(
                    text,
                    f"log template {tpl[:40]!r}",
                    {"template": tpl, "count": t.count, "baseline_count": t.baseline_count},
                )
            )
        gone = [_template_line(t) for t in counts.templates if not t.count]
        if gone:
            items.append(
                self._item(
                    f"{len(gone)} baseline templates absent in the window, e.g. "
                    + "; ".join(_clip(t, 160) for t in gone[:3]),
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
                    {"path": ex.path, "lines": list(ex.lines), "origins": list(ex.origins)},
                )
            )
        return items

    def _telemetry_code_refs(self) -> list[CodeRef]:
        refs = [
            CodeRef(c.path, c.line, "span", c.function, f"trace {c.trace_id} span {c.span_id}")
            for c in self.session.code_locations(self.window)
        ]
        for st in self.session.stack_traces(self.window):
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
            items.append(self._item("\n".join(lines), "sources", eid=False))
            if self.queries:
                items.append(
                    self._item(
                        "queries behind the traces, graph and logs (run with 'dcr sql "
                        f"{self.req.dataset} …'):\n" + "\n".join(f"  {q}" for q in self.queries),
                        "queries",
                        eid=False,
                    )
                )
        return items


# rendering helpers -------------------------------------------------------------------------


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
                    int(line) if str(line).isdigit() else None,
                    "span",
                    a.get("code.function.name") or a.get("code.function"),
                    f"trace {view.trace_id} span {s.span_id}",
                )
            )
    return refs


def render_trace(view: TraceView, role: str, sources: Iterable[str], redactor: Redactor) -> tuple[str, dict]:
    """A compact, indented span tree; '*' marks the critical path; repeated siblings collapsed."""
    spans = list(view.spans)
    errors = [s for s in spans if s.status_code == "ERROR"]
    services = sorted({s.service for s in spans})
    dur = view.end_ns - view.start_ns
    head = (
        f"trace {view.trace_id} ({role}): {_ms(dur)}, {len(spans)} spans, {len(errors)} errors, "
        f"services {', '.join(services)}; sources {', '.join(sources) or '-'}"
    )
    lines = [head]
    # redacted before clipped: a clipped secret is no longer one the rules recognise
    messages = {s.span_id: _clip(redactor.text(s.status_message or ""), 200) for s in errors}
    i = 0
    detailed = {s.span_id for s in errors}
    crit = sorted((s for s in spans if s.on_critical_path), key=lambda s: -s.self_time_ns)
    detailed.update(s.span_id for s in crit[:2])
    while i < len(spans) and len(lines) < MAX_TRACE_LINES:
        s = spans[i]
        j = i + 1
        while (
            j < len(spans)
            and spans[j].depth == s.depth
            and spans[j].parent_span_id == s.parent_span_id
            and spans[j].service == s.service
            and spans[j].operation == s.operation
            and not spans[j].on_critical_path
            and spans[j].status_code != "ERROR"
            and not s.on_critical_path
            and s.status_code != "ERROR"
        ):
            j += 1
        # skip the collapsed spans' subtrees too
        k = j
        while k < len(spans) and spans[k].depth > s.depth:
            k += 1
        pad = "  " * s.depth
        mark = "*" if s.on_critical_path else " "
        off = f"+{(s.start_ns - view.start_ns) / 1e6:,.1f}"
        if j - i > 1:
            total = sum(x.duration_ns for x in spans[i:j])
            lines.append(
                f"{mark} {pad}{off} {j - i}x {s.service} {s.operation} [{s.kind}] "
                f"avg {_ms(total / (j - i))}, total {_ms(total)}"
            )
            i = k if k > j else j
            continue
        line = (
            f"{mark} {pad}{off} {_ms(s.duration_ns)} (self {_ms(s.self_time_ns)}) {s.service} {s.operation} "
            f"[{s.kind}]{' on ' + s.host if s.host else ''}"
        )
        if s.status_code == "ERROR":
            msg = messages[s.span_id]
            line += f" ERROR {msg!r} span {s.span_id}" if msg else f" ERROR span {s.span_id}"
        if s.skew_adjustment_ns:
            line += f" (clock skew adjusted {_ms(s.skew_adjustment_ns)})"
        lines.append(line)
        if s.span_id in detailed and s.attributes:
            attrs = {k: _clip(v) for k, v in redactor.mapping(s.attributes).items()}
            lines.append(f"  {pad}   attrs {json.dumps(attrs, ensure_ascii=False)}")
        i += 1
    if i < len(spans):
        lines.append(f"  … {len(spans) - i} more spans")
    for w in view.warnings[:3]:
        lines.append(f"  warning: {w}")
    fact = {
        "trace_id": view.trace_id,
        "duration_ns": dur,
        "spans": len(spans),
        "errors": len(errors),
        "error_spans": [
            {"service": s.service, "operation": s.operation, "message": messages[s.span_id]}
            for s in errors[:5]
        ],
        "critical_path": [f"{c.service} {c.operation}" for c in view.critical_path[:12]],
    }
    return "\n".join(lines), fact
