"""A realistic Jaeger UI JSON dump of any size, written as a stream.

The shape is what `GET /api/traces?service=…` (and the UI's "Download JSON") returns:

    {"data":[{"traceID","spans":[…],"processes":{"p1":{…}},"warnings":null}, …],
     "total":0,"limit":0,"offset":0,"errors":null}

compact, as the Jaeger query service writes it. Traces look like a small shop behind an API
gateway (HotROD-like): HTTP server/client pairs, gRPC calls, MySQL and Redis client spans,
Kafka producer/consumer pairs joined by FOLLOWS_FROM, span logs, typed tags (string, bool,
int64, float64), about 3% error spans with an `error` log, a few span warnings, 10% of the
traces with 64-bit (16 hex) trace ids. Sizes vary from 3 to ~250 spans per trace.

`write_jaeger_dump(path, target_bytes, seed)` writes whole traces until the file reaches
`target_bytes` (it overshoots by at most one trace) and is deterministic for a seed.
`ui_fields=True` adds what a file saved from the Jaeger UI carries besides the API fields
(per-span `process`, `relativeStartTime`, `depth`, `hasChildren`, `childSpanIds`).

    python -m bench.gen_jaeger OUT.json --mb 500 [--seed 1] [--ui-fields]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DumpStats", "write_jaeger_dump"]

_HEAD = b'{"data":['
_TAIL = b'],"total":0,"limit":0,"offset":0,"errors":null}'

# service -> (operations it serves, downstream calls it makes: (kind, target))
_SERVICES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "api-gateway": (
        ("HTTP GET /dispatch", "HTTP POST /checkout", "HTTP GET /config"),
        (("http", "frontend"), ("http", "auth"), ("http", "checkout")),
    ),
    "frontend": (
        ("HTTP GET /dispatch", "HTTP GET /config"),
        (("http", "customer"), ("grpc", "driver"), ("http", "route")),
    ),
    "auth": (("/auth.v1.Auth/Check",), (("redis", "redis"),)),
    "checkout": (
        ("/checkout.v1.Checkout/PlaceOrder",),
        (("grpc", "payment"), ("grpc", "inventory"), ("kafka", "notifier"), ("mysql", "mysql")),
    ),
    "customer": (("HTTP GET /customer",), (("mysql", "mysql"),)),
    "driver": (("/driver.DriverService/FindNearest",), (("redis", "redis"), ("redis", "redis"))),
    "route": (("HTTP GET /route",), ()),
    "payment": (("/payment.v1.Payment/Charge",), (("http", "bank-api"), ("mysql", "mysql"))),
    "inventory": (("/inventory.v1.Inventory/Reserve",), (("mysql", "mysql"), ("redis", "redis"))),
    "notifier": (("orders consume",), (("http", "mailer"),)),
    "bank-api": (("HTTP POST /v2/charges",), ()),
    "mailer": (("HTTP POST /send",), ()),
}
_SQL = (
    "SELECT * FROM customer WHERE customer_id = ?",
    "UPDATE stock SET reserved = reserved + ? WHERE sku = ?",
    "INSERT INTO orders (id, customer_id, total_cents) VALUES (?, ?, ?)",
    "SELECT balance FROM accounts WHERE id = ? FOR UPDATE",
)
_REDIS = ("GET", "SET", "HGETALL", "EXPIRE", "MGET")
_WARNINGS = (
    "clock skew adjustment disabled; not applying calculated delta of 38.2ms",
    "invalid parent span IDs=8f3c2a1b9d4e7f60; skipping clock skew adjustment",
)


@dataclass(frozen=True)
class DumpStats:
    bytes: int
    traces: int
    spans: int
    error_spans: int  # spans whose status is ERROR once read: an error tag or HTTP 5xx


def _tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int64"
    elif isinstance(value, float):
        kind = "float64"
    else:
        kind = "string"
    return {"key": key, "type": kind, "value": value}


class _TraceMaker:
    def __init__(self, rng: random.Random, ui_fields: bool) -> None:
        self.rng = rng
        self.ui_fields = ui_fields
        self.t_us = 1_717_000_000_000_000  # 2024-05-29, advances trace by trace
        self.hosts = {
            svc: [
                (
                    f"{svc}-{rng.getrandbits(32):08x}-{rng.getrandbits(20):05x}",
                    f"10.{i}.{j}.{rng.randrange(2, 250)}",
                    f"{rng.getrandbits(64):016x}",
                )
                for j in range(3)
            ]
            for i, svc in enumerate(_SERVICES)
        }

    def _hex(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def trace(self) -> tuple[dict[str, Any], int]:
        rng = self.rng
        self.t_us += rng.randrange(200, 20_000)
        self.trace_id = self._hex(64) if rng.random() < 0.1 else self._hex(128)
        self.spans: list[dict[str, Any]] = []
        self.procs: dict[tuple[str, int], str] = {}
        self.errors = 0
        self.budget = rng.choice((3, 8, 15, 30, 60, 120, 250)) if rng.random() < 0.2 else rng.randrange(6, 40)
        root_svc = rng.choice(("api-gateway", "api-gateway", "frontend", "checkout"))
        self._server(root_svc, None, self.t_us, rng.randrange(5_000, 900_000), depth=0, follows=False)
        processes = {
            pid: {
                "serviceName": svc,
                "tags": [
                    _tag("hostname", self.hosts[svc][h][0]),
                    _tag("ip", self.hosts[svc][h][1]),
                    _tag("jaeger.version", "Go-2.30.0"),
                    _tag("client-uuid", self.hosts[svc][h][2]),
                ],
            }
            for (svc, h), pid in self.procs.items()
        }
        if self.ui_fields:
            for span in self.spans:
                span["process"] = processes[span["processID"]]
        return {
            "traceID": self.trace_id,
            "spans": self.spans,
            "processes": processes,
            "warnings": None,
        }, self.errors

    def _pid(self, svc: str) -> str:
        key = (svc, self.rng.randrange(3))
        return self.procs.setdefault(key, f"p{len(self.procs) + 1}")

    def _span(
        self,
        svc: str,
        op: str,
        parent: str | None,
        start_us: int,
        dur_us: int,
        tags: list,
        depth: int,
        follows: bool = False,
    ) -> dict[str, Any]:
        rng = self.rng
        span_id = self._hex(64)
        refs = []
        if parent:
            refs.append(
                {
                    "refType": "FOLLOWS_FROM" if follows else "CHILD_OF",
                    "traceID": self.trace_id,
                    "spanID": parent,
                }
            )
        logs = []
        if rng.random() < 0.3:
            logs.append(
                {
                    "timestamp": start_us + dur_us // 4,
                    "fields": [
                        _tag(
                            "event",
                            rng.choice(("cache miss", "retrying", "acquired lock", "payload decoded")),
                        ),
                        _tag("level", "info"),
                        _tag("attempt", rng.randrange(1, 4)),
                    ],
                }
            )
        is_error = rng.random() < 0.03
        if is_error or any(t["key"] == "http.status_code" and t["value"] >= 500 for t in tags):
            self.errors += 1  # an ERROR status once read (the error tag, or a 5xx)
        if is_error:
            tags = tags + [_tag("error", True), _tag("otel.status_code", "ERROR")]
            logs.append(
                {
                    "timestamp": start_us + dur_us - 1,
                    "fields": [
                        _tag("event", "error"),
                        _tag(
                            "error.object",
                            rng.choice(
                                ("context deadline exceeded", "connection reset by peer", "lock wait timeout")
                            ),
                        ),
                        _tag(
                            "stack", "goroutine 1 [running]:\nmain.handler(...)\n\t/app/handler.go:88 +0x1d2"
                        ),
                    ],
                }
            )
        span = {
            "traceID": self.trace_id,
            "spanID": span_id,
            "flags": 1,
            "operationName": op,
            "references": refs,
            "startTime": start_us,
            "duration": dur_us,
            "tags": tags + [_tag("internal.span.format", "proto"), _tag("otel.scope.name", f"{svc}/tracing")],
            "logs": logs,
            "processID": self._pid(svc),
            "warnings": [rng.choice(_WARNINGS)] if rng.random() < 0.005 else None,
        }
        if self.ui_fields:
            span.update(
                relativeStartTime=start_us - self.t_us, depth=depth, hasChildren=False, childSpanIds=[]
            )
        self.spans.append(span)
        self.budget -= 1
        return span

    def _server(
        self,
        svc: str,
        parent: str | None,
        start_us: int,
        dur_us: int,
        depth: int,
        follows: bool,
        op: str | None = None,
    ) -> None:
        rng = self.rng
        ops, calls = _SERVICES[svc]
        op = op or rng.choice(ops)
        if op.startswith("HTTP"):
            method, route = op[5:].split(" ", 1)
            tags = [
                _tag("span.kind", "server"),
                _tag("http.method", method),
                _tag("http.route", route),
                _tag("http.url", f"http://{svc}:8080{route}?id={rng.randrange(10**6)}"),
                _tag("http.status_code", 200),
                _tag("net.peer.ip", f"10.9.{rng.randrange(250)}.{rng.randrange(250)}"),
                _tag("component", "net/http"),
            ]
        elif op.endswith("consume"):
            tags = [
                _tag("span.kind", "consumer"),
                _tag("messaging.system", "kafka"),
                _tag("messaging.destination", "orders"),
                _tag("messaging.kafka.partition", rng.randrange(12)),
            ]
        else:
            service, method = op[1:].rsplit("/", 1)
            tags = [
                _tag("span.kind", "server"),
                _tag("rpc.system", "grpc"),
                _tag("rpc.service", service),
                _tag("rpc.method", method),
                _tag("rpc.grpc.status_code", 0),
            ]
        if parent is None:
            tags += [_tag("sampler.type", "probabilistic"), _tag("sampler.param", 0.25)]
        span = self._span(svc, op, parent, start_us, dur_us, tags, depth, follows)
        t, end = start_us + rng.randrange(50, 400), start_us + dur_us
        for kind, target in calls:
            if self.budget <= 0 or t >= end - 10 or depth > 6:
                break
            for _ in range(rng.choice((1, 1, 1, 2, 3)) if kind in ("mysql", "redis") else 1):
                if self.budget <= 0 or t >= end - 10:
                    break
                dur = max(5, min(end - t - 5, rng.randrange(50, max(60, dur_us // 2))))
                self._client(svc, kind, target, span["spanID"], t, dur, depth + 1)
                t += dur + rng.randrange(5, 200)

    def _client(
        self, svc: str, kind: str, target: str, parent: str, start_us: int, dur_us: int, depth: int
    ) -> None:
        rng = self.rng
        if kind == "mysql":
            self._span(
                svc,
                "SQL " + rng.choice(("SELECT", "UPDATE", "INSERT")),
                parent,
                start_us,
                dur_us,
                [
                    _tag("span.kind", "client"),
                    _tag("db.system", "mysql"),
                    _tag("db.statement", rng.choice(_SQL)),
                    _tag("db.name", "shop"),
                    _tag("peer.service", "mysql"),
                    _tag("net.peer.port", 3306),
                ],
                depth,
            )
            return
        if kind == "redis":
            cmd = rng.choice(_REDIS)
            self._span(
                svc,
                cmd,
                parent,
                start_us,
                dur_us,
                [
                    _tag("span.kind", "client"),
                    _tag("db.system", "redis"),
                    _tag("db.statement", f"{cmd} key:{rng.randrange(10**5)}"),
                    _tag("peer.service", "redis"),
                    _tag("net.peer.port", 6379),
                    _tag("param.retry", False),
                ],
                depth,
            )
            return
        if kind == "kafka":
            prod = self._span(
                svc,
                "orders publish",
                parent,
                start_us,
                max(5, dur_us // 10),
                [
                    _tag("span.kind", "producer"),
                    _tag("messaging.system", "kafka"),
                    _tag("messaging.destination", "orders"),
                    _tag("peer.service", "kafka"),
                ],
                depth,
            )
            if self.budget > 0:
                self._server(
                    target,
                    prod["spanID"],
                    start_us + dur_us // 5,
                    max(5, dur_us // 2),
                    depth + 1,
                    follows=True,
                )
            return
        if kind == "grpc":
            server_op = rng.choice(_SERVICES[target][0])
            service, method = server_op[1:].rsplit("/", 1)
            tags = [
                _tag("span.kind", "client"),
                _tag("rpc.system", "grpc"),
                _tag("rpc.service", service),
                _tag("rpc.method", method),
                _tag("peer.service", target),
            ]
            name = f"/{service}/{method}"
        else:
            server_op = rng.choice(_SERVICES[target][0])
            method, route = server_op.split(" ")[1:3] if server_op.startswith("HTTP") else ("POST", "/")
            tags = [
                _tag("span.kind", "client"),
                _tag("http.method", method),
                _tag("http.url", f"http://{target}:8080{route}"),
                _tag("http.status_code", 503 if rng.random() < 0.01 else 200),
                _tag("peer.service", target),
                _tag("net.peer.name", target),
                _tag("component", "net/http"),
            ]
            name = f"HTTP {method} {route}"
        client = self._span(svc, name, parent, start_us, dur_us, tags, depth)
        if self.budget > 0 and dur_us > 40:
            self._server(
                target, client["spanID"], start_us + 10, dur_us - 20, depth + 1, follows=False, op=server_op
            )


def write_jaeger_dump(
    path: str | Path, target_bytes: int, seed: int = 1, *, ui_fields: bool = False
) -> DumpStats:
    """Write a Jaeger UI JSON dump of about `target_bytes` to `path`, trace by trace."""
    maker = _TraceMaker(random.Random(seed), ui_fields)
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    n_bytes = traces = spans = errors = 0
    with open(path, "wb", buffering=1 << 20) as out:
        out.write(_HEAD)
        n_bytes = len(_HEAD) + len(_TAIL)
        while n_bytes < target_bytes or traces == 0:
            trace, n_err = maker.trace()
            blob = encode(trace).encode()
            if traces:
                out.write(b",")
                n_bytes += 1
            out.write(blob)
            n_bytes += len(blob)
            traces += 1
            spans += len(trace["spans"])
            errors += n_err
        out.write(_TAIL)
    return DumpStats(bytes=n_bytes, traces=traces, spans=spans, error_spans=errors)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write a realistic Jaeger UI JSON dump.")
    p.add_argument("out", type=Path)
    p.add_argument("--mb", type=float, default=500.0, help="target size in MB (10^6 bytes)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ui-fields", action="store_true", help="add the fields the Jaeger UI adds when saving")
    args = p.parse_args(argv)
    stats = write_jaeger_dump(args.out, int(args.mb * 1e6), args.seed, ui_fields=args.ui_fields)
    print(json.dumps(stats.__dict__), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
