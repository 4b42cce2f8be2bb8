"""Jaeger's API v3 over HTTP -> chunks (`jaeger+http://host:16686`, `jaeger+https://…`).

    GET /api/v3/traces?query.serviceName=S&query.startTimeMin=T&query.startTimeMax=T
                      &query.searchDepth=N[&query.operationName=O]      FindTraces
    GET /api/v3/traces/{trace_id}                                        GetTrace
    GET /api/v3/services                                                 every service, when none is named

Answers are OTLP/JSON (`{"result": {"resourceSpans": …}}`), read by the OTLP/JSON reader; "no
traces" is a 404 (`{"error": {"httpCode": 404, "message": "No traces found"}}`), which is an empty
answer here. The parameter names are the current camelCase ones; a server that answers them with
a 400 naming `query.start_time_min` predates them, and the deprecated snake_case names are sent to
it from then on (with both `query.search_depth` and the older `query.num_traces`).

FindTraces has no page token: a search that returns as many traces as it asked for may have left
some out, so its time range is cut in two and both halves are searched again, down to a
millisecond (then the depth doubles), until every search returns fewer than it asked for. Traces
already pulled are not added twice. Jaeger returns whole traces: spans outside the range come
with their trace.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ingest.otlp_json import decode_document
from ingest.records import Chunk, SourceInfo
from ingest.stores.common import (
    HttpClient,
    PullOptions,
    PullProgress,
    StoreError,
    StoreSource,
    check_trace_id,
    error_text,
)

__all__ = ["JaegerPull", "rfc3339"]

MIN_SPLIT_NS = 1_000_000  # below a millisecond a full search doubles its depth instead of splitting
MAX_DEPTH = 20_000


def rfc3339(ns: int) -> str:
    """ns since the epoch -> RFC 3339 with nanoseconds, UTC (Go's time.RFC3339Nano parses it)."""
    secs, frac = divmod(ns, 10**9)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


_CANONICAL = {
    "service": "query.serviceName",
    "operation": "query.operationName",
    "min": "query.startTimeMin",
    "max": "query.startTimeMax",
    "depth": "query.searchDepth",
}
_DEPRECATED = {
    "service": "query.service_name",
    "operation": "query.operation_name",
    "min": "query.start_time_min",
    "max": "query.start_time_max",
    "depth": "query.search_depth",
}


class TraceCollector:
    """Chunks of whole traces, each trace added once; the cap on spans."""

    def __init__(self, max_spans: int) -> None:
        self.seen: set[str] = set()
        self.spans = 0
        self.max_spans = max_spans
        self.cap_reached = False

    def take(self, chunk: Chunk) -> tuple[Chunk, int]:
        """`chunk` without the traces already taken; how many traces are new."""
        spans = chunk.spans
        if spans is None or not spans.num_rows:
            return chunk, 0
        tids = spans.column("trace_id")
        if self.seen:
            keep = pc.invert(pc.is_in(tids, value_set=pa.array(list(self.seen), pa.string())))
            spans = spans.filter(keep)
        new = set(pc.unique(spans.column("trace_id")).to_pylist())
        self.seen |= new
        if self.spans + spans.num_rows > self.max_spans:
            self.cap_reached = True
            spans = spans.slice(0, max(0, self.max_spans - self.spans))
        self.spans += spans.num_rows
        return Chunk(spans=spans, logs=chunk.logs, rejects=chunk.rejects), len(new)


class JaegerPull:
    format = "jaeger_api_v3"

    def __init__(self, src: StoreSource, opts: PullOptions, progress: PullProgress | None = None) -> None:
        self.src = src
        self.opts = opts
        self.progress = progress
        self.http = HttpClient.for_pull(src, opts)
        self.secrets = self.http.secrets
        self.names = _CANONICAL
        self.problems: list[str] = []
        self.collector = TraceCollector(opts.max_spans)
        self.searches = 0
        self.splits = 0
        self.traces = 0
        self.services: list[str] = list(opts.services)
        self.not_found: list[str] = []

    @property
    def bytes(self) -> int:  # inside this class `bytes` is this property: the methods say builtins.bytes
        return self.http.bytes

    # -- requests --

    def _fail(self, what: str, status: int, body: builtins.bytes) -> StoreError:
        return StoreError(f"{self.src.public}: {what}: {error_text(status, body)}")

    def _search(self, service: str, lo: int, hi: int, depth: int) -> tuple[int, builtins.bytes]:
        def params() -> list[tuple[str, str]]:
            n = self.names
            p = [
                (n["service"], service),
                (n["min"], rfc3339(lo)),
                (n["max"], rfc3339(hi)),
                (n["depth"], str(depth)),
            ]
            if self.opts.operation:
                p.append((n["operation"], self.opts.operation))
            if n is _DEPRECATED:
                p.append(("query.num_traces", str(depth)))  # before query.search_depth
            return p

        self.searches += 1
        status, body, _ = self.http.get("/api/v3/traces", params())
        if status == 400 and self.names is _CANONICAL and b"start_time_min" in body:
            self.names = _DEPRECATED  # a server from before the camelCase names
            status, body, _ = self.http.get("/api/v3/traces", params())
        if status == 404:
            return 0, b""
        if status != 200:
            raise self._fail(f"searching {service}", status, body)
        return 200, body

    def _all_services(self) -> list[str]:
        status, body, _ = self.http.get("/api/v3/services")
        if status != 200:
            raise self._fail("listing services (or name the services to search)", status, body)
        try:
            services = json.loads(body).get("services") or []
        except (ValueError, AttributeError):
            raise StoreError(f"{self.src.public}: listing services: not a JSON answer") from None
        return sorted(str(s) for s in services)

    # -- the pull --

    def chunks(self, source: SourceInfo) -> Iterator[Chunk]:
        if self.opts.trace_ids:
            for tid in self.opts.trace_ids:
                check_trace_id(tid)  # it goes into the URL's path
                params = []
                if self.opts.start_ns is not None and self.opts.end_ns is not None:
                    params = [
                        ("startTime", rfc3339(self.opts.start_ns)),
                        ("endTime", rfc3339(self.opts.end_ns)),
                    ]
                status, body, _ = self.http.get(f"/api/v3/traces/{tid}", params)
                if status == 404:
                    self.not_found.append(tid)
                    continue
                if status != 200:
                    raise self._fail(f"getting trace {tid}", status, body)
                yield from self._take(body, source)
            if self.not_found:
                self.problems.append(f"not found: trace {', '.join(self.not_found)}")
            return
        assert self.opts.start_ns is not None and self.opts.end_ns is not None
        if not self.services:
            self.services = self._all_services()
        for service in self.services:
            yield from self._range(
                service, self.opts.start_ns, self.opts.end_ns, self.opts.search_depth, source
            )
            if self.collector.cap_reached:
                break
        if self.collector.cap_reached:
            self.problems.append(
                f"the pull stopped at its cap of {self.opts.max_spans:,} spans: narrow the range or the "
                "services, or raise the cap"
            )

    def _range(self, service: str, lo: int, hi: int, depth: int, source: SourceInfo) -> Iterator[Chunk]:
        """Every trace of `service` starting in [lo, hi): search; a full answer is split."""
        pending = [(lo, hi, depth)]
        while pending and not self.collector.cap_reached:
            a, b, d = pending.pop()
            status, body = self._search(service, a, b, d)
            if not status:
                continue
            found = 0
            for chunk, n in self._take_counted(body, source):
                found += n
                yield chunk
            total = _trace_count(body)
            if total < d:
                continue
            if b - a > MIN_SPLIT_NS:
                mid = a + (b - a) // 2
                self.splits += 1
                pending += [(mid, b, d), (a, mid, d)]
            elif d < MAX_DEPTH:
                pending.append((a, b, min(d * 2, MAX_DEPTH)))
            else:
                self.problems.append(
                    f"more than {MAX_DEPTH:,} traces of {service} within a millisecond at {rfc3339(a)}: some may be missing"
                )

    def _take(self, body: builtins.bytes, source: SourceInfo) -> Iterator[Chunk]:
        for chunk, _ in self._take_counted(body, source):
            yield chunk

    def _take_counted(self, body: builtins.bytes, source: SourceInfo) -> Iterator[tuple[Chunk, int]]:
        chunk, new = self.collector.take(decode_document(body, source))
        self.traces += new
        if self.progress is not None:
            self.progress(self.traces, 0, f"{self.src.public}: traces")
        yield chunk, new

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": "jaeger",
            "url": self.src.public,
            "api": "/api/v3",
            "start_ns": self.opts.start_ns,
            "end_ns": self.opts.end_ns,
            "services": list(self.services),
            "operation": self.opts.operation,
            "trace_ids": list(self.opts.trace_ids),
            "search_depth": self.opts.search_depth,
            "parameter_names": "canonical" if self.names is _CANONICAL else "deprecated snake_case",
            "searches": self.searches,
            "splits": self.splits,
            "traces": self.traces,
            "not_found": list(self.not_found),
            "sampling": None,
            "cap": {"max_records": self.opts.max_spans, "reached": self.collector.cap_reached},
        }


class _IdSpan(msgspec.Struct, gc=False):
    traceId: str = ""


class _IdScope(msgspec.Struct, gc=False):
    spans: list[_IdSpan] = []


class _IdResource(msgspec.Struct, gc=False):
    scopeSpans: list[_IdScope] = []


class _IdResult(msgspec.Struct, gc=False):
    resourceSpans: list[_IdResource] = []


class _IdDoc(msgspec.Struct, gc=False):
    result: _IdResult | None = None
    resourceSpans: list[_IdResource] = []


_ID_DOC = msgspec.json.Decoder(_IdDoc)


def _trace_count(body: bytes) -> int:
    """Distinct trace ids in an OTLP/JSON answer (what the search depth counts)."""
    try:
        doc = _ID_DOC.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return 0
    rss = (doc.result.resourceSpans if doc.result else []) + doc.resourceSpans
    return len({sp.traceId.lower() for rs in rss for ss in rs.scopeSpans for sp in ss.spans})
