"""OTLP protobuf files as the Collector's file exporter writes them.

    [4-byte big-endian length][TracesData or LogsData message] … repeated

A message is told to be traces or logs from its wire shape (a Span starts with its
`trace_id` bytes, a LogRecord with the fixed64 `time_unix_nano` or a varint), then decoded
with `opentelemetry-proto`'s classes and mapped onto the typed records of `ingest/otlp_model.py`
that OTLP/JSON is decoded into too, so both give the same rows. Offsets are the byte offset of
the length prefix (unit "byte"); a message that does not parse is rejected whole, a bad span or
log record alone.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest import otlp_model as om
from ingest.formats import CORRUPT_ERRORS
from ingest.records import Chunk, SourceInfo

__all__ = ["sniff", "read", "read_range", "message_ranges", "message_kind", "MAX_MESSAGE_BYTES"]

MAX_MESSAGE_BYTES = 1 << 30
_CHUNK_RECORDS = 20_000  # flush a chunk after about this many records

# ---- wire-level peeking -------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of one message level; ValueError on bad wire data."""
    pos = 0
    value: bytes | int
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            value, pos = _varint(buf, pos)
        elif wt == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wt == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type")
        if pos > len(buf) or field == 0:
            raise ValueError("truncated field")
        yield field, wt, value


def message_kind(msg: bytes) -> str | None:
    """ "traces", "logs", or None when the message holds no record to tell by."""
    # a length-delimited field (wire type 2) is bytes: the isinstance tests only tell the checker so
    undecided = False
    for f1, wt1, res in _fields(msg):
        if f1 != 1 or wt1 != 2 or not isinstance(res, bytes):
            continue
        for f2, wt2, scope in _fields(res):
            if f2 not in (2, 1000) or wt2 != 2 or not isinstance(scope, bytes):
                continue
            for f3, wt3, rec in _fields(scope):
                if f3 != 2 or wt3 != 2 or not isinstance(rec, bytes):
                    continue
                kind = _record_kind(rec)
                if kind is not None:
                    return kind
                undecided = True
    # records of fields both kinds have (a log of a body and a severity text): logs, as before,
    # since a span without ids is no span
    return "logs" if undecided else None


# A record's fields whose number and wire type only a Span (or only a LogRecord) has. A field
# left at its default is not written, so the first field alone does not tell: a span whose
# trace_id is empty starts with its span_id (2, bytes), which is no LogRecord's time (1, fixed64).
# (3: trace_state / severity_text, 5: name / body and 9: attributes are bytes in both.)
_SPAN_FIELDS = frozenset(
    (
        (1, 2),
        (2, 2),
        (4, 2),
        (6, 0),
        (7, 1),
        (8, 1),
        (10, 0),
        (11, 2),
        (12, 0),
        (13, 2),
        (14, 0),
        (15, 2),
        (16, 5),
    )
)
_LOG_FIELDS = frozenset(((1, 1), (2, 0), (6, 2), (7, 0), (8, 5), (10, 2), (11, 1), (12, 2)))


def _record_kind(rec: bytes) -> str | None:
    """ "traces" or "logs" by the first field that only one of Span and LogRecord has."""
    for field, wt, _ in _fields(rec):
        if (field, wt) in _SPAN_FIELDS:
            return "traces"
        if (field, wt) in _LOG_FIELDS:
            return "logs"
    return None


def sniff(head: bytes) -> bool:
    if len(head) < 6:
        return False
    n = int.from_bytes(head[:4], "big")
    if not 0 < n <= MAX_MESSAGE_BYTES or head[4] != 0x0A:
        return False
    body = head[4 : 4 + n]
    if len(body) == n:
        try:
            return message_kind(body) is not None
        except ValueError:
            return False
    try:
        inner, _ = _varint(body, 1)
    except ValueError:
        return False
    return inner < n


# ---- protobuf -> the typed records of the OTLP model --------------------------------------


def _any(v: common_pb2.AnyValue) -> om.AnyValue:
    which = v.WhichOneof("value")
    if which is None:
        return om.AnyValue()
    if which == "string_value":
        return om.AnyValue(stringValue=v.string_value)
    if which == "int_value":
        return om.AnyValue(intValue=v.int_value)
    if which == "bool_value":
        return om.AnyValue(boolValue=v.bool_value)
    if which == "double_value":
        return om.AnyValue(doubleValue=v.double_value)
    if which == "bytes_value":
        return om.AnyValue(bytesValue=base64.b64encode(v.bytes_value).decode("ascii"))
    if which == "array_value":
        return om.AnyValue(arrayValue=om.ArrayValue(values=[_any(e) for e in v.array_value.values]))
    return om.AnyValue(kvlistValue=om.KeyValueList(values=_kvs(v.kvlist_value.values)))


def _kvs(kvs: Any) -> list[om.KeyValue]:
    return [om.KeyValue(key=kv.key, value=_any(kv.value) if kv.HasField("value") else None) for kv in kvs]


def _hex(b: bytes) -> str:
    return b.hex()


def _resource(rs: Any) -> om.Resource | None:
    if not rs.HasField("resource"):
        return None
    return om.Resource(
        attributes=_kvs(rs.resource.attributes), droppedAttributesCount=rs.resource.dropped_attributes_count
    )


def _scope(ss: Any) -> om.Scope | None:
    if not ss.HasField("scope"):
        return None
    return om.Scope(name=ss.scope.name, version=ss.scope.version, attributes=_kvs(ss.scope.attributes))


