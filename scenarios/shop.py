"""The simulated system every scenario runs: an online shop of eleven services.

    client ─► frontend ─┬─► catalog (gRPC)            GetProduct (5% NOT_FOUND → 404), ListProducts
                        ├─► recommendation (HTTP)     always slow (rank_candidates ≈ 1.1 s) ─► catalog
                        ├─► users (gRPC)              GetUser
                        └─► checkout (HTTP) ─┬─► cart (gRPC, redis)
                                             ├─► users (gRPC)
                                             ├─► pricing (HTTP, postgresql)
                                             ├─► inventory (HTTP, postgresql; 400 ms timeout, retried)
                                             ├─► payment (HTTP) ─► lock-service (gRPC), card gateway
                                             ├─► orders db INSERT
                                             └─► order-events (Service Bus) ─► notification (consumer)

Healthy behaviour everywhere, plus a trickle of harmless errors (NOT_FOUND products, an
inventory call that times out once and succeeds on retry). Scenarios subclass `Shop` and
override the hooks (`skew_ns`, `net_ns`, `cpu_factor`, `version`, `rate_factor`, and the
per-service behaviours) to inject one incident at `onset_ns`; `mark()` records the trace ids
that show it. Every random draw comes from one seeded PRNG in a fixed order.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from scenarios.recorder import Process, Recorder
from scenarios.telemetry import GRPC, MS, Err, Rec, SpanKind, Telemetry, grpc_server_error

__all__ = ["Shop", "Reply", "Tally", "PODS", "BASE_VERSIONS", "S"]

S = 1_000_000_000

# service -> [(pod suffix, node)]; the node is the host (and so the clock) a pod runs on.
PODS: dict[str, list[tuple[str, str]]] = {
    "frontend": [("a1x", "node-1"), ("b2y", "node-2")],
    "checkout": [("k8m", "node-1"), ("m3p", "node-2")],
    "cart": [("q4r", "node-1")],
    "catalog": [("r2s", "node-1"), ("t7u", "node-4")],
    "users": [("w1v", "node-2")],
    "inventory": [("z5a", "node-2")],
    "pricing": [("c6d", "node-3")],
    "payment": [("a7f", "node-3"), ("b8g", "node-4")],
    "recommendation": [("h9j", "node-3")],
    "notification": [("j2k", "node-4")],
    "lock-service": [("0", "node-5")],
}
BASE_VERSIONS = {
    "frontend": "3.8.1",
    "checkout": "2.14.3",
    "cart": "1.9.0",
    "catalog": "4.2.7",
    "users": "2.3.0",
    "inventory": "1.12.4",
    "pricing": "0.31.2",
    "payment": "5.0.9",
    "recommendation": "0.8.5",
    "notification": "1.4.2",
    "lock-service": "1.1.0",
}
# (weight, endpoint) of the requests arriving at the frontend
MIX = (
    (38, "product"),
    (16, "products"),
    (10, "recommendations"),
    (12, "account"),
    (24, "checkout"),
)
# the mix is dealt from shuffled decks of 50 requests holding it exactly, so that even the small
# committed copies have about the same number of checkouts before and after the onset
_DECK = [e for w, e in MIX for _ in range(w // 2)]
INVENTORY_TIMEOUT_NS = 400 * MS
INVENTORY_ATTEMPTS = 4
LOCK_TTL_MS = 3000
LOCK_RENEW_AFTER_MS = 2500  # the holder renews 500 ms before the lease ends
QUEUE = "order-events"
BUS = "shop-bus.servicebus.windows.net"
MAX_DELIVERIES = 10


class Tally:
    """Counts of events over simulated time in 1 s buckets (a Fenwick tree): add now, sum up to t.

    Memory and time stay flat at any scale (the queue state of a 10-million-span run)."""

    def __init__(self, start_ns: int, end_ns: int) -> None:
        self._start = start_ns
        self._n = (end_ns - start_ns) // S + 2
        self._tree = [0] * (self._n + 1)

    def _bucket(self, t_ns: int) -> int:
        return min(max((t_ns - self._start) // S, 0), self._n - 1) + 1

    def add(self, t_ns: int, delta: int = 1) -> None:
        i = self._bucket(t_ns)
        while i <= self._n:
            self._tree[i] += delta
            i += i & -i

    def upto(self, t_ns: int) -> int:
        """The sum of everything added at or before `t_ns` (to the second)."""
        i, total = self._bucket(t_ns), 0
        while i > 0:
            total += self._tree[i]
            i -= i & -i
        return total


@dataclass
class Reply:
    """What a handler returns: when it finished (true time), its status and exception."""

    end_ns: int
    status: int
    exc: Err | None = None
    data: dict = field(default_factory=dict)


def _stack(frames: list[tuple[str, str, int]], exc_type: str, message: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for path, func, line in frames:
        lines.append(f'  File "{path}", line {line}, in {func}')
    lines.append(f"{exc_type}: {message}")
    return "\n".join(lines)


class Shop(Telemetry):
    """The healthy shop. Subclasses inject an incident by overriding hooks."""

    name = "healthy"

    def __init__(
        self, recorder: Recorder, seed: str, start_ns: int, onset_ns: int, end_ns: int, scale: float
    ) -> None:
        self.rec = recorder
        self.rng = random.Random(f"{seed}:sim")
        self.start_ns = start_ns
        self.onset_ns = onset_ns
        self.end_ns = end_ns
        self.scale = scale
        self.marked: list[str] = []
        self._next_tick_ns = start_ns
        self._onset_done = False
        self._deck: list[str] = []
        # queue state: messages between first delivery and settlement or dead-lettering (+1/-1),
        # and deliveries the consumer processed but did not settle (it keeps each in memory)
        horizon = end_ns + 15 * 60 * S
        self.inflight = Tally(start_ns, horizon)
        self.unsettled = Tally(start_ns, horizon)

    # -- hooks ---------------------------------------------------------------------------
    def skew_ns(self, host: str, t_ns: int) -> int:
        # a few tens of microseconds of everyday NTP disagreement, well inside network latency
        return {"node-2": 30_000, "node-3": -20_000, "node-4": 15_000}.get(host, 0)

    def net_ns(self, caller: str, callee: str, t_ns: int) -> int:
        return int(self.rng.uniform(0.25, 0.9) * MS)

    def cpu_factor(self, service: str, t_ns: int) -> float:
        return 1.0

    def version(self, service: str, t_ns: int) -> str:
        return BASE_VERSIONS[service]

    def rate_factor(self, t_ns: int) -> float:
        return 1.0

    def on_onset(self) -> None:
        """Runs once when simulated time reaches the onset (e.g. logs a deploy or a config change)."""

    def incident(self, t_ns: int) -> bool:
        return t_ns >= self.onset_ns

    def mark(self, rec: Rec, limit: int = 5) -> None:
        """Keep the trace as one that shows the incident (the first few after the onset)."""
        tid = rec.trace_id
        if len(self.marked) < limit and tid not in self.marked:
            self.marked.append(tid)

    # -- plumbing ------------------------------------------------------------------------
    def proc(self, service: str, t_ns: int) -> Process:
        pods = PODS[service]
        suffix, node = pods[self.rng.randrange(len(pods))] if len(pods) > 1 else pods[0]
        return self.pod(service, suffix, node, t_ns)

    def pod(self, service: str, suffix: str, node: str, t_ns: int) -> Process:
        version = self.version(service, t_ns)
        template = format(zlib.crc32(f"{service}:{version}".encode()) & 0xFFFFF, "05x")
        return self.rec.process(service, version, f"{service}-{template}-{suffix}", node)

    def lat(self, median_ms: float, sigma: float = 0.3) -> int:
        return int(median_ms * math.exp(sigma * self.rng.gauss(0.0, 1.0)) * MS)

    def work(self, service: str, median_ms: float, t_ns: int, sigma: float = 0.3) -> int:
        return int(self.lat(median_ms, sigma) * self.cpu_factor(service, t_ns))

    def dbtime(self, service: str, median_ms: float, t_ns: int, sigma: float = 0.35) -> int:
        # a client-side db span includes the caller's scheduling delay, so CPU pressure shows a bit
        return int(self.lat(median_ms, sigma) * math.sqrt(self.cpu_factor(service, t_ns)))

    def hexid(self, n: int = 8) -> str:
        return format(self.rng.getrandbits(4 * n), f"0{n}x")

    # -- the run -------------------------------------------------------------------------
    def run(self, base_rate_per_s: float) -> None:
        t = self.start_ns
        while True:
            rate = base_rate_per_s * self.scale * self.rate_factor(t)
            # Erlang-4 gaps: the mean of a Poisson process with a quarter of its count variance,
            # so that small runs are not at the mercy of a few lucky gaps
            t += int(self.rng.gammavariate(4.0, 1.0 / (4.0 * rate)) * S)
            if t >= self.end_ns:
                break
            self.tick(t)
            self.request(t)
        self.tick(self.end_ns)

    def tick(self, t_ns: int) -> None:
        """Periodic, trace-less logs every 60 s of simulated time up to `t_ns`, and the onset hook."""
        while self._next_tick_ns <= t_ns:
            now = self._next_tick_ns
            if not self._onset_done and now >= self.onset_ns:
                self._onset_done = True
                self.on_onset()
            self.periodic(now)
            self._next_tick_ns += 60 * S
        if not self._onset_done and t_ns >= self.onset_ns:
            self._onset_done = True
            self.on_onset()

    def periodic(self, t_ns: int) -> None:
        pending = self.inflight.upto(t_ns)
        kept = self.unsettled.upto(t_ns)
        used = int((180 + 3.0 * kept / self.scale + self.rng.uniform(-6, 6)) * 2**20)
        proc = self.pod("notification", PODS["notification"][0][0], PODS["notification"][0][1], t_ns)
        self.log(
            proc,
            t_ns,
            "INFO",
            f"heap after GC: {used // 2**20} MiB used of 1024 MiB",
            attributes={
                "process.memory.usage": used,
                "app.heap.max_bytes": 1024 * 2**20,
                "app.messages.unsettled": pending,
            },
        )

    def request(self, t_ns: int) -> None:
        if not self._deck:
            self._deck = list(_DECK)
            self.rng.shuffle(self._deck)
        getattr(self, f"fe_{self._deck.pop()}")(t_ns)

    # -- call helpers --------------------------------------------------------------------
    def http(
        self,
        parent: Rec,
        t_ns: int,
        callee: str,
        method: str,
        route: str,
        path: str,
        handler: Callable[[Rec, int], Reply],
        *,
        timeout_ns: int | None = None,
        resend: int = 0,
    ) -> Reply:
        caller = parent.proc
        attrs = {
            "http.request.method": method,
            "url.full": f"http://{callee}:8080{path}",
            "url.template": route,
            "server.address": callee,
            "server.port": 8080,
        }
        if resend:
            attrs["http.request.resend_count"] = resend
        client = self.start(caller, f"{method} {route}", SpanKind.CLIENT, parent, t_ns, attrs)
        t_in = t_ns + self.net_ns(caller.service, callee, t_ns)
        server_proc = self.proc(callee, t_in)
        server = self.start(
            server_proc,
            f"{method} {route}",
            SpanKind.SERVER,
            client,
            t_in,
            {"http.request.method": method, "http.route": route, "url.path": path, "url.scheme": "http"},
        )
        reply = handler(server, t_in)
        server.set("http.response.status_code", reply.status)
        if reply.status >= 500:
            server.set("error.type", reply.exc.type if reply.exc else str(reply.status))
        self.end(server, reply.end_ns, error=reply.status >= 500, exc=reply.exc)
        t_back = reply.end_ns + self.net_ns(callee, caller.service, reply.end_ns)
        if timeout_ns is not None and t_back - t_ns > timeout_ns:
            t_out = t_ns + timeout_ns
            exc = Err(
                "httpx.ReadTimeout",
                f"timed out after {timeout_ns // MS} ms waiting for {callee}",
                _stack(
                    [
                        ("/app/shop/clients.py", "post", 88),
                        (
                            "/usr/lib/python3.12/site-packages/httpx/_transports/default.py",
                            "handle_request",
                            236,
                        ),
                    ],
                    "httpx.ReadTimeout",
                    "timed out",
                ),
            )
            client.set("error.type", "httpx.ReadTimeout")
            self.end(client, t_out, exc=exc)
            return Reply(t_out, 0, exc, {"timed_out": True, **reply.data})
        client.set("http.response.status_code", reply.status)
        if reply.status >= 400:
            client.set("error.type", str(reply.status))
        self.end(client, t_back, error=reply.status >= 400)
        return Reply(t_back, reply.status, None, reply.data)

    def grpc(
        self,
        parent: Rec,
        t_ns: int,
        callee: str,
        service: str,
        method: str,
        handler: Callable[[Rec, int], Reply],
        extra: dict | None = None,
    ) -> Reply:
        caller = parent.proc
        base = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        name = f"{service}/{method}"
        client = self.start(
            caller,
            name,
            SpanKind.CLIENT,
            parent,
            t_ns,
            {**base, "server.address": callee, "server.port": 50051, **(extra or {})},
        )
        t_in = t_ns + self.net_ns(caller.service, callee, t_ns)
        server = self.start(
            self.proc(callee, t_in), name, SpanKind.SERVER, client, t_in, {**base, **(extra or {})}
        )
        reply = handler(server, t_in)
        server.set("rpc.grpc.status_code", reply.status)
        self.end(server, reply.end_ns, error=grpc_server_error(reply.status), exc=reply.exc)
        t_back = reply.end_ns + self.net_ns(callee, caller.service, reply.end_ns)
        client.set("rpc.grpc.status_code", reply.status)
        message = reply.data.get("grpc_message", "") if reply.status else ""
        self.end(client, t_back, error=reply.status != 0, message=message)
        return Reply(t_back, reply.status, None, reply.data)

    def root(self, t_ns: int, method: str, route: str, path: str) -> Rec:
        fe = self.proc("frontend", t_ns)
        return self.start(
            fe,
            f"{method} {route}",
            SpanKind.SERVER,
            None,
            t_ns,
            {
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "url.scheme": "https",
                "server.address": "shop.example.com",
                "server.port": 443,
                "client.address": f"203.0.113.{self.rng.randrange(1, 255)}",
                "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            },
        )

    def finish_root(self, root: Rec, t_ns: int, status: int) -> None:
        root.set("http.response.status_code", status)
        if status >= 500:
            root.set("error.type", str(status))
        self.end(root, t_ns + self.work("frontend", 0.4, t_ns), error=status >= 500)

    # -- frontend endpoints --------------------------------------------------------------
    def fe_product(self, t_ns: int) -> None:
        pid = self.rng.randrange(1000, 9999)
        root = self.root(t_ns, "GET", "/api/products/{id}", f"/api/products/{pid}")
        t = t_ns + self.work("frontend", 0.5, t_ns)
        missing = self.rng.random() < 0.05
        reply = self.grpc(
            root,
            t,
            "catalog",
            "catalog.v1.CatalogService",
            "GetProduct",
            lambda s, t0: self.catalog_get(s, t0, pid, missing),
        )
        self.finish_root(
            root,
            reply.end_ns,
            404 if reply.status == GRPC["NOT_FOUND"] else (200 if reply.status == 0 else 502),
        )

    def fe_products(self, t_ns: int) -> None:
        root = self.root(t_ns, "GET", "/api/products", "/api/products")
        t = t_ns + self.work("frontend", 0.5, t_ns)
        reply = self.grpc(root, t, "catalog", "catalog.v1.CatalogService", "ListProducts", self.catalog_list)
        self.finish_root(root, reply.end_ns, 200 if reply.status == 0 else 502)

    def fe_recommendations(self, t_ns: int) -> None:
        root = self.root(t_ns, "GET", "/api/recommendations", "/api/recommendations")
        t = t_ns + self.work("frontend", 0.5, t_ns)
        reply = self.http(
            root, t, "recommendation", "GET", "/v1/recommendations", "/v1/recommendations", self.recommend
        )
        self.finish_root(root, reply.end_ns, 200 if reply.status < 400 else 502)

    def fe_account(self, t_ns: int) -> None:
        root = self.root(t_ns, "GET", "/api/account", "/api/account")
        t = t_ns + self.work("frontend", 0.5, t_ns)
        uid = self.rng.randrange(10_000, 99_999)
        reply = self.grpc(
            root, t, "users", "users.v1.UserService", "GetUser", lambda s, t0: self.users_get(s, t0, uid)
        )
        self.finish_root(root, reply.end_ns, 200 if reply.status == 0 else 502)

    def fe_checkout(self, t_ns: int) -> None:
        root = self.root(t_ns, "POST", "/api/checkout", "/api/checkout")
        t = t_ns + self.work("frontend", 0.8, t_ns)
        reply = self.http(root, t, "checkout", "POST", "/v1/checkout", "/v1/checkout", self.checkout)
        if reply.status >= 500:
            self.log(
                root.proc,
                reply.end_ns,
                "ERROR",
                f"checkout failed: upstream returned {reply.status}",
                root,
                {"http.response.status_code": reply.status},
            )
        status = reply.status if reply.status in (200, 400) else 502
        self.finish_root(root, reply.end_ns, status)

    # -- catalog -------------------------------------------------------------------------
    def catalog_get(self, srv: Rec, t_ns: int, pid: int, missing: bool) -> Reply:
        t = t_ns + self.work("catalog", 0.4, t_ns)
        t = self.db(
            srv,
            t,
            self.dbtime("catalog", 2.5, t),
            system="postgresql",
            op="SELECT",
            collection="products",
            query="SELECT id, name, price, currency, stock_status FROM products WHERE id = $1",
            namespace="catalog",
            server="catalog-db",
        )
        t += self.work("catalog", 0.6, t)
        if missing:
            self.log(srv.proc, t, "INFO", f"product {pid} not found", srv, {"app.product.id": pid})
            return Reply(t, GRPC["NOT_FOUND"], data={"grpc_message": f"product {pid} not found"})
        return Reply(t, 0)

    def catalog_list(self, srv: Rec, t_ns: int) -> Reply:
        t = t_ns + self.work("catalog", 0.8, t_ns)
        t = self.db(
            srv,
            t,
            self.dbtime("catalog", 7.0, t),
            system="postgresql",
            op="SELECT",
            collection="products",
            query="SELECT id, name, price, currency FROM products WHERE category = $1 ORDER BY rank LIMIT 24",
            namespace="catalog",
            server="catalog-db",
        )
        t = self.internal(
            srv,
            t,
            self.work("catalog", 2.0, t),
            "render_listing",
            "render_listing",
            "/app/catalog/listing.py",
            57,
        )
        return Reply(t, 0)

    def catalog_validate(self, srv: Rec, t_ns: int, items: int) -> Reply:
        """ValidateItems: one query for the active promotions, then one per item (N+1)."""
        t = t_ns + self.work("catalog", 0.3, t_ns)
        t = self.db(
            srv,
            t,
            self.dbtime("catalog", 3.0, t),
            system="postgresql",
            op="SELECT",
            collection="promotions",
            query="SELECT id, rule FROM promotions WHERE active AND starts_at <= now()",
            namespace="catalog",
            server="catalog-db",
        )
        for _ in range(items):
            t = self.db(
                srv,
                t,
                self.dbtime("catalog", 9.0, t, sigma=0.4),
                system="postgresql",
                op="SELECT",
                collection="products",
                query="SELECT id, price, active FROM products WHERE id = $1",
                namespace="catalog",
                server="catalog-db",
            )
        return Reply(t + self.work("catalog", 0.3, t), 0)

    # -- recommendation: the endpoint that is always slow ---------------------------------
    def recommend(self, srv: Rec, t_ns: int) -> Reply:
        t = self.internal(
            srv,
            t_ns,
            self.work("recommendation", 4.0, t_ns),
            "load_profile",
            "load_profile",
            "/app/recs/profile.py",
            31,
        )
        t = self.internal(
            srv,
            t,
            self.work("recommendation", 1100.0, t, sigma=0.2),
            "rank_candidates",
            "rank_candidates",
            "/app/recs/ranking.py",
            112,
            **{"app.candidates.count": 5000},
        )
        reply = self.grpc(srv, t, "catalog", "catalog.v1.CatalogService", "ListProducts", self.catalog_list)
        return Reply(reply.end_ns + self.work("recommendation", 1.0, reply.end_ns), 200)

    # -- users ---------------------------------------------------------------------------
    def users_get(self, srv: Rec, t_ns: int, uid: int) -> Reply:
        t = t_ns + self.work("users", 0.3, t_ns)
        t = self.db(
            srv,
            t,
            self.dbtime("users", 1.8, t),
            system="postgresql",
            op="SELECT",
            collection="users",
            query="SELECT id, email, name, default_address_id FROM users WHERE id = $1",
            namespace="users",
            server="users-db",
        )
        return Reply(t + self.work("users", 0.3, t), 0)

    # -- checkout ------------------------------------------------------------------------
    def checkout(self, srv: Rec, t_ns: int) -> Reply:
        proc = srv.proc
        order = f"ord_{self.hexid()}"
        uid = self.rng.randrange(10_000, 99_999)
        srv.set("app.order.id", order)
        t = t_ns + self.work("checkout", 0.6, t_ns)
        cart = self.grpc(srv, t, "cart", "cart.v1.CartService", "GetCart", self.cart_get)
        t = cart.end_ns
        items = cart.data.get("items", 0)
        if items == 0:
            self.log(
                proc,
                t,
                "WARN",
                f"checkout rejected: cart for order {order} is empty",
                srv,
                {"app.order.id": order},
            )
            return Reply(t + self.work("checkout", 0.3, t), 400)
        t = self.grpc(
            srv, t, "users", "users.v1.UserService", "GetUser", lambda s, t0: self.users_get(s, t0, uid)
        ).end_ns
        t = self.checkout_validate(srv, t, items)
        quote = self.http(
            srv,
            t,
            "pricing",
            "POST",
            "/v1/quotes",
            "/v1/quotes",
            lambda s, t0: self.pricing_quote(s, t0, items),
        )
        t = quote.end_ns
        if quote.status >= 500:
            exc = Err(
                "UpstreamError",
                f"pricing returned {quote.status} for order {order}",
                _stack(
                    [
                        ("/app/checkout/service.py", "place_order", 141),
                        ("/app/checkout/clients.py", "quote", 64),
                    ],
                    "UpstreamError",
                    f"pricing returned {quote.status}",
                ),
            )
            self.log(
                proc,
                t,
                "ERROR",
                f"order {order} failed: pricing returned {quote.status}",
                srv,
                {"app.order.id": order},
                exc,
            )
            return Reply(t + self.work("checkout", 0.3, t), 502, exc)
        if quote.data.get("partial"):
            self.log(
                proc,
                t,
                "WARN",
                f"quote for order {order} has no tax lines; using list prices",
                srv,
                {"app.order.id": order},
            )
        reserved, t = self.reserve(srv, t, order, items)
        if not reserved:
            exc = Err(
                "ReservationError",
                f"inventory did not answer after {INVENTORY_ATTEMPTS} attempts",
                _stack(
                    [
                        ("/app/checkout/service.py", "place_order", 152),
                        ("/app/checkout/clients.py", "reserve", 97),
                    ],
                    "ReservationError",
                    "inventory unavailable",
                ),
            )
            self.log(
                proc,
                t,
                "ERROR",
                f"order {order} failed: inventory did not answer after {INVENTORY_ATTEMPTS} attempts",
                srv,
                {"app.order.id": order},
                exc,
            )
            return Reply(t + self.work("checkout", 0.3, t), 503, exc)
        amount = round(self.rng.uniform(9, 400), 2)
        pay = self.http(
            srv,
            t,
            "payment",
            "POST",
            "/v1/charges",
            "/v1/charges",
            lambda s, t0: self.charge(s, t0, order, amount),
        )
        t = pay.end_ns
        if pay.status >= 400:
            exc = Err(
                "PaymentError",
                f"payment returned {pay.status} for order {order}",
                _stack(
                    [
                        ("/app/checkout/service.py", "place_order", 163),
                        ("/app/checkout/clients.py", "charge", 118),
                    ],
                    "PaymentError",
                    f"payment returned {pay.status}",
                ),
            )
            self.log(
                proc,
                t,
                "ERROR",
                f"order {order} failed: payment returned {pay.status}",
                srv,
                {"app.order.id": order},
                exc,
            )
            return Reply(t + self.work("checkout", 0.3, t), 502, exc)
        t = self.db(
            srv,
            t,
            self.dbtime("checkout", 3.5, t),
            system="postgresql",
            op="INSERT",
            collection="orders",
            query="INSERT INTO orders (id, user_id, total, currency, status) VALUES ($1, $2, $3, $4, $5)",
            namespace="orders",
            server="orders-db",
        )
        t = self.publish(srv, t, order)
        self.log(
            proc,
            t,
            "INFO",
            f"order {order} placed: {items} items, total {amount:.2f} EUR",
            srv,
            {"app.order.id": order, "app.cart.items": items},
        )
        return Reply(t + self.work("checkout", 0.4, t), 200)

    def checkout_validate(self, srv: Rec, t_ns: int, items: int) -> int:
        """Hook for the deploy scenario: the healthy checkout validates nothing remotely."""
        return t_ns

    def reserve(self, srv: Rec, t_ns: int, order: str, items: int) -> tuple[bool, int]:
        """POST /v1/reservations with a 400 ms timeout, retried at once (no backoff)."""
        t = t_ns
        for attempt in range(INVENTORY_ATTEMPTS):
            reply = self.http(
                srv,
                t,
                "inventory",
                "POST",
                "/v1/reservations",
                "/v1/reservations",
                lambda s, t0, a=attempt: self.inventory_reserve(s, t0, items, a),
                timeout_ns=INVENTORY_TIMEOUT_NS,
                resend=attempt,
            )
            t = reply.end_ns
            if not reply.data.get("timed_out") and reply.status < 400:
                return True, t
            self.log(
                srv.proc,
                t,
                "WARN",
                f"inventory reservation attempt {attempt + 1} for order {order} timed out after 400 ms; retrying",
                srv,
                {"app.order.id": order, "http.request.resend_count": attempt},
            )
            if attempt >= 1:
                self.on_retry(srv)
        return False, t

    def on_retry(self, srv: Rec) -> None:
        """Called on every second and later retry (the retry-storm scenario marks these traces)."""

    # -- cart ----------------------------------------------------------------------------
    def cart_get(self, srv: Rec, t_ns: int) -> Reply:
        t = t_ns + self.work("cart", 0.3, t_ns)
        cart = self.rng.randrange(100_000, 999_999)
        t = self.db(
            srv,
            t,
            self.dbtime("cart", 0.6, t),
            system="redis",
            op="HGETALL",
            collection="cart",
            query="HGETALL cart:?",
            namespace="0",
            server="cart-redis",
        )
        items = self.rng.randint(1, 8)
        srv.set("app.cart.items", items)
        srv.set("app.cart.id", cart)
        return Reply(t + self.work("cart", 0.2, t), 0, data={"items": items})

    # -- pricing -------------------------------------------------------------------------
    def pricing_quote(self, srv: Rec, t_ns: int, items: int) -> Reply:
        t = t_ns + self.work("pricing", 0.5, t_ns)
        t = self.db(
            srv,
            t,
            self.dbtime("pricing", 2.5, t),
            system="postgresql",
            op="SELECT",
            collection="price_rules",
            query="SELECT sku, list_price, discount FROM price_rules WHERE sku = ANY($1)",
            namespace="pricing",
            server="pricing-db",
        )
        t = self.db(
            srv,
            t,
            self.dbtime("pricing", 2.0, t),
            system="postgresql",
            op="SELECT",
            collection="tax_rates",
            query="SELECT region, rate FROM tax_rates WHERE region = $1",
            namespace="pricing",
            server="tax-db",
        )
        t = self.internal(
            srv,
            t,
            self.work("pricing", 1.5, t),
            "compute_quote",
            "compute_quote",
            "/app/pricing/quote.py",
            88,
        )
        return Reply(t, 200)

    # -- inventory -----------------------------------------------------------------------
    def inventory_reserve(self, srv: Rec, t_ns: int, items: int, attempt: int) -> Reply:
        t = t_ns + self.work("inventory", 0.4, t_ns)
        t = self.db(
            srv,
            t,
            self.inventory_db_ns(t, attempt),
            system="postgresql",
            op="UPDATE",
            collection="stock",
            query="UPDATE stock SET reserved = reserved + $1 WHERE sku = ANY($2) AND available >= $1",
            namespace="inventory",
            server="inventory-db",
        )
        return Reply(t + self.work("inventory", 0.3, t), 201)

    def inventory_db_ns(self, t_ns: int, attempt: int) -> int:
        # now and then a row lock makes the first attempt slow enough to time out (retried, harmless)
        if attempt == 0 and self.rng.random() < 0.06:
            return self.lat(650.0, 0.2)
        return self.dbtime("inventory", 6.0, t_ns)

    # -- payment and the lock ------------------------------------------------------------
    def gateway_ns(self, t_ns: int) -> int:
        if self.rng.random() < 0.1:  # 3-D Secure challenges are slow: the lease gets renewed
            return self.lat(2900.0, 0.1)
        return self.lat(260.0, 0.45)

    def charge(self, srv: Rec, t_ns: int, order: str, amount: float) -> Reply:
        proc = srv.proc
        key = f"order:{order}"
        t = t_ns + self.work("payment", 0.5, t_ns)
        local_now_ms = (t + self.skew_ns(proc.host, t)) // MS
        expires_ms = local_now_ms + LOCK_TTL_MS
        lock_attrs = {"lock.key": key, "lock.lease.ttl_ms": LOCK_TTL_MS, "lock.lease.expires_at": expires_ms}
        t = self.grpc(
            srv,
            t,
            "lock-service",
            "lock.v1.LockService",
            "Acquire",
            lambda s, t0: self.lock_acquire(s, t0, key),
            extra=lock_attrs,
        ).end_ns
        acquired = t
        gateway_done = self.external(
            srv,
            t,
            self.gateway_ns(t),
            method="POST",
            host="api.cardgateway.example",
            template="/v1/payment_intents",
        )
        lost = False
        if gateway_done - acquired > LOCK_RENEW_AFTER_MS * MS:
            renew_at = acquired + LOCK_RENEW_AFTER_MS * MS
            renew = self.grpc(
                srv,
                renew_at,
                "lock-service",
                "lock.v1.LockService",
                "Renew",
                lambda s, t0: self.lock_renew(s, t0, key, expires_ms),
                extra={
                    "lock.key": key,
                    "lock.lease.ttl_ms": LOCK_TTL_MS,
                    "lock.lease.expires_at": expires_ms,
                    "lock.lease.age_ms": LOCK_RENEW_AFTER_MS,
                },
            )
            lost = renew.status != 0
        t = max(gateway_done, t)
        if lost:
            exc = Err(
                "LockLostError",
                f"lease for {key} expired before renewal",
                _stack(
                    [("/app/payment/charges.py", "capture", 203), ("/app/payment/locks.py", "keepalive", 71)],
                    "LockLostError",
                    f"lease for {key} expired before renewal",
                ),
            )
            self.mark(srv)
            self.log(
                proc,
                t,
                "ERROR",
                f"charge for order {order} aborted: lease for {key} expired before renewal",
                srv,
                {"app.order.id": order, "lock.key": key},
                exc,
            )
            return Reply(t + self.work("payment", 0.4, t), 500, exc)
        t = self.db(
            srv,
            t,
            self.dbtime("payment", 3.0, t),
            system="postgresql",
            op="INSERT",
            collection="payments",
            query="INSERT INTO payments (order_id, amount, currency, gateway_ref) VALUES ($1, $2, $3, $4)",
            namespace="payments",
            server="payments-db",
        )
        t = self.grpc(
            srv,
            t,
            "lock-service",
            "lock.v1.LockService",
            "Release",
            self.lock_release,
            extra={"lock.key": key},
        ).end_ns
        return Reply(t + self.work("payment", 0.3, t), 201)

    def lock_acquire(self, srv: Rec, t_ns: int, key: str) -> Reply:
        return Reply(t_ns + self.work("lock-service", 0.7, t_ns), 0)

    def lock_release(self, srv: Rec, t_ns: int) -> Reply:
        return Reply(t_ns + self.work("lock-service", 0.4, t_ns), 0)

    def lock_renew(self, srv: Rec, t_ns: int, key: str, expires_ms: int) -> Reply:
        """The lock service judges the lease by its own clock against the holder's expiry time."""
        now_ms = (t_ns + self.skew_ns(srv.proc.host, t_ns)) // MS
        remaining = expires_ms - now_ms
        srv.set("lock.lease.remaining_ms", remaining)
        t = t_ns + self.work("lock-service", 0.5, t_ns)
        if remaining <= 0:
            self.log(
                srv.proc,
                t,
                "WARN",
                f"renew rejected: lease {key} expired {-remaining} ms ago",
                srv,
                {"lock.key": key, "lock.lease.remaining_ms": remaining},
            )
            return Reply(t, GRPC["FAILED_PRECONDITION"], data={"grpc_message": f"lease {key} expired"})
        return Reply(t, 0)

    # -- messaging -----------------------------------------------------------------------
    def publish(self, srv: Rec, t_ns: int, order: str) -> int:
        msg_id = self.hexid(16)
        attrs = {
            "messaging.system": "servicebus",
            "messaging.destination.name": QUEUE,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.message.id": msg_id,
            "server.address": BUS,
        }
        producer = self.start(srv.proc, f"send {QUEUE}", SpanKind.PRODUCER, srv, t_ns, attrs)
        t = self.end(producer, t_ns + self.lat(2.5, 0.3))
        self.consume(producer, t, order, msg_id)
        return t

    def queue_wait_ns(self, t_ns: int) -> int:
        return self.lat(25.0, 0.5)

    def settles(self, t_ns: int) -> bool:
        """Whether the consumer completes (acknowledges) a message it processed at `t_ns`."""
        return True

    def consume(self, producer: Rec, enqueued_ns: int, order: str, msg_id: str) -> None:
        """Deliver the message until it is settled or dead-lettered after MAX_DELIVERIES."""
        t = enqueued_ns + self.queue_wait_ns(enqueued_ns)
        first = t
        for delivery in range(1, MAX_DELIVERIES + 1):
            settled, t_done = self.process_message(producer, t, enqueued_ns, order, msg_id, delivery)
            if settled:
                break
            t = t_done + 30 * S + self.lat(40.0, 0.4)  # the peek-lock (30 s) runs out, the broker redelivers
            if t >= self.end_ns + 30 * S:
                break
        self.inflight.add(first, 1)
        self.inflight.add(t_done if settled else t, -1)

    def process_message(
        self, producer: Rec, t_ns: int, enqueued_ns: int, order: str, msg_id: str, delivery: int
    ) -> tuple[bool, int]:
        proc = self.proc("notification", t_ns)
        attrs = {
            "messaging.system": "servicebus",
            "messaging.destination.name": QUEUE,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.message.id": msg_id,
            "messaging.servicebus.message.delivery_count": delivery,
            "messaging.servicebus.message.enqueued_time": enqueued_ns // MS,
            "server.address": BUS,
        }
        span = self.start(proc, f"process {QUEUE}", SpanKind.CONSUMER, producer, t_ns, attrs)
        if delivery > 1:
            self.mark(span)
        t = t_ns + self.work("notification", 0.8, t_ns)
        t = self.db(
            span,
            t,
            self.dbtime("notification", 2.0, t),
            system="postgresql",
            op="SELECT",
            collection="templates",
            query="SELECT subject, body FROM templates WHERE name = $1 AND locale = $2",
            namespace="notifications",
            server="notifications-db",
        )
        t = self.external(
            span, t, self.lat(120.0, 0.4), method="POST", host="api.mailer.example", template="/v3/mail/send"
        )
        self.log(
            proc,
            t,
            "INFO",
            f"order confirmation sent for {order} (delivery {delivery})",
            span,
            {"app.order.id": order, "messaging.message.id": msg_id},
        )
        settled = self.settles(t)
        if settled:
            settle = self.start(
                proc,
                f"complete {QUEUE}",
                SpanKind.CLIENT,
                span,
                t,
                {
                    "messaging.system": "servicebus",
                    "messaging.destination.name": QUEUE,
                    "messaging.operation.type": "settle",
                    "messaging.operation.name": "complete",
                    "messaging.message.id": msg_id,
                    "messaging.servicebus.disposition_status": "complete",
                    "server.address": BUS,
                },
            )
            t = self.end(settle, t + self.lat(3.0, 0.3))
        else:
            self.unsettled.add(t)
        if not settled and delivery == MAX_DELIVERIES:
            self.log(
                proc,
                t,
                "WARN",
                f"message {msg_id} reached max delivery count {MAX_DELIVERIES}; broker will dead-letter it",
                span,
                {"messaging.message.id": msg_id, "messaging.servicebus.message.delivery_count": delivery},
            )
        t = self.end(span, t + self.work("notification", 0.3, t))
        return settled, t
