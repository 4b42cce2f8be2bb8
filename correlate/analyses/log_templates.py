"""Log lines grouped into templates (Drain), counted before vs after, per service.

Records without a severity get the one their text states (`log_severity`). Error and warning
templates that are new in the window, or logged far more often than the baseline's rate
predicts, make an `error_propagation` candidate of the service that wrote them, or of the
service the text names when it names one the traces know ("No instances available for
ts-basic-service", "connect to paymentservice:50051 refused"): the writer only reports it.

Distinct bodies are counted in SQL first (at most MAX_BODIES, the most frequent), so the miner
sees each text once however often it was logged; numbers, hex and prefixed ids and addresses are masked
before mining. Findings: templates that are new in the window, templates whose rate per second
rose at least RISE times, and numbers in a template that climb through the window (a heap, a
queue depth). Logs are joined to spans by trace and span id for the operation that wrote them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    clamp01,
    confidence,
    evidence_sql,
    exemplars,
    lit,
    period_figures,
    rate_score,
    rows,
)
from correlate.analyses.log_severity import ERROR, WARN, effective_severity
from correlate.types import Candidate, Evidence, Finding

__all__ = ["NAME", "find_log_changes", "mine_templates", "template_like"]

NAME = "log_templates"
MAX_BODIES = 20_000
MAX_FINDINGS = 8
RISE = 3.0
MIN_NEW = 2
MIN_TREND_POINTS = 6
_MASKS = (
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b", "IP"),
    (r"\b(0x)?[0-9a-fA-F]{12,}\b", "HEX"),
    # a prefixed id (ord_698d16c5, req-4f3a9b2c, i-0abc123def456): a word, '_' or '-', and 6+
    # letters and digits with a digit among them (tax_rates, node-4 stay)
    (r"(?<![\w-])[A-Za-z][A-Za-z0-9]{0,11}[_-](?=[A-Za-z]*\d)[A-Za-z0-9]{6,}(?![\w-])", "ID"),
    (r"(?<![\w.])[-+]?\d+(\.\d+)?(?![\w.])", "NUM"),
)
_NUM = re.compile(r"[-+]?\d+(?:\.\d+)?")


@dataclass
class _Template:
    service: str
    text: str
    severity: int = 0
    count_b: int = 0
    count_a: int = 0
    trace_id: str | None = None
    span_id: str | None = None
    operation: str | None = None
    first_ns: int | None = None
    points: list[tuple[int, float]] = field(default_factory=list)  # (first time, first number) per body
    inferred: bool = False  # the severity was read from the text (the records carried none)
    # operation of the span that wrote the line -> [times before, times after] (lines tied to spans)
    per_op: dict[str, list[int]] = field(default_factory=dict)


# a log line's header: when it starts with a time, the run of times, dates, levels,
# trace and span ids, logger names (dotted, with a line number) and separators before the message.
# Drain weighs every token alike, so seven header tokens every line shares would make any two
# short messages of one logger "similar"; the message alone is mined, after a <*> for the header
_HEADER_TOKEN = re.compile(
    r"""\s*(?:
        (?P<time>\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?
          |\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)
      | (?P<level>\[?(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|FATAL|CRITICAL|SEVERE)\]?)(?![\w.-])
      | (?:trace_?id|span_?id)[:=]\s*[0-9a-fA-F-]+
      | [A-Za-z_$][\w$]*(?:\.[\w$]+)+(?:[#:]\d+)?(?=\s)
      | (?:-{1,3}|:|\|)(?=\s)
    )""",
    re.X | re.I,
)


def _message(body: str) -> tuple[str, bool]:
    """The body without its header (see _HEADER_TOKEN), and whether one was cut."""
    at, stamped = 0, False
    while m := _HEADER_TOKEN.match(body, at):
        if m.end() == at:
            break
        stamped = stamped or bool(m.group("time"))
        at = m.end()
    if not stamped or at >= len(body.rstrip()):
        return body, False
    return body[at:].lstrip(), True


def mine_templates(bodies: list[str]) -> list[str]:
    """The template of each body (Drain over the masked texts, one miner per call). A header
    (time, level, logger, trace ids) is cut before mining and shown as one leading <*>; a body
    cut at a size limit gets a trailing <*> (see _cut_short)."""
    from drain3.masking import MaskingInstruction
    from drain3.template_miner import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, m) for p, m in _MASKS]
    config.drain_sim_th = 0.5
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    cut = [_message(b) for b in bodies]
    clusters = [miner.add_log_message(m)["cluster_id"] for m, _ in cut]
    headed = {c for c, (_, h) in zip(clusters, cut, strict=True) if h}
    tailless = {c for c, b in zip(clusters, bodies, strict=True) if _cut_short(b)}
    final = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    return [("<*> " if c in headed else "") + final[c] + ("<*>" if c in tailless else "") for c in clusters]


def _cut_short(body: str) -> bool:
    """Whether a body was cut at a shipper's size limit (a power of two from 1 KiB, in characters
    or bytes: Docker splits lines at 16 KiB). Its last token is partial and the rest is gone, so
    one statement cut after another token is another Drain cluster: the template of a cut body
    ends in a <*> joined to its last token (a LIKE finds the longer lines too)."""
    return any(n >= 1024 and n & (n - 1) == 0 for n in (len(body), len(body.encode("utf-8", "replace"))))


def template_like(template: str) -> str:
    """A LIKE pattern matching the bodies of a template (masks become %)."""
    escaped = template.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return re.sub(r"<[A-Z*]+>", "%", escaped)


def _bodies(ctx: AnalysisContext) -> list[dict]:
    lo = ctx.baseline.start_ns if ctx.baseline else ctx.window.start_ns
    sample = (
        "" if ctx.sample_mod <= 1 else f" AND (l.trace_id IS NULL OR hash(l.trace_id) % {ctx.sample_mod} = 0)"
    )
    return rows(
        ctx.con,
        f"""SELECT coalesce(l.service_name, s.service, '?') AS service, l.time_ns >= {ctx.window.start_ns} AS after,
                   l.body, max(l.severity_number) AS severity, count(*) AS n, min(l.time_ns) AS first_ns,
                   count(*) FILTER (WHERE s.trace_id IS NOT NULL) AS n_in_traces,
                   arg_min(l.trace_id, l.time_ns) AS trace_id, arg_min(l.span_id, l.time_ns) AS span_id,
                   s.op AS operation
            FROM logs l LEFT JOIN {ctx.s} s ON s.trace_id = l.trace_id AND s.span_id = l.span_id
            WHERE l.time_ns >= {lo} AND l.time_ns < {ctx.window.end_ns} AND l.body IS NOT NULL{sample}
              AND (l.time_ns >= {ctx.window.start_ns} OR {_in_baseline(ctx)})
            GROUP BY ALL ORDER BY n DESC, l.body, operation LIMIT {MAX_BODIES}""",
    )


def _in_baseline(ctx: AnalysisContext) -> str:
    if ctx.baseline is None:
        return "FALSE"
    return f"(l.time_ns >= {ctx.baseline.start_ns} AND l.time_ns < {ctx.baseline.end_ns})"


def find_log_changes(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    got = _bodies(ctx)
    if not got:
        return out
    templates: dict[tuple[str, int, str], _Template] = {}
    # mined per service and level: an INFO line and an ERROR line of similar words are two templates
    by_service: dict[tuple[str, int], list[dict]] = {}
    for r in got:
        r["severity"], r["inferred"] = effective_severity(r["severity"], r["body"])
        by_service.setdefault((r["service"], r["severity"]), []).append(r)
    for (service, severity), rs in sorted(by_service.items()):
        for r, text in zip(rs, mine_templates([r["body"] for r in rs]), strict=True):
            t = templates.setdefault((service, severity, text), _Template(service, text, severity))
            t.inferred = t.inferred or r["inferred"]
            if r["after"]:
                t.count_a += r["n"]
                if t.first_ns is None or r["first_ns"] < t.first_ns:
                    t.first_ns = r["first_ns"]
                    t.trace_id, t.span_id, t.operation = r["trace_id"], r["span_id"], r["operation"]
                num = _NUM.search(r["body"])
                if num:
                    t.points.append((r["first_ns"], float(num.group())))
            else:
                t.count_b += r["n"]
            if r["operation"] is not None and r["n_in_traces"]:
                t.per_op.setdefault(r["operation"], [0, 0])[1 if r["after"] else 0] += r["n_in_traces"]
    calls = _calls(ctx) if ctx.has_baseline else {}
    out.candidates.extend(_error_candidates(ctx, list(templates.values()), calls))
    out.candidates.extend(_silenced_candidates(ctx, list(templates.values()), calls))
    out.candidates.extend(_standing_candidates(ctx, list(templates.values()), calls))
    notes = []
    for t in templates.values():
        summary = _change(ctx, t)
        if summary:
            notes.append((-(t.severity or 0), -t.count_a, t.service, t.text, summary, t))
    notes.sort(key=lambda x: x[:4])
    for *_, summary, t in notes[:MAX_FINDINGS]:
        out.findings.append(_finding(ctx, t, summary))
    out.findings.extend(_recovered_findings(ctx, list(templates.values()), calls))
    return out


def _change(ctx: AnalysisContext, t: _Template) -> str | None:
    sev = _severity(t.severity)
    if ctx.has_baseline and t.count_b == 0 and t.count_a >= MIN_NEW:
        return (
            f'new {sev}log in {t.service}: "{t.text[:140]}" ({t.count_a} times in the window, never before)'
        )
    if ctx.has_baseline and t.count_b and t.count_a >= 5:
        rate_b, rate_a = t.count_b / ctx.baseline_s, t.count_a / ctx.window_s
        if rate_a >= RISE * rate_b:
            return (
                f'{sev}log in {t.service} rose {rate_a / rate_b:.1f}x: "{t.text[:140]}" '
                f"({t.count_b} -> {t.count_a} times)"
            )
    trend = _trend(t.points)
    if trend:
        lo, hi = trend
        return f'a number in {t.service}\'s log climbs through the window: "{t.text[:140]}" from {lo:g} to {hi:g}'
    return None


def _severity(number: int) -> str:
    """OTLP severity number -> its name and a space ("" when unset)."""
    names = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
    if not number or number < 1:
        return ""
    return names[min((number - 1) // 4, len(names) - 1)] + " "


def _trend(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """(first, last) value when the numbers rise steadily with time (Pearson r >= 0.8, +50%)."""
    if len(points) < MIN_TREND_POINTS:
        return None
    pts = sorted(points)
    xs = [float(p[0] - pts[0][0]) for p in pts]
    ys = [p[1] for p in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if not sxx or not syy:
        return None
    r = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / math.sqrt(sxx * syy)
    first, last = ys[0], ys[-1]
    if r >= 0.8 and first > 0 and last >= 1.5 * first:
        return first, last
    return None


def _finding(ctx: AnalysisContext, t: _Template, summary: str) -> Finding:
    lo = ctx.baseline.start_ns if ctx.baseline else ctx.window.start_ns
    # the lines of the template's text, as Drain reads them, in the periods _bodies counts (the
    # figures are Drain's: another cluster of the same text is counted here too)
    q = f"""SELECT CASE WHEN l.time_ns >= {ctx.window.start_ns} THEN 'after' ELSE 'before' END AS period, count(*) AS logs
FROM logs l WHERE l.service_name = {lit(t.service)} AND {_line_of(t.text)}
  AND l.time_ns >= {lo} AND l.time_ns < {ctx.window.end_ns} AND (l.time_ns >= {ctx.window.start_ns} OR {_in_baseline(ctx)})
GROUP BY period ORDER BY period"""
    return Finding(
        kind=NAME,
        service=t.service,
        operation=t.operation,
        summary=summary,
        evidence=Evidence(
            before={"logs": t.count_b},
            after={"logs": t.count_a},
            trace_ids=(t.trace_id,) if t.trace_id else (),
            span_ids=(t.span_id,) if t.span_id else (),
            sql=q,
            details={"template": t.text, "severity_number": t.severity},
        ),
    )


# how much a template of each level counts as evidence of a fault
_LEVEL_WEIGHT = ((ERROR, 1.0), (WARN, 0.5))
PRIOR_COUNT = 0.5
MIN_LOAD_SPANS = 20  # fewer spans of a service before: its load ratio is noise, use time  # a template never seen before is expected this often in a baseline (smoothing)
# a log line is one process's account: it weighs less than a change measured in the traces
LOG_WEIGHT = 0.6
NAMED_PEER_SHARE = 0.9  # a log that names a failing peer: the peer gets this much of the score
MAX_LOG_CANDIDATES = 4


def _weight(severity: int) -> float:
    return next((w for level, w in _LEVEL_WEIGHT if severity >= level), 0.0)


def _surprise(ctx: AnalysisContext, t: _Template, load: dict[str, tuple[int, int]]) -> float:
    """How surely and how much a template is logged more in the window than the baseline's rate
    predicts: effect x significance, as rate_score. The rate is per span of the writer when its
    baseline holds MIN_LOAD_SPANS (so a busier window does not make its routine warnings look
    new), else per second of data."""
    spans_b, spans_a = load.get(t.service, (0, 0))
    by_load = spans_b >= MIN_LOAD_SPANS and spans_a > 0
    scale = spans_a / spans_b if by_load else ctx.window_s / ctx.baseline_s
    expected = (t.count_b + PRIOR_COUNT) * scale
    if t.count_a <= expected:
        return 0.0
    z = (t.count_a - expected) / math.sqrt(expected + 1.0)
    return clamp01(1.0 - expected / t.count_a) * clamp01((z - 2.0) / 3.0)


def _named_peer(text: str, writer: str, services: list[str]) -> str | None:
    """A known service (not the writer) that the text names, the longest name first.

    A name that is also a plain word ("checkout", "payment") counts only where it reads as an
    address: host:port, after // or @, or before a dot and a domain; a name with a '-', '_', '.'
    or digit in it ("ts-basic-service") is an identifier wherever it stands as a word."""
    for svc in services:
        if svc == writer:
            continue
        name = re.escape(svc)
        if re.search(r"[-_.\d]", svc):
            pattern = rf"(?<![\w-]){name}(?![\w-])"
        else:
            pattern = rf"(?:(?<=//)|(?<=@)){name}(?![\w-])|(?<![\w-]){name}(?=:\d|\.[a-z])"
        if re.search(pattern, text):
            return svc
    return None


def _calls(ctx: AnalysisContext) -> dict[tuple[str, str], tuple[int, int]]:
    """(service, operation) -> its calls (spans) in the baseline and in the window."""
    return {
        (r[0], r[1]): (int(r[2]), int(r[3]))
        for r in ctx.con.execute(
            f"""SELECT service, op, count(*) FILTER (WHERE NOT after), count(*) FILTER (WHERE after)
                FROM {ctx.s} GROUP BY 1, 2"""
        ).fetchall()
    }


def _per_call(t: _Template, calls: dict[tuple[str, str], tuple[int, int]]) -> float:
    """How surely and how much the share of an operation's calls that write the template rose
    (rate_score), for the operation where it rose most: lines tied to spans measure the change
    per request, which a busier or quieter window does not fake. 0 without such lines."""
    best = 0.0
    for op, (nb, na) in t.per_op.items():
        cb, ca = calls.get((t.service, op), (0, 0))
        if cb >= SILENT_MIN_CALLS and ca >= SILENT_MIN_CALLS:
            best = max(best, rate_score(min(nb, cb), cb, min(na, ca), ca))
    return best


def _error_candidates(
    ctx: AnalysisContext, templates: list[_Template], calls: dict[tuple[str, str], tuple[int, int]]
) -> list[Candidate]:
    if not ctx.has_baseline:
        return []
    services = sorted(
        (r[0] for r in ctx.con.execute(f"SELECT DISTINCT service FROM {ctx.s}").fetchall()),
        key=lambda s: (-len(s), s),
    )
    load = {
        r[0]: (int(r[1]), int(r[2]))
        for r in ctx.con.execute(
            f"SELECT service, count(*) FILTER (WHERE NOT after), count(*) FILTER (WHERE after) FROM {ctx.s} GROUP BY 1"
        ).fetchall()
    }
    best: dict[str, tuple[float, _Template, str | None]] = {}
    for t in templates:
        w = _weight(t.severity)
        if not w or t.count_a < MIN_NEW:
            continue
        score = (
            LOG_WEIGHT
            * w
            * max(_surprise(ctx, t, load) * confidence(t.count_a, half=5.0), _per_call(t, calls))
        )
        if score <= 0.02:
            continue
        peer = _named_peer(t.text, t.service, services) if t.severity >= ERROR else None
        for svc, share in (
            ((peer, NAMED_PEER_SHARE), (t.service, 1.0 - NAMED_PEER_SHARE)) if peer else ((t.service, 1.0),)
        ):
            s = score * share
            if svc not in best or s > best[svc][0]:
                best[svc] = (s, t, peer if svc == peer else None)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:MAX_LOG_CANDIDATES]
    return [_error_candidate(ctx, svc, s, t, named) for svc, (s, t, named) in ranked]


def _error_candidate(
    ctx: AnalysisContext, svc: str, score: float, t: _Template, named: str | None
) -> Candidate:
    level = _severity(t.severity).strip() or "error"
    how = "new" if t.count_b == 0 else f"{t.count_b} -> {t.count_a} times"
    text = t.text[:160]
    if named:
        summary = (
            f'{t.service} logs {level} naming {svc}: "{text}" ({how}'
            f"{', ' + str(t.count_a) + ' times in the window' if t.count_b == 0 else ''})"
        )
    else:
        summary = (
            f'{svc} logs a {"new " if t.count_b == 0 else "more frequent "}{level}: "{text}" '
            f"({t.count_a} times in the window, {t.count_b} in the baseline)"
        )
    if t.inferred:
        summary += "; level read from the text"
    ev = _finding(ctx, t, summary).evidence
    details = {
        **ev.details,
        "writer": t.service,
        "named_in_text": named is not None,
        "severity_inferred": t.inferred,
        "rate_before_per_s": round(t.count_b / ctx.baseline_s, 4),
        "rate_after_per_s": round(t.count_a / ctx.window_s, 4),
    }
    trace_ids, span_ids = ev.trace_ids, ev.span_ids
    if not trace_ids:  # lines not tied to a trace: the window's slowest requests through the service
        trace_ids, span_ids = exemplars(ctx, f"after AND service = {lit(svc)}", order="dur_ns DESC")
        details["exemplars"] = "the slowest requests through the service (its log lines carry no trace id)"
    # a candidate's SQL starts with the working table like every other (the log query ignores it)
    ev = Evidence(
        before=ev.before,
        after=ev.after,
        trace_ids=trace_ids,
        span_ids=span_ids,
        sql=evidence_sql(ctx, ev.sql),
        details=details,
    )
    return Candidate(
        svc,
        t.operation if svc == t.service else None,
        "error_propagation",
        round(clamp01(score), 4),
        summary,
        ev,
        NAME,
    )


# a line an operation wrote on its calls before and stopped writing (the code path changed)
SILENT_MIN_CALLS = 5  # calls of the operation in each period
SILENT_MIN_BEFORE = 3  # times the line was written in the baseline
SILENT_MIN_SHARE = 0.25  # lines per call in the baseline: rarer is a branch the data picks, not the path
SILENT_MIN_EXPECTED = 4.0  # times the baseline's rate per call predicts in the window
SILENT_KEPT = 0.3  # at most this share of the predicted count is left
SILENT_REST_KEPT = 0.5  # the service's other lines keep this share per call, else logs went missing
MAX_SILENT_CANDIDATES = 3
# an error line whose share of the operation's calls rose by at least this share of what the
# silenced line lost took its place (half: most of the calls that left the path now fail)
FLIP_TAKEN = 0.5


# a line's text as Drain tokenises it (trimmed, a run of whitespace one space), for a LIKE of its
# template: a body cut at a byte limit ends in a space, a message can hold two
_LINE_TEXT = r"regexp_replace(trim(l.body), '\s+', ' ', 'g')"


def _line_of(text: str) -> str:
    """SQL: log line `l` reads as template `text` (masks and <*> as %, whitespace as Drain splits)."""
    return f"{_LINE_TEXT} LIKE {lit(template_like(text))} ESCAPE '\\'"


def _op_lines_sql(ctx: AnalysisContext, svc: str, op: str, figures: dict[str, str]) -> str:
    """A query over `s` (the working table): per period, the calls of (svc, op) and one figure per
    entry of `figures` (name -> aggregate over the lines tied to the calls by trace and span id,
    taken among the lines of the templates its FILTERs name). The figures a candidate states are
    this query's own (`period_figures`), so its evidence gives them back."""
    cols = "".join(f",\n       {expr} AS {name}" for name, expr in figures.items())
    return f"""SELECT CASE WHEN s.after THEN 'after' ELSE 'before' END AS period, count(DISTINCT s.sk) AS calls{cols}
FROM s LEFT JOIN logs l ON l.trace_id = s.trace_id AND l.span_id = s.span_id
  AND l.time_ns >= {ctx.baseline.start_ns if ctx.baseline else ctx.window.start_ns} AND l.time_ns < {ctx.window.end_ns}
WHERE s.service = {lit(svc)} AND s.op = {lit(op)}
GROUP BY period ORDER BY period"""


def _silenced_candidates(
    ctx: AnalysisContext, templates: list[_Template], calls: dict[tuple[str, str], tuple[int, int]]
) -> list[Candidate]:
    """An operation that wrote a line on most of its calls in the baseline and (almost) never
    in the window, while still being called: the code before that line now returns or throws
    early, or takes another branch. Calls are the spans of the operation; lines are tied to them
    by trace and span id, so no level, status or attribute is needed. Error lines that stop are
    recovery, not a fault, and are left out; so is a service whose lines all went quiet (lost
    logs say nothing about code). When an error line of the same operation took the stopped
    line's place (`_outcome_flip`), the two are one event, the operation's outcome: one
    candidate that says both.

    Drain's clusters pick the (template, operation) pairs; the tests are then run again on the
    figures of the evidence query, which finds the template's lines by its text: one log
    statement whose argument changed form (a date that gained a time, a list cut at the
    recording's byte limit at another token) is several clusters but one text, and has not
    stopped."""
    if not ctx.has_baseline:
        return []
    quiet = [t for t in templates if t.severity < ERROR and t.per_op]
    if not quiet:
        return []
    lines: dict[str, list[int]] = {}  # service -> lines tied to its spans, before and after
    for t in templates:
        for nb, na in t.per_op.values():
            tot = lines.setdefault(t.service, [0, 0])
            tot[0] += nb
            tot[1] += na
    spans: dict[str, list[int]] = {}
    for (svc, _), (cb, ca) in calls.items():
        tot = spans.setdefault(svc, [0, 0])
        tot[0] += cb
        tot[1] += ca
    errors = [t for t in templates if t.severity >= ERROR and t.per_op]
    best: dict[str, _Silenced] = {}
    for t in quiet:
        for op, (nb, na) in t.per_op.items():
            cb, ca = calls.get((t.service, op), (0, 0))
            rest = (lines[t.service], spans[t.service])
            if _silence(nb, cb, na, ca, rest) is None:
                continue
            got = _measured_silence(ctx, t, op, rest, _outcome_flip(errors, t, op, nb, cb, na, ca))
            if got is not None and got.score > 0.02:
                if t.service not in best or got.score > best[t.service].score:
                    best[t.service] = got
    ranked = sorted(best.items(), key=lambda kv: (-kv[1].score, kv[0]))[:MAX_SILENT_CANDIDATES]
    return [_silenced_candidate(ctx, v) for _, v in ranked]


def _silence(
    nb: int, cb: int, na: int, ca: int, rest: tuple[list[int], list[int]]
) -> tuple[float, float, float] | None:
    """(score, z, effect) of a line written nb times in cb calls before and na in ca calls in the
    window, when it stopped (the SILENT_ tests); `rest` is the service's (lines, spans) before
    and after, whose other lines must keep their rate. None when it did not."""
    if cb < SILENT_MIN_CALLS or ca < SILENT_MIN_CALLS or nb < SILENT_MIN_BEFORE or nb < SILENT_MIN_SHARE * cb:
        return None
    expected = nb / cb * ca
    if expected < SILENT_MIN_EXPECTED or na > SILENT_KEPT * expected:
        return None
    (lb, la), (sb, sa) = rest
    rest_b, rest_a = max(lb - nb, 0) / max(sb, 1), max(la - na, 0) / max(sa, 1)
    if rest_b > 0 and rest_a < SILENT_REST_KEPT * rest_b:
        return None
    z = (expected - na) / math.sqrt(expected)
    effect = 1.0 - na / expected
    return LOG_WEIGHT * effect * clamp01((z - 2.0) / 3.0) * clamp01(nb / cb / 0.5), z, effect


def _measured_silence(
    ctx: AnalysisContext,
    t: _Template,
    op: str,
    rest: tuple[list[int], list[int]],
    error: _Template | None,
) -> _Silenced | None:
    """The silence of t's line in op, measured by its evidence query (with the error line that
    may have taken its place) and tested again on those figures."""
    figures = {"lines": f"count(l.body) FILTER (WHERE {_line_of(t.text)})"}
    if error is not None:
        figures["error_lines"] = f"count(l.body) FILTER (WHERE {_line_of(error.text)})"
    q = _op_lines_sql(ctx, t.service, op, figures)
    before, after = period_figures(ctx, q)
    cb, ca = before.get("calls", 0), after.get("calls", 0)
    nb, na = before.get("lines", 0), after.get("lines", 0)
    got = _silence(nb, cb, na, ca, rest)
    if got is None:
        return None
    score, z, effect = got
    if error is not None:
        eb, ea = before.get("error_lines", 0), after.get("error_lines", 0)
        z_err = _flip(eb, ea, nb, cb, na, ca)
        # one event seen twice: the path's line stopped and the error line took its place.
        # The stronger test of the two; no discount for a line only some calls wrote,
        # since the calls that stopped writing it now fail (their outcome, not their input)
        flipped = LOG_WEIGHT * effect * clamp01((max(z, z_err or 0.0) - 2.0) / 3.0)
        if z_err is None or flipped <= score:  # no flip on the measured figures: the line alone
            return _measured_silence(ctx, t, op, rest, None)
        return _Silenced(flipped, t, op, q, before, after, error)
    return _Silenced(score, t, op, q, before, after)


@dataclass(frozen=True)
class _Silenced:
    score: float
    t: _Template
    op: str
    sql: str  # the query over `s` whose figures these are
    before: dict[str, int]  # calls, lines (and error_lines) in the baseline
    after: dict[str, int]  # and in the window
    error: _Template | None = None  # an error line of op that took its place (an outcome flip)


def _outcome_flip(
    errors: list[_Template], t: _Template, op: str, nb: int, cb: int, na: int, ca: int
) -> _Template | None:
    """An error line of the same operation whose share of calls rose by at least FLIP_TAKEN of
    what the silenced line lost (Drain's counts): the calls that stopped writing it now fail.
    The error template whose share rose surest, if any."""
    found: tuple[_Template, float] | None = None
    for e in errors:
        if e.service != t.service or op not in e.per_op:
            continue
        eb, ea = e.per_op[op]
        z = _flip(eb, ea, nb, cb, na, ca)
        if z is not None and (found is None or z > found[1]):
            found = (e, z)
    return found[0] if found else None


def _flip(eb: int, ea: int, nb: int, cb: int, na: int, ca: int) -> float | None:
    """z of the rise of an error line's share of calls (eb lines in cb calls -> ea in ca) when it
    rose by at least FLIP_TAKEN of what the silenced line (nb -> na) lost; None when less."""
    eb, ea = min(eb, cb), min(ea, ca)
    if ea / ca - eb / cb < FLIP_TAKEN * (nb / cb - na / ca):
        return None
    return _two_proportion_z(eb, cb, ea, ca)


def _two_proportion_z(kb: int, nb: int, ka: int, na: int) -> float:
    """z of the rise of a share from kb/nb to ka/na (pooled two-proportion test)."""
    p = (kb + ka) / (nb + na)
    se = math.sqrt(max(p * (1 - p) * (1 / nb + 1 / na), 1e-12))
    return (ka / na - kb / nb) / se


def _silenced_candidate(ctx: AnalysisContext, v: _Silenced) -> Candidate:
    t, op = v.t, v.op
    cb, nb, ca, na = v.before["calls"], v.before["lines"], v.after["calls"], v.after["lines"]
    summary = (
        f"{t.service} {op} stopped writing a log line it wrote {nb} times in {cb} calls before: "
        f'{na} times in {ca} calls in the window ("{t.text[:140]}"); the code path changed there'
    )
    flip: dict[str, object] = {}
    if v.error is not None:
        eb, ea = v.before["error_lines"], v.after["error_lines"]
        summary += (
            f"; its calls fail instead: an {_severity(v.error.severity).strip()} line of it went from "
            f'{eb} in {cb} calls to {ea} in {ca} ("{v.error.text[:140]}")'
        )
        flip = {
            "error_template": v.error.text,
            "error_lines_per_call_before": round(eb / cb, 4),
            "error_lines_per_call_after": round(ea / ca, 4),
        }
    tids, sids = exemplars(
        ctx, f"after AND service = {lit(t.service)} AND op = {lit(op)}", order="dur_ns DESC"
    )
    ev = Evidence(
        before=v.before,
        after=v.after,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, v.sql),
        details={
            "template": t.text,
            "severity_number": t.severity,
            "severity_inferred": t.inferred,
            "lines_per_call_before": round(nb / cb, 4),
            "lines_per_call_after": round(na / ca, 4),
            **flip,
        },
    )
    return Candidate(t.service, op, "code_path_change", round(clamp01(v.score), 4), summary, ev, NAME)


