"""ClickHouse (the OpenTelemetry Collector's ClickHouse exporter's tables) -> chunks.

    clickhouse://host/otel?traces=otel_traces&logs=otel_logs   over HTTP(S), clickhouse-connect
    chdb://PATH                                                the same tables from a local data
                                                               path, in process (chDB, through
                                                               clickhouse-connect's chdb backend)

The store does the heavy work: the range and the services are pushed down (`Timestamp` range,
`ServiceName IN`: the exporter's partition key is `toDate(Timestamp)` and its primary key starts
with `ServiceName`), and each row is turned into one OTLP/JSON line *in the query* (one
`TracesData`/`LogsData` a row, `concat` and `toJSONString`). The rows come back as Arrow record
batches of that one text column; each batch's lines are regrouped by (resource, scope), up to 256
records a line as a Collector's dump holds them, and go through the OTLP/JSON line reader
(`ingest/otlp_fast.py`: the native tier, then the careful one): the same normalisation, promoted
columns, warnings and rejects as a dump file, and nothing new to get wrong. A row's
`source_offset` is the line of that regrouped stream; a rejected record is kept verbatim.

The exporter's schema, as it is and as it was (read from `system.columns`, never assumed):

| what                     | current                                   | older                                      |
|--------------------------|-------------------------------------------|--------------------------------------------|
| `SpanKind`, `StatusCode` | `Server`, `Error` (pdata's String())      | `SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`    |
| `Duration`               | UInt64 (a negative one wrapped)           | Int64                                      |
| scope                    | `ScopeName`, `ScopeVersion` columns       | `otel.scope.name`/`.version` (or           |
|                          |                                           | `otel.library.*`) in `SpanAttributes`: taken out |
| attributes               | `Map(LowCardinality(String), String)`     | the JSON-typed variant (`JSON`, dotted keys |
|                          | (every value as text: pdata's AsString)   | stored as paths; flattened back here)      |
| logs                     | `TimestampTime`, `ScopeAttributes`,       | no scope columns, `TraceFlags` UInt32,     |
|                          | `EventName` where present                 | `SeverityNumber` Int32                     |

`ServiceName` is the resource's `service.name`; a row whose resource attributes lack it gets it
from the column. What the exporter does not store cannot come back: flags and dropped counts (0),
link flags, a log's observed time (NULL), attribute value types in the Map schema (every value is
text; promoted columns are typed as from a file), an empty log body (NULL).

Sampling. When the range holds more spans than the budget, the queries keep whole traces,
`cityHash64(TraceId) % N = 0` (logs of a trace follow it; logs without a trace are sampled on their
own row), and the manifest says so; correlate's reports repeat it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from ingest.errors import Kind
from ingest.otlp_fast import decode_lines_fast
from ingest.records import Chunk, SourceInfo
from ingest.stores.common import PullOptions, PullProgress, StoreError, StoreSource, scrub

__all__ = ["ClickHousePull", "DEFAULT_DATABASE", "DEFAULT_TRACES", "DEFAULT_LOGS", "BLOCK_ROWS"]

DEFAULT_DATABASE = "otel"
DEFAULT_TRACES = "otel_traces"
DEFAULT_LOGS = "otel_logs"
BLOCK_ROWS = 8192  # rows a block (max_block_size): one Arrow batch, a few MiB of OTLP/JSON
PASSWORD_ENV = "CLICKHOUSE_PASSWORD"
USER_ENV = "CLICKHOUSE_USER"

# settings of every query: JSON text as msgspec writes it, no limit on the pull's rows
_SETTINGS = {
    "output_format_json_escape_forward_slashes": 0,
    "output_format_json_quote_64bit_integers": 0,
    "max_block_size": BLOCK_ROWS,
}

_SCOPE_KEYS = ("otel.scope.name", "otel.scope.version", "otel.library.name", "otel.library.version")


# ---- SQL: a column of the exporter's table as OTLP/JSON text -----------------------------------


def _q(name: str) -> str:
    """A quoted identifier (`Events.Timestamp` is one identifier)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _is_json(ch_type: str) -> bool:
    t = ch_type.removeprefix("Array(")
    return t.startswith("JSON") or t.startswith("Object(")


