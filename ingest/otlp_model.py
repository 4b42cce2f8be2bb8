"""The OTLP model: the records every OTLP decoding tier reads into, and the rules that make rows of them.

    typed records           AnyValue, KeyValue, …, Span, LogRecord: msgspec Structs named as
                            OTLP/JSON names them (protobuf is mapped onto the same records)
    the rules               ids, times, kind, status, severity, attribute values, the resource /
                            scope context, the promotion table, the first exception event, warnings
    the reference builder   SpanColumns, LogColumns and Sink: the careful path, one record at a
                            time, a bad record rejected verbatim while the good ones beside it land

The tiers (each imports this module and the dataset plumbing, never another tier):

    ingest/otlp_fast.py    the native scan (ingest/_otlpscan.c) and the one-call msgspec decode of
                           a line; lines they do not take go to `Sink`, which words every reject
    ingest/otlp_proto.py   protobuf messages mapped onto these records, then `Sink`

`ingest/otlp_json.py` is the OTLP/JSON format (detection, line or document) and its `read`,
which hands line blocks to otlp_fast and a whole document to `Sink`. The fast tiers write
exactly what `Sink` writes for the lines they take (tests/test_ingest_fastpath.py,
tests/test_ingest_native.py). Jaeger and Zipkin (`ingest/span_rows.py`) use the promotion table
and the exception rule from here too.

64-bit integers may be JSON numbers or strings (the OTLP/JSON rule for int64/fixed64).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize import host_from_resource, norm_parent_span_id, norm_span_id, norm_trace_id
from ingest.records import Chunk, Reject, SourceInfo, batch_from_columns, reject_reason
from ingest.schema import INT_PROMOTED, LOG_SCHEMA, PROMOTED, SPAN_KINDS, SPAN_SCHEMA, STATUS_CODES

__all__ = [
    # constants
    "MAX_I64",
    "ZERO_TRACE_ID",
    "ZERO_SPAN_ID",
    # typed records
    "AnyValue",
    "KeyValue",
    "ArrayValue",
    "KeyValueList",
    "Resource",
    "Scope",
    "Status",
    "Event",
    "Link",
    "Span",
    "LogRecord",
    # values
    "encode",
    "any_value",
    "attributes",
    "int_text",
    # enums
    "SPAN_KIND_BY_NUMBER",
    "STATUS_CODE_BY_NUMBER",
    "span_kind",
    "status_code",
    "severity_number",
    # ids, times, counts
    "trace_id_hex",
    "span_id_hex",
    "parent_span_id_hex",
    "unix_nano",
    "check_counts",
    # the resource / scope context
    "Context",
    "SPAN_CONTEXT_COLUMNS",
    "LOG_CONTEXT_COLUMNS",
    # promoted columns
    "PROMOTED_COLUMNS",
    "PROMOTED_BY_ATTRIBUTE",
    "INT_PROMOTED_INDEXES",
    "promoted_value",
    # exception_type / exception_message
    "first_exception",
    # warnings
    "WARN_END_BEFORE_START",
    "WARN_BAD_LINK",
    "WARN_UNKNOWN_KIND",
    # the reference builder
    "SpanColumns",
    "LogColumns",
    "Sink",
]

MAX_I64 = 2**63 - 1
ZERO_TRACE_ID = "0" * 32
ZERO_SPAN_ID = "0" * 16

# ---- typed records --------------------------------------------------------------------------


class AnyValue(msgspec.Struct, gc=False):
    stringValue: str | None = None
    boolValue: bool | None = None
    intValue: int | str | None = None
    doubleValue: float | str | None = None
    arrayValue: ArrayValue | None = None
    kvlistValue: KeyValueList | None = None
    bytesValue: str | None = None


class KeyValue(msgspec.Struct, gc=False):
    key: str = ""
    value: AnyValue | None = None


class ArrayValue(msgspec.Struct, gc=False):
    values: list[AnyValue] = []


class KeyValueList(msgspec.Struct, gc=False):
    values: list[KeyValue] = []


class Resource(msgspec.Struct, gc=False):
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0


class Scope(msgspec.Struct, gc=False):
    name: str = ""
    version: str = ""
    attributes: list[KeyValue] = []


class Status(msgspec.Struct, gc=False):
    code: int | str = 0
    message: str = ""


class Event(msgspec.Struct, gc=False):
    timeUnixNano: int | str = 0
    name: str = ""
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0


class Link(msgspec.Struct, gc=False):
    traceId: str = ""
    spanId: str = ""
    traceState: str = ""
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0
    flags: int = 0


class Span(msgspec.Struct, gc=False):
    traceId: str | None = None
    spanId: str | None = None
    traceState: str = ""
    parentSpanId: str = ""
    flags: int = 0
    name: str = ""
    kind: int | str = 0
    startTimeUnixNano: int | str | None = None
    endTimeUnixNano: int | str | None = None
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0
    events: list[Event] = []
    droppedEventsCount: int = 0
    links: list[Link] = []
    droppedLinksCount: int = 0
    status: Status | None = None


class LogRecord(msgspec.Struct, gc=False):
    timeUnixNano: int | str = 0
    observedTimeUnixNano: int | str = 0
    severityNumber: int | str = 0
    severityText: str = ""
    body: AnyValue | None = None
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0
    flags: int = 0
    traceId: str = ""
    spanId: str = ""
    eventName: str = ""


# ---- AnyValue -> plain JSON values ----------------------------------------------------------

encode = msgspec.json.Encoder().encode  # compact UTF-8 JSON bytes, as every JSON column is written


def any_value(v: AnyValue | None) -> Any:
    """An AnyValue as a plain JSON value (bytes as the base64 text written; None when empty)."""
    if v is None:
        return None
    x: Any = v.stringValue
    if x is not None:
        return x
    x = v.intValue
    if x is not None:
        return x if x.__class__ is int else int_text(x, "intValue")
    x = v.boolValue
    if x is not None:
        return x
    x = v.doubleValue
    if x is not None:
        return x if x.__class__ is not str else _float_text(x)
    x = v.kvlistValue
    if x is not None:
        return attributes(x.values)
    x = v.arrayValue
    if x is not None:
        return [any_value(e) for e in x.values]
    return v.bytesValue  # base64 text as written, or None for an empty AnyValue


def int_text(x: str, what: str) -> int:
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


def attributes(kvs: list[KeyValue]) -> dict[str, Any]:
    """A KeyValue list as a dict (a repeated key: the last one wins)."""
    return {kv.key: any_value(kv.value) for kv in kvs}


# ---- enums ----------------------------------------------------------------------------------

SPAN_KIND_BY_NUMBER = dict(enumerate(SPAN_KINDS))
STATUS_CODE_BY_NUMBER = dict(enumerate(STATUS_CODES))
_KIND_NAMES = {f"SPAN_KIND_{k}": k for k in SPAN_KINDS} | {k: k for k in SPAN_KINDS}
_STATUS_NAMES = {f"STATUS_CODE_{c}": c for c in STATUS_CODES} | {c: c for c in STATUS_CODES}


def span_kind(k: int | str) -> str:
    """A kind as a number, a digit string or a name (SPAN_KIND_SERVER or SERVER); UNSPECIFIED if unknown."""
    if type(k) is int:
        return SPAN_KINDS[k] if 0 <= k < len(SPAN_KINDS) else "UNSPECIFIED"
    if isinstance(k, str):
        return span_kind(int(k)) if k.isdigit() else _KIND_NAMES.get(k, "UNSPECIFIED")
    return "UNSPECIFIED"


def status_code(c: int | str) -> str:
    """A status code as a number, a digit string or a name; UNSET if unknown."""
    if type(c) is int:
        return STATUS_CODES[c] if 0 <= c < len(STATUS_CODES) else "UNSET"
    if isinstance(c, str):
        return status_code(int(c)) if c.isdigit() else _STATUS_NAMES.get(c, "UNSET")
    return "UNSET"


_SEVERITY_NAMES = {
    f"SEVERITY_NUMBER_{name}{i if i > 1 else ''}": base + i - 1
    for name, base in (("TRACE", 1), ("DEBUG", 5), ("INFO", 9), ("WARN", 13), ("ERROR", 17), ("FATAL", 21))
    for i in range(1, 5)
} | {"SEVERITY_NUMBER_UNSPECIFIED": 0}


def severity_number(s: int | str) -> int | None:
    """A severity as a number (int32), a digit string or a SEVERITY_NUMBER_* name; None otherwise."""
    if type(s) is int:
        return s if -(2**31) <= s < 2**31 else None
    if isinstance(s, str):
        return severity_number(int(s)) if s.isdigit() else _SEVERITY_NAMES.get(s)
    return None


# ---- ids, times, counts ---------------------------------------------------------------------


def trace_id_hex(v: str | None) -> str:
    """A trace id as 32 lowercase hex (any case or base64 accepted); ValueError if unusable."""
    if v is None or v == "":
        raise ValueError("trace id missing")
    if len(v) == 32:
        try:
            b = bytes.fromhex(v)
        except ValueError:
            b = b""
        if len(b) == 16 and v != ZERO_TRACE_ID:
            return b.hex()
    return norm_trace_id(v)


def span_id_hex(v: str | None) -> str:
    """A span id as 16 lowercase hex (any case or base64 accepted); ValueError if unusable."""
    if v is None or v == "":
        raise ValueError("span id missing")
    if len(v) == 16:
        try:
            b = bytes.fromhex(v)
        except ValueError:
            b = b""
        if len(b) == 8 and v != ZERO_SPAN_ID:
            return b.hex()
    return norm_span_id(v)


def parent_span_id_hex(v: str) -> str | None:
    """A parent id as 16 lowercase hex, or None for a root ("" or all zeros)."""
    if not v:
        return None
    if len(v) == 16:
        try:
            b = bytes.fromhex(v)
        except ValueError:
            b = b""
        if len(b) == 8:
            return None if v == ZERO_SPAN_ID else b.hex()
    return norm_parent_span_id(v)


def unix_nano(v: int | str | None, what: str) -> int:
    """A time in Unix nanoseconds (a number or a string of digits), 0 .. 2^63-1."""
    if v is None:
        raise ValueError(f"{what} missing")
    if isinstance(v, str):
        v = int_text(v, what)
    if not 0 <= v <= MAX_I64:
        raise ValueError(f"{what} out of range")
    return v


def check_counts(flags: int, *dropped: int) -> None:
    """flags fit the int64 column, dropped counts the int32 ones."""
    if not 0 <= flags <= MAX_I64:
        raise ValueError("flags out of range")
    for d in dropped:
        if not 0 <= d < 2**31:
            raise ValueError("a dropped count is out of range")


# ---- the resource / scope context -----------------------------------------------------------

SPAN_CONTEXT_COLUMNS = (
    "service_name",
    "service_version",
    "service_instance_id",
    "host",
    "scope_name",
    "scope_version",
    "resource_attributes",
    "scope_attributes",
)
LOG_CONTEXT_COLUMNS = ("service_name", "service_version", "host", "scope_name", "resource_attributes")


class Context:
    """Columns shared by every record of one (resource, scope)."""

    __slots__ = (
        "service_name",
        "service_version",
        "service_instance_id",
        "host",
        "resource_attributes",
        "scope_name",
        "scope_version",
        "scope_attributes",
    )

    def __init__(self, resource: Resource | None, scope: Scope | None) -> None:
        rattrs = attributes(resource.attributes) if resource is not None else {}
        self.service_name = _str_or_json(rattrs.get("service.name"))
        self.service_version = _str_or_json(rattrs.get("service.version"))
        self.service_instance_id = _str_or_json(rattrs.get("service.instance.id"))
        self.host = host_from_resource(rattrs)
        self.resource_attributes = encode(rattrs).decode()
        self.scope_name = (scope.name or None) if scope is not None else None
        self.scope_version = (scope.version or None) if scope is not None else None
        self.scope_attributes = encode(attributes(scope.attributes)).decode() if scope is not None else "{}"


def _str_or_json(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else encode(v).decode()


# ---- promoted columns -----------------------------------------------------------------------

# the promotion table (ingest/schema.py's PROMOTED) as the tiers use it: the columns in schema
# order, and per attribute name its (column index, priority: 0 = most preferred); one dict
# lookup per attribute instead of one per (column, candidate name)
PROMOTED_COLUMNS = tuple(PROMOTED)
PROMOTED_BY_ATTRIBUTE: dict[str, tuple[int, int]] = {
    name: (ci, pri) for ci, col in enumerate(PROMOTED_COLUMNS) for pri, name in enumerate(PROMOTED[col])
}
INT_PROMOTED_INDEXES = frozenset(i for i, c in enumerate(PROMOTED_COLUMNS) if c in INT_PROMOTED)


def promoted_value(ci: int, value: Any) -> Any:
    """An attribute value as promoted column `ci` holds it: int32 for the integer columns (None
    when it is not a number in range), else the text itself, or the value's JSON text."""
    if ci in INT_PROMOTED_INDEXES:
        try:
            value = int(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a double that is ±Infinity
            return None
        return value if -(2**31) <= value < 2**31 else None
    if isinstance(value, str):
        return value
    return None if value is None else encode(value).decode()


# ---- exception_type / exception_message -----------------------------------------------------


def first_exception(events: Iterable[Mapping[str, Any]]) -> tuple[str | None, str | None] | None:
    """(exception.type, exception.message) of the first event named "exception", each as text or
    None; None when no event has that name. `events` as the events column holds them."""
    for ev in events:
        if ev.get("name") == "exception":
            attrs = ev.get("attributes") or {}
            t, m = attrs.get("exception.type"), attrs.get("exception.message")
            return (None if t is None else str(t)), (None if m is None else str(m))
    return None


# ---- warnings (the span's warnings column) --------------------------------------------------

WARN_END_BEFORE_START = "end time before start time"  # ingest/_otlpscan.c writes it too
WARN_BAD_LINK = "a link has an invalid id, kept as written"
WARN_UNKNOWN_KIND = "unknown span kind, stored as UNSPECIFIED"

# ---- the reference builder: span columns ----------------------------------------------------

_SPAN_OWN_COLS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "trace_state",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status_code",
    "status_message",
    "attributes",
    "events",
    "links",
    "flags",
    "dropped_attributes_count",
    "dropped_events_count",
    "dropped_links_count",
    "warnings",
    "exception_type",
    "exception_message",
)