# an error line an operation writes on (nearly) every call, in the baseline as in the window: a
# fault the baseline already holds (a comparison cannot see it, nor say when it began)
STANDING_SHARE = 0.9  # of the operation's calls in each period: its outcome, not a sometimes-bad input
STANDING_WEIGHT = 0.05  # a candidate scored this low at most, and ranked after every change
MAX_STANDING_CANDIDATES = 3


def _standing_candidates(
    ctx: AnalysisContext, templates: list[_Template], calls: dict[tuple[str, str], tuple[int, int]]
) -> list[Candidate]:
    """Operations that write an error line on at least STANDING_SHARE of their calls in both
    periods (SILENT_MIN_CALLS calls in each): they failed before the window as in it. Marked
    `standing` in the evidence: the ranking puts them after every candidate that changed, with
    low confidence, so they are a lead when nothing changed, never an answer over a change.
    Scored by how many calls say so (STANDING_WEIGHT at most). Drain's line counts pick the
    pairs; the calls that wrote the line are counted by the evidence query, which the test and
    the score use."""
    if not ctx.has_baseline:
        return []
    best: dict[str, tuple[float, _Standing]] = {}
    for t in templates:
        if t.severity < ERROR:
            continue
        for op, (nb, na) in t.per_op.items():
            cb, ca = calls.get((t.service, op), (0, 0))
            if cb < SILENT_MIN_CALLS or ca < SILENT_MIN_CALLS:
                continue
            if min(min(nb, cb) / cb, min(na, ca) / ca) < STANDING_SHARE:
                continue  # fewer lines than that: fewer calls too
            match = _line_of(t.text)
            q = _op_lines_sql(
                ctx,
                t.service,
                op,
                {
                    "lines": f"count(l.body) FILTER (WHERE {match})",
                    "calls_with_line": f"count(DISTINCT s.sk) FILTER (WHERE {match})",
                },
            )
            before, after = period_figures(ctx, q)
            cb, ca = before.get("calls", 0), after.get("calls", 0)
            if cb < SILENT_MIN_CALLS or ca < SILENT_MIN_CALLS:
                continue
            share = min(before.get("calls_with_line", 0) / cb, after.get("calls_with_line", 0) / ca)
            if share < STANDING_SHARE:
                continue  # lines enough, but several on some calls (a retry loop), none on others
            score = STANDING_WEIGHT * share * confidence(cb + ca, half=10.0)
            if t.service not in best or score > best[t.service][0]:
                best[t.service] = (score, _Standing(t, op, q, before, after))
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:MAX_STANDING_CANDIDATES]
    return [_standing_candidate(ctx, score, v) for _, (score, v) in ranked]


