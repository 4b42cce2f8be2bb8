"""Evidence beside the candidates: what escalation's bundle shows, asked of the dataset session.

    exemplar_traces(session, window, baseline, services)      slowest, failing, typical traces
    trace_sources(session, trace_id)                          the sources a trace's spans came from
    service_graph_change(session, window, baseline)           calls, errors, p95 per caller -> callee
    log_template_counts(session, window, baseline, services)  log templates, counted exactly
    service_activity(session, window, baseline)               spans, traces, requests per service
    code_locations(session, window) / stack_traces(session, window)   code the spans point at

`DatasetSession` has a method of each name; escalation calls those and never queries the views
itself, so a change to how spans or logs are read lands in the bundle and the analyses at once.

Log lines are templated as the `log_templates` analysis templates them (`mine_templates`: Drain
over masked texts, one miner per service and level) with the level `log_severity` gives a
record that carries none (`effective_severity`). Lines are counted in SQL, one row a distinct
text, so the counts are exact however many lines there are; only the number of distinct texts
that are templated is capped (the most frequent first), and the result says when it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from correlate.analyses.common import lit
from correlate.analyses.log_severity import DEBUG, ERROR, FATAL, INFO, TRACE, WARN, effective_severity
from correlate.analyses.log_templates import MAX_BODIES, mine_templates
from correlate.types import (
    CodeLocation,
    EdgeChange,
    EdgeFigures,
    ExemplarTrace,
    LogTemplate,
    LogTemplateCounts,
    PeriodActivity,
    ServiceActivity,
    ServiceGraphChange,
    ServiceRequests,
    StackTrace,
    Window,
)

__all__ = [
    "MAX_LOG_TEXTS",
    "MAX_CODE_LOCATIONS",
    "exemplar_traces",
    "trace_sources",
    "service_graph_change",
    "log_template_counts",
    "service_activity",
    "code_locations",
    "stack_traces",
    "severity_name",
]

MAX_LOG_TEXTS = MAX_BODIES  # distinct log texts templated at most, as the log_templates analysis
MAX_CODE_LOCATIONS = 40

_LEVELS = (
    (FATAL, "FATAL"),
    (ERROR, "ERROR"),
    (WARN, "WARN"),
    (INFO, "INFO"),
    (DEBUG, "DEBUG"),
    (TRACE, "TRACE"),
)


def severity_name(number: int | None) -> str:
    """An OTLP severity number's level name (17..20 ERROR, …); "" when unset."""
    if not number or number < 1:
        return ""
    return next(name for level, name in _LEVELS if number >= level)


def _in(column: str, w: Window) -> str:
    return f"({column} >= {int(w.start_ns)} AND {column} < {int(w.end_ns)})"


def _one_line(sql: str) -> str:
    return " ".join(sql.split())


# exemplar traces -----------------------------------------------------------------------------


def exemplar_traces(
    session: Any, window: Window, baseline: Window | None = None, services: Sequence[str] = ()
) -> tuple[ExemplarTrace, ...]:
    """The window's slowest trace, its most erroring one (the earliest of those), then the traces
    nearest the median duration of the window and of the baseline among those with the same root
    (service and operation) as the failing trace, else the slowest, so the typical and the
    baseline traces show the same request done well (any root when the period has none of it),
    in that order (a role with no trace is left out; one trace may hold several roles). With
    `services`, only traces that pass through one of them. Ties go to the smaller trace id, so
    two runs pick the same traces."""
    svc = ""
    if services:
        svc = f" AND list_has_any(services, [{', '.join(lit(s) for s in services)}])"
    where = _in("start_ns", window) + svc
    queries = {
        "slowest": f"SELECT trace_id FROM traces WHERE {where} ORDER BY duration_ns DESC, trace_id LIMIT 1",
        "failing": f"SELECT trace_id FROM traces WHERE {where} AND has_error "
        "ORDER BY error_count DESC, start_ns, trace_id LIMIT 1",
    }
    session.ensure_materialized("traces")
    out: list[ExemplarTrace] = []
    for role, sql in queries.items():
        got = session.fetch(sql)
        if got and got[0][0] is not None:
            out.append(ExemplarTrace(trace_id=got[0][0], role=role, sql=sql))
    root = None
    if out:
        ref = next((e for e in out if e.role == "failing"), out[0])
        got = session.fetch(
            "SELECT root_service, root_operation FROM traces WHERE trace_id = ?", [ref.trace_id]
        )
        root = got[0] if got and got[0][0] is not None else None
    periods = [("typical", window)] + ([("baseline_typical", baseline)] if baseline is not None else [])
    for role, period in periods:
        base = _in("start_ns", period) + svc
        options = []
        if root is not None:
            options.append(f"{base} AND root_service = {lit(root[0])} AND root_operation = {lit(root[1])}")
        options.append(base)
        for cond in options:
            sql = (
                f"SELECT trace_id FROM traces WHERE {cond} ORDER BY abs(duration_ns - "
                f"(SELECT median(duration_ns) FROM traces WHERE {cond})), trace_id LIMIT 1"
            )
            got = session.fetch(sql)
            if got and got[0][0] is not None:
                out.append(ExemplarTrace(trace_id=got[0][0], role=role, sql=sql))
                break
    roots = {}
    if out:
        ids = sorted({e.trace_id for e in out})
        for tid, rs, ro, start in session.fetch(
            "SELECT trace_id, root_service, root_operation, start_ns FROM traces WHERE list_contains(?, trace_id)",
            [ids],
        ):
            roots[tid] = (f"{rs} {ro}" if rs is not None else "", int(start))
    return tuple(ExemplarTrace(e.trace_id, e.role, e.sql, *roots.get(e.trace_id, ("", 0))) for e in out)


