"""Loopback stand-ins of the stores dcr pulls from, for tests (127.0.0.1 only, a thread each).

- `ClickHouseHTTP`: ClickHouse's HTTP interface (POST/GET /, /ping; X-ClickHouse-User/-Key,
  Basic or user/password auth; `database`, `param_*`, `default_format` and settings as URL
  parameters; `X-ClickHouse-*` answer headers; errors as `Code: N. DB::Exception: …` with
  X-ClickHouse-Exception-Code) that runs every query in chDB, so clickhouse-connect and dcr's SQL
  meet the real engine. Each request is a fresh chDB connection, its settings applied with SET.
- `JaegerV3`: Jaeger's API v3 HTTP gateway (cmd/query/app/apiv3/http_gateway.go): FindTraces with
  the camelCase parameters and the deprecated snake_case ones (Deprecation headers when used), or,
  as `old=True`, a server from before the camelCase names (snake_case and query.num_traces only);
  GetTrace; GetServices; the empty answer is a 404 `{"error":{"httpCode":404,"message":"No traces
  found"}}`; answers `{"result": TracesData}` as pdata's JSON marshaler writes it.
- `Tempo`: /api/search (TraceQL `{}` or `resource.service.name = "x"` alternatives; start/end in
  seconds; limit; `{"traces":[…],"metrics":{…}}`) and /api/traces/<id> (`{"batches":[…]}` as
  jsonpb writes it: base64 ids, enum names); 404 for an unknown trace; X-Scope-OrgID checked when a
  tenant is set.

Every stand-in can answer the first N requests of a path with 429 (Retry-After: 0), or, with
`echo_auth`, every request with a 401 whose body echoes the Authorization header it got; and it
records the requests (path, parameters, headers) it got.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_KIND_NAMES = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
]
_STATUS_NAMES = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 serving `handle(method, path, params, headers, body)`."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.throttle: dict[str, int] = {}  # path prefix -> 429s still to give
        self.echo_auth = False  # answer every request 401, its body echoing the Authorization header
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self, method: str) -> None:
                u = urllib.parse.urlsplit(self.path)
                params = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.requests.append(
                    {"method": method, "path": u.path, "params": params, "headers": headers}
                )
                if owner.echo_auth:  # a careless server: the credential it refused, in its answer
                    echoed = json.dumps(
                        {"error": {"message": f"bad credentials: {headers.get('authorization')}"}}
                    )
                    self._answer(401, echoed.encode(), {})
                    return
                for prefix, left in owner.throttle.items():
                    if u.path.startswith(prefix) and left > 0:
                        owner.throttle[prefix] = left - 1
                        self._answer(429, b"Too Many Requests\n", {"Retry-After": "0"})
                        return
                status, payload, extra = owner.handle(method, u.path, params, headers, body)
                self._answer(status, payload, extra)

            def _answer(self, status: int, payload: bytes, extra: dict[str, str]) -> None:
                self.send_response(status)
                extra = dict(extra)
                extra.setdefault("Content-Type", "application/json")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:  # (certificate file, key file): HTTPS
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def handle(
        self, method: str, path: str, params: list[tuple[str, str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        raise NotImplementedError

    def start(self) -> _Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- traces of OTLP/JSON documents, indexed ---------------------------------------------------


class TraceIndex:
    """The spans of OTLP/JSON TracesData documents, by trace: (resource, scope, span) each."""

    def __init__(self, docs: Iterable[dict[str, Any]]) -> None:
        self.traces: dict[str, list[tuple[dict, dict, dict]]] = defaultdict(list)
        for doc in docs:
            for rs in doc.get("resourceSpans", []):
                res = rs.get("resource") or {}
                for ss in rs.get("scopeSpans", []):
                    scope = ss.get("scope") or {}
                    for sp in ss.get("spans", []):
                        self.traces[sp["traceId"].lower()].append((res, scope, sp))

    @staticmethod
    def service(res: dict) -> str:
        for kv in res.get("attributes", []):
            if kv["key"] == "service.name":
                return kv["value"].get("stringValue", "")
        return ""

    def start(self, tid: str) -> int:
        return min(int(sp["startTimeUnixNano"]) for _, _, sp in self.traces[tid])

    def services(self) -> list[str]:
        return sorted({self.service(res) for spans in self.traces.values() for res, _, _ in spans})

    def resource_spans(self, tids: Iterable[str], jsonpb: bool = False) -> list[dict]:
        """The traces as resourceSpans, one per (resource, scope) group of each trace."""
        out = []
        for tid in tids:
            groups: dict[tuple[str, str], tuple[dict, dict, list]] = {}
            for res, scope, sp in self.traces[tid]:
                key = (json.dumps(res, sort_keys=True), json.dumps(scope, sort_keys=True))
                groups.setdefault(key, (res, scope, []))[2].append(_jsonpb(sp) if jsonpb else sp)
            for res, scope, spans in groups.values():
                out.append({"resource": res, "scopeSpans": [{"scope": scope, "spans": spans}]})
        return out


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode() if hex_id else ""


def _jsonpb(sp: dict) -> dict:
    """A span as gogo jsonpb writes Tempo's proto: ids base64, enums by name, int64 as text."""
    out = dict(sp)
    out["traceId"] = _b64(sp["traceId"])
    out["spanId"] = _b64(sp["spanId"])
    if sp.get("parentSpanId"):
        out["parentSpanId"] = _b64(sp["parentSpanId"])
    kind = sp.get("kind", 0)
    out["kind"] = _KIND_NAMES[kind] if isinstance(kind, int) else kind
    st = dict(sp.get("status") or {})
    if "code" in st and isinstance(st["code"], int):
        st["code"] = _STATUS_NAMES[st["code"]]
    out["status"] = st
    if sp.get("links"):
        out["links"] = [
            dict(ln, traceId=_b64(ln["traceId"]), spanId=_b64(ln["spanId"])) for ln in sp["links"]
        ]
    return out


