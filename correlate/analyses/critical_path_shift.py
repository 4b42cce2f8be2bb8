"""Critical-path contribution per service and operation, before vs after, on sampled traces.

The critical path (CRISP, as `dcr trace` computes it: skew-adjusted, overflowing children
trimmed, walked from the last-finishing child) is a per-trace walk, so it
runs on a deterministic sample of SAMPLE_TRACES traces per period (by trace id hash), never
over the whole window. The exclusive time each (service, operation) holds on the path, per
request, is compared between the periods: the operations that gained the most path time are
what the requests now wait for. Findings only: latency attribution names the candidates.
"""

from __future__ import annotations

from collections import defaultdict

from correlate.analyses.common import AnalysisContext, AnalysisResult, fmt_ms
from correlate.clock_skew import adjust_clock_skew
from correlate.critical_path import critical_path
from correlate.trace_tree import build_tree
from correlate.trace_view import records_from_rows
from correlate.types import Evidence, Finding

__all__ = ["NAME", "find_critical_path_shifts", "SAMPLE_TRACES", "path_time_by_operation"]

NAME = "critical_path_shift"
SAMPLE_TRACES = 200
MAX_FINDINGS = 3
MIN_GAIN = 0.10  # of the baseline's mean critical path
# the columns `records_from_rows` reads, from the working table (ids as their hashes, which is
# all a tree needs; no attributes or links: FOLLOWS_FROM references are not in the working table)
_COLS = (
    "sk::VARCHAR",
    "pk::VARCHAR",
    "service",
    "op",
    "kind",
    "host",
    "start_ns",
    "end_ns",
    "CASE WHEN err THEN 'ERROR' ELSE 'UNSET' END",
    "err_msg",
    "NULL",
    "NULL",
    "exception_type",
    "NULL",
)


def path_time_by_operation(span_rows: list[tuple]) -> dict[tuple[str, str], int]:
    """(service, operation) -> exclusive critical-path ns in one trace (rows in `_COLS` order)."""
    tree = build_tree(records_from_rows(span_rows))
    skew = adjust_clock_skew(tree)
    cp = critical_path(tree, skew.spans)
    out: dict[tuple[str, str], int] = defaultdict(int)
    for sid, ns in cp.exclusive_ns.items():
        rec = skew.spans.get(sid)
        if rec is not None:
            out[(rec.service, rec.operation)] += ns
    return out


def _sample(ctx: AnalysisContext, after: bool) -> dict[str, list[tuple]]:
    got = ctx.con.execute(
        f"""WITH pick AS (SELECT trace_id FROM {ctx.t} WHERE after = ? ORDER BY hash(trace_id), trace_id
                          LIMIT {SAMPLE_TRACES})
            SELECT trace_id, {", ".join(_COLS)} FROM {ctx.s}
            WHERE trace_id IN (SELECT trace_id FROM pick)
            ORDER BY trace_id, start_ns, sk""",
        [after],
    ).fetchall()
    traces: dict[str, list[tuple]] = defaultdict(list)
    for r in got:
        traces[r[0]].append(r[1:])
    return traces


def _per_request(traces: dict[str, list[tuple]]) -> tuple[dict[tuple[str, str], float], float]:
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for span_rows in traces.values():
        for key, ns in path_time_by_operation(span_rows).items():
            totals[key] += ns
    n = max(len(traces), 1)
    per = {k: v / n for k, v in totals.items()}
    return per, sum(per.values())


def find_critical_path_shifts(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    if not ctx.has_baseline:
        return out
    before_traces, after_traces = _sample(ctx, False), _sample(ctx, True)
    if not before_traces or not after_traces:
        return out
    before, path_b = _per_request(before_traces)
    after, path_a = _per_request(after_traces)
    gains = sorted(
        ((after.get(k, 0.0) - before.get(k, 0.0), k) for k in set(before) | set(after)),
        key=lambda x: (-x[0], x[1]),
    )
    for gain, (svc, op) in gains[:MAX_FINDINGS]:
        if gain < MIN_GAIN * max(path_b, 1.0):
            break
        out.findings.append(
            Finding(
                kind=NAME,
                service=svc,
                operation=op,
                summary=(
                    f"{svc} {op} holds {fmt_ms(before.get((svc, op), 0.0))} -> {fmt_ms(after.get((svc, op), 0.0))} "
                    f"of a request's critical path (of {fmt_ms(path_b)} -> {fmt_ms(path_a)}; "
                    f"{len(before_traces)} and {len(after_traces)} sampled requests)"
                ),
                evidence=Evidence(
                    before={
                        "critical_path_ns_per_request": round(before.get((svc, op), 0.0)),
                        "path_ns_per_request": round(path_b),
                        "sampled_requests": len(before_traces),
                    },
                    after={
                        "critical_path_ns_per_request": round(after.get((svc, op), 0.0)),
                        "path_ns_per_request": round(path_a),
                        "sampled_requests": len(after_traces),
                    },
                    trace_ids=tuple(sorted(after_traces)[:3]),
                ),
            )
        )
    return out
