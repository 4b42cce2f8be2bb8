"""lock_clock_skew: payment failures under load, because two hosts' clocks disagree.

At the onset node-4's clock steps 800 ms behind (its NTP source became unreachable) while a sale
raises traffic by half and makes the card gateway slow (median 3.2 s). The payment pod on node-4
(payment-…-b8g) computes its lock lease's expiry (`lock.lease.expires_at`, holder's clock + 3 s
TTL) 800 ms too early; it renews at 2.5 s as designed, but by lock-service's clock (node-5) the
lease ended 300 ms before, so Renew answers FAILED_PRECONDITION and the charge is aborted
(LockLostError → 500 → checkout 502 → frontend 502). Payment on node-3 renews fine.
"""

from __future__ import annotations

from scenarios.shop import Shop
from scenarios.telemetry import MS

__all__ = ["LockClockSkew"]

SKEWED_HOST = "node-4"
STEP_NS = -800 * MS


class LockClockSkew(Shop):
    name = "lock_clock_skew"
    root_service = "payment"
    root_operation = "lock.v1.LockService/Renew"
    mechanisms = ("lock_expiry", "clock_skew")
    description = (
        "At the onset node-4's clock steps 800 ms behind while a sale raises traffic by half and slows the card "
        "gateway. payment on node-4 sets its 3 s lock lease to expire by its own (late) clock, renews at "
        "2.5 s, and lock-service (node-5) has already expired the lease: Renew fails with "
        "FAILED_PRECONDITION (lock.lease.remaining_ms < 0), the charge aborts with LockLostError and "
        "checkout/frontend return 502. payment's spans on node-4 start ~800 ms before their parents. "
        "Root cause: payment's lease timing depends on a skewed host clock."
    )

    def skew_ns(self, host: str, t_ns: int) -> int:
        base = super().skew_ns(host, t_ns)
        if host == SKEWED_HOST and self.incident(t_ns):
            return base + STEP_NS
        return base

    def rate_factor(self, t_ns: int) -> float:
        return 1.5 if self.incident(t_ns) else 1.0

    def gateway_ns(self, t_ns: int) -> int:
        if self.incident(t_ns):
            return self.lat(3200.0, 0.3)
        return super().gateway_ns(t_ns)
