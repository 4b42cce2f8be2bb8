"""The shapes of the ingest benchmark's matrix (`python bench/ingest.py --shape …`): OTLP/JSON dumps
of the forms real tools write, each deterministic for a seed, streamed to disk.

`write_shape(path, shape, size, seed) -> Counts` writes about `size` bytes (whole lines; at most one
line over) and returns the spans and log records it wrote, which the ingest must give back exactly.
`default` (the benchmark's own dump) is written by `bench/ingest.py`'s `generate`, not here. Lines
are built from pre-escaped fragments and numpy draws (one draw a line, not a call a value), so a GB
takes seconds, not minutes.

Every span is lowercase hex ids, integer enums and int64 times as strings, the form of the Collector's
file exporter, except in `tempo`. Span mix: HTTP server and client, database, messaging and
internal spans, four attributes of their kind plus 0-2 of string, bool, double or int64; each batch's
exporter writes int64 attribute values either as JSON strings ("200", the proto3 JSON mapping) or as
JSON numbers (200, as some SDKs' exporters do). Roots carry `"parentSpanId": ""`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SHAPES", "Counts", "write_shape"]

# bumped when a generator changes what it writes, so that cached dumps are written again
VERSION = 2
T0 = 1_714_564_800_000_000_000


@dataclass(frozen=True)
class Counts:
    """What a dump holds: spans and log records the ingest must store, no more, no fewer."""

    spans: int
    logs: int


def _esc(text: str) -> str:
    """`text` as the inside of a JSON string (UTF-8 kept, as exporters write it)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


# ---- fragments --------------------------------------------------------------------------------

SERVICES = [
    "frontend",
    "checkout",
    "cart",
    "payment",
    "shipping",
    "email",
    "currency",
    "recommendation",
    "ad",
    "product-catalog",
    "quote",
    "fraud-detection",
    "accounting",
    "inventory",
    "auth",
    "search",
    "gateway",
    "notification",
    "pricing",
    "orders",
]
LANGS = ["java", "python", "go", "nodejs", "dotnet"]
SCOPES = {
    "java": ("io.opentelemetry.spring-webmvc-6.0", "2.3.0-alpha"),
    "python": ("opentelemetry.instrumentation.flask", "0.48b0"),
    "go": ("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.53.0"),
    "nodejs": ("@opentelemetry/instrumentation-http", "0.52.1"),
    "dotnet": ("OpenTelemetry.Instrumentation.AspNetCore", "1.9.0"),
}
HOSTS = [f"ip-10-0-{i}-{j}.ec2.internal" for i in range(3) for j in (11, 42, 87)]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
ROUTES = [
    "/api/cart",
    "/api/checkout",
    "/api/products/{id}",
    "/api/users/{id}",
    "/health",
    "/api/orders",
    "/api/orders/{id}/items",
    "/api/search",
]
STATUS = [200, 200, 200, 200, 201, 204, 404, 500, 503]
DBS = [("postgresql", "orders"), ("mysql", "catalog"), ("redis", "0"), ("mongodb", "users")]
DB_OPS = ["SELECT", "SELECT", "INSERT", "UPDATE", "DELETE"]
SHORT_SQL = [
    "SELECT * FROM orders WHERE user_id = $1",
    "UPDATE inventory SET qty = qty - $1 WHERE sku = $2",
    "INSERT INTO payments (id, amount, currency) VALUES ($1, $2, $3)",
    "SELECT p.id, p.name, p.price FROM products p WHERE p.category_id = $1 LIMIT 50",
    "DELETE FROM sessions WHERE expires_at < now()",
]
TOPICS = ["orders", "payments.v2", "email-outbox", "inventory-events", "audit"]
FUNCS = [
    "OrderService.placeOrder",
    "CartRepository.load",
    "PriceCalculator.total",
    "render_template",
    "validate_payload",
    "TokenCache.get",
]
THREADS = ["http-nio-8080-exec-3", "main", "pool-2-thread-1", "ForkJoinPool.commonPool-worker-5", "asyncio"]
TIERS = ["free", "pro", "enterprise"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
]


def _s(key: str, val: str) -> str:
    return f'{{"key":"{key}","value":{{"stringValue":"{val}"}}}}'


def _i(key: str, val: int, q: str) -> str:
    return f'{{"key":"{key}","value":{{"intValue":{q}{val}{q}}}}}'


