"""`DatasetSession.summary()`: what is in a dataset, in one small dict (for agents and `dcr`)."""

from __future__ import annotations

from typing import Any

__all__ = ["dataset_summary", "TOP_OPERATIONS"]

TOP_OPERATIONS = 10

_TOTALS = """
SELECT count(*), count(DISTINCT trace_id), count(*) FILTER (WHERE status_code = 'ERROR'),
       min(start_ns), max(end_ns)
FROM spans
"""
_SERVICES = """
SELECT service_name, count(*) AS spans, count(*) FILTER (WHERE status_code = 'ERROR') AS errors
FROM spans GROUP BY 1 ORDER BY spans DESC, service_name
"""
_OPERATIONS = """
SELECT service_name, name, count(*) AS spans, count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
       CAST(quantile_cont(duration_ns, 0.5) AS BIGINT), CAST(quantile_cont(duration_ns, 0.95) AS BIGINT)
FROM spans GROUP BY 1, 2 ORDER BY spans DESC, service_name, name LIMIT ?
"""


def dataset_summary(session: Any) -> dict[str, Any]:
    spans, traces, errors, start_ns, end_ns = session.fetch(_TOTALS)[0]
    (logs,) = session.fetch("SELECT count(*) FROM logs")[0]
    return {
        "dataset": session.name,
        "spans": spans,
        "traces": traces,
        "error_spans": errors,
        "logs": logs,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "services": [{"service": s, "spans": n, "error_spans": e} for s, n, e in session.fetch(_SERVICES)],
        "top_operations": [
            {"service": s, "operation": o, "spans": n, "error_spans": e, "p50_ns": p50, "p95_ns": p95}
            for s, o, n, e, p50, p95 in session.fetch(_OPERATIONS, [TOP_OPERATIONS])
        ],
    }