def _span(sp: trace_pb2.Span) -> om.Span:
    return om.Span(
        traceId=_hex(sp.trace_id),
        spanId=_hex(sp.span_id),
        traceState=sp.trace_state,
        parentSpanId=_hex(sp.parent_span_id),
        flags=sp.flags,
        name=sp.name,
        kind=int(sp.kind),
        startTimeUnixNano=sp.start_time_unix_nano,
        endTimeUnixNano=sp.end_time_unix_nano,
        attributes=_kvs(sp.attributes),
        droppedAttributesCount=sp.dropped_attributes_count,
        events=[
            om.Event(
                timeUnixNano=e.time_unix_nano,
                name=e.name,
                attributes=_kvs(e.attributes),
                droppedAttributesCount=e.dropped_attributes_count,
            )
            for e in sp.events
        ],
        droppedEventsCount=sp.dropped_events_count,
        links=[
            om.Link(
                traceId=_hex(ln.trace_id),
                spanId=_hex(ln.span_id),
                traceState=ln.trace_state,
                attributes=_kvs(ln.attributes),
                droppedAttributesCount=ln.dropped_attributes_count,
                flags=ln.flags,
            )
            for ln in sp.links
        ],
        droppedLinksCount=sp.dropped_links_count,
        status=om.Status(code=int(sp.status.code), message=sp.status.message)
        if sp.HasField("status")
        else None,
    )


def _log(lr: logs_pb2.LogRecord) -> om.LogRecord:
    return om.LogRecord(
        timeUnixNano=lr.time_unix_nano,
        observedTimeUnixNano=lr.observed_time_unix_nano,
        severityNumber=int(lr.severity_number),
        severityText=lr.severity_text,
        body=_any(lr.body) if lr.HasField("body") else None,
        attributes=_kvs(lr.attributes),
        droppedAttributesCount=lr.dropped_attributes_count,
        flags=lr.flags,
        traceId=_hex(lr.trace_id),
        spanId=_hex(lr.span_id),
        eventName=lr.event_name,
    )


def _serialize(rec: Any) -> bytes:
    return rec.SerializeToString()


def _take_message(sink: om.Sink, msg: bytes, offset: int) -> None:
    try:
        kind = message_kind(msg)
        if kind == "logs":
            data: Any = logs_pb2.LogsData.FromString(msg)
        else:
            data = trace_pb2.TracesData.FromString(msg)
    except (ValueError, DecodeError) as exc:
        sink.reject(
            offset,
            f"not an OTLP protobuf message: {str(exc).splitlines()[0] if str(exc) else 'bad wire data'}"[
                :300
            ],
            msg,
        )
        return
    if kind == "logs":
        for rl in data.resource_logs:
            res = _resource(rl)
            for sl in rl.scope_logs:
                sink.take_group(
                    sink.logs, res, _scope(sl), ((offset, r) for r in sl.log_records), _log, _serialize
                )
    else:
        for rs in data.resource_spans:
            res = _resource(rs)
            for ss in rs.scope_spans:
                sink.take_group(
                    sink.spans, res, _scope(ss), ((offset, s) for s in ss.spans), _span, _serialize
                )


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = stream.read(min(n - got, 1 << 24))
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def read(stream: BinaryIO, source: SourceInfo, start: int = 0, end: int | None = None) -> Iterator[Chunk]:
    """Messages from the stream's position, taken to be byte `start` of the input, up to the first
    message starting at or after `end` (None: to the end)."""
    sink = om.Sink(source, "byte")
    offset = start
    try:
        while end is None or offset < end:
            prefix = _read_exact(stream, 4)
            if not prefix:
                break
            if len(prefix) < 4:
                sink.reject(offset, "truncated length prefix", prefix)
                break
            n = int.from_bytes(prefix, "big")
            if n > MAX_MESSAGE_BYTES:
                rest = _read_exact(stream, 1 << 20)
                sink.reject(
                    offset,
                    "message length over 1 GiB: not a length-prefixed OTLP protobuf stream; "
                    "the rest of the input is unreadable",
                    prefix + rest,
                )
                break
            msg = _read_exact(stream, n)
            if len(msg) < n:
                sink.reject(offset, "truncated message", prefix + msg)
                break
            _take_message(sink, msg, offset)
            offset += 4 + n
            if sink.spans.n + sink.logs.n >= _CHUNK_RECORDS:
                yield sink.chunk()
                sink = om.Sink(source, "byte")
    except CORRUPT_ERRORS:  # a compressed input broke off: the messages read before it land first
        yield sink.chunk()
        raise
    yield sink.chunk()


def message_ranges(path: str, size: int, step: int) -> list[tuple[int, int]]:
    """Byte ranges of about `step` that start and end on message boundaries (found by reading
    only the length prefixes); a broken prefix ends the last range at the end of the file."""
    ranges, start, offset = [], 0, 0
    with open(path, "rb") as fh:
        while offset < size:
            fh.seek(offset)
            prefix = fh.read(4)
            n = int.from_bytes(prefix, "big") if len(prefix) == 4 else None
            if n is None or n > MAX_MESSAGE_BYTES or offset + 4 + n > size:
                offset = size
                break
            offset += 4 + n
            if offset - start >= step:
                ranges.append((start, offset))
                start = offset
    if start < size:
        ranges.append((start, size))
    return ranges


def read_range(path: str, start: int, end: int, source: SourceInfo) -> Chunk:
    """The messages that start in [start, end) of `path`, as one chunk."""
    with open(path, "rb") as fh:
        fh.seek(start)
        chunks = list(read(fh, source, start, end))
    spans = [c.spans for c in chunks if c.spans is not None]
    logs = [c.logs for c in chunks if c.logs is not None]
    return Chunk(
        spans=pa.concat_batches(spans) if spans else None,
        logs=pa.concat_batches(logs) if logs else None,
        rejects=[r for c in chunks for r in c.rejects],
    )