def _resource(svc: str, host: str, lang: str) -> str:
    attrs = [
        _s("service.name", svc),
        _s("service.version", "1.4.2"),
        _s("host.name", host),
        _s("service.instance.id", f"{svc}-{host[3:12]}"),
        _s("telemetry.sdk.language", lang),
    ]
    return '{"attributes":[' + ",".join(attrs) + "]}"


def _stacktrace(rng: np.random.Generator, lang: str, target: int) -> tuple[str, str, str]:
    """(exception.type, exception.message, exception.stacktrace) of about `target` bytes."""
    if lang == "java":
        etype = [
            "java.net.SocketTimeoutException",
            "java.lang.IllegalStateException",
            "java.sql.SQLException",
        ][int(rng.integers(3))]
        msg = [
            "Read timed out",
            "Connection pool exhausted (max=50)",
            "Deadlock found when trying to get lock",
        ][int(rng.integers(3))]
        pkgs = [
            "com.shop.checkout.CheckoutService.placeOrder(CheckoutService.java:{n})",
            "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:{n})",
            "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:{n})",
            "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:{n})",
            "java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:{n})",
            "io.opentelemetry.javaagent.instrumentation.spring.webmvc.v6_0.OpenTelemetryHandlerMappingFilter"
            ".doFilter(OpenTelemetryHandlerMappingFilter.java:{n})",
        ]
        lines = [f"{etype}: {msg}"]
        while sum(map(len, lines)) + len(lines) < target:
            if rng.random() < 0.05:
                lines.append(
                    f"Caused by: java.io.IOException: stream closed after {int(rng.integers(100))} ms"
                )
            lines.append("\tat " + pkgs[int(rng.integers(len(pkgs)))].format(n=int(rng.integers(20, 900))))
        lines.append(f"\t... {int(rng.integers(10, 60))} more")
        return etype, msg, "\n".join(lines)
    etype = ["TimeoutError", "KeyError", "psycopg.errors.SerializationFailure", "ValueError"][
        int(rng.integers(4))
    ]
    msg = [
        "deadline exceeded after 0.9s",
        "'sku-4471'",
        "could not serialize access",
        "invalid literal: 'n/a'",
    ][int(rng.integers(4))]
    frames = [
        ("handlers", "handle_checkout", "result = self.payment.charge(order)"),
        ("payment/client", "charge", "resp = self._session.post(url, json=body, timeout=self.timeout)"),
        ("http/session", "request", "raise TimeoutError(f'deadline exceeded after {elapsed:.1f}s')"),
        ("db/pool", "execute", 'cur.execute(sql, params)  # "orders" table'),
        ("views/cart", "add_item", "item = self.catalog[sku]"),
    ]
    out = ["Traceback (most recent call last):"]
    while sum(map(len, out)) + len(out) < target:
        mod, fn, code = frames[int(rng.integers(len(frames)))]
        out.append(f'  File "/app/services/{mod}.py", line {int(rng.integers(10, 600))}, in {fn}\n    {code}')
    out.append(f"{etype}: {msg}")
    return etype, msg, "\n".join(out)


def _long_sql(rng: np.random.Generator, target: int) -> str:
    cols = [
        "o.id",
        "o.user_id",
        "o.status",
        "o.total_cents",
        "o.currency",
        "o.created_at",
        "c.email",
        "c.city",
    ]
    sql = (
        "SELECT "
        + ", ".join(cols)
        + "\nFROM orders o\n  JOIN customers c ON c.id = o.user_id\nWHERE o.id IN ("
    )
    count = (target - 120 - len(sql)) // 11  # ", " and nine digits an id
    ids = [str(x) for x in rng.integers(10**8, 10**9, max(1, count)).tolist()]
    city = ["Zürich", "São Paulo", "東京", "O'Brien Rd"][int(rng.integers(4))].replace("'", "''")
    return (
        sql + ", ".join(ids) + f")\n  AND c.city <> '{city}' AND o.note NOT LIKE '%\"gift\"%'\nORDER BY o.id"
    )


