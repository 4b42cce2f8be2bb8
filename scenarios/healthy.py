"""healthy: the control. The shop runs normally for the whole hour; nothing starts at the midpoint."""

from __future__ import annotations

from scenarios.shop import Shop

__all__ = ["Healthy"]


class Healthy(Shop):
    name = "healthy"
    root_service = None
    root_operation = None
    mechanisms: tuple[str, ...] = ()
    description = (
        "Control: healthy traffic with the always-slow recommendations endpoint, 5% NOT_FOUND product "
        "lookups and an occasional inventory timeout that succeeds on retry. No incident."
    )
