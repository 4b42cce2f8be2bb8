"""correlate: a read-only DuckDB session over a dataset, trace anatomy, and root-cause analyses.

    from correlate import open_dataset
    with open_dataset("checkout") as ds:
        ds.sql("SELECT service_name, count(*) FROM spans GROUP BY 1")   # SqlResult
        ds.trace("4bf92f3577b34da6a3ce929d0e0e4736")                   # TraceView
        ds.correlate()                                                  # CorrelationReport
        ds.scan("spans")                                                # polars LazyFrame
        ds.arrow("SELECT …") / ds.polars("SELECT …")                    # no row cap, streamed
        ds.export("SELECT …", "out.parquet")                            # the same into a file
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
    CorrelationReport,
    CriticalSegment,
    Evidence,
    ExportResult,
    Finding,
    SqlResult,
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
]
