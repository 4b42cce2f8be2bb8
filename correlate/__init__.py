"""correlate: a read-only DuckDB session over a dataset, trace anatomy, and root-cause analyses.

from correlate import open_dataset
with open_dataset("checkout") as ds:
    ds.sql("SELECT service_name, count(*) FROM spans GROUP BY 1")   # SqlResult
    ds.trace("4bf92f3577b34da6a3ce929d0e0e4736")                   # TraceView
    ds.correlate()                                                  # CorrelationReport
    ds.scan("spans")                                                # polars LazyFrame
    ds.arrow("SELECT …") / ds.polars("SELECT …")                    # no row cap, streamed
    ds.export("SELECT …", "out.parquet")                            # the same into a file
    ds.log_template_counts(window, baseline)                        # evidence for escalation:
    ds.service_graph_change(window, baseline)                       #   correlate/evidence.py
    ds.exemplar_traces(window, baseline)
"""

from correlate.errors import (
    CorrelateError,
    DatasetNotFound,
    DatasetUnusable,
    QueryCancelled,
    QueryTimeout,
    SqlError,
    TraceNotFound,
)
from correlate.session import DatasetSession, open_dataset
from correlate.types import (
    Candidate,
    CodeLocation,
    CorrelationReport,
    CriticalSegment,
    EdgeChange,
    EdgeFigures,
    Evidence,
    ExemplarTrace,
    ExportResult,
    Finding,
    LogTemplate,
    LogTemplateCounts,
    ServiceGraphChange,
    SqlResult,
    StackTrace,
    TraceSpan,
    TraceView,
    Window,
)

__all__ = [
    "open_dataset",
    "DatasetSession",
    "CorrelateError",
    "DatasetNotFound",
    "DatasetUnusable",
    "SqlError",
    "QueryTimeout",
    "QueryCancelled",
    "TraceNotFound",
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
    "ExemplarTrace",
    "EdgeFigures",
    "EdgeChange",
    "ServiceGraphChange",
    "LogTemplate",
    "LogTemplateCounts",
    "CodeLocation",
    "StackTrace",
]