def _kv(expr: str, ch_type: str) -> str:
    """An attributes column (Map of text, or JSON) as OTLP/JSON text: a KeyValue list for a Map,
    the JSON object itself for a JSON column (flattened into a KeyValue list in Python)."""
    if _is_json(ch_type):
        return f"toJSONString({expr})"
    return (
        "concat('[', arrayStringConcat(arrayMap((k, v) -> concat('{\"key\":', toJSONString(k), "
        f"',\"value\":{{\"stringValue\":', toJSONString(v), '}}}}'), mapKeys({expr}), mapValues({expr})), ','), ']')"
    )


def _opt(field: str, expr: str) -> str:
    """`,"field":<json of expr>` when expr is not empty, else nothing."""
    return f"if({expr} = '', '', concat(',\"{field}\":', toJSONString({expr})))"


def _resource(cols: dict[str, str]) -> str:
    """The resource's attributes; `service.name` from the ServiceName column where they lack it."""
    rtype = cols["ResourceAttributes"]
    attrs = _kv(_q("ResourceAttributes"), rtype)
    if "ServiceName" not in cols:
        return attrs
    if _is_json(rtype):  # done in Python: the name rides along in a field the reader ignores
        return f"{attrs}, ',\"dcrServiceName\":', toJSONString(toString(ServiceName))"
    extra = 'concat(\'{"key":"service.name","value":{"stringValue":\', toJSONString(toString(ServiceName)), \'}}\')'
    return (
        f"if(ServiceName = '' OR mapContains(ResourceAttributes, 'service.name'), {attrs}, "
        f"if(empty(ResourceAttributes), concat('[', {extra}, ']'), "
        f"concat(substring({attrs}, 1, length({attrs}) - 1), ',', {extra}, ']')))"
    )


def span_line_sql(cols: dict[str, str]) -> str:
    """The SELECT expression making one OTLP/JSON TracesData line of a span row."""
    atype = cols["SpanAttributes"]
    span_attrs = _q("SpanAttributes")
    if "ScopeName" in cols:
        version = "toString(ScopeVersion)" if "ScopeVersion" in cols else "''"
        scope = f"concat('\"name\":', toJSONString(toString(ScopeName)), ',\"version\":', toJSONString({version}))"
    elif not _is_json(atype):  # the older exporter kept the scope in the span's attributes
        name = "if(SpanAttributes['otel.scope.name'] != '', SpanAttributes['otel.scope.name'], SpanAttributes['otel.library.name'])"
        version = "if(SpanAttributes['otel.scope.version'] != '', SpanAttributes['otel.scope.version'], SpanAttributes['otel.library.version'])"
        scope = f"concat('\"name\":', toJSONString({name}), ',\"version\":', toJSONString({version}))"
        keys = ", ".join(f"'{k}'" for k in _SCOPE_KEYS)
        span_attrs = f"mapFilter((k, v) -> k NOT IN ({keys}), SpanAttributes)"
    else:
        scope = "''"
    kind = "replaceRegexpOne(upper(toString(SpanKind)), '^SPAN_KIND_', '')"
    kind_expr = (
        f"multiIf({kind} IN ('UNSPECIFIED', ''), '0', {kind} = 'INTERNAL', '1', {kind} = 'SERVER', '2', "
        f"{kind} = 'CLIENT', '3', {kind} = 'PRODUCER', '4', {kind} = 'CONSUMER', '5', toJSONString(toString(SpanKind)))"
    )
    status = "replaceRegexpOne(upper(toString(StatusCode)), '^STATUS_CODE_', '')"
    status_expr = (
        f"concat(multiIf({status} IN ('UNSET', ''), '\"code\":0', {status} = 'OK', '\"code\":1', "
        f"{status} = 'ERROR', '\"code\":2', concat('\"code\":', toJSONString(toString(StatusCode)))), "
        f"{_opt('message', 'StatusMessage')})"
    )
    start = "toUnixTimestamp64Nano(Timestamp)"
    end = f"{start} + toInt64(Duration)" if "Duration" in cols else start
    parts = [
        '\'{"resourceSpans":[{"resource":{"attributes":\'',
        _resource(cols),
        '\'},"scopeSpans":[{"scope":{\'',
        scope,
        '\'},"spans":[{"traceId":\'',
        "toJSONString(TraceId)",
        "',\"spanId\":'",
        "toJSONString(SpanId)",
        _opt("parentSpanId", "ParentSpanId"),
        _opt("traceState", "TraceState") if "TraceState" in cols else "''",
        "',\"name\":'",
        "toJSONString(toString(SpanName))",
        "',\"kind\":'",
        kind_expr,
        '\',"startTimeUnixNano":"\'',
        f"toString({start})",
        '\'","endTimeUnixNano":"\'',
        f"toString({end})",
        '\'","attributes":\'',
        _kv(span_attrs, atype),
        _events(cols),
        _links(cols),
        "',\"status\":{'",
        status_expr,
        "'}}]}]}]}\n'",
    ]
    return "concat(" + ", ".join(parts) + ")"


