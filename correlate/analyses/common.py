"""What every analysis shares: its input (the context), its output, the working tables, scoring.

The engine materialises the spans of the analysed window and of its baseline ONCE, into a temp
table that every analysis reads (`ctx.s`): the columns of the `spans` view an analysis needs,
renamed short, plus what a span's neighbours tell about it:

    after          TRUE when the span's trace started in the analysed window, FALSE in the baseline
                   (a trace belongs to one period: the one its root starts in, else its earliest span)
    trace_id, span_id   the ids (text), and tk, sk, pk: hashes of trace, span and parent span ids
    service, op    service_name, name
    kind           the declared span kind, or where the input declared none (UNSPECIFIED), the
                   kind the tree implies (see `_inferred_kind`); kind_inferred says which
    err            status_code = 'ERROR'
    err_msg        status_message, else the exception message (erroring spans only)
    db_statement   CLIENT spans only
    p_service, p_op, p_kind, p_host, p_start_ns, p_end_ns, p_err   the parent span (NULL for roots)
    n_children, n_err_children
    self_ns        duration minus the union of its children's intervals (clipped to the span)
    remote_ns      for a CLIENT/PRODUCER span: the longest SERVER/CONSUMER child's duration
    remote_service and that child's service
    attrs          the attributes JSON, kept only for messaging spans and lock/lease operations

`working_sql()` is the text of that table over the views; evidence queries start with it, so
a reader can paste one into `dcr sql` and get the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from correlate.types import Candidate, Finding, Window

__all__ = [
    "SPANS_TABLE",
    "TRACES_TABLE",
    "AnalysisContext",
    "AnalysisResult",
    "working_sql",
    "traces_sql",
    "evidence_sql",
    "with_s",
    "lit",
    "rows",
    "one_row",
    "ratio_score",
    "rate_score",
    "confidence",
    "clamp01",
    "fmt_ms",
    "fmt_pct",
    "median_shift",
    "rank_shift",
    "ranked",
    "iso",
    "exemplars",
    "TraceTotals",
    "trace_totals",
    "service_totals",
    "new_code_path",
    "period_figures",
]

SPANS_TABLE = "dcr_work_spans"
TRACES_TABLE = "dcr_work_traces"


@dataclass(frozen=True)
class AnalysisContext:
    """What an analysis gets: a connection with the working tables, and the windows."""

    con: duckdb.DuckDBPyConnection
    window: Window
    baseline: Window | None
    sample_mod: int = 1  # traces kept: hash(trace_id) % sample_mod = 0 (1 keeps all)
    s: str = SPANS_TABLE
    t: str = TRACES_TABLE
    # seconds of each period that hold data (first to last request), when measured: a recording
    # that starts inside the baseline makes it shorter than asked, and rates must use what is there
    data_s: tuple[float, float] | None = None  # (baseline, window)
    has_status: bool = True  # some span of the periods carries an error status (else errors are unseen)

    @property
    def has_baseline(self) -> bool:
        return self.baseline is not None

    @property
    def window_s(self) -> float:
        asked = (self.window.end_ns - self.window.start_ns) / 1e9
        return max(1e-9, min(asked, self.data_s[1]) if self.data_s else asked)

    @property
    def baseline_s(self) -> float:
        if self.baseline is None:
            return 0.0
        asked = (self.baseline.end_ns - self.baseline.start_ns) / 1e9
        return max(1e-9, min(asked, self.data_s[0]) if self.data_s else asked)


@dataclass
class AnalysisResult:
    candidates: list[Candidate] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def lit(value: Any) -> str:
    """A SQL literal for a Python value (strings quoted, None as NULL)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _sample_pred(sample_mod: int, col: str = "trace_id") -> str:
    return "" if sample_mod <= 1 else f" AND hash({col}) % {sample_mod} = 0"


# Span kinds an input can declare; anything else (UNSPECIFIED, NULL) is inferred from the tree.
DECLARED_KINDS = "('CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER', 'INTERNAL')"
# a child that serves its parent's call: declared SERVER/CONSUMER, or kindless in another service
SERVED = "kind IN ('SERVER', 'CONSUMER') OR (kind IS NULL AND service <> p_service)"


