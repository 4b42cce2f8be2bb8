"""Tools over datasets as a whole: list_datasets, ingest_traces."""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from mcp_server.exposure import check_ingest_paths, is_exposed
from mcp_server.tools import spec
from mcp_server.tools.base import (
    CursorArg,
    DatasetArg,
    DocPage,
    JsonObject,
    JsonObjects,
    Page,
    ServicesArg,
    TimeArg,
    ToolError,
    document,
    paged,
    parse_window,
)

__all__ = ["TOOLS", "list_datasets", "ingest_traces", "DatasetInfo", "DatasetList", "IngestOut"]

PROGRESS_INTERVAL_S = 0.25


class DatasetInfo(BaseModel):
    name: str
    spans: int
    logs: int
    rejected: int
    start: str | None = Field(description="ISO-8601 UTC")
    end: str | None
    services: list[str]
    updated_at: str | None


class DatasetList(BaseModel):
    datasets: JsonObjects = Field(
        description="name, spans, logs, rejected, start, end (ISO), services, updated_at"
    )
    page: Page


class IngestOut(BaseModel):
    # also duplicates, bytes, seconds
    dataset: str
    spans: int
    logs: int
    rejected: int
    rejects_path: str | None
    totals: JsonObject = Field(description="the dataset now, as in list_datasets")
    sources: JsonObjects = Field(description="path, format, spans, logs, rejected, duplicates, skipped")
    page: DocPage


def _info(name: str) -> dict:
    from mcp_server.resources import dataset_summary

    s = dataset_summary(name)
    return {
        "name": name,
        "spans": int(s["spans"]),
        "logs": int(s["logs"]),
        "rejected": int(s["rejected"]),
        "start": s["start"],
        "end": s["end"],
        "services": s["services"],
        "updated_at": s["updated_at"],
    }


def list_datasets(cursor: CursorArg = None) -> Annotated[CallToolResult, DatasetList]:
    """List the ingested datasets: span/log counts, time range, services. Call it first for the
    names and time ranges. Empty: call ingest_traces. Paged: page.returned_count vs total_count,
    next_cursor."""
    from ingest.dataset import list_datasets as names

    return paged(cursor, "datasets", "list_datasets", lambda: {"datasets": [_info(n) for n in names()]}, {})


async def ingest_traces(
    paths: Annotated[
        list[str],
        Field(
            min_length=1,
            description="Files, folders, globs, or stores: clickhouse://host/db, chdb://PATH, "
            "jaeger+http://host:16686, tempo+http://host:3200",
        ),
    ],
    dataset: DatasetArg,
    ctx: Context,
    start: Annotated[TimeArg, Field(description="stores; baseline included")] = None,
    end: TimeArg = None,
    services: ServicesArg = None,
    query: Annotated[str | None, Field(description="Tempo TraceQL")] = None,
    trace_ids: list[str] | None = None,
) -> Annotated[CallToolResult, IngestOut]:
    """Ingest trace/log dumps (OTLP JSON/protobuf, Jaeger, Zipkin; .gz/.zst) or pull a store's
    start..end into a dataset, new or existing, with progress notifications. Bad records are
    counted in rejected and kept in rejects_path; files already ingested are skipped. Next: correlate."""
    import anyio.from_thread
    import anyio.lowlevel
    import anyio.to_thread

    import ingest

    if any(p.strip() == "-" for p in paths):
        raise ToolError("'-' (stdin) carries the MCP protocol here: give file, folder or glob paths")
    stores = [p for p in paths if ingest.is_store_source(p)]
    refused = check_ingest_paths([p for p in paths if p not in stores]) if len(stores) < len(paths) else None
    if refused:
        raise ToolError(refused)
    pull = _pull_options(stores, start, end, services, query, trace_ids)
    token = anyio.lowlevel.current_token()
    last = [0.0]

    def progress(done: int, total: int, path: str) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_INTERVAL_S and done < total:
            return
        last[0] = now
        anyio.from_thread.run(ctx.report_progress, done, total or None, f"ingesting {path}", token=token)

    def pulled(done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_INTERVAL_S:
            return
        last[0] = now
        anyio.from_thread.run(ctx.report_progress, done, total or None, f"pulling {what}", token=token)

    def work() -> dict[str, Any]:
        from ingest import ingest_paths

        r = ingest_paths(list(paths), dataset, progress=progress, pull=pull, pull_progress=pulled).to_dict()
        r["totals"] = _info(dataset)
        return r

    payload = await anyio.to_thread.run_sync(work)
    return document(payload, "ingest_traces", "sources")


STORE_HOSTS_ENV = "DCR_STORE_HOSTS"


def _check_store_hosts(stores: list[str]) -> None:
    """The credentials of this machine (DCR_STORE_HEADERS, CLICKHOUSE_PASSWORD) go only to the
    stores its user named: a store an agent asks for must be on loopback, an embedded chdb://
    path, or a host listed in DCR_STORE_HOSTS (comma-separated, host or host:port), so a prompt
    cannot send them elsewhere."""
    from urllib.parse import urlsplit

    allowed = {h.strip().lower() for h in os.environ.get(STORE_HOSTS_ENV, "").split(",") if h.strip()}
    for source in stores:
        if source.lower().startswith("chdb://"):
            continue
        parts = urlsplit(source)
        host = (parts.hostname or "").lower()
        where = f"{host}:{parts.port}" if parts.port else host
        if host in ("localhost", "127.0.0.1", "::1") or host in allowed or where in allowed:
            continue
        raise ToolError(
            f"store host {where or source!r} is not in {STORE_HOSTS_ENV}: ingest_traces pulls only from "
            f"loopback, chdb:// or hosts the user lists in {STORE_HOSTS_ENV} (comma-separated) where the "
            "server runs, so this machine's store credentials go nowhere else"
        )


def _pull_options(
    stores: list[str],
    start: str | None,
    end: str | None,
    services: list[str] | None,
    query: str | None,
    trace_ids: list[str] | None,
) -> Any:
    """The PullOptions of a call that names stores (headers from DCR_STORE_HEADERS only: a secret
    never passes through the conversation); None when it names none."""
    if not stores:
        return None
    import ingest

    if is_exposed():
        raise ToolError(
            "this server is reachable beyond loopback, so ingest_traces does not pull from stores: "
            "pull with dcr ingest where the server runs, or serve on loopback"
        )
    _check_store_hosts(stores)
    start_ns, end_ns = parse_window(start, end)
    try:
        headers = ingest.env_headers()
    except ingest.StoreError as exc:
        raise ToolError(f"DCR_STORE_HEADERS: {exc.reason}") from None
    return ingest.PullOptions(
        start_ns=start_ns,
        end_ns=end_ns,
        services=tuple(services or ()),
        query=query,
        trace_ids=tuple(trace_ids or ()),
        headers=headers,
    )


TOOLS = [
    spec(ingest_traces, "Ingest traces and logs", read_only=False, idempotent=False),
    spec(list_datasets, "List datasets", read_only=True, idempotent=True),
]