class SpanColumns:
    """Column lists for a batch of spans (built row by row, converted to Arrow once)."""

    def __init__(self) -> None:
        self.own: dict[str, list[Any]] = {c: [] for c in _SPAN_OWN_COLS}
        self.ctx: dict[str, list[Any]] = {c: [] for c in SPAN_CONTEXT_COLUMNS}
        self.source_offset: list[int] = []
        self.promoted: list[tuple[int, int, Any]] = []  # (row, column index, value)
        self.n = 0

    def add_context(self, ctx: Context, count: int) -> None:
        for c in SPAN_CONTEXT_COLUMNS:
            self.ctx[c].extend([getattr(ctx, c)] * count)

    def add(self, sp: Span) -> None:
        """Append one decoded span; ValueError (nothing appended) when it cannot be used."""
        tid = trace_id_hex(sp.traceId)
        sid = span_id_hex(sp.spanId)
        pid = parent_span_id_hex(sp.parentSpanId)
        start = unix_nano(sp.startTimeUnixNano, "startTimeUnixNano")
        end = unix_nano(sp.endTimeUnixNano if sp.endTimeUnixNano is not None else start, "endTimeUnixNano")
        check_counts(sp.flags, sp.droppedAttributesCount, sp.droppedEventsCount, sp.droppedLinksCount)
        warnings = []
        kind = span_kind(sp.kind)
        if kind == "UNSPECIFIED" and sp.kind not in (0, "0", "SPAN_KIND_UNSPECIFIED", "UNSPECIFIED"):
            warnings.append(WARN_UNKNOWN_KIND)
        if end < start:
            warnings.append(WARN_END_BEFORE_START)
        attrs = attributes(sp.attributes) if sp.attributes else {}
        events_out = []
        for ev in sp.events:
            eattrs = attributes(ev.attributes)  # before the time: a reject's reason names the first fault
            events_out.append(
                {
                    "time_ns": unix_nano(ev.timeUnixNano, "event timeUnixNano"),
                    "name": ev.name,
                    "attributes": eattrs,
                    "dropped_attributes_count": ev.droppedAttributesCount,
                }
            )
        exc_type, exc_msg = (first_exception(events_out) or (None, None)) if events_out else (None, None)
        links_out = []
        for ln in sp.links:
            try:
                ltid, lsid = trace_id_hex(ln.traceId), span_id_hex(ln.spanId)
            except ValueError:
                ltid, lsid = ln.traceId, ln.spanId
                if WARN_BAD_LINK not in warnings:
                    warnings.append(WARN_BAD_LINK)
            links_out.append(
                {
                    "trace_id": ltid,
                    "span_id": lsid,
                    "trace_state": ln.traceState,
                    "attributes": attributes(ln.attributes),
                    "dropped_attributes_count": ln.droppedAttributesCount,
                    "flags": ln.flags,
                }
            )
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
        own["status_code"].append(status_code(st.code) if st is not None else "UNSET")
        own["status_message"].append((st.message or None) if st is not None else None)
        own["attributes"].append(encode(attrs) if attrs else b"{}")
        own["events"].append(encode(events_out) if events_out else b"[]")
        own["links"].append(encode(links_out) if links_out else b"[]")
        own["flags"].append(sp.flags)
        own["dropped_attributes_count"].append(sp.droppedAttributesCount)
        own["dropped_events_count"].append(sp.droppedEventsCount)
        own["dropped_links_count"].append(sp.droppedLinksCount)
        own["warnings"].append(encode(warnings).decode() if warnings else None)
        own["exception_type"].append(exc_type)
        own["exception_message"].append(exc_msg)
        if attrs:
            row = self.n
            best: dict[int, tuple[int, Any]] = {}
            for key, value in attrs.items():
                hit = PROMOTED_BY_ATTRIBUTE.get(key)
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
        for name in SPAN_CONTEXT_COLUMNS:
            cols[name] = pa.array(ctx[name], type=pa.string())
        cols["duration_ns"] = pc.subtract(cols["end_ns"], cols["start_ns"])
        promoted: list[list[Any]] = [[None] * n for _ in PROMOTED_COLUMNS]
        for row, ci, value in self.promoted:
            promoted[ci][row] = promoted_value(ci, value)
        for ci, name in enumerate(PROMOTED_COLUMNS):
            cols[name] = pa.array(promoted[ci], type=SPAN_SCHEMA.field(name).type)
        cols["source_offset"] = pa.array(self.source_offset, type=pa.int64())
        cols["source_id"] = pa.repeat(pa.scalar(source_id, pa.string()), n)
        return batch_from_columns(SPAN_SCHEMA, cols, n)