def _inferred_kind(span: str, children: str) -> str:
    """The kind of a span whose input declared none, from where its parent and children run.

    A span whose children all run in other services is the client side of those calls (a
    stub that sends and waits; a root of that shape too, like a load generator's span); else
    a span called from another service (or a root: the entry point) is a server; else
    internal work. A leaf is never a client here: without
    attributes nothing says it called out (an uninstrumented peer looks like local work)."""
    return (
        f"CASE WHEN {children}.n_remote_children > 0 AND {children}.n_remote_children = {children}.n_children "
        f"THEN 'CLIENT' WHEN {span}.p_service IS NULL OR {span}.p_service <> {span}.service THEN 'SERVER' "
        "ELSE 'INTERNAL' END"
    )


def working_sql(window: Window, baseline: Window | None, sample_mod: int = 1) -> str:
    """The SELECT that defines the working span table, over the `spans` view.

    Joins run on 64-bit hashes of the ids (`tk` trace, `sk` span, `pk` parent span): much
    cheaper than 32-character strings; the id strings stay for exemplars."""
    lo = baseline.start_ns if baseline else window.start_ns
    base_pred = f"(start_ns >= {baseline.start_ns} AND start_ns < {baseline.end_ns})" if baseline else "FALSE"
    return f"""WITH raw AS MATERIALIZED (
  SELECT start_ns >= {window.start_ns} AS after, trace_id, span_id, hash(trace_id) AS tk, hash(span_id) AS sk,
         CASE WHEN parent_span_id IS NOT NULL THEN hash(parent_span_id) END AS pk,
         name AS op, CASE WHEN kind IN {DECLARED_KINDS} THEN kind END AS kind,
         coalesce(service_name, 'unknown_service') AS service, service_version AS version, host,
         start_ns, end_ns, end_ns - start_ns AS dur_ns, status_code = 'ERROR' AS err,
         CASE WHEN status_code = 'ERROR' THEN coalesce(status_message, exception_message) END AS err_msg,
         exception_type, http_route, http_status_code, db_system,
         CASE WHEN kind <> 'SERVER' THEN db_statement END AS db_statement, peer_service,
         messaging_system, messaging_destination, messaging_operation,
         CASE WHEN messaging_system IS NOT NULL OR kind IN ('PRODUCER', 'CONSUMER')
                   OR regexp_matches(name, '(?i)lock|lease|mutex') THEN attributes END AS attrs
  FROM spans
  WHERE start_ns >= {lo} AND start_ns < {window.end_ns}
    AND ((start_ns >= {window.start_ns} AND start_ns < {window.end_ns}) OR {base_pred}){_sample_pred(sample_mod)}
), j AS MATERIALIZED (
  SELECT c.*, p.service AS p_service, p.op AS p_op, p.kind AS p_kind, p.host AS p_host,
         p.start_ns AS p_start_ns, p.end_ns AS p_end_ns, p.err AS p_err
  FROM raw c LEFT JOIN (SELECT tk, sk, service, op, kind, host, start_ns, end_ns, err FROM raw) p
    ON p.tk = c.tk AND p.sk = c.pk
), covered AS (
  SELECT tk, pk AS sk, count(*) AS n_children, count(*) FILTER (WHERE err) AS n_err_children,
         count(*) FILTER (WHERE service <> p_service) AS n_remote_children,
         sum(greatest(0, ce - greatest(cs, coalesce(prev_end, cs)))) AS covered_ns,
         max(dur_ns) FILTER (WHERE {SERVED}) AS remote_ns,
         arg_max(service, dur_ns) FILTER (WHERE {SERVED}) AS remote_service
  FROM (SELECT tk, pk, err, kind, service, p_service, dur_ns, cs, ce,
               max(ce) OVER (PARTITION BY tk, pk ORDER BY cs, ce
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
        FROM (SELECT tk, pk, err, kind, service, p_service, dur_ns,
                     greatest(start_ns, p_start_ns) AS cs, least(end_ns, p_end_ns) AS ce
              FROM j WHERE p_start_ns IS NOT NULL))
  GROUP BY tk, pk
), tr AS (
  SELECT tk, coalesce(min(start_ns) FILTER (WHERE pk IS NULL), min(start_ns)) >= {window.start_ns} AS t_after
  FROM raw GROUP BY tk
)
SELECT * EXCLUDE (n_remote_children) REPLACE (
         CASE WHEN kind IN ('CLIENT', 'PRODUCER') THEN remote_ns END AS remote_ns,
         CASE WHEN kind IN ('CLIENT', 'PRODUCER') THEN remote_service END AS remote_service)
FROM (
  SELECT j.* REPLACE (tr.t_after AS after, coalesce(j.kind, {_inferred_kind("j", "v")}) AS kind,
                      coalesce(j.p_kind, CASE WHEN j.p_service <> j.service THEN 'CLIENT' END) AS p_kind),
         j.kind IS NULL AS kind_inferred,
         coalesce(v.n_children, 0) AS n_children, coalesce(v.n_err_children, 0) AS n_err_children,
         v.n_remote_children, j.dur_ns - coalesce(v.covered_ns, 0) AS self_ns, v.remote_ns, v.remote_service
  FROM j LEFT JOIN covered v ON v.tk = j.tk AND v.sk = j.sk JOIN tr ON tr.tk = j.tk
)"""


