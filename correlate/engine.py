"""Ranked root-cause candidates for a window of a dataset: `run_correlation`.

    resolve the window (default: the whole dataset) and the baseline (default: an equal span
    right before the window, or none when the dataset starts at the window)
      -> materialise the working tables once (spans of both periods, with parent and children
         figures; one row a trace), sampling whole traces when there are too many spans
      -> run every standard analysis (correlate/analyses/__init__.py, in order)
      -> rank (correlate/ranking.py), name the replica that carries a top candidate's change
         (correlate/analyses/replicas.py), keep the --service filter, drop the working tables

An analysis that fails does not sink the report: its failure becomes a note.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Protocol

from correlate.analyses import STANDARD_ANALYSES
from correlate.analyses.common import SPANS_TABLE, TRACES_TABLE, AnalysisContext, traces_sql, working_sql
from correlate.analyses.replicas import name_replicas
from correlate.errors import CorrelateError, map_duckdb_error
from correlate.ranking import rank
from correlate.types import Candidate, CorrelationReport, Finding, Window

__all__ = [
    "run_correlation",
    "MAX_WORKING_SPANS",
    "resolve_windows",
    "materialise",
    "drop_working",
    "pull_notes",
]

# Spans the working table holds at most; beyond it whole traces are sampled (rates stay
# unbiased, the evidence SQL carries the same sample predicate). Sized so that correlating 10M
# spans stays within the session's 1 GB DuckDB memory limit and takes seconds on a loaded 2-core
# machine (the time: docs/benchmarks.md, "Queries and correlation"); half a million spans is still
# tens of thousands of requests a period.
MAX_WORKING_SPANS = 500_000

NOTE_NO_BASELINE = "no baseline: the dataset has no data before the window, so figures are not compared"
NOTE_NO_SPANS = "no spans in the window"


class _Session(Protocol):
    name: str
    con: Any
    handle: Any


def resolve_windows(
    time_range: tuple[int | None, int | None], window: Window | None, baseline: Window | None
) -> tuple[Window | None, Window | None, list[str]]:
    """The analysed window and baseline, and notes saying what was assumed."""
    notes: list[str] = []
    ds_start, ds_end = time_range
    if window is None:
        if ds_start is None or ds_end is None:
            return None, None, [NOTE_NO_SPANS]
        window = Window(ds_start, ds_end + 1)
    if window.end_ns <= window.start_ns:
        raise CorrelateError("the window ends before it starts: give an end after the start")
    if baseline is not None:
        if baseline.end_ns <= baseline.start_ns:
            raise CorrelateError("the baseline ends before it starts: give a baseline end after its start")
        if baseline.end_ns > window.start_ns:
            raise CorrelateError("the baseline overlaps the window: end it at or before the window's start")
        return window, baseline, notes
    if ds_start is None or ds_start >= window.start_ns:
        return window, None, [NOTE_NO_BASELINE]
    span = window.end_ns - window.start_ns
    baseline = Window(max(window.start_ns - span, ds_start), window.start_ns)
    if baseline.start_ns - (window.start_ns - span) > span // 100:  # more than 1% short
        notes.append("the baseline is shorter than the window: the dataset starts inside it")
    return window, baseline, notes


def run_correlation(
    session: _Session, window: Window | None, baseline: Window | None, services: Sequence[str]
) -> CorrelationReport:
    started = time.monotonic()
    services = tuple(services)
    win, base, notes = resolve_windows(session.handle.time_range, window, baseline)
    notes = pull_notes(session.handle.manifest) + notes
    if win is None:
        empty = Window(0, 0)
        return CorrelationReport(session.name, empty, None, services, (), (), tuple(notes), 0.0)
    con = session.con.cursor()
    try:
        try:
            ctx, more = materialise(con, win, base)
        except CorrelateError:
            raise
        except Exception as exc:  # duckdb errors are mapped where they enter
            raise map_duckdb_error(exc, "") from None
        notes.extend(more)
        candidates: list[Candidate] = []
        findings: list[Finding] = []
        if not ctx:
            notes.append(NOTE_NO_SPANS)
        else:
            for name, analyse in STANDARD_ANALYSES:
                try:
                    result = analyse(ctx)
                except Exception as exc:  # an analysis never sinks the report
                    notes.append(f"analysis {name} failed: {str(exc).splitlines()[0][:200]}")
                    continue
                candidates.extend(result.candidates)
                findings.extend(result.findings)
        ranked, findings = rank(candidates, findings, has_baseline=base is not None)
        if ctx:
            try:
                ranked = name_replicas(ctx, ranked)
            except Exception as exc:  # naming a replica is a refinement: never sinks the report
                notes.append(f"replicas could not be compared: {str(exc).splitlines()[0][:200]}")
        notes.extend(f.summary for f in findings if f.kind == "onset")
    finally:
        drop_working(con)
        con.close()
    if services:
        keep = set(services)
        ranked = [c for c in ranked if c.service in keep]
        findings = [f for f in findings if f.service is None or f.service in keep]
    return CorrelationReport(
        dataset=session.name,
        window=win,
        baseline=base,
        services=services,
        candidates=tuple(ranked),
        findings=tuple(findings),
        notes=tuple(notes),
        seconds=round(time.monotonic() - started, 3),
    )


def pull_notes(manifest: dict[str, Any]) -> list[str]:
    """What the dataset's store pulls left out, from its manifest (ingest/stores): the traces a
    pull sampled in the store's query, and a pull stopped at its cap. Every report says it."""
    notes = []
    for src in manifest.get("sources", []):
        store = src.get("store") or {}
        sampling = store.get("sampling")
        if sampling:
            notes.append(
                f"{src.get('path')} was sampled when pulled: {sampling.get('what')} of "
                f"{sampling.get('spans_in_range'):,} spans in range ({sampling.get('predicate')}); "
                "counts and rates are of that sample"
            )
        if (store.get("cap") or {}).get("reached"):
            notes.append(
                f"the pull of {src.get('path')} stopped at its cap of {store['cap'].get('max_records'):,} "
                "records: the dataset may lack traces of that range"
            )
    return notes