# ---- the reference builder: log columns -----------------------------------------------------

_LOG_OWN_COLS = (
    "time_ns",
    "observed_time_ns",
    "severity_number",
    "severity_text",
    "body",
    "trace_id",
    "span_id",
    "event_name",
    "attributes",
    "flags",
    "dropped_attributes_count",
)


class LogColumns:
    def __init__(self) -> None:
        self.own: dict[str, list[Any]] = {c: [] for c in _LOG_OWN_COLS}
        self.ctx: dict[str, list[Any]] = {c: [] for c in LOG_CONTEXT_COLUMNS}
        self.source_offset: list[int] = []
        self.n = 0

    def add_context(self, ctx: Context, count: int) -> None:
        for c in LOG_CONTEXT_COLUMNS:
            self.ctx[c].extend([getattr(ctx, c)] * count)

    def add(self, lr: LogRecord) -> None:
        t = unix_nano(lr.timeUnixNano, "timeUnixNano")
        ot = unix_nano(lr.observedTimeUnixNano, "observedTimeUnixNano")
        check_counts(lr.flags, lr.droppedAttributesCount)
        tid = trace_id_hex(lr.traceId) if lr.traceId else None
        sid = span_id_hex(lr.spanId) if lr.spanId else None
        body = any_value(lr.body)
        # everything that can fail is computed before the first append: a half-added record
        # would leave the columns of unequal length
        attrs = encode(attributes(lr.attributes)).decode() if lr.attributes else "{}"
        severity = severity_number(lr.severityNumber)
        body = body if body is None or isinstance(body, str) else encode(body).decode()
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
        for name in LOG_CONTEXT_COLUMNS:
            cols[name] = pa.array(self.ctx[name], type=pa.string())
        cols["source_offset"] = pa.array(self.source_offset, type=pa.int64())
        cols["source_id"] = pa.repeat(pa.scalar(source_id, pa.string()), n)
        return batch_from_columns(LOG_SCHEMA, cols, n)