@dataclass(frozen=True)
class _Standing:
    t: _Template
    op: str
    sql: str  # the query over `s` whose figures these are
    before: dict[str, int]  # calls, lines, calls_with_line in the baseline
    after: dict[str, int]  # and in the window


def _standing_candidate(ctx: AnalysisContext, score: float, v: _Standing) -> Candidate:
    t, op, b, a = v.t, v.op, v.before, v.after
    level = _severity(t.severity).strip()
    summary = (
        f"{t.service} {op} logs an {level} line on nearly every call, before the window as in it "
        f"(on {b['calls_with_line']} of {b['calls']} calls before, {a['calls_with_line']} of {a['calls']} "
        f'after, {b["lines"]} and {a["lines"]} times: "{t.text[:140]}"): a fault the baseline already '
        "holds, which a comparison cannot see begin"
    )
    if t.inferred:
        summary += "; level read from the text"
    tids, sids = exemplars(
        ctx, f"after AND service = {lit(t.service)} AND op = {lit(op)}", order="dur_ns DESC"
    )
    ev = Evidence(
        before=b,
        after=a,
        trace_ids=tids,
        span_ids=sids,
        sql=evidence_sql(ctx, v.sql),
        details={
            "standing": True,
            "calls_with_line_before": b["calls_with_line"],
            "calls_with_line_after": a["calls_with_line"],
            "template": t.text,
            "severity_number": t.severity,
            "severity_inferred": t.inferred,
            "lines_per_call_before": round(b["lines"] / b["calls"], 4),
            "lines_per_call_after": round(a["lines"] / a["calls"], 4),
        },
    )
    return Candidate(t.service, op, "error_propagation", round(score, 4), summary, ev, NAME)