def drop_working(con: Any) -> None:
    """Drop the working tables (temp tables: they belong to this cursor's connection only)."""
    for table in (SPANS_TABLE, TRACES_TABLE):
        try:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        except Exception:  # a broken connection goes away with its temp tables anyway
            pass


def materialise(con: Any, win: Window, base: Window | None) -> tuple[AnalysisContext | None, list[str]]:
    """Create the working tables on `con` (a cursor of the session); the context the analyses
    get, or None when the window has no spans; and notes (sampling)."""
    notes: list[str] = []
    periods = [win] + ([base] if base else [])
    n = sum(
        con.execute(
            "SELECT count(*) FROM spans WHERE start_ns >= ? AND start_ns < ?", [p.start_ns, p.end_ns]
        ).fetchone()[0]
        for p in periods
    )
    if not n:
        return None, notes
    sample_mod = max(1, math.ceil(n / MAX_WORKING_SPANS))
    if sample_mod > 1:
        where = "the window and baseline" if base else "the window"
        notes.append(
            f"{n} spans in {where}: analysed one trace in {sample_mod} "
            "(whole traces; the evidence SQL carries the same sample predicate)"
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {SPANS_TABLE} AS {working_sql(win, base, sample_mod)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TRACES_TABLE} AS {traces_sql(SPANS_TABLE)}")
    n_b, n_a, first_b, first_a, last_a = con.execute(
        f"""SELECT count(*) FILTER (WHERE NOT after), count(*) FILTER (WHERE after),
                   min(start_ns) FILTER (WHERE NOT after), min(start_ns) FILTER (WHERE after),
                   max(start_ns) FILTER (WHERE after) FROM {TRACES_TABLE}"""
    ).fetchone()
    if not n_a:
        return None, notes
    # a period holds data from its first request to its end (the baseline) or its last request
    # (the window); at least a second, so one request is not an infinite rate
    data_b = max(1.0, (win.start_ns - first_b) / 1e9) if first_b is not None else 0.0
    data_a = max(1.0, (last_a - first_a) / 1e9)
    if base is not None:
        asked_b = (base.end_ns - base.start_ns) / 1e9
        notes.extend(_thin_baseline_notes(int(n_b), data_b, asked_b))
    has_status, more = _what_the_data_lacks(con, win, base)
    notes.extend(more)
    ctx = AnalysisContext(
        con=con,
        window=win,
        baseline=base,
        sample_mod=sample_mod,
        data_s=(data_b, data_a),
        has_status=has_status,
    )
    return ctx, notes


def _what_the_data_lacks(con: Any, win: Window, base: Window | None) -> tuple[bool, list[str]]:
    """Whether any span of the periods carries a status; and notes naming what the input did not
    have (kinds, statuses, attributes, log severities), so a reader knows which evidence was
    inferred and which analyses had nothing to work with."""
    lo = base.start_ns if base else win.start_ns
    # EXISTS stops at the first span with attributes: rich telemetry pays one row, not a column scan
    n, inferred, status, attrs = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE kind_inferred), count(*) FILTER (WHERE err OR err_msg IS NOT NULL),
                   EXISTS (SELECT 1 FROM spans WHERE start_ns >= {lo} AND start_ns < {win.end_ns}
                             AND attributes IS NOT NULL AND attributes NOT IN ('', '{{}}'))
            FROM {SPANS_TABLE}"""
    ).fetchone()
    notes = []
    if n and inferred:
        notes.append(
            f"span kinds: {100 * inferred / n:.0f}% of spans declared none; client/server inferred from "
            "the call tree (a child in another service is the server of its parent's call)"
        )
    if n and not status:
        notes.append(
            "no span carries an error status: errors were read from logs and from the shape of the "
            "call tree only"
        )
    if n and not attrs:
        notes.append(
            "no span carries attributes: analyses that read them (db statements, peers, messaging, "
            "attribute contrasts) had nothing to use"
        )
    logs, unlevelled = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE coalesce(severity_number, 0) = 0) FROM logs
            WHERE time_ns >= {lo} AND time_ns < {win.end_ns}"""
    ).fetchone()
    if logs and unlevelled:
        notes.append(
            f"log severity: {100 * unlevelled / logs:.0f}% of log records carry none; their level was "
            "read from the text"
        )
    return bool(status), notes


THIN_BASELINE_REQUESTS = 30  # fewer requests than this: medians and rates before are rough


def _thin_baseline_notes(n_requests: int, data_s: float, asked_s: float) -> list[str]:
    """What to say about a baseline that holds little: how many requests, over how long."""
    notes = []
    if n_requests < THIN_BASELINE_REQUESTS:
        notes.append(
            f"thin baseline: {n_requests} request{'s' if n_requests != 1 else ''} before the window "
            f"(over {data_s:.0f} s); figures before are rough, medians and rank tests were used"
        )
    if n_requests and data_s < 0.9 * asked_s:
        notes.append(
            f"the baseline holds data for {data_s:.0f} s of the {asked_s:.0f} s asked: rates use the "
            "time that holds data"
        )
    return notes