def _events(cols: dict[str, str]) -> str:
    need = ("Events.Timestamp", "Events.Name", "Events.Attributes")
    if not all(c in cols for c in need):
        return "''"
    item = (
        'concat(\'{"timeUnixNano":"\', toString(toUnixTimestamp64Nano(t)), \'","name":\', '
        f"toJSONString(toString(n)), ',\"attributes\":', {_kv('a', cols['Events.Attributes'])}, '}}')"
    )
    arr = f"arrayStringConcat(arrayMap((t, n, a) -> {item}, {', '.join(_q(c) for c in need)}), ',')"
    return f"if(empty({_q('Events.Name')}), '', concat(',\"events\":[', {arr}, ']'))"


def _links(cols: dict[str, str]) -> str:
    need = ("Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes")
    if not all(c in cols for c in need):
        return "''"
    item = (
        "concat('{\"traceId\":', toJSONString(t), ',\"spanId\":', toJSONString(s), "
        "if(ts = '', '', concat(',\"traceState\":', toJSONString(ts))), "
        f"',\"attributes\":', {_kv('a', cols['Links.Attributes'])}, '}}')"
    )
    arr = f"arrayStringConcat(arrayMap((t, s, ts, a) -> {item}, {', '.join(_q(c) for c in need)}), ',')"
    return f"if(empty({_q('Links.SpanId')}), '', concat(',\"links\":[', {arr}, ']'))"


def log_line_sql(cols: dict[str, str]) -> str:
    """The SELECT expression making one OTLP/JSON LogsData line of a log row."""
    scope = "''"
    if "ScopeName" in cols:
        version = "toString(ScopeVersion)" if "ScopeVersion" in cols else "''"
        scope = f"concat('\"name\":', toJSONString(toString(ScopeName)), ',\"version\":', toJSONString({version}))"
    record = [
        '\'"timeUnixNano":"\'',
        "toString(toUnixTimestamp64Nano(Timestamp))",
        "'\"'",
    ]
    if "SeverityNumber" in cols:
        record += ["',\"severityNumber\":'", "toString(SeverityNumber)"]
    if "SeverityText" in cols:
        record.append(_opt("severityText", "toString(SeverityText)"))
    if "Body" in cols:
        record.append("if(Body = '', '', concat(',\"body\":{\"stringValue\":', toJSONString(Body), '}'))")
    if "LogAttributes" in cols:
        record += ["',\"attributes\":'", _kv(_q("LogAttributes"), cols["LogAttributes"])]
    if "TraceFlags" in cols:
        record += ["',\"flags\":'", "toString(TraceFlags)"]
    record.append(_opt("traceId", "TraceId"))
    record.append(_opt("spanId", "SpanId"))
    if "EventName" in cols:
        record.append(_opt("eventName", "toString(EventName)"))
    parts = [
        '\'{"resourceLogs":[{"resource":{"attributes":\'',
        _resource(cols),
        '\'},"scopeLogs":[{"scope":{\'',
        scope,
        "'},\"logRecords\":[{'",
        *record,
        "'}]}]}]}\n'",
    ]
    return "concat(" + ", ".join(parts) + ")"


