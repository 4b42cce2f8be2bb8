"""MCP resources: `dataset://{name}` (the manifest summary) and `dataset://{name}/schema`.

Both are JSON. An unknown dataset is a resource-not-found error whose message lists the
known datasets; the packages' other errors are resource errors, worded as for a tool
(`mcp_server/errors.py`).
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from mcp_server.errors import tool_message

__all__ = ["register", "dataset_summary", "dataset_schema"]

_VIEW_NOTES = {
    "spans": "one row a span; times are int64 ns since the Unix epoch (UTC)",
    "logs": "one row a log record",
    "traces": "one row a trace: root service/operation, start, end, duration, errors, services",
    "service_edges": "caller_service -> callee_service from parent/child spans on different services",
}


def _resource_error(exc: Exception) -> ResourceError:
    """A package error as the resource error the client reads: not found, or another failure."""
    cls = ResourceNotFoundError if str(getattr(exc, "kind", "")) == "not_found" else ResourceError
    return cls(tool_message(exc))


def dataset_summary(name: str) -> dict[str, Any]:
    """ingest's summary of the manifest (no query runs), with the time range also in ISO-8601."""
    import ingest
    from correlate.times import format_ns

    try:
        s = ingest.dataset_summary(name)
    except (ingest.DatasetNotFound, ingest.BadDatasetName) as exc:
        raise ResourceNotFoundError(tool_message(exc)) from None
    tr = s.get("time_range") or {}
    s["start"], s["end"] = format_ns(tr.get("start_ns")), format_ns(tr.get("end_ns"))
    return s


def dataset_schema(name: str) -> dict[str, Any]:
    """The views query_spans sees, with their columns and DuckDB types."""
    from correlate import CorrelateError, open_dataset
    from correlate.views import VIEW_NAMES

    try:
        with open_dataset(name) as ds:
            out = {}
            for view in VIEW_NAMES:
                cols = ds.fetch(f"DESCRIBE {view}")
                out[view] = {"about": _VIEW_NOTES.get(view, ""), "columns": {c[0]: c[1] for c in cols}}
    except CorrelateError as exc:
        raise _resource_error(exc) from None
    return {"dataset": name, "views": out}


def register(server: MCPServer) -> None:
    @server.resource(
        "dataset://{name}",
        name="dataset",
        description="A dataset's manifest summary: counts, time range, services, sources.",
        mime_type="application/json",
    )
    def dataset_resource(name: str) -> str:
        return json.dumps(dataset_summary(name), ensure_ascii=False)

    @server.resource(
        "dataset://{name}/schema",
        name="dataset_schema",
        description="Columns and types of the views spans, logs, traces, service_edges (for query_spans).",
        mime_type="application/json",
    )
    def schema_resource(name: str) -> str:
        return json.dumps(dataset_schema(name), ensure_ascii=False)
