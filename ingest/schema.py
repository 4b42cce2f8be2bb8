"""The two tables every reader normalises to: spans and logs.

This is the contract between the readers (OTLP, Jaeger, Zipkin), the dataset writer and
`correlate/`. Every Parquet file of a dataset holds exactly these columns, in this order.

Conventions:
- ids are lowercase hex: trace_id 32 chars, span_id / parent_span_id 16 chars;
  parent_span_id is NULL for a root span (never "" nor all zeros).
- times are int64 nanoseconds since the Unix epoch (UTC); duration_ns = end_ns - start_ns.
- kind: one of SPAN_KINDS; status_code: one of STATUS_CODES.
- attributes / resource_attributes / scope_attributes: a JSON object (text) of key -> value,
  AnyValue mapped to JSON (arrays and kvlists nested, bytes as base64 text).
- events: JSON array of {"time_ns", "name", "attributes", "dropped_attributes_count"}.
- links: JSON array of {"trace_id", "span_id", "trace_state", "attributes", "type"}
  ("type" is "FOLLOWS_FROM" for Jaeger follows-from references, else absent).
- promoted columns (http_*, db_*, rpc_*, messaging_*, peer_service, code_*, exception_*)
  are copies of well-known attributes, see PROMOTED; exception_* come from the first
  "exception" event.
- source_id names a source in the manifest; source_offset is the 1-based line number for
  line-oriented text inputs, the byte offset of the message for protobuf, the record
  index for whole-document inputs.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "SPAN_SCHEMA",
    "LOG_SCHEMA",
    "SPAN_KINDS",
    "STATUS_CODES",
    "PROMOTED",
    "INT_PROMOTED",
]

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")

# promoted column -> attribute names to take it from, first present wins
# (current semantic-convention name first, then the older names real files still carry).
PROMOTED: dict[str, tuple[str, ...]] = {
    "http_method": ("http.request.method", "http.method"),
    "http_route": ("http.route", "http.target", "url.path", "http.path"),
    "http_status_code": ("http.response.status_code", "http.status_code"),
    "db_system": ("db.system.name", "db.system"),
    "db_statement": ("db.query.text", "db.statement"),
    "db_operation": ("db.operation.name", "db.operation"),
    "rpc_system": ("rpc.system",),
    "rpc_service": ("rpc.service",),
    "rpc_method": ("rpc.method",),
    "messaging_system": ("messaging.system",),
    "messaging_destination": ("messaging.destination.name", "messaging.destination"),
    "messaging_operation": ("messaging.operation.type", "messaging.operation"),
    "peer_service": ("peer.service", "server.address", "net.peer.name"),
    "code_filepath": ("code.file.path", "code.filepath"),
    "code_function": ("code.function.name", "code.function"),
    "code_lineno": ("code.line.number", "code.lineno"),
}
INT_PROMOTED = frozenset({"http_status_code", "code_lineno"})

_S = pa.string()
_I64 = pa.int64()
_I32 = pa.int32()

SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", _S),
        ("span_id", _S),
        ("parent_span_id", _S),
        ("trace_state", _S),
        ("name", _S),
        ("kind", _S),
        ("service_name", _S),
        ("service_version", _S),
        ("service_instance_id", _S),
        ("host", _S),
        ("scope_name", _S),
        ("scope_version", _S),
        ("start_ns", _I64),
        ("end_ns", _I64),
        ("duration_ns", _I64),
        ("status_code", _S),
        ("status_message", _S),
        ("attributes", _S),
        ("resource_attributes", _S),
        ("scope_attributes", _S),
        ("events", _S),
        ("links", _S),
        ("flags", _I64),
        ("dropped_attributes_count", _I32),
        ("dropped_events_count", _I32),
        ("dropped_links_count", _I32),
        ("warnings", _S),
        ("http_method", _S),
        ("http_route", _S),
        ("http_status_code", _I32),
        ("db_system", _S),
        ("db_statement", _S),
        ("db_operation", _S),
        ("rpc_system", _S),
        ("rpc_service", _S),
        ("rpc_method", _S),
        ("messaging_system", _S),
        ("messaging_destination", _S),
        ("messaging_operation", _S),
        ("peer_service", _S),
        ("exception_type", _S),
        ("exception_message", _S),
        ("code_filepath", _S),
        ("code_function", _S),
        ("code_lineno", _I32),
        ("source_id", _S),
        ("source_offset", _I64),
    ]
)

LOG_SCHEMA = pa.schema(
    [
        ("time_ns", _I64),
        ("observed_time_ns", _I64),
        ("severity_number", _I32),
        ("severity_text", _S),
        ("body", _S),
        ("trace_id", _S),
        ("span_id", _S),
        ("service_name", _S),
        ("service_version", _S),
        ("host", _S),
        ("scope_name", _S),
        ("event_name", _S),
        ("attributes", _S),
        ("resource_attributes", _S),
        ("flags", _I64),
        ("dropped_attributes_count", _I32),
        ("source_id", _S),
        ("source_offset", _I64),
    ]
)
