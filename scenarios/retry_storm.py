"""retry_storm: inventory slows down and checkout retries it at once, four times, without backoff.

At the onset inventory's reservation UPDATE starts waiting on row locks (a long-running stock
import holds them): it takes ~320 ms, climbing to ~720 ms within three minutes, and every retry
lands on the same locked rows and is slower still. Checkout's client gives up after 400 ms and
retries immediately (`http.request.resend_count` 1..3); inventory keeps working on the abandoned
attempts (server spans outlive their client spans). Most orders fail with 503 after four attempts.
"""

from __future__ import annotations

from scenarios.shop import S, Shop
from scenarios.telemetry import Rec

__all__ = ["RetryStorm"]


class RetryStorm(Shop):
    name = "retry_storm"
    root_service = "inventory"
    root_operation = "POST /v1/reservations"
    mechanisms = ("retry_storm", "latency_regression")
    description = (
        "At the onset inventory's 'UPDATE stock' starts waiting on row locks (~320 ms rising to ~720 ms, "
        "slower on every retry). checkout times out after 400 ms and retries immediately up to 4 attempts "
        "(http.request.resend_count), multiplying inventory's load; most orders end in 503. "
        "Root cause: inventory's latency regression, amplified by checkout's retries without backoff."
    )

    def inventory_db_ns(self, t_ns: int, attempt: int) -> int:
        if not self.incident(t_ns):
            return super().inventory_db_ns(t_ns, attempt)
        ramp = min(1.0, (t_ns - self.onset_ns) / (180 * S))
        return self.lat((320.0 + 400.0 * ramp) * (1.0 + 0.35 * attempt), 0.25)

    def on_retry(self, srv: Rec) -> None:
        if self.incident(srv.span.start_time or 0):
            self.mark(srv)