_SPAN_REQUIRED: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "SpanName",
    "SpanKind",
    "StatusCode",
)
_SPAN_REQUIRED += ("StatusMessage", "ResourceAttributes", "SpanAttributes")
_LOG_REQUIRED = ("Timestamp", "TraceId", "SpanId", "ResourceAttributes")


# ---- JSON-typed attribute columns: nested paths back to dotted keys ----------------------------


def _flatten(obj: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {} if out is None else out
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            _flatten(v, key + ".", out)
        else:
            out[key] = v
    return out


def _any_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_any_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _any_value(x)} for k, x in v.items()]}}
    return {"stringValue": "" if v is None else str(v)}


def _kv_list(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    return [{"key": k, "value": _any_value(v)} for k, v in _flatten(obj).items()]


def _fix_resource(resource: dict[str, Any]) -> None:
    name = resource.pop("dcrServiceName", None)
    attrs = _kv_list(resource.get("attributes", []))
    if name and not any(kv.get("key") == "service.name" for kv in attrs):
        attrs.append({"key": "service.name", "value": {"stringValue": name}})
    resource["attributes"] = attrs


_DECODE = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder().encode


def fix_json_lines(data: bytes) -> bytes:
    """Lines whose attributes are JSON objects (JSON-typed columns) -> OTLP KeyValue lists; a
    line that does not parse is passed on as it is (the reader rejects it)."""
    out = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            doc = _DECODE.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError):
            out.append(line)
            continue
        for rs in doc.get("resourceSpans", ()):
            _fix_resource(rs["resource"])
            for ss in rs.get("scopeSpans", ()):
                for sp in ss.get("spans", ()):
                    sp["attributes"] = _kv_list(sp.get("attributes", []))
                    for ev in sp.get("events", ()):
                        ev["attributes"] = _kv_list(ev.get("attributes", []))
                    for ln in sp.get("links", ()):
                        ln["attributes"] = _kv_list(ln.get("attributes", []))
        for rl in doc.get("resourceLogs", ()):
            _fix_resource(rl["resource"])
            for sl in rl.get("scopeLogs", ()):
                for lr in sl.get("logRecords", ()):
                    lr["attributes"] = _kv_list(lr.get("attributes", []))
        out.append(_ENCODE(doc))
    return b"\n".join(out) + b"\n" if out else b""


# ---- regrouping: one resource a line, as a Collector's dump ----------------------------------------

GROUP_RECORDS = 256  # records a regrouped line holds at most
_SUFFIX = b"]}]}]}"  # closes the records, the scope group, its list, the resource group, its list, the doc


def regroup(data: bytes, marker: bytes) -> bytes:
    """Lines of one record each -> lines of up to GROUP_RECORDS records of one (resource, scope):
    the resource is then read once a line, not once a record (twice as fast to decode). A line
    that is not valid UTF-8 stays alone, so the reader rejects it and nothing beside it."""
    groups: dict[bytes, list[bytes]] = {}
    alone: list[bytes] = []
    for line in data.split(b"\n"):
        if not line:
            continue
        i = line.find(marker)
        if i < 0 or not line.endswith(_SUFFIX):
            alone.append(line)
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            alone.append(line)
            continue
        i += len(marker)
        groups.setdefault(line[:i], []).append(line[i : -len(_SUFFIX)])
    out = alone
    for head, records in groups.items():
        for k in range(0, len(records), GROUP_RECORDS):
            out.append(head + b",".join(records[k : k + GROUP_RECORDS]) + _SUFFIX)
    return b"\n".join(out) + b"\n" if out else b""


# ---- the pull ------------------------------------------------------------------------------------


def _ident(name: str, what: str) -> str:
    if not name or any(c in name for c in "`\\\n\r\0"):
        raise StoreError(f"bad {what} name {name!r}", kind=Kind.INVALID_INPUT)
    return name