def trace_sources(session: Any, trace_id: str) -> tuple[str, ...]:
    """The source ids (ingested files) the spans of one trace came from, sorted."""
    got = session.fetch(
        "SELECT DISTINCT source_id FROM spans WHERE trace_id = ? AND source_id IS NOT NULL ORDER BY 1",
        [trace_id],
    )
    return tuple(r[0] for r in got)


# service graph -------------------------------------------------------------------------------


def service_graph_change(session: Any, window: Window, baseline: Window | None = None) -> ServiceGraphChange:
    """Calls, errors and p95 of each caller -> callee edge, in the window and the baseline.

    A call is a child span whose parent span is on another service (as the `service_edges`
    view); it belongs to the period its child span starts in."""
    in_w = _in("start_ns", window)
    periods = f"({in_w} OR {_in('start_ns', baseline)})" if baseline is not None else in_w
    sql = _one_line(f"""
        SELECT p.service_name AS caller, c.service_name AS callee,
               count(*) FILTER (WHERE c.w) AS calls,
               count(*) FILTER (WHERE c.w AND c.status_code = 'ERROR') AS errors,
               CAST(quantile_cont(c.duration_ns, 0.95) FILTER (WHERE c.w) AS BIGINT) AS p95_ns,
               count(*) FILTER (WHERE NOT c.w) AS baseline_calls,
               count(*) FILTER (WHERE NOT c.w AND c.status_code = 'ERROR') AS baseline_errors,
               CAST(quantile_cont(c.duration_ns, 0.95) FILTER (WHERE NOT c.w) AS BIGINT) AS baseline_p95_ns
        FROM (SELECT trace_id, parent_span_id, service_name, status_code, duration_ns, {in_w} AS w
              FROM spans WHERE parent_span_id IS NOT NULL AND {periods}) AS c
        JOIN (SELECT trace_id, span_id, service_name FROM spans) AS p
          ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
        WHERE p.service_name IS DISTINCT FROM c.service_name
        GROUP BY ALL ORDER BY caller, callee""")
    w_s = (window.end_ns - window.start_ns) / 1e9
    b_s = (baseline.end_ns - baseline.start_ns) / 1e9 if baseline is not None else 0.0
    edges = []
    for caller, callee, calls, errors, p95, b_calls, b_errors, b_p95 in session.fetch(sql):
        after = EdgeFigures(int(calls), int(errors), p95, w_s) if calls else None
        before = EdgeFigures(int(b_calls), int(b_errors), b_p95, b_s) if b_calls else None
        status = "" if baseline is None else "both" if after and before else "new" if after else "gone"
        edges.append(EdgeChange(caller, callee, after, before, status))
    return ServiceGraphChange(window, baseline, tuple(edges), sql)


# requests per service -----------------------------------------------------------------------


