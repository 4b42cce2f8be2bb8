"""Grafana Tempo's HTTP API -> chunks (`tempo+http://host:3200`, `tempo+https://…`).

    GET /api/search?q=<TraceQL>&start=<s>&end=<s>&limit=N&spss=1     the traces of the range
    GET /api/traces/<traceID>                                        each trace, OTLP/JSON

The search answers `{"traces": [{"traceID", "startTimeUnixNano", …}], "metrics": {…}}` (an empty
range: no `traces`, or an empty list); a trace is OTLP/JSON in its `batches` form (ids in
base64, enums by name: the OTLP/JSON reader takes it as it is); a trace not found is a 404.
Times are whole seconds: the range is widened to them. `X-Scope-OrgID` (multi-tenant Tempo) and
`Authorization` come from `--header` or DCR_STORE_HEADERS.

Tempo takes "the first N results" of a search: one that returns `limit` traces may have left
some out, so its range is cut in two and searched again, down to a second (then the limit
doubles), until every search returns fewer than its limit.
"""

from __future__ import annotations

import builtins
import concurrent.futures as cf
import json
from collections.abc import Iterator
from typing import Any

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
from ingest.stores.jaeger import TraceCollector

__all__ = ["TempoPull", "traceql_for"]

MAX_LIMIT = 20_000
FETCH_THREADS = 4


def traceql_for(services: tuple[str, ...]) -> str:
    """The TraceQL of a pull that named services and no query: spans of any of them."""
    if not services:
        return "{}"
    ors = " || ".join(f'resource.service.name = "{_escape(s)}"' for s in services)
    return "{ " + ors + " }"


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


class TempoPull:
    format = "tempo_api"

    def __init__(self, src: StoreSource, opts: PullOptions, progress: PullProgress | None = None) -> None:
        self.src = src
        self.opts = opts
        self.progress = progress
        self.http = HttpClient.for_pull(src, opts)
        self.secrets = self.http.secrets
        self.query = opts.query or traceql_for(opts.services)
        self.problems: list[str] = []
        self.collector = TraceCollector(opts.max_spans)
        self.searches = 0
        self.splits = 0
        self.traces = 0
        self.not_found: list[str] = []

    @property
    def bytes(self) -> int:  # inside this class `bytes` is this property: the methods say builtins.bytes
        return self.http.bytes

    def _search(self, lo_s: int, hi_s: int, limit: int) -> list[str]:
        self.searches += 1
        params = [
            ("q", self.query),
            ("start", str(lo_s)),
            ("end", str(hi_s)),
            ("limit", str(limit)),
            ("spss", "1"),
        ]
        status, body, _ = self.http.get("/api/search", params)
        if status != 200:
            raise StoreError(f"{self.src.public}: searching {self.query}: {error_text(status, body)}")
        try:
            doc = json.loads(body) if body.strip() else {}
        except ValueError:
            raise StoreError(f"{self.src.public}: searching: not a JSON answer") from None
        return [str(t.get("traceID", "")) for t in (doc.get("traces") or []) if t.get("traceID")]

    def _trace_ids(self) -> Iterator[str]:
        assert self.opts.start_ns is not None and self.opts.end_ns is not None
        lo = self.opts.start_ns // 10**9
        hi = -(-self.opts.end_ns // 10**9)
        pending = [(lo, hi, self.opts.search_depth)]
        listed: set[str] = set()
        while pending:
            a, b, limit = pending.pop()
            ids = self._search(a, b, limit)
            for tid in ids:
                key = tid.lower().rjust(32, "0")
                if key not in listed:
                    listed.add(key)
                    yield tid
            if len(ids) < limit:
                continue
            if b - a > 1:
                mid = a + (b - a) // 2
                self.splits += 1
                pending += [(mid, b, limit), (a, mid, limit)]
            elif limit < MAX_LIMIT:
                pending.append((a, b, min(limit * 2, MAX_LIMIT)))
            else:
                self.problems.append(
                    f"more than {MAX_LIMIT:,} traces within one second at {a}: some may be missing"
                )

    def _fetch(self, tid: str) -> tuple[str, int, builtins.bytes]:
        status, body, _ = self.http.get(f"/api/traces/{check_trace_id(tid)}")
        return tid, status, body

    def chunks(self, source: SourceInfo) -> Iterator[Chunk]:
        ids: Iterator[str] = iter(self.opts.trace_ids) if self.opts.trace_ids else self._trace_ids()
        pool = cf.ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="dcr-tempo")
        finished = False
        try:
            window: list[cf.Future] = []
            for tid in ids:
                window.append(pool.submit(self._fetch, check_trace_id(tid)))
                if len(window) >= 2 * FETCH_THREADS:
                    yield from self._done(window.pop(0).result(), source)
                if self.collector.cap_reached:
                    break
            for fut in window:
                if not self.collector.cap_reached:
                    yield from self._done(fut.result(), source)
            finished = True
        finally:  # on an error (or a pull given up) the fetches queued are dropped, none waited for
            pool.shutdown(wait=finished, cancel_futures=not finished)
        if self.not_found:
            shown = ", ".join(self.not_found[:5]) + (" …" if len(self.not_found) > 5 else "")
            self.problems.append(f"{len(self.not_found)} trace(s) listed but not found: {shown}")
        if self.collector.cap_reached:
            self.problems.append(
                f"the pull stopped at its cap of {self.opts.max_spans:,} spans: narrow the range or the "
                "query, or raise the cap"
            )

    def _done(self, fetched: tuple[str, int, builtins.bytes], source: SourceInfo) -> Iterator[Chunk]:
        tid, status, body = fetched
        if status == 404:
            self.not_found.append(tid)
            return
        if status != 200:
            raise StoreError(f"{self.src.public}: getting trace {tid}: {error_text(status, body)}")
        chunk, new = self.collector.take(decode_document(body, source))
        self.traces += new
        if self.progress is not None:
            self.progress(self.traces, 0, f"{self.src.public}: traces")
        yield chunk

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": "tempo",
            "url": self.src.public,
            "query": self.query,
            "start_ns": self.opts.start_ns,
            "end_ns": self.opts.end_ns,
            "services": list(self.opts.services),
            "trace_ids": list(self.opts.trace_ids),
            "limit": self.opts.search_depth,
            "searches": self.searches,
            "splits": self.splits,
            "traces": self.traces,
            "not_found": list(self.not_found),
            "sampling": None,
            "cap": {"max_records": self.opts.max_spans, "reached": self.collector.cap_reached},
        }
