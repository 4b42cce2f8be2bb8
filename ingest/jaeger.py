"""Jaeger UI JSON (the query API's `/api/traces` responses, the UI's "Download JSON") -> spans.

    {"data": [{"traceID", "spans": [{"traceID", "spanID", "operationName", "references",
               "startTime", "duration", "tags", "logs", "processID", "warnings", "flags"}],
               "processes": {"p1": {"serviceName", "tags"}}, "warnings"}],
     "total": 0, "limit": 0, "offset": 0, "errors": null}

Also accepted: a bare trace object, a top-level array of traces, and several documents one
after the other. Fields the UI adds when it saves a trace (per-span `process`, nested span
objects inside `references`, `relativeStartTime`, `depth`, `hasChildren`, `childSpanIds`) are
ignored, except that a span whose `processID` is not in `processes` takes its embedded
`process`. Jaeger API v3 (`{"result":{"resourceSpans":…}}`) is OTLP and goes to `otlp_json`.

The mapping follows Jaeger's own OTLP translator (opentelemetry-collector-contrib
pkg/translator/jaeger, jaegerproto_to_traces.go):

- times are microseconds: start_ns = startTime * 1000, end_ns = start_ns + duration * 1000;
- the process gives the resource: `service.name` = serviceName plus the process tags, with
  `hostname` renamed `host.name` (unless that is there); host = host.id / host.name / k8s pod,
  else the Jaeger client's `ip` tag;
- parent = the first CHILD_OF reference into the same trace, else the first FOLLOWS_FROM one
  (Jaeger's `Span.ParentSpanID`); every other reference becomes a link carrying
  `{"opentracing.ref_type": "child_of"|"follows_from"}`, and FOLLOWS_FROM links carry
  `"type": "FOLLOWS_FROM"` (a FOLLOWS_FROM parent is kept as a link too, as the translator does);
- typed tags become attributes (values as typed; binary stays base64 text); `span.kind` gives
  the kind; `otel.scope.name` / `otel.library.name` (+ version) the scope; `w3c.tracestate` the
  trace state; status: `error` = true -> ERROR, else `otel.status_code`, else
  `http.status_code` (outside 100-399 -> ERROR, except 4xx on a SERVER span), message from
  `otel.status_description` or `http.status_message`; the tags consumed are removed;
- logs become events: time from `timestamp` (µs), name from the `event` field;
  exception_type / exception_message come from an OTel "exception" event, else from an
  OpenTracing "error" log (`error.kind`, `message` or `error.object`);
- span `warnings` are kept in the warnings column, after any of ours.

Ids. Jaeger prints ids as hex without leading zeros (a trace id whose high half is small is
shorter than 32 chars), so any hex id up to 16 (span) / 32 (trace) chars is left-padded with
zeros, which also joins 64-bit trace ids with OTLP. An id that is not hex (hand-written and
test traces use "A", "root", …) is mapped to blake2b(utf-8 text) with an 8-byte (span) or
16-byte (trace) digest, the same function for span ids and references so parents still
resolve, and the text is kept in the attribute `jaeger.original_span_id` /
`jaeger.original_trace_id`. An empty, missing or all-zero span or trace id is a reject.

Offsets: `source_offset` and span rejects use the span's 1-based index counted over the whole
input (unit "record"); a trace that cannot be read at all, and malformed JSON, are rejected
with the byte offset where they start in the decompressed stream (unit "byte").

Streaming: `ingest/json_stream.py` cuts the input into one trace's bytes at a time, and each
trace is decoded with typed msgspec structs (span by span, with verbatim rejects, when the
trace has a bad span), so memory is one trace plus one read block plus one chunk of rows
(CHUNK_SPANS) however large the file. `read_parallel` yields exactly what `read` yields but
hands blocks of whole traces to an executor's worker processes (`decode_block`), this
process only cutting them.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import re
from collections import deque
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgspec

from ingest.formats import CORRUPT_ERRORS
from ingest.json_stream import Element, MalformedJSON, Members, iter_array
from ingest.otlp_model import first_exception
from ingest.records import Chunk, Reject, SourceInfo, reject_reason, shift_chunk
from ingest.span_rows import MAX_NS, Resource, SpanRows, dumpb, dumps, text

__all__ = ["sniff", "read", "read_parallel", "decode_block", "jaeger_id", "CHUNK_SPANS", "BLOCK_BYTES"]

CHUNK_SPANS = 2048

# ---- typed shapes (unknown fields, including the UI's, are skipped by msgspec) ------------
# gc=False: millions of small structs a second, none of them in a reference cycle


class _Tag(msgspec.Struct, gc=False):
    key: str = ""
    value: Any = None  # JSON already carries the type: "type" is not decoded (faster)


class _Ref(msgspec.Struct, gc=False):
    refType: str | None = None
    traceID: str | None = None
    spanID: str | None = None


class _Log(msgspec.Struct, gc=False):
    timestamp: int | None = None
    fields: list[_Tag] | None = None


class _Process(msgspec.Struct, gc=False):
    serviceName: str | None = None
    tags: list[_Tag] | None = None


class _Span(msgspec.Struct, gc=False):
    traceID: str | None = None
    spanID: str | None = None
    operationName: str | None = None
    references: list[_Ref] | None = None
    startTime: int | None = None
    duration: int | None = None
    tags: list[_Tag] | None = None
    logs: list[_Log] | None = None
    processID: str | None = None
    process: _Process | None = None
    warnings: list[str] | None = None
    flags: int | None = None


class _Trace(msgspec.Struct, gc=False):
    traceID: str | None = None
    spans: list[msgspec.Raw] | None = None
    processes: dict[str, msgspec.Raw] | None = None


class _TypedTrace(msgspec.Struct, gc=False):
    """The fast path: the whole trace typed at once (falls back to _Trace on any error)."""

    traceID: str | None = None
    spans: list[_Span] | None = None
    processes: dict[str, msgspec.Raw] | None = None


class _ApiError(msgspec.Struct, gc=False):
    code: int | None = None
    msg: str | None = None
    traceID: str | None = None


_TRACE = msgspec.json.Decoder(_Trace, strict=False)
_PROCESSES = msgspec.json.Decoder(dict[str, msgspec.Raw] | None)
_TYPED_TRACE = msgspec.json.Decoder(_TypedTrace, strict=False)
_SPAN = msgspec.json.Decoder(_Span, strict=False)
_PROCESS = msgspec.json.Decoder(_Process, strict=False)
_ERRORS = msgspec.json.Decoder(list[_ApiError] | None, strict=False)
_encode = msgspec.json.Encoder().encode

# ---- sniff --------------------------------------------------------------------------------

_OTLP_KEYS = re.compile(rb'"(resourceSpans|resourceLogs|scopeSpans|batches)"\s*:')
_DATA = re.compile(rb'^\s*\{.*?"data"\s*:\s*(\[\s*[{\]]|null)', re.S)
_ENVELOPE = re.compile(rb'"(total|limit|offset|errors)"\s*:')
_TRACE_KEYS = re.compile(rb'"(spans|processes)"\s*:\s*[\[{]')


def sniff(head: bytes) -> bool:
    """Jaeger UI JSON: `{"data":[{"traceID"…` (or a bare trace / array of traces), not OTLP."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if _OTLP_KEYS.search(head):
        return False
    has_trace = b'"traceID"' in head and _TRACE_KEYS.search(head) is not None
    if _DATA.match(head):
        return has_trace or _ENVELOPE.search(head) is not None  # an empty search result
    start = head.lstrip()[:1]
    return start in (b"{", b"[") and has_trace and b'"spanID"' in head


