"""deploy_n_plus_one: checkout 2.15.0 adds cart validation that makes catalog run N+1 queries.

At the onset every checkout pod is replaced by version 2.15.0 (new `service.version`, new pod
names). The new version calls catalog's `ValidateItems` once per order, a method that until then
nobody called; it reads the active promotions and then one `SELECT … FROM products WHERE id = $1`
per cart item. Checkout gets slower by tens of milliseconds per order; nothing fails.

Root cause: checkout (the deploy is the only change at the onset; catalog's code and version are
unchanged, the N+1 loop in it only runs because checkout 2.15.0 now calls it). The fix is in
checkout (batch the validation or drop it) or a batched ValidateItems.
"""

from __future__ import annotations

from scenarios.shop import PODS, Shop
from scenarios.telemetry import Rec

__all__ = ["DeployNPlusOne"]

NEW_VERSION = "2.15.0"


class DeployNPlusOne(Shop):
    name = "deploy_n_plus_one"
    root_service = "checkout"
    root_operation = "POST /v1/checkout"
    mechanisms = ("deploy_regression", "n_plus_one")
    description = (
        "At the onset checkout is deployed as 2.15.0 (service.version 2.14.3 -> 2.15.0). The new version "
        "calls catalog.v1.CatalogService/ValidateItems for each order, which runs one SELECT on promotions "
        "and then one 'SELECT id, price, active FROM products WHERE id = $1' per cart item (N+1). "
        "Root cause is checkout: its deploy is the only change at the onset; catalog is unchanged and its "
        "N+1 loop runs only because checkout now calls it."
    )

    def version(self, service: str, t_ns: int) -> str:
        if service == "checkout" and self.incident(t_ns):
            return NEW_VERSION
        return super().version(service, t_ns)

    def checkout_validate(self, srv: Rec, t_ns: int, items: int) -> int:
        if srv.proc.version != NEW_VERSION:
            return t_ns
        self.mark(srv)
        reply = self.grpc(
            srv,
            t_ns,
            "catalog",
            "catalog.v1.CatalogService",
            "ValidateItems",
            lambda s, t0: self.catalog_validate(s, t0, items),
        )
        return reply.end_ns

    def on_onset(self) -> None:
        for suffix, node in PODS["checkout"]:
            proc = self.pod("checkout", suffix, node, self.onset_ns)
            self.log(
                proc,
                self.onset_ns,
                "INFO",
                f"checkout {NEW_VERSION} started (build 4f2a9c1, validate_cart_items=on)",
                attributes={"app.build": "4f2a9c1"},
            )
