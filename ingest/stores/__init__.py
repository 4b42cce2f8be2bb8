"""Pulling an incident from where traces already live: ClickHouse (and chDB), Jaeger, Tempo.

    source string ─► parse_source ─► StoreSource (credentials kept apart from `public`)
    open_pull(source, PullOptions) ─► a pull: chunks(SourceInfo) -> Chunk…, manifest(), problems

The store does the filtering (range, services, query); each pull hands the dataset writer the
same chunks a dump file would (it reuses the OTLP/JSON reader), so normalisation, de-duplication,
rejects and the manifest are the ingest's own. `ingest/pipeline.py` runs pulls beside files.

- `ingest/stores/clickhouse.py`  the Collector exporter's tables (clickhouse://, chdb://)
- `ingest/stores/jaeger.py`      Jaeger's API v3 (jaeger+http://)
- `ingest/stores/tempo.py`       Grafana Tempo's HTTP API (tempo+http://)
- `ingest/stores/common.py`      the source string, options, limits, HTTP with retries, scrubbing
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from ingest.records import Chunk, SourceInfo
from ingest.stores.common import (
    DEFAULT_BUDGET_SPANS,
    DEFAULT_MAX_SPANS,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    HEADERS_ENV,
    STORE_SCHEMES,
    PullOptions,
    PullProgress,
    StoreError,
    StoreSource,
    env_headers,
    is_store_source,
    parse_header,
    parse_source,
    pull_secrets,
    scrub,
    scrub_error,
)

__all__ = [
    "STORE_SCHEMES",
    "DEFAULT_BUDGET_SPANS",
    "DEFAULT_MAX_SPANS",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "HEADERS_ENV",
    "PullOptions",
    "PullProgress",
    "StoreError",
    "StoreSource",
    "Pull",
    "env_headers",
    "is_store_source",
    "parse_header",
    "parse_source",
    "open_pull",
    "pull_secrets",
    "scrub",
    "scrub_error",
]


class Pull(Protocol):
    """What every store's pull offers the pipeline."""

    format: str
    problems: list[str]
    secrets: tuple[str, ...]

    @property
    def bytes(self) -> int: ...  # read so far (an attribute or a property)

    def chunks(self, source: SourceInfo) -> Iterator[Chunk]: ...

    def manifest(self) -> dict[str, Any]: ...


def open_pull(src: StoreSource, opts: PullOptions, progress: PullProgress | None = None) -> Pull:
    """The pull of `src` with `opts` (checked first: StoreError, invalid_input, names what is missing)."""
    opts.check(src.kind)
    if src.kind in ("clickhouse", "chdb"):
        from ingest.stores.clickhouse import ClickHousePull

        return ClickHousePull(src, opts, progress)
    if src.kind == "jaeger":
        from ingest.stores.jaeger import JaegerPull

        return JaegerPull(src, opts, progress)
    if src.kind == "tempo":
        from ingest.stores.tempo import TempoPull

        return TempoPull(src, opts, progress)
    raise StoreError(f"no store of kind {src.kind!r}")