class ClickHousePull:
    """One pull from the exporter's tables; `chunks()` yields what the writer adds.

    `manifest()` is what the dataset's manifest records of it (never a credential)."""

    format = "clickhouse"

    def __init__(
        self,
        src: StoreSource,
        opts: PullOptions,
        progress: PullProgress | None = None,
        *,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.src = src
        self.opts = opts
        self.progress = progress
        self.database = _ident(src.options.get("database") or DEFAULT_DATABASE, "database")
        self.traces_table = _ident(src.options.get("traces") or DEFAULT_TRACES, "traces table")
        logs = src.options.get("logs", DEFAULT_LOGS)
        self.logs_table = _ident(logs, "logs table") if logs else None
        self.logs_named = "logs" in src.options
        user = src.username or os.environ.get(USER_ENV) or "default"
        password = src.password if src.password is not None else os.environ.get(PASSWORD_ENV, "")
        self._user, self._password = user, password
        self.secrets = tuple(s for s in (password,) if s)
        self._client_factory = client_factory or self._connect
        self.bytes = 0
        self.rows = {"spans": 0, "logs": 0}
        self.problems: list[str] = []
        self.sampling: dict[str, Any] | None = None
        self.cap_reached = False
        self.queries: dict[str, str] = {}
        self.parameters: dict[str, Any] = {}
        self.schema: dict[str, dict[str, Any]] = {}  # per table, _schema_label's
        self.spans_in_range: int | None = None

    # -- connection --

    def _connect(self) -> Any:
        import logging

        import clickhouse_connect

        # the client logs its failures on its own; they reach the user as this pull's one error
        quiet = logging.getLogger("clickhouse_connect")
        quiet.propagate = False
        if not quiet.handlers:
            quiet.addHandler(logging.NullHandler())

        if self.src.kind == "chdb":
            try:
                import chdb  # noqa: F401  (clickhouse-connect's chdb backend needs it)
            except ImportError:
                raise StoreError(
                    "chdb:// needs the chdb package: pip install 'deep-code-reasoning[chdb]'",
                    kind=Kind.NOT_CONFIGURED,
                ) from None
            return clickhouse_connect.get_client(
                interface="chdb", path=self.src.path, database=self.database, settings={}
            )
        if not self.src.verify:  # asked for with verify=0: said once in the URL, not on every request
            import warnings

            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
        return clickhouse_connect.get_client(
            host=self.src.host,
            port=self.src.port,
            username=self._user,
            password=self._password,
            database=self.database,
            secure=self.src.secure,
            verify=self.src.verify,
            connect_timeout=min(self.opts.timeout_s, 30),
            send_receive_timeout=self.opts.timeout_s,
            query_retries=0,  # ours, with backoff (`_retrying`)
            autogenerate_session_id=False,
        )

    def _fail(self, exc: BaseException, doing: str) -> StoreError:
        text = str(exc).strip().splitlines()
        first = next((t for t in text if t.strip()), type(exc).__name__)
        msg = f"{self.src.public}: {doing} failed: {first[:400]}"
        hint = ""
        low = first.lower()
        if "authentication" in low or "password" in low or " 516" in low or "code: 516" in low:
            hint = f" (check the user, and the password in the URL or {PASSWORD_ENV})"
        elif "connection" in low or "timed out" in low or "refused" in low or "resolve" in low:
            hint = " (is the server up and reachable? secure=1 for TLS)"
        return StoreError(scrub(msg + hint, self.secrets))

    def _retrying(self, fn: Callable[[], Any], doing: str) -> Any:
        delay = 0.5
        for attempt in range(self.opts.retries + 1):
            try:
                return fn()
            except StoreError:
                raise
            except Exception as exc:
                if attempt >= self.opts.retries or not _transient(exc):
                    raise self._fail(exc, doing) from None
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def _columns(self, client: Any, table: str) -> dict[str, str]:
        res = client.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} "
            "ORDER BY position",
            parameters={"db": self.database, "t": table},
        )
        return {str(n): str(t) for n, t in res.result_rows}

    # -- SQL --

    def _where(self, cols: dict[str, str], *, logs: bool) -> str:
        where = [
            "Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})",
            "Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})",
        ]
        if self.opts.services and "ServiceName" in cols:
            where.append("ServiceName IN {services:Array(String)}")
        if self.sampling:
            n = self.sampling["modulus"]
            if logs:
                # a log of a trace follows its trace; one without a trace is sampled on its own row
                body = "Body" if "Body" in cols else "''"
                where.append(
                    f"if(TraceId != '', cityHash64(TraceId), cityHash64(Timestamp, SpanId, {body})) % {n} = 0"
                )
            else:
                where.append(f"cityHash64(TraceId) % {n} = 0")
        return " AND ".join(where)

    def _params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"start_ns": self.opts.start_ns, "end_ns": self.opts.end_ns}
        if self.opts.services:
            p["services"] = list(self.opts.services)
        return p

    # -- the pull --

    def chunks(self, source: SourceInfo) -> Iterator[Chunk]:
        client = self._retrying(self._client_factory, "connecting")
        try:
            yield from self._pull(client, source)
        finally:
            try:
                client.close()
            except Exception:
                pass

    def _pull(self, client: Any, source: SourceInfo) -> Iterator[Chunk]:
        traces = self._retrying(lambda: self._columns(client, self.traces_table), "reading the schema")
        if not traces:
            raise StoreError(
                f"{self.src.public}: no table {self.database}.{self.traces_table}: name the exporter's "
                "database in the URL's path and its tables with ?traces=…&logs=…"
            )
        missing = [c for c in _SPAN_REQUIRED if c not in traces]
        if missing:
            raise StoreError(
                f"{self.src.public}: {self.database}.{self.traces_table} lacks {', '.join(missing)}: "
                "not the OpenTelemetry Collector exporter's traces table"
            )
        self.schema["traces"] = _schema_label(traces)
        logs_cols: dict[str, str] = {}
        logs_table = self.logs_table
        if logs_table and self.opts.logs:
            logs_cols = self._retrying(lambda: self._columns(client, logs_table), "reading the schema")
            if not logs_cols:
                if self.logs_named:
                    raise StoreError(f"{self.src.public}: no table {self.database}.{self.logs_table}")
                self.problems.append(f"no logs table {self.database}.{self.logs_table}: spans only")
            elif any(c not in logs_cols for c in _LOG_REQUIRED):
                self.problems.append(
                    f"{self.database}.{self.logs_table} is not the exporter's logs table: spans only"
                )
                logs_cols = {}
            else:
                self.schema["logs"] = _schema_label(logs_cols)
        self.parameters = self._params()
        table = f"{_q(self.database)}.{_q(self.traces_table)}"
        count_sql = f"SELECT count() FROM {table} WHERE {self._where(traces, logs=False)}"
        n = int(
            self._retrying(
                lambda: client.query(count_sql, parameters=self.parameters).result_rows[0][0], "counting"
            )
        )
        self.spans_in_range = n
        if n > self.opts.budget_spans:
            modulus = math.ceil(n / self.opts.budget_spans)
            self.sampling = {
                "modulus": modulus,
                "predicate": f"cityHash64(TraceId) % {modulus} = 0",
                "spans_in_range": n,
                "budget_spans": self.opts.budget_spans,
                "what": f"one trace in {modulus} (whole traces)",
            }
        cap = self.opts.max_spans
        span_sql = (
            f"SELECT {span_line_sql(traces)} AS line FROM {table} "
            f"WHERE {self._where(traces, logs=False)} LIMIT {cap + 1}"
        )
        self.queries["spans"] = span_sql
        expected = min(n if not self.sampling else math.ceil(n / self.sampling["modulus"]), cap)
        line = 1
        for chunk, nlines in self._stream(client, span_sql, source, line, "spans", expected, cap, traces):
            line += nlines
            yield chunk
        if logs_cols:
            ltable = f"{_q(self.database)}.{_q(self.logs_table or '')}"
            log_sql = (
                f"SELECT {log_line_sql(logs_cols)} AS line FROM {ltable} "
                f"WHERE {self._where(logs_cols, logs=True)} LIMIT {cap + 1}"
            )
            self.queries["logs"] = log_sql
            for chunk, nlines in self._stream(client, log_sql, source, line, "logs", 0, cap, logs_cols):
                line += nlines
                yield chunk

    def _stream(
        self,
        client: Any,
        sql: str,
        source: SourceInfo,
        first_line: int,
        what: str,
        expected: int,
        cap: int,
        cols: dict[str, str],
    ) -> Iterator[tuple[Chunk, int]]:
        json_cols = any(_is_json(t) for t in cols.values())
        settings = dict(_SETTINGS)
        stream_cm = self._retrying(
            lambda: client.query_arrow_stream(sql, parameters=self.parameters, settings=settings),
            f"querying {what}",
        )
        rows = 0
        line = first_line
        try:
            with stream_cm as stream:
                for batch in stream:
                    arr = batch.column(0)
                    take = min(len(arr), cap - rows)
                    if take < len(arr):
                        self.cap_reached = True
                        arr = arr.slice(0, take)
                    if take <= 0:
                        break
                    data = _text(arr)
                    self.bytes += len(data)
                    if json_cols:
                        data = fix_json_lines(data)
                    data = regroup(data, b'"spans":[' if what == "spans" else b'"logRecords":[')
                    chunk, nlines = decode_lines_fast(data, line, source)
                    rows += take
                    line += nlines
                    self.rows[what] += take
                    if self.progress is not None:
                        self.progress(rows, expected, f"{self.src.public}: {what}")
                    yield chunk, nlines
                    if self.cap_reached:
                        break
        except StoreError:
            raise
        except Exception as exc:
            raise self._fail(exc, f"pulling {what}") from None
        if self.cap_reached and not any("cap" in p for p in self.problems):
            self.problems.append(
                f"the pull stopped at its cap of {cap:,} {what}: narrow the range or the services, "
                "or raise the cap"
            )

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": self.src.kind,
            "url": self.src.public,
            "tables": {
                "traces": f"{self.database}.{self.traces_table}",
                "logs": f"{self.database}.{self.logs_table}" if self.schema.get("logs") else None,
            },
            "schema": dict(self.schema),
            "start_ns": self.opts.start_ns,
            "end_ns": self.opts.end_ns,
            "services": list(self.opts.services),
            "queries": dict(self.queries),
            "parameters": dict(self.parameters),
            "spans_in_range": self.spans_in_range,
            "sampling": self.sampling,
            "cap": {"max_records": self.opts.max_spans, "reached": self.cap_reached},
            "pulled": dict(self.rows),
        }


