"""The OpenTelemetry Collector's ClickHouse exporter, as tests need it: its DDL, exactly, in the
schema versions dcr reads, and its row mapping (OTLP/JSON in, rows out), as its Go source does it.

DDL sources (opentelemetry-collector-contrib, exporter/clickhouseexporter):

- CURRENT: internal/sqltemplates/traces_table.sql and logs_table.sql (the Map schema: `ScopeName`
  columns, `Duration UInt64`, `SpanKind` from pdata's `Kind().String()` = "Server", `StatusCode`
  from `Code().String()` = "Error"), rendered as the exporter renders them with no cluster, the
  `MergeTree()` engine, no TTL and no full-text search.
- OLDER: the traces DDL of exporter_traces.go before the scope columns (`Duration Int64`, the
  scope in `SpanAttributes` as `otel.scope.name`/`otel.scope.version`, `traceutil.SpanKindStr` =
  "SPAN_KIND_SERVER", `traceutil.StatusCodeStr` = "STATUS_CODE_ERROR"), and its logs DDL of the
  same time (`TraceFlags UInt32`, `SeverityNumber Int32`, no scope columns).
- JSON: internal/sqltemplates/traces_json_table.sql and logs_json_table.sql (attributes as the
  `JSON` type: `json.Marshal(attrs.AsRaw())`).

Map values are pdata's `Value.AsString()`: text as is, ints in decimal, doubles as Go's 'g'/-1
(JSON-like), bools `true`/`false`, arrays and maps as JSON, bytes as base64.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

CURRENT_TRACES = """CREATE TABLE IF NOT EXISTS {db}.{table}  (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')),
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)

SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

CURRENT_LOGS = """CREATE TABLE IF NOT EXISTS {db}.{table}  (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),

    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8,
    INDEX idx_body_ngrambf Body TYPE ngrambf_v1(4, 32768, 3, 0) GRANULARITY 1
    ) ENGINE = MergeTree()
    PARTITION BY toDate(TimestampTime)
    PRIMARY KEY (ServiceName, TimestampTime)
    ORDER BY (ServiceName, TimestampTime, Timestamp)

    SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

OLDER_TRACES = """
CREATE TABLE IF NOT EXISTS {db}.{table} (
     Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
     TraceId String CODEC(ZSTD(1)),
     SpanId String CODEC(ZSTD(1)),
     ParentSpanId String CODEC(ZSTD(1)),
     TraceState String CODEC(ZSTD(1)),
     SpanName LowCardinality(String) CODEC(ZSTD(1)),
     SpanKind LowCardinality(String) CODEC(ZSTD(1)),
     ServiceName LowCardinality(String) CODEC(ZSTD(1)),
     ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
     SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
     Duration Int64 CODEC(ZSTD(1)),
     StatusCode LowCardinality(String) CODEC(ZSTD(1)),
     StatusMessage String CODEC(ZSTD(1)),
     Events Nested (
         Timestamp DateTime64(9),
         Name LowCardinality(String),
         Attributes Map(LowCardinality(String), String)
     ) CODEC(ZSTD(1)),
     Links Nested (
         TraceId String,
         SpanId String,
         TraceState String,
         Attributes Map(LowCardinality(String), String)
     ) CODEC(ZSTD(1)),
     INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
     INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE MergeTree()

PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toUnixTimestamp(Timestamp), TraceId)
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1;
"""

OLDER_LOGS = """CREATE TABLE IF NOT EXISTS {db}.{table} (
      Timestamp DateTime64(9),
      TraceId String,
      SpanId String,
      TraceFlags UInt32,
      SeverityText LowCardinality(String),
      SeverityNumber Int32,
      ServiceName LowCardinality(String),
      Body String,
      ResourceAttributes Map(LowCardinality(String), String),
      LogAttributes Map(LowCardinality(String), String),
      INDEX idx_trace_id TraceId TYPE bloom_filter GRANULARITY 1,
      INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter GRANULARITY 1,
      INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter GRANULARITY 1,
      INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter GRANULARITY 1,
      INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter GRANULARITY 1,
      INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1
)
ENGINE MergeTree()
      PARTITION BY toDate(Timestamp)
      ORDER BY (ServiceName, SeverityText, toUnixTimestamp(Timestamp), TraceId)
      SETTINGS ttl_only_drop_parts = 1;
"""

JSON_TRACES = """CREATE TABLE IF NOT EXISTS "{db}"."{table}"  (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes JSON CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes JSON CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes JSON
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes JSON
    ) CODEC(ZSTD(1)),
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)