def _long_url(rng: np.random.Generator, target: int) -> str:
    url = f"https://api.shop.example.com/v2/search?q=red%20shoes&page={int(rng.integers(1, 40))}&filters="
    count = (target - 40 - 40 - len(url)) // 14  # "%2C" and "brand%3D" and three digits a part
    parts = [f"brand%3D{x}" for x in rng.integers(100, 1000, max(1, count)).tolist()]
    token = base64.urlsafe_b64encode(rng.bytes(30)).decode()
    return url + "%2C".join(parts) + f"&session={token}"


def _pool(
    rng: np.random.Generator, make: Callable[[np.random.Generator, int], str], n: int = 48
) -> list[str]:
    return [_esc(make(rng, int(rng.integers(1024, 4097)))) for _ in range(n)]


@dataclass(frozen=True)
class Profile:
    """What spans carry beyond their kind's attributes (shares of spans)."""

    events: float = 0.10  # a plain event (message sent, cache miss)
    links: float = 0.05
    exceptions: float = 0.0  # 1-3 exception events with a 1-3 KB stack trace, status ERROR
    long_values: float = 0.0  # db.statement / url.full of 1-4 KB
    tempo: bool = False  # Tempo's jsonpb: base64 ids, enum names, roots without parentSpanId


class _Draws:
    """Random values served from blocks drawn ahead: a numpy call costs microseconds, and a batch
    of 1-3 spans needs a dozen draws."""

    BLOCK = 1 << 16

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._f: list[float] = []
        self._i: list[int] = []
        self._d: list[int] = []
        self._b = b""
        self._fi = self._ii = self._di = self._bi = 0

    def floats(self, n: int) -> list[float]:
        """n floats in [0, 1)."""
        if self._fi + n > len(self._f):
            self._f, self._fi = self.rng.random(max(n, self.BLOCK)).tolist(), 0
        self._fi += n
        return self._f[self._fi - n : self._fi]

    def ints(self, n: int) -> list[int]:
        """n integers in [0, 2**30)."""
        if self._ii + n > len(self._i):
            self._i, self._ii = self.rng.integers(0, 1 << 30, max(n, self.BLOCK)).tolist(), 0
        self._ii += n
        return self._i[self._ii - n : self._ii]

    def durations(self, n: int) -> list[int]:
        """n span durations in ns: log-normal, median ~3 ms, from 1 µs to a minute."""
        if self._di + n > len(self._d):
            d = self.rng.lognormal(15.0, 2.0, max(n, self.BLOCK)).astype(np.int64)
            self._d, self._di = d.clip(1_000, 60_000_000_000).tolist(), 0
        self._di += n
        return self._d[self._di - n : self._di]

    def raw(self, n: int) -> bytes:
        if self._bi + n > len(self._b):
            self._b, self._bi = self.rng.bytes(max(n, 16 * self.BLOCK)), 0
        self._bi += n
        return self._b[self._bi - n : self._bi]

    def randint(self, lo: int, hi: int) -> int:
        """One integer in [lo, hi]."""
        return lo + self.ints(1)[0] % (hi - lo + 1)