def _schema_label(cols: dict[str, str]) -> dict[str, Any]:
    attrs = cols.get("SpanAttributes") or cols.get("LogAttributes") or cols.get("ResourceAttributes", "")
    return {
        "attributes": "json" if _is_json(attrs) else "map",
        "scope": "columns" if "ScopeName" in cols else "attributes",
        "duration": cols.get("Duration"),
    }


def _text(arr: pa.Array) -> bytes:
    """The concatenated values of a string (or binary) array without nulls: its data buffer."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = arr.drop_null()
    n = len(arr)
    if not n:
        return b""
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    width = 8 if large else 4
    offsets = np.frombuffer(
        arr.buffers()[1], np.int64 if large else np.int32, count=n + 1, offset=arr.offset * width
    )
    data = arr.buffers()[2]
    if data is None:
        return b""
    return data.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()


def _transient(exc: BaseException) -> bool:
    """A failure worth another try: a connection problem, a 429 or 5xx answer."""
    text = str(exc).lower()
    if any(s in text for s in ("authentication", "password", "unknown table", "syntax error", "code: 516")):
        return False
    if any(s in text for s in (" 429", " 500", " 502", " 503", " 504", "too many", "timed out", "timeout")):
        return True
    name = type(exc).__name__.lower()
    return "operationalerror" in name or "connection" in name or "timeout" in name
