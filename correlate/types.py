"""Typed results of `correlate/`: what escalation and the MCP tools consume.

Frozen dataclasses; `to_dict()` gives the JSON shape that `dcr … --json` prints.
Units are in the names (`_ns`). Times are int nanoseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "MECHANISMS",
    "Window",
    "Evidence",
    "Candidate",
    "Finding",
    "CorrelationReport",
    "SqlResult",
    "ExportResult",
    "TraceSpan",
    "CriticalSegment",
    "TraceView",
]

# The mechanism vocabulary (docs/correlate.md documents each one).
MECHANISMS = (
    "error_propagation",
    "dependency_failure",
    "latency_regression",
    "network_delay",
    "cpu_saturation",
    "code_path_change",
    "n_plus_one",
    "retry_storm",
    "timeout_cascade",
    "clock_skew",
    "lock_expiry",
    "queue_backlog",
    "deploy_regression",
)


class _Dict:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Window(_Dict):
    """A half-open time range [start_ns, end_ns)."""

    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class Evidence(_Dict):
    """Numbers that support a candidate or finding, and how to reproduce them."""

    before: dict[str, Any] = field(default_factory=dict)  # figures in the baseline window
    after: dict[str, Any] = field(default_factory=dict)  # figures in the analysed window
    trace_ids: tuple[str, ...] = ()  # example traces that show it
    span_ids: tuple[str, ...] = ()  # example spans that show it
    sql: str = ""  # a query over the views that reproduces the figures
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate(_Dict):
    service: str
    operation: str | None
    mechanism: str  # one of MECHANISMS
    score: float  # 0..1
    summary: str  # one sentence with the numbers
    evidence: Evidence
    analysis: str = ""  # the analysis module that produced it
    # how far to trust it as THE cause, apart from how strong its own change is (the score):
    # "high", "medium" or "low", from its score and how close the best other service comes
    # (correlate/ranking.py, CONFIDENCE_RULES; calibrated on real recorded faults)
    confidence: str = ""


@dataclass(frozen=True)
class Finding(_Dict):
    """A supporting observation that is not itself a root-cause candidate."""

    kind: str  # the analysis name, e.g. "service_graph_change"
    summary: str
    service: str | None = None
    operation: str | None = None
    evidence: Evidence = field(default_factory=Evidence)


@dataclass(frozen=True)
class CorrelationReport(_Dict):
    dataset: str
    window: Window
    baseline: Window | None  # None when there is no data before the window
    services: tuple[str, ...]  # the --service filter, empty for all
    candidates: tuple[Candidate, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()  # e.g. "no baseline: no data before the window"
    seconds: float = 0.0


@dataclass(frozen=True)
class SqlResult(_Dict):
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool  # True when more rows existed than the cap
    row_cap: int
    seconds: float = 0.0

    def pl(self) -> pl.DataFrame:
        """The (capped) rows as a polars DataFrame, column types inferred from the values.
        For typed results without a cap use `DatasetSession.polars(query)`."""
        import polars as pl

        return pl.DataFrame([list(r) for r in self.rows], schema=list(self.columns), orient="row",
                            infer_schema_length=None)


@dataclass(frozen=True)
class ExportResult(_Dict):
    """A query's whole result written to a file (`DatasetSession.export`)."""

    path: str
    format: str  # "parquet", "arrow" (IPC file) or "csv"
    rows: int
    bytes: int  # size of the file written
    seconds: float = 0.0


@dataclass(frozen=True)
class TraceSpan(_Dict):
    span_id: str
    parent_span_id: str | None
    service: str
    operation: str
    kind: str
    host: str | None
    start_ns: int  # after clock-skew adjustment
    end_ns: int
    duration_ns: int
    self_time_ns: int
    depth: int
    status_code: str
    status_message: str | None
    attributes: dict[str, Any]
    on_critical_path: bool
    skew_adjustment_ns: int = 0
    warnings: tuple[str, ...] = ()
    # CRISP's exclusive time on the critical path: the span's duration minus the durations of
    # its children on the path (0 when off the path). Sums per "[service] operation" are what
    # CRISP reports; `TraceView.critical_path` is the same path as a non-overlapping timeline.
    critical_path_ns: int = 0


@dataclass(frozen=True)
class CriticalSegment(_Dict):
    span_id: str
    service: str
    operation: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class TraceView(_Dict):
    trace_id: str
    spans: tuple[TraceSpan, ...]  # depth-first order, children by start time
    critical_path: tuple[CriticalSegment, ...]  # in time order
    warnings: tuple[str, ...]
    start_ns: int
    end_ns: int