def service_activity(session: Any, window: Window, baseline: Window | None = None) -> ServiceActivity:
    """Spans, traces and requests per service in the window and the baseline, and how many failed.

    A request of a service is a span it serves: a root span, a span whose parent is on another
    service, or a span declared SERVER or CONSUMER (as `correlate/timeline.py` counts them);
    a failed request is one with status ERROR. A span belongs to the period it starts in."""
    in_w = _in("c.start_ns", window)
    periods = f"({in_w} OR {_in('c.start_ns', baseline)})" if baseline is not None else in_w
    entry = "(p.span_id IS NULL OR p.service_name <> c.service_name OR c.kind IN ('SERVER', 'CONSUMER'))"
    sql = _one_line(f"""
        SELECT c.service_name AS service, {in_w} AS w, count(*) AS spans,
               count(*) FILTER (WHERE c.status_code = 'ERROR') AS error_spans,
               count(*) FILTER (WHERE {entry}) AS requests,
               count(*) FILTER (WHERE {entry} AND c.status_code = 'ERROR') AS failed_requests,
               count(DISTINCT c.trace_id) AS traces
        FROM spans c LEFT JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
        WHERE {periods}
        GROUP BY GROUPING SETS ((c.service_name, w), (w)) ORDER BY w DESC, requests DESC, service""")
    empty = PeriodActivity(0, 0, 0, 0, 0)
    per: dict[str, dict[bool, PeriodActivity]] = {}
    totals: dict[bool, PeriodActivity] = {}
    for service, w, spans, error_spans, requests, failed, traces in session.fetch(sql):
        fig = PeriodActivity(int(spans), int(error_spans), int(requests), int(failed), int(traces))
        if service is None:
            totals[bool(w)] = fig
        else:
            per.setdefault(service, {})[bool(w)] = fig
    has_b = baseline is not None
    services = tuple(
        ServiceRequests(svc, figs.get(True, empty), figs.get(False, empty) if has_b else None)
        for svc, figs in sorted(per.items(), key=lambda kv: (-kv[1].get(True, empty).requests, kv[0]))
    )
    return ServiceActivity(
        window, baseline, totals.get(True, empty), totals.get(False, empty) if has_b else None, services, sql
    )


# log templates -------------------------------------------------------------------------------


def log_template_counts(
    session: Any,
    window: Window,
    baseline: Window | None = None,
    services: Sequence[str] = (),
    *,
    redact: Callable[[str], str] | None = None,
    max_texts: int | None = None,
) -> LogTemplateCounts:
    """Log templates per service and level with their exact counts in the window and baseline.

    A line in both periods counts to the window. `redact` is applied to each distinct text
    before it is templated (escalation passes its redactor: masking a number or an id inside a
    secret would leave a piece the redaction rules no longer recognise); the level is read
    from the original text. Lines without a text are not counted. At most `max_texts`
    (MAX_LOG_TEXTS) distinct texts are templated, the most frequent first."""
    max_texts = MAX_LOG_TEXTS if max_texts is None else max_texts
    in_w = _in("time_ns", window)
    periods = f"({in_w} OR {_in('time_ns', baseline)})" if baseline is not None else in_w
    svc = f" AND service_name IN ({', '.join(lit(s) for s in services)})" if services else ""
    where = f"body IS NOT NULL AND {periods}{svc}"
    grouped = (
        f"SELECT coalesce(service_name, '?') AS service, {in_w} AS w, body, max(severity_number) AS severity, "
        f"count(*) AS n, arg_min(struct_pack(time_ns := time_ns, trace_id := trace_id, span_id := span_id, "
        f"source_id := source_id), struct_pack(t := time_ns, src := source_id, o := source_offset)) AS first "
        f"FROM logs WHERE {where} GROUP BY ALL"
    )
    sql = f"{grouped} ORDER BY n DESC, body, service, w DESC"
    rows = session.fetch(f"{sql} LIMIT {int(max_texts) + 1}")
    kept = rows[:max_texts]
    counted_w = sum(r[4] for r in kept if r[1])
    counted_b = sum(r[4] for r in kept if not r[1])
    if len(rows) > max_texts:
        texts, lines_w, lines_b = session.fetch(
            f"SELECT count(*), coalesce(sum(n) FILTER (WHERE w), 0), coalesce(sum(n) FILTER (WHERE NOT w), 0) "
            f"FROM ({grouped})"
        )[0]
    else:
        texts, lines_w, lines_b = len(kept), counted_w, counted_b

    # as the log_templates analysis: mined per service and level, each text once, both periods together
    by_group: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
    for r in kept:
        by_group.setdefault((r[0], effective_severity(r[3], r[2])[0]), []).append(r)
    acc: dict[tuple[str, int, str], dict[str, Any]] = {}
    for (service, severity), group in sorted(by_group.items()):
        texts_in = [redact(r[2]) if redact else r[2] for r in group]
        for r, text, template in zip(group, texts_in, mine_templates(texts_in), strict=True):
            t = acc.setdefault(
                (service, severity, template),
                {
                    "w": 0,
                    "b": 0,
                    "first": None,
                    "first_b": None,
                    "inferred": False,
                    "values": {},
                    "values_b": {},
                },
            )
            t["inferred"] = t["inferred"] or effective_severity(r[3], r[2])[1]
            key, values = ("first", "values") if r[1] else ("first_b", "values_b")
            t["w" if r[1] else "b"] += r[4]
            if t[key] is None or _first_key(r[5]) < _first_key(t[key][0]):
                t[key] = (r[5], text)
            _add_values(t[values], template, text)
    templates = []
    for (service, severity, template), t in acc.items():
        first, text = t["first"] or (None, None)
        example: tuple[dict[str, Any], str | None] = t["first"] or t["first_b"] or ({}, None)
        values = t["values"] if t["w"] else t["values_b"]
        n_slots = template.count("<NUM>")
        templates.append(
            LogTemplate(
                service=service,
                severity_number=severity,
                severity=severity_name(severity),
                severity_inferred=t["inferred"],
                template=template,
                count=t["w"],
                baseline_count=t["b"],
                trace_id=(first or {}).get("trace_id"),
                span_id=(first or {}).get("span_id"),
                source_id=(first or {}).get("source_id"),
                first_ns=(first or {}).get("time_ns"),
                example=example[1],
                example_ns=example[0].get("time_ns"),
                values=tuple(values[i] for i in range(n_slots))
                if -1 not in values and len(values) == n_slots
                else (),
            )
        )
    templates.sort(key=lambda x: (-x.severity_number, -x.count, x.service, x.template))
    return LogTemplateCounts(
        window=window,
        baseline=baseline,
        templates=tuple(templates),
        lines=int(lines_w),
        baseline_lines=int(lines_b),
        untemplated=int(lines_w) - counted_w,
        baseline_untemplated=int(lines_b) - counted_b,
        texts=int(texts),
        texts_cap=int(max_texts),
        sql=_one_line(sql),
    )


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _add_values(ranges: dict[int, tuple[float, float]], template: str, text: str) -> None:
    """Widen the (lowest, highest) number seen at each <NUM> of `template` by the numbers of one
    line. Drain keeps the line's tokens, so the template's i-th token is the line's i-th; a token
    whose numbers do not line up with its masks leaves every slot unknown (`ranges` loses them)."""
    if ranges.get(-1):  # gave up on this template
        return
    slot = 0
    toks, words = template.split(), text.split()
    if len(toks) != len(words):
        ranges.clear()
        ranges[-1] = (0.0, 0.0)
        return
    for tok, word in zip(toks, words, strict=True):
        n = tok.count("<NUM>")
        if not n:
            continue
        nums = _NUMBER.findall(word)
        if len(nums) != n:
            ranges.clear()
            ranges[-1] = (0.0, 0.0)
            return
        for v in map(float, nums):
            lo, hi = ranges.get(slot, (v, v))
            ranges[slot] = (min(lo, v), max(hi, v))
            slot += 1


