"""cpu_saturation: a full search-index rebuild saturates catalog's CPU; all of catalog slows.

At the onset catalog starts a full index rebuild in-process. Within a minute every operation of
catalog takes ~4x its usual self time (GetProduct, ListProducts, render_listing), its database
client spans slow a little (scheduling delay), and its callers (frontend, recommendation) only
wait. catalog logs that its worker pool is saturated.
"""

from __future__ import annotations

from scenarios.shop import PODS, Reply, S, Shop
from scenarios.telemetry import Rec

__all__ = ["CpuSaturation"]


class CpuSaturation(Shop):
    name = "cpu_saturation"
    root_service = "catalog"
    root_operation = None
    mechanisms = ("cpu_saturation",)
    description = (
        "At the onset catalog starts a full search-index rebuild in-process; within a minute its CPU is "
        "saturated and every catalog operation's self time grows ~4x (db client spans ~2x), while frontend "
        "and recommendation only wait on it. catalog logs a saturated worker pool. "
        "Root cause: CPU saturation in catalog (no single operation)."
    )

    def cpu_factor(self, service: str, t_ns: int) -> float:
        if service != "catalog" or not self.incident(t_ns):
            return 1.0
        return 1.0 + 3.0 * min(1.0, (t_ns - self.onset_ns) / (60 * S))

    def catalog_get(self, srv: Rec, t_ns: int, pid: int, missing: bool) -> Reply:
        if self.cpu_factor("catalog", t_ns) > 2.0:
            self.mark(srv)
        return super().catalog_get(srv, t_ns, pid, missing)

    def on_onset(self) -> None:
        for suffix, node in PODS["catalog"]:
            proc = self.pod("catalog", suffix, node, self.onset_ns)
            self.log(
                proc,
                self.onset_ns,
                "INFO",
                "search index rebuild started (full, 1200000 documents)",
                attributes={"app.job": "reindex"},
            )

    def periodic(self, t_ns: int) -> None:
        super().periodic(t_ns)
        if self.incident(t_ns):
            for suffix, node in PODS["catalog"]:
                proc = self.pod("catalog", suffix, node, t_ns)
                queued = self.rng.randrange(20, 90)
                self.log(
                    proc,
                    t_ns,
                    "WARN",
                    f"worker pool saturated: 16/16 busy, {queued} queued",
                    attributes={"app.pool.busy": 16, "app.pool.queued": queued},
                )
