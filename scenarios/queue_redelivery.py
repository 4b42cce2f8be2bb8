"""queue_redelivery: the notification consumer stops acknowledging messages; they pile up.

At the onset notification reloads its configuration with auto-complete off. It still processes
every `order-events` message (and sends the e-mail) but never settles it, so each peek-lock runs
out after 30 s and Service Bus redelivers the message with a higher
`messaging.servicebus.message.delivery_count`, up to 10, then dead-letters it. Unsettled messages
stay in the consumer's memory: the periodic "heap after GC" log climbs, and new messages wait
longer in the queue. No span has an error status.
"""

from __future__ import annotations

from scenarios.shop import PODS, Shop

__all__ = ["QueueRedelivery"]


class QueueRedelivery(Shop):
    name = "queue_redelivery"
    root_service = "notification"
    root_operation = "process order-events"
    mechanisms = ("queue_backlog",)
    description = (
        "At the onset notification reloads its config with auto-complete off: it processes order-events "
        "messages but never settles them (no 'complete order-events' span), so every message is redelivered "
        "each 30 s with a growing messaging.servicebus.message.delivery_count (up to 10, then dead-lettered), "
        "duplicate e-mails are sent, queue wait grows and the notification heap log climbs. "
        "Root cause: notification's consumer never acknowledges."
    )

    def settles(self, t_ns: int) -> bool:
        return not self.incident(t_ns)

    def queue_wait_ns(self, t_ns: int) -> int:
        pending = self.inflight.upto(t_ns) / self.scale
        return self.lat(25.0 + 40.0 * pending, 0.4)

    def on_onset(self) -> None:
        suffix, node = PODS["notification"][0]
        proc = self.pod("notification", suffix, node, self.onset_ns)
        self.log(
            proc,
            self.onset_ns,
            "INFO",
            "configuration reloaded: servicebus.receive_mode=peek_lock servicebus.auto_complete=false",
            attributes={"app.config.source": "configmap/notification"},
        )