# ---- ids ----------------------------------------------------------------------------------


def _hashed(text: str, nbytes: int) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=nbytes).hexdigest()


def jaeger_id(text: Any, width: int, what: str) -> tuple[str, bool]:
    """(`width` lowercase hex chars, whether the text was hashed) for a Jaeger id."""
    if type(text) is not str:
        raise ValueError(f"{what} missing" if text is None else f"{what} is not a string")
    n = len(text)
    if n == width:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) * 2 == width:
            if not any(raw):
                raise ValueError(f"{what} is all zeros")
            return raw.hex(), False
    elif 0 < n < width and _HEX.fullmatch(text):
        out = text.lower().rjust(width, "0")
        if out.count("0") == width:
            raise ValueError(f"{what} is all zeros")
        return out, False
    if not text:
        raise ValueError(f"{what} missing")
    return _hashed(text, width // 2), True


_HEX = re.compile(r"[0-9a-fA-F]+")

# ---- processes ----------------------------------------------------------------------------


def _resource(proc: _Process) -> Resource:
    """A Jaeger process as a resource: service.name + tags, `hostname` as `host.name`, `ip` as the
    host when nothing better is there."""
    attrs: dict[str, Any] = {}
    if proc.serviceName:
        attrs["service.name"] = proc.serviceName
    if proc.tags:
        for t in proc.tags:
            attrs[t.key] = t.value
    if "hostname" in attrs and "host.name" not in attrs:
        attrs["host.name"] = attrs.pop("hostname")
    ip = attrs.get("ip")
    return Resource(attrs, fallback_host=str(ip) if ip else None)


_NO_RESOURCE = Resource({})

# ---- span -> columns ----------------------------------------------------------------------

_KINDS = {
    "client": "CLIENT",
    "server": "SERVER",
    "producer": "PRODUCER",
    "consumer": "CONSUMER",
    "internal": "INTERNAL",
}
_OTEL_STATUS = {"OK": "OK", "ERROR": "ERROR"}

_W_UNKNOWN_PROCESS = "processID is not in the trace's processes: no service"
_W_BAD_PROCESS = "the span's process is not readable: no service"
_W_BAD_REFERENCE = "a reference without a usable spanID was ignored"
_W_END_BEFORE_START = "negative duration: end set to start"


def _http_status(value: Any, kind: str) -> str | None:
    """ERROR for a failed HTTP exchange, as the translator's getStatusCodeFromHTTPStatusAttr."""
    try:
        code = int(value)
    except (TypeError, ValueError):
        return None
    if 400 <= code < 500 and kind in ("CLIENT", "SERVER"):
        return "ERROR" if kind == "CLIENT" else None
    return None if 100 <= code < 400 else "ERROR"


def _status(attrs: dict[str, Any], kind: str) -> tuple[str, str | None]:
    err = attrs.get("error")
    if err is True or (isinstance(err, str) and err.lower() == "true"):
        del attrs["error"]
        msg = attrs.pop("otel.status_description", None)
        if msg is None:
            msg = attrs.get("http.status_message")
        attrs.pop("otel.status_code", None)
        return "ERROR", text(msg)
    if "otel.status_code" in attrs:
        code = _OTEL_STATUS.get(str(attrs.pop("otel.status_code")).upper(), "UNSET")
        return code, text(attrs.pop("otel.status_description", None))
    if "http.status_code" in attrs:
        http_code = _http_status(attrs["http.status_code"], kind)
        if http_code is not None:
            return http_code, text(attrs.get("http.status_message"))
    return "UNSET", None


def _events(logs: list[_Log]) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """The span's events, and its exception_type / exception_message: the OTel rule (the first
    "exception" event), else the first OpenTracing "error" log (error.kind; message or error.object)."""
    out: list[dict[str, Any]] = []
    for log in logs:
        attrs = {t.key: t.value for t in log.fields} if log.fields else {}
        name = attrs.pop("event", "")
        name = name if isinstance(name, str) else dumps(name)
        ts = log.timestamp
        out.append(
            {
                "time_ns": ts * 1000 if ts is not None else None,
                "name": name,
                "attributes": attrs,
                "dropped_attributes_count": 0,
            }
        )
    exc = first_exception(out)
    if exc is not None:
        return out, *exc
    for ev in out:
        if ev["name"] == "error":
            attrs = ev["attributes"]
            t, m = attrs.get("error.kind"), attrs.get("message", attrs.get("error.object"))
            return out, (None if t is None else str(t)), (None if m is None else str(m))
    return out, None, None


class _TraceState:
    """Per-trace context: the trace's own id, its processes, an id cache."""

    def __init__(self, trace: _Trace | _TypedTrace, resources: ResourceCache) -> None:
        self.default_trace_id = trace.traceID
        self.raw_processes = trace.processes or {}
        self.cache = resources
        self.by_pid: dict[str | None, Resource] = {}  # the readable processes seen so far
        self.trace_ids: dict[object, tuple[str, bool]] = {}  # keyed by the traceID as written

    def trace_id(self, text: Any) -> tuple[str, bool]:
        hit = self.trace_ids.get(text) if type(text) is str else None
        if hit is None:
            hit = jaeger_id(text, 32, "traceID")
            self.trace_ids[text] = hit
        return hit

    def resource(self, span: _Span, warnings: list[str]) -> Resource:
        """The span's process (the slow path: `by_pid` misses)."""
        pid = span.processID
        raw = self.raw_processes.get(pid) if pid is not None else None
        if raw is not None:
            res = self.cache.get(raw)
            if res is not None:
                self.by_pid[pid] = res
                return res
            warnings.append(_W_BAD_PROCESS)
            return _NO_RESOURCE
        if span.process is not None:
            return _resource(span.process)
        warnings.append(_W_UNKNOWN_PROCESS)
        return _NO_RESOURCE


class ResourceCache:
    """Processes by their JSON bytes: a dump repeats the same few hundred processes in every trace."""

    MAX = 50_000

    def __init__(self) -> None:
        self.by_raw: dict[bytes, Resource | None] = {}

    def get(self, raw: msgspec.Raw) -> Resource | None:
        key = bytes(raw)
        try:
            return self.by_raw[key]
        except KeyError:
            pass
        try:
            res: Resource | None = _resource(_PROCESS.decode(key))
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            res = None
        if len(self.by_raw) >= self.MAX:
            self.by_raw.clear()
        self.by_raw[key] = res
        return res


def _references(
    refs: list[_Ref], ts: _TraceState, tid: str, sid: str, warnings: list[str]
) -> tuple[str | None, list[dict[str, Any]]]:
    """(parent span id, links) from a span's references, as Jaeger's Span.ParentSpanID picks."""
    parent_ref = None
    resolved = []
    for ref in refs:
        try:
            rsid = jaeger_id(ref.spanID, 16, "reference spanID")[0]
            rtid = ts.trace_id(ref.traceID)[0] if ref.traceID is not None else tid
        except ValueError:
            if _W_BAD_REFERENCE not in warnings:
                warnings.append(_W_BAD_REFERENCE)
            continue
        follows = ref.refType is not None and ref.refType.upper() == "FOLLOWS_FROM"
        item = (rtid, rsid, follows)
        resolved.append(item)
        if rtid == tid and (parent_ref is None or (parent_ref[2] and not follows)):
            parent_ref = item
    parent = None
    links = []
    for item in resolved:
        rtid, rsid, follows = item
        if item is parent_ref:
            parent = rsid
            if not follows:
                continue
        link: dict[str, Any] = {
            "trace_id": rtid,
            "span_id": rsid,
            "trace_state": "",
            "attributes": {"opentracing.ref_type": "follows_from" if follows else "child_of"},
        }
        if follows:
            link["type"] = "FOLLOWS_FROM"
        links.append(link)
    if parent == sid:
        parent = None  # a self-reference would make a cycle
    return parent, links


def _span_id(text: Any, what: str) -> tuple[str, bool]:
    """jaeger_id(text, 16) with the common case (16 hex chars) inline."""
    if type(text) is str and len(text) == 16:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) == 8 and any(raw):
            return raw.hex(), False
    return jaeger_id(text, 16, what)


