"""What a picture of an incident needs beyond the ranked candidates: the service map of both
periods, a pair of example traces for the top candidate, and the duration samples of the
operations the candidates name.

Every function takes an open `DatasetSession` and the window and baseline a `CorrelationReport`
used, so the pictures show the same periods the ranking compared. Durations are those of the
spans as recorded (no clock-skew adjustment; the waterfall uses `DatasetSession.trace`, which does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from correlate.types import CorrelationReport, Window

if TYPE_CHECKING:
    from correlate.session import DatasetSession

__all__ = [
    "MapNode",
    "MapEdge",
    "ServiceMap",
    "ExamplePair",
    "Durations",
    "service_map",
    "example_pair",
    "operation_durations",
    "MAX_DURATION_SAMPLES",
]

MAX_DURATION_SAMPLES = 4000  # per operation and period: an ECDF needs no more
PARENT_SLACK_NS = 600 * 1_000_000_000  # a parent may start this long before its child's period


@dataclass(frozen=True)
class MapNode:
    """One service, with its own spans' figures in each period (None: absent from that period)."""

    service: str
    spans_b: int
    spans_a: int
    errors_b: int
    errors_a: int
    p95_b_ns: float | None
    p95_a_ns: float | None


@dataclass(frozen=True)
class MapEdge:
    """Calls from one service to another (a parent span on `caller` whose child is on `callee`);
    p95 is of the callee's spans on that edge."""

    caller: str
    callee: str
    calls_b: int
    calls_a: int
    errors_b: int
    errors_a: int
    p95_b_ns: float | None
    p95_a_ns: float | None


@dataclass(frozen=True)
class ServiceMap:
    window: Window
    baseline: Window | None
    nodes: tuple[MapNode, ...]
    edges: tuple[MapEdge, ...]


@dataclass(frozen=True)
class ExamplePair:
    """A trace from the window that shows the candidate and, when one exists, a baseline trace
    with the same root operation; `note` says why there is no baseline trace."""

    root_service: str | None
    root_operation: str | None
    window_trace_id: str | None
    baseline_trace_id: str | None
    note: str = ""


@dataclass(frozen=True)
class Durations:
    service: str
    operation: str
    baseline_ns: tuple[int, ...]
    window_ns: tuple[int, ...]
    sampled: bool = False  # True when a period held more spans than MAX_DURATION_SAMPLES
    counts: dict[str, int] = field(default_factory=dict)  # spans per period before sampling


def _periods(report: CorrelationReport) -> tuple[int, int, str]:
    """(lo, hi, SQL expression naming the period of a span start `x`: 'a', 'b' or NULL)."""
    w, b = report.window, report.baseline
    lo = b.start_ns if b is not None else w.start_ns
    hi = w.end_ns
    base = f"WHEN x >= {b.start_ns} AND x < {b.end_ns} THEN 'b' " if b is not None else ""
    return lo, hi, f"CASE WHEN x >= {w.start_ns} AND x < {w.end_ns} THEN 'a' {base}END"


def _map_node(service: str, per: dict[str, tuple[int, int, float | None]]) -> MapNode:
    """A node from its (spans, errors, p95) per period ("b", "a"): zeros where it is absent."""
    (spans_b, errors_b, p95_b), (spans_a, errors_a, p95_a) = (
        per.get("b", (0, 0, None)),
        per.get("a", (0, 0, None)),
    )
    return MapNode(service, spans_b, spans_a, errors_b, errors_a, p95_b, p95_a)


