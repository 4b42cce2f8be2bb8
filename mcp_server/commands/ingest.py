"""`dcr ingest SOURCE… [--dataset NAME] [--json]`: trace and log dumps, or a pull from a store, into a dataset.

A SOURCE is a file, folder, glob or '-', or a store (`ingest/stores/`): clickhouse://, chdb://,
jaeger+http(s)://, tempo+http(s)://, pulled for --start/--end (parsed here, passed down as ns).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mcp_server.output import emit_json, info, warn

NAME = "ingest"
HELP = "ingest trace/log files, folders, globs or '-' (stdin), or pull from ClickHouse, Jaeger or Tempo, into a dataset"

STORES_HELP = """stores (pulled for --start/--end; give the WHOLE range you will analyse, the baseline included):
  clickhouse://[user@]host[:port]/db?traces=otel_traces&logs=otel_logs[&secure=1]
      the OpenTelemetry Collector exporter's tables (defaults: db otel, those tables); the password
      from the URL or CLICKHOUSE_PASSWORD; --service pushes ServiceName IN (…) down; past
      --budget spans whole traces are sampled in the query (said in the manifest and in reports)
  chdb://PATH[?database=otel&traces=…&logs=…]   the same tables from a local ClickHouse data path
  jaeger+http://host:16686 --service S [--operation O] | --trace ID   Jaeger API v3 (spans only)
  tempo+http://host:3200 [--query '{ resource.service.name = "x" }'] | --trace ID   Tempo (spans only)
  headers for Jaeger/Tempo behind auth: --header 'Authorization: Bearer …', --header
  'X-Scope-OrgID: tenant', or DCR_STORE_HEADERS (one 'Name: value' a line); never recorded"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ingest.stores.common import (
        DEFAULT_BUDGET_SPANS,
        DEFAULT_MAX_SPANS,
        DEFAULT_RETRIES,
        DEFAULT_TIMEOUT_S,
    )

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = STORES_HELP
    p.add_argument(
        "paths",
        nargs="+",
        metavar="SOURCE",
        help="files, folders (recursive), globs, - for stdin, or a store URL (below)",
    )
    p.add_argument(
        "--dataset", default="default", metavar="NAME", help="dataset to add to (default: default)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    g = p.add_argument_group("pulling from a store")
    g.add_argument(
        "--start", metavar="T", help="start of the range to pull, baseline included (ISO-8601 or epoch)"
    )
    g.add_argument("--end", metavar="T", help="end of the range to pull (ISO-8601 or epoch)")
    g.add_argument(
        "--service", action="append", default=[], metavar="S", help="only these services (repeatable)"
    )
    g.add_argument("--operation", metavar="O", help="Jaeger: only traces with this operation")
    g.add_argument(
        "--trace",
        action="append",
        default=[],
        metavar="ID",
        help="Jaeger/Tempo: fetch this trace (repeatable)",
    )
    g.add_argument(
        "--query", metavar="TRACEQL", help="Tempo: the TraceQL search (default: the services, or {})"
    )
    g.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="Jaeger/Tempo: an HTTP header (repeatable; also DCR_STORE_HEADERS); never recorded",
    )
    g.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_BUDGET_SPANS,
        metavar="N",
        help=f"ClickHouse: spans beyond which whole traces are sampled (default {DEFAULT_BUDGET_SPANS:,})",
    )
    g.add_argument(
        "--max-spans",
        type=int,
        default=DEFAULT_MAX_SPANS,
        metavar="N",
        help=f"hard cap on the spans (and logs) one pull brings; said when reached (default {DEFAULT_MAX_SPANS:,})",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds a request may stay silent (default {DEFAULT_TIMEOUT_S:g})",
    )
    g.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        metavar="N",
        help=f"retries on 429/5xx and lost connections, with backoff (default {DEFAULT_RETRIES})",
    )


