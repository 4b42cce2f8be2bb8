"""OTLP/JSON lines exactly as the Collector's file exporter writes them, and back.

The SDK has no file exporter, so the recorder encodes with the official OTLP protobuf encoder
(`opentelemetry-exporter-otlp-proto-common`) and applies the specification's JSON mapping:

- field names in lowerCamelCase, fields with default values omitted;
- `traceId`, `spanId`, `parentSpanId` as hex (the one exception to protobuf's base64 for bytes);
- 64-bit integers (`startTimeUnixNano`, `intValue`, …) as decimal strings;
- enums (`kind`, `status.code`, `severityNumber`) as integers.

One `TracesData` / `LogsData` message per line. The mapping is done by a small walk over
`ListFields()` (json_format is the slowest step of a multi-GB run); a test checks it against
json_format line by line. `parse_traces_line` / `parse_logs_line` undo the
hex mapping and parse with `opentelemetry-proto`, which is how the tests validate the output.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor, json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "traces_line",
    "logs_line",
    "traces_data_to_json",
    "logs_data_to_json",
    "reference_json",
    "parse_traces_line",
    "parse_logs_line",
]

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _ids(obj: dict[str, Any], convert: Any) -> None:
    for key in _ID_KEYS:
        value = obj.get(key)
        if value:
            obj[key] = convert(value)


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_to_b64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _walk_traces(doc: dict[str, Any], convert: Any) -> None:
    for rs in doc.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                _ids(span, convert)
                for link in span.get("links", ()):
                    _ids(link, convert)


def _walk_logs(doc: dict[str, Any], convert: Any) -> None:
    for rl in doc.get("resourceLogs", ()):
        for sl in rl.get("scopeLogs", ()):
            for record in sl.get("logRecords", ()):
                _ids(record, convert)


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


_FD = descriptor.FieldDescriptor
_INT64 = frozenset({_FD.TYPE_INT64, _FD.TYPE_UINT64, _FD.TYPE_FIXED64, _FD.TYPE_SFIXED64, _FD.TYPE_SINT64})
_ID_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})


def _scalar(fd: Any, value: Any) -> Any:
    kind = fd.type
    if kind == _FD.TYPE_BYTES:
        return value.hex() if fd.name in _ID_FIELDS else base64.b64encode(value).decode("ascii")
    if kind in _INT64:
        return str(value)
    if kind in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value  # int32/uint32/fixed32, enums as integers, bool, string, finite doubles


def _message(message: Any) -> dict[str, Any]:
    """The proto3 JSON mapping of `message` with OTLP's hex ids: what json_format.MessageToDict
    (use_integers_for_enums=True) gives after the id fix-up, in a fraction of the time.
    `ListFields()` yields exactly the fields that mapping prints, ordered by field number."""
    out: dict[str, Any] = {}
    for fd, value in message.ListFields():
        if fd.message_type is not None:
            if fd.is_repeated:
                out[fd.json_name] = [_message(v) for v in value]
            else:
                out[fd.json_name] = _message(value)
        elif fd.is_repeated:
            out[fd.json_name] = [_scalar(fd, v) for v in value]
        else:
            out[fd.json_name] = _scalar(fd, value)
    return out


def reference_json(data: TracesData | LogsData) -> bytes:
    """The same line through protobuf's own json_format (slow; the tests compare the two)."""
    doc = json_format.MessageToDict(data, use_integers_for_enums=True)
    _walk_traces(doc, _b64_to_hex)
    _walk_logs(doc, _b64_to_hex)
    return _dumps(doc)


def traces_data_to_json(data: TracesData) -> bytes:
    """One OTLP/JSON line (with its newline) for a TracesData message."""
    return _dumps(_message(data))


def logs_data_to_json(data: LogsData) -> bytes:
    return _dumps(_message(data))


def traces_line(spans: Sequence[ReadableSpan]) -> bytes:
    """SDK spans -> official OTLP protobuf encoding -> one OTLP/JSON line."""
    request = encode_spans(spans)
    return traces_data_to_json(TracesData(resource_spans=request.resource_spans))


def logs_line(records: Sequence[ReadableLogRecord]) -> bytes:
    request = encode_logs(records)
    return logs_data_to_json(LogsData(resource_logs=request.resource_logs))


def parse_traces_line(line: bytes | str) -> TracesData:
    """The TracesData of one line; raises json_format.ParseError / ValueError when invalid."""
    doc = json.loads(line)
    _walk_traces(doc, _hex_to_b64)
    return json_format.ParseDict(doc, TracesData())


def parse_logs_line(line: bytes | str) -> LogsData:
    doc = json.loads(line)
    _walk_logs(doc, _hex_to_b64)
    return json_format.ParseDict(doc, LogsData())