def _first_key(first: dict[str, Any]) -> tuple[int, str, str, str]:
    """The first line: the earliest, ties to the smaller ids."""
    return (
        first["time_ns"],
        first.get("source_id") or "",
        first.get("trace_id") or "",
        first.get("span_id") or "",
    )


# code the spans point at ---------------------------------------------------------------------


def code_locations(session: Any, window: Window, limit: int = MAX_CODE_LOCATIONS) -> tuple[CodeLocation, ...]:
    """The code places (`code.file.path`, line, function) spans starting in the window name,
    those with the most erroring spans first, then the busiest."""
    got = session.fetch(
        _one_line(f"""
        SELECT code_filepath, code_lineno, code_function,
               arg_min(struct_pack(trace_id := trace_id, span_id := span_id), struct_pack(s := start_ns, t := trace_id)),
               count(*) FILTER (WHERE status_code = 'ERROR') AS errs, count(*) AS n
        FROM spans WHERE {_in("start_ns", window)} AND code_filepath IS NOT NULL
        GROUP BY 1, 2, 3 ORDER BY errs DESC, n DESC, 1, 2, 3 LIMIT {int(limit)}""")
    )
    return tuple(
        CodeLocation(path, line, func, ex["trace_id"], ex["span_id"], int(errs), int(n))
        for path, line, func, ex, errs, n in got
    )


def stack_traces(session: Any, window: Window, limit: int = MAX_CODE_LOCATIONS) -> tuple[StackTrace, ...]:
    """The `exception.stacktrace` texts of exception events on the first `limit` spans of the
    window that carry one."""
    got = session.fetch(
        _one_line(f"""
        SELECT trace_id, span_id, events FROM spans
        WHERE {_in("start_ns", window)} AND exception_type IS NOT NULL AND events LIKE '%stacktrace%'
        ORDER BY start_ns, trace_id, span_id LIMIT {int(limit)}""")
    )
    return tuple(StackTrace(tid, sid, text) for tid, sid, events in got for text in _stacktraces(events))


def _stacktraces(events: str | None) -> list[str]:
    try:
        evs = json.loads(events or "[]")
    except ValueError:
        return []
    out = []
    for ev in evs if isinstance(evs, list) else []:
        attrs = (ev.get("attributes") or {}) if isinstance(ev, dict) else {}
        st = attrs.get("exception.stacktrace") if isinstance(attrs, dict) else None
        if isinstance(st, str):
            out.append(st)
    return out
