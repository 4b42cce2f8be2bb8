"""code_path_change: cart's GetCart starts returning early with an empty cart.

At the onset a code path in cart (carts migrated to the new store are read from a cache that
is never filled) makes GetCart return at once for half of the carts, without its redis read and
with zero items. checkout then rejects the order with 400 "cart is empty" and skips users,
pricing, inventory, payment, the orders insert and the notification: those traces are much
shorter. No server span errors; only the frontend's client span to checkout is an error, as the
semantic conventions mark every 4xx on a client span.
"""

from __future__ import annotations

from scenarios.shop import Reply, Shop
from scenarios.telemetry import Rec

__all__ = ["CodePathChange"]


class CodePathChange(Shop):
    name = "code_path_change"
    root_service = "cart"
    root_operation = "cart.v1.CartService/GetCart"
    mechanisms = ("code_path_change",)
    description = (
        "At the onset cart's GetCart returns early for about half of the carts (a migrated-store code path "
        "reads an empty cache): no redis HGETALL child, app.cart.items=0. checkout answers 400 'cart is "
        "empty' and skips pricing, inventory, payment and the notification, so checkout traces shrink from "
        "~25 spans to ~6. No server span errors (only frontend's client span marks the 400). Root cause: cart's GetCart code path."
    )

    def cart_get(self, srv: Rec, t_ns: int) -> Reply:
        if self.incident(t_ns) and self.rng.random() < 0.5:
            self.mark(srv)
            cart = self.rng.randrange(100_000, 999_999)
            srv.set("app.cart.items", 0)
            srv.set("app.cart.id", cart)
            srv.set("app.cart.store", "v2")
            return Reply(t_ns + self.work("cart", 0.15, t_ns), 0, data={"items": 0})
        return super().cart_get(srv, t_ns)