class Gen:
    """The fragments of one dump, drawn once from its seed, and the span writer."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.batches: list[tuple[str, str]] = []  # (resource JSON, scope JSON) per service
        self.langs: list[str] = []
        for i, svc in enumerate(SERVICES):
            lang = LANGS[i % len(LANGS)]
            name, ver = SCOPES[lang]
            self.batches.append(
                (_resource(svc, HOSTS[i % len(HOSTS)], lang), f'{{"name":"{name}","version":"{ver}"}}')
            )
            self.langs.append(lang)
        self.stacks = {
            lang: [
                tuple(_esc(x) for x in _stacktrace(rng, lang, int(rng.integers(1024, 3073))))
                for _ in range(24)
            ]
            for lang in ("java", "python")
        }
        self.sql = _pool(rng, _long_sql)
        self.urls = _pool(rng, _long_url)
        self.agents = [_esc(a) for a in AGENTS]
        self.t0 = T0
        self.d = _Draws(rng)

    # ---- spans ---------------------------------------------------------------------------------

    def spans(
        self, n: int, svc: int, prof: Profile, trace: bytes | None = None, root: bool = False
    ) -> list[str]:
        """`n` spans of service `svc`, from a few traces (or all of `trace`, whose root is the first
        span when `root`)."""
        d = self.d
        self.t0 += 40_000_000
        raw = d.raw(8 * n)
        sids = [raw[8 * i : 8 * i + 8] for i in range(n)]
        u, k = d.floats(8 * n), d.ints(8 * n)
        starts = [self.t0 + x % 50_000_000 for x in d.ints(n)]
        durs = d.durations(n)
        tids = d.raw(16 * n)
        others = d.raw(8 * n)
        q = '"' if svc % 2 else ""  # this service's exporter writes int64 as strings or as numbers
        if prof.tempo:
            q = '"'
        lang = self.langs[svc]
        out = []
        tid, parent = trace or tids[:16], b""
        if not (root or (trace is None and u[1] < 0.5)):
            parent = others[:8]  # the first span's parent is another service's client span
        for i in range(n):
            ui, ki = u[8 * i : 8 * i + 8], k[8 * i : 8 * i + 8]
            if i and trace is None and ui[0] < 0.15:
                tid = tids[16 * i : 16 * i + 16]
                parent = others[8 * i : 8 * i + 8] if ui[1] < 0.5 else b""
            start, end = starts[i], starts[i] + durs[i]
            typ = ki[0] % 10
            x = ki[1]
            if typ < 3:
                kind = 2
                method, route = METHODS[x % 6], ROUTES[x % 8]
                name = f"{method} {route}"
                attrs = [
                    _s("http.request.method", method),
                    _s("http.route", route),
                    _i("http.response.status_code", STATUS[ki[2] % 9], q),
                    _s("url.scheme", "https"),
                ]
                if ui[6] < prof.long_values:
                    attrs.append(_s("url.full", self.urls[ki[3] % len(self.urls)]))
            elif typ < 5:
                kind = 3
                method, peer = METHODS[x % 6], SERVICES[ki[2] % len(SERVICES)]
                name = method
                attrs = [
                    _s("http.request.method", method),
                    _s("server.address", peer),
                    _i("server.port", 8080, q),
                    _i("http.response.status_code", STATUS[ki[2] % 9], q),
                ]
                if ui[6] < prof.long_values:
                    attrs.append(_s("url.full", self.urls[ki[3] % len(self.urls)]))
            elif typ < 8:
                kind = 3
                system, db = DBS[x % 4]
                op = DB_OPS[ki[2] % 5]
                name = f"{op} {db}"
                if ui[6] < prof.long_values:
                    stmt = self.sql[ki[3] % len(self.sql)]
                else:
                    stmt = SHORT_SQL[ki[3] % 5]
                attrs = [
                    _s("db.system", system),
                    _s("db.name", db),
                    _s("db.operation", op),
                    _s("db.statement", stmt),
                ]
            elif typ < 9:
                kind = 4 + x % 2
                topic = TOPICS[x % 5]
                name = f"{topic} {'publish' if kind == 4 else 'process'}"
                attrs = [
                    _s("messaging.system", "kafka"),
                    _s("messaging.destination.name", topic),
                    _s("messaging.operation", "publish" if kind == 4 else "process"),
                    _i("messaging.message.body.size", ki[2] % 20000, q),
                ]
            else:
                kind = 1
                fn = FUNCS[x % 6]
                name = fn
                attrs = [
                    _s("code.function", fn),
                    _i("code.lineno", ki[2] % 900, q),
                    _s("thread.name", THREADS[ki[3] % 5]),
                    _i("thread.id", ki[3] % 64, q),
                ]
            for j in range(ki[4] % 3):  # 0-2 extras: mean five attributes a span
                e = (ki[5] + j) % 6
                if e == 0:
                    attrs.append(
                        f'{{"key":"cache.hit","value":{{"boolValue":{"true" if ui[7] < 0.5 else "false"}}}}}'
                    )
                elif e == 1:  # a computed ratio: all 17 digits, as the SDK recorded it
                    attrs.append(f'{{"key":"payload.compression_ratio","value":{{"doubleValue":{ui[7]!r}}}}}')
                elif e == 2:
                    attrs.append(_i("retry.count", ki[6] % 4, q))
                elif e == 3:
                    attrs.append(_s("user.tier", TIERS[ki[6] % 3]))
                elif e == 4:
                    attrs.append(
                        f'{{"key":"queue.wait_ms","value":{{"doubleValue":{ki[6] % 100_000 / 100!r}}}}}'
                    )
                else:
                    attrs.append(_s("user_agent.original", self.agents[ki[6] % 4]))
            ev, status = [], ""
            if ui[2] < prof.exceptions:
                et, em, st = self.stacks["java" if lang in ("java", "dotnet") else "python"][ki[7] % 24]
                for r in range(1 if ki[7] % 8 else 2 + (ki[7] >> 3) % 2):  # one, or 2-3 on retries
                    ev.append(self._event(end - 1000 * (r + 1), "exception", [
                        _s("exception.type", et), _s("exception.message", em), _s("exception.stacktrace", st),
                        f'{{"key":"exception.escaped","value":{{"boolValue":{"true" if r == 0 else "false"}}}}}',
                    ]))  # fmt: skip
                status = f'"code":{2 if not prof.tempo else chr(34) + "STATUS_CODE_ERROR" + chr(34)},"message":"{em}"'
            elif ui[2] < prof.exceptions + prof.events:
                ev.append(self._event(start + (end - start) // 2, "message", [
                    _s("message.type", "SENT" if ki[7] & 1 else "RECEIVED"), _i("message.id", ki[7] % 1000, q),
                ]))  # fmt: skip
            links = ""
            if ui[3] < prof.links:
                lt, ls = (
                    tids[16 * ((i + 1) % n) : 16 * ((i + 1) % n) + 16],
                    others[8 * ((i + 3) % n) : 8 * ((i + 3) % n) + 8],
                )
                links = (
                    f',"links":[{{"traceId":"{self._id(lt, prof)}","spanId":"{self._id(ls, prof)}",'
                    f'"attributes":[{_s("link.reason", "batch")}]}}]'
                )
            events = ',"events":[' + ",".join(ev) + "]" if ev else ""
            sid = self._id(sids[i], prof)
            if prof.tempo:
                par = f'"parentSpanId":"{self._id(parent, prof)}",' if parent else ""
                out.append(
                    f'{{"traceId":"{self._id(tid, prof)}","spanId":"{sid}",{par}"name":"{name}",'
                    f'"kind":"{_KIND_NAMES[kind]}","startTimeUnixNano":"{start}","endTimeUnixNano":"{end}",'
                    f'"attributes":[{",".join(attrs)}]{events}{links},"status":{{{status}}}}}'
                )
            else:
                out.append(
                    f'{{"traceId":"{tid.hex()}","spanId":"{sid}","parentSpanId":"{parent.hex()}","flags":256,'
                    f'"name":"{name}","kind":{kind},"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}",'
                    f'"attributes":[{",".join(attrs)}]{events}{links},"status":{{{status}}}}}'
                )
            if ui[4] < 0.6:
                parent = sids[i]
        return out

    @staticmethod
    def _id(raw: bytes, prof: Profile) -> str:
        return base64.b64encode(raw).decode() if prof.tempo else raw.hex()

    @staticmethod
    def _event(t: int, name: str, attrs: list[str]) -> str:
        return f'{{"timeUnixNano":"{t}","name":"{name}","attributes":[{",".join(attrs)}]}}'

    def resource_spans(
        self, n: int, prof: Profile, trace: bytes | None = None, svc: int | None = None, root: bool = False
    ) -> str:
        if svc is None:
            svc = self.d.randint(0, len(SERVICES) - 1)
        res, scope = self.batches[svc]
        spans = ",".join(self.spans(n, svc, prof, trace, root))
        tail = "" if prof.tempo else ',"schemaUrl":"https://opentelemetry.io/schemas/1.24.0"'
        return f'{{"resource":{res},"scopeSpans":[{{"scope":{scope},"spans":[{spans}]}}]{tail}}}'

    # ---- logs ----------------------------------------------------------------------------------

    def resource_logs(self, n: int) -> str:
        d = self.d
        svc = d.randint(0, len(SERVICES) - 1)
        res, scope = self.batches[svc]
        self.t0 += 40_000_000
        times = [self.t0 + x % 50_000_000 for x in d.ints(n)]
        k = d.ints(4 * n)
        ids = d.raw(24 * n)
        q = '"' if svc % 2 else ""
        recs = []
        for i in range(n):
            ki = k[4 * i : 4 * i + 4]
            sev = _SEVERITIES[ki[0] % len(_SEVERITIES)]
            body = _LOG_BODIES[ki[1] % len(_LOG_BODIES)]
            attrs = [_s("log.file.name", "app.log"), _s("thread.name", THREADS[ki[2] % 5])]
            if ki[2] & 8:
                attrs.append(_i("http.response.status_code", STATUS[ki[3] % 9], q))
            ctx = ""
            if ki[3] % 10 < 7:  # most records are written inside a span
                ctx = f',"flags":1,"traceId":"{ids[24 * i : 24 * i + 16].hex()}","spanId":"{ids[24 * i + 16 : 24 * i + 24].hex()}"'
            recs.append(
                f'{{"timeUnixNano":"{times[i]}","observedTimeUnixNano":"{times[i] + 350_000}",'
                f'"severityNumber":{sev[0]},"severityText":"{sev[1]}",'
                f'"body":{{"stringValue":"{body} request_id={ki[2]:08x}"}},"attributes":[{",".join(attrs)}]{ctx}}}'
            )
        return f'{{"resource":{res},"scopeLogs":[{{"scope":{scope},"logRecords":[{",".join(recs)}]}}]}}'


_KIND_NAMES = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
]
_SEVERITIES = [(9, "INFO")] * 6 + [(5, "DEBUG"), (5, "DEBUG"), (13, "WARN"), (17, "ERROR")]


def _log_bodies() -> list[str]:
    rng = np.random.default_rng(3)
    texts = [
        'Completed request: method=GET path=/api/products/{{id}} status=200 duration_ms={n} user_agent="okhttp/4.12"',
        "HikariPool-1 - Connection is not available, request timed out after {n}ms (total=50, active=50, idle=0)",
        'payload rejected: {{"sku":"sku-{n}","qty":-1,"reason":"quantity must be positive","path":"$.items[3]"}}',
        "Retrying call to payment-gateway (attempt {n} of 5) after UNAVAILABLE: upstream connect error or "
        "disconnect/reset before headers. reset reason: connection termination",
        "cache miss for key cart:{n}; loading from postgres (pool=orders, wait_ms=3)\n\tat CartRepository.load",
        "Utilisateur connecté: {n} (région: Île-de-France) — session renouvelée",
    ]
    out = []
    for i in range(48):
        t = texts[i % len(texts)].format(n=int(rng.integers(1, 10**6)))
        while len(t) < int(rng.integers(100, 500)):
            t += f" ctx.k{len(t) % 97}=v{int(rng.integers(10**5))}"
        out.append(_esc(t[:500]))
    return out


_LOG_BODIES = _log_bodies()


# ---- shapes ------------------------------------------------------------------------------------

ATTRS = Profile()
EVENTS = Profile(events=0.05, exceptions=0.4)
LONG = Profile(long_values=0.6)
TEMPO = Profile(tempo=True)
SPAN_BYTES = 560  # about what a span of the attribute-heavy profile takes, to cap lines at small sizes


def _cap(n: int, budget: int, per: int = SPAN_BYTES) -> int:
    return max(1, min(n, budget // per))


def _batches(g: Gen, budget: int, prof: Profile, nb: tuple[int, int], ns: tuple[int, int]) -> tuple[str, int]:
    parts, spans = [], 0
    for _ in range(g.d.randint(*nb)):
        n = _cap(g.d.randint(*ns), budget)
        parts.append(g.resource_spans(n, prof))
        spans += n
        budget -= n * SPAN_BYTES
        if budget <= 0:
            break
    return '{"resourceSpans":[' + ",".join(parts) + "]}", spans


def _line_attrs(g: Gen, budget: int) -> tuple[str, int, int]:
    text, n = _batches(g, budget, ATTRS, (2, 6), (10, 60))
    return text, n, 0


def _line_events(g: Gen, budget: int) -> tuple[str, int, int]:
    text, n = _batches(g, budget, EVENTS, (2, 6), (10, 60))
    return text, n, 0


def _line_long(g: Gen, budget: int) -> tuple[str, int, int]:
    text, n = _batches(g, budget, LONG, (2, 6), (10, 60))
    return text, n, 0


def _line_small(g: Gen, budget: int) -> tuple[str, int, int]:
    text, n = _batches(g, budget, ATTRS, (50, 200), (1, 3))
    return text, n, 0


def _line_huge(g: Gen, budget: int) -> tuple[str, int, int]:
    n = _cap(g.d.randint(20_000, 50_000), budget)
    return '{"resourceSpans":[' + g.resource_spans(n, ATTRS) + "]}", n, 0


def _line_tempo(g: Gen, budget: int) -> tuple[str, int, int]:
    """One trace a line, as Tempo's `GET /api/traces/<id>` returns it: a batch per service."""
    trace = g.d.raw(16)
    parts, spans = [], 0
    first = g.d.randint(0, len(SERVICES) - 1)
    for j in range(g.d.randint(3, 8)):
        svc = (first + 7 * j) % len(SERVICES)  # distinct services: 7 is prime to their number
        n = _cap(g.d.randint(2, 40), budget)
        parts.append(g.resource_spans(n, TEMPO, trace=trace, svc=svc, root=j == 0))
        spans += n
        budget -= n * SPAN_BYTES
    return '{"batches":[' + ",".join(parts) + "]}", spans, 0