def pull_options(args: argparse.Namespace) -> Any:
    """The PullOptions of the store flags (times parsed here, ns passed down); UsageError when bad."""
    import ingest
    from correlate.times import parse_time_ns
    from mcp_server.errors import UsageError

    def when(value: str | None, flag: str) -> int | None:
        if value is None:
            return None
        try:
            return parse_time_ns(value)
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None

    headers = ingest.env_headers()
    try:
        headers.update(dict(ingest.parse_header(h) for h in args.header))
    except ingest.StoreError as exc:
        raise UsageError(f"--header: {exc.reason}") from None
    return ingest.PullOptions(
        start_ns=when(args.start, "--start"),
        end_ns=when(args.end, "--end"),
        services=tuple(args.service),
        operation=args.operation,
        trace_ids=tuple(args.trace),
        query=args.query,
        headers=headers,
        budget_spans=args.budget,
        max_spans=args.max_spans,
        timeout_s=args.timeout,
        retries=args.retries,
    )


def _pull_bar():  # records pulled, on stderr, only for a terminal
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    )
    task = bar.add_task("pull", total=None)

    def update(done: int, total: int, what: str) -> None:
        bar.update(task, completed=done, total=total or None, description=what[-48:])

    return bar, update


def _progress_bar():  # a rich bar on stderr, only for a terminal
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
        console=Console(stderr=True),
    )
    task = bar.add_task("ingest", total=None)

    def update(done: int, total: int, path: str) -> None:
        bar.update(task, completed=done, total=total or None, description=path[-40:])

    return bar, update


def _say_sampling(dataset: str, source_ids: set[str]) -> None:
    """A pull that sampled says so on stderr (the manifest and correlate's reports keep saying it)."""
    import ingest

    for src in ingest.dataset_summary(dataset)["sources"]:
        if src["source_id"] not in source_ids:
            continue
        sampling = (src.get("store") or {}).get("sampling")
        if sampling:
            info(
                f"  {src['path']}: {sampling['spans_in_range']:,} spans in range, over the budget of "
                f"{sampling['budget_spans']:,}: pulled {sampling['what']} ({sampling['predicate']})"
            )


def human_bytes(n: int) -> str:
    """'512 B', '38.1 KB', '4.5 MB', '1.20 GB': a small input is not '0.0 MB'."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.2f} {unit}" if unit == "GB" else f"{value:.1f} {unit}"
    return f"{n} B"


def run(args: argparse.Namespace) -> int:
    import ingest

    pulling = any(ingest.is_store_source(p) for p in args.paths)
    opts = pull_options(args) if pulling else None
    bar, update = _progress_bar()
    pbar, pupdate = _pull_bar() if pulling else (None, None)
    try:
        for b in (bar, pbar):
            if b is not None:
                b.start()
        result = ingest.ingest_paths(
            args.paths, args.dataset, update, on_wait=info, pull=opts, pull_progress=pupdate
        )
    finally:
        for b in (bar, pbar):
            if b is not None:
                b.stop()
    if args.json:
        emit_json(result.to_dict())
    else:
        compressed = sorted({s.compression for s in result.sources if s.compression})
        read = human_bytes(result.bytes) + (f" ({', '.join(compressed)})" if compressed else "")
        print(
            f"dataset {result.dataset}: +{result.spans} spans, +{result.logs} logs, {result.rejected} rejected, "
            f"{result.duplicates} duplicate spans skipped, {read} in {result.seconds:.2f} s"
        )
        for s in result.sources:
            if s.skipped and not s.skipped.startswith("unreadable"):
                info(f"  {s.path}: skipped ({s.skipped})")
        if pulling:
            _say_sampling(args.dataset, {s.source_id for s in result.sources if s.source_id})
    for s in result.sources:  # on stderr with --json too: a source that could not be read whole
        if s.skipped and s.skipped.startswith("unreadable"):
            warn(f"{s.path}: {s.skipped}; skipped, the other inputs were ingested")
        if s.problem:
            warn(f"{s.path}: {s.problem}")
    if result.rejected:
        warn(
            f"{result.rejected} record{'' if result.rejected == 1 else 's'} rejected; see {result.rejects_path}"
        )
    return 0
