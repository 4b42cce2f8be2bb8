"""OTLP/JSON traces and logs -> span and log rows.

Accepted shapes (unknown fields are ignored everywhere):

    {"resourceSpans": [...]}            one TracesData a line (Collector file exporter) or one
    {"resourceLogs": [...]}             pretty-printed document (the specification's examples)
    {"batches": [...]}                  Tempo's wrapper of resourceSpans
    {"result": {"resourceSpans": ...}}  Jaeger's API v3 wrapper
    instrumentationLibrarySpans / instrumentationLibraryLogs   the legacy names of scope*

Two paths (see `ingest/otlp_fast.py` for the first):

- fast: a line is decoded in one typed msgspec call and its records become rows with no
  per-record checks; ids and times are then checked column-wise. Any surprise sends the
  whole line to the careful path.
- careful (this module's `Sink`): records are kept as raw JSON by the outer decode and
  decoded and checked one by one, so a bad record is rejected verbatim while the good ones
  beside it land; a line that is not JSON at all is rejected as a whole.

64-bit integers may be JSON numbers or strings. Offsets are 1-based line numbers (unit "line"), or the record's
1-based index in a whole-document input (unit "record").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize import norm_parent_span_id, norm_span_id, norm_trace_id
from ingest.records import Chunk, Reject, SourceInfo
from ingest.schema import INT_PROMOTED, LOG_SCHEMA, PROMOTED, SPAN_KINDS, SPAN_SCHEMA, STATUS_CODES

__all__ = [
    "sniff",
    "read",
    "is_line_mode",
    "decode_lines",
    "decode_document",
    "BLOCK_BYTES",
    "Sink",
    "SpanColumns",
    "LogColumns",
]

BLOCK_BYTES = 8 * 1024 * 1024
_MAX_I64 = 2**63 - 1

# ---- typed shapes -------------------------------------------------------------------------


class _AnyValue(msgspec.Struct, gc=False):
    stringValue: str | None = None
    boolValue: bool | None = None
    intValue: int | str | None = None
    doubleValue: float | str | None = None
    arrayValue: _ArrayValue | None = None
    kvlistValue: _KvList | None = None
    bytesValue: str | None = None


class _KeyValue(msgspec.Struct, gc=False):
    key: str = ""
    value: _AnyValue | None = None


class _ArrayValue(msgspec.Struct, gc=False):
    values: list[_AnyValue] = []


class _KvList(msgspec.Struct, gc=False):
    values: list[_KeyValue] = []


class _Resource(msgspec.Struct, gc=False):
    attributes: list[_KeyValue] = []
    droppedAttributesCount: int = 0


class _Scope(msgspec.Struct, gc=False):
    name: str = ""
    version: str = ""
    attributes: list[_KeyValue] = []


class _Status(msgspec.Struct, gc=False):
    code: int | str = 0
    message: str = ""


class _Event(msgspec.Struct, gc=False):
    timeUnixNano: int | str = 0
    name: str = ""
    attributes: list[_KeyValue] = []
    droppedAttributesCount: int = 0


class _Link(msgspec.Struct, gc=False):
    traceId: str = ""
    spanId: str = ""
    traceState: str = ""
    attributes: list[_KeyValue] = []
    droppedAttributesCount: int = 0
    flags: int = 0


class _Span(msgspec.Struct, gc=False):
    traceId: str | None = None
    spanId: str | None = None
    traceState: str = ""
    parentSpanId: str = ""
    flags: int = 0
    name: str = ""
    kind: int | str = 0
    startTimeUnixNano: int | str | None = None
    endTimeUnixNano: int | str | None = None
    attributes: list[_KeyValue] = []
    droppedAttributesCount: int = 0
    events: list[_Event] = []
    droppedEventsCount: int = 0
    links: list[_Link] = []
    droppedLinksCount: int = 0
    status: _Status | None = None


class _LogRecord(msgspec.Struct, gc=False):
    timeUnixNano: int | str = 0
    observedTimeUnixNano: int | str = 0
    severityNumber: int | str = 0
    severityText: str = ""
    body: _AnyValue | None = None
    attributes: list[_KeyValue] = []
    droppedAttributesCount: int = 0
    flags: int = 0
    traceId: str = ""
    spanId: str = ""
    eventName: str = ""


class _ScopeSpans(msgspec.Struct, gc=False):
    scope: _Scope | None = None
    instrumentationLibrary: _Scope | None = None
    spans: list[msgspec.Raw] = []


class _ScopeLogs(msgspec.Struct, gc=False):
    scope: _Scope | None = None
    instrumentationLibrary: _Scope | None = None
    logRecords: list[msgspec.Raw] = []


class _ResourceSpans(msgspec.Struct, gc=False):
    resource: _Resource | None = None
    scopeSpans: list[_ScopeSpans] = []
    instrumentationLibrarySpans: list[_ScopeSpans] = []


class _ResourceLogs(msgspec.Struct, gc=False):
    resource: _Resource | None = None
    scopeLogs: list[_ScopeLogs] = []
    instrumentationLibraryLogs: list[_ScopeLogs] = []


class _Result(msgspec.Struct, gc=False):
    resourceSpans: list[_ResourceSpans] = []
    resourceLogs: list[_ResourceLogs] = []


class _Doc(msgspec.Struct, gc=False):
    resourceSpans: list[_ResourceSpans] = []
    resourceLogs: list[_ResourceLogs] = []
    batches: list[_ResourceSpans] = []
    result: _Result | None = None


_DOC = msgspec.json.Decoder(_Doc)
_SPAN = msgspec.json.Decoder(_Span)
_LOG = msgspec.json.Decoder(_LogRecord)
_encode = msgspec.json.Encoder().encode

# ---- AnyValue -> plain JSON values --------------------------------------------------------


def _value(v: _AnyValue | None) -> Any:
    if v is None:
        return None
    x: Any = v.stringValue
    if x is not None:
        return x
    x = v.intValue
    if x is not None:
        return x if x.__class__ is int else _int_text(x, "intValue")
    x = v.boolValue
    if x is not None:
        return x
    x = v.doubleValue
    if x is not None:
        return x if x.__class__ is not str else _float_text(x)
    x = v.kvlistValue
    if x is not None:
        return _attrs(x.values)
    x = v.arrayValue
    if x is not None:
        return [_value(e) for e in x.values]
    return v.bytesValue  # base64 text as written, or None for an empty AnyValue


def _int_text(x: str, what: str) -> int:
    """A 64-bit integer written as a JSON string (the OTLP/JSON rule for int64/fixed64)."""
    try:
        return int(x)
    except ValueError:
        raise ValueError(f"{what} is not an integer") from None


def _float_text(x: str) -> float:
    try:
        return float(x)  # "NaN", "Infinity", "-Infinity" as protobuf JSON writes them
    except ValueError:
        raise ValueError("doubleValue is not a number") from None


def _attrs(kvs: list[_KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


# ---- enums --------------------------------------------------------------------------------

_KIND_NAMES = {f"SPAN_KIND_{k}": k for k in SPAN_KINDS} | {k: k for k in SPAN_KINDS}
_STATUS_NAMES = {f"STATUS_CODE_{c}": c for c in STATUS_CODES} | {c: c for c in STATUS_CODES}


def _kind(k: int | str) -> str:
    if type(k) is int:
        return SPAN_KINDS[k] if 0 <= k < len(SPAN_KINDS) else "UNSPECIFIED"
    if isinstance(k, str) and k.isdigit():
        return _kind(int(k))
    return _KIND_NAMES.get(k, "UNSPECIFIED")


def _status(c: int | str) -> str:
    if type(c) is int:
        return STATUS_CODES[c] if 0 <= c < len(STATUS_CODES) else "UNSET"
    if isinstance(c, str) and c.isdigit():
        return _status(int(c))
    return _STATUS_NAMES.get(c, "UNSET")


_SEVERITY_NAMES = {
    f"SEVERITY_NUMBER_{name}{i if i > 1 else ''}": base + i - 1
    for name, base in (("TRACE", 1), ("DEBUG", 5), ("INFO", 9), ("WARN", 13), ("ERROR", 17), ("FATAL", 21))
    for i in range(1, 5)
} | {"SEVERITY_NUMBER_UNSPECIFIED": 0}


def _severity(s: int | str) -> int | None:
    if type(s) is int:
        return s if -(2**31) <= s < 2**31 else None
    if isinstance(s, str) and s.isdigit():
        return _severity(int(s))
    return _SEVERITY_NAMES.get(s)


# ---- ids ----------------------------------------------------------------------------------

_ZERO_TRACE = "0" * 32


def _trace_id(v: str | None) -> str:
    if v is None or v == "":
        raise ValueError("trace id missing")
    if len(v) == 32:
        try:
            b = bytes.fromhex(v)
        except ValueError:
            b = b""
        if len(b) == 16 and v != _ZERO_TRACE:
            return b.hex()
    return norm_trace_id(v)


def _span_id(v: str | None) -> str:
    if v is None or v == "":
        raise ValueError("span id missing")
    if len(v) == 16:
        try:
            b = bytes.fromhex(v)
        except ValueError:
            b = b""
        if len(b) == 8 and v != "0000000000000000":
            return b.hex()
    return norm_span_id(v)


def _parent_id(v: str) -> str | None:
    if not v:
        return None
    if len(v) == 16:
        try:
            b = bytes.fromhex(v)
        except ValueError:
            b = b""
        if len(b) == 8:
            return None if v == "0000000000000000" else b.hex()
    return norm_parent_span_id(v)


# ---- promoted columns ---------------------------------------------------------------------

_PROMOTED_COLS = tuple(PROMOTED)
# attribute name -> (column index, priority): one dict lookup per attribute instead of
# one per (column, candidate name)
_PROMOTE_BY_ATTR: dict[str, tuple[int, int]] = {
    name: (ci, pri) for ci, col in enumerate(_PROMOTED_COLS) for pri, name in enumerate(PROMOTED[col])
}
_INT_COLS = frozenset(i for i, c in enumerate(_PROMOTED_COLS) if c in INT_PROMOTED)


def _promoted_value(ci: int, value: Any) -> Any:
    if ci in _INT_COLS:
        try:
            value = int(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a double that is ±Infinity
            return None
        return value if -(2**31) <= value < 2**31 else None
    if isinstance(value, str):
        return value
    return None if value is None else _encode(value).decode()


# ---- resource / scope context -------------------------------------------------------------


class _Context:
    """Columns shared by every record of one (resource, scope)."""

    __slots__ = ("service_name", "service_version", "service_instance_id", "host", "resource_attributes",
                 "scope_name", "scope_version", "scope_attributes")

    def __init__(self, resource: _Resource | None, scope: _Scope | None) -> None:
        rattrs = _attrs(resource.attributes) if resource is not None else {}
        self.service_name = _str_or_none(rattrs.get("service.name"))
        self.service_version = _str_or_none(rattrs.get("service.version"))
        self.service_instance_id = _str_or_none(rattrs.get("service.instance.id"))
        host = None
        for key in ("host.id", "host.name", "k8s.pod.name", "k8s.pod.uid"):
            if rattrs.get(key):
                host = str(rattrs[key])
                break
        self.host = host
        self.resource_attributes = _encode(rattrs).decode()
        self.scope_name = (scope.name or None) if scope is not None else None
        self.scope_version = (scope.version or None) if scope is not None else None
        self.scope_attributes = _encode(_attrs(scope.attributes)).decode() if scope is not None else "{}"


def _str_or_none(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else _encode(v).decode()


def _counts(flags: int, *dropped: int) -> None:
    """flags fit the int64 column, dropped counts the int32 ones."""
    if not 0 <= flags <= _MAX_I64:
        raise ValueError("flags out of range")
    for d in dropped:
        if not 0 <= d < 2**31:
            raise ValueError("a dropped count is out of range")


def _time(v: int | str | None, what: str) -> int:
    if v is None:
        raise ValueError(f"{what} missing")
    if v.__class__ is str:
        v = _int_text(v, what)  # type: ignore[arg-type]
    if not 0 <= v <= _MAX_I64:
        raise ValueError(f"{what} out of range")
    return v


# ---- span columns -------------------------------------------------------------------------

_SPAN_CTX_COLS = ("service_name", "service_version", "service_instance_id", "host", "scope_name",
                  "scope_version", "resource_attributes", "scope_attributes")
_SPAN_OWN_COLS = ("trace_id", "span_id", "parent_span_id", "trace_state", "name", "kind", "start_ns",
                  "end_ns", "status_code", "status_message", "attributes", "events", "links", "flags",
                  "dropped_attributes_count", "dropped_events_count", "dropped_links_count", "warnings",
                  "exception_type", "exception_message")
_W_END_BEFORE_START = "end time before start time"
_W_BAD_LINK = "a link has an invalid id, kept as written"
_W_UNKNOWN_KIND = "unknown span kind, stored as UNSPECIFIED"


class SpanColumns:
    """Column lists for a batch of spans (built row by row, converted to Arrow once)."""

    def __init__(self) -> None:
        self.own: dict[str, list[Any]] = {c: [] for c in _SPAN_OWN_COLS}
        self.ctx: dict[str, list[Any]] = {c: [] for c in _SPAN_CTX_COLS}
        self.source_offset: list[int] = []
        self.promoted: list[tuple[int, int, Any]] = []  # (row, column index, value)
        self.n = 0

    def add_context(self, ctx: _Context, count: int) -> None:
        for c in _SPAN_CTX_COLS:
            self.ctx[c].extend([getattr(ctx, c)] * count)

    def add(self, sp: _Span) -> None:
        """Append one decoded span; ValueError (nothing appended) when it cannot be used."""
        tid = _trace_id(sp.traceId)
        sid = _span_id(sp.spanId)
        pid = _parent_id(sp.parentSpanId)
        start = _time(sp.startTimeUnixNano, "startTimeUnixNano")
        end = _time(sp.endTimeUnixNano if sp.endTimeUnixNano is not None else start, "endTimeUnixNano")
        _counts(sp.flags, sp.droppedAttributesCount, sp.droppedEventsCount, sp.droppedLinksCount)
        warnings = []
        kind = _kind(sp.kind)
        if kind == "UNSPECIFIED" and sp.kind not in (0, "0", "SPAN_KIND_UNSPECIFIED", "UNSPECIFIED"):
            warnings.append(_W_UNKNOWN_KIND)
        if end < start:
            warnings.append(_W_END_BEFORE_START)
        attrs = _attrs(sp.attributes) if sp.attributes else {}
        events_out = []
        exc_type = exc_msg = None
        seen_exc = False
        for ev in sp.events:
            eattrs = _attrs(ev.attributes)
            if not seen_exc and ev.name == "exception":
                seen_exc = True
                t = eattrs.get("exception.type")
                m = eattrs.get("exception.message")
                exc_type = None if t is None else str(t)
                exc_msg = None if m is None else str(m)
            events_out.append({"time_ns": _time(ev.timeUnixNano, "event timeUnixNano"), "name": ev.name, "attributes": eattrs,
                               "dropped_attributes_count": ev.droppedAttributesCount})
        links_out = []
        for ln in sp.links:
            try:
                ltid, lsid = _trace_id(ln.traceId), _span_id(ln.spanId)
            except ValueError:
                ltid, lsid = ln.traceId, ln.spanId
                if _W_BAD_LINK not in warnings:
                    warnings.append(_W_BAD_LINK)
            links_out.append({"trace_id": ltid, "span_id": lsid, "trace_state": ln.traceState,
                              "attributes": _attrs(ln.attributes), "dropped_attributes_count":
                              ln.droppedAttributesCount, "flags": ln.flags})
        st = sp.status
        own = self.own
        own["trace_id"].append(tid)
        own["span_id"].append(sid)
        own["parent_span_id"].append(pid)
        own["trace_state"].append(sp.traceState or None)
        own["name"].append(sp.name)
        own["kind"].append(kind)
        own["start_ns"].append(start)
        own["end_ns"].append(end)
        own["status_code"].append(_status(st.code) if st is not None else "UNSET")
        own["status_message"].append((st.message or None) if st is not None else None)
        own["attributes"].append(_encode(attrs) if attrs else b"{}")
        own["events"].append(_encode(events_out) if events_out else b"[]")
        own["links"].append(_encode(links_out) if links_out else b"[]")
        own["flags"].append(sp.flags)
        own["dropped_attributes_count"].append(sp.droppedAttributesCount)
        own["dropped_events_count"].append(sp.droppedEventsCount)
        own["dropped_links_count"].append(sp.droppedLinksCount)
        own["warnings"].append(_encode(warnings).decode() if warnings else None)
        own["exception_type"].append(exc_type)
        own["exception_message"].append(exc_msg)
        if attrs:
            row = self.n
            best: dict[int, tuple[int, Any]] = {}
            for key, value in attrs.items():
                hit = _PROMOTE_BY_ATTR.get(key)
                if hit is not None and value is not None:
                    ci, pri = hit
                    if ci not in best or pri < best[ci][0]:
                        best[ci] = (pri, value)
            for ci, (_, value) in best.items():
                self.promoted.append((row, ci, value))
        self.n += 1

    def to_batch(self, source_id: str) -> pa.RecordBatch | None:
        n = self.n
        if not n:
            return None
        own, ctx = self.own, self.ctx
        cols: dict[str, pa.Array] = {}
        for name in ("attributes", "events", "links"):
            cols[name] = pa.array(own[name], type=pa.binary()).view(pa.string())
        for name in _SPAN_OWN_COLS:
            if name not in cols:
                cols[name] = pa.array(own[name], type=SPAN_SCHEMA.field(name).type)
        for name in _SPAN_CTX_COLS:
            cols[name] = pa.array(ctx[name], type=pa.string())
        cols["duration_ns"] = pc.subtract(cols["end_ns"], cols["start_ns"])
        promoted: list[list[Any]] = [[None] * n for _ in _PROMOTED_COLS]
        for row, ci, value in self.promoted:
            promoted[ci][row] = _promoted_value(ci, value)
        for ci, name in enumerate(_PROMOTED_COLS):
            cols[name] = pa.array(promoted[ci], type=SPAN_SCHEMA.field(name).type)
        cols["source_offset"] = pa.array(self.source_offset, type=pa.int64())
        cols["source_id"] = pa.repeat(pa.scalar(source_id, pa.string()), n)
        return _assemble(SPAN_SCHEMA, cols, n)


def _assemble(schema: pa.Schema, cols: dict[str, pa.Array], n: int) -> pa.RecordBatch:
    arrays = [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# ---- log columns --------------------------------------------------------------------------

_LOG_CTX_COLS = ("service_name", "service_version", "host", "scope_name", "resource_attributes")
_LOG_OWN_COLS = ("time_ns", "observed_time_ns", "severity_number", "severity_text", "body", "trace_id",
                 "span_id", "event_name", "attributes", "flags", "dropped_attributes_count")


class LogColumns:
    def __init__(self) -> None:
        self.own: dict[str, list[Any]] = {c: [] for c in _LOG_OWN_COLS}
        self.ctx: dict[str, list[Any]] = {c: [] for c in _LOG_CTX_COLS}
        self.source_offset: list[int] = []
        self.n = 0

    def add_context(self, ctx: _Context, count: int) -> None:
        for c in _LOG_CTX_COLS:
            self.ctx[c].extend([getattr(ctx, c)] * count)

    def add(self, lr: _LogRecord) -> None:
        t = _time(lr.timeUnixNano, "timeUnixNano")
        ot = _time(lr.observedTimeUnixNano, "observedTimeUnixNano")
        _counts(lr.flags, lr.droppedAttributesCount)
        tid = _trace_id(lr.traceId) if lr.traceId else None
        sid = _span_id(lr.spanId) if lr.spanId else None
        body = _value(lr.body)
        # everything that can fail is computed before the first append: a half-added record
        # would leave the columns of unequal length
        attrs = _encode(_attrs(lr.attributes)).decode() if lr.attributes else "{}"
        severity = _severity(lr.severityNumber)
        body = body if body is None or isinstance(body, str) else _encode(body).decode()
        own = self.own
        own["time_ns"].append(t or ot or None)
        own["observed_time_ns"].append(ot or None)
        own["severity_number"].append(severity)
        own["severity_text"].append(lr.severityText or None)
        own["body"].append(body)
        own["trace_id"].append(tid)
        own["span_id"].append(sid)
        own["event_name"].append(lr.eventName or None)
        own["attributes"].append(attrs)
        own["flags"].append(lr.flags)
        own["dropped_attributes_count"].append(lr.droppedAttributesCount)
        self.n += 1

    def to_batch(self, source_id: str) -> pa.RecordBatch | None:
        n = self.n
        if not n:
            return None
        cols: dict[str, pa.Array] = {}
        for name in _LOG_OWN_COLS:
            cols[name] = pa.array(self.own[name], type=LOG_SCHEMA.field(name).type)
        for name in _LOG_CTX_COLS:
            cols[name] = pa.array(self.ctx[name], type=pa.string())
        cols["source_offset"] = pa.array(self.source_offset, type=pa.int64())
        cols["source_id"] = pa.repeat(pa.scalar(source_id, pa.string()), n)
        return _assemble(LOG_SCHEMA, cols, n)


# ---- one parsed document into the columns -------------------------------------------------


_RECORD_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError, UnicodeDecodeError)


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


class Sink:
    """Where one block's rows and rejects go."""

    def __init__(self, source: SourceInfo, unit: str) -> None:
        self.source = source
        self.unit = unit
        self.spans = SpanColumns()
        self.logs = LogColumns()
        self.rejects: list[Reject] = []
        self.record_index = 0

    def reject(self, offset: int, reason: str, raw: bytes) -> None:
        self.rejects.append(Reject(self.source.path, offset, reason, raw, self.unit))

    def _offset(self, line_no: int) -> int:
        if self.unit == "record":
            self.record_index += 1
            return self.record_index
        return line_no

    def take_doc(self, doc: _Doc, line_no: int) -> None:
        rs_lists = [doc.resourceSpans, doc.batches]
        rl_lists = [doc.resourceLogs]
        if doc.result is not None:
            rs_lists.append(doc.result.resourceSpans)
            rl_lists.append(doc.result.resourceLogs)
        for rss in rs_lists:
            for rs in rss:
                for ss in (rs.scopeSpans or rs.instrumentationLibrarySpans):
                    self._take_spans(rs.resource, ss, line_no)
        for rls in rl_lists:
            for rl in rls:
                for sl in (rl.scopeLogs or rl.instrumentationLibraryLogs):
                    self._take_logs(rl.resource, sl, line_no)

    def _take_spans(self, resource: _Resource | None, ss: _ScopeSpans, line_no: int) -> None:
        if ss.spans:
            self.take_group(self.spans, resource, ss.scope or ss.instrumentationLibrary,
                            ((self._offset(line_no), raw) for raw in ss.spans), _SPAN.decode, bytes)

    def _take_logs(self, resource: _Resource | None, sl: _ScopeLogs, line_no: int) -> None:
        if sl.logRecords:
            self.take_group(self.logs, resource, sl.scope or sl.instrumentationLibrary,
                            ((self._offset(line_no), raw) for raw in sl.logRecords), _LOG.decode, bytes)

    def take_group(self, cols: SpanColumns | LogColumns, resource: _Resource | None, scope: _Scope | None,
                   records: Iterable[tuple[int, Any]], decode: Callable[[Any], Any],
                   verbatim: Callable[[Any], bytes]) -> None:
        """Records of one (resource, scope): each decoded and added, or rejected verbatim."""
        try:
            ctx = _Context(resource, scope)
        except _RECORD_ERRORS as exc:
            for offset, raw in records:
                self.reject(offset, f"resource or scope: {_reason(exc)}", verbatim(raw))
            return
        before = cols.n
        for offset, raw in records:
            try:
                cols.add(decode(raw))
            except _RECORD_ERRORS as exc:
                self.reject(offset, _reason(exc), verbatim(raw))
                continue
            cols.source_offset.append(offset)
        added = cols.n - before
        if added:
            cols.add_context(ctx, added)

    def take_line(self, line: memoryview | bytes, line_no: int) -> None:
        """One line holding one OTLP document (or nothing but blanks)."""
        try:
            doc = _decode_doc(line)
        except _DOC_ERRORS as exc:
            raw = bytes(line)
            if raw.strip():
                self.reject(line_no, _reason(exc), raw)
            return
        self.take_doc(doc, line_no)

    def chunk(self) -> Chunk:
        sid = self.source.source_id
        return Chunk(spans=self.spans.to_batch(sid), logs=self.logs.to_batch(sid), rejects=self.rejects)