def _line_logs(g: Gen, budget: int) -> tuple[str, int, int]:
    """Seven lines in eight are logs, the eighth traces: one file exporter behind both pipelines."""
    if g.d.randint(0, 7) == 0:
        return _line_attrs(g, budget)
    parts, logs = [], 0
    for _ in range(g.d.randint(2, 6)):
        n = _cap(g.d.randint(20, 100), budget, 500)
        parts.append(g.resource_logs(n))
        logs += n
        budget -= n * 500
        if budget <= 0:
            break
    return '{"resourceLogs":[' + ",".join(parts) + "]}", 0, logs


LineMaker = Callable[[Gen, int], tuple[str, int, int]]


@dataclass(frozen=True)
class Shape:
    """A shape of the matrix: how its lines are made, what DuckDB's reference reads, and why."""

    name: str
    line: LineMaker | None  # None: one pretty-printed document (`_write_pretty`)
    root: str  # the top-level array DuckDB unnests: resourceSpans, batches or resourceLogs
    why: str


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in [
        Shape("attrs", _line_attrs, "resourceSpans", "attribute-heavy Collector dump of issue 16"),
        Shape("events", _line_events, "resourceSpans", "exception events with 1-3 KB stack traces"),
        Shape("longstrings", _line_long, "resourceSpans", "SQL statements and URLs of 1-4 KB"),
        Shape("smallbatches", _line_small, "resourceSpans", "50-200 batches of 1-3 spans a line"),
        Shape("hugebatch", _line_huge, "resourceSpans", "one batch of 20-50 k spans a line"),
        Shape("tempo", _line_tempo, "batches", "Tempo's trace-by-id JSON, one trace a line"),
        Shape("logs", _line_logs, "resourceLogs", "Collector logs dump, one line in eight traces"),
        Shape("pretty", None, "resourceSpans", "one TracesData document, indent 2"),
    ]
}