def traces_sql(spans: str) -> str:
    """One row a trace of the working table: its period, root, duration and error flag."""
    key = "CASE WHEN p_start_ns IS NULL THEN start_ns ELSE start_ns + 4000000000000000000 END"
    return f"""SELECT trace_id, arg_min(after, {key}) AS after, arg_min(service, {key}) AS root_service,
       arg_min(op, {key}) AS root_op, arg_min(err, {key}) AS root_err, bool_or(err) AS any_err,
       min(start_ns) AS start_ns, max(end_ns) - min(start_ns) AS dur_ns, count(*) AS n_spans
FROM {spans} GROUP BY trace_id"""


def evidence_sql(ctx: AnalysisContext, query: str) -> str:
    """A standalone query over the views: the working table as a CTE, then `query` over `s`."""
    return with_s(working_sql(ctx.window, ctx.baseline, ctx.sample_mod), query)


def with_s(definition: str, query: str) -> str:
    """`query` (which reads `s`, and may start with its own WITH) with `s` defined first."""
    head = f"WITH s AS (\n{definition}\n)"
    stripped = query.lstrip()
    if stripped[:5].upper() == "WITH ":
        return f"{head},\n{stripped[5:]}"
    return f"{head}\n{query}"


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """A query's rows as dicts."""
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    """The row of an aggregate query without GROUP BY (such a query has exactly one)."""
    row = con.execute(sql, params or []).fetchone()
    assert row is not None, "an aggregate query without GROUP BY returns one row"
    return row


def clamp01(x: float) -> float:
    if x != x:  # NaN
        return 0.0
    return max(0.0, min(1.0, x))


def confidence(n: float, half: float = 10.0) -> float:
    """How much `n` observations can be trusted: 0 for none, 0.5 at `half`, towards 1."""
    return clamp01(n / (n + half)) if n > 0 else 0.0


def ratio_score(before: float | None, after: float, floor: float) -> float:
    """How strongly `after` exceeds `before` (both >= 0): 0 when not larger, 0.5 at twice, 0.75 at 4x.

    `floor` is the smallest value that counts as a real quantity (so 0 -> 1 ns is not infinite).
    With no baseline (`before` None) the score is that of `after` against the floor, halved.
    """
    if before is None:
        return 0.5 * clamp01(1.0 - floor / max(after, floor)) if after > floor else 0.0
    b = max(before, floor)
    a = max(after, floor)
    if a <= b:
        return 0.0
    return clamp01(1.0 - b / a)