def _recovered_findings(
    ctx: AnalysisContext, templates: list[_Template], calls: dict[tuple[str, str], tuple[int, int]]
) -> list[Finding]:
    """Operations whose error lines stopped: they logged errors on at least SILENT_MIN_SHARE of
    their calls in the baseline and at most SILENT_KEPT of that in the window (the figures of a
    line that stops, for the operation's error lines together), while the service's other lines
    kept their rate, and so did the operation's own lines below ERROR (when those stop too, its
    code returns before all of them: a code path change, which `_silenced_candidates` reports).
    A failure the baseline held ended: the service now does its whole work, so its shape and
    times change with no fault of its own. Marked `recovered` for the ranking."""
    if not ctx.has_baseline:
        return []
    errs: dict[tuple[str, str], list[int]] = {}
    others: dict[tuple[str, str], list[int]] = {}  # the operation's lines below ERROR
    lines: dict[str, list[int]] = {}
    texts: dict[tuple[str, str], list[_Template]] = {}  # the operation's error templates
    for t in templates:
        for op, (nb, na) in t.per_op.items():
            tot = lines.setdefault(t.service, [0, 0])
            tot[0], tot[1] = tot[0] + nb, tot[1] + na
            e = (errs if t.severity >= ERROR else others).setdefault((t.service, op), [0, 0])
            e[0], e[1] = e[0] + nb, e[1] + na
            if t.severity >= ERROR:
                texts.setdefault((t.service, op), []).append(t)
    spans: dict[str, list[int]] = {}
    for (svc, _), (cb, ca) in calls.items():
        tot = spans.setdefault(svc, [0, 0])
        tot[0], tot[1] = tot[0] + cb, tot[1] + ca
    out = []
    for (svc, op), (eb, ea) in sorted(errs.items()):
        cb, ca = calls.get((svc, op), (0, 0))
        # the tests of a line that stops, on the operation's error lines together (and not when
        # the service's other lines went quiet too: logs lost, not errors ended)
        stopped = _silence(eb, cb, ea, ca, (lines[svc], spans[svc]))
        if stopped is None or stopped[1] < 2.0:
            continue
        ob, oa = others.get((svc, op), (0, 0))
        if ob > 0 and oa / ca < SILENT_REST_KEPT * ob / cb:
            # the operation's own other lines stopped with its errors: the code now returns or
            # throws before all of them (a code path change), a recovery would do its whole work
            continue
        # the tests again on the evidence query's figures, on calls that wrote an error line (a
        # call can write several, ea lines are at least as many as the window's calls that did)
        match = " OR ".join(_line_of(x) for x in sorted(t.text for t in texts[(svc, op)]))
        q = _op_lines_sql(
            ctx,
            svc,
            op,
            {
                "error_lines": f"count(l.body) FILTER (WHERE {match})",
                "calls_with_error": f"count(DISTINCT s.sk) FILTER (WHERE {match})",
            },
        )
        before, after = period_figures(ctx, q)
        cb, ca = before.get("calls", 0), after.get("calls", 0)
        eb, ea, kb = (
            before.get("error_lines", 0),
            after.get("error_lines", 0),
            before.get("calls_with_error", 0),
        )
        if cb < SILENT_MIN_CALLS or ca < SILENT_MIN_CALLS:
            continue
        expected = kb / cb * ca
        if kb < SILENT_MIN_BEFORE or kb < SILENT_MIN_SHARE * cb or expected < SILENT_MIN_EXPECTED:
            continue
        if ea > SILENT_KEPT * expected or (expected - ea) / math.sqrt(expected) < 2.0:
            continue
        summary = (
            f"{svc} {op} stopped logging errors: {eb} error lines on {kb} of {cb} calls before, {ea} in "
            f"{ca} calls in the window; a failure the baseline held ended (a recovery, not a fault)"
        )
        out.append(
            Finding(
                kind=NAME,
                service=svc,
                operation=op,
                summary=summary,
                evidence=Evidence(
                    before=before,
                    after=after,
                    sql=evidence_sql(ctx, q),
                    details={"recovered": True, "calls_with_error_before": kb},
                ),
            )
        )
    return out