def _lines(g: Gen, make: LineMaker, size: int) -> Iterator[tuple[bytes, int, int]]:
    written = 0
    while written < size:
        text, spans, logs = make(g, size - written)
        data = text.encode() + b"\n"
        written += len(data)
        yield data, spans, logs


def _write_pretty(fh, g: Gen, size: int) -> Counts:
    """One TracesData of batches (attribute-heavy spans) indented by 2, streamed batch by batch."""
    import msgspec

    head, tail = b'{\n  "resourceSpans": [\n', b"\n  ]\n}\n"
    fh.write(head)
    written, spans, first = len(head) + len(tail), 0, True
    while written < size:
        n = _cap(g.d.randint(10, 60), (size - written) // 2)
        batch = msgspec.json.format(g.resource_spans(n, ATTRS).encode(), indent=2)
        data = (b"" if first else b",\n") + b"    " + batch.replace(b"\n", b"\n    ")
        fh.write(data)
        written += len(data)
        spans += n
        first = False
    fh.write(tail)
    return Counts(spans, 0)


def write_shape(path: Path, shape: str, size: int, seed: int = 7) -> Counts:
    """Write `shape`'s dump of about `size` bytes to `path`; the spans and logs written."""
    g = Gen(seed)
    spec = SHAPES[shape]
    with open(path, "wb") as fh:
        if spec.line is None:
            return _write_pretty(fh, g, size)
        spans = logs = 0
        for data, s, lg in _lines(g, spec.line, size):
            fh.write(data)
            spans += s
            logs += lg
    return Counts(spans, logs)