def rate_score(k_before: int, n_before: int, k_after: int, n_after: int) -> float:
    """How surely and how much a rate rose from k_before/n_before to k_after/n_after.

    The product of the effect (1 - before/after rate, with a +1 smoothing) and the significance
    of a two-proportion z-test (0 below z = 2, 1 from z = 5).
    """
    if n_after <= 0 or k_after <= 0:
        return 0.0
    pa = k_after / n_after
    if n_before <= 0:
        return 0.5 * clamp01(pa) * confidence(k_after)
    pb = k_before / n_before
    if pa <= pb:
        return 0.0
    p = (k_before + k_after) / (n_before + n_after)
    se = math.sqrt(max(p * (1 - p) * (1 / n_before + 1 / n_after), 1e-12))
    z = (pa - pb) / se
    effect = 1.0 - ((k_before + 1) / (n_before + 2)) / ((k_after + 1) / (n_after + 2))
    return clamp01(effect) * clamp01((z - 2.0) / 3.0)


def top_scored(
    groups: list[dict[str, Any]],
    score: Callable[[dict[str, Any]], float],
    key: Callable[[dict[str, Any]], tuple],
    limit: int,
    floor: float = 0.02,
) -> list[tuple[float, dict]]:
    """The `limit` best-scoring groups above `floor`, best first; ties broken by `key` (deterministic)."""
    scored = [(s, g) for g in groups if (s := score(g)) > floor]
    scored.sort(key=lambda x: (-x[0], *key(x[1])))
    return scored[:limit]


def median_shift(
    p50_b: float | None,
    p50_a: float | None,
    iqr_b: float | None,
    iqr_a: float | None,
    n_b: int,
    n_a: int,
    floor: float,
) -> float:
    """How surely a median rose: its shift in standard errors of a difference of medians (sigma
    from the wider of the two periods' IQR / 1.349), 0 below z = 2, 1 from z = 5."""
    if not n_b or not n_a or p50_a is None or p50_b is None:
        return 0.0
    sigma = max((iqr_b or 0.0) / 1.349, (iqr_a or 0.0) / 1.349, floor)
    se = 1.2533 * sigma * math.sqrt(1.0 / n_a + 1.0 / n_b)
    return clamp01(((p50_a - p50_b) / se - 2.0) / 3.0)


def ranked(rel: str, value: str, where: str = "", by: str = "service, op") -> str:
    """`rel`'s rows with `rk`: the mid-rank of `value` among the rows of the same `by` (both
    periods together), for a rank test."""
    return (
        f"SELECT *, rank() OVER (PARTITION BY {by} ORDER BY {value}) "
        f"+ (count(*) OVER (PARTITION BY {by}, {value}) - 1) / 2.0 AS rk FROM {rel} {where}"
    )


def rank_shift(rank_sum_a: float | None, n_b: int, n_a: int) -> float:
    """How surely the window's values rank above the baseline's (Mann-Whitney U from the sum of
    the window's mid-ranks, normal approximation): 0 below z = 2, 1 from z = 5. Works with tens
    of values and is blind to how far the slow ones are, so one wild outlier cannot carry it."""
    if rank_sum_a is None or not n_b or not n_a:
        return 0.0
    u = float(rank_sum_a) - n_a * (n_a + 1) / 2.0
    sd = math.sqrt(n_a * n_b * (n_a + n_b + 1) / 12.0)
    return clamp01(((u - n_a * n_b / 2.0) / sd - 2.0) / 3.0)