def _decode_doc(data: bytes | memoryview) -> _Doc:
    try:
        return _DOC.decode(data)
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError("invalid UTF-8") from exc


_DOC_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


def decode_lines(data: bytes, first_line: int, source: SourceInfo) -> tuple[Chunk, int]:
    """The careful path over a block of whole lines -> (chunk, number of lines in the block).

    `otlp_fast.decode_lines_fast` gives the same result faster; this is its reference."""
    sink = Sink(source, "line")
    line_no = first_line - 1
    view = memoryview(data)
    pos, size = 0, len(data)
    while pos < size:
        nl = data.find(b"\n", pos)
        end = size if nl < 0 else nl
        line_no += 1
        start, pos = pos, end + 1
        if end - start <= 2 and not data[start:end].strip():
            continue
        sink.take_line(view[start:end], line_no)
    return sink.chunk(), line_no - first_line + 1


def decode_document(data: bytes, source: SourceInfo) -> Chunk:
    """A whole (e.g. pretty-printed) document; offsets are record indexes."""
    sink = Sink(source, "record")
    data = data.removeprefix(_BOM)  # editors on Windows write one; msgspec refuses it
    try:
        doc = _decode_doc(data)
    except _DOC_ERRORS as exc:
        sink.reject(1, _reason(exc), data)
        return sink.chunk()
    sink.take_doc(doc, 1)
    return sink.chunk()