# ---- the reference builder: documents, lines and groups of records into the columns --------

# an OTLP/JSON document with its records kept as raw JSON: each is decoded (and rejected) alone


class _ScopeSpans(msgspec.Struct, gc=False):
    scope: Scope | None = None
    instrumentationLibrary: Scope | None = None
    spans: list[msgspec.Raw] = []


class _ScopeLogs(msgspec.Struct, gc=False):
    scope: Scope | None = None
    instrumentationLibrary: Scope | None = None
    logRecords: list[msgspec.Raw] = []


class _ResourceSpans(msgspec.Struct, gc=False):
    resource: Resource | None = None
    scopeSpans: list[_ScopeSpans] = []
    instrumentationLibrarySpans: list[_ScopeSpans] = []


class _ResourceLogs(msgspec.Struct, gc=False):
    resource: Resource | None = None
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
_SPAN = msgspec.json.Decoder(Span)
_LOG = msgspec.json.Decoder(LogRecord)
_RECORD_ERRORS = (
    msgspec.ValidationError,
    msgspec.DecodeError,
    ValueError,
    RecursionError,
    UnicodeDecodeError,
)
_DOC_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


def _decode_doc(data: bytes | memoryview) -> _Doc:
    try:
        return _DOC.decode(data)
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError("invalid UTF-8") from exc