def fmt_ms(ns: float | None) -> str:
    if ns is None:
        return "n/a"
    ms = ns / 1e6
    if abs(ms) >= 100:
        return f"{ms:.0f} ms"
    if abs(ms) >= 1:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def exemplars(
    ctx: AnalysisContext, where: str, order: str = "start_ns", limit: int = 3
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Up to `limit` example (trace ids, span ids) of working spans matching `where`."""
    got = ctx.con.execute(
        f"SELECT trace_id, span_id FROM {ctx.s} WHERE {where} ORDER BY {order}, start_ns, span_id LIMIT {int(limit)}"
    ).fetchall()
    traces = tuple(dict.fromkeys(r[0] for r in got))
    return traces, tuple(r[1] for r in got)


def period_figures(ctx: AnalysisContext, query: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs `query` over the working table (aliased `s`); it must return a `period` column
    ('before'/'after') and figures. Returns (before, after) dicts without the period."""
    got = rows(ctx.con, with_s(f"SELECT * FROM {ctx.s}", query))
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for r in got:
        period = r.pop("period")
        (after if period == "after" else before).update({k: _plain(v) for k, v in r.items()})
    return before, after


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if hasattr(v, "item"):  # numpy / decimal-like scalars
        return v.item()
    return v


@dataclass(frozen=True)
class TraceTotals:
    """Requests (traces) per period and their mean duration."""

    n_before: int
    n_after: int
    mean_dur_before_ns: float | None
    mean_dur_after_ns: float | None
    median_dur_before_ns: float | None = None


def trace_totals(ctx: AnalysisContext) -> TraceTotals:
    r = one_row(
        ctx.con,
        f"""SELECT count(*) FILTER (WHERE NOT after), count(*) FILTER (WHERE after),
                   avg(dur_ns) FILTER (WHERE NOT after), avg(dur_ns) FILTER (WHERE after)
            FROM {ctx.t}""",
    )
    return TraceTotals(int(r[0]), int(r[1]), r[2], r[3])


def iso(ns: int | None) -> str:
    """Epoch nanoseconds as ISO-8601 UTC with milliseconds."""
    if ns is None:
        return "n/a"
    from datetime import UTC, datetime

    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ns % 1_000_000_000) // 1_000_000:03d}Z"


def service_totals(ctx: AnalysisContext) -> dict[str, TraceTotals]:
    """Per service, the requests (traces) that touch it, per period, and their mean duration:
    the scale against which a change in that service is weighed."""
    got = ctx.con.execute(
        f"""SELECT x.service, count(*) FILTER (WHERE NOT t.after), count(*) FILTER (WHERE t.after),
                   avg(t.dur_ns) FILTER (WHERE NOT t.after), avg(t.dur_ns) FILTER (WHERE t.after),
                   median(t.dur_ns) FILTER (WHERE NOT t.after)
            FROM (SELECT DISTINCT trace_id, service FROM {ctx.s}) x JOIN {ctx.t} t USING (trace_id)
            GROUP BY x.service"""
    ).fetchall()
    return {r[0]: TraceTotals(int(r[1]), int(r[2]), r[3], r[4], r[5]) for r in got}


def new_code_path(ctx: AnalysisContext, service: str, op: str) -> tuple[float, str | None]:
    """For the window's spans of (service, op): the share that run under a parent operation that
    never ran in the baseline, and the service that now calls that new operation (the one that
    changed: old code that only runs because someone new calls it is not the cause)."""
    if not ctx.has_baseline:
        return 0.0, None
    got = one_row(
        ctx.con,
        f"""WITH par AS (SELECT service, op, count(*) FILTER (WHERE NOT after) AS n_b FROM {ctx.s} GROUP BY ALL),
            mine AS (SELECT s.p_service, s.p_op, par.n_b = 0 AS new_parent
                     FROM {ctx.s} s JOIN par ON par.service = s.p_service AND par.op = s.p_op
                     WHERE s.after AND s.service = ? AND s.op = ?)
            SELECT avg(new_parent::INT), mode(p_service ORDER BY p_service) FILTER (WHERE new_parent),
                   mode(p_op ORDER BY p_op) FILTER (WHERE new_parent) FROM mine""",
        [service, op],
    )
    share = float(got[0] or 0.0)
    if share == 0.0:
        return 0.0, None
    parent_service, parent_op = got[1], got[2]
    caller = ctx.con.execute(
        f"""SELECT p_service FROM {ctx.s} WHERE after AND service = ? AND op = ? AND p_service <> service
            GROUP BY p_service ORDER BY count(*) DESC, p_service LIMIT 1""",
        [parent_service, parent_op],
    ).fetchone()
    if caller is None and parent_service != service:
        return share, parent_service
    return share, caller[0] if caller else None
