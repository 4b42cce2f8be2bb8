"""dependency_failure: pricing's tax database moves in a config change and stops answering.

At the onset pricing reloads its configuration with `tax_db.host=tax-db-replica-3`, a replica
that refuses connections. 90% of quotes fail (the rest are served from a warm cache): the
`SELECT tax_rates` span errors with psycopg.OperationalError, pricing answers 500 with a
TaxLookupError, checkout 502 with UpstreamError, the frontend 502; each logs an error.
"""

from __future__ import annotations

from scenarios.shop import Reply, Shop, _stack
from scenarios.telemetry import Err, Rec

__all__ = ["DependencyFailure"]

BAD_HOST = "tax-db-replica-3"


class DependencyFailure(Shop):
    name = "dependency_failure"
    root_service = "pricing"
    root_operation = "POST /v1/quotes"
    mechanisms = ("dependency_failure", "error_propagation")
    description = (
        "At the onset pricing reloads its config with tax_db.host=tax-db-replica-3, which refuses "
        "connections: 90% of 'SELECT tax_rates' spans fail (psycopg.OperationalError), pricing returns "
        "500 (TaxLookupError), checkout 502 (UpstreamError) and the frontend 502, each with exception "
        "events and error logs. Root cause: pricing's tax database dependency after the config change."
    )

    def pricing_quote(self, srv: Rec, t_ns: int, items: int) -> Reply:
        if not self.incident(t_ns):
            return super().pricing_quote(srv, t_ns, items)
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
        if self.rng.random() < 0.1:  # the region's rate is still in the warm cache: no tax query
            srv.set("app.tax.cache_hit", True)
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
        self.mark(srv)
        message = f'connection to server at "{BAD_HOST}" (10.0.9.31), port 5432 failed: Connection refused'
        db_exc = Err(
            "psycopg.OperationalError",
            message,
            _stack(
                [
                    ("/app/pricing/tax.py", "tax_rate", 42),
                    ("/usr/lib/python3.12/site-packages/psycopg/connection.py", "connect", 119),
                ],
                "psycopg.OperationalError",
                message,
            ),
        )
        t = self.db(
            srv,
            t,
            self.lat(3.0, 0.3),
            system="postgresql",
            op="SELECT",
            collection="tax_rates",
            query="SELECT region, rate FROM tax_rates WHERE region = $1",
            namespace="pricing",
            server=BAD_HOST,
            exc=db_exc,
        )
        exc = Err(
            "TaxLookupError",
            f"tax rate lookup failed: {message}",
            _stack(
                [("/app/pricing/api.py", "create_quote", 73), ("/app/pricing/tax.py", "tax_rate", 45)],
                "TaxLookupError",
                "tax rate lookup failed",
            ),
        )
        self.log(
            srv.proc,
            t,
            "ERROR",
            f"quote failed: tax rate lookup failed on {BAD_HOST}",
            srv,
            {"db.system.name": "postgresql", "server.address": BAD_HOST},
            exc,
        )
        return Reply(t + self.work("pricing", 0.4, t), 500, exc)

    def on_onset(self) -> None:
        proc = self.proc("pricing", self.onset_ns)
        self.log(
            proc,
            self.onset_ns,
            "INFO",
            f"configuration reloaded: tax_db.host={BAD_HOST} (was tax-db)",
            attributes={"app.config.source": "configmap/pricing"},
        )