def _span_row(ts: _TraceState, sp: _Span, offset: int) -> tuple:
    """One span's row (see SpanRows); ValueError when the span cannot be used."""
    tid_text = sp.traceID if sp.traceID is not None else ts.default_trace_id
    tid, tid_hashed = ts.trace_ids.get(tid_text) or ts.trace_id(tid_text)
    sid, sid_hashed = _span_id(sp.spanID, "spanID")
    start = sp.startTime
    if start is None:
        raise ValueError("startTime missing")
    start *= 1000
    if not 0 <= start < MAX_NS:
        raise ValueError("startTime out of range")
    warnings: list[str] = []
    dur = sp.duration
    if dur is None:
        end = start
    elif dur >= 0:
        end = start + dur * 1000
        if end > MAX_NS:
            end = MAX_NS
    else:
        warnings.append(_W_END_BEFORE_START)
        end = start

    refs = sp.references
    parent = links = None
    if refs:
        ref = refs[0]
        if len(refs) == 1 and ref.refType == "CHILD_OF" and (ref.traceID is None or ref.traceID == tid_text):
            try:  # the common case: one CHILD_OF into the same trace
                parent = _span_id(ref.spanID, "reference spanID")[0]
            except ValueError:
                warnings.append(_W_BAD_REFERENCE)
            if parent == sid:
                parent = None
        else:
            parent, links = _references(refs, ts, tid, sid, warnings)

    kind = "UNSPECIFIED"
    status, status_msg = "UNSET", None
    scope_name = scope_version = trace_state = None
    if sp.tags:
        attrs = {t.key: t.value for t in sp.tags}
        if "span.kind" in attrs:
            kind = _KINDS.get(str(attrs.pop("span.kind")).lower(), "UNSPECIFIED")
        if "otel.scope.name" in attrs:
            scope_name = text(attrs.pop("otel.scope.name"))
            scope_version = text(attrs.pop("otel.scope.version", None))
        elif "otel.library.name" in attrs:
            scope_name = text(attrs.pop("otel.library.name"))
            scope_version = text(attrs.pop("otel.library.version", None))
        if "error" in attrs or "otel.status_code" in attrs or "http.status_code" in attrs:
            status, status_msg = _status(attrs, kind)
        if "w3c.tracestate" in attrs:
            trace_state = text(attrs.pop("w3c.tracestate")) or None
    else:
        attrs = {}
    if tid_hashed:
        attrs["jaeger.original_trace_id"] = tid_text
    if sid_hashed:
        attrs["jaeger.original_span_id"] = sp.spanID

    res = ts.by_pid.get(sp.processID) or ts.resource(sp, warnings)
    exc_type = exc_msg = None
    events = None
    if sp.logs:
        events, exc_type, exc_msg = _events(sp.logs)
    if sp.warnings:
        warnings.extend(sp.warnings)
    try:
        attrs_json = _encode(attrs) if attrs else b"{}"
        events_json = _encode(events) if events else b"[]"
    except (OverflowError, TypeError, msgspec.EncodeError):
        attrs_json, events_json = dumpb(attrs), dumpb(events or [])
    return (
        tid,
        sid,
        parent,
        trace_state,
        sp.operationName or "",
        kind,
        scope_name,
        scope_version,
        start,
        end,
        status,
        status_msg,
        attrs_json,
        events_json,
        dumpb(links) if links else b"[]",
        sp.flags,
        dumps(warnings) if warnings else None,
        exc_type,
        exc_msg,
        offset,
        res,
        attrs,
    )