# ---- detection and the reader entry point -------------------------------------------------

_BOM = b"\xef\xbb\xbf"
# an OTLP key followed by its colon, so a value that merely mentions the word does not count
_KEY = re.compile(rb'"(?:resourceSpans|resourceLogs|batches|scopeSpans|scopeLogs|instrumentationLibrarySpans'
                  rb'|instrumentationLibraryLogs)"\s*:')


def sniff(head: bytes) -> bool:
    """An OTLP key in the head, and a JSON object at the start or at some line's start
    (the first lines of a Collector dump may be broken: they become rejects)."""
    text = head.removeprefix(_BOM).lstrip()
    if not (text.startswith(b"{") or b"\n{" in text):
        return False
    return _KEY.search(text) is not None


def is_line_mode(head: bytes) -> bool:
    """True for one document a line (Collector), False for one (pretty-printed) document."""
    text = head.removeprefix(_BOM).lstrip()
    lines = text.split(b"\n")
    if len(lines) == 1:
        return True  # a single line (possibly longer than the head)
    for i, ln in enumerate(lines):
        s = ln.strip()
        if len(s) > 1 and s.startswith(b"{") and (s.endswith(b"}") or i == len(lines) - 1):
            return True  # a whole (or head-truncated) object on one line
    return False


def read(stream: BinaryIO, source: SourceInfo) -> Iterator[Chunk]:
    from ingest.formats import iter_lines_blocks, read_head
    from ingest.otlp_fast import decode_lines_fast

    head, stream = read_head(stream)
    if not is_line_mode(head):
        data = stream.read()
        yield decode_document(data, source)
        return
    line = 1
    for block in iter_lines_blocks(stream, BLOCK_BYTES):
        chunk, nlines = decode_lines_fast(block.removeprefix(_BOM) if line == 1 else block, line, source)
        line += nlines
        yield chunk