def _ns(rfc3339: str) -> int:
    """Go's time.RFC3339Nano, to ns (UTC 'Z' or an offset)."""
    from datetime import datetime

    m = re.fullmatch(r"(.*?T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", rfc3339)
    if not m:
        raise ValueError(f"parsing time {rfc3339!r} as RFC3339Nano")
    base, frac, tz = m.groups()
    dt = datetime.fromisoformat(base + ("+00:00" if tz == "Z" else tz))
    return int(dt.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0"))


# ---- Jaeger API v3 ---------------------------------------------------------------------------


class JaegerV3(_Server):
    def __init__(self, docs: Iterable[dict[str, Any]], *, old: bool = False, default_depth: int = 20) -> None:
        super().__init__()
        self.index = TraceIndex(docs)
        self.old = old
        self.default_depth = default_depth

    @staticmethod
    def _error(status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        body = json.dumps({"error": {"httpCode": status, "message": message}}).encode()
        return status, body + b"\n", {"Content-Type": "text/plain; charset=utf-8"}

    def _get(self, q: dict[str, str], canonical: str, deprecated: str, used: list[str]) -> str:
        if self.old:
            return q.get(deprecated, "")
        if q.get(canonical):
            return q[canonical]
        if q.get(deprecated):
            used.append(deprecated)
        return q.get(deprecated, "")

    def handle(self, method, path, params, headers, body):
        if method != "GET":
            return 405, b"", {}
        q = dict(params)
        if path == "/api/v3/services":
            return 200, json.dumps({"services": self.index.services()}).encode(), {}
        m = re.fullmatch(r"/api/v3/traces/([^/]+)", path)
        if m:
            tid = m.group(1).lower().rjust(32, "0")
            if not re.fullmatch(r"[0-9a-f]{32}", tid):
                return self._error(400, f"malformed parameter trace_id: {m.group(1)}")
            if tid not in self.index.traces:
                return self._error(404, "trace not found")
            return (
                200,
                json.dumps({"result": {"resourceSpans": self.index.resource_spans([tid])}}).encode(),
                {},
            )
        if path != "/api/v3/traces":
            return 404, b"404 page not found\n", {"Content-Type": "text/plain"}
        used: list[str] = []
        names = (
            ("query.start_time_min", "query.start_time_max")
            if self.old
            else ("query.startTimeMin", "query.startTimeMax")
        )
        tmin = self._get(q, "query.startTimeMin", "query.start_time_min", used)
        tmax = self._get(q, "query.startTimeMax", "query.start_time_max", used)
        if not tmin or not tmax:
            return self._error(400, f"{names[0]} and {names[1]} are required")
        try:
            lo, hi = _ns(tmin), _ns(tmax)
        except ValueError as exc:
            return self._error(400, f"malformed parameter {names[0]}: {exc}")
        service = self._get(q, "query.serviceName", "query.service_name", used)
        operation = self._get(q, "query.operationName", "query.operation_name", used)
        if self.old:
            depth_s = q.get("query.num_traces", "")
        else:
            depth_s = (
                q.get("query.searchDepth") or q.get("query.search_depth") or q.get("query.num_traces", "")
            )
            if not q.get("query.searchDepth"):
                used += [k for k in ("query.search_depth", "query.num_traces") if q.get(k)][:1]
        depth = int(depth_s) if depth_s else self.default_depth
        if not service:
            return self._error(500, "service name must be set")
        matched = []
        for tid, spans in self.index.traces.items():
            hit = any(
                self.index.service(res) == service
                and (not operation or sp.get("name") == operation)
                and lo <= int(sp["startTimeUnixNano"]) <= hi
                for res, _, sp in spans
            )
            if hit:
                matched.append(tid)
        matched.sort(key=self.index.start, reverse=True)  # the most recent first, as the stores do
        matched = matched[:depth]
        extra: dict[str, str] = {}
        if used:
            extra = {
                "Deprecation": "true",
                "Sunset": "Mon, 01 Nov 2026 00:00:00 GMT",
                "Deprecated-Params": ",".join(used),
            }
        if not matched:
            status, payload, hdr = self._error(404, "No traces found")
            return status, payload, {**hdr, **extra}
        doc = {"result": {"resourceSpans": self.index.resource_spans(matched)}}
        return 200, json.dumps(doc).encode(), extra


# ---- Tempo ---------------------------------------------------------------------------------------


class Tempo(_Server):
    def __init__(
        self, docs: Iterable[dict[str, Any]], *, tenant: str | None = None, default_limit: int = 20
    ) -> None:
        super().__init__()
        self.index = TraceIndex(docs)
        self.tenant = tenant
        self.default_limit = default_limit

    def handle(self, method, path, params, headers, body):
        if self.tenant is not None and headers.get("x-scope-orgid") != self.tenant:
            return 401, b"no org id\n", {"Content-Type": "text/plain"}
        q = dict(params)
        m = re.fullmatch(r"/api/traces/([0-9a-fA-F]+)", path)
        if m:
            tid = m.group(1).lower().rjust(32, "0")
            if tid not in self.index.traces:
                return 404, b"trace not found\n", {"Content-Type": "text/plain"}
            return 200, json.dumps({"batches": self.index.resource_spans([tid], jsonpb=True)}).encode(), {}
        if path != "/api/search":
            return 404, b"404 page not found\n", {"Content-Type": "text/plain"}
        query = q.get("q", "{}").strip()
        services = re.findall(r'resource\.service\.name\s*=\s*"((?:[^"\\]|\\.)*)"', query)
        if query not in ("{}", "{ }") and not services:
            return (
                400,
                b"invalid TraceQL query: unsupported by the stand-in\n",
                {"Content-Type": "text/plain"},
            )
        limit = int(q.get("limit") or self.default_limit)
        lo = int(q["start"]) * 10**9 if q.get("start") else 0
        hi = int(q["end"]) * 10**9 if q.get("end") else 2**63 - 1
        matched = []
        for tid, spans in self.index.traces.items():
            start = self.index.start(tid)
            if not lo <= start <= hi:
                continue
            if services and not any(self.index.service(res) in services for res, _, _ in spans):
                continue
            matched.append(tid)
        matched.sort(key=self.index.start, reverse=True)
        traces = []
        for tid in matched[:limit]:
            spans = self.index.traces[tid]
            root = min(spans, key=lambda t: int(t[2]["startTimeUnixNano"]))
            end = max(int(sp["endTimeUnixNano"]) for _, _, sp in spans)
            start = self.index.start(tid)
            traces.append(
                {
                    "traceID": tid.lstrip("0") or "0",  # Tempo prints ids without leading zeros
                    "rootServiceName": self.index.service(root[0]),
                    "rootTraceName": root[2].get("name", ""),
                    "startTimeUnixNano": str(start),
                    "durationMs": (end - start) // 10**6,
                    "spanSets": [{"spans": [], "matched": len(spans)}],
                }
            )
        doc = {"traces": traces, "metrics": {"inspectedTraces": len(self.index.traces), "totalBlocks": 1}}
        return 200, json.dumps(doc).encode(), {}


# ---- ClickHouse's HTTP interface over chDB ----------------------------------------------------

# URL parameters of the HTTP interface that are not settings
_HTTP_PARAMS = {
    "query",
    "database",
    "default_format",
    "user",
    "password",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "compress",
    "decompress",
    "buffer_size",
    "wait_end_of_query",
    "client_protocol_version",
    "quota_key",
}
_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)


def _literal(v: str) -> str:
    if re.fullmatch(r"-?\d+(\.\d+)?", v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ClickHouseHTTP(_Server):
    def __init__(
        self, chdb_path: str, *, user: str = "default", password: str = "", tls: tuple[str, str] | None = None
    ) -> None:
        super().__init__(tls)
        self.chdb_path = chdb_path
        self.user = user
        self.password = password
        self.queries: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # one engine: one query at a time, as a small server would

    def _auth(self, params: dict[str, str], headers: dict[str, str]) -> tuple[str, str]:
        if "x-clickhouse-user" in headers or "x-clickhouse-key" in headers:
            return headers.get("x-clickhouse-user", "default"), headers.get("x-clickhouse-key", "")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            return user, pw
        return params.get("user", "default"), params.get("password", "")

    def handle(self, method, path, params, headers, body):
        if path == "/ping":
            return 200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"}
        if path != "/":
            return 404, b"There is no handle " + path.encode() + b"\n", {"Content-Type": "text/plain"}
        p = dict(params)
        user, pw = self._auth(p, headers)
        if user != self.user or pw != self.password:
            msg = (
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, or there is "
                "no user with such name. (AUTHENTICATION_FAILED) (version 26.9.2.1 (official build))\n"
            )
            return 401, msg.encode(), {"Content-Type": "text/plain", "X-ClickHouse-Exception-Code": "516"}
        sql = (p.get("query", "") + ("\n" if p.get("query") and body else "") + body.decode("utf-8")).strip()
        m = _FORMAT.search(sql)
        fmt = m.group(1) if m else p.get("default_format", "TabSeparated")
        qparams = {k[len("param_") :]: v for k, v in p.items() if k.startswith("param_")}
        settings = {k: v for k, v in p.items() if k not in _HTTP_PARAMS and not k.startswith("param_")}
        import chdb

        with self._lock:
            con = chdb.connect(self.chdb_path)
            try:
                if p.get("database"):
                    con.query(f"USE `{p['database']}`")
                for k, v in settings.items():
                    if not re.fullmatch(r"\w+", k):
                        raise ValueError(
                            f"Code: 115. DB::Exception: Unknown setting '{k}'. (UNKNOWN_SETTING)"
                        )
                    con.query(f"SET {k} = {_literal(v)}")
                res = con.query(sql, fmt, params=qparams) if qparams else con.query(sql, fmt)
                payload = bytes(res.bytes())
                read_rows, read_bytes = res.rows_read(), res.bytes_read()
            except Exception as exc:
                text = str(exc).strip()
                code = re.search(r"Code: (\d+)", text)
                num = code.group(1) if code else "1000"
                status = 404 if num == "60" else 400 if num in ("62", "47", "46") else 500
                self.queries.append({"sql": sql, "settings": settings, "params": qparams, "error": text})
                return (
                    status,
                    (text + "\n").encode(),
                    {"Content-Type": "text/plain", "X-ClickHouse-Exception-Code": num},
                )
            finally:
                con.close()
        self.queries.append({"sql": sql, "settings": settings, "params": qparams, "read_rows": read_rows})
        summary = json.dumps(
            {"read_rows": str(read_rows), "read_bytes": str(read_bytes), "written_rows": "0"}
        )
        return (
            200,
            payload,
            {
                "Content-Type": "application/octet-stream"
                if fmt in ("Native", "ArrowStream", "Arrow")
                else "text/plain",
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Timezone": "UTC",
                "X-ClickHouse-Query-Id": f"standin-{len(self.queries)}",
                "X-ClickHouse-Summary": summary,
                "X-ClickHouse-Server-Display-Name": "standin",
            },
        )