def service_map(session: DatasetSession, report: CorrelationReport) -> ServiceMap:
    """Services and the calls between them in the report's window and baseline. A service seen
    in only one period stays on the map with zeros in the other. Edges are the session's
    `service_graph_change` (the figures the evidence bundle shows); a node's p95 is of the spans
    it serves (a root, or a parent on another service)."""
    lo, hi, period = _periods(report)
    rows = session.fetch(
        f"""WITH c AS (
              SELECT trace_id, parent_span_id, service_name, duration_ns,
                     status_code = 'ERROR' AS err, {period.replace("x", "start_ns")} AS period
              FROM spans WHERE start_ns >= ? AND start_ns < ? AND service_name IS NOT NULL),
            p AS (SELECT trace_id, span_id, service_name FROM spans
                  WHERE start_ns >= ? AND start_ns < ? AND service_name IS NOT NULL)
            SELECT c.service_name, c.period, count(*), count(*) FILTER (WHERE c.err),
                   quantile_cont(c.duration_ns, 0.95) FILTER (WHERE p.service_name IS DISTINCT FROM c.service_name)
            FROM c LEFT JOIN p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
            WHERE c.period IS NOT NULL GROUP BY ALL""",
        [lo, hi, lo - PARENT_SLACK_NS, hi],
    )
    nodes: dict[str, dict[str, tuple[int, int, float | None]]] = {}
    for svc, per, n, errs, p95 in rows:
        nodes.setdefault(svc, {})[per] = (int(n), int(errs), None if p95 is None else float(p95))
    edges = []
    for e in session.service_graph_change(report.window, report.baseline).edges:
        b, a = e.baseline, e.window
        edges.append(
            MapEdge(
                e.caller,
                e.callee,
                b.calls if b else 0,
                a.calls if a else 0,
                b.errors if b else 0,
                a.errors if a else 0,
                None if b is None or b.p95_ns is None else float(b.p95_ns),
                None if a is None or a.p95_ns is None else float(a.p95_ns),
            )
        )
    return ServiceMap(
        window=report.window,
        baseline=report.baseline,
        nodes=tuple(_map_node(svc, per) for svc, per in sorted(nodes.items())),
        edges=tuple(edges),
    )


def example_pair(
    session: DatasetSession, report: CorrelationReport, trace_id: str | None = None
) -> ExamplePair:
    """The top candidate's first example trace (or `trace_id`) and the baseline trace of the same
    root operation whose duration is nearest that root operation's baseline median."""
    if trace_id is None:
        for c in report.candidates:
            if c.evidence.trace_ids:
                trace_id = c.evidence.trace_ids[0]
                break
    if trace_id is None:
        return ExamplePair(None, None, None, None, "no candidate names an example trace")
    root = session.fetch(
        "SELECT service_name, name FROM spans WHERE trace_id = ? "
        "ORDER BY (parent_span_id IS NULL OR parent_span_id = '') DESC, start_ns LIMIT 1",
        [trace_id],
    )
    if not root:
        return ExamplePair(None, None, trace_id, None, f"trace {trace_id} has no spans in the dataset")
    svc, op = root[0]
    b = report.baseline
    if b is None:
        return ExamplePair(svc, op, trace_id, None, "no baseline: nothing to compare the trace with")
    got = session.fetch(
        """WITH r AS (SELECT trace_id, duration_ns FROM spans
                      WHERE start_ns >= ? AND start_ns < ? AND service_name = ? AND name = ?
                        AND (parent_span_id IS NULL OR parent_span_id = ''))
           SELECT trace_id FROM r
           ORDER BY abs(duration_ns - (SELECT median(duration_ns) FROM r)), trace_id LIMIT 1""",
        [b.start_ns, b.end_ns, svc, op],
    )
    if not got:
        return ExamplePair(
            svc,
            op,
            trace_id,
            None,
            f"no trace in the baseline starts with {svc} {op}: nothing to compare with",
        )
    return ExamplePair(svc, op, trace_id, got[0][0])


def operation_durations(
    session: DatasetSession, report: CorrelationReport, pairs: Sequence[tuple[str, str]]
) -> list[Durations]:
    """Span durations of each (service, operation) in the baseline and the window, at most
    MAX_DURATION_SAMPLES a period (an even sample by hash of the span id when there are more)."""
    lo, hi, period = _periods(report)
    out = []
    for svc, op in pairs:
        rows = session.fetch(
            f"""WITH d AS (SELECT duration_ns, {period.replace("x", "start_ns")} AS period,
                                  row_number() OVER (PARTITION BY {period.replace("x", "start_ns")}
                                                     ORDER BY hash(span_id)) AS k,
                                  count(*) OVER (PARTITION BY {period.replace("x", "start_ns")}) AS n
                           FROM spans WHERE start_ns >= ? AND start_ns < ? AND service_name = ? AND name = ?)
                SELECT period, duration_ns, n FROM d WHERE period IS NOT NULL AND k <= ?""",
            [lo, hi, svc, op, MAX_DURATION_SAMPLES],
        )
        per: dict[str, list[int]] = {"a": [], "b": []}
        counts = {"a": 0, "b": 0}
        for p, d, n in rows:
            per[p].append(int(d))
            counts[p] = int(n)
        out.append(
            Durations(
                svc,
                op,
                tuple(sorted(per["b"])),
                tuple(sorted(per["a"])),
                sampled=any(counts[p] > len(per[p]) for p in per),
                counts={"baseline": counts["b"], "window": counts["a"]},
            )
        )
    return out
