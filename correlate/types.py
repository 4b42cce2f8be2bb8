"""Typed results of `correlate/`: what escalation and the MCP tools consume.

Frozen dataclasses; `to_dict()` gives the JSON shape that `dcr … --json` prints.
Units are in the names (`_ns`). Times are int nanoseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

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
    "EXEMPLAR_ROLES",
    "ExemplarTrace",
    "EdgeFigures",
    "EdgeChange",
    "ServiceGraphChange",
    "LogTemplate",
    "LogTemplateCounts",
    "CodeLocation",
    "StackTrace",
    "PeriodActivity",
    "ServiceRequests",
    "ServiceActivity",
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
    # every subclass is a dataclass: this declaration (no value) tells the checker what asdict() needs
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

        return pl.DataFrame(
            [list(r) for r in self.rows], schema=list(self.columns), orient="row", infer_schema_length=None
        )


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


# Evidence for escalation (correlate/evidence.py): what the bundle shows beside the candidates.

# Why an exemplar trace was picked, in the order `DatasetSession.exemplar_traces` gives them.
EXEMPLAR_ROLES = ("slowest", "failing", "typical", "baseline_typical")


@dataclass(frozen=True)
class ExemplarTrace(_Dict):
    """A trace that shows a period: the window's slowest, its most erroring, and the ones nearest
    the median duration of the window and of the baseline among traces with the failing (else
    the slowest) trace's root."""

    trace_id: str
    role: str  # one of EXEMPLAR_ROLES
    sql: str  # the query that picked it (runs as it is with `dcr sql`)
    root: str = ""  # the trace's root: "service operation"
    start_ns: int = 0  # when the trace starts


@dataclass(frozen=True)
class EdgeFigures(_Dict):
    """Calls from one service to another during one period (the callee spans' figures)."""

    calls: int
    errors: int  # callee spans with status ERROR
    p95_ns: int | None  # 95th percentile of the callee spans' durations
    seconds: float  # the period's length

    @property
    def calls_per_s(self) -> float:
        return self.calls / max(1e-9, self.seconds)

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class EdgeChange(_Dict):
    """One caller -> callee edge in the window and in the baseline."""

    caller: str
    callee: str
    window: EdgeFigures | None  # None: no call in the window
    baseline: EdgeFigures | None  # None: no call in the baseline, or no baseline
    # "new" (called in the window only), "gone" (in the baseline only), "both", or "" when
    # there is no baseline to compare with
    status: str

    @property
    def calls_ratio(self) -> float | None:
        """Calls per second in the window over calls per second in the baseline."""
        if self.window is None or self.baseline is None:
            return None
        return self.window.calls_per_s / max(1e-9, self.baseline.calls_per_s)

    @property
    def error_rate_delta(self) -> float | None:
        if self.window is None or self.baseline is None:
            return None
        return self.window.error_rate - self.baseline.error_rate

    @property
    def p95_ratio(self) -> float | None:
        if self.window is None or self.baseline is None:
            return None
        return (self.window.p95_ns or 0) / max(1, self.baseline.p95_ns or 0)


@dataclass(frozen=True)
class ServiceGraphChange(_Dict):
    """Every caller -> callee edge between services with calls in the window or the baseline.

    An edge is a child span whose parent span is on another service (the `service_edges`
    view); a call belongs to the period its callee span starts in."""

    window: Window
    baseline: Window | None
    edges: tuple[EdgeChange, ...]  # by caller, callee
    sql: str  # the query behind the figures


@dataclass(frozen=True)
class LogTemplate(_Dict):
    """Log lines of one service and level that share a template (the log_templates analysis's
    Drain templates: numbers, ids and addresses masked), counted in the window and baseline."""

    service: str
    severity_number: int  # the records' own OTLP severity, else the one their text states; 0 unknown
    severity: str  # its name: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, or "" when unknown
    severity_inferred: bool  # read from the text: the records carried none
    template: str
    count: int  # lines in the window
    baseline_count: int  # lines in the baseline
    # the first line in the window that has it (all None when it is logged in the baseline only)
    trace_id: str | None = None
    span_id: str | None = None
    source_id: str | None = None
    first_ns: int | None = None  # its time
    # one real line of the template, as templated (after `redact`): the window's first, else the
    # baseline's first; and its time
    example: str | None = None
    example_ns: int | None = None
    # the lowest and highest number at each <NUM> of the template over its lines in the window
    # (the baseline when the window has none); empty when the lines do not line up with the template
    values: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class LogTemplateCounts(_Dict):
    """Log templates of the window and baseline, with exact counts (aggregated in SQL).

    Distinct texts are templated, the most frequent first, up to a cap; lines whose text is
    beyond it are counted in `lines` / `baseline_lines` but in no template: `untemplated` and
    `baseline_untemplated` say how many (0 unless `truncated`)."""

    window: Window
    baseline: Window | None
    templates: tuple[LogTemplate, ...]  # by severity (highest first), window count, service, template
    lines: int  # log lines with a text in the window
    baseline_lines: int
    untemplated: int
    baseline_untemplated: int
    texts: int  # distinct (service, period, text) groups
    texts_cap: int  # groups templated at most
    sql: str  # the query behind the counts

    @property
    def truncated(self) -> bool:
        return self.texts > self.texts_cap


@dataclass(frozen=True)
class CodeLocation(_Dict):
    """A place in the code that spans of a window name (`code.file.path` / `code.line.number`)."""

    path: str
    line: int | None
    function: str | None
    trace_id: str  # a span there: the earliest
    span_id: str
    error_spans: int
    spans: int


@dataclass(frozen=True)
class StackTrace(_Dict):
    """The `exception.stacktrace` of an exception event on a span."""

    trace_id: str
    span_id: str
    text: str


@dataclass(frozen=True)
class PeriodActivity(_Dict):
    """What happened in one period: spans, requests (root spans, spans whose parent is on
    another service, SERVER and CONSUMER spans) and traces; failed = status ERROR."""

    spans: int
    error_spans: int
    requests: int
    failed_requests: int
    traces: int  # traces with a span starting in the period


@dataclass(frozen=True)
class ServiceRequests(_Dict):
    """One service in the window and the baseline (None: no baseline)."""

    service: str
    window: PeriodActivity
    baseline: PeriodActivity | None


@dataclass(frozen=True)
class ServiceActivity(_Dict):
    """Spans, requests and traces per service in the window and the baseline
    (`correlate/evidence.py`, `service_activity`)."""

    window: Window
    baseline: Window | None
    total: PeriodActivity  # the window, all services
    baseline_total: PeriodActivity | None
    services: tuple[ServiceRequests, ...]  # by requests in the window, most first
    sql: str