SETTINGS index_granularity=8192, ttl_only_drop_parts = 1
"""

JSON_LOGS = """CREATE TABLE IF NOT EXISTS "{db}"."{table}"  (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes JSON CODEC(ZSTD(1)),
    ResourceAttributesKeys Array(LowCardinality(String)) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes JSON CODEC(ZSTD(1)),
    ScopeAttributesKeys Array(LowCardinality(String)) CODEC(ZSTD(1)),
    LogAttributes JSON CODEC(ZSTD(1)),
    LogAttributesKeys Array(LowCardinality(String)) CODEC(ZSTD(1)),

    INDEX idx_res_attr_keys ResourceAttributesKeys TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_keys ScopeAttributesKeys TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_keys LogAttributesKeys TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, toDateTime(Timestamp))
ORDER BY (ServiceName, toDateTime(Timestamp), Timestamp)

SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

SCHEMAS = {
    "current": (CURRENT_TRACES, CURRENT_LOGS),
    "older": (OLDER_TRACES, OLDER_LOGS),
    "json": (JSON_TRACES, JSON_LOGS),
}

_KIND_CURRENT = ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"]
_KIND_OLDER = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
]
_STATUS_CURRENT = ["Unset", "Ok", "Error"]
_STATUS_OLDER = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]
_KIND_NAMES = {f"SPAN_KIND_{k}": i for i, k in enumerate(k.upper() for k in _KIND_CURRENT)}
_STATUS_NAMES = {f"STATUS_CODE_{k.upper()}": i for i, k in enumerate(_STATUS_CURRENT)}


# ---- OTLP/JSON AnyValue -> raw (AsRaw) and text (AsString) ------------------------------------


