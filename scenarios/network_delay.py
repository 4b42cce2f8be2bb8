"""network_delay: every request into users crosses a congested link (~220 ms more each).

At the onset a misconfigured network policy routes traffic to the users pod through an egress
proxy: each request to users takes ~220 ms longer on the wire. users' own server spans are as
fast as before; the client spans of its callers (frontend GetUser for /api/account, checkout
GetUser) grow by the gap.
"""

from __future__ import annotations

from scenarios.shop import Reply, Shop
from scenarios.telemetry import MS, Rec

__all__ = ["NetworkDelay"]


class NetworkDelay(Shop):
    name = "network_delay"
    root_service = "users"
    root_operation = "users.v1.UserService/GetUser"
    mechanisms = ("network_delay",)
    description = (
        "At the onset requests into users take ~220 ms longer on the network (a misrouted network policy). "
        "users' server spans keep their duration; the GetUser client spans of frontend and checkout grow "
        "by ~220 ms, so /api/account and /api/checkout slow down. Root cause: the network path into users."
    )

    def net_ns(self, caller: str, callee: str, t_ns: int) -> int:
        base = super().net_ns(caller, callee, t_ns)
        if callee == "users" and self.incident(t_ns):
            return base + self.lat(220.0, 0.15)
        return base

    def users_get(self, srv: Rec, t_ns: int, uid: int) -> Reply:
        if self.incident(t_ns - 100 * MS):
            self.mark(srv)
        return super().users_get(srv, t_ns, uid)
