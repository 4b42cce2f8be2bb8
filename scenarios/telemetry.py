"""Span and log helpers with current semantic-convention attribute names, on simulated time.

Every time argument is *true* time (int ns since the epoch). What a span or record carries is
the time of its host's clock: true time plus that host's skew (`Telemetry.skew_ns`). A span takes
its host's skew once, at its start, so its duration is what a monotonic clock measured even when
the wall clock steps during it (as the Go and Java SDKs do).

Attribute names (semantic conventions, current):
- HTTP: http.request.method, http.route, url.path, url.scheme, url.full, url.template,
  http.response.status_code, http.request.resend_count, server.address, server.port,
  client.address, user_agent.original, network.protocol.version, error.type
- RPC (gRPC): rpc.system, rpc.service, rpc.method, rpc.grpc.status_code
- DB: db.system.name, db.namespace, db.collection.name, db.operation.name, db.query.text,
  db.response.status_code
- messaging: messaging.system, messaging.destination.name, messaging.operation.type,
  messaging.operation.name, messaging.message.id, messaging.servicebus.message.delivery_count,
  messaging.servicebus.message.enqueued_time, messaging.servicebus.disposition_status
- exceptions: the "exception" event with exception.type, exception.message, exception.stacktrace
- code: code.function.name, code.file.path, code.line.number
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from scenarios.recorder import Process

__all__ = ["MS", "Err", "Rec", "Telemetry", "SpanKind", "GRPC"]

MS = 1_000_000

# gRPC status codes used here, and those a *server* span marks as error (semconv: client spans
# mark every non-OK code; servers only UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
# UNAVAILABLE, DATA_LOSS).
GRPC = {
    "OK": 0,
    "UNKNOWN": 2,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "FAILED_PRECONDITION": 9,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
}
_W3C = TraceContextTextMapPropagator()
_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>\w+)')
_GRPC_SERVER_ERRORS = frozenset({2, 4, 12, 13, 14, 15})
_SEVERITY = {
    "DEBUG": SeverityNumber.DEBUG,
    "INFO": SeverityNumber.INFO,
    "WARN": SeverityNumber.WARN,
    "ERROR": SeverityNumber.ERROR,
}


@dataclass(frozen=True)
class Err:
    """An exception as the SDK records it on a span ("exception" event) and in a log."""

    type: str
    message: str
    stacktrace: str

    def attributes(self) -> dict[str, str]:
        return {
            "exception.type": self.type,
            "exception.message": self.message,
            "exception.stacktrace": self.stacktrace,
        }


@dataclass(frozen=True)
class Rec:
    """A started span with the process that records it and the clock offset it took."""

    span: Span
    proc: Process
    skew_ns: int

    @property
    def trace_id(self) -> str:
        return format(self.span.get_span_context().trace_id, "032x")

    def set(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)


class Telemetry:
    """Starts and ends spans and emits logs for simulated processes; subclasses supply skew."""

    def skew_ns(self, host: str, t_ns: int) -> int:  # overridden by systems with skewed hosts
        return 0

    # -- spans ---------------------------------------------------------------------------
    def start(
        self,
        proc: Process,
        name: str,
        kind: SpanKind,
        parent: Rec | None,
        t_ns: int,
        attributes: dict[str, Any] | None = None,
        links: list[Link] | None = None,
    ) -> Rec:
        ctx = trace.set_span_in_context(parent.span, Context()) if parent else Context()
        if parent is not None and parent.proc is not proc:
            # another process: the context crosses as a W3C traceparent header, as on the wire
            carrier: dict[str, str] = {}
            _W3C.inject(carrier, context=ctx)
            ctx = _W3C.extract(carrier, context=Context())
        skew = self.skew_ns(proc.host, t_ns)
        span = proc.tracer.start_span(
            name, context=ctx, kind=kind, attributes=attributes, links=links, start_time=t_ns + skew
        )
        return Rec(span, proc, skew)

    def end(
        self, rec: Rec, t_ns: int, *, error: bool = False, exc: Err | None = None, message: str = ""
    ) -> int:
        """End `rec` at true time `t_ns`; an exception is recorded as the "exception" event."""
        if exc is not None:
            rec.span.add_event("exception", exc.attributes(), timestamp=t_ns + rec.skew_ns)
            error = True
            message = message or f"{exc.type}: {exc.message}"
        if error:
            rec.span.set_status(Status(StatusCode.ERROR, message or None))
        rec.span.end(end_time=t_ns + rec.skew_ns)
        return t_ns

    def internal(
        self, parent: Rec, t_ns: int, dur_ns: int, name: str, func: str, path: str, line: int, **attrs: Any
    ) -> int:
        rec = self.start(
            parent.proc,
            name,
            SpanKind.INTERNAL,
            parent,
            t_ns,
            {"code.function.name": func, "code.file.path": path, "code.line.number": line, **attrs},
        )
        return self.end(rec, t_ns + dur_ns)

    def db(
        self,
        parent: Rec,
        t_ns: int,
        dur_ns: int,
        *,
        system: str,
        op: str,
        collection: str,
        query: str,
        namespace: str,
        server: str,
        exc: Err | None = None,
    ) -> int:
        port = {"postgresql": 5432, "redis": 6379}.get(system, 5432)
        attrs = {
            "db.system.name": system,
            "db.namespace": namespace,
            "db.collection.name": collection,
            "db.operation.name": op,
            "db.query.text": query,
            "server.address": server,
            "server.port": port,
        }
        rec = self.start(parent.proc, f"{op} {collection}", SpanKind.CLIENT, parent, t_ns, attrs)
        if exc is not None:
            rec.set("error.type", exc.type)
        return self.end(rec, t_ns + dur_ns, exc=exc)

    def external(
        self, parent: Rec, t_ns: int, dur_ns: int, *, method: str, host: str, template: str, status: int = 200
    ) -> int:
        """A call to an uninstrumented third party: a client span without a server child."""
        attrs = {
            "http.request.method": method,
            "url.full": f"https://{host}{template}",
            "url.template": template,
            "server.address": host,
            "server.port": 443,
            "http.response.status_code": status,
        }
        rec = self.start(parent.proc, f"{method} {template}", SpanKind.CLIENT, parent, t_ns, attrs)
        if status >= 400:
            rec.set("error.type", str(status))
        return self.end(rec, t_ns + dur_ns, error=status >= 400)

    # -- logs ----------------------------------------------------------------------------
    def log(
        self,
        proc: Process,
        t_ns: int,
        severity: str,
        body: str,
        rec: Rec | None = None,
        attributes: dict[str, Any] | None = None,
        exc: Err | None = None,
    ) -> None:
        ctx = trace.set_span_in_context(rec.span, Context()) if rec else Context()
        attrs = dict(attributes or {})
        if exc is not None:
            attrs.update(exc.attributes())
            frame = _FRAME.search(exc.stacktrace)
            if frame:  # the handler that logs it is the outermost application frame
                attrs.update(
                    {
                        "code.file.path": frame["path"],
                        "code.function.name": frame["func"],
                        "code.line.number": int(frame["line"]),
                    }
                )
        stamp = t_ns + self.skew_ns(proc.host, t_ns)
        proc.logger.emit(
            timestamp=stamp,
            observed_timestamp=stamp,
            context=ctx,
            severity_number=_SEVERITY[severity],
            severity_text=severity,
            body=body,
            attributes=attrs or None,
        )


def grpc_server_error(code: int) -> bool:
    return code in _GRPC_SERVER_ERRORS