def raw(v: dict[str, Any] | None) -> Any:
    if not v:
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "arrayValue" in v:
        return [raw(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: raw(kv.get("value")) for kv in v["kvlistValue"].get("values", [])}
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _go_float(f: float) -> str:
    if math.isinf(f) or math.isnan(f):
        return f"json: unsupported value: {f}"
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    return repr(f)


def as_string(v: dict[str, Any] | None) -> str:
    """pdata's Value.AsString of an OTLP/JSON AnyValue."""
    if not v:
        return ""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return str(int(v["intValue"]))
    if "boolValue" in v:
        return "true" if v["boolValue"] else "false"
    if "doubleValue" in v:
        return _go_float(float(v["doubleValue"]))
    if "bytesValue" in v:
        return v["bytesValue"]
    return json.dumps(raw(v), separators=(",", ":"))


def _attrs(kvs: list[dict[str, Any]], mode: str) -> Any:
    if mode == "json":
        return {kv["key"]: raw(kv.get("value")) for kv in kvs}
    return {kv["key"]: as_string(kv.get("value")) for kv in kvs}


def _ts(ns: int) -> str:
    return f"{ns // 10**9}.{ns % 10**9:09d}"


def _enum(value: Any, names: dict[str, int]) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return names.get(value, 0)


# ---- rows ----------------------------------------------------------------------------------------


def span_rows(docs: Iterable[dict[str, Any]], schema: str) -> Iterator[dict[str, Any]]:
    """The rows the exporter of `schema` ("current", "older", "json") inserts for OTLP TracesData."""
    mode = "json" if schema == "json" else "map"
    kinds = _KIND_OLDER if schema == "older" else _KIND_CURRENT
    statuses = _STATUS_OLDER if schema == "older" else _STATUS_CURRENT
    for doc in docs:
        for rs in doc.get("resourceSpans", []):
            rkvs = (rs.get("resource") or {}).get("attributes", [])
            res = _attrs(rkvs, mode)
            service = next((raw(kv.get("value")) for kv in rkvs if kv["key"] == "service.name"), "")
            for ss in rs.get("scopeSpans", []):
                scope = ss.get("scope") or {}
                for sp in ss.get("spans", []):
                    attrs = _attrs(sp.get("attributes", []), mode)
                    if schema == "older":
                        if scope.get("name"):
                            attrs["otel.scope.name"] = scope["name"]
                        if scope.get("version"):
                            attrs["otel.scope.version"] = scope["version"]
                    start, end = int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"])
                    duration = end - start
                    if schema != "older" and duration < 0:
                        duration += 2**64  # uint64(end - start)
                    status = sp.get("status") or {}
                    events = sp.get("events", [])
                    links = sp.get("links", [])
                    row = {
                        "Timestamp": _ts(start),
                        "TraceId": sp["traceId"].lower(),
                        "SpanId": sp["spanId"].lower(),
                        "ParentSpanId": (sp.get("parentSpanId") or "").lower(),
                        "TraceState": sp.get("traceState", ""),
                        "SpanName": sp.get("name", ""),
                        "SpanKind": kinds[_enum(sp.get("kind", 0), _KIND_NAMES)],
                        "ServiceName": service if isinstance(service, str) else "",
                        "ResourceAttributes": res,
                        "SpanAttributes": attrs,
                        "Duration": duration,
                        "StatusCode": statuses[_enum(status.get("code", 0), _STATUS_NAMES)],
                        "StatusMessage": status.get("message", ""),
                        "Events.Timestamp": [_ts(int(e["timeUnixNano"])) for e in events],
                        "Events.Name": [e.get("name", "") for e in events],
                        "Events.Attributes": [_attrs(e.get("attributes", []), mode) for e in events],
                        "Links.TraceId": [ln["traceId"].lower() for ln in links],
                        "Links.SpanId": [ln["spanId"].lower() for ln in links],
                        "Links.TraceState": [ln.get("traceState", "") for ln in links],
                        "Links.Attributes": [_attrs(ln.get("attributes", []), mode) for ln in links],
                    }
                    if schema != "older":
                        row["ScopeName"] = scope.get("name", "")
                        row["ScopeVersion"] = scope.get("version", "")
                    yield row


def log_rows(docs: Iterable[dict[str, Any]], schema: str) -> Iterator[dict[str, Any]]:
    mode = "json" if schema == "json" else "map"
    for doc in docs:
        for rl in doc.get("resourceLogs", []):
            rkvs = (rl.get("resource") or {}).get("attributes", [])
            res = _attrs(rkvs, mode)
            service = next((raw(kv.get("value")) for kv in rkvs if kv["key"] == "service.name"), "")
            for sl in rl.get("scopeLogs", []):
                scope = sl.get("scope") or {}
                for lr in sl.get("logRecords", []):
                    t = int(lr.get("timeUnixNano") or 0) or int(lr.get("observedTimeUnixNano") or 0)
                    row = {
                        "Timestamp": _ts(t),
                        "TraceId": (lr.get("traceId") or "").lower(),
                        "SpanId": (lr.get("spanId") or "").lower(),
                        "TraceFlags": int(lr.get("flags", 0)) & 0xFF,
                        "SeverityText": lr.get("severityText", ""),
                        "SeverityNumber": int(lr.get("severityNumber", 0) or 0),
                        "ServiceName": service if isinstance(service, str) else "",
                        "Body": as_string(lr.get("body")),
                        "ResourceAttributes": res,
                        "LogAttributes": _attrs(lr.get("attributes", []), mode),
                    }
                    if schema != "older":
                        row["ScopeName"] = scope.get("name", "")
                        row["ScopeVersion"] = scope.get("version", "")
                        row["ScopeAttributes"] = _attrs(scope.get("attributes", []), mode)
                        row["ResourceSchemaUrl"] = rl.get("schemaUrl", "")
                        row["ScopeSchemaUrl"] = sl.get("schemaUrl", "")
                    if schema == "json":
                        row["ResourceAttributesKeys"] = sorted(res)
                        row["ScopeAttributesKeys"] = sorted(row["ScopeAttributes"])
                        row["LogAttributesKeys"] = sorted(row["LogAttributes"])
                    yield row


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def create(
    con: Any, schema: str, db: str = "otel", traces: str = "otel_traces", logs: str = "otel_logs"
) -> None:
    """Create the database and the two tables of `schema` on a chDB connection."""
    t_ddl, l_ddl = SCHEMAS[schema]
    con.query(f"CREATE DATABASE IF NOT EXISTS {db}")
    con.query(t_ddl.format(db=db, table=traces))
    con.query(l_ddl.format(db=db, table=logs))


def insert(con: Any, table: str, rows: Iterable[dict[str, Any]], batch: int = 2000) -> int:
    """Insert rows (JSONEachRow) on a chDB connection; how many."""
    n = 0
    buf: list[str] = []
    for row in rows:
        buf.append(json.dumps(row, separators=(",", ":")))
        n += 1
        if len(buf) >= batch:
            con.query(f"INSERT INTO {table} FORMAT JSONEachRow\n" + "\n".join(buf))
            buf = []
    if buf:
        con.query(f"INSERT INTO {table} FORMAT JSONEachRow\n" + "\n".join(buf))
    return n


def load_scenario(
    con: Any,
    folder: Path,
    schema: str,
    db: str = "otel",
    traces: str = "otel_traces",
    logs: str = "otel_logs",
) -> tuple[int, int]:
    """A scenario's traces.jsonl and logs.jsonl into freshly created tables; (spans, logs)."""
    create(con, schema, db, traces, logs)
    ns = insert(con, f"{db}.{traces}", span_rows(read_lines(folder / "traces.jsonl"), schema))
    nl = insert(con, f"{db}.{logs}", log_rows(read_lines(folder / "logs.jsonl"), schema))
    return ns, nl