class Sink:
    """Where one block's rows and rejects go: the careful path.

    unit: what offsets count, "line" (1-based line numbers), "record" (the record's 1-based index
    in a whole document) or "byte" (protobuf: the message's offset)."""

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

    def _take_doc(self, doc: _Doc, line_no: int) -> None:
        rs_lists = [doc.resourceSpans, doc.batches]
        rl_lists = [doc.resourceLogs]
        if doc.result is not None:
            rs_lists.append(doc.result.resourceSpans)
            rl_lists.append(doc.result.resourceLogs)
        for rss in rs_lists:
            for rs in rss:
                for ss in rs.scopeSpans or rs.instrumentationLibrarySpans:
                    self._take_spans(rs.resource, ss, line_no)
        for rls in rl_lists:
            for rl in rls:
                for sl in rl.scopeLogs or rl.instrumentationLibraryLogs:
                    self._take_logs(rl.resource, sl, line_no)

    def _take_spans(self, resource: Resource | None, ss: _ScopeSpans, line_no: int) -> None:
        if ss.spans:
            self.take_group(
                self.spans,
                resource,
                ss.scope or ss.instrumentationLibrary,
                ((self._offset(line_no), raw) for raw in ss.spans),
                _SPAN.decode,
                bytes,
            )

    def _take_logs(self, resource: Resource | None, sl: _ScopeLogs, line_no: int) -> None:
        if sl.logRecords:
            self.take_group(
                self.logs,
                resource,
                sl.scope or sl.instrumentationLibrary,
                ((self._offset(line_no), raw) for raw in sl.logRecords),
                _LOG.decode,
                bytes,
            )

    def take_group(
        self,
        cols: SpanColumns | LogColumns,
        resource: Resource | None,
        scope: Scope | None,
        records: Iterable[tuple[int, Any]],
        decode: Callable[[Any], Any],
        verbatim: Callable[[Any], bytes],
    ) -> None:
        """Records of one (resource, scope): each decoded and added, or rejected verbatim."""
        try:
            ctx = Context(resource, scope)
        except _RECORD_ERRORS as exc:
            for offset, raw in records:
                self.reject(offset, f"resource or scope: {reject_reason(exc)}", verbatim(raw))
            return
        before = cols.n
        for offset, raw in records:
            try:
                cols.add(decode(raw))
            except _RECORD_ERRORS as exc:
                self.reject(offset, reject_reason(exc), verbatim(raw))
                continue
            cols.source_offset.append(offset)
        added = cols.n - before
        if added:
            cols.add_context(ctx, added)

    def take_line(self, line: memoryview | bytes, line_no: int) -> None:
        """One line holding one OTLP/JSON document (or nothing but blanks)."""
        try:
            doc = _decode_doc(line)
        except _DOC_ERRORS as exc:
            raw = bytes(line)
            if raw.strip():
                self.reject(line_no, reject_reason(exc), raw)
            return
        self._take_doc(doc, line_no)

    def take_document(self, data: bytes) -> None:
        """A whole OTLP/JSON document (unit "record"); one that does not parse is rejected whole."""
        try:
            doc = _decode_doc(data)
        except _DOC_ERRORS as exc:
            self.reject(1, reject_reason(exc), data)
            return
        self._take_doc(doc, 1)

    def chunk(self) -> Chunk:
        sid = self.source.source_id
        return Chunk(spans=self.spans.to_batch(sid), logs=self.logs.to_batch(sid), rejects=self.rejects)