# ---- the reader ---------------------------------------------------------------------------


def _deep_trace(raw: bytes) -> _Trace | None:
    """A trace whose spans json_stream cuts (it copes with any depth), or None."""
    import io

    spans: list[msgspec.Raw] = []
    members: dict[str, bytes] = {}
    try:
        for item in iter_array(io.BytesIO(raw), "spans"):
            if isinstance(item, Element):
                spans.append(msgspec.Raw(item.raw))
            else:
                members = item.members
        trace_id = msgspec.json.decode(members["traceID"], type=str | None) if "traceID" in members else None
        procs = _PROCESSES.decode(members["processes"]) if "processes" in members else None
    except (MalformedJSON, msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return _Trace(traceID=trace_id, spans=spans, processes=procs)


class _Reader:
    def __init__(self, source: SourceInfo) -> None:
        self.source = source
        self.rows = SpanRows()
        self.rejects: list[Reject] = []
        self.resources = ResourceCache()
        self.span_index = 0

    def reject(self, offset: int, reason: str, raw: bytes, unit: str) -> None:
        self.rejects.append(Reject(self.source.path, offset, reason, raw, unit))

    def ready(self) -> bool:
        return len(self.rows) >= CHUNK_SPANS or len(self.rejects) >= CHUNK_SPANS

    def flush(self) -> Chunk:
        chunk = Chunk(
            spans=self.rows.to_batch(self.source.source_id) if len(self.rows) else None, rejects=self.rejects
        )
        self.rows = SpanRows()
        self.rejects = []
        return chunk

    def trace(self, raw: bytes, offset: int, ordinal: int) -> None:
        try:
            typed = _TYPED_TRACE.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            self.trace_span_by_span(raw, offset, ordinal)
            return
        if not typed.spans:
            return
        ts = _TraceState(typed, self.resources)
        rows: list[tuple] = []
        index = self.span_index
        try:
            for sp in typed.spans:
                index += 1
                rows.append(_span_row(ts, sp, index))
        except (ValueError, OverflowError):
            self.trace_span_by_span(raw, offset, ordinal)  # redo it with verbatim rejects
            return
        self.span_index = index
        self.rows.rows.extend(rows)

    def trace_span_by_span(self, raw: bytes, offset: int, ordinal: int) -> None:
        reason = "nested too deep"
        trace: _Trace | None
        try:
            trace = _TRACE.decode(raw)
        except RecursionError:  # a value nested deeper than msgspec goes: cut the spans by hand
            trace = _deep_trace(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            trace, reason = None, reject_reason(exc)
        if trace is None:
            self.reject(offset, f"trace #{ordinal} is not readable: {reason}", raw, "byte")
            return
        if not trace.spans:
            return
        ts = _TraceState(trace, self.resources)
        append = self.rows.rows.append
        for raw_span in trace.spans:
            self.span_index += 1
            try:
                append(_span_row(ts, _SPAN.decode(raw_span), self.span_index))
            except (
                msgspec.DecodeError,
                msgspec.ValidationError,
                ValueError,
                OverflowError,
                RecursionError,
            ) as exc:
                self.reject(self.span_index, reject_reason(exc), bytes(raw_span), "record")

    def element(self, raw: bytes, offset: int, ordinal: int) -> None:
        if raw[:1] != b"{":
            self.reject(offset, f"trace #{ordinal} is not a JSON object", raw, "byte")
        else:
            self.trace(raw, offset, ordinal)

    def members(self, members: dict[str, bytes], offset: int) -> None:
        if "spans" in members:  # a bare trace object
            body = b",".join(_encode(k) + b":" + v for k, v in members.items())
            self.trace(b"{" + body + b"}", offset, 1)
        raw_errors = members.get("errors")
        if raw_errors is None:
            return
        try:
            errors = _ERRORS.decode(raw_errors) or []
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            errors = [_ApiError(msg=raw_errors.decode("utf-8", "replace")[:300])]
        for err in errors:
            what = f"the Jaeger API response reports an error: {err.msg or err.code}"
            if err.traceID:
                what += f" (trace {err.traceID})"
            self.reject(offset, what, _encode(err), "byte")


def _items(stream: BinaryIO, rd: _Reader) -> Iterator[Element | Members]:
    """The stream's traces and other members; malformed JSON becomes `rd`'s last reject."""
    items = iter_array(stream, "data")
    while True:
        try:
            yield next(items)
        except StopIteration:
            return
        except MalformedJSON as exc:
            rd.reject(
                exc.offset, f"malformed JSON, the rest of the input is skipped: {exc.reason}", exc.raw, "byte"
            )
            return


def read(stream: BinaryIO, source: SourceInfo) -> Iterator[Chunk]:
    """Chunks of span rows (and rejects) from a Jaeger UI JSON stream; never raises on bad data."""
    rd = _Reader(source)
    try:
        for item in _items(stream, rd):
            if isinstance(item, Element):
                rd.element(item.raw, item.offset, item.index)
            else:
                rd.members(item.members, item.offset)
            if rd.ready():
                yield rd.flush()
    except CORRUPT_ERRORS:  # a compressed input broke off: the rows read before it land, then the error
        if len(rd.rows) or rd.rejects:
            yield rd.flush()
        raise
    if len(rd.rows) or rd.rejects:
        yield rd.flush()


# ---- the same, decoded by worker processes --------------------------------------------------

BLOCK_BYTES = 4 << 20


def decode_block(traces: list[tuple[bytes, int, int]], source: SourceInfo) -> tuple[Chunk, int]:
    """Worker side of `read_parallel`: (raw trace, byte offset, ordinal) -> one chunk and the
    number of spans it numbered; span offsets count from 1 within the block."""
    rd = _Reader(source)
    for raw, offset, ordinal in traces:
        rd.element(raw, offset, ordinal)
    return rd.flush(), rd.span_index


def read_parallel(
    stream: BinaryIO,
    source: SourceInfo,
    executor: cf.Executor,
    window: int = 4,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[Chunk]:
    """What `read` yields (same rows, offsets and rejects), decoded by `executor`'s workers.

    This process only cuts the input into traces (json_stream skims each one as msgspec.Raw)
    and sends blocks of about `block_bytes` of whole traces to `decode_block`; at most
    `window` blocks are in flight, so memory stays bounded. Chunks come out in input order.
    """
    rd = _Reader(source)
    pending: deque[cf.Future] = deque()
    block: list[tuple[bytes, int, int]] = []
    size = spans_before = 0

    def done(fut: cf.Future) -> Chunk:
        nonlocal spans_before
        chunk, n = fut.result()
        chunk = shift_chunk(chunk, spans_before, "record")
        spans_before += n
        return chunk

    try:
        for item in _items(stream, rd):
            if isinstance(item, Element):
                block.append((item.raw, item.offset, item.index))
                size += len(item.raw)
                if size < block_bytes:
                    continue
                pending.append(executor.submit(decode_block, block, source))
                block, size = [], 0
                while len(pending) >= window:
                    yield done(pending.popleft())
            else:  # a document's other members: after its traces, numbered after them
                if block:
                    pending.append(executor.submit(decode_block, block, source))
                    block, size = [], 0
                while pending:
                    yield done(pending.popleft())
                rd.span_index = spans_before
                rd.members(item.members, item.offset)
                spans_before = rd.span_index
                if len(rd.rows) or rd.rejects:
                    yield rd.flush()
    except CORRUPT_ERRORS:  # a compressed input broke off: the traces cut before it land, then the error
        if block:
            pending.append(executor.submit(decode_block, block, source))
        while pending:
            yield done(pending.popleft())
        if rd.rejects:
            yield rd.flush()
        raise
    if block:
        pending.append(executor.submit(decode_block, block, source))
    while pending:
        yield done(pending.popleft())
    if rd.rejects:  # malformed JSON at the end
        yield rd.flush()
